//! A WHIP publisher (RFC 9725), as OBS or a browser publishes to a live channel: one webrtc-rs peer
//! with a microphone (Opus, a tone) and a camera (VP8, the synthetic camera), its offer posted to
//! `POST /whip/{channel}` with the stream key as a bearer token, the answer applied, and the session
//! ended with `DELETE` on the returned `Location`. And a WHEP viewer: receive-only audio and video,
//! decoded, with capture-time latency per track.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::task::JoinHandle;

use crate::audio_send::{SendControl, spawn_sender};
use crate::capture_time::ABS_CAPTURE_TIME_URI;
use crate::media::{Listener, ReceiveOptions, spawn_av_listeners};
use crate::peer::{Peer, extmap_id};
use crate::video_recv::VideoListener;
use crate::video_send::{CameraControl, CameraOptions, spawn_camera};
use std::sync::atomic::Ordering;

/// A publishing session.
pub struct WhipPublisher {
    pub peer: Peer,
    /// The session's URL (`Location`, made absolute).
    pub location: String,
    pub camera: Arc<CameraControl>,
    tasks: Vec<JoinHandle<()>>,
}

/// What the server said to an offer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub location: Option<String>,
    pub content_type: Option<String>,
    pub body: String,
}

/// Posts `sdp` to `{base}/whip/{channel}` with `key` (none: no Authorization header).
pub async fn post_offer(base: &str, channel: &str, key: Option<&str>, sdp: &str) -> Result<Reply> {
    let mut req = reqwest::Client::new()
        .post(format!("{base}/whip/{channel}"))
        .header("content-type", "application/sdp")
        .body(sdp.to_string());
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    let r = req.send().await.context("posting the WHIP offer")?;
    let header = |name: &str| r.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let (status, location, content_type) = (r.status().as_u16(), header("location"), header("content-type"));
    Ok(Reply { status, location, content_type, body: r.text().await.unwrap_or_default() })
}

impl WhipPublisher {
    /// Publishes `camera` and a `tone_hz` tone to `channel`; returns once ICE and DTLS are up.
    pub async fn publish(
        base: &str,
        channel: &str,
        key: &str,
        camera: CameraOptions,
        tone_hz: Option<f32>,
    ) -> Result<WhipPublisher> {
        let peer = Peer::new().await?;
        let mic = peer.add_mic().await?;
        let cam = peer.add_camera().await?;
        let offer = peer.create_offer().await?;
        let reply = post_offer(base, channel, Some(key), &offer).await?;
        if reply.status != 201 {
            bail!("WHIP offer refused: {} {}", reply.status, reply.body);
        }
        let location = reply.location.context("201 without a Location")?;
        peer.accept_answer(&reply.body).await?;
        peer.wait_connected(Duration::from_secs(10)).await?;
        // Frames carry their capture time when the answer took the extension (webrtc-rs drops
        // packets with one it did not), so WHEP viewers can tell glass-to-glass latency.
        let capture = extmap_id(&reply.body, ABS_CAPTURE_TIME_URI).is_some();
        let ctl = Arc::new(CameraControl::new(camera.colour));
        ctl.capture_time.store(capture, Ordering::Relaxed);
        let send = Arc::new(SendControl::new(tone_hz, None));
        send.capture_time.store(capture, Ordering::Relaxed);
        let tasks = vec![spawn_sender(mic, -12.0, false, send), spawn_camera(cam, camera, ctl.clone())];
        Ok(WhipPublisher { peer, location: format!("{base}{location}"), camera: ctl, tasks })
    }

    /// Ends the session with `DELETE`; the HTTP status.
    pub async fn stop(self) -> Result<u16> {
        let status = reqwest::Client::new().delete(&self.location).send().await?.status().as_u16();
        self.drop_connection().await;
        Ok(status)
    }

    /// Stops sending and closes the peer without telling the WHIP resource (a publisher that drops).
    pub async fn drop_connection(self) {
        for t in &self.tasks {
            t.abort();
        }
        let _ = self.peer.pc.close().await;
    }
}

/// A WHEP viewer, decoding what it receives.
pub struct WhepViewer {
    pub peer: Peer,
    pub location: String,
    pub audio: Arc<Listener>,
    pub video: Arc<VideoListener>,
    task: JoinHandle<()>,
}

impl WhepViewer {
    /// Posts a receive-only offer to `{base}/whep/{channel}` with the watch `token` (none for a
    /// public stream); the HTTP status and body when refused.
    pub async fn watch(base: &str, channel: &str, token: Option<&str>) -> Result<Result<WhepViewer, Reply>> {
        // VP8 and H.264, as browsers offer: a WHIP source is forwarded in its own codec, a stream
        // published over RTMP in H.264.
        let peer = Peer::new_with_h264().await?;
        peer.add_recv_slots(1).await?;
        peer.add_video_recv_slots(1).await?;
        let offer = peer.create_offer().await?;
        let mut req = reqwest::Client::new()
            .post(format!("{base}/whep/{channel}"))
            .header("content-type", "application/sdp")
            .body(offer);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.context("posting the WHEP offer")?;
        let header = |name: &str| r.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        let (status, location, content_type) = (r.status().as_u16(), header("location"), header("content-type"));
        let body = r.text().await.unwrap_or_default();
        if status != 201 {
            return Ok(Err(Reply { status, location, content_type, body }));
        }
        peer.accept_answer(&body).await?;
        peer.wait_connected(Duration::from_secs(10)).await?;
        let audio = Arc::new(Listener::new(ReceiveOptions::default()));
        let video = Arc::new(VideoListener::new(rand::random(), ReceiveOptions::default()));
        let tracks = peer.take_tracks().context("tracks taken already")?;
        let task = spawn_av_listeners(peer.pc.clone(), tracks, audio.clone(), Some(video.clone()));
        let location = format!("{base}{}", location.context("201 without a Location")?);
        Ok(Ok(WhepViewer { peer, location, audio, video, task }))
    }

    /// Ends the session with `DELETE`; the HTTP status.
    pub async fn stop(self) -> Result<u16> {
        let status = reqwest::Client::new().delete(&self.location).send().await?.status().as_u16();
        self.task.abort();
        let _ = self.peer.pc.close().await;
        Ok(status)
    }
}
