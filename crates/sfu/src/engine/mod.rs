//! The sans-IO SFU core of one worker: rooms, participants, negotiation, forwarding.
//!
//! One documented way to drive it, as str0m's `Rtc`: call an operation
//! ([`Engine::join`], [`Engine::handle_datagram`], [`Engine::handle_timeout`], …) with the
//! current time, then drain [`Engine::poll_output`] until `None`, and come back no later
//! than [`Engine::poll_timeout`]. The engine never reads a clock and never touches a
//! socket; the worker thread (`worker.rs`) and the tests do.
//!
//! The path of one RTP packet: [`Engine::handle_datagram`] routes the datagram by source
//! address (`by_addr`, O(1)) to the publisher's `Rtc` → `Engine::drive` polls that
//! `Rtc` and gets `Event::RtpPacket` → `Engine::on_rtp` picks, for every subscriber of the
//! publication, whether to forward (mute, layer, keyframe gate) and rewrites
//! sequence number/timestamp → `StreamTx::write_rtp` on the subscriber's `Rtc` → `drive`
//! polls the subscriber, whose `Output::Transmit` (SRTP-protected) becomes
//! [`Output::Transmit`].

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::change::{SdpAnswer as RtcSdpAnswer, SdpOffer};
use str0m::format::Codec;
use str0m::ice::StunMessage;
use str0m::media::{
    Direction, KeyframeRequest, KeyframeRequestKind, MediaAdded, MediaKind, Mid, Rid,
};
use str0m::net::{DatagramRecv, Protocol, Receive, TcpType};
use str0m::rtp::{ExtensionValues, RtpPacket, RtpWrite};
use str0m::{Candidate, Event, IceConnectionState, IceCreds, Input, Output as RtcOutput, Rtc};
use tracing::{debug, info, warn};

use crate::api::*;
use crate::forward::{LayerStat, Rewriter, choose_layer, gallery_skip, vp8_is_keyframe_start};
use crate::model::*;

mod forwarding;
mod publish;

use forwarding::new_rewriter;
use publish::{new_subscription, sending_media_lines, stop_subscriptions};

/// Tunables of the core. The defaults are what production uses.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Address put in our ICE candidate and used as the destination of every received
    /// datagram (the worker socket's announced address).
    pub local_addr: SocketAddr,
    /// A participant that has not completed ICE + DTLS this long after joining is removed.
    pub connect_timeout: Duration,
    /// A participant whose ICE stays disconnected this long is removed.
    pub reconnect_timeout: Duration,
    /// Minimum interval between two keyframe requests to one publisher layer; requests
    /// in between are coalesced into one sent when the interval has passed.
    pub keyframe_interval: Duration,
    /// Also offer a passive TCP host candidate on `local_addr` (ICE-TCP, RFC 6544); the
    /// driver then delivers framed packets with [`Engine::handle_tcp_packets`].
    pub tcp: bool,
    /// Start of every local ICE ufrag. In one-port mode it names the worker, so that the
    /// demultiplexer can tell from a first STUN request which worker it is for.
    pub ufrag_prefix: String,
}

impl EngineConfig {
    pub fn new(local_addr: SocketAddr) -> Self {
        EngineConfig {
            local_addr,
            connect_timeout: Duration::from_secs(30),
            reconnect_timeout: Duration::from_secs(15),
            keyframe_interval: Duration::from_millis(500),
            tcp: false,
            ufrag_prefix: String::new(),
        }
    }
}

/// What the engine asks its driver to do.
#[derive(Debug)]
pub enum Output {
    /// Send `contents` from the worker socket to `destination`: a UDP datagram, or over
    /// TCP one RFC 4571 frame on the connection from `destination`.
    Transmit {
        transport: Transport,
        destination: SocketAddr,
        contents: Vec<u8>,
    },
    /// Report to the server.
    Event(SfuEvent),
    /// The last participant left: the room no longer lives on this worker.
    RoomClosed(RoomId),
    /// The participant is no longer on this worker (left, removed, or failed).
    ParticipantRemoved(ParticipantId),
}

/// Counters of one engine.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EngineStats {
    pub datagrams_in: u64,
    pub datagrams_out: u64,
    /// Datagrams that matched no participant or that the participant's `Rtc` refused.
    pub datagrams_dropped: u64,
    pub rtp_forwarded: u64,
    /// Keyframe requests (PLI) sent to publishers.
    pub keyframe_requests: u64,
}

/// How many source addresses one participant may have in the routing map (host, srflx,
/// relay, IPv4/IPv6 …); bounds what a peer that knows the ufrag can make us store.
const MAX_ADDRS: usize = 8;
/// Upper bound of `poll_output` calls per participant and drive round.
const MAX_POLL: usize = 10_000;

/// The SFU core of one worker. See the module documentation.
#[derive(Debug)]
pub struct Engine {
    cfg: EngineConfig,
    participants: KeyMap<Participant>,
    by_id: HashMap<ParticipantId, Key>,
    by_addr: HashMap<(SocketAddr, Transport), Key>,
    by_ufrag: HashMap<String, Key>,
    rooms: HashMap<RoomId, Room>,
    outputs: VecDeque<Output>,
    /// Participants whose `Rtc` got input and must be polled.
    dirty: Vec<Key>,
    /// Participants to remove once the current drive round is over.
    doomed: Vec<(Key, Option<GoneReason>)>,
    next_key: Key,
    next_offer_id: u64,
    /// Some participant's subscriptions may have changed: run `negotiate_all` (which
    /// scans all participants, so not after every packet).
    negotiation_due: bool,
    stats: EngineStats,
    events_scratch: Vec<Event>,
}

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
    pub fn new(cfg: EngineConfig) -> Self {
        crate::install_crypto();
        Engine {
            cfg,
            participants: KeyMap::default(),
            by_id: HashMap::new(),
            by_addr: HashMap::new(),
            by_ufrag: HashMap::new(),
            rooms: HashMap::new(),
            outputs: VecDeque::new(),
            dirty: Vec::new(),
            doomed: Vec::new(),
            next_key: 1,
            next_offer_id: 1,
            negotiation_due: false,
            stats: EngineStats::default(),
            events_scratch: Vec::new(),
        }
    }

    pub fn stats(&self) -> EngineStats {
        self.stats
    }

    pub fn room_count(&self) -> usize {
        self.rooms.len()
    }

    pub fn participant_count(&self) -> usize {
        self.participants.len()
    }

    pub fn has_room(&self, room: &RoomId) -> bool {
        self.rooms.contains_key(room)
    }

    pub fn has_participant(&self, id: &ParticipantId) -> bool {
        self.by_id.contains_key(id)
    }

    /// The tracks currently sent to a participant (tests, diagnostics).
    pub fn tracks_of(&self, id: &ParticipantId) -> Option<Vec<OutgoingTrack>> {
        let key = self.by_id.get(id)?;
        self.participants.get(key).map(|p| p.tracks())
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.cfg.local_addr
    }

    /// Next output, if any. Drain until `None` after every operation.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When [`Engine::handle_timeout`] must be called next (`None`: nothing scheduled).
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut t: Option<Instant> = None;
        let mut at = |x: Instant| t = Some(t.map_or(x, |t| t.min(x)));
        for p in self.participants.values() {
            // Due at or before its last input (str0m asks for "now" after output, or
            // packets were written to it): 1 ms after that input, so that what is
            // forwarded to one subscriber within a millisecond goes out in one str0m
            // cycle; an idle subscriber is served at once.
            if p.next_timeout > p.last_fed {
                at(p.next_timeout);
            } else {
                at(p.last_fed + Duration::from_millis(1));
            }
            if !p.connected {
                at(p.joined_at + self.cfg.connect_timeout);
            }
            if let Some(since) = p.disconnected_since {
                at(since + self.cfg.reconnect_timeout);
            }
            for publ in &p.publications {
                for k in publ.keyframe.iter().filter(|k| k.pending) {
                    at(k.last_sent + self.cfg.keyframe_interval);
                }
            }
        }
        t
    }

    fn new_rtc(&self, now: Instant) -> Result<Rtc, SfuError> {
        // RTP mode: packets are forwarded as they come, without depacketizing into
        // frames and packetizing again (docs/sfu.md, "Why RTP mode"). Only Opus and VP8
        // so that every participant negotiates the same codecs and any publisher's
        // packets can go to any subscriber unchanged.
        let mut creds = IceCreds::new();
        creds.ufrag.insert_str(0, &self.cfg.ufrag_prefix);
        let mut rtc = Rtc::builder()
            .set_local_ice_credentials(creds)
            .set_rtp_mode(true)
            .clear_codecs()
            .enable_opus(true, false)
            .enable_vp8(true)
            .build(now);
        let candidate = Candidate::host(self.cfg.local_addr, "udp").map_err(|e| {
            warn!(addr = %self.cfg.local_addr, "bad local candidate: {e}");
            SfuError::LocalCandidate
        })?;
        rtc.add_local_candidate(candidate);
        if self.cfg.tcp {
            let candidate = Candidate::builder()
                .tcp()
                .host(self.cfg.local_addr)
                .tcptype(TcpType::Passive)
                .build()
                .map_err(|e| {
                    warn!(addr = %self.cfg.local_addr, "bad local TCP candidate: {e}");
                    SfuError::LocalCandidate
                })?;
            rtc.add_local_candidate(candidate);
        }
        Ok(rtc)
    }

    // ───────────────────────────── commands ─────────────────────────────

    /// Add a participant to `room` from its first offer; returns the answer.
    pub fn join(
        &mut self,
        now: Instant,
        room: RoomId,
        id: ParticipantId,
        offer: &str,
        sources: Vec<MidSource>,
    ) -> Result<SdpAnswer, SfuError> {
        if self.by_id.contains_key(&id) {
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
        self.next_key += 1;
        let room_entry = self.rooms.entry(room.clone()).or_default();
        // The newcomer receives every publication already offered in the room.
        let mut subscriptions = Vec::new();
        for &other in &room_entry.members {
            if let Some(o) = self.participants.get(&other) {
                for publ in o.publications.iter().filter(|p| p.published) {
                    subscriptions.push(new_subscription(other, o.id.clone(), publ));
                }
            }
        }
        room_entry.members.push(key);
        let participant = Participant {
            id: id.clone(),
            room: room.clone(),
            rtc,
            ufrag: ufrag.clone(),
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
        };
        self.participants.insert(key, participant);
        self.by_id.insert(id.clone(), key);
        self.by_ufrag.insert(ufrag, key);
        info!(%room, participant = %id, "participant joined");
        self.negotiation_due = true;
        self.emit(SfuEvent::ConnectionState {
            room,
            participant: id,
            state: ConnectionState::Connecting,
        });
        for l in sending_media_lines(offer_sdp) {
            self.add_publication(key, l.mid, l.kind, l.has_track, now);
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
        let (key, p) = participant_mut(&self.by_id, &mut self.participants, id)?;
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
                self.add_publication(key, l.mid, l.kind, l.has_track, now);
            }
        }
        self.mark_dirty(key);
        self.drive(now);
        Ok(SdpAnswer {
            sdp: answer?.to_sdp_string(),
            tracks,
        })
    }

    /// The client's answer to our offer `offer_id`.
    pub fn answer(
        &mut self,
        now: Instant,
        id: &ParticipantId,
        offer_id: u64,
        answer: &str,
    ) -> Result<(), SfuError> {
        let (key, p) = participant_mut(&self.by_id, &mut self.participants, id)?;
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
            let rid = self
                .participants
                .get(&publisher)
                .and_then(|p| p.publications.iter().find(|x| x.mid == mid))
                .and_then(|x| x.target);
            self.request_keyframe(publisher, mid, rid, now);
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
        let (key, p) = participant_mut(&self.by_id, &mut self.participants, id)?;
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

    /// Start or stop offering a publication to the others.
    pub fn set_publishing(
        &mut self,
        now: Instant,
        id: &ParticipantId,
        source: TrackSource,
        on: bool,
    ) -> Result<(), SfuError> {
        let (key, p) = participant_mut(&self.by_id, &mut self.participants, id)?;
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
            self.publish(key, mid, now);
        } else {
            self.unpublish(key, mid);
        }
        self.drive(now);
        Ok(())
    }

    /// Remove a participant at the server's request (no `ParticipantGone`).
    pub fn leave(&mut self, now: Instant, id: &ParticipantId) -> bool {
        let Some(&key) = self.by_id.get(id) else {
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

    // ───────────────────────────── network and time ─────────────────────────────

    /// One datagram received on the worker socket from `source`.
    pub fn handle_datagram(&mut self, now: Instant, source: SocketAddr, data: &[u8]) {
        self.handle_datagrams(now, [(source, data)]);
    }

    /// Packets received over ICE-TCP from the connection whose remote end is `source`,
    /// one per RFC 4571 frame (the driver removes the 2-byte length).
    pub fn handle_tcp_packets<'a>(
        &mut self,
        now: Instant,
        batch: impl IntoIterator<Item = (SocketAddr, &'a [u8])>,
    ) {
        for (source, data) in batch {
            if let Some(key) = self.receive(now, Transport::Tcp, source, data) {
                self.poll_participant(key, now);
            }
        }
        self.drive(now);
    }

    /// Several datagrams received at `now` (a burst read from the socket). The same as
    /// [`Engine::handle_datagram`] for each, except that the subscribers are polled once
    /// per burst instead of once per packet: str0m's per-poll bookkeeping is the main
    /// per-packet cost (docs/sfu.md, "Benchmark"). Each receiving `Rtc` is still polled
    /// right after its input, as str0m requires.
    pub fn handle_datagrams<'a>(
        &mut self,
        now: Instant,
        batch: impl IntoIterator<Item = (SocketAddr, &'a [u8])>,
    ) {
        for (source, data) in batch {
            if let Some(key) = self.receive(now, Transport::Udp, source, data) {
                self.poll_participant(key, now);
            }
        }
        self.drive(now);
    }

    /// Route one datagram and give it to its participant's `Rtc`; returns that
    /// participant, to be polled.
    fn receive(
        &mut self,
        now: Instant,
        transport: Transport,
        source: SocketAddr,
        data: &[u8],
    ) -> Option<Key> {
        self.stats.datagrams_in += 1;
        let Some(key) = self.route(transport, source, data) else {
            self.stats.datagrams_dropped += 1;
            debug!(%source, len = data.len(), "datagram matches no participant");
            return None;
        };
        let Ok(contents) = DatagramRecv::try_from(data) else {
            self.stats.datagrams_dropped += 1;
            return None;
        };
        let destination = self.cfg.local_addr;
        let Some(p) = self.participants.get_mut(&key) else {
            self.stats.datagrams_dropped += 1;
            return None;
        };
        let input = Input::Receive(
            now,
            Receive {
                proto: transport.into(),
                source,
                destination,
                contents,
            },
        );
        p.last_fed = p.last_fed.max(now);
        match guarded(|| p.rtc.handle_input(input)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                // A bad packet is dropped; the participant lives on unless str0m gave up.
                self.stats.datagrams_dropped += 1;
                debug!(participant = %p.id, "input refused: {e}");
            }
            Err(()) => {
                self.doomed
                    .push((key, Some(GoneReason::Failed("internal error".into()))));
                return None;
            }
        }
        Some(key)
    }

    /// Find the participant a datagram belongs to: by source address once known,
    /// otherwise (first contact) by the ufrag of a STUN request, confirmed by
    /// `Rtc::accepts`. Never a scan of all participants.
    fn route(&mut self, transport: Transport, source: SocketAddr, data: &[u8]) -> Option<Key> {
        // RFC 7983: STUN datagrams start with 0..=3.
        let is_stun = data.first().is_some_and(|b| *b < 4);
        let addr = (source, transport);
        if let Some(&key) = self.by_addr.get(&addr) {
            if !is_stun {
                return Some(key);
            }
            // STUN from a known address: normally the same peer (consent checks); a new
            // participant behind a recycled address is found by ufrag below.
            if self.accepts(key, transport, source, data) {
                return Some(key);
            }
        }
        if !is_stun {
            return None;
        }
        let msg = StunMessage::parse(data).ok()?;
        let (local_ufrag, _) = msg.split_username()?;
        let key = *self.by_ufrag.get(local_ufrag)?;
        if !self.accepts(key, transport, source, data) {
            return None;
        }
        let p = self.participants.get_mut(&key)?;
        if !p.addrs.contains(&addr) {
            if p.addrs.len() >= MAX_ADDRS {
                let old = p.addrs.remove(0);
                if self.by_addr.get(&old) == Some(&key) {
                    self.by_addr.remove(&old);
                }
            }
            p.addrs.push(addr);
        }
        self.by_addr.insert(addr, key);
        Some(key)
    }

    fn accepts(&self, key: Key, transport: Transport, source: SocketAddr, data: &[u8]) -> bool {
        let Some(p) = self.participants.get(&key) else {
            return false;
        };
        let Ok(contents) = DatagramRecv::try_from(data) else {
            return false;
        };
        let destination = self.cfg.local_addr;
        // Any instant will do: `accepts` does not look at time.
        let input = Input::Receive(
            p.joined_at,
            Receive {
                proto: transport.into(),
                source,
                destination,
                contents,
            },
        );
        p.rtc.accepts(&input)
    }

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
        self.drive(now);
    }

    // ───────────────────────────── the core loop ─────────────────────────────

    fn mark_dirty(&mut self, key: Key) {
        if let Some(p) = self.participants.get_mut(&key)
            && !p.dirty
        {
            p.dirty = true;
            self.dirty.push(key);
        }
    }

    fn emit(&mut self, e: SfuEvent) {
        self.outputs.push_back(Output::Event(e));
    }

    /// Poll every participant that got input until str0m has nothing more, handling
    /// the events (which may give other participants input), then apply removals and
    /// make the offers that are due.
    fn drive(&mut self, now: Instant) {
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
                self.remove(key, reason, now);
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

    fn poll_participant(&mut self, key: Key, now: Instant) {
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
            Event::MediaAdded(m) => self.on_media_added(key, m, now),
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
                if let Some(state) = change {
                    info!(participant = %p.id, ?state, "ice state");
                    let e = SfuEvent::ConnectionState {
                        room: p.room.clone(),
                        participant: p.id.clone(),
                        state,
                    };
                    self.emit(e);
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

    fn remove(&mut self, key: Key, reason: Option<GoneReason>, _now: Instant) {
        let Some(mut p) = self.participants.remove(&key) else {
            return;
        };
        self.negotiation_due = true;
        self.by_id.remove(&p.id);
        self.by_ufrag.remove(&p.ufrag);
        for a in &p.addrs {
            if self.by_addr.get(a) == Some(&key) {
                self.by_addr.remove(a);
            }
        }
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

fn sources_to_hints(sources: &[MidSource]) -> Vec<(Mid, TrackSource)> {
    sources
        .iter()
        .map(|s| (Mid::from(s.mid.as_str()), s.source))
        .collect()
}

/// Participant `id` and its key. Borrows only the two maps, so that a caller holding the
/// participant can still set the engine's other fields (`doomed`, `negotiation_due`, …).
fn participant_mut<'a>(
    by_id: &HashMap<ParticipantId, Key>,
    participants: &'a mut KeyMap<Participant>,
    id: &ParticipantId,
) -> Result<(Key, &'a mut Participant), SfuError> {
    let key = *by_id.get(id).ok_or(SfuError::UnknownParticipant)?;
    let p = participants
        .get_mut(&key)
        .ok_or(SfuError::UnknownParticipant)?;
    Ok((key, p))
}

/// The last guard: a panic inside str0m while handling one participant's input must
/// not take the worker (and every other room on it) down. The caller closes that
/// participant. Not a substitute for validating input.
fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, ()> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|_| {
        tracing::error!("panic while handling a participant; it will be closed");
    })
}
