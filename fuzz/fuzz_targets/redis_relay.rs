#![no_main]

// What a node reads from Redis: relay requests, replies, live registry entries (crates/server/src/fuzzing.rs).
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = meeting_service::fuzzing::redis_relay(data);
});
