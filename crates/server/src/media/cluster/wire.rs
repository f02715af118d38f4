//! The relay's messages as JSON on Redis pub/sub: the only place media requests,
//! replies and errors are serialised. Every type here mirrors a typed one of the engine
//! or of [`super::super`], with exhaustive conversions, so that a new engine error or
//! track source fails to compile here instead of crossing the wire as text.
//!
//! All nodes of a cluster run the same version; a reply of an unexpected kind is
//! reported as [`super::MediaError::UnexpectedReply`], a message that does not parse is
//! logged and dropped (its sender times out).

use meeting_sfu::{MidSource, OutgoingTrack, SdpAnswer, SdpError, SfuError, TileView, TrackSource};
use proto::{PeerId, RoomId};
use serde::{Deserialize, Serialize};

use crate::media::EngineError;

mod recording;
pub(super) use recording::{
    WireCommand, WireOutcome, WireRecordingError, recording_from_wire, recording_to_wire,
};

/// A request, as published on the owner's `node:{id}:rpc` channel.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct Envelope {
    pub id: u64,
    /// The sender's node id: the reply goes to its `reply:{id}` channel.
    pub from: String,
    pub request: Request,
}

/// One request to the engine of the node that owns the room.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase")]
pub(super) enum Request {
    Join {
        room: RoomId,
        participant: PeerId,
        sdp: String,
        sources: Vec<Source>,
    },
    Offer {
        participant: PeerId,
        sdp: String,
        sources: Vec<Source>,
    },
    #[serde(rename_all = "camelCase")]
    Answer {
        participant: PeerId,
        offer_id: u64,
        sdp: String,
    },
    SetMuted {
        participant: PeerId,
        source: WireSource,
        muted: bool,
    },
    SetPublishing {
        participant: PeerId,
        source: WireSource,
        on: bool,
    },
    SetReceiveQuality {
        participant: PeerId,
        quality: WireQuality,
    },
    SetTileViews {
        participant: PeerId,
        views: Vec<WireTileView>,
    },
    Leave {
        participant: PeerId,
    },
    /// A recording command for a room this node's media is in (`recording::control`).
    Recording {
        room: RoomId,
        command: WireCommand,
    },
}

/// [`meeting_sfu::ReceiveQuality`] on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum WireQuality {
    Full,
    Reduced,
    Lowest,
}

impl From<meeting_sfu::ReceiveQuality> for WireQuality {
    fn from(q: meeting_sfu::ReceiveQuality) -> Self {
        match q {
            meeting_sfu::ReceiveQuality::Full => WireQuality::Full,
            meeting_sfu::ReceiveQuality::Reduced => WireQuality::Reduced,
            meeting_sfu::ReceiveQuality::Lowest => WireQuality::Lowest,
        }
    }
}

impl From<WireQuality> for meeting_sfu::ReceiveQuality {
    fn from(q: WireQuality) -> Self {
        match q {
            WireQuality::Full => meeting_sfu::ReceiveQuality::Full,
            WireQuality::Reduced => meeting_sfu::ReceiveQuality::Reduced,
            WireQuality::Lowest => meeting_sfu::ReceiveQuality::Lowest,
        }
    }
}

impl Request {
    pub fn join(room: &RoomId, peer: &PeerId, sdp: String, sources: &[MidSource]) -> Request {
        Request::Join {
            room: room.clone(),
            participant: peer.clone(),
            sdp,
            sources: sources_to_wire(sources),
        }
    }

    pub fn offer(peer: &PeerId, sdp: String, sources: &[MidSource]) -> Request {
        Request::Offer {
            participant: peer.clone(),
            sdp,
            sources: sources_to_wire(sources),
        }
    }
}

/// The answer to a request, as published on the sender's `reply:{id}` channel.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct ReplyEnvelope {
    pub id: u64,
    pub reply: Result<Reply, WireError>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) enum Reply {
    /// The SDP answer to a join or offer, with every m-line the server sends.
    Answer { sdp: String, tracks: Vec<Track> },
    /// Any other request succeeded.
    Done,
    /// What a recording command did, or why the recorder refused it.
    Recording {
        outcome: Result<WireOutcome, WireRecordingError>,
    },
}

/// A client's statement that m-line `mid` carries `source`.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct Source {
    pub mid: String,
    pub source: WireSource,
}

/// One m-line the server sends to a subscriber.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct Track {
    pub mid: String,
    pub from: PeerId,
    pub source: WireSource,
}

/// [`meeting_sfu::TileView`] on the wire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct WireTileView {
    pub from: PeerId,
    pub source: WireSource,
    pub visible: bool,
    pub width: u32,
    pub height: u32,
}

impl From<TileView> for WireTileView {
    fn from(v: TileView) -> Self {
        WireTileView {
            from: v.from,
            source: v.source.into(),
            visible: v.visible,
            width: v.width,
            height: v.height,
        }
    }
}

impl From<WireTileView> for TileView {
    fn from(v: WireTileView) -> Self {
        TileView {
            from: v.from,
            source: v.source.into(),
            visible: v.visible,
            width: v.width,
            height: v.height,
        }
    }
}

/// [`TrackSource`] on the wire, with the names the clients use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) enum WireSource {
    #[serde(rename = "microphone")]
    Microphone,
    #[serde(rename = "camera")]
    Camera,
    #[serde(rename = "screen")]
    ScreenShare,
    #[serde(rename = "screen-audio")]
    ScreenShareAudio,
}

impl From<TrackSource> for WireSource {
    fn from(s: TrackSource) -> Self {
        match s {
            TrackSource::Microphone => WireSource::Microphone,
            TrackSource::Camera => WireSource::Camera,
            TrackSource::ScreenShare => WireSource::ScreenShare,
            TrackSource::ScreenShareAudio => WireSource::ScreenShareAudio,
        }
    }
}

impl From<WireSource> for TrackSource {
    fn from(s: WireSource) -> Self {
        match s {
            WireSource::Microphone => TrackSource::Microphone,
            WireSource::Camera => TrackSource::Camera,
            WireSource::ScreenShare => TrackSource::ScreenShare,
            WireSource::ScreenShareAudio => TrackSource::ScreenShareAudio,
        }
    }
}

/// [`EngineError`] on the wire: why the owner's engine did not do it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "error", content = "detail", rename_all = "camelCase")]
pub(super) enum WireError {
    NoEngine,
    WorkerGone,
    Timeout,
    InvalidSdp(WireSdpError),
    UnknownParticipant,
    StaleAnswer,
    DuplicateParticipant,
    LocalCandidate,
}

/// [`SdpError`] on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) enum WireSdpError {
    OfferUnparsable,
    OfferRefused,
    AnswerUnparsable,
    AnswerRefused,
    Unprocessable,
}

impl From<SdpError> for WireSdpError {
    fn from(e: SdpError) -> Self {
        match e {
            SdpError::OfferUnparsable => WireSdpError::OfferUnparsable,
            SdpError::OfferRefused => WireSdpError::OfferRefused,
            SdpError::AnswerUnparsable => WireSdpError::AnswerUnparsable,
            SdpError::AnswerRefused => WireSdpError::AnswerRefused,
            SdpError::Unprocessable => WireSdpError::Unprocessable,
        }
    }
}

impl From<WireSdpError> for SdpError {
    fn from(e: WireSdpError) -> Self {
        match e {
            WireSdpError::OfferUnparsable => SdpError::OfferUnparsable,
            WireSdpError::OfferRefused => SdpError::OfferRefused,
            WireSdpError::AnswerUnparsable => SdpError::AnswerUnparsable,
            WireSdpError::AnswerRefused => SdpError::AnswerRefused,
            WireSdpError::Unprocessable => SdpError::Unprocessable,
        }
    }
}

impl From<&EngineError> for WireError {
    fn from(e: &EngineError) -> Self {
        match e {
            EngineError::NoEngine => WireError::NoEngine,
            EngineError::WorkerGone => WireError::WorkerGone,
            EngineError::Timeout => WireError::Timeout,
            EngineError::Refused(refusal) => match refusal {
                SfuError::InvalidSdp(why) => WireError::InvalidSdp((*why).into()),
                SfuError::UnknownParticipant => WireError::UnknownParticipant,
                SfuError::StaleAnswer => WireError::StaleAnswer,
                SfuError::WorkerGone => WireError::WorkerGone,
                SfuError::DuplicateParticipant => WireError::DuplicateParticipant,
                SfuError::LocalCandidate => WireError::LocalCandidate,
            },
        }
    }
}

impl From<WireError> for EngineError {
    fn from(e: WireError) -> Self {
        match e {
            WireError::NoEngine => EngineError::NoEngine,
            WireError::WorkerGone => EngineError::WorkerGone,
            WireError::Timeout => EngineError::Timeout,
            WireError::InvalidSdp(why) => EngineError::Refused(SfuError::InvalidSdp(why.into())),
            WireError::UnknownParticipant => EngineError::Refused(SfuError::UnknownParticipant),
            WireError::StaleAnswer => EngineError::Refused(SfuError::StaleAnswer),
            WireError::DuplicateParticipant => EngineError::Refused(SfuError::DuplicateParticipant),
            WireError::LocalCandidate => EngineError::Refused(SfuError::LocalCandidate),
        }
    }
}

fn sources_to_wire(sources: &[MidSource]) -> Vec<Source> {
    sources
        .iter()
        .map(|s| Source {
            mid: s.mid.clone(),
            source: s.source.into(),
        })
        .collect()
}

pub(super) fn sources_from_wire(sources: Vec<Source>) -> Vec<MidSource> {
    sources
        .into_iter()
        .map(|s| MidSource {
            mid: s.mid,
            source: s.source.into(),
        })
        .collect()
}

pub(super) fn answer_to_wire(answer: SdpAnswer) -> Reply {
    Reply::Answer {
        sdp: answer.sdp,
        tracks: answer
            .tracks
            .into_iter()
            .map(|t| Track {
                mid: t.mid,
                from: t.from,
                source: t.source.into(),
            })
            .collect(),
    }
}

pub(super) fn answer_from_wire(sdp: String, tracks: Vec<Track>) -> SdpAnswer {
    SdpAnswer {
        sdp,
        tracks: tracks
            .into_iter()
            .map(|t| OutgoingTrack {
                mid: t.mid,
                from: t.from,
                source: t.source.into(),
            })
            .collect(),
    }
}

/// Read a request from the `rpc:` channel. Anyone who can publish on Redis can send
/// one, so this is a parser of network input (the `redis_relay` fuzz target drives it).
pub(super) fn parse_request(payload: &str) -> Result<Envelope, serde_json::Error> {
    serde_json::from_str(payload)
}

/// Read a reply from the `reply:` channel (network input too).
pub(super) fn parse_reply(payload: &str) -> Result<ReplyEnvelope, serde_json::Error> {
    serde_json::from_str(payload)
}

/// For the fuzz target: what parsed must survive being written back unchanged.
pub(super) fn assert_round_trip<T>(value: &T)
where
    T: Serialize + for<'de> Deserialize<'de> + PartialEq + std::fmt::Debug,
{
    let again: T = serde_json::from_str(&encode(value)).expect("a written message parses");
    assert_eq!(&again, value, "the round trip changed the message");
}

/// JSON of a relay message. These types hold only strings, numbers and enums with
/// string keys, for which serde_json cannot fail.
pub(super) fn encode<T: Serialize>(message: &T) -> String {
    serde_json::to_string(message).unwrap_or_else(|e| unreachable!("relay message as JSON: {e}"))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::recording::StopReason;
    use crate::recording::control::Command;

    pub(super) fn round_trip<T>(value: &T) -> T
    where
        T: Serialize + for<'de> Deserialize<'de>,
    {
        serde_json::from_str(&encode(value)).expect("decodes what it encoded")
    }

    fn sources() -> Vec<MidSource> {
        vec![
            MidSource {
                mid: "0".into(),
                source: TrackSource::Microphone,
            },
            MidSource {
                mid: "1".into(),
                source: TrackSource::Camera,
            },
            MidSource {
                mid: "2".into(),
                source: TrackSource::ScreenShare,
            },
            MidSource {
                mid: "3".into(),
                source: TrackSource::ScreenShareAudio,
            },
        ]
    }

    #[test]
    fn every_request_survives_the_wire() {
        let (room, peer) = (RoomId::from("KXRT-PQZ-MHN"), PeerId::from("p_abc"));
        let requests = vec![
            Request::join(&room, &peer, "v=0 join".into(), &sources()),
            Request::offer(&peer, "v=0 offer".into(), &sources()),
            Request::Answer {
                participant: peer.clone(),
                offer_id: 7,
                sdp: "v=0 answer".into(),
            },
            Request::SetMuted {
                participant: peer.clone(),
                source: WireSource::Camera,
                muted: true,
            },
            Request::SetPublishing {
                participant: peer.clone(),
                source: WireSource::ScreenShare,
                on: false,
            },
            Request::SetReceiveQuality {
                participant: peer.clone(),
                quality: WireQuality::Lowest,
            },
            Request::SetTileViews {
                participant: peer.clone(),
                views: vec![
                    TileView {
                        from: PeerId::from("p_2"),
                        source: TrackSource::Camera,
                        visible: true,
                        width: 320,
                        height: 180,
                    }
                    .into(),
                ],
            },
            Request::Leave {
                participant: peer.clone(),
            },
            Request::Recording {
                room: room.clone(),
                command: Command::Stop(StopReason::MeetingEnded).into(),
            },
        ];
        for (id, request) in requests.into_iter().enumerate() {
            let env = Envelope {
                id: id as u64,
                from: "n_a".into(),
                request,
            };
            assert_eq!(round_trip(&env), env);
        }
    }

    #[test]
    fn a_join_reads_as_documented() {
        let env = Envelope {
            id: 3,
            from: "n_a".into(),
            request: Request::join(
                &RoomId::from("R"),
                &PeerId::from("p_1"),
                "v=0".into(),
                &sources()[..1],
            ),
        };
        let json: serde_json::Value = serde_json::from_str(&encode(&env)).expect("JSON");
        assert_eq!(
            json,
            serde_json::json!({
                "id": 3, "from": "n_a", "request": {
                    "op": "join", "room": "R", "participant": "p_1", "sdp": "v=0",
                    "sources": [{ "mid": "0", "source": "microphone" }]
                }
            })
        );
        let answer = Request::Answer {
            participant: PeerId::from("p_1"),
            offer_id: 2,
            sdp: "v=0".into(),
        };
        let json = serde_json::to_value(&answer).expect("JSON");
        assert_eq!(json["offerId"], 2);
    }

    #[test]
    fn sources_and_answers_convert_both_ways() {
        assert_eq!(sources_from_wire(sources_to_wire(&sources())), sources());
        let answer = SdpAnswer {
            sdp: "v=0".into(),
            tracks: vec![OutgoingTrack {
                mid: "4".into(),
                from: PeerId::from("p_2"),
                source: TrackSource::ScreenShare,
            }],
        };
        let Reply::Answer { sdp, tracks } = round_trip(&answer_to_wire(answer.clone())) else {
            panic!("an answer stays an answer");
        };
        assert_eq!(answer_from_wire(sdp, tracks), answer);
    }

    #[test]
    fn every_engine_error_survives_the_wire() {
        let errors = [
            EngineError::NoEngine,
            EngineError::WorkerGone,
            EngineError::Timeout,
            EngineError::Refused(SfuError::InvalidSdp(SdpError::OfferUnparsable)),
            EngineError::Refused(SfuError::InvalidSdp(SdpError::OfferRefused)),
            EngineError::Refused(SfuError::InvalidSdp(SdpError::AnswerUnparsable)),
            EngineError::Refused(SfuError::InvalidSdp(SdpError::AnswerRefused)),
            EngineError::Refused(SfuError::InvalidSdp(SdpError::Unprocessable)),
            EngineError::Refused(SfuError::UnknownParticipant),
            EngineError::Refused(SfuError::StaleAnswer),
            EngineError::Refused(SfuError::DuplicateParticipant),
            EngineError::Refused(SfuError::LocalCandidate),
        ];
        for e in errors {
            let env = ReplyEnvelope {
                id: 1,
                reply: Err(WireError::from(&e)),
            };
            let back = round_trip(&env);
            assert_eq!(back.id, 1);
            let wire = back.reply.expect_err("still an error");
            assert_eq!(EngineError::from(wire), e);
        }
        let done = ReplyEnvelope {
            id: 9,
            reply: Ok(Reply::Done),
        };
        assert_eq!(round_trip(&done), done);
    }

    #[test]
    fn a_refusal_that_reads_worker_gone_stays_unavailable() {
        let e = EngineError::Refused(SfuError::WorkerGone);
        assert_eq!(
            EngineError::from(WireError::from(&e)),
            EngineError::WorkerGone
        );
    }

    #[test]
    fn unknown_names_are_refused_not_guessed() {
        let bad_source = r#"{"id":1,"from":"n","request":{"op":"setMuted","participant":"p","source":"hologram","muted":true}}"#;
        assert!(serde_json::from_str::<Envelope>(bad_source).is_err());
        let bad_op = r#"{"id":1,"from":"n","request":{"op":"reboot"}}"#;
        assert!(serde_json::from_str::<Envelope>(bad_op).is_err());
        let bad_error = r#"{"id":1,"reply":{"Err":{"error":"melted"}}}"#;
        assert!(serde_json::from_str::<ReplyEnvelope>(bad_error).is_err());
    }
}
