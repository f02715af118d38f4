//! The HTTP edge: `/api/…` (JSON, JWT) and `/health`.
//!
//! [`app`] returns a `Router` with the state applied, so the caller can `.merge()` the
//! web client and `.layer()` the Socket.IO service on top.
//!
//! - [`meetings`] — `/api/meetings/…`
//! - [`invites`] — `/api/meetings/:roomId/invites…` and `POST /api/invites/redeem`
//! - [`recordings`] — `/api/meetings/:roomId/recording/{start,stop}` and `/recordings…`
//! - [`health`] — `/health` (liveness) and `/health/ready` (dependencies)
//! - [`guest`] — `POST /api/auth/guest` (development only) and `GET /api/ice-servers`
//! - [`throttle`] — per-IP rate limits (API, guest tokens, Engine.IO handshakes)
//! - [`headers`] — security headers (CSP, framing, sniffing, referrer) on every response
//! - [`extract`] — the routes' extractors: JSON bodies, query strings, the authenticated user
//! - [`error`] — [`error::AppError`], the one error type of this edge, and its JSON shape

pub mod error;
pub mod extract;
pub mod guest;
pub mod headers;
pub mod health;
pub mod invites;
pub mod meetings;
pub mod recordings;
pub mod throttle;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, Method, header};
use axum::middleware::from_fn_with_state;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::config::CorsOrigins;
use crate::limits::IpAction;
use crate::recording::control::Route;
use crate::state::AppState;
use error::{AppError, BODY_LIMIT};

/// The API router, state applied; recording commands go by `recording`.
pub fn app(state: AppState, recording: Route) -> Router {
    let mut api = Router::new()
        .merge(meetings::routes())
        .merge(invites::routes())
        .merge(invites::redeem_routes().layer(from_fn_with_state(
            (state.limits.clone(), IpAction::Guest),
            throttle::per_ip,
        )))
        .merge(recordings::routes(recording))
        .merge(guest::ice_routes());
    if !state.config.is_production() {
        api = api.merge(guest::guest_routes().layer(from_fn_with_state(
            (state.limits.clone(), IpAction::Guest),
            throttle::per_ip,
        )));
    }
    let api = api.fallback(api_not_found).layer(from_fn_with_state(
        (state.limits.clone(), IpAction::Rest),
        throttle::per_ip,
    ));
    Router::new()
        .nest("/api", api)
        .merge(health::routes())
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn(crate::monitoring::http::record))
        .with_state(state)
}

async fn api_not_found() -> AppError {
    AppError::NotFound("no such API route".to_owned())
}

/// `CORS_ORIGINS` as a layer, put around everything the process serves ([`crate::edge`]):
/// the REST routes, and Socket.IO's HTTP long-polling too, which a frontend on another
/// origin (the original service's runs on its own) uses before, or instead of, the
/// WebSocket. `None` when unset: same origin only.
pub fn cors_layer(origins: &CorsOrigins) -> Option<CorsLayer> {
    let allow = match origins {
        CorsOrigins::None => return None,
        CorsOrigins::Any => AllowOrigin::any(),
        CorsOrigins::List(list) => {
            AllowOrigin::list(list.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
        }
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE]),
    )
}
