//! meeting-service: the video-conferencing server (HTTP API, Socket.IO signaling, the
//! built-in web client and the SFU workers) in one process.
//!
//! Where things are:
//! - [`config`]: every setting, from the environment and `.env`, validated at start-up
//!   (its `media` file: SFU and STUN/TURN; `limits`: `RATE_LIMIT_*`, `TRUST_PROXY`).
//! - [`access`]: the grants a token carries (LiveKit-style: meetings, publish per medium,
//!   subscribe, chat, role) and the one table of what each client event needs. A leaf.
//! - [`auth`]: JWT (HS256) tokens; [`auth::JwtKeys::verify`] is shared by REST and signaling.
//!   A leaf: its errors are its own ([`auth::AuthError`], [`auth::SignError`]).
//! - [`store`]: meetings and participant history in SQLite or PostgreSQL (sqlx, migrations).
//! - [`invites`]: invite links (made by the host or a co-host; redeemed by a guest for a
//!   sign-in limited to one meeting and the invite's role), shared by REST and signaling.
//! - [`http`]: the REST API (`/api/meetings/…`, `/api/ice-servers`, `/api/auth/guest`) and
//!   `/health`; [`http::error::AppError`] is the one error type of that edge, and
//!   [`http::extract`] holds its extractors (JSON, query, the authenticated user).
//! - [`membership`]: who may be in which meeting: admission (cap, ended, locked,
//!   removed), replacement, leaving, the host's removal and end, and their history.
//! - [`signaling`]: Socket.IO on the same port: each client event parsed, handed to
//!   membership or media, and answered; SDP with the SFU or mesh relay, toggles, chat.
//! - [`tasks`]: the background tasks: the engine's event pump, the cluster's placement
//!   watch, the meeting lifecycle follower and the `MEETING_TTL` sweeper.
//! - [`media`]: a meeting's media requests ([`media::MediaRouter`]): this node's engine,
//!   or in a cluster the node hosting the meeting's room, relayed over Redis.
//! - [`live`]: who is in which meeting now ([`live::LiveRooms`]): in this process
//!   ([`live::LocalRooms`]) or shared through Redis ([`live::RedisLive`]).
//! - [`cluster`]: optional Redis (`REDIS_URL`): this node's connection, room ownership
//!   across nodes, the Socket.IO adapter's driver. It imports neither [`live`] nor
//!   [`media`]; they use it.
//! - [`recording`]: a meeting's tracks to WebM files and a manifest (`RECORDINGS_DIR`),
//!   off the SFU workers; the host's controls; listing, download, `recording compose`.
//! - [`web`]: the built-in web client, embedded in the binary.
//! - [`webhooks`]: signed event posts to `WEBHOOK_URL` from a background queue.
//! - [`limits`]: rate limits per socket, user and client IP (`RATE_LIMIT_*`).
//! - [`ice`]: the STUN/TURN list handed to browsers (TURN REST credentials).
//! - [`room_code`]: meeting IDs (`KXRT-PQZ-MHN`).
//! - [`doctor`]: `meeting-service doctor`, the deployment guide's troubleshooting as checks.
//! - [`import`]: `meeting-service import mongo-export FILE`, the meetings of the service
//!   we replace (a `mongoexport` file) into this one's database.
//! - [`heap`]: the allocator's in-use and held-free memory, and giving the latter back.
//! - [`telemetry`]: logging (`RUST_LOG`, `MEDIASOUP_LOG_LEVEL`, `LOG_FORMAT`).
//! - [`monitoring`]: Prometheus metrics (`GET /metrics`, `METRICS_*`): the facade's
//!   recorder, the SFU workers' counters read on scrape, the live gauges.
//! - [`state::AppState`]: what handlers and tasks share; its `draining` token is
//!   cancelled on SIGTERM ([`tasks::drain`]), its `shutdown` token once the drain is
//!   over or on SIGINT, and every task stops on it. Only the edges ([`http`],
//!   [`signaling`]), [`membership`] and the [`tasks`] use it; no lower module does.
//!
//! The server is handed its listener ([`run`]), so tests bind 127.0.0.1:0 and run many
//! servers side by side. The media engine (`meeting_sfu`) is synchronous and owns its
//! threads; this crate talks to it through its handle and an event channel.

pub mod access;
pub mod auth;
pub mod cluster;
pub mod config;
pub mod doctor;
#[doc(hidden)]
pub mod fuzzing;
pub mod heap;
pub mod http;
pub mod ice;
pub mod import;
pub mod invites;
pub mod limits;
pub mod live;
pub mod media;
pub mod membership;
pub mod monitoring;
pub mod recording;
pub mod room_code;
pub mod signaling;
pub mod state;
pub mod store;
pub mod tasks;
pub mod telemetry;
pub mod web;
pub mod webhooks;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::{AnnouncedIpSource, Config};
use crate::state::AppState;
use crate::store::Store;

/// How long open connections (WebSockets) may delay shutdown after the signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// How long an Engine.IO session may wait for its Socket.IO `CONNECT` (which carries the
/// token). Clients send it in the same round trip as the handshake; socketioxide's
/// default of 45 s let every anonymous handshake hold its session that long.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Engine.IO heartbeat: a dead connection is noticed after at most interval + timeout,
/// by both ends (clients follow what the server announces). Shorter than Socket.IO's
/// defaults (25 s + 20 s) so that a page whose network went away notices within 8 s and
/// resumes well inside `RECONNECT_GRACE_SECONDS` (a ping is 1 byte each 4 s).
const PING_INTERVAL: Duration = Duration::from_secs(4);
const PING_TIMEOUT: Duration = Duration::from_secs(4);

/// The Socket.IO settings shared by the single-node and the cluster router.
fn socket_io_builder() -> socketioxide::SocketIoBuilder {
    socketioxide::SocketIo::builder()
        .max_payload(signaling::MAX_PAYLOAD)
        .connect_timeout(CONNECT_TIMEOUT)
        .ping_interval(PING_INTERVAL)
        .ping_timeout(PING_TIMEOUT)
}

/// Puts the HTTP edge around `app` (REST, web client, Socket.IO layer): the Engine.IO
/// handshake limit in front of the Socket.IO layer, then the security headers, and
/// outermost `CORS_ORIGINS` (so that Socket.IO's long-polling answers carry it, and
/// refusals such as a 429 too).
fn edge(app: Router, state: &AppState) -> Router {
    let app = app.layer(axum::middleware::from_fn_with_state(
        state.limits.clone(),
        http::throttle::engine_io_handshake,
    ));
    let app = http::headers::with_security_headers(app);
    match http::cors_layer(&state.config.cors) {
        Some(cors) => app.layer(cors),
        None => app,
    }
}

/// Every route of the process, state applied: the REST API, the web client, and the
/// Socket.IO signaling as a layer on top (it answers `/socket.io/`). Spawns the
/// background tasks ([`tasks::spawn`]), so it must run inside the tokio runtime; they
/// drain `sfu_events` (the receiver [`start_sfu`] returned with `state.sfu`).
pub fn routes(state: AppState, sfu_events: Option<media::EventReceiver>) -> Router {
    let membership = membership::Membership::new(state.clone());
    let (layer, io) = socket_io_builder()
        .with_state(signaling::Signaling::new(membership.clone()))
        .build_layer();
    let process = http::health::process_routes(state.clone(), membership.live().clone());
    tasks::spawn(&io, &membership, sfu_events);
    signaling::attach(&io);
    edge(
        http::app(state.clone(), membership.recording().clone())
            .merge(process)
            .merge(metrics_on_main_port(&state))
            .merge(web::routes())
            .layer(layer),
        &state,
    )
}

/// `GET /metrics`, when metrics are on (`METRICS_ENABLED`); installs the recorder.
pub fn metrics_routes(state: &AppState) -> Option<Router> {
    if !state.config.observe.metrics_enabled {
        return None;
    }
    Some(monitoring::routes(monitoring::install(), state.sfu.clone()))
}

/// [`metrics_routes`] on the main port, unless `METRICS_PORT` moves them.
fn metrics_on_main_port(state: &AppState) -> Router {
    match state.config.observe.metrics_port {
        None => metrics_routes(state).unwrap_or_default(),
        Some(_) => Router::new(),
    }
}

/// [`routes`], with the Socket.IO Redis adapter when this node is part of a cluster, so
/// that broadcasts reach the sockets of every node.
pub async fn router(
    state: AppState,
    sfu_events: Option<media::EventReceiver>,
) -> anyhow::Result<Router> {
    let Some(cluster) = state.cluster.clone() else {
        return Ok(routes(state, sfu_events));
    };
    use socketioxide_redis::{CustomRedisAdapter, RedisAdapterConfig, RedisAdapterCtr};
    let membership = membership::Membership::new(state.clone());
    let adapter_config =
        RedisAdapterConfig::new().with_prefix(format!("{}socket.io", cluster.prefix));
    let driver = cluster::adapter_driver::ResilientDriver::connect(&cluster.client)
        .await
        .context("connecting the Socket.IO Redis adapter (needs Redis 7 and RESP3)")?;
    let ctr = RedisAdapterCtr::new_with_driver(driver, adapter_config);
    let (layer, io) = socket_io_builder()
        .with_state(signaling::Signaling::new(membership.clone()))
        .with_adapter::<CustomRedisAdapter<_, cluster::adapter_driver::ResilientDriver>>(ctr)
        .build_layer();
    let process = http::health::process_routes(state.clone(), membership.live().clone());
    tasks::spawn(&io, &membership, sfu_events);
    signaling::attach(&io)
        .await
        .map_err(|e| anyhow::anyhow!("Socket.IO Redis adapter: {e}"))?;
    Ok(edge(
        http::app(state.clone(), membership.recording().clone())
            .merge(process)
            .merge(metrics_on_main_port(&state))
            .merge(web::routes())
            .layer(layer),
        &state,
    ))
}

/// Serves on `listener` until `state.shutdown` is cancelled, with the background tasks
/// (TTL sweeper) running alongside. When `drain` completes the node drains
/// (`state.draining`, [`tasks::drain`]), which cancels `state.shutdown` once its
/// participants have moved or `DRAIN_TIMEOUT_SECONDS` passed. `sfu_events` is the
/// receiver [`start_sfu`] returned with `state.sfu` (`None` without an SFU).
pub async fn run(
    listener: TcpListener,
    state: AppState,
    sfu_events: Option<media::EventReceiver>,
    drain: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let token = state.shutdown.clone();
    {
        let (token, draining) = (token.clone(), state.draining.clone());
        tokio::spawn(async move {
            tokio::select! {
                _ = drain => {
                    if !token.is_cancelled() {
                        draining.cancel();
                    }
                }
                _ = token.cancelled() => {}
            }
        });
    }
    let stop = token.clone().cancelled_owned();
    let sweeper = tokio::spawn(tasks::sweeper::run(state.clone()));
    tokio::spawn(state.limits.clone().housekeeping(token.clone()));
    tokio::spawn(heap::trim_when_idle(token.clone()));
    state.webhooks.spawn_delivery(token.clone());
    if state.config.observe.metrics_enabled
        && let Some(handle) = monitoring::install()
    {
        tokio::spawn(monitoring::upkeep(handle, token.clone()));
    }
    let app = router(state.clone(), sfu_events)
        .await
        .map_err(|e| std::io::Error::other(format!("{e:#}")))?;
    // With the peer address in each request: the per-IP limits key on it.
    let server = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(stop);
    let mut server = std::pin::pin!(server.into_future());
    let result = tokio::select! {
        r = &mut server => r,
        _ = async { token.cancelled().await; tokio::time::sleep(SHUTDOWN_GRACE).await } => {
            tracing::warn!(grace_secs = SHUTDOWN_GRACE.as_secs(), "connections still open after the grace period; closing them");
            Ok(())
        }
    };
    token.cancel();
    if let Err(e) = sweeper.await {
        tracing::warn!(error = %e, "TTL sweeper ended abnormally");
    }
    result
}

/// Starts the media engine's workers; [`tasks::sfu_events`] drains the returned events.
pub fn start_sfu(config: &Config) -> anyhow::Result<(Arc<meeting_sfu::Sfu>, media::EventReceiver)> {
    let s = &config.sfu;
    let mut sfu_config = meeting_sfu::SfuConfig::new(
        s.workers,
        s.min_port,
        s.max_port,
        s.listen_ip,
        s.announced_ip,
    );
    sfu_config.allow_loopback_announced =
        s.allow_loopback || s.announced_ip_source == AnnouncedIpSource::LoopbackFallback;
    (sfu_config.tcp, sfu_config.single_port) = (s.enable_tcp, s.single_port);
    sfu_config.bandwidth_estimation = s.bandwidth_estimation;
    sfu_config.media_stats = config.observe.metrics_enabled;
    let (sink, events) = media::event_channel();
    let sfu = meeting_sfu::Sfu::start(sfu_config, sink).context("starting the SFU workers")?;
    Ok((Arc::new(sfu), events))
}

/// The whole server: database, SFU, listener on `HOST:PORT`, until SIGINT/SIGTERM.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    log_config(&config);
    recording::check_dir(&config.recordings_dir).map_err(anyhow::Error::msg)?;
    if config.recording_auto_compose && !recording::compose::ffmpeg_available() {
        anyhow::bail!(
            "RECORDING_AUTO_COMPOSE=true, but ffmpeg cannot be run: install it (Debian: apt-get install ffmpeg) or set RECORDING_AUTO_COMPOSE=false"
        );
    }
    let store = Store::connect(&config.database_url)
        .await
        .with_context(|| {
            format!(
                "opening the database {}",
                config::redact_url(&config.database_url)
            )
        })?;
    if config.redis_url.is_none() {
        // Single node: connections of a previous run died with it.
        let closed = store
            .close_orphaned_participants(chrono::Utc::now())
            .await?;
        if closed > 0 {
            tracing::info!(
                closed,
                "closed participant records left open by the previous run"
            );
        }
    }
    let (sfu, sfu_events) = match start_sfu(&config) {
        Ok((sfu, events)) => (Some(sfu), Some(events)),
        Err(e) if config.sfu_mode_enabled => return Err(e),
        // Mesh by default: the SFU only serves meetings created with `topology: "sfu"`,
        // and a host without UDP ports (a PaaS) still runs mesh meetings.
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "SFU not started; only mesh meetings will work");
            (None, None)
        }
    };
    let shutdown = CancellationToken::new();
    let mut state =
        AppState::new(config.clone(), store.clone(), sfu, shutdown.clone()).context("REDIS_URL")?;
    if let Some(url) = &config.redis_url {
        let cluster = cluster::Cluster::connect(url, &config.redis_prefix).await?;
        tracing::info!(node = %cluster.node_id, prefix = %cluster.prefix, "joined the cluster through Redis");
        state.cluster = Some(cluster);
    }
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {} (HOST/PORT)", config.listen))?;
    tracing::info!(addr = %listener.local_addr()?, "meeting-service listening");
    if let (Some(port), Some(metrics)) = (config.observe.metrics_port, metrics_routes(&state)) {
        let addr = std::net::SocketAddr::new(config.listen.ip(), port);
        let metrics_listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr} (HOST/METRICS_PORT)"))?;
        tracing::info!(%addr, "metrics on their own port");
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let served = axum::serve(metrics_listener, metrics)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "the metrics listener stopped");
            }
        });
    }
    run(
        listener,
        state.clone(),
        sfu_events,
        drain_on_sigterm(shutdown.clone()),
    )
    .await?;
    // Recordings still running get their files closed (a SIGKILL would leave them
    // playable up to the last frame, but without their index).
    state
        .recorder
        .stop_all(recording::StopReason::Shutdown)
        .await;
    if let Some(sfu) = &state.sfu {
        sfu.shutdown();
    }
    store.close().await;
    tracing::info!("meeting-service stopped");
    Ok(())
}

fn log_config(config: &Config) {
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    if config.jwt_secret_is_default {
        tracing::warn!(
            "JWT_SECRET is not set: using the public development secret (refused when NODE_ENV=production)"
        );
    }
    match config.sfu.announced_ip_source {
        AnnouncedIpSource::Configured => {
            tracing::info!(ip = %config.sfu.announced_ip, "announcing MEDIASOUP_ANNOUNCED_IP")
        }
        AnnouncedIpSource::Detected => {
            tracing::info!(ip = %config.sfu.announced_ip, "MEDIASOUP_ANNOUNCED_IP unset: announcing the first non-loopback IPv4")
        }
        AnnouncedIpSource::LoopbackFallback => tracing::warn!(
            "MEDIASOUP_ANNOUNCED_IP unset and no non-loopback IPv4 found: announcing 127.0.0.1, only browsers on this machine can connect"
        ),
    }
    if config.sfu.announced_ip.is_loopback()
        && config.sfu.announced_ip_source == AnnouncedIpSource::Configured
    {
        tracing::warn!(
            "MEDIASOUP_ANNOUNCED_IP is loopback (MEDIASOUP_ALLOW_LOOPBACK=true): remote browsers cannot connect"
        );
    }
    tracing::info!(
        env = %config.node_env,
        workers = config.sfu.workers,
        ports = %format!("{}-{}", config.sfu.min_port, config.sfu.max_port),
        media_ports = %config.sfu.media_ports_text(),
        single_port = config.sfu.single_port.is_some(),
        ice_tcp = config.sfu.enable_tcp,
        sfu_mode = config.sfu_mode_enabled,
        ttl_secs = config.meeting_ttl.as_secs(),
        database = %config::redact_url(&config.database_url),
        redis = config.redis_url.is_some(),
        "configuration"
    );
}

/// The signal that stops the process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT (Ctrl-C): stop now.
    Interrupt,
    /// SIGTERM (what Docker, Kubernetes, systemd and Render send): drain first.
    Terminate,
}

/// Completes on SIGTERM: the node drains ([`tasks::drain`]). SIGINT, or a second
/// signal during the drain, stops the process at once (`stop`).
pub async fn drain_on_sigterm(stop: CancellationToken) {
    match shutdown_signal().await {
        Signal::Interrupt => stop.cancel(),
        Signal::Terminate => {
            tokio::spawn(async move {
                shutdown_signal().await;
                tracing::warn!("second signal while draining: stopping now");
                stop.cancel();
            });
        }
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM, saying which.
pub async fn shutdown_signal() -> Signal {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {
            tracing::info!("SIGINT: shutting down");
            Signal::Interrupt
        }
        _ = term => {
            tracing::info!("SIGTERM: draining, then shutting down");
            Signal::Terminate
        }
    }
}
