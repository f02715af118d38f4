//! Security headers on every response (page, assets, API, Socket.IO polling): a page
//! that only runs its own scripts and cannot be framed, and responses that browsers
//! must not sniff or leak in `Referer` (meeting URLs are invitations).

use axum::Router;
use axum::http::{HeaderName, HeaderValue, header};
use tower_http::set_header::SetResponseHeaderLayer;

/// The web client's policy: its own scripts and styles only (no inline code), media from
/// the camera and peers, signaling over the same origin's WebSocket, no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
img-src 'self' data: blob: https:; media-src 'self' blob: mediastream:; connect-src 'self' ws: wss:; \
frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'";

const HEADERS: &[(HeaderName, &str)] = &[
    (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::REFERRER_POLICY, "no-referrer"),
];

/// `router` with the headers added to each response that does not set them itself.
pub fn with_security_headers(mut router: Router) -> Router {
    for (name, value) in HEADERS {
        router = router.layer(SetResponseHeaderLayer::if_not_present(
            name.clone(),
            HeaderValue::from_static(value),
        ));
    }
    router
}
