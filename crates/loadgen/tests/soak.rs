//! CI soak: two minutes of join/leave churn (a third of the cycles end with an abrupt
//! close, some while `join-meeting` is in flight) with media flowing, through the real
//! `meeting-load soak` against the real `meeting-service` binary on loopback. The
//! server must come back flat: nobody in the live registry, no open history row, RSS,
//! fds, threads and tokio tasks within the tool's tolerances of the start (the
//! assertions are the tool's; its exit status and JSON report carry them).
//!
//! Ignored by default: it needs the server built (`cargo build -p meeting-service`)
//! and runs for about three minutes. CI runs it with `--include-ignored`.

mod common;

use std::process::Command;

use common::{JWT_SECRET, start_server};
use serde_json::Value;

#[test]
#[ignore = "needs the meeting-service binary built (cargo build -p meeting-service) and runs ~3 minutes; CI runs --include-ignored"]
fn two_minutes_of_churn_leave_the_server_flat() {
    let server = start_server();
    let json = server.dir.join("soak.json");
    let out = Command::new(env!("CARGO_BIN_EXE_meeting-load"))
        .arg("soak")
        .args(["--url", &format!("http://127.0.0.1:{}", server.port)])
        .args(["--server-pid", &server.child.id().to_string()])
        .args(["--jwt-secret", JWT_SECRET])
        .args(["--meetings", "2", "--participants", "3"])
        .args([
            "--warm-up",
            "20",
            "--duration",
            "120",
            "--sample-every",
            "15",
        ])
        .args(["--min-dwell", "2", "--max-dwell", "6"])
        // Light media: the debug build of the server forwards it on a shared machine.
        .args(["--video-bitrate", "200", "--fps", "10"])
        .arg("--json")
        .arg(&json)
        .output()
        .expect("run meeting-load soak");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let text = std::fs::read_to_string(&json).unwrap_or_default();
    assert!(
        out.status.success(),
        "the soak failed: {}\n{stdout}\n{}\nserver log (tail):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        tail(&server.log(), 60)
    );
    let report: Value = serde_json::from_str(&text).expect("the JSON report parses");
    assert_eq!(report["passed"], true, "{stdout}");
    // The report says what it checked, and the churn did what it says.
    let checks = report["checks"].as_array().expect("checks");
    assert!(checks.len() >= 8, "{stdout}");
    assert!(checks.iter().all(|c| c["ok"] == true), "{stdout}");
    let churn = &report["churn"];
    for key in [
        "left_cleanly",
        "dropped_after_join",
        "dropped_mid_join",
        "renegotiations",
    ] {
        assert!(churn[key].as_u64().unwrap_or(0) > 0, "no {key}: {stdout}");
    }
    assert!(
        report["received_packets"].as_u64().unwrap_or(0) > 0,
        "{stdout}"
    );
    for at in ["start", "end"] {
        assert_eq!(report[at]["live_participants"], 0, "{stdout}");
        assert_eq!(report[at]["open_participant_rows"], 0, "{stdout}");
        assert!(
            report[at]["rss_bytes"].as_u64().unwrap_or(0) > 0,
            "{stdout}"
        );
    }
    assert!(
        !report["timeline"].as_array().expect("timeline").is_empty(),
        "{stdout}"
    );
    println!("{stdout}");
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
