//! Socket.IO signaling on the HTTP port: the edge between clients and the membership
//! rules ([`crate::membership`]): SDP exchange with the SFU (or relay between browsers in
//! mesh mode), media toggles, chat and host controls.
//!
//! - [`handlers`]: one function per client event: parse the payload, call membership or
//!   media, tell the sockets, and answer with an [`proto::Ack`].
//! - [`relay`]: the mesh events relayed from one browser to another.
//! - [`original`]: what frontends of the service we replace do: `meeting:leave`,
//!   `meeting-error` on a failed join, a connection without a token.
//! - [`request`]: what every handler does: parse, find the caller's connection, ack.
//! - [`resume`]: the grace period of a connection that dropped, and `resume-meeting`.
//! - [`drain`]: `server-draining`, to the connections of a node that goes away.
//! - [`session`]: what one socket is: its user, and the meeting it joined.
//! - [`media`]: client SDP payloads to [`crate::media::MediaRouter`] calls.
//! - [`host`]: the host's (and co-hosts') `host-lock`, `host-mute-all`, `host-mute`,
//!   `host-ask-unmute`, `host-stop-screen`.
//! - [`co_host`]: the host's `host-set-co-host`.
//! - [`invites`]: the host's and co-hosts' `invite-create`, `invite-list`, `invite-revoke`.
//! - [`lobby`]: waiting for approval, and the host's `lobby-admit` / `lobby-deny`.
//! - [`activity`]: raised hands, reactions, and the chat history a joiner is told.
//! - [`recording`]: the host's `recording-start` / `recording-stop`.
//! - [`tiles`]: the page's `tile-views` report, for the SFU's per-subscriber layers.
//! - [`announce`]: what a meeting's sockets are told when its membership changes; shared
//!   with the background tasks ([`crate::tasks`]).
//! - [`emit`]: sending the typed events of [`proto::events`].
//! - [`crate::live`]: who is in which meeting right now (the participant cap is checked
//!   there, atomically); membership chooses its implementation.
//! - [`throttle`]: the per-socket and per-user event limits every handler is wrapped in.
//!
//! Socket.IO rooms carry the addressing, so that the Redis adapter can deliver across
//! nodes: `room:<roomId>` holds every socket of a meeting, `peer:<peerId>` the one
//! socket of a connection (or of a lobby ticket), `hosts:<roomId>` the host's and
//! co-hosts' sockets.
//!
//! Every handler of an event about a meeting finds the caller through
//! [`request::member`], which checks the event against `crate::access`'s table (the
//! caller's grants and role) before anything is done.

pub mod activity;
pub mod announce;
pub mod co_host;
pub mod drain;
pub mod emit;
pub mod error;
pub mod handlers;
pub mod host;
pub mod invites;
pub mod lobby;
pub mod media;
pub mod original;
pub mod recording;
pub mod relay;
pub mod request;
pub mod resume;
pub mod session;
pub mod throttle;
pub mod tiles;

use proto::{PeerId, RoomId};
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide_core::adapter::DefinedAdapter;

pub use crate::live::LiveRooms;
pub use error::SignalError;

use crate::media::MediaRouter;
use crate::membership::Membership;
use crate::state::AppState;

/// Largest Socket.IO message accepted: room for an SDP offer with many m-lines
/// (proto's `limits::SDP`) and its envelope. Larger frames close the connection.
pub const MAX_PAYLOAD: u64 = 256 * 1024;

/// Shared by every socket handler. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Signaling {
    membership: Membership,
}

impl Signaling {
    pub fn new(membership: Membership) -> Self {
        Signaling { membership }
    }

    pub fn membership(&self) -> &Membership {
        &self.membership
    }

    pub fn media(&self) -> &MediaRouter {
        self.membership.media()
    }

    pub fn live(&self) -> &LiveRooms {
        self.membership.live()
    }

    pub fn app(&self) -> &AppState {
        self.membership.app()
    }
}

/// Socket.IO room of every socket in a meeting.
pub fn room_channel(room: &RoomId) -> String {
    format!("room:{room}")
}

/// Socket.IO room of the host's connections to a meeting (the lobby's listeners).
pub fn hosts_channel(room: &RoomId) -> String {
    format!("hosts:{room}")
}

/// Socket.IO room of one connection.
pub fn peer_channel(peer: &PeerId) -> String {
    format!("peer:{peer}")
}

/// Register the namespace handlers on `io`. The background tasks that also talk to the
/// sockets are started by [`crate::tasks::spawn`].
pub fn attach<A: Adapter + DefinedAdapter>(io: &SocketIo<A>) -> A::InitRes {
    handlers::register(io)
}

/// The socket carries `joined` from now on: its session and its channels.
fn into_channels<A: Adapter>(
    s: &socketioxide::extract::SocketRef<A>,
    session: &session::Session,
    joined: &session::Joined,
    moderates: bool,
) {
    let mut channels = vec![room_channel(&joined.room), peer_channel(&joined.peer)];
    if moderates {
        channels.push(hosts_channel(&joined.room));
    }
    s.join(channels);
    session.set_joined(Some(joined.clone()));
}

/// Forget the meeting on this socket: its session and its channels.
fn out_of_channels<A: Adapter>(
    s: &socketioxide::extract::SocketRef<A>,
    session: &session::Session,
    joined: &session::Joined,
) {
    session.clear_if(&joined.peer);
    s.leave(vec![
        room_channel(&joined.room),
        peer_channel(&joined.peer),
        hosts_channel(&joined.room),
    ]);
}
