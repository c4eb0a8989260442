//! The HTTP half of joining voice: `POST /api/channels/{id}/voice` hands out a signed voice token
//! and the voice gateway's endpoint, as Discord's main gateway does; the voice socket comes next.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use signaling::protocol::Id;

/// The chat API's answer to `POST /api/channels/{id}/voice`.
#[derive(Debug, Clone, Deserialize)]
pub struct VoiceGrant {
    pub token: String,
    /// The voice gateway: a path on the HTTP server ("/voice") or an absolute ws:// URL.
    pub endpoint: String,
    pub room_id: Id,
    pub guild_id: Option<Id>,
    /// Unix milliseconds after which the token is refused.
    pub expires_at: Option<i64>,
}

/// Asks for a voice grant as the user `bearer` authenticates; a non-2xx reply is an error with its body.
pub async fn request_grant(base: &str, bearer: &str, channel_id: &str, timeout: Duration) -> Result<VoiceGrant> {
    let url = format!("{base}/api/channels/{channel_id}/voice");
    let http = reqwest::Client::builder().timeout(timeout).build()?;
    let resp = http.post(&url).bearer_auth(bearer).send().await.with_context(|| format!("POST {url}"))?;
    let status = resp.status();
    let body = resp.text().await.with_context(|| format!("reading the reply of POST {url}"))?;
    if !status.is_success() {
        bail!("POST {url}: {status}: {body}");
    }
    serde_json::from_str(&body).with_context(|| format!("POST {url}: unexpected body {body}"))
}

/// The voice gateway URL: `endpoint` as is if absolute, else joined to the HTTP base (http→ws).
pub fn ws_url(base: &str, endpoint: &str) -> String {
    if endpoint.starts_with("ws://") || endpoint.starts_with("wss://") {
        return endpoint.to_owned();
    }
    let ws_base = match base.split_once("://") {
        Some(("https", rest)) => format!("wss://{rest}"),
        Some((_, rest)) => format!("ws://{rest}"),
        None => format!("ws://{base}"),
    };
    format!("{ws_base}/{}", endpoint.trim_start_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::ws_url;

    #[test]
    fn voice_gateway_url() {
        assert_eq!(ws_url("http://127.0.0.1:8080", "/voice"), "ws://127.0.0.1:8080/voice");
        assert_eq!(ws_url("https://confab.example", "voice"), "wss://confab.example/voice");
        assert_eq!(ws_url("http://h", "ws://other:1/voice"), "ws://other:1/voice");
    }
}
