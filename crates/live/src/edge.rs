//! LL-HLS edges. In a cluster a stream is ingested and packaged by one node, its origin; every
//! other node serves it as well, from the origin, so viewers can spread over all nodes.
//!
//! Each distinct request (the path and the query parameters that matter, rebuilt by
//! [`crate::http`] so junk parameters cannot bust the cache) is fetched from the origin once,
//! however many viewers ask at the same time: the first one's request goes upstream and the others
//! wait for its answer (request coalescing). The answer is then kept as long as the origin allows
//! it to be cached (capped at [`KEEP_MAX`]): parts, segments and the init segment are immutable,
//! a plain playlist is kept for a second. A blocking playlist reload names what it waits for
//! (`_HLS_msn`, `_HLS_part`), so a crowd waiting for the next part holds one request to the origin
//! and is answered by it at once. Every answer says `X-Cache: HIT` or `MISS`, as CDNs do.
//!
//! Errors of the origin are passed on but never kept; an unreachable origin is 502.

use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::OnceCell;

/// Where streams this node does not ingest are: the cluster knows.
pub trait Origins: Send + Sync {
    /// The base URL (`http://host:port`) of the node ingesting `stream`, when another node does.
    fn origin(&self, stream: &str) -> Option<String>;
}

/// The longest an answer is kept, whatever the origin says (parts are cached "for a year").
pub const KEEP_MAX: Duration = Duration::from_secs(30);
/// Bytes kept, at most; the oldest answers go first beyond it.
const MAX_BYTES: usize = 256 << 20;
/// Distinct requests on their way to origins at once; beyond it, 503.
const MAX_IN_FLIGHT: usize = 1024;
/// An upstream request outlives a blocking reload (three target durations) comfortably.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(20);

const BAD_GATEWAY: u32 = 50502;
const UNAVAILABLE: u32 = 50503;

/// An origin's answer, as kept.
#[derive(Debug, Clone)]
struct Fetched {
    status: StatusCode,
    content_type: Option<HeaderValue>,
    cache_control: Option<HeaderValue>,
    etag: Option<HeaderValue>,
    body: Bytes,
    keep: Duration,
}

struct Slot {
    cell: Arc<OnceCell<Fetched>>,
    made: Instant,
    /// Until when the answer may be served; `None` while it is being fetched.
    until: Option<Instant>,
    size: usize,
}

#[derive(Default)]
struct Cache {
    map: HashMap<String, Slot>,
    bytes: usize,
    in_flight: usize,
}

pub struct Edge {
    origins: Arc<dyn Origins>,
    client: reqwest::Client,
    cache: Mutex<Cache>,
    fetches: AtomicU64,
}

impl Edge {
    pub fn new(origins: Arc<dyn Origins>) -> Edge {
        let client =
            reqwest::Client::builder().timeout(UPSTREAM_TIMEOUT).pool_max_idle_per_host(64).build().unwrap_or_default();
        Edge { origins, client, cache: Mutex::default(), fetches: AtomicU64::new(0) }
    }

    /// The base URL of the node ingesting `stream`, when another node does.
    pub fn origin(&self, stream: &str) -> Option<String> {
        self.origins.origin(stream)
    }

    /// Requests sent to origins so far (each distinct request once while it is kept).
    pub fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `GET path_and_query` of a stream `origin` ingests, from what is kept or from the origin.
    pub async fn get(&self, origin: &str, path_and_query: &str, headers: &HeaderMap) -> Response {
        let url = format!("{origin}{path_and_query}");
        let now = Instant::now();
        let (cell, hit) = {
            let mut c = self.cache();
            match c.map.get(&url) {
                Some(s) if s.until.map_or(now - s.made < UPSTREAM_TIMEOUT * 2, |u| u > now) => (s.cell.clone(), true),
                _ => {
                    if c.in_flight >= MAX_IN_FLIGHT {
                        return crate::http::error(StatusCode::SERVICE_UNAVAILABLE, UNAVAILABLE, "edge busy");
                    }
                    let cell = Arc::new(OnceCell::new());
                    let slot = Slot { cell: cell.clone(), made: now, until: None, size: 0 };
                    if let Some(old) = c.map.insert(url.clone(), slot) {
                        forget(&mut c, &old);
                    }
                    c.in_flight += 1;
                    (cell, false)
                }
            }
        };
        // A waiter whose fetcher went away (its viewer hung up) fetches in its place.
        let fetched = cell.get_or_init(|| self.fetch(&url)).await.clone();
        self.settle(&url, &cell, &fetched);
        respond(fetched, hit, headers)
    }

    /// Passes a viewer-count request (`POST`/`DELETE`) to the origin, uncached.
    pub async fn forward(&self, method: Method, origin: &str, path_and_query: &str) -> Response {
        let res = self.client.request(method, format!("{origin}{path_and_query}")).send().await;
        let fetched = match res {
            Ok(r) => read(r).await,
            Err(e) => unreachable_origin(&e),
        };
        let mut r = respond(fetched, false, &HeaderMap::new());
        r.headers_mut().remove("x-cache");
        r
    }

    async fn fetch(&self, url: &str) -> Fetched {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        match self.client.get(url).send().await {
            Ok(r) => read(r).await,
            Err(e) => unreachable_origin(&e),
        }
    }

    /// Records a fetched answer's lifetime (once, by whichever waiter comes first) and keeps the
    /// cache within its budget.
    fn settle(&self, url: &str, cell: &Arc<OnceCell<Fetched>>, f: &Fetched) {
        let mut c = self.cache();
        let Some(slot) = c.map.get_mut(url).filter(|s| Arc::ptr_eq(&s.cell, cell) && s.until.is_none()) else {
            return;
        };
        let now = Instant::now();
        slot.until = Some(now + f.keep);
        slot.size = f.body.len();
        c.in_flight -= 1;
        c.bytes += f.body.len();
        if f.keep.is_zero() {
            let old = c.map.remove(url);
            old.iter().for_each(|s| forget(&mut c, s));
        }
        if c.bytes > MAX_BYTES || c.map.len() > 4 * MAX_IN_FLIGHT {
            evict(&mut c, now);
        }
    }
}

/// Takes a removed slot out of the totals.
fn forget(c: &mut Cache, s: &Slot) {
    match s.until {
        Some(_) => c.bytes -= s.size,
        None => c.in_flight -= 1,
    }
}

/// Drops expired answers, then the oldest kept ones while over budget.
fn evict(c: &mut Cache, now: Instant) {
    let expired: Vec<String> =
        c.map.iter().filter(|(_, s)| s.until.is_some_and(|u| u <= now)).map(|(k, _)| k.clone()).collect();
    for k in expired {
        if let Some(s) = c.map.remove(&k) {
            forget(c, &s);
        }
    }
    if c.bytes <= MAX_BYTES / 2 {
        return;
    }
    let mut kept: Vec<(Instant, String)> =
        c.map.iter().filter(|(_, s)| s.until.is_some()).map(|(k, s)| (s.made, k.clone())).collect();
    kept.sort();
    for (_, k) in kept {
        if c.bytes <= MAX_BYTES / 2 {
            break;
        }
        if let Some(s) = c.map.remove(&k) {
            forget(c, &s);
        }
    }
}

async fn read(r: reqwest::Response) -> Fetched {
    let status = r.status();
    let h = r.headers();
    let (content_type, cache_control, etag) =
        (h.get(header::CONTENT_TYPE).cloned(), h.get(header::CACHE_CONTROL).cloned(), h.get(header::ETAG).cloned());
    let keep = match status {
        StatusCode::OK => cache_control.as_ref().and_then(|v| v.to_str().ok()).map_or(Duration::ZERO, max_age),
        _ => Duration::ZERO,
    };
    match r.bytes().await {
        Ok(body) => Fetched { status, content_type, cache_control, etag, body, keep },
        Err(e) => unreachable_origin(&e),
    }
}

fn unreachable_origin(e: &reqwest::Error) -> Fetched {
    tracing::warn!(error = %e, "an LL-HLS origin did not answer");
    let body = serde_json::json!({ "code": BAD_GATEWAY, "message": "the node serving this stream did not answer" });
    Fetched {
        status: StatusCode::BAD_GATEWAY,
        content_type: Some(HeaderValue::from_static("application/json")),
        cache_control: None,
        etag: None,
        body: Bytes::from(body.to_string()),
        keep: Duration::ZERO,
    }
}

/// `max-age` of a `Cache-Control` value, capped at [`KEEP_MAX`]; zero without one.
fn max_age(v: &str) -> Duration {
    let secs = v.split(',').find_map(|d| d.trim().strip_prefix("max-age=")?.parse::<u64>().ok()).unwrap_or(0);
    Duration::from_secs(secs).min(KEEP_MAX)
}

fn respond(f: Fetched, hit: bool, headers: &HeaderMap) -> Response {
    let matches = |etag: &HeaderValue| headers.get(header::IF_NONE_MATCH) == Some(etag);
    let mut r = match &f.etag {
        Some(etag) if f.status == StatusCode::OK && matches(etag) => StatusCode::NOT_MODIFIED.into_response(),
        _ => (f.status, f.body).into_response(),
    };
    let h = r.headers_mut();
    for (name, v) in
        [(header::CONTENT_TYPE, f.content_type), (header::CACHE_CONTROL, f.cache_control), (header::ETAG, f.etag)]
    {
        if let Some(v) = v {
            h.insert(name, v);
        }
    }
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    h.insert("x-cache", HeaderValue::from_static(if hit { "HIT" } else { "MISS" }));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(String);
    impl Origins for Fixed {
        fn origin(&self, _: &str) -> Option<String> {
            Some(self.0.clone())
        }
    }

    /// An origin that answers after a while and counts what it was asked.
    async fn origin() -> (String, Arc<AtomicU64>) {
        let asked = Arc::new(AtomicU64::new(0));
        let a = asked.clone();
        let app = axum::Router::new().route(
            "/live/{s}/{r}/{f}",
            axum::routing::get(move |axum::extract::Path((_, _, f)): axum::extract::Path<(String, String, String)>| {
                let a = a.clone();
                async move {
                    a.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    match f.as_str() {
                        "gone.m4s" => {
                            (StatusCode::NOT_FOUND, [(header::CACHE_CONTROL, "max-age=5")], "no").into_response()
                        }
                        _ => (
                            [(header::CACHE_CONTROL, "public, max-age=31536000, immutable"), (header::ETAG, "\"p\"")],
                            f,
                        )
                            .into_response(),
                    }
                }
            }),
        );
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", l.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(l, app).await });
        (base, asked)
    }

    #[tokio::test]
    async fn a_crowd_asking_at_once_costs_the_origin_one_request() {
        let (base, asked) = origin().await;
        let edge = Arc::new(Edge::new(Arc::new(Fixed(base.clone()))));
        let crowd: Vec<_> = (0..20)
            .map(|_| {
                let (e, base) = (edge.clone(), base.clone());
                tokio::spawn(async move { e.get(&base, "/live/1/source/part3.1.m4s?s=7", &HeaderMap::new()).await })
            })
            .collect();
        let mut misses = 0;
        for r in crowd {
            let r = r.await.unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            misses += usize::from(r.headers()["x-cache"] == "MISS");
            let body = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
            assert_eq!(&body[..], b"part3.1.m4s");
        }
        assert_eq!((misses, asked.load(Ordering::SeqCst), edge.fetches()), (1, 1, 1));
        // Kept: asked again later, still one request; a validator gets 304.
        let mut h = HeaderMap::new();
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"p\""));
        let r = edge.get(&base, "/live/1/source/part3.1.m4s?s=7", &h).await;
        assert_eq!((r.status(), asked.load(Ordering::SeqCst)), (StatusCode::NOT_MODIFIED, 1));
        // Another part is another request; errors are passed on and not kept.
        for _ in 0..2 {
            let r = edge.get(&base, "/live/1/source/gone.m4s?s=7", &HeaderMap::new()).await;
            assert_eq!(r.status(), StatusCode::NOT_FOUND);
        }
        assert_eq!(asked.load(Ordering::SeqCst), 3);
        let c = edge.cache();
        assert_eq!((c.map.len(), c.in_flight, c.bytes), (1, 0, "part3.1.m4s".len()));
    }

    #[tokio::test]
    async fn an_unreachable_origin_is_a_bad_gateway() {
        let edge = Edge::new(Arc::new(Fixed("http://127.0.0.1:9".into())));
        let r = edge.get("http://127.0.0.1:9", "/live/1/index.m3u8", &HeaderMap::new()).await;
        assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
        assert_eq!(edge.cache().in_flight, 0);
    }

    #[test]
    fn kept_as_long_as_the_origin_allows_within_the_cap() {
        assert_eq!(max_age("public, max-age=1"), Duration::from_secs(1));
        assert_eq!(max_age("public, max-age=31536000, immutable"), KEEP_MAX);
        assert_eq!(max_age("no-store"), Duration::ZERO);
        assert_eq!(max_age("max-age=x"), Duration::ZERO);
    }
}
