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

mod model;

pub use model::*;

use chrono::{DateTime, TimeZone, Utc};
use proto::{PeerId, RoomId, UserId};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};

use crate::room_code;

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

const MEETING_COLUMNS: &str = "room_id, title, description, host_id, status, max_participants, settings, topology, \
     scheduled_at, started_at, ended_at, end_reason, created_at, updated_at, last_activity_at, empty_since, peak_participants";

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

    /// Creates a meeting with a fresh ID (retrying on the unlikely collision).
    pub async fn create_meeting(
        &self,
        m: NewMeeting,
        now: DateTime<Utc>,
    ) -> Result<Meeting, StoreError> {
        let settings = serde_json::to_string(&m.settings).map_err(|e| StoreError::Corrupt {
            table: "meetings",
            detail: e.to_string(),
        })?;
        let now_ms = now.timestamp_millis();
        // A meeting idles from its scheduled time (or creation) until somebody joins.
        let empty_since = m
            .scheduled_at
            .map(|t| t.timestamp_millis().max(now_ms))
            .unwrap_or(now_ms);
        let mut last_err = None;
        for _ in 0..5 {
            let room_id = room_code::generate();
            let res = sqlx::query(
                "INSERT INTO meetings (room_id, title, description, host_id, status, max_participants, settings, topology, \
                 scheduled_at, created_at, updated_at, last_activity_at, empty_since, peak_participants) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $10, $11, 0)",
            )
            .bind(room_id.as_str())
            .bind(&m.title)
            .bind(&m.description)
            .bind(m.host_id.as_str())
            .bind(MeetingStatus::Scheduled.as_str())
            .bind(i64::from(m.max_participants))
            .bind(&settings)
            .bind(m.topology.as_str())
            .bind(m.scheduled_at.map(|t| t.timestamp_millis()))
            .bind(now_ms)
            .bind(empty_since)
            .execute(&self.pool)
            .await;
            match res {
                Ok(_) => {
                    return self
                        .get_meeting(&room_id)
                        .await?
                        .ok_or(StoreError::Corrupt {
                            table: "meetings",
                            detail: "inserted row vanished".into(),
                        });
                }
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                    last_err = Some(sqlx::Error::Database(e))
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(last_err
            .map(StoreError::from)
            .unwrap_or(StoreError::Corrupt {
                table: "meetings",
                detail: "no free id".into(),
            }))
    }

    pub async fn get_meeting(&self, room: &RoomId) -> Result<Option<Meeting>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {MEETING_COLUMNS} FROM meetings WHERE room_id = $1"
        )))
        .bind(room.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| meeting_from_row(&r, Utc::now())).transpose()
    }

    /// Applies `update`; `None` if there is no such meeting.
    pub async fn update_meeting(
        &self,
        room: &RoomId,
        update: MeetingUpdate,
        now: DateTime<Utc>,
    ) -> Result<Option<Meeting>, StoreError> {
        let Some(current) = self.get_meeting(room).await? else {
            return Ok(None);
        };
        let settings = update.settings.unwrap_or(current.settings);
        let settings = serde_json::to_string(&settings).map_err(|e| StoreError::Corrupt {
            table: "meetings",
            detail: e.to_string(),
        })?;
        let scheduled_at = update.scheduled_at.or(current.scheduled_at);
        // Moving a not-yet-started meeting moves its idle clock with it.
        let empty_since = match (current.status, update.scheduled_at) {
            (MeetingStatus::Scheduled, Some(t)) => {
                Some(t.timestamp_millis().max(now.timestamp_millis()))
            }
            _ => current.empty_since.map(|t| t.timestamp_millis()),
        };
        sqlx::query(
            "UPDATE meetings SET title = $2, description = $3, max_participants = $4, settings = $5, scheduled_at = $6, \
             empty_since = $7, updated_at = $8 WHERE room_id = $1",
        )
        .bind(room.as_str())
        .bind(update.title.unwrap_or(current.title))
        .bind(update.description.unwrap_or(current.description))
        .bind(i64::from(update.max_participants.unwrap_or(current.max_participants)))
        .bind(settings)
        .bind(scheduled_at.map(|t| t.timestamp_millis()))
        .bind(empty_since)
        .bind(now.timestamp_millis())
        .execute(&self.pool)
        .await?;
        self.get_meeting(room).await
    }

    /// Marks the meeting active (first join); a no-op if it already is or has ended.
    pub async fn start_meeting(&self, room: &RoomId, now: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE meetings SET status = 'active', started_at = COALESCE(started_at, $2), updated_at = $2 \
             WHERE room_id = $1 AND status = 'scheduled'",
        )
        .bind(room.as_str())
        .bind(now.timestamp_millis())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Ends the meeting and closes every open participant row. Returns the ended meeting,
    /// or `None` if it did not exist or had already ended (so only one caller announces it).
    pub async fn end_meeting(
        &self,
        room: &RoomId,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Meeting>, StoreError> {
        let now_ms = now.timestamp_millis();
        let mut tx = self.pool.begin().await?;
        let changed = sqlx::query(
            "UPDATE meetings SET status = 'ended', ended_at = $2, end_reason = $3, updated_at = $2, \
             empty_since = COALESCE(empty_since, $2) WHERE room_id = $1 AND status <> 'ended'",
        )
        .bind(room.as_str())
        .bind(now_ms)
        .bind(reason)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed == 0 {
            tx.rollback().await?;
            return Ok(None);
        }
        sqlx::query("UPDATE participants SET left_at = $2 WHERE room_id = $1 AND left_at IS NULL")
            .bind(room.as_str())
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        // Joins of an ended meeting are refused, so no join will consume these.
        sqlx::query("DELETE FROM early_leaves WHERE room_id = $1")
            .bind(room.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.get_meeting(room).await
    }

    /// Deletes the meeting and its history; false if there was none.
    pub async fn delete_meeting(&self, room: &RoomId) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM early_leaves WHERE room_id = $1")
            .bind(room.as_str())
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM removed_users WHERE room_id = $1")
            .bind(room.as_str())
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM participants WHERE room_id = $1")
            .bind(room.as_str())
            .execute(&mut *tx)
            .await?;
        let n = sqlx::query("DELETE FROM meetings WHERE room_id = $1")
            .bind(room.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n > 0)
    }

    /// A connection joined: records it, starts the meeting if it was scheduled, stops
    /// the idle clock and raises the peak to `join.admitted`. Returns how many are
    /// present now.
    ///
    /// Correct whatever order the writes arrive in: a leave of this connection recorded
    /// first (see [`Store::record_leave`]) makes the row closed from the start, and a
    /// join of a meeting that has ended or been deleted meanwhile is refused with
    /// [`StoreError::MeetingClosed`] and writes nothing, so ending a meeting leaves no
    /// open row behind. Recording the same connection twice is harmless.
    pub async fn record_join(
        &self,
        room: &RoomId,
        join: JoinRecord,
        now: DateTime<Utc>,
    ) -> Result<u32, StoreError> {
        let now_ms = now.timestamp_millis();
        let mut tx = self.pool.begin().await?;
        // Lock the meeting row first: concurrent joins, leaves and the end of one meeting
        // then run one after the other, so each statement below sees the others'
        // committed rows (PostgreSQL READ COMMITTED takes a fresh snapshot per statement;
        // SQLite has one writer at a time anyway). Without it two joins could both count
        // 1, or a join could miss the end that closed every row.
        lock_meeting(&mut tx, room, now_ms).await?;
        let status: Option<String> = sqlx::query("SELECT status FROM meetings WHERE room_id = $1")
            .bind(room.as_str())
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| r.try_get(0))
            .transpose()?;
        if status.is_none_or(|s| s == MeetingStatus::Ended.as_str()) {
            tx.rollback().await?;
            return Err(StoreError::MeetingClosed);
        }
        // Checked here, under the meeting's lock, as well as before the admission: a
        // removal that lands while this join is on its way still holds.
        if !join.is_host && removed(&mut tx, room, &join.user_id).await? {
            tx.rollback().await?;
            return Err(StoreError::UserRemoved);
        }
        let left_at: Option<i64> =
            sqlx::query("SELECT left_at FROM early_leaves WHERE peer_id = $1 AND room_id = $2")
                .bind(join.peer_id.as_str())
                .bind(room.as_str())
                .fetch_optional(&mut *tx)
                .await?
                .map(|r| r.try_get(0))
                .transpose()?;
        if left_at.is_some() {
            sqlx::query("DELETE FROM early_leaves WHERE peer_id = $1")
                .bind(join.peer_id.as_str())
                .execute(&mut *tx)
                .await?;
        }
        let inserted = sqlx::query(
            "INSERT INTO participants (room_id, user_id, peer_id, user_name, user_picture, is_host, joined_at, left_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (peer_id) DO NOTHING",
        )
        .bind(room.as_str())
        .bind(join.user_id.as_str())
        .bind(join.peer_id.as_str())
        .bind(&join.user_name)
        .bind(join.user_picture.as_deref())
        .bind(i64::from(join.is_host))
        .bind(now_ms)
        .bind(left_at.map(|t| t.max(now_ms)))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let present = count_present(&mut tx, room).await?;
        // A row written closed (or not at all) does not make the meeting occupied; the
        // peak is the live registry's count at admission, never more than the cap, and
        // not the open rows, which briefly include a connection that is leaving.
        let occupied = inserted > 0 && left_at.is_none();
        sqlx::query(
            "UPDATE meetings SET status = CASE WHEN status = 'scheduled' THEN 'active' ELSE status END, \
             started_at = COALESCE(started_at, $2), \
             empty_since = CASE WHEN $4 = 1 THEN NULL ELSE empty_since END, \
             peak_participants = CASE WHEN peak_participants < $3 THEN $3 ELSE peak_participants END \
             WHERE room_id = $1",
        )
        .bind(room.as_str())
        .bind(now_ms)
        .bind(i64::from(join.admitted))
        .bind(i64::from(occupied))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(to_u32(present))
    }

    /// A connection left. Returns how many remain; at zero the idle clock starts.
    /// Leaving twice is harmless. A leave that arrives before its connection's join row
    /// is kept aside, and that join writes its row closed (see [`Store::record_join`]).
    pub async fn record_leave(
        &self,
        room: &RoomId,
        peer: &PeerId,
        now: DateTime<Utc>,
    ) -> Result<u32, StoreError> {
        let now_ms = now.timestamp_millis();
        let mut tx = self.pool.begin().await?;
        // See `record_join`: without the lock, the last two leaving together could each
        // see the other still present, and the idle clock would never start.
        lock_meeting(&mut tx, room, now_ms).await?;
        let closed = sqlx::query("UPDATE participants SET left_at = $3 WHERE room_id = $1 AND peer_id = $2 AND left_at IS NULL")
            .bind(room.as_str())
            .bind(peer.as_str())
            .bind(now_ms)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if closed == 0 {
            // No open row: either it is closed already (a second leave), or its join has
            // not been written yet. Only the latter is noted, and only while the meeting
            // runs (a join of an ended meeting is refused and would never consume it).
            sqlx::query(
                "INSERT INTO early_leaves (peer_id, room_id, left_at) \
                 SELECT $2, room_id, $3 FROM meetings WHERE room_id = $1 AND status <> 'ended' \
                 AND NOT EXISTS (SELECT 1 FROM participants WHERE peer_id = $2) \
                 ON CONFLICT (peer_id) DO NOTHING",
            )
            .bind(room.as_str())
            .bind(peer.as_str())
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        }
        let present = count_present(&mut tx, room).await?;
        if present == 0 {
            sqlx::query(
                "UPDATE meetings SET empty_since = COALESCE(empty_since, $2) WHERE room_id = $1",
            )
            .bind(room.as_str())
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(to_u32(present))
    }

    /// The host removed `user`: their joins are refused until [`Store::allow_user`].
    pub async fn remove_user(
        &self,
        room: &RoomId,
        user: &UserId,
        by: &UserId,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let now_ms = now.timestamp_millis();
        let mut tx = self.pool.begin().await?;
        // Ordered with the joins (see `record_join`).
        lock_meeting(&mut tx, room, now_ms).await?;
        sqlx::query(
            "INSERT INTO removed_users (room_id, user_id, removed_by, removed_at) \
             SELECT room_id, $2, $3, $4 FROM meetings WHERE room_id = $1 \
             ON CONFLICT (room_id, user_id) DO NOTHING",
        )
        .bind(room.as_str())
        .bind(user.as_str())
        .bind(by.as_str())
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Lets a removed user join again; false if they were not removed.
    pub async fn allow_user(&self, room: &RoomId, user: &UserId) -> Result<bool, StoreError> {
        let n = sqlx::query("DELETE FROM removed_users WHERE room_id = $1 AND user_id = $2")
            .bind(room.as_str())
            .bind(user.as_str())
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    /// Whether the host removed `user` from the meeting (and has not let them back).
    pub async fn is_removed(&self, room: &RoomId, user: &UserId) -> Result<bool, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let row = sqlx::query("SELECT 1 FROM removed_users WHERE room_id = $1 AND user_id = $2")
            .bind(room.as_str())
            .bind(user.as_str())
            .fetch_optional(&mut *conn)
            .await?;
        Ok(row.is_some())
    }

    /// Who is in the meeting now, in join order.
    pub async fn present_participants(
        &self,
        room: &RoomId,
    ) -> Result<Vec<ParticipantRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT user_id, peer_id, user_name, user_picture, is_host, joined_at, left_at FROM participants \
             WHERE room_id = $1 AND left_at IS NULL ORDER BY joined_at, id",
        )
        .bind(room.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(participant_from_row).collect()
    }

    /// Everyone who ever joined, in join order.
    pub async fn participant_history(
        &self,
        room: &RoomId,
    ) -> Result<Vec<ParticipantRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT user_id, peer_id, user_name, user_picture, is_host, joined_at, left_at FROM participants \
             WHERE room_id = $1 ORDER BY joined_at, id",
        )
        .bind(room.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(participant_from_row).collect()
    }

    pub async fn stats(&self, room: &RoomId) -> Result<Option<MeetingStats>, StoreError> {
        let Some(m) = self.get_meeting(room).await? else {
            return Ok(None);
        };
        let row = sqlx::query(
            "SELECT COUNT(DISTINCT user_id), COUNT(*), COALESCE(SUM(CASE WHEN left_at IS NULL THEN 1 ELSE 0 END), 0) \
             FROM participants WHERE room_id = $1",
        )
        .bind(room.as_str())
        .fetch_one(&self.pool)
        .await?;
        let unique: i64 = row.try_get(0)?;
        let joins: i64 = row.try_get(1)?;
        let current: i64 = row.try_get(2)?;
        Ok(Some(MeetingStats {
            room_id: m.room_id,
            status: m.status,
            started_at: m.started_at,
            ended_at: m.ended_at,
            duration: m.duration,
            peak_participants: m.peak_participants,
            total_participants: to_u32(unique),
            total_joins: to_u32(joins),
            current_participants: to_u32(current),
        }))
    }

    /// Meetings the user hosts or has joined, newest first.
    pub async fn user_meetings(
        &self,
        user: &UserId,
        status: Option<MeetingStatus>,
        limit: u32,
        skip: u64,
    ) -> Result<MeetingPage, StoreError> {
        const WHERE: &str = "(host_id = $1 OR room_id IN (SELECT room_id FROM participants WHERE user_id = $1)) AND ($2 = '' OR status = $2)";
        let status_text = status.map(MeetingStatus::as_str).unwrap_or("");
        let total: i64 = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM meetings WHERE {WHERE}"
        )))
        .bind(user.as_str())
        .bind(status_text)
        .fetch_one(&self.pool)
        .await?
        .try_get(0)?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {MEETING_COLUMNS} FROM meetings WHERE {WHERE} ORDER BY created_at DESC, room_id LIMIT $3 OFFSET $4"
        )))
        .bind(user.as_str())
        .bind(status_text)
        .bind(i64::from(limit))
        .bind(i64::try_from(skip).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        let now = Utc::now();
        let meetings = rows
            .iter()
            .map(|r| meeting_from_row(r, now))
            .collect::<Result<_, _>>()?;
        Ok(MeetingPage {
            meetings,
            total: u64::try_from(total).unwrap_or(0),
            limit,
            skip,
        })
    }

    /// The TTL sweep: ends every meeting that has been empty since before `now - ttl`.
    /// Returns the meetings it ended.
    pub async fn end_idle_meetings(
        &self,
        now: DateTime<Utc>,
        ttl: std::time::Duration,
    ) -> Result<Vec<Meeting>, StoreError> {
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        let cutoff = now.timestamp_millis().saturating_sub(ttl_ms);
        let rows = sqlx::query("SELECT room_id FROM meetings WHERE status <> 'ended' AND empty_since IS NOT NULL AND empty_since <= $1")
            .bind(cutoff)
            .fetch_all(&self.pool)
            .await?;
        let mut ended = Vec::new();
        for row in rows {
            let room = RoomId::new(row.try_get::<String, _>(0)?);
            // Somebody may have joined since the SELECT; the guard re-checks.
            let still_idle: Option<i64> = sqlx::query(
                "SELECT empty_since FROM meetings WHERE room_id = $1 AND status <> 'ended'",
            )
            .bind(room.as_str())
            .fetch_optional(&self.pool)
            .await?
            .map(|r| r.try_get::<Option<i64>, _>(0))
            .transpose()?
            .flatten();
            if still_idle.is_some_and(|t| t <= cutoff)
                && let Some(m) = self.end_meeting(&room, "ttl", now).await?
            {
                ended.push(m);
            }
        }
        Ok(ended)
    }

    /// Participant rows of every meeting with no leave time: connections the store
    /// believes present. The soak checks it returns to zero; a full scan, so it is for
    /// `GET /health/process`, not for a hot path.
    pub async fn open_participant_rows(&self) -> Result<u64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) FROM participants WHERE left_at IS NULL")
            .fetch_one(&self.pool)
            .await?;
        let n: i64 = row.try_get(0)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Closes participant rows left open by a previous run of a single-node server (its
    /// connections died with it), so presence and the idle clock start out right.
    pub async fn close_orphaned_participants(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let now_ms = now.timestamp_millis();
        let mut tx = self.pool.begin().await?;
        let n = sqlx::query("UPDATE participants SET left_at = $1 WHERE left_at IS NULL")
            .bind(now_ms)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        // Their joins died with the previous run too.
        sqlx::query("DELETE FROM early_leaves")
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE meetings SET empty_since = $1 WHERE status <> 'ended' AND empty_since IS NULL \
             AND room_id NOT IN (SELECT room_id FROM participants WHERE left_at IS NULL)",
        )
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(n)
    }
}

/// Takes the meeting's row lock (and records activity) as a transaction's first write.
async fn lock_meeting(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    room: &RoomId,
    now_ms: i64,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE meetings SET last_activity_at = $2 WHERE room_id = $1")
        .bind(room.as_str())
        .bind(now_ms)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

async fn removed(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    room: &RoomId,
    user: &UserId,
) -> Result<bool, StoreError> {
    let row = sqlx::query("SELECT 1 FROM removed_users WHERE room_id = $1 AND user_id = $2")
        .bind(room.as_str())
        .bind(user.as_str())
        .fetch_optional(&mut **tx)
        .await?;
    Ok(row.is_some())
}

async fn count_present(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    room: &RoomId,
) -> Result<i64, StoreError> {
    let row =
        sqlx::query("SELECT COUNT(*) FROM participants WHERE room_id = $1 AND left_at IS NULL")
            .bind(room.as_str())
            .fetch_one(&mut **tx)
            .await?;
    Ok(row.try_get(0)?)
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

fn meeting_from_row(r: &AnyRow, now: DateTime<Utc>) -> Result<Meeting, StoreError> {
    const T: &str = "meetings";
    let corrupt = |detail: String| StoreError::Corrupt { table: T, detail };
    let status: String = r.try_get("status")?;
    let status =
        MeetingStatus::parse(&status).ok_or_else(|| corrupt(format!("status {status:?}")))?;
    let topology: String = r.try_get("topology")?;
    let topology =
        Topology::parse(&topology).ok_or_else(|| corrupt(format!("topology {topology:?}")))?;
    let settings: String = r.try_get("settings")?;
    let settings: MeetingSettings =
        serde_json::from_str(&settings).map_err(|e| corrupt(format!("settings: {e}")))?;
    let started_at = opt_time(r.try_get("started_at")?, T)?;
    let ended_at = opt_time(r.try_get("ended_at")?, T)?;
    let duration = match (started_at, ended_at, status) {
        (Some(s), Some(e), _) => Some((e - s).num_seconds().max(0)),
        (Some(s), None, MeetingStatus::Active) => Some((now - s).num_seconds().max(0)),
        _ => None,
    };
    Ok(Meeting {
        room_id: RoomId::new(r.try_get::<String, _>("room_id")?),
        title: r.try_get("title")?,
        description: r.try_get("description")?,
        host_id: UserId::new(r.try_get::<String, _>("host_id")?),
        status,
        max_participants: to_u32(r.try_get("max_participants")?),
        settings,
        topology,
        scheduled_at: opt_time(r.try_get("scheduled_at")?, T)?,
        started_at,
        ended_at,
        end_reason: r.try_get("end_reason")?,
        duration,
        created_at: time(r.try_get("created_at")?, T)?,
        updated_at: time(r.try_get("updated_at")?, T)?,
        last_activity_at: time(r.try_get("last_activity_at")?, T)?,
        empty_since: opt_time(r.try_get("empty_since")?, T)?,
        peak_participants: to_u32(r.try_get("peak_participants")?),
    })
}

fn participant_from_row(r: &AnyRow) -> Result<ParticipantRecord, StoreError> {
    const T: &str = "participants";
    Ok(ParticipantRecord {
        user_id: UserId::new(r.try_get::<String, _>("user_id")?),
        peer_id: PeerId::new(r.try_get::<String, _>("peer_id")?),
        user_name: r.try_get("user_name")?,
        user_picture: r.try_get("user_picture")?,
        is_host: r.try_get::<i64, _>("is_host")? != 0,
        joined_at: time(r.try_get("joined_at")?, T)?,
        left_at: opt_time(r.try_get("left_at")?, T)?,
    })
}
