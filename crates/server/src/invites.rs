//! Invite links: the host (or a co-host) makes a link for one meeting, one role and an
//! expiry, optionally good for N uses; a guest who opens it types a name and gets a
//! sign-in token for that meeting only, with the role's grants ([`redeem`]).
//!
//! The link is `/m/<roomId>?invite=<token>`: the token is signed with `JWT_SECRET`
//! ([`crate::auth::InviteClaims`]) and names a row of the store, where the uses are
//! counted atomically (one conditional `UPDATE`, shared by every node) and revocation is
//! kept. The REST edge (host only: it knows no live co-host) and the signaling (host and
//! co-hosts, `invite-create` …) both call these functions.

use std::time::Duration;

use chrono::Utc;
use proto::{Role, RoomId, UserId};
use serde::Serialize;

use crate::access::{Action, Denied, Grants, Meetings, check_role};
use crate::auth::{AuthError, InviteClaims, SignError};
use crate::state::AppState;
use crate::store::{Invite, InviteRefusal, MeetingStatus, NewInvite, StoreError};

/// An invite lasts a day unless its maker says otherwise, and at most thirty.
pub const DEFAULT_TTL: Duration = Duration::from_secs(24 * 3600);
pub const MAX_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// Most uses one invite may be given.
pub const MAX_USES: u32 = 10_000;
/// A redeemed sign-in lasts a working day, whatever is left of the invite: the invite's
/// expiry bounds when it can be redeemed, not how long the guest may stay.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// Longest guest name.
pub const NAME_MAX: usize = 64;

/// What the maker asks for.
#[derive(Clone, Debug)]
pub struct InviteRequest {
    pub role: Role,
    pub expires_in: Duration,
    pub max_uses: Option<u32>,
}

/// An invite with its link, as the maker sees it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Link {
    #[serde(flatten)]
    pub invite: Invite,
    pub token: String,
    /// `/m/<roomId>?invite=<token>`: the page's address for it (the origin is the
    /// caller's).
    pub path: String,
}

/// A redeemed invite: the guest's sign-in.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Redeemed {
    pub token: String,
    pub room_id: RoomId,
    pub user_id: UserId,
    pub role: Role,
    pub expires_in: u64,
}

/// Why an invite request failed.
#[derive(Debug, thiserror::Error)]
pub enum InviteError {
    #[error("no meeting with id {0}")]
    NotFound(RoomId),
    #[error("this meeting has ended")]
    MeetingEnded,
    #[error("the meeting is locked by its host: invite links do not let anyone in now")]
    Locked,
    #[error(transparent)]
    Denied(#[from] Denied),
    #[error("{field}: {message}")]
    Validation {
        field: &'static str,
        message: String,
    },
    #[error("this invite link is not valid: {0}")]
    Invalid(String),
    #[error("this invite link has expired; ask the host for a new one")]
    Expired,
    #[error(
        "this invite link has been used as many times as it allows; ask the host for a new one"
    )]
    UsedUp,
    #[error("the host revoked this invite link")]
    Revoked,
    #[error("this invite link is for another meeting ({0})")]
    WrongMeeting(RoomId),
    #[error("nobody with id {0} is an invite of this meeting")]
    NoSuchInvite(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Sign(#[from] SignError),
}

impl InviteError {
    /// The code clients see (REST `error.code`, Socket.IO acks).
    pub fn code(&self) -> &'static str {
        match self {
            InviteError::NotFound(_) | InviteError::NoSuchInvite(_) => "NOT_FOUND",
            InviteError::MeetingEnded => "MEETING_ENDED",
            InviteError::Locked => "ROOM_LOCKED",
            InviteError::Denied(_) => "FORBIDDEN",
            InviteError::Validation { .. } => "VALIDATION_ERROR",
            InviteError::Invalid(_) => "INVITE_INVALID",
            InviteError::Expired => "INVITE_EXPIRED",
            InviteError::UsedUp => "INVITE_USED_UP",
            InviteError::Revoked => "INVITE_REVOKED",
            InviteError::WrongMeeting(_) => "INVITE_WRONG_MEETING",
            InviteError::Store(_) => "UNAVAILABLE",
            InviteError::Sign(_) => "INTERNAL",
        }
    }
}

fn link(app: &AppState, invite: Invite) -> Result<Link, InviteError> {
    let claims = InviteClaims {
        inv: invite.invite_id.clone(),
        mtg: invite.room_id.to_string(),
        role: invite.role,
        exp: u64::try_from(invite.expires_at.timestamp()).unwrap_or(0),
    };
    // HS256 over the same claims is the same token: a listed invite shows its link again
    // without the store keeping any token.
    let token = app.jwt.sign_invite(&claims)?;
    let path = format!("/m/{}?invite={token}", invite.room_id);
    Ok(Link {
        invite,
        token,
        path,
    })
}

/// A meeting that has not ended, or why not.
async fn open_meeting(app: &AppState, room: &RoomId) -> Result<crate::store::Meeting, InviteError> {
    let meeting = app
        .store
        .get_meeting(room)
        .await?
        .ok_or_else(|| InviteError::NotFound(room.clone()))?;
    if meeting.status == MeetingStatus::Ended {
        return Err(InviteError::MeetingEnded);
    }
    Ok(meeting)
}

/// `by` (with `role` in the meeting) makes an invite for `room`. Making co-hosts is the
/// host's: so is an invite that does; nobody is invited as host.
pub async fn create(
    app: &AppState,
    room: &RoomId,
    by: &UserId,
    role: Role,
    req: InviteRequest,
) -> Result<Link, InviteError> {
    check_role(role, Action::Invites)?;
    match req.role {
        Role::Host => {
            return Err(InviteError::Validation {
                field: "role",
                message: "one of coHost, participant, viewer (a meeting has one host)".into(),
            });
        }
        Role::CoHost => check_role(role, Action::SetCoHost)?,
        Role::Participant | Role::Viewer => {}
    }
    if req.expires_in.is_zero() || req.expires_in > MAX_TTL {
        return Err(InviteError::Validation {
            field: "expiresIn",
            message: format!("from 1 to {} seconds", MAX_TTL.as_secs()),
        });
    }
    if req.max_uses.is_some_and(|n| n == 0 || n > MAX_USES) {
        return Err(InviteError::Validation {
            field: "maxUses",
            message: format!("from 1 to {MAX_USES}, or null for no limit"),
        });
    }
    open_meeting(app, room).await?;
    let now = Utc::now();
    let expires_at = now
        + chrono::Duration::from_std(req.expires_in).unwrap_or_else(|_| chrono::Duration::days(1));
    let new = NewInvite {
        room_id: room.clone(),
        role: req.role,
        created_by: by.clone(),
        expires_at,
        max_uses: req.max_uses,
    };
    let invite = app.store.create_invite(new, now).await?;
    tracing::info!(room = %room, invite = %invite.invite_id, by = %by, role = invite.role.as_str(), "invite created");
    link(app, invite)
}

/// `room`'s invites with their links, for the host or a co-host.
pub async fn list(app: &AppState, room: &RoomId, role: Role) -> Result<Vec<Link>, InviteError> {
    check_role(role, Action::Invites)?;
    let invites = app.store.list_invites(room).await?;
    invites.into_iter().map(|i| link(app, i)).collect()
}

/// Revoke `room`'s invite `id`: its link lets nobody in any more.
pub async fn revoke(
    app: &AppState,
    room: &RoomId,
    role: Role,
    id: &str,
) -> Result<Link, InviteError> {
    check_role(role, Action::Invites)?;
    let invite = app
        .store
        .revoke_invite(room, id, Utc::now())
        .await?
        .ok_or_else(|| InviteError::NoSuchInvite(id.chars().take(64).collect()))?;
    tracing::info!(room = %room, invite = %id, "invite revoked");
    link(app, invite)
}

/// A guest named `name` redeems the link's `token` (opened at `/m/<room>`: `room` is the
/// meeting the page is on). Checked in this order, so that a refused redemption uses
/// nothing: the token, the meeting the page is on, the meeting (not ended, not locked);
/// then one use is counted, atomically. Returns a sign-in token for a fresh guest id,
/// with the invite's role's grants for that meeting only.
pub async fn redeem(
    app: &AppState,
    token: &str,
    name: &str,
    room: Option<&RoomId>,
) -> Result<Redeemed, InviteError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > NAME_MAX {
        return Err(InviteError::Validation {
            field: "name",
            message: format!("1 to {NAME_MAX} characters"),
        });
    }
    let claims = app.jwt.verify_invite(token).map_err(|e| match e {
        AuthError::Expired => InviteError::Expired,
        AuthError::Missing => InviteError::Invalid("no token".into()),
        AuthError::Invalid(why) => InviteError::Invalid(why),
    })?;
    let invited = crate::room_code::normalise(&claims.mtg)
        .ok_or_else(|| InviteError::Invalid("no meeting".into()))?;
    if let Some(page) = room
        && page != &invited
    {
        return Err(InviteError::WrongMeeting(invited));
    }
    let meeting = open_meeting(app, &invited).await?;
    if meeting.settings.lock_room {
        return Err(InviteError::Locked);
    }
    let invite = match app.store.use_invite(&claims.inv, Utc::now()).await? {
        Ok(i) => i,
        Err(InviteRefusal::Unknown) => {
            return Err(InviteError::Invalid("no such invite".into()));
        }
        Err(InviteRefusal::Revoked) => return Err(InviteError::Revoked),
        Err(InviteRefusal::Expired) => return Err(InviteError::Expired),
        Err(InviteRefusal::UsedUp) => return Err(InviteError::UsedUp),
    };
    if invite.room_id != invited {
        return Err(InviteError::Invalid(
            "the invite names another meeting".into(),
        ));
    }
    let user = UserId::new(format!("guest_{}", crate::room_code::random_suffix(12)));
    let grants = Grants::for_role(invite.role, Meetings::Only(vec![invited.clone()]));
    let token = app
        .jwt
        .mint_with(user.as_str(), name, None, SESSION_TTL, grants)?;
    tracing::info!(room = %invited, invite = %invite.invite_id, user = %user, role = invite.role.as_str(), uses = invite.uses, "invite redeemed");
    Ok(Redeemed {
        token,
        room_id: invited,
        user_id: user,
        role: invite.role,
        expires_in: SESSION_TTL.as_secs(),
    })
}
