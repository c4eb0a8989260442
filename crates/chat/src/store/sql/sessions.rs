use super::{SqlStore, id};
use crate::id::Id;
use crate::store::{Result, Session, SessionStore};
use async_trait::async_trait;
use sqlx::Row;

#[async_trait]
impl SessionStore for SqlStore {
    async fn create_session(&self, s: &Session) -> Result<()> {
        let _writer = self.writer().await;
        sqlx::query("INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
            .bind(&s.token_hash)
            .bind(s.user_id.0)
            .bind(s.created_at)
            .bind(s.expires_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn session(&self, token_hash: &str, now_ms: i64) -> Result<Option<Session>> {
        let row = sqlx::query(
            "SELECT token_hash, user_id, created_at, expires_at FROM sessions WHERE token_hash = $1 AND expires_at > $2",
        )
        .bind(token_hash)
        .bind(now_ms)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(Session {
                token_hash: r.try_get("token_hash")?,
                user_id: id(&r, "user_id")?,
                created_at: r.try_get("created_at")?,
                expires_at: r.try_get("expires_at")?,
            })
        })
        .transpose()
    }

    async fn delete_session(&self, token_hash: &str) -> Result<bool> {
        let _writer = self.writer().await;
        let done =
            sqlx::query("DELETE FROM sessions WHERE token_hash = $1").bind(token_hash).execute(&self.pool).await?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_sessions_of(&self, user: Id) -> Result<Vec<String>> {
        let _writer = self.writer().await;
        let rows = sqlx::query("DELETE FROM sessions WHERE user_id = $1 RETURNING token_hash")
            .bind(user.0)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok(r.try_get("token_hash")?)).collect()
    }

    async fn purge_expired(&self, now_ms: i64) -> Result<u64> {
        let _writer = self.writer().await;
        let done = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1").bind(now_ms).execute(&self.pool).await?;
        Ok(done.rows_affected())
    }
}
