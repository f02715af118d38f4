//! Per-subscriber allocation on the simulated network: the layer a subscriber gets
//! follows its own downlink (str0m's TWCC estimate) and the tiles it reports, and changes
//! only on keyframes.

mod common;

use std::time::{Duration, Instant};

use common::{Link, Sim, TAG_CAM, TAG_MIC};
use meeting_sfu::{SfuEvent, TileView, TrackSource};

/// The camera frames `rx` received from client index `tx` since `since`.
fn camera_frames(sim: &Sim, rx: usize, tx: u8, since: Instant) -> Vec<&common::Received> {
    sim.clients[rx]
        .received
        .iter()
        .filter(|r| r.at >= since && r.sender == tx && r.tag == TAG_CAM)
        .collect()
}

/// The layers of the camera frames `rx` received from `tx` over the next `window`.
fn layers_over(sim: &mut Sim, rx: usize, tx: u8, window: Duration) -> Vec<u8> {
    let from = sim.now;
    sim.run(window);
    camera_frames(sim, rx, tx, from)
        .iter()
        .map(|r| r.layer)
        .collect()
}

/// A publisher of three layers (tags 0, 1, 2: about 120, 60 and 8 kbit/s times
/// `scale`) and two subscribers that send only audio, both receiving its camera.
fn meeting_of_three(scale: usize) -> (Sim, u8, usize, usize) {
    // With bandwidth estimation, in 1 ms steps: the TWCC feedback then reports arrival
    // times as a network would, not in 5 ms bursts that the estimator takes for queueing.
    let mut sim = Sim::with_bwe();
    let a = sim.join(|c| {
        c.simulcast = vec!["h", "m", "s"];
        c.video_scale = scale;
    });
    let (b, c) = (
        sim.join(|c| c.send_video = false),
        sim.join(|c| c.send_video = false),
    );
    let tx = sim.clients[a].index;
    assert!(
        sim.run_until(Duration::from_secs(10), |s| {
            s.clients[b].frames_from(tx, TAG_CAM) >= 10
                && s.clients[c].frames_from(tx, TAG_CAM) >= 10
        }),
        "no video from the publisher"
    );
    (sim, tx, b, c)
}

/// The layers of the last `n` camera frames `rx` received from `tx` since `since`.
fn last_layers(sim: &Sim, rx: usize, tx: u8, since: Instant, n: usize) -> Option<Vec<u8>> {
    let frames = camera_frames(sim, rx, tx, since);
    (frames.len() >= n).then(|| frames[frames.len() - n..].iter().map(|r| r.layer).collect())
}

/// `rx` reports its one tile: the camera of client index `tx`.
fn show_tile(sim: &mut Sim, rx: usize, tx: u8, visible: bool, width: u32, height: u32) {
    let view = TileView {
        from: sim.clients[tx as usize - 1].id.clone(),
        source: TrackSource::Camera,
        visible,
        width,
        height,
    };
    let id = sim.clients[rx].id.clone();
    sim.engine
        .set_tile_views(sim.now, &id, vec![view])
        .expect("a participant");
    sim.pump();
}

/// Every change of layer in what `rx` received from `tx` lands on a keyframe. The SFU
/// keeps the outgoing stream continuous across a switch, so a switch the subscriber sees
/// on a delta frame is a fault unless the link lost what came before it (the keyframe,
/// dropped by the throttled link, which the subscriber's decoder would ask for again):
/// then str0m marks the frame not contiguous, and the link counted a loss since the
/// frame before, at most a full queue (200 ms) earlier.
fn assert_switches_on_keyframes(sim: &Sim, rx: usize, tx: u8) -> usize {
    let frames = camera_frames(sim, rx, tx, sim.start);
    let losses = &sim.clients[rx].downlink_losses;
    let mut switches = 0;
    for w in frames.windows(2) {
        if w[0].layer != w[1].layer {
            switches += 1;
            let since = w[0].at - Duration::from_millis(200);
            let lost = losses.iter().any(|&t| t >= since && t <= w[1].at);
            assert!(
                w[1].keyframe || (!w[1].contiguous && lost),
                "switch {} → {} at {:?} on a delta frame (contiguous: {}, a loss on the link before it: {lost})",
                w[0].layer,
                w[1].layer,
                w[1].at - sim.start,
                w[1].contiguous,
            );
        }
    }
    switches
}

#[test]
fn a_subscribers_layer_follows_its_downlink_down_and_back_up() {
    // Layers of about 250, 125 and 15 kbit/s.
    let (mut sim, tx, b, c) = meeting_of_three(2);
    // Uncapped: the top layer for both, once the estimate has grown past it (it starts
    // at 1 Mbit/s and first falls back to what is sent, with little to send at first).
    let start = sim.now;
    assert!(
        sim.run_until(Duration::from_secs(15), |s| last_layers(
            s, b, tx, start, 25
        )
        .is_some_and(|l| l.iter().all(|&l| l == 0))),
        "b never got the top layer"
    );
    let before = layers_over(&mut sim, b, tx, Duration::from_secs(2));
    assert!(before.len() >= 40, "frames in 2 s: {}", before.len());
    assert!(before.iter().all(|&l| l == 0), "uncapped: {before:?}");

    // b's downlink: 300 kbit/s, 1 % loss. With two audio tracks (≈ 90 kbit/s) the top
    // layer no longer fits.
    sim.clients[b].downlink = Some(Link::new(300_000, Some(100)));
    let capped = sim.now;
    assert!(
        sim.run_until(Duration::from_secs(15), |s| last_layers(
            s, b, tx, capped, 25
        )
        .is_some_and(|l| l.iter().all(|&l| l != 0))),
        "b did not come down from the top layer: {:?}",
        last_layers(&sim, b, tx, capped, 0)
    );
    let down_after = sim.now - capped;
    // Settled below the top layer, still playing; c, uncapped, keeps the top layer.
    sim.run(Duration::from_secs(2));
    let from = sim.now;
    sim.run(Duration::from_secs(4));
    let mine: Vec<u8> = camera_frames(&sim, b, tx, from)
        .iter()
        .map(|r| r.layer)
        .collect();
    let theirs: Vec<u8> = camera_frames(&sim, c, tx, from)
        .iter()
        .map(|r| r.layer)
        .collect();
    assert!(mine.len() >= 80, "capped b's frames in 4 s: {}", mine.len());
    assert!(mine.iter().all(|&l| l != 0), "capped: {mine:?}");
    assert!(theirs.iter().all(|&l| l == 0), "uncapped c: {theirs:?}");
    assert!(
        sim.clients[b].frames_from(tx, TAG_MIC) > 0,
        "audio is never cut"
    );

    // The cap goes: the estimate grows back (padding probes) and so does the layer.
    sim.clients[b].downlink = None;
    let lifted = sim.now;
    assert!(
        sim.run_until(Duration::from_secs(40), |s| last_layers(
            s, b, tx, lifted, 25
        )
        .is_some_and(|l| l.iter().all(|&l| l == 0))),
        "b did not go back up: {:?}",
        last_layers(&sim, b, tx, lifted, 0)
    );
    let up_after = sim.now - lifted;
    let switches = assert_switches_on_keyframes(&sim, b, tx);
    assert!(switches >= 2, "switches: {switches}");
    eprintln!(
        "down after {down_after:?} (to layers {:?}), up after {up_after:?}, {switches} switches",
        mine.iter().collect::<std::collections::BTreeSet<_>>()
    );
}

#[test]
fn tiles_cap_the_layer_and_hidden_tiles_get_no_video() {
    let (mut sim, tx, b, c) = meeting_of_three(1);
    // A thumbnail (320 × 180): the smallest layer covers it.
    show_tile(&mut sim, b, tx, true, 320, 180);
    sim.run(Duration::from_secs(2));
    let small = layers_over(&mut sim, b, tx, Duration::from_secs(2));
    assert!(small.len() >= 40, "frames: {}", small.len());
    assert!(small.iter().all(|&l| l == 2), "thumbnail: {small:?}");

    // Hidden: no video at all (audio goes on), while c keeps receiving.
    show_tile(&mut sim, b, tx, false, 320, 180);
    sim.run(Duration::from_millis(500));
    let from = sim.now;
    let mic_before = sim.clients[b].frames_from(tx, TAG_MIC);
    sim.run(Duration::from_secs(2));
    assert_eq!(
        camera_frames(&sim, b, tx, from).len(),
        0,
        "hidden tile got video"
    );
    assert!(camera_frames(&sim, c, tx, from).len() >= 40);
    assert!(sim.clients[b].frames_from(tx, TAG_MIC) >= mic_before + 80);

    // Large (1280 × 720): resumes on a keyframe, and reaches the top layer as soon as
    // the estimate (which fell while little was sent) allows.
    show_tile(&mut sim, b, tx, true, 1280, 720);
    assert!(
        sim.run_until(Duration::from_secs(10), |s| last_layers(s, b, tx, from, 25)
            .is_some_and(|l| l.iter().all(|&l| l == 0))),
        "large tile: {:?}",
        last_layers(&sim, b, tx, from, 0)
    );
    let resumed = camera_frames(&sim, b, tx, from);
    assert!(
        resumed.first().is_some_and(|r| r.keyframe),
        "resumed on a delta frame"
    );
    assert_switches_on_keyframes(&sim, b, tx);
}

#[test]
fn a_layer_nobody_needs_is_reported_to_its_publisher_and_resumed() {
    let (mut sim, tx, b, c) = meeting_of_three(1);
    let a = tx as usize - 1;
    let reported = |s: &Sim, rid: &str, needed: bool| {
        s.events.iter().any(|(_, e)| {
            matches!(e, SfuEvent::LayerNeeded { participant, rid: r, needed: n, .. }
                if *participant == s.clients[a].id && r == rid && *n == needed)
        })
    };
    // Both subscribers show the camera as a thumbnail: only the smallest layer is taken.
    show_tile(&mut sim, b, tx, true, 320, 180);
    show_tile(&mut sim, c, tx, true, 320, 180);
    assert!(
        sim.run_until(Duration::from_secs(5), |s| reported(s, "h", false)
            && reported(s, "m", false)),
        "the unneeded layers were not reported"
    );
    assert!(
        !reported(&sim, "s", false),
        "the layer in use was reported unneeded"
    );
    let mut stopped = sim.clients[a].stopped_layers.clone();
    stopped.sort();
    assert_eq!(stopped, ["h", "m"]);
    // The publisher stopped them (as a page does); the thumbnails still play.
    sim.run(Duration::from_secs(1));
    let thumbnails = layers_over(&mut sim, b, tx, Duration::from_secs(2));
    assert!(thumbnails.len() >= 40, "frames: {}", thumbnails.len());
    assert!(thumbnails.iter().all(|&l| l == 2), "{thumbnails:?}");

    // One subscriber enlarges its tile: the top layer is needed again at once, the
    // publisher resumes it, and that subscriber gets it; the other keeps the thumbnail.
    show_tile(&mut sim, b, tx, true, 1280, 720);
    assert!(
        sim.run_until(Duration::from_secs(1), |s| reported(s, "h", true)),
        "the top layer was not asked for again"
    );
    assert!(!sim.clients[a].stopped_layers.iter().any(|r| r == "h"));
    sim.run(Duration::from_secs(3));
    let from = sim.now;
    sim.run(Duration::from_secs(2));
    let large: Vec<u8> = camera_frames(&sim, b, tx, from)
        .iter()
        .map(|r| r.layer)
        .collect();
    let small: Vec<u8> = camera_frames(&sim, c, tx, from)
        .iter()
        .map(|r| r.layer)
        .collect();
    assert!(large.len() >= 40 && small.len() >= 40);
    assert!(large.iter().all(|&l| l == 0), "enlarged: {large:?}");
    assert!(small.iter().all(|&l| l == 2), "thumbnail: {small:?}");
    assert_switches_on_keyframes(&sim, b, tx);
}

/// The room's dominant speaker from the microphones' RFC 6464 levels: named within 2 s
/// of talking, not moved by a cough, moved when another talks and the first stops.
#[test]
fn the_active_speaker_follows_who_talks_and_not_who_coughs() {
    let mut sim = Sim::new();
    let clients: Vec<usize> = (0..3)
        .map(|_| sim.join(|c| c.audio_level = Some(-127)))
        .collect();
    assert!(
        sim.run_until(Duration::from_secs(10), |s| s
            .everyone_hears_and_sees_everyone(5)),
        "no media"
    );
    let named_since = |s: &Sim, since: Instant| {
        s.events.iter().rev().find_map(|(at, e)| match e {
            SfuEvent::ActiveSpeaker { speaker, .. } if *at >= since => Some(speaker.clone()),
            _ => None,
        })
    };
    let talk =
        |sim: &mut Sim, i: usize, level: i8| sim.clients[clients[i]].audio_level = Some(level);
    let id = |sim: &Sim, i: usize| Some(sim.clients[clients[i]].id.clone());

    talk(&mut sim, 0, -30);
    let t = sim.now;
    let first = id(&sim, 0);
    assert!(
        sim.run_until(Duration::from_secs(2), |s| named_since(s, t)
            == Some(first.clone())),
        "the first speaker was not named within 2 s"
    );
    // A cough (300 ms) from the third while the first goes on: no change.
    talk(&mut sim, 2, -20);
    let t = sim.now;
    sim.run(Duration::from_millis(300));
    talk(&mut sim, 2, -127);
    sim.run(Duration::from_secs(2));
    let changes: Vec<_> = sim
        .events
        .iter()
        .filter(|(at, e)| {
            *at >= t && matches!(e, SfuEvent::ActiveSpeaker { speaker, .. } if *speaker != first)
        })
        .collect();
    assert!(changes.is_empty(), "a cough moved the floor: {changes:?}");
    // The second talks, the first stops: the floor moves within 2 s.
    talk(&mut sim, 1, -30);
    talk(&mut sim, 0, -127);
    let t = sim.now;
    let second = id(&sim, 1);
    assert!(
        sim.run_until(Duration::from_secs(2), |s| named_since(s, t)
            == Some(second.clone())),
        "the second speaker was not named within 2 s"
    );
}
