//! Who may start and stop a meeting's recording, shared by the REST API and the
//! signaling (the meeting exists and is not over, the caller is its host, its settings
//! allow recording), and where the command runs: on the node that holds the meeting's
//! media ([`Route`]). On a single node that is this one ([`Host`]); in a cluster the
//! media layer relays the [`Command`] to the owner (`media::cluster`), which runs it on
//! its own [`Host`].

use std::sync::Arc;

use futures_util::future::BoxFuture;
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
    /// The node that holds the meeting's media could not be asked (Redis down, the node
    /// gone or silent past the relay's deadline).
    #[error("the node holding this meeting's media could not be reached: {0}")]
    Unreachable(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error(transparent)]
    Recording(#[from] RecordingError),
    #[error("the meeting store is unavailable: {0}")]
    Store(#[from] StoreError),
}

/// What the node holding a meeting's media is asked to do with its recording.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    Start,
    /// Stop it if one runs (answers `Stopped(None)` otherwise).
    Stop(StopReason),
    /// Which recording runs now (for a late joiner's indicator, the listing).
    Status,
}

/// The answer to a [`Command`], one variant per command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Started(RecordingInfo),
    /// The stopped recording's ID once its files are closed; `None` if none ran.
    Stopped(Option<String>),
    Status(Option<RecordingInfo>),
}

/// This node's recording side: what runs a [`Command`] for a meeting whose media is
/// here. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Host {
    pub store: Store,
    pub recorder: Recorder,
    /// `RECORDING_AUTO_COMPOSE`.
    pub auto_compose: bool,
}

impl Host {
    pub async fn run(&self, room: &RoomId, command: Command) -> Result<Outcome, RecordingError> {
        match command {
            Command::Start => {
                // Who is in the meeting goes in the manifest; without the store the
                // list is completed from the history when the recording stops.
                let present = match self.store.present_participants(room).await {
                    Ok(present) => present.into_iter().map(entry).collect(),
                    Err(e) => {
                        tracing::warn!(room = %room, error = %e, "recording starts without its participant list: the store is unavailable");
                        Vec::new()
                    }
                };
                Ok(Outcome::Started(self.recorder.start(room, present)?))
            }
            Command::Stop(reason) => {
                let stopped =
                    finish(&self.store, &self.recorder, room, reason, self.auto_compose).await?;
                Ok(Outcome::Stopped(stopped))
            }
            Command::Status => Ok(Outcome::Status(self.recorder.status(room))),
        }
    }
}

/// Carries a [`Command`] to the node that holds the meeting's media, in a cluster
/// (`media::ClusterMedia` implements it; it runs the command on its own [`Host`] when
/// that node is itself).
pub trait Relay: Send + Sync + std::fmt::Debug {
    fn run(&self, room: &RoomId, command: Command) -> BoxFuture<'_, Result<Outcome, ControlError>>;
}

/// Where a meeting's recording commands run: this node's [`Host`], or through the
/// cluster's [`Relay`]. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Route {
    host: Host,
    relay: Option<Arc<dyn Relay>>,
}

impl Route {
    pub fn new(host: Host, relay: Option<Arc<dyn Relay>>) -> Self {
        Route { host, relay }
    }

    pub fn host(&self) -> &Host {
        &self.host
    }

    pub async fn run(&self, room: &RoomId, command: Command) -> Result<Outcome, ControlError> {
        match &self.relay {
            Some(relay) => relay.run(room, command).await,
            None => Ok(self.host.run(room, command).await?),
        }
    }

    /// The recording running in `room`, wherever its media is; `None` when that cannot
    /// be learnt (logged), so that a join or a listing never fails for it.
    pub async fn status(&self, room: &RoomId) -> Option<RecordingInfo> {
        match self.run(room, Command::Status).await {
            Ok(Outcome::Status(status)) => status,
            Ok(other) => {
                tracing::warn!(room = %room, answer = ?other, "a recording status was answered with something else");
                None
            }
            Err(e) => {
                tracing::warn!(room = %room, error = %e, "the recording status is unknown");
                None
            }
        }
    }
}

/// The host starts recording `room`, on the node that holds its media.
pub async fn start(
    route: &Route,
    room: &RoomId,
    user: &UserId,
    co_host: bool,
) -> Result<RecordingInfo, ControlError> {
    let store = &route.host.store;
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
    match route.run(room, Command::Start).await? {
        Outcome::Started(info) => Ok(info),
        other => Err(unexpected(other)),
    }
}

/// The host stops recording `room`; returns the recording's ID once its files are
/// closed.
pub async fn stop(
    route: &Route,
    room: &RoomId,
    user: &UserId,
    co_host: bool,
) -> Result<String, ControlError> {
    let m = route
        .host
        .store
        .get_meeting(room)
        .await?
        .ok_or_else(|| ControlError::NotFound(room.clone()))?;
    if !(m.is_host(user) || co_host) {
        return Err(ControlError::NotHost);
    }
    match route.run(room, Command::Stop(StopReason::Host)).await? {
        Outcome::Stopped(Some(id)) => Ok(id),
        Outcome::Stopped(None) => Err(ControlError::Recording(RecordingError::NotRecording)),
        other => Err(unexpected(other)),
    }
}

/// An answer of the wrong kind from another node (cannot come from this one).
fn unexpected(answer: Outcome) -> ControlError {
    ControlError::Unreachable(format!("it answered {answer:?}").into())
}

/// Stop `room`'s recording, if one runs, and complete its manifest's participants from
/// the history (everyone whose connection has a track); with `auto_compose`, compose it
/// in the background afterwards. `None` if none ran.
async fn finish(
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
