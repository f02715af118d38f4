//! What a webhook says: [`WebhookEvent`], typed, and the [`Envelope`] every event is
//! posted in (docs/operations.md, "Webhooks", shows each body).
//!
//! Adding an event (as `recording_finished` was): a variant here with its fields,
//! its name in [`WebhookEvent::name`], and a call to `Webhooks::emit` where it happens,
//! on the one node that owns it (see `super` for why that gives once per cluster).

use chrono::{DateTime, Utc};
use proto::events::EndReason;
use proto::{PeerId, RoomId, UserId};
use serde::Serialize;

/// One event, its own fields only (the envelope adds id, time and meeting).
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(
    tag = "event",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
pub enum WebhookEvent {
    /// The meeting's first participant joined (scheduled → active; once per meeting).
    MeetingStarted {},
    /// The meeting ended: by its host (socket or REST), its TTL, or its deletion.
    MeetingEnded {
        reason: EndReason,
    },
    ParticipantJoined {
        participant: WebhookParticipant,
    },
    /// A connection left: `reason` is why (left, disconnected, replaced, removed,
    /// media_failed, refused, meeting_ended), `duration_seconds` how long it was in.
    ParticipantLeft {
        participant: WebhookParticipant,
        reason: &'static str,
        duration_seconds: f64,
    },
    /// A recording stopped and its files are closed (docs/recording.md): `reason` is
    /// why (`host`, `meeting-ended`, `disk-full`, `write-error`, `shutdown`).
    RecordingFinished {
        recording_id: String,
        reason: &'static str,
        duration_seconds: f64,
        size_bytes: u64,
        tracks: Vec<WebhookTrack>,
    },
}

/// One file of a finished recording.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WebhookTrack {
    pub file: String,
    pub peer_id: String,
    pub source: String,
    pub kind: String,
    pub start_ms: f64,
    pub duration_seconds: f64,
    pub size_bytes: u64,
}

impl WebhookEvent {
    /// The `event` field, also sent as the `X-Webhook-Event` header.
    pub fn name(&self) -> &'static str {
        match self {
            WebhookEvent::MeetingStarted {} => "meeting_started",
            WebhookEvent::MeetingEnded { .. } => "meeting_ended",
            WebhookEvent::ParticipantJoined { .. } => "participant_joined",
            WebhookEvent::ParticipantLeft { .. } => "participant_left",
            WebhookEvent::RecordingFinished { .. } => "recording_finished",
        }
    }
}

/// A participant as webhooks show it: one connection of one user.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct WebhookParticipant {
    pub user_id: UserId,
    /// This connection (a user who reconnects gets a new one).
    pub peer_id: PeerId,
    pub name: String,
    pub is_host: bool,
    pub joined_at: DateTime<Utc>,
}

/// The meeting an event is about.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct WebhookMeeting {
    pub room_id: RoomId,
}

/// The posted body: `id` is the idempotency key (the same on every retry of the event),
/// `timestamp` when it happened (Unix milliseconds).
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    pub id: String,
    pub timestamp: i64,
    pub meeting: WebhookMeeting,
    #[serde(flatten)]
    pub event: WebhookEvent,
}

impl Envelope {
    /// A new event about `room`, with a fresh id (`evt_` and 32 hex digits).
    pub fn new(room: &RoomId, event: WebhookEvent, at: DateTime<Utc>) -> Self {
        Envelope {
            id: format!("evt_{:032x}", rand::random::<u128>()),
            timestamp: at.timestamp_millis(),
            meeting: WebhookMeeting {
                room_id: room.clone(),
            },
            event,
        }
    }
}
