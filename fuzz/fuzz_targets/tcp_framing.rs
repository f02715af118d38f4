#![no_main]

// RFC 4571 framing of ICE-TCP connections (crates/sfu/src/fuzzing.rs).
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = meeting_sfu::fuzzing::tcp_framing(data);
});
