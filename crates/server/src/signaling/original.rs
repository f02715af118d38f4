//! What frontends of the service we replace do that ours does not: `meeting:leave`,
//! `change-video-quality`, a connection without `auth: { token }`, and listening for
//! `meeting-error` instead of reading acknowledgements. `docs/migrating.md` says what such a frontend changes.
//!
//! A socket that connected without a token is let in, but only to be told why it cannot
//! do anything: `meeting-error` with `TOKEN_MISSING` at once (the original frontend
//! listens for it; a refused handshake would only fire `connect_error`, which it does
//! not), the same as the acknowledgement and `meeting-error` of any event it sends
//! (its `join-meeting`, whose `userId` is not an identity: anyone could send any), and
//! a disconnect after that event or [`TOKENLESS_GRACE`], whichever comes first. It holds
//! no session, no seat and no rate-limit entry meanwhile.

use std::time::Duration;

use meeting_sfu::ReceiveQuality;
use proto::events::{MeetingError, ParticipantVideoQualityChanged};
use proto::signaling::{ChangeVideoQuality, Validate, VideoQuality};
use proto::{Ack, ErrorBody, ErrorCode, RoomId};
use serde::Deserialize;
use serde_json::{Value, json};
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, Event, SocketRef, State, TryData};

use super::emit::{broadcast, tell};
use super::request::{Payload, answer, member, parse, session};
use super::{SignalError, Signaling, room_channel};
use crate::access::Action;
use crate::membership::LeaveWhy;

/// How long a socket without a token stays connected, to receive its `meeting-error`.
pub const TOKENLESS_GRACE: Duration = Duration::from_secs(5);

fn token_missing() -> ErrorBody {
    ErrorBody::new(
        ErrorCode::TokenMissing,
        "connect with auth: { token } (a JWT signed with JWT_SECRET, e.g. io(url, { auth: { token } })); \
         the userId of join-meeting is not accepted as an identity",
    )
}

/// The socket connected without a token: tell it, answer whatever it sends, and let it go.
pub fn tokenless<A: Adapter>(s: &SocketRef<A>, sig: &Signaling) {
    tell(
        s,
        &MeetingError {
            error: token_missing(),
        },
    );
    s.on_fallback(tokenless_event::<A>);
    let (s, shutdown) = (s.clone(), sig.app().shutdown.clone());
    tokio::spawn(async move {
        tokio::select! {
            _ = tokio::time::sleep(TOKENLESS_GRACE) => {}
            _ = shutdown.cancelled() => {}
        }
        let _ = s.disconnect();
    });
}

async fn tokenless_event<A: Adapter>(s: SocketRef<A>, Event(name): Event, ack: AckSender<A>) {
    let shown: String = name.chars().take(64).collect();
    tracing::debug!(socket = %s.id, event = %shown, "event from a socket without a token");
    let error = token_missing();
    tell(
        &s,
        &MeetingError {
            error: error.clone(),
        },
    );
    if let Err(e) = ack.send(&Ack::<()>::err(error)) {
        tracing::debug!(error = %e, "could not send acknowledgement");
    }
    let _ = s.disconnect();
}

/// A failed join's error, also as `meeting-error` (the original frontend's only signal).
pub fn join_failed<A: Adapter>(s: &SocketRef<A>, error: &ErrorBody) {
    tell(
        s,
        &MeetingError {
            error: error.clone(),
        },
    );
}

/// `meeting:leave`: the original frontend's `leave-meeting`. Its `roomId` may be left
/// out: the socket's meeting is left then.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MeetingLeave {
    #[serde(default)]
    room_id: Option<RoomId>,
}

impl Validate for MeetingLeave {
    fn validate(&self) -> Result<(), ErrorBody> {
        match &self.room_id {
            Some(room) if room.as_str().is_empty() => Err(ErrorBody::new(
                ErrorCode::BadRequest,
                "`roomId` must not be empty",
            )),
            _ => Ok(()),
        }
    }
}

pub async fn meeting_leave<A: Adapter>(
    s: SocketRef<A>,
    io: SocketIo<A>,
    State(sig): State<Signaling>,
    data: Payload,
    ack: AckSender<A>,
) {
    let result = async {
        // No payload at all is the same as `{}`.
        let data = match data.0 {
            Ok(Value::Null) | Err(_) => TryData(Ok(json!({}))),
            Ok(v) => TryData(Ok(v)),
        };
        let req: MeetingLeave = parse(data)?;
        let session = session(&s)?;
        let _turn = session.turn().await;
        let room = match req.room_id {
            Some(room) => room,
            None => session.joined().ok_or(SignalError::NotInMeeting)?.room,
        };
        let (session, joined, _) = member(&s, &sig, &room, Action::Leave).await?;
        super::handlers::leave(&s, &io, &sig, &session, &joined, LeaveWhy::Left).await;
        Ok(json!({}))
    }
    .await;
    answer(&s, ack, result);
}

/// `change-video-quality { roomId, quality }`: the quality of video this participant
/// wants to receive. In an SFU meeting the server applies it: `low` gets the lowest
/// layer of each simulcast camera, `medium` at most the one below the best, `high` and
/// `auto` what the gallery's size picks for everyone (for a connection whose media the
/// SFU has, i.e. after its first `sfu-offer`). In a mesh meeting the server carries no
/// media; there, as in both, the meeting is told `participant-video-quality-changed`,
/// so that the browsers sending to this participant can lower what they send it.
pub async fn change_video_quality<A: Adapter>(
    s: SocketRef<A>,
    State(sig): State<Signaling>,
    data: Payload,
    ack: AckSender<A>,
) {
    let result = async {
        let req: ChangeVideoQuality = parse(data)?;
        let (_, joined, me) = member(&s, &sig, &req.room_id, Action::ChangeVideoQuality).await?;
        if joined.in_sfu {
            sig.membership()
                .receive_quality_media(&joined.peer, receive_quality(req.quality));
        }
        let note = ParticipantVideoQualityChanged {
            user_id: me.user_id,
            peer_id: me.peer_id,
            quality: req.quality,
        };
        broadcast(s.within(room_channel(&req.room_id)), &note).await;
        Ok(json!({}))
    }
    .await;
    answer(&s, ack, result);
}

fn receive_quality(q: VideoQuality) -> ReceiveQuality {
    match q {
        VideoQuality::Low => ReceiveQuality::Lowest,
        VideoQuality::Medium => ReceiveQuality::Reduced,
        VideoQuality::High | VideoQuality::Auto => ReceiveQuality::Full,
    }
}
