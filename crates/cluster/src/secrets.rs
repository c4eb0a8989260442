//! The signing secret every node must share (voice tokens, watch tokens, attachment links: a link
//! signed by one node is checked by another). When `chat.voice_token_secret` is not configured,
//! the first node makes one and keeps it in KV (`confab_secrets`, never expiring); the others read
//! it. Anyone who can read that bucket can sign tokens: NATS access is trusted like the database's.

use bytes::Bytes;
use std::time::Duration;

const BUCKET: &str = "confab_secrets";
const KEY: &str = "signing";

/// The cluster's signing secret, made now if no node made it before.
pub async fn signing_secret(js: &async_nats::jetstream::Context) -> Result<String, crate::Error> {
    let kv = crate::worker::bucket(js, BUCKET, Duration::ZERO, 1).await?;
    let fresh = chat::auth::new_token();
    if kv.create(KEY, Bytes::from(fresh.clone())).await.is_ok() {
        return Ok(fresh);
    }
    match kv.get(KEY).await {
        Ok(Some(v)) if !v.is_empty() => Ok(String::from_utf8_lossy(&v).into_owned()),
        Ok(_) => Err(crate::Error::Bus("the signing secret in confab_secrets is empty".into())),
        Err(e) => Err(crate::Error::Bus(format!("reading the signing secret: {e}"))),
    }
}
