//! One recorded track: its packets put back in order (retransmissions fill gaps for a
//! while), depacketized into frames, and written to its own WebM file as they complete.
//!
//! Video starts at a keyframe and, after a frame is lost for good, waits for the next
//! one (and asks for it), so that no decoder ever sees a frame whose reference is
//! missing. Audio (Opus, one frame per packet) just skips what is lost.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use meeting_sfu::{RecordedCodec, RecordedPacket, SenderClock};
use webm::mux::{AudioCodecId, Segment, SegmentBuilder, SegmentMode, VideoCodecId, Writer};

use super::file::SharedFile;
use super::vp8;

/// How long a missing packet is waited for (a NACK and its retransmission take about a
/// round trip) before the frame it belongs to is given up.
pub const REORDER_WAIT: Duration = Duration::from_millis(300);
/// Packets held while waiting, at most (a 4 Mbit/s screen share sends ~350 a second).
const MAX_HELD: usize = 2048;
/// An RTP time jump larger than this (or backwards) is a new timeline, not a gap:
/// the file continues after the arrival-time gap instead.
const MAX_JUMP_SECS: u64 = 10;

/// Why a track stopped being written.
#[derive(Debug, thiserror::Error)]
pub enum TrackError {
    #[error("the recording's disk is full")]
    DiskFull,
    #[error("writing the track failed: {0}")]
    Io(io::ErrorKind),
    #[error("the WebM writer refused a frame: {0}")]
    Mux(String),
}

impl TrackError {
    fn from_io(kind: io::ErrorKind) -> Self {
        match kind {
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => TrackError::DiskFull,
            other => TrackError::Io(other),
        }
    }
}

struct Out {
    segment: Segment<SharedFile>,
    track: u64,
    file: SharedFile,
}

/// One track's writer. Lives on the recorder's thread only.
pub struct TrackWriter {
    pub codec: RecordedCodec,
    held: BTreeMap<u64, RecordedPacket>,
    next_seq: Option<u64>,
    waiting_keyframe: bool,
    out: Option<Out>,
    frame: Vec<u8>,
    base_ns: u64,
    base_rtp: u64,
    last_rtp: u64,
    last_ns: u64,
    clock_rate: u32,
    pub first_arrival: Option<Instant>,
    first_rtp: u64,
    last_arrival: Option<Instant>,
    /// The latest sender report of the stream.
    pub sender: Option<SenderClock>,
    /// Smallest (arrival − sender time) of a frame seen, in ms: the sender's clock
    /// offset plus the shortest transit, to put sender-report times on the server's.
    pub min_offset_ms: Option<f64>,
    pub frames: u64,
    pub frames_lost: u64,
    pub size: Option<(u32, u32)>,
    /// A frame was lost and the stream waits for a keyframe: the recorder asks for one.
    pub wants_keyframe: bool,
}

impl std::fmt::Debug for TrackWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrackWriter")
            .field("codec", &self.codec)
            .field("frames", &self.frames)
            .finish_non_exhaustive()
    }
}

fn unix_ms(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

impl TrackWriter {
    pub fn new(codec: RecordedCodec, clock_rate: u32) -> Self {
        TrackWriter {
            codec,
            held: BTreeMap::new(),
            next_seq: None,
            waiting_keyframe: codec == RecordedCodec::Vp8,
            out: None,
            frame: Vec::new(),
            base_ns: 0,
            base_rtp: 0,
            last_rtp: 0,
            last_ns: 0,
            clock_rate: clock_rate.max(1),
            first_arrival: None,
            first_rtp: 0,
            last_arrival: None,
            sender: None,
            min_offset_ms: None,
            frames: 0,
            frames_lost: 0,
            size: None,
            wants_keyframe: false,
        }
    }

    /// Whether a file was started (a first frame written).
    pub fn has_file(&self) -> bool {
        self.out.is_some()
    }

    /// Duration written so far (the last frame's timestamp).
    pub fn written(&self) -> Duration {
        Duration::from_nanos(self.last_ns)
    }

    /// The publisher's wall-clock time (UNIX ms) of the first frame, from the latest
    /// sender report.
    pub fn sender_start_ms(&self) -> Option<f64> {
        let sc = self.sender?;
        let delta = self.first_rtp as f64 - sc.rtp_time as f64;
        Some(unix_ms(sc.ntp) + delta * 1000.0 / f64::from(self.clock_rate))
    }

    /// Hold one packet until its frame is complete (a late one is dropped).
    pub fn push(&mut self, pkt: RecordedPacket) {
        if self.next_seq.is_some_and(|n| pkt.seq < n) {
            return;
        }
        if pkt.sender_clock.is_some() {
            self.sender = pkt.sender_clock;
        }
        self.held.insert(pkt.seq, pkt);
    }

    /// Write every frame that is complete, and give up on gaps older than
    /// [`REORDER_WAIT`] (all of them when `force`: the recording stops). `dir` is where
    /// the file is created on the first frame, as `name`.
    pub fn drain(
        &mut self,
        now: Instant,
        force: bool,
        dir: &Path,
        name: &str,
        anchor: (Instant, SystemTime),
    ) -> Result<(), TrackError> {
        loop {
            let Some((&first, head)) = self.held.first_key_value() else {
                return Ok(());
            };
            let (head_rtp, head_arrival) = (head.rtp_time, head.arrival);
            let overdue = force
                || now.saturating_duration_since(head_arrival) >= REORDER_WAIT
                || self.held.len() > MAX_HELD;
            let next = *self.next_seq.get_or_insert(first);
            if first > next {
                // A hole before the oldest packet held: wait for its retransmission.
                if !overdue {
                    return Ok(());
                }
                self.lost(first);
                continue;
            }
            match self.codec {
                RecordedCodec::Opus => {
                    let Some(p) = self.held.remove(&first) else {
                        return Ok(());
                    };
                    self.next_seq = Some(first + 1);
                    let data = p.payload.to_vec();
                    self.write(&data, &p, true, dir, name, anchor)?;
                }
                RecordedCodec::Vp8 => {
                    let Some(end) = self.frame_end(first) else {
                        // Incomplete: wait for the rest, or give the frame up.
                        if !overdue {
                            return Ok(());
                        }
                        let mut s = first;
                        while self
                            .held
                            .get(&(s + 1))
                            .is_some_and(|p| p.rtp_time == head_rtp)
                        {
                            s += 1;
                        }
                        for q in first..=s {
                            self.held.remove(&q);
                        }
                        self.lost(s + 1);
                        continue;
                    };
                    self.frame.clear();
                    let mut starts = false;
                    let mut bad = false;
                    let mut last = None;
                    for q in first..=end {
                        let Some(p) = self.held.remove(&q) else {
                            bad = true;
                            continue;
                        };
                        match vp8::descriptor(&p.payload) {
                            Some((skip, start)) => {
                                if q == first {
                                    starts = start;
                                }
                                self.frame.extend_from_slice(&p.payload[skip..]);
                            }
                            None => bad = true,
                        }
                        last = Some(p);
                    }
                    self.next_seq = Some(end + 1);
                    let Some(p) = last else { continue };
                    if bad || !starts {
                        // The middle of a frame whose start was given up, or garbage.
                        self.lost(end + 1);
                        continue;
                    }
                    let frame = std::mem::take(&mut self.frame);
                    let key = vp8::is_keyframe(&frame);
                    let r = self.write(&frame, &p, key, dir, name, anchor);
                    self.frame = frame;
                    r?;
                }
            }
        }
    }

    /// The last sequence number of the frame starting at `first`, if all its packets
    /// are held: up to the marker bit, or the packet before one of another frame.
    fn frame_end(&self, first: u64) -> Option<u64> {
        let ts = self.held.get(&first)?.rtp_time;
        let mut s = first;
        loop {
            let p = self.held.get(&s)?;
            if p.rtp_time != ts {
                return Some(s - 1);
            }
            if p.marker {
                return Some(s);
            }
            s += 1;
        }
    }

    /// A frame is lost for good; go on at `resume`.
    fn lost(&mut self, resume: u64) {
        self.next_seq = Some(resume);
        if self.out.is_some() || self.first_arrival.is_some() {
            self.frames_lost += 1;
        }
        if self.codec == RecordedCodec::Vp8 && !self.waiting_keyframe {
            self.waiting_keyframe = true;
            self.wants_keyframe = true;
        }
    }

    fn write(
        &mut self,
        data: &[u8],
        p: &RecordedPacket,
        key: bool,
        dir: &Path,
        name: &str,
        anchor: (Instant, SystemTime),
    ) -> Result<(), TrackError> {
        if self.waiting_keyframe {
            if !key {
                return Ok(());
            }
            self.waiting_keyframe = false;
        }
        if data.is_empty() {
            return Ok(());
        }
        if self.codec == RecordedCodec::Vp8
            && key
            && let Some(size) = vp8::keyframe_size(data)
        {
            self.size = Some(size);
        }
        if self.out.is_none() {
            self.out = Some(self.open(&dir.join(name))?);
            self.first_arrival = Some(p.arrival);
            self.first_rtp = p.rtp_time;
            self.base_rtp = p.rtp_time;
            self.last_rtp = p.rtp_time;
        }
        let ns = self.timestamp(p);
        if let Some(sc) = self.sender {
            let sent = unix_ms(sc.ntp)
                + (p.rtp_time as f64 - sc.rtp_time as f64) * 1000.0 / f64::from(self.clock_rate);
            let arrived = unix_ms(anchor.1)
                + p.arrival.saturating_duration_since(anchor.0).as_secs_f64() * 1000.0;
            let offset = arrived - sent;
            self.min_offset_ms = Some(self.min_offset_ms.map_or(offset, |m| m.min(offset)));
        }
        let Some(out) = self.out.as_mut() else {
            return Ok(());
        };
        if out.segment.add_frame(out.track, data, ns, key).is_err() {
            return Err(match out.file.error() {
                Some(kind) => TrackError::from_io(kind),
                None => TrackError::Mux("add_frame".into()),
            });
        }
        out.file
            .flush()
            .map_err(|e| TrackError::from_io(e.kind()))?;
        self.frames += 1;
        self.last_ns = ns;
        self.last_rtp = p.rtp_time;
        self.last_arrival = Some(p.arrival);
        Ok(())
    }

    /// The frame's time in the file: its RTP time since the first frame, except across
    /// a jump (a restarted sender, a long pause), where the arrival time bridges.
    fn timestamp(&mut self, p: &RecordedPacket) -> u64 {
        let rate = u64::from(self.clock_rate);
        let jump = p.rtp_time < self.last_rtp || p.rtp_time - self.last_rtp > MAX_JUMP_SECS * rate;
        if jump {
            let gap = self
                .last_arrival
                .map_or(Duration::ZERO, |a| p.arrival.saturating_duration_since(a));
            self.base_ns = self.last_ns + (gap.as_nanos() as u64).max(1_000_000);
            self.base_rtp = p.rtp_time;
        }
        let ns = self.base_ns
            + ((p.rtp_time - self.base_rtp) as u128 * 1_000_000_000 / u128::from(rate)) as u64;
        // WebM keeps milliseconds: two frames within one (a sender that stamped two
        // frames alike) would share a timestamp, which players and ffmpeg refuse as
        // non-monotonic. The later one moves to the next millisecond.
        if self.frames > 0 {
            ns.max(self.last_ns + 1_000_000)
        } else {
            ns
        }
    }

    fn open(&mut self, path: &Path) -> Result<Out, TrackError> {
        let file = File::create_new(path).map_err(|e| TrackError::from_io(e.kind()))?;
        let file = SharedFile::new(file);
        let mux = |e: webm::mux::Error| TrackError::Mux(e.to_string());
        let builder = SegmentBuilder::new(Writer::new(file.clone()))
            .map_err(mux)?
            .set_mode(SegmentMode::File)
            .map_err(mux)?
            .set_writing_app("meeting-service")
            .map_err(mux)?;
        let (segment, track) = match self.codec {
            RecordedCodec::Vp8 => {
                let (w, h) = self.size.unwrap_or((640, 480));
                let (b, t) = builder
                    .add_video_track(w, h, VideoCodecId::VP8, None)
                    .map_err(mux)?;
                (b.build(), t.into())
            }
            RecordedCodec::Opus => {
                let (b, t) = builder
                    .add_audio_track(48_000, 2, AudioCodecId::Opus, None)
                    .map_err(mux)?;
                let b = b.set_codec_private(t, &opus_head()).map_err(mux)?;
                (b.build(), t.into())
            }
        };
        Ok(Out {
            segment,
            track,
            file,
        })
    }

    /// Write what is left and close the file (its cues and duration); `None` if no
    /// frame was ever written (no file exists then).
    pub fn finish(
        mut self,
        dir: &Path,
        name: &str,
        anchor: (Instant, SystemTime),
    ) -> (Self, Result<(), TrackError>) {
        let drained = self.drain(Instant::now(), true, dir, name, anchor);
        let Some(out) = self.out.take() else {
            return (self, drained);
        };
        let mut file = out.file.clone();
        let closed = match out.segment.finalize(None) {
            Ok(_) => file.flush().map_err(|e| TrackError::from_io(e.kind())),
            Err(_) => Err(match file.error() {
                Some(kind) => TrackError::from_io(kind),
                None => TrackError::Mux("finalize".into()),
            }),
        };
        (self, drained.and(closed))
    }
}

/// Opus's identification header (RFC 7845, 5.1), which WebM carries as the track's
/// CodecPrivate: version 1, 2 channels, no pre-skip, 48 kHz, no gain, mapping family 0.
fn opus_head() -> Vec<u8> {
    let mut h = b"OpusHead".to_vec();
    h.push(1);
    h.push(2);
    h.extend_from_slice(&0u16.to_le_bytes());
    h.extend_from_slice(&48_000u32.to_le_bytes());
    h.extend_from_slice(&0i16.to_le_bytes());
    h.push(0);
    h
}
