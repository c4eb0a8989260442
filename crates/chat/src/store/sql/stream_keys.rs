use super::{SqlStore, id};
use crate::id::Id;
use crate::store::{Result, StreamKeyStore, StreamSettings};
use async_trait::async_trait;
use sqlx::Row;

#[async_trait]
impl StreamKeyStore for SqlStore {
    async fn stream_settings(&self, channel: Id) -> Result<StreamSettings> {
        let row = sqlx::query("SELECT public, title FROM stream_settings WHERE channel_id = $1")
            .bind(channel.0)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => StreamSettings { public: r.try_get::<i64, _>("public")? != 0, title: r.try_get("title")? },
            None => StreamSettings::default(),
        })
    }

    async fn set_stream_settings(&self, channel: Id, settings: &StreamSettings) -> Result<()> {
        let _writer = self.writer().await;
        sqlx::query(
            "INSERT INTO stream_settings (channel_id, public, title) VALUES ($1, $2, $3) \
             ON CONFLICT (channel_id) DO UPDATE SET public = excluded.public, title = excluded.title",
        )
        .bind(channel.0)
        .bind(i64::from(settings.public))
        .bind(&settings.title)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

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
