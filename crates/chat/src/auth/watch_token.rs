//! Watch tokens: the right to fetch one live channel's LL-HLS, handed to members (and to anyone
//! when the stream is public) with the playlist URL, and carried in every URL of it (`?a=`).
//! Format: `{expires, unix s}.{base64url(HMAC-SHA256(secret, "watch:{channel}:{expires}")[..16])}`.
//! The same signer makes attachment URLs (`attachment:{channel}:{id}`, a day), for `<img>` tags
//! that cannot send a bearer token.
//! Tokens are issued per hour (valid two to three hours), so every viewer of a stream in the same
//! hour gets the same URLs, which a CDN can cache once; the HLS server checks them without a
//! database round trip.

use crate::id::Id;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

const HOUR: i64 = 3600;

pub struct WatchTokens {
    key: Vec<u8>,
}

impl std::fmt::Debug for WatchTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WatchTokens(..)")
    }
}

impl WatchTokens {
    pub fn new(secret: &[u8]) -> WatchTokens {
        WatchTokens { key: secret.to_vec() }
    }

    fn mac(&self, scope: &str, expires: i64) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.key).unwrap_or_else(|_| unreachable!("hmac takes any key length"));
        // The scope's prefix ("watch:", "attachment:") keeps these apart from each other and from
        // voice tokens, signed with the same secret.
        mac.update(format!("{scope}:{expires}").as_bytes());
        mac
    }

    /// A token for `scope`, the same for the whole hour, valid `hours` to `hours + 1` hours.
    pub fn mint_scoped(&self, scope: &str, hours: i64, now_ms: i64) -> String {
        let expires = (now_ms / 1000 / HOUR + hours) * HOUR;
        let sig = URL_SAFE_NO_PAD.encode(&self.mac(scope, expires).finalize().into_bytes()[..16]);
        format!("{expires}.{sig}")
    }

    pub fn verify_scoped(&self, scope: &str, token: &str, now_ms: i64) -> bool {
        let Some((expires, sig)) = token.split_once('.') else { return false };
        let Ok(expires) = expires.parse::<i64>() else { return false };
        let Ok(sig) = URL_SAFE_NO_PAD.decode(sig) else { return false };
        // Constant time, on the 16 bytes kept.
        expires > now_ms / 1000 && sig.len() == 16 && self.mac(scope, expires).verify_truncated_left(&sig).is_ok()
    }

    pub fn mint(&self, channel: Id, now_ms: i64) -> String {
        self.mint_scoped(&format!("watch:{}", channel.0), 3, now_ms)
    }

    pub fn verify(&self, channel: Id, token: &str, now_ms: i64) -> bool {
        self.verify_scoped(&format!("watch:{}", channel.0), token, now_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_within_the_hour_bound_to_the_channel_and_expiring() {
        let t = WatchTokens::new(b"secret");
        let (ch, other, now) = (Id(7), Id(8), 1_800_000_000_000);
        let a = t.mint(ch, now);
        assert_eq!(a, t.mint(ch, now + 1000), "the same token all hour");
        assert!(t.verify(ch, &a, now));
        assert!(t.verify(ch, &a, now + 2 * 3_600_000), "still good two hours on");
        assert!(!t.verify(ch, &a, now + 4 * 3_600_000), "expired");
        assert!(!t.verify(other, &a, now), "another channel's");
        assert!(!WatchTokens::new(b"other").verify(ch, &a, now), "another secret's");
        let (exp, _) = a.split_once('.').unwrap();
        let later = (exp.parse::<i64>().unwrap() + 3600).to_string();
        assert!(!t.verify(ch, &a.replacen(exp, &later, 1), now), "an extended expiry");
        for bad in ["", ".", "x.y", "1.", "99999999999999999999.abc"] {
            assert!(!t.verify(ch, bad, now), "{bad:?}");
        }
    }
}
