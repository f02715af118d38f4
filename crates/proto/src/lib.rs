//! The wire contract of meeting-service, shared by the server and the load tool.
//!
//! - [`ids`]: typed identifiers (`RoomId`, `UserId`, `PeerId`) so that a user id can
//!   never be passed where a connection id is expected.
//! - [`signaling`]: the Socket.IO requests (client → server) with their limits, and the
//!   acknowledgement data and parts they share with events. Field names are camelCase on
//!   the wire, as the service we replace spoke them.
//! - [`events`]: every server → client event, one type per event name
//!   ([`events::ServerEvent::NAME`]).
//! - [`ack`]: the `{ ok, data | error }` acknowledgement every request is answered with.
//!
//! `docs/protocol.md` is the prose version of this crate; keep them together.

pub mod ack;
pub mod events;
#[doc(hidden)]
pub mod fuzzing;
pub mod ids;
pub mod role;
pub mod signaling;

pub use ack::{Ack, ErrorBody, ErrorCode};
pub use ids::{PeerId, ResumeToken, RoomId, UserId};
pub use role::Role;
