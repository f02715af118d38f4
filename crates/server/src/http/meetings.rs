//! `/api/meetings/…`: the meetings REST API of the service we replace.
//!
//! Anyone with a valid token may read a meeting by its ID (the ID is the invitation);
//! only its host may change, end or delete it; a user's list is visible to that user.

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use proto::{RoomId, UserId};
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::AppError;
use super::extract::{ApiJson, ApiQuery, AuthUser};
use crate::room_code;
use crate::state::{AppState, EndReason, MeetingEvent};
use crate::store::{Meeting, MeetingSettings, MeetingStatus, MeetingUpdate, NewMeeting, Topology};
use crate::webhooks::WebhookEvent;

const TITLE_MAX: usize = 200;
const DESCRIPTION_MAX: usize = 2000;
const PAGE_MAX: u32 = 100;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/meetings/create", post(create))
        .route("/meetings/user/{user_id}", get(user_meetings))
        .route(
            "/meetings/{room_id}",
            get(get_one).put(update).delete(delete),
        )
        .route("/meetings/{room_id}/participants", get(participants))
        .route("/meetings/{room_id}/end", post(end))
        .route("/meetings/{room_id}/stats", get(stats))
}

/// Settings as clients send them: every field optional (a PUT changes only what it
/// names), with the original service's `is…Enabled` names accepted too.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SettingsPatch {
    max_participants: Option<u32>,
    #[serde(alias = "isChatEnabled")]
    allow_chat: Option<bool>,
    #[serde(alias = "isScreenShareEnabled")]
    allow_screen_share: Option<bool>,
    #[serde(alias = "isRecordingEnabled")]
    allow_recording: Option<bool>,
    require_approval: Option<bool>,
    lock_room: Option<bool>,
}

impl SettingsPatch {
    fn apply(&self, mut s: MeetingSettings) -> MeetingSettings {
        s.allow_chat = self.allow_chat.unwrap_or(s.allow_chat);
        s.allow_screen_share = self.allow_screen_share.unwrap_or(s.allow_screen_share);
        s.allow_recording = self.allow_recording.unwrap_or(s.allow_recording);
        s.require_approval = self.require_approval.unwrap_or(s.require_approval);
        s.lock_room = self.lock_room.unwrap_or(s.lock_room);
        s
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateBody {
    title: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    scheduled_at: Option<DateTime<Utc>>,
    /// Also accepted inside `settings`, where the original service had it.
    #[serde(default)]
    max_participants: Option<u32>,
    #[serde(default)]
    settings: Option<SettingsPatch>,
    #[serde(default)]
    topology: Option<Topology>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdateBody {
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    scheduled_at: Option<DateTime<Utc>>,
    #[serde(default)]
    max_participants: Option<u32>,
    #[serde(default)]
    settings: Option<SettingsPatch>,
}

fn check_title(title: &str) -> Result<String, AppError> {
    let t = title.trim();
    if t.is_empty() {
        return Err(AppError::validation("title", "must not be empty"));
    }
    if t.chars().count() > TITLE_MAX {
        return Err(AppError::validation(
            "title",
            format!("at most {TITLE_MAX} characters"),
        ));
    }
    Ok(t.to_owned())
}

fn check_description(d: &str) -> Result<String, AppError> {
    if d.chars().count() > DESCRIPTION_MAX {
        return Err(AppError::validation(
            "description",
            format!("at most {DESCRIPTION_MAX} characters"),
        ));
    }
    Ok(d.trim().to_owned())
}

/// The cap may be given at the top level or in `settings`; it must fit the server's.
fn check_max(
    state: &AppState,
    top: Option<u32>,
    settings: Option<&SettingsPatch>,
) -> Result<Option<u32>, AppError> {
    let (field, value) = match (top, settings.and_then(|s| s.max_participants)) {
        (Some(v), _) => ("maxParticipants", v),
        (None, Some(v)) => ("settings.maxParticipants", v),
        (None, None) => return Ok(None),
    };
    let server_max = state.config.max_participants;
    if !(2..=server_max).contains(&value) {
        return Err(AppError::validation(
            field,
            format!("must be from 2 to {server_max} (MAX_PARTICIPANTS)"),
        ));
    }
    Ok(Some(value))
}

fn check_scheduled(
    at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, AppError> {
    match at {
        // A minute of slack for clients whose clocks run a little ahead of ours.
        Some(t) if t < now - chrono::Duration::minutes(1) => Err(AppError::validation(
            "scheduledAt",
            "must not be in the past",
        )),
        other => Ok(other),
    }
}

/// The room ID in the path ([`room_code::normalise`]); anything that cannot name a
/// meeting is a 404.
fn room(raw: &str) -> Result<RoomId, AppError> {
    room_code::normalise(raw).ok_or_else(|| not_found(raw))
}

fn not_found(raw: &str) -> AppError {
    let shown: String = raw.chars().take(32).collect();
    AppError::NotFound(format!("no meeting with ID {shown:?}"))
}

async fn load(state: &AppState, raw: &str) -> Result<Meeting, AppError> {
    let id = room(raw)?;
    state
        .store
        .get_meeting(&id)
        .await?
        .ok_or_else(|| not_found(raw))
}

fn require_host(m: &Meeting, user: &AuthUser, action: &str) -> Result<(), AppError> {
    if m.is_host(&user.id()) {
        Ok(())
    } else {
        Err(AppError::Forbidden(format!(
            "only the host can {action} this meeting"
        )))
    }
}

fn ended_conflict(m: &Meeting) -> AppError {
    AppError::Conflict {
        code: "MEETING_ENDED",
        message: format!("meeting {} has ended", m.room_id),
    }
}

async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(body): ApiJson<CreateBody>,
) -> Result<(axum::http::StatusCode, Json<Value>), AppError> {
    state
        .limits
        .check_user(crate::limits::UserAction::CreateMeeting, &user.id())?;
    // A draining node (SIGTERM) takes no new meetings: the client tries again, and the
    // load balancer, which sees this node not ready, sends it to another one.
    if state.is_draining() {
        return Err(AppError::Unavailable(
            "this server is shutting down; try again".to_owned(),
        ));
    }
    let now = Utc::now();
    let title = check_title(&body.title)?;
    let description = check_description(body.description.as_deref().unwrap_or(""))?;
    let max_participants = check_max(&state, body.max_participants, body.settings.as_ref())?
        .unwrap_or(state.config.max_participants);
    let scheduled_at = check_scheduled(body.scheduled_at, now)?;
    let default_topology = if state.config.sfu_mode_enabled {
        Topology::Sfu
    } else {
        Topology::Mesh
    };
    let topology = body.topology.unwrap_or(default_topology);
    // With SFU_MODE_ENABLED=false the engine may still run for meetings that ask for it
    // (with true, `serve` does not start without it).
    if topology == Topology::Sfu && !state.config.sfu_mode_enabled && state.sfu.is_none() {
        return Err(AppError::validation(
            "topology",
            "the SFU is not running on this server (SFU_MODE_ENABLED=false or no UDP ports); use \"mesh\"",
        ));
    }
    let settings = body
        .settings
        .as_ref()
        .map(|p| p.apply(MeetingSettings::default()))
        .unwrap_or_default();
    let meeting = state
        .store
        .create_meeting(
            NewMeeting {
                title,
                description,
                host_id: user.id(),
                max_participants,
                settings,
                topology,
                scheduled_at,
            },
            now,
        )
        .await?;
    tracing::info!(room = %meeting.room_id, host = %meeting.host_id, "meeting created");
    Ok((
        axum::http::StatusCode::CREATED,
        Json(json!({ "success": true, "meeting": meeting })),
    ))
}

async fn get_one(
    State(state): State<AppState>,
    _user: AuthUser,
    Path(room_id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let meeting = load(&state, &room_id).await?;
    let participants = state.store.present_participants(&meeting.room_id).await?;
    let count = participants.len();
    // The original service embedded the participants in the meeting; frontends read them there.
    let mut meeting = serde_json::to_value(&meeting).map_err(AppError::internal)?;
    meeting["participants"] = serde_json::to_value(&participants).map_err(AppError::internal)?;
    Ok(Json(
        json!({ "success": true, "meeting": meeting, "participantCount": count }),
    ))
}

async fn participants(
    State(state): State<AppState>,
    _user: AuthUser,
    Path(room_id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let meeting = load(&state, &room_id).await?;
    let participants = state.store.present_participants(&meeting.room_id).await?;
    Ok(Json(
        json!({ "success": true, "roomId": meeting.room_id, "count": participants.len(), "participants": participants }),
    ))
}

async fn update(
    State(state): State<AppState>,
    user: AuthUser,
    Path(room_id): Path<String>,
    ApiJson(body): ApiJson<UpdateBody>,
) -> Result<Json<Value>, AppError> {
    let now = Utc::now();
    let meeting = load(&state, &room_id).await?;
    require_host(&meeting, &user, "update")?;
    if meeting.status == MeetingStatus::Ended {
        return Err(ended_conflict(&meeting));
    }
    let update = MeetingUpdate {
        title: body.title.as_deref().map(check_title).transpose()?,
        description: body
            .description
            .as_deref()
            .map(check_description)
            .transpose()?,
        max_participants: check_max(&state, body.max_participants, body.settings.as_ref())?,
        settings: body.settings.as_ref().map(|p| p.apply(meeting.settings)),
        scheduled_at: check_scheduled(body.scheduled_at, now)?,
    };
    let updated = state
        .store
        .update_meeting(&meeting.room_id, update, now)
        .await?
        .ok_or_else(|| not_found(&room_id))?;
    state.publish(MeetingEvent::Updated(Box::new(updated.clone())));
    Ok(Json(json!({ "success": true, "meeting": updated })))
}

async fn end(
    State(state): State<AppState>,
    user: AuthUser,
    Path(room_id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let meeting = load(&state, &room_id).await?;
    require_host(&meeting, &user, "end")?;
    let ended = state
        .store
        .end_meeting(&meeting.room_id, EndReason::HostEnded.as_str(), Utc::now())
        .await?
        .ok_or_else(|| ended_conflict(&meeting))?;
    tracing::info!(room = %ended.room_id, "meeting ended by its host");
    let reason = EndReason::HostEnded;
    let hook = WebhookEvent::MeetingEnded { reason };
    state.webhooks.emit(&ended.room_id, hook);
    state.publish(MeetingEvent::Ended {
        room_id: ended.room_id.clone(),
        reason: EndReason::HostEnded,
    });
    Ok(Json(json!({ "success": true, "meeting": ended })))
}

async fn delete(
    State(state): State<AppState>,
    user: AuthUser,
    Path(room_id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let meeting = load(&state, &room_id).await?;
    require_host(&meeting, &user, "delete")?;
    if !state.store.delete_meeting(&meeting.room_id).await? {
        return Err(not_found(&room_id));
    }
    tracing::info!(room = %meeting.room_id, "meeting deleted by its host");
    if meeting.status != MeetingStatus::Ended {
        let reason = EndReason::Deleted;
        let hook = WebhookEvent::MeetingEnded { reason };
        state.webhooks.emit(&meeting.room_id, hook);
    }
    state.publish(MeetingEvent::Ended {
        room_id: meeting.room_id.clone(),
        reason: EndReason::Deleted,
    });
    Ok(Json(json!({ "success": true, "roomId": meeting.room_id })))
}

async fn stats(
    State(state): State<AppState>,
    _user: AuthUser,
    Path(room_id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let id = room(&room_id)?;
    let stats = state
        .store
        .stats(&id)
        .await?
        .ok_or_else(|| not_found(&room_id))?;
    Ok(Json(json!({ "success": true, "stats": stats })))
}

#[derive(Debug, Deserialize)]
struct PageQuery {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    limit: Option<u32>,
    #[serde(default)]
    skip: Option<u64>,
}

async fn user_meetings(
    State(state): State<AppState>,
    user: AuthUser,
    Path(user_id): Path<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Value>, AppError> {
    let target = UserId::new(user_id);
    if target != user.id() {
        return Err(AppError::Forbidden(
            "you can list only your own meetings".to_owned(),
        ));
    }
    let status = match q.status.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(
            MeetingStatus::parse(s)
                .ok_or_else(|| AppError::validation("status", "one of scheduled, active, ended"))?,
        ),
    };
    let limit = q.limit.unwrap_or(20);
    if !(1..=PAGE_MAX).contains(&limit) {
        return Err(AppError::validation(
            "limit",
            format!("from 1 to {PAGE_MAX}"),
        ));
    }
    let page = state
        .store
        .user_meetings(&target, status, limit, q.skip.unwrap_or(0))
        .await?;
    Ok(Json(
        json!({ "success": true, "meetings": page.meetings, "total": page.total, "limit": page.limit, "skip": page.skip }),
    ))
}
