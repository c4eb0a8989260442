//! From a client's SDP offer to a ready `Rtc` and the SDP answer. Runs in the caller's task.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::change::SdpOffer;
use str0m::config::{CryptoProvider, DtlsCert};
use str0m::media::{Direction, MediaKind, Mid};
use str0m::rtp::Extension;
use str0m::{Candidate, IceCreds, Rtc, RtcConfig};

use crate::sdp_text::{complete_candidates, has_codec, mic_has_opus};
use crate::{MediaMode, PeerId, SfuError};

/// A peer ready to join the engine.
pub(crate) struct Prepared {
    pub rtc: Rtc,
    /// Our ICE ufrag for this peer: the demux key for its STUN requests.
    pub ufrag: String,
    /// The client's microphone m-line.
    pub mic: Mid,
    /// The client's receive audio m-lines, in offer order, at most `max_slots.0`.
    pub slots: Vec<Mid>,
    /// The client's camera m-line, if it offered one.
    pub camera: Option<Mid>,
    /// The client's receive video m-lines, in offer order, at most `max_slots.1`.
    pub video_slots: Vec<Mid>,
    /// The client's screen-share m-line: a send video m-line after its receive video m-lines.
    pub share: Option<Mid>,
    /// Receive video m-lines after the share m-line: other people's shares, at most `max_slots.2`.
    pub share_slots: Vec<Mid>,
    pub answer: String,
}

pub(crate) fn prepare(
    peer: PeerId,
    offer_sdp: &str,
    crypto: &Arc<CryptoProvider>,
    cert: &DtlsCert,
    candidates: &[Candidate],
    max_slots: (usize, usize, usize),
    mode: MediaMode,
) -> Result<Prepared, SfuError> {
    // The SDP parser is third-party code fed by the network: a panic in it rejects this offer only.
    catch_unwind(AssertUnwindSafe(|| prepare_inner(peer, offer_sdp, crypto, cert, candidates, max_slots, mode)))
        .unwrap_or_else(|_| Err(SfuError::BadSdp("the offer could not be processed".into())))
}

/// The parser's own message (positions, heap addresses, several lines) goes to the log; the
/// client is told one stable sentence (the SDP fuzz test found the raw text in WHIP answers).
pub(crate) fn unparsable(e: impl std::fmt::Display) -> SfuError {
    tracing::debug!(error = %e, "unparsable SDP offer");
    SfuError::BadSdp("the offer is not valid SDP".into())
}

/// str0m refusing a parsed offer: its reason's first line, short.
pub(crate) fn unanswerable(e: impl std::fmt::Display) -> SfuError {
    let text = e.to_string();
    tracing::debug!(error = %text, "SDP offer refused");
    let first: String = text.lines().next().unwrap_or_default().chars().take(120).collect();
    SfuError::BadSdp(format!("the offer cannot be answered: {first}"))
}

fn prepare_inner(
    peer: PeerId,
    offer_sdp: &str,
    crypto: &Arc<CryptoProvider>,
    cert: &DtlsCert,
    candidates: &[Candidate],
    (max_slots, max_video_slots, max_share_slots): (usize, usize, usize),
    mode: MediaMode,
) -> Result<Prepared, SfuError> {
    let offer = SdpOffer::from_sdp_string(offer_sdp).map_err(unparsable)?;
    // The microphone's own codecs decide: Opus on a receive slot alone is still no Opus to send.
    if mic_has_opus(offer_sdp) == Some(false) || !has_codec(offer_sdp, "audio ", "opus/48000") {
        return Err(SfuError::NoOpus);
    }
    if offer_sdp.lines().any(|l| l.trim().starts_with("m=video ")) && !has_codec(offer_sdp, "video ", "vp8/90000") {
        return Err(SfuError::NoVp8);
    }
    let (config, ufrag) = base_config(peer, crypto, cert);
    let mut rtc = config
        // Audio is never held back behind a gap: Opus is not retransmitted, so str0m's default
        // window (15 packets) stalled a voice 300 ms at every uplink loss. Forwarded, a packet
        // goes out at once and a late one is dropped (1); mixed, the mixer's own jitter buffer
        // reorders, so late ones are handed over too (0).
        .set_reordering_size_audio(if mode.mixes_audio() { 0 } else { 1 })
        .set_rtcp_report_interval_audio(Duration::from_secs(1))
        .build(Instant::now());
    for c in candidates {
        rtc.add_local_candidate(c.clone());
    }
    let answer = rtc.sdp_api().accept_offer(offer).map_err(unanswerable)?;

    // str0m only emits MediaAdded once media can flow, so read the accepted m-lines back
    // through `Rtc::media`, by the offer's mids, with our (inverted) direction.
    let (mut mic, mut slots, mut camera, mut video_slots) = (None, Vec::new(), None, Vec::new());
    let (mut share, mut share_slots) = (None, Vec::new());
    // Video m-lines the client receives (ours to send) seen so far: a client send m-line after
    // one of them is the screen share, and receive m-lines after the share are share slots.
    let mut receives_video = false;
    for mid in offer_mids(offer_sdp) {
        let Some(m) = rtc.media(mid).filter(|m| !m.disabled()) else { continue };
        let (send, recv) = match m.direction() {
            Direction::RecvOnly => (false, true),
            Direction::SendOnly => (true, false),
            Direction::SendRecv => (true, true),
            _ => continue,
        };
        match m.kind() {
            MediaKind::Audio if recv && mic.is_none() => mic = Some(mid),
            MediaKind::Audio if send && slots.len() < max_slots => slots.push(mid),
            MediaKind::Video if recv && receives_video && share.is_none() => share = Some(mid),
            MediaKind::Video if recv && camera.is_none() && !receives_video => camera = Some(mid),
            MediaKind::Video if send && share.is_some() && share_slots.len() < max_share_slots => share_slots.push(mid),
            MediaKind::Video if send && share.is_some() => {}
            MediaKind::Video if send => {
                receives_video = true;
                if video_slots.len() < max_video_slots {
                    video_slots.push(mid);
                }
            }
            _ => {}
        }
    }
    let mic = mic.ok_or(SfuError::NoSendAudio)?;
    let answer = complete_candidates(&answer.to_sdp_string());
    Ok(Prepared { rtc, ufrag, mic, slots, camera, video_slots, share, share_slots, answer })
}

/// What every peer's `Rtc` shares (room peers, WHIP publishers, WHEP viewers): ICE-lite with our
/// one candidate's credentials, the shared DTLS certificate, Opus and VP8, the capture-time
/// extension, stats every second; and its ufrag, the demux key.
pub(crate) fn base_config(peer: PeerId, crypto: &Arc<CryptoProvider>, cert: &DtlsCert) -> (RtcConfig, String) {
    let mut creds = IceCreds::new();
    // Unique by construction (hex has no 'z'), so two peers can never share a demux key.
    creds.ufrag = format!("{peer:x}z{}", creds.ufrag);
    let ufrag = creds.ufrag.clone();
    let config = Rtc::builder()
        .set_crypto_provider(crypto.clone())
        .set_ice_lite(true)
        .set_local_ice_credentials(creds)
        .set_dtls_cert(cert.clone())
        .clear_codecs()
        .enable_opus(true, false)
        .enable_vp8(true)
        // Forwarded untouched, so receivers can measure end-to-end latency from the capture time.
        .set_extension(7, Extension::AbsoluteCaptureTime)
        .set_stats_interval(Some(Duration::from_secs(1)));
    (config, ufrag)
}

/// The `a=mid` of each m-line, in order.
pub(crate) fn offer_mids(sdp: &str) -> impl Iterator<Item = Mid> + '_ {
    sdp.lines().filter_map(|l| l.trim().strip_prefix("a=mid:")).map(Mid::from)
}
