//! The server's `/metrics` scraped by a real Prometheus (Debian's `prometheus`, which
//! `.ci/run` installs) during a short meeting driven by the load tool: the participants
//! gauge rises to the meeting's size and falls back to 0, the forwarded-packets
//! counter's rate matches what the load tool received (within 10 %), and the join
//! histogram holds one observation per join. Also: every metric the Grafana dashboard
//! in `deploy/` queries is on the page, and `METRICS_PORT` moves the page off the
//! main port.
//!
//! Ignored by default (they need the server binary, and the first needs `prometheus`);
//! CI runs them with `--include-ignored`.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{JWT_SECRET, Server, free_port, http_get, start_server, start_server_with};
use serde_json::Value;

/// The tests of this file one at a time: each starts servers whose UDP ranges are
/// picked free by `common` (bind, release), which two servers starting at once could
/// both pick.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Participants of the test meeting, and how long the load tool measures.
const SIZE: usize = 3;
const WINDOW_S: u64 = 10;

/// A Prometheus started by the test on a free port, with its own configuration and
/// data directory; stopped (by its PID) and removed when dropped.
struct Prometheus {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Prometheus {
    /// Scrapes `127.0.0.1:target_port/metrics` every second.
    fn start(target_port: u16) -> Prometheus {
        let bin = ["/usr/bin/prometheus", "/usr/local/bin/prometheus"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("prometheus is installed (apt-get install prometheus; .ci/run does)");
        let dir = std::env::temp_dir().join(format!("meeting-prom-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("data")).expect("temp dir");
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: meeting-service\n    static_configs:\n      - targets: ['127.0.0.1:{target_port}']\n"
        );
        std::fs::write(dir.join("prometheus.yml"), config).expect("config");
        let port = free_port();
        let log = std::fs::File::create(dir.join("prometheus.log")).expect("log");
        let child = Command::new(bin)
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start prometheus");
        let prom = Prometheus { child, port, dir };
        prom.wait_until("Prometheus ready", Duration::from_secs(30), |p| {
            http_get(p.port, "/-/ready")
                .is_some_and(|(s, _)| s == 200)
                .then_some(())
        });
        prom
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }

    /// An instant query's single value (`None`: no series, or not a number yet), at
    /// `time` (Unix seconds) or now.
    fn value(&self, query: &str, time: Option<f64>) -> Option<f64> {
        let mut path = format!("/api/v1/query?query={}", encode(query));
        if let Some(t) = time {
            path.push_str(&format!("&time={t:.3}"));
        }
        let (status, body) = http_get(self.port, &path)?;
        assert_eq!(status, 200, "query {query}: {body}");
        let json: Value = serde_json::from_str(&body).expect("Prometheus answers JSON");
        let result = json["data"]["result"].as_array()?;
        assert!(result.len() <= 1, "{query}: more than one series: {body}");
        result.first()?["value"][1].as_str()?.parse().ok()
    }

    /// Polls `check` every 200 ms until it returns `Some`, or panics after `limit`.
    fn wait_until<T>(&self, what: &str, limit: Duration, check: impl Fn(&Self) -> Option<T>) -> T {
        let start = Instant::now();
        loop {
            if let Some(v) = check(self) {
                return v;
            }
            assert!(
                start.elapsed() < limit,
                "timed out after {limit:?} waiting for {what}\nprometheus log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// Percent-encodes a query for a URL.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn now_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64()
}

/// One meeting of `participants` through the real `meeting-load`; its JSON report.
fn run_meeting(server: &Server, participants: usize, window_s: u64) -> Value {
    let json = server.dir.join("meeting.json");
    let out = Command::new(env!("CARGO_BIN_EXE_meeting-load"))
        .args(["--url", &format!("http://127.0.0.1:{}", server.port)])
        .args([
            "--scenario",
            "meeting",
            "--participants",
            &participants.to_string(),
        ])
        .args([
            "--duration",
            &window_s.to_string(),
            "--ramp-up",
            "0.5",
            "--quiet",
        ])
        .args(["--jwt-secret", JWT_SECRET])
        .arg("--json")
        .arg(&json)
        .output()
        .expect("run meeting-load");
    assert!(
        out.status.success(),
        "meeting-load failed: {}\n{}\nserver log:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );
    let text = std::fs::read_to_string(&json).expect("the JSON report was written");
    serde_json::from_str(&text).expect("the JSON report parses")
}

#[test]
#[ignore = "needs the meeting-service binary and prometheus (apt-get install prometheus); CI runs --include-ignored"]
fn a_real_prometheus_sees_the_meeting() {
    let _serial = serial();
    let server = start_server();
    let prom = Prometheus::start(server.port);
    // The target is up and the gauge is at 0 before anyone joins.
    prom.wait_until("the first scrape", Duration::from_secs(20), |p| {
        p.value("up{job=\"meeting-service\"}", None)
            .filter(|v| *v == 1.0)
    });
    prom.wait_until("participants_live at 0", Duration::from_secs(10), |p| {
        p.value("participants_live{topology=\"sfu\"}", None)
            .filter(|v| *v == 0.0)
    });

    let report = run_meeting(&server, SIZE, WINDOW_S);
    let finished = now_s();
    assert_eq!(report["participants"]["joined"], SIZE, "{report}");
    assert_eq!(report["participants"]["join_retries"], 0, "{report}");

    // Back to 0 once everybody left, and the peak seen by Prometheus is the meeting size.
    prom.wait_until(
        "participants_live back to 0",
        Duration::from_secs(20),
        |p| {
            p.value("participants_live{topology=\"sfu\"}", None)
                .filter(|v| *v == 0.0)
        },
    );
    let peak = prom
        .value(
            "max_over_time(participants_live{topology=\"sfu\"}[2m])",
            None,
        )
        .expect("participants_live has samples");
    assert_eq!(peak, SIZE as f64, "peak participants");
    let meetings_peak = prom
        .value("max_over_time(meetings_live[2m])", None)
        .expect("meetings_live has samples");
    assert_eq!(meetings_peak, 1.0);

    // The forwarding rate in the middle of the load tool's window, against what the
    // load tool's subscribers received per second over that window. The window ended
    // shortly before the tool exited: evaluate 2 s before the exit, over 6 s.
    let received = report["received"]["packets_per_s"]
        .as_f64()
        .expect("a rate");
    assert!(received > 100.0, "the load tool received little: {report}");
    let at = finished - 2.0;
    let rate = prom
        .value("sum(rate(sfu_rtp_packets_forwarded_total[6s]))", Some(at))
        .expect("a forwarding rate");
    let off = (rate - received).abs() / received;
    eprintln!("forwarding: Prometheus {rate:.1}/s, load tool {received:.1}/s");
    assert!(
        off <= 0.10,
        "Prometheus's forwarding rate {rate:.1}/s vs the load tool's {received:.1}/s ({:.1} % apart)",
        off * 100.0
    );

    // One join-duration observation per join (SFU joins are observed when their media
    // connects), and every join counted as ok.
    let joins = prom.wait_until("the join histogram", Duration::from_secs(10), |p| {
        p.value("join_duration_seconds_count", None)
    });
    assert_eq!(joins, SIZE as f64, "join_duration_seconds observations");
    let ok = prom
        .value("joins_total{result=\"ok\"}", None)
        .expect("joins_total");
    assert_eq!(ok, SIZE as f64);
}

/// The metric names a PromQL expression uses: identifiers followed by `{`, `[`, `)` or
/// an operator, minus PromQL's own words.
fn metric_names(expr: &str) -> BTreeSet<String> {
    const PROMQL: &[&str] = &[
        "sum",
        "rate",
        "increase",
        "irate",
        "by",
        "without",
        "histogram_quantile",
        "le",
        "max",
        "min",
        "avg",
        "max_over_time",
        "avg_over_time",
        "count",
        "on",
        "ignoring",
        "group_left",
        "clamp_min",
        "worker",
        "reason",
        "topology",
        "result",
        "route",
        "status",
        "op",
        "job",
        "instance",
        "and",
        "or",
        "unless",
        "bool",
        "offset",
    ];
    let mut out = BTreeSet::new();
    let mut word = String::new();
    let mut in_label = 0usize;
    let mut in_string = false;
    for c in expr.chars().chain(std::iter::once(' ')) {
        if in_string {
            in_string = c != '"';
            continue;
        }
        if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
            word.push(c);
            continue;
        }
        if !word.is_empty()
            && in_label == 0
            && !PROMQL.contains(&word.as_str())
            && !word.chars().next().is_some_and(|f| f.is_ascii_digit())
            && c != '('
        {
            out.insert(word.clone());
        }
        word.clear();
        match c {
            '{' => in_label += 1,
            '}' => in_label = in_label.saturating_sub(1),
            '"' => in_string = true,
            _ => {}
        }
    }
    out
}

/// Every `expr` in the dashboard JSON.
fn exprs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("expr", Value::String(e)) => out.push(e.clone()),
                    _ => exprs(v, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| exprs(v, out)),
        _ => {}
    }
}

#[test]
#[ignore = "needs the meeting-service binary built; CI runs --include-ignored"]
fn the_dashboard_queries_only_metrics_the_server_exports() {
    let _serial = serial();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/grafana-dashboard.json");
    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("the dashboard"))
            .expect("JSON");
    let mut all = Vec::new();
    exprs(&dashboard, &mut all);
    assert!(all.len() >= 10, "the dashboard has few queries: {all:?}");
    let wanted: BTreeSet<String> = all.iter().flat_map(|e| metric_names(e)).collect();

    // A short meeting first, so that the series recorded on first use exist.
    let server = start_server();
    run_meeting(&server, 2, 2);
    // Series that appear on first use only, which a short meeting on one node without
    // Redis or webhooks does not reach: each must still be a name the server records
    // (monitoring/names.rs).
    const ON_FIRST_USE: &[&str] = &[
        "db_errors_total",
        "redis_operation_duration_seconds_bucket",
        "redis_errors_total",
        "webhook_deliveries_total",
        "webhook_dropped_total",
    ];
    let names_rs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../server/src/monitoring/names.rs");
    let names_rs = std::fs::read_to_string(names_rs).expect("monitoring/names.rs");
    for n in ON_FIRST_USE {
        let base = n.trim_end_matches("_bucket");
        assert!(
            names_rs.contains(&format!("\"{base}\"")),
            "{base} is not a recorded metric"
        );
    }
    // The load tool's participants leave as it exits; the server records their leaves
    // when it notices: poll (bounded) until nothing is missing or time is up.
    let scrape = || -> BTreeSet<String> {
        let (status, page) = http_get(server.port, "/metrics").expect("/metrics answers");
        assert_eq!(status, 200);
        page.lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .filter_map(|l| l.split(['{', ' ']).next())
            .map(str::to_owned)
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    let (missing, exported) = loop {
        let exported = scrape();
        let missing: Vec<String> = wanted
            .iter()
            .filter(|n| !exported.contains(*n) && !ON_FIRST_USE.contains(&n.as_str()))
            .cloned()
            .collect();
        if missing.is_empty() || Instant::now() > deadline {
            break (missing, exported);
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        missing.is_empty(),
        "the dashboard queries metrics /metrics does not have: {missing:?}\nexported: {exported:?}"
    );
}

#[test]
#[ignore = "needs the meeting-service binary built; CI runs --include-ignored"]
fn metrics_port_moves_the_page_off_the_main_port() {
    let _serial = serial();
    let metrics_port = free_port();
    let server = start_server_with(&[("METRICS_PORT", &metrics_port.to_string())]);
    let (status, page) = http_get(metrics_port, "/metrics").expect("the metrics port answers");
    assert_eq!(status, 200);
    assert!(
        page.contains("sfu_rtp_packets_forwarded_total{worker=\"0\"}"),
        "{page}"
    );
    let (status, _) = http_get(server.port, "/metrics").expect("the main port answers");
    assert_eq!(
        status, 404,
        "/metrics must not be on the main port with METRICS_PORT"
    );

    let off = start_server_with(&[("METRICS_ENABLED", "false")]);
    let (status, _) = http_get(off.port, "/metrics").expect("the main port answers");
    assert_eq!(status, 404, "METRICS_ENABLED=false serves no /metrics");
}
