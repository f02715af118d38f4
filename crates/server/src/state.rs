//! What every request handler and background task shares.

use std::sync::Arc;

use proto::RoomId;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::auth::JwtKeys;
use crate::config::Config;
use crate::store::{Meeting, Store};

/// Shared state; cloning is cheap (everything inside is a handle).
#[derive(Clone, Debug)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Store,
    pub jwt: Arc<JwtKeys>,
    /// The media engine; `None` when `SFU_MODE_ENABLED=false` or it is not running.
    pub sfu: Option<Arc<meeting_sfu::Sfu>>,
    /// Set when `REDIS_URL` is configured (readiness check, cluster adapter).
    pub redis: Option<redis::Client>,
    /// Meeting lifecycle changes made outside the signaling (REST, TTL sweeper), so that
    /// `tasks::lifecycle` can tell connected clients and drop the media rooms.
    pub events: broadcast::Sender<MeetingEvent>,
    /// Cancelled once when the process stops (SIGINT, or the end of a drain); every
    /// task stops when it fires.
    pub shutdown: CancellationToken,
    /// Cancelled once on SIGTERM: the node drains (`tasks::drain`). It takes no new
    /// sockets, joins or meetings, reports not ready, and tells its participants to
    /// move; `shutdown` follows when they have, or after `DRAIN_TIMEOUT_SECONDS`.
    pub draining: CancellationToken,
    /// Set when `REDIS_URL` is configured: this node's identity and Redis connection.
    pub cluster: Option<crate::cluster::Cluster>,
    /// Rate limits shared by the HTTP edge and the signaling (`RATE_LIMIT_*`).
    pub limits: Arc<crate::limits::Limits>,
    /// This node's live gauges and pending joins (metrics).
    pub monitor: Arc<crate::monitoring::Monitor>,
    /// The webhook queue (`WEBHOOK_URL`); a no-op without URLs.
    pub webhooks: Arc<crate::webhooks::Webhooks>,
    /// The meetings this node records (`RECORDINGS_DIR`); its notices arrive as
    /// [`MeetingEvent::Recording`].
    pub recorder: crate::recording::Recorder,
    /// When this process built its state: history rows closed before it were closed by
    /// a previous process (its drain, or this start's reconciliation after a crash),
    /// which a resume may open again (`membership::resume`).
    pub started_at: chrono::DateTime<chrono::Utc>,
}

/// Why a meeting ended: the wire type of `meeting:ended { reason }`.
pub use proto::events::EndReason;

#[derive(Clone, Debug)]
pub enum MeetingEvent {
    /// Ended or deleted: everyone connected must leave.
    Ended { room_id: RoomId, reason: EndReason },
    /// The host changed title or settings over REST.
    Updated(Box<Meeting>),
    /// A recording started or stopped (by the host, or by itself: disk full).
    Recording(crate::recording::RecordingNotice),
}

impl AppState {
    /// Builds the state around an open store. `sfu` and `redis` are optional parts.
    pub fn new(
        config: Config,
        store: Store,
        sfu: Option<Arc<meeting_sfu::Sfu>>,
        shutdown: CancellationToken,
    ) -> Result<AppState, redis::RedisError> {
        let redis = config
            .redis_url
            .as_deref()
            .map(redis::Client::open)
            .transpose()?;
        let (events, _) = broadcast::channel(256);
        let webhooks = Arc::new(crate::webhooks::Webhooks::new(
            &config.observe.webhook_urls,
            &config.observe.webhook_secret,
        ));
        let notify: crate::recording::Notify = {
            let events = events.clone();
            Arc::new(move |notice| {
                let _ = events.send(MeetingEvent::Recording(notice));
            })
        };
        let recorder =
            crate::recording::Recorder::new(config.recordings_dir.clone(), sfu.clone(), notify);
        Ok(AppState {
            recorder,
            jwt: Arc::new(JwtKeys::with_claims(
                &config.jwt_secret,
                config.jwt_claims.clone(),
            )),
            limits: Arc::new(crate::limits::Limits::new(&config)),
            config: Arc::new(config),
            store,
            sfu,
            redis,
            events,
            shutdown,
            draining: CancellationToken::new(),
            cluster: None,
            monitor: Arc::default(),
            webhooks,
            started_at: chrono::Utc::now(),
        })
    }

    /// Whether this node is draining (SIGTERM received): new work goes elsewhere.
    pub fn is_draining(&self) -> bool {
        self.draining.is_cancelled()
    }

    /// Tells subscribers (the signaling) about a change; nobody listening is fine.
    pub fn publish(&self, event: MeetingEvent) {
        let _ = self.events.send(event);
    }
}
