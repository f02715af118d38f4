//! HTTP requests by route and status: a middleware on the REST router. The route label
//! is axum's route template (`/api/meetings/{room_id}`), never the raw path, so that the
//! series stay a fixed set; a request no route matched counts as `unmatched`.
//!
//! The same middleware logs every refused request once (`request refused`, at `info`,
//! with the method, the path, which names the meeting, and the status), so that the
//! error a user reports can be found. `429` is left out: a flood would fill the log,
//! and `http_requests_total{status="429"}` counts it.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;

use super::names;

pub async fn record(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    let start = Instant::now();
    let response = next.run(req).await;
    let code = response.status();
    if (code.is_client_error() || code.is_server_error()) && code != StatusCode::TOO_MANY_REQUESTS {
        tracing::info!(%method, path = %path.chars().take(200).collect::<String>(), status = code.as_u16(), "request refused");
    }
    let status = code.as_u16().to_string();
    metrics::histogram!(names::HTTP_DURATION, "route" => route.clone())
        .record(start.elapsed().as_secs_f64());
    metrics::counter!(names::HTTP_REQUESTS, "route" => route, "status" => status).increment(1);
    response
}
