//! Invite links' server-side state: created by the host (or a co-host), listed, revoked,
//! and redeemed: [`Store::use_invite`] counts one use in one conditional `UPDATE`, the
//! database's atomic step, so that redemptions racing on several nodes never pass
//! `max_uses`. The link's token (signed, `crate::auth`) only names the row: revoking or
//! using up a link needs no token list anywhere else.

use chrono::{DateTime, Utc};
use proto::{Role, RoomId, UserId};
use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError, opt_time, time};

/// One invite link.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Invite {
    pub invite_id: String,
    pub room_id: RoomId,
    /// What a guest who redeems it is in the meeting.
    pub role: Role,
    pub created_by: UserId,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// `None`: any number of uses until it expires.
    pub max_uses: Option<u32>,
    pub uses: u32,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// An invite to create; the HTTP layer has validated it.
#[derive(Clone, Debug)]
pub struct NewInvite {
    pub room_id: RoomId,
    pub role: Role,
    pub created_by: UserId,
    pub expires_at: DateTime<Utc>,
    pub max_uses: Option<u32>,
}

/// Why an invite could not be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InviteRefusal {
    /// No such invite (or its meeting was deleted).
    Unknown,
    Revoked,
    Expired,
    UsedUp,
}

const COLUMNS: &str =
    "invite_id, room_id, role, created_by, created_at, expires_at, max_uses, uses, revoked_at";

fn role_of(text: &str) -> Result<Role, StoreError> {
    Role::ALL
        .into_iter()
        .find(|r| r.as_str() == text)
        .ok_or_else(|| StoreError::Corrupt {
            table: "invites",
            detail: format!("unknown role {text:?}"),
        })
}

fn count(v: Option<i64>) -> Option<u32> {
    v.map(|n| u32::try_from(n.max(0)).unwrap_or(u32::MAX))
}

fn invite(row: &AnyRow) -> Result<Invite, StoreError> {
    Ok(Invite {
        invite_id: row.try_get("invite_id")?,
        room_id: RoomId::new(row.try_get::<String, _>("room_id")?),
        role: role_of(&row.try_get::<String, _>("role")?)?,
        created_by: UserId::new(row.try_get::<String, _>("created_by")?),
        created_at: time(row.try_get("created_at")?, "invites")?,
        expires_at: time(row.try_get("expires_at")?, "invites")?,
        max_uses: count(row.try_get("max_uses")?),
        uses: count(Some(row.try_get("uses")?)).unwrap_or(0),
        revoked_at: opt_time(row.try_get("revoked_at")?, "invites")?,
    })
}

impl Store {
    /// Stores a new invite under a fresh random id.
    pub async fn create_invite(
        &self,
        new: NewInvite,
        now: DateTime<Utc>,
    ) -> Result<Invite, StoreError> {
        super::timed_db("create_invite", async move {
            let id = format!("inv_{}", proto::PeerId::random().as_str().trim_start_matches("p_"));
            sqlx::query(
                "INSERT INTO invites (invite_id, room_id, role, created_by, created_at, expires_at, max_uses, uses) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 0)",
            )
            .bind(&id)
            .bind(new.room_id.as_str())
            .bind(new.role.as_str())
            .bind(new.created_by.as_str())
            .bind(now.timestamp_millis())
            .bind(new.expires_at.timestamp_millis())
            .bind(new.max_uses.map(i64::from))
            .execute(&self.pool)
            .await?;
            self.get_invite(&id).await?.ok_or(StoreError::Corrupt {
                table: "invites",
                detail: "the invite just written is gone".into(),
            })
        })
        .await
    }

    pub async fn get_invite(&self, id: &str) -> Result<Option<Invite>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM invites WHERE invite_id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(invite).transpose()
    }

    /// A meeting's invites, newest first (revoked and expired ones included: the host's
    /// list says so).
    pub async fn list_invites(&self, room: &RoomId) -> Result<Vec<Invite>, StoreError> {
        super::timed_db("list_invites", async move {
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM invites WHERE room_id = $1 ORDER BY created_at DESC, invite_id"
            )))
            .bind(room.as_str())
            .fetch_all(&self.pool)
            .await?;
            rows.iter().map(invite).collect()
        })
        .await
    }

    /// Revokes `room`'s invite `id`; `None` if the meeting has no such invite.
    pub async fn revoke_invite(
        &self,
        room: &RoomId,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Invite>, StoreError> {
        super::timed_db("revoke_invite", async move {
            sqlx::query(
                "UPDATE invites SET revoked_at = $3 WHERE room_id = $1 AND invite_id = $2 AND revoked_at IS NULL",
            )
            .bind(room.as_str())
            .bind(id)
            .bind(now.timestamp_millis())
            .execute(&self.pool)
            .await?;
            Ok(self.get_invite(id).await?.filter(|i| &i.room_id == room))
        })
        .await
    }

    /// Counts one use of invite `id` if it is neither revoked, expired nor used up: one
    /// conditional `UPDATE`, so that concurrent uses never exceed `max_uses`. Returns the
    /// invite as used, or why it cannot be.
    pub async fn use_invite(
        &self,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<Result<Invite, InviteRefusal>, StoreError> {
        super::timed_db("use_invite", async move {
            let done = sqlx::query(
                "UPDATE invites SET uses = uses + 1 WHERE invite_id = $1 AND revoked_at IS NULL \
                 AND expires_at > $2 AND (max_uses IS NULL OR uses < max_uses)",
            )
            .bind(id)
            .bind(now.timestamp_millis())
            .execute(&self.pool)
            .await?;
            let current = self.get_invite(id).await?;
            Ok(match current {
                Some(i) if done.rows_affected() == 1 => Ok(i),
                None => Err(InviteRefusal::Unknown),
                Some(i) if i.revoked_at.is_some() => Err(InviteRefusal::Revoked),
                Some(i) if i.expires_at <= now => Err(InviteRefusal::Expired),
                Some(_) => Err(InviteRefusal::UsedUp),
            })
        })
        .await
    }
}
