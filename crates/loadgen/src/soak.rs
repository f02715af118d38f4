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

use anyhow::{Context, anyhow, bail};
use proto::signaling::SfuAnswerData;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::engine::{Command, MediaThread};
use crate::peer::VideoPlan;
use crate::procfs::{self, ProcessFigures};
use crate::rest::Rest;
use crate::scenario::{self, Scenario};
use crate::sio::{ServerEvent, SioClient};

/// Timeout of every signaling request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// How long the server may take to come back to rest after the seats have left.
const SETTLE: Duration = Duration::from_secs(30);
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

/// How far the end figures may be above the start figures and still count as flat.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Tolerance {
    /// RSS may grow by the larger of this many MiB and [`Tolerance::rss_percent`].
    pub rss_mib: u64,
    pub rss_percent: u64,
    /// Descriptors, threads and tokio tasks may be this many above the start
    /// (connection pools and tokio's blocking threads come and go).
    pub fds: u64,
    pub threads: u64,
    pub tasks: u64,
}

impl Default for Tolerance {
    fn default() -> Self {
        Tolerance {
            rss_mib: 16,
            rss_percent: 20,
            fds: 4,
            threads: 4,
            tasks: 4,
        }
    }
}

/// What the server holds at one moment.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Figures {
    /// Seconds since the run started.
    pub at_s: f64,
    #[serde(flatten)]
    pub process: ProcessFigures,
    pub tokio_tasks: u64,
    pub live_participants: u64,
    pub open_participant_rows: u64,
    /// Bytes the server's allocator has handed out and not got back (`heap.inUse`; none
    /// where the server cannot tell, i.e. not on glibc). Unlike RSS it does not include
    /// memory freed but kept by the allocator, so it is the sharper leak check.
    pub heap_in_use: Option<u64>,
}

impl Figures {
    fn line(&self) -> String {
        let heap = self
            .heap_in_use
            .map(|b| format!(", heap in use {:.1} MiB", b as f64 / 1048576.0))
            .unwrap_or_default();
        format!(
            "RSS {:.1} MiB{heap}, {} fds, {} threads, {} tokio tasks, {} live participants, {} open history rows",
            self.process.rss_bytes as f64 / 1048576.0,
            self.process.open_fds,
            self.process.threads,
            self.tokio_tasks,
            self.live_participants,
            self.open_participant_rows
        )
    }
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

/// The soak's JSON report.
#[derive(Clone, Debug, Serialize)]
pub struct SoakReport {
    pub tool: &'static str,
    pub mode: &'static str,
    pub url: String,
    pub meetings: usize,
    pub seats_per_meeting: usize,
    pub warm_up_s: f64,
    pub duration_s: f64,
    pub seed: u64,
    pub tolerance: Tolerance,
    /// Before any participant joined.
    pub baseline: Figures,
    /// After the warm-up phase, at rest.
    pub start: Figures,
    /// After the measured phase, at rest.
    pub end: Figures,
    /// Samples during the churn.
    pub timeline: Vec<Figures>,
    pub churn: Churn,
    /// Media packets the participants received (both phases).
    pub received_packets: u64,
    /// Each check and whether it held.
    pub checks: Vec<Check>,
    pub passed: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct Check {
    pub what: String,
    pub ok: bool,
}

impl SoakReport {
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let c = &self.churn;
        out.push_str(&format!(
            "soak: {} meetings × {} seats, warm-up {:.0} s, measured {:.0} s, seed {}\n",
            self.meetings, self.seats_per_meeting, self.warm_up_s, self.duration_s, self.seed
        ));
        out.push_str(&format!(
            "churn: {} cycles, {} joined ({} left cleanly, {} dropped after joining), {} dropped mid-join, \
             {} ROOM_FULL, {} other join errors, {} renegotiations ({} failed), {} media packets received\n",
            c.cycles,
            c.joined,
            c.left_cleanly,
            c.dropped_after_join,
            c.dropped_mid_join,
            c.room_full,
            c.join_errors,
            c.renegotiations,
            c.renegotiation_errors,
            self.received_packets
        ));
        out.push_str(&format!("baseline: {}\n", self.baseline.line()));
        out.push_str(&format!("start:    {}\n", self.start.line()));
        out.push_str(&format!("end:      {}\n", self.end.line()));
        for check in &self.checks {
            out.push_str(&format!(
                "{} {}\n",
                if check.ok { "ok  " } else { "FAIL" },
                check.what
            ));
        }
        for e in &c.errors {
            out.push_str(&format!("error: {e}\n"));
        }
        out.push_str(if self.passed {
            "soak passed\n"
        } else {
            "soak FAILED\n"
        });
        out
    }
}

/// The figures now: `/proc/<pid>` and `GET /health/process`.
async fn sample(rest: &Rest, pid: u32, started: Instant) -> anyhow::Result<Figures> {
    let process = procfs::figures(pid)?;
    let body = rest
        .get("/health/process")
        .await
        .context("the server's process counts (GET /health/process)")?;
    let count = |key: &str| {
        body[key]
            .as_u64()
            .ok_or_else(|| anyhow!("GET /health/process: no `{key}` in {body}"))
    };
    Ok(Figures {
        at_s: started.elapsed().as_secs_f64(),
        process,
        tokio_tasks: count("tokioTasks")?,
        live_participants: count("liveParticipants")?,
        open_participant_rows: count("openParticipantRows")?,
        heap_in_use: body.pointer("/heap/inUse").and_then(Value::as_u64),
    })
}

/// Whether `end` is within the tolerance of `start`, and nobody is left.
fn flat_checks(label: &str, start: &Figures, end: &Figures, tol: &Tolerance) -> Vec<Check> {
    let rss_allowed = (tol.rss_mib * 1048576).max(start.process.rss_bytes * tol.rss_percent / 100);
    let mib = |b: u64| b as f64 / 1048576.0;
    let mut checks = vec![
        Check {
            what: format!(
                "{label}: RSS {:.1} MiB ≤ {:.1} MiB (start {:.1} MiB + {:.1} MiB)",
                mib(end.process.rss_bytes),
                mib(start.process.rss_bytes + rss_allowed),
                mib(start.process.rss_bytes),
                mib(rss_allowed)
            ),
            ok: end.process.rss_bytes <= start.process.rss_bytes + rss_allowed,
        },
        Check {
            what: format!(
                "{label}: {} fds ≤ {} + {}",
                end.process.open_fds, start.process.open_fds, tol.fds
            ),
            ok: end.process.open_fds <= start.process.open_fds + tol.fds,
        },
        Check {
            what: format!(
                "{label}: {} threads ≤ {} + {}",
                end.process.threads, start.process.threads, tol.threads
            ),
            ok: end.process.threads <= start.process.threads + tol.threads,
        },
        Check {
            what: format!(
                "{label}: {} tokio tasks ≤ {} + {}",
                end.tokio_tasks, start.tokio_tasks, tol.tasks
            ),
            ok: end.tokio_tasks <= start.tokio_tasks + tol.tasks,
        },
    ];
    // The same allowance as RSS: what the allocator hands out must come back as well.
    if let (Some(s), Some(e)) = (start.heap_in_use, end.heap_in_use) {
        let allowed = (tol.rss_mib * 1048576).max(s * tol.rss_percent / 100);
        checks.push(Check {
            what: format!(
                "{label}: heap in use {:.1} MiB ≤ {:.1} MiB (start {:.1} MiB + {:.1} MiB)",
                mib(e),
                mib(s + allowed),
                mib(s),
                mib(allowed)
            ),
            ok: e <= s + allowed,
        });
    }
    checks.extend(empty_checks(label, end));
    checks
}

fn empty_checks(label: &str, f: &Figures) -> Vec<Check> {
    vec![
        Check {
            what: format!("{label}: {} live participants = 0", f.live_participants),
            ok: f.live_participants == 0,
        },
        Check {
            what: format!("{label}: {} open history rows = 0", f.open_participant_rows),
            ok: f.open_participant_rows == 0,
        },
    ]
}

/// Waits (bounded by [`SETTLE`]) until the server is at rest: nobody live, no open
/// row, and, given a reference, the other figures within the tolerance of it. Returns
/// the last sample either way; the checks decide.
async fn settle(
    rest: &Rest,
    pid: u32,
    started: Instant,
    reference: Option<&Figures>,
    tol: &Tolerance,
) -> anyhow::Result<Figures> {
    let deadline = Instant::now() + SETTLE;
    loop {
        let f = sample(rest, pid, started).await?;
        let at_rest = match reference {
            Some(r) => flat_checks("", r, &f, tol).iter().all(|c| c.ok),
            None => empty_checks("", &f).iter().all(|c| c.ok),
        };
        if at_rest || Instant::now() >= deadline {
            return Ok(f);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
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

/// How a cycle ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Exit {
    /// `leave-meeting`, then a clean close.
    Leave,
    /// The TCP connection dropped while in the meeting.
    DropAfterJoin,
    /// The TCP connection dropped right after sending `join-meeting`.
    DropMidJoin,
}

impl Exit {
    fn draw(rng: &mut StdRng) -> Exit {
        match rng.random_range(0..10) {
            0..5 => Exit::Leave,
            5..8 => Exit::DropAfterJoin,
            _ => Exit::DropMidJoin,
        }
    }
}

/// One seat of one meeting: a participant after another.
struct Seat {
    room: String,
    name: String,
    user_prefix: String,
    thread: MediaThread,
    /// Index for the media thread's report.
    participant: usize,
    rest: Rest,
    config: SoakConfig,
    counters: Arc<Counters>,
    rng: StdRng,
}

impl Seat {
    async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let mut cycle = 0u64;
        while !*stop.borrow() {
            cycle += 1;
            self.counters.cycles.fetch_add(1, Ordering::Relaxed);
            let exit = Exit::draw(&mut self.rng);
            if let Err(e) = self.cycle(cycle, exit, &mut stop).await {
                let text = format!("{e:#}");
                if text.contains("ROOM_FULL") {
                    self.counters.room_full.fetch_add(1, Ordering::Relaxed);
                } else {
                    self.counters.join_errors.fetch_add(1, Ordering::Relaxed);
                    self.counters.error(format!("{}: {text}", self.name));
                }
                // A refused or broken join: back off a little before the next user.
                let _ = tokio::time::timeout(Duration::from_secs(1), stop.changed()).await;
            }
            let pause = Duration::from_millis(self.rng.random_range(100..500));
            let _ = tokio::time::timeout(pause, stop.changed()).await;
        }
    }

    /// One participant: join, stay, leave as `exit` says. The connection is closed (or
    /// dropped) on every path out.
    async fn cycle(
        &mut self,
        cycle: u64,
        exit: Exit,
        stop: &mut watch::Receiver<bool>,
    ) -> anyhow::Result<()> {
        let user = format!("{}-{cycle}", self.user_prefix);
        let token = self.rest.token(&user, &self.name).await?;
        let (client, events) =
            SioClient::connect(&self.config.url, &token, REQUEST_TIMEOUT).await?;
        let join_req = json!({ "roomId": self.room, "userName": self.name });
        if exit == Exit::DropMidJoin {
            // Ask for the ack as a browser would, and drop the connection while the
            // server is still admitting us (somewhere in the first few milliseconds).
            let request = client.request("join-meeting", &join_req, REQUEST_TIMEOUT);
            let wait = Duration::from_millis(self.rng.random_range(0..15));
            let _ = tokio::time::timeout(wait, request).await;
            client.abort();
            self.counters
                .dropped_mid_join
                .fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        let slot = match self.join(&client, join_req).await {
            Ok(slot) => slot,
            Err(e) => {
                client.abort();
                return Err(e);
            }
        };
        self.counters.joined.fetch_add(1, Ordering::Relaxed);
        let dwell = self
            .rng
            .random_range(self.config.dwell.0..=self.config.dwell.1.max(self.config.dwell.0));
        self.stay(&client, events, slot, dwell, stop).await;
        match exit {
            Exit::Leave => {
                let _ = client
                    .request(
                        "leave-meeting",
                        &json!({ "roomId": self.room }),
                        REQUEST_TIMEOUT,
                    )
                    .await;
                client.close();
                self.counters.left_cleanly.fetch_add(1, Ordering::Relaxed);
            }
            Exit::DropAfterJoin | Exit::DropMidJoin => {
                client.abort();
                self.counters
                    .dropped_after_join
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
        let _ = self.thread.send(Command::Remove { slot });
        Ok(())
    }

    /// `join-meeting`, a media peer on the thread, the publishing offer; the peer's slot.
    async fn join(&self, client: &SioClient, join_req: Value) -> anyhow::Result<usize> {
        // socketioxide may drop an event sent right after CONNECT (see scenario.rs):
        // one retry.
        let first = client
            .request("join-meeting", &join_req, Duration::from_secs(3))
            .await;
        let _: Value = match first {
            Ok(ack) => crate::sio::client::parse_ack("join-meeting", ack)?,
            Err(_) => {
                client
                    .call("join-meeting", &join_req, REQUEST_TIMEOUT)
                    .await?
            }
        };
        let plan = Scenario::Meeting.plan(0, &self.config.video, None);
        let participant = self.participant;
        let (slot, offer, mids) = self
            .thread
            .ask(|reply| Command::Add {
                participant,
                plan,
                started: Instant::now(),
                reply,
            })
            .await??;
        let sources: std::collections::BTreeMap<String, &str> = [
            (mids.microphone, "microphone"),
            (mids.camera, "camera"),
            (mids.screen, "screen"),
        ]
        .into_iter()
        .collect();
        let answered: anyhow::Result<SfuAnswerData> = client
            .call(
                "sfu-offer",
                &json!({ "roomId": self.room, "sdp": offer, "sources": sources }),
                REQUEST_TIMEOUT,
            )
            .await;
        let applied = match answered {
            Ok(answer) => self
                .thread
                .ask(|reply| Command::Answer {
                    slot,
                    sdp: answer.sdp,
                    reply,
                })
                .await
                .and_then(|r| r),
            Err(e) => Err(e),
        };
        if let Err(e) = applied {
            let _ = self.thread.send(Command::Remove { slot });
            return Err(e);
        }
        Ok(slot)
    }

    /// In the meeting for `dwell` (or until the stop): answer the server's offers.
    async fn stay(
        &self,
        client: &SioClient,
        mut events: tokio::sync::mpsc::UnboundedReceiver<ServerEvent>,
        slot: usize,
        dwell: Duration,
        stop: &mut watch::Receiver<bool>,
    ) {
        let until = tokio::time::Instant::now() + dwell;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(until) => return,
                _ = stop.changed() => return,
                ev = events.recv() => {
                    let Some(ev) = ev else { return };
                    let Some(offer) = ev.decode::<proto::events::ServerOffer>() else {
                        continue;
                    };
                    self.counters.renegotiations.fetch_add(1, Ordering::Relaxed);
                    let answered = match offer {
                        Ok(offer) => scenario::answer_offer(client, &self.thread, &self.room, slot, offer).await,
                        Err(e) => Err(e),
                    };
                    if let Err(e) = answered {
                        self.counters.renegotiation_errors.fetch_add(1, Ordering::Relaxed);
                        self.counters.error(format!("{}: renegotiation: {e:#}", self.name));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procfs::ProcessFigures;

    fn figures(rss_mib: u64, fds: u64, threads: u64, tasks: u64, live: u64, open: u64) -> Figures {
        Figures {
            at_s: 0.0,
            process: ProcessFigures {
                rss_bytes: rss_mib * 1048576,
                open_fds: fds,
                threads,
            },
            tokio_tasks: tasks,
            live_participants: live,
            open_participant_rows: open,
            heap_in_use: Some(rss_mib * 1048576 / 2),
        }
    }

    #[test]
    fn flat_means_within_the_tolerance_and_nobody_left() {
        let tol = Tolerance::default();
        let start = figures(40, 30, 10, 12, 0, 0);
        let ok = |end: Figures| flat_checks("end", &start, &end, &tol).iter().all(|c| c.ok);
        assert!(ok(figures(40, 30, 10, 12, 0, 0)));
        // 16 MiB or 20 %, whichever is larger; +4 for the counts.
        assert!(ok(figures(56, 34, 14, 16, 0, 0)));
        assert!(!ok(figures(57, 30, 10, 12, 0, 0)));
        assert!(!ok(figures(40, 35, 10, 12, 0, 0)));
        assert!(!ok(figures(40, 30, 15, 12, 0, 0)));
        assert!(!ok(figures(40, 30, 10, 17, 0, 0)));
        // One ghost, or one open row, fails whatever the rest.
        assert!(!ok(figures(40, 30, 10, 12, 1, 0)));
        assert!(!ok(figures(40, 30, 10, 12, 0, 1)));
        // The heap in use, with RSS's allowance: a leak shows there even when RSS is flat.
        let leaking = Figures {
            heap_in_use: Some(37 * 1048576),
            ..figures(40, 30, 10, 12, 0, 0)
        };
        assert!(!ok(leaking));
        let unknown = Figures {
            heap_in_use: None,
            ..figures(40, 30, 10, 12, 0, 0)
        };
        assert!(ok(unknown), "no heap figures (not glibc): not checked");
        // A large server: 20 % of 200 MiB is the larger allowance.
        let big = figures(200, 30, 10, 12, 0, 0);
        let end = figures(239, 30, 10, 12, 0, 0);
        assert!(flat_checks("end", &big, &end, &tol).iter().all(|c| c.ok));
        let end = figures(241, 30, 10, 12, 0, 0);
        assert!(!flat_checks("end", &big, &end, &tol).iter().all(|c| c.ok));
    }

    #[test]
    fn exits_are_all_drawn() {
        let mut rng = StdRng::seed_from_u64(7);
        let draws: Vec<Exit> = (0..200).map(|_| Exit::draw(&mut rng)).collect();
        for exit in [Exit::Leave, Exit::DropAfterJoin, Exit::DropMidJoin] {
            assert!(draws.contains(&exit), "{exit:?} never drawn");
        }
    }
}
