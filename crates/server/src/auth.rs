//! JWT authentication (HS256, `JWT_SECRET`), shared by the REST API and the signaling.
//!
//! Claims: `sub` (user id), `name` (display name), `picture` (optional avatar URL),
//! `exp` and `iat` (seconds since the epoch). [`JwtKeys::verify`] is the one check both
//! edges use; its axum extractor (`Authorization: Bearer <token>`) is
//! `crate::http::extract::AuthUser`. This module is a leaf: it knows neither the HTTP
//! edge's error type nor the application state, so both edges can depend on it.

use std::time::Duration;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use proto::UserId;
use serde::{Deserialize, Serialize};

/// What a token says about its bearer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id (1–128 characters).
    pub sub: String,
    /// Display name; tokens from other services may omit it (the id is shown then).
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub picture: Option<String>,
    pub exp: u64,
    #[serde(default)]
    pub iat: u64,
}

impl Claims {
    pub fn user_id(&self) -> UserId {
        UserId::new(self.sub.clone())
    }

    pub fn display_name(&self) -> &str {
        if self.name.trim().is_empty() {
            &self.sub
        } else {
            self.name.trim()
        }
    }
}

/// Why a token was refused. The codes are part of the protocol (REST 401 bodies and
/// Socket.IO `connect_error` messages).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error(
        "no token: send `Authorization: Bearer <token>` (get one with `meeting-service token --user <id> --name <name>`)"
    )]
    Missing,
    #[error("the token is not valid: {0}")]
    Invalid(String),
    #[error("the token has expired; get a new one")]
    Expired,
}

impl AuthError {
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Missing => "TOKEN_MISSING",
            AuthError::Invalid(_) => "TOKEN_INVALID",
            AuthError::Expired => "TOKEN_EXPIRED",
        }
    }
}

/// Signing a token failed (the JWT library refused the claims or the key). Callers at
/// the HTTP edge answer it as an internal error; the CLI prints it.
#[derive(Debug, thiserror::Error)]
#[error("cannot sign the token: {0}")]
pub struct SignError(#[from] jsonwebtoken::errors::Error);

/// Signs and checks tokens with the configured secret.
#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JwtKeys { .. }")
    }
}

/// Clock skew tolerated on `exp` between this server and whoever minted the token.
pub const LEEWAY_SECS: u64 = 30;

impl JwtKeys {
    pub fn new(secret: &str) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECS;
        validation.set_required_spec_claims(&["exp", "sub"]);
        JwtKeys {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            validation,
        }
    }

    /// Checks signature, algorithm, expiry and the `sub` claim.
    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        let token = token.trim();
        if token.is_empty() {
            return Err(AuthError::Missing);
        }
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => AuthError::Expired,
                ErrorKind::InvalidSignature => AuthError::Invalid("bad signature".into()),
                ErrorKind::InvalidAlgorithm => AuthError::Invalid("algorithm must be HS256".into()),
                ErrorKind::MissingRequiredClaim(c) => {
                    AuthError::Invalid(format!("missing claim `{c}`"))
                }
                ErrorKind::Json(_) => AuthError::Invalid("malformed claims".into()),
                _ => AuthError::Invalid("malformed token".into()),
            })?;
        let claims = data.claims;
        if claims.sub.is_empty() || claims.sub.chars().count() > 128 {
            return Err(AuthError::Invalid("`sub` must be 1-128 characters".into()));
        }
        Ok(claims)
    }

    /// A token for `user` valid for `ttl`.
    pub fn mint(
        &self,
        user: &str,
        name: &str,
        picture: Option<&str>,
        ttl: Duration,
    ) -> Result<String, SignError> {
        let iat = now_secs();
        let claims = Claims {
            sub: user.to_owned(),
            name: name.to_owned(),
            picture: picture.map(str::to_owned),
            exp: iat + ttl.as_secs(),
            iat,
        };
        self.sign(&claims)
    }

    /// Signs arbitrary claims (tests use it for expired tokens).
    pub fn sign(&self, claims: &Claims) -> Result<String, SignError> {
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            claims,
            &self.encoding,
        )?)
    }
}

pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Parses `90`, `90s`, `30m`, `12h`, `7d` into a duration.
pub fn parse_ttl(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (digits, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 3600, 90s, 30m, 12h or 7d"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        "d" => n.saturating_mul(86_400),
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (use s, m, h or d)")),
    };
    if secs == 0 {
        return Err("the duration must be greater than zero".into());
    }
    Ok(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mint_then_verify() {
        let jwt = JwtKeys::new("0123456789abcdef0123456789abcdef");
        let t = jwt
            .mint("alice", "Alice", None, Duration::from_secs(60))
            .expect("mint");
        let c = jwt.verify(&t).expect("valid");
        assert_eq!((c.sub.as_str(), c.name.as_str()), ("alice", "Alice"));
    }

    #[test]
    fn refusals_have_their_codes() {
        let jwt = JwtKeys::new("0123456789abcdef0123456789abcdef");
        let other = JwtKeys::new("another-secret-another-secret-xx");
        let forged = other
            .mint("alice", "Alice", None, Duration::from_secs(60))
            .expect("mint");
        assert_eq!(
            jwt.verify(&forged).map_err(|e| e.code()),
            Err("TOKEN_INVALID")
        );
        let old = Claims {
            sub: "a".into(),
            name: "A".into(),
            picture: None,
            exp: now_secs() - 3600,
            iat: now_secs() - 7200,
        };
        let expired = jwt.sign(&old).expect("sign");
        assert_eq!(
            jwt.verify(&expired).map_err(|e| e.code()),
            Err("TOKEN_EXPIRED")
        );
        assert_eq!(jwt.verify("").map_err(|e| e.code()), Err("TOKEN_MISSING"));
        assert_eq!(
            jwt.verify("a.b.c").map_err(|e| e.code()),
            Err("TOKEN_INVALID")
        );
    }

    #[test]
    fn ttl_units() {
        assert_eq!(parse_ttl("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_ttl("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_ttl("7d"), Ok(Duration::from_secs(604_800)));
        assert!(parse_ttl("1y").is_err());
        assert!(parse_ttl("h").is_err());
    }
}
