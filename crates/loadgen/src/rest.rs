//! The REST side: tokens (from the dev-only guest endpoint, or minted locally with the
//! server's `JWT_SECRET`) and meeting creation.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, anyhow, bail};
use serde_json::{Value, json};

/// Where participants' tokens come from.
#[derive(Clone, Debug)]
pub enum TokenSource {
    /// `POST /api/auth/guest { name }` (disabled in production builds of the server).
    Guest,
    /// Mint HS256 tokens with the server's secret: no round trip, any number of users.
    Secret(String),
}

#[derive(Clone, Debug)]
pub struct Rest {
    base: String,
    http: reqwest::Client,
    tokens: TokenSource,
}

/// Finds the first string value under `key` anywhere in `v` (depth first), so that the
/// tool does not break when a response wraps its payload in `data` or `meeting`.
pub fn find_str<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    match v {
        Value::Object(map) => {
            if let Some(Value::String(s)) = map.get(key) {
                return Some(s);
            }
            map.values().find_map(|child| find_str(child, key))
        }
        Value::Array(items) => items.iter().find_map(|child| find_str(child, key)),
        _ => None,
    }
}

/// An HS256 token with the claims the server expects (`sub`, `name`, `iat`, `exp`).
pub fn mint_token(secret: &str, user_id: &str, name: &str) -> anyhow::Result<String> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let claims = json!({ "sub": user_id, "name": name, "iat": now, "exp": now + 6 * 3600 });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .context("signing a token")
}

impl Rest {
    pub fn new(base: &str, tokens: TokenSource) -> anyhow::Result<Rest> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()
            .context("HTTP client")?;
        Ok(Rest {
            base: base.trim_end_matches('/').to_owned(),
            http,
            tokens,
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// A token for `user_id` (minted) or for a fresh guest named `name`.
    pub async fn token(&self, user_id: &str, name: &str) -> anyhow::Result<String> {
        match &self.tokens {
            TokenSource::Secret(secret) => mint_token(secret, user_id, name),
            TokenSource::Guest => {
                let body = self
                    .post("/api/auth/guest", None, &json!({ "name": name }))
                    .await?;
                find_str(&body, "token")
                    .or_else(|| find_str(&body, "accessToken"))
                    .map(str::to_owned)
                    .ok_or_else(|| anyhow!("the guest endpoint answered without a token: {body}"))
            }
        }
    }

    /// Whether tokens are minted locally (free: a fresh user costs no request).
    pub fn mints_tokens(&self) -> bool {
        matches!(self.tokens, TokenSource::Secret(_))
    }

    /// Creates a meeting as the token's user; returns its `roomId`.
    pub async fn create_meeting(&self, token: &str, title: &str) -> anyhow::Result<String> {
        self.create(token, &json!({ "title": title })).await
    }

    /// [`Rest::create_meeting`] with a participant cap (`maxParticipants`).
    pub async fn create_capped_meeting(
        &self,
        token: &str,
        title: &str,
        max_participants: usize,
    ) -> anyhow::Result<String> {
        self.create(
            token,
            &json!({ "title": title, "maxParticipants": max_participants }),
        )
        .await
    }

    /// An SFU meeting that allows recording (`settings.allowRecording`), for
    /// `--record`.
    pub async fn create_recordable_meeting(
        &self,
        token: &str,
        title: &str,
    ) -> anyhow::Result<String> {
        self.create(
            token,
            &json!({ "title": title, "topology": "sfu", "settings": { "allowRecording": true } }),
        )
        .await
    }

    /// The host starts recording `room` (`POST /api/meetings/:roomId/recording/start`).
    pub async fn start_recording(&self, token: &str, room: &str) -> anyhow::Result<()> {
        self.post(
            &format!("/api/meetings/{room}/recording/start"),
            Some(token),
            &json!({}),
        )
        .await
        .map(|_| ())
    }

    async fn create(&self, token: &str, body: &Value) -> anyhow::Result<String> {
        let body = self.post("/api/meetings/create", Some(token), body).await?;
        find_str(&body, "roomId")
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("the meeting was created but the answer has no roomId: {body}"))
    }

    /// `GET path` without a token; the JSON body of a 2xx answer.
    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        let res = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .with_context(|| format!("GET {path}"))?;
        let status = res.status();
        let text = res
            .text()
            .await
            .with_context(|| format!("GET {path}: reading the body"))?;
        if !status.is_success() {
            bail!(
                "GET {path}: HTTP {status}: {}",
                text.chars().take(300).collect::<String>()
            );
        }
        serde_json::from_str(&text).with_context(|| format!("GET {path}: the body is not JSON"))
    }

    async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> anyhow::Result<Value> {
        let mut req = self.http.post(format!("{}{path}", self.base)).json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let res = req.send().await.with_context(|| format!("POST {path}"))?;
        let status = res.status();
        let text = res
            .text()
            .await
            .with_context(|| format!("POST {path}: reading the body"))?;
        if !status.is_success() {
            bail!(
                "POST {path}: HTTP {status}: {}",
                text.chars().take(300).collect::<String>()
            );
        }
        serde_json::from_str(&text).with_context(|| format!("POST {path}: the body is not JSON"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nested_keys() {
        let v = json!({"success": true, "data": {"meeting": {"roomId": "ABC-DEF"}}});
        assert_eq!(find_str(&v, "roomId"), Some("ABC-DEF"));
        assert_eq!(find_str(&json!({"token": "t"}), "token"), Some("t"));
        assert_eq!(find_str(&json!({"roomId": 5}), "roomId"), None);
    }

    #[test]
    fn minted_tokens_verify_with_the_secret() {
        let t = mint_token("test", "load-1", "Load 1").expect("mint");
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
        validation.validate_exp = true;
        let data = jsonwebtoken::decode::<Value>(
            &t,
            &jsonwebtoken::DecodingKey::from_secret(b"test"),
            &validation,
        )
        .expect("verifies");
        assert_eq!(data.claims["sub"], "load-1");
        assert!(
            jsonwebtoken::decode::<Value>(
                &t,
                &jsonwebtoken::DecodingKey::from_secret(b"other"),
                &validation
            )
            .is_err()
        );
    }
}
