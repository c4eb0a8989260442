//! [`VoiceClient`]'s video: its camera (on/off, colour, counters) and what its receive slots show,
//! judged by content: tests wait until a slot's latest decoded picture has the expected colour.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use signaling::protocol::{ClientMsg, Slot};

use crate::VoiceClient;
use crate::picture::{I420, colour_close};
use crate::video_recv::VideoTrackStats;
use crate::video_send::CameraControl;

impl VoiceClient {
    /// Camera on or off as a real client does: tells the server (`camera {on}`) and stops or
    /// resumes the frames (resuming starts with a keyframe).
    pub async fn camera(&self, on: bool) -> Result<()> {
        self.send(ClientMsg::Camera { on }).await?;
        self.camera_ctl.set_on(on);
        Ok(())
    }

    /// Changes the camera's colour from the next frame on.
    pub fn set_camera_colour(&self, rgb: [u8; 3]) {
        self.camera_ctl.set_colour(rgb);
    }

    /// The camera's switches and counters (frames and keyframes sent, keyframe requests received).
    pub fn camera_control(&self) -> &CameraControl {
        &self.camera_ctl
    }

    /// The receive side's video: colour detections.
    pub fn video_listener(&self) -> &crate::video_recv::VideoListener {
        &self.video
    }

    /// VP8 frames handed to webrtc-rs so far.
    pub fn video_frames_sent(&self) -> u64 {
        self.camera_ctl.frames_sent.load(Ordering::Relaxed)
    }

    /// Every remote video track so far, with the user its slot carries per the latest `slots`.
    pub fn video_tracks(&self) -> Vec<VideoTrackStats> {
        let mut tracks = self.video.track_stats();
        for t in &mut tracks {
            t.user_id = t.mid.as_deref().and_then(|mid| self.events.slot(mid)).and_then(|s| s.user_id);
        }
        tracks
    }

    /// The latest picture decoded on receive slot `mid`.
    pub fn latest_picture(&self, mid: &str) -> Option<Arc<I420>> {
        self.video.latest_picture(mid)
    }

    /// The current slot assignment (audio and video), merged from every `slots` message.
    pub fn slots(&self) -> Vec<Slot> {
        self.events.slots()
    }

    /// The video slot (mid) currently carrying `user_id`'s camera (sfu rooms).
    pub fn video_mid_of(&self, user_id: &str) -> Option<String> {
        self.slots()
            .into_iter()
            .find(|s| s.kind == signaling::protocol::SlotKind::Video && s.user_id.as_deref() == Some(user_id))
            .map(|s| s.mid)
    }

    /// The share slot (mid) currently carrying `user_id`'s screen share.
    pub fn share_mid_of(&self, user_id: &str) -> Option<String> {
        self.slots()
            .into_iter()
            .find(|s| s.kind == signaling::protocol::SlotKind::Share && s.user_id.as_deref() == Some(user_id))
            .map(|s| s.mid)
    }

    /// Why the room's video ended, if the server said so (`video_ended`).
    pub fn video_ended(&self) -> Option<String> {
        self.events.video_ended()
    }

    /// Asks the sender of slot `mid` for a keyframe (PLI), as a decoder does after a loss.
    pub async fn request_keyframe(&self, mid: &str) -> Result<()> {
        self.video.request_keyframe(mid).await
    }

    /// Waits until the latest picture of slot `mid` (of any slot, with `None`) satisfies `pred`,
    /// checking every 50 ms; returns the slot and the picture. The error lists what each slot
    /// showed instead.
    pub async fn wait_picture(
        &self,
        mid: Option<&str>,
        mut pred: impl FnMut(&I420) -> bool,
        timeout: Duration,
    ) -> Result<(String, Arc<I420>)> {
        let deadline = Instant::now() + timeout;
        loop {
            for (track_mid, picture) in self.video.latest_pictures() {
                let Some(track_mid) = track_mid else { continue };
                if mid.is_none_or(|m| m == track_mid) && pred(&picture) {
                    return Ok((track_mid, picture));
                }
            }
            if Instant::now() >= deadline {
                bail!("no picture on {} matched within {timeout:?}; seen: {}", mid.unwrap_or("any slot"), self.seen());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until slot `mid` (any slot with `None`) shows `rgb` at its centre, within `tolerance`
    /// per channel.
    pub async fn wait_colour(
        &self,
        mid: Option<&str>,
        rgb: [u8; 3],
        tolerance: u8,
        timeout: Duration,
    ) -> Result<(String, Arc<I420>)> {
        let pred = |p: &I420| p.centre_rgb().is_some_and(|c| colour_close(c, rgb, tolerance));
        self.wait_picture(mid, pred, timeout).await
    }

    /// One line per video track: slot, user, latest picture, counters.
    fn seen(&self) -> String {
        let tracks = self.video_tracks();
        if tracks.is_empty() {
            return "no video track arrived".into();
        }
        let line = |t: &VideoTrackStats| {
            let picture = t.mid.as_deref().and_then(|m| self.latest_picture(m));
            format!(
                "[mid {:?} user {:?}: {:?}; {} packets, {} frames ({} key), {} decoded, {} skipped, {} errors {:?}, {} lost, {} PLIs]",
                t.mid,
                t.user_id,
                picture,
                t.packets,
                t.frames,
                t.keyframes,
                t.decoded,
                t.skipped,
                t.decode_errors,
                t.last_decode_error,
                t.lost,
                t.plis_sent
            )
        };
        tracks.iter().map(line).collect::<Vec<_>>().join(", ")
    }
}
