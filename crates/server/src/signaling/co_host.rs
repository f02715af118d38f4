//! `host-set-co-host { roomId, targetUserId, coHost }`: the host makes a participant
//! co-host or takes it back. Every connection of the target is changed (on any node,
//! through the live registry), moved into or out of the hosts' channel (so that it
//! hears the lobby), and the meeting is told `participant:role-changed`.

use proto::events::ParticipantRoleChanged;
use proto::signaling::HostSetCoHost;
use serde_json::json;
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, SocketRef, State};

use super::emit::emit_to;
use super::request::{Payload, answer, member, parse};
use super::{Signaling, hosts_channel, lobby, peer_channel, room_channel};
use crate::access::Action;

pub async fn host_set_co_host<A: Adapter>(
    s: SocketRef<A>,
    io: SocketIo<A>,
    State(sig): State<Signaling>,
    data: Payload,
    ack: AckSender<A>,
) {
    let result = async {
        let req: HostSetCoHost = parse(data)?;
        let room = &req.room_id;
        let (_, _, me) = member(&s, &sig, room, Action::SetCoHost).await?;
        let changed = sig
            .membership()
            .set_co_host(room, &me, &req.target_user_id, req.co_host)
            .await?;
        for p in &changed {
            let target = io.to(peer_channel(&p.peer_id));
            let moved = if req.co_host {
                target.join(hosts_channel(room)).await
            } else {
                target.leave(hosts_channel(room)).await
            };
            if let Err(e) = moved {
                tracing::warn!(peer = %p.peer_id, error = %e, "co-host: hosts' channel not changed");
            }
            let note = ParticipantRoleChanged {
                room_id: room.clone(),
                user_id: p.user_id.clone(),
                peer_id: p.peer_id.clone(),
                role: p.role(),
                by: me.user_id.clone(),
            };
            emit_to(&io, room_channel(room), &note).await;
        }
        // A new co-host sees who is waiting at once.
        if req.co_host {
            match sig.membership().waiting(room).await {
                Ok(waiting) => lobby::tell_hosts(&io, room, &waiting).await,
                Err(e) => tracing::warn!(room = %room, error = %e, "could not read the lobby"),
            }
        }
        tracing::info!(room = %room, by = %me.user_id, target = %req.target_user_id, co_host = req.co_host, "co-host changed");
        Ok(json!({ "changed": changed.len() }))
    }
    .await;
    answer(&s, ack, result);
}
