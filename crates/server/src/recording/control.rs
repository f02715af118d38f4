//! Who may start and stop a meeting's recording, shared by the REST API and the
//! signaling: the meeting exists and is not over, the caller is its host, its settings
//! allow recording, and this node holds its media.

use proto::{RoomId, UserId};

use super::manifest::ParticipantEntry;
use super::{Recorder, RecordingError, RecordingInfo, StopReason, library, writer};
use crate::store::{MeetingStatus, Store, StoreError, Topology};

/// Why a start or stop was refused. Each edge maps these to its own codes.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("no meeting with id {0}")]
    NotFound(RoomId),
    #[error("this meeting has ended")]
    MeetingEnded,
    #[error("only the host can start or stop recording")]
    NotHost,
    #[error("recording is not allowed in this meeting (its settings have allowRecording: false)")]
    Disabled,
    #[error(
        "only SFU meetings can be recorded (this one is mesh: its media never reaches the server)"
    )]
    Mesh,
    #[error("recording in a multi-node cluster is not supported yet")]
    Cluster,
    #[error(transparent)]
    Recording(#[from] RecordingError),
    #[error("the meeting store is unavailable: {0}")]
    Store(#[from] StoreError),
}

/// The host (or, `co_host`, a co-host in the live meeting) starts recording `room`.
pub async fn start(
    store: &Store,
    recorder: &Recorder,
    room: &RoomId,
    user: &UserId,
    co_host: bool,
    clustered: bool,
) -> Result<RecordingInfo, ControlError> {
    let m = store
        .get_meeting(room)
        .await?
        .ok_or_else(|| ControlError::NotFound(room.clone()))?;
    if m.status == MeetingStatus::Ended {
        return Err(ControlError::MeetingEnded);
    }
    if !(m.is_host(user) || co_host) {
        return Err(ControlError::NotHost);
    }
    if !m.settings.allow_recording {
        return Err(ControlError::Disabled);
    }
    if m.topology != Topology::Sfu {
        return Err(ControlError::Mesh);
    }
    if clustered {
        return Err(ControlError::Cluster);
    }
    let present = store
        .present_participants(room)
        .await?
        .into_iter()
        .map(entry)
        .collect();
    Ok(recorder.start(room, present)?)
}

/// The host (or a co-host) stops recording `room`; returns the recording's ID once its
/// files are closed.
pub async fn stop(
    store: &Store,
    recorder: &Recorder,
    room: &RoomId,
    user: &UserId,
    co_host: bool,
    auto_compose: bool,
) -> Result<String, ControlError> {
    let m = store
        .get_meeting(room)
        .await?
        .ok_or_else(|| ControlError::NotFound(room.clone()))?;
    if !(m.is_host(user) || co_host) {
        return Err(ControlError::NotHost);
    }
    finish(store, recorder, room, StopReason::Host, auto_compose)
        .await?
        .ok_or(ControlError::Recording(RecordingError::NotRecording))
}

/// Stop `room`'s recording, if one runs, and complete its manifest's participants from
/// the history (everyone whose connection has a track); with `auto_compose`, compose it
/// in the background afterwards. `None` if none ran.
pub async fn finish(
    store: &Store,
    recorder: &Recorder,
    room: &RoomId,
    reason: StopReason,
    auto_compose: bool,
) -> Result<Option<String>, RecordingError> {
    let mut manifest = match recorder.stop(room, reason).await {
        Ok(m) => m,
        Err(RecordingError::NotRecording) => return Ok(None),
        Err(e) => return Err(e),
    };
    let id = manifest.recording_id.clone();
    match store.participant_history(room).await {
        Ok(history) => {
            for p in history {
                let has_track = manifest
                    .tracks
                    .iter()
                    .any(|t| t.peer_id == p.peer_id.as_str());
                let listed = manifest
                    .participants
                    .iter()
                    .any(|e| e.peer_id == p.peer_id.as_str());
                if has_track && !listed {
                    manifest.participants.push(entry(p));
                }
            }
            if let Some(dir) = library::recording_dir(recorder.dir(), room, &id)
                && let Err(e) = writer::write_manifest_at(&dir, &manifest)
            {
                tracing::warn!(recording = %id, error = %e, "could not add the participants to the manifest");
            }
        }
        Err(e) => {
            tracing::warn!(recording = %id, error = %e, "participants not added to the manifest: the store is unavailable");
        }
    }
    if auto_compose && let Some(dir) = library::recording_dir(recorder.dir(), room, &id) {
        let rec = id.clone();
        // ffmpeg takes a while and a core: off the request, on a blocking thread.
        tokio::task::spawn_blocking(move || match super::compose::compose(&dir) {
            Ok(path) => {
                tracing::info!(recording = %rec, file = %path.display(), "recording composed")
            }
            Err(e) => {
                tracing::warn!(recording = %rec, error = %e, "composing the recording failed")
            }
        });
    }
    Ok(Some(id))
}

fn entry(p: crate::store::ParticipantRecord) -> ParticipantEntry {
    ParticipantEntry {
        peer_id: p.peer_id.to_string(),
        user_id: p.user_id.to_string(),
        user_name: p.user_name,
    }
}
