use super::{SqlStore, id, opt_id};
use crate::id::Id;
use crate::store::{AuditEntry, Ban, ModerationStore, Result};
use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;

fn ban(r: &AnyRow) -> Result<Ban> {
    Ok(Ban {
        guild_id: id(r, "guild_id")?,
        user_id: id(r, "user_id")?,
        username: r.try_get("username")?,
        moderator_id: id(r, "moderator_id")?,
        reason: r.try_get("reason")?,
        created_at: r.try_get("created_at")?,
    })
}

fn entry(r: &AnyRow) -> Result<AuditEntry> {
    Ok(AuditEntry {
        id: id(r, "id")?,
        guild_id: id(r, "guild_id")?,
        actor_id: id(r, "actor_id")?,
        action: r.try_get("action")?,
        target_id: opt_id(r, "target_id")?,
        reason: r.try_get("reason")?,
        created_at: r.try_get("created_at")?,
    })
}

#[async_trait]
impl ModerationStore for SqlStore {
    async fn ban(&self, b: &Ban) -> Result<bool> {
        let _writer = self.writer().await;
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO bans (guild_id, user_id, moderator_id, reason, created_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (guild_id, user_id) DO UPDATE SET moderator_id = $3, reason = $4, created_at = $5",
        )
        .bind(b.guild_id.0)
        .bind(b.user_id.0)
        .bind(b.moderator_id.0)
        .bind(&b.reason)
        .bind(b.created_at)
        .execute(&mut *tx)
        .await?;
        let removed = sqlx::query("DELETE FROM members WHERE guild_id = $1 AND user_id = $2")
            .bind(b.guild_id.0)
            .bind(b.user_id.0)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            > 0;
        tx.commit().await?;
        Ok(removed)
    }

    async fn unban(&self, guild: Id, user: Id) -> Result<bool> {
        let _writer = self.writer().await;
        let done = sqlx::query("DELETE FROM bans WHERE guild_id = $1 AND user_id = $2")
            .bind(guild.0)
            .bind(user.0)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn bans(&self, guild: Id) -> Result<Vec<Ban>> {
        let rows = sqlx::query(
            "SELECT b.guild_id, b.user_id, u.username, b.moderator_id, b.reason, b.created_at FROM bans b \
             JOIN users u ON u.id = b.user_id WHERE b.guild_id = $1 ORDER BY b.created_at DESC, b.user_id",
        )
        .bind(guild.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(ban).collect()
    }

    async fn is_banned(&self, guild: Id, user: Id) -> Result<bool> {
        let row = sqlx::query("SELECT 1 AS one FROM bans WHERE guild_id = $1 AND user_id = $2")
            .bind(guild.0)
            .bind(user.0)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    async fn set_timeout(&self, guild: Id, user: Id, until: Option<i64>) -> Result<bool> {
        let _writer = self.writer().await;
        let done = sqlx::query("UPDATE members SET timeout_until = $3 WHERE guild_id = $1 AND user_id = $2")
            .bind(guild.0)
            .bind(user.0)
            .bind(until)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn log(&self, e: &AuditEntry) -> Result<()> {
        let _writer = self.writer().await;
        sqlx::query(
            "INSERT INTO audit_log (id, guild_id, actor_id, action, target_id, reason, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(e.id.0)
        .bind(e.guild_id.0)
        .bind(e.actor_id.0)
        .bind(&e.action)
        .bind(e.target_id.map(|t| t.0))
        .bind(&e.reason)
        .bind(e.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn audit_log(&self, guild: Id, before: Option<Id>, limit: u32) -> Result<Vec<AuditEntry>> {
        let rows = sqlx::query(
            "SELECT id, guild_id, actor_id, action, target_id, reason, created_at FROM audit_log \
             WHERE guild_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
        )
        .bind(guild.0)
        .bind(before.map_or(i64::MAX, |b| b.0))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(entry).collect()
    }
}
