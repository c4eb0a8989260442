//! [`VoiceClient`]: a synthetic participant joining a confab voice channel the way a real client
//! does, over the network only: `POST /api/channels/{id}/voice`, the voice gateway WebSocket
//! (`hello`, `identify`, `ready`, one `offer`/`answer`), then WebRTC media on UDP. Its camera and
//! received video live in [`voice_video`](crate::voice_video).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use signaling::protocol::{ClientMsg, Id, Participant, RoomMode, ServerMsg};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use webrtc::peer_connection::{RTCPeerConnectionState, RTCStatsReport, StatsSelector};

use crate::audio_send::{SendControl, spawn_sender};
use crate::capture_time::ABS_CAPTURE_TIME_URI;
use crate::events::{Closed, Events};
use crate::grant::{request_grant, ws_url};
use crate::media::{Listener, ReceiveOptions, TrackStats, spawn_av_listeners};
use crate::peer::{Peer, extmap_id};
use crate::socket::{self, Outbox};
use crate::video_recv::VideoListener;
use crate::video_send::{CameraControl, CameraOptions, spawn_camera};

/// How long the `heard` family looks back: 25 frames, enough for Goertzel, short enough to notice
/// a speaker stopping quickly.
pub const HEAR_WINDOW: Duration = Duration::from_millis(500);

/// How a [`VoiceClient`] behaves.
#[derive(Debug, Clone)]
pub struct VoiceOptions {
    /// The tone this participant speaks; `None` sends silence (level 127).
    pub tone_hz: Option<f32>,
    /// Peak level of the tone.
    pub level_dbfs: f32,
    /// Receive slots to offer; `None` takes `ready.audio_slots`, as a real client does. Set it to
    /// test how the server treats an offer with the wrong number of m-lines.
    pub slots: Option<usize>,
    /// Run the 20 ms send loop at all (the sendonly m-line is offered either way).
    pub send: bool,
    /// Publish a camera (a sendonly VP8 m-line and its frames); `None`: no camera m-line.
    pub camera: Option<CameraOptions>,
    /// Receive video slots to offer; `None` takes `ready.video_slots`, `Some(0)` receives no video.
    pub video_slots: Option<usize>,
    /// Share a screen: a second sendonly VP8 m-line after the receive video ones, its frames drawn
    /// as a camera's, and `share {on: true}` once connected; `None`: no share m-line.
    pub share: Option<CameraOptions>,
    /// Receive share slots to offer; `None` takes `ready.share_slots` (none when receiving no
    /// video at all).
    pub share_slots: Option<usize>,
    /// Bound on each network step: HTTP, WebSocket, each awaited message, ICE+DTLS connect.
    pub timeout: Duration,
    /// Decode what arrives, or only count it (load clients); tones and colours to watch for.
    pub receive: ReceiveOptions,
    /// Replay a pre-encoded second of the tone instead of encoding every frame (load clients).
    pub replay_audio: bool,
    /// This sender is a latency probe switching between these two tones (or colours): its
    /// switches are logged for matching against receivers' detections.
    pub probe_tones: Option<[f32; 2]>,
    pub probe_colours: Option<[[u8; 3]; 2]>,
    /// ICE check pacing (webrtc-rs' default, 200 ms, when `None`).
    pub ice_check_interval: Option<Duration>,
}

impl Default for VoiceOptions {
    fn default() -> Self {
        Self {
            tone_hz: None,
            level_dbfs: -20.0,
            slots: None,
            send: true,
            camera: None,
            video_slots: None,
            share: None,
            share_slots: None,
            timeout: Duration::from_secs(10),
            receive: ReceiveOptions::default(),
            replay_audio: false,
            probe_tones: None,
            probe_colours: None,
            ice_check_interval: None,
        }
    }
}

impl VoiceOptions {
    /// Defaults, speaking `hz`.
    pub fn tone(hz: f32) -> Self {
        Self { tone_hz: Some(hz), ..Self::default() }
    }
}

/// What the join established.
#[derive(Debug, Clone)]
pub struct VoiceSession {
    /// The voice token (also what `resume` needs).
    pub token: String,
    pub ws_url: String,
    pub session_id: String,
    pub user_id: Id,
    pub room_id: Id,
    pub mode: RoomMode,
    pub audio_slots: usize,
    /// Receive video m-lines the server allows (what was offered may be fewer).
    pub video_slots: usize,
    /// Receive share m-lines the server allows.
    pub share_slots: usize,
    /// The room as `ready` described it.
    pub participants: Vec<Participant>,
    /// When the voice WebSocket started opening (join time runs from here), when `ready`, the
    /// answer, and ICE+DTLS connected came.
    pub ws_opening_at: Instant,
    pub ready_at: Instant,
    pub answered_at: Option<Instant>,
    pub connected_at: Option<Instant>,
}

/// Aborts its tasks when dropped, so no path out of `join` or the client leaks them.
#[derive(Default)]
struct Tasks(Mutex<Vec<JoinHandle<()>>>);

impl Tasks {
    fn push(&self, task: JoinHandle<()>) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(task);
    }
    fn abort_all(&self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).drain(..).for_each(|t| t.abort());
    }
}

impl Drop for Tasks {
    fn drop(&mut self) {
        self.abort_all();
    }
}

/// A synthetic voice participant. Dropping it tears everything down; [`VoiceClient::close`] does
/// the same politely.
pub struct VoiceClient {
    session: VoiceSession,
    pub(crate) events: Arc<Events>,
    outbox: Outbox,
    peer: Peer,
    send_ctl: Arc<SendControl>,
    listener: Arc<Listener>,
    /// Exists without a camera too (then it only records what was asked).
    pub(crate) camera_ctl: Arc<CameraControl>,
    pub(crate) video: Arc<VideoListener>,
    tasks: Tasks,
    timeout: Duration,
}

impl VoiceClient {
    /// Joins voice channel `channel_id` as the user `bearer_token` belongs to, and returns once
    /// media is connected (ICE + DTLS) and the send loop runs.
    pub async fn join(
        http_base: &str,
        bearer_token: &str,
        channel_id: &str,
        opts: VoiceOptions,
    ) -> Result<VoiceClient> {
        let base = http_base.trim_end_matches('/');
        let grant = request_grant(base, bearer_token, channel_id, opts.timeout).await?;
        let client = Self::join_with_voice_token(&ws_url(base, &grant.endpoint), &grant.token, opts).await?;
        if client.session.room_id != grant.room_id {
            tracing::warn!(
                grant = grant.room_id,
                ready = client.session.room_id,
                "ready names another room than the grant"
            );
        }
        Ok(client)
    }

    /// Joins with a voice token obtained elsewhere (an embedding application mints them without
    /// HTTP), on the voice gateway at `ws_url` (`ws://host:port/voice`).
    pub async fn join_with_voice_token(ws_url: &str, voice_token: &str, opts: VoiceOptions) -> Result<VoiceClient> {
        let ws_opening_at = Instant::now();
        let (ws, heartbeat) = socket::connect(ws_url, opts.timeout).await?;
        let events = Arc::new(Events::default());
        let tasks = Tasks::default();
        let (outbox, socket_task) = socket::spawn(ws, heartbeat, events.clone());
        tasks.push(socket_task);

        outbox.send(&ClientMsg::Identify { token: voice_token.to_string() }).await?;
        let ready =
            events.wait_for(|m| matches!(m, ServerMsg::Ready { .. }), opts.timeout).await.context("awaiting ready")?;
        let ServerMsg::Ready {
            session_id,
            user_id,
            room_id,
            mode,
            audio_slots,
            video_slots,
            share_slots,
            participants,
            ..
        } = ready
        else {
            bail!("awaited ready, got {ready:?}");
        };
        let session = VoiceSession {
            token: voice_token.to_string(),
            ws_url: ws_url.to_string(),
            session_id,
            user_id,
            room_id,
            mode,
            audio_slots,
            video_slots,
            share_slots,
            participants,
            ws_opening_at,
            ready_at: Instant::now(),
            answered_at: None,
            connected_at: None,
        };

        let peer = Peer::build_with(false, opts.ice_check_interval).await?;
        let mut client = VoiceClient {
            session,
            events,
            outbox,
            peer,
            send_ctl: Arc::new(SendControl::new(opts.tone_hz, opts.probe_tones)),
            listener: Arc::new(Listener::new(opts.receive.clone())),
            camera_ctl: Arc::new(
                CameraControl::new(opts.camera.as_ref().map_or([0; 3], |c| c.colour)).with_probe(opts.probe_colours),
            ),
            // Set once the mic exists: its SSRC names our keyframe requests.
            video: Arc::default(),
            tasks,
            timeout: opts.timeout,
        };
        client.negotiate(&opts).await?;
        Ok(client)
    }

    /// Offer (in the protocol's order: mic, audio slots, camera, video slots), answer, connect, then
    /// start speaking, filming and listening.
    async fn negotiate(&mut self, opts: &VoiceOptions) -> Result<()> {
        let mic = self.peer.add_mic().await?;
        self.video = Arc::new(VideoListener::new(mic.ssrc, opts.receive.clone()));
        self.peer.add_recv_slots(opts.slots.unwrap_or(self.session.audio_slots)).await?;
        let camera = match &opts.camera {
            Some(_) => Some(self.peer.add_camera().await?),
            None => None,
        };
        let video_slots = opts.video_slots.unwrap_or(self.session.video_slots);
        self.peer.add_video_recv_slots(video_slots).await?;
        // The share m-line after the receive video ones, then others' shares: the protocol's
        // order. It is offered whenever shares are received (as a browser does: silent until the
        // user shares), since the server tells share slots by their place after it.
        let share_slots = opts.share_slots.unwrap_or(if video_slots == 0 { 0 } else { self.session.share_slots });
        let share = if opts.share.is_some() || share_slots > 0 {
            Some(self.peer.add_sender_video("share").await?)
        } else {
            None
        };
        self.peer.add_video_recv_slots(share_slots).await?;
        if let Some(tracks) = self.peer.take_tracks() {
            let video = Some(self.video.clone());
            self.tasks.push(spawn_av_listeners(self.peer.pc.clone(), tracks, self.listener.clone(), video));
        }
        let offer = self.peer.create_offer().await?;
        tracing::trace!(sdp = %offer, "offer");
        self.send(ClientMsg::Offer { sdp: offer }).await?;
        let reply = self
            .wait_for(|m| matches!(m, ServerMsg::Answer { .. } | ServerMsg::Error { .. }), self.timeout)
            .await
            .context("awaiting the answer")?;
        let answer = match reply {
            ServerMsg::Answer { sdp } => {
                tracing::trace!(%sdp, "answer");
                self.peer.accept_answer(&sdp).await?;
                self.session.answered_at = Some(Instant::now());
                sdp
            }
            other => bail!("the offer was refused: {other:?}"),
        };
        // webrtc-rs drops a packet carrying an extension the answer did not accept, so capture
        // times go out only to a server that negotiated them.
        let capture = extmap_id(&answer, ABS_CAPTURE_TIME_URI).is_some();
        self.send_ctl.capture_time.store(capture, Ordering::Relaxed);
        self.camera_ctl.capture_time.store(capture, Ordering::Relaxed);
        self.peer.wait_connected(self.timeout).await?;
        self.session.connected_at = Some(Instant::now());
        if opts.send {
            self.tasks.push(spawn_sender(mic, opts.level_dbfs, opts.replay_audio, self.send_ctl.clone()));
        }
        if let (Some(camera), Some(camera_opts)) = (camera, &opts.camera) {
            self.tasks.push(spawn_camera(camera, camera_opts.clone(), self.camera_ctl.clone()));
        }
        if let (Some(share), Some(share_opts)) = (share, &opts.share) {
            let ctl = Arc::new(CameraControl::new(share_opts.colour));
            ctl.capture_time.store(capture, Ordering::Relaxed);
            self.tasks.push(spawn_camera(share, share_opts.clone(), ctl));
            self.send(ClientMsg::Share { on: true }).await?;
        }
        Ok(())
    }

    pub fn session(&self) -> &VoiceSession {
        &self.session
    }

    /// Queues a frame for the voice socket.
    pub async fn send(&self, msg: ClientMsg) -> Result<()> {
        self.outbox.send(&msg).await
    }

    /// Sends `text` as is, e.g. malformed JSON or an unknown op.
    pub async fn send_raw_text(&self, text: &str) -> Result<()> {
        self.outbox.raw(Message::text(text)).await
    }

    /// Sends a binary frame (the protocol has none).
    pub async fn send_raw_binary(&self, bytes: Vec<u8>) -> Result<()> {
        self.outbox.raw(Message::binary(bytes)).await
    }

    /// The oldest server message not yet consumed (heartbeat acks are only counted).
    pub async fn next_event(&self, timeout: Duration) -> Result<ServerMsg> {
        self.events.next_event(timeout).await
    }

    /// Removes and returns the oldest message matching `pred`; others stay queued.
    pub async fn wait_for(&self, pred: impl FnMut(&ServerMsg) -> bool, timeout: Duration) -> Result<ServerMsg> {
        self.events.wait_for(pred, timeout).await
    }

    /// The whole event log: pending messages, heartbeat acks, undecodable frames, how it closed.
    pub fn events(&self) -> &Events {
        &self.events
    }

    /// The close code the server ended the voice socket with, once it has.
    pub fn close_code(&self) -> Option<u16> {
        self.events.closed().and_then(|c| c.code)
    }

    pub async fn wait_closed(&self, timeout: Duration) -> Result<Closed> {
        self.events.wait_closed(timeout).await
    }

    /// Self-mute as a real client does: tells the server and stops sending audio.
    pub async fn mute(&self, on: bool) -> Result<()> {
        self.send(ClientMsg::Mute { self_mute: on, self_deaf: false }).await?;
        self.send_ctl.muted.store(on, Ordering::Relaxed);
        Ok(())
    }

    /// Tells the server about the mute but keeps sending audio, to test that the server drops it.
    pub async fn mute_keep_sending(&self, on: bool) -> Result<()> {
        self.send(ClientMsg::Mute { self_mute: on, self_deaf: false }).await
    }

    /// Self-deafen: the server stops sending this client audio (and counts it as muted).
    pub async fn deafen(&self, on: bool) -> Result<()> {
        self.send(ClientMsg::Mute { self_mute: on, self_deaf: on }).await?;
        self.send_ctl.muted.store(on, Ordering::Relaxed);
        Ok(())
    }

    /// Sends silence (level 127) instead of the tone, without telling the server anything.
    pub fn set_silent(&self, on: bool) {
        self.send_ctl.silent.store(on, Ordering::Relaxed);
    }

    /// Sends `leave` and stops sending audio; the server is expected to close the socket.
    pub async fn leave(&self) -> Result<()> {
        self.send_ctl.muted.store(true, Ordering::Relaxed);
        self.send(ClientMsg::Leave {}).await
    }

    /// Closes the socket (1000) and the peer connection, and stops all tasks. Idempotent.
    pub async fn close(&self) -> Result<()> {
        let bye = CloseFrame { code: CloseCode::Normal, reason: "bye".into() };
        if self.outbox.raw(Message::Close(Some(bye))).await.is_ok() {
            // Give the server a moment to answer the close handshake; its code lands in events.
            let _ = self.events.wait_closed(Duration::from_secs(1)).await;
        }
        self.tasks.abort_all();
        self.peer.pc.close().await.context("closing the peer connection")
    }

    /// Tones among `candidates` heard in the last [`HEAR_WINDOW`], over all receive slots.
    pub fn heard(&self, candidates: &[f32]) -> Vec<f32> {
        self.listener.heard_within(candidates, HEAR_WINDOW)
    }

    pub fn heard_within(&self, candidates: &[f32], window: Duration) -> Vec<f32> {
        self.listener.heard_within(candidates, window)
    }

    /// Waits until what is heard (among `candidates`) is exactly `expected`, checking every 100 ms.
    pub async fn wait_heard(&self, candidates: &[f32], expected: &[f32], timeout: Duration) -> Result<()> {
        let mut want = expected.to_vec();
        want.sort_by(f32::total_cmp);
        let deadline = Instant::now() + timeout;
        loop {
            let heard = self.heard(candidates);
            if heard == want {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!("heard {heard:?}, expected {want:?} (after {timeout:?}; tracks {:?})", self.track_stats());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// RTP packets received over all slots.
    pub fn received_packets(&self) -> u64 {
        self.listener.received_packets()
    }

    pub fn track_stats(&self) -> Vec<TrackStats> {
        self.listener.track_stats()
    }

    /// Forgets decoded audio, so `heard` only reflects what arrives from now on.
    pub fn clear_heard(&self) {
        self.listener.clear_audio();
    }

    /// Speaks `hz` (silence with `None`) from the next frame on.
    pub fn set_tone(&self, hz: Option<f32>) {
        self.send_ctl.set_tone(hz);
    }

    /// The microphone's switches, counters and its log of probe-tone switches.
    pub fn send_control(&self) -> &SendControl {
        &self.send_ctl
    }

    /// The receive side's audio: first decoded frame, tone detections.
    pub fn audio_listener(&self) -> &Listener {
        &self.listener
    }

    /// Starts a measurement window on the receive side: latency samples and detections so far
    /// are forgotten.
    pub fn reset_window(&self) {
        self.listener.reset_window();
        self.video.reset_window();
    }

    /// 20 ms frames handed to webrtc-rs so far.
    pub fn frames_sent(&self) -> u64 {
        self.send_ctl.frames_sent.load(Ordering::Relaxed)
    }

    pub fn connection_state(&self) -> RTCPeerConnectionState {
        self.peer.connection_state()
    }

    /// webrtc-rs' own statistics (inbound/outbound RTP, candidate pair, transport).
    pub async fn stats(&self) -> RTCStatsReport {
        self.peer.pc.get_stats(Instant::now(), StatsSelector::None).await
    }
}

impl Drop for VoiceClient {
    fn drop(&mut self) {
        // The driver would otherwise keep the UDP socket open; close() is async, so hand it off.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let pc = self.peer.pc.clone();
            rt.spawn(async move {
                let _ = pc.close().await;
            });
        }
    }
}
