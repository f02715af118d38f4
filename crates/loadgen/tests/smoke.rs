//! CI smoke: the real `meeting-service` binary on loopback, each scenario for a few
//! seconds through the real `meeting-load` binary; packets must flow and the JSON
//! report must be well formed. Never the full benchmark.
//!
//! Needs the server built first (`cargo build -p meeting-service`), hence ignored by
//! default; CI runs it with `--include-ignored`. The binary is `MEETING_SERVICE_BIN`
//! or `<workspace>/target/debug/meeting-service`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const JWT_SECRET: &str = "meeting-load-smoke-secret";

/// The server process, killed (by its own PID) and reaped when the test ends.
struct Server {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Server {
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }
}

fn server_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("MEETING_SERVICE_BIN") {
        return PathBuf::from(p);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/debug/meeting-service")
}

fn free_tcp_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a TCP port");
    l.local_addr().expect("local addr").port()
}

/// A run of `n` consecutive free UDP ports (checked by binding them all at once).
fn free_udp_range(n: u16) -> u16 {
    let seed = std::process::id() as u16;
    for attempt in 0..200u16 {
        let base = 20_000 + (seed.wrapping_mul(31).wrapping_add(attempt.wrapping_mul(97)) % 40_000);
        let held: Vec<_> = (base..base + n)
            .filter_map(|p| UdpSocket::bind(("127.0.0.1", p)).ok())
            .collect();
        if held.len() == n as usize {
            return base;
        }
    }
    panic!("no free range of {n} UDP ports on 127.0.0.1");
}

fn http_get_ok(port: u16, path: &str) -> bool {
    let Ok(mut s) =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(500))
    else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 16];
    matches!(s.read(&mut head), Ok(n) if n >= 12 && &head[9..12] == b"200")
}

fn start_server() -> Server {
    let bin = server_binary();
    assert!(
        bin.exists(),
        "the meeting-service binary is missing at {} — build it first (`cargo build -p meeting-service`) \
         or point MEETING_SERVICE_BIN at it",
        bin.display()
    );
    let dir = std::env::temp_dir().join(format!("meeting-load-smoke-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let log = std::fs::File::create(dir.join("server.log")).expect("log file");
    let port = free_tcp_port();
    let udp = free_udp_range(4);
    let child = Command::new(&bin)
        .current_dir(&dir)
        .env("PORT", port.to_string())
        .env("HOST", "127.0.0.1")
        .env(
            "DATABASE_URL",
            format!("sqlite://{}/db.sqlite", dir.display()),
        )
        .env("MEDIASOUP_ANNOUNCED_IP", "127.0.0.1")
        .env("MEDIASOUP_ALLOW_LOOPBACK", "true")
        .env("MEDIASOUP_LISTEN_IP", "127.0.0.1")
        .env("MEDIASOUP_MIN_PORT", udp.to_string())
        .env("MEDIASOUP_MAX_PORT", (udp + 3).to_string())
        .env("MEDIASOUP_WORKERS", "1")
        .env("JWT_SECRET", JWT_SECRET)
        .env_remove("REDIS_URL")
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log file"))
        .stderr(log)
        .spawn()
        .expect("start meeting-service");
    let mut server = Server { child, port, dir };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !http_get_ok(port, "/health") {
        if let Ok(Some(status)) = server.child.try_wait() {
            panic!("meeting-service exited with {status}:\n{}", server.log());
        }
        assert!(
            Instant::now() < deadline,
            "meeting-service not healthy within 30 s:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    server
}

fn run_scenario(server: &Server, scenario: &str, participants: usize, extra: &[&str]) -> Value {
    let json = server.dir.join(format!("{scenario}.json"));
    let out = Command::new(env!("CARGO_BIN_EXE_meeting-load"))
        .args(["--url", &format!("http://127.0.0.1:{}", server.port)])
        .args([
            "--scenario",
            scenario,
            "--participants",
            &participants.to_string(),
        ])
        .args(["--duration", "3", "--ramp-up", "0.5", "--quiet"])
        .args(["--server-pid", &server.child.id().to_string()])
        .arg("--json")
        .arg(&json)
        .args(extra)
        .output()
        .expect("run meeting-load");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "meeting-load {scenario} failed: {}\n{stdout}\n{}\nserver log:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );
    let text = std::fs::read_to_string(&json).expect("the JSON report was written");
    let report: Value = serde_json::from_str(&text).expect("the JSON report parses");
    assert_eq!(report["scenario"], scenario);
    assert_eq!(report["participants"]["requested"], participants);
    assert_eq!(
        report["participants"]["connected"], participants,
        "{stdout}"
    );
    assert!(
        report["received"]["packets"].as_u64().unwrap_or(0) > 0,
        "no packets forwarded:\n{stdout}"
    );
    assert_eq!(
        report["received"]["per_subscriber"]["silent"], 0,
        "a subscriber got nothing:\n{stdout}"
    );
    assert!(report["server_cpu"]["cpu_s"].is_number(), "{text}");
    assert!(report["latency_ms"]["p50"].is_number(), "{text}");
    report
}

#[test]
#[ignore = "needs the meeting-service binary built (cargo build -p meeting-service); CI runs --include-ignored"]
fn every_scenario_forwards_packets() {
    let server = start_server();

    // Minted tokens (the server's secret) and, for one scenario, the guest endpoint.
    let meeting = run_scenario(&server, "meeting", 3, &["--jwt-secret", JWT_SECRET]);
    // Two others' audio and video each: at least 4 streams per subscriber.
    assert!(
        meeting["received"]["per_subscriber"]["mean_streams"]
            .as_f64()
            .unwrap_or(0.0)
            >= 3.9,
        "{meeting}"
    );
    assert!(
        meeting["received"]["keyframes"].as_u64().unwrap_or(0) > 0,
        "{meeting}"
    );

    let webinar = run_scenario(&server, "webinar", 3, &["--jwt-secret", JWT_SECRET]);
    assert_eq!(webinar["received"]["per_subscriber"]["subscribers"], 2);

    let audio = run_scenario(&server, "audio", 3, &[]);
    // Audio only: 50 packets/s from each of the two others, give or take.
    let rate = audio["received"]["per_subscriber"]["mean_packets_per_s"]
        .as_f64()
        .unwrap_or(0.0);
    assert!(rate > 60.0 && rate < 140.0, "audio rate {rate}");
}

#[test]
fn the_floor_mode_reports_per_packet_cost() {
    let dir = std::env::temp_dir().join(format!("meeting-load-floor-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let json = dir.join("floor.json");
    let out = Command::new(env!("CARGO_BIN_EXE_meeting-load"))
        .args(["floor", "--duration", "0.2", "--batch", "8", "--json"])
        .arg(&json)
        .output()
        .expect("run meeting-load floor");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json")).expect("parses");
    let rows = report["floor"].as_array().expect("rows");
    // Two profiles × (protect only, send_to, sendmmsg).
    assert_eq!(rows.len(), 6);
    assert!(
        rows.iter()
            .all(|r| r["us_per_packet"].as_f64().unwrap_or(0.0) > 0.0),
        "{report}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
