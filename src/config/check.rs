//! `confab config check`: every setting validated at once (not the first failure a start would
//! meet), and the effective configuration printed with its secrets masked.

use super::Config;
use std::net::{IpAddr, SocketAddr};

/// Settings whose values are secrets: shown as `***` when set.
const SECRETS: &[(&str, &str)] = &[("chat", "voice_token_secret"), ("voice", "stats_token"), ("turn", "secret")];
/// Settings holding URLs that may carry a password (`scheme://user:password@host`).
const URLS: &[(Option<&str>, &str)] = &[(None, "database_url"), (Some("cluster"), "nats_url")];

impl Config {
    /// Every problem with the configuration, each in a sentence naming its setting; empty when it
    /// is good. `confab serve` refuses a configuration with any (an embedder's own checks stay
    /// those of [`crate::server::Running::start`]).
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut addr = |name: &str, v: &str, may_be_empty: bool| {
            if !(v.is_empty() && may_be_empty) && v.parse::<SocketAddr>().is_err() {
                out.push(format!("{name} {v:?} is not an ip:port"));
            }
        };
        addr("listen", &self.listen, false);
        addr("media.bind", &self.media.bind, false);
        addr("metrics.listen", &self.metrics.listen, true);
        addr("live.rtmp_bind", &self.live.rtmp_bind, true);
        if let Some(ip) = &self.media.public_ip
            && ip.parse::<IpAddr>().is_err()
        {
            out.push(format!("media.public_ip {ip:?} is not an IP address"));
        }
        if !self.database_url.starts_with("sqlite:") && !self.database_url.starts_with("postgres") {
            out.push(format!(
                "database_url {:?} is neither sqlite:<path> nor postgres://…",
                crate::server::redact(&self.database_url)
            ));
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log) {
            out.push(format!("log {:?} is not a log filter: {e}", self.log));
        }
        if let Err(e) = self.cluster.check() {
            out.push(e);
        }
        if let Err(e) = self.turn.check() {
            out.push(e);
        }
        if self.cluster.enabled() && !self.database_url.starts_with("postgres") {
            out.push(format!(
                "cluster.nats_url is set but database_url is {}: the nodes of a cluster share one Postgres store \
                 (postgres://…)",
                crate::server::redact(&self.database_url)
            ));
        }
        let v = &self.video;
        if v.width == 0 || v.height == 0 || v.width % 2 == 1 || v.height % 2 == 1 || v.fps == 0 {
            out.push(format!(
                "video {}x{} at {} fps: sizes must be even and non-zero, fps > 0",
                v.width, v.height, v.fps
            ));
        }
        let l = &self.live;
        if !(l.part_secs > 0.0 && l.part_secs <= l.segment_secs) || l.window_segments < 3 {
            out.push(format!(
                "live: part_secs {} must be > 0 and ≤ segment_secs {}, window_segments {} ≥ 3",
                l.part_secs, l.segment_secs, l.window_segments
            ));
        }
        if self.media.last_n == 0 {
            out.push("media.last_n is 0: no one would hear anyone".into());
        }
        out
    }
}

/// The configuration as TOML, secrets replaced by `***` and URL passwords by `***`.
pub fn masked(cfg: &Config) -> anyhow::Result<String> {
    let mut t = toml::Table::try_from(cfg)?;
    for (section, key) in SECRETS {
        if let Some(v) = t.get_mut(*section).and_then(|s| s.as_table_mut()).and_then(|s| s.get_mut(*key))
            && v.as_str().is_some_and(|s| !s.is_empty())
        {
            *v = toml::Value::String("***".into());
        }
    }
    for (section, key) in URLS {
        let table = match section {
            Some(s) => t.get_mut(*s).and_then(|s| s.as_table_mut()),
            None => Some(&mut t),
        };
        if let Some(v) = table.and_then(|s| s.get_mut(*key))
            && let Some(url) = v.as_str()
        {
            *v = toml::Value::String(crate::server::redact(url));
        }
    }
    Ok(toml::to_string(&t)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_good_and_secrets_masked() {
        let mut c = Config::default();
        assert_eq!(c.problems(), Vec::<String>::new());
        c.database_url = "postgres://confab:hunter22@db/confab".into();
        c.chat.voice_token_secret = Some("s3cret-token".into());
        c.voice.stats_token = Some("stats-token".into());
        c.cluster.nats_url = "nats://u:natspass@127.0.0.1:4222".into();
        c.turn.urls = vec!["turn:turn.example.org:3478?transport=tcp".into()];
        c.turn.secret = "coturn-secret".into();
        assert_eq!(c.problems(), Vec::<String>::new());
        let text = masked(&c).unwrap();
        for secret in ["hunter22", "s3cret-token", "stats-token", "natspass", "coturn-secret"] {
            assert!(!text.contains(secret), "{secret} leaked:\n{text}");
        }
        assert!(text.contains("postgres://confab:***@db/confab") && text.contains("voice_token_secret = \"***\""));
        // What is printed is a configuration confab reads back.
        let back: Config = toml::from_str(&text).unwrap();
        assert_eq!(back.listen, c.listen);
    }

    #[test]
    fn every_problem_is_named() {
        let mut c = Config { listen: "localhost".into(), ..Config::default() };
        c.metrics.listen = "9464".into();
        c.media.public_ip = Some("example.org".into());
        c.database_url = "mysql://x".into();
        c.log = "info,[".into();
        c.video.width = 641;
        c.live.part_secs = 5.0;
        c.media.last_n = 0;
        let p = c.problems();
        for name in ["listen", "metrics.listen", "media.public_ip", "database_url", "log", "video", "live", "last_n"] {
            assert!(p.iter().any(|s| s.contains(name)), "{name} not named in {p:?}");
        }
        assert_eq!(p.len(), 8, "{p:?}");
    }
}
