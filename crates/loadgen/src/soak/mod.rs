//! `meeting-load soak`: joins and leaves churn across several meetings, with media
//! flowing, and the server must come back to where it was.
//!
//! Every seat of every meeting runs cycles: join (Socket.IO, `join-meeting`, the
//! publishing offer, media), stay a while answering renegotiations, then leave one of
//! three ways, drawn at random: `leave-meeting` and a clean close, an abrupt close of
//! the TCP connection (no leave, no close frame), or an abrupt close while the
//! `join-meeting` is still being processed. Each cycle is a new user (with minted
//! tokens), and the meetings are capped at their seats, so a ghost left behind takes a
//! seat for good and shows as `ROOM_FULL`.
//!
//! The run has two churn phases. The first warms the server up (pools, caches, the
//! allocator's arenas); after it every seat leaves and the server goes quiet: the
//! **start** figures. After the second, the **end** figures. "Flat" is end against
//! start, within [`Tolerance`]; and at both points nobody may be left in the live
//! registry and no history row may be left open. Figures come from `/proc/<pid>`
//! (`--server-pid`) and from the server's `GET /health/process`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use tokio::sync::watch;

use crate::engine::{Command, MediaThread};
use crate::peer::VideoPlan;
use crate::rest::Rest;

mod figures;
mod seat;

pub use figures::{Check, Figures, SoakReport, Tolerance};
use figures::{empty_checks, flat_checks, sample, settle};
use seat::Seat;

/// Timeout of every signaling request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a stopped seat may take to finish its cycle.
const DRAIN: Duration = Duration::from_secs(45);

#[derive(Clone, Debug)]
pub struct SoakConfig {
    pub url: String,
    pub meetings: usize,
    /// Seats per meeting (and the meeting's `maxParticipants`).
    pub seats: usize,
    /// The measured churn phase.
    pub duration: Duration,
    /// The churn phase before the start figures.
    pub warm_up: Duration,
    /// How long a participant stays, drawn uniformly from this range.
    pub dwell: (Duration, Duration),
    pub video: VideoPlan,
    pub server_pid: u32,
    pub threads: usize,
    pub seed: u64,
    pub tolerance: Tolerance,
    /// Seconds between the samples of the timeline.
    pub sample_every: Duration,
    pub quiet: bool,
}

/// How each cycle ended, over the whole run.
#[derive(Debug, Default)]
struct Counters {
    cycles: AtomicU64,
    joined: AtomicU64,
    left_cleanly: AtomicU64,
    dropped_after_join: AtomicU64,
    dropped_mid_join: AtomicU64,
    room_full: AtomicU64,
    join_errors: AtomicU64,
    renegotiations: AtomicU64,
    renegotiation_errors: AtomicU64,
    errors: std::sync::Mutex<Vec<String>>,
}

impl Counters {
    fn error(&self, what: String) {
        let mut errors = self.errors.lock().unwrap_or_else(|e| e.into_inner());
        if errors.len() < 10 {
            errors.push(what);
        }
    }

    fn snapshot(&self) -> Churn {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Churn {
            cycles: get(&self.cycles),
            joined: get(&self.joined),
            left_cleanly: get(&self.left_cleanly),
            dropped_after_join: get(&self.dropped_after_join),
            dropped_mid_join: get(&self.dropped_mid_join),
            room_full: get(&self.room_full),
            join_errors: get(&self.join_errors),
            renegotiations: get(&self.renegotiations),
            renegotiation_errors: get(&self.renegotiation_errors),
            errors: self
                .errors
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }
}

/// The churn's counts (both phases).
#[derive(Clone, Debug, Serialize)]
pub struct Churn {
    pub cycles: u64,
    /// Cycles that got through the join and the publishing offer.
    pub joined: u64,
    pub left_cleanly: u64,
    pub dropped_after_join: u64,
    pub dropped_mid_join: u64,
    /// Joins refused with `ROOM_FULL`: a seat held by someone who should be gone (a
    /// ghost, or a leave the server had not processed yet).
    pub room_full: u64,
    /// Other failed joins.
    pub join_errors: u64,
    pub renegotiations: u64,
    pub renegotiation_errors: u64,
    /// The first few errors, verbatim.
    pub errors: Vec<String>,
}

/// One churn phase: every seat cycles until `length` has passed, then finishes its
/// cycle (bounded by [`DRAIN`]). Samples the figures every `sample_every`.
#[allow(clippy::too_many_arguments)]
async fn churn_phase(
    config: &SoakConfig,
    rest: &Rest,
    rooms: &[String],
    threads: &[MediaThread],
    counters: &Arc<Counters>,
    rng: &mut StdRng,
    length: Duration,
    started: Instant,
    timeline: &mut Vec<Figures>,
) -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut seats = Vec::new();
    for (m, room) in rooms.iter().enumerate() {
        for s in 0..config.seats {
            let seat = Seat {
                room: room.clone(),
                name: format!("soak {m}.{s}"),
                user_prefix: format!("soak-{}-{m}-{s}", std::process::id()),
                thread: threads[(m * config.seats + s) % threads.len()].clone(),
                participant: m * config.seats + s,
                rest: rest.clone(),
                config: config.clone(),
                counters: counters.clone(),
                rng: StdRng::seed_from_u64(rng.random()),
            };
            seats.push(tokio::spawn(seat.run(stop_rx.clone())));
        }
    }
    let phase_end = Instant::now() + length;
    let mut next_sample = Instant::now() + config.sample_every;
    while Instant::now() < phase_end {
        let wake = next_sample.min(phase_end);
        tokio::time::sleep_until(wake.into()).await;
        if Instant::now() >= next_sample {
            next_sample += config.sample_every;
            match sample(rest, config.server_pid, started).await {
                Ok(f) => {
                    if !config.quiet {
                        eprintln!(
                            "[{:>6.0}s] {} | {} cycles, {} ROOM_FULL",
                            f.at_s,
                            f.line(),
                            counters.cycles.load(Ordering::Relaxed),
                            counters.room_full.load(Ordering::Relaxed)
                        );
                    }
                    timeline.push(f);
                }
                Err(e) => counters.error(format!("sampling: {e:#}")),
            }
        }
    }
    let _ = stop_tx.send(true);
    let drain_deadline = Instant::now() + DRAIN;
    for seat in seats {
        let left = drain_deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, seat).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => bail!("a seat's task failed: {e}"),
            Err(_) => bail!("a seat did not finish its cycle within {DRAIN:?} of the stop"),
        }
    }
    Ok(())
}

pub async fn run(config: SoakConfig, rest: Rest) -> anyhow::Result<SoakReport> {
    if config.meetings == 0 || config.seats < 2 {
        bail!(
            "--meetings must be at least 1 and --participants at least 2 (the server's smallest cap)"
        );
    }
    if !rest.mints_tokens() {
        bail!(
            "the soak makes a new user per cycle: give it the server's JWT secret (--jwt-secret or MEETING_LOAD_JWT_SECRET)"
        );
    }
    let started = Instant::now();
    let threads: Vec<MediaThread> = (0..config.threads.max(1))
        .map(|i| MediaThread::spawn(i).map(|(t, _join)| t))
        .collect::<anyhow::Result<_>>()?;
    let mut rng = StdRng::seed_from_u64(config.seed);
    let counters = Arc::new(Counters::default());

    let baseline = sample(&rest, config.server_pid, started).await?;
    if !config.quiet {
        eprintln!("baseline: {}", baseline.line());
    }
    let mut rooms = Vec::new();
    for m in 0..config.meetings {
        let host = rest
            .token(
                &format!("soak-{}-host-{m}", std::process::id()),
                &format!("Soak host {m}"),
            )
            .await?;
        rooms.push(
            rest.create_capped_meeting(&host, &format!("meeting-load soak {m}"), config.seats)
                .await
                .context("creating a meeting")?,
        );
    }

    let mut timeline = Vec::new();
    churn_phase(
        &config,
        &rest,
        &rooms,
        &threads,
        &counters,
        &mut rng,
        config.warm_up,
        started,
        &mut timeline,
    )
    .await?;
    let start = settle(&rest, config.server_pid, started, None, &config.tolerance).await?;
    if !config.quiet {
        eprintln!("start: {}", start.line());
    }
    churn_phase(
        &config,
        &rest,
        &rooms,
        &threads,
        &counters,
        &mut rng,
        config.duration,
        started,
        &mut timeline,
    )
    .await?;
    let end = settle(
        &rest,
        config.server_pid,
        started,
        Some(&start),
        &config.tolerance,
    )
    .await?;
    if !config.quiet {
        eprintln!("end: {}", end.line());
    }

    let received_packets = threads
        .iter()
        .map(|t| t.live.rx_packets.load(Ordering::Relaxed))
        .sum();
    for t in &threads {
        let _ = t.ask(|reply| Command::Finish { reply }).await;
    }
    let churn = counters.snapshot();
    let mut checks = empty_checks("start", &start);
    checks.extend(flat_checks("end", &start, &end, &config.tolerance));
    checks.push(Check {
        what: format!("media flowed: {received_packets} packets received"),
        ok: received_packets > 0,
    });
    checks.push(Check {
        what: format!(
            "participants joined: {} of {} cycles",
            churn.joined, churn.cycles
        ),
        ok: churn.joined > 0,
    });
    let passed = checks.iter().all(|c| c.ok);
    Ok(SoakReport {
        tool: "meeting-load",
        mode: "soak",
        url: config.url.clone(),
        meetings: config.meetings,
        seats_per_meeting: config.seats,
        warm_up_s: config.warm_up.as_secs_f64(),
        duration_s: config.duration.as_secs_f64(),
        seed: config.seed,
        tolerance: config.tolerance,
        baseline,
        start,
        end,
        timeline,
        churn,
        received_packets,
        checks,
        passed,
    })
}
