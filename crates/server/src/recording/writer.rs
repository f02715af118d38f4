//! The recorder's thread for one recording: packets from the engine's tap (a bounded
//! queue) to each track's [`TrackWriter`], the manifest every second, and the files
//! closed when the recording stops. Nothing here runs on an SFU worker.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use meeting_sfu::{RecordedCodec, RecordedPacket, TapStats};

use super::StopReason;
use super::manifest::{self, Manifest, ParticipantEntry, Status, TrackEntry};
use super::track::{TrackError, TrackWriter};

/// How often the tracks are drained and their gaps given up when no packet comes.
const TICK: Duration = Duration::from_millis(50);
/// How often the manifest is rewritten while recording.
const MANIFEST_EVERY: Duration = Duration::from_secs(1);

/// What one recording's thread is given.
#[derive(Debug)]
pub struct Spec {
    pub recording_id: String,
    pub room_id: String,
    pub dir: PathBuf,
    pub started: (Instant, SystemTime),
    pub participants: Vec<ParticipantEntry>,
}

/// A track's identity: the participant's connection and the track's source.
type TrackKey = (String, &'static str);

/// The thread's body. Returns the final manifest; `failed` is called when it stops by
/// itself (disk full, write error) before the recorder asked.
pub fn run(
    spec: Spec,
    rx: Receiver<RecordedPacket>,
    stats: Arc<TapStats>,
    stop: Arc<AtomicBool>,
    failed: Box<dyn FnOnce(StopReason) + Send>,
) -> Manifest {
    let mut tracks: BTreeMap<TrackKey, TrackWriter> = BTreeMap::new();
    let mut last_manifest = Instant::now();
    let mut last_tick = Instant::now();
    let mut failure: Option<TrackError> = None;
    write_manifest(&spec, &manifest(&spec, &tracks, &stats, None));
    while !stop.load(Ordering::Acquire) {
        let touched = match rx.recv_timeout(TICK) {
            Ok(pkt) => {
                let key = (sanitize(pkt.participant.as_str()), pkt.source.as_str());
                let t = tracks
                    .entry(key.clone())
                    .or_insert_with(|| TrackWriter::new(pkt.codec, pkt.clock_rate));
                t.push(pkt);
                Some(key)
            }
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let now = Instant::now();
        let all = now.duration_since(last_tick) >= TICK;
        if all {
            last_tick = now;
        }
        for (key, t) in tracks.iter_mut() {
            if !all && touched.as_ref() != Some(key) {
                continue;
            }
            if let Err(e) = t.drain(now, false, &spec.dir, &file_name(key), spec.started) {
                failure = Some(e);
                break;
            }
            if std::mem::take(&mut t.wants_keyframe) {
                stats.keyframe_requests.fetch_add(1, Ordering::Relaxed);
            }
        }
        if failure.is_some() {
            break;
        }
        if now.duration_since(last_manifest) >= MANIFEST_EVERY {
            last_manifest = now;
            write_manifest(&spec, &manifest(&spec, &tracks, &stats, None));
        }
    }
    let reason = match &failure {
        None => None,
        Some(TrackError::DiskFull) => Some(StopReason::DiskFull),
        Some(_) => Some(StopReason::WriteError),
    };
    if let Some(e) = &failure {
        tracing::error!(room = %spec.room_id, recording = %spec.recording_id, error = %e, "recording stopped: {e}");
    }
    let stopped_ms = ms_since(spec.started, Instant::now());
    let mut finished = BTreeMap::new();
    for (key, t) in std::mem::take(&mut tracks) {
        let (t, r) = t.finish(&spec.dir, &file_name(&key), spec.started);
        if let Err(e) = r
            && failure.is_none()
        {
            tracing::warn!(recording = %spec.recording_id, track = %file_name(&key), error = %e, "closing a track failed");
        }
        finished.insert(key, t);
    }
    let mut m = manifest(&spec, &finished, &stats, Some(stopped_ms));
    m.stop_reason = reason.map(|r| r.as_str().to_owned());
    write_manifest(&spec, &m);
    if let Some(reason) = reason {
        failed(reason);
    }
    m
}

/// Our own file name for a track: the server's connection ID (checked to be plain
/// ASCII) and the source, never anything a user typed.
fn file_name(key: &TrackKey) -> String {
    format!("{}-{}.webm", key.0, key.1)
}

fn sanitize(id: &str) -> String {
    id.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .take(64)
        .collect()
}

fn ms_since(anchor: (Instant, SystemTime), t: Instant) -> f64 {
    t.saturating_duration_since(anchor.0).as_secs_f64() * 1000.0
}

fn unix_ms(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

fn manifest(
    spec: &Spec,
    tracks: &BTreeMap<TrackKey, TrackWriter>,
    stats: &TapStats,
    stopped_ms: Option<f64>,
) -> Manifest {
    let started_ms = unix_ms(spec.started.1);
    // One offset per participant (the smallest over its tracks), so that a sender's
    // audio and video keep the alignment its sender reports give them.
    let mut offsets: BTreeMap<&str, f64> = BTreeMap::new();
    for ((peer, _), t) in tracks {
        if let Some(o) = t.min_offset_ms {
            let e = offsets.entry(peer.as_str()).or_insert(o);
            *e = e.min(o);
        }
    }
    let entries = tracks
        .iter()
        .filter(|(_, t)| t.has_file() || t.frames > 0)
        .filter_map(|((peer, source), t)| {
            let arrival = t.first_arrival?;
            let (start_ms, clock) = match (t.sender_start_ms(), offsets.get(peer.as_str())) {
                (Some(sent), Some(offset)) => (sent + offset - started_ms, "sender-report"),
                _ => (ms_since(spec.started, arrival), "arrival"),
            };
            let video = t.codec == RecordedCodec::Vp8;
            Some(TrackEntry {
                file: file_name(&(peer.clone(), source)),
                peer_id: peer.clone(),
                source: (*source).to_owned(),
                kind: if video { "video" } else { "audio" }.to_owned(),
                codec: if video { "vp8" } else { "opus" }.to_owned(),
                start_ms: round(start_ms),
                stop_ms: round(start_ms + t.written().as_secs_f64() * 1000.0),
                clock: clock.to_owned(),
                frames: t.frames,
                frames_lost: t.frames_lost,
                width: t.size.map(|s| s.0),
                height: t.size.map(|s| s.1),
            })
        })
        .collect();
    Manifest {
        version: manifest::VERSION,
        recording_id: spec.recording_id.clone(),
        room_id: spec.room_id.clone(),
        status: if stopped_ms.is_some() {
            Status::Finished
        } else {
            Status::Recording
        },
        stop_reason: None,
        started_at_ms: started_ms as u64,
        stopped_ms: stopped_ms.map(round),
        tracks: entries,
        participants: spec.participants.clone(),
        packets_dropped: stats.dropped.load(Ordering::Relaxed),
    }
}

fn round(ms: f64) -> f64 {
    (ms * 10.0).round() / 10.0
}

/// Write `manifest.json` atomically (a temporary file renamed over it). A failure is
/// logged: the tracks matter more than their index, and a full disk stops them anyway.
pub fn write_manifest(spec: &Spec, m: &Manifest) {
    if let Err(e) = write_manifest_at(&spec.dir, m) {
        tracing::warn!(recording = %spec.recording_id, error = %e, "writing the manifest failed");
    }
}

pub fn write_manifest_at(dir: &Path, m: &Manifest) -> std::io::Result<()> {
    let json = serde_json::to_vec_pretty(m).map_err(std::io::Error::other)?;
    let tmp = dir.join("manifest.json.tmp");
    std::fs::write(&tmp, json)?;
    std::fs::rename(&tmp, dir.join(super::MANIFEST))
}
