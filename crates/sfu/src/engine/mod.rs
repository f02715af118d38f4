//! The sans-IO SFU core of one worker: rooms, participants, negotiation, forwarding.
//!
//! One documented way to drive it, as str0m's `Rtc`: call an operation
//! ([`Engine::join`], [`Engine::handle_datagram`], [`Engine::handle_timeout`], …) with the
//! current time, then drain [`Engine::poll_output`] until `None`, and come back no later
//! than [`Engine::poll_timeout`]. The engine never reads a clock and never touches a
//! socket; the worker thread (`worker.rs`) and the tests do.
//!
//! One `impl Engine`, in files named after what they hold:
//! - this file: the engine's state, its configuration and outputs, `poll_timeout`;
//! - `commands.rs`: what the server asks (join, offer, answer, mute, publish, leave, close);
//! - `network.rs`: received datagrams and ICE-TCP frames, routed to their participant;
//! - `routes.rs`: `Routes`, the participant lookups by ID, address and ufrag;
//! - `restart.rs`: a client's ICE restart: new local credentials that keep the worker's
//!   ufrag prefix, routed to the same participant;
//! - `drive.rs`: timers and the drive loop that polls each `Rtc` and handles its events,
//!   and the removal of a participant;
//! - `publish.rs`: publications and the offers that negotiate subscriptions;
//! - `forwarding.rs`: the per-packet path and keyframe requests;
//! - `adapt.rs`: each subscriber's allocation (downlink estimate, reported tiles) into
//!   the grants the forwarding reads;
//! - `speaking.rs`: each room's dominant speaker, decided with the allocation's timer;
//! - `quality.rs`: str0m's once-a-second stream statistics into the engine's counters
//!   (NACKs, receiver reports' loss and RTT);
//! - `record.rs`: a recorded room's packets to its recorder's queue (never a wait).
//!
//! The path of one RTP packet: [`Engine::handle_datagram`] routes the datagram by source
//! address (`Routes::at_addr`, O(1)) to the publisher's `Rtc` → `Engine::drive` polls that
//! `Rtc` and gets `Event::RtpPacket` → `Engine::on_rtp` picks, for every subscriber of the
//! publication, whether to forward (mute, layer, keyframe gate) and rewrites
//! sequence number/timestamp → `StreamTx::write_rtp` on the subscriber's `Rtc`, which
//! is marked due → the next [`Engine::handle_timeout`] feeds the subscriber its timeout
//! and polls it, and its `Output::Transmit` (SRTP-protected) becomes [`Output::Transmit`].

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use str0m::net::TcpType;
use str0m::{Candidate, Event, IceCreds, Rtc};
use tracing::warn;

use crate::api::{GoneReason, OutgoingTrack, ParticipantId, RoomId, SfuError, SfuEvent, Transport};
use crate::model::{Key, KeyMap, Participant, Room};

mod adapt;
mod commands;
mod drive;
mod forwarding;
mod network;
mod publish;
mod quality;
mod record;
mod restart;
mod routes;
mod speaking;

pub use publish::offered_sources;
use routes::Routes;

/// How often str0m reports each stream's statistics when [`EngineConfig::media_stats`].
const STATS_INTERVAL: Duration = Duration::from_secs(1);

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
    /// Ask str0m for each stream's statistics once a second (NACK counts, receiver
    /// reports' loss and RTT). Off: those counters stay at zero.
    pub media_stats: bool,
    /// Bandwidth estimation (TWCC, with padding probes) on every connection, starting
    /// from this many bits per second; it caps what each subscriber is allocated
    /// (`engine/adapt.rs`). `None`: no estimation, only tile sizes limit the layers.
    pub bwe_initial: Option<u64>,
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
            media_stats: true,
            bwe_initial: Some(adapt::INITIAL_ESTIMATE_BPS),
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
    /// RTP packets received from publishers, and their payload bytes.
    pub rtp_received: u64,
    pub rtp_bytes_received: u64,
    /// Payload bytes of the forwarded packets (one copy per subscriber).
    pub rtp_bytes_forwarded: u64,
    /// Packets of a published track that no subscriber takes (nobody subscribed yet).
    pub dropped_no_subscriber: u64,
    /// Copies held back for one subscriber by the layer or keyframe gate (waiting for a
    /// keyframe of the layer it should get).
    pub dropped_layer_gate: u64,
    /// Keyframe requests (PLI/FIR) subscribers sent us.
    pub plis_received: u64,
    /// NACKs subscribers sent us, and NACKs we sent publishers (str0m's stream stats).
    pub nacks_received: u64,
    pub nacks_sent: u64,
    /// Subscribers' receiver reports: loss fraction and round-trip time (seconds).
    pub rr_loss: crate::histogram::Histogram,
    pub rr_rtt: crate::histogram::Histogram,
}

/// The SFU core of one worker. See the module documentation.
#[derive(Debug)]
pub struct Engine {
    cfg: EngineConfig,
    participants: KeyMap<Participant>,
    /// Which participant a request (ID) or a packet (source address, ICE ufrag) is for.
    routes: Routes,
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
    /// Counts `set_recording` calls: each recording of a room is a new epoch.
    record_epoch: u64,
    /// When every subscriber's allocation is made again (`None`: at the next timeout).
    next_allocation: Option<Instant>,
}

impl Engine {
    pub fn new(cfg: EngineConfig) -> Self {
        crate::install_crypto();
        Engine {
            cfg,
            participants: KeyMap::default(),
            routes: Routes::default(),
            rooms: HashMap::new(),
            outputs: VecDeque::new(),
            dirty: Vec::new(),
            doomed: Vec::new(),
            next_key: Key::FIRST,
            next_offer_id: 1,
            negotiation_due: false,
            stats: EngineStats::default(),
            events_scratch: Vec::new(),
            record_epoch: 0,
            next_allocation: None,
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
        self.routes.has(id)
    }

    /// The tracks currently sent to a participant (tests, diagnostics).
    pub fn tracks_of(&self, id: &ParticipantId) -> Option<Vec<OutgoingTrack>> {
        let key = self.routes.key(id)?;
        self.participants.get(&key).map(|p| p.tracks())
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
        if let Some(next) = self.next_allocation
            && !self.participants.is_empty()
        {
            at(next);
        }
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

    pub(super) fn new_rtc(&self, now: Instant) -> Result<Rtc, SfuError> {
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
            .set_stats_interval(self.cfg.media_stats.then_some(STATS_INTERVAL))
            .enable_bwe(self.cfg.bwe_initial.map(str0m::bwe::Bitrate::bps))
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
}

/// The last guard: a panic inside str0m while handling one participant's input must
/// not take the worker (and every other room on it) down. The caller closes that
/// participant. Not a substitute for validating input.
fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, ()> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|_| {
        tracing::error!("panic while handling a participant; it will be closed");
    })
}
