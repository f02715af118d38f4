//! The short corpus run of the `redis_relay` fuzz target: every committed seed
//! (`fuzz/corpus/redis_relay/`) through the target's entry point, in `cargo test`
//! (fuzz/README.md says why CI replays the corpus this way).

use std::path::PathBuf;

#[test]
fn every_redis_seed_is_a_message_the_node_accepts() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/redis_relay");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("directory entry").path();
        let data = std::fs::read(&path).expect("read seed");
        assert!(
            meeting_service::fuzzing::redis_relay(&data),
            "{} refused",
            path.display()
        );
        n += 1;
    }
    assert!(n >= 8, "seeds missing: {n}");
}
