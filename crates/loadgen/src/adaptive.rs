//! The signaling side of adaptive media for the synthetic participants:
//! - `layer-needed` (dynacast) goes to the publisher's media thread, which stops or
//!   resumes that simulcast layer (`Peer::set_layer_needed`);
//! - `active-speaker` events are collected (as one participant per meeting sees them)
//!   so that the report can name whom the server chose;
//! - the participant that `--leave-after` picks leaves the meeting that long into the
//!   measurement window (fewer cameras: the layers the others need change, which makes
//!   dynacast resume a layer it had stopped).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use proto::PeerId;
use proto::events::{ActiveSpeaker, LayerNeeded};
use proto::signaling::VideoSource;
use tokio::sync::watch;

use crate::engine::{Command, MediaThread};
use crate::sio::ServerEvent;

/// Active-speaker events kept per run (a flapping server must not grow the tool).
const MAX_SPEAKER_EVENTS: usize = 10_000;

/// One `active-speaker` event, as the observing participant of its meeting saw it.
#[derive(Clone, Debug)]
pub struct SpeakerSeen {
    pub meeting: usize,
    pub at: Instant,
    pub speaker: Option<PeerId>,
}

/// What the participants of a run share about adaptive media.
#[derive(Debug)]
pub struct AdaptiveShared {
    /// Who each participant is on the server: peer id → (meeting, index in it).
    peers: Mutex<HashMap<PeerId, (usize, usize)>>,
    speakers: Mutex<Vec<SpeakerSeen>>,
    /// `layer-needed` events received (all publishers), bodies that did not parse.
    layer_events: Mutex<(u64, u64)>,
    /// When the measurement window started (`None` before).
    window: watch::Sender<Option<Instant>>,
}

impl Default for AdaptiveShared {
    fn default() -> Self {
        AdaptiveShared {
            peers: Mutex::default(),
            speakers: Mutex::default(),
            layer_events: Mutex::default(),
            window: watch::channel(None).0,
        }
    }
}

/// Locks a mutex that a panicking holder may have poisoned (the data stays usable:
/// every update here is a single push or insert).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl AdaptiveShared {
    /// A participant joined as `peer`.
    pub fn joined(&self, peer: PeerId, meeting: usize, index: usize) {
        lock(&self.peers).insert(peer, (meeting, index));
    }

    /// The (meeting, index) of a peer id of this run.
    pub fn who(&self, peer: &PeerId) -> Option<(usize, usize)> {
        lock(&self.peers).get(peer).copied()
    }

    pub fn speaker_events(&self) -> Vec<SpeakerSeen> {
        lock(&self.speakers).clone()
    }

    /// (`layer-needed` events received, of which malformed).
    pub fn layer_events(&self) -> (u64, u64) {
        *lock(&self.layer_events)
    }

    pub fn window_started(&self, at: Instant) {
        self.window.send_replace(Some(at));
    }

    /// Resolves `after` into the measurement window (never, if `after` is `None`).
    pub async fn into_window(&self, after: Option<Duration>) {
        let Some(after) = after else {
            return std::future::pending().await;
        };
        let mut rx = self.window.subscribe();
        // The borrow ends here: it must not be held across the sleep.
        let started = rx.wait_for(Option::is_some).await.map(|v| *v);
        let start = match started {
            Ok(v) => v.unwrap_or_else(Instant::now),
            // The sender lives as long as `self`: unreachable; never resolve.
            Err(_) => return std::future::pending().await,
        };
        tokio::time::sleep_until((start + after).into()).await;
    }
}

/// Where a participant's adaptive-media events go.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub thread: &'a MediaThread,
    pub slot: usize,
    pub meeting: usize,
    /// Whether this participant records its meeting's `active-speaker` events.
    pub observer: bool,
}

/// Handles `ev` if it is an adaptive-media event; false if it is something else.
pub fn on_event(ev: &ServerEvent, to: Target<'_>, shared: &AdaptiveShared) -> bool {
    if let Some(msg) = ev.decode::<LayerNeeded>() {
        let mut counts = lock(&shared.layer_events);
        counts.0 += 1;
        match msg {
            Ok(m) if m.source == VideoSource::Camera => {
                // The thread may have stopped at the end of the run: nothing to stop then.
                let _ = to.thread.send(Command::LayerNeeded {
                    slot: to.slot,
                    rid: m.rid,
                    needed: m.needed,
                });
            }
            Ok(_) => {}
            Err(_) => counts.1 += 1,
        }
        return true;
    }
    if let Some(msg) = ev.decode::<ActiveSpeaker>() {
        if to.observer
            && let Ok(m) = msg
        {
            let mut seen = lock(&shared.speakers);
            if seen.len() < MAX_SPEAKER_EVENTS {
                seen.push(SpeakerSeen {
                    meeting: to.meeting,
                    at: Instant::now(),
                    speaker: m.peer_id,
                });
            }
        }
        return true;
    }
    false
}
