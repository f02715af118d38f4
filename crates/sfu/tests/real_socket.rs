//! str0m test clients on 127.0.0.1 connect over real UDP to a running [`Sfu`] (worker
//! threads, sockets, wall clock) and exchange media through it.

mod common;

use std::net::{Ipv4Addr, UdpSocket};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Client, TAG_CAM, TAG_MIC};
use meeting_sfu::{ParticipantId, RoomId, Sfu, SfuConfig, SfuEvent};

/// Start an `Sfu` with `workers` workers on a free port range of 127.0.0.1.
fn start_sfu(workers: usize) -> (Sfu, mpsc::Receiver<SfuEvent>) {
    start_sfu_with(workers, false)
}

/// As [`start_sfu`]; with `one_port`, all workers share the range's first port.
fn start_sfu_with(workers: usize, one_port: bool) -> (Sfu, mpsc::Receiver<SfuEvent>) {
    start_sfu_configured(workers, |cfg| {
        if one_port {
            cfg.single_port = Some(cfg.min_port);
        }
    })
}

/// As [`start_sfu`], with `configure` applied to the configuration last.
fn start_sfu_configured(
    workers: usize,
    configure: impl Fn(&mut SfuConfig),
) -> (Sfu, mpsc::Receiver<SfuEvent>) {
    common::init();
    for attempt in 0..50u16 {
        // Probe a range: a port free now is very likely still free a moment later; if
        // not, `start` fails with `Bind` and we try the next range.
        let base = 20_000 + (std::process::id() as u16 % 1000) * 20 + attempt * 7;
        let probe: Vec<_> = (0..workers as u16)
            .map(|i| UdpSocket::bind((Ipv4Addr::LOCALHOST, base + i)))
            .collect();
        if probe.iter().any(|s| s.is_err()) {
            continue;
        }
        drop(probe);
        let (tx, rx) = mpsc::channel();
        let tx = Mutex::new(tx);
        let sink = Arc::new(move |e: SfuEvent| {
            let _ = tx.lock().map(|t| t.send(e));
        });
        let mut cfg = SfuConfig::new(
            workers,
            base,
            base + workers as u16 - 1,
            Ipv4Addr::LOCALHOST.into(),
            Ipv4Addr::LOCALHOST.into(),
        );
        cfg.allow_loopback_announced = true;
        configure(&mut cfg);
        match Sfu::start(cfg, sink) {
            Ok(sfu) => return (sfu, rx),
            Err(meeting_sfu::StartError::Bind { .. }) => continue,
            Err(e) => panic!("start failed: {e}"),
        }
    }
    panic!("no free port range found");
}

struct UdpClient {
    client: Client,
    socket: UdpSocket,
    /// The server's candidates from the join answer: `(protocol, port, tcptype)`.
    candidates: Vec<(String, u16, Option<String>)>,
}

impl UdpClient {
    fn server_port(&self) -> Option<u16> {
        self.candidates
            .iter()
            .find(|(proto, _, _)| proto.eq_ignore_ascii_case("udp"))
            .map(|c| c.1)
    }
}

/// `a=candidate:<foundation> <component> <proto> <prio> <ip> <port> typ <type> [tcptype x]`
fn candidates(sdp: &str) -> Vec<(String, u16, Option<String>)> {
    sdp.lines()
        .filter_map(|l| l.strip_prefix("a=candidate:"))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let port = f.get(5)?.parse().ok()?;
            let tcptype = f
                .iter()
                .position(|x| *x == "tcptype")
                .and_then(|i| f.get(i + 1))
                .map(|s| s.to_string());
            Some((f.get(2)?.to_string(), port, tcptype))
        })
        .collect()
}

fn join(sfu: &Sfu, room: &RoomId, index: u8) -> UdpClient {
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind client socket");
    socket.set_nonblocking(true).expect("nonblocking");
    let addr = socket.local_addr().expect("local addr");
    let mut client = Client::new(index, addr, Instant::now());
    let (offer, sources) = client.make_offer();
    let (tx, rx) = mpsc::channel();
    sfu.join(
        room.clone(),
        client.id.clone(),
        offer,
        sources,
        Box::new(move |r| {
            let _ = tx.send(r);
        }),
    );
    let answer = rx
        .recv_timeout(Duration::from_secs(5))
        .expect("join reply within 5 s")
        .expect("join succeeds");
    client.accept_answer(&answer.sdp);
    let candidates = candidates(&answer.sdp);
    UdpClient {
        client,
        socket,
        candidates,
    }
}

/// Give the SFU a client's answer to its offer `offer_id`; it must be accepted.
fn send_answer(sfu: &Sfu, participant: ParticipantId, offer_id: u64, answer: String) {
    let (tx, rx) = mpsc::channel();
    sfu.answer(
        participant,
        offer_id,
        answer,
        Box::new(move |r| {
            let _ = tx.send(r);
        }),
    );
    rx.recv_timeout(Duration::from_secs(5))
        .expect("answer reply within 5 s")
        .expect("answer accepted");
}

/// Drive clients with the wall clock until `cond` holds or `limit` passes.
fn drive(
    sfu: &Sfu,
    clients: &mut [UdpClient],
    events: &mpsc::Receiver<SfuEvent>,
    limit: Duration,
    cond: impl Fn(&[UdpClient]) -> bool,
) -> bool {
    let deadline = Instant::now() + limit;
    let mut buf = vec![0u8; 2048];
    while Instant::now() < deadline {
        if cond(clients) {
            return true;
        }
        while let Ok(e) = events.try_recv() {
            if let SfuEvent::Renegotiate {
                participant,
                offer_id,
                offer,
                tracks,
                ..
            } = e
            {
                let Some(c) = clients.iter_mut().find(|c| c.client.id == participant) else {
                    continue;
                };
                let answer = c.client.answer_offer(&offer, tracks);
                send_answer(sfu, participant, offer_id, answer);
            }
        }
        for c in clients.iter_mut() {
            let now = Instant::now();
            while let Ok((n, source)) = c.socket.recv_from(&mut buf) {
                c.client.handle_datagram(now, source, &buf[..n]);
            }
            for (dest, data) in c.client.tick(now) {
                let _ = c.socket.send_to(&data, dest);
            }
        }
        // Bounded poll interval of the test's own event loop (the clients' sockets are
        // non-blocking); the loop ends on the condition or the deadline.
        std::thread::sleep(Duration::from_millis(2));
    }
    cond(clients)
}

#[test]
fn clients_exchange_media_over_udp() {
    let (sfu, events) = start_sfu(2);
    let room = RoomId::new("udp-room");
    let mut clients = vec![join(&sfu, &room, 1), join(&sfu, &room, 2)];
    // ICE-TCP is on by default: a passive TCP candidate on the same port as the UDP one.
    let port = clients[0].server_port().expect("a UDP candidate");
    assert!(
        clients[0]
            .candidates
            .iter()
            .any(|(p, pt, t)| p.eq_ignore_ascii_case("tcp")
                && *pt == port
                && t.as_deref() == Some("passive")),
        "{:?}",
        clients[0].candidates
    );
    let ok = drive(&sfu, &mut clients, &events, Duration::from_secs(15), |cs| {
        cs.iter().all(|rx| {
            cs.iter()
                .filter(|tx| tx.client.index != rx.client.index)
                .all(|tx| {
                    rx.client.frames_from(tx.client.index, TAG_MIC) >= 10
                        && rx.client.frames_from(tx.client.index, TAG_CAM) >= 10
                })
        })
    });
    let stats = sfu.stats();
    assert!(
        ok,
        "media did not flow within 15 s: 1 got {}/{} 2 got {}/{}; stats {stats:?}",
        clients[0].client.frames_from(2, TAG_MIC),
        clients[0].client.frames_from(2, TAG_CAM),
        clients[1].client.frames_from(1, TAG_MIC),
        clients[1].client.frames_from(1, TAG_CAM),
    );
    // The room lives on one worker.
    assert_eq!(
        stats.iter().filter(|s| s.rooms == 1).count(),
        1,
        "{stats:?}"
    );
    assert!(
        stats.iter().map(|s| s.rtp_forwarded).sum::<u64>() >= 40,
        "{stats:?}"
    );

    // Screen share through the handle: the other side gets a renegotiation and frames.
    clients[0].client.send_screen = true;
    sfu.set_publishing(
        ParticipantId::new("p1"),
        meeting_sfu::TrackSource::ScreenShare,
        true,
    );
    let shared = drive(&sfu, &mut clients, &events, Duration::from_secs(10), |cs| {
        cs[1].client.frames_from(1, common::TAG_SCREEN) >= 5
            && cs[1]
                .client
                .tracks
                .iter()
                .any(|t| t.source == meeting_sfu::TrackSource::ScreenShare)
    });
    assert!(
        shared,
        "screen share did not arrive: {:?}",
        clients[1].client.tracks
    );

    // Leaving removes the participant from the worker.
    sfu.leave(ParticipantId::new("p2"));
    let gone = drive(
        &sfu,
        &mut clients[..1],
        &events,
        Duration::from_secs(5),
        |_| sfu.stats().iter().map(|s| s.participants).sum::<usize>() == 1,
    );
    assert!(gone, "participant not removed: {:?}", sfu.stats());
    sfu.shutdown();
    assert!(sfu.stats().iter().all(|s| !s.alive));
}

/// Every receiver got at least `n` audio and video frames from every other client.
fn all_hear_all(cs: &[UdpClient], n: usize) -> bool {
    cs.iter().all(|rx| {
        cs.iter()
            .filter(|tx| tx.client.index != rx.client.index)
            .all(|tx| {
                rx.client.frames_from(tx.client.index, TAG_MIC) >= n
                    && rx.client.frames_from(tx.client.index, TAG_CAM) >= n
            })
    })
}

#[test]
fn one_port_mode_uses_every_worker_behind_one_port() {
    let (sfu, events) = start_sfu_with(2, true);
    let ports = sfu.ports();
    assert_eq!(ports.len(), 2);
    assert_eq!(ports[0], ports[1], "one port for all workers: {ports:?}");
    // Two rooms: placed on different workers (least loaded), both behind one port.
    let mut clients = vec![
        join(&sfu, &RoomId::new("one-port-a"), 1),
        join(&sfu, &RoomId::new("one-port-a"), 2),
        join(&sfu, &RoomId::new("one-port-b"), 3),
        join(&sfu, &RoomId::new("one-port-b"), 4),
    ];
    for c in &clients {
        assert_eq!(c.server_port(), Some(ports[0]));
    }
    let ok = drive(&sfu, &mut clients, &events, Duration::from_secs(15), |cs| {
        all_hear_all(&cs[..2], 10) && all_hear_all(&cs[2..], 10)
    });
    let stats = sfu.stats();
    assert!(ok, "media did not flow in both rooms: {stats:?}");
    assert!(
        stats.iter().all(|s| s.rooms == 1 && s.rtp_forwarded >= 40),
        "each worker holds one room and forwards: {stats:?}"
    );
    let demux = sfu
        .one_port_stats()
        .expect("one-port mode has a demultiplexer");
    assert!(
        demux.datagrams_in >= stats.iter().map(|s| s.datagrams_in).sum::<u64>(),
        "every datagram came through the demultiplexer: {demux:?} {stats:?}"
    );

    // A stranger's datagrams (not STUN, unknown source) reach no worker.
    let junk = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    for _ in 0..50 {
        let _ = junk.send_to(&[0x80; 100], (Ipv4Addr::LOCALHOST, ports[0]));
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline && sfu.one_port_stats().map(|d| d.unrouted).unwrap_or(0) < 50 {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        sfu.one_port_stats().map(|d| d.unrouted).unwrap_or(0) >= 50,
        "{:?}",
        sfu.one_port_stats()
    );
    sfu.shutdown();
    assert!(sfu.stats().iter().all(|s| !s.alive));
}

#[test]
fn start_refuses_small_port_range_and_loopback() {
    common::init();
    let sink = Arc::new(|_e: SfuEvent| {});
    let cfg = SfuConfig::new(
        3,
        30_000,
        30_001,
        Ipv4Addr::LOCALHOST.into(),
        Ipv4Addr::new(10, 1, 2, 3).into(),
    );
    assert!(matches!(
        Sfu::start(cfg, sink.clone()),
        Err(meeting_sfu::StartError::PortRange {
            workers: 3,
            available: 2,
            ..
        })
    ));
    let cfg = SfuConfig::new(
        1,
        30_000,
        30_001,
        Ipv4Addr::LOCALHOST.into(),
        Ipv4Addr::LOCALHOST.into(),
    );
    let err = Sfu::start(cfg, sink).expect_err("loopback announced refused");
    assert!(err.to_string().contains("127.0.0.1"), "{err}");
}

#[test]
fn rooms_spread_over_workers_and_garbage_is_counted() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Sfu>();

    let (sfu, _events) = start_sfu(2);
    // Two rooms land on different workers (least loaded at open).
    let _a = join(&sfu, &RoomId::new("room-a"), 1);
    let _b = join(&sfu, &RoomId::new("room-b"), 2);
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline && !sfu.stats().iter().all(|s| s.rooms == 1) {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        sfu.stats()
            .iter()
            .all(|s| s.rooms == 1 && s.participants == 1),
        "{:?}",
        sfu.stats()
    );

    // Garbage from a foreign socket: dropped, counted, workers alive.
    let junk = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    let ports = sfu.ports();
    for i in 0..200u32 {
        let mut d = vec![(i % 256) as u8; (i as usize * 7) % 1400];
        if let Some(b) = d.first_mut() {
            *b = [0x00, 0x01, 22, 0x80, 0x90][i as usize % 5];
        }
        for &p in &ports {
            let _ = junk.send_to(&d, (Ipv4Addr::LOCALHOST, p));
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    let dropped = || sfu.stats().iter().map(|s| s.datagrams_dropped).sum::<u64>();
    // Loopback may lose part of a burst (socket buffer); what arrives is all dropped.
    while Instant::now() < deadline && dropped() < 200 {
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(100));
    assert!(dropped() >= 200, "{:?}", sfu.stats());
    assert!(
        sfu.stats()
            .iter()
            .all(|s| s.datagrams_dropped == s.datagrams_in),
        "{:?}",
        sfu.stats()
    );
    assert!(sfu.stats().iter().all(|s| s.alive));
    // Requests for unknown participants get an answer, not silence.
    let (tx, rx) = mpsc::channel();
    sfu.answer(
        ParticipantId::new("nobody"),
        1,
        String::new(),
        Box::new(move |r| {
            let _ = tx.send(r);
        }),
    );
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(1)).expect("reply"),
        Err(meeting_sfu::SfuError::UnknownParticipant)
    );
    sfu.close_room(RoomId::new("room-a"));
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline && sfu.stats().iter().map(|s| s.rooms).sum::<usize>() != 1 {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        sfu.stats().iter().map(|s| s.rooms).sum::<usize>(),
        1,
        "{:?}",
        sfu.stats()
    );
}

/// A receive-only str0m client that reaches the SFU over ICE-TCP only: an active TCP
/// candidate, RFC 4571 frames on one TCP connection to the worker's port.
struct TcpClient {
    id: ParticipantId,
    rtc: str0m::Rtc,
    stream: std::net::TcpStream,
    local: std::net::SocketAddr,
    server: std::net::SocketAddr,
    read: Vec<u8>,
    pending: Option<str0m::change::SdpPendingOffer>,
    connected: bool,
    media: [usize; 2],
}

impl TcpClient {
    /// Connect to the worker and make the join offer (receive-only audio).
    fn connect(server: std::net::SocketAddr) -> (TcpClient, String) {
        use str0m::media::{Direction, MediaKind};
        let stream = std::net::TcpStream::connect(server).expect("TCP connect to the worker");
        stream.set_nonblocking(true).expect("nonblocking");
        stream.set_nodelay(true).expect("nodelay");
        let local = stream.local_addr().expect("local addr");
        let mut rtc = str0m::Rtc::builder().build(Instant::now());
        let candidate = str0m::Candidate::builder()
            .tcp()
            .host(local)
            .tcptype(str0m::net::TcpType::Active)
            .build()
            .expect("TCP candidate");
        rtc.add_local_candidate(candidate);
        let mut change = rtc.sdp_api();
        change.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None);
        let (offer, pending) = change.apply().expect("an offer");
        let c = TcpClient {
            id: ParticipantId::new("tcp-client"),
            rtc,
            stream,
            local,
            server,
            read: Vec::new(),
            pending: Some(pending),
            connected: false,
            media: [0, 0],
        };
        (c, offer.to_sdp_string())
    }

    fn accept_answer(&mut self, sdp: &str) {
        let answer = str0m::change::SdpAnswer::from_sdp_string(sdp).expect("answer parses");
        let pending = self.pending.take().expect("pending offer");
        self.rtc
            .sdp_api()
            .accept_answer(pending, answer)
            .expect("answer accepted");
    }

    fn answer_offer(&mut self, sdp: &str) -> String {
        let offer = str0m::change::SdpOffer::from_sdp_string(sdp).expect("offer parses");
        let answer = self
            .rtc
            .sdp_api()
            .accept_offer(offer)
            .expect("offer accepted");
        answer.to_sdp_string()
    }

    /// Read frames from the connection into the `Rtc`, then write its output as frames.
    fn pump(&mut self) {
        use std::io::{Read, Write};
        use str0m::net::{Protocol, Receive};
        use str0m::{Event, Input, Output};
        let mut buf = [0u8; 4096];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => self.read.extend_from_slice(&buf[..n]),
                Err(_) => break,
            }
        }
        let now = Instant::now();
        let mut at = 0;
        while let Some(h) = self.read.get(at..at + 2) {
            let len = usize::from(u16::from_be_bytes([h[0], h[1]]));
            let Some(packet) = self.read.get(at + 2..at + 2 + len) else {
                break;
            };
            if let Ok(contents) = packet.try_into() {
                let input = Input::Receive(
                    now,
                    Receive {
                        proto: Protocol::Tcp,
                        source: self.server,
                        destination: self.local,
                        contents,
                    },
                );
                let _ = self.rtc.handle_input(input);
            }
            at += 2 + len;
        }
        self.read.drain(..at);
        let _ = self.rtc.handle_input(Input::Timeout(now));
        for _ in 0..10_000 {
            match self.rtc.poll_output() {
                Ok(Output::Transmit(t)) => {
                    assert_eq!(
                        t.proto,
                        Protocol::Tcp,
                        "the client has only a TCP candidate"
                    );
                    let mut frame = (t.contents.len() as u16).to_be_bytes().to_vec();
                    frame.extend_from_slice(&t.contents);
                    // Blocking is fine for a test's few hundred bytes per frame.
                    self.stream.set_nonblocking(false).expect("blocking");
                    self.stream.write_all(&frame).expect("write frame");
                    self.stream.set_nonblocking(true).expect("nonblocking");
                }
                Ok(Output::Event(Event::Connected)) => self.connected = true,
                Ok(Output::Event(Event::MediaData(m))) => {
                    let kind = usize::from(m.params.spec().codec.is_video());
                    self.media[kind] += 1;
                }
                Ok(Output::Event(_)) => {}
                Ok(Output::Timeout(_)) | Err(_) => break,
            }
        }
    }
}

/// A UDP publisher and a TCP-only subscriber join `room`; the subscriber must connect
/// over ICE-TCP and receive audio and video. Returns the SFU's stats at the end.
fn tcp_subscriber_receives(
    sfu: &Sfu,
    events: &mpsc::Receiver<SfuEvent>,
    room: &RoomId,
    publisher_index: u8,
) -> Vec<meeting_sfu::WorkerStats> {
    tcp_subscriber_receives_for(sfu, events, room, publisher_index, Duration::ZERO)
}

/// As [`tcp_subscriber_receives`], and the subscriber stays at least `hold` after its
/// TCP connect; the stats are taken before it goes.
fn tcp_subscriber_receives_for(
    sfu: &Sfu,
    events: &mpsc::Receiver<SfuEvent>,
    room: &RoomId,
    publisher_index: u8,
    hold: Duration,
) -> Vec<meeting_sfu::WorkerStats> {
    let mut publisher = join(sfu, room, publisher_index);
    let port = publisher.server_port().expect("UDP candidate");
    let server = std::net::SocketAddr::from((Ipv4Addr::LOCALHOST, port));

    let connected_at = Instant::now();
    let (mut tcp, offer) = TcpClient::connect(server);
    let (tx, rx) = mpsc::channel();
    sfu.join(
        room.clone(),
        tcp.id.clone(),
        offer,
        Vec::new(),
        Box::new(move |r| {
            let _ = tx.send(r);
        }),
    );
    let answer = rx
        .recv_timeout(Duration::from_secs(5))
        .expect("join reply")
        .expect("join succeeds");
    tcp.accept_answer(&answer.sdp);

    let deadline = Instant::now() + Duration::from_secs(20) + hold;
    let mut buf = vec![0u8; 2048];
    while Instant::now() < deadline
        && !(tcp.connected
            && tcp.media[0] >= 10
            && tcp.media[1] >= 10
            && connected_at.elapsed() >= hold)
    {
        while let Ok(e) = events.try_recv() {
            let SfuEvent::Renegotiate {
                participant,
                offer_id,
                offer,
                tracks,
                ..
            } = e
            else {
                continue;
            };
            let answer = if participant == tcp.id {
                tcp.answer_offer(&offer)
            } else {
                publisher.client.answer_offer(&offer, tracks)
            };
            send_answer(sfu, participant, offer_id, answer);
        }
        let c = &mut publisher;
        let now = Instant::now();
        while let Ok((n, source)) = c.socket.recv_from(&mut buf) {
            c.client.handle_datagram(now, source, &buf[..n]);
        }
        for (dest, data) in c.client.tick(now) {
            let _ = c.socket.send_to(&data, dest);
        }
        tcp.pump();
        // Bounded poll interval of the test's own loop; it ends on the condition above.
        std::thread::sleep(Duration::from_millis(2));
    }
    let stats = sfu.stats();
    assert!(
        tcp.connected,
        "ICE + DTLS over TCP did not complete: {stats:?}"
    );
    assert!(
        tcp.media[0] >= 10 && tcp.media[1] >= 10,
        "audio/video frames over TCP: {:?}; {stats:?}",
        tcp.media
    );
    stats
}

#[test]
fn a_client_with_only_tcp_connects_and_receives_over_ice_tcp() {
    let (sfu, events) = start_sfu(1);
    let stats = tcp_subscriber_receives(&sfu, &events, &RoomId::new("ice-tcp"), 1);
    assert_eq!(stats[0].tcp_connections, 1, "{stats:?}");
}

#[test]
fn ice_tcp_in_one_port_mode_reaches_the_second_worker() {
    let (sfu, events) = start_sfu_with(2, true);
    // The first room takes worker 0; the TCP subscriber's room is placed on worker 1, so
    // the demultiplexer must hand its connection over to another thread.
    let _first = join(&sfu, &RoomId::new("first"), 1);
    let stats = tcp_subscriber_receives(&sfu, &events, &RoomId::new("second"), 2);
    assert_eq!(stats[0].tcp_connections, 0, "{stats:?}");
    assert_eq!(stats[1].tcp_connections, 1, "{stats:?}");
    assert_eq!(stats[1].rooms, 1, "{stats:?}");
}

/// Issue #12 item 5: an ICE-TCP connection that sends one STUN-shaped frame and then an
/// empty frame every 100 ms used to hold one of the worker's 1,024 connection slots
/// forever. It is closed at the handshake deadline (short here; 10 s by default), and a
/// real ICE-TCP client on the same worker still connects, receives, and keeps its
/// connection past that deadline.
#[test]
fn an_ice_tcp_connection_that_never_authenticates_is_closed_at_the_deadline() {
    const DEADLINE: Duration = Duration::from_secs(2);
    let (sfu, events) = start_sfu_configured(1, |cfg| cfg.tcp_handshake_timeout = DEADLINE);
    let server = std::net::SocketAddr::from((Ipv4Addr::LOCALHOST, sfu.ports()[0]));
    let held = keep_alive_until_closed(server, Duration::from_secs(15))
        .expect("the keep-alive connection is still open after 15 s");
    assert!(
        held >= DEADLINE,
        "closed after {held:?}, before the deadline"
    );
    assert!(
        held < DEADLINE + Duration::from_secs(3),
        "closed only after {held:?}"
    );
    let stats = tcp_subscriber_receives_for(
        &sfu,
        &events,
        &RoomId::new("ice-tcp-deadline"),
        1,
        DEADLINE * 2,
    );
    assert_eq!(
        stats[0].tcp_connections, 1,
        "the real client's connection outlives the deadline: {stats:?}"
    );
}

/// Connect to `server`, send one STUN-shaped frame (a binding request header without
/// credentials), then an empty RFC 4571 frame every 100 ms until the server closes the
/// connection. Returns how long it stayed open (`None`: still open after `limit`).
fn keep_alive_until_closed(server: std::net::SocketAddr, limit: Duration) -> Option<Duration> {
    use std::io::{ErrorKind, Read, Write};
    let start = Instant::now();
    let mut stream = std::net::TcpStream::connect(server).expect("TCP connect to the worker");
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("read timeout");
    let mut first = vec![0u8, 20, 0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42];
    first.extend_from_slice(&[7; 12]);
    stream.write_all(&first).expect("first frame");
    let mut buf = [0u8; 256];
    while start.elapsed() < limit {
        match stream.read(&mut buf) {
            Ok(0) => return Some(start.elapsed()),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return Some(start.elapsed()),
        }
        if stream.write_all(&[0, 0]).is_err() {
            return Some(start.elapsed());
        }
    }
    None
}
