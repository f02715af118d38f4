//! The real `meeting-service` binary on loopback, for the load tool's tests. The
//! binary is `MEETING_SERVICE_BIN` or `<workspace>/target/debug/meeting-service`.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Servers of one test process get their own directories.
static NEXT_DIR: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

pub const JWT_SECRET: &str = "meeting-load-smoke-secret";

/// The server process, killed (by its own PID) and reaped when the test ends.
pub struct Server {
    pub child: Child,
    pub port: u16,
    pub dir: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Server {
    pub fn log(&self) -> String {
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

/// `GET path` on 127.0.0.1:`port` (HTTP/1.0): the status and the body, `None` if the
/// connection fails. Bounded by a 5 s read timeout.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
        .ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.get(9..12)?.parse().ok()?;
    Some((status, body.to_owned()))
}

pub fn free_port() -> u16 {
    free_tcp_port()
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

pub fn start_server() -> Server {
    start_server_with(&[])
}

/// [`start_server`] with extra environment variables.
pub fn start_server_with(env: &[(&str, &str)]) -> Server {
    let bin = server_binary();
    assert!(
        bin.exists(),
        "the meeting-service binary is missing at {} — build it first (`cargo build -p meeting-service`) \
         or point MEETING_SERVICE_BIN at it",
        bin.display()
    );
    let dir = std::env::temp_dir().join(format!(
        "meeting-load-test-{}-{}",
        std::process::id(),
        NEXT_DIR.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
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
        .envs(env.iter().copied())
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
