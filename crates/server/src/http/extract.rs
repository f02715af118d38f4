//! The extractors of the REST routes: JSON bodies and query strings whose rejections are
//! [`AppError`]s (our JSON shape, field names), and the authenticated caller.

use axum::extract::{FromRequest, FromRequestParts};
use axum::http::request::Parts;
use proto::UserId;

use super::error::AppError;
use crate::auth::{AuthError, Claims};
use crate::state::AppState;

/// `axum::Json` whose rejections are [`AppError`]s (our JSON shape, field names).
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(AppError))]
pub struct ApiJson<T>(pub T);

/// `axum::extract::Query` with [`AppError`] rejections.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(AppError))]
pub struct ApiQuery<T>(pub T);

/// The authenticated caller of an `/api` route: `Authorization: Bearer <token>`, checked
/// with [`crate::auth::JwtKeys::verify`] (the same check the signaling makes).
#[derive(Clone, Debug)]
pub struct AuthUser(pub Claims);

impl AuthUser {
    pub fn id(&self) -> UserId {
        self.0.user_id()
    }
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or(AuthError::Missing)?;
        let value = header
            .to_str()
            .map_err(|_| AuthError::Invalid("the Authorization header is not text".into()))?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .ok_or_else(|| AuthError::Invalid("expected `Authorization: Bearer <token>`".into()))?;
        Ok(AuthUser(state.jwt.verify(token)?))
    }
}
