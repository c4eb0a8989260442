//! Voice tokens: a signed, expiring grant to join one voice room as one user, minted by the chat
//! plane after its membership check and verified by the voice gateway. Format:
//! `base64url(json grant) "." base64url(HMAC-SHA256(secret, json grant))`, so any node holding the
//! secret can verify without a database round trip.

use crate::id::Id;
use crate::store::VoiceMode;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// What a voice token grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoiceGrant {
    pub user: Id,
    pub username: String,
    pub guild: Id,
    /// The voice channel, which is the room.
    pub room: Id,
    /// May server-mute others (the guild owner).
    pub moderator: bool,
    /// The room's media mode, as stored with the channel.
    #[serde(default)]
    pub mode: VoiceMode,
    /// Unix milliseconds.
    pub expires_at: i64,
    /// The login (hash of the bearer token) that asked for this grant: when it is revoked or
    /// expires, the voice session ends too. `None` for embedders' tokens, which have no login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VoiceTokenError {
    #[error("malformed voice token")]
    Malformed,
    #[error("voice token signature does not match")]
    BadSignature,
    #[error("voice token expired")]
    Expired,
}

#[derive(Clone)]
pub struct VoiceTokens {
    key: Vec<u8>,
}

impl std::fmt::Debug for VoiceTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VoiceTokens(..)")
    }
}

impl VoiceTokens {
    pub fn new(secret: &[u8]) -> VoiceTokens {
        VoiceTokens { key: secret.to_vec() }
    }

    fn mac(&self) -> Hmac<Sha256> {
        // HMAC accepts keys of any length.
        Hmac::<Sha256>::new_from_slice(&self.key).unwrap_or_else(|_| unreachable!("hmac takes any key length"))
    }

    pub fn mint(&self, grant: &VoiceGrant) -> String {
        let body = serde_json::to_vec(grant).unwrap_or_default();
        let mut mac = self.mac();
        mac.update(&body);
        let sig = mac.finalize().into_bytes();
        format!("{}.{}", URL_SAFE_NO_PAD.encode(&body), URL_SAFE_NO_PAD.encode(sig))
    }

    /// The grant, if the signature matches and it has not expired at `now_ms`.
    pub fn verify(&self, token: &str, now_ms: i64) -> Result<VoiceGrant, VoiceTokenError> {
        let (body, sig) = token.split_once('.').ok_or(VoiceTokenError::Malformed)?;
        let body = URL_SAFE_NO_PAD.decode(body).map_err(|_| VoiceTokenError::Malformed)?;
        let sig = URL_SAFE_NO_PAD.decode(sig).map_err(|_| VoiceTokenError::Malformed)?;
        let mut mac = self.mac();
        mac.update(&body);
        mac.verify_slice(&sig).map_err(|_| VoiceTokenError::BadSignature)?;
        let grant: VoiceGrant = serde_json::from_slice(&body).map_err(|_| VoiceTokenError::Malformed)?;
        if grant.expires_at <= now_ms {
            return Err(VoiceTokenError::Expired);
        }
        Ok(grant)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(expires_at: i64) -> VoiceGrant {
        VoiceGrant {
            user: Id(1),
            username: "a".into(),
            guild: Id(2),
            room: Id(3),
            moderator: false,
            mode: VoiceMode::Hybrid,
            expires_at,
            login: None,
        }
    }

    #[test]
    fn mint_verify_and_reject() {
        let t = VoiceTokens::new(b"secret");
        let tok = t.mint(&grant(1000));
        assert_eq!(t.verify(&tok, 999).unwrap(), grant(1000));
        assert_eq!(t.verify(&tok, 1000).unwrap_err(), VoiceTokenError::Expired);
        assert_eq!(VoiceTokens::new(b"other").verify(&tok, 0).unwrap_err(), VoiceTokenError::BadSignature);
        assert_eq!(t.verify("garbage", 0).unwrap_err(), VoiceTokenError::Malformed);
        assert_eq!(t.verify("a.b", 0).unwrap_err(), VoiceTokenError::Malformed);
        // A forged body with the old signature fails.
        let (_, sig) = tok.split_once('.').unwrap();
        let mut forged = grant(1000);
        forged.moderator = true;
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
        assert_eq!(t.verify(&format!("{body}.{sig}"), 0).unwrap_err(), VoiceTokenError::BadSignature);
    }
}
