//! The names of the series the server records through the `metrics` facade (the SFU's
//! are written by `monitoring::sfu`). docs/operations.md describes each; the dashboard
//! in `deploy/grafana-dashboard.json` queries them (`tests/metrics.rs` checks it).

pub const MEETINGS_LIVE: &str = "meetings_live";
pub const PARTICIPANTS_LIVE: &str = "participants_live";
pub const SOCKETS_CONNECTED: &str = "sockets_connected";
pub const JOINS: &str = "joins_total";
pub const LEAVES: &str = "leaves_total";
pub const JOIN_DURATION: &str = "join_duration_seconds";
pub const HTTP_REQUESTS: &str = "http_requests_total";
pub const HTTP_DURATION: &str = "http_request_duration_seconds";
pub const DB_DURATION: &str = "db_operation_duration_seconds";
pub const DB_ERRORS: &str = "db_errors_total";
pub const REDIS_DURATION: &str = "redis_operation_duration_seconds";
pub const REDIS_ERRORS: &str = "redis_errors_total";
pub const WEBHOOK_DELIVERIES: &str = "webhook_deliveries_total";
pub const WEBHOOK_DROPPED: &str = "webhook_dropped_total";
