//! Recording: a meeting's tracks written to files on the node that holds its media.
//!
//! The engine hands each recorded room's RTP packets over a bounded queue
//! (`meeting_sfu::RecordTap`: a full queue drops and counts, a worker never waits);
//! one thread per recording ([`writer`]) puts them in order, depacketizes them and
//! writes one WebM file per track ([`track`], over [`file`]) with libwebm, Google's
//! reference muxer (the `webm` crate), plus a `manifest.json` ([`manifest`]). Files are
//! flushed after every frame, so a crash leaves them playable up to the last frame.
//!
//! Layout: `RECORDINGS_DIR/<roomId>/<recordingId>/{manifest.json, <peerId>-<source>.webm}`.
//! Every name is the server's own: the room ID is one of ours (checked), the recording
//! ID is made here, and a track's file name comes from its connection ID and source.
//!
//! Who may start and stop, and telling the meeting, is the callers' part (`http`,
//! `signaling`); this module knows rooms and files only. [`Recorder`] keeps which
//! rooms are recorded now; a recording that stops by itself (disk full) reports
//! through the [`Notify`] callback it was built with.

pub mod compose;
pub mod control;
pub mod file;
pub mod library;
pub mod manifest;
pub mod track;
pub mod vp8;
pub mod writer;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::{Instant, SystemTime};

use meeting_sfu::{RecordTap, Sfu, TapStats};
use proto::RoomId;
use proto::events::RecordingStopReason;

pub use manifest::{Manifest, ParticipantEntry};

/// The manifest's file name in a recording's directory.
pub const MANIFEST: &str = "manifest.json";
/// Packets the engine may queue for the recorder before it drops (about 2 s of a
/// 16-person meeting's audio and video).
const QUEUE: usize = 8192;

/// Why a recording stopped; the wire's `recording:stopped { reason }`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// The host stopped it.
    Host,
    /// The meeting ended (which stops its recording).
    MeetingEnded,
    /// The recordings' disk filled up; the meeting goes on.
    DiskFull,
    /// Writing failed otherwise (see the log).
    WriteError,
    /// The server is shutting down.
    Shutdown,
}

impl StopReason {
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::Host => "host",
            StopReason::MeetingEnded => "meeting-ended",
            StopReason::DiskFull => "disk-full",
            StopReason::WriteError => "write-error",
            StopReason::Shutdown => "shutdown",
        }
    }
}

/// The wire's name of each reason (`recording:stopped`, the cluster relay).
impl From<StopReason> for RecordingStopReason {
    fn from(r: StopReason) -> Self {
        match r {
            StopReason::Host => RecordingStopReason::Host,
            StopReason::MeetingEnded => RecordingStopReason::MeetingEnded,
            StopReason::DiskFull => RecordingStopReason::DiskFull,
            StopReason::WriteError => RecordingStopReason::WriteError,
            StopReason::Shutdown => RecordingStopReason::Shutdown,
        }
    }
}

impl From<RecordingStopReason> for StopReason {
    fn from(r: RecordingStopReason) -> Self {
        match r {
            RecordingStopReason::Host => StopReason::Host,
            RecordingStopReason::MeetingEnded => StopReason::MeetingEnded,
            RecordingStopReason::DiskFull => StopReason::DiskFull,
            RecordingStopReason::WriteError => StopReason::WriteError,
            RecordingStopReason::Shutdown => StopReason::Shutdown,
        }
    }
}

/// A change the meeting's participants are told about.
#[derive(Clone, Debug, PartialEq)]
pub enum RecordingNotice {
    Started {
        room: RoomId,
        recording: RecordingInfo,
    },
    Stopped {
        room: RoomId,
        recording_id: String,
        reason: StopReason,
    },
}

/// Where the recorder reports a notice (the server publishes it to the meeting).
pub type Notify = Arc<dyn Fn(RecordingNotice) + Send + Sync>;

/// A running recording, as clients see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordingInfo {
    pub recording_id: String,
    /// UNIX milliseconds.
    pub started_at_ms: u64,
}

/// Why a recording could not be started or stopped.
#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    #[error("this meeting is already being recorded")]
    AlreadyRecording,
    #[error("this meeting is not being recorded")]
    NotRecording,
    #[error("this server records only meetings whose media it holds (SFU meetings)")]
    NoEngine,
    #[error("the recordings directory cannot be written: {0}")]
    Io(#[source] std::io::Error),
}

struct Active {
    info: RecordingInfo,
    dir: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Manifest>>,
    stats: Arc<TapStats>,
}

struct Inner {
    dir: PathBuf,
    sfu: Option<Arc<Sfu>>,
    active: Mutex<HashMap<RoomId, Active>>,
    notify: Notify,
}

/// Which rooms this node records, and their threads. Cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("dir", &self.inner.dir)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Checked at start-up: the directory exists (created if not) and a file can be
/// written in it. The error names the directory and `RECORDINGS_DIR`.
pub fn check_dir(dir: &Path) -> Result<(), String> {
    let fail = |what: &str, e: std::io::Error| {
        format!(
            "RECORDINGS_DIR={}: {what}: {e} (set RECORDINGS_DIR to a writable directory)",
            dir.display()
        )
    };
    std::fs::create_dir_all(dir).map_err(|e| fail("cannot create the directory", e))?;
    let probe = dir.join(format!(".write-test-{}", std::process::id()));
    std::fs::write(&probe, b"ok").map_err(|e| fail("cannot write in the directory", e))?;
    std::fs::remove_file(&probe).map_err(|e| fail("cannot remove a file in the directory", e))
}

impl Recorder {
    pub fn new(dir: PathBuf, sfu: Option<Arc<Sfu>>, notify: Notify) -> Self {
        Recorder {
            inner: Arc::new(Inner {
                dir,
                sfu,
                active: Mutex::new(HashMap::new()),
                notify,
            }),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The recording running in `room`, if any.
    pub fn status(&self, room: &RoomId) -> Option<RecordingInfo> {
        lock(&self.inner.active).get(room).map(|a| a.info.clone())
    }

    /// Packets dropped so far by the running recording of `room` (queue full).
    pub fn dropped(&self, room: &RoomId) -> Option<u64> {
        lock(&self.inner.active)
            .get(room)
            .map(|a| a.stats.dropped.load(Ordering::Relaxed))
    }

    /// Start recording `room`; `participants` go in the manifest.
    pub fn start(
        &self,
        room: &RoomId,
        participants: Vec<ParticipantEntry>,
    ) -> Result<RecordingInfo, RecordingError> {
        let sfu = self.inner.sfu.clone().ok_or(RecordingError::NoEngine)?;
        let mut active = lock(&self.inner.active);
        if active.contains_key(room) {
            return Err(RecordingError::AlreadyRecording);
        }
        let started = (Instant::now(), SystemTime::now());
        let recording_id = new_id(started.1);
        let dir = self.inner.dir.join(room.as_str()).join(&recording_id);
        std::fs::create_dir_all(&dir).map_err(RecordingError::Io)?;
        let info = RecordingInfo {
            recording_id: recording_id.clone(),
            started_at_ms: started
                .1
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
        };
        let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
        let stats = Arc::new(TapStats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let spec = writer::Spec {
            recording_id: recording_id.clone(),
            room_id: room.to_string(),
            dir: dir.clone(),
            started,
            participants,
        };
        let failed = {
            let weak: Weak<Inner> = Arc::downgrade(&self.inner);
            let (room, id) = (room.clone(), recording_id.clone());
            Box::new(move |reason: StopReason| {
                if let Some(inner) = weak.upgrade() {
                    Recorder { inner }.stopped_by_itself(&room, &id, reason);
                }
            })
        };
        let thread = {
            let (stats, stop) = (stats.clone(), stop.clone());
            std::thread::Builder::new()
                .name(format!("rec-{room}"))
                .spawn(move || writer::run(spec, rx, stats, stop, failed))
                .map_err(RecordingError::Io)?
        };
        active.insert(
            room.clone(),
            Active {
                info: info.clone(),
                dir,
                stop,
                thread: Some(thread),
                stats: stats.clone(),
            },
        );
        drop(active);
        sfu.set_recording(room.clone(), Some(RecordTap { tx, stats }));
        tracing::info!(room = %room, recording = %recording_id, "recording started");
        (self.inner.notify)(RecordingNotice::Started {
            room: room.clone(),
            recording: info.clone(),
        });
        Ok(info)
    }

    /// Stop recording `room` and wait for its files to be closed. Returns the final
    /// manifest.
    pub async fn stop(
        &self,
        room: &RoomId,
        reason: StopReason,
    ) -> Result<Manifest, RecordingError> {
        let Some(mut a) = lock(&self.inner.active).remove(room) else {
            return Err(RecordingError::NotRecording);
        };
        if let Some(sfu) = &self.inner.sfu {
            sfu.set_recording(room.clone(), None);
        }
        a.stop.store(true, Ordering::Release);
        let thread = a.thread.take();
        let dir = a.dir.clone();
        let manifest = tokio::task::spawn_blocking(move || {
            let mut m = thread.and_then(|t| t.join().ok())?;
            // The thread stopped because it was asked: say why.
            m.stop_reason.get_or_insert_with(|| reason.as_str().to_owned());
            if let Err(e) = writer::write_manifest_at(&dir, &m) {
                tracing::warn!(recording = %m.recording_id, error = %e, "writing the final manifest failed");
            }
            Some(m)
        })
        .await
        .ok()
        .flatten();
        tracing::info!(room = %room, recording = %a.info.recording_id, reason = reason.as_str(), "recording stopped");
        (self.inner.notify)(RecordingNotice::Stopped {
            room: room.clone(),
            recording_id: a.info.recording_id.clone(),
            reason,
        });
        manifest.ok_or_else(|| {
            RecordingError::Io(std::io::Error::other(
                "the recording's thread ended abnormally",
            ))
        })
    }

    /// Stop every recording (shutdown), waiting for their files.
    pub async fn stop_all(&self, reason: StopReason) {
        let rooms: Vec<RoomId> = lock(&self.inner.active).keys().cloned().collect();
        for room in rooms {
            let _ = self.stop(&room, reason).await;
        }
    }

    /// The recording's thread stopped by itself (`writer::run`'s `failed`).
    fn stopped_by_itself(&self, room: &RoomId, id: &str, reason: StopReason) {
        {
            let mut active = lock(&self.inner.active);
            if active.get(room).is_none_or(|a| a.info.recording_id != id) {
                return;
            }
            active.remove(room);
        }
        if let Some(sfu) = &self.inner.sfu {
            sfu.set_recording(room.clone(), None);
        }
        tracing::error!(room = %room, recording = %id, reason = reason.as_str(), "recording stopped by itself; the meeting goes on");
        (self.inner.notify)(RecordingNotice::Stopped {
            room: room.clone(),
            recording_id: id.to_owned(),
            reason,
        });
    }
}

/// A recording ID: its UTC start and 6 random hex digits (`20261201T020500Z-3fa9c1`),
/// so that directory listings sort by time.
fn new_id(at: SystemTime) -> String {
    let t: chrono::DateTime<chrono::Utc> = at.into();
    format!(
        "{}-{:06x}",
        t.format("%Y%m%dT%H%M%SZ"),
        rand::random::<u32>() & 0xff_ffff
    )
}

/// Whether `s` can be a recording ID made by [`new_id`] (for paths from requests).
pub fn is_recording_id(s: &str) -> bool {
    s.len() == 23
        && s.bytes().all(|b| {
            b.is_ascii_digit() || b.is_ascii_lowercase() || b == b'T' || b == b'Z' || b == b'-'
        })
}
