//! A light LL-HLS viewer for load: what a real player fetches, without decoding. One task per
//! viewer on its own keep-alive HTTP/1.1 connection ([`crate::http1`]): the master playlist, the chosen variant, its init segment
//! and the last parts (the player's hold-back), then, part after part, a blocking playlist reload
//! for the part its preload hint names and the part itself. A simulated play-out buffer tells
//! stalls: a part that arrives after the buffer ran dry.
//!
//! [`Follow::Polling`] is the same request mix against a static server (nginx over the recorded
//! segments, which cannot hold a request): every part interval, the playlist and a part-sized
//! range of the newest segment.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::hist::Histogram;
use crate::http1::{Conn, split_url};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Follow {
    /// LL-HLS: blocking reloads (`_HLS_msn`/`_HLS_part`) and parts.
    Blocking,
    /// A static server: the playlist polled every part interval, and a part-sized byte range.
    Polling { part: Duration, part_bytes: u64 },
}

/// What one viewer saw.
#[derive(Debug, Default, Clone)]
pub struct ViewerStats {
    pub requests: u64,
    pub bytes: u64,
    pub errors: u64,
    /// Requests answered at once (playlists without a wait, parts, init), request to last byte.
    pub served: Histogram,
    /// Blocking reloads: request to answer (the wait for the next part included).
    pub blocked: Histogram,
    pub parts: u64,
    /// Times the play-out buffer ran dry.
    pub stalls: u64,
    /// Start → first part fetched.
    pub joined: Option<Duration>,
}

/// Requests and bytes of a whole crowd, as they happen (rates over a window).
#[derive(Debug, Default)]
pub struct Totals {
    pub requests: AtomicU64,
    pub bytes: AtomicU64,
}

/// `URI="…"` (or another attribute) of a playlist tag.
fn attr<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let at = line.find(&format!("{name}="))? + name.len() + 1;
    let rest = &line[at..];
    if let Some(q) = rest.strip_prefix('"') {
        return q.split('"').next();
    }
    rest.split(',').next()
}

/// (msn, part) of a `part{msn}.{i}.m4s` URI.
fn part_of(uri: &str) -> Option<(u64, u64)> {
    let name = uri.split('?').next()?.strip_prefix("part")?.strip_suffix(".m4s")?;
    let (m, i) = name.split_once('.')?;
    Some((m.parse().ok()?, i.parse().ok()?))
}

/// `uri` relative to `base` (a playlist's path).
fn resolve(base: &str, uri: &str) -> String {
    if uri.starts_with("http") {
        return split_url(uri).map(|(_, _, path)| path).unwrap_or_default();
    }
    let dir = base.split('?').next().unwrap_or(base);
    format!("{}/{uri}", &dir[..dir.rfind('/').unwrap_or(dir.len())])
}

struct Parsed {
    map: Option<String>,
    /// (uri, duration) of every part listed, oldest first.
    parts: Vec<(String, f64)>,
    hint: Option<String>,
}

fn parse(playlist: &str) -> Parsed {
    let mut p = Parsed { map: None, parts: Vec::new(), hint: None };
    for line in playlist.lines() {
        if line.starts_with("#EXT-X-MAP:") {
            p.map = attr(line, "URI").map(str::to_string);
        } else if line.starts_with("#EXT-X-PART:") {
            let d = attr(line, "DURATION").and_then(|d| d.parse().ok()).unwrap_or(0.0);
            if let Some(u) = attr(line, "URI") {
                p.parts.push((u.to_string(), d));
            }
        } else if line.starts_with("#EXT-X-PRELOAD-HINT:") {
            p.hint = attr(line, "URI").map(str::to_string);
        }
    }
    p
}

struct Viewer {
    conn: Conn,
    stats: ViewerStats,
    totals: Arc<Totals>,
}

impl Viewer {
    /// GET `path` (optionally a byte range); the body, timed into `served` unless `blocking`.
    async fn get(&mut self, path: &str, blocking: bool, range: Option<u64>) -> Option<bytes::Bytes> {
        let t0 = Instant::now();
        self.stats.requests += 1;
        let Ok(body) = self.conn.get(path, range).await else {
            self.stats.errors += 1;
            return None;
        };
        self.stats.bytes += body.len() as u64;
        self.totals.requests.fetch_add(1, Ordering::Relaxed);
        self.totals.bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
        let took = t0.elapsed();
        if blocking {
            self.stats.blocked.record(took)
        } else {
            self.stats.served.record(took)
        }
        Some(body)
    }

    /// A playlist: [`Viewer::get`] as text (media is only counted, never converted).
    async fn text(&mut self, url: &str, blocking: bool) -> Option<String> {
        let body = self.get(url, blocking, None).await?;
        Some(String::from_utf8_lossy(&body).into_owned())
    }
}

/// Follows `master_url`'s variant whose URI contains `rendition` (else the first) until `until`.
/// Successful requests and their bytes also go to `totals`.
pub async fn watch(
    master_url: String,
    rendition: String,
    follow: Follow,
    until: Instant,
    totals: Arc<Totals>,
) -> ViewerStats {
    let Ok((addr, host, master)) = split_url(&master_url) else {
        return ViewerStats { errors: 1, ..Default::default() };
    };
    let mut v = Viewer { conn: Conn::new(addr, host), stats: ViewerStats::default(), totals };
    let start = Instant::now();
    match follow {
        Follow::Blocking => blocking(&mut v, &master, &rendition, until, start).await,
        Follow::Polling { part, part_bytes } => polling(&mut v, &master, part, part_bytes, until, start).await,
    }
    v.stats
}

async fn blocking(v: &mut Viewer, master_url: &str, rendition: &str, until: Instant, start: Instant) {
    let Some(master) = v.text(master_url, false).await else { return };
    let variants: Vec<&str> = master.lines().filter(|l| !l.starts_with('#') && !l.is_empty()).collect();
    let Some(variant) = variants.iter().find(|u| u.contains(&format!("{rendition}/"))).or(variants.first()) else {
        return;
    };
    let media = resolve(master_url, variant);
    let Some(text) = v.text(&media, false).await else { return };
    let p = parse(&text);
    if let Some(map) = &p.map {
        v.get(&resolve(&media, map), false, None).await;
    }
    // The hold-back: the last three parts, fetched at once; play-out starts with them.
    let mut buffered = 0.0;
    let mut last = None;
    for (uri, d) in p.parts.iter().rev().take(3).rev() {
        if v.get(&resolve(&media, uri), false, None).await.is_some() {
            buffered += d;
            v.stats.parts += 1;
            last = part_of(uri);
        }
    }
    v.stats.joined = Some(start.elapsed());
    // Play-out: media consumed since `playing`, against what was fetched.
    let hold = buffered;
    let mut playing = Instant::now();
    let mut hint = p.hint;
    let sep = if media.contains('?') { '&' } else { '?' };
    // Blocking reloads ask for delta updates (`_HLS_skip=YES`), as hls.js does when the playlist
    // allows them (CAN-SKIP-UNTIL): only the newest segments' parts are needed.
    while Instant::now() < until {
        let Some((msn, i)) = hint.as_deref().and_then(part_of) else { break };
        let Some(text) = v.text(&format!("{media}{sep}_HLS_msn={msn}&_HLS_part={i}&_HLS_skip=YES"), true).await else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        if text.contains("#EXT-X-ENDLIST") {
            break;
        }
        let p = parse(&text);
        // Every part newer than the last one fetched, in order: the hint may have named a part
        // that never came (the segment ended first), and the next segment's first is then listed.
        let newer: Vec<(String, f64)> = p.parts.iter().filter(|(u, _)| part_of(u) > last).cloned().collect();
        for (uri, d) in newer {
            if v.get(&resolve(&media, &uri), false, None).await.is_none() {
                continue;
            }
            v.stats.parts += 1;
            last = part_of(&uri);
            let played = playing.elapsed().as_secs_f64();
            if played > buffered {
                // The buffer ran dry before this part came: a stall; the player rebuffers to its
                // hold-back before playing on.
                v.stats.stalls += 1;
                tracing::debug!(played, buffered, msn, i, "stall");
                (playing, buffered) = (Instant::now() + Duration::from_secs_f64(hold), 0.0);
            }
            buffered += d;
        }
        hint = p.hint;
    }
}

async fn polling(v: &mut Viewer, master_url: &str, part: Duration, part_bytes: u64, until: Instant, start: Instant) {
    // The recording's playlist is per rendition: `master_url` names it directly.
    let mut tick = tokio::time::interval(part);
    while Instant::now() < until {
        tick.tick().await;
        let Some(text) = v.text(master_url, false).await else { continue };
        let newest = text.lines().rev().find(|l| l.ends_with(".m4s"));
        if let Some(seg) = newest
            && v.get(&resolve(master_url, seg), false, Some(part_bytes)).await.is_some()
        {
            v.stats.parts += 1;
            v.stats.joined.get_or_insert(start.elapsed());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_parts_hints_and_uris() {
        let text = "#EXTM3U\n#EXT-X-MAP:URI=\"init.mp4?a=1.x&s=2\"\n\
                    #EXT-X-PART:DURATION=0.33333,URI=\"part4.0.m4s?a=1.x&s=2\",INDEPENDENT=YES\n\
                    #EXT-X-PART:DURATION=0.30000,URI=\"part4.1.m4s?a=1.x&s=2\"\n\
                    #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part4.2.m4s?a=1.x&s=2\"\n";
        let p = parse(text);
        assert_eq!(p.map.as_deref(), Some("init.mp4?a=1.x&s=2"));
        assert_eq!(p.parts.len(), 2);
        assert!((p.parts[1].1 - 0.3).abs() < 1e-9);
        assert_eq!(p.hint.as_deref().and_then(part_of), Some((4, 2)));
        assert_eq!(resolve("/live/1/360p/index.m3u8?a=1", "part4.2.m4s?a=1"), "/live/1/360p/part4.2.m4s?a=1");
        assert_eq!(resolve("/live/1/index.m3u8", "http://127.0.0.1:1/x/y.m3u8"), "/x/y.m3u8");
        assert_eq!(part_of("seg3.m4s"), None);
    }
}
