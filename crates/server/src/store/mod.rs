//! Persistence of meetings and participant history: SQLite (default) or PostgreSQL.
//!
//! One implementation serves both through sqlx's `Any` driver: the SQL below is the
//! common subset (`$n` placeholders, integers for times and booleans), and each backend
//! has its own migrations (`migrations/sqlite`, `migrations/postgres`) because DDL
//! differs. Times are stored as Unix milliseconds.
//!
//! Live state (who is connected right now, their mute state) belongs to the signaling;
//! the store keeps the durable history: [`Store::record_join`] / [`Store::record_leave`]
//! per connection, from which it derives presence, peak and the empty-since clock that
//! [`Store::end_idle_meetings`] (the TTL sweeper) reads.
//!
//! - this file: the handle, its errors, connecting and migrating, row conversions;
//! - `meetings.rs`: creating, reading, changing and ending meetings, the TTL sweep;
//! - `history.rs`: who joined and left (participant rows), removals, presence, stats;
//! - `invites.rs`: invite links (created, listed, revoked, and used: atomically counted);
//! - `import.rs`: meetings imported from the service we replace, written whole or not;
//! - `model.rs`: the types these return.

mod history;
mod import;
mod invites;
mod meetings;
mod model;

pub use invites::{Invite, InviteRefusal, NewInvite};
pub use model::*;

use chrono::{DateTime, TimeZone, Utc};
use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("cannot create the database directory {path}: {source}")]
    Dir {
        path: String,
        source: std::io::Error,
    },
    #[error("corrupt row in {table}: {detail}")]
    Corrupt { table: &'static str, detail: String },
    /// A join of a meeting that has ended or been deleted: nothing was written.
    #[error("the meeting has ended or no longer exists")]
    MeetingClosed,
    /// A join of a user the host removed (see [`Store::remove_user`]): nothing was written.
    #[error("the host removed this user from the meeting")]
    UserRemoved,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Handle to the database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

impl Store {
    /// Connects (creating an SQLite file and its directory if needed) and migrates.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        let (url, max_connections) = match backend {
            Backend::Sqlite => (prepare_sqlite_url(url)?, 4),
            Backend::Postgres => (url.to_owned(), 10),
        };
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(std::time::Duration::from_secs(10))
            .connect(&url)
            .await?;
        match backend {
            Backend::Sqlite => {
                // WAL lets readers proceed during a write; the setting persists in the file.
                sqlx::query("PRAGMA journal_mode=WAL")
                    .execute(&pool)
                    .await?;
                SQLITE_MIGRATIONS.run(&pool).await?;
            }
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&pool).await?,
        }
        Ok(Store { pool, backend })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Readiness: one round trip.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn to_u32(v: i64) -> u32 {
    u32::try_from(v.max(0)).unwrap_or(u32::MAX)
}

/// `sqlite://path` with the directory created and `mode=rwc` so the file is too.
fn prepare_sqlite_url(url: &str) -> Result<String, StoreError> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path.is_empty() || path == ":memory:" || query.contains("mode=memory") {
        return Ok(url.to_owned());
    }
    if let Some(dir) = std::path::Path::new(path)
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Dir {
            path: dir.display().to_string(),
            source,
        })?;
    }
    let query = if query.contains("mode=") {
        query.to_owned()
    } else if query.is_empty() {
        "mode=rwc".to_owned()
    } else {
        format!("{query}&mode=rwc")
    };
    Ok(format!("sqlite://{path}?{query}"))
}

fn time(ms: i64, table: &'static str) -> Result<DateTime<Utc>, StoreError> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .ok_or(StoreError::Corrupt {
            table,
            detail: format!("bad timestamp {ms}"),
        })
}

fn opt_time(ms: Option<i64>, table: &'static str) -> Result<Option<DateTime<Utc>>, StoreError> {
    ms.map(|t| time(t, table)).transpose()
}

/// Times a store operation into `db_operation_duration_seconds{op}` and counts its
/// failures in `db_errors_total{op}` (docs/operations.md).
async fn timed_db<T>(
    op: &'static str,
    f: impl std::future::Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    use crate::monitoring::names::{DB_DURATION, DB_ERRORS};
    crate::monitoring::timed(DB_DURATION, DB_ERRORS, op, f).await
}
