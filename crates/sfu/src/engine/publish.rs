//! Publications and negotiation: which m-lines each participant should receive, and
//! the offers that bring its connection there.

use str0m::media::{Direction, MediaAdded, MediaKind, Mid};
use tracing::{debug, warn};

use super::Engine;
use super::forwarding::new_rewriter;
use crate::api::{MidSource, ParticipantId, SfuEvent, TrackSource};
use crate::model::{Grant, Key, Participant, PendingOffer, Publication, SubState, Subscription};
use crate::vp8_numbering::Vp8Numbering;

impl Engine {
    pub(super) fn on_media_added(&mut self, key: Key, m: MediaAdded) {
        if matches!(m.direction, Direction::RecvOnly | Direction::SendRecv) {
            self.add_publication(key, m.mid, m.kind, false);
        }
    }

    /// A client m-line that sends to us. Called from the offer's SDP and again from
    /// str0m's `MediaAdded` (a no-op then). Mic and camera are published (offered to the
    /// others) when the participant's media starts (`publish_on_media`), not here: the
    /// m-line may never carry anything.
    pub(super) fn add_publication(&mut self, key: Key, mid: Mid, kind: MediaKind, has_track: bool) {
        let m = MediaAdded {
            mid,
            kind,
            direction: Direction::RecvOnly,
            simulcast: None,
        };
        let Some(p) = self.participants.get_mut(&key) else {
            return;
        };
        if p.publications.iter().any(|x| x.mid == m.mid)
            || p.subscriptions.iter().any(
                |s| matches!(s.state, SubState::Negotiating(x) | SubState::Open(x) if x == m.mid),
            )
        {
            return;
        }
        let hinted = p
            .source_hints
            .iter()
            .find(|(mid, _)| *mid == m.mid)
            .map(|(_, s)| *s);
        let same_kind = p.publications.iter().filter(|x| x.kind == m.kind).count();
        let source = hinted.or(match (m.kind, same_kind) {
            (MediaKind::Audio, 0) => Some(TrackSource::Microphone),
            (MediaKind::Audio, 1) => Some(TrackSource::ScreenShareAudio),
            (MediaKind::Video, 0) => Some(TrackSource::Camera),
            (MediaKind::Video, 1) => Some(TrackSource::ScreenShare),
            _ => None,
        });
        let Some(source) = source else {
            debug!(participant = %p.id, mid = %m.mid, "extra m-line ignored");
            return;
        };
        if p.publications.iter().any(|x| x.source == source) {
            debug!(participant = %p.id, mid = %m.mid, ?source, "second m-line for a source ignored");
            return;
        }
        let publish = p
            .publishing_overrides
            .iter()
            .find(|(s, _)| *s == source)
            .map(|(_, on)| *on)
            .unwrap_or(matches!(
                source,
                TrackSource::Microphone | TrackSource::Camera
            ));
        p.publications.push(Publication {
            mid: m.mid,
            kind: m.kind,
            source,
            published: false,
            auto_publish: publish,
            has_track,
            muted: false,
            receiving: false,
            announced: false,
            pt_codec: None,
            layers: Vec::new(),
            target: None,
            reduced_targets: [None; 2],
            keyframe: Vec::new(),
            record: Default::default(),
        });
    }

    /// The first packet of publication `mid` of `key` arrived: publish it if it is to be
    /// published by default, together with the participant's other such m-lines that
    /// carry a track (mic and camera of one `getUserMedia` stream: one offer per
    /// subscriber, not one per track). An m-line without a track (camera off) waits
    /// for its own first packet; a viewer that sends nothing is never offered to anyone.
    pub(super) fn publish_on_media(&mut self, key: Key, mid: Mid) {
        let Some(p) = self.participants.get(&key) else {
            return;
        };
        let mids: Vec<Mid> = p
            .publications
            .iter()
            .filter(|x| x.auto_publish && !x.published && (x.mid == mid || x.has_track))
            .map(|x| x.mid)
            .collect();
        for m in mids {
            self.publish(key, m);
        }
    }

    /// Count each room's published cameras (its gallery size). Run when publications
    /// may have changed, not per packet: it visits every participant.
    pub(super) fn count_cameras(&mut self) {
        for room in self.rooms.values_mut() {
            room.cameras = room
                .members
                .iter()
                .filter_map(|k| self.participants.get(k))
                .map(|p| {
                    p.publications
                        .iter()
                        .filter(|x| x.published && x.source == TrackSource::Camera)
                        .count()
                })
                .sum();
        }
    }

    /// Offer publication `mid` of `key` to every other member of its room.
    pub(super) fn publish(&mut self, key: Key, mid: Mid) {
        self.negotiation_due = true;
        let Some(p) = self.participants.get_mut(&key) else {
            return;
        };
        let Some(publ) = p.publications.iter_mut().find(|x| x.mid == mid) else {
            return;
        };
        publ.published = true;
        let announce = publ.receiving && !publ.announced;
        publ.announced |= announce;
        let (kind, source) = (publ.kind, publ.source);
        let (pid, room) = (p.id.clone(), p.room.clone());
        if announce {
            self.emit(SfuEvent::PublicationAdded {
                room: room.clone(),
                participant: pid.clone(),
                source,
            });
        }
        let Some(r) = self.rooms.get(&room) else {
            return;
        };
        for &other in r.members.iter().filter(|&&k| k != key) {
            let Some(o) = self.participants.get_mut(&other) else {
                continue;
            };
            let exists = o.subscriptions.iter().any(|s| {
                s.publisher == key
                    && s.source_mid == mid
                    && !matches!(s.state, SubState::ToStop(_) | SubState::NegotiatingStop(_))
            });
            if !exists {
                o.subscriptions
                    .push(new_subscription(key, pid.clone(), mid, kind, source));
                o.renegotiate = true;
            }
        }
    }

    /// Stop offering publication `mid` of `key`: the subscribers' m-lines go away.
    pub(super) fn unpublish(&mut self, key: Key, mid: Mid) {
        self.negotiation_due = true;
        let Some(p) = self.participants.get_mut(&key) else {
            return;
        };
        let Some(publ) = p.publications.iter_mut().find(|x| x.mid == mid) else {
            return;
        };
        publ.published = false;
        let was_announced = std::mem::take(&mut publ.announced);
        let source = publ.source;
        let (pid, room) = (p.id.clone(), p.room.clone());
        if was_announced {
            self.emit(SfuEvent::PublicationRemoved {
                room: room.clone(),
                participant: pid,
                source,
            });
        }
        let Some(r) = self.rooms.get(&room) else {
            return;
        };
        for &other in r.members.iter().filter(|&&k| k != key) {
            if let Some(o) = self.participants.get_mut(&other) {
                stop_subscriptions(o, |s| s.publisher == key && s.source_mid == mid);
            }
        }
    }

    /// Make an offer to every participant whose subscriptions changed and who has none
    /// pending (one offer in flight per participant; the rest waits for its answer).
    pub(super) fn negotiate_all(&mut self) {
        let keys: Vec<Key> = self
            .participants
            .iter()
            .filter(|(_, p)| p.renegotiate && p.pending.is_none())
            .map(|(k, _)| *k)
            .collect();
        for key in keys {
            let offer_id = self.next_offer_id;
            let Some(p) = self.participants.get_mut(&key) else {
                continue;
            };
            p.renegotiate = false;
            let wanted = p
                .subscriptions
                .iter()
                .any(|s| matches!(s.state, SubState::ToOpen | SubState::ToStop(_)));
            if !wanted {
                continue;
            }
            let mut api = p.rtc.sdp_api();
            for s in &mut p.subscriptions {
                match s.state {
                    SubState::ToOpen => {
                        let stream = s.publisher_id.to_string();
                        let track = format!("{}-{}", s.publisher_id, s.source.as_str());
                        let mid = api.add_media(
                            s.kind,
                            Direction::SendOnly,
                            Some(stream),
                            Some(track),
                            None,
                        );
                        s.state = SubState::Negotiating(mid);
                    }
                    SubState::ToStop(m) => {
                        api.stop_media(m);
                        s.state = SubState::NegotiatingStop(m);
                    }
                    _ => {}
                }
            }
            let Some((offer, pending)) = api.apply() else {
                warn!(participant = %p.id, "no offer for pending changes");
                continue;
            };
            self.next_offer_id += 1;
            p.pending = Some(PendingOffer {
                id: offer_id,
                offer: pending,
            });
            let e = SfuEvent::Renegotiate {
                room: p.room.clone(),
                participant: p.id.clone(),
                offer_id,
                offer: super::restart::local_sdp(p, offer.to_sdp_string()),
                tracks: p.tracks(),
            };
            self.emit(e);
        }
    }
}

pub(super) fn new_subscription(
    publisher: Key,
    publisher_id: ParticipantId,
    source_mid: Mid,
    kind: MediaKind,
    source: TrackSource,
) -> Subscription {
    Subscription {
        publisher,
        publisher_id,
        source_mid,
        kind,
        source,
        state: SubState::ToOpen,
        remove_after_answer: false,
        needs_keyframe: kind == MediaKind::Video,
        layer: None,
        grant: Grant::Room,
        vp8: Vp8Numbering::default(),
        out_pt: None,
        out_ssrc: None,
        rewriter: new_rewriter(),
    }
}

/// End the subscriptions matching `f`: not yet offered → dropped; offered → removed
/// after the answer; open → stopped in the next offer.
pub(super) fn stop_subscriptions(p: &mut Participant, f: impl Fn(&Subscription) -> bool) {
    let mut changed = false;
    p.subscriptions.retain_mut(|s| {
        if !f(s) {
            return true;
        }
        match s.state {
            SubState::ToOpen => {
                changed = true;
                false
            }
            SubState::Negotiating(_) => {
                s.remove_after_answer = true;
                true
            }
            SubState::Open(m) => {
                s.state = SubState::ToStop(m);
                changed = true;
                true
            }
            SubState::ToStop(_) | SubState::NegotiatingStop(_) => true,
        }
    });
    if changed {
        p.renegotiate = true;
    }
}

/// One sending m-line of a client's offer.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct SendingLine {
    pub mid: Mid,
    pub kind: MediaKind,
    /// `a=msid:<stream> <track>` with a stream other than `-`: a track is attached.
    /// Browsers put the stream only when the transceiver was given one with its track
    /// (`addTransceiver(track, {streams: [stream]})`); a trackless transceiver says `-`.
    pub has_track: bool,
}

/// The m-lines of a client's offer on which the client sends (`sendonly`/`sendrecv`,
/// the default). str0m reports them (`MediaAdded`) only once DTLS is up; reading them
/// here names their sources from the start. Tolerant: lines it does not understand are
/// skipped (str0m has already validated the SDP).
pub(super) fn sending_media_lines(sdp: &str) -> Vec<SendingLine> {
    struct Current {
        kind: MediaKind,
        mid: Option<Mid>,
        sending: bool,
        has_track: bool,
    }
    let mut out = Vec::new();
    let mut current: Option<Current> = None;
    let flush = |c: Option<Current>, out: &mut Vec<SendingLine>| {
        if let Some(c) = c
            && c.sending
            && let Some(mid) = c.mid
        {
            out.push(SendingLine {
                mid,
                kind: c.kind,
                has_track: c.has_track,
            });
        }
    };
    for line in sdp.lines() {
        let line = line.trim_end();
        if let Some(rest) = line.strip_prefix("m=") {
            flush(current.take(), &mut out);
            let kind = if rest.starts_with("audio") {
                Some(MediaKind::Audio)
            } else if rest.starts_with("video") {
                Some(MediaKind::Video)
            } else {
                None
            };
            // A rejected m-line (port 0) carries nothing.
            let port_zero = rest.split_whitespace().nth(1) == Some("0");
            current = kind.map(|kind| Current {
                kind,
                mid: None,
                sending: !port_zero,
                has_track: false,
            });
        } else if let Some(c) = current.as_mut() {
            if let Some(m) = line.strip_prefix("a=mid:") {
                c.mid = Some(Mid::from(m.trim()));
            } else if let Some(msid) = line.strip_prefix("a=msid:") {
                c.has_track |= msid.split_whitespace().next().is_some_and(|s| s != "-");
            } else if line == "a=recvonly" || line == "a=inactive" {
                c.sending = false;
            }
        }
    }
    flush(current.take(), &mut out);
    out
}

/// What each sending m-line of a client's offer will publish, as the engine will name
/// it: the client's hint for its mid, else the first audio line the microphone, the
/// first video line the camera, the second of each the screen share (and its audio).
/// The server checks these against the client's publishing grants before the engine
/// sees the offer. A later offer repeats the earlier m-lines first, so the order holds.
pub fn offered_sources(sdp: &str, hints: &[MidSource]) -> Vec<TrackSource> {
    let (mut audio, mut video) = (0, 0);
    let mut out = Vec::new();
    for line in sending_media_lines(sdp) {
        let hinted = hints
            .iter()
            .find(|h| Mid::from(h.mid.as_str()) == line.mid)
            .map(|h| h.source);
        let same_kind = match line.kind {
            MediaKind::Audio => &mut audio,
            MediaKind::Video => &mut video,
        };
        let positional = match (line.kind, *same_kind) {
            (MediaKind::Audio, 0) => Some(TrackSource::Microphone),
            (MediaKind::Audio, 1) => Some(TrackSource::ScreenShareAudio),
            (MediaKind::Video, 0) => Some(TrackSource::Camera),
            (MediaKind::Video, 1) => Some(TrackSource::ScreenShare),
            _ => None,
        };
        *same_kind += 1;
        out.extend(hinted.or(positional));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offered_sources_follow_hints_then_positions() {
        let sdp = "v=0\r\n\
            m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=sendrecv\r\n\
            m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\na=recvonly\r\n\
            m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:2\r\n\
            m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:3\r\na=sendonly\r\n";
        assert_eq!(
            offered_sources(sdp, &[]),
            vec![
                TrackSource::Microphone,
                TrackSource::Camera,
                TrackSource::ScreenShare
            ]
        );
        let hints = [MidSource {
            mid: "2".into(),
            source: TrackSource::ScreenShare,
        }];
        assert_eq!(
            offered_sources(sdp, &hints),
            vec![
                TrackSource::Microphone,
                TrackSource::ScreenShare,
                TrackSource::ScreenShare
            ]
        );
        let viewer = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=recvonly\r\n\
            m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\na=recvonly\r\n";
        assert!(offered_sources(viewer, &[]).is_empty());
    }

    #[test]
    fn sending_media_lines_reads_mids_and_directions() {
        let sdp = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
            m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=sendonly\r\na=msid:s1 t1\r\n\
            m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\na=msid:- t2\r\n\
            m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:2\r\na=recvonly\r\n\
            m=video 0 UDP/TLS/RTP/SAVPF 96\r\na=mid:3\r\na=sendonly\r\n\
            m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:5\r\na=sendrecv\r\n\
            m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:4\r\n";
        let lines = sending_media_lines(sdp);
        let line = |mid: &str, kind, has_track| SendingLine {
            mid: Mid::from(mid),
            kind,
            has_track,
        };
        assert_eq!(
            lines,
            vec![
                line("0", MediaKind::Audio, true),
                line("1", MediaKind::Video, false),
                line("5", MediaKind::Video, false),
            ]
        );
        // Nonsense never panics.
        assert!(sending_media_lines("m=\na=mid:\nm=video").is_empty());
    }
}
