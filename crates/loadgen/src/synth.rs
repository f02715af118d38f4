//! Synthetic media: Opus-sized audio packets every 20 ms and VP8 frames with valid
//! payload descriptors (RFC 7741), so that an SFU's keyframe detection and picture-id
//! handling see what a browser would send.
//!
//! Every payload ends with a 17-byte stamp: `MLT2`, the send time in nanoseconds since
//! the process's clock epoch, the publishing participant and which of its streams this
//! is (audio, or which video layer). The tail survives any rewriting of the VP8
//! descriptor at the front; one process both sends and receives, so one clock serves
//! both ends of the latency measurement, and a subscriber can tell which layer of which
//! publisher the SFU forwarded (it rewrites SSRCs, so the header cannot say).

use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const STAMP_LEN: usize = 17;
const STAMP_MAGIC: &[u8; 4] = b"MLT2";
/// RTP payload budget per packet; with headers and SRTP this stays under 1200 bytes.
pub const MAX_PAYLOAD: usize = 1100;

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Nanoseconds of `t` since the process's epoch (the first call).
pub fn clock_nanos(t: Instant) -> u64 {
    let epoch = *EPOCH.get_or_init(Instant::now);
    t.saturating_duration_since(epoch).as_nanos() as u64
}

/// Which stream of its publisher a payload belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StreamTag {
    Audio,
    /// Video sent without simulcast.
    Video,
    /// Simulcast layer `n` (0 = the lowest, as in `peer::SIMULCAST_LAYERS`).
    Layer(u8),
}

impl StreamTag {
    fn to_byte(self) -> u8 {
        match self {
            StreamTag::Audio => 0,
            StreamTag::Video => 1,
            StreamTag::Layer(n) => 2u8.saturating_add(n),
        }
    }

    fn from_byte(b: u8) -> StreamTag {
        match b {
            0 => StreamTag::Audio,
            1 => StreamTag::Video,
            n => StreamTag::Layer(n - 2),
        }
    }
}

/// Who sent a payload of ours, which stream, and when.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    pub sent_ns: u64,
    /// The publisher's participant number in the run.
    pub publisher: u32,
    pub stream: StreamTag,
}

/// Who is writing payloads: the publisher and the stream (tail of every payload).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Origin {
    pub publisher: u32,
    pub stream: StreamTag,
}

fn put_stamp(buf: &mut Vec<u8>, origin: Origin, now: Instant) {
    buf.extend_from_slice(STAMP_MAGIC);
    buf.extend_from_slice(&clock_nanos(now).to_be_bytes());
    buf.extend_from_slice(&origin.publisher.to_be_bytes());
    buf.push(origin.stream.to_byte());
}

/// The stamp of a payload of ours, if it has one.
pub fn read_stamp(payload: &[u8]) -> Option<Stamp> {
    let tail = payload.get(payload.len().checked_sub(STAMP_LEN)?..)?;
    if &tail[..4] != STAMP_MAGIC {
        return None;
    }
    Some(Stamp {
        sent_ns: u64::from_be_bytes(tail[4..12].try_into().ok()?),
        publisher: u32::from_be_bytes(tail[12..16].try_into().ok()?),
        stream: StreamTag::from_byte(tail[16]),
    })
}

/// An Opus packet of `size` bytes: a TOC byte (SILK wideband 20 ms, one frame, as a
/// browser's voice packet) followed by filler and the stamp.
pub fn opus_packet(size: usize, publisher: u32, now: Instant) -> Vec<u8> {
    let size = size.max(1 + STAMP_LEN);
    let mut p = Vec::with_capacity(size);
    p.push(0x48);
    p.resize(size - STAMP_LEN, 0xa5);
    let origin = Origin {
        publisher,
        stream: StreamTag::Audio,
    };
    put_stamp(&mut p, origin, now);
    p
}

/// Bytes of the VP8 payload descriptor we write: X, I with a 15-bit picture id.
const VP8_DESCRIPTOR_LEN: usize = 4;

/// One VP8 frame cut into RTP payloads (the last one carries the marker bit).
pub fn vp8_frame(
    frame_bytes: usize,
    keyframe: bool,
    picture_id: u16,
    origin: Origin,
    now: Instant,
) -> Vec<Vec<u8>> {
    let per_packet = MAX_PAYLOAD - VP8_DESCRIPTOR_LEN - STAMP_LEN;
    let frame_bytes = frame_bytes.max(10);
    let packets = frame_bytes.div_ceil(per_packet);
    let mut out = Vec::with_capacity(packets);
    let mut left = frame_bytes;
    for i in 0..packets {
        let chunk = left.min(per_packet);
        left -= chunk;
        let mut p = Vec::with_capacity(VP8_DESCRIPTOR_LEN + chunk + STAMP_LEN);
        // X=1, N=0, S=1 on the first packet of the frame, PID=0.
        p.push(0x80 | if i == 0 { 0x10 } else { 0 });
        p.push(0x80); // I: a picture id follows
        p.push(0x80 | ((picture_id >> 8) as u8 & 0x7f)); // M: 15-bit id
        p.push(picture_id as u8);
        if i == 0 {
            // VP8 frame tag (RFC 6386 9.1): bit 0 is P (0 = key frame), bit 4 show_frame,
            // bits 5.. the first partition's size (some plausible value).
            let first_partition: u32 = 100;
            let tag = (if keyframe { 0 } else { 1 }) | (1 << 4) | (first_partition << 5);
            p.extend_from_slice(&[tag as u8, (tag >> 8) as u8, (tag >> 16) as u8]);
            if keyframe {
                // Start code and 640x360.
                p.extend_from_slice(&[0x9d, 0x01, 0x2a, 0x80, 0x02, 0x68, 0x01]);
            }
        }
        let target = VP8_DESCRIPTOR_LEN + chunk;
        if p.len() < target {
            p.resize(target, 0x5a);
        }
        put_stamp(&mut p, origin, now);
        out.push(p);
    }
    out
}

/// What a receiving SFU would conclude: is this payload the start of a VP8 key frame?
pub fn vp8_is_keyframe(payload: &[u8]) -> bool {
    let Some(&b0) = payload.first() else {
        return false;
    };
    let start = b0 & 0x10 != 0;
    let pid = b0 & 0x07;
    let mut i = 1;
    if b0 & 0x80 != 0 {
        let Some(&x) = payload.get(1) else {
            return false;
        };
        i = 2;
        if x & 0x80 != 0 {
            // I: 7- or 15-bit picture id.
            match payload.get(i) {
                Some(&m) if m & 0x80 != 0 => i += 2,
                Some(_) => i += 1,
                None => return false,
            }
        }
        if x & 0x40 != 0 {
            i += 1; // L: TL0PICIDX
        }
        if x & 0x30 != 0 {
            i += 1; // T/K: TID/KEYIDX
        }
    }
    start && pid == 0 && payload.get(i).is_some_and(|tag| tag & 0x01 == 0)
}

/// A video layer's sending schedule: frame size, key frames and picture ids.
#[derive(Clone, Debug)]
pub struct VideoSchedule {
    pub origin: Origin,
    pub bitrate_bps: u64,
    pub fps: u32,
    pub keyframe_interval: Duration,
    frames: u64,
    picture_id: u16,
    /// A receiver asked for a key frame (PLI/FIR): the next frame is one.
    keyframe_requested: bool,
}

impl VideoSchedule {
    pub fn new(origin: Origin, bitrate_bps: u64, fps: u32, keyframe_interval: Duration) -> Self {
        VideoSchedule {
            origin,
            bitrate_bps,
            fps: fps.max(1),
            keyframe_interval,
            frames: 0,
            picture_id: 0,
            keyframe_requested: false,
        }
    }

    pub fn frame_interval(&self) -> Duration {
        Duration::from_secs(1) / self.fps
    }

    /// The next frame's payloads and whether it is a key frame. Key frames are three
    /// times a delta frame, as real encoders make them, and the bitrate stays on target.
    pub fn next_frame(&mut self, now: Instant) -> (Vec<Vec<u8>>, bool) {
        let every = (self.keyframe_interval.as_secs_f64() * self.fps as f64)
            .round()
            .max(1.0) as u64;
        let keyframe =
            self.frames.is_multiple_of(every) || std::mem::take(&mut self.keyframe_requested);
        let avg = self.bitrate_bps as f64 / 8.0 / self.fps as f64;
        // Budget over a key-frame period: one frame of 3 units, every-1 of d units.
        let delta = avg * every as f64 / (every as f64 + 2.0);
        let size = if keyframe { delta * 3.0 } else { delta } as usize;
        let packets = vp8_frame(size, keyframe, self.picture_id & 0x7fff, self.origin, now);
        self.frames += 1;
        self.picture_id = self.picture_id.wrapping_add(1);
        (packets, keyframe)
    }

    pub fn request_keyframe(&mut self) {
        self.keyframe_requested = true;
    }

    /// RTP timestamp increment per frame on the 90 kHz clock.
    pub fn rtp_step(&self) -> u32 {
        90_000 / self.fps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Origin {
        Origin {
            publisher: 3,
            stream: StreamTag::Layer(2),
        }
    }

    #[test]
    fn stamps_round_trip_and_foreign_payloads_have_none() {
        let t = Instant::now();
        let p = opus_packet(80, 7, t);
        assert_eq!(p.len(), 80);
        assert_eq!(
            read_stamp(&p),
            Some(Stamp {
                sent_ns: clock_nanos(t),
                publisher: 7,
                stream: StreamTag::Audio
            })
        );
        let layer = vp8_frame(300, false, 1, origin(), t);
        assert_eq!(
            read_stamp(&layer[0]).map(|s| (s.publisher, s.stream)),
            Some((3, StreamTag::Layer(2)))
        );
        assert_eq!(read_stamp(&[1, 2, 3]), None);
        assert_eq!(read_stamp(&[0u8; 40]), None);
    }

    #[test]
    fn keyframes_are_detected_and_delta_frames_are_not() {
        let t = Instant::now();
        let key = vp8_frame(5000, true, 300, origin(), t);
        assert!(key.len() > 1);
        assert!(vp8_is_keyframe(&key[0]));
        // Only the first packet starts the partition.
        assert!(!vp8_is_keyframe(&key[1]));
        let delta = vp8_frame(500, false, 301, origin(), t);
        assert_eq!(delta.len(), 1);
        assert!(!vp8_is_keyframe(&delta[0]));
        assert!(
            key.iter()
                .all(|p| p.len() <= MAX_PAYLOAD && read_stamp(p).is_some())
        );
        // The picture id is 15 bits with the M flag.
        assert_eq!(((key[0][2] & 0x7f) as u16) << 8 | key[0][3] as u16, 300);
        // Key frames carry the start code after the 3-byte tag.
        assert_eq!(&key[0][7..10], &[0x9d, 0x01, 0x2a]);
    }

    #[test]
    fn keyframe_detection_reads_other_descriptor_forms() {
        // No extension: S=1, PID=0, then a key-frame tag.
        assert!(vp8_is_keyframe(&[0x10, 0x00, 0x00, 0x00]));
        // X with I (7-bit id) and L.
        assert!(vp8_is_keyframe(&[0x90, 0xc0, 0x05, 0x01, 0x00]));
        assert!(!vp8_is_keyframe(&[0x90, 0xc0, 0x05, 0x01, 0x01]));
        // Truncated input is not a key frame (and does not panic).
        for n in 0..4 {
            assert!(!vp8_is_keyframe(&[0x90, 0xc0, 0x85, 0x01][..n]));
        }
    }

    #[test]
    fn schedule_hits_the_bitrate_and_keyframe_interval() {
        let mut s = VideoSchedule::new(origin(), 800_000, 25, Duration::from_secs(2));
        let t = Instant::now();
        let mut bytes = 0;
        let mut keys = 0;
        for _ in 0..100 {
            let (packets, key) = s.next_frame(t);
            keys += key as usize;
            bytes += packets.iter().map(|p| p.len()).sum::<usize>();
        }
        // 4 s of video: 2 key frames; 400 KB ± the per-packet overhead.
        assert_eq!(keys, 2);
        let expected = 800_000 / 8 * 4;
        assert!(
            bytes > expected * 95 / 100 && bytes < expected * 115 / 100,
            "{bytes}"
        );
        assert_eq!(s.rtp_step(), 3600);
        assert!(s.next_frame(t).1, "frame 100 is a scheduled key frame");
        assert!(!s.next_frame(t).1);
        s.request_keyframe();
        assert!(s.next_frame(t).1);
        assert!(!s.next_frame(t).1);
    }
}
