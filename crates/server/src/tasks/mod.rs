//! The background tasks: what happens without a client's request.
//!
//! - [`sfu_events`]: the engine's events (a server offer for renegotiation, a media
//!   connection lost) turned into messages and leaves.
//! - [`placement`]: (cluster) keep the leases of the rooms this node hosts, and ask the
//!   participants of a dead media node to rejoin.
//! - [`lifecycle`]: meetings changed outside the signaling: ended (REST end/delete, the
//!   TTL sweeper: tell their sockets and clear them) or updated over REST (tell their
//!   sockets, `meeting:updated`).
//! - [`sweeper`]: ends meetings that stayed empty longer than `MEETING_TTL`.
//! - [`drain`]: a node going away on SIGTERM: its participants move, then it stops.
//!
//! Each runs until `AppState::shutdown` (or until its source closes). They call
//! [`crate::membership`] for the rules and [`crate::signaling::announce`] to tell the
//! sockets; neither calls back in here.

pub mod drain;
pub mod lifecycle;
pub mod placement;
pub mod sfu_events;
pub mod sweeper;

use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;

use crate::live::LiveRooms;
use crate::media::EventReceiver;
use crate::membership::Membership;

/// Start the tasks that talk to the sockets of `io`: the engine's event pump (when
/// there is an engine: `sfu_events`), and in a cluster the registry heartbeat, the
/// media relay and the placement watch; and the lifecycle follower. The TTL sweeper is
/// started with the server ([`crate::run`]), socket or not.
pub fn spawn<A: Adapter>(
    io: &SocketIo<A>,
    membership: &Membership,
    sfu_events: Option<EventReceiver>,
) {
    if let Some(events) = sfu_events {
        tokio::spawn(sfu_events::pump(io.clone(), membership.clone(), events));
    }
    let shutdown = membership.app().shutdown.clone();
    if let LiveRooms::Redis(redis) = membership.live().clone() {
        let shutdown = shutdown.clone();
        tokio::spawn(async move { redis.run_heartbeat(shutdown).await });
    }
    if let Some(cluster) = membership.media().cluster().cloned() {
        tokio::spawn(cluster.run(shutdown.clone()));
        tokio::spawn(placement::watch(io.clone(), membership.clone()));
    }
    tokio::spawn(lifecycle::follow(io.clone(), membership.clone()));
    tokio::spawn(drain::run(io.clone(), membership.clone()));
}
