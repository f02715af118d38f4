//! A meeting's chat history, raised hands and reactions at the socket edge:
//! `raise-hand` (the meeting sees every raised hand, in order: `hands:updated`),
//! `reaction` (an emoji of a fixed set, to everyone: `reaction`), and what a joiner is
//! told of them (`chat:history`, and `hands:updated` when hands are up). The store is
//! the live registry's ([`crate::live::activity`]), shared between nodes.

use chrono::Utc;
use proto::RoomId;
use proto::events::{ChatHistory, ChatMessage, HandsUpdated, RaisedHand, ReactionSent};
use proto::signaling::{RaiseHand, SendReaction};
use serde_json::json;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, SocketRef, State};

use super::emit::{broadcast, tell};
use super::request::{Payload, answer, member, parse};
use super::{Signaling, room_channel};
use crate::access::Action;

/// `raise-hand { roomId, raised }`: the meeting is told `hands:updated` with every raised
/// hand, first raised first; answers the same list.
pub async fn raise_hand<A: Adapter>(
    s: SocketRef<A>,
    State(sig): State<Signaling>,
    data: Payload,
    ack: AckSender<A>,
) {
    let result = async {
        let req: RaiseHand = parse(data)?;
        let (_, _, me) = member(&s, &sig, &req.room_id, Action::RaiseHand).await?;
        let live = sig.live();
        let changed = if req.raised {
            let hand = RaisedHand {
                user_id: me.user_id.clone(),
                peer_id: me.peer_id.clone(),
                user_name: me.user_name.clone(),
                raised_at: Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            };
            Some(live.raise_hand(&req.room_id, hand).await?)
        } else {
            live.lower_hand(&req.room_id, &me.peer_id).await?
        };
        // Lowering a hand that was not raised changes nothing, and tells nobody.
        let hands = match changed {
            Some(hands) => {
                let note = HandsUpdated {
                    room_id: req.room_id.clone(),
                    hands: hands.clone(),
                };
                broadcast(s.within(room_channel(&req.room_id)), &note).await;
                hands
            }
            None => live.hands(&req.room_id).await?,
        };
        Ok(json!({ "hands": hands }))
    }
    .await;
    answer(&s, ack, result);
}

/// `reaction { roomId, emoji }`: to everyone in the meeting, the sender included.
pub async fn reaction<A: Adapter>(
    s: SocketRef<A>,
    State(sig): State<Signaling>,
    data: Payload,
    ack: AckSender<A>,
) {
    let result = async {
        let req: SendReaction = parse(data)?;
        let (_, _, me) = member(&s, &sig, &req.room_id, Action::Reaction).await?;
        let note = ReactionSent {
            room_id: req.room_id.clone(),
            user_id: me.user_id,
            peer_id: me.peer_id,
            user_name: me.user_name,
            emoji: req.emoji,
        };
        broadcast(s.within(room_channel(&req.room_id)), &note).await;
        Ok(json!({}))
    }
    .await;
    answer(&s, ack, result);
}

/// Keep a sent chat message for those who join later. A registry that cannot be reached
/// costs the history that message, not the message itself (it was delivered).
pub async fn remember_chat(sig: &Signaling, room: &RoomId, msg: &ChatMessage) {
    if let Err(e) = sig.live().remember_chat(room, msg).await {
        tracing::warn!(room = %room, error = %e, "could not keep a chat message for late joiners");
    }
}

/// What a joiner learns of the meeting so far: `chat:history` (always, possibly empty,
/// so that the page knows its chat is complete) and `hands:updated` when hands are up.
pub async fn tell_joiner<A: Adapter>(s: &SocketRef<A>, sig: &Signaling, room: &RoomId) {
    let messages = sig.live().chat_history(room).await.unwrap_or_else(|e| {
        tracing::warn!(room = %room, error = %e, "could not read the chat history");
        Vec::new()
    });
    let history = ChatHistory {
        room_id: room.clone(),
        messages,
    };
    tell(s, &history);
    match sig.live().hands(room).await {
        Ok(hands) if !hands.is_empty() => {
            let note = HandsUpdated {
                room_id: room.clone(),
                hands,
            };
            tell(s, &note);
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(room = %room, error = %e, "could not read the raised hands"),
    }
}
