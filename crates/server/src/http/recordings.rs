//! `/api/meetings/:roomId/recording/…` and `/recordings…`: the host starts and stops
//! recording, lists the meeting's recordings, downloads their files (with `Range`,
//! served by tower-http's `ServeFile`), and makes signed, expiring links to share.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json};
use proto::RoomId;
use serde::Deserialize;
use serde_json::{Value, json};
use tower::ServiceExt;
use tower_http::services::ServeFile;

use super::error::AppError;
use super::extract::{ApiJson, ApiQuery, AuthUser};
use crate::recording::control::{self, ControlError, Route};
use crate::recording::{RecordingError, library};
use crate::room_code;
use crate::state::AppState;

/// Longest a shared link may live.
const LINK_TTL_MAX: Duration = Duration::from_secs(7 * 24 * 3600);
const LINK_TTL_DEFAULT: Duration = Duration::from_secs(24 * 3600);

/// `route` is where the start, stop and running recording are asked (the node that
/// holds the meeting's media).
pub fn routes(route: Route) -> Router<AppState> {
    Router::new()
        .route("/meetings/{room_id}/recording/start", post(start))
        .route("/meetings/{room_id}/recording/stop", post(stop))
        .route("/meetings/{room_id}/recordings", get(list))
        .route(
            "/meetings/{room_id}/recordings/{recording_id}/link",
            post(link),
        )
        .route(
            "/meetings/{room_id}/recordings/{recording_id}/files/{file}",
            get(download),
        )
        .layer(Extension(route))
}

impl From<ControlError> for AppError {
    fn from(e: ControlError) -> Self {
        let conflict = |code: &'static str, e: &dyn std::fmt::Display| AppError::Conflict {
            code,
            message: e.to_string(),
        };
        match &e {
            ControlError::NotFound(_) => AppError::NotFound(e.to_string()),
            ControlError::MeetingEnded => conflict("MEETING_ENDED", &e),
            ControlError::NotHost | ControlError::Disabled => AppError::Forbidden(e.to_string()),
            ControlError::Mesh => conflict("RECORDING_UNAVAILABLE", &e),
            ControlError::Unreachable(_) => AppError::Unavailable(e.to_string()),
            ControlError::Recording(r) => match r {
                RecordingError::AlreadyRecording => conflict("ALREADY_RECORDING", &e),
                RecordingError::NotRecording => conflict("NOT_RECORDING", &e),
                RecordingError::NoEngine => conflict("RECORDING_UNAVAILABLE", &e),
                RecordingError::Io(_) => AppError::Unavailable(e.to_string()),
            },
            ControlError::Store(_) => AppError::Unavailable(e.to_string()),
        }
    }
}

fn room(raw: &str) -> Result<RoomId, AppError> {
    room_code::parse(raw).ok_or_else(|| {
        let shown: String = raw.chars().take(32).collect();
        AppError::NotFound(format!("no meeting with ID {shown:?}"))
    })
}

async fn start(
    Extension(route): Extension<Route>,
    user: AuthUser,
    Path(room_id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let room = room(&room_id)?;
    let info = control::start(&route, &room, &user.id(), false).await?;
    Ok(Json(json!({
        "success": true,
        "recording": { "recordingId": info.recording_id, "startedAtMs": info.started_at_ms },
    })))
}

async fn stop(
    Extension(route): Extension<Route>,
    user: AuthUser,
    Path(room_id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let room = room(&room_id)?;
    let id = control::stop(&route, &room, &user.id(), false).await?;
    Ok(Json(json!({ "success": true, "recordingId": id })))
}

/// The meeting, if `user` is its host.
async fn hosted(state: &AppState, room: &RoomId, user: &AuthUser) -> Result<(), AppError> {
    let m = state
        .store
        .get_meeting(room)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no meeting with ID {room}")))?;
    if !m.is_host(&user.id()) {
        return Err(AppError::Forbidden(
            "only the host can see this meeting's recordings".to_owned(),
        ));
    }
    Ok(())
}

async fn list(
    State(state): State<AppState>,
    Extension(route): Extension<Route>,
    user: AuthUser,
    Path(room_id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let room = room(&room_id)?;
    hosted(&state, &room, &user).await?;
    let dir = state.recorder.dir().to_owned();
    let r = room.clone();
    let recordings = tokio::task::spawn_blocking(move || library::list(&dir, &r))
        .await
        .map_err(AppError::internal)?
        .map_err(AppError::internal)?;
    let current = route
        .status(&room)
        .await
        .map(|c| json!({ "recordingId": c.recording_id, "startedAtMs": c.started_at_ms }));
    Ok(Json(json!({
        "success": true,
        "roomId": room,
        "recording": current,
        "recordings": recordings,
    })))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LinkBody {
    file: String,
    #[serde(default)]
    ttl_secs: Option<u64>,
}

/// A link to one file that works without a token until it expires.
async fn link(
    State(state): State<AppState>,
    user: AuthUser,
    Path((room_id, recording_id)): Path<(String, String)>,
    ApiJson(body): ApiJson<LinkBody>,
) -> Result<Json<Value>, AppError> {
    let room = room(&room_id)?;
    hosted(&state, &room, &user).await?;
    let ttl = body.ttl_secs.map_or(LINK_TTL_DEFAULT, Duration::from_secs);
    if ttl.is_zero() || ttl > LINK_TTL_MAX {
        return Err(AppError::validation(
            "ttlSecs",
            format!("from 1 to {}", LINK_TTL_MAX.as_secs()),
        ));
    }
    if library::file_path(state.recorder.dir(), &room, &recording_id, &body.file).is_none() {
        return Err(AppError::NotFound("no such recording file".to_owned()));
    }
    let expires = crate::auth::now_secs() + ttl.as_secs();
    let sig = signature(
        &state.config.jwt_secret,
        &room,
        &recording_id,
        &body.file,
        expires,
    );
    let url = format!(
        "/api/meetings/{room}/recordings/{recording_id}/files/{}?expires={expires}&sig={sig}",
        body.file
    );
    Ok(Json(
        json!({ "success": true, "url": url, "expiresAt": expires }),
    ))
}

#[derive(Debug, Deserialize)]
struct SignedQuery {
    #[serde(default)]
    expires: Option<u64>,
    #[serde(default)]
    sig: Option<String>,
}

/// One file of a recording, to the host (bearer token) or with a valid signed link.
/// `Range` requests are answered 206 by `ServeFile`.
async fn download(
    State(state): State<AppState>,
    user: Result<AuthUser, AppError>,
    Path((room_id, recording_id, file)): Path<(String, String, String)>,
    ApiQuery(q): ApiQuery<SignedQuery>,
    request: Request,
) -> Result<Response, AppError> {
    let room = room(&room_id)?;
    match (q.expires, q.sig.as_deref()) {
        (Some(expires), Some(sig)) => {
            let want = signature(
                &state.config.jwt_secret,
                &room,
                &recording_id,
                &file,
                expires,
            );
            if !same(sig.as_bytes(), want.as_bytes()) {
                return Err(AppError::Forbidden(
                    "the link's signature is not valid".to_owned(),
                ));
            }
            if crate::auth::now_secs() > expires {
                return Err(AppError::Forbidden("the link has expired".to_owned()));
            }
        }
        _ => hosted(&state, &room, &user?).await?,
    }
    let path = library::file_path(state.recorder.dir(), &room, &recording_id, &file)
        .ok_or_else(|| AppError::NotFound("no such recording file".to_owned()))?;
    let mime = if file.ends_with(".json") {
        "application/json"
    } else {
        "video/webm"
    };
    let served = ServeFile::new_with_mime(path, &mime.parse().map_err(AppError::internal)?)
        .oneshot(request)
        .await
        .map_err(AppError::internal)?;
    Ok(served.map(Body::new).into_response())
}

/// The link's signature: HMAC-SHA1 with the token secret over what it grants.
fn signature(secret: &str, room: &RoomId, id: &str, file: &str, expires: u64) -> String {
    crate::ice::hmac_sha1_base64(
        secret,
        &format!("recording\n{room}\n{id}\n{file}\n{expires}"),
    )
    .replace('+', "-")
    .replace('/', "_")
    .trim_end_matches('=')
    .to_owned()
}

/// Compares without stopping at the first difference.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
