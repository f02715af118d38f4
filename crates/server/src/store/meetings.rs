//! Meetings: creating one (with a fresh ID), reading, changing, starting and ending it,
//! a user's list, and the TTL sweep over idle ones.

use chrono::{DateTime, Utc};
use proto::{RoomId, UserId};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{
    Meeting, MeetingPage, MeetingSettings, MeetingStatus, MeetingUpdate, NewMeeting, Store,
    StoreError, Topology, opt_time, time, to_u32,
};
use crate::room_code;

const MEETING_COLUMNS: &str = "room_id, title, description, host_id, status, max_participants, settings, topology, \
     scheduled_at, started_at, ended_at, end_reason, created_at, updated_at, last_activity_at, empty_since, peak_participants, legacy_id";

impl Store {
    /// Creates a meeting with a fresh ID (retrying on the unlikely collision).
    pub async fn create_meeting(
        &self,
        m: NewMeeting,
        now: DateTime<Utc>,
    ) -> Result<Meeting, StoreError> {
        super::timed_db("create_meeting", async move {
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
        })
        .await
    }

    pub async fn get_meeting(&self, room: &RoomId) -> Result<Option<Meeting>, StoreError> {
        super::timed_db("get_meeting", async move {
            let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {MEETING_COLUMNS} FROM meetings WHERE room_id = $1"
            )))
            .bind(room.as_str())
            .fetch_optional(&self.pool)
            .await?;
            row.map(|r| meeting_from_row(&r, Utc::now())).transpose()
        })
        .await
    }

    /// Applies `update`; `None` if there is no such meeting.
    pub async fn update_meeting(
        &self,
        room: &RoomId,
        update: MeetingUpdate,
        now: DateTime<Utc>,
    ) -> Result<Option<Meeting>, StoreError> {
        super::timed_db("update_meeting", async move {
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
        })
        .await
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
        super::timed_db("end_meeting", async move {
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
        })
        .await
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
    let duration = Meeting::duration_at(started_at, ended_at, status, now);
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
        legacy_id: r.try_get("legacy_id")?,
    })
}
