//! What an operator watches: `METRICS_ENABLED`, `METRICS_PORT`, `LOG_FORMAT`, and the
//! webhooks (`WEBHOOK_URL`, `WEBHOOK_SECRET`). docs/operations.md describes each.

use super::ConfigError;
use super::vars::{Vars, invalid};

/// How the service reports on itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObserveSettings {
    /// `METRICS_ENABLED` (default true): `GET /metrics` and the engine's per-stream
    /// statistics. Off: no `/metrics`, and nothing is recorded.
    pub metrics_enabled: bool,
    /// `METRICS_PORT`: serve `/metrics` on its own port (on `HOST`) instead of the main
    /// one, so that it can be kept off the public port.
    pub metrics_port: Option<u16>,
    pub log_format: LogFormat,
    /// `WEBHOOK_URL`: where events are posted (comma-separated, each http:// or https://).
    pub webhook_urls: Vec<String>,
    /// `WEBHOOK_SECRET`: the HMAC-SHA256 key of the signature (required with a URL).
    pub webhook_secret: String,
}

/// `LOG_FORMAT`: `text` (default, for people) or `json` (one object per line).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

pub(super) fn observe_settings(
    vars: &Vars,
    main_port: u16,
) -> Result<ObserveSettings, ConfigError> {
    let metrics_enabled = vars.bool("METRICS_ENABLED", true)?;
    let metrics_port = match vars.get("METRICS_PORT") {
        None => None,
        Some(v) => match v.parse::<u16>() {
            Ok(p) if p != 0 && p != main_port => Some(p),
            _ => {
                return Err(invalid(
                    "METRICS_PORT",
                    v,
                    "a TCP port (1-65535) other than PORT",
                ));
            }
        },
    };
    let log_format = match vars.get("LOG_FORMAT").map(str::to_ascii_lowercase) {
        None => LogFormat::Text,
        Some(v) if v == "text" => LogFormat::Text,
        Some(v) if v == "json" => LogFormat::Json,
        Some(v) => return Err(invalid("LOG_FORMAT", &v, "text or json")),
    };
    let mut webhook_urls = Vec::new();
    for url in vars
        .get("WEBHOOK_URL")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
    {
        let rest = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"));
        if rest.is_none_or(|r| r.is_empty() || r.starts_with('/')) {
            return Err(invalid(
                "WEBHOOK_URL",
                url,
                "a comma-separated list of http:// or https:// URLs",
            ));
        }
        webhook_urls.push(url.to_owned());
    }
    let webhook_secret = vars.get("WEBHOOK_SECRET").unwrap_or_default().to_owned();
    if !webhook_urls.is_empty() && webhook_secret.len() < 16 {
        return Err(invalid(
            "WEBHOOK_SECRET",
            "<hidden>",
            "at least 16 characters when WEBHOOK_URL is set (the key receivers check signatures with)",
        ));
    }
    Ok(ObserveSettings {
        metrics_enabled,
        metrics_port,
        log_format,
        webhook_urls,
        webhook_secret,
    })
}
