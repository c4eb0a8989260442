use super::{SqlStore, id};
use crate::id::Id;
use crate::perms::{Access, Permissions};
use crate::store::{Result, Role, RoleStore, StoreError};
use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;

fn role(r: &AnyRow) -> Result<Role> {
    Ok(Role {
        id: id(r, "id")?,
        guild_id: id(r, "guild_id")?,
        name: r.try_get("name")?,
        permissions: Permissions(r.try_get::<i64, _>("permissions")? as u64),
        position: r.try_get("position")?,
        created_at: r.try_get("created_at")?,
    })
}

#[async_trait]
impl RoleStore for SqlStore {
    async fn roles(&self, guild: Id) -> Result<Vec<Role>> {
        let rows = sqlx::query(
            "SELECT id, guild_id, name, permissions, position, created_at FROM roles WHERE guild_id = $1 \
             ORDER BY position DESC, id",
        )
        .bind(guild.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(role).collect()
    }

    async fn create_role(&self, r: &Role) -> Result<()> {
        let _writer = self.writer().await;
        sqlx::query(
            "INSERT INTO roles (id, guild_id, name, permissions, position, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(r.id.0)
        .bind(r.guild_id.0)
        .bind(&r.name)
        .bind(r.permissions.0 as i64)
        .bind(r.position)
        .bind(r.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn update_role(&self, r: &Role) -> Result<bool> {
        let _writer = self.writer().await;
        let done =
            sqlx::query("UPDATE roles SET name = $3, permissions = $4, position = $5 WHERE id = $1 AND guild_id = $2")
                .bind(r.id.0)
                .bind(r.guild_id.0)
                .bind(&r.name)
                .bind(r.permissions.0 as i64)
                .bind(r.position)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_role(&self, guild: Id, role: Id) -> Result<bool> {
        let _writer = self.writer().await;
        // Members lose it with it (member_roles: ON DELETE CASCADE).
        let done = sqlx::query("DELETE FROM roles WHERE id = $1 AND guild_id = $2 AND id <> guild_id")
            .bind(role.0)
            .bind(guild.0)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn add_member_role(&self, guild: Id, user: Id, role: Id) -> Result<bool> {
        let _writer = self.writer().await;
        let done = sqlx::query(
            "INSERT INTO member_roles (guild_id, user_id, role_id) \
             SELECT m.guild_id, m.user_id, $3 FROM members m WHERE m.guild_id = $1 AND m.user_id = $2 \
             ON CONFLICT DO NOTHING",
        )
        .bind(guild.0)
        .bind(user.0)
        .bind(role.0)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() > 0 {
            return Ok(true);
        }
        let member = sqlx::query("SELECT 1 AS one FROM members WHERE guild_id = $1 AND user_id = $2")
            .bind(guild.0)
            .bind(user.0)
            .fetch_optional(&self.pool)
            .await?;
        member.map(|_| false).ok_or(StoreError::NotFound("member"))
    }

    async fn remove_member_role(&self, guild: Id, user: Id, role: Id) -> Result<bool> {
        let _writer = self.writer().await;
        let done = sqlx::query("DELETE FROM member_roles WHERE guild_id = $1 AND user_id = $2 AND role_id = $3")
            .bind(guild.0)
            .bind(user.0)
            .bind(role.0)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn access(&self, guild: Id, user: Id) -> Result<Option<Access>> {
        // The member's own row, then every role that applies: @everyone (id = guild) and theirs.
        let Some(m) = sqlx::query(
            "SELECT m.timeout_until, g.owner_id FROM members m JOIN guilds g ON g.id = m.guild_id \
             WHERE m.guild_id = $1 AND m.user_id = $2",
        )
        .bind(guild.0)
        .bind(user.0)
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let roles = sqlx::query(
            "SELECT permissions, position FROM roles WHERE id = $1 \
             UNION ALL SELECT r.permissions, r.position FROM member_roles mr JOIN roles r ON r.id = mr.role_id \
             WHERE mr.guild_id = $1 AND mr.user_id = $2",
        )
        .bind(guild.0)
        .bind(user.0)
        .fetch_all(&self.pool)
        .await?;
        let owner = id(&m, "owner_id")? == user;
        let (mut permissions, mut rank) = (Permissions::NONE, 0);
        for r in &roles {
            permissions = permissions | Permissions(r.try_get::<i64, _>("permissions")? as u64);
            rank = rank.max(r.try_get::<i64, _>("position")?);
        }
        Ok(Some(Access {
            owner,
            permissions,
            rank: if owner { i64::MAX } else { rank },
            timeout_until: m.try_get("timeout_until")?,
        }))
    }
}
