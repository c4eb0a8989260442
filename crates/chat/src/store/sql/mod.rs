//! The SQL store: every aggregate trait over one sqlx `Any` pool (SQLite or Postgres).

mod blocks;
mod channels;
mod dms;
mod group_commit;
mod guilds;
mod members;
mod messages;
mod moderation;
mod read_states;
mod reports;
mod roles;
mod sessions;
mod stream_keys;
mod users;

use super::{Result, StoreError};
use crate::id::Id;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AnyPool, Row, SqlStr};
use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

/// Migrations per dialect, embedded so the binary needs no files beside it: (version, name, SQL,
/// whether it runs outside the migrator's transaction: SQLite's table rebuilds turn foreign keys
/// off, which only works outside one, and open their own).
type Migrations = &'static [(i64, &'static str, &'static str, bool)];
const SQLITE_MIGRATIONS: Migrations = &[
    (1, "init", include_str!("../../../migrations/sqlite/0001_init.sql"), false),
    (2, "voice_mode", include_str!("../../../migrations/sqlite/0002_voice_mode.sql"), false),
    (3, "slow_mode", include_str!("../../../migrations/sqlite/0003_slow_mode.sql"), false),
    (4, "live", include_str!("../../../migrations/sqlite/0004_live.sql"), true),
    (5, "stream_settings", include_str!("../../../migrations/sqlite/0005_stream_settings.sql"), false),
    (6, "report_subject", include_str!("../../../migrations/sqlite/0006_report_subject.sql"), false),
    (7, "dms", include_str!("../../../migrations/sqlite/0007_dms.sql"), true),
    (8, "attachments", include_str!("../../../migrations/sqlite/0008_attachments.sql"), false),
    (9, "replies_reactions", include_str!("../../../migrations/sqlite/0009_replies_reactions.sql"), false),
    (10, "channel_topic", include_str!("../../../migrations/sqlite/0010_channel_topic.sql"), false),
    (11, "roles_moderation", include_str!("../../../migrations/sqlite/0011_roles_moderation.sql"), false),
    (12, "user_profile", include_str!("../../../migrations/sqlite/0012_user_profile.sql"), false),
];
const POSTGRES_MIGRATIONS: Migrations = &[
    (1, "init", include_str!("../../../migrations/postgres/0001_init.sql"), false),
    (2, "voice_mode", include_str!("../../../migrations/postgres/0002_voice_mode.sql"), false),
    (3, "slow_mode", include_str!("../../../migrations/postgres/0003_slow_mode.sql"), false),
    (4, "live", include_str!("../../../migrations/postgres/0004_live.sql"), false),
    (5, "stream_settings", include_str!("../../../migrations/postgres/0005_stream_settings.sql"), false),
    (6, "report_subject", include_str!("../../../migrations/postgres/0006_report_subject.sql"), false),
    (7, "dms", include_str!("../../../migrations/postgres/0007_dms.sql"), false),
    (8, "attachments", include_str!("../../../migrations/postgres/0008_attachments.sql"), false),
    (9, "replies_reactions", include_str!("../../../migrations/postgres/0009_replies_reactions.sql"), false),
    (10, "channel_topic", include_str!("../../../migrations/postgres/0010_channel_topic.sql"), false),
    (11, "roles_moderation", include_str!("../../../migrations/postgres/0011_roles_moderation.sql"), false),
    (12, "user_profile", include_str!("../../../migrations/postgres/0012_user_profile.sql"), false),
];

pub struct SqlStore {
    pool: AnyPool,
    backend: &'static str,
    /// SQLite's writers, one at a time (see [`SqlStore::writer`]).
    write_gate: Arc<tokio::sync::Mutex<()>>,
    /// New messages, committed in groups (see `group_commit`).
    commits: group_commit::GroupCommit,
}

impl SqlStore {
    /// Connects to `url` (`sqlite:path`, `sqlite::memory:` or `postgres://…`), creating a SQLite
    /// file and its directory when missing, and applies pending migrations.
    pub async fn open(url: &str) -> Result<SqlStore> {
        SqlStore::open_until(url, i64::MAX).await
    }

    /// [`SqlStore::open`], applying migrations up to `version` only: for tests of a migration
    /// against data written before it.
    #[doc(hidden)]
    pub async fn open_until(url: &str, version: i64) -> Result<SqlStore> {
        sqlx::any::install_default_drivers();
        let (backend, url, migrations) = if let Some(path) = url.strip_prefix("sqlite:") {
            let path = path.trim_start_matches("//");
            let file = path.split('?').next().unwrap_or_default();
            if let Some(dir) = std::path::Path::new(file).parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            let url = if path.contains("mode=") || file == ":memory:" {
                format!("sqlite://{path}")
            } else if path.contains('?') {
                format!("sqlite://{path}&mode=rwc")
            } else {
                format!("sqlite://{path}?mode=rwc")
            };
            ("sqlite", url, SQLITE_MIGRATIONS)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            ("postgres", url.to_string(), POSTGRES_MIGRATIONS)
        } else {
            return Err(StoreError::BadUrl(url.to_string()));
        };

        let pool = AnyPoolOptions::new()
            .max_connections(if backend == "sqlite" { 8 } else { 16 })
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == "sqlite" {
                        // WAL lets readers run beside the writer; FULL sync makes a commit durable
                        // before the API acknowledges it.
                        sqlx::query("PRAGMA journal_mode = WAL").execute(&mut *conn).await?;
                        sqlx::query("PRAGMA synchronous = FULL").execute(&mut *conn).await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await?;

        let migrator = Migrator::with_migrations(
            migrations
                .iter()
                .filter(|(v, ..)| *v <= version)
                .map(|&(version, name, sql, no_tx)| {
                    Migration::new(version, Cow::Borrowed(name), MigrationType::Simple, SqlStr::from_static(sql), no_tx)
                })
                .collect(),
        );
        migrator.run(&pool).await?;
        let write_gate = Arc::new(tokio::sync::Mutex::new(()));
        let commits = group_commit::GroupCommit::start(pool.clone(), (backend == "sqlite").then(|| write_gate.clone()));
        Ok(SqlStore { pool, backend, write_gate, commits })
    }

    pub fn backend(&self) -> &'static str {
        self.backend
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Held across a write on SQLite. SQLite takes one writer at a time, and a writer that finds
    /// the lock held sleeps in growing steps (up to 100 ms) before it tries again: 50 posts/s from
    /// many clients gave a POST p99 over a second. Queued here, writers go in order, each
    /// waiting only for the commits ahead of it. Postgres has row locks and needs no gate.
    async fn writer(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match self.backend {
            "sqlite" => Some(self.write_gate.lock().await),
            _ => None,
        }
    }
}

/// Reads a snowflake column.
fn id(row: &AnyRow, col: &str) -> Result<Id> {
    Ok(Id(row.try_get::<i64, _>(col)?))
}

fn opt_id(row: &AnyRow, col: &str) -> Result<Option<Id>> {
    Ok(row.try_get::<Option<i64>, _>(col)?.map(Id))
}

/// Maps a unique-constraint violation to `Conflict(what)`.
fn conflict(what: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |e| match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(what),
        _ => StoreError::Database(e),
    }
}
