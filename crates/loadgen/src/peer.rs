//! One synthetic participant: a str0m `Rtc` in RTP mode on its own UDP socket, the
//! media it publishes, and what it has received.
//!
//! RTP mode because a load tool must not spend its CPU on (de)packetizing frames: it
//! writes ready RTP payloads and reads incoming packets as they are, which is also what
//! lets it check sequence numbers and the send stamps in the payloads.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::format::Codec;
use str0m::media::{Direction, ExtensionValues, MediaKind, Mid, Rid, Simulcast, SimulcastLayer};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{RtpWrite, SeqNo};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};

use crate::layers::{Dynacast, Received, SentStream};
use crate::stats::{Histogram, SeqTracker};
use crate::synth::{self, Origin, StreamTag, VideoSchedule};

/// The address participants' sockets bind to: 127.0.0.1 unless [`set_bind_ip`] says
/// otherwise (Janus will not gather candidates on loopback, so its benchmark runs in a
/// private network namespace on a veth address; see `scripts/janus/`).
static BIND_IP: std::sync::OnceLock<std::net::IpAddr> = std::sync::OnceLock::new();

/// Sets the participants' bind address; only the first call counts.
pub fn set_bind_ip(ip: std::net::IpAddr) {
    let _ = BIND_IP.set(ip);
}

fn bind_ip() -> std::net::IpAddr {
    *BIND_IP.get_or_init(|| std::net::Ipv4Addr::LOCALHOST.into())
}

/// What a participant sends.
#[derive(Clone, Debug)]
pub struct PublishPlan {
    pub audio: bool,
    pub video: Option<VideoPlan>,
    /// The microphone's RFC 6464 level says "voice, loud" on every packet (the others
    /// say "background noise", unvoiced), so that the SFU's active speaker is this one.
    pub loud: bool,
}

/// RFC 6464 levels (−dBov) of a loud talker and of background noise; the SFU counts a
/// frame as voiced at −50 dBov or louder (`meeting_sfu::speaker`).
const LOUD_DBOV: i8 = -20;
const QUIET_DBOV: i8 = -90;

#[derive(Clone, Debug)]
pub struct VideoPlan {
    /// Of the top layer; with simulcast the others get 1/4 and 1/16 of it.
    pub bitrate_bps: u64,
    pub fps: u32,
    pub keyframe_interval: Duration,
    pub simulcast: bool,
}

/// Simulcast layers, lowest first, with their share of the top bitrate.
pub const SIMULCAST_LAYERS: [(&str, u64); 3] = [("q", 16), ("h", 4), ("f", 1)];

/// The mids of the three m-lines of the publishing offer (browser order).
#[derive(Clone, Debug)]
pub struct Mids {
    pub microphone: String,
    pub camera: String,
    pub screen: String,
}

/// One outgoing RTP stream (audio, or one video layer).
#[derive(Debug)]
struct Outgoing {
    mid: Mid,
    rid: Option<Rid>,
    next: Instant,
    seq: u64,
    rtp_time: u32,
    /// `None` for audio.
    video: Option<VideoSchedule>,
    /// What was sent in the window, and whether dynacast stopped this layer.
    sent: SentStream,
}

/// Counters of what one participant received and sent.
#[derive(Clone, Debug, Default)]
pub struct PeerCounters {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub rx_keyframes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub send_errors: u64,
}

#[derive(Debug)]
pub struct Peer {
    pub participant: usize,
    rtc: Rtc,
    pub socket: mio::net::UdpSocket,
    local: SocketAddr,
    pending: Option<SdpPendingOffer>,
    mids: Option<(Mid, Mid, Mid)>,
    plan: PublishPlan,
    outgoing: Vec<Outgoing>,
    pub started: Instant,
    pub connected_at: Option<Instant>,
    pub disconnected: bool,
    /// Set when str0m reports a fatal error; the peer is then left alone.
    pub failed: Option<String>,
    pub next_timeout: Instant,
    pub counters: PeerCounters,
    pub streams: HashMap<u32, SeqTracker>,
    /// Whether this peer connection is expected to receive media (a Janus publisher's
    /// connection only sends).
    pub receives: bool,
    /// What was received in the window, per publisher and layer.
    pub received: Received,
    /// The `layer-needed` changes applied (kept over the whole run).
    pub dynacast: Dynacast,
}

/// What the engine thread hands a peer so that its events land in thread-wide stats.
#[derive(Debug)]
pub struct Sink<'a> {
    pub latency: &'a mut Histogram,
    pub newly_connected: &'a mut u32,
}

impl Peer {
    /// An `Rtc` in RTP mode with Opus and VP8 only, on a fresh 127.0.0.1 socket.
    fn rtc() -> anyhow::Result<(Rtc, mio::net::UdpSocket, SocketAddr)> {
        let std_socket =
            std::net::UdpSocket::bind((bind_ip(), 0)).context("binding a UDP socket")?;
        std_socket.set_nonblocking(true)?;
        let local = std_socket.local_addr()?;
        let socket = mio::net::UdpSocket::from_std(std_socket);
        let mut rtc = Rtc::builder()
            .set_rtp_mode(true)
            .clear_codecs()
            .enable_opus(true, false)
            .enable_vp8(true)
            .build(Instant::now());
        let candidate =
            Candidate::host(local, "udp").map_err(|e| anyhow!("host candidate: {e}"))?;
        rtc.add_local_candidate(candidate);
        Ok((rtc, socket, local))
    }

    /// A receive-only peer connection answering a server's offer (Janus subscribers,
    /// which get their own peer connection). Returns the peer and its answer.
    pub fn new_answerer(
        participant: usize,
        started: Instant,
        offer: &str,
    ) -> anyhow::Result<(Peer, String)> {
        let (rtc, socket, local) = Self::rtc()?;
        let mut peer = Peer {
            participant,
            rtc,
            socket,
            local,
            pending: None,
            mids: None,
            plan: PublishPlan {
                audio: false,
                video: None,
                loud: false,
            },
            outgoing: Vec::new(),
            started,
            connected_at: None,
            disconnected: false,
            failed: None,
            next_timeout: Instant::now(),
            counters: PeerCounters::default(),
            streams: HashMap::new(),
            receives: true,
            received: Received::default(),
            dynacast: Dynacast::default(),
        };
        let answer = peer.accept_offer(offer)?;
        Ok((peer, answer))
    }

    /// Binds a socket on 127.0.0.1 and creates the publishing offer.
    pub fn new(
        participant: usize,
        plan: PublishPlan,
        started: Instant,
    ) -> anyhow::Result<(Peer, String, Mids)> {
        let (mut rtc, socket, local) = Self::rtc()?;
        let now = Instant::now();
        let stream = format!("load-{participant}");
        let mut api = rtc.sdp_api();
        let mic = api.add_media(
            MediaKind::Audio,
            Direction::SendOnly,
            Some(stream.clone()),
            Some("mic".into()),
            None,
        );
        let simulcast = plan.video.as_ref().filter(|v| v.simulcast).map(|_| {
            let mut s = Simulcast::new();
            s.send = SIMULCAST_LAYERS
                .iter()
                .map(|(rid, _)| SimulcastLayer::new(rid))
                .collect();
            s
        });
        let cam = api.add_media(
            MediaKind::Video,
            Direction::SendOnly,
            Some(stream.clone()),
            Some("cam".into()),
            simulcast,
        );
        let screen = api.add_media(
            MediaKind::Video,
            Direction::SendOnly,
            Some(stream),
            Some("screen".into()),
            None,
        );
        let (offer, pending) = api.apply().ok_or_else(|| anyhow!("str0m made no offer"))?;
        let mids = Mids {
            microphone: mic.to_string(),
            camera: cam.to_string(),
            screen: screen.to_string(),
        };
        let peer = Peer {
            participant,
            rtc,
            socket,
            local,
            pending: Some(pending),
            mids: Some((mic, cam, screen)),
            plan,
            outgoing: Vec::new(),
            started,
            connected_at: None,
            disconnected: false,
            failed: None,
            next_timeout: now,
            counters: PeerCounters::default(),
            streams: HashMap::new(),
            receives: true,
            received: Received::default(),
            dynacast: Dynacast::default(),
        };
        Ok((peer, offer.to_sdp_string(), mids))
    }

    /// The server's answer to our publishing offer.
    pub fn accept_answer(&mut self, sdp: &str) -> anyhow::Result<()> {
        let answer = SdpAnswer::from_sdp_string(sdp).map_err(|e| anyhow!("answer SDP: {e}"))?;
        let pending = self
            .pending
            .take()
            .ok_or_else(|| anyhow!("no offer is pending"))?;
        self.rtc
            .sdp_api()
            .accept_answer(pending, answer)
            .map_err(|e| anyhow!("answer refused: {e}"))?;
        self.next_timeout = Instant::now();
        Ok(())
    }

    /// A server offer (the tracks we receive changed); returns our answer.
    pub fn accept_offer(&mut self, sdp: &str) -> anyhow::Result<String> {
        let offer = SdpOffer::from_sdp_string(sdp).map_err(|e| anyhow!("offer SDP: {e}"))?;
        let answer = self
            .rtc
            .sdp_api()
            .accept_offer(offer)
            .map_err(|e| anyhow!("offer refused: {e}"))?;
        self.next_timeout = Instant::now();
        Ok(answer.to_sdp_string())
    }

    /// Feeds one datagram from the socket.
    pub fn receive(&mut self, now: Instant, source: SocketAddr, data: &[u8], sink: &mut Sink) {
        if self.failed.is_some() {
            return;
        }
        let Ok(contents) = data.try_into() else {
            return;
        };
        let input = Input::Receive(
            now,
            Receive {
                proto: Protocol::Udp,
                source,
                destination: self.local,
                contents,
            },
        );
        if let Err(e) = self.rtc.handle_input(input) {
            self.failed = Some(e.to_string());
            return;
        }
        self.drive(now, sink);
    }

    /// Advances time: sends the media that is due, then lets str0m run its timers.
    pub fn tick(&mut self, now: Instant, sink: &mut Sink) {
        if self.failed.is_some() {
            return;
        }
        self.send_due(now);
        if let Err(e) = self.rtc.handle_input(Input::Timeout(now)) {
            self.failed = Some(e.to_string());
            return;
        }
        self.drive(now, sink);
    }

    /// When this peer next needs [`Peer::tick`].
    pub fn next_wake(&self) -> Instant {
        let media = self.outgoing.iter().map(|o| o.next).min();
        match media {
            Some(m) if m < self.next_timeout => m,
            _ => self.next_timeout,
        }
    }

    fn drive(&mut self, now: Instant, sink: &mut Sink) {
        // Bounded: str0m ends every drain with a Timeout; the bound only guards bugs.
        for _ in 0..100_000 {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(t)) => {
                    self.next_timeout = t;
                    return;
                }
                Ok(Output::Transmit(t)) => match self.socket.send_to(&t.contents, t.destination) {
                    Ok(_) => {}
                    Err(e) if e.kind() == ErrorKind::WouldBlock => self.counters.send_errors += 1,
                    Err(_) => self.counters.send_errors += 1,
                },
                Ok(Output::Event(e)) => self.on_event(now, e, sink),
                Err(e) => {
                    self.failed = Some(e.to_string());
                    return;
                }
            }
        }
    }

    fn on_event(&mut self, now: Instant, event: Event, sink: &mut Sink) {
        match event {
            Event::Connected if self.connected_at.is_none() => {
                self.connected_at = Some(now);
                *sink.newly_connected += 1;
                self.start_sending(now);
            }
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                self.disconnected = true
            }
            Event::RtpPacket(p) => {
                self.counters.rx_packets += 1;
                self.counters.rx_bytes += (p.header.header_len + p.payload.len()) as u64;
                self.streams
                    .entry(*p.header.ssrc)
                    .or_default()
                    .record(*p.seq_no);
                if let Some(stamp) = synth::read_stamp(&p.payload) {
                    let latency_ns = synth::clock_nanos(now).saturating_sub(stamp.sent_ns);
                    sink.latency.record(latency_ns / 1000);
                    let bytes = p.header.header_len + p.payload.len();
                    self.received
                        .record(stamp.publisher, stamp.stream, bytes, now);
                }
                let vp8 = self
                    .rtc
                    .codec_config()
                    .params()
                    .iter()
                    .find(|c| c.spec().codec == Codec::Vp8)
                    .map(|c| c.pt());
                if vp8 == Some(p.header.payload_type) && synth::vp8_is_keyframe(&p.payload) {
                    self.counters.rx_keyframes += 1;
                }
            }
            Event::KeyframeRequest(req) => {
                for o in &mut self.outgoing {
                    if o.mid == req.mid
                        && (req.rid.is_none() || o.rid == req.rid)
                        && let Some(v) = &mut o.video
                    {
                        v.request_keyframe();
                    }
                }
            }
            _ => {}
        }
    }

    /// Sets up the outgoing streams once DTLS is up, per the plan.
    fn start_sending(&mut self, now: Instant) {
        let Some((mic, cam, _)) = self.mids else {
            return;
        };
        let publisher = self.participant as u32;
        let sent = |stream, rid: Option<&str>| SentStream {
            stream,
            rid: rid.map(str::to_owned),
            packets: 0,
            bytes: 0,
            first: None,
            last: None,
            paused: false,
        };
        if self.plan.audio {
            self.outgoing.push(Outgoing {
                mid: mic,
                rid: None,
                next: now,
                seq: 1000,
                rtp_time: 4_000,
                video: None,
                sent: sent(StreamTag::Audio, None),
            });
        }
        if let Some(v) = &self.plan.video {
            let layers: Vec<(Option<&str>, StreamTag, u64)> = if v.simulcast {
                SIMULCAST_LAYERS
                    .iter()
                    .zip(0u8..)
                    .map(|((rid, div), n)| (Some(*rid), StreamTag::Layer(n), v.bitrate_bps / div))
                    .collect()
            } else {
                vec![(None, StreamTag::Video, v.bitrate_bps)]
            };
            for (rid, stream, bps) in layers {
                let origin = Origin { publisher, stream };
                self.outgoing.push(Outgoing {
                    mid: cam,
                    rid: rid.map(Rid::from),
                    next: now,
                    seq: 2000,
                    rtp_time: 9_000,
                    video: Some(VideoSchedule::new(origin, bps, v.fps, v.keyframe_interval)),
                    sent: sent(stream, rid),
                });
            }
        }
    }

    fn send_due(&mut self, now: Instant) {
        if self.connected_at.is_none() {
            return;
        }
        let codecs = self.rtc.codec_config().params();
        let opus = codecs
            .iter()
            .find(|p| p.spec().codec == Codec::Opus)
            .map(|p| p.pt());
        let vp8 = codecs
            .iter()
            .find(|p| p.spec().codec == Codec::Vp8)
            .map(|p| p.pt());
        let publisher = self.participant as u32;
        let (level, voiced) = if self.plan.loud {
            (LOUD_DBOV, true)
        } else {
            (QUIET_DBOV, false)
        };
        for o in &mut self.outgoing {
            // After a stall (the machine was busy), skip ahead instead of bursting.
            if now.saturating_duration_since(o.next) > Duration::from_millis(500) {
                o.next = now;
            }
            while o.next <= now {
                if o.sent.paused {
                    // An encoder told to stop a layer sends nothing; its clock runs on.
                    if let Some(schedule) = &o.video {
                        o.rtp_time = o.rtp_time.wrapping_add(schedule.rtp_step());
                        o.next += schedule.frame_interval();
                    } else {
                        o.next += Duration::from_millis(20);
                    }
                    continue;
                }
                let mut api = self.rtc.direct_api();
                let Some(stream) = api.stream_tx_by_mid(o.mid, o.rid) else {
                    o.next += Duration::from_millis(20);
                    continue;
                };
                match &mut o.video {
                    None => {
                        let Some(pt) = opus else { break };
                        let payload = synth::opus_packet(80, publisher, now);
                        self.counters.tx_packets += 1;
                        self.counters.tx_bytes += payload.len() as u64;
                        o.sent.record(payload.len(), now);
                        stream.write_rtp(
                            RtpWrite::new(pt, SeqNo::from(o.seq), o.rtp_time, now, payload)
                                .marker(false)
                                .ext_vals(ExtensionValues {
                                    audio_level: Some(level),
                                    voice_activity: Some(voiced),
                                    ..Default::default()
                                }),
                        );
                        o.seq += 1;
                        o.rtp_time = o.rtp_time.wrapping_add(960);
                        o.next += Duration::from_millis(20);
                    }
                    Some(schedule) => {
                        let Some(pt) = vp8 else { break };
                        let (packets, _key) = schedule.next_frame(now);
                        let n = packets.len();
                        for (i, payload) in packets.into_iter().enumerate() {
                            self.counters.tx_packets += 1;
                            self.counters.tx_bytes += payload.len() as u64;
                            o.sent.record(payload.len(), now);
                            stream.write_rtp(
                                RtpWrite::new(pt, SeqNo::from(o.seq), o.rtp_time, now, payload)
                                    .marker(i + 1 == n)
                                    .nackable(true),
                            );
                            o.seq += 1;
                        }
                        o.rtp_time = o.rtp_time.wrapping_add(schedule.rtp_step());
                        o.next += schedule.frame_interval();
                    }
                }
            }
        }
    }

    /// Forgets the loss and throughput counted so far (the measurement window starts).
    pub fn reset_counters(&mut self) {
        self.counters = PeerCounters::default();
        self.streams.clear();
        self.received = Received::default();
        for o in &mut self.outgoing {
            o.sent.reset();
        }
    }

    /// Dynacast (`layer-needed`): stop or resume sending simulcast layer `rid` of the
    /// camera, as a browser's `setParameters({ encodings: [{ active }] })` would. A
    /// resumed layer starts with a key frame, as an encoder restarting a layer does.
    pub fn set_layer_needed(&mut self, now: Instant, rid: &str, needed: bool) {
        let Some(o) = self
            .outgoing
            .iter_mut()
            .find(|o| o.sent.rid.as_deref() == Some(rid))
        else {
            self.dynacast.unknown += 1;
            return;
        };
        if o.sent.paused != needed {
            // Already in that state (a repeated event): nothing to do.
            return;
        }
        o.sent.paused = !needed;
        if needed && let Some(v) = &mut o.video {
            v.request_keyframe();
            o.next = o.next.min(now);
        }
        self.dynacast.note(now, rid, needed);
    }

    /// What was sent per stream in the window.
    pub fn sent_streams(&self) -> Vec<SentStream> {
        self.outgoing.iter().map(|o| o.sent.clone()).collect()
    }
}
