//! CI smoke: the real `meeting-service` binary on loopback, each scenario for a few
//! seconds through the real `meeting-load` binary; packets must flow and the JSON
//! report must be well formed. Never the full benchmark.
//!
//! Needs the server built first (`cargo build -p meeting-service`), hence ignored by
//! default; CI runs it with `--include-ignored`. The binary is `MEETING_SERVICE_BIN`
//! or `<workspace>/target/debug/meeting-service`.

mod common;

use std::process::Command;

use common::{JWT_SECRET, Server, start_server};
use serde_json::Value;

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

    // --record: the meeting is recorded while the participants publish (the server's
    // RECORDINGS_DIR is ./data/recordings in its directory): its manifest lists every
    // participant's microphone and camera, with frames written.
    run_scenario(&server, "meeting", 3, &["--record"]);
    let rooms = server.dir.join("data").join("recordings");
    let manifests: Vec<_> = std::fs::read_dir(&rooms)
        .expect("a recordings directory")
        .flat_map(|room| std::fs::read_dir(room.expect("entry").path()).expect("room dir"))
        .map(|rec| rec.expect("entry").path().join("manifest.json"))
        .collect();
    assert_eq!(manifests.len(), 1, "{manifests:?}");
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(&manifests[0]).expect("manifest"))
            .expect("manifest parses");
    let tracks = manifest["tracks"].as_array().expect("tracks");
    assert_eq!(tracks.len(), 6, "{manifest}");
    assert!(
        tracks
            .iter()
            .all(|t| t["frames"].as_u64().unwrap_or(0) > 10),
        "{manifest}"
    );
    assert_eq!(manifest["packetsDropped"], 0, "{manifest}");
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
