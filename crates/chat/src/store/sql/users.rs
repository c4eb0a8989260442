use super::{SqlStore, conflict, id};
use crate::id::Id;
use crate::store::{Result, User, UserStore};
use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;

pub(super) fn user(row: &AnyRow) -> Result<User> {
    Ok(User {
        id: id(row, "id")?,
        username: row.try_get("username")?,
        created_at: row.try_get("created_at")?,
        display_name: row.try_get("display_name")?,
        avatar: row.try_get("avatar")?,
    })
}

#[async_trait]
impl UserStore for SqlStore {
    async fn create_user(&self, u: &User, password_hash: &str) -> Result<()> {
        let _writer = self.writer().await;
        sqlx::query("INSERT INTO users (id, username, password_hash, created_at) VALUES ($1, $2, $3, $4)")
            .bind(u.id.0)
            .bind(&u.username)
            .bind(password_hash)
            .bind(u.created_at)
            .execute(&self.pool)
            .await
            .map_err(conflict("username"))?;
        Ok(())
    }

    async fn user(&self, uid: Id) -> Result<Option<User>> {
        sqlx::query("SELECT id, username, created_at, display_name, avatar FROM users WHERE id = $1")
            .bind(uid.0)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| user(&r))
            .transpose()
    }

    async fn credentials(&self, username: &str) -> Result<Option<(User, String)>> {
        let row =
            sqlx::query("SELECT id, username, created_at, display_name, avatar, password_hash FROM users WHERE lower(username) = lower($1)")
                .bind(username)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|r| Ok((user(&r)?, r.try_get("password_hash")?))).transpose()
    }

    async fn set_password(&self, uid: Id, password_hash: &str) -> Result<bool> {
        let _writer = self.writer().await;
        let done = sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
            .bind(password_hash)
            .bind(uid.0)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn set_profile(&self, uid: Id, display_name: Option<&str>, avatar: Option<&str>) -> Result<bool> {
        let _writer = self.writer().await;
        let done = sqlx::query("UPDATE users SET display_name = $1, avatar = $2 WHERE id = $3")
            .bind(display_name)
            .bind(avatar)
            .bind(uid.0)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
