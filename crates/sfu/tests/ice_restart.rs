//! A client's ICE restart on the simulated network: its address changes (the old one is
//! gone), it offers new ICE credentials (`pc.restartIce()` in the page), and media
//! resumes both ways on the same m-lines, with no offer to anyone and the worker's ufrag
//! prefix kept (the one-port demultiplexer routes first STUN requests by it).

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use common::{Sim, TAG_CAM, TAG_MIC};
use meeting_sfu::{ParticipantId, SfuEvent};

const PREFIX: &str = "w2+";

/// Server offers made to `id` so far.
fn offers_to(sim: &Sim, id: &ParticipantId) -> usize {
    sim.events
        .iter()
        .filter(
            |(_, e)| matches!(e, SfuEvent::Renegotiate { participant, .. } if participant == id),
        )
        .count()
}

/// Every ufrag an SDP names as ours: `a=ice-ufrag:` lines and candidates' `ufrag`.
fn ufrags(sdp: &str) -> Vec<String> {
    sdp.lines()
        .filter_map(|l| {
            l.strip_prefix("a=ice-ufrag:")
                .or_else(|| l.split_once(" ufrag ").map(|(_, u)| u))
                .map(str::to_string)
        })
        .collect()
}

/// The one ufrag `sdp` names (asserting that all its mentions agree).
fn the_ufrag(sdp: &str) -> String {
    let all = ufrags(sdp);
    assert!(
        all.len() >= 2,
        "an ice-ufrag line and candidates in:\n{sdp}"
    );
    assert!(all.iter().all(|u| *u == all[0]), "one ufrag in: {all:?}");
    all[0].clone()
}

fn mids(c: &common::Client) -> Vec<(String, String)> {
    let mut v: Vec<_> = c
        .tracks
        .iter()
        .map(|t| (t.mid.to_string(), t.from.to_string()))
        .collect();
    v.sort();
    v
}

fn frames(c: &common::Client, from: u8, since: Instant) -> (usize, usize) {
    (
        frames_since(c, from, TAG_MIC, since),
        frames_since(c, from, TAG_CAM, since),
    )
}

/// Frames of source `tag` that `c` got from `from` since `since`.
fn frames_since(c: &common::Client, from: u8, tag: u8, since: Instant) -> usize {
    c.received
        .iter()
        .filter(|r| r.sender == from && r.tag == tag && r.at >= since)
        .count()
}

#[test]
fn media_resumes_after_a_network_change_and_ice_restart_without_renegotiation() {
    let mut sim = Sim::with_config(|cfg| {
        cfg.bwe_initial = None;
        cfg.ufrag_prefix = PREFIX.into();
    });
    let (a, b) = (sim.join(|_| {}), sim.join(|_| {}));
    assert!(
        sim.run_until(Duration::from_secs(5), |s| s
            .everyone_hears_and_sees_everyone(20)),
        "media did not flow before the change"
    );
    let (a_id, b_id) = (sim.clients[a].id.clone(), sim.clients[b].id.clone());
    let mids_before = (mids(&sim.clients[a]), mids(&sim.clients[b]));
    let engine_tracks = (
        sim.engine.tracks_of(&a_id).expect("a"),
        sim.engine.tracks_of(&b_id).expect("b"),
    );
    let offers_before = (offers_to(&sim, &a_id), offers_to(&sim, &b_id));
    let added_before = (
        sim.clients[a].media_added.len(),
        sim.clients[b].media_added.len(),
    );
    let mut ufrag = String::new();

    // Twice: the second restart replaces what the first one set.
    for round in 1..=2u8 {
        // The network goes away for a second (the page waits for `disconnected` to
        // last), then the client is on another address and restarts ICE.
        let fault = sim.now;
        let old_addr = sim.clients[a].addr;
        sim.clients[a].offline = true;
        sim.run(Duration::from_secs(1));
        sim.clients[a].offline = false;
        let new_addr = SocketAddr::from((Ipv4Addr::new(10, 0, 9, round), 7000));
        let offer = sim.clients[a].move_and_restart_ice(new_addr);
        let answer = sim
            .engine
            .offer(sim.now, &a_id, &offer, Vec::new())
            .expect("ICE restart offer answered");
        let new_ufrag = the_ufrag(&answer.sdp);
        assert!(
            new_ufrag.starts_with(PREFIX),
            "round {round}: the new ufrag {new_ufrag} keeps the worker prefix"
        );
        assert_ne!(new_ufrag, ufrag, "round {round}: new credentials");
        ufrag = new_ufrag;
        sim.clients[a].accept_answer(&answer.sdp);
        sim.pump();
        let restarted = sim.now;

        let resumed = sim.run_until(Duration::from_secs(3), |s| {
            [(b, a), (a, b)].iter().all(|&(rx, tx)| {
                let from = s.clients[tx].index;
                [TAG_CAM, TAG_MIC]
                    .iter()
                    .all(|&tag| frames_since(&s.clients[rx], from, tag, restarted) >= 10)
            })
        });
        assert!(
            resumed,
            "round {round}: camera and microphone did not resume both ways within 3 s of the restart: b got {:?} from a, a got {:?} from b (mic, cam; since the restart)",
            frames(&sim.clients[b], sim.clients[a].index, restarted),
            frames(&sim.clients[a], sim.clients[b].index, restarted),
        );
        let gap = sim.now - fault;
        assert!(
            gap < Duration::from_secs(3),
            "round {round}: gap {gap:?} from the fault to 20 frames each way"
        );
        // The restarted subscriber's video resumed on a keyframe asked of its publisher
        // when ICE connected again, not when its decoder would have noticed the loss.
        assert!(
            sim.clients[b]
                .keyframe_requests
                .iter()
                .any(|(at, mid, _)| *at >= restarted && *mid == sim.clients[b].cam),
            "round {round}: the camera a receives was asked for a keyframe"
        );
        let to_old = sim.sent_to.get(&old_addr).copied().unwrap_or(0);
        sim.run(Duration::from_millis(500));
        assert_eq!(
            sim.sent_to.get(&old_addr).copied().unwrap_or(0),
            to_old,
            "round {round}: nothing more sent to the old address"
        );
    }

    // Nothing renegotiated: no offer to anyone, no new m-line, the same tracks on the
    // same mids.
    assert_eq!(
        (offers_to(&sim, &a_id), offers_to(&sim, &b_id)),
        offers_before,
        "an ICE restart makes no server offer"
    );
    assert_eq!(
        (
            sim.clients[a].media_added.len(),
            sim.clients[b].media_added.len()
        ),
        added_before,
        "no new m-lines"
    );
    assert_eq!((mids(&sim.clients[a]), mids(&sim.clients[b])), mids_before);
    assert_eq!(
        (
            sim.engine.tracks_of(&a_id).expect("a"),
            sim.engine.tracks_of(&b_id).expect("b"),
        ),
        engine_tracks,
        "the engine sends the same tracks on the same mids"
    );
    assert!(
        !sim.events.iter().any(|(_, e)| matches!(
            e,
            SfuEvent::ParticipantGone { .. } | SfuEvent::PublicationRemoved { .. }
        )),
        "nobody left, nothing unpublished"
    );

    // A later server offer to the restarted client (a newcomer's tracks, once its media
    // starts) names the new ufrag only, and the newcomer's media reaches it.
    let offers_to_a = offers_to(&sim, &a_id);
    let c = sim.join(|_| {});
    assert!(
        sim.run_until(Duration::from_secs(5), |s| offers_to(s, &a_id)
            > offers_to_a),
        "the newcomer's tracks offered to a"
    );
    let offer_to_a = sim
        .events
        .iter()
        .rev()
        .find_map(|(_, e)| match e {
            SfuEvent::Renegotiate {
                participant, offer, ..
            } if *participant == a_id => Some(offer.clone()),
            _ => None,
        })
        .expect("an offer to a");
    assert_eq!(the_ufrag(&offer_to_a), ufrag);
    let c_index = sim.clients[c].index;
    assert!(
        sim.run_until(Duration::from_secs(5), |s| s.clients[a]
            .frames_from(c_index, TAG_CAM)
            >= 10),
        "the newcomer's video reaches the restarted client"
    );
}

#[test]
fn media_from_a_new_address_routes_only_after_its_stun_check() {
    let mut sim = Sim::with_config(|cfg| cfg.bwe_initial = None);
    let (a, _b) = (sim.join(|_| {}), sim.join(|_| {}));
    assert!(sim.run_until(Duration::from_secs(5), |s| {
        s.everyone_hears_and_sees_everyone(10)
    }));
    // RTP-looking bytes (not STUN) from an address nobody checked are dropped.
    let stranger = SocketAddr::from((Ipv4Addr::new(10, 0, 9, 9), 7000));
    let dropped = sim.engine.stats().datagrams_dropped;
    let mut rtp = vec![0x80u8, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1];
    rtp.extend_from_slice(&[0; 100]);
    sim.engine.handle_datagram(sim.now, stranger, &rtp);
    assert_eq!(sim.engine.stats().datagrams_dropped, dropped + 1);
    // The same participant at a new address without an ICE restart (a NAT rebinding):
    // its checks carry its current credentials, so the address is learned and media
    // flows again.
    let before = sim.clients[1].frames_from(sim.clients[a].index, TAG_CAM);
    sim.clients[a].addr = stranger;
    assert!(
        sim.run_until(Duration::from_secs(5), |s| s.clients[1]
            .frames_from(s.clients[a].index, TAG_CAM)
            >= before + 20),
        "media from the rebound address routes after its STUN check"
    );
}
