//! The recordings on disk: listing a meeting's recordings (size, duration, tracks) and
//! resolving a requested file to a path. A request names a recording and a file; both
//! are checked against what the manifest lists, so no path is ever built from a
//! request's text.

use std::path::{Path, PathBuf};

use proto::RoomId;
use serde::Serialize;

use super::manifest::{Manifest, Status};
use super::{MANIFEST, is_recording_id};

/// One recording, as `GET /api/meetings/:id/recordings` lists it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub recording_id: String,
    pub status: Status,
    pub stop_reason: Option<String>,
    pub started_at_ms: u64,
    /// The recording's span in seconds (so far, while it runs).
    pub duration_secs: f64,
    /// Bytes of all its files.
    pub size_bytes: u64,
    pub tracks: Vec<TrackSummary>,
    /// The composed file, when one was made.
    pub composed: Option<FileSummary>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TrackSummary {
    pub file: String,
    pub peer_id: String,
    pub source: String,
    pub kind: String,
    pub codec: String,
    pub start_ms: f64,
    pub duration_secs: f64,
    pub size_bytes: u64,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileSummary {
    pub file: String,
    pub size_bytes: u64,
}

/// The composed file's name in a recording's directory (`compose`).
pub const COMPOSED: &str = "composed.webm";

fn size(p: &Path) -> u64 {
    std::fs::metadata(p).map_or(0, |m| m.len())
}

/// The recording's directory, if `id` is one of ours and it exists.
pub fn recording_dir(root: &Path, room: &RoomId, id: &str) -> Option<PathBuf> {
    if !is_recording_id(id) {
        return None;
    }
    let dir = root.join(room.as_str()).join(id);
    dir.join(MANIFEST).is_file().then_some(dir)
}

pub fn read_manifest(dir: &Path) -> Option<Manifest> {
    let bytes = std::fs::read(dir.join(MANIFEST)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Every recording of `room`, oldest first.
pub fn list(root: &Path, room: &RoomId) -> std::io::Result<Vec<Summary>> {
    let room_dir = root.join(room.as_str());
    let entries = match std::fs::read_dir(&room_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut ids: Vec<String> = entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| is_recording_id(n))
        .collect();
    ids.sort();
    let mut out = Vec::new();
    for id in ids {
        let dir = room_dir.join(&id);
        let Some(m) = read_manifest(&dir) else {
            continue;
        };
        out.push(summary(&dir, &m));
    }
    Ok(out)
}

fn summary(dir: &Path, m: &Manifest) -> Summary {
    let tracks: Vec<TrackSummary> = m
        .tracks
        .iter()
        .map(|t| TrackSummary {
            file: t.file.clone(),
            peer_id: t.peer_id.clone(),
            source: t.source.clone(),
            kind: t.kind.clone(),
            codec: t.codec.clone(),
            start_ms: t.start_ms,
            duration_secs: ((t.stop_ms - t.start_ms) / 1000.0).max(0.0),
            size_bytes: size(&dir.join(&t.file)),
        })
        .collect();
    let span_ms = m
        .stopped_ms
        .unwrap_or_else(|| m.tracks.iter().map(|t| t.stop_ms).fold(0.0, f64::max));
    let composed_path = dir.join(COMPOSED);
    let composed = composed_path.is_file().then(|| FileSummary {
        file: COMPOSED.to_owned(),
        size_bytes: size(&composed_path),
    });
    Summary {
        recording_id: m.recording_id.clone(),
        status: m.status,
        stop_reason: m.stop_reason.clone(),
        started_at_ms: m.started_at_ms,
        duration_secs: (span_ms / 1000.0).max(0.0),
        size_bytes: tracks.iter().map(|t| t.size_bytes).sum::<u64>()
            + size(&dir.join(MANIFEST))
            + composed.as_ref().map_or(0, |c| c.size_bytes),
        tracks,
        composed,
    }
}

/// The path of `file` in recording `id` of `room`: only the manifest, a track the
/// manifest lists, or the composed file.
pub fn file_path(root: &Path, room: &RoomId, id: &str, file: &str) -> Option<PathBuf> {
    let dir = recording_dir(root, room, id)?;
    let known = file == MANIFEST
        || file == COMPOSED
        || read_manifest(&dir)?.tracks.iter().any(|t| t.file == file);
    let path = dir.join(file);
    (known && path.is_file()).then_some(path)
}
