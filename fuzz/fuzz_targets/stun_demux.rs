#![no_main]

// The one-port demultiplexer's STUN/ufrag routing (crates/sfu/src/fuzzing.rs).
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = meeting_sfu::fuzzing::stun_demux(data);
});
