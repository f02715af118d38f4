//! The host's meeting-wide controls at the socket edge: `host-lock` (no new joins) and
//! `host-mute-all` (everyone else's microphone or camera off; nobody is ever unmuted by
//! the host: they turn it back on themselves).

use proto::events::ControlMute;
use proto::signaling::{HostLock, HostMuteAll};
use serde_json::{Value, json};
use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, SocketRef, State};

use super::emit::broadcast;
use super::handlers::set_media;
use super::request::{Payload, answer, joined_peer, parse};
use super::{SignalError, Signaling, peer_channel};

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
        let (_, _, me) = joined_peer(&s, &sig, &req.room_id).await?;
        sig.membership()
            .set_locked(&req.room_id, &me, req.locked)
            .await?;
        Ok(json!({ "locked": req.locked }))
    }
    .await;
    answer(ack, result);
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
        let (_, _, me) = joined_peer(&s, &sig, &req.room_id).await?;
        if !me.is_host {
            return Err(SignalError::Forbidden("mute everyone"));
        }
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
    answer(ack, result);
}
