use super::{SqlStore, id};
use crate::id::Id;
use crate::store::{Result, StreamKeyStore};
use async_trait::async_trait;

#[async_trait]
impl StreamKeyStore for SqlStore {
    async fn set_stream_key(&self, channel: Id, key_hash: &str, now_ms: i64) -> Result<()> {
        let _writer = self.writer().await;
        sqlx::query(
            "INSERT INTO stream_keys (channel_id, key_hash, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (channel_id) DO UPDATE SET key_hash = excluded.key_hash, created_at = excluded.created_at",
        )
        .bind(channel.0)
        .bind(key_hash)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn channel_for_stream_key(&self, key_hash: &str) -> Result<Option<Id>> {
        let row = sqlx::query("SELECT channel_id FROM stream_keys WHERE key_hash = $1")
            .bind(key_hash)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| id(&r, "channel_id")).transpose()
    }
}
