//! The cluster step's LL-HLS edge probe (see `cluster_run`): ffmpeg publishes a small stream to
//! the first node over RTMP; viewers on another node follow its source rendition there (blocking
//! reloads, the newest parts) and count what the edge says it fetched from the origin
//! (`X-Cache: MISS`) against what it answered.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::json;

use super::api::{Account, Api};

/// What the edge's viewers saw.
#[derive(Debug, Default)]
pub struct EdgeFigures {
    /// Distinct parts fetched, requests for them, and how many of those the edge sent on.
    pub parts: usize,
    pub part_requests: usize,
    pub part_origin_fetches: usize,
    /// Blocking playlist reloads: the same.
    pub reloads: usize,
    pub reload_requests: usize,
    pub reload_origin_fetches: usize,
}

fn publish(url: &str, seconds: u32) -> Result<Child> {
    Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30", "-f", "lavfi", "-i", "sine=frequency=440"])
        .args(["-t", &seconds.to_string(), "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency"])
        .args(["-g", "30", "-c:a", "aac", "-f", "flv", url])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting ffmpeg (apt-get install ffmpeg)")
}

/// Publishes to `origin`, watches through `edge` with `viewers` players for `rounds` parts each.
pub async fn edge_fetches(
    origin: &Api,
    edge: &Api,
    owner: &Account,
    viewer: &Account,
    guild: &str,
    viewers: usize,
    rounds: usize,
) -> Result<EdgeFigures> {
    let body = json!({"name": "edge stage", "kind": "live"});
    let ch = origin.post(&format!("/api/guilds/{guild}/channels"), Some(&owner.token), body).await?;
    let ch = ch["id"].as_str().context("a live channel without an id")?.to_string();
    let key = origin.post(&format!("/api/channels/{ch}/stream-key"), Some(&owner.token), json!({})).await?;
    let mut ffmpeg = publish(key["rtmp_url"].as_str().context("no rtmp_url")?, 30)?;
    let res = watch(edge, viewer, &ch, viewers, rounds).await;
    let _ = ffmpeg.kill();
    let _ = ffmpeg.wait();
    res
}

async fn watch(edge: &Api, viewer: &Account, ch: &str, viewers: usize, rounds: usize) -> Result<EdgeFigures> {
    // The edge learns from the origin's STREAM_UPDATE that the stream is live.
    let deadline = Instant::now() + Duration::from_secs(20);
    let token = loop {
        let s = edge.get(&format!("/api/channels/{ch}/stream"), Some(&viewer.token)).await?;
        if s["state"] == "live" {
            break s["watch_token"].as_str().context("no watch token")?.to_string();
        }
        if Instant::now() > deadline {
            bail!("the stream never showed live on the edge: {s}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let players: Vec<_> = (0..viewers)
        .map(|_| {
            let (http, dir) = (edge.http().clone(), format!("{}/live/{ch}/source/", edge.base));
            let token = token.clone();
            tokio::spawn(async move { player(http, dir, token, rounds).await })
        })
        .collect();
    // Per path: requests, and how many went to the origin.
    let mut seen: HashMap<String, (usize, usize)> = HashMap::new();
    for p in players {
        for (path, miss) in p.await?? {
            let e = seen.entry(path).or_default();
            e.0 += 1;
            e.1 += usize::from(miss);
        }
    }
    let mut f = EdgeFigures::default();
    for (path, (n, misses)) in seen {
        if path.starts_with("part") {
            (f.parts, f.part_requests, f.part_origin_fetches) =
                (f.parts + 1, f.part_requests + n, f.part_origin_fetches + misses);
        } else {
            (f.reloads, f.reload_requests, f.reload_origin_fetches) =
                (f.reloads + 1, f.reload_requests + n, f.reload_origin_fetches + misses);
        }
    }
    Ok(f)
}

/// One player: `rounds` blocking reloads, fetching the newest two parts each time. Every part
/// and blocking reload it asked for, and whether the edge fetched it from the origin.
async fn player(http: reqwest::Client, dir: String, token: String, rounds: usize) -> Result<Vec<(String, bool)>> {
    let mut url = format!("{dir}index.m3u8?a={token}");
    let mut got = Vec::new();
    let uri = |line: &str| line.split("URI=\"").nth(1).and_then(|u| u.split('"').next()).map(str::to_string);
    for _ in 0..rounds {
        let r = http.get(&url).send().await?.error_for_status()?;
        let miss = r.headers().get("x-cache").is_some_and(|v| v == "MISS");
        if let Some((_, q)) = url.split_once("index.m3u8?_HLS") {
            got.push((format!("index.m3u8?_HLS{q}"), miss));
        }
        let text = r.text().await?;
        let parts: Vec<String> = text.lines().filter(|l| l.starts_with("#EXT-X-PART:")).filter_map(uri).collect();
        for p in parts.iter().rev().take(2) {
            let r = http.get(format!("{dir}{p}")).send().await?.error_for_status()?;
            let miss = r.headers().get("x-cache").is_some_and(|v| v == "MISS");
            r.bytes().await?;
            got.push((p.split('?').next().unwrap_or(p).to_string(), miss));
        }
        let hint =
            text.lines().find(|l| l.starts_with("#EXT-X-PRELOAD-HINT")).and_then(uri).context("no preload hint")?;
        let name = hint.trim_start_matches("part").split(".m4s").next().unwrap_or_default().to_string();
        let (m, i) = name.split_once('.').context("a preload hint that names no part")?;
        url = format!("{dir}index.m3u8?_HLS_msn={m}&_HLS_part={i}&a={token}");
    }
    Ok(got)
}
