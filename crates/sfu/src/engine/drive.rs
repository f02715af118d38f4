//! Time and the drive loop: connection deadlines and str0m timers
//! ([`Engine::handle_timeout`]), polling every `Rtc` that got input until it settles
//! (`drive`, `poll_participant`), handling what str0m reports (`handle_event`), and
//! removing a participant everywhere it is referenced (`remove`).

use std::time::Instant;

use str0m::bwe::BweKind;
use str0m::net::Protocol;
use str0m::{Event, IceConnectionState, Input, Output as RtcOutput};
use tracing::{info, warn};

use super::publish::stop_subscriptions;
use super::{Engine, Output, guarded};
use crate::api::{ConnectionState, GoneReason, SfuEvent, Transport};
use crate::model::Key;

/// Upper bound of `poll_output` calls per participant and drive round.
const MAX_POLL: usize = 10_000;

impl Engine {
    /// Drive time: str0m timers, connection deadlines, deferred keyframe requests.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut due = Vec::new();
        for (&key, p) in &mut self.participants {
            if !p.connected && now >= p.joined_at + self.cfg.connect_timeout {
                warn!(participant = %p.id, "no connection in time; removing");
                self.doomed.push((key, Some(GoneReason::ConnectTimeout)));
                continue;
            }
            if let Some(since) = p.disconnected_since
                && now >= since + self.cfg.reconnect_timeout
            {
                warn!(participant = %p.id, "connection lost; removing");
                self.doomed.push((key, Some(GoneReason::ConnectionLost)));
                continue;
            }
            if !p.rtc.is_alive() {
                self.doomed
                    .push((key, Some(GoneReason::Failed("connection closed".into()))));
                continue;
            }
            for publ in &p.publications {
                for k in publ.keyframe.iter().filter(|k| k.pending) {
                    if now >= k.last_sent + self.cfg.keyframe_interval {
                        due.push((key, publ.mid, k.rid));
                    }
                }
            }
            if now >= p.next_timeout && now > p.last_fed {
                p.last_fed = now;
                match guarded(|| p.rtc.handle_input(Input::Timeout(now))) {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        self.doomed
                            .push((key, Some(GoneReason::Failed(e.to_string()))));
                        continue;
                    }
                    Err(()) => {
                        self.doomed
                            .push((key, Some(GoneReason::Failed("internal error".into()))));
                        continue;
                    }
                }
                if !p.dirty {
                    p.dirty = true;
                    self.dirty.push(key);
                }
            }
        }
        for (key, mid, rid) in due {
            self.request_keyframe(key, mid, rid, now);
        }
        if self.next_allocation.is_none_or(|t| now >= t) {
            self.allocate_all(now);
        }
        self.drive(now);
    }

    pub(super) fn mark_dirty(&mut self, key: Key) {
        if let Some(p) = self.participants.get_mut(&key)
            && !p.dirty
        {
            p.dirty = true;
            self.dirty.push(key);
        }
    }

    pub(super) fn emit(&mut self, e: SfuEvent) {
        self.outputs.push_back(Output::Event(e));
    }

    /// Poll every participant that got input until str0m has nothing more, handling
    /// the events (which may give other participants input), then apply removals and
    /// make the offers that are due.
    pub(super) fn drive(&mut self, now: Instant) {
        for _round in 0..1000 {
            let mut polled = 0usize;
            while let Some(key) = self.dirty.pop() {
                self.poll_participant(key, now);
                polled += 1;
                if polled > 100_000 {
                    warn!("drive did not settle");
                    break;
                }
            }
            let doomed = std::mem::take(&mut self.doomed);
            for (key, reason) in doomed {
                self.remove(key, reason);
            }
            if std::mem::take(&mut self.negotiation_due) {
                self.count_cameras();
                self.negotiate_all();
            }
            if self.dirty.is_empty() && self.doomed.is_empty() {
                return;
            }
        }
    }

    pub(super) fn poll_participant(&mut self, key: Key, now: Instant) {
        let Some(p) = self.participants.get_mut(&key) else {
            return;
        };
        p.dirty = false;
        let mut events = std::mem::take(&mut self.events_scratch);
        let (outputs, stats) = (&mut self.outputs, &mut self.stats);
        // One unwind guard around the loop rather than one per `poll_output`: each
        // guarded call moved its (large) result through `catch_unwind`.
        let polled = guarded(|| {
            for _ in 0..MAX_POLL {
                match p.rtc.poll_output() {
                    Ok(RtcOutput::Timeout(t)) => {
                        p.next_timeout = t;
                        return Ok(true);
                    }
                    Ok(RtcOutput::Transmit(t)) => {
                        let transport = match t.proto {
                            Protocol::Udp => Transport::Udp,
                            Protocol::Tcp => Transport::Tcp,
                            // We offer no TLS candidates, so str0m never picks one.
                            Protocol::SslTcp | Protocol::Tls => continue,
                        };
                        stats.datagrams_out += 1;
                        outputs.push_back(Output::Transmit {
                            transport,
                            destination: t.destination,
                            contents: t.contents.into(),
                        });
                    }
                    Ok(RtcOutput::Event(e)) => events.push(e),
                    Err(e) => return Err(GoneReason::Failed(e.to_string())),
                }
            }
            Ok(false)
        });
        let (settled, failed) = match polled {
            Ok(Ok(settled)) => (settled, None),
            Ok(Err(reason)) => (false, Some(reason)),
            Err(()) => (false, Some(GoneReason::Failed("internal error".into()))),
        };
        if !settled && failed.is_none() {
            // More output than one round allows: continue next round.
            p.dirty = true;
            self.dirty.push(key);
        }
        for e in events.drain(..) {
            self.handle_event(key, e, now);
        }
        self.events_scratch = events;
        if let Some(reason) = failed {
            self.doomed.push((key, Some(reason)));
        }
    }

    fn handle_event(&mut self, key: Key, event: Event, now: Instant) {
        match event {
            Event::RtpPacket(pkt) => self.on_rtp(key, pkt, now),
            Event::KeyframeRequest(req) => self.on_keyframe_request(key, req, now),
            Event::MediaAdded(m) => self.on_media_added(key, m),
            Event::MediaEgressStats(s) => self.on_egress_stats(key, &s),
            Event::MediaIngressStats(s) => self.on_ingress_stats(key, &s),
            Event::EgressBitrateEstimate(BweKind::Twcc { estimate, .. }) => {
                self.on_downlink_estimate(key, estimate, now)
            }
            Event::Connected => {
                let Some(p) = self.participants.get_mut(&key) else {
                    return;
                };
                p.connected = true;
                p.disconnected_since = None;
                info!(participant = %p.id, "connected");
                let e = SfuEvent::ConnectionState {
                    room: p.room.clone(),
                    participant: p.id.clone(),
                    state: ConnectionState::Connected,
                };
                self.emit(e);
            }
            Event::IceConnectionStateChange(state) => {
                let Some(p) = self.participants.get_mut(&key) else {
                    return;
                };
                let change = match state {
                    IceConnectionState::Disconnected if p.disconnected_since.is_none() => {
                        p.disconnected_since = Some(now);
                        p.keyframes_on_connect = true;
                        Some(ConnectionState::Disconnected)
                    }
                    IceConnectionState::Connected | IceConnectionState::Completed
                        if p.disconnected_since.is_some() =>
                    {
                        p.disconnected_since = None;
                        p.connected.then_some(ConnectionState::Connected)
                    }
                    _ => None,
                };
                let reconnected = matches!(
                    state,
                    IceConnectionState::Connected | IceConnectionState::Completed
                ) && p.keyframes_on_connect;
                if let Some(state) = change {
                    info!(participant = %p.id, ?state, "ice state");
                    let e = SfuEvent::ConnectionState {
                        room: p.room.clone(),
                        participant: p.id.clone(),
                        state,
                    };
                    self.emit(e);
                }
                if reconnected {
                    self.keyframes_after_reconnect(key, now);
                }
            }
            Event::Closed => {
                self.doomed.push((
                    key,
                    Some(GoneReason::Failed("peer closed the connection".into())),
                ));
            }
            _ => {}
        }
    }

    fn remove(&mut self, key: Key, reason: Option<GoneReason>) {
        let Some(mut p) = self.participants.remove(&key) else {
            return;
        };
        self.negotiation_due = true;
        self.routes.remove(key, &p.id, &p.ufrag, &p.addrs);
        let _ = guarded(|| p.rtc.disconnect());
        info!(room = %p.room, participant = %p.id, ?reason, "participant removed");
        for publ in p.publications.iter().filter(|x| x.announced) {
            self.outputs
                .push_back(Output::Event(SfuEvent::PublicationRemoved {
                    room: p.room.clone(),
                    participant: p.id.clone(),
                    source: publ.source,
                }));
        }
        if let Some(r) = self.rooms.get_mut(&p.room) {
            r.members.retain(|&k| k != key);
            r.reduced.retain(|&(k, _)| k != key);
            r.speakers.forget(key);
            for &other in &r.members {
                if let Some(o) = self.participants.get_mut(&other) {
                    stop_subscriptions(o, |s| s.publisher == key);
                }
            }
            if r.members.is_empty() {
                self.rooms.remove(&p.room);
                self.outputs.push_back(Output::RoomClosed(p.room.clone()));
            }
        }
        if let Some(reason) = reason {
            self.outputs
                .push_back(Output::Event(SfuEvent::ParticipantGone {
                    room: p.room.clone(),
                    participant: p.id.clone(),
                    reason,
                }));
        }
        self.outputs.push_back(Output::ParticipantRemoved(p.id));
    }
}
