#![no_main]

// A client's SDP offer, answer and renegotiation through the SFU engine (crates/sfu/src/fuzzing.rs).
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = meeting_sfu::fuzzing::sdp_offer(data);
});
