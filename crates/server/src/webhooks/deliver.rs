//! Delivery: one task takes events off the queue and starts one delivery per event and
//! URL (at most [`CONCURRENT`] at once), each retried with exponential backoff until the
//! receiver answers 2xx, answers a status that retrying cannot change, or
//! [`MAX_ATTEMPTS`] are spent.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::StatusCode;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use super::{Envelope, sign};
use crate::monitoring::names::WEBHOOK_DELIVERIES;

/// Attempts per event and URL: with [`FIRST_BACKOFF`] doubling up to [`MAX_BACKOFF`],
/// the last is about 3 minutes after the first.
pub const MAX_ATTEMPTS: u32 = 10;
pub const FIRST_BACKOFF: Duration = Duration::from_millis(500);
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// One attempt's limit, connection included.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Deliveries in flight at once (slow receivers hold theirs, the rest go on).
pub const CONCURRENT: usize = 64;

/// The receivers and the key, shared by every delivery.
#[derive(Clone, Debug, Default)]
pub struct Targets {
    urls: Arc<[String]>,
    secret: Arc<[u8]>,
    client: Option<reqwest::Client>,
}

impl Targets {
    pub fn new(urls: &[String], secret: &str) -> Self {
        let client = reqwest::Client::builder()
            .timeout(ATTEMPT_TIMEOUT)
            .user_agent(concat!(
                "meeting-service-webhooks/",
                env!("CARGO_PKG_VERSION")
            ))
            .build();
        let client = match client {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::error!(error = %e, "cannot build the webhook HTTP client; webhooks are off");
                None
            }
        };
        Targets {
            urls: urls.into(),
            secret: secret.as_bytes().into(),
            client,
        }
    }
}

/// Runs until `shutdown` or until the queue's senders are gone.
pub async fn run(mut rx: mpsc::Receiver<Envelope>, targets: Targets, shutdown: CancellationToken) {
    let Some(client) = targets.client.clone() else {
        return;
    };
    let slots = Arc::new(Semaphore::new(CONCURRENT));
    loop {
        let envelope = tokio::select! {
            _ = shutdown.cancelled() => return,
            e = rx.recv() => match e { Some(e) => e, None => return },
        };
        let body = match serde_json::to_vec(&envelope) {
            Ok(b) => Arc::<[u8]>::from(b),
            Err(e) => {
                tracing::error!(id = %envelope.id, error = %e, "cannot serialise a webhook event");
                continue;
            }
        };
        for url in targets.urls.iter() {
            let slot = tokio::select! {
                _ = shutdown.cancelled() => return,
                s = slots.clone().acquire_owned() => match s { Ok(s) => s, Err(_) => return },
            };
            let job = Job {
                client: client.clone(),
                url: url.clone(),
                secret: targets.secret.clone(),
                id: envelope.id.clone(),
                event: envelope.event.name(),
                room: envelope.meeting.room_id.to_string(),
                body: body.clone(),
            };
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                job.deliver(&shutdown).await;
                drop(slot);
            });
        }
    }
}

/// One event to one URL.
struct Job {
    client: reqwest::Client,
    url: String,
    secret: Arc<[u8]>,
    id: String,
    event: &'static str,
    room: String,
    body: Arc<[u8]>,
}

/// How one attempt ended.
enum Attempt {
    Delivered,
    /// Worth trying again (5xx, 408, 429, timeout, connection refused).
    Retry(String),
    /// Retrying cannot help (another 4xx, a redirect).
    Refused(String),
}

impl Job {
    async fn deliver(&self, shutdown: &CancellationToken) {
        let mut backoff = FIRST_BACKOFF;
        for attempt in 1..=MAX_ATTEMPTS {
            let why = match self.attempt().await {
                Attempt::Delivered => {
                    metrics::counter!(WEBHOOK_DELIVERIES, "result" => "delivered").increment(1);
                    tracing::debug!(id = %self.id, event = self.event, attempt, "webhook delivered");
                    return;
                }
                Attempt::Refused(why) => {
                    metrics::counter!(WEBHOOK_DELIVERIES, "result" => "refused").increment(1);
                    tracing::warn!(room = %self.room, id = %self.id, event = self.event, url = %self.url, why, "webhook refused by the receiver; not retried");
                    return;
                }
                Attempt::Retry(why) => why,
            };
            metrics::counter!(WEBHOOK_DELIVERIES, "result" => "retried").increment(1);
            if attempt == MAX_ATTEMPTS {
                metrics::counter!(WEBHOOK_DELIVERIES, "result" => "gave_up").increment(1);
                tracing::warn!(room = %self.room, id = %self.id, event = self.event, url = %self.url, why, attempts = attempt, "webhook not delivered; giving up");
                return;
            }
            tracing::debug!(id = %self.id, url = %self.url, why, attempt, "webhook attempt failed; retrying");
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    async fn attempt(&self) -> Attempt {
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let signature = sign::signature(&self.secret, timestamp, &self.body);
        let sent = self
            .client
            .post(&self.url)
            .header("content-type", "application/json")
            .header("x-webhook-id", &self.id)
            .header("x-webhook-event", self.event)
            .header("x-webhook-timestamp", timestamp.to_string())
            .header("x-webhook-signature", signature)
            .body(self.body.to_vec())
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => Attempt::Delivered,
            Ok(r) if retryable(r.status()) => Attempt::Retry(format!("status {}", r.status())),
            Ok(r) => Attempt::Refused(format!("status {}", r.status())),
            Err(e) => Attempt::Retry(e.to_string()),
        }
    }
}

fn retryable(status: StatusCode) -> bool {
    status.is_server_error()
        || status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
}
