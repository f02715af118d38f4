//! JWT authentication (HS256, `JWT_SECRET`), shared by the REST API and the signaling.
//!
//! Claims: `sub` (user id), `name` (display name), `picture` (optional avatar URL),
//! `exp` and `iat` (seconds since the epoch), and optionally `grants` (what the bearer
//! may do: [`crate::access::Grants`]; absent, a participant of any meeting). Tokens of another auth service may carry
//! the id and name under other claims: [`ClaimNames`] (`JWT_USER_CLAIM`,
//! `JWT_NAME_CLAIM`) says where to look first, then `sub`, `userId`, `id`, `_id` and
//! `name`, `username`, `displayName`. [`JwtKeys::verify`] is the one check both
//! edges use; its axum extractor (`Authorization: Bearer <token>`) is
//! `crate::http::extract::AuthUser`. This module is a leaf: it knows neither the HTTP
//! edge's error type nor the application state, so both edges can depend on it.

use std::time::Duration;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use proto::UserId;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::access::Grants;

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
    /// What the bearer may do; written only when it differs from the default.
    #[serde(default, skip_serializing_if = "Grants::is_default")]
    pub grants: Grants,
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

/// Where the user id is looked for when `JWT_USER_CLAIM` names none or the token lacks it,
/// in this order: ours, then what Node.js auth services commonly sign (`userId`, `id`,
/// MongoDB's `_id`).
pub const USER_CLAIM_FALLBACKS: &[&str] = &["sub", "userId", "id", "_id"];
/// The same for the display name (`JWT_NAME_CLAIM`).
pub const NAME_CLAIM_FALLBACKS: &[&str] = &["name", "username", "displayName"];

/// Which claims hold the user id and the display name, in the order they are tried.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimNames {
    user: Vec<String>,
    name: Vec<String>,
}

impl ClaimNames {
    /// `user` (`JWT_USER_CLAIM`) and `name` (`JWT_NAME_CLAIM`) first when given, then
    /// the fallbacks.
    pub fn new(user: Option<&str>, name: Option<&str>) -> Self {
        fn order(first: Option<&str>, rest: &[&str]) -> Vec<String> {
            let mut list: Vec<String> = first.into_iter().map(str::to_owned).collect();
            for r in rest {
                if !list.iter().any(|c| c == r) {
                    list.push((*r).to_owned());
                }
            }
            list
        }
        ClaimNames {
            user: order(user, USER_CLAIM_FALLBACKS),
            name: order(name, NAME_CLAIM_FALLBACKS),
        }
    }

    /// The user-id claims in the order they are tried.
    pub fn user(&self) -> &[String] {
        &self.user
    }

    /// The display-name claims in the order they are tried.
    pub fn name(&self) -> &[String] {
        &self.name
    }
}

impl Default for ClaimNames {
    fn default() -> Self {
        ClaimNames::new(None, None)
    }
}

/// The claims as signed, before the id and name are picked out of them.
#[derive(Deserialize)]
struct RawClaims {
    exp: u64,
    #[serde(default)]
    iat: u64,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

/// A user id as another service may have signed it: text, a whole number (`42`), or a
/// MongoDB ObjectId in Extended JSON (`{"$oid": "65a1…"}`); `None` for anything else.
fn id_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.trim().to_owned()),
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        Value::Object(o) if o.len() == 1 => {
            o.get("$oid").and_then(Value::as_str).map(str::to_owned)
        }
        _ => None,
    }
}

/// The first of `names` present in `claims`. A present claim that cannot be an id is
/// an error rather than a reason to look further: it is the one the issuer meant.
fn pick_user(claims: &Map<String, Value>, names: &[String]) -> Result<String, AuthError> {
    let Some((claim, value)) = names
        .iter()
        .find_map(|n| claims.get(n).filter(|v| !v.is_null()).map(|v| (n, v)))
    else {
        return Err(AuthError::Invalid(format!(
            "no user id: the token has none of the claims {} (set JWT_USER_CLAIM to the claim your auth service signs)",
            names.join(", ")
        )));
    };
    match id_text(value) {
        Some(id) if !id.is_empty() && id.chars().count() <= 128 => Ok(id),
        Some(_) => Err(AuthError::Invalid(format!(
            "`{claim}` must be 1-128 characters"
        ))),
        None => Err(AuthError::Invalid(format!(
            "`{claim}` must be a string, a whole number or an ObjectId"
        ))),
    }
}

/// The first of `names` that holds non-empty text; empty when none does (the id is
/// shown then).
fn pick_name(claims: &Map<String, Value>, names: &[String]) -> String {
    names
        .iter()
        .filter_map(|n| claims.get(n).and_then(Value::as_str))
        .map(str::trim)
        .find(|s| !s.is_empty())
        .unwrap_or_default()
        .to_owned()
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

/// What an invite link's token says (`crate::invites`): which invite (its row in the
/// store, where uses and revocation are kept), for which meeting, as which role, until
/// when. It is no sign-in token: [`JwtKeys::verify`] refuses it (it has no user), and
/// [`JwtKeys::verify_invite`] refuses a sign-in token (it has no `inv`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteClaims {
    /// The invite's id.
    pub inv: String,
    /// The meeting's id.
    pub mtg: String,
    pub role: proto::Role,
    pub exp: u64,
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
    claims: ClaimNames,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JwtKeys { .. }")
    }
}

/// Clock skew tolerated on `exp` between this server and whoever minted the token.
pub const LEEWAY_SECS: u64 = 30;

impl JwtKeys {
    /// Keys for `secret`, reading the id and name from the default claims.
    pub fn new(secret: &str) -> Self {
        JwtKeys::with_claims(secret, ClaimNames::default())
    }

    /// Keys for `secret`, reading the id and name from `claims` (`JWT_USER_CLAIM`, …).
    pub fn with_claims(secret: &str, claims: ClaimNames) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECS;
        // The user id may be in another claim than `sub` ([`ClaimNames`]): checked below.
        validation.set_required_spec_claims(&["exp"]);
        JwtKeys {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            validation,
            claims,
        }
    }

    /// Checks signature, algorithm and expiry, and finds the user id (and the name) in
    /// the configured claims; the returned [`Claims::sub`] is that id.
    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        let token = token.trim();
        if token.is_empty() {
            return Err(AuthError::Missing);
        }
        let data = jsonwebtoken::decode::<RawClaims>(token, &self.decoding, &self.validation)
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
        let raw = data.claims;
        if raw.rest.contains_key("inv") {
            return Err(AuthError::Invalid(
                "an invite link's token is not a sign-in token: redeem it (POST /api/invites/redeem)"
                    .into(),
            ));
        }
        Ok(Claims {
            sub: pick_user(&raw.rest, &self.claims.user)?,
            name: pick_name(&raw.rest, &self.claims.name),
            picture: raw
                .rest
                .get("picture")
                .and_then(Value::as_str)
                .map(str::to_owned),
            grants: Grants::from_claim(raw.rest.get("grants"))
                .map_err(|e| AuthError::Invalid(e.to_string()))?,
            exp: raw.exp,
            iat: raw.iat,
        })
    }

    /// A token for `user` valid for `ttl`.
    pub fn mint(
        &self,
        user: &str,
        name: &str,
        picture: Option<&str>,
        ttl: Duration,
    ) -> Result<String, SignError> {
        self.mint_with(user, name, picture, ttl, Grants::default())
    }

    /// [`JwtKeys::mint`] with `grants`.
    pub fn mint_with(
        &self,
        user: &str,
        name: &str,
        picture: Option<&str>,
        ttl: Duration,
        grants: Grants,
    ) -> Result<String, SignError> {
        let iat = now_secs();
        let claims = Claims {
            sub: user.to_owned(),
            name: name.to_owned(),
            picture: picture.map(str::to_owned),
            exp: iat + ttl.as_secs(),
            iat,
            grants,
        };
        self.sign(&claims)
    }

    /// The token of an invite link.
    pub fn sign_invite(&self, claims: &InviteClaims) -> Result<String, SignError> {
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            claims,
            &self.encoding,
        )?)
    }

    /// Checks an invite link's token: signature, algorithm, expiry (without leeway: the
    /// store's expiry is the same instant) and its claims.
    pub fn verify_invite(&self, token: &str) -> Result<InviteClaims, AuthError> {
        let token = token.trim();
        if token.is_empty() {
            return Err(AuthError::Missing);
        }
        let mut validation = self.validation.clone();
        validation.leeway = 0;
        jsonwebtoken::decode::<InviteClaims>(token, &self.decoding, &validation)
            .map(|d| d.claims)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => AuthError::Expired,
                ErrorKind::InvalidSignature => AuthError::Invalid("bad signature".into()),
                _ => AuthError::Invalid("not an invite link's token".into()),
            })
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
            grants: Grants::default(),
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

    /// Tokens of the platform's auth service: the id under `userId`, `id` or `_id` (text,
    /// a number, an ObjectId), the name under `username` or `displayName`, or under the
    /// claims the settings name.
    #[test]
    fn ids_and_names_from_other_claims() {
        let secret = "0123456789abcdef0123456789abcdef";
        let exp = now_secs() + 600;
        let sign = |claims: Value| {
            jsonwebtoken::encode(
                &Header::new(Algorithm::HS256),
                &claims,
                &EncodingKey::from_secret(secret.as_bytes()),
            )
            .expect("sign")
        };
        let default = JwtKeys::new(secret);
        let cases = [
            (
                serde_json::json!({ "userId": "u-7", "username": "ann", "exp": exp }),
                "u-7",
                "ann",
            ),
            (
                serde_json::json!({ "id": 42, "displayName": "Bo", "exp": exp }),
                "42",
                "Bo",
            ),
            (
                serde_json::json!({ "_id": "65a1f0c2e4b0a1b2c3d4e5f6", "name": "Cy", "exp": exp }),
                "65a1f0c2e4b0a1b2c3d4e5f6",
                "Cy",
            ),
            (
                serde_json::json!({ "_id": { "$oid": "65a1f0c2e4b0a1b2c3d4e5f7" }, "exp": exp }),
                "65a1f0c2e4b0a1b2c3d4e5f7",
                "",
            ),
            // `sub` first when several are there.
            (
                serde_json::json!({ "sub": "s", "userId": "u", "exp": exp }),
                "s",
                "",
            ),
        ];
        for (claims, id, name) in cases {
            let c = default.verify(&sign(claims.clone())).expect("accepted");
            assert_eq!((c.sub.as_str(), c.name.as_str()), (id, name), "{claims}");
        }
        // Configured claims come first.
        let mapped = JwtKeys::with_claims(secret, ClaimNames::new(Some("uid"), Some("fullName")));
        let t = sign(
            serde_json::json!({ "sub": "x", "uid": 9, "fullName": "Di", "name": "no", "exp": exp }),
        );
        let c = mapped.verify(&t).expect("accepted");
        assert_eq!((c.sub.as_str(), c.name.as_str()), ("9", "Di"));
        // No id at all, or one that cannot be an id: refused with the reason.
        for (claims, why) in [
            (serde_json::json!({ "name": "n", "exp": exp }), "no user id"),
            (
                serde_json::json!({ "userId": true, "exp": exp }),
                "`userId` must be",
            ),
            (serde_json::json!({ "id": 1.5, "exp": exp }), "`id` must be"),
            (
                serde_json::json!({ "sub": "", "exp": exp }),
                "`sub` must be 1-128",
            ),
        ] {
            match default.verify(&sign(claims.clone())) {
                Err(AuthError::Invalid(m)) => assert!(m.contains(why), "{claims}: {m}"),
                other => panic!("{claims}: {other:?}"),
            }
        }
        // `exp` is still required.
        let t = sign(serde_json::json!({ "userId": "u" }));
        assert_eq!(
            default.verify(&t).map_err(|e| e.code()),
            Err("TOKEN_INVALID")
        );
    }

    /// The `grants` claim: signed and read back; a malformed one refuses the token.
    #[test]
    fn grants_travel_in_the_token() {
        let jwt = JwtKeys::new("0123456789abcdef0123456789abcdef");
        let viewer = Grants::for_role(proto::Role::Viewer, crate::access::Meetings::All);
        let t = jwt
            .mint_with("v", "V", None, Duration::from_secs(60), viewer.clone())
            .expect("mint");
        assert_eq!(jwt.verify(&t).expect("valid").grants, viewer);
        let plain = jwt
            .mint("p", "P", None, Duration::from_secs(60))
            .expect("mint");
        assert_eq!(jwt.verify(&plain).expect("valid").grants, Grants::default());
        let bad = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &serde_json::json!({ "sub": "x", "exp": now_secs() + 60, "grants": { "role": "king" } }),
            &EncodingKey::from_secret(b"0123456789abcdef0123456789abcdef"),
        )
        .expect("sign");
        match jwt.verify(&bad) {
            Err(AuthError::Invalid(m)) => assert!(m.contains("`grants`"), "{m}"),
            other => panic!("{other:?}"),
        }
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
