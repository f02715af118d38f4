//! Writes the seed corpora of the SFU's fuzz targets (`fuzz/corpus/<target>/`): real
//! payloads made the way clients make them (str0m as the browser, as the engine tests
//! do). Run from the repository root:
//!
//! ```sh
//! cargo run -p meeting-sfu --example fuzz_seeds -- fuzz/corpus
//! ```
//!
//! SDP carries fresh ICE credentials and fingerprints each run, so rerunning rewrites
//! those seeds with other (equally valid) bytes.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Instant;

use meeting_sfu::engine::{Engine, EngineConfig, Output};
use meeting_sfu::{MidSource, ParticipantId, RoomId, SfuEvent, TrackSource};
use str0m::change::{SdpOffer, SdpPendingOffer};
use str0m::media::{Direction, MediaKind, Simulcast, SimulcastLayer};
use str0m::{Candidate, Rtc};

fn main() -> std::io::Result<()> {
    let root = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "fuzz/corpus".into()),
    );
    str0m::crypto::from_feature_flags().install_process_default();
    sdp(&root.join("sdp_offer"))?;
    stun(&root.join("stun_demux"))?;
    tcp(&root.join("tcp_framing"))?;
    vp8(&root.join("vp8"))?;
    println!("seeds written under {}", root.display());
    Ok(())
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join(name), bytes)
}

fn client(port: u16) -> Rtc {
    let mut rtc = Rtc::builder().build(Instant::now());
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    rtc.add_local_candidate(Candidate::host(addr, "udp").expect("host candidate"));
    rtc
}

/// The web client's offer: microphone, camera (optionally simulcast) and screen, all
/// send-only.
fn publish(rtc: &mut Rtc, simulcast: bool) -> (String, SdpPendingOffer) {
    let mut api = rtc.sdp_api();
    api.add_media(
        MediaKind::Audio,
        Direction::SendOnly,
        Some("s".into()),
        Some("mic".into()),
        None,
    );
    let layers = simulcast.then(|| Simulcast {
        send: ["h", "m", "l"]
            .into_iter()
            .map(SimulcastLayer::new)
            .collect(),
        recv: vec![],
    });
    api.add_media(
        MediaKind::Video,
        Direction::SendOnly,
        Some("s".into()),
        Some("cam".into()),
        layers,
    );
    api.add_media(
        MediaKind::Video,
        Direction::SendOnly,
        Some("s".into()),
        Some("screen".into()),
        None,
    );
    let (offer, pending) = api.apply().expect("an offer");
    (offer.to_sdp_string(), pending)
}

fn sources(offer: &str) -> Vec<MidSource> {
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
            mid: mid.into(),
            source,
        })
        .collect()
}

/// `offer \0 answer \0 reoffer \0 time steps`, as `meeting_sfu::fuzzing::sdp_offer` reads it.
fn sdp(dir: &Path) -> std::io::Result<()> {
    let now = Instant::now();
    let mut a = client(40_000);
    let (offer, pending) = publish(&mut a, true);
    // A real answer to a real server offer: run the engine once as the target does.
    let mut engine = Engine::new(EngineConfig::new(SocketAddr::from((
        Ipv4Addr::LOCALHOST,
        10_000,
    ))));
    let room = RoomId::new("room");
    let answer = engine
        .join(
            now,
            room.clone(),
            ParticipantId::new("a"),
            &offer,
            sources(&offer),
        )
        .expect("join");
    a.sdp_api()
        .accept_answer(
            pending,
            str0m::change::SdpAnswer::from_sdp_string(&answer.sdp).expect("answer parses"),
        )
        .expect("answer accepted");
    let mut b = client(40_001);
    let (b_offer, _) = publish(&mut b, false);
    engine
        .join(
            now,
            room,
            ParticipantId::new("b"),
            &b_offer,
            sources(&b_offer),
        )
        .expect("join b");
    for source in [TrackSource::Microphone, TrackSource::Camera] {
        engine
            .set_publishing(now, &ParticipantId::new("b"), source, true)
            .expect("b is in the room");
    }
    let mut server_offer = None;
    while let Some(out) = engine.poll_output() {
        if let Output::Event(SfuEvent::Renegotiate {
            participant, offer, ..
        }) = out
            && participant.as_str() == "a"
        {
            server_offer = Some(offer);
        }
    }
    let server_offer = server_offer.expect("the engine offers b's tracks to a");
    let a_answer = a
        .sdp_api()
        .accept_offer(SdpOffer::from_sdp_string(&server_offer).expect("parses"))
        .expect("accepted")
        .to_sdp_string();
    write(dir, "publish-simulcast", offer.as_bytes())?;
    write(
        dir,
        "publish-answer-reoffer-time",
        &[
            format!("{offer}\0{a_answer}\0{offer}\0").as_bytes(),
            &[1, 5, 50, 150, 255],
        ]
        .concat(),
    )?;
    let mut c = client(40_002);
    let mut api = c.sdp_api();
    api.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None);
    let (recv_only, _) = api.apply().expect("an offer");
    write(
        dir,
        "receive-only-then-time",
        &[
            format!("{}\0\0\0", recv_only.to_sdp_string()).as_bytes(),
            &[10, 255, 255],
        ]
        .concat(),
    )?;
    Ok(())
}

/// A STUN binding request with USERNAME `user`, as a browser's ICE agent sends it.
fn stun_request(user: &str) -> Vec<u8> {
    fn attr(m: &mut Vec<u8>, typ: u16, value: &[u8]) {
        m.extend_from_slice(&typ.to_be_bytes());
        m.extend_from_slice(&(value.len() as u16).to_be_bytes());
        m.extend_from_slice(value);
        m.resize(m.len().div_ceil(4) * 4, 0);
    }
    let mut m = vec![0x00, 0x01, 0, 0, 0x21, 0x12, 0xa4, 0x42];
    m.extend_from_slice(b"fuzzseedtxid");
    attr(&mut m, 0x0006, user.as_bytes());
    attr(&mut m, 0x0024, &[0x6e, 0x7f, 0x1e, 0xff]); // PRIORITY
    attr(&mut m, 0x802a, &[1, 2, 3, 4, 5, 6, 7, 8]); // ICE-CONTROLLING
    attr(&mut m, 0x0008, &[0; 20]); // MESSAGE-INTEGRITY
    let len = (m.len() - 20 + 8) as u16;
    m[2..4].copy_from_slice(&len.to_be_bytes());
    attr(&mut m, 0x8028, &[0; 4]); // FINGERPRINT
    m
}

fn framed(packets: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in packets {
        out.extend_from_slice(&(p.len() as u16).to_be_bytes());
        out.extend_from_slice(p);
    }
    out
}

/// An RTP packet (VP8, payload type 96) with `payload`.
fn rtp(seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, 96];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&90_000u32.to_be_bytes());
    p.extend_from_slice(&0x1234_5678u32.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

fn stun(dir: &Path) -> std::io::Result<()> {
    write(dir, "request-worker-0", &stun_request("w0+Ab3dEf:theirs"))?;
    write(dir, "request-worker-7", &stun_request("w7+x9Yz:peer1"))?;
    write(dir, "request-foreign", &stun_request("Ab3dEf:theirs"))?;
    // ICE-TCP: the first frame as the demultiplexer reads it.
    write(dir, "tcp-first-frame", &framed(&[&stun_request("w1+q:r")]))?;
    write(dir, "rtp", &rtp(1, &[0x90, 0x80, 0x01, 0x00]))?;
    // DTLS ClientHello record header.
    write(
        dir,
        "dtls",
        &[0x16, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    )?;
    Ok(())
}

/// Four chunk-size bytes, then the stream (see `meeting_sfu::fuzzing::tcp_framing`).
fn tcp(dir: &Path) -> std::io::Result<()> {
    let stun = stun_request("w0+Ab3dEf:theirs");
    let media = rtp(7, &[0x10, 0x00, 0x9d, 0x01, 0x2a]);
    let mut s = vec![0, 1, 2, 3];
    s.extend(framed(&[&stun, &media, &[], &media]));
    write(dir, "stun-then-rtp", &s)?;
    let mut s = vec![255, 255, 255, 255];
    s.extend(framed(&[&stun, &vec![0x80; 1200]]));
    s.extend_from_slice(&[0x04, 0xb0, 0x80]); // a frame cut short
    write(dir, "large-and-partial", &s)?;
    let mut s = vec![1, 1, 1, 1];
    s.extend(framed(&[b"GET / HTTP/1.1\r\n"]));
    write(dir, "not-ice-tcp", &s)?;
    Ok(())
}

/// A VP8 payload descriptor first; every 8 bytes also drive the rewriter (see
/// `meeting_sfu::fuzzing::vp8`).
fn vp8(dir: &Path) -> std::io::Result<()> {
    // S=1, no extension, keyframe.
    write(
        dir,
        "keyframe-short",
        &[0x10, 0x00, 0x9d, 0x01, 0x2a, 0, 0, 0],
    )?;
    // Extended: 15-bit picture id, TL0PICIDX, TID/KEYIDX, keyframe; then packets.
    let mut d = vec![0x90, 0xf0, 0x80, 0x01, 0x05, 0x20, 0x00, 0x9d];
    for (i, seq) in [65_533u16, 65_534, 65_535, 0, 1, 3, 2].iter().enumerate() {
        d.extend_from_slice(&seq.to_be_bytes());
        d.extend_from_slice(&(3000 * i as u32).to_be_bytes());
        d.push(33);
        d.push(u8::from(i == 4));
    }
    write(dir, "extended-and-rollover", &d)?;
    // Not a start of partition.
    write(dir, "continuation", &[0x00, 0x01, 0x02, 0x03, 0, 0, 0, 0])?;
    Ok(())
}
