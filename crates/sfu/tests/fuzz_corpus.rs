//! The short corpus run of the SFU's fuzz targets (`sdp_offer`, `stun_demux`,
//! `tcp_framing`, `vp8`): every committed seed (`fuzz/corpus/<target>/`, written by
//! `examples/fuzz_seeds.rs`) through the target's entry point, in `cargo test`
//! (fuzz/README.md says why CI replays the corpus this way).

use std::path::PathBuf;

use meeting_sfu::fuzzing;

fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .map(|p| {
            let bytes = std::fs::read(&p).expect("read seed");
            let name = p.file_name().expect("name").to_string_lossy().into_owned();
            (name, bytes)
        })
        .collect();
    files.sort();
    assert!(files.len() >= 3, "{target}: seeds missing");
    files
}

#[test]
fn sdp_seeds_are_offers_the_engine_accepts() {
    for (name, data) in corpus("sdp_offer") {
        assert!(fuzzing::sdp_offer(&data), "{name}: offer refused");
    }
}

#[test]
fn stun_seeds_name_the_worker_of_their_ufrag() {
    for (name, data) in corpus("stun_demux") {
        let expected = match name.as_str() {
            "request-worker-0" => Some(0),
            "request-worker-7" => Some(7),
            "tcp-first-frame" => Some(1),
            _ => None,
        };
        assert_eq!(fuzzing::stun_demux(&data), expected, "{name}");
    }
}

#[test]
fn tcp_seeds_are_deframed_alike_in_any_chunks() {
    let packets: Vec<(String, usize)> = corpus("tcp_framing")
        .into_iter()
        .map(|(name, data)| {
            let n = fuzzing::tcp_framing(&data);
            (name, n)
        })
        .collect();
    // stun-then-rtp: STUN, RTP, an empty frame (dropped), RTP; the others as named.
    assert!(
        packets.contains(&("stun-then-rtp".into(), 3)),
        "{packets:?}"
    );
    assert!(
        packets.contains(&("large-and-partial".into(), 2)),
        "{packets:?}"
    );
    assert!(packets.contains(&("not-ice-tcp".into(), 0)), "{packets:?}");
}

#[test]
fn vp8_seeds_tell_keyframes_from_the_rest() {
    for (name, data) in corpus("vp8") {
        let keyframe = name != "continuation";
        assert_eq!(fuzzing::vp8(&data), keyframe, "{name}");
    }
}
