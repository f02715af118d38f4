//! Invite links over REST (rules in [`crate::invites`]):
//! - `POST /api/meetings/:roomId/invites` `{ role?, expiresIn?, maxUses? }`: the host
//!   makes one (201 with its `token` and `path`);
//! - `GET /api/meetings/:roomId/invites`: the host's list, each with its link;
//! - `DELETE /api/meetings/:roomId/invites/:inviteId`: revoked;
//! - `POST /api/invites/redeem` `{ token, name, roomId? }`, without a sign-in: a guest's
//!   sign-in token for that meeting (rate-limited per IP like guest tokens).
//!
//! REST knows who created a meeting but not who is co-host in it (live state, known to
//! the signaling): co-hosts use the `invite-*` Socket.IO events.

use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, post};
use proto::Role;
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::AppError;
use super::extract::{ApiJson, AuthUser};
use crate::invites::{self, InviteRequest};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/meetings/{room_id}/invites", post(create).get(list))
        .route("/meetings/{room_id}/invites/{invite_id}", delete(revoke))
}

/// `POST /api/invites/redeem`, rate-limited by the caller ([`super::app`]).
pub fn redeem_routes() -> Router<AppState> {
    Router::new().route("/invites/redeem", post(redeem))
}

/// What an invite request asks for, as [`InviteRequest`] with its defaults.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InviteBody {
    #[serde(default)]
    pub role: Option<Role>,
    /// Seconds.
    #[serde(default)]
    pub expires_in: Option<u64>,
    #[serde(default)]
    pub max_uses: Option<u32>,
}

impl InviteBody {
    pub fn request(&self) -> InviteRequest {
        InviteRequest {
            role: self.role.unwrap_or(Role::Participant),
            expires_in: self
                .expires_in
                .map(Duration::from_secs)
                .unwrap_or(invites::DEFAULT_TTL),
            max_uses: self.max_uses,
        }
    }
}

/// The caller's role as REST can tell it: the meeting's creator, or a token granted
/// `host`, is the host; anyone else is refused by the table as a participant.
async fn caller_role(
    state: &AppState,
    user: &AuthUser,
    room: &proto::RoomId,
) -> Result<Role, AppError> {
    let meeting = state
        .store
        .get_meeting(room)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no meeting with ID {room}")))?;
    let host = meeting.is_host(&user.id()) || user.0.grants.role == Role::Host;
    Ok(if host { Role::Host } else { Role::Participant })
}

fn room(raw: &str) -> Result<proto::RoomId, AppError> {
    crate::room_code::normalise(raw).ok_or_else(|| {
        let shown: String = raw.chars().take(32).collect();
        AppError::NotFound(format!("no meeting with ID {shown:?}"))
    })
}

async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    Path(room_id): Path<String>,
    ApiJson(body): ApiJson<InviteBody>,
) -> Result<(StatusCode, Json<Value>), AppError> {
    let room = room(&room_id)?;
    let role = caller_role(&state, &user, &room).await?;
    let link = invites::create(&state, &room, &user.id(), role, body.request()).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "success": true, "invite": link })),
    ))
}

async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    Path(room_id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let room = room(&room_id)?;
    let role = caller_role(&state, &user, &room).await?;
    let links = invites::list(&state, &room, role).await?;
    Ok(Json(json!({ "success": true, "invites": links })))
}

async fn revoke(
    State(state): State<AppState>,
    user: AuthUser,
    Path((room_id, invite_id)): Path<(String, String)>,
) -> Result<Json<Value>, AppError> {
    let room = room(&room_id)?;
    let role = caller_role(&state, &user, &room).await?;
    let link = invites::revoke(&state, &room, role, &invite_id).await?;
    Ok(Json(json!({ "success": true, "invite": link })))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RedeemBody {
    token: String,
    name: String,
    /// The meeting the page is on: an invite for another one is refused.
    #[serde(default)]
    room_id: Option<String>,
}

async fn redeem(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RedeemBody>,
) -> Result<Json<Value>, AppError> {
    let page = match body.room_id.as_deref() {
        Some(raw) => Some(room(raw)?),
        None => None,
    };
    let redeemed = invites::redeem(&state, &body.token, &body.name, page.as_ref()).await?;
    Ok(Json(json!({ "success": true, "redeemed": redeemed })))
}
