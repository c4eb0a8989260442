//! TURN credentials for clients whose network blocks UDP: the TURN REST scheme that coturn's
//! `use-auth-secret` / `static-auth-secret` checks. The username is `expiry:user` (expiry in UNIX
//! seconds) and the password base64(HMAC-SHA1(secret, username)), so the TURN server needs no
//! database and a credential stops working at its expiry. Minted per join, handed out in READY.

use crate::protocol::IceServer;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};

/// `[turn]`: the ICE servers clients are given; none when `urls` is empty.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct TurnConfig {
    /// `turn:host:3478?transport=udp`, `turn:host:3478?transport=tcp`, `turns:host:5349`, or
    /// `stun:host:3478`, in the order clients should try them.
    pub urls: Vec<String>,
    /// coturn's `static-auth-secret`; empty: the URLs are handed out without credentials.
    pub secret: String,
    /// How long a minted credential is good for.
    pub ttl_secs: u64,
}

impl TurnConfig {
    pub fn enabled(&self) -> bool {
        !self.urls.is_empty()
    }

    /// The ICE servers for `user`, credentials valid from `now_unix` for `ttl_secs`.
    pub fn ice_servers(&self, user: &str, now_unix: u64) -> Vec<IceServer> {
        if self.urls.is_empty() {
            return Vec::new();
        }
        let (username, credential) = match self.secret.is_empty() {
            true => (None, None),
            false => {
                let (u, c) = credential(&self.secret, user, now_unix + self.ttl_secs.max(60));
                (Some(u), Some(c))
            }
        };
        vec![IceServer { urls: self.urls.clone(), username, credential }]
    }

    /// Problems with the settings, for `confab config check`.
    pub fn check(&self) -> Result<(), String> {
        for url in &self.urls {
            let scheme = url.split(':').next().unwrap_or_default();
            if !matches!(scheme, "turn" | "turns" | "stun" | "stuns") || url.split(':').nth(1).is_none_or(str::is_empty)
            {
                return Err(format!("turn.urls: {url:?} is not a turn:, turns: or stun: URL"));
            }
        }
        let relays = self.urls.iter().any(|u| u.starts_with("turn"));
        if relays && self.secret.is_empty() {
            return Err("turn.urls has a TURN server but turn.secret is empty (coturn's static-auth-secret)".into());
        }
        Ok(())
    }
}

/// The TURN REST credential for `user` expiring at `expiry` (UNIX seconds).
pub fn credential(secret: &str, user: &str, expiry: u64) -> (String, String) {
    let username = format!("{expiry}:{user}");
    let Ok(mut mac) = Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()) else { unreachable!("HMAC takes any key") };
    mac.update(username.as_bytes());
    let password = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    (username, password)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rest_credentials_as_coturn_checks_them() {
        // `echo -n "1700000000:42" | openssl dgst -binary -sha1 -hmac north | base64`
        let (u, p) = credential("north", "42", 1_700_000_000);
        assert_eq!(u, "1700000000:42");
        assert_eq!(p, "DWX3FI7DiPIpadEYQAZsnZBAagI=");
    }

    #[test]
    fn ice_servers_and_checks() {
        let mut t = TurnConfig::default();
        assert!(t.ice_servers("1", 0).is_empty() && t.check().is_ok());
        t.urls = vec!["turn:10.0.0.1:3478?transport=tcp".into()];
        assert!(t.check().unwrap_err().contains("secret"));
        t.secret = "s".into();
        t.ttl_secs = 3600;
        let s = t.ice_servers("7", 100);
        assert_eq!(s[0].username.as_deref(), Some("3700:7"));
        assert!(s[0].credential.is_some());
        t.urls.push("http://x".into());
        assert!(t.check().unwrap_err().contains("http://x"));
        let stun = TurnConfig { urls: vec!["stun:stun.example.org:3478".into()], ..TurnConfig::default() };
        assert!(stun.check().is_ok() && stun.ice_servers("1", 0)[0].username.is_none());
    }
}
