//! Ingest peers: a publisher (WHIP, RFC 9725) that only sends, in no room. Its frames are not
//! forwarded to anyone in the engine; they go, as they are depacketised, to an [`IngestSink`]
//! the caller supplies (live streaming turns them into HLS). The engine treats the peer like any
//! other for ICE, DTLS, timeouts and keyframe requests ([`crate::Sfu::request_keyframe`]).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Instant;

use str0m::Candidate;
use str0m::change::SdpOffer;
use str0m::config::{CryptoProvider, DtlsCert};
use str0m::format::Codec;
use str0m::media::{Direction, MediaData, MediaKind, Mid};

use crate::offer::{Prepared, base_config, offer_mids};
use crate::sdp_text::{complete_candidates, has_codec};
use crate::{GoneReason, PeerId, RoomId, SfuError};

/// The room every ingest peer is filed under in stats: none (rooms are channel ids, which never
/// reach `u64::MAX`).
pub const INGEST_ROOM: RoomId = u64::MAX;

/// The video codecs an ingest takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestCodec {
    Vp8,
    /// Annex B (start codes), as str0m depacketises it.
    H264,
}

/// What an ingest peer delivers, in order.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum IngestMedia {
    /// ICE and DTLS are up.
    Connected,
    /// One Opus packet; `media_us` is its RTP time in microseconds (an arbitrary origin).
    Audio { data: Arc<[u8]>, media_us: u64, arrived: Instant },
    /// One depacketised frame. `contiguous` is false when frames were lost before it.
    Video { codec: IngestCodec, data: Arc<[u8]>, keyframe: bool, contiguous: bool, media_us: u64, arrived: Instant },
    /// The peer is gone (no more media follows); not sent after [`crate::Sfu::remove_peer`].
    Gone(GoneReason),
}

/// Where an ingest peer's media goes. Called on the engine's thread: it must not block.
pub type IngestSink = Box<dyn Fn(IngestMedia) + Send + Sync>;

/// The media of one received frame, if it is of a codec the ingest takes.
pub(crate) fn media(d: &MediaData) -> Option<IngestMedia> {
    let (media_us, arrived, data) = (d.time.as_micros(), d.network_time, d.data.clone());
    let codec = match d.params.spec().codec {
        Codec::Opus => return Some(IngestMedia::Audio { data, media_us, arrived }),
        Codec::Vp8 => IngestCodec::Vp8,
        Codec::H264 => IngestCodec::H264,
        _ => return None,
    };
    let keyframe = d.is_keyframe();
    Some(IngestMedia::Video { codec, data, keyframe, contiguous: d.contiguous, media_us, arrived })
}

/// A publisher's offer: one sending audio m-line (Opus) and one sending video m-line (VP8 or
/// H.264, the offer's preference order), both received here; anything else is rejected.
/// `viewer`: a WHEP viewer's offer instead, whose m-lines receive (we send).
pub(crate) fn prepare(
    peer: PeerId,
    offer_sdp: &str,
    crypto: &Arc<CryptoProvider>,
    cert: &DtlsCert,
    candidates: &[Candidate],
    viewer: bool,
) -> Result<Prepared, SfuError> {
    // The SDP parser is third-party code fed by the network: a panic in it rejects this offer only.
    catch_unwind(AssertUnwindSafe(|| prepare_inner(peer, offer_sdp, crypto, cert, candidates, viewer)))
        .unwrap_or_else(|_| Err(SfuError::BadSdp("the offer could not be processed".into())))
}

fn prepare_inner(
    peer: PeerId,
    offer_sdp: &str,
    crypto: &Arc<CryptoProvider>,
    cert: &DtlsCert,
    candidates: &[Candidate],
    viewer: bool,
) -> Result<Prepared, SfuError> {
    let offer = SdpOffer::from_sdp_string(offer_sdp).map_err(crate::offer::unparsable)?;
    if !offer_sdp.lines().any(|l| l.trim().starts_with("m=video ")) {
        return Err(SfuError::NoVideo);
    }
    if !has_codec(offer_sdp, "video ", "vp8/90000") && !has_codec(offer_sdp, "video ", "h264/90000") {
        return Err(SfuError::NoVp8);
    }
    if offer_sdp.lines().any(|l| l.trim().starts_with("m=audio ")) && !has_codec(offer_sdp, "audio ", "opus/48000") {
        return Err(SfuError::NoOpus);
    }
    let (config, ufrag) = base_config(peer, crypto, cert);
    let mut rtc = config.enable_h264(true).build(Instant::now());
    for c in candidates {
        rtc.add_local_candidate(c.clone());
    }
    let answer = rtc.sdp_api().accept_offer(offer).map_err(crate::offer::unanswerable)?;
    let (mut audio, mut video) = (None, None);
    for mid in offer_mids(offer_sdp) {
        let Some(m) = rtc.media(mid).filter(|m| !m.disabled()) else { continue };
        let ours = if viewer { Direction::SendOnly } else { Direction::RecvOnly };
        if m.direction() != ours && m.direction() != Direction::SendRecv {
            continue;
        }
        match m.kind() {
            MediaKind::Audio if audio.is_none() => audio = Some(mid),
            MediaKind::Video if video.is_none() => video = Some(mid),
            _ => {}
        }
    }
    let video: Mid = video.ok_or(SfuError::NoVideo)?;
    let answer = complete_candidates(&answer.to_sdp_string());
    if viewer {
        // A viewer sends nothing: its "microphone" is never matched.
        let slots = audio.into_iter().collect();
        return Ok(Prepared {
            rtc,
            ufrag,
            mic: video,
            slots,
            camera: None,
            video_slots: vec![video],
            share: None,
            share_slots: Vec::new(),
            answer,
        });
    }
    // Without audio, the "microphone" is the video m-line: both go to the sink anyway.
    let mic = audio.unwrap_or(video);
    Ok(Prepared {
        rtc,
        ufrag,
        mic,
        slots: Vec::new(),
        camera: Some(video),
        video_slots: Vec::new(),
        share: None,
        share_slots: Vec::new(),
        answer,
    })
}
