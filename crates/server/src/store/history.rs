//! Participant history: one row per connection (join, leave), the host's removals,
//! who is present, and the meeting's statistics derived from the rows.

use chrono::{DateTime, Utc};
use proto::{PeerId, RoomId, UserId};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{
    JoinRecord, JoinRecorded, MeetingStats, MeetingStatus, ParticipantRecord, Store, StoreError,
    opt_time, time, to_u32,
};

impl Store {
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
        Ok(self.record_join_outcome(room, join, now).await?.present)
    }

    /// [`Store::record_join`], also telling whether this join started the meeting
    /// (moved it from scheduled to active, under the meeting row's lock: exactly one
    /// join does, however many nodes race).
    pub async fn record_join_outcome(
        &self,
        room: &RoomId,
        join: JoinRecord,
        now: DateTime<Utc>,
    ) -> Result<JoinRecorded, StoreError> {
        super::timed_db("record_join", async move {
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
            let started = status.as_deref() == Some(MeetingStatus::Scheduled.as_str());
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
            Ok(JoinRecorded {
                present: to_u32(present),
                started,
            })
        })
        .await
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
        super::timed_db("record_leave", async move {
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
        })
        .await
    }

    /// A connection resuming into a process that does not know it (the one that
    /// carried it was restarted): its row opens again if it is `user`'s in `room`, and
    /// is still open or was closed between `since` (the reconnect grace period ago) and
    /// `until` (this process's start: closed by the previous process's drain or by this
    /// start's reconciliation, not by a leave this process saw); the meeting is
    /// occupied again. `None` when there is no such row. Refused
    /// like a join when the meeting ended ([`StoreError::MeetingClosed`]) or the host
    /// removed the user ([`StoreError::UserRemoved`]).
    pub async fn reopen_participant(
        &self,
        room: &RoomId,
        peer: &PeerId,
        user: &UserId,
        (since, until): (DateTime<Utc>, DateTime<Utc>),
        now: DateTime<Utc>,
    ) -> Result<Option<ParticipantRecord>, StoreError> {
        super::timed_db("reopen_participant", async move {
            let now_ms = now.timestamp_millis();
            let mut tx = self.pool.begin().await?;
            // Under the meeting's lock, as joins and leaves are (see `record_join`).
            lock_meeting(&mut tx, room, now_ms).await?;
            let status: Option<String> =
                sqlx::query("SELECT status FROM meetings WHERE room_id = $1")
                    .bind(room.as_str())
                    .fetch_optional(&mut *tx)
                    .await?
                    .map(|r| r.try_get(0))
                    .transpose()?;
            if status.is_none_or(|s| s == MeetingStatus::Ended.as_str()) {
                tx.rollback().await?;
                return Err(StoreError::MeetingClosed);
            }
            let row = sqlx::query(
                "SELECT user_id, peer_id, user_name, user_picture, is_host, joined_at, left_at FROM participants \
                 WHERE room_id = $1 AND peer_id = $2 AND user_id = $3",
            )
            .bind(room.as_str())
            .bind(peer.as_str())
            .bind(user.as_str())
            .fetch_optional(&mut *tx)
            .await?;
            let Some(mut record) = row.as_ref().map(participant_from_row).transpose()? else {
                tx.rollback().await?;
                return Ok(None);
            };
            if record.left_at.is_some_and(|t| t < since || t > until) {
                tx.rollback().await?;
                return Ok(None);
            }
            if !record.is_host && removed(&mut tx, room, user).await? {
                tx.rollback().await?;
                return Err(StoreError::UserRemoved);
            }
            sqlx::query("UPDATE participants SET left_at = NULL WHERE room_id = $1 AND peer_id = $2")
                .bind(room.as_str())
                .bind(peer.as_str())
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE meetings SET empty_since = NULL WHERE room_id = $1")
                .bind(room.as_str())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            record.left_at = None;
            Ok(Some(record))
        })
        .await
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
        super::timed_db("is_removed", async move {
            let mut conn = self.pool.acquire().await?;
            let row =
                sqlx::query("SELECT 1 FROM removed_users WHERE room_id = $1 AND user_id = $2")
                    .bind(room.as_str())
                    .bind(user.as_str())
                    .fetch_optional(&mut *conn)
                    .await?;
            Ok(row.is_some())
        })
        .await
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
