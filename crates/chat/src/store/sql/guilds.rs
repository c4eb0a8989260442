use super::{SqlStore, conflict, id};
use crate::id::Id;
use crate::store::{Channel, Guild, GuildStore, Invite, Result};

fn invite(r: &AnyRow) -> Result<Invite> {
    Ok(Invite {
        code: r.try_get("code")?,
        guild_id: id(r, "guild_id")?,
        creator_id: id(r, "creator_id")?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        max_uses: r.try_get("max_uses")?,
        uses: r.try_get("uses")?,
    })
}
use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;

pub(super) fn guild(row: &AnyRow) -> Result<Guild> {
    Ok(Guild {
        id: id(row, "id")?,
        name: row.try_get("name")?,
        owner_id: id(row, "owner_id")?,
        created_at: row.try_get("created_at")?,
    })
}

#[async_trait]
impl GuildStore for SqlStore {
    async fn create_guild(&self, g: &Guild, channels: &[Channel]) -> Result<()> {
        let _writer = self.writer().await;
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT INTO guilds (id, name, owner_id, created_at) VALUES ($1, $2, $3, $4)")
            .bind(g.id.0)
            .bind(&g.name)
            .bind(g.owner_id.0)
            .bind(g.created_at)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO members (guild_id, user_id, joined_at) VALUES ($1, $2, $3)")
            .bind(g.id.0)
            .bind(g.owner_id.0)
            .bind(g.created_at)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO roles (id, guild_id, name, permissions, position, created_at) VALUES ($1, $1, '@everyone', $2, 0, $3)",
        )
        .bind(g.id.0)
        .bind(crate::perms::Permissions::EVERYONE_DEFAULT.0 as i64)
        .bind(g.created_at)
        .execute(&mut *tx)
        .await?;
        for c in channels {
            super::channels::insert(c).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn guild(&self, gid: Id) -> Result<Option<Guild>> {
        sqlx::query("SELECT id, name, owner_id, created_at FROM guilds WHERE id = $1")
            .bind(gid.0)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| guild(&r))
            .transpose()
    }

    async fn guilds_of(&self, user: Id) -> Result<Vec<Guild>> {
        let rows = sqlx::query(
            "SELECT g.id, g.name, g.owner_id, g.created_at FROM guilds g \
             JOIN members m ON m.guild_id = g.id WHERE m.user_id = $1 ORDER BY g.id",
        )
        .bind(user.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(guild).collect()
    }

    async fn create_invite(&self, i: &Invite) -> Result<()> {
        let _writer = self.writer().await;
        sqlx::query(
            "INSERT INTO invites (code, guild_id, creator_id, created_at, expires_at, max_uses, uses) \
             VALUES ($1, $2, $3, $4, $5, $6, 0)",
        )
        .bind(&i.code)
        .bind(i.guild_id.0)
        .bind(i.creator_id.0)
        .bind(i.created_at)
        .bind(i.expires_at)
        .bind(i.max_uses)
        .execute(&self.pool)
        .await
        .map_err(conflict("invite"))?;
        Ok(())
    }

    async fn invites(&self, guild: Id) -> Result<Vec<Invite>> {
        let rows = sqlx::query(
            "SELECT code, guild_id, creator_id, created_at, expires_at, max_uses, uses FROM invites \
             WHERE guild_id = $1 ORDER BY created_at DESC, code",
        )
        .bind(guild.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(invite).collect()
    }

    async fn invite(&self, code: &str) -> Result<Option<Invite>> {
        sqlx::query(
            "SELECT code, guild_id, creator_id, created_at, expires_at, max_uses, uses FROM invites WHERE code = $1",
        )
        .bind(code)
        .fetch_optional(&self.pool)
        .await?
        .map(|r| invite(&r))
        .transpose()
    }

    async fn delete_invite(&self, code: &str) -> Result<bool> {
        let _writer = self.writer().await;
        let r = sqlx::query("DELETE FROM invites WHERE code = $1").bind(code).execute(&self.pool).await?;
        Ok(r.rows_affected() > 0)
    }

    async fn rename_guild(&self, guild: Id, name: &str) -> Result<bool> {
        let _writer = self.writer().await;
        let r = sqlx::query("UPDATE guilds SET name = $2 WHERE id = $1")
            .bind(guild.0)
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    async fn delete_guild(&self, guild: Id) -> Result<bool> {
        let _writer = self.writer().await;
        // Channels, messages, members, roles, invites, reports and the log go with it (ON DELETE CASCADE).
        let r = sqlx::query("DELETE FROM guilds WHERE id = $1").bind(guild.0).execute(&self.pool).await?;
        Ok(r.rows_affected() > 0)
    }
}
