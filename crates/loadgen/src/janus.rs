//! `--target janus`: the same scenarios against Janus's VideoRoom plugin over its plain
//! HTTP API, for a side-by-side CPU-per-forwarded-packet figure.
//!
//! Janus gives each participant two peer connections: one publishing (our offer via
//! `joinandconfigure`) and one subscribing to every other publisher's feed (a
//! multistream subscription: Janus offers, we answer with `start`). Subscriptions are
//! made once every publisher is in, so nobody needs renegotiating. Events come from a
//! long poll per session, which also keeps the session alive.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use serde_json::{Value, json};
use tokio::sync::{Mutex, mpsc, watch};

use crate::engine::{Command, MediaThread};
use crate::report::Report;
use crate::scenario::{RunConfig, Shared, measure, progress_loop};

const EVENT_TIMEOUT: Duration = Duration::from_secs(20);

/// Janus's HTTP API (`http://127.0.0.1:8088/janus`).
#[derive(Clone, Debug)]
pub struct JanusApi {
    base: String,
    http: reqwest::Client,
    next_tx: Arc<AtomicU64>,
}

impl JanusApi {
    pub fn new(url: &str) -> anyhow::Result<JanusApi> {
        let base = url.trim_end_matches('/');
        let base = if base.ends_with("/janus") {
            base.to_owned()
        } else {
            format!("{base}/janus")
        };
        // Long polls last up to 30 s on the server side.
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(45))
            .build()?;
        Ok(JanusApi {
            base,
            http,
            next_tx: Arc::default(),
        })
    }

    fn transaction(&self) -> String {
        format!("ml{}", self.next_tx.fetch_add(1, Ordering::Relaxed))
    }

    async fn post(&self, path: &str, mut body: Value) -> anyhow::Result<Value> {
        if body.get("transaction").is_none() {
            body["transaction"] = json!(self.transaction());
        }
        let res: Value = self
            .http
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .with_context(|| format!("POST {}{path}", self.base))?
            .json()
            .await
            .context("Janus answered with something that is not JSON")?;
        if res["janus"] == "error" {
            bail!("Janus error: {}", res["error"]);
        }
        Ok(res)
    }

    pub async fn create_session(&self) -> anyhow::Result<u64> {
        let r = self.post("", json!({ "janus": "create" })).await?;
        r["data"]["id"]
            .as_u64()
            .ok_or_else(|| anyhow!("no session id in {r}"))
    }

    pub async fn attach(&self, session: u64) -> anyhow::Result<u64> {
        let r = self
            .post(
                &format!("/{session}"),
                json!({ "janus": "attach", "plugin": "janus.plugin.videoroom" }),
            )
            .await?;
        r["data"]["id"]
            .as_u64()
            .ok_or_else(|| anyhow!("no handle id in {r}"))
    }

    pub async fn destroy(&self, session: u64) {
        let _ = self
            .post(&format!("/{session}"), json!({ "janus": "destroy" }))
            .await;
    }

    /// A plugin message. Synchronous answers (`success`) are returned as they are;
    /// asynchronous ones (`ack`, then an event with the same transaction) are awaited
    /// on `events`.
    pub async fn message(
        &self,
        session: u64,
        handle: u64,
        body: Value,
        jsep: Option<Value>,
        events: &mut mpsc::UnboundedReceiver<Value>,
    ) -> anyhow::Result<Value> {
        let tx = self.transaction();
        let mut msg = json!({ "janus": "message", "body": body, "transaction": tx });
        if let Some(j) = jsep {
            msg["jsep"] = j;
        }
        let r = self.post(&format!("/{session}/{handle}"), msg).await?;
        let reply = if r["janus"] == "success" {
            r
        } else {
            let deadline = tokio::time::Instant::now() + EVENT_TIMEOUT;
            loop {
                let ev = tokio::time::timeout_at(deadline, events.recv())
                    .await
                    .map_err(|_| {
                        anyhow!(
                            "no Janus event for {} within {EVENT_TIMEOUT:?}",
                            body_request(&body)
                        )
                    })?
                    .ok_or_else(|| anyhow!("the Janus session's event stream ended"))?;
                if ev["transaction"] == tx.as_str() && ev["janus"] == "event" {
                    break ev;
                }
            }
        };
        let data = &reply["plugindata"]["data"];
        if data.get("error_code").is_some() {
            bail!(
                "VideoRoom refused {}: {}",
                body_request(&body),
                data["error"]
            );
        }
        Ok(reply)
    }

    /// Long-polls the session's events into a channel until the receiver is dropped
    /// or the session is gone.
    pub fn poll_events(&self, session: u64) -> mpsc::UnboundedReceiver<Value> {
        let (tx, rx) = mpsc::unbounded_channel();
        let api = self.clone();
        tokio::spawn(async move {
            let mut failures = 0;
            while !tx.is_closed() && failures < 20 {
                let url = format!(
                    "{}/{session}?maxev=10&rid={}",
                    api.base,
                    api.next_tx.fetch_add(1, Ordering::Relaxed)
                );
                let got = async { api.http.get(&url).send().await?.json::<Value>().await }.await;
                match got {
                    Ok(Value::Array(evs)) => {
                        failures = 0;
                        for ev in evs {
                            let _ = tx.send(ev);
                        }
                    }
                    Ok(v) if v["janus"] == "error" => break,
                    Ok(v) => {
                        failures = 0;
                        if v["janus"] != "keepalive" {
                            let _ = tx.send(v);
                        }
                    }
                    Err(_) => {
                        failures += 1;
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        });
        rx
    }
}

fn body_request(body: &Value) -> String {
    body["request"].as_str().unwrap_or("?").to_owned()
}

struct Participant {
    meeting: usize,
    index: usize,
    room: u64,
    thread: MediaThread,
    global: usize,
}

/// Publisher ids per meeting, filled as publishers join.
type Feeds = Arc<Mutex<Vec<Vec<(usize, u64)>>>>;

pub async fn run(config: RunConfig) -> anyhow::Result<Report> {
    if config.meetings == 0 || config.participants == 0 {
        bail!("--meetings and --participants must be at least 1");
    }
    let api = JanusApi::new(&config.url)?;
    let threads: Vec<MediaThread> = (0..config.threads.max(1))
        .map(|i| MediaThread::spawn(i).map(|(t, _join)| t))
        .collect::<anyhow::Result<_>>()?;

    // Rooms, created from one admin session.
    let admin = api
        .create_session()
        .await
        .context("creating a Janus session (is Janus running?)")?;
    let admin_handle = api.attach(admin).await?;
    let mut admin_events = api.poll_events(admin);
    let mut rooms = Vec::new();
    for m in 0..config.meetings {
        let room = (std::process::id() as u64) * 1000 + m as u64;
        api.message(
            admin,
            admin_handle,
            json!({
                "request": "create", "room": room, "publishers": config.participants.max(1),
                "audiocodec": "opus", "videocodec": "vp8", "bitrate": 0, "fir_freq": 0,
                "notify_joining": false, "permanent": false,
            }),
            None,
            &mut admin_events,
        )
        .await
        .with_context(|| format!("creating VideoRoom {room}"))?;
        rooms.push(room);
    }

    let shared = Arc::new(Shared::default());
    let feeds: Feeds = Arc::new(Mutex::new(vec![Vec::new(); config.meetings]));
    let published = Arc::new(AtomicU64::new(0));
    let (subscribe_tx, subscribe_rx) = watch::channel(false);
    let (stop_tx, stop_rx) = watch::channel(false);
    let total = config.meetings * config.participants;
    let gap = config.ramp_up / total as u32;
    let started = Instant::now();
    let progress = tokio::spawn(progress_loop(
        threads.clone(),
        shared.clone(),
        total,
        config.server_pid,
        config.quiet,
        started,
    ));
    let mut tasks = Vec::new();
    let mut global = 0;
    for index in 0..config.participants {
        for (meeting, room) in rooms.iter().enumerate() {
            let p = Participant {
                meeting,
                index,
                room: *room,
                thread: threads[global % threads.len()].clone(),
                global,
            };
            global += 1;
            tasks.push(tokio::spawn(participant(
                p,
                api.clone(),
                config.clone(),
                shared.clone(),
                feeds.clone(),
                published.clone(),
                subscribe_rx.clone(),
                stop_rx.clone(),
            )));
            tokio::time::sleep_until((started + gap * global as u32).into()).await;
        }
    }
    let deadline = Instant::now() + EVENT_TIMEOUT * 2;
    while published.load(Ordering::Relaxed) < total as u64 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = subscribe_tx.send(true);

    let mut report = measure(&config, &threads, &shared, total).await;
    if let Ok(r) = &mut report {
        r.target = "janus".into();
    }
    let _ = stop_tx.send(true);
    progress.abort();
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(2), t).await;
    }
    for room in rooms {
        let _ = api
            .message(
                admin,
                admin_handle,
                json!({ "request": "destroy", "room": room }),
                None,
                &mut admin_events,
            )
            .await;
    }
    api.destroy(admin).await;
    report
}

#[allow(clippy::too_many_arguments)]
async fn participant(
    p: Participant,
    api: JanusApi,
    config: RunConfig,
    shared: Arc<Shared>,
    feeds: Feeds,
    published: Arc<AtomicU64>,
    mut subscribe: watch::Receiver<bool>,
    mut stop: watch::Receiver<bool>,
) {
    let who = format!("participant {}.{}", p.meeting, p.index);
    let started = Instant::now();
    let session = match api.create_session().await {
        Ok(s) => s,
        Err(e) => {
            published.fetch_add(1, Ordering::Relaxed);
            shared.done.fetch_add(1, Ordering::Relaxed);
            shared.fail(format!("{who}: {e:#}")).await;
            return;
        }
    };
    let mut events = api.poll_events(session);
    let result = async {
        let plan = config
            .scenario
            .plan(p.index, &config.video, config.speakers, config.loud);
        if plan.audio || plan.video.is_some() {
            publish(&p, &api, session, &mut events, plan, started, &feeds).await?;
        }
        anyhow::Ok(())
    }
    .await;
    published.fetch_add(1, Ordering::Relaxed);
    if let Err(e) = result {
        shared.done.fetch_add(1, Ordering::Relaxed);
        shared.fail(format!("{who}: publishing: {e:#}")).await;
        api.destroy(session).await;
        return;
    }
    shared
        .joined
        .lock()
        .await
        .push(started.elapsed().as_secs_f64() * 1000.0);

    // Bounded by the orchestrator's deadline, after which it flips the flag anyway.
    let _ = subscribe.wait_for(|go| *go).await;
    if config.scenario.receives(p.index, config.participants)
        && let Err(e) = subscribe_all(&p, &api, session, &mut events, started, &feeds).await
    {
        shared.fail(format!("{who}: subscribing: {e:#}")).await;
    }
    shared.done.fetch_add(1, Ordering::Relaxed);
    let _ = stop.wait_for(|s| *s).await;
    api.destroy(session).await;
}

async fn publish(
    p: &Participant,
    api: &JanusApi,
    session: u64,
    events: &mut mpsc::UnboundedReceiver<Value>,
    plan: crate::peer::PublishPlan,
    started: Instant,
    feeds: &Feeds,
) -> anyhow::Result<()> {
    let handle = api.attach(session).await?;
    let global = p.global;
    let (slot, offer, _mids) = p
        .thread
        .ask(|reply| Command::Add {
            participant: global,
            plan,
            started,
            reply,
        })
        .await??;
    let offer_sent = offer;
    let ev = api
        .message(
            session,
            handle,
            json!({ "request": "joinandconfigure", "ptype": "publisher", "room": p.room,
                    "display": format!("Load {}.{}", p.meeting, p.index) }),
            Some(json!({ "type": "offer", "sdp": offer_sent, "trickle": false })),
            events,
        )
        .await?;
    let id = ev["plugindata"]["data"]["id"]
        .as_u64()
        .ok_or_else(|| anyhow!("no publisher id in {ev}"))?;
    let sdp = ev["jsep"]["sdp"]
        .as_str()
        .ok_or_else(|| anyhow!("no answer in {ev}"))?
        .to_owned();
    if std::env::var_os("MEETING_LOAD_DEBUG_SDP").is_some() {
        eprintln!("--- offer\n{offer_sent}\n--- Janus answer\n{sdp}");
    }
    p.thread
        .ask(|reply| Command::Answer { slot, sdp, reply })
        .await??;
    p.thread.send(Command::SendOnly { slot })?;
    // Janus lists a feed only once its PeerConnection is up.
    let deadline = Instant::now() + EVENT_TIMEOUT;
    while !p
        .thread
        .ask(|reply| Command::IsConnected { slot, reply })
        .await?
    {
        if Instant::now() > deadline {
            bail!("the publishing connection did not come up within {EVENT_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    feeds.lock().await[p.meeting].push((p.index, id));
    Ok(())
}

async fn subscribe_all(
    p: &Participant,
    api: &JanusApi,
    session: u64,
    events: &mut mpsc::UnboundedReceiver<Value>,
    started: Instant,
    feeds: &Feeds,
) -> anyhow::Result<()> {
    let streams: Vec<Value> = feeds.lock().await[p.meeting]
        .iter()
        .filter(|(index, _)| *index != p.index)
        .map(|(_, id)| json!({ "feed": id }))
        .collect();
    if streams.is_empty() {
        bail!("nobody to subscribe to");
    }
    let handle = api.attach(session).await?;
    let ev = api
        .message(
            session,
            handle,
            json!({ "request": "join", "ptype": "subscriber", "room": p.room, "streams": streams }),
            None,
            events,
        )
        .await?;
    let offer = ev["jsep"]["sdp"]
        .as_str()
        .ok_or_else(|| anyhow!("no offer in {ev}"))?
        .to_owned();
    let global = p.global;
    let (_slot, answer) = p
        .thread
        .ask(|reply| Command::AddAnswerer {
            participant: global,
            started,
            offer,
            reply,
        })
        .await??;
    api.message(
        session,
        handle,
        json!({ "request": "start", "room": p.room }),
        Some(json!({ "type": "answer", "sdp": answer, "trickle": false })),
        events,
    )
    .await?;
    Ok(())
}
