//! `GET /health`: the process answers (the seed's Render health check).
//! `GET /health/ready`: the database, Redis (when configured) and the SFU workers
//! answer; 503 when one does not, with every check's result in the body, and 503 while
//! the node drains (SIGTERM), so that a load balancer stops sending it new clients.
//! `GET /health/process`: counts that must return to zero or stay flat when a server
//! runs for long (tokio tasks, live participants, open history rows, heap in use); the soak of
//! `meeting-load` reads them.

use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::{Value, json};

use crate::live::LiveRooms;
use crate::state::AppState;

/// A dependency slower than this counts as down.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/health", get(live))
        .route("/health/ready", get(ready))
}

/// `GET /health/process`, given the live registry membership holds (built with the
/// router, after the state, hence its own router with its own state).
pub fn process_routes(state: AppState, live: LiveRooms) -> Router {
    Router::new()
        .route("/health/process", get(process))
        .with_state((state, live))
}

async fn live() -> Json<Value> {
    Json(
        json!({ "status": "ok", "service": "meeting-service", "version": env!("CARGO_PKG_VERSION") }),
    )
}

async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let (database, redis) = tokio::join!(check_database(&state), check_redis(&state));
    let sfu = check_sfu(&state);
    let draining = state.is_draining();
    let all_ok = !draining
        && [&database, &redis, &sfu]
            .iter()
            .all(|c| c["ok"] == json!(true));
    let status = if all_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let status_text = match (all_ok, draining) {
        (true, _) => "ready",
        (false, true) => "draining",
        (false, false) => "unavailable",
    };
    let body = json!({
        "status": status_text,
        "draining": draining,
        "checks": { "database": database, "redis": redis, "sfu": sfu },
    });
    (status, Json(body))
}

async fn check_database(state: &AppState) -> Value {
    let backend = format!("{:?}", state.store.backend()).to_lowercase();
    match tokio::time::timeout(CHECK_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => json!({ "ok": true, "backend": backend }),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: database check failed");
            json!({ "ok": false, "backend": backend, "error": "query failed" })
        }
        Err(_) => json!({ "ok": false, "backend": backend, "error": "timeout" }),
    }
}

async fn check_redis(state: &AppState) -> Value {
    let Some(client) = &state.redis else {
        return json!({ "ok": true, "configured": false });
    };
    let ping = async {
        let mut con = client.get_multiplexed_async_connection().await?;
        redis::cmd("PING").query_async::<String>(&mut con).await
    };
    match tokio::time::timeout(CHECK_TIMEOUT, ping).await {
        Ok(Ok(_)) => json!({ "ok": true, "configured": true }),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: Redis check failed");
            json!({ "ok": false, "configured": true, "error": "unreachable" })
        }
        Err(_) => json!({ "ok": false, "configured": true, "error": "timeout" }),
    }
}

fn check_sfu(state: &AppState) -> Value {
    let enabled = state.config.sfu_mode_enabled;
    let Some(sfu) = &state.sfu else {
        // Mesh-only servers need no engine; SFU-mode servers are useless without one.
        return if enabled {
            json!({ "ok": false, "enabled": true, "running": false, "error": "the media engine is not running" })
        } else {
            json!({ "ok": true, "enabled": false, "running": false })
        };
    };
    let workers: Vec<Value> = sfu
        .stats()
        .iter()
        .map(|w| {
            json!({
                "index": w.index, "port": w.port, "alive": w.alive, "rooms": w.rooms,
                "participants": w.participants, "tcpConnections": w.tcp_connections,
            })
        })
        .collect();
    let ok = !workers.is_empty() && workers.iter().all(|w| w["alive"] == json!(true));
    json!({ "ok": ok, "enabled": enabled, "running": true, "workers": workers })
}

/// The counts a long run watches. `openParticipantRows` is `null` (and the status 503)
/// when the database does not answer in time.
async fn process(State((state, live)): State<(AppState, LiveRooms)>) -> (StatusCode, Json<Value>) {
    let tasks = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks();
    let open_rows =
        match tokio::time::timeout(CHECK_TIMEOUT, state.store.open_participant_rows()).await {
            Ok(Ok(n)) => Some(n),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "process counts: database query failed");
                None
            }
            Err(_) => None,
        };
    let status = if open_rows.is_some() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "tokioTasks": tasks,
        "liveParticipants": live.local_count(),
        "openParticipantRows": open_rows,
        // In use vs freed-but-held: tells a leak from allocator retention (crate::heap).
        "heap": crate::heap::stats(),
    });
    (status, Json(body))
}
