//! The SFU workers' counters in the Prometheus text format, read at scrape time from
//! what each worker copied out of its loop (`meeting_sfu::Sfu::stats`): nothing is
//! recorded on the forwarding path. One series per worker (and reason), one histogram
//! per worker for the receiver reports: bounded by the number of cores.

use std::fmt::Write;

use meeting_sfu::histogram::{Histogram, LOSS_BOUNDS, RTT_BOUNDS};
use meeting_sfu::{OnePortStats, WorkerStats};

/// Appends the SFU section to `out`.
pub fn render(out: &mut String, workers: &[WorkerStats], one_port: Option<OnePortStats>) {
    type Get = fn(&WorkerStats) -> f64;
    let families: &[(&str, &str, &str, Get)] = &[
        (
            "sfu_worker_alive",
            "gauge",
            "1 while the worker thread runs",
            |w| f64::from(u8::from(w.alive)),
        ),
        (
            "sfu_rooms",
            "gauge",
            "Rooms (meetings) placed on the worker",
            |w| w.rooms as f64,
        ),
        (
            "sfu_participants",
            "gauge",
            "Participants connected to the worker",
            |w| w.participants as f64,
        ),
        (
            "sfu_tcp_connections",
            "gauge",
            "Open ICE-TCP connections",
            |w| w.tcp_connections as f64,
        ),
        (
            "sfu_worker_busy_seconds_total",
            "counter",
            "Time the worker loop spent working (rate = busy fraction)",
            |w| w.busy.as_secs_f64(),
        ),
        (
            "sfu_datagrams_received_total",
            "counter",
            "Datagrams received (RTP, RTCP, STUN, DTLS)",
            |w| w.datagrams_in as f64,
        ),
        (
            "sfu_datagrams_sent_total",
            "counter",
            "Datagrams sent",
            |w| w.datagrams_out as f64,
        ),
        (
            "sfu_rtp_packets_received_total",
            "counter",
            "RTP packets received from publishers",
            |w| w.media.rtp_received as f64,
        ),
        (
            "sfu_rtp_bytes_received_total",
            "counter",
            "RTP payload bytes received from publishers",
            |w| w.media.rtp_bytes_received as f64,
        ),
        (
            "sfu_rtp_packets_forwarded_total",
            "counter",
            "RTP packets forwarded (one per subscriber copy)",
            |w| w.rtp_forwarded as f64,
        ),
        (
            "sfu_rtp_bytes_forwarded_total",
            "counter",
            "RTP payload bytes forwarded (rate*8 = forwarded bitrate)",
            |w| w.media.rtp_bytes_forwarded as f64,
        ),
        (
            "sfu_nacks_received_total",
            "counter",
            "NACKs received from subscribers",
            |w| w.media.nacks_received as f64,
        ),
        (
            "sfu_nacks_sent_total",
            "counter",
            "NACKs sent to publishers",
            |w| w.media.nacks_sent as f64,
        ),
        (
            "sfu_plis_received_total",
            "counter",
            "Keyframe requests (PLI/FIR) received from subscribers",
            |w| w.media.plis_received as f64,
        ),
        (
            "sfu_plis_sent_total",
            "counter",
            "Keyframe requests (PLI) sent to publishers",
            |w| w.media.keyframe_requests as f64,
        ),
    ];
    for (name, kind, help, get) in families {
        header(out, name, kind, help);
        for w in workers {
            let _ = writeln!(out, "{name}{{worker=\"{}\"}} {}", w.index, get(w));
        }
    }
    let name = "sfu_packets_dropped_total";
    header(out, name, "counter", "Packets dropped, by reason");
    for w in workers {
        let reasons = [
            ("socket_buffer", w.send_dropped),
            ("unroutable", w.datagrams_dropped),
            ("no_subscriber", w.media.dropped_no_subscriber),
            ("layer_gate", w.media.dropped_layer_gate),
        ];
        for (reason, n) in reasons {
            let _ = writeln!(
                out,
                "{name}{{worker=\"{}\",reason=\"{reason}\"}} {n}",
                w.index
            );
        }
    }
    type Hist = fn(&WorkerStats) -> &Histogram;
    let histograms: &[(&str, &str, Hist, &[f64; 7])] = &[
        (
            "sfu_subscriber_loss_fraction",
            "Loss reported by subscribers' RTCP receiver reports",
            |w| &w.media.rr_loss,
            &LOSS_BOUNDS,
        ),
        (
            "sfu_subscriber_rtt_seconds",
            "Round-trip time from subscribers' RTCP receiver reports",
            |w| &w.media.rr_rtt,
            &RTT_BOUNDS,
        ),
    ];
    for (name, help, get, bounds) in histograms {
        header(out, name, "histogram", help);
        for w in workers {
            histogram(out, name, w.index, get(w), bounds);
        }
    }
    if let Some(p) = one_port {
        let name = "sfu_one_port_datagrams_total";
        header(
            out,
            name,
            "counter",
            "Datagrams seen by the one-port demultiplexer, by outcome",
        );
        let _ = writeln!(out, "{name}{{outcome=\"received\"}} {}", p.datagrams_in);
        let _ = writeln!(out, "{name}{{outcome=\"unrouted\"}} {}", p.unrouted);
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn histogram(out: &mut String, name: &str, worker: usize, h: &Histogram, bounds: &[f64; 7]) {
    let cumulative = h.cumulative();
    for (i, bound) in bounds.iter().enumerate() {
        let _ = writeln!(
            out,
            "{name}_bucket{{worker=\"{worker}\",le=\"{bound}\"}} {}",
            cumulative[i]
        );
    }
    let _ = writeln!(
        out,
        "{name}_bucket{{worker=\"{worker}\",le=\"+Inf\"}} {}",
        cumulative[7]
    );
    let _ = writeln!(out, "{name}_sum{{worker=\"{worker}\"}} {}", h.sum());
    let _ = writeln!(out, "{name}_count{{worker=\"{worker}\"}} {}", h.count);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_once_with_a_series_per_worker() {
        let workers = [
            WorkerStats::default(),
            WorkerStats {
                index: 1,
                ..WorkerStats::default()
            },
        ];
        let mut out = String::new();
        render(&mut out, &workers, None);
        for family in [
            "sfu_worker_alive",
            "sfu_rtp_packets_forwarded_total",
            "sfu_packets_dropped_total",
            "sfu_subscriber_loss_fraction",
            "sfu_subscriber_rtt_seconds",
        ] {
            assert_eq!(
                out.matches(&format!("# TYPE {family} ")).count(),
                1,
                "{family}"
            );
        }
        for worker in ["0", "1"] {
            for series in [
                "sfu_subscriber_loss_fraction_bucket",
                "sfu_subscriber_rtt_seconds_bucket",
            ] {
                let inf = format!("{series}{{worker=\"{worker}\",le=\"+Inf\"}} 0");
                assert!(out.contains(&inf), "{inf} in\n{out}");
            }
        }
        assert!(
            !out.contains("sfu_one_port"),
            "no one-port section without it"
        );
    }
}
