//! Recording's part of the per-packet path: a recorded room's packets are handed to its
//! [`RecordTap`] (a bounded queue to the recorder's thread: a full queue drops and
//! counts, the worker never waits, and no file is touched here), each video track from
//! a keyframe of its highest simulcast layer, asking the publisher for one when the
//! recording starts, when a track appears, and when the recorder lost a frame. A switch
//! to another layer continues the recorded stream's numbers and clock
//! ([`crate::forward::RecordSplice`]), so that the recorder sees one stream.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use str0m::format::Codec;
use str0m::media::{MediaKind, Rid};
use str0m::rtp::RtpPacket;

use super::Engine;
use crate::api::{ParticipantId, RecordTap, RecordedCodec, RecordedPacket, RoomId, SenderClock};
use crate::forward::choose_layer;
use crate::model::{Publication, RecordState, RoomRecording};

impl Engine {
    /// Start (`Some`) or stop (`None`) recording `room` on this worker. A room not (or no
    /// longer) on this worker gets its tap with its next join (`Sfu::join`).
    pub fn set_recording(&mut self, room: &RoomId, tap: Option<RecordTap>) {
        self.record_epoch += 1;
        let epoch = self.record_epoch;
        if let Some(r) = self.rooms.get_mut(room) {
            r.recording = tap.map(|tap| RoomRecording { tap, epoch });
        }
    }

    /// A room opened (or joined) while it is recorded: record it here too, unless it
    /// already is (a join must not restart a running recording's keyframe requests).
    pub fn adopt_recording(&mut self, room: &RoomId, tap: RecordTap) {
        if self.rooms.get(room).is_some_and(|r| r.recording.is_none()) {
            self.set_recording(room, Some(tap));
        }
    }

    /// Whether `room` is being recorded on this worker (tests, diagnostics).
    pub fn is_recording(&self, room: &RoomId) -> bool {
        self.rooms.get(room).is_some_and(|r| r.recording.is_some())
    }
}

/// What [`tap`] needs of the packet being forwarded.
pub(super) struct Tapped<'a> {
    pub participant: &'a ParticipantId,
    pub codec: Codec,
    pub rid: Option<Rid>,
    pub simulcast: bool,
    pub is_keyframe: bool,
    pub pkt: &'a RtpPacket,
    pub now: Instant,
}

/// Hand one packet of `publ` to the room's recording. Returns the layer to ask a
/// keyframe of, if one is needed (the caller's `request_keyframe` rate-limits it).
pub(super) fn tap(
    rec: &RoomRecording,
    publ: &mut Publication,
    t: Tapped<'_>,
) -> Option<Option<Rid>> {
    let codec = match t.codec {
        Codec::Opus => RecordedCodec::Opus,
        Codec::Vp8 => RecordedCodec::Vp8,
        _ => return None,
    };
    let video = publ.kind == MediaKind::Video;
    let clock_rate = super::forwarding::clock_rate(publ.kind);
    let layer = if t.simulcast {
        choose_layer(&publ.layers, publ.record.layer.as_ref(), t.now, 0)
    } else {
        t.rid
    };
    let st = &mut publ.record;
    if st.epoch != rec.epoch {
        *st = RecordState {
            epoch: rec.epoch,
            requests_seen: rec.tap.stats.keyframe_requests.load(Relaxed),
            ..RecordState::default()
        };
    }
    let mut want = None;
    if video {
        let requests = rec.tap.stats.keyframe_requests.load(Relaxed);
        if requests != st.requests_seen {
            st.requests_seen = requests;
            want = Some(layer);
        }
        if !st.started || st.layer != t.rid {
            // Not recording this stream yet: start on a keyframe of the layer wanted.
            if t.rid != layer {
                return want;
            }
            if !t.is_keyframe {
                return Some(t.rid);
            }
            st.started = true;
            st.layer = t.rid;
            st.splice
                .start_layer(*t.pkt.seq_no, t.pkt.time.numer(), t.now, clock_rate);
        } else if layer != t.rid {
            // Keep this layer until the wanted one has a keyframe.
            want = Some(layer);
        }
    }
    let pkt = t.pkt;
    let in_ts = pkt.time.numer();
    let (seq, rtp_time) = if video {
        // The recorded layers as one stream: a switch continues it (`RecordSplice`).
        match st.splice.map(*pkt.seq_no, in_ts, t.now, clock_rate) {
            Some(mapped) => mapped,
            None => return want,
        }
    } else {
        (*pkt.seq_no, in_ts)
    };
    let sender_clock = pkt.last_sender_info.map(|si| {
        // The report's RTP time is 32 bits: extend it next to this packet's.
        let delta = (in_ts as u32).wrapping_sub(si.rtp_time.numer() as u32) as i32;
        SenderClock {
            ntp: si.ntp_time,
            rtp_time: rtp_time.saturating_add_signed(-i64::from(delta)),
        }
    });
    rec.tap.offer(RecordedPacket {
        participant: t.participant.clone(),
        source: publ.source,
        codec,
        seq,
        rtp_time,
        clock_rate,
        marker: pkt.header.marker,
        keyframe_start: !video || t.is_keyframe,
        payload: pkt.payload.clone(),
        arrival: t.now,
        sender_clock,
    });
    want
}
