//! What the soak measures: the server's figures at a point in time, the tolerance that
//! makes two of them "flat", the checks, and the report.

use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use serde::Serialize;
use serde_json::Value;

use super::Churn;
use crate::procfs::{self, ProcessFigures};
use crate::rest::Rest;

/// How long the server may take to come back to rest after the seats have left.
const SETTLE: Duration = Duration::from_secs(30);

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
    pub(super) fn line(&self) -> String {
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
pub(super) async fn sample(rest: &Rest, pid: u32, started: Instant) -> anyhow::Result<Figures> {
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
pub(super) fn flat_checks(
    label: &str,
    start: &Figures,
    end: &Figures,
    tol: &Tolerance,
) -> Vec<Check> {
    // Bytes may grow by the larger of `rss_mib` and `rss_percent` of where they started.
    let bytes_within = |what: &str, start: u64, end: u64| {
        let allowed = (tol.rss_mib * 1048576).max(start * tol.rss_percent / 100);
        let mib = |b: u64| b as f64 / 1048576.0;
        Check {
            what: format!(
                "{label}: {what} {:.1} MiB ≤ {:.1} MiB (start {:.1} MiB + {:.1} MiB)",
                mib(end),
                mib(start + allowed),
                mib(start),
                mib(allowed)
            ),
            ok: end <= start + allowed,
        }
    };
    let mut checks = vec![
        bytes_within("RSS", start.process.rss_bytes, end.process.rss_bytes),
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
        checks.push(bytes_within("heap in use", s, e));
    }
    checks.extend(empty_checks(label, end));
    checks
}

pub(super) fn empty_checks(label: &str, f: &Figures) -> Vec<Check> {
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
pub(super) async fn settle(
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
}
