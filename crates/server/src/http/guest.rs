//! `POST /api/auth/guest` (development only) and `GET /api/ice-servers`.

use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::AppError;
use super::extract::{ApiJson, AuthUser};
use crate::state::AppState;

/// Guest tokens last a working day.
const GUEST_TTL: Duration = Duration::from_secs(12 * 3600);

pub fn guest_routes() -> Router<AppState> {
    Router::new().route("/auth/guest", post(guest_token))
}

pub fn ice_routes() -> Router<AppState> {
    Router::new().route("/ice-servers", get(ice_servers))
}

#[derive(Debug, Deserialize)]
struct GuestBody {
    #[serde(default)]
    name: Option<String>,
}

/// A token for a fresh random user id (`guest_` + 12 characters), so the web page can
/// be tried without an identity provider. Absent when `NODE_ENV=production`.
async fn guest_token(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<GuestBody>,
) -> Result<Json<Value>, AppError> {
    let name = body
        .name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .unwrap_or("Guest");
    if name.chars().count() > 64 {
        return Err(AppError::validation("name", "at most 64 characters"));
    }
    let user_id = format!("guest_{}", crate::room_code::random_suffix(12));
    let token = state.jwt.mint(&user_id, name, None, GUEST_TTL)?;
    Ok(Json(json!({
        "success": true,
        "token": token,
        "user": { "id": user_id, "name": name },
        "expiresIn": GUEST_TTL.as_secs(),
    })))
}

async fn ice_servers(State(state): State<AppState>, user: AuthUser) -> Json<Value> {
    let servers =
        crate::ice::ice_servers(&state.config.ice, &user.id(), std::time::SystemTime::now());
    Json(json!({ "success": true, "iceServers": servers }))
}
