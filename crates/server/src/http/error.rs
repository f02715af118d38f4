//! The one error type of the HTTP API and its JSON shape:
//! `{ "success": false, "error": { "code": "...", "message": "...", "field"?: "..." } }`.
//!
//! Internal failures (database, I/O) are logged with their details and answered with a
//! generic message: clients never see SQL, paths or secrets.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::auth::{AuthError, SignError};

/// Everything an API request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The request is not valid JSON or lacks the JSON content type (400).
    #[error("{0}")]
    BadRequest(String),
    /// A field has a wrong type or value (422); `field` is its JSON path, e.g. `settings.maxParticipants`.
    #[error("{field}: {message}")]
    Validation { field: String, message: String },
    /// No token, or a forged or expired one (401).
    #[error(transparent)]
    Unauthorized(#[from] AuthError),
    /// Authenticated, but not allowed (403): e.g. a non-host ending a meeting.
    #[error("{0}")]
    Forbidden(String),
    /// (404)
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the resource's state (409), e.g. updating an ended meeting.
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// The body exceeds the limit (413).
    #[error("request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// A dependency is down (503).
    #[error("{0}")]
    Unavailable(String),
    /// Too many requests from this client (429, with `Retry-After`).
    #[error(transparent)]
    RateLimited(#[from] crate::limits::RateLimited),
    /// An invite request refused or failed (`crate::invites`): its own codes.
    #[error(transparent)]
    Invite(crate::invites::InviteError),
    /// A bug or an infrastructure failure (500). The text is logged, never sent.
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        AppError::Validation {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn internal(e: impl std::fmt::Display) -> Self {
        AppError::Internal(e.to_string())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Conflict { .. } => StatusCode::CONFLICT,
            AppError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            AppError::Invite(e) => invite_status(e),
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            AppError::BadRequest(_) => "BAD_REQUEST",
            AppError::Validation { .. } => "VALIDATION_ERROR",
            AppError::Unauthorized(e) => e.code(),
            AppError::Forbidden(_) => "FORBIDDEN",
            AppError::NotFound(_) => "NOT_FOUND",
            AppError::Conflict { code, .. } => code,
            AppError::PayloadTooLarge { .. } => "PAYLOAD_TOO_LARGE",
            AppError::Unavailable(_) => "UNAVAILABLE",
            AppError::RateLimited(_) => "RATE_LIMITED",
            AppError::Internal(_) => "INTERNAL",
            AppError::Invite(e) => e.code(),
        }
    }
}

fn invite_status(e: &crate::invites::InviteError) -> StatusCode {
    use crate::invites::InviteError as E;
    match e {
        E::NotFound(_) | E::NoSuchInvite(_) => StatusCode::NOT_FOUND,
        E::MeetingEnded | E::Locked | E::WrongMeeting(_) => StatusCode::CONFLICT,
        E::Denied(_) => StatusCode::FORBIDDEN,
        E::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        E::Invalid(_) => StatusCode::BAD_REQUEST,
        E::Expired | E::UsedUp | E::Revoked => StatusCode::GONE,
        E::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        E::Sign(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            AppError::Internal(detail) => {
                tracing::error!(error = %detail, "internal error answering a request");
                "Something went wrong on our side; the error has been logged.".to_owned()
            }
            AppError::Unavailable(detail) => {
                tracing::warn!(error = %detail, "dependency unavailable");
                "A service this request needs is unavailable; try again shortly.".to_owned()
            }
            other => other.to_string(),
        };
        let mut error = json!({ "code": self.code(), "message": message });
        if let AppError::Validation { field, .. } = &self {
            error["field"] = json!(field);
        }
        if let AppError::Invite(crate::invites::InviteError::Validation { field, .. }) = &self {
            error["field"] = json!(field);
        }
        let mut response = (
            status,
            axum::Json(json!({ "success": false, "error": error })),
        )
            .into_response();
        if let AppError::RateLimited(r) = &self {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(r.retry_after_secs()),
            );
        }
        response
    }
}

/// Store and signing failures are internal (logged, never sent); the rest are the
/// invite's own refusals.
impl From<crate::invites::InviteError> for AppError {
    fn from(e: crate::invites::InviteError) -> Self {
        use crate::invites::InviteError as E;
        match e {
            E::Store(e) => AppError::from(e),
            E::Sign(e) => AppError::internal(e),
            other => AppError::Invite(other),
        }
    }
}

impl From<crate::store::StoreError> for AppError {
    fn from(e: crate::store::StoreError) -> Self {
        AppError::Internal(e.to_string())
    }
}

/// Signing can only fail on a broken key or claims: a bug, answered as one.
impl From<SignError> for AppError {
    fn from(e: SignError) -> Self {
        AppError::Internal(e.to_string())
    }
}

/// Body size limit of every JSON request (meetings are small).
pub const BODY_LIMIT: usize = 64 * 1024;

impl From<JsonRejection> for AppError {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::JsonDataError(e) => {
                let (field, message) = serde_field(&e.body_text());
                AppError::Validation { field, message }
            }
            JsonRejection::JsonSyntaxError(e) => AppError::BadRequest(format!(
                "the body is not valid JSON: {}",
                strip_axum_prefix(&e.body_text())
            )),
            JsonRejection::MissingJsonContentType(_) => AppError::BadRequest(
                "expected a JSON body with `Content-Type: application/json`".to_owned(),
            ),
            JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                AppError::PayloadTooLarge { limit: BODY_LIMIT }
            }
            other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                AppError::PayloadTooLarge { limit: BODY_LIMIT }
            }
            other => AppError::BadRequest(format!("cannot read the body: {}", other.body_text())),
        }
    }
}

impl From<QueryRejection> for AppError {
    fn from(r: QueryRejection) -> Self {
        let text = r.body_text();
        let detail = text
            .strip_prefix("Failed to deserialize query string: ")
            .unwrap_or(&text);
        let (field, message) = serde_field(detail);
        AppError::Validation { field, message }
    }
}

impl From<PathRejection> for AppError {
    fn from(r: PathRejection) -> Self {
        AppError::BadRequest(format!("bad path: {}", r.body_text()))
    }
}

fn strip_axum_prefix(text: &str) -> &str {
    for prefix in [
        "Failed to deserialize the JSON body into the target type: ",
        "Failed to parse the request body as JSON: ",
    ] {
        if let Some(rest) = text.strip_prefix(prefix) {
            return rest;
        }
    }
    text
}

/// Pulls the field name out of a serde message. axum reports the path first
/// (`settings.maxParticipants: invalid type …`); a missing field is only named inside
/// the message (`missing field `title``).
fn serde_field(text: &str) -> (String, String) {
    let text = strip_axum_prefix(text);
    let (path, message) = match text.split_once(": ") {
        Some((p, m)) if !p.is_empty() && !p.contains(' ') => (p.to_owned(), m.to_owned()),
        _ => (".".to_owned(), text.to_owned()),
    };
    let message = message
        .split(" at line ")
        .next()
        .unwrap_or(&message)
        .to_owned();
    let field = if path == "." || path.is_empty() {
        // `missing field `title`` / `unknown variant `x`` → take the backticked name.
        let named = message
            .split('`')
            .nth(1)
            .filter(|_| message.starts_with("missing field"));
        named
            .map(str::to_owned)
            .unwrap_or_else(|| "body".to_owned())
    } else if message.starts_with("missing field")
        && let Some(inner) = message.split('`').nth(1)
    {
        format!("{path}.{inner}")
    } else {
        path
    };
    (field, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_from_serde_messages() {
        let (f, m) = serde_field(
            "Failed to deserialize the JSON body into the target type: settings.maxParticipants: invalid type: string \"x\", expected u32 at line 1 column 40",
        );
        assert_eq!(f, "settings.maxParticipants");
        assert_eq!(m, "invalid type: string \"x\", expected u32");
        let (f, _) = serde_field(
            "Failed to deserialize the JSON body into the target type: missing field `title` at line 1 column 2",
        );
        assert_eq!(f, "title");
        let (f, _) = serde_field("settings: missing field `allowChat` at line 1 column 2");
        assert_eq!(f, "settings.allowChat");
    }

    #[tokio::test]
    async fn internal_errors_do_not_leak() {
        let resp = AppError::internal("relation \"meetings\" does not exist at /var/lib/db")
            .into_response();
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(resp.into_body(), 4096)
            .await
            .expect("body");
        let body: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(body["success"], false);
        assert_eq!(body["error"]["code"], "INTERNAL");
        let text = body.to_string();
        assert!(
            !text.contains("relation") && !text.contains("/var/lib"),
            "leaked: {text}"
        );
    }
}
