//! Rate limits (issue #12 item 3), security headers, and the Engine.IO handshake flood:
//! over real sockets, against an in-process server or the built binary.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Db, TempDir, TestServer, config};
use meeting_load::sio::client::SioClient;
use serde_json::{Value, json};

const ACK: Duration = Duration::from_secs(20);

/// The two flood tests measure the server under load: they must not run at the same
/// time (the test harness runs tests in parallel threads).
static FLOODS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn create_meeting(server: &TestServer, host: &str) -> String {
    let (status, body) = server
        .post(
            "/api/meetings/create",
            Some(&server.token(host)),
            json!({ "title": "limits" }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body["meeting"]["roomId"].as_str().unwrap().to_owned()
}

async fn connect(server: &TestServer, user: &str) -> SioClient {
    let (client, _events) = SioClient::connect(&server.url(""), &server.token(user), ACK)
        .await
        .unwrap();
    client
}

fn code(ack: &Value) -> Option<&str> {
    ack.pointer("/error/code").and_then(Value::as_str)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// A client of the server binary at `base`: REST with reqwest, tokens minted with the
/// test secret, Socket.IO with the load tool's client.
struct Remote {
    base: String,
    http: reqwest::Client,
    keys: meeting_service::auth::JwtKeys,
}

impl Remote {
    fn new(base: &str) -> Remote {
        Remote {
            base: base.to_owned(),
            http: reqwest::Client::new(),
            keys: meeting_service::auth::JwtKeys::new(common::SECRET),
        }
    }

    fn token(&self, user: &str) -> String {
        self.keys
            .mint(user, user, None, Duration::from_secs(3600))
            .unwrap()
    }

    async fn create_meeting(&self, host: &str) -> String {
        let resp = self
            .http
            .post(format!("{}/api/meetings/create", self.base))
            .bearer_auth(self.token(host))
            .json(&json!({ "title": "limits" }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 201);
        let body: Value = resp.json().await.unwrap();
        body["meeting"]["roomId"].as_str().unwrap().to_owned()
    }

    async fn connect(&self, user: &str) -> SioClient {
        SioClient::connect(&self.base, &self.token(user), ACK)
            .await
            .unwrap()
            .0
    }

    /// One fresh user's `join-meeting` round trip (connect not counted), then leave.
    async fn timed_join(&self, room: &str, user: &str) -> Duration {
        let client = self.connect(user).await;
        let start = Instant::now();
        let ack = client
            .request("join-meeting", &json!({ "roomId": room }), ACK)
            .await
            .unwrap();
        let took = start.elapsed();
        assert_eq!(ack["ok"], true, "{user}'s join: {ack}");
        let _ = client
            .request("leave-meeting", &json!({ "roomId": room }), ACK)
            .await;
        client.close();
        took
    }

    async fn join_latencies(&self, room: &str, tag: &str, n: usize) -> Vec<Duration> {
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            out.push(self.timed_join(room, &format!("{tag}-{i}")).await);
        }
        out.sort_unstable();
        out
    }
}

/// A `join-meeting` flood from one socket is answered `RATE_LIMITED` past its allowance,
/// and other users' joins during the flood take about as long as before it. (Before the
/// limits, the flood's joins each did database work and other joins waited seconds.)
/// The server is the binary, so that it has its own runtime as in production.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_flood_from_one_socket_is_limited_and_does_not_slow_others() {
    const SAMPLES: usize = 25;
    const FLOOD_BATCH: usize = 50;
    const FLOOD_MAX_BATCHES: usize = 400;
    const KNOCKS: usize = 150;
    let _alone = FLOODS.lock().await;
    // Default limits: what a deployment gets.
    let bin = Binary::start(&[]).await;
    let remote = Remote::new(&bin.base);
    let room = remote.create_meeting("host").await;

    let baseline = remote.join_latencies(&room, "before", SAMPLES).await;

    // A persistent attacker: floods one socket until it is disconnected, then tries to
    // reconnect (new Engine.IO session, same user) and go on, until the measurement is
    // done. Its user is cut off (limits::CUT_OFF, 30 s), so every reconnect is refused
    // at the handshake; it keeps knocking every 20 ms (at most KNOCKS times, well within
    // the address's 300/min handshakes that the measuring client shares on 127.0.0.1).
    let stop = tokio_util::sync::CancellationToken::new();
    let flood = {
        let (room, stop) = (room.clone(), stop.clone());
        let (base, token) = (remote.base.clone(), remote.token("attacker"));
        // On its own thread and runtime: the attacker's client work must not take the
        // measuring client's threads (in production they are different machines).
        let attacker = async move {
            let (mut ok, mut limited, mut other) = (0usize, 0usize, Vec::new());
            let (mut sockets, mut cut_off, mut knocks) = (0usize, 0usize, 0usize);
            let payload = json!({ "roomId": room });
            'connections: while !stop.is_cancelled() && sockets < 200 && knocks < KNOCKS {
                let attacker = match SioClient::connect(&base, &token, ACK).await {
                    Ok((attacker, _events)) => attacker,
                    // Socket.IO's connect_error carries only a message; the code leads it.
                    Err(e) if format!("{e:#}").contains("RATE_LIMITED") => {
                        knocks += 1;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                    Err(e) => {
                        other.push(json!(format!("{e:#}")));
                        break;
                    }
                };
                sockets += 1;
                for _ in 0..FLOOD_MAX_BATCHES {
                    if stop.is_cancelled() {
                        break 'connections;
                    }
                    let batch =
                        (0..FLOOD_BATCH).map(|_| attacker.request("join-meeting", &payload, ACK));
                    let mut closed = false;
                    for ack in futures_util::future::join_all(batch).await {
                        // The server closes a socket that keeps sending past its refusals.
                        let Ok(ack) = ack else {
                            closed = true;
                            continue;
                        };
                        match (ack["ok"].as_bool(), code(&ack)) {
                            (Some(true), _) => ok += 1,
                            (_, Some("RATE_LIMITED")) => {
                                assert!(
                                    ack.pointer("/error/retryAfterMs")
                                        .and_then(Value::as_u64)
                                        .is_some(),
                                    "{ack}"
                                );
                                limited += 1
                            }
                            _ => other.push(ack),
                        }
                    }
                    if closed {
                        cut_off += 1;
                        continue 'connections;
                    }
                }
            }
            (ok, limited, other, sockets, cut_off, knocks)
        };
        std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(attacker)
        })
    };
    // Measure while the flood is in flight.
    let during = remote.join_latencies(&room, "during", SAMPLES).await;
    stop.cancel();
    // Bounded: the attacker checks `stop` between batches, whose acks come within ACK.
    let (ok, limited, other, sockets, cut_off, knocks) =
        tokio::task::spawn_blocking(move || flood.join())
            .await
            .unwrap()
            .unwrap();

    let (b50, b95) = (percentile(&baseline, 0.5), percentile(&baseline, 0.95));
    let (d50, d95) = (percentile(&during, 0.5), percentile(&during, 0.95));
    eprintln!(
        "join latency of other users: baseline median {b50:?} p95 {b95:?}; during the flood median {d50:?} p95 {d95:?}; \
         flood: {ok} joins admitted, {limited} RATE_LIMITED, {} other, over {sockets} sockets of which {cut_off} were disconnected; \
         {knocks} reconnects refused",
        other.len()
    );
    assert!(
        other.is_empty(),
        "unexpected answers: {:?}",
        &other[..other.len().min(3)]
    );
    // The socket is refused REFUSALS_BEFORE_DISCONNECT times, then disconnected, and its
    // user cannot come back: every reconnect is refused at the handshake.
    assert_eq!((sockets, cut_off), (1, 1), "one socket, disconnected");
    assert!(knocks >= 1, "the attacker never tried to reconnect");
    assert!(
        (100..=100 + FLOOD_BATCH).contains(&limited),
        "{limited} refusals before the socket was disconnected"
    );
    // The socket's allowance (RATE_LIMIT_SOCKET_JOIN=10/10s).
    assert!(ok <= 10, "admitted {ok} joins from one socket");
    // Before the limits the flood's joins queued on the database and other joins took
    // seconds. What remains is CPU (a hundred refusals, then refused reconnects): measured
    // here, the median moved by ±0.1 ms (2.2 ms either way) and the p95 by a few ms. The
    // bound catches queueing behind the flood again, with room for a loaded CI machine.
    assert!(
        d50 <= b50 + Duration::from_millis(20) && d95 <= b95 + Duration::from_millis(100),
        "other users' joins slowed by the flood: median {b50:?} → {d50:?}, p95 {b95:?} → {d95:?}"
    );
}

/// Chat past the socket's allowance is refused and never reaches the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_flood_is_cut_at_the_socket() {
    let db = Db::sqlite();
    let server = TestServer::start(config(&db.url(), &[("RATE_LIMIT_SOCKET_CHAT", "5/min")])).await;
    let room = create_meeting(&server, "host").await;
    let (listener, mut events) =
        SioClient::connect(&server.url(""), &server.token("listener"), ACK)
            .await
            .unwrap();
    let talker = connect(&server, "talker").await;
    for c in [&listener, &talker] {
        let ack = c
            .request("join-meeting", &json!({ "roomId": room }), ACK)
            .await
            .unwrap();
        assert_eq!(ack["ok"], true, "{ack}");
    }
    // At most 50 in flight: socketioxide drops acks past a socket's 128-packet send
    // buffer, and the admitted messages are echoed to the sender too.
    let payloads: Vec<Value> = (0..50)
        .map(|i| json!({ "roomId": room, "message": format!("spam {i}") }))
        .collect();
    let sends = payloads
        .iter()
        .map(|p| talker.request("meeting-chat-message", p, ACK));
    let acks: Vec<Value> = futures_util::future::join_all(sends)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let sent = acks.iter().filter(|a| a["ok"] == true).count();
    let limited = acks
        .iter()
        .filter(|a| code(a) == Some("RATE_LIMITED"))
        .count();
    assert_eq!((sent, limited), (5, 45), "{:?}", &acks[..3]);
    // A marker from the listener itself ends the count: every chat the server relayed
    // before it has been delivered by then.
    let ack = listener
        .request(
            "meeting-chat-message",
            &json!({ "roomId": room, "message": "marker" }),
            ACK,
        )
        .await
        .unwrap();
    assert_eq!(ack["ok"], true, "{ack}");
    let mut received = 0;
    loop {
        let ev = tokio::time::timeout(ACK, events.recv())
            .await
            .expect("the marker arrives")
            .expect("connection open");
        if ev.name != "chat-message" && ev.name != "meeting-chat-message" {
            continue;
        }
        let text = ev.args[0].to_string();
        if text.contains("marker") {
            break;
        }
        if text.contains("spam") {
            received += 1;
        }
    }
    assert_eq!(received, sent, "only admitted messages are delivered");
    server.stop().await;
}

/// One user creating meetings as fast as they can gets 429 with `Retry-After`; another
/// user is not affected.
#[tokio::test]
async fn meeting_creation_per_user_is_limited() {
    let db = Db::sqlite();
    let server = TestServer::start(config(&db.url(), &[("RATE_LIMIT_USER_CREATE", "3/min")])).await;
    let token = server.token("prolific");
    let mut statuses = Vec::new();
    let mut last = None;
    for i in 0..6 {
        let resp = server
            .http
            .post(server.url("/api/meetings/create"))
            .bearer_auth(&token)
            .json(&json!({ "title": format!("m{i}") }))
            .send()
            .await
            .unwrap();
        statuses.push(resp.status().as_u16());
        last = Some(resp);
    }
    assert_eq!(statuses, [201, 201, 201, 429, 429, 429]);
    let resp = last.unwrap();
    let retry: u64 = resp
        .headers()
        .get("retry-after")
        .expect("Retry-After")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    // 3 per minute: the next one in about 20 s.
    assert!((1..=20).contains(&retry), "Retry-After: {retry}");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "RATE_LIMITED", "{body}");
    create_meeting(&server, "someone-else").await;
    server.stop().await;
}

/// Per client IP: guest tokens and the API as a whole.
#[tokio::test]
async fn rest_and_guest_tokens_per_ip() {
    let db = Db::sqlite();
    let server = TestServer::start(config(
        &db.url(),
        &[
            ("RATE_LIMIT_IP_GUEST", "2/min"),
            ("RATE_LIMIT_IP_REST", "6/min"),
        ],
    ))
    .await;
    let mut guest = Vec::new();
    for _ in 0..3 {
        let (status, _) = server
            .post("/api/auth/guest", None, json!({ "name": "g" }))
            .await;
        guest.push(status);
    }
    assert_eq!(guest, [200, 200, 429]);
    // Three API requests spent; three more pass, then 429 for any route.
    let token = server.token("reader");
    let mut rest = Vec::new();
    for _ in 0..4 {
        let (status, _) = server.get("/api/ice-servers", Some(&token)).await;
        rest.push(status);
    }
    assert_eq!(rest, [200, 200, 200, 429]);
    // Health and the page are not API routes.
    let (status, _) = server.get("/health", None).await;
    assert_eq!(status, 200);
    server.stop().await;
}

/// The page and the API carry the security headers; the page's CSP is the one the web
/// client is written for.
#[tokio::test]
async fn security_headers_on_page_and_api() {
    let db = Db::sqlite();
    let server = TestServer::start(config(&db.url(), &[])).await;
    for path in [
        "/",
        "/m/KXRT-PQZ-MHN",
        "/assets/app.js",
        "/api/meetings/NOPE",
        "/health",
    ] {
        let resp = server.http.get(server.url(path)).send().await.unwrap();
        let h = resp.headers();
        let get = |name: &str| h.get(name).map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(
            get("content-security-policy").as_deref(),
            Some(
                "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob: https:; \
                 media-src 'self' blob: mediastream:; connect-src 'self' ws: wss:; frame-ancestors 'none'; \
                 base-uri 'none'; form-action 'self'; object-src 'none'"
            ),
            "{path}"
        );
        assert_eq!(get("x-frame-options").as_deref(), Some("DENY"), "{path}");
        assert_eq!(
            get("x-content-type-options").as_deref(),
            Some("nosniff"),
            "{path}"
        );
        assert_eq!(
            get("referrer-policy").as_deref(),
            Some("no-referrer"),
            "{path}"
        );
    }
    server.stop().await;
}

fn vm_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/<pid>/status")
}

/// A server binary on a free loopback port, stopped (by its PID) on drop.
struct Binary {
    child: std::process::Child,
    base: String,
    _dir: TempDir,
}

impl Binary {
    async fn start(vars: &[(&str, &str)]) -> Binary {
        let dir = TempDir::new("limits-bin");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let db = format!("sqlite://{}", dir.path().join("m.db").display());
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_meeting-service"));
        cmd.env_clear()
            .current_dir(dir.path())
            .env("HOST", "127.0.0.1")
            .env("PORT", port.to_string())
            .env("JWT_SECRET", common::SECRET)
            .env("SFU_MODE_ENABLED", "false")
            .env("MEDIASOUP_ANNOUNCED_IP", "127.0.0.1")
            .env("MEDIASOUP_ALLOW_LOOPBACK", "true")
            .env("MEDIASOUP_WORKERS", "1")
            .env("DATABASE_URL", db)
            .env("RUST_LOG", "warn")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        for (k, v) in vars {
            cmd.env(k, v);
        }
        let child = cmd.spawn().unwrap();
        let bin = Binary {
            child,
            base: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        };
        let http = reqwest::Client::new();
        common::wait_for(
            "the binary answers /health",
            Duration::from_secs(30),
            || {
                let req = http.get(format!("{}/health", bin.base)).send();
                async move { req.await.ok().filter(|r| r.status().is_success()) }
            },
        )
        .await;
        bin
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// 20,000 anonymous Engine.IO polling handshakes from one address: past the allowance
/// they get 429 with `Retry-After`, and the server's RSS stays bounded (the issue saw
/// 25,000 take it from 47 to 380 MB, each session living ~45 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_io_handshake_flood_from_one_ip() {
    const HANDSHAKES: usize = 20_000;
    const CONCURRENCY: usize = 64;
    let _alone = FLOODS.lock().await;
    let bin = Binary::start(&[("RATE_LIMIT_IP_HANDSHAKE", "200/min")]).await;
    let pid = bin.child.id();
    let http = reqwest::Client::new();
    let url = format!("{}/socket.io/?EIO=4&transport=polling", bin.base);
    // Warm up the allocator and connection pool on other routes first.
    for _ in 0..CONCURRENCY {
        http.get(format!("{}/health", bin.base))
            .send()
            .await
            .unwrap();
    }
    let rss_before = vm_rss_kib(pid);
    let start = Instant::now();
    let mut opened = 0usize;
    let mut limited = 0usize;
    let mut retry_after_ok = true;
    let mut sent = 0;
    while sent < HANDSHAKES {
        let n = CONCURRENCY.min(HANDSHAKES - sent);
        let batch = (0..n).map(|_| http.get(&url).send());
        for resp in futures_util::future::join_all(batch).await {
            let resp = resp.unwrap();
            match resp.status().as_u16() {
                200 => opened += 1,
                429 => {
                    limited += 1;
                    retry_after_ok &= resp
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<u64>().ok())
                        .is_some_and(|s| (1..=60).contains(&s));
                }
                s => panic!("handshake answered {s}"),
            }
        }
        sent += n;
    }
    let elapsed = start.elapsed();
    let rss_after = vm_rss_kib(pid);
    eprintln!(
        "{HANDSHAKES} polling handshakes in {elapsed:?}: {opened} opened, {limited} refused (429); \
         server VmRSS {rss_before} kB → {rss_after} kB"
    );
    // 200 at once, then 200 per minute.
    let allowed = 200 + (elapsed.as_secs_f64() * 200.0 / 60.0).ceil() as usize;
    assert!(
        opened <= allowed,
        "{opened} sessions opened, at most {allowed} allowed"
    );
    assert!(opened >= 200, "the burst passes: {opened}");
    assert_eq!(opened + limited, HANDSHAKES);
    assert!(retry_after_ok, "every 429 carries Retry-After in seconds");
    let grown = rss_after.saturating_sub(rss_before);
    assert!(
        grown < 40 * 1024,
        "RSS grew by {grown} kB over {HANDSHAKES} handshakes"
    );
}
