//! webrtc-rs 0.21 set-up: one loopback `PeerConnection` with Opus (and the RFC 6464 audio-level
//! extension) and VP8 (NACK, PLI, FIR feedback, keyframe requests passed up by [`KeyframeRequests`]),
//! its events turned into watch channels, and the offer/answer steps (non-trickle: every
//! description carries all candidates, as the voice gateway exchanges exactly one offer and answer).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_OPUS, MIME_TYPE_VP8};
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters,
    RTCRtpHeaderExtensionCapability, RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use tokio::sync::{mpsc, watch};
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCConfigurationBuilder,
    RTCIceGatheringState, RTCPeerConnectionState, RTCSessionDescription, Registry, SettingEngineBuilder,
    register_default_interceptors,
};
use webrtc::rtp_transceiver::RtpTransceiver;

use crate::capture_time::ABS_CAPTURE_TIME_URI;
use crate::feedback::{KEYFRAME_REQUESTS_SLOT, KeyframeRequests};

/// The RFC 6464 client-to-mixer audio level extension.
pub const AUDIO_LEVEL_URI: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";
/// The payload type we offer for Opus (the common choice; str0m and browsers use it too).
const OPUS_PT: u8 = 111;
/// The payload type we offer for VP8 (what browsers and str0m's defaults use).
const VP8_PT: u8 = 96;
/// The payload type WHEP viewers offer for H.264 (packetization mode 1, as browsers offer it).
pub const H264_PT: u8 = 102;
/// Remote tracks not yet picked up by the receive side; more than any room has slots.
const TRACK_QUEUE: usize = 256;
/// Host candidates on loopback gather in milliseconds; this only bounds a broken stack.
const GATHER_TIMEOUT: Duration = Duration::from_secs(5);

fn opus_codec() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_OPUS.to_owned(),
        clock_rate: 48_000,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
        rtcp_feedback: vec![],
    }
}

fn h264_codec() -> RTCRtpCodec {
    let fb = |typ: &str, parameter: &str| RTCPFeedback { typ: typ.to_owned(), parameter: parameter.to_owned() };
    RTCRtpCodec {
        mime_type: "video/H264".to_owned(),
        clock_rate: 90_000,
        channels: 0,
        sdp_fmtp_line: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=4d001f".to_owned(),
        rtcp_feedback: vec![fb("nack", ""), fb("nack", "pli")],
    }
}

fn vp8_codec() -> RTCRtpCodec {
    let fb = |typ: &str, parameter: &str| RTCPFeedback { typ: typ.to_owned(), parameter: parameter.to_owned() };
    RTCRtpCodec {
        mime_type: MIME_TYPE_VP8.to_owned(),
        clock_rate: 90_000,
        channels: 0,
        sdp_fmtp_line: String::new(),
        rtcp_feedback: vec![fb("nack", ""), fb("nack", "pli"), fb("ccm", "fir")],
    }
}

/// Forwards driver events into channels. Its methods run inside the connection's driver loop, so
/// they only ever do a non-blocking send.
struct Handler {
    state: watch::Sender<RTCPeerConnectionState>,
    gathering: watch::Sender<RTCIceGatheringState>,
    tracks: mpsc::Sender<Arc<dyn TrackRemote>>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        self.gathering.send_replace(state);
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        self.state.send_replace(state);
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        if self.tracks.try_send(track).is_err() {
            tracing::warn!("remote track dropped: receive side gone or too many tracks");
        }
    }
}

/// A sending track on a sendonly transceiver, with the SSRC we chose for it.
pub struct LocalTrack {
    pub track: Arc<TrackLocalStaticSample>,
    pub ssrc: u32,
    mime_type: &'static str,
    transceiver: Arc<dyn RtpTransceiver>,
}

/// The microphone: Opus.
pub type Mic = LocalTrack;
/// The camera: VP8.
pub type Camera = LocalTrack;

impl LocalTrack {
    /// A ticker for this track's frames, offset within the first `period` by its SSRC: devices'
    /// capture clocks are independent, so a host's many clients must not send in lockstep (joined
    /// at a steady rate, they otherwise share a handful of phases and reach the server in bursts).
    pub fn frame_ticker(&self, period: Duration) -> tokio::time::Interval {
        let spread = u64::from(self.ssrc).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
        let offset = period.mul_f64(spread as f64 / f64::from(u32::MAX));
        tokio::time::interval_at(tokio::time::Instant::now() + offset, period)
    }

    /// The payload type negotiated for the track's codec; known only once negotiation completed.
    pub async fn payload_type(&self) -> Result<u8> {
        let sender = self.transceiver.sender().await?.context("transceiver has no sender")?;
        let params = sender.get_parameters().await.context("reading the send parameters")?;
        params
            .rtp_parameters
            .codecs
            .iter()
            .find(|c| c.rtp_codec.mime_type.eq_ignore_ascii_case(self.mime_type))
            .map(|c| c.payload_type)
            .ok_or_else(|| anyhow!("{} was not negotiated for this sender", self.mime_type))
    }
}

/// A peer connection bound to 127.0.0.1, plus its state and incoming tracks.
pub struct Peer {
    pub pc: Arc<dyn PeerConnection>,
    state: watch::Receiver<RTCPeerConnectionState>,
    gathering: watch::Receiver<RTCIceGatheringState>,
    tracks: Mutex<Option<mpsc::Receiver<Arc<dyn TrackRemote>>>>,
}

impl Peer {
    /// A full-ICE peer, as clients are. Must run inside a tokio runtime: webrtc-rs spawns its
    /// driver with `tokio::spawn`.
    pub async fn new() -> Result<Peer> {
        Self::build(false).await
    }

    /// `ice_lite` makes it answer the way an SFU does (interop tests of the client side).
    pub async fn build(ice_lite: bool) -> Result<Peer> {
        Self::build_with(ice_lite, None).await
    }

    /// As [`Peer::build`], pacing ICE connectivity checks every `check_interval` instead of
    /// webrtc-rs' 200 ms (whose first check waits a whole interval), as browsers' ~50 ms pacing
    /// does; the attempts per candidate grow to keep ~2 s before giving up.
    pub async fn build_with(ice_lite: bool, check_interval: Option<Duration>) -> Result<Peer> {
        Self::build_full(ice_lite, check_interval, false).await
    }

    /// A viewer that also takes H.264 (a live stream transcoded from RTMP is sent in it).
    pub async fn new_with_h264() -> Result<Peer> {
        Self::build_full(false, None, true).await
    }

    async fn build_full(ice_lite: bool, check_interval: Option<Duration>, h264: bool) -> Result<Peer> {
        let mut media = MediaEngine::default();
        media.register_codec(
            RTCRtpCodecParameters { rtp_codec: opus_codec(), payload_type: OPUS_PT },
            RtpCodecKind::Audio,
        )?;
        media.register_codec(
            RTCRtpCodecParameters { rtp_codec: vp8_codec(), payload_type: VP8_PT },
            RtpCodecKind::Video,
        )?;
        if h264 {
            media.register_codec(
                RTCRtpCodecParameters { rtp_codec: h264_codec(), payload_type: H264_PT },
                RtpCodecKind::Video,
            )?;
        }
        // Without this the extension is neither offered nor written: SampleWriter skips it silently.
        media.register_header_extension(
            RTCRtpHeaderExtensionCapability { uri: AUDIO_LEVEL_URI.to_owned() },
            RtpCodecKind::Audio,
            None,
        )?;
        // Capture times on every frame sent, so receivers can tell end-to-end latency.
        for kind in [RtpCodecKind::Audio, RtpCodecKind::Video] {
            let uri = ABS_CAPTURE_TIME_URI.to_owned();
            media.register_header_extension(RTCRtpHeaderExtensionCapability { uri }, kind, None)?;
        }
        // After register_codec: it adds NACK/TWCC feedback only to codecs already registered.
        let registry = register_default_interceptors(Registry::new(), &mut media)?
            .with(KEYFRAME_REQUESTS_SLOT, KeyframeRequests::default());

        let mut settings = SettingEngineBuilder::new().with_lite(ice_lite);
        if let Some(every) = check_interval.filter(|d| !d.is_zero()) {
            let attempts = (Duration::from_secs(2).as_millis() / every.as_millis().max(1)).clamp(7, 400) as u16;
            settings = settings.with_ice_connection_attempts(Some(every), Some(attempts));
        }
        let (state_tx, state) = watch::channel(RTCPeerConnectionState::New);
        let (gathering_tx, gathering) = watch::channel(RTCIceGatheringState::New);
        let (tracks_tx, tracks) = mpsc::channel(TRACK_QUEUE);
        let handler = Handler { state: state_tx, gathering: gathering_tx, tracks: tracks_tx };
        let pc = PeerConnectionBuilder::new()
            .with_configuration(RTCConfigurationBuilder::new().build())
            .with_setting_engine(settings.build())
            .with_media_engine(media)
            .with_interceptor_registry(registry)
            .with_handler(Arc::new(handler))
            // A wildcard would be expanded to interfaces *minus* loopback; the server is on loopback.
            .with_udp_addrs(vec!["127.0.0.1:0"])
            .build()
            .await
            .context("building the peer connection")?;
        Ok(Peer { pc: Arc::new(pc), state, gathering, tracks: Mutex::new(Some(tracks)) })
    }

    /// Adds the microphone: a sendonly Opus transceiver with an SSRC of our choosing.
    pub async fn add_mic(&self) -> Result<Mic> {
        self.add_sender("mic", RtpCodecKind::Audio, opus_codec(), MIME_TYPE_OPUS).await
    }

    /// Adds the camera: a sendonly VP8 transceiver with an SSRC of our choosing.
    pub async fn add_camera(&self) -> Result<Camera> {
        self.add_sender("camera", RtpCodecKind::Video, vp8_codec(), MIME_TYPE_VP8).await
    }

    /// Another sendonly VP8 m-line (a screen share), named `name`.
    pub async fn add_sender_video(&self, name: &str) -> Result<Camera> {
        self.add_sender(name, RtpCodecKind::Video, vp8_codec(), MIME_TYPE_VP8).await
    }

    async fn add_sender(
        &self,
        name: &str,
        kind: RtpCodecKind,
        codec: RTCRtpCodec,
        mime_type: &'static str,
    ) -> Result<LocalTrack> {
        let ssrc: u32 = rand::random();
        let encoding = RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters { ssrc: Some(ssrc), ..Default::default() },
            codec,
            active: true,
            ..Default::default()
        };
        // Track ids must be unique on the connection: webrtc-rs routes feedback by track id.
        let id = format!("{name}-{ssrc:08x}");
        let track = MediaStreamTrack::new(id.clone(), id.clone(), id, kind, vec![encoding]);
        let track = Arc::new(TrackLocalStaticSample::new(Instant::now(), track)?);
        // Not add_track: that makes a sendrecv transceiver, which the server would answer sendrecv.
        let init = RTCRtpTransceiverInit { direction: RTCRtpTransceiverDirection::Sendonly, ..Default::default() };
        let transceiver = self
            .pc
            .add_transceiver_from_track(track.clone() as Arc<dyn TrackLocal>, Some(init))
            .await
            .with_context(|| format!("adding the {name} transceiver"))?;
        Ok(LocalTrack { track, ssrc, mime_type, transceiver })
    }

    /// Adds `n` recvonly audio transceivers: the slots the server writes other speakers into.
    pub async fn add_recv_slots(&self, n: usize) -> Result<()> {
        self.add_recv(RtpCodecKind::Audio, n).await
    }

    /// Adds `n` recvonly video transceivers: the slots for other cameras or the composite.
    pub async fn add_video_recv_slots(&self, n: usize) -> Result<()> {
        self.add_recv(RtpCodecKind::Video, n).await
    }

    async fn add_recv(&self, kind: RtpCodecKind, n: usize) -> Result<()> {
        for _ in 0..n {
            let init = RTCRtpTransceiverInit { direction: RTCRtpTransceiverDirection::Recvonly, ..Default::default() };
            self.pc.add_transceiver_from_kind(kind, Some(init)).await.context("adding a receive slot")?;
        }
        Ok(())
    }

    /// Creates and applies the offer, then returns it once ICE gathering completed.
    pub async fn create_offer(&self) -> Result<String> {
        let offer = self.pc.create_offer(None).await.context("create_offer")?;
        self.pc.set_local_description(offer).await.context("set_local_description(offer)")?;
        self.gathered_local_sdp().await
    }

    pub async fn accept_answer(&self, sdp: &str) -> Result<()> {
        let answer = RTCSessionDescription::answer(sdp.to_owned()).context("parsing the answer")?;
        self.pc.set_remote_description(answer).await.context("set_remote_description(answer)")
    }

    /// The answering side (loopback tests): applies `offer`, returns the complete answer.
    pub async fn answer(&self, offer: &str) -> Result<String> {
        let offer = RTCSessionDescription::offer(offer.to_owned()).context("parsing the offer")?;
        self.pc.set_remote_description(offer).await.context("set_remote_description(offer)")?;
        let answer = self.pc.create_answer(None).await.context("create_answer")?;
        self.pc.set_local_description(answer).await.context("set_local_description(answer)")?;
        self.gathered_local_sdp().await
    }

    async fn gathered_local_sdp(&self) -> Result<String> {
        let mut gathering = self.gathering.clone();
        tokio::time::timeout(GATHER_TIMEOUT, gathering.wait_for(|s| *s == RTCIceGatheringState::Complete))
            .await
            .context("ICE gathering did not complete")?
            .context("peer connection gone while gathering")?;
        Ok(self.pc.local_description().await.context("no local description after gathering")?.sdp)
    }

    /// Waits for DTLS+ICE to connect; fails early if the connection fails or closes.
    pub async fn wait_connected(&self, timeout: Duration) -> Result<()> {
        let mut state = self.state.clone();
        let done = |s: &RTCPeerConnectionState| {
            matches!(
                s,
                RTCPeerConnectionState::Connected | RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed
            )
        };
        let reached = tokio::time::timeout(timeout, state.wait_for(done))
            .await
            .with_context(|| format!("not connected within {timeout:?} (state {})", *self.state.borrow()))?
            .context("peer connection gone")?;
        match *reached {
            RTCPeerConnectionState::Connected => Ok(()),
            other => bail!("peer connection {other} before connecting"),
        }
    }

    pub fn connection_state(&self) -> RTCPeerConnectionState {
        *self.state.borrow()
    }

    /// The stream of remote tracks (`on_track` fires on a track's first RTP packet); taken once.
    pub fn take_tracks(&self) -> Option<mpsc::Receiver<Arc<dyn TrackRemote>>> {
        self.tracks.lock().ok()?.take()
    }
}

/// The id a description's `a=extmap` lines give `uri` (also matches `a=extmap:N/direction uri`).
pub fn extmap_id(sdp: &str, uri: &str) -> Option<u8> {
    sdp.lines().find_map(|line| {
        let rest = line.trim_end().strip_prefix("a=extmap:")?;
        let (id, rest) = rest.split_once(' ')?;
        let ext_uri = rest.split_whitespace().next()?;
        (ext_uri == uri).then_some(())?;
        id.split('/').next()?.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extmap_parsing() {
        let sdp =
            "v=0\r\na=extmap:3 http://x\r\na=extmap:1/recvonly urn:ietf:params:rtp-hdrext:ssrc-audio-level vad=on\r\n";
        assert_eq!(extmap_id(sdp, AUDIO_LEVEL_URI), Some(1));
        assert_eq!(extmap_id(sdp, "http://x"), Some(3));
        assert_eq!(extmap_id(sdp, "urn:nope"), None);
        assert_eq!(extmap_id("a=extmap:x urn:ietf:params:rtp-hdrext:ssrc-audio-level", AUDIO_LEVEL_URI), None);
    }
}
