use super::{SqlStore, id};
use crate::id::Id;
use crate::store::{Guild, Member, MemberStore, Result, StoreError};
use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;

fn member(r: &AnyRow) -> Result<Member> {
    Ok(Member {
        guild_id: id(r, "guild_id")?,
        user_id: id(r, "user_id")?,
        username: r.try_get("username")?,
        display_name: r.try_get("display_name")?,
        avatar: r.try_get("avatar")?,
        joined_at: r.try_get("joined_at")?,
        roles: Vec::new(),
        timeout_until: r.try_get("timeout_until")?,
    })
}

impl SqlStore {
    /// Fills in the roles of `members` (of one guild, by user id range: one query per page).
    async fn with_roles(&self, guild: Id, mut members: Vec<Member>) -> Result<Vec<Member>> {
        let (Some(lo), Some(hi)) =
            (members.iter().map(|m| m.user_id.0).min(), members.iter().map(|m| m.user_id.0).max())
        else {
            return Ok(members);
        };
        let rows = sqlx::query(
            "SELECT mr.user_id, mr.role_id FROM member_roles mr JOIN roles r ON r.id = mr.role_id \
             WHERE mr.guild_id = $1 AND mr.user_id BETWEEN $2 AND $3 ORDER BY r.position DESC, r.id",
        )
        .bind(guild.0)
        .bind(lo)
        .bind(hi)
        .fetch_all(&self.pool)
        .await?;
        let mut by_user: std::collections::HashMap<Id, Vec<Id>> = std::collections::HashMap::new();
        for r in &rows {
            by_user.entry(id(r, "user_id")?).or_default().push(id(r, "role_id")?);
        }
        for m in &mut members {
            m.roles = by_user.remove(&m.user_id).unwrap_or_default();
        }
        Ok(members)
    }
}

#[async_trait]
impl MemberStore for SqlStore {
    async fn remove_member(&self, guild: Id, user: Id) -> Result<bool> {
        let _writer = self.writer().await;
        let r = sqlx::query("DELETE FROM members WHERE guild_id = $1 AND user_id = $2")
            .bind(guild.0)
            .bind(user.0)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    async fn share_a_guild(&self, a: Id, b: Id) -> Result<bool> {
        let row = sqlx::query(
            "SELECT 1 AS one FROM members x JOIN members y ON y.guild_id = x.guild_id \
             WHERE x.user_id = $1 AND y.user_id = $2 LIMIT 1",
        )
        .bind(a.0)
        .bind(b.0)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    async fn is_member(&self, guild: Id, user: Id) -> Result<bool> {
        let row = sqlx::query("SELECT 1 AS one FROM members WHERE guild_id = $1 AND user_id = $2")
            .bind(guild.0)
            .bind(user.0)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    async fn members(&self, guild: Id) -> Result<Vec<Member>> {
        let rows = sqlx::query(
            "SELECT m.guild_id, m.user_id, u.username, u.display_name, u.avatar, m.joined_at, m.timeout_until FROM members m \
             JOIN users u ON u.id = m.user_id WHERE m.guild_id = $1 ORDER BY m.joined_at, m.user_id",
        )
        .bind(guild.0)
        .fetch_all(&self.pool)
        .await?;
        let members = rows.iter().map(member).collect::<Result<Vec<_>>>()?;
        self.with_roles(guild, members).await
    }

    async fn members_page(&self, guild: Id, after: Option<Id>, limit: u32) -> Result<Vec<Member>> {
        let rows = sqlx::query(
            "SELECT m.guild_id, m.user_id, u.username, u.display_name, u.avatar, m.joined_at, m.timeout_until FROM members m \
             JOIN users u ON u.id = m.user_id WHERE m.guild_id = $1 AND m.user_id > $2 \
             ORDER BY m.user_id LIMIT $3",
        )
        .bind(guild.0)
        .bind(after.map_or(i64::MIN, |a| a.0))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let members = rows.iter().map(member).collect::<Result<Vec<_>>>()?;
        self.with_roles(guild, members).await
    }

    async fn member_count(&self, guild: Id) -> Result<u64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM members WHERE guild_id = $1")
            .bind(guild.0)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<i64, _>("n")?.max(0) as u64)
    }

    async fn join_by_invite(&self, code: &str, user: Id, now_ms: i64) -> Result<(Guild, bool)> {
        let _writer = self.writer().await;
        // SQLite: take the write lock up front. A deferred transaction that reads and then writes gets
        // SQLITE_BUSY ("database is locked") at once, without waiting, if another write commits between.
        let mut tx = if self.backend == "sqlite" {
            self.pool.begin_with("BEGIN IMMEDIATE").await?
        } else {
            self.pool.begin().await?
        };
        let row = sqlx::query(
            "SELECT g.id, g.name, g.owner_id, g.created_at FROM invites i JOIN guilds g ON g.id = i.guild_id \
             WHERE i.code = $1 AND (i.expires_at IS NULL OR i.expires_at > $2) \
             AND (i.max_uses IS NULL OR i.uses < i.max_uses)",
        )
        .bind(code)
        .bind(now_ms)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound("invite"))?;
        let guild = super::guilds::guild(&row)?;
        let banned = sqlx::query("SELECT 1 AS one FROM bans WHERE guild_id = $1 AND user_id = $2")
            .bind(guild.id.0)
            .bind(user.0)
            .fetch_optional(&mut *tx)
            .await?;
        if banned.is_some() {
            return Err(StoreError::Banned);
        }
        let added = sqlx::query(
            "INSERT INTO members (guild_id, user_id, joined_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(guild.id.0)
        .bind(user.0)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            > 0;
        if added {
            // Conditional so that two racing redeemers cannot exceed max_uses.
            let counted = sqlx::query(
                "UPDATE invites SET uses = uses + 1 WHERE code = $1 AND (max_uses IS NULL OR uses < max_uses)",
            )
            .bind(code)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if counted == 0 {
                return Err(StoreError::NotFound("invite"));
            }
        }
        tx.commit().await?;
        Ok((guild, added))
    }
}
