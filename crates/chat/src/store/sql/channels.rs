use super::{SqlStore, id};
use crate::id::Id;
use crate::store::{Channel, ChannelKind, ChannelStore, Result, StoreError, VoiceMode};
use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::{Any, AnyArguments, AnyRow};
use sqlx::query::Query;

macro_rules! select {
    ($rest:literal) => {
        concat!(
            "SELECT id, guild_id, name, kind, position, created_at, voice_mode, slow_mode_secs, topic FROM channels ",
            $rest
        )
    };
}

pub(super) fn insert(c: &Channel) -> Query<'_, Any, AnyArguments> {
    sqlx::query(
        "INSERT INTO channels (id, guild_id, name, kind, position, created_at, voice_mode, slow_mode_secs, topic) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(c.id.0)
    .bind(c.guild_id.map(|g| g.0))
    .bind(&c.name)
    .bind(c.kind.as_str())
    .bind(c.position)
    .bind(c.created_at)
    .bind(c.voice_mode.unwrap_or_default().as_str())
    .bind(c.slow_mode_secs)
    .bind(&c.topic)
}

pub(super) fn channel(row: &AnyRow) -> Result<Channel> {
    let kind: String = row.try_get("kind")?;
    let kind = ChannelKind::parse(&kind).ok_or(StoreError::NotFound("channel kind"))?;
    let mode: String = row.try_get("voice_mode")?;
    let voice_mode = match kind {
        ChannelKind::Voice => Some(VoiceMode::parse(&mode).ok_or(StoreError::NotFound("voice mode"))?),
        ChannelKind::Text | ChannelKind::Live | ChannelKind::Dm => None,
    };
    Ok(Channel {
        id: id(row, "id")?,
        guild_id: row.try_get::<Option<i64>, _>("guild_id")?.map(Id),
        name: row.try_get("name")?,
        kind,
        position: row.try_get("position")?,
        created_at: row.try_get("created_at")?,
        voice_mode,
        slow_mode_secs: row.try_get("slow_mode_secs")?,
        topic: row.try_get("topic")?,
    })
}

#[async_trait]
impl ChannelStore for SqlStore {
    async fn create_channel(&self, c: &Channel) -> Result<()> {
        let _writer = self.writer().await;
        insert(c).execute(&self.pool).await?;
        Ok(())
    }

    async fn channel(&self, cid: Id) -> Result<Option<Channel>> {
        sqlx::query(select!("WHERE id = $1"))
            .bind(cid.0)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| channel(&r))
            .transpose()
    }

    async fn channels(&self, guild: Id) -> Result<Vec<Channel>> {
        let rows = sqlx::query(select!("WHERE guild_id = $1 ORDER BY position, id"))
            .bind(guild.0)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(channel).collect()
    }

    async fn set_voice_mode(&self, channel: Id, mode: VoiceMode) -> Result<bool> {
        let _writer = self.writer().await;
        let done = sqlx::query("UPDATE channels SET voice_mode = $1 WHERE id = $2 AND kind = 'voice'")
            .bind(mode.as_str())
            .bind(channel.0)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn set_name_and_topic(&self, channel: Id, name: &str, topic: &str) -> Result<bool> {
        let _writer = self.writer().await;
        let done = sqlx::query("UPDATE channels SET name = $1, topic = $2 WHERE id = $3")
            .bind(name)
            .bind(topic)
            .bind(channel.0)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn set_slow_mode(&self, channel: Id, secs: i64) -> Result<bool> {
        let _writer = self.writer().await;
        let done = sqlx::query("UPDATE channels SET slow_mode_secs = $1 WHERE id = $2 AND kind IN ('text', 'live')")
            .bind(secs)
            .bind(channel.0)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_channel(&self, channel: Id) -> Result<bool> {
        let _writer = self.writer().await;
        // Messages, their mentions, reactions and attachment rows, and read states go with it.
        let done = sqlx::query("DELETE FROM channels WHERE id = $1 AND guild_id IS NOT NULL")
            .bind(channel.0)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
