//! The per-packet path: an incoming RTP packet to every subscriber's `write_rtp`, and
//! keyframe requests back to publishers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::format::Codec;
use str0m::media::{KeyframeRequest, KeyframeRequestKind, MediaKind, Mid, Rid};
use str0m::rtp::{ExtensionValues, RtpPacket, RtpWrite, Vp8Descriptor};

use super::record::{self, Tapped};
use super::{Engine, Output};
use crate::allocate::vp8_keyframe_size;
use crate::api::{RoomId, SfuEvent, TrackSource};
use crate::forward::{LayerStat, Rewriter, choose_layer, gallery_skip, vp8_header_at};
use crate::model::{Grant, Key, KeyframeState, SubState, Subscription};
use crate::vp8_numbering::{Vp8Fields, Vp8Numbering};

/// How far back a subscriber's NACK can reach: str0m keeps a copy of every video packet
/// it sent to each subscriber (its RTX cache), 3 s and up to 2 000 packets by default. That
/// copy is per subscriber and stream, so a meeting's memory grows with the square of its
/// size: a 50-person meeting held about 4 MiB per participant in these caches (issue #12).
/// One second still answers a NACK over a 300 ms round trip three times over; a packet
/// older than that would arrive after the receiver's jitter buffer gave up on it (mediasoup
/// keeps 1 s for audio, LiveKit a few hundred packets). The packet cap covers 1 s of a
/// 4 Mbit/s screen share in full-size packets.
pub(crate) const RTX_HISTORY: Duration = Duration::from_secs(1);
pub(crate) const RTX_PACKETS: usize = 512;
/// str0m's default (not exported): queued resends are dropped while they exceed 15 % of
/// what the stream sends.
const RTX_RATIO_CAP: Option<f32> = Some(0.15);

impl Engine {
    pub(super) fn on_rtp(&mut self, key: Key, pkt: RtpPacket, now: Instant) {
        self.stats.rtp_received += 1;
        self.stats.rtp_bytes_received += pkt.payload.len() as u64;
        let Some(p) = self.participants.get_mut(&key) else {
            return;
        };
        let ssrc = pkt.header.ssrc;
        let (mid, rid) = match p.ssrc_cache.get(&ssrc) {
            Some(v) => *v,
            None => {
                let mut api = p.rtc.direct_api();
                let Some(rx) = api.stream_rx(&ssrc) else {
                    return;
                };
                let v = (rx.mid(), rx.rid());
                p.ssrc_cache.insert(ssrc, v);
                v
            }
        };
        let pt = pkt.header.payload_type;
        let cached = p
            .publications
            .iter()
            .find(|x| x.mid == mid)
            .and_then(|x| x.pt_codec);
        let codec = match cached {
            Some((cpt, c)) if cpt == pt => Some(c),
            _ => p
                .rtc
                .codec_config()
                .find(|c| c.pt() == pt)
                .map(|c| c.spec().codec),
        };
        let room = p.room.clone();
        let pid = p.id.clone();
        let (skip, reduced) = self.rooms.get(&room).map_or((0, false), |r| {
            (gallery_skip(r.cameras), !r.reduced.is_empty())
        });
        let Some(publ) = p.publications.iter_mut().find(|x| x.mid == mid) else {
            return;
        };
        let Some(codec) = codec else { return };
        publ.pt_codec = Some((pt, codec));
        // VP8: where a keyframe's header starts (`None`: not the start of a keyframe),
        // and the payload descriptor.
        let vp8 = (codec == Codec::Vp8).then(|| {
            let key_at = vp8_header_at(&pkt.payload).filter(|&i| pkt.payload[i] & 0x01 == 0);
            (key_at, Vp8Descriptor::parse(&pkt.payload).ok())
        });
        let layer = match publ.layers.iter().position(|l| l.rid == rid) {
            Some(i) => &mut publ.layers[i],
            None => {
                publ.layers.push(LayerStat::new(rid, now));
                let last = publ.layers.len() - 1;
                &mut publ.layers[last]
            }
        };
        layer.record(pkt.payload.len(), now);
        if let Some((Some(at), _)) = vp8
            && let Some((_, h)) = vp8_keyframe_size(&pkt.payload, at)
        {
            layer.height = Some(h);
        }
        let first_packet = !publ.receiving;
        publ.receiving = true;
        if first_packet && publ.auto_publish && !publ.published {
            // Media starts: offer it to the others now. Their m-lines are only to be
            // negotiated, so there is nobody to forward this packet to yet.
            self.publish_on_media(key, mid);
            return;
        }
        if publ.published && !publ.announced {
            publ.announced = true;
            let source = publ.source;
            self.outputs
                .push_back(Output::Event(SfuEvent::PublicationAdded {
                    room: room.clone(),
                    participant: pid.clone(),
                    source,
                }));
        }
        if !publ.published || publ.muted {
            return;
        }
        let simulcast = publ.layers.len() > 1 || rid.is_some();
        let target = if simulcast {
            choose_layer(&publ.layers, publ.target.as_ref(), now, skip)
        } else {
            None
        };
        publ.target = target;
        // Subscribers that asked for less (`set_receive_quality`): the layers at least one
        // and two below the best, each with its own hysteresis. Only in rooms that have
        // such a subscriber; elsewhere this costs the `reduced` test above.
        if simulcast && reduced {
            for (i, chosen) in publ.reduced_targets.iter_mut().enumerate() {
                *chosen = choose_layer(&publ.layers, chosen.as_ref(), now, skip.max(i + 1));
            }
        }
        let reduced_targets = publ.reduced_targets;
        let kind = publ.kind;
        let is_microphone = publ.source == TrackSource::Microphone;
        let is_keyframe = match vp8 {
            Some((key_at, _)) => key_at.is_some(),
            None => true,
        };
        // The descriptor of a VP8 packet and its numbering fields, once for all
        // subscribers.
        let vp8 = vp8.and_then(|(_, d)| d).map(|d| (d, Vp8Fields::of(&d)));

        let mut want_keyframe: Option<Option<Rid>> = None;
        if let Some(rec) = self.rooms.get(&room).and_then(|r| r.recording.as_ref()) {
            let tapped = Tapped {
                participant: &pid,
                codec,
                rid,
                simulcast,
                is_keyframe,
                pkt: &pkt,
                now,
            };
            want_keyframe = record::tap(rec, publ, tapped);
        }

        let in_ext = &pkt.header.ext_vals;
        if is_microphone
            && let Some(level) = in_ext.audio_level
            && let Some(r) = self.rooms.get_mut(&room)
        {
            // RFC 6464: 0 to -127 dBov; the detector takes its magnitude.
            r.speakers
                .observe(key, (-i16::from(level)).clamp(0, 127) as u8, now);
        }
        // `None`: nothing to carry over, and `RtpWrite` keeps its default (setting it
        // copies the large `ExtensionValues` once more per subscriber).
        let ext = (in_ext.audio_level.is_some()
            || in_ext.voice_activity.is_some()
            || in_ext.video_orientation.is_some())
        .then(|| ExtensionValues {
            audio_level: in_ext.audio_level,
            voice_activity: in_ext.voice_activity,
            video_orientation: in_ext.video_orientation,
            ..Default::default()
        });
        let payload: Arc<[u8]> = pkt.payload;
        let in_seq = *pkt.seq_no;
        let in_ts = pkt.header.timestamp;
        let marker = pkt.header.marker;

        let Some(r) = self.rooms.get(&room) else {
            return;
        };
        let mut subscribers = 0u32;
        for &sk in &r.members {
            if sk == key {
                continue;
            }
            let Some(s) = self.participants.get_mut(&sk) else {
                continue;
            };
            // At most one open subscription per publication (a publication published
            // again gets a new one only while the old one is being stopped): the first
            // match ends the search, and every `continue` below skips this subscriber.
            let Some(sub) = s.subscriptions.iter_mut().find(|sub| {
                sub.publisher == key
                    && sub.source_mid == mid
                    && matches!(sub.state, SubState::Open(_))
            }) else {
                continue;
            };
            let SubState::Open(out_mid) = sub.state else {
                continue;
            };
            subscribers += 1;
            let asked = if reduced {
                r.reduced.iter().find(|&&(k, _)| k == sk)
            } else {
                None
            };
            let wanted_layer = match (sub.grant, asked) {
                (Grant::Paused, _) => {
                    // Hidden tile, or no room on its downlink: resume on a keyframe.
                    sub.needs_keyframe = true;
                    self.stats.dropped_layer_gate += 1;
                    continue;
                }
                (Grant::Layer(layer), _) if simulcast => layer,
                (Grant::Room, Some(&(_, min_skip))) if simulcast && min_skip > skip => {
                    reduced_targets[min_skip.min(2) - 1]
                }
                _ if simulcast => target,
                _ => rid,
            };
            if sub.layer != rid || sub.needs_keyframe {
                // Not forwarding this stream yet: start on a keyframe of the wanted layer.
                if rid != wanted_layer {
                    continue;
                }
                if !is_keyframe {
                    want_keyframe = Some(rid);
                    self.stats.dropped_layer_gate += 1;
                    continue;
                }
                sub.layer = rid;
                sub.needs_keyframe = false;
                sub.rewriter.rebase();
                if let Some((_, fields)) = &vp8 {
                    sub.vp8.rebase(*fields);
                }
            } else if wanted_layer != rid {
                // Keep this layer until the wanted one has a keyframe.
                want_keyframe = Some(wanted_layer);
            }
            let Some((seq, ts)) = sub.rewriter.rewrite(in_seq, in_ts, now, clock_rate(kind)) else {
                continue;
            };
            let out_pt = match sub.out_pt {
                Some((c, pt)) if c == codec => pt,
                _ => {
                    let Some(pt) = s
                        .rtc
                        .codec_config()
                        .find(|c| c.spec().codec == codec)
                        .map(|c| c.pt())
                    else {
                        continue;
                    };
                    sub.out_pt = Some((codec, pt));
                    pt
                }
            };
            let mut api = s.rtc.direct_api();
            if sub.out_ssrc.is_none() {
                sub.out_ssrc = api.stream_tx_by_mid(out_mid, None).map(|tx| {
                    if kind == MediaKind::Video {
                        tx.set_rtx_cache(RTX_PACKETS, RTX_HISTORY, RTX_RATIO_CAP);
                    }
                    tx.ssrc()
                });
            }
            let Some(tx) = sub.out_ssrc.and_then(|ssrc| api.stream_tx(&ssrc)) else {
                // Gone or renumbered: look it up by mid again next time.
                sub.out_ssrc = None;
                continue;
            };
            let mut write = RtpWrite::new(out_pt, seq.into(), ts, now, payload.clone())
                .marker(marker)
                .nackable(kind == MediaKind::Video);
            if let Some(ext) = &ext {
                write = write.ext_vals(ext.clone());
            }
            if let Some((d, fields)) = &vp8 {
                let out = sub.vp8.map(*fields);
                // Until the first switch the numbers go out as they came (no patch).
                if !sub.vp8.is_identity()
                    && let Some(patch) = Vp8Numbering::patch(d, out)
                {
                    write = write.vp8_patch(patch);
                }
            }
            tx.write_rtp(write);
            self.stats.rtp_forwarded += 1;
            self.stats.rtp_bytes_forwarded += payload.len() as u64;
            // Not polled now: str0m sends written packets only after its next
            // `Input::Timeout` (its send queue is snapshotted there), so a poll here
            // would only say "wake me" — at about 1 300 instructions, that was a
            // tenth of the cost per forwarded packet. Due instead: `handle_timeout`
            // feeds it at most 1 ms after its last input, together with everything
            // else written to it meanwhile (see `Engine::poll_timeout`).
            s.next_timeout = s.next_timeout.min(s.last_fed);
        }
        if subscribers == 0 {
            self.stats.dropped_no_subscriber += 1;
        }
        if let Some(rid) = want_keyframe {
            self.request_keyframe(key, mid, rid, now);
        }
    }

    /// A subscriber lost a picture: ask the publisher of that m-line for a keyframe.
    pub(super) fn on_keyframe_request(&mut self, key: Key, req: KeyframeRequest, now: Instant) {
        self.stats.plis_received += 1;
        let Some(p) = self.participants.get(&key) else {
            return;
        };
        let Some(sub) = p
            .subscriptions
            .iter()
            .find(|s| matches!(s.state, SubState::Open(m) if m == req.mid))
        else {
            return;
        };
        let (publisher, mid, layer) = (sub.publisher, sub.source_mid, sub.layer);
        self.request_keyframe(publisher, mid, layer, now);
    }

    /// Ask publisher `key` for a keyframe of its video `mid` in the layer its subscribers
    /// are being switched to (its current target), as [`Self::request_keyframe`] does.
    pub(super) fn request_target_keyframe(&mut self, key: Key, mid: Mid, now: Instant) {
        let rid = self
            .participants
            .get(&key)
            .and_then(|p| p.publications.iter().find(|x| x.mid == mid))
            .and_then(|x| x.target);
        self.request_keyframe(key, mid, rid, now);
    }

    /// Send a PLI for `(mid, rid)` of `key`, at most once per `keyframe_interval`;
    /// a request inside the interval is sent when it ends.
    pub(super) fn request_keyframe(&mut self, key: Key, mid: Mid, rid: Option<Rid>, now: Instant) {
        let interval = self.cfg.keyframe_interval;
        let Some(p) = self.participants.get_mut(&key) else {
            return;
        };
        let Some(publ) = p.publications.iter_mut().find(|x| x.mid == mid) else {
            return;
        };
        if publ.kind != MediaKind::Video {
            return;
        }
        match publ.keyframe.iter_mut().find(|k| k.rid == rid) {
            Some(k) if now < k.last_sent + interval => {
                k.pending = true;
                return;
            }
            Some(k) => {
                k.last_sent = now;
                k.pending = false;
            }
            None => publ.keyframe.push(KeyframeState {
                rid,
                last_sent: now,
                pending: false,
            }),
        }
        let mut api = p.rtc.direct_api();
        let Some(rx) = api.stream_rx_by_mid(mid, rid) else {
            // Nothing received on that layer yet: nobody to ask.
            return;
        };
        rx.request_keyframe(KeyframeRequestKind::Pli);
        self.stats.keyframe_requests += 1;
        if !p.dirty {
            p.dirty = true;
            self.dirty.push(key);
        }
    }

    pub(super) fn for_each_subscription(
        &mut self,
        room: &RoomId,
        publisher: Key,
        mid: Mid,
        mut f: impl FnMut(&mut Subscription),
    ) {
        let Some(r) = self.rooms.get(room) else {
            return;
        };
        for k in &r.members {
            if let Some(o) = self.participants.get_mut(k) {
                for s in o
                    .subscriptions
                    .iter_mut()
                    .filter(|s| s.publisher == publisher && s.source_mid == mid)
                {
                    f(s);
                }
            }
        }
    }
}

pub(super) fn new_rewriter() -> Rewriter {
    Rewriter::new(rand::random::<u16>() & 0x3fff, rand::random())
}

pub(super) fn clock_rate(kind: MediaKind) -> u32 {
    match kind {
        MediaKind::Audio => 48_000,
        MediaKind::Video => 90_000,
    }
}
