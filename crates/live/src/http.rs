//! LL-HLS over HTTP, from memory: `/live/{stream}/index.m3u8` (master), and per rendition
//! `/live/{stream}/{rendition}/index.m3u8` (blocking reload with `_HLS_msn` / `_HLS_part`, delta
//! updates with `_HLS_skip=YES`), `init.mp4`, `seg{n}.m4s`, `part{n}.{i}.m4s` (a part not cut yet
//! but next in line is waited for, as preload hints ask).
//!
//! Access: where the server has an [`Access`] check (a watch token as `?a=`, or a public stream),
//! every request needs it, and the playlists carry the token into every URI they list, so a
//! player given one URL finds the rest. Tokens are shared by every viewer of the hour, so URLs
//! stay cacheable. Viewers are counted by heartbeat: `POST /live/{stream}/viewers` joins (an id),
//! `POST …/viewers/{id}` beats, `DELETE …/viewers/{id}` leaves.
//!
//! A stream another node of a cluster ingests is served from that node ([`crate::edge`]).
//!
//! Made for CDNs: playlists are cached briefly (a blocking response longer: its URL names what it
//! waited for), segments, parts and the init segment for a year and `immutable`; every answer has
//! an `ETag` and allows any origin. Errors are `{code, message}` like the rest of the server.

use crate::http_extract::{ParsedPath, ParsedQuery};
use crate::hub::{Rendition, Stream, Streams};
use crate::playlist::{Readiness, master};
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

/// The one rendition served so far: the source, passed through.
pub const SOURCE: &str = "source";

const UNKNOWN_ROUTE: u32 = 10404;
const INVALID: u32 = 50035;
const TOO_FAR: u32 = 40000;
const MISSING_ACCESS: u32 = 50001;

pub fn router(streams: Arc<Streams>) -> Router {
    Router::new()
        .route("/live/{stream}/index.m3u8", get(master_playlist))
        .route("/live/{stream}/{rendition}/{file}", get(rendition_file))
        .route("/live/{stream}/viewers", post(crate::http_viewers::join))
        .route("/live/{stream}/viewers/{id}", post(crate::http_viewers::beat).delete(crate::http_viewers::leave))
        .with_state(streams)
}

pub(crate) fn error(status: StatusCode, code: u32, message: &str) -> Response {
    let body = serde_json::json!({ "code": code, "message": message }).to_string();
    let mut r = (status, body).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    r
}

pub(crate) fn not_found(what: &str) -> Response {
    error(StatusCode::NOT_FOUND, UNKNOWN_ROUTE, &format!("no such {what}"))
}

/// A body with its type, caching and validator.
fn answer(body: Bytes, kind: &'static str, cache: &'static str, headers: &HeaderMap) -> Response {
    let etag = format!("\"{:016x}\"", fnv(&body));
    answer_tagged(body, etag, kind, cache, headers)
}

/// [`answer`] with its ETag known (an immutable file's name; a cached playlist's hash).
fn answer_tagged(body: Bytes, etag: String, kind: &'static str, cache: &'static str, headers: &HeaderMap) -> Response {
    if headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) == Some(etag.as_str()) {
        let mut r = StatusCode::NOT_MODIFIED.into_response();
        r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
        return r;
    }
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    r
}

fn fnv(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, x| (h ^ u64::from(*x)).wrapping_mul(0x0100_0000_01b3))
}

const PLAYLIST: &str = "application/vnd.apple.mpegurl";
const MEDIA: &str = "video/mp4";
const SHORT: &str = "public, max-age=1";
const BLOCKED: &str = "public, max-age=30";
const FOREVER: &str = "public, max-age=31536000, immutable";

/// The watch token, `?a=`.
#[derive(Debug, Default, Deserialize)]
pub struct Token {
    pub(crate) a: Option<String>,
}

pub(crate) fn forbidden() -> Response {
    error(StatusCode::FORBIDDEN, MISSING_ACCESS, "this stream is for members: ask the API for a watch token (?a=)")
}

/// The query every URI of a playlist carries: the watch token, and the publish (`s`) the
/// playlist belongs to, so a stream published again under the same names never meets the old
/// one's parts in a cache (they are cached as immutable).
fn suffix(token: Option<&str>, session: u64) -> String {
    match token {
        Some(t) => format!("?a={t}&s={session}"),
        None => format!("?s={session}"),
    }
}

/// `text` (a playlist) with `suffix` on every URI it lists.
pub(crate) fn tokenize(text: &str, suffix: &str) -> String {
    let token = suffix;
    let mut out = String::with_capacity(text.len() + 64);
    for line in text.lines() {
        if line.is_empty() {
        } else if !line.starts_with('#') {
            out.push_str(line);
            out.push_str(token);
        } else if let Some(at) = line.find("URI=\"") {
            let start = at + 5;
            let end = line[start..].find('"').map_or(line.len(), |e| start + e);
            out.push_str(&line[..end]);
            out.push_str(token);
            out.push_str(&line[end..]);
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

async fn master_playlist(
    State(streams): State<Arc<Streams>>,
    ParsedPath(id): ParsedPath<String>,
    ParsedQuery(token): ParsedQuery<Token>,
    headers: HeaderMap,
) -> Response {
    if !streams.allows(&id, token.a.as_deref()) {
        return forbidden();
    }
    let Some(stream) = streams.get(&id) else {
        return match streams.edge_for(&id) {
            Some((edge, origin)) => {
                edge.get(&origin, &format!("/live/{id}/index.m3u8{}", token_query(&token)), &headers).await
            }
            None => not_found("stream"),
        };
    };
    if !stream.ready(std::time::Instant::now()) {
        return not_found("stream (starting: its renditions are not all playable yet)");
    }
    // Every rendition with something to play, the largest first.
    let mut variants: Vec<_> = stream
        .renditions()
        .iter()
        .filter(|r| r.packager().playlist().parts_cut() > 0)
        .filter_map(|r| r.packager().variant(&format!("{}/index.m3u8", r.name)))
        .collect();
    variants.sort_by_key(|v| std::cmp::Reverse((v.height, v.bandwidth)));
    if variants.is_empty() {
        return not_found("stream (nothing published yet)");
    }
    let text = tokenize(&master(&variants), &suffix(token.a.as_deref(), stream.session));
    answer(Bytes::from(text), PLAYLIST, SHORT, &headers)
}

#[derive(Debug, Deserialize)]
pub struct Reload {
    #[serde(rename = "_HLS_msn")]
    msn: Option<u64>,
    #[serde(rename = "_HLS_part")]
    part: Option<usize>,
    #[serde(rename = "_HLS_skip")]
    skip: Option<String>,
    a: Option<String>,
    s: Option<u64>,
}

impl Reload {
    /// The query an edge sends its origin: only what changes the answer, in one order, so a
    /// crowd's requests meet in its cache however they were written.
    fn canonical(&self) -> String {
        let skip = self.skip.as_deref().filter(|s| s.eq_ignore_ascii_case("YES") || s.eq_ignore_ascii_case("v2"));
        let pairs = [
            ("_HLS_msn", self.msn.map(|m| m.to_string())),
            ("_HLS_part", self.part.map(|p| p.to_string())),
            ("_HLS_skip", skip.map(str::to_string)),
            ("a", self.a.clone().filter(|a| safe(a))),
            ("s", self.s.map(|s| s.to_string())),
        ];
        query(&pairs)
    }
}

/// The watch token alone as a query (`?a=…`, or nothing).
pub(crate) fn token_query(t: &Token) -> String {
    query(&[("a", t.a.clone().filter(|a| safe(a)))])
}

fn query(pairs: &[(&str, Option<String>)]) -> String {
    let set: Vec<String> = pairs.iter().filter_map(|(k, v)| Some(format!("{k}={}", v.as_ref()?))).collect();
    if set.is_empty() { String::new() } else { format!("?{}", set.join("&")) }
}

/// A path segment or token that can go into an origin's URL as it is.
fn safe(s: &str) -> bool {
    !s.is_empty() && !s.starts_with('.') && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

async fn rendition_file(
    State(streams): State<Arc<Streams>>,
    ParsedPath((id, rendition, file)): ParsedPath<(String, String, String)>,
    query: Result<Query<Reload>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Response {
    let Ok(Query(q)) = query else { return error(StatusCode::BAD_REQUEST, INVALID, "bad _HLS_ parameters") };
    if !streams.allows(&id, q.a.as_deref()) {
        return forbidden();
    }
    let Some(stream) = streams.get(&id) else {
        return match streams.edge_for(&id) {
            Some((edge, origin)) if safe(&rendition) && safe(&file) => {
                edge.get(&origin, &format!("/live/{id}/{rendition}/{file}{}", q.canonical()), &headers).await
            }
            _ => not_found("stream"),
        };
    };
    if q.s.is_some_and(|s| s != stream.session) {
        return not_found("stream (that publish has ended; load the master playlist again)");
    }
    let Some(r) = stream.rendition(&rendition) else { return not_found("rendition") };
    if file == "index.m3u8" {
        return media_playlist(&stream, &r, q, &headers).await;
    }
    // Immutable files are named by the publish and their place: no need to hash their bytes.
    let tag = |what: &str| format!("\"{}-{}-{what}\"", stream.session, r.name);
    if file == "init.mp4" {
        return match r.packager().init() {
            Some(b) => answer_tagged(b, tag("init"), MEDIA, FOREVER, &headers),
            None => not_found("init segment (nothing published yet)"),
        };
    }
    if let Some(n) = file.strip_prefix("seg").and_then(|f| f.strip_suffix(".m4s")).and_then(|n| n.parse().ok()) {
        return match r.packager().segment(n) {
            Some(b) => answer_tagged(b, tag(&format!("s{n}")), MEDIA, FOREVER, &headers),
            None => not_found("segment"),
        };
    }
    let part = file.strip_prefix("part").and_then(|f| f.strip_suffix(".m4s")).and_then(|p| {
        let (m, i) = p.split_once('.')?;
        Some((m.parse::<u64>().ok()?, i.parse::<usize>().ok()?))
    });
    match part {
        Some((msn, i)) => part_file(&stream, &r, msn, i, &headers).await,
        None => not_found("file"),
    }
}

/// How long a blocked request waits, at most: three target durations, as the spec bounds it.
fn max_wait(r: &Rendition) -> Duration {
    Duration::from_secs_f64(3.0 * r.packager().playlist().target_secs())
}

async fn media_playlist(stream: &Stream, r: &Rendition, q: Reload, headers: &HeaderMap) -> Response {
    if q.part.is_some() && q.msn.is_none() {
        return error(StatusCode::BAD_REQUEST, INVALID, "_HLS_part needs _HLS_msn");
    }
    let skip = q.skip.as_deref().is_some_and(|s| s.eq_ignore_ascii_case("YES") || s.eq_ignore_ascii_case("v2"));
    let mut cache = SHORT;
    if let Some(msn) = q.msn {
        cache = BLOCKED;
        let ready = wait(r, |r| r.packager().playlist().readiness(msn, q.part)).await;
        if ready == Readiness::TooFar {
            return error(StatusCode::BAD_REQUEST, TOO_FAR, "_HLS_msn is more than two segments ahead");
        }
    }
    // Rendered once per part cut and shared: a crowd woken by the same part asks for the same text.
    let (body, etag) = r.rendered(skip, &suffix(q.a.as_deref(), stream.session), |text| {
        let etag = format!("\"{:016x}\"", fnv(text.as_bytes()));
        (Bytes::from(text), etag)
    });
    answer_tagged(body, etag, PLAYLIST, cache, headers)
}

async fn part_file(stream: &Stream, r: &Rendition, msn: u64, i: usize, headers: &HeaderMap) -> Response {
    let ready = wait(r, |r| r.packager().playlist().readiness(msn, Some(i))).await;
    match (ready, r.packager().part(msn, i)) {
        (_, Some(b)) => {
            answer_tagged(b, format!("\"{}-{}-p{msn}.{i}\"", stream.session, r.name), MEDIA, FOREVER, headers)
        }
        (Readiness::TooFar, None) => error(StatusCode::BAD_REQUEST, TOO_FAR, "that part is too far ahead"),
        _ => not_found("part"),
    }
}

/// Waits (bounded) until `check` is not `Wait`.
async fn wait(r: &Rendition, check: impl Fn(&Rendition) -> Readiness) -> Readiness {
    let mut changes = r.changes();
    let deadline = tokio::time::Instant::now() + max_wait(r);
    loop {
        let ready = check(r);
        if ready != Readiness::Wait {
            return ready;
        }
        match tokio::time::timeout_at(deadline, changes.changed()).await {
            Err(_) => return Readiness::Wait,
            Ok(Err(_)) => return check(r),
            Ok(Ok(())) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn tokens_reach_every_uri() {
        let text = "#EXTM3U\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXT-X-PART:DURATION=0.33,URI=\"part1.0.m4s\",INDEPENDENT=YES\n\
                    #EXTINF:2.0,\nseg1.m4s\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part2.0.m4s\"\n";
        let out = super::tokenize(text, &super::suffix(Some("9.x_y"), 7));
        assert_eq!(
            out,
            "#EXTM3U\n#EXT-X-MAP:URI=\"init.mp4?a=9.x_y&s=7\"\n\
             #EXT-X-PART:DURATION=0.33,URI=\"part1.0.m4s?a=9.x_y&s=7\",INDEPENDENT=YES\n#EXTINF:2.0,\nseg1.m4s?a=9.x_y&s=7\n\
             #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part2.0.m4s?a=9.x_y&s=7\"\n"
        );
        assert!(super::tokenize(text, &super::suffix(None, 7)).contains("seg1.m4s?s=7\n"));
    }
}
