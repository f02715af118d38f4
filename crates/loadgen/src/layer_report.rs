//! The report's adaptive-media sections: per subscriber and publisher, which video
//! layers were received in the window and at what bitrate; per publisher, what it sent
//! per layer and the dynacast changes it applied; and the active speakers the server
//! named. JSON field names are stable (tests and docs read them).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::adaptive::AdaptiveShared;
use crate::engine::ThreadReport;
use crate::peer::SIMULCAST_LAYERS;
use crate::synth::StreamTag;

/// Above this many (subscriber, publisher) pairs the printed summary shows counts per
/// layer instead of the table (the JSON report always has the table).
const TABLE_MAX_PAIRS: usize = 64;

/// The report's adaptive-media sections (flattened into `report::Report`).
#[derive(Clone, Debug, Serialize, PartialEq, Default)]
pub struct AdaptiveSections {
    /// Per subscriber and publisher: the video layers received in the window.
    pub layers: Vec<PairLayers>,
    /// Per publisher: what it sent per stream, and the dynacast changes it applied.
    pub publishers: Vec<PublisherLayers>,
    pub dynacast: DynacastSummary,
    pub active_speaker: SpeakerSummary,
}

/// What one subscriber received from one publisher in the window.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct PairLayers {
    pub meeting: usize,
    /// Participant indexes within the meeting.
    pub subscriber: usize,
    pub publisher: usize,
    pub video_bitrate_bps: f64,
    pub audio_bitrate_bps: f64,
    /// Video layers received, lowest first.
    pub layers: Vec<LayerSeen>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct LayerSeen {
    /// The simulcast rid (`q`, `h`, `f`), or `single` for video without simulcast.
    pub layer: String,
    pub packets: u64,
    pub bitrate_bps: f64,
    /// First and last packet, seconds from the window's start.
    pub first_s: f64,
    pub last_s: f64,
}

/// What one publisher sent per stream in the window, and the dynacast changes.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct PublisherLayers {
    pub meeting: usize,
    pub index: usize,
    pub streams: Vec<StreamSent>,
    /// Every `layer-needed` applied over the run, seconds from the window's start
    /// (negative: before it).
    pub dynacast: Vec<DynacastChangeAt>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct StreamSent {
    /// `audio`, `single`, or the rid.
    pub stream: String,
    pub packets: u64,
    pub bitrate_bps: f64,
    /// First and last packet sent, seconds from the window's start (`null`: none).
    pub first_s: Option<f64>,
    pub last_s: Option<f64>,
    /// Stopped by dynacast when the window ended.
    pub paused_at_end: bool,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct DynacastChangeAt {
    pub at_s: f64,
    pub rid: String,
    pub needed: bool,
}

#[derive(Clone, Debug, Serialize, PartialEq, Default)]
pub struct DynacastSummary {
    /// `layer-needed` events received, of which with a body that did not parse.
    pub events: u64,
    pub malformed: u64,
    /// Layers stopped and resumed (over the run).
    pub stops: u64,
    pub resumes: u64,
    /// Events for a rid the publisher does not send.
    pub unknown_rid: u64,
}

#[derive(Clone, Debug, Serialize, PartialEq, Default)]
pub struct SpeakerSummary {
    /// The loud participant of each meeting (`--loud`), if any.
    pub loud: Option<usize>,
    pub meetings: Vec<MeetingSpeakers>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct MeetingSpeakers {
    pub meeting: usize,
    /// `active-speaker` events seen (by participant 0 of the meeting), over the run.
    pub events: usize,
    /// The dominant speakers named, in order, without repeats: participant indexes
    /// (`null`: nobody, or a peer not of this run).
    pub sequence: Vec<Option<usize>>,
    /// The first event naming someone, seconds from the window's start.
    pub first_named_s: Option<f64>,
    pub last: Option<usize>,
}

fn layer_name(tag: StreamTag) -> String {
    match tag {
        StreamTag::Audio => "audio".into(),
        StreamTag::Video => "single".into(),
        StreamTag::Layer(n) => SIMULCAST_LAYERS
            .get(usize::from(n))
            .map_or_else(|| format!("layer{n}"), |(rid, _)| (*rid).to_owned()),
    }
}

/// Seconds of `t` from `start`, negative before it.
fn rel(t: Instant, start: Instant) -> f64 {
    match t.checked_duration_since(start) {
        Some(d) => d.as_secs_f64(),
        None => -start.duration_since(t).as_secs_f64(),
    }
}

/// The adaptive-media sections of a run of `meetings` meetings (`loud`: `--loud`).
pub fn sections(
    meetings: usize,
    loud: Option<usize>,
    threads: &[ThreadReport],
    window_start: Instant,
    window: Duration,
    adaptive: &AdaptiveShared,
) -> AdaptiveSections {
    let secs = window.as_secs_f64().max(1e-9);
    let meetings = meetings.max(1);
    // The global participant number runs meeting-fastest.
    let place = |global: usize| (global % meetings, global / meetings);
    let peers: Vec<_> = threads.iter().flat_map(|t| &t.peers).collect();

    let mut pairs = Vec::new();
    for p in &peers {
        let (meeting, subscriber) = place(p.participant);
        let mut by_publisher: BTreeMap<u32, Vec<_>> = BTreeMap::new();
        for (&(publisher, tag), c) in &p.received.by_stream {
            by_publisher.entry(publisher).or_default().push((tag, *c));
        }
        for (publisher, mut streams) in by_publisher {
            streams.sort_by_key(|(tag, _)| *tag);
            let bps = |bytes: u64| bytes as f64 * 8.0 / secs;
            let audio: u64 = streams
                .iter()
                .filter(|(t, _)| *t == StreamTag::Audio)
                .map(|(_, c)| c.bytes)
                .sum();
            let layers: Vec<LayerSeen> = streams
                .iter()
                .filter(|(t, _)| *t != StreamTag::Audio)
                .map(|(tag, c)| LayerSeen {
                    layer: layer_name(*tag),
                    packets: c.packets,
                    bitrate_bps: bps(c.bytes),
                    first_s: rel(c.first, window_start),
                    last_s: rel(c.last, window_start),
                })
                .collect();
            pairs.push(PairLayers {
                meeting,
                subscriber,
                publisher: place(publisher as usize).1,
                video_bitrate_bps: layers.iter().map(|l| l.bitrate_bps).sum(),
                audio_bitrate_bps: bps(audio),
                layers,
            });
        }
    }
    pairs.sort_by_key(|p| (p.meeting, p.subscriber, p.publisher));

    let mut dynacast = DynacastSummary::default();
    (dynacast.events, dynacast.malformed) = adaptive.layer_events();
    let mut publishers = Vec::new();
    for p in &peers {
        if p.sent.is_empty() {
            continue;
        }
        let (meeting, index) = place(p.participant);
        dynacast.stops += p.dynacast.stops;
        dynacast.resumes += p.dynacast.resumes;
        dynacast.unknown_rid += p.dynacast.unknown;
        publishers.push(PublisherLayers {
            meeting,
            index,
            streams: p
                .sent
                .iter()
                .map(|s| StreamSent {
                    stream: s.rid.clone().unwrap_or_else(|| layer_name(s.stream)),
                    packets: s.packets,
                    bitrate_bps: s.bytes as f64 * 8.0 / secs,
                    first_s: s.first.map(|t| rel(t, window_start)),
                    last_s: s.last.map(|t| rel(t, window_start)),
                    paused_at_end: s.paused,
                })
                .collect(),
            dynacast: p
                .dynacast
                .changes
                .iter()
                .map(|c| DynacastChangeAt {
                    at_s: rel(c.at, window_start),
                    rid: c.rid.clone(),
                    needed: c.needed,
                })
                .collect(),
        });
    }
    publishers.sort_by_key(|p| (p.meeting, p.index));

    let seen = adaptive.speaker_events();
    let meetings_seen = (0..meetings)
        .filter_map(|m| {
            let events: Vec<_> = seen.iter().filter(|e| e.meeting == m).collect();
            if events.is_empty() {
                return None;
            }
            let mut sequence: Vec<Option<usize>> = Vec::new();
            for e in &events {
                let who = e
                    .speaker
                    .as_ref()
                    .and_then(|peer| adaptive.who(peer))
                    .filter(|(meeting, _)| *meeting == m)
                    .map(|(_, index)| index);
                if sequence.last() != Some(&who) {
                    sequence.push(who);
                }
            }
            Some(MeetingSpeakers {
                meeting: m,
                events: events.len(),
                first_named_s: events
                    .iter()
                    .find(|e| e.speaker.is_some())
                    .map(|e| rel(e.at, window_start)),
                last: sequence.last().copied().flatten(),
                sequence,
            })
        })
        .collect();

    AdaptiveSections {
        layers: pairs,
        publishers,
        dynacast,
        active_speaker: SpeakerSummary {
            loud,
            meetings: meetings_seen,
        },
    }
}

/// The printed part: the layer table (or counts per layer), dynacast, speakers.
pub fn summary(report: &AdaptiveSections) -> String {
    let mut s = String::new();
    let pairs = &report.layers;
    let video_pairs: Vec<_> = pairs.iter().filter(|p| !p.layers.is_empty()).collect();
    if !video_pairs.is_empty() {
        if video_pairs.len() <= TABLE_MAX_PAIRS {
            s += "video layers received (meeting.subscriber ← publisher: layer kbit/s):\n";
            for p in &video_pairs {
                let layers: Vec<String> = p
                    .layers
                    .iter()
                    .map(|l| format!("{} {:.0}", l.layer, l.bitrate_bps / 1e3))
                    .collect();
                s += &format!(
                    "  {}.{} ← {}: {}  (video {:.0} kbit/s)\n",
                    p.meeting,
                    p.subscriber,
                    p.publisher,
                    layers.join(", "),
                    p.video_bitrate_bps / 1e3
                );
            }
        } else {
            let mut per_layer: BTreeMap<&str, usize> = BTreeMap::new();
            for p in &video_pairs {
                for l in &p.layers {
                    *per_layer.entry(&l.layer).or_default() += 1;
                }
            }
            let counts: Vec<String> = per_layer
                .iter()
                .map(|(layer, n)| format!("{layer} {n}"))
                .collect();
            let mean = video_pairs.iter().map(|p| p.video_bitrate_bps).sum::<f64>()
                / video_pairs.len() as f64;
            s += &format!(
                "video layers received: {} subscriber-publisher pairs, per layer: {}; {:.0} kbit/s per pair (table: `layers` in --json)\n",
                video_pairs.len(),
                counts.join(", "),
                mean / 1e3
            );
        }
    }
    let d = &report.dynacast;
    if d.events > 0 {
        s += &format!(
            "dynacast: {} layer-needed events ({} malformed), {} layers stopped, {} resumed\n",
            d.events, d.malformed, d.stops, d.resumes
        );
    }
    for m in &report.active_speaker.meetings {
        let names: Vec<String> = m
            .sequence
            .iter()
            .map(|w| w.map_or("nobody".into(), |i| format!("{}.{i}", m.meeting)))
            .collect();
        s += &format!(
            "active speaker, meeting {}: {} events, named {}\n",
            m.meeting,
            m.events,
            names.join(" → ")
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_are_named_by_rid() {
        assert_eq!(layer_name(StreamTag::Layer(0)), "q");
        assert_eq!(layer_name(StreamTag::Layer(2)), "f");
        assert_eq!(layer_name(StreamTag::Layer(9)), "layer9");
        assert_eq!(layer_name(StreamTag::Video), "single");
    }

    #[test]
    fn times_before_the_window_are_negative() {
        let start = Instant::now();
        let later = start + Duration::from_millis(1500);
        assert!((rel(later, start) - 1.5).abs() < 1e-9);
        assert!((rel(start, later) + 1.5).abs() < 1e-9);
    }
}
