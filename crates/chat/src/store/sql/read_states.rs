use super::{SqlStore, id};
use crate::id::Id;
use crate::store::{ReadState, ReadStateStore, Result};
use async_trait::async_trait;
use sqlx::Row;

#[async_trait]
impl ReadStateStore for SqlStore {
    async fn ack(&self, user: Id, channel: Id, message: Id) -> Result<()> {
        let _writer = self.writer().await;
        sqlx::query(
            "INSERT INTO read_states (user_id, channel_id, last_read_id) VALUES ($1, $2, $3) \
             ON CONFLICT (user_id, channel_id) DO UPDATE SET last_read_id = \
             CASE WHEN excluded.last_read_id > read_states.last_read_id \
             THEN excluded.last_read_id ELSE read_states.last_read_id END",
        )
        .bind(user.0)
        .bind(channel.0)
        .bind(message.0)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn read_states(&self, user: Id, guild: Id) -> Result<Vec<ReadState>> {
        let rows = sqlx::query(
            "SELECT c.id AS channel_id, COALESCE(r.last_read_id, 0) AS last_read_id, \
             (SELECT COUNT(*) FROM messages m WHERE m.channel_id = c.id \
                AND m.id > COALESCE(r.last_read_id, 0) AND m.author_id <> $1) AS unread_count, \
             (SELECT COUNT(*) FROM mentions x JOIN messages m ON m.id = x.message_id \
                WHERE x.user_id = $1 AND x.channel_id = c.id \
                AND x.message_id > COALESCE(r.last_read_id, 0) AND m.author_id <> $1) AS mention_count \
             FROM channels c LEFT JOIN read_states r ON r.channel_id = c.id AND r.user_id = $1 \
             WHERE c.guild_id = $2 AND c.kind IN ('text', 'live') ORDER BY c.position, c.id",
        )
        .bind(user.0)
        .bind(guild.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ReadState {
                    channel_id: id(r, "channel_id")?,
                    last_read_id: id(r, "last_read_id")?,
                    unread_count: r.try_get("unread_count")?,
                    mention_count: r.try_get("mention_count")?,
                })
            })
            .collect()
    }
}
