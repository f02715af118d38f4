//! Prometheus metrics: `GET /metrics` (docs/operations.md lists every series).
//!
//! Two sources, one page:
//! - what the async server records (joins, leaves, join duration, live gauges, HTTP,
//!   database and Redis latency, webhook deliveries) goes through the `metrics` facade
//!   into `metrics-exporter-prometheus`'s recorder ([`install`]);
//! - the SFU workers' counters are never recorded per packet: each worker counts in plain
//!   integers on its own thread and copies them to its shared counters once per loop
//!   turn; [`sfu`] reads those on scrape and writes them in the exposition format.
//!
//! Why `metrics-exporter-prometheus` rather than the `prometheus` crate: the facade's
//! macros need no registry handed through every module (the store and the live registry
//! time their operations without knowing about the exporter), histograms get fixed
//! buckets per metric, and it was already the workspace's choice. What it lacks, a
//! collector read at scrape time, is the few lines of [`sfu`].
//!
//! Cardinality is bounded by construction: labels are closed sets (topology, result,
//! reason, route template, status, operation name) or the worker index; never a meeting,
//! participant or user id.

pub mod http;
mod live;
pub mod names;
mod sfu;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub use live::Monitor;

/// Join durations (seconds): a join over loopback takes tens of milliseconds, one
/// through TURN on a poor network several seconds.
const JOIN_BUCKETS: &[f64] = &[0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0];
/// Latencies of HTTP requests, database and Redis operations (seconds).
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// The process's recorder, installed once (tests run several servers in one process;
/// they share it, as they share the process).
static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the global recorder (once) and returns its handle; `None` if another
/// recorder was installed first.
pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full(names::JOIN_DURATION.to_owned()),
                    JOIN_BUCKETS,
                )
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                });
            match builder.and_then(PrometheusBuilder::install_recorder) {
                Ok(handle) => {
                    describe();
                    Some(handle)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "metrics recorder not installed; /metrics shows only the SFU");
                    None
                }
            }
        })
        .clone()
}

/// `GET /metrics` on a router of its own (merged into the main one, or served on
/// `METRICS_PORT`).
pub fn routes(handle: Option<PrometheusHandle>, sfu: Option<Arc<meeting_sfu::Sfu>>) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .with_state(Arc::new((handle, sfu)))
}

type Sources = Arc<(Option<PrometheusHandle>, Option<Arc<meeting_sfu::Sfu>>)>;

async fn scrape(State(sources): State<Sources>) -> Response {
    let (handle, sfu) = &*sources;
    let mut body = handle
        .as_ref()
        .map(PrometheusHandle::render)
        .unwrap_or_default();
    if let Some(sfu) = sfu {
        sfu::render(&mut body, &sfu.stats(), sfu.one_port_stats());
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        body,
    )
        .into_response()
}

/// Keeps the recorder's histograms drained when nobody scrapes for a while (without the
/// exporter's own HTTP listener nothing else does), until `shutdown`.
pub async fn upkeep(handle: PrometheusHandle, shutdown: tokio_util::sync::CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => handle.run_upkeep(),
        }
    }
}

/// Help texts, so that `/metrics` explains itself.
fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_gauge!(
        names::MEETINGS_LIVE,
        "Meetings with at least one participant connected through this node"
    );
    describe_gauge!(
        names::PARTICIPANTS_LIVE,
        "Participants connected through this node, by meeting topology"
    );
    describe_gauge!(
        names::SOCKETS_CONNECTED,
        "Authenticated Socket.IO connections on this node"
    );
    describe_counter!(
        names::JOINS,
        "join-meeting requests, by result (ok or the error code)"
    );
    describe_counter!(names::LEAVES, "Participants that left a meeting, by reason");
    describe_histogram!(
        names::JOIN_DURATION,
        "From join-meeting to the participant's media connection (SFU meetings)"
    );
    describe_counter!(
        names::HTTP_REQUESTS,
        "HTTP requests, by route template and status"
    );
    describe_histogram!(
        names::HTTP_DURATION,
        "HTTP request latency, by route template"
    );
    describe_histogram!(
        names::DB_DURATION,
        "Database operation latency, by operation"
    );
    describe_counter!(
        names::DB_ERRORS,
        "Database operations that failed, by operation"
    );
    describe_histogram!(
        names::REDIS_DURATION,
        "Redis operation latency, by operation"
    );
    describe_counter!(
        names::REDIS_ERRORS,
        "Redis operations that failed, by operation"
    );
    describe_counter!(
        names::WEBHOOK_DELIVERIES,
        "Webhook delivery attempts, by result"
    );
    describe_counter!(
        names::WEBHOOK_DROPPED,
        "Webhook events dropped because the queue was full"
    );
    // Present from the start, at zero, so that a dashboard shows 0 and not "no data".
    metrics::gauge!(names::MEETINGS_LIVE).set(0.0);
    metrics::gauge!(names::SOCKETS_CONNECTED).set(0.0);
    for topology in ["sfu", "mesh"] {
        metrics::gauge!(names::PARTICIPANTS_LIVE, "topology" => topology).set(0.0);
    }
}

/// Times `op` (a database or Redis operation) into `histogram`, counting failures in
/// `errors`, both labelled `op`.
pub async fn timed<T, E>(
    histogram: &'static str,
    errors: &'static str,
    op: &'static str,
    f: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, E> {
    let start = std::time::Instant::now();
    let result = f.await;
    metrics::histogram!(histogram, "op" => op).record(start.elapsed().as_secs_f64());
    if result.is_err() {
        metrics::counter!(errors, "op" => op).increment(1);
    }
    result
}
