//! The run's results: the JSON report (stable field names: CI and benchmarks.md read
//! them) and the human summary printed at the end.

use serde::{Deserialize, Serialize};

use crate::layer_report::AdaptiveSections;
use crate::stats::Percentiles;

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub tool: &'static str,
    pub version: &'static str,
    /// `meeting-service` or `janus`.
    pub target: String,
    pub url: String,
    pub scenario: String,
    pub meetings: usize,
    pub participants_per_meeting: usize,
    /// Meeting scenario: participants per meeting publishing audio (`null`: all).
    pub speakers: Option<usize>,
    pub video: VideoSettings,
    /// Length of the measurement window (after every participant joined).
    pub window_s: f64,
    pub participants: ParticipantCounts,
    /// From opening the socket to the answer to the publishing offer applied.
    pub join_ms: Percentiles,
    /// From opening the socket to DTLS connected.
    pub connect_ms: Percentiles,
    pub sent: Throughput,
    pub received: Received,
    pub loss: Loss,
    /// Send stamp in the payload → receipt, through the SFU.
    pub latency_ms: Percentiles,
    pub server_cpu: Option<ServerCpu>,
    /// CPU the load tool itself used in the window (it shares the machine).
    pub loadgen_cpu_s: Option<f64>,
    pub renegotiations: u64,
    pub renegotiation_errors: u64,
    /// `layers`, `publishers`, `dynacast`, `active_speaker` (`layer_report`).
    #[serde(flatten)]
    pub adaptive: AdaptiveSections,
}

#[derive(Clone, Debug, Serialize)]
pub struct VideoSettings {
    pub bitrate_bps: u64,
    pub fps: u32,
    pub keyframe_interval_s: f64,
    pub simulcast: bool,
}

#[derive(Clone, Debug, Serialize, Default)]
pub struct ParticipantCounts {
    pub requested: usize,
    pub joined: usize,
    pub connected: usize,
    pub failed: usize,
    /// `join-meeting` requests sent twice because the first got no ack.
    pub join_retries: u64,
    /// The first few failures, verbatim.
    pub errors: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Default)]
pub struct Throughput {
    pub packets: u64,
    pub packets_per_s: f64,
    pub bitrate_bps: f64,
}

#[derive(Clone, Debug, Serialize, Default)]
pub struct Received {
    pub packets: u64,
    pub packets_per_s: f64,
    pub bitrate_bps: f64,
    pub keyframes: u64,
    pub per_subscriber: PerSubscriber,
}

/// Over the participants that should receive something (everyone but a webinar's
/// publisher).
#[derive(Clone, Debug, Serialize, Default)]
pub struct PerSubscriber {
    pub subscribers: usize,
    /// Subscribers that received no packet at all in the window.
    pub silent: usize,
    pub min_packets_per_s: f64,
    pub mean_packets_per_s: f64,
    pub max_packets_per_s: f64,
    pub mean_bitrate_bps: f64,
    pub mean_streams: f64,
}

#[derive(Clone, Debug, Serialize, Default)]
pub struct Loss {
    pub lost: u64,
    pub expected: u64,
    pub ratio: f64,
    pub duplicates: u64,
}

/// The server's CPU over the window and what it bought.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ServerCpu {
    pub pid: u32,
    pub cpu_s: f64,
    /// Cores busy on average (cpu_s / window).
    pub cores: f64,
    pub us_per_forwarded_packet: Option<f64>,
    pub forwarded_packets_per_s_per_core: Option<f64>,
}

impl ServerCpu {
    pub fn new(pid: u32, cpu_s: f64, window_s: f64, forwarded_packets: u64) -> ServerCpu {
        let per_packet = (forwarded_packets > 0).then(|| cpu_s * 1e6 / forwarded_packets as f64);
        ServerCpu {
            pid,
            cpu_s,
            cores: if window_s > 0.0 {
                cpu_s / window_s
            } else {
                0.0
            },
            us_per_forwarded_packet: per_packet,
            forwarded_packets_per_s_per_core: per_packet.filter(|us| *us > 0.0).map(|us| 1e6 / us),
        }
    }
}

fn ms(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.1}"))
}

impl Report {
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let p = &self.participants;
        s += &format!(
            "== {} on {} ({}): {} meeting(s) × {} participants, window {:.1} s\n",
            self.scenario,
            self.target,
            self.url,
            self.meetings,
            self.participants_per_meeting,
            self.window_s
        );
        s += &format!(
            "participants: {} requested, {} joined, {} connected, {} failed, {} join retries\n",
            p.requested, p.joined, p.connected, p.failed, p.join_retries
        );
        for e in &p.errors {
            s += &format!("  error: {e}\n");
        }
        s += &format!(
            "join ms p50/p90/p99/max: {}/{}/{}/{}   connect ms p50/p99: {}/{}\n",
            ms(self.join_ms.p50),
            ms(self.join_ms.p90),
            ms(self.join_ms.p99),
            ms(self.join_ms.max),
            ms(self.connect_ms.p50),
            ms(self.connect_ms.p99)
        );
        s += &format!(
            "sent: {:.0} pkt/s {:.2} Mbit/s   received: {:.0} pkt/s {:.2} Mbit/s ({} keyframes)\n",
            self.sent.packets_per_s,
            self.sent.bitrate_bps / 1e6,
            self.received.packets_per_s,
            self.received.bitrate_bps / 1e6,
            self.received.keyframes
        );
        let ps = &self.received.per_subscriber;
        s += &format!(
            "per subscriber ({}, {} silent): {:.0}/{:.0}/{:.0} pkt/s min/mean/max, {:.0} kbit/s, {:.1} streams\n",
            ps.subscribers,
            ps.silent,
            ps.min_packets_per_s,
            ps.mean_packets_per_s,
            ps.max_packets_per_s,
            ps.mean_bitrate_bps / 1e3,
            ps.mean_streams
        );
        s += &format!(
            "loss: {} of {} ({:.3} %), {} duplicates   renegotiations: {} ({} errors)\n",
            self.loss.lost,
            self.loss.expected,
            self.loss.ratio * 100.0,
            self.loss.duplicates,
            self.renegotiations,
            self.renegotiation_errors
        );
        s += &format!(
            "forwarding latency ms p50/p90/p99/max: {}/{}/{}/{}\n",
            ms(self.latency_ms.p50),
            ms(self.latency_ms.p90),
            ms(self.latency_ms.p99),
            ms(self.latency_ms.max)
        );
        match &self.server_cpu {
            Some(c) => {
                s += &format!(
                    "server CPU: {:.2} s ({:.2} cores) → {} µs per forwarded packet, {} forwarded pkt/s per core\n",
                    c.cpu_s,
                    c.cores,
                    c.us_per_forwarded_packet
                        .map_or("-".into(), |v| format!("{v:.2}")),
                    c.forwarded_packets_per_s_per_core
                        .map_or("-".into(), |v| format!("{v:.0}")),
                );
            }
            None => s += "server CPU: not measured (pass --server-pid)\n",
        }
        if let Some(c) = self.loadgen_cpu_s {
            s += &format!("load tool CPU: {c:.2} s\n");
        }
        s += &crate::layer_report::summary(&self.adaptive);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_per_packet_and_per_core() {
        let c = ServerCpu::new(1, 2.0, 10.0, 1_000_000);
        assert_eq!(c.us_per_forwarded_packet, Some(2.0));
        assert_eq!(c.forwarded_packets_per_s_per_core, Some(500_000.0));
        assert!((c.cores - 0.2).abs() < 1e-9);
        assert_eq!(
            ServerCpu::new(1, 2.0, 10.0, 0).us_per_forwarded_packet,
            None
        );
        let json = serde_json::to_value(&c).expect("json");
        assert_eq!(json["us_per_forwarded_packet"], 2.0);
    }
}
