//! The host's controls at the socket edge: `host-lock` (no new joins), `host-mute-all`
//! (everyone else's microphone or camera off; nobody is ever unmuted by the host: they
//! turn it back on themselves), `host-ask-unmute` (a request, never a forced unmute) and
//! `host-stop-screen` (someone's screen share, stopped in the engine at once). The host's
//! and co-hosts' alike (`crate::access`); `host-set-co-host` ([`super::co_host`]) is the
//! host's alone.

use proto::events::{
    ControlAskUnmute, ControlMute, ControlRemoved, ControlStopScreen, EndReason,
    ParticipantScreenShareChanged, ScreenStopped,
};
use proto::signaling::{HostLock, HostMute, HostMuteAll, HostRemove, RoomOnly};
use serde_json::{Value, json};
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, SocketRef, State};

use super::emit::broadcast;
use super::handlers::set_media;
use super::request::{Payload, answer, member, parse};
use super::{SignalError, Signaling, announce, peer_channel, room_channel};
use crate::access::Action;
use crate::live::{LiveChange, LivePeer};

/// `host-lock { roomId, locked }`: the meeting is told `meeting:updated` (its
/// `settings.lockRoom`); a locked meeting answers every join but the host's
/// `ROOM_LOCKED`, the lobby's admitted guests included.
pub async fn host_lock<A: Adapter>(
    s: SocketRef<A>,
    State(sig): State<Signaling>,
    data: Payload,
    ack: AckSender<A>,
) {
    let result = async {
        let req: HostLock = parse(data)?;
        let (_, _, me) = member(&s, &sig, &req.room_id, Action::HostLock).await?;
        sig.membership()
            .set_locked(&req.room_id, &me, req.locked)
            .await?;
        Ok(json!({ "locked": req.locked }))
    }
    .await;
    answer(&s, ack, result);
}

/// `host-mute-all { roomId, kind }`: every other connection is told `control:mute` and
/// its state set off, as `host-mute` does for one; answers how many were muted.
pub async fn host_mute_all<A: Adapter>(
    s: SocketRef<A>,
    State(sig): State<Signaling>,
    data: Payload,
    ack: AckSender<A>,
) {
    let result: Result<Value, SignalError> = async {
        let req: HostMuteAll = parse(data)?;
        let (_, _, me) = member(&s, &sig, &req.room_id, Action::HostMuteAll).await?;
        let others: Vec<_> = sig
            .membership()
            .present(&req.room_id)
            .await?
            .into_iter()
            .filter(|p| p.user_id != me.user_id)
            .collect();
        for t in &others {
            let note = ControlMute {
                room_id: req.room_id.clone(),
                kind: req.kind,
                by: me.user_id.clone(),
            };
            broadcast(s.within(peer_channel(&t.peer_id)), &note).await;
            // One who left meanwhile is not a failure of the others' muting.
            if let Err(e) = set_media(&s, &sig, &req.room_id, t, req.kind, false).await {
                tracing::debug!(peer = %t.peer_id, error = %e, "mute-all: not muted");
            }
        }
        Ok(json!({ "muted": others.len() }))
    }
    .await;
    answer(&s, ack, result);
}

/// `host-ask-unmute { roomId, targetUserId, kind }`: `control:ask-unmute` to the target's
/// connections; nothing else changes (the participant decides).
pub async fn host_ask_unmute<A: Adapter>(
    s: SocketRef<A>,
    State(sig): State<Signaling>,
    data: Payload,
    ack: AckSender<A>,
) {
    let result = async {
        let req: HostMute = parse(data)?;
        let (me, targets) = host_and_targets(&s, &sig, &req, Action::HostAskUnmute).await?;
        for t in &targets {
            let note = ControlAskUnmute {
                room_id: req.room_id.clone(),
                kind: req.kind,
                by: me.user_id.clone(),
            };
            broadcast(s.within(peer_channel(&t.peer_id)), &note).await;
        }
        Ok(json!({}))
    }
    .await;
    answer(&s, ack, result);
}

/// `host-stop-screen { roomId, targetUserId }`: the target's screen share stops being
/// forwarded at once (the engine), the meeting is told as for any stop, and the target's
/// page `control:stop-screen` (it stops capturing).
pub async fn host_stop_screen<A: Adapter>(
    s: SocketRef<A>,
    State(sig): State<Signaling>,
    data: Payload,
    ack: AckSender<A>,
) {
    let result = async {
        let req: HostRemove = parse(data)?;
        let room = &req.room_id;
        let (_, _, me) = member(&s, &sig, room, Action::HostStopScreen).await?;
        let targets = sig.live().find_user(room, &req.target_user_id).await?;
        if targets.is_empty() {
            return Err(SignalError::PeerNotFound(req.target_user_id.to_string()));
        }
        for t in targets.iter().filter(|t| t.screen_sharing) {
            let change = LiveChange::Screen(false);
            let Ok(updated) = sig
                .membership()
                .set_media_state(room, &t.peer_id, change)
                .await
            else {
                continue; // left meanwhile
            };
            let note = ControlStopScreen {
                room_id: room.clone(),
                by: me.user_id.clone(),
            };
            broadcast(s.within(peer_channel(&t.peer_id)), &note).await;
            let (user_id, peer_id) = (updated.user_id, updated.peer_id);
            let changed = ParticipantScreenShareChanged {
                user_id: user_id.clone(),
                peer_id: peer_id.clone(),
                is_sharing: false,
            };
            broadcast(s.within(room_channel(room)), &changed).await;
            broadcast(
                s.within(room_channel(room)),
                &ScreenStopped { user_id, peer_id },
            )
            .await;
        }
        Ok(json!({}))
    }
    .await;
    answer(&s, ack, result);
}

/// `host-mute { roomId, targetUserId, kind }`: the target's microphone or camera off
/// (`control:mute`), on each of its connections.
pub async fn host_mute<A: Adapter>(
    s: SocketRef<A>,
    State(sig): State<Signaling>,
    data: Payload,
    ack: AckSender<A>,
) {
    let result = async {
        let req: HostMute = parse(data)?;
        let (me, targets) = host_and_targets(&s, &sig, &req, Action::HostMute).await?;
        for t in &targets {
            let note = ControlMute {
                room_id: req.room_id.clone(),
                kind: req.kind,
                by: me.user_id.clone(),
            };
            broadcast(s.within(peer_channel(&t.peer_id)), &note).await;
            set_media(&s, &sig, &req.room_id, t, req.kind, false).await?;
        }
        Ok(json!({}))
    }
    .await;
    answer(&s, ack, result);
}

/// The caller, if it may do `action` in `req`'s meeting (else `FORBIDDEN`), and the
/// connections of `req`'s target there (none: `PEER_NOT_FOUND`).
async fn host_and_targets<A: Adapter>(
    s: &SocketRef<A>,
    sig: &Signaling,
    req: &HostMute,
    action: Action,
) -> Result<(LivePeer, Vec<LivePeer>), SignalError> {
    let (_, _, me) = member(s, sig, &req.room_id, action).await?;
    let targets = sig
        .live()
        .find_user(&req.room_id, &req.target_user_id)
        .await?;
    if targets.is_empty() {
        return Err(SignalError::PeerNotFound(req.target_user_id.to_string()));
    }
    Ok((me, targets))
}

/// `host-remove { roomId, targetUserId }`: every connection of that user leaves, told
/// `control:removed`; it may not join again until `host-allow`.
pub async fn host_remove<A: Adapter>(
    s: SocketRef<A>,
    io: SocketIo<A>,
    State(sig): State<Signaling>,
    data: Payload,
    ack: AckSender<A>,
) {
    let result = async {
        let req: HostRemove = parse(data)?;
        let (_, _, me) = member(&s, &sig, &req.room_id, Action::HostRemove).await?;
        let removal = sig
            .membership()
            .remove_user(&req.room_id, &me, &req.target_user_id)
            .await?;
        for t in &removal.targets {
            let note = ControlRemoved {
                room_id: req.room_id.clone(),
                by: me.user_id.clone(),
            };
            let channel = peer_channel(&t.peer_id);
            broadcast(s.within(channel.clone()), &note).await;
            let _ = s.within(channel).leave(room_channel(&req.room_id)).await;
        }
        for gone in &removal.departures {
            announce::left(&io, gone).await;
        }
        Ok(json!({}))
    }
    .await;
    answer(&s, ack, result);
}

/// Let a user the host removed join again.
pub async fn host_allow<A: Adapter>(
    s: SocketRef<A>,
    State(sig): State<Signaling>,
    data: Payload,
    ack: AckSender<A>,
) {
    let result = async {
        let req: HostRemove = parse(data)?;
        let (_, _, me) = member(&s, &sig, &req.room_id, Action::HostAllow).await?;
        sig.membership()
            .allow_user(&req.room_id, &me, &req.target_user_id)
            .await?;
        Ok(json!({}))
    }
    .await;
    answer(&s, ack, result);
}

/// `end-meeting { roomId }`: the host's alone; everybody is told `meeting:ended`.
pub async fn end_meeting<A: Adapter>(
    s: SocketRef<A>,
    io: SocketIo<A>,
    State(sig): State<Signaling>,
    data: Payload,
    ack: AckSender<A>,
) {
    let result = async {
        let req: RoomOnly = parse(data)?;
        let (_, _, me) = member(&s, &sig, &req.room_id, Action::EndMeeting).await?;
        sig.membership().end_meeting(&req.room_id, &me).await?;
        let reason = EndReason::HostEnded;
        announce::end_for_everyone(&io, sig.membership(), &req.room_id, reason).await;
        Ok(json!({}))
    }
    .await;
    answer(&s, ack, result);
}
