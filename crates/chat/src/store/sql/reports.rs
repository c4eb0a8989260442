use super::{SqlStore, id, opt_id};
use crate::id::Id;
use crate::store::{Report, ReportStatus, ReportStore, ReportSubject, Result, StoreError};
use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;

macro_rules! select {
    ($rest:literal) => {
        concat!(
            "SELECT id, subject, guild_id, channel_id, message_id, message_author, message_content, reporter_id, \
             reason, status, created_at, resolved_by, resolved_at FROM reports ",
            $rest
        )
    };
}

fn report(row: &AnyRow) -> Result<Report> {
    let status: String = row.try_get("status")?;
    let subject: String = row.try_get("subject")?;
    Ok(Report {
        id: id(row, "id")?,
        subject: if subject == "stream" { ReportSubject::Stream } else { ReportSubject::Message },
        guild_id: id(row, "guild_id")?,
        channel_id: id(row, "channel_id")?,
        message_id: id(row, "message_id")?,
        message_author: id(row, "message_author")?,
        message_content: row.try_get("message_content")?,
        reporter_id: id(row, "reporter_id")?,
        reason: row.try_get("reason")?,
        status: ReportStatus::parse(&status).ok_or(StoreError::NotFound("report status"))?,
        created_at: row.try_get("created_at")?,
        resolved_by: opt_id(row, "resolved_by")?,
        resolved_at: row.try_get("resolved_at")?,
    })
}

#[async_trait]
impl ReportStore for SqlStore {
    async fn create_report(&self, r: &Report) -> Result<()> {
        let _writer = self.writer().await;
        sqlx::query(
            "INSERT INTO reports (id, guild_id, channel_id, message_id, message_author, message_content, \
             reporter_id, reason, status, created_at, resolved_by, resolved_at, subject) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(r.id.0)
        .bind(r.guild_id.0)
        .bind(r.channel_id.0)
        .bind(r.message_id.0)
        .bind(r.message_author.0)
        .bind(&r.message_content)
        .bind(r.reporter_id.0)
        .bind(&r.reason)
        .bind(r.status.as_str())
        .bind(r.created_at)
        .bind(r.resolved_by.map(|i| i.0))
        .bind(r.resolved_at)
        .bind(r.subject.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn report(&self, rid: Id) -> Result<Option<Report>> {
        sqlx::query(select!("WHERE id = $1"))
            .bind(rid.0)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| report(&r))
            .transpose()
    }

    async fn reports(&self, guild: Id, status: Option<ReportStatus>) -> Result<Vec<Report>> {
        let rows = match status {
            Some(s) => {
                sqlx::query(select!("WHERE guild_id = $1 AND status = $2 ORDER BY id DESC"))
                    .bind(guild.0)
                    .bind(s.as_str())
                    .fetch_all(&self.pool)
                    .await?
            }
            None => {
                sqlx::query(select!("WHERE guild_id = $1 ORDER BY id DESC")).bind(guild.0).fetch_all(&self.pool).await?
            }
        };
        rows.iter().map(report).collect()
    }

    async fn resolve_report(&self, rid: Id, status: ReportStatus, by: Id, at_ms: i64) -> Result<bool> {
        let _writer = self.writer().await;
        let done = sqlx::query(
            "UPDATE reports SET status = $1, resolved_by = $2, resolved_at = $3 WHERE id = $4 AND status = 'open'",
        )
        .bind(status.as_str())
        .bind(by.0)
        .bind(at_ms)
        .bind(rid.0)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }
}
