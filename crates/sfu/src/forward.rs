//! Per-packet helpers of the forwarder: sequence/timestamp rewriting, VP8 keyframe
//! detection and the simulcast layer statistics that drive the layer choice.
//!
//! Everything here is plain data and arithmetic (no str0m `Rtc`), so it is unit-tested
//! directly.

use std::time::{Duration, Instant};

use str0m::media::Rid;

/// Rewrites one incoming RTP stream (or a sequence of them, when the subscriber's
/// simulcast layer changes) into the one continuous stream a subscriber's m-line carries.
///
/// Why: the subscriber's SRTP context starts with rollover counter 0, so the extended
/// sequence numbers of a long-running publisher cannot be forwarded as they are; a layer
/// switch jumps to another SSRC's sequence space; and paused (muted) stretches leave gaps
/// that the receiver would NACK for ever. Rebasing keeps the outgoing numbers contiguous.
#[derive(Debug)]
pub struct Rewriter {
    started: bool,
    rebase: bool,
    seq_offset: i64,
    ts_offset: u32,
    /// Incoming packets older than this (from before the last rebase) are dropped.
    min_in_seq: u64,
    last_out_seq: u64,
    last_out_ts: u32,
    last_out_at: Option<Instant>,
    initial_seq: u64,
    initial_ts: u32,
}

impl Rewriter {
    /// `initial_seq` must be below 2^15 so that the receiver's ROC stays 0 for a long time.
    pub fn new(initial_seq: u16, initial_ts: u32) -> Self {
        Rewriter {
            started: false,
            rebase: false,
            seq_offset: 0,
            ts_offset: 0,
            min_in_seq: 0,
            last_out_seq: 0,
            last_out_ts: 0,
            last_out_at: None,
            initial_seq: u64::from(initial_seq & 0x7fff),
            initial_ts,
        }
    }

    /// The next packet starts a new incoming stream (layer switch, resume after mute).
    pub fn rebase(&mut self) {
        self.rebase = true;
    }

    /// Map an incoming (extended sequence number, RTP timestamp) to the outgoing one, or
    /// `None` for a late packet from before the last rebase.
    pub fn rewrite(
        &mut self,
        in_seq: u64,
        in_ts: u32,
        now: Instant,
        clock_rate: u32,
    ) -> Option<(u64, u32)> {
        if !self.started || self.rebase {
            let (next_seq, next_ts) = if self.started {
                // Keep the media clock advancing by the wall time that passed, so the
                // receiver's jitter buffer sees a plausible timeline across the switch.
                let elapsed = self
                    .last_out_at
                    .map(|t| now.saturating_duration_since(t))
                    .unwrap_or(Duration::ZERO);
                // u128: a publication muted for months must not overflow.
                let ticks = (elapsed.as_micros() * u128::from(clock_rate) / 1_000_000).max(1);
                (
                    self.last_out_seq + 1,
                    self.last_out_ts.wrapping_add(ticks as u32),
                )
            } else {
                (self.initial_seq, self.initial_ts)
            };
            self.seq_offset = next_seq as i64 - in_seq as i64;
            self.ts_offset = next_ts.wrapping_sub(in_ts);
            self.min_in_seq = in_seq;
            self.rebase = false;
            if !self.started {
                self.last_out_seq = next_seq;
                self.last_out_ts = next_ts;
            }
            self.started = true;
        }
        if in_seq < self.min_in_seq {
            return None;
        }
        let out_seq = (in_seq as i64).checked_add(self.seq_offset)?;
        let out_seq = u64::try_from(out_seq).ok()?;
        let out_ts = in_ts.wrapping_add(self.ts_offset);
        if out_seq >= self.last_out_seq {
            self.last_out_seq = out_seq;
            self.last_out_ts = out_ts;
            self.last_out_at = Some(now);
        }
        Some((out_seq, out_ts))
    }
}

/// Splices the recorded layers of one publication into the one continuous stream the
/// recorder reads: the first layer's packets keep their numbers; each later layer (a
/// simulcast switch) continues the sequence numbers where the last one stopped, and its
/// RTP times after the last recorded one by the wall time that passed, at least one frame
/// interval, so that no two frames of the file share a moment.
///
/// Why: every simulcast layer is its own RTP stream (its own sequence numbers and, in
/// general, its own RTP time base). Handed over as they are, a switch looks to the
/// recorder like a hole it waits for (or a stream it drops as late), and like a jump of
/// the media clock.
#[derive(Debug, Default)]
pub struct RecordSplice {
    started: bool,
    seq_offset: i64,
    ts_offset: i64,
    /// Incoming packets older than this (the previous layer's, or late) are dropped.
    min_in_seq: u64,
    last_seq: u64,
    last_ts: u64,
    last_at: Option<Instant>,
    /// The latest interval between two frames (RTP ticks), for the next splice.
    frame_ticks: u64,
}

impl RecordSplice {
    /// The packet `(in_seq, in_ts)` starts the recorded layer's stream (a keyframe).
    pub fn start_layer(&mut self, in_seq: u64, in_ts: u64, now: Instant, clock_rate: u32) {
        self.min_in_seq = in_seq;
        if !self.started {
            self.started = true;
            (self.seq_offset, self.ts_offset) = (0, 0);
            return;
        }
        let elapsed = self
            .last_at
            .map_or(Duration::ZERO, |t| now.saturating_duration_since(t));
        let ticks = (elapsed.as_micros() * u128::from(clock_rate) / 1_000_000) as u64;
        let next_ts = self.last_ts + ticks.max(self.frame_ticks).max(1);
        self.seq_offset = (self.last_seq + 1) as i64 - in_seq as i64;
        self.ts_offset = next_ts as i64 - in_ts as i64;
    }

    /// The packet's place in the recorded stream, or `None` for one from before the
    /// current layer started (or before anything started).
    pub fn map(
        &mut self,
        in_seq: u64,
        in_ts: u64,
        now: Instant,
        clock_rate: u32,
    ) -> Option<(u64, u64)> {
        if !self.started || in_seq < self.min_in_seq {
            return None;
        }
        let seq = u64::try_from(in_seq as i64 + self.seq_offset).ok()?;
        let ts = u64::try_from(in_ts as i64 + self.ts_offset).ok()?;
        if seq > self.last_seq || self.last_at.is_none() {
            // A pause (mute, a stalled sender) is not a frame interval: up to 1/5 s.
            let step = ts.saturating_sub(self.last_ts);
            if self.last_at.is_some() && step > 0 && step <= u64::from(clock_rate / 5) {
                self.frame_ticks = step;
            }
            (self.last_seq, self.last_ts, self.last_at) = (seq, ts, Some(now));
        }
        Some((seq, ts))
    }
}

/// Whether a VP8 RTP payload (RFC 7741) is the first packet of a keyframe. Never panics:
/// a short or odd payload is simply "not a keyframe".
pub fn vp8_is_keyframe_start(payload: &[u8]) -> bool {
    vp8_header_at(payload).is_some_and(|i| payload[i] & 0x01 == 0)
}

/// Where the VP8 payload header starts in the first packet of a frame (after the RFC
/// 7741 descriptor); `None` for any other packet, or a short one. Never panics.
pub fn vp8_header_at(payload: &[u8]) -> Option<usize> {
    let &b0 = payload.first()?;
    let extended = b0 & 0x80 != 0;
    let start = b0 & 0x10 != 0;
    let partition = b0 & 0x07;
    if !start || partition != 0 {
        return None;
    }
    let mut i = 1;
    if extended {
        let &x = payload.get(i)?;
        i += 1;
        if x & 0x80 != 0 {
            // PictureID: 7 or 15 bits (M flag).
            let &p = payload.get(i)?;
            i += if p & 0x80 != 0 { 2 } else { 1 };
        }
        if x & 0x40 != 0 {
            i += 1; // TL0PICIDX
        }
        if x & 0x30 != 0 {
            i += 1; // TID/Y/KEYIDX
        }
    }
    // VP8 payload header: P bit (inverse keyframe flag) is bit 0.
    (i < payload.len()).then_some(i)
}

/// Byte-rate bookkeeping of one simulcast layer (one rid) of a publication.
#[derive(Debug)]
pub struct LayerStat {
    pub rid: Option<Rid>,
    window_start: Instant,
    window_bytes: u64,
    /// Bytes per second over the last complete window.
    rate: u64,
    last_packet: Instant,
    /// Height of its last keyframe (VP8 frame header), once one arrived.
    pub height: Option<u32>,
    /// Dynacast: the publisher was told nobody needs it (`SfuEvent::LayerNeeded`). Such
    /// a layer stays a candidate of the allocation at its last rate, though silent.
    pub unneeded: bool,
    /// Since when no subscriber has needed it (reported after `adapt::UNNEEDED_AFTER`).
    pub idle_since: Option<Instant>,
}

/// Window over which layer rates are measured.
const RATE_WINDOW: Duration = Duration::from_millis(500);
/// A layer with no packet for this long is not chosen (the browser stopped sending it,
/// e.g. because of its own bandwidth estimate).
const LAYER_IDLE: Duration = Duration::from_millis(1000);

impl LayerStat {
    pub fn new(rid: Option<Rid>, now: Instant) -> Self {
        LayerStat {
            rid,
            window_start: now,
            window_bytes: 0,
            rate: 0,
            last_packet: now,
            height: None,
            unneeded: false,
            idle_since: None,
        }
    }

    pub fn record(&mut self, bytes: usize, now: Instant) {
        let elapsed = now.saturating_duration_since(self.window_start);
        if elapsed >= RATE_WINDOW {
            let ms = elapsed.as_millis().max(1) as u64;
            self.rate = self.window_bytes * 1000 / ms;
            self.window_start = now;
            self.window_bytes = 0;
        }
        self.window_bytes += bytes as u64;
        self.last_packet = now;
    }

    pub fn is_active(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.last_packet) < LAYER_IDLE
    }

    /// Rate used for ranking: before the first window completes, the bytes so far.
    fn rank(&self) -> u64 {
        self.rate.max(self.window_bytes)
    }

    /// Payload bits per second (the ranking rate).
    pub fn bitrate(&self) -> u64 {
        self.rank() * 8
    }
}

/// How many layers below the best one a room forwards, from the number of cameras in it.
///
/// A gallery's tiles shrink as it grows: with up to 4 cameras a tile is a quarter of the
/// screen and deserves the full layer; up to 12 tiles are about 480×270 on a 1080p screen
/// (the half-resolution layer); beyond that, thumbnails (the quarter-resolution layer).
/// This is also what makes a large meeting fit on one worker: 50 people sending 800 kbit/s
/// each would need 49 × 800 kbit/s down per subscriber. Per-subscriber choices (active
/// speaker, tile size reported by the client) would refine it; see docs/sfu.md.
pub fn gallery_skip(cameras: usize) -> usize {
    match cameras {
        0..=4 => 0,
        5..=12 => 1,
        _ => 2,
    }
}

/// The layer to forward: the active layer `skip` places below the one with the highest
/// byte rate (the lowest active one if there are fewer).
///
/// `current` is kept while it is within 25 % of that layer's rate, so that two layers
/// of similar rate do not make subscribers flap between them (every switch costs a
/// keyframe). No allocation: a publisher sends at most a few layers.
pub fn choose_layer(
    layers: &[LayerStat],
    current: Option<&Rid>,
    now: Instant,
    skip: usize,
) -> Option<Rid> {
    let mut want: Option<&LayerStat> = None;
    for _ in 0..=skip {
        let below = want.map(|w| w.rank());
        let next = layers
            .iter()
            .filter(|l| l.is_active(now) && below.is_none_or(|b| l.rank() < b))
            .max_by_key(|l| l.rank());
        match next {
            Some(l) => want = Some(l),
            None => break,
        }
    }
    let want = want?;
    if let Some(cur) = current
        && let Some(cur_layer) = layers.iter().find(|l| l.rid.as_ref() == Some(cur))
        && cur_layer.is_active(now)
        && want.rank() * 4 < cur_layer.rank() * 5
        && cur_layer.rank() * 4 < want.rank() * 5
    {
        return Some(*cur);
    }
    want.rid
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_splice_continues_numbers_and_clock_across_layers() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut s = RecordSplice::default();
        assert_eq!(s.map(5, 0, t0, 90_000), None, "nothing before a start");
        // The first layer keeps its own numbers.
        s.start_layer(1000, 90_000, t0, 90_000);
        assert_eq!(s.map(1000, 90_000, t0, 90_000), Some((1000, 90_000)));
        assert_eq!(
            s.map(1001, 93_600, t0 + ms(40), 90_000),
            Some((1001, 93_600))
        );
        // Another layer, 500 ms later, with numbers far below and a foreign clock: it
        // continues at 1002, 500 ms later on the recorded clock.
        s.start_layer(7, 5, t0 + ms(540), 90_000);
        assert_eq!(
            s.map(7, 5, t0 + ms(540), 90_000),
            Some((1002, 93_600 + 45_000))
        );
        assert_eq!(
            s.map(8, 3605, t0 + ms(580), 90_000),
            Some((1003, 93_600 + 48_600))
        );
        // The old layer's late packets are not the recorded stream's any more.
        assert_eq!(s.map(6, 0, t0 + ms(580), 90_000), None);
        // A switch right after a frame (the same picture in another layer) lands one
        // frame interval later, not on top of it.
        s.start_layer(50_000, 1, t0 + ms(581), 90_000);
        assert_eq!(
            s.map(50_000, 1, t0 + ms(581), 90_000),
            Some((1004, 93_600 + 48_600 + 3600))
        );
    }

    #[test]
    fn rewriter_is_contiguous_across_rebase() {
        let t0 = Instant::now();
        let mut r = Rewriter::new(100, 5000);
        assert_eq!(r.rewrite(70_000, 10, t0, 90_000), Some((100, 5000)));
        assert_eq!(r.rewrite(70_001, 20, t0, 90_000), Some((101, 5010)));
        r.rebase();
        // Another layer: unrelated numbers, continues at 102.
        let t1 = t0 + Duration::from_millis(10);
        assert_eq!(r.rewrite(5, 999, t1, 90_000), Some((102, 5010 + 900)));
        assert_eq!(r.rewrite(6, 1000, t1, 90_000), Some((103, 5911)));
        // A late packet from before the switch is dropped.
        assert_eq!(r.rewrite(4, 998, t1, 90_000), None);
    }

    #[test]
    fn vp8_keyframe_detection() {
        // S=1, PID=0, no extension, payload header P=0 → keyframe.
        assert!(vp8_is_keyframe_start(&[0x10, 0x00]));
        assert!(!vp8_is_keyframe_start(&[0x10, 0x01]));
        // Not a start of partition.
        assert!(!vp8_is_keyframe_start(&[0x00, 0x00]));
        // Extended with 15-bit picture id, TL0PICIDX and TID.
        assert!(vp8_is_keyframe_start(&[
            0x90, 0xe0, 0x80, 0x01, 0x05, 0x20, 0x00
        ]));
        assert!(!vp8_is_keyframe_start(&[
            0x90, 0xe0, 0x80, 0x01, 0x05, 0x20, 0x01
        ]));
        // Truncated input never panics.
        for n in 0..7 {
            let _ = vp8_is_keyframe_start(&[0x90, 0xe0, 0x80, 0x01, 0x05, 0x20, 0x00][..n]);
        }
    }

    #[test]
    fn layer_choice_prefers_the_richest_active_layer() {
        let t0 = Instant::now();
        let mut layers = vec![
            LayerStat::new(Some("l".into()), t0),
            LayerStat::new(Some("h".into()), t0),
        ];
        for i in 0..100 {
            let t = t0 + Duration::from_millis(10 * i);
            layers[0].record(100, t);
            layers[1].record(1000, t);
        }
        let now = t0 + Duration::from_millis(1000);
        assert_eq!(choose_layer(&layers, None, now, 0), Some("h".into()));
        // A larger gallery takes the layer below; past the lowest, the lowest.
        assert_eq!(choose_layer(&layers, None, now, 1), Some("l".into()));
        assert_eq!(choose_layer(&layers, None, now, 5), Some("l".into()));
        // Keeping the current layer never overrides the gallery's choice.
        assert_eq!(
            choose_layer(&layers, Some(&"h".into()), now, 1),
            Some("l".into())
        );
        assert_eq!(gallery_skip(3), 0);
        assert_eq!(gallery_skip(8), 1);
        assert_eq!(gallery_skip(50), 2);
        // "h" goes quiet: fall back to "l".
        for i in 100..300 {
            layers[0].record(100, t0 + Duration::from_millis(10 * i));
        }
        let later = t0 + Duration::from_millis(3000);
        assert_eq!(
            choose_layer(&layers, Some(&"h".into()), later, 0),
            Some("l".into())
        );
    }
}
