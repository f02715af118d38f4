//! What the store holds, in the shapes the API returns (camelCase JSON).

use chrono::{DateTime, Utc};
use proto::{PeerId, RoomId, UserId};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MeetingStatus {
    /// Created, nobody has joined yet.
    Scheduled,
    /// Somebody has joined; stays active while empty until the TTL or the host ends it.
    Active,
    Ended,
}

impl MeetingStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MeetingStatus::Scheduled => "scheduled",
            MeetingStatus::Active => "active",
            MeetingStatus::Ended => "ended",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "scheduled" => Some(MeetingStatus::Scheduled),
            "active" => Some(MeetingStatus::Active),
            "ended" => Some(MeetingStatus::Ended),
            _ => None,
        }
    }
}

/// How media flows: through the server's SFU, or directly between browsers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Topology {
    Mesh,
    Sfu,
}

impl Topology {
    pub fn as_str(self) -> &'static str {
        match self {
            Topology::Mesh => "mesh",
            Topology::Sfu => "sfu",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "mesh" => Some(Topology::Mesh),
            "sfu" => Some(Topology::Sfu),
            _ => None,
        }
    }
}

/// Host-controlled switches. The create body of the original service named the first
/// three `isChatEnabled`, `isScreenShareEnabled`, `isRecordingEnabled`; both are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct MeetingSettings {
    #[serde(alias = "isChatEnabled")]
    pub allow_chat: bool,
    #[serde(alias = "isScreenShareEnabled")]
    pub allow_screen_share: bool,
    #[serde(alias = "isRecordingEnabled")]
    pub allow_recording: bool,
    /// Joiners are to wait for the host's approval: stored and returned for the lobby
    /// feature, not yet enforced (the signaling admits joiners without asking).
    pub require_approval: bool,
    /// Nobody new may join (enforced by the signaling).
    pub lock_room: bool,
}

impl Default for MeetingSettings {
    fn default() -> Self {
        MeetingSettings {
            allow_chat: true,
            allow_screen_share: true,
            allow_recording: false,
            require_approval: false,
            lock_room: false,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Meeting {
    pub room_id: RoomId,
    pub title: String,
    pub description: String,
    pub host_id: UserId,
    pub status: MeetingStatus,
    pub max_participants: u32,
    pub settings: MeetingSettings,
    pub topology: Topology,
    pub scheduled_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    /// Why it ended: `host-ended`, `ttl`.
    pub end_reason: Option<String>,
    /// Seconds from start to end (or to now while active); null before the start.
    pub duration: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_activity_at: DateTime<Utc>,
    /// Since when nobody is in it (null while somebody is).
    pub empty_since: Option<DateTime<Utc>>,
    pub peak_participants: u32,
    /// The MongoDB `_id` of the record an imported meeting came from (absent otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub legacy_id: Option<String>,
}

impl Meeting {
    pub fn is_host(&self, user: &UserId) -> bool {
        &self.host_id == user
    }
}

/// One connection's stay in a meeting.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ParticipantRecord {
    pub user_id: UserId,
    pub peer_id: PeerId,
    pub user_name: String,
    pub user_picture: Option<String>,
    pub is_host: bool,
    pub joined_at: DateTime<Utc>,
    pub left_at: Option<DateTime<Utc>>,
}

/// A meeting to create. The HTTP layer has validated it.
#[derive(Clone, Debug)]
pub struct NewMeeting {
    pub title: String,
    pub description: String,
    pub host_id: UserId,
    pub max_participants: u32,
    pub settings: MeetingSettings,
    pub topology: Topology,
    pub scheduled_at: Option<DateTime<Utc>>,
}

/// Fields to change; `None` keeps the current value.
#[derive(Clone, Debug, Default)]
pub struct MeetingUpdate {
    pub title: Option<String>,
    pub description: Option<String>,
    pub max_participants: Option<u32>,
    pub settings: Option<MeetingSettings>,
    pub scheduled_at: Option<DateTime<Utc>>,
}

/// What [`crate::store::Store::record_join_outcome`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JoinRecorded {
    /// Connections in the meeting now.
    pub present: u32,
    /// This join moved the meeting from scheduled to active.
    pub started: bool,
}

/// A connection entering a meeting (from the signaling's `join-meeting`).
#[derive(Clone, Debug)]
pub struct JoinRecord {
    pub user_id: UserId,
    pub peer_id: PeerId,
    pub user_name: String,
    pub user_picture: Option<String>,
    pub is_host: bool,
    /// How many were in the meeting's live registry once this connection was admitted
    /// (itself included): the peak candidate. The registry enforces the cap, so the
    /// peak never exceeds it.
    pub admitted: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MeetingStats {
    pub room_id: RoomId,
    pub status: MeetingStatus,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    /// Seconds, as in [`Meeting::duration`].
    pub duration: Option<i64>,
    /// Most connections present at once.
    pub peak_participants: u32,
    /// Distinct users who ever joined.
    pub total_participants: u32,
    /// Joins, counting reconnections.
    pub total_joins: u32,
    pub current_participants: u32,
}

impl Meeting {
    /// Seconds from start to end, or to `now` while active; `None` before the start.
    pub fn duration_at(
        started_at: Option<DateTime<Utc>>,
        ended_at: Option<DateTime<Utc>>,
        status: MeetingStatus,
        now: DateTime<Utc>,
    ) -> Option<i64> {
        match (started_at, ended_at, status) {
            (Some(s), Some(e), _) => Some((e - s).num_seconds().max(0)),
            (Some(s), None, MeetingStatus::Active) => Some((now - s).num_seconds().max(0)),
            _ => None,
        }
    }
}

/// One page of a user's meetings.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MeetingPage {
    pub meetings: Vec<Meeting>,
    pub total: u64,
    pub limit: u32,
    pub skip: u64,
}

/// A meeting of the service we replace, as `meeting-service import` read it: validated,
/// times resolved, to be written whole or not at all ([`crate::store::Store::import_meeting`]).
/// `meeting.legacy_id` holds the record's `_id`, the key that makes a second import a
/// no-op; the derived columns (last activity, idle clock, peak) are the importer's reading
/// of the record's history, and the store writes them as they are.
#[derive(Clone, Debug, PartialEq)]
pub struct ImportedMeeting {
    pub meeting: Meeting,
    pub participants: Vec<ImportedParticipant>,
}

/// One stay of one user in an imported meeting. A stay the export left open is closed
/// by the importer: nobody is in a meeting of a service that no longer runs.
#[derive(Clone, Debug, PartialEq)]
pub struct ImportedParticipant {
    /// Unique across meetings (`legacy:<_id>` of the participant, or of the meeting and
    /// the position), so the history rows are those of this record only.
    pub peer_id: PeerId,
    pub user_id: UserId,
    pub user_name: String,
    pub user_picture: Option<String>,
    pub is_host: bool,
    pub joined_at: DateTime<Utc>,
    pub left_at: DateTime<Utc>,
}

/// What [`crate::store::Store::import_meeting`] did with one record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImportOutcome {
    /// Written, with this many participant rows.
    Imported { participants: usize },
    /// A previous import wrote it (same `_id`): nothing changed.
    AlreadyImported,
    /// Another meeting already has this room id: nothing written.
    RoomTaken,
    /// Another meeting's history already has this participant id (the export reuses a
    /// participant `_id`): nothing written.
    ParticipantTaken(PeerId),
}
