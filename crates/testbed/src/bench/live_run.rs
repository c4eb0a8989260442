//! One live-streaming step: ffmpeg publishes a synthetic source over RTMP (or the testbed's
//! WebRTC client over WHIP) to a fresh server (a live channel and its key made over the API) and
//! the testbed watches the LL-HLS output like a player: how long until the master playlist is
//! playable, how late each part arrives, and what the server's CPU pays for the transcode ladder.
//!
//! Latency from the timestamps carried in the stream: ffmpeg (`-re`) stamps a frame captured t ms
//! after it started with RTMP timestamp t, which confab keeps as the media time; over WHIP, confab
//! times a frame by its arrival since the session's first media, so "start" is when the peer
//! connected (the WebRTC client's encode time is not counted). For each new part (fetched as soon
//! as a blocking playlist reload says it exists) the delay is now − (start + the part's first
//! decode time). A player adds its hold-back (three parts) on top.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use indicatif::ProgressBar;
use serde_json::json;

use super::api::{Api, run_tag};
use super::procstat::{Sampler, figures};
use super::results::{Dist, LiveStep};
use super::scenario::{Ingest, LiveSweep};
use super::server::Target;
use crate::hist::Histogram;
use crate::video_send::CameraOptions;
use crate::whip::{WhepViewer, WhipPublisher};

fn ffmpeg(url: &str, s: &LiveSweep) -> Result<Child> {
    let size = format!("testsrc2=size={}x{}:rate={}", s.width, s.height, s.fps);
    Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi", "-i", &size])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", &s.duration_secs.to_string(), "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency"])
        .args([
            "-g",
            &(s.fps * 2).to_string(),
            "-b:v",
            &format!("{}k", s.bitrate_kbps),
            "-c:a",
            "aac",
            "-f",
            "flv",
            url,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting ffmpeg (apt-get install ffmpeg)")
}

enum Publisher {
    Rtmp(Child),
    Whip(WhipPublisher),
}

impl Publisher {
    /// Lets ffmpeg finish its stream; ends the WHIP session.
    async fn finish(self) {
        match self {
            Publisher::Rtmp(mut c) => {
                let _ = tokio::task::spawn_blocking(move || c.wait()).await;
            }
            Publisher::Whip(p) => {
                let _ = p.stop().await;
            }
        }
    }

    async fn stop(self) {
        match self {
            Publisher::Rtmp(mut c) => {
                let _ = c.kill();
            }
            Publisher::Whip(p) => {
                let _ = p.stop().await;
            }
        }
    }
}

/// The base decode time (ms, at 90 kHz) of track 1's run in a `moof` + `mdat` part.
pub fn first_video_ms(part: &[u8]) -> Option<u64> {
    let moof = child(part, b"moof")?;
    let mut at = 0;
    while let Some((kind, body, next)) = walk(moof, at) {
        if kind == b"traf" {
            let track =
                child(body, b"tfhd").and_then(|b| b.get(4..8)).map(|t| u32::from_be_bytes([t[0], t[1], t[2], t[3]]));
            let tfdt = child(body, b"tfdt")?;
            let time = if tfdt[0] == 1 {
                u64::from_be_bytes(tfdt.get(4..12)?.try_into().ok()?)
            } else {
                u64::from(u32::from_be_bytes(tfdt.get(4..8)?.try_into().ok()?))
            };
            if track == Some(1) {
                return Some(time / 90);
            }
        }
        at = next;
    }
    None
}

/// The box at byte `at`: (kind, body, where the next one starts).
fn walk(buf: &[u8], at: usize) -> Option<(&[u8], &[u8], usize)> {
    let size = u32::from_be_bytes(buf.get(at..at + 4)?.try_into().ok()?) as usize;
    let end = at.checked_add(size).filter(|e| *e <= buf.len() && size >= 8)?;
    Some((&buf[at + 4..at + 8], &buf[at + 8..end], end))
}

fn child<'a>(buf: &'a [u8], kind: &[u8; 4]) -> Option<&'a [u8]> {
    let mut at = 0;
    while let Some((k, body, next)) = walk(buf, at) {
        if k == kind {
            return Some(body);
        }
        at = next;
    }
    None
}

pub async fn run_step(target: &Target, sweep: &LiveSweep, pb: &ProgressBar) -> Result<LiveStep> {
    let server = target.start()?;
    let api = Api::new(&server.base)?;
    let owner = api.signup(&format!("live{}", run_tag())).await?;
    let g = api.post("/api/guilds", Some(&owner.token), json!({"name": "live"})).await?;
    let guild = g["guild"]["id"].as_str().context("no guild id")?;
    let ch = api
        .post(&format!("/api/guilds/{guild}/channels"), Some(&owner.token), json!({"name": "stage", "kind": "live"}))
        .await?;
    let channel = ch["id"].as_str().context("no channel id")?.to_string();
    let key = api.post(&format!("/api/channels/{channel}/stream-key"), Some(&owner.token), json!({})).await?;
    let url = key["rtmp_url"].as_str().unwrap_or_default().to_string();
    let stream_key = key["stream_key"].as_str().context("no stream key")?.to_string();

    pb.set_message(format!(
        "live {}: publishing {}x{}@{} over {:?}",
        sweep.name, sweep.width, sweep.height, sweep.fps, sweep.protocol
    ));
    let http = api.http().clone();
    // Members watch with the stream's watch token, carried in every URL (`?a=`).
    let state = api.get(&format!("/api/channels/{channel}/stream"), Some(&owner.token)).await?;
    let a = state["watch_token"].as_str().context("no watch token")?.to_string();
    let master_url = format!("{}/live/{channel}/index.m3u8?a={a}", server.base);
    let sampler = server.pid.map(Sampler::start);
    let mut started = Instant::now();
    let publisher = match sweep.protocol {
        Ingest::Rtmp if url.is_empty() => bail!("the server takes no RTMP"),
        Ingest::Rtmp => Publisher::Rtmp(ffmpeg(&url, sweep)?),
        Ingest::Whip => {
            let camera = CameraOptions {
                width: sweep.width,
                height: sweep.height,
                fps: sweep.fps,
                bitrate_kbps: sweep.bitrate_kbps,
                noise: 0.3,
                keyframe_interval: Duration::from_secs(3600),
                ..CameraOptions::default()
            };
            let p = WhipPublisher::publish(&server.base, &channel, &stream_key, camera, Some(440.0)).await?;
            started = Instant::now();
            Publisher::Whip(p)
        }
    };
    let mut first_playable = None;
    while first_playable.is_none() {
        if started.elapsed() > Duration::from_secs(20) {
            publisher.stop().await;
            bail!("no playable master playlist 20 s after publishing started");
        }
        if http.get(&master_url).send().await.is_ok_and(|r| r.status().is_success()) {
            first_playable = Some(started.elapsed());
        } else {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // The source plays first; the ladder's renditions join once their first parts are cut: the
    // list is read until it has not grown for 2 s (bounded by a third of the stream).
    let mut renditions: Vec<String> = Vec::new();
    let (listed, mut grew) = (Instant::now(), Instant::now());
    let bound = Duration::from_secs_f64((sweep.duration_secs / 3.0).min(10.0));
    let mut ladder_ready = None;
    while listed.elapsed() < bound && (renditions.len() < 2 || grew.elapsed() < Duration::from_secs(2)) {
        let master = http.get(&master_url).send().await?.text().await?;
        let now: Vec<String> = master
            .lines()
            .filter_map(|l| l.split('?').next().filter(|u| u.ends_with("/index.m3u8")))
            .map(|l| l.trim_end_matches("/index.m3u8").to_string())
            .collect();
        if now.len() > renditions.len() {
            (renditions, grew) = (now, Instant::now());
            ladder_ready = Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The lowest-latency path a player takes: the top transcoded rendition (or the source).
    let watched = renditions.iter().find(|r| *r != "source").or(renditions.first()).cloned().context("no rendition")?;
    let media = format!("{}/live/{channel}/{watched}", server.base);

    // Over WHIP, a WHEP viewer watches too: the publisher's frames with their capture time.
    let whep = match sweep.protocol {
        Ingest::Whip => match WhepViewer::watch(&server.base, &channel, Some(&a)).await? {
            Ok(v) => Some(v),
            Err(r) => bail!("WHEP refused: {} {}", r.status, r.body),
        },
        Ingest::Rtmp => None,
    };
    pb.set_message(format!("live {}: watching {watched}", sweep.name));
    let (mut latency, mut parts) = (Histogram::default(), 0u64);
    let playlist = http.get(format!("{media}/index.m3u8?a={a}")).send().await?.text().await?;
    let mut next = hint(&playlist).context("no preload hint")?;
    let window_start = Instant::now();
    let end = started + Duration::from_secs_f64(sweep.duration_secs);
    while Instant::now() < end {
        let (msn, i) = next;
        let r = http.get(format!("{media}/index.m3u8?a={a}&_HLS_msn={msn}&_HLS_part={i}")).send().await?;
        let text = r.text().await?;
        if text.contains("#EXT-X-ENDLIST") {
            break;
        }
        let part = http.get(format!("{media}/part{msn}.{i}.m4s?a={a}")).send().await?;
        if !part.status().is_success() {
            next = hint(&text).unwrap_or((msn, i + 1));
            continue;
        }
        let body = part.bytes().await?;
        let arrived = started.elapsed();
        if let Some(ms) = first_video_ms(&body) {
            latency.record(arrived.saturating_sub(Duration::from_millis(ms)));
            parts += 1;
        }
        next = hint(&text).filter(|h| *h > (msn, i)).unwrap_or((msn, i + 1));
    }
    let window_end = Instant::now();
    let whep_latency = match whep {
        Some(v) => {
            let mut all = Histogram::default();
            v.video.track_stats().iter().for_each(|t| all.merge(&t.latency));
            let _ = v.stop().await;
            Some(Dist::from(&all))
        }
        None => None,
    };
    publisher.finish().await;
    let server_cpu = figures(&sampler.as_ref().map(|s| s.window(window_start, window_end)).unwrap_or_default());
    Ok(LiveStep {
        sweep: sweep.name.clone(),
        source: format!(
            "{}x{}@{} over {}",
            sweep.width,
            sweep.height,
            sweep.fps,
            if sweep.protocol == Ingest::Whip { "WHIP" } else { "RTMP" }
        ),
        renditions,
        watched,
        first_playable_secs: first_playable.map_or(0.0, |d| d.as_secs_f64()),
        all_renditions_secs: ladder_ready.map_or(0.0, |d| d.as_secs_f64()),
        parts,
        part_latency: Dist::from(&latency),
        whep_latency,
        server: server_cpu,
    })
}

/// The part a preload hint names: (MSN, index).
fn hint(playlist: &str) -> Option<(u64, usize)> {
    let uri = playlist.lines().find_map(|l| l.strip_prefix("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part"))?;
    let (msn, i) = uri.split(".m4s").next()?.split_once('.')?;
    Some((msn.parse().ok()?, i.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_video_decode_time_of_a_part() {
        // moof { traf { tfhd(track 2), tfdt v1 = 48000 }, traf { tfhd(track 1), tfdt v1 = 90 × 1234 } }
        fn boxed(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
            let mut b = ((body.len() + 8) as u32).to_be_bytes().to_vec();
            b.extend_from_slice(kind);
            b.extend_from_slice(body);
            b
        }
        let traf = |track: u32, t: u64| {
            let mut tfhd = vec![0, 2, 0, 0];
            tfhd.extend_from_slice(&track.to_be_bytes());
            let mut tfdt = vec![1, 0, 0, 0];
            tfdt.extend_from_slice(&t.to_be_bytes());
            boxed(b"traf", &[boxed(b"tfhd", &tfhd), boxed(b"tfdt", &tfdt)].concat())
        };
        let moof = boxed(b"moof", &[traf(2, 48_000), traf(1, 90 * 1234)].concat());
        let part = [moof, boxed(b"mdat", &[1, 2, 3])].concat();
        assert_eq!(first_video_ms(&part), Some(1234));
        assert_eq!(first_video_ms(&part[..10]), None);
        assert_eq!(hint("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part12.3.m4s\"\n"), Some((12, 3)));
    }
}
