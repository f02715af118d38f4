//! Per-layer accounting of one synthetic participant: which stream (audio, or which
//! simulcast layer) of which publisher it received, read from the payload stamps
//! (`synth`), what it sent per layer, and the dynacast changes the server asked for.
//!
//! Kept apart from `peer.rs` so that the per-packet path there only calls
//! [`Received::record`], one hash-map update.

use std::collections::HashMap;
use std::time::Instant;

use crate::synth::StreamTag;

/// At most this many dynacast changes are kept per participant (a flapping server
/// must not grow the tool without bound); later ones are only counted.
pub const MAX_DYNACAST_CHANGES: usize = 256;

/// Packets of one stream of one publisher, as a subscriber received them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamCount {
    pub packets: u64,
    pub bytes: u64,
    pub first: Instant,
    pub last: Instant,
}

/// What one subscriber received, by (publisher's participant number, stream).
#[derive(Clone, Debug, Default)]
pub struct Received {
    pub by_stream: HashMap<(u32, StreamTag), StreamCount>,
}

impl Received {
    pub fn record(&mut self, publisher: u32, stream: StreamTag, bytes: usize, now: Instant) {
        let c = self
            .by_stream
            .entry((publisher, stream))
            .or_insert(StreamCount {
                packets: 0,
                bytes: 0,
                first: now,
                last: now,
            });
        c.packets += 1;
        c.bytes += bytes as u64;
        c.last = now;
    }
}

/// What one publisher sent of one stream (audio, or one video layer).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SentStream {
    pub stream: StreamTag,
    /// The simulcast rid (`None`: audio, or video without simulcast).
    pub rid: Option<String>,
    pub packets: u64,
    pub bytes: u64,
    /// First and last packet sent in the window.
    pub first: Option<Instant>,
    pub last: Option<Instant>,
    /// Stopped by dynacast right now.
    pub paused: bool,
}

impl SentStream {
    pub fn record(&mut self, bytes: usize, now: Instant) {
        self.packets += 1;
        self.bytes += bytes as u64;
        self.first.get_or_insert(now);
        self.last = Some(now);
    }

    /// The window starts: forget what was sent (not whether it is paused).
    pub fn reset(&mut self) {
        self.packets = 0;
        self.bytes = 0;
        self.first = None;
        self.last = None;
    }
}

/// One `layer-needed` the publisher acted on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DynacastChange {
    pub at: Instant,
    pub rid: String,
    pub needed: bool,
}

/// A publisher's dynacast history: the changes it applied (bounded), and how many.
#[derive(Clone, Debug, Default)]
pub struct Dynacast {
    pub changes: Vec<DynacastChange>,
    pub stops: u64,
    pub resumes: u64,
    /// `layer-needed` for a rid this participant does not send (ignored).
    pub unknown: u64,
}

impl Dynacast {
    pub fn note(&mut self, at: Instant, rid: &str, needed: bool) {
        if needed {
            self.resumes += 1;
        } else {
            self.stops += 1;
        }
        if self.changes.len() < MAX_DYNACAST_CHANGES {
            self.changes.push(DynacastChange {
                at,
                rid: rid.to_owned(),
                needed,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn streams_are_counted_per_publisher_and_layer() {
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_millis(40);
        let mut r = Received::default();
        r.record(2, StreamTag::Layer(0), 100, t0);
        r.record(2, StreamTag::Layer(0), 50, t1);
        r.record(2, StreamTag::Layer(1), 70, t1);
        r.record(3, StreamTag::Audio, 80, t1);
        assert_eq!(r.by_stream.len(), 3);
        let low = r.by_stream[&(2, StreamTag::Layer(0))];
        assert_eq!((low.packets, low.bytes), (2, 150));
        assert_eq!((low.first, low.last), (t0, t1));
    }

    #[test]
    fn dynacast_history_is_bounded_but_counted() {
        let t = Instant::now();
        let mut d = Dynacast::default();
        for i in 0..(MAX_DYNACAST_CHANGES + 10) {
            d.note(t, "f", i % 2 == 1);
        }
        assert_eq!(d.changes.len(), MAX_DYNACAST_CHANGES);
        assert_eq!(d.stops + d.resumes, (MAX_DYNACAST_CHANGES + 10) as u64);
        assert!(!d.changes[0].needed);
    }
}
