//! Shared helpers for the chat crate's integration tests: a fresh database per test on either
//! backend, and a macro that runs one test body against both.
//!
//! Postgres is used when `CONFAB_TEST_POSTGRES_URL` holds an admin URL (for example
//! `postgres://postgres@127.0.0.1:54330/postgres`): every [`TestDb`] creates its own database
//! `confab_t_<random hex>` there. Without it the Postgres variants are skipped, unless
//! `CONFAB_REQUIRE_POSTGRES=1`, in which case they fail.
#![allow(dead_code)]

use chat::store::Store;
use sqlx::{AssertSqlSafe, Connection, Executor};
use std::future::Future;

pub const POSTGRES_URL_ENV: &str = "CONFAB_TEST_POSTGRES_URL";
pub const REQUIRE_POSTGRES_ENV: &str = "CONFAB_REQUIRE_POSTGRES";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The name [`Store::backend`] reports.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// A fresh, empty database for one test. Open it with [`Store::open`]`(&db.url)` (or [`TestDb::open`]).
///
/// SQLite lives in a temporary directory removed on drop. A Postgres database is left behind (it
/// cannot be dropped without blocking in `Drop`); the throwaway test server takes it with it.
pub struct TestDb {
    pub url: String,
    pub backend: Backend,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    /// `None` when `backend` is Postgres and no server is configured (and not required).
    pub async fn new(backend: Backend) -> Option<TestDb> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::Builder::new().prefix("confab-test-").tempdir().expect("create temp dir");
                let url = format!("sqlite:{}", dir.path().join("test.db").display());
                Some(TestDb { url, backend, _dir: Some(dir) })
            }
            Backend::Postgres => {
                let admin = match std::env::var(POSTGRES_URL_ENV) {
                    Ok(url) if !url.is_empty() => url,
                    _ if std::env::var(REQUIRE_POSTGRES_ENV).as_deref() == Ok("1") => {
                        panic!("{REQUIRE_POSTGRES_ENV}=1 but {POSTGRES_URL_ENV} (a Postgres admin URL) is not set")
                    }
                    _ => {
                        eprintln!("skipping postgres: {POSTGRES_URL_ENV} not set");
                        return None;
                    }
                };
                let name = format!("confab_t_{:016x}", rand::random::<u64>());
                let mut conn = sqlx::postgres::PgConnection::connect(&admin)
                    .await
                    .unwrap_or_else(|e| panic!("connect to {POSTGRES_URL_ENV}={admin}: {e}"));
                conn.execute(AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .await
                    .unwrap_or_else(|e| panic!("create database {name}: {e}"));
                conn.close().await.ok();
                Some(TestDb { url: with_database(&admin, &name), backend, _dir: None })
            }
        }
    }

    /// Opens the store, checking that it is the expected backend.
    pub async fn open(&self) -> Store {
        let store = Store::open(&self.url).await.unwrap_or_else(|e| panic!("open {}: {e}", self.url));
        assert_eq!(store.backend(), self.backend.name());
        store
    }
}

/// `url` with its database (the path segment after the last '/') replaced by `name`; a query string
/// is kept.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url.find('?').map_or((url, ""), |q| url.split_at(q));
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_start..].rfind('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    format!("{base}/{name}{query}")
}

/// Runs `body` on a fresh store of `backend`, or does nothing if that backend is unavailable.
pub async fn run<F, Fut>(backend: Backend, body: F)
where
    F: FnOnce(Store) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    body(db.open().await).await;
}

/// For each `async fn name(store: Store)` listed, generates a module `name` with the tests
/// `name::sqlite` and `name::postgres`, each running the body on a fresh database of that backend.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use $crate::common::{Backend, run};

            #[tokio::test]
            async fn sqlite() {
                run(Backend::Sqlite, super::$name).await;
            }

            #[tokio::test]
            async fn postgres() {
                run(Backend::Postgres, super::$name).await;
            }
        }
    )*};
}
