//! Entry point of the `redis_relay` fuzz target (`fuzz/`) and of the corpus test that
//! replays its seeds in `cargo test`: what a node reads from Redis, which any client of
//! that Redis can write. Not part of the server's API.

use serde_json::Value;

use crate::cluster::live::decode;
use crate::cluster::placement::{MediaOp, parse_reply, parse_request, sources_from_wire};

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
        0 => request(payload),
        1 => parse_reply(payload).map(|r| round_trip(&r)).is_some(),
        _ => registry_entry(payload),
    }
}

/// A relayed request, decoded as far as `placement::execute` decodes it before handing
/// it to the engine (whose SDP handling the `sdp_offer` target covers).
fn request(payload: &str) -> bool {
    let Ok(env) = parse_request(payload) else {
        return false;
    };
    round_trip(&env);
    match &env.op {
        MediaOp::Join { sources, .. } | MediaOp::Offer { sources, .. } => {
            let parsed = sources_from_wire(sources);
            assert!(parsed.len() <= sources.len());
        }
        MediaOp::SetMuted { source, .. } | MediaOp::SetPublishing { source, .. } => {
            let _ = meeting_sfu::TrackSource::parse(source);
        }
        MediaOp::Answer { .. } | MediaOp::Leave { .. } | MediaOp::CloseRoom { .. } => {}
    }
    true
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

fn round_trip<T: serde::Serialize + serde::de::DeserializeOwned>(v: &T) {
    let wire = serde_json::to_value(v).expect("a parsed message serializes");
    let again: T = serde_json::from_value(wire.clone()).expect("a written message parses");
    let wire_again: Value = serde_json::to_value(&again).expect("serializes");
    assert_eq!(wire, wire_again, "the round trip changed the message");
}
