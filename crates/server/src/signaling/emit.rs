//! Sending typed events ([`proto::events`]): the event's name comes from its type, so a
//! body can never go out under another event's name.
//!
//! Delivery is best effort, as Socket.IO's is: a socket that left meanwhile, or a node
//! the adapter cannot reach, is not the sender's failure to report.

use proto::events::ServerEvent;
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;
use socketioxide::operators::BroadcastOperators;

/// To the sockets `to` selects (`s.to(…)`, `s.within(…)`, `io.to(…)`), on every node.
pub async fn broadcast<A: Adapter, E: ServerEvent>(to: BroadcastOperators<A>, event: &E) {
    let _ = to.emit(E::NAME, event).await;
}

/// To every socket in the Socket.IO room `channel` ([`super::room_channel`],
/// [`super::peer_channel`]).
pub async fn emit_to<A: Adapter, E: ServerEvent>(io: &SocketIo<A>, channel: String, event: &E) {
    broadcast(io.to(channel), event).await;
}

/// To this one socket.
pub fn tell<A: Adapter, E: ServerEvent>(s: &SocketRef<A>, event: &E) {
    let _ = s.emit(E::NAME, event);
}
