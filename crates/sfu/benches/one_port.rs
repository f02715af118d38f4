//! What one-port mode costs per received datagram, against a port per worker.
//!
//! A real [`Sfu`] with two workers on 127.0.0.1 receives datagrams from one sender: a
//! STUN binding request whose USERNAME names worker 0 (so that the one-port
//! demultiplexer learns the source), then `N` RTP-like datagrams that no participant
//! owns. Each is read, routed to worker 0 and dropped by its engine — the same receive
//! path a media packet takes up to the engine, so the difference between the two modes
//! is the demultiplexer's hop (its `recvmmsg`, copy, channel and wake-up of the worker).
//! The SFU's threads' CPU time (`/proc/self/task/*/schedstat` of the `sfu-*` threads, so the
//! sender is not counted) is divided by the datagrams the engines saw.
//!
//! Datagrams go out in bursts of 1 and of 32 with a pause between bursts, because the
//! hop's cost depends on how many datagrams share one wake-up.
//!
//! `cargo bench -p meeting-sfu --bench one_port` (`ONE_PORT_DATAGRAMS` sets N).

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use meeting_sfu::{Sfu, SfuConfig, SfuEvent};

/// CPU time (µs) used so far by this process's threads whose name starts with `sfu-`
/// (`schedstat`: nanoseconds on CPU, finer than `stat`'s 10 ms ticks).
fn sfu_threads_cpu_us() -> u64 {
    let mut total_ns = 0u64;
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    for t in tasks.flatten() {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        if !comm.starts_with("sfu-") {
            continue;
        }
        let stat = std::fs::read_to_string(t.path().join("schedstat")).unwrap_or_default();
        total_ns += stat
            .split_whitespace()
            .next()
            .and_then(|x| x.parse::<u64>().ok())
            .unwrap_or(0);
    }
    total_ns / 1000
}

/// A STUN binding request whose USERNAME is `w0+bench:peer` (our ufrag first), with
/// the PRIORITY and MESSAGE-INTEGRITY attributes a request must carry to parse (the
/// integrity is not valid: the engine drops the request, the demultiplexer only reads
/// the USERNAME).
fn stun_naming_worker_0() -> Vec<u8> {
    fn attr(m: &mut Vec<u8>, typ: u16, value: &[u8]) {
        m.extend_from_slice(&typ.to_be_bytes());
        m.extend_from_slice(&(value.len() as u16).to_be_bytes());
        m.extend_from_slice(value);
        m.resize(m.len().div_ceil(4) * 4, 0);
    }
    let mut m = vec![0x00, 0x01, 0, 0, 0x21, 0x12, 0xa4, 0x42]; // binding request, cookie
    m.extend_from_slice(&[7; 12]); // transaction id
    attr(&mut m, 0x0006, b"w0+bench:peer"); // USERNAME
    attr(&mut m, 0x0024, &[0x6e, 0x7f, 0x1e, 0xff]); // PRIORITY
    attr(&mut m, 0x0008, &[0; 20]); // MESSAGE-INTEGRITY
    let len = (m.len() - 20) as u16;
    m[2..4].copy_from_slice(&len.to_be_bytes());
    m
}

fn start(one_port: bool) -> Sfu {
    for attempt in 0..50u16 {
        let base = 45_000 + (std::process::id() as u16 % 500) * 8 + attempt * 3;
        let mut cfg = SfuConfig::new(
            2,
            base,
            base + 1,
            Ipv4Addr::LOCALHOST.into(),
            Ipv4Addr::LOCALHOST.into(),
        );
        cfg.allow_loopback_announced = true;
        cfg.tcp = false;
        if one_port {
            cfg.single_port = Some(base + 2);
        }
        if let Ok(sfu) = Sfu::start(cfg, Arc::new(|_e: SfuEvent| {})) {
            return sfu;
        }
    }
    panic!("no free ports");
}

/// Send `n` datagrams in bursts of `burst`; returns µs of SFU CPU per datagram the
/// engines received, and how many they received.
fn measure(one_port: bool, burst: usize, n: usize) -> (f64, u64) {
    let sfu = start(one_port);
    let target = SocketAddr::from((Ipv4Addr::LOCALHOST, sfu.ports()[0]));
    let sender = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind sender");
    sender
        .send_to(&stun_naming_worker_0(), target)
        .expect("send STUN");
    let seen = |sfu: &Sfu| sfu.stats().iter().map(|s| s.datagrams_in).sum::<u64>();
    let deadline = Instant::now() + Duration::from_secs(5);
    while seen(&sfu) == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(
        seen(&sfu) > 0,
        "the first datagram never reached a worker: {:?} {:?}",
        sfu.stats(),
        sfu.one_port_stats()
    );
    let payload = [0x80u8; 200];
    let (in0, cpu0) = (seen(&sfu), sfu_threads_cpu_us());
    let mut sent = 0;
    while sent < n {
        for _ in 0..burst.min(n - sent) {
            let _ = sender.send_to(&payload, target);
            sent += 1;
        }
        // Room for the SFU to drain the burst before the next, as a paced publisher
        // gives it; without a pause bursts merge and both modes batch fully.
        std::thread::sleep(Duration::from_micros(200));
    }
    // Let what was sent arrive (bounded).
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut last = seen(&sfu);
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        let now = seen(&sfu);
        if now == last {
            break;
        }
        last = now;
    }
    let received = seen(&sfu) - in0;
    let cpu = sfu_threads_cpu_us() - cpu0;
    sfu.shutdown();
    (cpu as f64 / received.max(1) as f64, received)
}

fn main() {
    str0m::crypto::from_feature_flags().install_process_default();
    // `cargo bench` passes filter arguments; this bench has one table and ignores them.
    let n: usize = std::env::var("ONE_PORT_DATAGRAMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    println!("\nreceive path up to the engine, 2 workers, {n} datagrams of 200 bytes per row");
    println!(
        "{:>6} {:>24} {:>24} {:>10}",
        "burst", "port per worker µs/dgram", "one port µs/dgram", "one-port +"
    );
    for burst in [1usize, 32] {
        let (per, n_per) = measure(false, burst, n);
        let (one, n_one) = measure(true, burst, n);
        println!(
            "{burst:>6} {:>17.2} ({n_per:>5}) {:>17.2} ({n_one:>5}) {:>9.2}",
            per,
            one,
            one - per
        );
    }
}
