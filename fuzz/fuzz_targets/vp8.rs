#![no_main]

// VP8 payload descriptors and keyframe detection, and the sequence rewriter (crates/sfu/src/fuzzing.rs).
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = meeting_sfu::fuzzing::vp8(data);
});
