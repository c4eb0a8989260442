//! The web client (`web/`), embedded in the binary so `confab serve` serves it from any working
//! directory. Plain files, no build step: what is in `web/` is what the browser gets.
//!
//! Every answer carries an ETag (a hash of the bytes) and `Cache-Control: no-cache`: browsers keep
//! the files but revalidate them, so an upgraded server is never shadowed by a stale cached module
//! (ES modules import each other by fixed names, so names cannot carry a content hash without a
//! build step). A strict Content-Security-Policy allows nothing but this origin.

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;

/// One embedded file: the URL path, its Content-Type, its bytes.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! assets {
    ($($url:literal => $file:literal, $ty:expr;)*) => {
        &[$(Asset { path: $url, content_type: $ty, body: include_bytes!(concat!("../web/", $file)) }),*]
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every file of `web/` (a test checks none is missing).
static ASSETS: &[Asset] = assets! {
    "/" => "index.html", "text/html; charset=utf-8";
    "/style.css" => "style.css", "text/css; charset=utf-8";
    "/favicon.svg" => "favicon.svg", "image/svg+xml";
    "/js/app.js" => "js/app.js", JS;
    "/js/api.js" => "js/api.js", JS;
    "/js/gateway.js" => "js/gateway.js", JS;
    "/js/state.js" => "js/state.js", JS;
    "/js/dom.js" => "js/dom.js", JS;
    "/js/dialog.js" => "js/dialog.js", JS;
    "/js/auth.js" => "js/auth.js", JS;
    "/js/sidebar.js" => "js/sidebar.js", JS;
    "/js/messages.js" => "js/messages.js", JS;
    "/js/markdown.js" => "js/markdown.js", JS;
    "/js/attachments.js" => "js/attachments.js", JS;
    "/js/notify.js" => "js/notify.js", JS;
    "/js/reactions.js" => "js/reactions.js", JS;
    "/js/members.js" => "js/members.js", JS;
    "/js/settings.js" => "js/settings.js", JS;
    "/js/profile.js" => "js/profile.js", JS;
    "/js/moderation.js" => "js/moderation.js", JS;
    "/js/voice.js" => "js/voice.js", JS;
    "/js/voice_view.js" => "js/voice_view.js", JS;
    "/js/voice_devices.js" => "js/voice_devices.js", JS;
    "/js/voice_local.js" => "js/voice_local.js", JS;
    "/js/voice_share.js" => "js/voice_share.js", JS;
    "/js/devices.js" => "js/devices.js", JS;
    "/js/player.js" => "js/player.js", JS;
    "/js/golive.js" => "js/golive.js", JS;
    "/js/watch.js" => "js/watch.js", JS;
    "/js/watch_public.js" => "js/watch_public.js", JS;
    "/vendor/hls.js-1.7.4/hls.light.min.mjs" => "vendor/hls.js-1.7.4/hls.light.min.mjs", JS;
    "/vendor/hls.js-1.7.4/LICENSE" => "vendor/hls.js-1.7.4/LICENSE", "text/plain; charset=utf-8";
};

/// The watch page of a public stream, for people without an account: `/watch/{channel_id}`.
static WATCH_PAGE: Asset =
    Asset { path: "/watch", content_type: "text/html; charset=utf-8", body: include_bytes!("../web/watch.html") };

/// Inline scripts and styles are refused; media may come from the camera (blob:/mediastream:).
const CSP: &str = "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob: mediastream:; \
     connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// Other origins the page may open sockets to: the voice gateways of a cluster's other nodes.
pub type Origins = Arc<dyn Fn() -> Vec<String> + Send + Sync>;

/// The routes serving the client; merge into the server's router (it has no fallback of its own).
pub fn router() -> Router {
    router_with(None)
}

/// [`router`], with the `ws(s)://host` origins `others` names allowed in `connect-src`.
pub fn router_with(others: Option<Origins>) -> Router {
    let watch_etag = HeaderValue::from_str(&etag(WATCH_PAGE.body)).expect("hex is a valid header value");
    let o = others.clone();
    let watch = get(move |headers: HeaderMap| async move { serve(&WATCH_PAGE, &watch_etag, &headers, csp(&o)) });
    ASSETS
        .iter()
        .fold(Router::new(), |r, a| {
            let etag = HeaderValue::from_str(&etag(a.body)).expect("hex is a valid header value");
            let o = others.clone();
            r.route(a.path, get(move |headers: HeaderMap| async move { serve(a, &etag, &headers, csp(&o)) }))
        })
        .route("/watch/{channel}", watch)
}

fn csp(others: &Option<Origins>) -> HeaderValue {
    let extra: Vec<String> = others.as_ref().map(|f| f()).unwrap_or_default();
    let extra: Vec<&String> = extra.iter().filter(|o| o.chars().all(|c| c.is_ascii_graphic())).collect();
    if extra.is_empty() {
        return HeaderValue::from_static(CSP);
    }
    let list: Vec<&str> = extra.iter().map(|s| s.as_str()).collect();
    let policy = CSP.replace("connect-src 'self'", &format!("connect-src 'self' {}", list.join(" ")));
    HeaderValue::from_str(&policy).unwrap_or_else(|_| HeaderValue::from_static(CSP))
}

fn etag(body: &[u8]) -> String {
    let mut h = DefaultHasher::new();
    body.hash(&mut h);
    format!("\"{:016x}\"", h.finish())
}

fn serve(a: &Asset, etag: &HeaderValue, req: &HeaderMap, csp: HeaderValue) -> Response {
    let fresh = req
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes().split(|b| *b == b',').any(|t| t.trim_ascii() == etag.as_bytes()));
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static(a.content_type)),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (header::ETAG, etag.clone()),
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        (header::CONTENT_SECURITY_POLICY, csp),
        (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
    ];
    if fresh { (StatusCode::NOT_MODIFIED, headers).into_response() } else { (headers, a.body).into_response() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn files(dir: &Path, base: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                files(&p, base, out);
            } else {
                out.push(p.strip_prefix(base).unwrap().to_string_lossy().replace('\\', "/"));
            }
        }
    }

    #[test]
    fn every_file_of_web_is_served() {
        let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
        let mut found = Vec::new();
        files(&base, &base, &mut found);
        for f in found {
            if f == "watch.html" {
                continue; // WATCH_PAGE, at /watch/{channel}
            }
            let url = if f == "index.html" { "/".to_string() } else { format!("/{f}") };
            assert!(ASSETS.iter().any(|a| a.path == url), "web/{f} is not in web.rs's ASSETS");
        }
    }

    #[test]
    fn revalidation_answers_not_modified() {
        let a = &ASSETS[0];
        let tag = HeaderValue::from_str(&etag(a.body)).unwrap();
        let mut req = HeaderMap::new();
        let p = || HeaderValue::from_static(CSP);
        assert_eq!(serve(a, &tag, &req, p()).status(), StatusCode::OK);
        req.insert(header::IF_NONE_MATCH, tag.clone());
        assert_eq!(serve(a, &tag, &req, p()).status(), StatusCode::NOT_MODIFIED);
        req.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"other\""));
        assert_eq!(serve(a, &tag, &req, p()).status(), StatusCode::OK);
    }

    #[test]
    fn a_cluster_s_voice_gateways_are_allowed_sockets() {
        assert_eq!(csp(&None), HeaderValue::from_static(CSP));
        let others: Origins = Arc::new(|| vec!["ws://10.0.0.2:8080".into(), "bad origin".into()]);
        let p = csp(&Some(others));
        assert!(p.to_str().unwrap().contains("connect-src 'self' ws://10.0.0.2:8080;"), "{p:?}");
    }
}
