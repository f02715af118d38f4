#![no_main]

// Socket.IO event payloads into the proto types, validated (crates/proto/src/fuzzing.rs).
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = proto::fuzzing::signaling_payload(data);
});
