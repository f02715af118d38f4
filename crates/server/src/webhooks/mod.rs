//! Webhooks: `meeting_started`, `meeting_ended`, `participant_joined` and
//! `participant_left` posted to every `WEBHOOK_URL`, signed ([`sign`]), from a
//! background queue ([`deliver`]) with retries and backoff. Signaling only pushes onto
//! the queue and never waits for a receiver.
//!
//! Once per cluster: each event is emitted by the one node that owns it, decided by an
//! atomic change it made, not by every node that hears of it: `meeting_started` by the
//! join whose history write moved the meeting from scheduled to active (under the
//! meeting row's lock), `meeting_ended` by the caller whose `end_meeting` (or delete)
//! changed the row, `participant_joined` by the node holding the socket, and
//! `participant_left` by the node whose removal from the live registry returned the
//! connection (Redis removes it once). No Redis round trip is added to a join.
//!
//! Semantics: at least once while the emitting node runs (a receiver that fails gets the
//! same event, same `id`, again: deduplicate on `id`); an event still queued when its
//! node stops is lost. Events of one meeting may arrive out of order when a delivery is
//! retried; `timestamp` orders them.

pub mod deliver;
pub mod event;
pub mod sign;

use std::sync::Mutex;

use chrono::Utc;
use proto::RoomId;
use tokio::sync::mpsc;

pub use event::{Envelope, WebhookEvent, WebhookMeeting, WebhookParticipant, WebhookTrack};

/// Events waiting for delivery. Past this the newest are dropped (and counted), so
/// that a dead receiver cannot grow the process without bound.
pub const QUEUE_CAPACITY: usize = 10_000;

/// Where events go. Cheap to clone; a no-op without `WEBHOOK_URL`.
#[derive(Debug)]
pub struct Webhooks {
    tx: Option<mpsc::Sender<Envelope>>,
    /// Taken once by [`Webhooks::spawn_delivery`].
    rx: Mutex<Option<mpsc::Receiver<Envelope>>>,
    targets: deliver::Targets,
}

impl Webhooks {
    /// A queue for `urls` signed with `secret` (nothing is sent until
    /// [`Webhooks::spawn_delivery`]); without URLs, a handle that drops every event.
    pub fn new(urls: &[String], secret: &str) -> Self {
        if urls.is_empty() {
            return Webhooks {
                tx: None,
                rx: Mutex::new(None),
                targets: deliver::Targets::default(),
            };
        }
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        Webhooks {
            tx: Some(tx),
            rx: Mutex::new(Some(rx)),
            targets: deliver::Targets::new(urls, secret),
        }
    }

    /// Queue `event` about `room`, now. Never waits: a full queue drops it (logged and
    /// counted in `webhook_dropped_total`).
    pub fn emit(&self, room: &RoomId, event: WebhookEvent) {
        let Some(tx) = &self.tx else { return };
        let envelope = Envelope::new(room, event, Utc::now());
        if let Err(e) = tx.try_send(envelope) {
            let envelope = match e {
                mpsc::error::TrySendError::Full(v) | mpsc::error::TrySendError::Closed(v) => v,
            };
            metrics::counter!(crate::monitoring::names::WEBHOOK_DROPPED).increment(1);
            tracing::warn!(room = %room, event = envelope.event.name(), id = %envelope.id, "webhook queue full or closed; event dropped");
        }
    }

    /// Starts delivering queued events until `shutdown` (once; later calls do nothing).
    pub fn spawn_delivery(&self, shutdown: tokio_util::sync::CancellationToken) {
        let rx = self.rx.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(rx) = rx {
            tokio::spawn(deliver::run(rx, self.targets.clone(), shutdown));
        }
    }
}
