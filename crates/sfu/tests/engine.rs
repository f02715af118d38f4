//! The SFU core driven through an in-memory network with a simulated clock: str0m
//! client peers publish and subscribe through one [`Engine`]; no sockets, no real time.

mod common;

use std::time::Duration;

use common::{Sim, TAG_CAM, TAG_MIC};
use meeting_sfu::{SfuEvent, TrackSource};

#[test]
fn two_participants_exchange_audio_and_video() {
    let mut sim = Sim::new();
    let a = sim.join(|_| {});
    let b = sim.join(|_| {});
    assert!(
        sim.run_until(Duration::from_secs(5), |s| s.all_connected()),
        "ICE/DTLS did not complete"
    );
    assert!(
        sim.run_until(Duration::from_secs(5), |s| s
            .everyone_hears_and_sees_everyone(20)),
        "media did not flow: a got mic {} cam {}, b got mic {} cam {}",
        sim.clients[a].frames_from(2, TAG_MIC),
        sim.clients[a].frames_from(2, TAG_CAM),
        sim.clients[b].frames_from(1, TAG_MIC),
        sim.clients[b].frames_from(1, TAG_CAM),
    );
    // Each frame arrived on the m-line the server announced for that sender and source.
    for c in &sim.clients {
        for r in &c.received {
            let t = c.track(r.mid).expect("media on an announced m-line");
            let want = if r.tag == TAG_MIC {
                TrackSource::Microphone
            } else {
                TrackSource::Camera
            };
            assert_eq!(t.source, want);
            assert_eq!(t.from.as_str(), format!("p{}", r.sender));
        }
    }
    // The first video frame each subscriber got was a keyframe.
    for c in &sim.clients {
        let first = c.received.iter().find(|r| r.tag == TAG_CAM).expect("video");
        assert!(first.keyframe, "video must start with a keyframe");
    }
    let added = sim
        .events
        .iter()
        .filter(|(_, e)| matches!(e, SfuEvent::PublicationAdded { .. }))
        .count();
    assert_eq!(
        added, 4,
        "mic and camera of both participants announced once"
    );
}

/// Two participants, `p1` publishing to a receive-only `p2`; once video flows, `p2`'s
/// downlink loses everything for `fade`, then the simulation runs `fade` + 2 s. Returns
/// the camera frames of `p1` that `p2` never got (between its first and last), and how
/// many arrived during the fade.
fn frames_missing_after_a_downlink_fade(fade: Duration) -> (Vec<u32>, usize) {
    let mut sim = Sim::new();
    let _a = sim.join(|_| {});
    let b = sim.join(|c| c.send_video = false);
    assert!(sim.run_until(Duration::from_secs(5), |s| s.all_connected()));
    assert!(sim.run_until(
        Duration::from_secs(5),
        |s| s.clients[b].frames_from(1, TAG_CAM) >= 20
    ));
    let fade_start = sim.now;
    sim.clients[b].downlink_lost_until = Some(fade_start + fade);
    sim.run(fade + Duration::from_secs(2));
    let camera = || {
        sim.clients[b]
            .received
            .iter()
            .filter(|r| r.sender == 1 && r.tag == TAG_CAM)
    };
    let frames: Vec<u32> = camera().map(|r| r.frame).collect();
    let (first, last) = (frames[0], frames[frames.len() - 1]);
    let missing = (first..=last).filter(|f| !frames.contains(f)).collect();
    let during = camera()
        .filter(|r| r.at > fade_start && r.at < fade_start + fade)
        .count();
    (missing, during)
}

/// A subscriber's downlink loses everything for 200 ms: its str0m NACKs the missing
/// video packets and the engine resends them from that subscriber's RTX cache (which it
/// keeps for `RTX_HISTORY`, 1 s), so every frame arrives, none is skipped.
#[test]
fn video_lost_on_a_subscribers_downlink_is_resent() {
    let (missing, during) = frames_missing_after_a_downlink_fade(Duration::from_millis(200));
    assert_eq!(during, 0, "the fade let frames through");
    assert!(
        missing.is_empty(),
        "frames {missing:?} never arrived: the lost packets were not resent"
    );
}

/// A fade longer than the RTX history: what was sent more than `RTX_HISTORY` (1 s) before
/// the subscriber could ask is gone from its cache, so those frames are skipped (the
/// subscriber recovers with a keyframe instead); what is younger is still resent.
#[test]
fn video_older_than_the_rtx_history_is_not_resent() {
    let (missing, during) = frames_missing_after_a_downlink_fade(Duration::from_millis(1600));
    assert_eq!(during, 0, "the fade let frames through");
    // 25 frames a second: the 0.6 s of the fade beyond the history is about 15 frames
    // (with str0m's default 3 s history none would be missing).
    assert!(
        (8..=20).contains(&missing.len()),
        "missing frames {missing:?}: expected the first ~0.6 s of the 1.6 s fade"
    );
    assert_eq!(
        missing[missing.len() - 1] - missing[0] + 1,
        missing.len() as u32,
        "the frames lost are one run, the oldest of the fade: {missing:?}"
    );
}

#[test]
fn five_participants_each_receive_every_other() {
    let mut sim = Sim::new();
    for _ in 0..5 {
        sim.join(|_| {});
    }
    assert!(
        sim.run_until(Duration::from_secs(5), |s| s.all_connected()),
        "ICE/DTLS did not complete"
    );
    assert!(
        sim.run_until(Duration::from_secs(8), |s| s
            .everyone_hears_and_sees_everyone(15)),
        "not everyone received everyone"
    );
    for c in &sim.clients {
        // Four others, two tracks each.
        assert_eq!(
            c.tracks.len(),
            8,
            "client {} tracks {:?}",
            c.index,
            c.tracks
        );
        assert_eq!(
            c.frames_from(c.index, TAG_MIC),
            0,
            "nobody receives themselves"
        );
    }
}

#[test]
fn late_joiner_triggers_keyframe_request_to_publishers() {
    let mut sim = Sim::new();
    let a = sim.join(|_| {});
    let b = sim.join(|_| {});
    assert!(sim.run_until(Duration::from_secs(5), |s| {
        s.everyone_hears_and_sees_everyone(10)
    }));
    // Steady state: no keyframe requests for a while (no losses in this network).
    sim.run(Duration::from_secs(2));
    let joined_at = sim.now;
    let c = sim.join(|_| {});
    assert!(sim.run_until(Duration::from_secs(5), |s| {
        s.everyone_hears_and_sees_everyone(10)
    }));
    for publisher in [a, b] {
        let cam = sim.clients[publisher].cam;
        let asked = sim.clients[publisher]
            .keyframe_requests
            .iter()
            .any(|(t, mid, _)| *t >= joined_at && *mid == cam);
        assert!(
            asked,
            "publisher {publisher} got no keyframe request for the late joiner"
        );
    }
    // The newcomer's first frame of each publisher is a keyframe.
    for sender in [1u8, 2] {
        let first = sim.clients[c]
            .received
            .iter()
            .find(|r| r.sender == sender && r.tag == TAG_CAM);
        assert!(
            first.is_some_and(|r| r.keyframe),
            "first frame from {sender} is not a keyframe"
        );
    }
    // Rate limit: requests to one publisher are at least the configured interval apart.
    for publisher in [a, b] {
        let times: Vec<_> = sim.clients[publisher]
            .keyframe_requests
            .iter()
            .map(|(t, _, _)| *t)
            .collect();
        for w in times.windows(2) {
            assert!(
                w[1] - w[0] >= Duration::from_millis(450),
                "keyframe requests too close: {:?}",
                w[1] - w[0]
            );
        }
    }
}

#[test]
fn participant_leaving_mid_stream_is_removed_everywhere() {
    let mut sim = Sim::new();
    let a = sim.join(|_| {});
    let b = sim.join(|_| {});
    let c = sim.join(|_| {});
    assert!(sim.run_until(Duration::from_secs(5), |s| {
        s.everyone_hears_and_sees_everyone(10)
    }));
    let leaver = sim.clients[b].id.clone();
    let leaver_addr = sim.clients[b].addr;
    assert!(sim.engine.leave(sim.now, &leaver));
    sim.pump();
    let sent_before = sim.sent_to.get(&leaver_addr).copied().unwrap_or(0);
    let dropped_before = sim.engine.stats().datagrams_dropped;
    let frames_before: Vec<usize> = [a, c]
        .iter()
        .map(|&i| sim.clients[i].frames_from(2, TAG_CAM))
        .collect();
    sim.run(Duration::from_secs(2));

    for (n, &i) in [a, c].iter().enumerate() {
        let cl = &sim.clients[i];
        assert!(
            cl.tracks.iter().all(|t| t.from != leaver),
            "client {i} still has tracks of the leaver: {:?}",
            cl.tracks
        );
        assert_eq!(
            cl.tracks.len(),
            2,
            "one other participant left: {:?}",
            cl.tracks
        );
        assert_eq!(
            cl.frames_from(2, TAG_CAM),
            frames_before[n],
            "frames from the leaver after leave"
        );
    }
    // Nothing more was sent to the leaver; what it still sends is dropped.
    assert_eq!(
        sim.sent_to.get(&leaver_addr).copied().unwrap_or(0),
        sent_before
    );
    assert!(sim.engine.stats().datagrams_dropped > dropped_before);
    // The others still exchange media.
    let (fa, fc) = (
        sim.clients[a].frames_from(3, TAG_CAM),
        sim.clients[c].frames_from(1, TAG_CAM),
    );
    sim.run(Duration::from_secs(1));
    assert!(
        sim.clients[a].frames_from(3, TAG_CAM) > fa && sim.clients[c].frames_from(1, TAG_CAM) > fc
    );
    let removed: Vec<_> = sim
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            SfuEvent::PublicationRemoved {
                participant,
                source,
                ..
            } if *participant == leaver => Some(*source),
            _ => None,
        })
        .collect();
    assert_eq!(removed.len(), 2, "mic and camera removed: {removed:?}");
    // leave() is the server's own request: no ParticipantGone.
    assert!(
        !sim.events
            .iter()
            .any(|(_, e)| matches!(e, SfuEvent::ParticipantGone { .. }))
    );
}

#[test]
fn screen_share_start_and_stop_renegotiate_subscribers() {
    use common::TAG_SCREEN;
    let mut sim = Sim::new();
    let a = sim.join(|_| {});
    let b = sim.join(|_| {});
    assert!(sim.run_until(Duration::from_secs(5), |s| {
        s.everyone_hears_and_sees_everyone(10)
    }));
    let sharer = sim.clients[a].id.clone();
    assert!(
        sim.clients[b]
            .tracks
            .iter()
            .all(|t| t.source != TrackSource::ScreenShare)
    );

    // The client sends on its third transceiver, then tells the server.
    sim.clients[a].send_screen = true;
    sim.run(Duration::from_millis(500));
    assert_eq!(
        sim.clients[b].frames_from(1, TAG_SCREEN),
        0,
        "screen forwarded before it is published"
    );
    let offers_before = sim
        .events
        .iter()
        .filter(|(_, e)| matches!(e, SfuEvent::Renegotiate { .. }))
        .count();
    sim.engine
        .set_publishing(sim.now, &sharer, TrackSource::ScreenShare, true)
        .expect("publish");
    sim.pump();
    let offer_tracks = sim.events.iter().rev().find_map(|(_, e)| match e {
        SfuEvent::Renegotiate {
            participant,
            tracks,
            ..
        } if *participant == sim.clients[b].id => Some(tracks.clone()),
        _ => None,
    });
    let offer_tracks = offer_tracks.expect("subscriber renegotiated");
    assert!(
        offer_tracks
            .iter()
            .any(|t| t.source == TrackSource::ScreenShare && t.from == sharer)
    );
    assert!(
        sim.events
            .iter()
            .filter(|(_, e)| matches!(e, SfuEvent::Renegotiate { .. }))
            .count()
            > offers_before
    );
    assert!(
        sim.run_until(Duration::from_secs(3), |s| s.clients[b]
            .frames_from(1, TAG_SCREEN)
            >= 10),
        "screen frames did not arrive"
    );
    let screen_mid = sim.clients[b]
        .received
        .iter()
        .find(|r| r.tag == TAG_SCREEN)
        .map(|r| r.mid)
        .expect("screen frame");
    assert_eq!(
        sim.clients[b].track(screen_mid).map(|t| t.source),
        Some(TrackSource::ScreenShare)
    );
    assert!(sim.events.iter().any(|(_, e)| matches!(
        e,
        SfuEvent::PublicationAdded {
            source: TrackSource::ScreenShare,
            ..
        }
    )));

    // Stop: the m-line goes away, frames stop, camera continues.
    sim.engine
        .set_publishing(sim.now, &sharer, TrackSource::ScreenShare, false)
        .expect("unpublish");
    sim.pump();
    assert!(
        sim.clients[b]
            .tracks
            .iter()
            .all(|t| t.source != TrackSource::ScreenShare),
        "{:?}",
        sim.clients[b].tracks
    );
    let screens = sim.clients[b].frames_from(1, TAG_SCREEN);
    let cams = sim.clients[b].frames_from(1, TAG_CAM);
    sim.run(Duration::from_secs(1));
    assert_eq!(
        sim.clients[b].frames_from(1, TAG_SCREEN),
        screens,
        "screen forwarded after stop"
    );
    assert!(sim.clients[b].frames_from(1, TAG_CAM) > cams);
    assert!(sim.events.iter().any(|(_, e)| matches!(
        e,
        SfuEvent::PublicationRemoved {
            source: TrackSource::ScreenShare,
            ..
        }
    )));

    // And again: a second share gets a fresh m-line.
    sim.engine
        .set_publishing(sim.now, &sharer, TrackSource::ScreenShare, true)
        .expect("publish again");
    sim.pump();
    assert!(sim.run_until(
        Duration::from_secs(3),
        |s| s.clients[b].frames_from(1, TAG_SCREEN) >= screens + 10
    ));
}

#[test]
fn mute_pauses_forwarding_and_keeps_the_m_line() {
    let mut sim = Sim::new();
    let a = sim.join(|_| {});
    let b = sim.join(|_| {});
    assert!(sim.run_until(Duration::from_secs(5), |s| {
        s.everyone_hears_and_sees_everyone(10)
    }));
    let id = sim.clients[a].id.clone();
    sim.engine
        .set_muted(sim.now, &id, TrackSource::Camera, true)
        .expect("mute");
    sim.run(Duration::from_millis(200));
    let cams = sim.clients[b].frames_from(1, TAG_CAM);
    let tracks = sim.clients[b].tracks.len();
    sim.run(Duration::from_secs(1));
    assert_eq!(
        sim.clients[b].frames_from(1, TAG_CAM),
        cams,
        "muted camera forwarded"
    );
    assert!(sim.clients[b].frames_from(1, TAG_MIC) > 0);
    assert_eq!(
        sim.clients[b].tracks.len(),
        tracks,
        "mute must not remove the m-line"
    );
    sim.engine
        .set_muted(sim.now, &id, TrackSource::Camera, false)
        .expect("unmute");
    assert!(sim.run_until(
        Duration::from_secs(3),
        |s| s.clients[b].frames_from(1, TAG_CAM) >= cams + 10
    ));
    let resumed = sim.clients[b]
        .received
        .iter()
        .filter(|r| r.sender == 1 && r.tag == TAG_CAM)
        .nth(cams)
        .expect("frame");
    assert!(resumed.keyframe, "forwarding resumes on a keyframe");
}

#[test]
fn malformed_and_foreign_datagrams_are_dropped_and_counted() {
    use rand::{Rng, SeedableRng};
    let mut sim = Sim::new();
    let a = sim.join(|_| {});
    let _b = sim.join(|_| {});
    assert!(sim.run_until(Duration::from_secs(5), |s| {
        s.everyone_hears_and_sees_everyone(5)
    }));
    let known = sim.clients[a].addr;
    let foreign = std::net::SocketAddr::from(([192, 0, 2, 7], 4444));
    let before = sim.engine.stats().datagrams_dropped;

    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut foreign_sent = 0u64;
    let samples: Vec<Vec<u8>> = vec![
        vec![],
        vec![0],
        vec![0x00, 0x01, 0x00, 0x00], // truncated STUN header
        vec![
            0x00, 0x01, 0x00, 0x08, 0x21, 0x12, 0xa4, 0x42, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ], // STUN, bad length
        vec![22, 254, 253, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff], // DTLS record, bogus length
        vec![0x80, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1], // bare RTP header
        vec![0x80, 200, 0, 6, 0, 0, 0, 1], // truncated RTCP SR
        vec![0xff; 3000],
    ];
    for s in &samples {
        sim.engine.handle_datagram(sim.now, foreign, s);
        sim.engine.handle_datagram(sim.now, known, s);
        foreign_sent += 1;
    }
    for i in 0..3000 {
        let len = rng.random_range(0..1500);
        let mut d: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        if i % 3 == 0 && !d.is_empty() {
            d[0] = [0x00, 0x01, 20, 22, 0x80, 0x90][i % 6]; // look like STUN/DTLS/RTP
        }
        sim.engine.handle_datagram(sim.now, foreign, &d);
        foreign_sent += 1;
        sim.engine.handle_datagram(sim.now, known, &d);
        sim.pump();
    }
    let dropped = sim.engine.stats().datagrams_dropped - before;
    assert!(
        dropped >= foreign_sent,
        "dropped {dropped} < foreign {foreign_sent}"
    );
    // The participants are unharmed.
    let frames = sim.clients[1].frames_from(1, TAG_CAM);
    sim.run(Duration::from_secs(1));
    assert!(
        sim.clients[1].frames_from(1, TAG_CAM) > frames,
        "media stopped after garbage"
    );
    assert!(
        !sim.events
            .iter()
            .any(|(_, e)| matches!(e, SfuEvent::ParticipantGone { .. }))
    );
}

/// A publisher of a simulcast camera ("h" and "l") and a subscriber that sees it.
fn simulcast_pair() -> (Sim, usize, usize) {
    let mut sim = Sim::new();
    let a = sim.join(|c| c.simulcast = vec!["h", "l"]);
    let b = sim.join(|_| {});
    assert!(
        sim.run_until(Duration::from_secs(5), |s| s.clients[b]
            .frames_from(1, TAG_CAM)
            >= 10),
        "no simulcast video"
    );
    (sim, a, b)
}

#[test]
fn simulcast_forwards_one_layer_per_subscriber() {
    let (mut sim, a, b) = simulcast_pair();
    sim.run(Duration::from_secs(2));
    let from = sim.now;
    sim.run(Duration::from_secs(2));
    let recent: Vec<_> = sim.clients[b]
        .received
        .iter()
        .filter(|r| r.at >= from && r.sender == 1 && r.tag == TAG_CAM)
        .collect();
    // One layer: about 25 frames/s, not 50; all of the richest layer ("h" = layer 0).
    assert!(
        recent.len() >= 40 && recent.len() <= 55,
        "frames in 2 s: {}",
        recent.len()
    );
    assert!(
        recent.iter().all(|r| r.layer == 0),
        "layers: {:?}",
        recent.iter().map(|r| r.layer).collect::<Vec<_>>()
    );

    // The publisher stops sending "h" (e.g. its bandwidth dropped): the subscriber
    // switches to "l" on a keyframe.
    sim.clients[a].simulcast = vec!["l"];
    let switched_at = sim.now;
    assert!(
        sim.run_until(Duration::from_secs(4), |s| s.clients[b]
            .received
            .iter()
            .any(|r| r.at > switched_at && r.layer == 1)),
        "no switch to the low layer"
    );
    let first_low = sim.clients[b]
        .received
        .iter()
        .find(|r| r.layer == 1)
        .expect("low layer frame");
    assert!(first_low.keyframe, "layer switch must happen on a keyframe");
    let _ = TAG_MIC;
}

#[test]
fn participant_that_never_connects_is_removed() {
    let mut sim = Sim::new();
    sim.step = Duration::from_millis(20);
    let a = sim.join(|_| {});
    // A client whose packets never reach the server.
    let mut ghost = common::Client::new(9, Sim::client_addr(9), sim.now);
    let (offer, sources) = ghost.make_offer();
    let ghost_id = ghost.id.clone();
    sim.engine
        .join(sim.now, sim.room.clone(), ghost_id.clone(), &offer, sources)
        .expect("join");
    sim.pump();
    assert!(
        sim.clients[a].tracks.iter().all(|t| t.from != ghost_id),
        "a participant that sends nothing is offered to nobody"
    );
    assert!(
        sim.run_until(Duration::from_secs(35), |s| !s
            .engine
            .has_participant(&ghost_id)),
        "ghost not removed"
    );
    assert!(sim.events.iter().any(|(_, e)| matches!(
        e,
        SfuEvent::ParticipantGone { participant, reason: meeting_sfu::GoneReason::ConnectTimeout, .. } if *participant == ghost_id
    )));
    sim.pump();
    assert!(
        sim.clients[a].tracks.iter().all(|t| t.from != ghost_id),
        "ghost's tracks removed from subscribers"
    );
    assert!(sim.clients[a].connected, "the connected participant stays");
}

#[test]
fn client_offer_during_pending_server_offer_and_stale_answer() {
    let mut sim = Sim::new();
    sim.auto_answer = false;
    let a = sim.join(|_| {});
    let _b = sim.join(|_| {});
    let a_id = sim.clients[a].id.clone();
    // B's media starts: A gets our offer of B's tracks, and leaves it unanswered.
    assert!(
        sim.run_until(Duration::from_secs(5), |s| s
            .offers
            .iter()
            .any(|(p, ..)| *p == a_id)),
        "no offer to A"
    );
    let (_, stale_id, stale_sdp, _) = sim
        .offers
        .iter()
        .find(|(p, ..)| *p == a_id)
        .cloned()
        .expect("offer to A");
    sim.offers.retain(|(p, ..)| *p != a_id);
    // The client offers by itself (adds a screen-audio transceiver).
    let mut api = sim.clients[a].rtc.sdp_api();
    api.add_media(
        str0m::media::MediaKind::Audio,
        str0m::media::Direction::SendOnly,
        None,
        None,
        None,
    );
    let (offer, pending) = api.apply().expect("client offer");
    let answer = sim
        .engine
        .offer(sim.now, &a_id, &offer.to_sdp_string(), vec![])
        .expect("client offer accepted");
    sim.clients[a]
        .rtc
        .sdp_api()
        .accept_answer(
            pending,
            str0m::change::SdpAnswer::from_sdp_string(&answer.sdp).expect("parse"),
        )
        .expect("answer accepted");
    // Our old offer is void: answering it is refused.
    let late = sim.clients[a]
        .rtc
        .sdp_api()
        .accept_offer(str0m::change::SdpOffer::from_sdp_string(&stale_sdp).expect("parse"));
    if let Ok(late) = late {
        assert_eq!(
            sim.engine
                .answer(sim.now, &a_id, stale_id, &late.to_sdp_string()),
            Err(meeting_sfu::SfuError::StaleAnswer)
        );
    }
    sim.pump();
    // A fresh offer follows; answering everything, media flows both ways.
    sim.auto_answer = true;
    sim.pump();
    assert!(sim.offers.is_empty());
    assert!(
        sim.run_until(Duration::from_secs(6), |s| s
            .everyone_hears_and_sees_everyone(10)),
        "media after polite-peer exchange"
    );
    // Bad SDP is an error, not a panic.
    assert!(matches!(
        sim.engine.offer(sim.now, &a_id, "v=0 garbage", vec![]),
        Err(meeting_sfu::SfuError::InvalidSdp(_))
    ));
    assert!(matches!(
        sim.engine.answer(sim.now, &a_id, 999, "garbage"),
        Err(meeting_sfu::SfuError::StaleAnswer)
    ));
    let bad = sim.engine.join(
        sim.now,
        sim.room.clone(),
        meeting_sfu::ParticipantId::new("x"),
        "nonsense",
        vec![],
    );
    assert!(matches!(bad, Err(meeting_sfu::SfuError::InvalidSdp(_))));
}

#[test]
fn participant_whose_network_goes_away_is_removed_after_grace() {
    let mut sim = Sim::new();
    sim.step = Duration::from_millis(20);
    let a = sim.join(|_| {});
    let b = sim.join(|_| {});
    assert!(sim.run_until(Duration::from_secs(5), |s| {
        s.everyone_hears_and_sees_everyone(5)
    }));
    let lost = sim.clients[b].id.clone();
    sim.clients[b].offline = true;
    let cut = sim.now;
    assert!(
        sim.run_until(Duration::from_secs(60), |s| !s
            .engine
            .has_participant(&lost)),
        "participant with no network not removed"
    );
    let events: Vec<_> = sim
        .events
        .iter()
        .filter(|(t, _)| *t >= cut)
        .map(|(t, e)| (*t, e.clone()))
        .collect();
    let disconnected_at = events
        .iter()
        .find(|(_, e)| matches!(e, SfuEvent::ConnectionState { participant, state: meeting_sfu::ConnectionState::Disconnected, .. } if *participant == lost))
        .map(|(t, _)| *t)
        .expect("Disconnected reported first");
    let gone_at = events
        .iter()
        .find(|(_, e)| matches!(e, SfuEvent::ParticipantGone { participant, reason: meeting_sfu::GoneReason::ConnectionLost, .. } if *participant == lost))
        .map(|(t, _)| *t)
        .expect("ParticipantGone(ConnectionLost)");
    assert!(
        gone_at - disconnected_at >= Duration::from_secs(15),
        "removed before the grace period"
    );
    sim.pump();
    assert!(
        sim.clients[a].tracks.iter().all(|t| t.from != lost),
        "its tracks removed from the others"
    );
}

/// Server offers made to `id` so far.
fn offers_to(sim: &Sim, id: &meeting_sfu::ParticipantId) -> usize {
    sim.events
        .iter()
        .filter(
            |(_, e)| matches!(e, SfuEvent::Renegotiate { participant, .. } if participant == id),
        )
        .count()
}

/// A viewer as the load tool's webinar makes it: it offers mic, camera and screen
/// send-only m-lines (with stream and track ids) but never sends on them.
fn viewer(c: &mut common::Client) {
    c.send_audio = false;
    c.send_video = false;
}

/// Every viewer comes to see and hear `host`, and got exactly one offer: the host's mic
/// and camera together (its only two tracks).
fn host_reaches_viewers_in_one_offer(sim: &mut Sim, host: usize, viewers: &[usize]) {
    let (host_index, host_id) = (sim.clients[host].index, sim.clients[host].id.clone());
    assert!(
        sim.run_until(Duration::from_secs(8), |s| viewers.iter().all(|&v| s
            .clients[v]
            .frames_from(host_index, TAG_CAM)
            >= 5
            && s.clients[v].frames_from(host_index, TAG_MIC) >= 5)),
        "every viewer sees and hears the host"
    );
    sim.run(Duration::from_secs(1));
    for &v in viewers {
        let c = &sim.clients[v];
        assert_eq!(
            offers_to(sim, &c.id),
            1,
            "mic and camera come in one offer to viewer {}",
            c.index
        );
        assert_eq!(c.tracks.len(), 2, "{:?}", c.tracks);
        assert!(c.tracks.iter().all(|t| t.from == host_id));
    }
}

#[test]
fn viewers_joining_a_webinar_cause_one_offer_each_and_none_to_others() {
    let mut sim = Sim::new();
    let host = sim.join(|_| {});
    assert!(sim.run_until(Duration::from_secs(5), |s| s.all_connected()));
    sim.run(Duration::from_millis(300));
    let host_id = sim.clients[host].id.clone();
    let host_offers = offers_to(&sim, &host_id);
    let mut viewers = Vec::new();
    for _ in 0..6 {
        viewers.push(sim.join(viewer));
        sim.run(Duration::from_millis(100));
    }
    host_reaches_viewers_in_one_offer(&mut sim, host, &viewers);
    assert_eq!(
        offers_to(&sim, &host_id),
        host_offers,
        "viewers who send nothing cause no offer to the host"
    );
    // Nor to each other: the only offers of the whole run are the viewers' one each.
    let total = sim
        .events
        .iter()
        .filter(|(_, e)| matches!(e, SfuEvent::Renegotiate { .. }))
        .count();
    assert_eq!(total, host_offers + viewers.len());
    // A viewer leaving changes nobody's subscriptions either.
    let gone = sim.clients[viewers[0]].id.clone();
    assert!(sim.engine.leave(sim.now, &gone));
    sim.run(Duration::from_millis(200));
    let after = sim
        .events
        .iter()
        .filter(|(_, e)| matches!(e, SfuEvent::Renegotiate { .. }))
        .count();
    assert_eq!(after, total, "a viewer leaving renegotiates nobody");
}

#[test]
fn publisher_joining_viewers_causes_exactly_one_offer_per_viewer() {
    let mut sim = Sim::new();
    let viewers: Vec<usize> = (0..4).map(|_| sim.join(viewer)).collect();
    assert!(sim.run_until(Duration::from_secs(5), |s| s.all_connected()));
    sim.run(Duration::from_millis(300));
    assert!(
        !sim.events
            .iter()
            .any(|(_, e)| matches!(e, SfuEvent::Renegotiate { .. })),
        "viewers alone: no offers at all"
    );
    let host = sim.join(|_| {});
    host_reaches_viewers_in_one_offer(&mut sim, host, &viewers);
    assert_eq!(offers_to(&sim, &sim.clients[host].id), 0);
}

#[test]
fn camera_turned_on_after_join_is_offered_when_its_media_starts() {
    let mut sim = Sim::new();
    // Mic on; the camera transceiver has no track yet (a=msid:- …).
    let host = sim.join(|c| {
        c.camera_off_at_join = true;
        c.send_video = false;
    });
    let viewer = sim.join(viewer);
    let host_index = sim.clients[host].index;
    assert!(
        sim.run_until(Duration::from_secs(5), |s| s.clients[viewer]
            .frames_from(host_index, TAG_MIC)
            >= 5),
        "the viewer hears the host"
    );
    sim.run(Duration::from_millis(500));
    let viewer_id = sim.clients[viewer].id.clone();
    assert_eq!(offers_to(&sim, &viewer_id), 1, "one offer: the mic");
    assert_eq!(
        sim.clients[viewer].tracks.len(),
        1,
        "a camera without a track is not offered: {:?}",
        sim.clients[viewer].tracks
    );
    // The user turns the camera on (the browser puts a track on the transceiver; no
    // renegotiation on its side): its first packet gets it offered, once.
    sim.clients[host].send_video = true;
    assert!(
        sim.run_until(Duration::from_secs(5), |s| s.clients[viewer]
            .frames_from(host_index, TAG_CAM)
            >= 5),
        "the viewer sees the camera"
    );
    assert_eq!(offers_to(&sim, &viewer_id), 2);
    assert!(
        sim.clients[viewer]
            .tracks
            .iter()
            .any(|t| t.source == TrackSource::Camera && t.from == sim.clients[host].id)
    );
    assert_eq!(offers_to(&sim, &sim.clients[host].id), 0);
}

#[test]
fn a_larger_gallery_gets_a_lower_simulcast_layer() {
    let mut sim = Sim::new();
    // Six cameras, each sent as three layers (layer 0 the largest).
    let clients: Vec<usize> = (0..6)
        .map(|_| sim.join(|c| c.simulcast = vec!["f", "h", "q"]))
        .collect();
    let (rx, tx) = (clients[0], sim.clients[clients[1]].index);
    assert!(
        sim.run_until(Duration::from_secs(10), |s| s.clients[rx]
            .frames_from(tx, TAG_CAM)
            >= 10),
        "no video from the second camera"
    );
    // Settled: 5-12 cameras → the middle layer, for every subscriber.
    sim.run(Duration::from_secs(2));
    let from = sim.now;
    sim.run(Duration::from_secs(2));
    let layers = |s: &Sim, since| {
        s.clients[rx]
            .received
            .iter()
            .filter(|r| r.at >= since && r.sender == tx && r.tag == TAG_CAM)
            .map(|r| r.layer)
            .collect::<Vec<_>>()
    };
    let recent = layers(&sim, from);
    assert!(recent.len() >= 40, "frames in 2 s: {}", recent.len());
    assert!(
        recent.iter().all(|&l| l == 1),
        "layers with 6 cameras: {recent:?}"
    );

    // Two leave: 4 cameras, a small gallery, back to the full layer (on a keyframe).
    for &c in &clients[4..] {
        let id = sim.clients[c].id.clone();
        assert!(sim.engine.leave(sim.now, &id));
        sim.clients[c].offline = true;
        // Carry the offers this leave causes (the next leaver still answers its own).
        sim.pump();
    }
    sim.run(Duration::from_secs(3));
    let from = sim.now;
    sim.run(Duration::from_secs(2));
    let recent = layers(&sim, from);
    assert!(recent.len() >= 40, "frames in 2 s: {}", recent.len());
    assert!(
        recent.iter().all(|&l| l == 0),
        "layers with 4 cameras: {recent:?}"
    );
}

/// `change-video-quality`: a subscriber that wants less gets the lowest (or a middle)
/// layer of a simulcast camera while the others keep the gallery's choice, and gets the
/// full layer again when it asks for it.
#[test]
fn a_subscriber_that_wants_less_gets_a_lower_layer() {
    use meeting_sfu::ReceiveQuality;
    let mut sim = Sim::new();
    // Three cameras, each sent as three layers of distinct rates: a small gallery, the
    // full layer (0) for everyone.
    let clients: Vec<usize> = (0..3)
        .map(|_| sim.join(|c| c.simulcast = vec!["h", "m", "s"]))
        .collect();
    let (low, other, tx) = (clients[0], clients[2], sim.clients[clients[1]].index);
    assert!(
        sim.run_until(Duration::from_secs(10), |s| s.clients[low]
            .frames_from(tx, TAG_CAM)
            >= 10
            && s.clients[other].frames_from(tx, TAG_CAM) >= 10),
        "no video from the second camera"
    );
    let layers = |s: &Sim, rx: usize, since| {
        s.clients[rx]
            .received
            .iter()
            .filter(|r| r.at >= since && r.sender == tx && r.tag == TAG_CAM)
            .map(|r| r.layer)
            .collect::<Vec<_>>()
    };
    let settled = |sim: &mut Sim| {
        sim.run(Duration::from_secs(2));
        let from = sim.now;
        sim.run(Duration::from_secs(2));
        from
    };
    let expect = |sim: &mut Sim, quality, want_low: u8| {
        let id = sim.clients[low].id.clone();
        sim.engine
            .set_receive_quality(&id, quality)
            .expect("a participant of the room");
        let from = settled(sim);
        let (mine, theirs) = (layers(sim, low, from), layers(sim, other, from));
        assert!(
            mine.len() >= 40 && theirs.len() >= 40,
            "frames: {} {}",
            mine.len(),
            theirs.len()
        );
        assert!(mine.iter().all(|&l| l == want_low), "{quality:?}: {mine:?}");
        assert!(
            theirs.iter().all(|&l| l == 0),
            "the others keep the full layer: {theirs:?}"
        );
    };
    expect(&mut sim, ReceiveQuality::Lowest, 2);
    expect(&mut sim, ReceiveQuality::Reduced, 1);
    expect(&mut sim, ReceiveQuality::Full, 0);
}

/// Issue #12 item 5: a refused SDP is answered with a fixed text for the user; str0m's
/// parser message (`SDP parse: Parse error at PointerOffset(0x7fa9400049c0) …` for the
/// first two inputs, a heap address) stays in the log.
#[test]
fn refused_sdp_is_reported_without_parser_internals() {
    let mut sim = Sim::new();
    let a = sim.join(|_| {});
    let a_id = sim.clients[a].id.clone();
    let (real, _) = sim.clients[a].make_offer();
    let malformed = [
        "nonsense".to_owned(),
        "v=0 garbage".to_owned(),
        // A real offer cut in the middle of its first m-line (parses, then refused).
        real[..real.find("m=").expect("an m-line") + 5].to_owned(),
    ];
    let clean = |e: &meeting_sfu::SfuError| {
        let text = e.to_string();
        assert!(
            !text.contains("0x") && !text.contains("PointerOffset") && !text.contains("Parse"),
            "internals in {text:?}"
        );
        text
    };
    for (n, sdp) in malformed.iter().enumerate() {
        let joined = sim.engine.join(
            sim.now,
            sim.room.clone(),
            meeting_sfu::ParticipantId::new(format!("bad{n}")),
            sdp,
            vec![],
        );
        let e = joined.expect_err("malformed offer refused");
        assert!(matches!(e, meeting_sfu::SfuError::InvalidSdp(_)), "{e:?}");
        clean(&e);
        let e = sim
            .engine
            .offer(sim.now, &a_id, sdp, vec![])
            .expect_err("malformed renegotiation offer refused");
        assert!(
            matches!(
                e,
                meeting_sfu::SfuError::InvalidSdp(
                    meeting_sfu::SdpError::OfferUnparsable | meeting_sfu::SdpError::OfferRefused
                )
            ),
            "offer {n}: {e:?}"
        );
        clean(&e);
    }
    assert_eq!(
        sim.engine
            .join(sim.now, sim.room.clone(), "bad".into(), "nonsense", vec![]),
        Err(meeting_sfu::SfuError::InvalidSdp(
            meeting_sfu::SdpError::OfferUnparsable
        ))
    );
    // The participant whose offers were refused is still there, with the others.
    assert!(sim.engine.has_participant(&a_id));
    assert_eq!(sim.engine.participant_count(), 1);
}

/// Start recording the sim's room through a queue of `queue` packets: what the recorder
/// would read, and the tap's counters.
fn record(
    sim: &mut Sim,
    queue: usize,
) -> (
    std::sync::mpsc::Receiver<meeting_sfu::RecordedPacket>,
    std::sync::Arc<meeting_sfu::TapStats>,
) {
    let (tx, rx) = std::sync::mpsc::sync_channel(queue);
    let stats = std::sync::Arc::new(meeting_sfu::TapStats::default());
    let room = sim.room.clone();
    let tap = meeting_sfu::RecordTap {
        tx,
        stats: stats.clone(),
    };
    sim.engine.set_recording(&room, Some(tap));
    (rx, stats)
}

/// Recording's tap: a recorded room's packets go to the recorder's queue, each video
/// track from a keyframe the publishers are asked for; a full queue drops and counts
/// (the worker never waits) and forwarding goes on; stopping takes the tap away.
#[test]
fn a_recorded_room_hands_its_packets_over_from_a_keyframe_and_never_waits() {
    use std::sync::atomic::Ordering::Relaxed;

    use meeting_sfu::RecordedCodec;

    let mut sim = Sim::new();
    let a = sim.join(|_| {});
    let b = sim.join(|_| {});
    assert!(sim.run_until(Duration::from_secs(5), |s| {
        s.everyone_hears_and_sees_everyone(10)
    }));
    sim.run(Duration::from_secs(1));

    // A queue of 4: it fills at once, and the engine must not wait for it.
    let (rx, stats) = record(&mut sim, 4);
    let room = sim.room.clone();
    assert!(sim.engine.is_recording(&room));
    let before = sim.clients[b].frames_from(1, TAG_CAM);
    sim.run(Duration::from_secs(2));
    assert_eq!(stats.sent.load(Relaxed), 4);
    assert!(
        stats.dropped.load(Relaxed) > 50,
        "dropped {}",
        stats.dropped.load(Relaxed)
    );
    assert!(
        sim.clients[b].frames_from(1, TAG_CAM) > before + 20,
        "forwarding went on while the recorder's queue was full"
    );
    drop(rx);

    // A queue that keeps up: every track arrives, video from a keyframe that each
    // publisher was asked for when the recording started.
    let started = sim.now;
    let (rx, _) = record(&mut sim, 100_000);
    sim.run(Duration::from_secs(2));
    let packets: Vec<_> = rx.try_iter().collect();
    for publisher in [a, b] {
        let id = format!("p{}", publisher + 1);
        let mine: Vec<_> = packets
            .iter()
            .filter(|p| p.participant.as_str() == id)
            .collect();
        let video: Vec<_> = mine
            .iter()
            .filter(|p| p.codec == RecordedCodec::Vp8)
            .collect();
        assert!(video.len() > 20, "{id}: {} video packets", video.len());
        assert!(
            video[0].keyframe_start,
            "{id}'s recorded video starts at a keyframe"
        );
        assert!(video.iter().all(|p| p.source == TrackSource::Camera));
        assert!(
            mine.iter()
                .filter(|p| p.codec == RecordedCodec::Opus)
                .count()
                > 20,
            "{id}'s audio is recorded"
        );
        let cam = sim.clients[publisher].cam;
        assert!(
            sim.clients[publisher]
                .keyframe_requests
                .iter()
                .any(|(t, mid, _)| *t >= started && *mid == cam),
            "{id} was asked for a keyframe when the recording started"
        );
    }

    // Stopped: the engine lets go of the tap.
    sim.engine.set_recording(&room, None);
    assert!(!sim.engine.is_recording(&room));
    sim.run(Duration::from_millis(200));
    let _ = rx.try_iter().count();
    assert!(
        matches!(
            rx.try_recv(),
            Err(std::sync::mpsc::TryRecvError::Disconnected)
        ),
        "no sender is left once the recording stops"
    );
}

/// The bytes of a VP8 frame after its RTP payload descriptor (RFC 7741), if `payload`
/// is a frame's first packet: the test frame's header (`common::Client::frame`).
fn frame_start(payload: &[u8]) -> Option<&[u8]> {
    let b0 = *payload.first()?;
    if b0 & 0x10 == 0 || b0 & 0x07 != 0 {
        return None;
    }
    let mut i = 1;
    if b0 & 0x80 != 0 {
        let x = *payload.get(i)?;
        i += 1;
        if x & 0x80 != 0 {
            i += if payload.get(i)? & 0x80 != 0 { 2 } else { 1 };
        }
        if x & 0x40 != 0 {
            i += 1;
        }
        if x & 0x30 != 0 {
            i += 1;
        }
    }
    payload.get(i..)
}

/// Recording a simulcast camera: the highest layer while it arrives; when it stops, the
/// next one down from a keyframe; when it is back, up again from a keyframe. The
/// recorder sees one stream throughout: sequence numbers without a hole, and RTP times
/// that only move forward, by at least a frame interval across each switch.
#[test]
fn a_recorded_simulcast_camera_follows_its_highest_layer_as_one_stream() {
    use meeting_sfu::RecordedCodec;

    let (mut sim, a, _) = simulcast_pair();
    sim.run(Duration::from_secs(1));
    let (rx, _) = record(&mut sim, 100_000);
    sim.run(Duration::from_secs(2));
    // The publisher stops sending "h" (its uplink got worse), then sends it again.
    sim.clients[a].simulcast = vec!["l"];
    sim.run(Duration::from_secs(4));
    sim.clients[a].simulcast = vec!["h", "l"];
    sim.run(Duration::from_secs(4));

    let video: Vec<_> = rx
        .try_iter()
        .filter(|p| p.participant.as_str() == "p1" && p.codec == RecordedCodec::Vp8)
        .collect();
    assert!(video.len() > 100, "{} video packets", video.len());
    // Frames in order: (layer tag, keyframe, RTP time).
    let frames: Vec<(u8, bool, u64)> = video
        .iter()
        .filter_map(|p| {
            let f = frame_start(&p.payload)?;
            Some((f[3], f[0] & 1 == 0, p.rtp_time))
        })
        .collect();
    let mut runs: Vec<u8> = frames.iter().map(|f| f.0).collect();
    runs.dedup();
    assert_eq!(
        runs,
        [0, 1, 0],
        "recorded layers: high, then low, then high again"
    );
    assert!(frames[0].1, "the recording starts at a keyframe");
    for w in frames.windows(2) {
        let ((layer0, _, t0), (layer1, key1, t1)) = (w[0], w[1]);
        assert!(t1 > t0, "RTP time goes forward: {t0} then {t1}");
        if layer0 != layer1 {
            assert!(key1, "the switch to layer {layer1} starts at a keyframe");
            // At least one frame interval (40 ms at 90 kHz), at most the time the
            // publisher went without the recorded layer.
            assert!(
                (3600..=90_000 * 3).contains(&(t1 - t0)),
                "across the switch the clock moved {} ticks",
                t1 - t0
            );
        }
    }
    for w in video.windows(2) {
        assert_eq!(
            w[1].seq,
            w[0].seq + 1,
            "one sequence, no hole (a layer switch continues it)"
        );
    }
}
