//! From a client's SDP offer to a ready `Rtc` and the SDP answer. Runs in the caller's task.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::change::SdpOffer;
use str0m::config::{CryptoProvider, DtlsCert};
use str0m::media::{Direction, MediaKind, Mid};
use str0m::{Candidate, IceCreds, Rtc};

use crate::{PeerId, SfuError};

/// A peer ready to join the engine.
pub(crate) struct Prepared {
    pub rtc: Rtc,
    /// Our ICE ufrag for this peer: the demux key for its STUN requests.
    pub ufrag: String,
    /// The client's microphone m-line.
    pub mic: Mid,
    /// The client's receive m-lines, in offer order, at most `max_slots`.
    pub slots: Vec<Mid>,
    pub answer: String,
}

pub(crate) fn prepare(
    peer: PeerId,
    offer_sdp: &str,
    crypto: &Arc<CryptoProvider>,
    cert: &DtlsCert,
    candidate: &Candidate,
    max_slots: usize,
) -> Result<Prepared, SfuError> {
    // The SDP parser is third-party code fed by the network: a panic in it rejects this offer only.
    catch_unwind(AssertUnwindSafe(|| prepare_inner(peer, offer_sdp, crypto, cert, candidate, max_slots)))
        .unwrap_or_else(|_| Err(SfuError::BadSdp("offer could not be processed".into())))
}

fn prepare_inner(
    peer: PeerId,
    offer_sdp: &str,
    crypto: &Arc<CryptoProvider>,
    cert: &DtlsCert,
    candidate: &Candidate,
    max_slots: usize,
) -> Result<Prepared, SfuError> {
    let offer = SdpOffer::from_sdp_string(offer_sdp).map_err(|e| SfuError::BadSdp(e.to_string()))?;
    if !has_opus_audio(offer_sdp) {
        return Err(SfuError::NoOpus);
    }
    let mut creds = IceCreds::new();
    // Unique by construction (hex has no 'z'), so two peers can never share a demux key.
    creds.ufrag = format!("{peer:x}z{}", creds.ufrag);
    let ufrag = creds.ufrag.clone();
    let mut rtc = Rtc::builder()
        .set_crypto_provider(crypto.clone())
        .set_ice_lite(true)
        .set_local_ice_credentials(creds)
        .set_dtls_cert(cert.clone())
        .clear_codecs()
        .enable_opus(true, false)
        .set_stats_interval(Some(Duration::from_secs(1)))
        .set_rtcp_report_interval_audio(Duration::from_secs(1))
        .build(Instant::now());
    rtc.add_local_candidate(candidate.clone());
    let answer = rtc.sdp_api().accept_offer(offer).map_err(|e| SfuError::BadSdp(e.to_string()))?;

    // str0m only emits MediaAdded once media can flow, so read the accepted m-lines back
    // through `Rtc::media`, by the offer's mids, with our (inverted) direction.
    let (mut mic, mut slots) = (None, Vec::new());
    for mid in offer_mids(offer_sdp) {
        let Some(m) = rtc.media(mid).filter(|m| m.kind() == MediaKind::Audio && !m.disabled()) else { continue };
        match m.direction() {
            Direction::RecvOnly | Direction::SendRecv if mic.is_none() => mic = Some(mid),
            Direction::SendOnly | Direction::SendRecv if slots.len() < max_slots => slots.push(mid),
            _ => {}
        }
    }
    let mic = mic.ok_or(SfuError::NoSendAudio)?;
    Ok(Prepared { rtc, ufrag, mic, slots, answer: answer.to_sdp_string() })
}

/// The `a=mid` of each m-line, in order.
fn offer_mids(sdp: &str) -> impl Iterator<Item = Mid> + '_ {
    sdp.lines().filter_map(|l| l.trim().strip_prefix("a=mid:")).map(Mid::from)
}

/// Whether some `m=audio` section maps a payload type to opus/48000.
fn has_opus_audio(sdp: &str) -> bool {
    let mut audio = false;
    for line in sdp.lines().map(str::trim) {
        if let Some(m) = line.strip_prefix("m=") {
            audio = m.starts_with("audio ");
        } else if audio
            && let Some(map) = line.strip_prefix("a=rtpmap:")
            && map
                .split_whitespace()
                .nth(1)
                .and_then(|c| c.get(..10))
                .is_some_and(|c| c.eq_ignore_ascii_case("opus/48000"))
        {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::has_opus_audio;

    #[test]
    fn opus_must_be_in_an_audio_section() {
        let audio = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 OPUS/48000/2\r\n";
        assert!(has_opus_audio(audio));
        assert!(!has_opus_audio("v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=rtpmap:0 PCMU/8000\r\n"));
        assert!(!has_opus_audio("v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n"));
        assert!(!has_opus_audio("a=rtpmap:111 opus/48000/2\r\n"));
        assert!(!has_opus_audio("m=audio 9 x 111\r\na=rtpmap:111 opus/4\r\n"));
        assert!(!has_opus_audio("m=audio 9 x 111\r\na=rtpmap:111 opus/4800\u{e9}\r\n"));
    }
}
