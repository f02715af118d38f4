//! Per-packet forwarding cost: one publisher → N subscribers (N = 1, 10, 50).
//!
//! Measured path: `Engine::handle_datagram` (route by source address → SRTP decrypt in
//! the publisher's `Rtc` → `Event::RtpPacket`) → forwarding decision and rewrite →
//! `write_rtp` + SRTP encrypt in each subscriber's `Rtc` → `Output::Transmit` drained.
//! The `sendto` syscall is not included (see docs/sfu.md). Input packets are produced
//! beforehand by a str0m client (untimed), in chunks, since SRTP refuses replays.
//!
//! Besides criterion's figures (batch 1), a summary prints packets/s and CPU time per
//! forwarded packet measured with the thread's CPU clock (`/proc/thread-self/schedstat`),
//! for pure subscribers and for subscribers that also publish, with datagrams handed to
//! the engine one at a time and in bursts of 8 (`Engine::handle_datagrams`, as the
//! worker does). Run only the summary with `cargo bench --bench forward -- nothing`.
//!
//! Knobs (environment), for profiling: `FORWARD_ROWS` picks summary rows as
//! `N[*][/batch]`, comma-separated (e.g. `10,50/8,50*`; `*` = subscribers also offer
//! mic and camera); `FORWARD_PACKETS` sets the input packets per row; `FORWARD_SUMMARY_ONLY`
//! skips criterion. The timed work runs in `timed_feed` (never inlined), so that
//! `valgrind --tool=callgrind --collect-atstart=no --toggle-collect='*timed_feed*'`
//! counts exactly the forwarding path and not the rig's setup (ICE, DTLS, key generation).

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::VecDeque;
use std::hint::black_box;
use std::time::{Duration, Instant};

use common::Sim;
use criterion::{BenchmarkId, Criterion, Throughput};
use meeting_sfu::engine::Output;

/// Video payload per packet (one packet per frame: keeps the input cost predictable).
const PAYLOAD: usize = 1000;
/// Simulated time between two input packets (50k packets/s of simulated input).
const GAP: Duration = Duration::from_micros(20);
const CHUNK: usize = 2000;

struct Rig {
    sim: Sim,
    publisher: usize,
    pool: VecDeque<(Instant, Vec<u8>)>,
    t: Instant,
    first: bool,
}

impl Rig {
    fn new(subscribers: usize) -> Rig {
        Self::with(subscribers, true)
    }

    /// `receive_only = false`: every subscriber also publishes mic and camera (as in a
    /// meeting where everyone publishes): one frame at set-up, nothing while timed.
    fn with(subscribers: usize, receive_only: bool) -> Rig {
        let mut sim = Sim::new();
        let quiet = |c: &mut common::Client| {
            c.send_audio = false;
            c.send_video = false;
        };
        let publisher = sim.join(quiet);
        for _ in 0..subscribers {
            // Pure subscribers: their connections carry only what they receive.
            sim.join(|c| {
                c.receive_only = receive_only;
                c.send_audio = false;
                c.send_video = false;
            });
        }
        assert!(
            sim.run_until(Duration::from_secs(10), |s| s.all_connected()),
            "rig did not connect"
        );
        // Mic and camera are offered to the others when a participant's media starts:
        // one frame from the publisher (and from every subscriber, in the `*` rows, so
        // that they publish too), and the simulated network carries offers and answers.
        let now = sim.now;
        let senders = if receive_only { 1 } else { sim.clients.len() };
        for c in &mut sim.clients[..senders] {
            c.write_video_frame(now, true, PAYLOAD);
        }
        // Mic and camera of each other sender.
        let want = |i: usize| 2 * (senders - usize::from(i < senders));
        let settled = |s: &Sim| (0..s.clients.len()).all(|i| s.clients[i].tracks.len() == want(i));
        assert!(
            sim.run_until(Duration::from_secs(5), settled),
            "subscriptions did not settle"
        );
        sim.run(Duration::from_millis(100));
        let t = sim.now;
        Rig {
            sim,
            publisher,
            pool: VecDeque::new(),
            t,
            first: true,
        }
    }

    /// Let the publisher client produce `n` more datagrams for the server (untimed).
    fn refill(&mut self, n: usize) {
        let server = self.sim.server;
        while self.pool.len() < n {
            self.t += GAP;
            let c = &mut self.sim.clients[self.publisher];
            let keyframe = std::mem::take(&mut self.first);
            c.write_video_frame(self.t, keyframe, PAYLOAD);
            for (dest, data) in c.tick(self.t) {
                if dest == server {
                    self.pool.push_back((self.t, data));
                }
            }
        }
    }

    /// Feed `n` pooled datagrams to the engine and drain its output. Returns the number
    /// of datagrams the engine produced.
    fn feed(&mut self, n: usize) -> usize {
        self.feed_batched(n, 1)
    }

    /// Like the worker: `batch` datagrams handed to the engine at one instant
    /// (`Engine::handle_datagrams`), so subscribers are polled once per batch.
    fn feed_batched(&mut self, n: usize, batch: usize) -> usize {
        let from = self.sim.clients[self.publisher].addr;
        let mut sent = 0;
        let mut left = n;
        while left > 0 {
            let k = left.min(batch.max(1)).min(self.pool.len());
            if k == 0 {
                break;
            }
            let burst: Vec<(Instant, Vec<u8>)> = self.pool.drain(..k).collect();
            left -= k;
            let t = burst[k - 1].0;
            let engine = &mut self.sim.engine;
            if engine.poll_timeout().is_some_and(|x| x <= t) {
                engine.handle_timeout(t);
            }
            engine.handle_datagrams(t, burst.iter().map(|(_, d)| (from, d.as_slice())));
            while let Some(out) = engine.poll_output() {
                if let Output::Transmit { contents, .. } = out {
                    black_box(&contents);
                    sent += 1;
                }
            }
        }
        sent
    }
}

/// CPU time of this thread, in nanoseconds.
fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// The measured region (see the knobs above): feed `n` datagrams in bursts of `batch`.
#[inline(never)]
fn timed_feed(rig: &mut Rig, n: usize, batch: usize) -> usize {
    rig.feed_batched(n, batch)
}

/// Summary rows `(N, receive_only, batch)`: `FORWARD_ROWS` or the default set.
fn rows() -> Vec<(usize, bool, usize)> {
    let default = vec![
        (1usize, true, 1usize),
        (10, true, 1),
        (50, true, 1),
        (10, true, 8),
        (50, true, 8),
        (10, false, 1),
        (50, false, 1),
        (50, false, 8),
    ];
    let Ok(spec) = std::env::var("FORWARD_ROWS") else {
        return default;
    };
    spec.split(',')
        .filter(|r| !r.trim().is_empty())
        .map(|r| {
            let (n, batch) = r.trim().split_once('/').unwrap_or((r.trim(), "1"));
            let (n, publishing) = n.strip_suffix('*').map_or((n, false), |n| (n, true));
            (
                n.parse().expect("FORWARD_ROWS: N"),
                !publishing,
                batch.parse().expect("FORWARD_ROWS: batch"),
            )
        })
        .collect()
}

fn summary() {
    println!("\n1 publisher → N subscribers, {PAYLOAD}-byte VP8 packets");
    println!(
        "(* = every subscriber also publishes mic and camera: 2 m-lines per other participant)"
    );
    println!(
        "{:>5} {:>6} {:>14} {:>18} {:>22}",
        "N", "batch", "input pkt/s", "forwarded pkt/s", "CPU ns / forwarded"
    );
    let packets: Option<usize> = std::env::var("FORWARD_PACKETS")
        .ok()
        .map(|v| v.parse().expect("FORWARD_PACKETS: a number"));
    for (n, receive_only, batch) in rows() {
        let mut rig = Rig::with(n, receive_only);
        // Warm up (and let the keyframe open every subscription).
        rig.refill(CHUNK);
        rig.feed(CHUNK);
        let before = rig.sim.engine.stats().rtp_forwarded;
        let mut wall = Duration::ZERO;
        let mut cpu = 0u64;
        let mut input = 0usize;
        let total = packets.unwrap_or(match (n, receive_only) {
            (50, false) => 2_000,
            (50, true) => 10_000,
            _ => 40_000,
        });
        while input < total {
            let chunk = CHUNK.min(total - input);
            rig.refill(chunk);
            let c0 = thread_cpu_ns();
            let t0 = Instant::now();
            timed_feed(&mut rig, chunk, batch);
            wall += t0.elapsed();
            if let (Some(a), Some(b)) = (c0, thread_cpu_ns()) {
                cpu += b - a;
            }
            input += chunk;
        }
        let forwarded = rig.sim.engine.stats().rtp_forwarded - before;
        let secs = wall.as_secs_f64();
        println!(
            "{:>4}{} {:>6} {:>14.0} {:>18.0} {:>22.0}   ({input} in, {forwarded} forwarded)",
            n,
            if receive_only { " " } else { "*" },
            batch,
            input as f64 / secs,
            forwarded as f64 / secs,
            if forwarded > 0 {
                cpu as f64 / forwarded as f64
            } else {
                f64::NAN
            },
        );
        assert!(
            forwarded as usize >= input * n * 9 / 10,
            "forwarded {forwarded} of {}",
            input * n
        );
    }
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("forward");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500));
    for n in [1usize, 10, 50] {
        let mut rig = Rig::new(n);
        rig.refill(CHUNK);
        rig.feed(CHUNK);
        // One element = one forwarded packet (n per input packet).
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::new("1_to_n", n), &n, |b, _| {
            b.iter_custom(|iters| {
                let mut left = iters as usize;
                let mut took = Duration::ZERO;
                while left > 0 {
                    let k = left.min(CHUNK);
                    rig.refill(k);
                    let t0 = Instant::now();
                    rig.feed(k);
                    took += t0.elapsed();
                    left -= k;
                }
                took
            })
        });
    }
    group.finish();
}

fn main() {
    summary();
    if std::env::var_os("FORWARD_SUMMARY_ONLY").is_some() {
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
}
