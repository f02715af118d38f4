//! Entry points of the fuzz targets in `fuzz/` (one per parser of network input) and of
//! the corpus tests that replay their seeds in `cargo test`. Thin: each hands its bytes
//! to the code the worker runs, and panics only where that code broke a promise (the
//! fuzzer's finding). Not part of the engine's API.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use str0m::media::{Direction, MediaKind};
use str0m::{Candidate, Rtc};

use crate::engine::{Engine, EngineConfig, Output};
use crate::forward::{Rewriter, vp8_is_keyframe_start};
use crate::net::demux::{first_frame, named_worker};
use crate::net::tcp::{Deframed, MAX_READ_BUFFER, deframe};
use crate::net::{is_stun, worker_of_stun};
use crate::{MidSource, ParticipantId, RoomId, SfuEvent, TrackSource};

const PEER: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 50_000);

/// `stun_demux`: one datagram (or the first bytes of an ICE-TCP connection) reaching
/// the one-port demultiplexer, which names a worker from the ufrag of a STUN request.
/// Returns the worker named, as a datagram or else as a first TCP frame.
pub fn stun_demux(data: &[u8]) -> Option<usize> {
    let named = named_worker(data);
    if let Some(w) = named {
        assert!(
            is_stun(data),
            "a worker named by a datagram that is not STUN"
        );
        assert_eq!(worker_of_stun(data), Some(w));
    }
    let by_tcp = first_frame(data).and_then(|frame| {
        let len = usize::from(u16::from_be_bytes([data[0], data[1]]));
        assert_eq!(frame.len(), len, "the first frame is its declared length");
        worker_of_stun(frame)
    });
    named.or(by_tcp)
}

/// `tcp_framing`: an ICE-TCP byte stream (RFC 4571), delivered in the chunk sizes the
/// first four bytes choose, must give the same packets as the whole stream read at once,
/// and the partial frame kept between reads never exceeds one frame. Returns the number
/// of packets.
pub fn tcp_framing(data: &[u8]) -> usize {
    let (sizes, stream) = data.split_at(data.len().min(4));
    let reference = deframe_at_once(stream);
    let mut read = Vec::new();
    let mut framed = false;
    let mut got = Vec::new();
    let mut hung_up = false;
    let mut at = 0;
    for i in 0.. {
        if at >= stream.len() {
            break;
        }
        let size = 1 + usize::from(sizes.get(i % 4).copied().unwrap_or(255)) * 37;
        let end = (at + size).min(stream.len());
        read.extend_from_slice(&stream[at..end]);
        at = end;
        match deframe(&mut read, &mut framed, PEER, &mut got) {
            Deframed::Frames(_) => assert!(read.len() <= MAX_READ_BUFFER),
            Deframed::HangUp => {
                hung_up = true;
                break;
            }
        }
    }
    let got: Vec<Vec<u8>> = got.into_iter().map(|(_, p)| p).collect();
    let packets = got.len();
    assert_eq!(
        (got, hung_up),
        reference,
        "chunked reads changed the packets"
    );
    packets
}

/// The packets of a whole stream by the letter of RFC 4571 and RFC 7983, written
/// independently of [`deframe`]: complete frames in order, empty ones skipped, and a
/// hang-up if the first frame is not STUN.
fn deframe_at_once(stream: &[u8]) -> (Vec<Vec<u8>>, bool) {
    let mut out = Vec::new();
    let mut rest = stream;
    let mut first = true;
    while rest.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        if rest.len() < 2 + len {
            break;
        }
        let packet = &rest[2..2 + len];
        if first && !matches!(packet.first(), Some(0..=3)) {
            return (out, true);
        }
        first = false;
        if !packet.is_empty() {
            out.push(packet.to_vec());
        }
        rest = &rest[2 + len..];
    }
    (out, false)
}

/// `vp8`: an RTP payload of a VP8 stream (the keyframe gate reads its payload
/// descriptor, RFC 7741), and the stream's sequence numbers and timestamps (every
/// 8 bytes of input: seq, timestamp, milliseconds since the last packet, flags) through
/// the rewriter that forwards them to a subscriber. Returns whether the payload starts
/// a keyframe.
pub fn vp8(data: &[u8]) -> bool {
    let keyframe = vp8_is_keyframe_start(data);
    let t0 = Instant::now();
    let mut now = t0;
    let mut rewriter = Rewriter::new(1000, 90_000);
    let mut ext: Option<u64> = None;
    let mut last_out: Option<u64> = None;
    for p in data.chunks_exact(8) {
        let seq = u16::from_be_bytes([p[0], p[1]]);
        let ts = u32::from_be_bytes([p[2], p[3], p[4], p[5]]);
        now += Duration::from_millis(u64::from(p[6]));
        if p[7] & 1 != 0 {
            // A layer switch or resume after mute.
            rewriter.rebase();
        }
        let in_seq = extend(ext, seq);
        ext = Some(in_seq);
        if let Some((out, _)) = rewriter.rewrite(in_seq, ts, now, 90_000) {
            // Subscribers' SRTP contexts start at rollover 0: the first packet maps to
            // the initial number and nothing goes below it.
            assert!(
                out >= 1000,
                "rewritten sequence number {out} below the start"
            );
            if p[7] & 1 != 0
                && let Some(prev) = last_out
            {
                assert!(out > prev, "a rebase went backwards: {prev} → {out}");
            }
            last_out = Some(last_out.map_or(out, |l| l.max(out)));
        }
    }
    let _ = vp8_is_keyframe_start(&data[data.len() / 2..]);
    keyframe
}

/// A 16-bit RTP sequence number extended to 64 bits next to the previous one, as
/// str0m's receive side does (the nearest of the three candidate rollovers).
fn extend(prev: Option<u64>, seq: u16) -> u64 {
    let Some(prev) = prev else {
        return u64::from(seq);
    };
    let base = (prev & !0xffff) | u64::from(seq);
    [
        base.checked_sub(1 << 16),
        Some(base),
        base.checked_add(1 << 16),
    ]
    .into_iter()
    .flatten()
    .min_by_key(|c| c.abs_diff(prev))
    .unwrap_or(base)
}

/// `sdp_offer`: a client's SDP through the engine, sans I/O with time as input. The
/// input is text split at NUL bytes: the offer participant `a` joins with, its answer to
/// the server's offer (of `b`'s tracks, once `b` joins and publishes), a renegotiation
/// offer, and steps of time (each byte: that many 100 ms). Then the room closes, which
/// must leave nothing behind. Returns whether the offer was accepted.
pub fn sdp_offer(data: &[u8]) -> bool {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.split('\0');
    let offer = parts.next().unwrap_or_default();
    let answer = parts.next();
    let reoffer = parts.next();
    let steps = parts.next().map(str::as_bytes).unwrap_or_default();

    let mut now = Instant::now();
    let mut cfg = EngineConfig::new(SocketAddr::from((Ipv4Addr::LOCALHOST, 10_000)));
    cfg.tcp = true;
    cfg.ufrag_prefix = "w0+".into();
    let mut engine = Engine::new(cfg);
    let room = RoomId::new("room");
    let a = ParticipantId::new("a");
    let joined = engine.join(now, room.clone(), a.clone(), offer, sources_of(offer));
    drain(&mut engine);
    if joined.is_ok() {
        let b = ParticipantId::new("b");
        let reference = publisher_offer();
        engine
            .join(
                now,
                room.clone(),
                b.clone(),
                reference,
                sources_of(reference),
            )
            .expect("the reference publisher's offer is accepted");
        // Publish without waiting for media (none flows here): the engine offers the
        // tracks to `a` at once.
        for source in [TrackSource::Microphone, TrackSource::Camera] {
            engine
                .set_publishing(now, &b, source, true)
                .expect("b is in the room");
        }
        let offer_id = drain(&mut engine).into_iter().find_map(|e| match e {
            SfuEvent::Renegotiate {
                participant,
                offer_id,
                ..
            } if participant == a => Some(offer_id),
            _ => None,
        });
        if let (Some(id), Some(answer)) = (offer_id, answer) {
            let _ = engine.answer(now, &a, id, answer);
            drain(&mut engine);
        }
        if let Some(reoffer) = reoffer {
            let _ = engine.offer(now, &a, reoffer, sources_of(reoffer));
            drain(&mut engine);
        }
        for &step in steps.iter().take(64) {
            now += Duration::from_millis(100 * u64::from(step));
            engine.handle_timeout(now);
            drain(&mut engine);
        }
    }
    engine.close_room(now, &room);
    drain(&mut engine);
    assert_eq!(
        engine.participant_count(),
        0,
        "a participant outlived its room"
    );
    assert_eq!(engine.room_count(), 0, "the room outlived close_room");
    joined.is_ok()
}

/// The sources a client names for its m-lines, as the web client does: in the order of
/// the offer's mids, microphone, camera, screen.
fn sources_of(offer: &str) -> Vec<MidSource> {
    let kinds = [
        TrackSource::Microphone,
        TrackSource::Camera,
        TrackSource::ScreenShare,
    ];
    offer
        .lines()
        .filter_map(|l| l.trim_end().strip_prefix("a=mid:"))
        .zip(kinds)
        .map(|(mid, source)| MidSource {
            mid: mid.to_owned(),
            source,
        })
        .collect()
}

/// Events of everything the engine asked for; the rest (datagrams) goes nowhere.
fn drain(engine: &mut Engine) -> Vec<SfuEvent> {
    let mut events = Vec::new();
    // Bounded: the engine's queue holds what the last operation produced.
    for _ in 0..100_000 {
        match engine.poll_output() {
            Some(Output::Event(e)) => events.push(e),
            Some(_) => {}
            None => return events,
        }
    }
    panic!("the engine produced more than 100,000 outputs for one operation");
}

/// An offer made by str0m as a client, once per process: microphone and camera, both
/// send-only, as the web client publishes.
pub fn publisher_offer() -> &'static str {
    static OFFER: OnceLock<String> = OnceLock::new();
    OFFER.get_or_init(|| {
        crate::install_crypto();
        let mut rtc = Rtc::builder().build(Instant::now());
        if let Ok(c) = Candidate::host(PEER, "udp") {
            rtc.add_local_candidate(c);
        }
        let mut api = rtc.sdp_api();
        api.add_media(
            MediaKind::Audio,
            Direction::SendOnly,
            Some("b".into()),
            Some("mic".into()),
            None,
        );
        api.add_media(
            MediaKind::Video,
            Direction::SendOnly,
            Some("b".into()),
            Some("cam".into()),
            None,
        );
        let (offer, _) = api.apply().expect("str0m makes an offer");
        offer.to_sdp_string()
    })
}
