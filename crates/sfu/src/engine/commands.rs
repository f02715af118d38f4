//! What the server asks of the engine: join, renegotiate (the client's offer, the
//! client's answer to ours), mute, publish, leave, close a room. Each runs the drive
//! loop before it returns, so its outputs are ready in [`Engine::poll_output`].

use std::collections::HashMap;
use std::time::Instant;

use str0m::Input;
use str0m::change::{SdpAnswer as RtcSdpAnswer, SdpOffer};
use str0m::media::{MediaKind, Mid};
use tracing::info;

use super::publish::{new_subscription, sending_media_lines};
use super::restart::{adopt_ice_restart, local_sdp};
use super::routes::Routes;
use super::{Engine, guarded};
use crate::api::{
    ConnectionState, GoneReason, MidSource, ParticipantId, ReceiveQuality, RoomId, SdpAnswer,
    SdpError, SfuError, SfuEvent, TrackSource,
};
use crate::model::{Key, KeyMap, Participant, SubState};

/// Refuse a participant's SDP: str0m's text (it can hold parser internals such as heap
/// addresses) goes to the log, the caller gets the fixed text of `why`.
fn refuse_sdp(
    why: SdpError,
    participant: &ParticipantId,
    detail: impl std::fmt::Display,
) -> SfuError {
    info!(%participant, %detail, "{why}");
    SfuError::InvalidSdp(why)
}

impl Engine {
    /// Add a participant to `room` from its first offer; returns the answer.
    pub fn join(
        &mut self,
        now: Instant,
        room: RoomId,
        id: ParticipantId,
        offer: &str,
        sources: Vec<MidSource>,
    ) -> Result<SdpAnswer, SfuError> {
        if self.routes.has(&id) {
            return Err(SfuError::DuplicateParticipant);
        }
        let offer_sdp = offer;
        let offer = SdpOffer::from_sdp_string(offer)
            .map_err(|e| refuse_sdp(SdpError::OfferUnparsable, &id, e))?;
        let mut rtc = self.new_rtc(now)?;
        let answer = guarded(|| rtc.sdp_api().accept_offer(offer))
            .map_err(|()| SfuError::InvalidSdp(SdpError::Unprocessable))?
            .map_err(|e| refuse_sdp(SdpError::OfferRefused, &id, e))?;
        // str0m reports the new m-lines (Event::MediaAdded) after its next input.
        let _ = guarded(|| rtc.handle_input(Input::Timeout(now)));
        let ufrag = rtc.direct_api().local_ice_credentials().ufrag;

        let key = self.next_key;
        self.next_key = key.next();
        let room_entry = self.rooms.entry(room.clone()).or_default();
        // The newcomer receives every publication already offered in the room.
        let mut subscriptions = Vec::new();
        for &other in &room_entry.members {
            if let Some(o) = self.participants.get(&other) {
                for publ in o.publications.iter().filter(|p| p.published) {
                    subscriptions.push(new_subscription(
                        other,
                        o.id.clone(),
                        publ.mid,
                        publ.kind,
                        publ.source,
                    ));
                }
            }
        }
        room_entry.members.push(key);
        let participant = Participant {
            id: id.clone(),
            room: room.clone(),
            rtc,
            ufrag: ufrag.clone(),
            stale_ufrag: None,
            keyframes_on_connect: false,
            addrs: Vec::new(),
            joined_at: now,
            connected: false,
            disconnected_since: None,
            next_timeout: now,
            last_fed: now,
            dirty: false,
            renegotiate: !subscriptions.is_empty(),
            pending: None,
            source_hints: sources_to_hints(&sources),
            publishing_overrides: Vec::new(),
            publications: Vec::new(),
            subscriptions,
            ssrc_cache: HashMap::new(),
            nacks_seen: HashMap::new(),
            downlink: Default::default(),
        };
        self.participants.insert(key, participant);
        self.routes.add(key, id.clone(), ufrag);
        info!(%room, participant = %id, "participant joined");
        self.negotiation_due = true;
        self.emit(SfuEvent::ConnectionState {
            room,
            participant: id,
            state: ConnectionState::Connecting,
        });
        for l in sending_media_lines(offer_sdp) {
            self.add_publication(key, l.mid, l.kind, l.has_track);
        }
        self.mark_dirty(key);
        self.drive(now);
        Ok(SdpAnswer {
            sdp: answer.to_sdp_string(),
            tracks: Vec::new(),
        })
    }

    /// A client-initiated offer. We are the polite peer: our own pending offer, if any,
    /// is dropped, the client's accepted, and ours made again afterwards.
    pub fn offer(
        &mut self,
        now: Instant,
        id: &ParticipantId,
        offer: &str,
        sources: Vec<MidSource>,
    ) -> Result<SdpAnswer, SfuError> {
        let (key, p) = participant_mut(&self.routes, &mut self.participants, id)?;
        let offer_sdp = offer;
        let offer = SdpOffer::from_sdp_string(offer)
            .map_err(|e| refuse_sdp(SdpError::OfferUnparsable, id, e))?;
        p.rollback_pending();
        for (mid, source) in sources_to_hints(&sources) {
            p.source_hints.retain(|(m, _)| *m != mid);
            p.source_hints.push((mid, source));
        }
        let answer = match guarded(|| p.rtc.sdp_api().accept_offer(offer)) {
            Ok(r) => r.map_err(|e| refuse_sdp(SdpError::OfferRefused, id, e)),
            Err(()) => {
                self.doomed
                    .push((key, Some(GoneReason::Failed("internal error".into()))));
                self.drive(now);
                return Err(SfuError::InvalidSdp(SdpError::Unprocessable));
            }
        };
        // New ICE credentials in the offer (`pc.restartIce()`): str0m restarted ICE
        // inside `accept_offer`, even if it refused the rest of the offer.
        adopt_ice_restart(&mut self.routes, key, p, &self.cfg.ufrag_prefix);
        p.ssrc_cache.clear();
        p.renegotiate = true;
        self.negotiation_due = true;
        let _ = guarded(|| p.rtc.handle_input(Input::Timeout(now)));
        let tracks = p
            .tracks()
            .into_iter()
            .filter(|t| {
                p.subscriptions
                    .iter()
                    .any(|s| matches!(s.state, SubState::Open(m) if *m == *t.mid))
            })
            .collect();
        if answer.is_ok() {
            for l in sending_media_lines(offer_sdp) {
                self.add_publication(key, l.mid, l.kind, l.has_track);
            }
        }
        self.mark_dirty(key);
        self.drive(now);
        let sdp = answer?.to_sdp_string();
        let sdp = match self.participants.get(&key) {
            Some(p) => local_sdp(p, sdp),
            None => sdp,
        };
        Ok(SdpAnswer { sdp, tracks })
    }

    /// The client's answer to our offer `offer_id`.
    pub fn answer(
        &mut self,
        now: Instant,
        id: &ParticipantId,
        offer_id: u64,
        answer: &str,
    ) -> Result<(), SfuError> {
        let (key, p) = participant_mut(&self.routes, &mut self.participants, id)?;
        if p.pending.as_ref().map(|o| o.id) != Some(offer_id) {
            return Err(SfuError::StaleAnswer);
        }
        // Unparsable: keep our offer pending, the client may answer again.
        let answer = RtcSdpAnswer::from_sdp_string(answer)
            .map_err(|e| refuse_sdp(SdpError::AnswerUnparsable, id, e))?;
        let Some(pending) = p.pending.take() else {
            return Err(SfuError::StaleAnswer);
        };
        let accepted = match guarded(|| p.rtc.sdp_api().accept_answer(pending.offer, answer)) {
            Ok(r) => r,
            Err(()) => {
                self.doomed
                    .push((key, Some(GoneReason::Failed("internal error".into()))));
                self.drive(now);
                return Err(SfuError::InvalidSdp(SdpError::Unprocessable));
            }
        };
        let mut keyframes = Vec::new();
        let result = match accepted {
            Ok(()) => {
                p.subscriptions.retain_mut(|s| match s.state {
                    SubState::Negotiating(m) => {
                        if s.remove_after_answer {
                            s.state = SubState::ToStop(m);
                        } else {
                            s.state = SubState::Open(m);
                            s.out_pt = None;
                            s.out_ssrc = None;
                            if s.kind == MediaKind::Video {
                                s.needs_keyframe = true;
                                keyframes.push((s.publisher, s.source_mid));
                            }
                        }
                        true
                    }
                    SubState::NegotiatingStop(_) => false,
                    _ => true,
                });
                Ok(())
            }
            Err(e) => {
                // str0m consumed our offer: put its changes back to be offered again.
                p.undo_negotiating();
                Err(refuse_sdp(SdpError::AnswerRefused, id, e))
            }
        };
        p.renegotiate = true;
        self.negotiation_due = true;
        let _ = guarded(|| p.rtc.handle_input(Input::Timeout(now)));
        self.mark_dirty(key);
        for (publisher, mid) in keyframes {
            self.request_target_keyframe(publisher, mid, now);
        }
        self.drive(now);
        result
    }

    /// Pause or resume forwarding of one publication.
    pub fn set_muted(
        &mut self,
        now: Instant,
        id: &ParticipantId,
        source: TrackSource,
        muted: bool,
    ) -> Result<(), SfuError> {
        let (key, p) = participant_mut(&self.routes, &mut self.participants, id)?;
        let Some(publ) = p.publications.iter_mut().find(|x| x.source == source) else {
            return Ok(());
        };
        if publ.muted == muted {
            return Ok(());
        }
        publ.muted = muted;
        let (mid, target, kind) = (publ.mid, publ.target, publ.kind);
        if !muted {
            // Resume on a keyframe, with sequence numbers continuing where they stopped.
            let room = p.room.clone();
            self.for_each_subscription(&room, key, mid, |s| s.needs_keyframe = true);
            if kind == MediaKind::Video {
                self.request_keyframe(key, mid, target, now);
            }
        }
        self.drive(now);
        Ok(())
    }

    /// What `id` wants to receive of the room's simulcast cameras. A change shows on the
    /// next keyframe of the layer now wanted (one is asked for by the forwarding).
    pub fn set_receive_quality(
        &mut self,
        id: &ParticipantId,
        quality: ReceiveQuality,
    ) -> Result<(), SfuError> {
        let (key, p) = participant_mut(&self.routes, &mut self.participants, id)?;
        let room = p.room.clone();
        if let Some(r) = self.rooms.get_mut(&room) {
            r.reduced.retain(|&(k, _)| k != key);
            if quality.min_skip() > 0 {
                r.reduced.push((key, quality.min_skip()));
            }
        }
        Ok(())
    }

    /// Start or stop offering a publication to the others.
    pub fn set_publishing(
        &mut self,
        now: Instant,
        id: &ParticipantId,
        source: TrackSource,
        on: bool,
    ) -> Result<(), SfuError> {
        let (key, p) = participant_mut(&self.routes, &mut self.participants, id)?;
        let Some(publ) = p.publications.iter_mut().find(|x| x.source == source) else {
            p.publishing_overrides.retain(|(s, _)| *s != source);
            p.publishing_overrides.push((source, on));
            return Ok(());
        };
        // An explicit decision: media starting later does not change it.
        publ.auto_publish = false;
        if publ.published == on {
            return Ok(());
        }
        let mid = publ.mid;
        if on {
            self.publish(key, mid);
        } else {
            self.unpublish(key, mid);
        }
        self.drive(now);
        Ok(())
    }

    /// Remove a participant at the server's request (no `ParticipantGone`).
    pub fn leave(&mut self, now: Instant, id: &ParticipantId) -> bool {
        let Some(key) = self.routes.key(id) else {
            return false;
        };
        self.doomed.push((key, None));
        self.drive(now);
        true
    }

    pub fn close_room(&mut self, now: Instant, room: &RoomId) {
        if let Some(r) = self.rooms.get(room) {
            for &k in &r.members {
                self.doomed.push((k, None));
            }
        }
        self.drive(now);
    }
}

fn sources_to_hints(sources: &[MidSource]) -> Vec<(Mid, TrackSource)> {
    sources
        .iter()
        .map(|s| (Mid::from(s.mid.as_str()), s.source))
        .collect()
}

/// Participant `id` and its key. Borrows only the routes and the participants, so that a
/// caller holding the participant can still set the engine's other fields (`doomed`,
/// `negotiation_due`, …).
fn participant_mut<'a>(
    routes: &Routes,
    participants: &'a mut KeyMap<Participant>,
    id: &ParticipantId,
) -> Result<(Key, &'a mut Participant), SfuError> {
    let key = routes.key(id).ok_or(SfuError::UnknownParticipant)?;
    let p = participants
        .get_mut(&key)
        .ok_or(SfuError::UnknownParticipant)?;
    Ok((key, p))
}
