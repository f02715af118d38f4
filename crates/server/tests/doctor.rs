//! `meeting-service doctor`: every check fails when it should (and says how to fix it),
//! passes when it should, and the binary's exit code follows.

use std::net::{TcpListener, UdpSocket};
use std::process::Command;

use meeting_service::config::Config;
use meeting_service::doctor::{self, Options, Status};

fn cfg(pairs: &[(&str, &str)]) -> Config {
    Config::from_vars(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
        .expect("valid configuration")
}

/// A TCP port on 127.0.0.1 that nothing listens on (bound, then released).
fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

fn assert_fails(check: &doctor::Check, needle: &str) {
    assert_eq!(check.status, Status::Fail, "{check:?}");
    assert!(
        check.detail.contains(needle),
        "{:?} lacks {needle:?}",
        check.detail
    );
    assert!(
        check.fix.as_deref().is_some_and(|f| !f.is_empty()),
        "a failure without a fix: {check:?}"
    );
}

const LOOPBACK: &[(&str, &str)] = &[
    ("MEDIASOUP_ANNOUNCED_IP", "127.0.0.1"),
    ("MEDIASOUP_ALLOW_LOOPBACK", "true"),
];

#[test]
fn announced_ip_loopback_fails() {
    let c = doctor::announced_ip(&cfg(LOOPBACK));
    assert_fails(&c, "loopback");
    assert!(
        c.fix
            .as_deref()
            .unwrap_or("")
            .contains("MEDIASOUP_ANNOUNCED_IP")
    );
}

#[test]
fn announced_ip_private_but_not_of_this_host_fails() {
    // 10.255.255.77 is private and (on any sane test machine) not an interface address.
    assert!(!doctor::is_local_address(
        "10.255.255.77".parse().expect("ip")
    ));
    let c = doctor::announced_ip(&cfg(&[("MEDIASOUP_ANNOUNCED_IP", "10.255.255.77")]));
    assert_fails(&c, "not one of this host's");
}

#[test]
fn announced_public_ip_not_on_this_host_is_explained_as_nat() {
    let c = doctor::announced_ip(&cfg(&[("MEDIASOUP_ANNOUNCED_IP", "203.0.113.7")]));
    assert_eq!(c.status, Status::Warn, "{c:?}");
    assert!(c.detail.contains("NAT"), "{c:?}");
}

#[test]
fn announced_ip_of_this_host_passes() {
    // Any non-loopback IPv4 address the host has (skip the assertion on a host without one).
    let Some(ip) = doctor::local_ipv4_addresses().into_iter().next() else {
        eprintln!("no non-loopback IPv4 address on this host; nothing to check");
        return;
    };
    let c = doctor::announced_ip(&cfg(&[("MEDIASOUP_ANNOUNCED_IP", &ip.to_string())]));
    assert_eq!(c.status, Status::Pass, "{c:?}");
    assert!(c.detail.contains("address of this host"), "{c:?}");
}

#[test]
fn udp_worker_port_in_use_fails() {
    let held = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let port = held.local_addr().expect("addr").port().to_string();
    let mut vars = LOOPBACK.to_vec();
    vars.extend([
        ("MEDIASOUP_LISTEN_IP", "127.0.0.1"),
        ("MEDIASOUP_MIN_PORT", &port),
        ("MEDIASOUP_MAX_PORT", &port),
        ("MEDIASOUP_WORKERS", "1"),
    ]);
    let c = doctor::udp_ports(&cfg(&vars));
    assert_fails(&c, &port);
    drop(held);
    // Released: the same configuration passes.
    let c = doctor::udp_ports(&cfg(&vars));
    assert_eq!(c.status, Status::Pass, "{c:?}");
}

/// A port on 127.0.0.1 free for both UDP and TCP (bound, then released). Below Linux's
/// ephemeral range (32768-60999), so that no other test's connection takes it once released.
fn free_udp_tcp_port() -> u16 {
    static NEXT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
    let start = 20_000 + (std::process::id() % 600) as u16 * 20;
    (0..500)
        .map(|_| start + NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 12_000)
        .find(|&p| {
            UdpSocket::bind(("127.0.0.1", p)).is_ok() && TcpListener::bind(("127.0.0.1", p)).is_ok()
        })
        .expect("a port free for UDP and TCP")
}

#[test]
fn tcp_worker_port_in_use_fails() {
    let port = free_udp_tcp_port();
    let held = TcpListener::bind(("127.0.0.1", port)).expect("bind");
    let p = port.to_string();
    let mut vars = LOOPBACK.to_vec();
    vars.extend([
        ("MEDIASOUP_LISTEN_IP", "127.0.0.1"),
        ("MEDIASOUP_MIN_PORT", &p),
        ("MEDIASOUP_MAX_PORT", &p),
        ("MEDIASOUP_WORKERS", "1"),
    ]);
    let c = doctor::tcp_media_ports(&cfg(&vars));
    assert_fails(&c, &p);
    assert!(c.detail.contains("TCP"), "{c:?}");
    assert!(
        c.fix
            .as_deref()
            .unwrap_or("")
            .contains("MEDIASOUP_ENABLE_TCP=false"),
        "{c:?}"
    );
    // UDP on the same port is free: only the TCP check fails.
    assert_eq!(doctor::udp_ports(&cfg(&vars)).status, Status::Pass);
    // ICE-TCP off: the TCP ports are not needed.
    let mut off = vars.clone();
    off.push(("MEDIASOUP_ENABLE_TCP", "false"));
    let c = doctor::tcp_media_ports(&cfg(&off));
    assert_eq!(c.status, Status::Pass, "{c:?}");
    assert!(c.detail.contains("off"), "{c:?}");
    drop(held);
    let c = doctor::tcp_media_ports(&cfg(&vars));
    assert_eq!(c.status, Status::Pass, "{c:?}");
    assert!(
        c.detail.contains(&format!("ufw allow {p}:{p}/tcp")),
        "{c:?}"
    );
}

#[test]
fn one_port_mode_checks_one_udp_and_one_tcp_port() {
    // Eight workers, a range of one port that is not used: one-port mode needs no range.
    let one_port = |p: &str| {
        let mut vars = LOOPBACK.to_vec();
        vars.extend([
            ("MEDIASOUP_LISTEN_IP", "127.0.0.1"),
            ("MEDIASOUP_MIN_PORT", "47300"),
            ("MEDIASOUP_MAX_PORT", "47300"),
            ("MEDIASOUP_WORKERS", "8"),
        ]);
        cfg(&vars
            .into_iter()
            .chain([("MEDIASOUP_SINGLE_PORT", p)])
            .collect::<Vec<_>>())
    };
    // Another process on the machine may take the port between its release and the
    // doctor's check (a CI run once saw that): then another port, at most five times.
    let (port, c) = (0..5)
        .map(|_| {
            let port = free_udp_tcp_port();
            (port, doctor::udp_ports(&one_port(&port.to_string())))
        })
        .find(|(_, c)| !c.detail.contains("Address already in use"))
        .expect("a free port stays free for the doctor's check, in five tries");
    let p = port.to_string();
    let config = one_port(&p);
    assert_eq!(c.status, Status::Pass, "{c:?}");
    assert!(
        c.detail.contains("one-port mode") && c.detail.contains(&format!("ufw allow {p}/udp")),
        "{c:?}"
    );
    let c = doctor::tcp_media_ports(&config);
    assert_eq!(c.status, Status::Pass, "{c:?}");
    assert!(c.detail.contains(&format!("ufw allow {p}/tcp")), "{c:?}");

    // The one UDP port taken.
    let udp = UdpSocket::bind(("127.0.0.1", port)).expect("bind");
    let c = doctor::udp_ports(&config);
    assert_fails(&c, &p);
    assert!(
        c.detail.contains("MEDIASOUP_SINGLE_PORT")
            && c.fix
                .as_deref()
                .unwrap_or("")
                .contains("MEDIASOUP_SINGLE_PORT"),
        "{c:?}"
    );
    drop(udp);

    // The one TCP port taken.
    let tcp = TcpListener::bind(("127.0.0.1", port)).expect("bind");
    let c = doctor::tcp_media_ports(&config);
    assert_fails(&c, &p);
    assert!(c.detail.contains("MEDIASOUP_SINGLE_PORT"), "{c:?}");
    drop(tcp);
}

#[test]
fn udp_listen_ip_not_of_this_host_fails() {
    let c = doctor::udp_ports(&cfg(&[
        ("MEDIASOUP_LISTEN_IP", "10.255.255.77"),
        ("MEDIASOUP_WORKERS", "1"),
    ]));
    assert_fails(&c, "cannot be bound");
}

#[test]
fn http_port_in_use_fails() {
    let held = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = held.local_addr().expect("addr").port().to_string();
    let c = doctor::tcp_port(&cfg(&[("HOST", "127.0.0.1"), ("PORT", &port)]));
    assert_fails(&c, &port);
}

#[tokio::test]
async fn redis_unreachable_fails_without_leaking_the_password() {
    let url = format!("redis://:hunter2secret@127.0.0.1:{}", closed_port());
    let c = doctor::redis(&cfg(&[("REDIS_URL", &url)])).await;
    assert_fails(&c, "127.0.0.1");
    assert!(!c.detail.contains("hunter2secret"), "{c:?}");
    // Not configured is fine (single node).
    assert_eq!(doctor::redis(&cfg(&[])).await.status, Status::Pass);
}

#[tokio::test]
async fn postgres_unreachable_fails_without_leaking_the_password() {
    let url = format!(
        "postgres://meet:hunter2secret@127.0.0.1:{}/meetings",
        closed_port()
    );
    let c = doctor::database(&cfg(&[("DATABASE_URL", &url)])).await;
    assert_fails(&c, "127.0.0.1");
    assert!(!c.detail.contains("hunter2secret"), "{c:?}");
}

#[tokio::test]
async fn sqlite_in_an_unwritable_place_fails_and_a_writable_one_passes() {
    let c = doctor::database(&cfg(&[(
        "DATABASE_URL",
        "sqlite:///proc/meeting-service-doctor/meetings.db",
    )]))
    .await;
    assert_fails(&c, "cannot be created");

    let dir = std::env::temp_dir().join(format!("doctor-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let url = format!("sqlite://{}/sub/meetings.db", dir.display());
    let c = doctor::database(&cfg(&[("DATABASE_URL", &url)])).await;
    assert_eq!(c.status, Status::Pass, "{c:?}");
    // The probe left nothing behind, and the doctor created nothing.
    assert_eq!(std::fs::read_dir(&dir).expect("read").count(), 0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn no_turn_and_no_udp_path_fails() {
    let no_udp = Options {
        no_udp: Some("--no-udp was given".into()),
    };
    let c = doctor::turn(&cfg(&[]), &no_udp, true);
    assert_fails(&c, "no TURN server configured");
    assert!(c.fix.as_deref().unwrap_or("").contains("TURN_SERVER_URL"));
    // A loopback announced IP is no UDP path either.
    let c = doctor::turn(&cfg(LOOPBACK), &Options::default(), true);
    assert_fails(&c, "loopback");
    // With UDP declared, TURN is optional.
    let c = doctor::turn(
        &cfg(&[("MEDIASOUP_ANNOUNCED_IP", "203.0.113.7")]),
        &Options::default(),
        true,
    );
    assert_eq!(c.status, Status::Pass, "{c:?}");
}

#[test]
fn malformed_turn_urls_fail() {
    for (url, needle) in [
        (
            "turns:turn.example.com:5349?transport=udp",
            "transport=udp is impossible",
        ),
        ("turn:turn.example.com:http", "bad port"),
        ("turn:turn.example.com:3478?proto=tcp", "unknown query"),
        ("turn:[::1:3478", "unclosed"),
    ] {
        let c = doctor::turn(
            &cfg(&[("TURN_SERVER_URL", url), ("TURN_SECRET", "s3cr3t")]),
            &Options::default(),
            true,
        );
        assert_fails(&c, needle);
    }
}

#[test]
fn turn_over_udp_only_fails_without_a_udp_path() {
    let no_udp = Options {
        no_udp: Some("running on Render, which has no inbound UDP".into()),
    };
    let udp_only = cfg(&[
        (
            "TURN_SERVER_URL",
            "turn:turn.example.com:3478?transport=udp",
        ),
        ("TURN_SECRET", "s3cr3t"),
    ]);
    assert_fails(
        &doctor::turn(&udp_only, &no_udp, true),
        "every TURN URL is TURN over UDP",
    );
    let with_tls = cfg(&[
        (
            "TURN_SERVER_URL",
            "turn:turn.example.com:3478?transport=udp,turns:turn.example.com:5349",
        ),
        ("TURN_SECRET", "s3cr3t"),
        ("SFU_MODE_ENABLED", "false"),
    ]);
    let c = doctor::turn(&with_tls, &no_udp, true);
    assert_eq!(c.status, Status::Pass, "{c:?}");
    assert!(c.detail.contains("ephemeral"), "{c:?}");
    // SFU meetings without inbound UDP need the TURN server to reach the workers: a note.
    let sfu = cfg(&[
        ("TURN_SERVER_URL", "turns:turn.example.com:5349"),
        ("TURN_SECRET", "s3cr3t"),
        ("SFU_MODE_ENABLED", "true"),
    ]);
    let c = doctor::turn(&sfu, &no_udp, true);
    assert_eq!(c.status, Status::Warn, "{c:?}");
    assert!(
        c.fix
            .as_deref()
            .unwrap_or("")
            .contains("SFU_MODE_ENABLED=false"),
        "{c:?}"
    );
    // Static credentials pass with a note recommending TURN_SECRET.
    let stat = cfg(&[
        ("TURN_SERVER_URL", "turns:turn.example.com:5349"),
        ("TURN_USERNAME", "u"),
        ("TURN_CREDENTIAL", "p"),
        ("SFU_MODE_ENABLED", "false"),
    ]);
    let c = doctor::turn(&stat, &no_udp, true);
    assert_eq!(c.status, Status::Warn, "{c:?}");
}

#[test]
fn turn_url_parser() {
    let u = doctor::parse_turn_url("turn:[2001:db8::1]:3478?transport=tcp").expect("valid");
    assert_eq!(
        (u.secure, u.host, u.port, u.transport),
        (false, "2001:db8::1", Some(3478), Some("tcp"))
    );
    let u = doctor::parse_turn_url("turns:turn.example.com").expect("valid");
    assert_eq!(
        (u.secure, u.host, u.port, u.transport),
        (true, "turn.example.com", None, None)
    );
}

#[test]
fn platforms_without_udp_are_detected() {
    assert_eq!(
        doctor::platform_without_udp(|v| (v == "RENDER").then(|| "true".to_owned())),
        Some("Render")
    );
    assert_eq!(
        doctor::platform_without_udp(|v| (v == "DYNO").then(|| "web.1".to_owned())),
        Some("Heroku")
    );
    assert_eq!(doctor::platform_without_udp(|_| None), None);
}

#[test]
fn weak_jwt_secret_fails_in_production_only() {
    for (secret, needle) in [
        ("your-secret-key-2024", "placeholder"),
        ("0123456789abcdef0123", "fewer than 32"),
        (
            "abababababababababababababababababab",
            "distinct characters",
        ),
    ] {
        let c = doctor::jwt_secret(&cfg(&[("NODE_ENV", "production"), ("JWT_SECRET", secret)]));
        assert_fails(&c, needle);
        let dev = doctor::jwt_secret(&cfg(&[("JWT_SECRET", secret)]));
        assert_eq!(dev.status, Status::Warn, "{dev:?}");
    }
    let strong = doctor::jwt_secret(&cfg(&[
        ("NODE_ENV", "production"),
        (
            "JWT_SECRET",
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        ),
    ]));
    assert_eq!(strong.status, Status::Pass, "{strong:?}");
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn turn_credentials_without_a_turn_url_fail() {
    let env = [("TURN_SECRET", "s3cr3t"), ("NODE_ENV", "production")];
    let c = doctor::variables(&cfg(&[]), pairs(&env));
    assert_fails(&c, "TURN_SECRET set but TURN_SERVER_URL is not");
    // With a URL they are fine.
    let with_url = [
        ("TURN_SERVER_URL", "turn:t.example.com:3478"),
        ("TURN_SECRET", "s3cr3t"),
    ];
    assert_eq!(
        doctor::variables(&cfg(&with_url), pairs(&with_url)).status,
        Status::Pass
    );
}

#[test]
fn misspelled_variables_are_pointed_out() {
    let env = [
        ("MEDIASOUP_ANOUNCED_IP", "203.0.113.7"),
        ("PATH", "/usr/bin"),
        ("STUN_SERVER_1", "stun:s:3478"),
        ("HOME", "/root"),
    ];
    let c = doctor::variables(&cfg(&[]), pairs(&env));
    assert_eq!(c.status, Status::Warn, "{c:?}");
    assert!(
        c.detail.contains("MEDIASOUP_ANOUNCED_IP")
            && !c.detail.contains("STUN_SERVER_1")
            && !c.detail.contains("PATH"),
        "{c:?}"
    );
}

/// The binary: a controlled environment, a fresh directory (no `.env`), exit codes.
fn doctor_binary(vars: &[(&str, &str)]) -> (i32, String) {
    // A directory per call: tests run in parallel and each removes its own.
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("doctor-bin-{}-{call}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let out = Command::new(env!("CARGO_BIN_EXE_meeting-service"))
        .arg("doctor")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(vars.iter().copied())
        .current_dir(&dir)
        .output()
        .expect("run meeting-service doctor");
    let _ = std::fs::remove_dir_all(&dir);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn binary_exits_non_zero_when_a_check_fails() {
    let held = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = held.local_addr().expect("addr").port().to_string();
    let (code, out) = doctor_binary(&[
        ("HOST", "127.0.0.1"),
        ("PORT", &port),
        ("NODE_ENV", "production"),
        ("JWT_SECRET", "your-secret-key-2024"),
        ("MEDIASOUP_ANNOUNCED_IP", "203.0.113.7"),
        ("MEDIASOUP_LISTEN_IP", "127.0.0.1"),
        ("MEDIASOUP_MIN_PORT", "47200"),
        ("MEDIASOUP_MAX_PORT", "47299"),
        ("MEDIASOUP_WORKERS", "1"),
        ("DATABASE_URL", "sqlite://./data/meetings.db"),
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("✗ HTTP port"), "{out}");
    assert!(out.contains("✗ JWT secret"), "{out}");
    assert!(out.contains("✓ Redis"), "{out}");
    assert!(out.contains("fix:"), "{out}");
    assert!(out.contains("checks: 2 failed"), "{out}");
    assert!(out.contains("✓ variables"), "{out}");
}

#[test]
fn binary_exits_non_zero_when_a_tcp_media_port_is_taken() {
    let held = TcpListener::bind("127.0.0.1:0").expect("bind");
    let media = held.local_addr().expect("addr").port().to_string();
    let http = closed_port().to_string();
    let vars = [
        ("HOST", "127.0.0.1"),
        ("PORT", http.as_str()),
        ("MEDIASOUP_ANNOUNCED_IP", "203.0.113.7"),
        ("MEDIASOUP_LISTEN_IP", "127.0.0.1"),
        ("MEDIASOUP_WORKERS", "2"),
        ("MEDIASOUP_SINGLE_PORT", media.as_str()),
        (
            "JWT_SECRET",
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        ),
    ];
    let (code, out) = doctor_binary(&vars);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("✗ TCP media ports (ICE-TCP)") && out.contains(&media),
        "{out}"
    );
    assert!(out.contains("MEDIASOUP_ENABLE_TCP=false"), "{out}");
    assert!(out.contains("checks: 1 failed"), "{out}");
    // Without ICE-TCP the same host passes.
    let mut udp_only = vars.to_vec();
    udp_only.push(("MEDIASOUP_ENABLE_TCP", "false"));
    let (code, out) = doctor_binary(&udp_only);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("✓ TCP media ports (ICE-TCP): off"), "{out}");
}

#[test]
fn binary_passes_a_sound_configuration_and_refuses_an_invalid_one() {
    let port = closed_port().to_string();
    let (code, out) = doctor_binary(&[
        ("HOST", "127.0.0.1"),
        ("PORT", &port),
        ("MEDIASOUP_ANNOUNCED_IP", "203.0.113.7"),
        ("MEDIASOUP_LISTEN_IP", "127.0.0.1"),
        ("MEDIASOUP_MIN_PORT", "47100"),
        ("MEDIASOUP_MAX_PORT", "47199"),
        ("MEDIASOUP_WORKERS", "1"),
        (
            "JWT_SECRET",
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        ),
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("0 failed"), "{out}");

    let (code, out) = doctor_binary(&[
        ("MEDIASOUP_MIN_PORT", "10100"),
        ("MEDIASOUP_MAX_PORT", "10000"),
    ]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("✗ configuration") && out.contains("MEDIASOUP_MAX_PORT"),
        "{out}"
    );
}

/// A private coturn on 127.0.0.1 (`use-auth-secret`), killed by its PID on drop.
struct Coturn {
    child: std::process::Child,
    port: u16,
    dir: std::path::PathBuf,
}

impl Coturn {
    fn start(secret: &str) -> Coturn {
        let dir = std::env::temp_dir().join(format!("doctor-coturn-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp dir");
        // A port free for both TCP and UDP.
        let port = (0..50)
            .find_map(|_| {
                let t = TcpListener::bind("127.0.0.1:0").ok()?;
                let p = t.local_addr().ok()?.port();
                UdpSocket::bind(("127.0.0.1", p)).ok().map(|_| p)
            })
            .expect("a free port");
        let child = Command::new("turnserver")
            .args([
                "-n",
                "--no-cli",
                "--listening-ip=127.0.0.1",
                "--relay-ip=127.0.0.1",
                "--use-auth-secret",
                "--realm=doctor.test",
            ])
            .args([
                "--no-tls",
                "--no-dtls",
                "--no-stdout-log",
                "--simple-log",
                "--verbose",
                "--min-port=46000",
                "--max-port=46099",
            ])
            .arg(format!("--listening-port={port}"))
            .arg(format!("--static-auth-secret={secret}"))
            .arg(format!("--log-file={}", dir.join("turn.log").display()))
            .arg(format!("--pidfile={}", dir.join("turn.pid").display()))
            .arg(format!("--userdb={}", dir.join("turndb").display()))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start turnserver (apt-get install coturn)");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "coturn did not listen on {port} within 15 s"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        Coturn { child, port, dir }
    }

    fn log(&self) -> String {
        std::fs::read_dir(&self.dir)
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_name().to_string_lossy().starts_with("turn"))
                    .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Coturn {
    fn drop(&mut self) {
        let _ = self.child.kill(); // by PID: this child only
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
#[ignore = "needs coturn"]
fn turn_credentials_are_checked_against_a_real_coturn() {
    let coturn = Coturn::start("doctor-shared-secret");
    let urls = format!(
        "turn:127.0.0.1:{p}?transport=udp,turn:127.0.0.1:{p}?transport=tcp,turns:127.0.0.1:5349",
        p = coturn.port
    );
    let timeout = std::time::Duration::from_secs(5);

    let good = cfg(&[
        ("TURN_SERVER_URL", &urls),
        ("TURN_SECRET", "doctor-shared-secret"),
    ]);
    let c = doctor::turn_allocation(&good, timeout);
    assert_eq!(c.status, Status::Pass, "{c:?}\n{}", coturn.log());
    assert!(
        c.detail.contains("transport=udp (relay 127.0.0.1:")
            && c.detail.contains("transport=tcp (relay 127.0.0.1:"),
        "{c:?}"
    );
    assert!(c.detail.contains("not probed (TLS)"), "{c:?}");
    let log = coturn.log();
    assert!(
        log.contains(":meeting-service-doctor>: incoming packet ALLOCATE processed, success"),
        "{log}"
    );
    assert!(
        log.contains(":meeting-service-doctor>: incoming packet REFRESH processed, success"),
        "the relay was not released\n{log}"
    );

    // A secret coturn does not share: 401, reported with the fix.
    let wrong = cfg(&[
        ("TURN_SERVER_URL", &urls),
        ("TURN_SECRET", "some-other-secret"),
    ]);
    let c = doctor::turn_allocation(&wrong, timeout);
    assert_fails(&c, "401");
    assert!(
        c.fix
            .as_deref()
            .unwrap_or("")
            .contains("static-auth-secret"),
        "{c:?}"
    );

    // Static credentials coturn does not know: refused as well.
    let stat = cfg(&[
        ("TURN_SERVER_URL", &urls),
        ("TURN_USERNAME", "alice"),
        ("TURN_CREDENTIAL", "password"),
    ]);
    assert_fails(&doctor::turn_allocation(&stat, timeout), "401");
}

#[test]
fn unreachable_turn_server_fails() {
    let port = closed_port();
    let c = cfg(&[
        (
            "TURN_SERVER_URL",
            &format!("turn:127.0.0.1:{port}?transport=tcp"),
        ),
        ("TURN_SECRET", "s3cr3t"),
    ]);
    let check = doctor::turn_allocation(&c, std::time::Duration::from_secs(2));
    assert_fails(&check, "cannot reach");
}
