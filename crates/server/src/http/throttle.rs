//! Rate limits at the HTTP edge, as axum middleware around the routes they guard:
//! per client IP on `/api/…` and on guest tokens, and on new Engine.IO sessions in
//! front of the Socket.IO layer. The cells and the client address are
//! [`crate::limits`]'s; here they are only applied.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::AppError;
use crate::limits::{IpAction, Limits};

/// Where Socket.IO is served (socketioxide's default path).
const ENGINE_IO_PATH: &str = "/socket.io";

/// Counts the request against the client address's `action` cell; 429 when it is empty.
pub async fn per_ip(
    State((limits, action)): State<(Arc<Limits>, IpAction)>,
    req: Request,
    next: Next,
) -> Response {
    if let Some(ip) = limits.client_ip(&req)
        && let Err(limited) = limits.check_ip(action, ip)
    {
        return AppError::from(limited).into_response();
    }
    next.run(req).await
}

/// In front of the Socket.IO layer: a request that would open a new Engine.IO session
/// (`/socket.io/` without `sid`, polling or WebSocket alike) counts against the client
/// address's handshake cell. Every such session costs memory until it connects or times
/// out, before any token is checked, so this is what bounds an anonymous client's share.
/// Requests of an existing session (with `sid`) pass untouched.
pub async fn engine_io_handshake(
    State(limits): State<Arc<Limits>>,
    req: Request,
    next: Next,
) -> Response {
    if is_handshake(&req)
        && let Some(ip) = limits.client_ip(&req)
        && let Err(limited) = limits.check_ip(IpAction::Handshake, ip)
    {
        return AppError::from(limited).into_response();
    }
    next.run(req).await
}

fn is_handshake(req: &Request) -> bool {
    let path = req.uri().path();
    let engine_io = path
        .strip_prefix(ENGINE_IO_PATH)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
    engine_io
        && !req
            .uri()
            .query()
            .unwrap_or("")
            .split('&')
            .any(|pair| pair.split('=').next() == Some("sid"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(uri: &str) -> Request {
        Request::builder()
            .uri(uri)
            .body(axum::body::Body::empty())
            .expect("request")
    }

    #[test]
    fn handshakes_are_engine_io_requests_without_sid() {
        assert!(is_handshake(&req("/socket.io/?EIO=4&transport=polling")));
        assert!(is_handshake(&req("/socket.io/?EIO=4&transport=websocket")));
        assert!(is_handshake(&req("/socket.io/")));
        assert!(!is_handshake(&req(
            "/socket.io/?EIO=4&transport=polling&sid=abc"
        )));
        assert!(!is_handshake(&req("/socket.io/?sid=abc&EIO=4")));
        assert!(!is_handshake(&req("/api/meetings/create")));
        assert!(!is_handshake(&req("/socket.iox/?EIO=4")));
        // `xsid` is not `sid`.
        assert!(is_handshake(&req("/socket.io/?EIO=4&xsid=abc")));
    }
}
