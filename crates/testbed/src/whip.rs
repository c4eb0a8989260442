//! A WHIP publisher (RFC 9725), as OBS or a browser publishes to a live channel: one webrtc-rs peer
//! with a microphone (Opus, a tone) and a camera (VP8, the synthetic camera), its offer posted to
//! `POST /whip/{channel}` with the stream key as a bearer token, the answer applied, and the session
//! ended with `DELETE` on the returned `Location`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::task::JoinHandle;

use crate::audio_send::{SendControl, spawn_sender};
use crate::peer::Peer;
use crate::video_send::{CameraControl, CameraOptions, spawn_camera};

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
        let ctl = Arc::new(CameraControl::new(camera.colour));
        let tasks = vec![
            spawn_sender(mic, -12.0, false, Arc::new(SendControl::new(tone_hz, None))),
            spawn_camera(cam, camera, ctl.clone()),
        ];
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
