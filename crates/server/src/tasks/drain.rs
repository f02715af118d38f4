//! A node going away gracefully (SIGTERM, `AppState::draining`): a rolling restart or a
//! scale-down without ending anybody's call.
//!
//! In order: the node stops taking new sockets, joins and meetings (the signaling and
//! the REST API refuse them with `UNAVAILABLE`; `/health/ready` answers 503, so a load
//! balancer sends new clients elsewhere); with Redis it gives up the media leases it
//! holds at once ([`crate::cluster::placement::Placement::stop_hosting`]), so that the
//! meetings' media re-open on a live node without waiting for the leases to expire; it
//! tells its participants (`server-draining`, [`crate::signaling::drain`]), whose pages
//! reconnect and resume on another node (or, with one node, on the restarted process);
//! and it waits until no socket is left on it and (with Redis) no connection is carried
//! by it any more, or `DRAIN_TIMEOUT_SECONDS`. Whatever is still here then leaves as a
//! disconnect does (history closed, the others told), and the process stops.
//!
//! Connections that disconnect meanwhile are kept for resuming, whatever the reason
//! (`signaling::resume`): a page that closes its socket to reconnect elsewhere is not
//! leaving the meeting.

use std::time::Duration;

use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use tokio::time::Instant;

use crate::membership::{LeaveWhy, Membership};
use crate::signaling::{announce, drain};

/// How often the node looks whether its participants have gone.
const LOOK_EVERY: Duration = Duration::from_millis(100);

/// Why a drain ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ended {
    Empty,
    TimedOut,
}

/// Waits for the drain to begin, runs it, then stops the process (`shutdown`). Returns
/// at once if the process stops first (SIGINT).
pub async fn run<A: Adapter>(io: SocketIo<A>, membership: Membership) {
    let app = membership.app().clone();
    tokio::select! {
        _ = app.draining.cancelled() => {}
        _ = app.shutdown.cancelled() => return,
    }
    let timeout = app.config.drain_timeout;
    let started = Instant::now();
    tracing::info!(
        timeout_secs = timeout.as_secs(),
        "draining: no new sockets, joins or meetings; telling the participants to move"
    );
    let hosted = match membership.media().cluster() {
        Some(c) => c.placement().stop_hosting().await.unwrap_or_else(|e| {
            // The leases then expire by themselves (cluster::placement::ROOM_LEASE).
            tracing::warn!(error = %e, "draining: could not release the media leases");
            Vec::new()
        }),
        None => Vec::new(),
    };
    let told = drain::tell_participants(&io, &membership, &hosted).await;
    tracing::info!(
        told,
        media_rooms = hosted.len(),
        "draining: participants told"
    );
    // Without a cluster, connections kept for resuming wait for the restarted process:
    // only sockets count. With one, a connection counts until it resumed elsewhere.
    let clustered = membership.media().cluster().is_some();
    let deadline = started + timeout;
    let ended = loop {
        let carried = if clustered {
            membership.live().local_count()
        } else {
            0
        };
        if drain::local_sockets(&io) == 0 && carried == 0 {
            break Ended::Empty;
        }
        if Instant::now() >= deadline {
            break Ended::TimedOut;
        }
        tokio::select! {
            _ = tokio::time::sleep(LOOK_EVERY) => {}
            _ = app.shutdown.cancelled() => return,
        }
    };
    // Sockets that did not move are closed, so that the server's own shutdown does not
    // wait for them; their connections, and without Redis every one still here, leave.
    let mut remaining = drain::local_connections(&io);
    let _ = io.local().disconnect().await;
    remaining.extend(membership.live().local_connections());
    let mut left = 0;
    for (room, peer) in remaining {
        if let Some(gone) = membership.leave(&room, &peer, LeaveWhy::Disconnected).await {
            announce::left(&io, &gone).await;
            left += 1;
        }
    }
    tracing::info!(
        ?ended,
        left,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "drained; stopping"
    );
    app.shutdown.cancel();
}
