//! A run: create the meetings, join the participants over the real signaling (spread
//! over the ramp-up), measure a window, and turn the counters into a [`Report`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use proto::events::ServerOffer;
use proto::signaling::SfuAnswerData;
use serde_json::{Value, json};
use tokio::sync::{Mutex, watch};

use crate::cpu;
use crate::engine::{Command, MediaThread, ThreadReport};
use crate::peer::{PublishPlan, VideoPlan};
use crate::report::{
    Loss, ParticipantCounts, PerSubscriber, Received, Report, ServerCpu, Throughput, VideoSettings,
};
use crate::rest::Rest;
use crate::stats::{Histogram, percentiles_ms};

/// Timeout of every signaling request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// The first `join-meeting` attempt's timeout (see [`join`] on why there is a second).
const JOIN_FIRST_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scenario {
    /// Everyone publishes audio and video and receives everyone else (N×N).
    Meeting,
    /// One publisher (audio + video), everyone else only watches.
    Webinar,
    /// Everyone publishes audio only.
    Audio,
}

impl Scenario {
    pub fn as_str(self) -> &'static str {
        match self {
            Scenario::Meeting => "meeting",
            Scenario::Webinar => "webinar",
            Scenario::Audio => "audio",
        }
    }

    /// What participant `index` of a meeting publishes. `speakers`: in a meeting, only
    /// the first ones publish audio; the others are muted, as most of a large meeting is.
    pub(crate) fn plan(
        self,
        index: usize,
        video: &VideoPlan,
        speakers: Option<usize>,
        loud: Option<usize>,
    ) -> PublishPlan {
        let loud = loud == Some(index);
        match self {
            Scenario::Meeting => PublishPlan {
                audio: speakers.is_none_or(|k| index < k),
                video: Some(video.clone()),
                loud,
            },
            Scenario::Webinar if index == 0 => PublishPlan {
                audio: true,
                video: Some(video.clone()),
                loud,
            },
            Scenario::Webinar => PublishPlan {
                audio: false,
                video: None,
                loud: false,
            },
            Scenario::Audio => PublishPlan {
                audio: true,
                video: None,
                loud,
            },
        }
    }

    /// Whether participant `index` should receive media when `n` are in the meeting.
    pub(crate) fn receives(self, index: usize, n: usize) -> bool {
        match self {
            Scenario::Webinar => index != 0 && n > 1,
            _ => n > 1,
        }
    }
}

#[derive(Clone, Debug)]
pub struct RunConfig {
    pub url: String,
    pub scenario: Scenario,
    pub meetings: usize,
    pub participants: usize,
    pub duration: Duration,
    pub ramp_up: Duration,
    pub video: VideoPlan,
    /// Meeting scenario: participants per meeting that publish audio (`None`: all).
    pub speakers: Option<usize>,
    pub server_pid: Option<u32>,
    pub threads: usize,
    pub quiet: bool,
    /// Record every meeting from its creation (the host starts it over REST), to
    /// measure what recording costs (docs/benchmarks.md).
    pub record: bool,
    /// The participant of each meeting whose microphone talks loudly (RFC 6464 levels);
    /// the others send background noise. `None`: nobody talks.
    pub loud: Option<usize>,
    /// From the last join to the window's start (renegotiations, dynacast settle).
    pub settle: Duration,
    /// The last participant of each meeting leaves this long into the window.
    pub leave_after: Option<Duration>,
}

/// Results shared by the participant tasks.
#[derive(Default)]
pub(crate) struct Shared {
    pub(crate) joined: Mutex<Vec<f64>>,
    pub(crate) errors: Mutex<Vec<String>>,
    pub(crate) failed: AtomicU64,
    pub(crate) done: AtomicU64,
    pub(crate) renegotiations: AtomicU64,
    pub(crate) renegotiation_errors: AtomicU64,
    pub(crate) join_retries: AtomicU64,
    pub(crate) adaptive: crate::adaptive::AdaptiveShared,
}

impl Shared {
    pub(crate) async fn fail(&self, what: String) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        let mut errors = self.errors.lock().await;
        if errors.len() < 10 {
            errors.push(what);
        }
    }
}

struct Participant {
    meeting: usize,
    index: usize,
    room: String,
    token: String,
    thread: MediaThread,
    global: usize,
}

pub async fn run(config: RunConfig, rest: Rest) -> anyhow::Result<Report> {
    if config.meetings == 0 || config.participants == 0 {
        bail!("--meetings and --participants must be at least 1");
    }
    let threads: Vec<MediaThread> = (0..config.threads.max(1))
        .map(|i| MediaThread::spawn(i).map(|(t, _join)| t))
        .collect::<anyhow::Result<_>>()?;
    let run_id = std::process::id();

    // Meetings are created by their first participant, who is then their host.
    let mut first_tokens = Vec::new();
    let mut rooms = Vec::new();
    for m in 0..config.meetings {
        let token = rest
            .token(&format!("load-{run_id}-{m}-0"), &format!("Load {m}.0"))
            .await?;
        let title = format!("meeting-load {} {m}", config.scenario.as_str());
        let room = if config.record {
            let room = rest
                .create_recordable_meeting(&token, &title)
                .await
                .context("creating a meeting to record")?;
            rest.start_recording(&token, &room)
                .await
                .context("starting its recording (--record)")?;
            room
        } else {
            rest.create_meeting(&token, &title)
                .await
                .context("creating a meeting")?
        };
        first_tokens.push(token);
        rooms.push(room);
    }

    let shared = Arc::new(Shared::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let total = config.meetings * config.participants;
    let gap = config.ramp_up / total as u32;
    let started = Instant::now();
    let mut tasks = Vec::new();
    let progress = tokio::spawn(progress_loop(
        threads.clone(),
        shared.clone(),
        total,
        config.server_pid,
        config.quiet,
        started,
    ));
    let mut global = 0;
    for index in 0..config.participants {
        for (meeting, room) in rooms.iter().enumerate() {
            let token = if index == 0 {
                first_tokens[meeting].clone()
            } else {
                rest.token(
                    &format!("load-{run_id}-{meeting}-{index}"),
                    &format!("Load {meeting}.{index}"),
                )
                .await?
            };
            let p = Participant {
                meeting,
                index,
                room: room.clone(),
                token,
                thread: threads[global % threads.len()].clone(),
                global,
            };
            global += 1;
            tasks.push(tokio::spawn(participant(
                p,
                config.clone(),
                shared.clone(),
                stop_rx.clone(),
            )));
            let due = started + gap * global as u32;
            tokio::time::sleep_until(due.into()).await;
        }
    }

    let report = measure(&config, &threads, &shared, total).await;
    let _ = stop_tx.send(true);
    progress.abort();
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(2), t).await;
    }
    report
}

/// The part of a run every target shares: wait (bounded) for every join to end one
/// way or the other, let the renegotiations that joins trigger settle, then measure
/// the window and build the report.
pub(crate) async fn measure(
    config: &RunConfig,
    threads: &[MediaThread],
    shared: &Shared,
    total: usize,
) -> anyhow::Result<Report> {
    let join_deadline = Instant::now() + REQUEST_TIMEOUT * 3;
    while shared.done.load(Ordering::Relaxed) < total as u64 && Instant::now() < join_deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(config.settle).await;

    for t in threads {
        t.send(Command::StartWindow)?;
    }
    let window_start = Instant::now();
    shared.adaptive.window_started(window_start);
    let server_before = config.server_pid.map(cpu::process_cpu).transpose()?;
    let own_before = cpu::own_cpu().ok();
    tokio::time::sleep(config.duration).await;
    let server_after = config.server_pid.map(cpu::process_cpu).transpose()?;
    let own_after = cpu::own_cpu().ok();
    let mut reports = Vec::new();
    for t in threads {
        reports.push(t.ask(|reply| Command::Finish { reply }).await?);
    }
    let window = window_start.elapsed();

    let joined = shared.joined.lock().await.clone();
    let errors = shared.errors.lock().await.clone();
    let counts = ParticipantCounts {
        requested: total,
        joined: joined.len(),
        connected: 0,
        failed: shared.failed.load(Ordering::Relaxed) as usize,
        join_retries: shared.join_retries.load(Ordering::Relaxed),
        errors,
    };
    let server_cpu = match (config.server_pid, server_before, server_after) {
        (Some(pid), Some(b), Some(a)) => Some((pid, a.saturating_sub(b).as_secs_f64())),
        _ => None,
    };
    let own_cpu = match (own_before, own_after) {
        (Some(b), Some(a)) => Some(a.saturating_sub(b).as_secs_f64()),
        _ => None,
    };
    let mut report = build_report(config, &reports, window, counts, joined, server_cpu);
    report.adaptive = crate::layer_report::sections(
        config.meetings,
        config.loud,
        &reports,
        window_start,
        window,
        &shared.adaptive,
    );
    report.loadgen_cpu_s = own_cpu;
    report.renegotiations = shared.renegotiations.load(Ordering::Relaxed);
    report.renegotiation_errors = shared.renegotiation_errors.load(Ordering::Relaxed);
    Ok(report)
}

/// Turns the media threads' reports into the run's [`Report`].
pub fn build_report(
    config: &RunConfig,
    threads: &[ThreadReport],
    window: Duration,
    mut counts: ParticipantCounts,
    joined_ms: Vec<f64>,
    server_cpu: Option<(u32, f64)>,
) -> Report {
    let secs = window.as_secs_f64().max(1e-9);
    let peers: Vec<_> = threads.iter().flat_map(|t| &t.peers).collect();
    let mut latency = Histogram::default();
    for t in threads {
        latency.merge(&t.latency_us);
    }
    // A participant is connected when all its peer connections are (Janus gives each
    // participant one to publish and one to subscribe).
    let mut by_participant: BTreeMap<usize, bool> = BTreeMap::new();
    for p in &peers {
        *by_participant.entry(p.participant).or_insert(true) &= p.connect_ms.is_some();
    }
    counts.connected = by_participant.values().filter(|c| **c).count();
    let connect: Vec<f64> = peers.iter().filter_map(|p| p.connect_ms).collect();

    let sent_packets: u64 = peers.iter().map(|p| p.counters.tx_packets).sum();
    let sent_bytes: u64 = peers.iter().map(|p| p.counters.tx_bytes).sum();
    let rx_packets: u64 = peers.iter().map(|p| p.counters.rx_packets).sum();
    let rx_bytes: u64 = peers.iter().map(|p| p.counters.rx_bytes).sum();

    // Participant index within its meeting: the global index runs meeting-fastest.
    let subscribers: Vec<_> = peers
        .iter()
        .filter(|p| {
            p.receives
                && config
                    .scenario
                    .receives(p.participant / config.meetings, config.participants)
        })
        .collect();
    let rates: Vec<f64> = subscribers
        .iter()
        .map(|p| p.counters.rx_packets as f64 / secs)
        .collect();
    let n = subscribers.len().max(1) as f64;
    let per_subscriber = PerSubscriber {
        subscribers: subscribers.len(),
        silent: subscribers
            .iter()
            .filter(|p| p.counters.rx_packets == 0)
            .count(),
        min_packets_per_s: if rates.is_empty() {
            0.0
        } else {
            rates.iter().copied().fold(f64::INFINITY, f64::min)
        },
        mean_packets_per_s: rates.iter().sum::<f64>() / n,
        max_packets_per_s: rates.iter().copied().fold(0.0, f64::max),
        mean_bitrate_bps: subscribers
            .iter()
            .map(|p| p.counters.rx_bytes as f64 * 8.0 / secs)
            .sum::<f64>()
            / n,
        mean_streams: subscribers.iter().map(|p| p.streams as f64).sum::<f64>() / n,
    };
    let lost: u64 = peers.iter().map(|p| p.lost).sum();
    let expected: u64 = peers.iter().map(|p| p.expected).sum();
    Report {
        tool: "meeting-load",
        version: env!("CARGO_PKG_VERSION"),
        target: "meeting-service".into(),
        url: config.url.clone(),
        scenario: config.scenario.as_str().into(),
        meetings: config.meetings,
        participants_per_meeting: config.participants,
        speakers: config.speakers,
        video: VideoSettings {
            bitrate_bps: config.video.bitrate_bps,
            fps: config.video.fps,
            keyframe_interval_s: config.video.keyframe_interval.as_secs_f64(),
            simulcast: config.video.simulcast,
        },
        window_s: window.as_secs_f64(),
        participants: counts,
        join_ms: percentiles_ms(&joined_ms),
        connect_ms: percentiles_ms(&connect),
        sent: Throughput {
            packets: sent_packets,
            packets_per_s: sent_packets as f64 / secs,
            bitrate_bps: sent_bytes as f64 * 8.0 / secs,
        },
        received: Received {
            packets: rx_packets,
            packets_per_s: rx_packets as f64 / secs,
            bitrate_bps: rx_bytes as f64 * 8.0 / secs,
            keyframes: peers.iter().map(|p| p.counters.rx_keyframes).sum(),
            per_subscriber,
        },
        loss: Loss {
            lost,
            expected,
            ratio: if expected > 0 {
                lost as f64 / expected as f64
            } else {
                0.0
            },
            duplicates: peers.iter().map(|p| p.duplicates).sum(),
        },
        latency_ms: latency.summary(),
        server_cpu: server_cpu.map(|(pid, cpu_s)| ServerCpu::new(pid, cpu_s, secs, rx_packets)),
        loadgen_cpu_s: None,
        renegotiations: 0,
        renegotiation_errors: 0,
        adaptive: Default::default(),
    }
}

/// One participant's life: connect, join, publish, answer the server's offers until
/// told to stop.
async fn participant(
    p: Participant,
    config: RunConfig,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let started = Instant::now();
    let who = format!("participant {}.{}", p.meeting, p.index);
    let joined = join(&p, &config, &shared, started).await;
    shared.done.fetch_add(1, Ordering::Relaxed);
    let (client, mut events, slot) = match joined {
        Ok(j) => j,
        Err(e) => {
            shared.fail(format!("{who}: {e:#}")).await;
            return;
        }
    };
    shared
        .joined
        .lock()
        .await
        .push(started.elapsed().as_secs_f64() * 1000.0);

    let to = crate::adaptive::Target {
        thread: &p.thread,
        slot,
        meeting: p.meeting,
        observer: p.index == 0,
    };
    let leaver = p.index + 1 == config.participants && config.participants > 1;
    let leave = shared
        .adaptive
        .into_window(config.leave_after.filter(|_| leaver));
    tokio::pin!(leave);
    // Bounded by the stop signal (sent when the window ends) and by the connection.
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = &mut leave => {
                // `--leave-after`: gone for good (its media with it), as a page closing.
                let _ = p.thread.send(Command::Remove { slot });
                break;
            }
            ev = events.recv() => {
                let Some(ev) = ev else {
                    shared.fail(format!("{who}: the server closed the connection")).await;
                    break;
                };
                if crate::adaptive::on_event(&ev, to, &shared.adaptive) {
                    continue;
                }
                let Some(offer) = ev.decode::<ServerOffer>() else {
                    continue;
                };
                shared.renegotiations.fetch_add(1, Ordering::Relaxed);
                let answered = match offer {
                    Ok(offer) => answer_offer(&client, &p.thread, &p.room, slot, offer).await,
                    Err(e) => Err(e),
                };
                if let Err(e) = answered {
                    shared.renegotiation_errors.fetch_add(1, Ordering::Relaxed);
                    let mut errors = shared.errors.lock().await;
                    if errors.len() < 10 {
                        errors.push(format!("{who}: renegotiation: {e:#}"));
                    }
                }
            }
        }
    }
    let _ = client.emit("leave-meeting", &json!({ "roomId": p.room }));
    client.close();
}

type Joined = (
    crate::sio::SioClient,
    tokio::sync::mpsc::UnboundedReceiver<crate::sio::ServerEvent>,
    usize,
);

async fn join(
    p: &Participant,
    config: &RunConfig,
    shared: &Shared,
    started: Instant,
) -> anyhow::Result<Joined> {
    let (client, events) =
        crate::sio::SioClient::connect(&config.url, &p.token, REQUEST_TIMEOUT).await?;
    let join_req =
        json!({ "roomId": p.room, "userName": format!("Load {}.{}", p.meeting, p.index) });
    // socketioxide sends CONNECT before an async connect handler has registered the
    // event handlers, so an event sent right after CONNECT can be dropped without an
    // ack. Browsers hit the same race; we retry once and count it in the report.
    let join: Value = match client
        .request("join-meeting", &join_req, JOIN_FIRST_TIMEOUT)
        .await
    {
        Ok(ack) => crate::sio::client::parse_ack("join-meeting", ack)?,
        Err(_) => {
            shared.join_retries.fetch_add(1, Ordering::Relaxed);
            client
                .call("join-meeting", &join_req, REQUEST_TIMEOUT)
                .await?
        }
    };
    if let Some(peer) = join.get("peerId").and_then(Value::as_str) {
        shared
            .adaptive
            .joined(proto::PeerId::new(peer), p.meeting, p.index);
    }
    let plan = config
        .scenario
        .plan(p.index, &config.video, config.speakers, config.loud);
    let global = p.global;
    let (slot, offer, mids) = p
        .thread
        .ask(|reply| Command::Add {
            participant: global,
            plan,
            started,
            reply,
        })
        .await??;
    let sources: BTreeMap<String, &str> = [
        (mids.microphone, "microphone"),
        (mids.camera, "camera"),
        (mids.screen, "screen"),
    ]
    .into_iter()
    .collect();
    let answer: SfuAnswerData = client
        .call(
            "sfu-offer",
            &json!({ "roomId": p.room, "sdp": offer, "sources": sources }),
            REQUEST_TIMEOUT,
        )
        .await?;
    p.thread
        .ask(|reply| Command::Answer {
            slot,
            sdp: answer.sdp,
            reply,
        })
        .await??;
    Ok((client, events, slot))
}

/// Answers a server's `sfu-offer` for the participant in `slot` of `thread`, in `room`
/// (shared with the soak's churning seats).
pub(crate) async fn answer_offer(
    client: &crate::sio::SioClient,
    thread: &MediaThread,
    room: &str,
    slot: usize,
    offer: ServerOffer,
) -> anyhow::Result<()> {
    let sdp = thread
        .ask(|reply| Command::Offer {
            slot,
            sdp: offer.sdp,
            reply,
        })
        .await??;
    let _: Value = client
        .call(
            "sfu-answer",
            &json!({ "roomId": room, "offerId": offer.offer_id, "sdp": sdp }),
            REQUEST_TIMEOUT,
        )
        .await?;
    Ok(())
}

/// One line a second: joins, connections, packet rates, loss, server CPU.
pub(crate) async fn progress_loop(
    threads: Vec<MediaThread>,
    shared: Arc<Shared>,
    total: usize,
    pid: Option<u32>,
    quiet: bool,
    started: Instant,
) {
    if quiet {
        return;
    }
    let mut last = (0u64, 0u64, 0u64);
    let mut last_cpu = pid.and_then(|p| cpu::process_cpu(p).ok());
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    // Ends when the run aborts this task.
    loop {
        tick.tick().await;
        let sum =
            |f: fn(&crate::engine::Live) -> u64| threads.iter().map(|t| f(&t.live)).sum::<u64>();
        let connected = sum(|l| l.connected.load(Ordering::Relaxed));
        let rx = sum(|l| l.rx_packets.load(Ordering::Relaxed));
        let rxb = sum(|l| l.rx_bytes.load(Ordering::Relaxed));
        let tx = sum(|l| l.tx_packets.load(Ordering::Relaxed));
        let lost = sum(|l| l.lost.load(Ordering::Relaxed));
        let expected = sum(|l| l.expected.load(Ordering::Relaxed));
        // Counters restart at the window start; a drop is that restart, not negative traffic.
        let d = |now: u64, before: u64| now.saturating_sub(before);
        let cpu_now = pid.and_then(|p| cpu::process_cpu(p).ok());
        let cpu = match (last_cpu, cpu_now) {
            (Some(a), Some(b)) => format!(
                " server {:.0}% CPU",
                b.saturating_sub(a).as_secs_f64() * 100.0
            ),
            _ => String::new(),
        };
        last_cpu = cpu_now;
        eprintln!(
            "[{:>5.1}s] joined {}/{} failed {} connected {} | out {} pkt/s | in {} pkt/s {:.2} Mbit/s | loss {:.2}%{}",
            started.elapsed().as_secs_f64(),
            shared.joined.lock().await.len(),
            total,
            shared.failed.load(Ordering::Relaxed),
            connected,
            d(tx, last.2),
            d(rx, last.0),
            d(rxb, last.1) as f64 * 8.0 / 1e6,
            if expected > 0 {
                lost as f64 * 100.0 / expected as f64
            } else {
                0.0
            },
            cpu
        );
        last = (rx, rxb, tx);
    }
}
