use super::{SqlStore, users};
use crate::id::Id;
use crate::store::{BlockStore, Result, User};
use async_trait::async_trait;

#[async_trait]
impl BlockStore for SqlStore {
    async fn block(&self, user: Id, blocked: Id, now_ms: i64) -> Result<bool> {
        let _writer = self.writer().await;
        let r = sqlx::query(
            "INSERT INTO blocks (user_id, blocked_id, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (user_id, blocked_id) DO NOTHING",
        )
        .bind(user.0)
        .bind(blocked.0)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() > 0)
    }

    async fn unblock(&self, user: Id, blocked: Id) -> Result<bool> {
        let _writer = self.writer().await;
        let r = sqlx::query("DELETE FROM blocks WHERE user_id = $1 AND blocked_id = $2")
            .bind(user.0)
            .bind(blocked.0)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    async fn blocked_by(&self, user: Id) -> Result<Vec<User>> {
        let rows = sqlx::query(
            "SELECT u.id, u.username, u.created_at, u.display_name, u.avatar FROM blocks b JOIN users u ON u.id = b.blocked_id \
             WHERE b.user_id = $1 ORDER BY b.created_at",
        )
        .bind(user.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(users::user).collect()
    }

    async fn either_blocked(&self, a: Id, b: Id) -> Result<bool> {
        let row = sqlx::query(
            "SELECT 1 AS x FROM blocks WHERE (user_id = $1 AND blocked_id = $2) OR (user_id = $2 AND blocked_id = $1)",
        )
        .bind(a.0)
        .bind(b.0)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }
}
