//! `meeting-load`: see the library's documentation (`lib.rs`) for the layout.
//!
//! `meeting-load [run flags]` runs a load scenario against a server;
//! `meeting-load floor` measures the SRTP-protect + send floor on this machine;
//! `meeting-load soak` churns joins and leaves and checks the server comes back flat.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use meeting_load::floor::{self, Profile};
use meeting_load::peer::VideoPlan;
use meeting_load::rest::{Rest, TokenSource};
use meeting_load::scenario::{self, RunConfig, Scenario};
use meeting_load::soak::{self, SoakConfig, Tolerance};

#[derive(Parser, Debug)]
#[command(
    name = "meeting-load",
    version,
    about = "Synthetic participants and forwarding benchmarks for meeting-service"
)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run a scenario against a server (the default).
    Run(RunArgs),
    /// Measure the floor: SRTP protect + UDP send per packet, no SFU.
    Floor(FloorArgs),
    /// Churn joins and leaves (abrupt closes included) with media flowing; the
    /// server's RSS, fds, threads, tasks, live participants and open history rows must
    /// be flat between the start and the end. Exits 1 when a check fails.
    Soak(SoakArgs),
}

#[derive(Args, Debug, Clone)]
struct SoakArgs {
    /// The server's base URL (loopback only on shared machines).
    #[arg(long, default_value = "http://127.0.0.1:3009")]
    url: String,
    /// The server's PID, for its RSS, fds and threads from /proc.
    #[arg(long)]
    server_pid: u32,
    /// The server's JWT_SECRET: every cycle is a new user, with a minted token.
    #[arg(long, env = "MEETING_LOAD_JWT_SECRET")]
    jwt_secret: String,
    #[arg(long, default_value_t = 3)]
    meetings: usize,
    /// Seats per meeting, each a participant after another (also the meeting's cap).
    #[arg(long, default_value_t = 5)]
    participants: usize,
    /// Seconds of the measured churn phase (after the warm-up).
    #[arg(long, default_value_t = 1800.0)]
    duration: f64,
    /// Seconds of churn before the start figures.
    #[arg(long, default_value_t = 60.0)]
    warm_up: f64,
    /// Shortest stay of a participant, seconds.
    #[arg(long, default_value_t = 2.0)]
    min_dwell: f64,
    /// Longest stay of a participant, seconds.
    #[arg(long, default_value_t = 8.0)]
    max_dwell: f64,
    /// Seconds between the samples of the timeline.
    #[arg(long, default_value_t = 30.0)]
    sample_every: f64,
    /// Seed of the random stays and exits.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// RSS at the end may exceed the start by the larger of this (MiB)…
    #[arg(long, default_value_t = 16)]
    rss_tolerance_mib: u64,
    /// …and this share of the start (%).
    #[arg(long, default_value_t = 20)]
    rss_tolerance_percent: u64,
    /// fds, threads and tokio tasks at the end may exceed the start by this much.
    #[arg(long, default_value_t = 4)]
    count_tolerance: u64,
    #[command(flatten)]
    video: VideoArgs,
    /// Media threads driving the synthetic participants.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    #[arg(long)]
    json: Option<PathBuf>,
    /// No progress lines.
    #[arg(long)]
    quiet: bool,
}

#[derive(Args, Debug, Clone)]
struct VideoArgs {
    /// Video bitrate of the top layer, kbit/s.
    #[arg(long, default_value_t = 800)]
    video_bitrate: u64,
    #[arg(long, default_value_t = 25)]
    fps: u32,
    /// Seconds between key frames.
    #[arg(long, default_value_t = 3.0)]
    keyframe_interval: f64,
    /// Publish three simulcast layers (top, 1/4, 1/16 of the bitrate).
    #[arg(long)]
    simulcast: bool,
}

impl VideoArgs {
    fn plan(&self) -> VideoPlan {
        VideoPlan {
            bitrate_bps: self.video_bitrate * 1000,
            fps: self.fps.clamp(1, 120),
            keyframe_interval: Duration::from_secs_f64(self.keyframe_interval.clamp(0.1, 3600.0)),
            simulcast: self.simulcast,
        }
    }
}

#[derive(Args, Debug, Clone)]
struct RunArgs {
    /// The server's base URL (loopback only on shared machines).
    #[arg(long, default_value = "http://127.0.0.1:3009")]
    url: String,
    #[arg(long, value_enum, default_value_t = Scenario::Meeting)]
    scenario: Scenario,
    /// The server kind: ours, or Janus's VideoRoom (--url http://127.0.0.1:8088).
    #[arg(long, value_enum, default_value_t = Target::MeetingService)]
    target: Target,
    #[arg(long, default_value_t = 1)]
    meetings: usize,
    /// Participants per meeting.
    #[arg(long, default_value_t = 4)]
    participants: usize,
    /// Seconds measured after everyone joined.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds over which the joins are spread.
    #[arg(long, default_value_t = 2.0)]
    ramp_up: f64,
    #[command(flatten)]
    video: VideoArgs,
    /// Meeting scenario: only the first K participants of each meeting publish audio
    /// (the others are muted, as most of a large meeting is). Default: everyone.
    #[arg(long)]
    speakers: Option<usize>,
    /// The server's PID: its CPU time over the window gives µs per forwarded packet.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Mint tokens with the server's JWT_SECRET instead of using the guest endpoint.
    #[arg(long, env = "MEETING_LOAD_JWT_SECRET")]
    jwt_secret: Option<String>,
    /// Address the participants' UDP sockets bind to. Keep 127.0.0.1, except for Janus,
    /// which gathers no loopback candidates: see scripts/janus/README.md.
    #[arg(long, default_value = "127.0.0.1")]
    bind_ip: std::net::IpAddr,
    /// Media threads driving the synthetic participants.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Write the JSON report here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// No progress line.
    #[arg(long)]
    quiet: bool,
    /// Record each meeting (created with allowRecording, started by its host over
    /// REST before anyone joins): the cost of recording, against a run without.
    #[arg(long)]
    record: bool,
    /// Participant K of each meeting talks loudly (RFC 6464 audio levels on its
    /// microphone packets), the others send background noise: the server's active
    /// speaker should be K. A K of --participants or more: nobody talks.
    #[arg(long, default_value_t = 0)]
    loud: usize,
    /// Seconds from the last join to the window's start.
    #[arg(long, default_value_t = 1.0)]
    settle: f64,
    /// The last participant of each meeting leaves this many seconds into the window
    /// (dynacast: with one camera fewer the others may need a layer again).
    #[arg(long)]
    leave_after: Option<f64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Target {
    MeetingService,
    Janus,
}

#[derive(Args, Debug, Clone)]
struct FloorArgs {
    /// Seconds per measurement.
    #[arg(long, default_value_t = 3.0)]
    duration: f64,
    /// Packets per sendmmsg call.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Profiles to measure (default: both).
    #[arg(long, value_enum)]
    profile: Vec<Profile>,
    #[command(flatten)]
    video: VideoArgs,
    #[arg(long)]
    json: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Cmd::Floor(args)) => run_floor(args),
        Some(Cmd::Soak(args)) => run_soak(args),
        Some(Cmd::Run(args)) => run_scenario(args),
        None => run_scenario(cli.run),
    }
}

fn run_scenario(args: RunArgs) -> anyhow::Result<()> {
    let tokens = match &args.jwt_secret {
        Some(s) => TokenSource::Secret(s.clone()),
        None => TokenSource::Guest,
    };
    let rest = Rest::new(&args.url, tokens)?;
    meeting_load::peer::set_bind_ip(args.bind_ip);
    let config = RunConfig {
        url: args.url.clone(),
        scenario: args.scenario,
        meetings: args.meetings,
        participants: args.participants,
        duration: Duration::from_secs_f64(args.duration.clamp(0.1, 24.0 * 3600.0)),
        ramp_up: Duration::from_secs_f64(args.ramp_up.clamp(0.0, 3600.0)),
        video: args.video.plan(),
        speakers: args.speakers,
        server_pid: args.server_pid,
        threads: args.threads.clamp(1, 64),
        quiet: args.quiet,
        record: args.record,
        loud: (args.loud < args.participants).then_some(args.loud),
        settle: Duration::from_secs_f64(args.settle.clamp(0.0, 3600.0)),
        leave_after: args
            .leave_after
            .map(|s| Duration::from_secs_f64(s.clamp(0.0, 24.0 * 3600.0))),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("tokio runtime")?;
    let report = match args.target {
        Target::MeetingService => runtime.block_on(scenario::run(config, rest))?,
        Target::Janus => runtime.block_on(meeting_load::janus::run(config))?,
    };
    print!("{}", report.summary());
    if let Some(path) = args.json {
        let text = serde_json::to_string_pretty(&report)?;
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    // Participants are done; do not wait for the runtime's tasks to wind down.
    runtime.shutdown_timeout(Duration::from_secs(1));
    Ok(())
}

fn run_soak(args: SoakArgs) -> anyhow::Result<()> {
    let rest = Rest::new(&args.url, TokenSource::Secret(args.jwt_secret.clone()))?;
    let secs = |s: f64| Duration::from_secs_f64(s.clamp(0.0, 7.0 * 24.0 * 3600.0));
    let count = args.count_tolerance;
    let config = SoakConfig {
        url: args.url.clone(),
        meetings: args.meetings,
        seats: args.participants,
        duration: secs(args.duration),
        warm_up: secs(args.warm_up),
        dwell: (secs(args.min_dwell), secs(args.max_dwell)),
        video: args.video.plan(),
        server_pid: args.server_pid,
        threads: args.threads.clamp(1, 64),
        seed: args.seed,
        tolerance: Tolerance {
            rss_mib: args.rss_tolerance_mib,
            rss_percent: args.rss_tolerance_percent,
            fds: count,
            threads: count,
            tasks: count,
        },
        sample_every: secs(args.sample_every).max(Duration::from_secs(1)),
        quiet: args.quiet,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("tokio runtime")?;
    let report = runtime.block_on(soak::run(config, rest))?;
    print!("{}", report.summary());
    if let Some(path) = args.json {
        let text = serde_json::to_string_pretty(&report)?;
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    runtime.shutdown_timeout(Duration::from_secs(1));
    if !report.passed {
        std::process::exit(1);
    }
    Ok(())
}

fn run_floor(args: FloorArgs) -> anyhow::Result<()> {
    let plan = args.video.plan();
    let payloads = floor::sample_payloads(&plan, true);
    let duration = Duration::from_secs_f64(args.duration.clamp(0.1, 600.0));
    let profiles = if args.profile.is_empty() {
        vec![Profile::Gcm, Profile::Cm]
    } else {
        args.profile
    };
    let mut results = Vec::new();
    for profile in profiles {
        for batch in [0, 1, args.batch.max(1)] {
            let r = floor::measure(profile, batch, &payloads, duration)?;
            println!(
                "{:<28} {:>14}: {:>6.3} µs/packet, {:>9.0} packets/s per core ({} packets, mean {:.0} B)",
                serde_json::to_value(profile)?.as_str().unwrap_or("?"),
                match batch {
                    0 => "protect only".to_string(),
                    1 => "send_to".to_string(),
                    n => format!("sendmmsg×{n}"),
                },
                r.us_per_packet,
                r.packets_per_s_per_core,
                r.packets,
                r.mean_packet_bytes
            );
            results.push(r);
        }
    }
    if let Some(path) = args.json {
        let text = serde_json::to_string_pretty(&serde_json::json!({ "floor": results }))?;
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
