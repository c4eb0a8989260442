//! The chat API calls a benchmark needs, as any client makes them: accounts (signed up
//! concurrently, since argon2 makes each one cost ~50-100 ms of server CPU), guilds, invites and
//! channels. Accounts and guilds are created once per run and reused by every step.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures_util::StreamExt;
use futures_util::stream;
use serde_json::{Value, json};

/// Sign-ups in flight at once: enough to keep both cores hashing.
const SIGNUP_CONCURRENCY: usize = 8;
const TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct Account {
    pub token: String,
    pub user_id: String,
}

#[derive(Clone)]
pub struct Api {
    pub base: String,
    http: reqwest::Client,
}

impl Api {
    pub fn new(base: &str) -> Result<Api> {
        let http = reqwest::Client::builder().timeout(TIMEOUT).build().context("building the HTTP client")?;
        Ok(Api { base: base.trim_end_matches('/').to_string(), http })
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// POSTs `body` (as `token`, if any) and returns the JSON answer; non-2xx is an error.
    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Result<Value> {
        self.call(self.http.post(format!("{}{path}", self.base)).json(&body), "POST", path, token).await
    }

    /// GETs `path` (as `token`, if any); non-2xx is an error.
    pub async fn get(&self, path: &str, token: Option<&str>) -> Result<Value> {
        self.call(self.http.get(format!("{}{path}", self.base)), "GET", path, token).await
    }

    async fn call(
        &self,
        mut req: reqwest::RequestBuilder,
        method: &str,
        path: &str,
        token: Option<&str>,
    ) -> Result<Value> {
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.with_context(|| format!("{method} {path}"))?;
        let status = resp.status();
        let text = resp.text().await.with_context(|| format!("{method} {path}: reading the body"))?;
        if !status.is_success() {
            bail!("{method} {path}: {status}: {text}");
        }
        serde_json::from_str(&text).with_context(|| format!("{method} {path}: not JSON: {text}"))
    }

    pub async fn signup(&self, username: &str) -> Result<Account> {
        let v =
            self.post("/api/auth/signup", None, json!({"username": username, "password": "bench-password"})).await?;
        let token = v["token"].as_str().context("signup: no token")?.to_string();
        let user_id = v["user"]["id"].as_str().context("signup: no user id")?.to_string();
        Ok(Account { token, user_id })
    }

    /// Signs up `names`, several at once; fails on the first refusal.
    pub async fn signup_many(&self, names: Vec<String>, progress: impl Fn() + Send + Sync) -> Result<Vec<Account>> {
        let progress = Arc::new(progress);
        let results: Vec<Result<Account>> = stream::iter(names)
            .map(|name| {
                let progress = progress.clone();
                async move {
                    let a = self.signup(&name).await;
                    progress();
                    a
                }
            })
            .buffered(SIGNUP_CONCURRENCY)
            .collect()
            .await;
        results.into_iter().collect()
    }

    /// A guild owned by `owner` that every one of `members` joins; returns its id and its text
    /// channel's.
    pub async fn guild(&self, name: &str, owner: &Account, members: &[Account]) -> Result<(String, String)> {
        let g = self.post("/api/guilds", Some(&owner.token), json!({"name": name})).await?;
        let guild = g["guild"]["id"].as_str().context("guild: no id")?.to_string();
        let text = g["channels"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["kind"] == "text"))
            .and_then(|c| c["id"].as_str())
            .context("guild: no text channel")?
            .to_string();
        let inv = self.post(&format!("/api/guilds/{guild}/invites"), Some(&owner.token), json!({})).await?;
        let code = inv["code"].as_str().context("invite: no code")?.to_string();
        let joins = members.iter().filter(|m| m.user_id != owner.user_id).map(|m| {
            let path = format!("/api/invites/{code}");
            async move { self.post(&path, Some(&m.token), json!({})).await }
        });
        let joined: Vec<Result<Value>> = stream::iter(joins).buffer_unordered(16).collect().await;
        joined.into_iter().collect::<Result<Vec<_>>>()?;
        Ok((guild, text))
    }

    /// A voice channel of `guild` in `mode` (`sfu`, `mcu`, `hybrid`).
    pub async fn voice_channel(&self, owner: &Account, guild: &str, name: &str, mode: &str) -> Result<String> {
        let body = json!({"name": name, "kind": "voice", "voice_mode": mode});
        let c = self.post(&format!("/api/guilds/{guild}/channels"), Some(&owner.token), body).await?;
        Ok(c["id"].as_str().context("channel: no id")?.to_string())
    }

    /// `GET /voice/stats`, with the operator token ([`stats_token`]).
    pub async fn voice_stats(&self) -> Result<Value> {
        let req = self.http.get(format!("{}/voice/stats", self.base)).bearer_auth(stats_token());
        let resp = req.send().await.context("GET /voice/stats")?;
        resp.error_for_status().context("GET /voice/stats")?.json().await.context("/voice/stats: not JSON")
    }
}

/// The operator token for `/voice/stats`: `CONFAB_VOICE_STATS_TOKEN` when set (a given server's),
/// else one made up per run and handed to the servers the testbed starts.
pub fn stats_token() -> &'static str {
    static TOKEN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TOKEN.get_or_init(|| {
        std::env::var("CONFAB_VOICE_STATS_TOKEN")
            .ok()
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| format!("bench-{:016x}", rand::random::<u64>()))
    })
}

/// A short random tag, so the accounts of a run against a given server never collide with an
/// earlier run's.
pub fn run_tag() -> String {
    format!("{:06x}", rand::random::<u32>() & 0xff_ffff)
}
