//! Test peers for the SFU: str0m `Rtc`s in frame mode that publish like the web client
//! (one offer with mic, camera and screen send-only transceivers) and record what they
//! receive; and [`Sim`], which wires them to an [`Engine`] through an in-memory network
//! with a simulated clock (no real time, no sockets), in the manner of str0m's
//! `tests/common.rs`.
#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use meeting_sfu::engine::{Engine, EngineConfig, Output};
use meeting_sfu::{MidSource, OutgoingTrack, ParticipantId, RoomId, SfuEvent, TrackSource};
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind, MediaTime, Mid, Rid, Simulcast, SimulcastLayer};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output as RtcOutput, Rtc};

pub fn init() {
    str0m::crypto::from_feature_flags().install_process_default();
}

/// Frame payload layout (after the VP8 payload header byte for video):
/// `[vp8 flag, sender index, source tag, layer tag, frame counter (4 bytes), padding…]`.
pub const TAG_MIC: u8 = 1;
pub const TAG_CAM: u8 = 2;
pub const TAG_SCREEN: u8 = 3;

/// One frame a client received.
#[derive(Debug, Clone)]
pub struct Received {
    pub at: Instant,
    pub mid: Mid,
    pub sender: u8,
    pub tag: u8,
    pub layer: u8,
    pub keyframe: bool,
    /// str0m's word that no packet is missing between this frame and the one before
    /// it on the same stream: `false` after a loss that retransmission did not repair.
    pub contiguous: bool,
    /// The sender's frame counter (bytes 4..8 of every synthetic frame).
    pub frame: u32,
}

pub struct Client {
    pub index: u8,
    pub id: ParticipantId,
    pub rtc: Rtc,
    pub addr: SocketAddr,
    pub mic: Mid,
    pub cam: Mid,
    pub screen: Mid,
    /// Send the camera as simulcast with these rids (first = largest).
    pub simulcast: Vec<&'static str>,
    pub send_audio: bool,
    pub send_video: bool,
    pub send_screen: bool,
    /// Offer no sending m-line at all (one receive-only audio m-line): a pure subscriber.
    pub receive_only: bool,
    /// The camera m-line carries no track at join, as a browser's transceiver made
    /// without one (`a=msid:- …`): a camera that is off.
    pub camera_off_at_join: bool,
    /// The network drops everything to and from this client.
    pub offline: bool,
    /// Datagrams from the server are lost until then (a fade on the downlink only).
    pub downlink_lost_until: Option<Instant>,
    /// A rate-limited, lossy downlink (`None`: instant and lossless).
    pub downlink: Option<Link>,
    /// When `downlink` lost a datagram (its loss pattern or its full queue).
    pub downlink_losses: Vec<Instant>,
    /// The RFC 6464 level (0 loudest, -127 silence) on every microphone packet, if any.
    pub audio_level: Option<i8>,
    /// Multiplies the size of every video frame this client sends.
    pub video_scale: usize,
    /// Simulcast layers the server said nobody needs (`SfuEvent::LayerNeeded`): not sent,
    /// as a browser does with `setParameters({encodings: [{active: false}]})`.
    pub stopped_layers: Vec<String>,
    pub connected: bool,
    pub next_timeout: Instant,
    pub tracks: Vec<OutgoingTrack>,
    pub received: Vec<Received>,
    /// Keyframe requests received from the server: (time, mid, rid).
    pub keyframe_requests: Vec<(Instant, Mid, Option<Rid>)>,
    pub media_added: Vec<Mid>,
    pub frame_no: u32,
    next_audio: Instant,
    next_video: Instant,
    force_keyframe: bool,
    pending: Option<SdpPendingOffer>,
}

impl Client {
    pub fn new(index: u8, addr: SocketAddr, now: Instant) -> Client {
        let mut rtc = Rtc::builder().build(now);
        rtc.add_local_candidate(Candidate::host(addr, "udp").expect("valid test candidate"));
        Client {
            index,
            id: ParticipantId::new(format!("p{index}")),
            rtc,
            addr,
            mic: Mid::from("x"),
            cam: Mid::from("x"),
            screen: Mid::from("x"),
            simulcast: Vec::new(),
            send_audio: true,
            send_video: true,
            send_screen: false,
            receive_only: false,
            camera_off_at_join: false,
            offline: false,
            downlink_lost_until: None,
            downlink: None,
            downlink_losses: Vec::new(),
            video_scale: 1,
            audio_level: None,
            stopped_layers: Vec::new(),
            connected: false,
            next_timeout: now,
            tracks: Vec::new(),
            received: Vec::new(),
            keyframe_requests: Vec::new(),
            media_added: Vec::new(),
            frame_no: 0,
            next_audio: now,
            next_video: now,
            force_keyframe: true,
            pending: None,
        }
    }

    /// The client's one offer, as the web client makes it.
    pub fn make_offer(&mut self) -> (String, Vec<MidSource>) {
        let name = self.id.to_string();
        let simulcast = (!self.simulcast.is_empty()).then(|| Simulcast {
            send: self
                .simulcast
                .iter()
                .map(|r| SimulcastLayer::new(r))
                .collect(),
            recv: vec![],
        });
        let mut api = self.rtc.sdp_api();
        if self.receive_only {
            api.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None);
            let (offer, pending) = api.apply().expect("an offer");
            self.pending = Some(pending);
            return (offer.to_sdp_string(), Vec::new());
        }
        self.mic = api.add_media(
            MediaKind::Audio,
            Direction::SendOnly,
            Some(name.clone()),
            Some("mic".into()),
            None,
        );
        let cam_stream = if self.camera_off_at_join {
            "-".to_string()
        } else {
            name.clone()
        };
        self.cam = api.add_media(
            MediaKind::Video,
            Direction::SendOnly,
            Some(cam_stream),
            Some("cam".into()),
            simulcast,
        );
        self.screen = api.add_media(
            MediaKind::Video,
            Direction::SendOnly,
            Some(name),
            Some("screen".into()),
            None,
        );
        let (offer, pending) = api.apply().expect("an offer");
        self.pending = Some(pending);
        let sources = vec![
            MidSource {
                mid: self.mic.to_string(),
                source: TrackSource::Microphone,
            },
            MidSource {
                mid: self.cam.to_string(),
                source: TrackSource::Camera,
            },
            MidSource {
                mid: self.screen.to_string(),
                source: TrackSource::ScreenShare,
            },
        ];
        (offer.to_sdp_string(), sources)
    }

    /// The client's network changes to `addr` (its old address is gone) and it restarts
    /// ICE, as a browser after `pc.restartIce()`: its host candidate moves, and its next
    /// offer (returned) carries new ICE credentials and the same m-lines.
    pub fn move_and_restart_ice(&mut self, addr: SocketAddr) -> String {
        let old = Candidate::host(self.addr, "udp").expect("valid test candidate");
        self.rtc.direct_api().invalidate_candidate(&old);
        self.rtc
            .add_local_candidate(Candidate::host(addr, "udp").expect("valid test candidate"));
        self.addr = addr;
        let mut api = self.rtc.sdp_api();
        api.ice_restart(true);
        let (offer, pending) = api.apply().expect("an ICE restart offer");
        self.pending = Some(pending);
        offer.to_sdp_string()
    }

    pub fn accept_answer(&mut self, sdp: &str) {
        let answer = SdpAnswer::from_sdp_string(sdp).expect("server answer parses");
        let pending = self.pending.take().expect("an offer is pending");
        self.rtc
            .sdp_api()
            .accept_answer(pending, answer)
            .expect("server answer accepted");
    }

    /// Answer a server offer.
    pub fn answer_offer(&mut self, sdp: &str, tracks: Vec<OutgoingTrack>) -> String {
        let offer = SdpOffer::from_sdp_string(sdp).expect("server offer parses");
        let answer = self
            .rtc
            .sdp_api()
            .accept_offer(offer)
            .expect("server offer accepted");
        self.tracks = tracks;
        answer.to_sdp_string()
    }

    pub fn handle_datagram(&mut self, now: Instant, source: SocketAddr, data: &[u8]) {
        let Ok(contents) = data.try_into() else {
            return;
        };
        let input = Input::Receive(
            now,
            Receive {
                proto: Protocol::Udp,
                source,
                destination: self.addr,
                contents,
            },
        );
        self.rtc.handle_input(input).expect("client handles input");
    }

    /// Advance time, write due media, and return the datagrams to send.
    pub fn tick(&mut self, now: Instant) -> Vec<(SocketAddr, Vec<u8>)> {
        self.rtc
            .handle_input(Input::Timeout(now))
            .expect("client timeout");
        if self.connected {
            self.write_media(now);
        }
        self.poll(now)
    }

    pub fn poll(&mut self, now: Instant) -> Vec<(SocketAddr, Vec<u8>)> {
        let mut out = Vec::new();
        for _ in 0..100_000 {
            match self.rtc.poll_output().expect("client poll") {
                RtcOutput::Timeout(t) => {
                    self.next_timeout = t;
                    break;
                }
                RtcOutput::Transmit(t) => out.push((t.destination, t.contents.into())),
                RtcOutput::Event(e) => self.on_event(now, e),
            }
        }
        out
    }

    fn on_event(&mut self, now: Instant, e: Event) {
        match e {
            Event::Connected => self.connected = true,
            Event::MediaAdded(m) => self.media_added.push(m.mid),
            Event::KeyframeRequest(r) => {
                self.keyframe_requests.push((now, r.mid, r.rid));
                self.force_keyframe = true;
            }
            Event::MediaData(d) => {
                let data = &d.data;
                if data.len() >= 8 {
                    self.received.push(Received {
                        at: now,
                        mid: d.mid,
                        sender: data[1],
                        tag: data[2],
                        layer: data[3],
                        keyframe: data[0] & 1 == 0,
                        contiguous: d.contiguous,
                        frame: u32::from_be_bytes([data[4], data[5], data[6], data[7]]),
                    });
                }
            }
            _ => {}
        }
    }

    fn frame(&self, keyframe: bool, tag: u8, layer: u8, len: usize) -> Vec<u8> {
        let mut v = vec![0u8; (len * self.video_scale).max(8)];
        v[0] = if keyframe { 0x00 } else { 0x01 };
        v[1] = self.index;
        v[2] = tag;
        v[3] = layer;
        v[4..8].copy_from_slice(&self.frame_no.to_be_bytes());
        v
    }

    fn pt(&mut self, mid: Mid, codec: Codec) -> Option<str0m::media::Pt> {
        let w = self.rtc.writer(mid)?;
        w.payload_params()
            .find(|p| p.spec().codec == codec)
            .map(|p| p.pt())
    }

    fn write_media(&mut self, now: Instant) {
        if self.send_audio && now >= self.next_audio {
            self.next_audio = now + Duration::from_millis(20);
            let (mid, frame) = (self.mic, self.frame(true, TAG_MIC, 0, 60));
            if let Some(pt) = self.pt(mid, Codec::Opus)
                && let Some(w) = self.rtc.writer(mid)
            {
                let time = MediaTime::new(
                    u64::from(self.frame_no) * 960,
                    str0m::media::Frequency::FORTY_EIGHT_KHZ,
                );
                let w = match self.audio_level {
                    Some(level) => w.audio_level(level, level > -50),
                    None => w,
                };
                let _ = w.write(pt, now, time, frame);
            }
        }
        if (self.send_video || self.send_screen) && now >= self.next_video {
            self.next_video = now + Duration::from_millis(40);
            self.frame_no += 1;
            let keyframe = std::mem::take(&mut self.force_keyframe);
            let time = MediaTime::new(
                u64::from(self.frame_no) * 3600,
                str0m::media::Frequency::NINETY_KHZ,
            );
            if self.send_video {
                let cam = self.cam;
                if let Some(pt) = self.pt(cam, Codec::Vp8) {
                    if self.simulcast.is_empty() {
                        let f = self.frame(keyframe, TAG_CAM, 0, if keyframe { 1800 } else { 400 });
                        if let Some(w) = self.rtc.writer(cam) {
                            let _ = w.write(pt, now, time, f);
                        }
                    } else {
                        for rid in self.simulcast.clone() {
                            if self.stopped_layers.iter().any(|s| s == rid) {
                                continue;
                            }
                            // Layer tag 0 ("h") is the largest, 1 (any other rid) a
                            // quarter of it; "m" (tag 1, half) and "s" (tag 2, a
                            // sixteenth) make three layers of distinct rates.
                            let (layer, shift) = match rid {
                                "h" => (0, 0),
                                "m" => (1, 1),
                                "s" => (2, 4),
                                _ => (1, 2),
                            };
                            let size = if keyframe { 1800 } else { 600 } >> shift;
                            let f = self.frame(keyframe, TAG_CAM, layer as u8, size);
                            if let Some(w) = self.rtc.writer(cam) {
                                let _ = w.rid(rid.into()).write(pt, now, time, f);
                            }
                        }
                    }
                }
            }
            if self.send_screen {
                let screen = self.screen;
                if let Some(pt) = self.pt(screen, Codec::Vp8) {
                    let f = self.frame(keyframe, TAG_SCREEN, 0, if keyframe { 1800 } else { 400 });
                    if let Some(w) = self.rtc.writer(screen) {
                        let _ = w.write(pt, now, time, f);
                    }
                }
            }
        }
    }

    /// Write one camera frame now (benchmarks drive the publisher by hand).
    pub fn write_video_frame(&mut self, now: Instant, keyframe: bool, len: usize) {
        self.frame_no += 1;
        let cam = self.cam;
        let time = MediaTime::new(
            u64::from(self.frame_no) * 90,
            str0m::media::Frequency::NINETY_KHZ,
        );
        let f = self.frame(keyframe, TAG_CAM, 0, len);
        if let Some(pt) = self.pt(cam, Codec::Vp8)
            && let Some(w) = self.rtc.writer(cam)
        {
            let _ = w.write(pt, now, time, f);
        }
    }

    /// Frames received from `sender` with source tag `tag`.
    pub fn frames_from(&self, sender: u8, tag: u8) -> usize {
        self.received
            .iter()
            .filter(|r| r.sender == sender && r.tag == tag)
            .count()
    }

    /// The track the server says it sends on `mid`.
    pub fn track(&self, mid: Mid) -> Option<&OutgoingTrack> {
        self.tracks
            .iter()
            .find(|t| Mid::from(t.mid.as_str()) == mid)
    }
}

/// A token-bucket link, as `tc qdisc … tbf` makes one: datagrams leave one after the
/// other at `rate_bps`, wait in a queue up to `max_queue`, and beyond it are dropped;
/// every `loss_every`-th datagram is lost besides (deterministic loss: reproducible).
#[derive(Debug, Clone)]
pub struct Link {
    pub rate_bps: u64,
    pub max_queue: Duration,
    pub loss_every: Option<u32>,
    busy_until: Option<Instant>,
    sent: u32,
}

impl Link {
    pub fn new(rate_bps: u64, loss_every: Option<u32>) -> Link {
        Link {
            rate_bps,
            max_queue: Duration::from_millis(200),
            loss_every,
            busy_until: None,
            sent: 0,
        }
    }

    /// When a datagram of `len` bytes sent at `now` arrives, or `None` if it is lost.
    fn carry(&mut self, now: Instant, len: usize) -> Option<Instant> {
        self.sent = self.sent.wrapping_add(1);
        if self.loss_every.is_some_and(|n| self.sent.is_multiple_of(n)) {
            return None;
        }
        let start = self.busy_until.map_or(now, |b| b.max(now));
        if start - now > self.max_queue {
            return None;
        }
        let wire = Duration::from_micros((len as u64 + 28) * 8 * 1_000_000 / self.rate_bps);
        self.busy_until = Some(start + wire);
        self.busy_until
    }
}

/// Clients and an [`Engine`] on an in-memory network, with a simulated clock.
pub struct Sim {
    pub engine: Engine,
    pub server: SocketAddr,
    pub start: Instant,
    pub now: Instant,
    pub room: RoomId,
    pub clients: Vec<Client>,
    pub events: Vec<(Instant, SfuEvent)>,
    /// Datagrams the engine sent per destination address.
    pub sent_to: HashMap<SocketAddr, usize>,
    /// Answer server offers automatically.
    pub auto_answer: bool,
    /// Server offers not answered yet (when `auto_answer` is off).
    pub offers: VecDeque<(ParticipantId, u64, String, Vec<OutgoingTrack>)>,
    /// Time step of [`Sim::run`].
    pub step: Duration,
    /// Datagrams on a rate-limited downlink: (arrival, client index, contents).
    in_flight: Vec<(Instant, usize, Vec<u8>)>,
}

impl Sim {
    /// Without bandwidth estimation: in 5 ms steps the clients' TWCC feedback reports
    /// arrivals in bursts, which the estimator takes for queueing (its estimate falls to
    /// a fraction of what flows). [`Sim::with_bwe`] runs it in 1 ms steps.
    pub fn new() -> Sim {
        Self::with_config(|cfg| cfg.bwe_initial = None)
    }

    /// With the engine's bandwidth estimation, in 1 ms steps.
    pub fn with_bwe() -> Sim {
        let mut sim = Self::with_config(|_| {});
        sim.step = Duration::from_millis(1);
        sim
    }

    pub fn with_config(configure: impl FnOnce(&mut EngineConfig)) -> Sim {
        init();
        let now = Instant::now();
        let server = SocketAddr::from((Ipv4Addr::new(10, 0, 0, 1), 10000));
        let mut cfg = EngineConfig::new(server);
        configure(&mut cfg);
        let engine = Engine::new(cfg);
        Sim {
            engine,
            server,
            start: now,
            now,
            room: RoomId::new("room"),
            clients: Vec::new(),
            events: Vec::new(),
            sent_to: HashMap::new(),
            auto_answer: true,
            offers: VecDeque::new(),
            step: Duration::from_millis(5),
            in_flight: Vec::new(),
        }
    }

    pub fn client_addr(index: u8) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::new(10, 0, 1, index), 5000))
    }

    /// Create a client and join it; returns its index in `clients`.
    pub fn join(&mut self, configure: impl FnOnce(&mut Client)) -> usize {
        let index = self.clients.len() as u8 + 1;
        let mut c = Client::new(index, Self::client_addr(index), self.now);
        configure(&mut c);
        let (offer, sources) = c.make_offer();
        let answer = self
            .engine
            .join(self.now, self.room.clone(), c.id.clone(), &offer, sources)
            .expect("join succeeds");
        c.accept_answer(&answer.sdp);
        self.clients.push(c);
        self.pump();
        self.clients.len() - 1
    }

    pub fn idx(&self, id: &ParticipantId) -> Option<usize> {
        self.clients.iter().position(|c| &c.id == id)
    }

    /// Carry out the engine's outputs: datagrams to clients, offers answered.
    pub fn pump(&mut self) {
        for _ in 0..1000 {
            let mut any = false;
            while let Some(out) = self.engine.poll_output() {
                any = true;
                match out {
                    Output::Transmit {
                        destination,
                        contents,
                        ..
                    } => {
                        *self.sent_to.entry(destination).or_default() += 1;
                        let Some(i) = self.clients.iter().position(|c| {
                            c.addr == destination
                                && !c.offline
                                && c.downlink_lost_until.is_none_or(|t| self.now >= t)
                        }) else {
                            continue;
                        };
                        let c = &mut self.clients[i];
                        match c.downlink.as_mut() {
                            None => c.handle_datagram(self.now, self.server, &contents),
                            Some(link) => match link.carry(self.now, contents.len()) {
                                Some(at) => self.in_flight.push((at, i, contents)),
                                None => c.downlink_losses.push(self.now),
                            },
                        }
                    }
                    Output::Event(e) => {
                        if let SfuEvent::LayerNeeded {
                            participant,
                            rid,
                            needed,
                            ..
                        } = &e
                            && let Some(i) = self.idx(participant)
                        {
                            let stopped = &mut self.clients[i].stopped_layers;
                            stopped.retain(|s| s != rid);
                            if !needed {
                                stopped.push(rid.clone());
                            }
                        }
                        if let SfuEvent::Renegotiate {
                            participant,
                            offer_id,
                            offer,
                            tracks,
                            ..
                        } = &e
                        {
                            self.offers.push_back((
                                participant.clone(),
                                *offer_id,
                                offer.clone(),
                                tracks.clone(),
                            ));
                        }
                        self.events.push((self.now, e));
                    }
                    Output::RoomClosed(_) | Output::ParticipantRemoved(_) => {}
                }
            }
            if self.auto_answer {
                while let Some((pid, offer_id, sdp, tracks)) = self.offers.pop_front() {
                    any = true;
                    self.answer(&pid, offer_id, &sdp, tracks);
                }
            }
            if !any {
                return;
            }
        }
        panic!("engine outputs did not settle");
    }

    /// Answer one server offer from `pid`'s client.
    pub fn answer(
        &mut self,
        pid: &ParticipantId,
        offer_id: u64,
        sdp: &str,
        tracks: Vec<OutgoingTrack>,
    ) {
        let Some(i) = self.idx(pid) else { return };
        let answer = self.clients[i].answer_offer(sdp, tracks);
        self.engine
            .answer(self.now, pid, offer_id, &answer)
            .expect("answer accepted");
    }

    /// Advance the simulated clock by `d`, in steps, moving every datagram.
    pub fn run(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.now += self.step;
            self.tick();
        }
    }

    pub fn tick(&mut self) {
        let now = self.now;
        // Datagrams whose rate-limited downlink has carried them by now, in order.
        let mut arrived = Vec::new();
        self.in_flight.retain_mut(|(at, i, data)| {
            let due = *at <= now;
            if due {
                arrived.push((*at, *i, std::mem::take(data)));
            }
            !due
        });
        arrived.sort_by_key(|(at, _, _)| *at);
        for (at, i, data) in arrived {
            // At its arrival time (after the client's last input, which was the
            // previous step): the receiver's TWCC feedback reports the queueing delay.
            if !self.clients[i].offline {
                self.clients[i].handle_datagram(at, self.server, &data);
            }
        }
        for i in 0..self.clients.len() {
            let out = self.clients[i].tick(now);
            self.deliver_from(i, out);
        }
        if self.engine.poll_timeout().is_some_and(|t| t <= now) {
            self.engine.handle_timeout(now);
        }
        self.pump();
        // Datagrams the clients produced while handling the engine's.
        for _ in 0..100 {
            let mut any = false;
            for i in 0..self.clients.len() {
                let out = self.clients[i].poll(now);
                any |= !out.is_empty();
                self.deliver_from(i, out);
            }
            if !any {
                break;
            }
        }
    }

    fn deliver_from(&mut self, i: usize, out: Vec<(SocketAddr, Vec<u8>)>) {
        let source = self.clients[i].addr;
        if self.clients[i].offline {
            return;
        }
        for (dest, data) in out {
            if dest == self.server {
                self.engine.handle_datagram(self.now, source, &data);
                self.pump();
            }
        }
    }

    /// Run until `cond` holds, at most `limit` of simulated time.
    pub fn run_until(&mut self, limit: Duration, mut cond: impl FnMut(&Sim) -> bool) -> bool {
        let end = self.now + limit;
        while self.now < end {
            if cond(self) {
                return true;
            }
            self.now += self.step;
            self.tick();
        }
        cond(self)
    }

    pub fn all_connected(&self) -> bool {
        self.clients.iter().all(|c| c.connected)
    }

    /// Every client receives camera and microphone frames from every other client.
    pub fn everyone_hears_and_sees_everyone(&self, min_frames: usize) -> bool {
        self.clients.iter().all(|rx| {
            self.clients
                .iter()
                .filter(|tx| tx.index != rx.index)
                .all(|tx| {
                    rx.frames_from(tx.index, TAG_MIC) >= min_frames
                        && rx.frames_from(tx.index, TAG_CAM) >= min_frames
                })
        })
    }
}
