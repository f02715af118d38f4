//! Entry point of the `redis_relay` fuzz target (`fuzz/`) and of the corpus test that
//! replays its seeds in `cargo test`: what a node reads from Redis, which any client of
//! that Redis can write. Not part of the server's API.

use crate::live::redis::decode;
use crate::media::cluster::fuzz_relay_message;

/// The first byte picks the channel (`rpc:` request, `reply:` answer, or a live registry
/// entry from the room's hash); the rest is the payload as Redis delivers it. Panics
/// (the fuzzer's finding) if what was accepted does not survive being written back.
/// Returns whether the message was accepted.
pub fn redis_relay(data: &[u8]) -> bool {
    let Some((&channel, rest)) = data.split_first() else {
        return false;
    };
    // The relay reads payloads as `String`: other bytes are skipped before parsing.
    let Ok(payload) = std::str::from_utf8(rest) else {
        return false;
    };
    match channel % 3 {
        0 => fuzz_relay_message(false, payload),
        1 => fuzz_relay_message(true, payload),
        _ => registry_entry(payload),
    }
}

/// A participant entry of the live registry, as `RedisLive` reads it back, turned into
/// what the clients are sent.
fn registry_entry(raw: &str) -> bool {
    let Some(peer) = decode(raw) else {
        return false;
    };
    let wire = serde_json::to_string(&peer).expect("an entry serializes");
    assert_eq!(decode(&wire).as_ref(), Some(&peer), "entry changed: {wire}");
    let _ = serde_json::to_value(peer.to_participant()).expect("a participant serializes");
    true
}
