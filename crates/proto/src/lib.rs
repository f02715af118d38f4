//! The wire contract of meeting-service, shared by the server and the load tool.
//!
//! - [`ids`]: typed identifiers (`RoomId`, `UserId`, `PeerId`) so that a user id can
//!   never be passed where a connection id is expected.
//! - [`signaling`]: the Socket.IO payloads, both directions, with their limits. Field
//!   names are camelCase on the wire, as the service we replace spoke them.
//! - [`ack`]: the `{ ok, data | error }` acknowledgement every request is answered with.
//!
//! `docs/protocol.md` is the prose version of this crate; keep them together.

pub mod ack;
#[doc(hidden)]
pub mod fuzzing;
pub mod ids;
pub mod signaling;

pub use ack::{Ack, ErrorBody, ErrorCode};
pub use ids::{PeerId, RoomId, UserId};
