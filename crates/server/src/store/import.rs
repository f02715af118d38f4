//! Writing meetings imported from the service we replace (`meeting-service import`):
//! each one whole, in one transaction, or not at all.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{ImportOutcome, ImportedMeeting, Store, StoreError};

impl Store {
    /// Writes `m` and its participant history, unless a previous import did (same
    /// `legacy_id`: [`ImportOutcome::AlreadyImported`]) or another meeting has its room
    /// id ([`ImportOutcome::RoomTaken`]); in both cases nothing changes.
    pub async fn import_meeting(
        &self,
        imported: &ImportedMeeting,
    ) -> Result<ImportOutcome, StoreError> {
        let m = &imported.meeting;
        let settings = serde_json::to_string(&m.settings).map_err(|e| StoreError::Corrupt {
            table: "meetings",
            detail: e.to_string(),
        })?;
        let mut tx = self.pool.begin().await?;
        let by_legacy = sqlx::query("SELECT room_id FROM meetings WHERE legacy_id = $1")
            .bind(&m.legacy_id)
            .fetch_optional(&mut *tx)
            .await?;
        if by_legacy.is_some() {
            tx.rollback().await?;
            return Ok(ImportOutcome::AlreadyImported);
        }
        let taken = sqlx::query("SELECT legacy_id FROM meetings WHERE room_id = $1")
            .bind(m.room_id.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        if taken.is_some() {
            tx.rollback().await?;
            return Ok(ImportOutcome::RoomTaken);
        }
        let ms = |t: DateTime<Utc>| t.timestamp_millis();
        sqlx::query(
            "INSERT INTO meetings (room_id, title, description, host_id, status, max_participants, settings, topology, \
             scheduled_at, started_at, ended_at, end_reason, created_at, updated_at, last_activity_at, empty_since, \
             peak_participants, legacy_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
        )
        .bind(m.room_id.as_str())
        .bind(&m.title)
        .bind(&m.description)
        .bind(m.host_id.as_str())
        .bind(m.status.as_str())
        .bind(i64::from(m.max_participants))
        .bind(&settings)
        .bind(m.topology.as_str())
        .bind(m.scheduled_at.map(ms))
        .bind(m.started_at.map(ms))
        .bind(m.ended_at.map(ms))
        .bind(m.end_reason.as_deref())
        .bind(ms(m.created_at))
        .bind(ms(m.updated_at))
        .bind(ms(m.last_activity_at))
        .bind(m.empty_since.map(ms))
        .bind(i64::from(m.peak_participants))
        .bind(&m.legacy_id)
        .execute(&mut *tx)
        .await?;
        for p in &imported.participants {
            let inserted = sqlx::query(
                "INSERT INTO participants (room_id, user_id, peer_id, user_name, user_picture, is_host, joined_at, left_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (peer_id) DO NOTHING",
            )
            .bind(m.room_id.as_str())
            .bind(p.user_id.as_str())
            .bind(p.peer_id.as_str())
            .bind(&p.user_name)
            .bind(p.user_picture.as_deref())
            .bind(i64::from(p.is_host))
            .bind(ms(p.joined_at))
            .bind(ms(p.left_at))
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if inserted == 0 {
                // Another meeting's row has this participant id: the export reuses an
                // `_id`, so this record's history cannot be told apart. Write nothing.
                tx.rollback().await?;
                return Ok(ImportOutcome::ParticipantTaken(p.peer_id.clone()));
            }
        }
        tx.commit().await?;
        Ok(ImportOutcome::Imported {
            participants: imported.participants.len(),
        })
    }

    /// The `legacy_id` of the meeting at `room`, if it was imported (for the importer's
    /// report and tests).
    pub async fn legacy_id(&self, room: &proto::RoomId) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query("SELECT legacy_id FROM meetings WHERE room_id = $1")
                .bind(room.as_str())
                .fetch_optional(&self.pool)
                .await?
                .map(|r| r.try_get::<Option<String>, _>(0))
                .transpose()?
                .flatten(),
        )
    }
}
