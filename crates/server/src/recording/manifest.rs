//! `manifest.json`, one per recording: what was recorded, by whom, and where each
//! track lies on the recording's one clock. Written when the recording starts, every
//! second while it runs (atomically: a temporary file renamed over it) and when it
//! stops, so a crash leaves a manifest at most a second old. `docs/recording.md`
//! describes every field.

use serde::{Deserialize, Serialize};

/// Bumped when a field changes meaning.
pub const VERSION: u32 = 1;

/// How a recording is, as the manifest says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Recording,
    Finished,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub version: u32,
    pub recording_id: String,
    pub room_id: String,
    pub status: Status,
    /// Why it stopped (`StopReason`'s wire name), once it has.
    pub stop_reason: Option<String>,
    /// The recording's start on the server's wall clock (UNIX milliseconds): the zero
    /// of every track's `startMs`/`stopMs`.
    pub started_at_ms: u64,
    /// Its stop, once stopped, in milliseconds after `startedAtMs`.
    pub stopped_ms: Option<f64>,
    pub tracks: Vec<TrackEntry>,
    pub participants: Vec<ParticipantEntry>,
    /// Packets the worker could not hand over because the recorder's queue was full.
    pub packets_dropped: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrackEntry {
    /// The file, in the recording's directory.
    pub file: String,
    pub peer_id: String,
    /// `microphone`, `camera`, `screen` or `screen-audio`.
    pub source: String,
    /// `audio` or `video`.
    pub kind: String,
    /// `opus` or `vp8`.
    pub codec: String,
    /// Where the file's first frame lies on the recording's clock (ms after
    /// `startedAtMs`): from the publisher's RTCP sender reports when it sent them,
    /// else from the first frame's arrival (`clock` says which).
    pub start_ms: f64,
    /// The last frame written, on the same clock.
    pub stop_ms: f64,
    /// `sender-report` or `arrival`.
    pub clock: String,
    pub frames: u64,
    /// Frames lost for good (a gap the retransmissions did not fill).
    pub frames_lost: u64,
    pub width: Option<u32>,
    pub height: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParticipantEntry {
    pub peer_id: String,
    pub user_id: String,
    pub user_name: String,
}
