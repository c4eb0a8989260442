use super::{SqlStore, channels, id, opt_id, users};
use crate::id::Id;
use crate::store::{Channel, Dm, DmStore, Result, StoreError, User};
use async_trait::async_trait;
use sqlx::Row;
use std::collections::HashMap;

/// The key of a pair's one 1:1 DM: the same whichever of the two opens it.
fn pair(a: Id, b: Id) -> String {
    format!("{}:{}", a.0.min(b.0), a.0.max(b.0))
}

const CHANNEL: &str = "SELECT id, guild_id, name, kind, position, created_at, voice_mode, slow_mode_secs, topic \
                       FROM channels WHERE id = $1";

#[async_trait]
impl DmStore for SqlStore {
    async fn open_dm(&self, c: &Channel, a: Id, b: Id) -> Result<(Channel, bool)> {
        let _writer = self.writer().await;
        let key = pair(a, b);
        let existing = || async {
            let row = sqlx::query("SELECT channel_id FROM dm_pairs WHERE pair = $1")
                .bind(&key)
                .fetch_optional(&self.pool)
                .await?;
            let Some(row) = row else { return Ok::<_, StoreError>(None) };
            let found = sqlx::query(CHANNEL).bind(id(&row, "channel_id")?.0).fetch_one(&self.pool).await?;
            Ok(Some(channels::channel(&found)?))
        };
        if let Some(found) = existing().await? {
            return Ok((found, false));
        }
        let mut tx = self.pool.begin().await?;
        channels::insert(c).execute(&mut *tx).await?;
        for user in [a, b] {
            sqlx::query("INSERT INTO dm_recipients (channel_id, user_id) VALUES ($1, $2)")
                .bind(c.id.0)
                .bind(user.0)
                .execute(&mut *tx)
                .await?;
        }
        let claimed = sqlx::query("INSERT INTO dm_pairs (pair, channel_id) VALUES ($1, $2)")
            .bind(&key)
            .bind(c.id.0)
            .execute(&mut *tx)
            .await;
        match claimed {
            Ok(_) => {
                tx.commit().await?;
                Ok((c.clone(), true))
            }
            // Opened by the other side meanwhile (Postgres has no writer gate): theirs stands.
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                tx.rollback().await?;
                existing().await?.map(|c| (c, false)).ok_or(StoreError::NotFound("dm"))
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn create_group_dm(&self, c: &Channel, recipients: &[Id]) -> Result<()> {
        let _writer = self.writer().await;
        let mut tx = self.pool.begin().await?;
        channels::insert(c).execute(&mut *tx).await?;
        for user in recipients {
            sqlx::query("INSERT INTO dm_recipients (channel_id, user_id) VALUES ($1, $2)")
                .bind(c.id.0)
                .bind(user.0)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn recipients(&self, channel: Id) -> Result<Vec<User>> {
        let rows = sqlx::query(
            "SELECT u.id, u.username, u.created_at, u.display_name, u.avatar FROM dm_recipients d JOIN users u ON u.id = d.user_id \
             WHERE d.channel_id = $1 ORDER BY u.id",
        )
        .bind(channel.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(users::user).collect()
    }

    async fn dms_of(&self, user: Id) -> Result<Vec<Dm>> {
        let rows = sqlx::query(
            "SELECT c.id, c.guild_id, c.name, c.kind, c.position, c.created_at, c.voice_mode, c.slow_mode_secs, c.topic, \
             (SELECT MAX(m.id) FROM messages m WHERE m.channel_id = c.id) AS last_message_id, \
             (SELECT COUNT(*) FROM messages m WHERE m.channel_id = c.id \
                AND m.id > COALESCE(r.last_read_id, 0) AND m.author_id <> $1) AS unread_count, \
             (SELECT COUNT(*) FROM mentions x JOIN messages m ON m.id = x.message_id \
                WHERE x.user_id = $1 AND x.channel_id = c.id \
                AND x.message_id > COALESCE(r.last_read_id, 0) AND m.author_id <> $1) AS mention_count \
             FROM dm_recipients d JOIN channels c ON c.id = d.channel_id \
             LEFT JOIN read_states r ON r.channel_id = c.id AND r.user_id = $1 \
             WHERE d.user_id = $1",
        )
        .bind(user.0)
        .fetch_all(&self.pool)
        .await?;
        let people = sqlx::query(
            "SELECT d.channel_id, u.id, u.username, u.created_at, u.display_name, u.avatar FROM dm_recipients d \
             JOIN dm_recipients me ON me.channel_id = d.channel_id AND me.user_id = $1 \
             JOIN users u ON u.id = d.user_id ORDER BY u.id",
        )
        .bind(user.0)
        .fetch_all(&self.pool)
        .await?;
        let mut by_channel: HashMap<Id, Vec<User>> = HashMap::new();
        for p in &people {
            by_channel.entry(id(p, "channel_id")?).or_default().push(users::user(p)?);
        }
        let mut out = rows
            .iter()
            .map(|r| {
                let channel = channels::channel(r)?;
                Ok(Dm {
                    recipients: by_channel.remove(&channel.id).unwrap_or_default(),
                    channel,
                    last_message_id: opt_id(r, "last_message_id")?,
                    unread_count: r.try_get("unread_count")?,
                    mention_count: r.try_get("mention_count")?,
                })
            })
            .collect::<Result<Vec<Dm>>>()?;
        // Snowflakes grow with time: the latest message, else the channel's creation.
        out.sort_by_key(|d| std::cmp::Reverse(d.last_message_id.unwrap_or(d.channel.id)));
        Ok(out)
    }
}
