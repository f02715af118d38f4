//! What one socket is: the authenticated user, and the meeting it has joined.
//!
//! The session is stored in the socket's extensions at connect time. Which meeting the
//! socket is in is remembered here, but the live registry is the truth: a connection
//! replaced by a newer one, or removed by the host, is gone from the registry, and every
//! request checks there ([`Session::joined`] only says where to look).
//!
//! Socket.IO runs every event handler as its own task, so without care a socket's
//! `join-meeting`, `leave-meeting` and disconnect would interleave at their awaits (a
//! disconnect seen while the join awaits the database finds nothing to leave, and the
//! join then admits a socket that is gone). [`Session::turn`] gives each socket one
//! order for the events that change its membership or media.

use std::sync::{Arc, Mutex};

use proto::{PeerId, RoomId, UserId};

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};
use tokio_util::sync::CancellationToken;

use crate::auth::Claims;

/// The meeting a socket joined, and under which connection id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Joined {
    pub room: RoomId,
    pub peer: PeerId,
    /// Set once the SFU accepted the client's first offer.
    pub in_sfu: bool,
}

#[derive(Clone, Debug)]
pub struct Session {
    pub user: UserId,
    pub claims: Arc<Claims>,
    joined: Arc<Mutex<Option<Joined>>>,
    /// The lobby this socket waits in, and its ticket.
    waiting: Arc<Mutex<Option<(RoomId, PeerId)>>>,
    /// Held by the handler whose turn it is (see [`Session::turn`]).
    order: Arc<AsyncMutex<()>>,
    /// Cancelled when the socket disconnects: ends the tasks that serve it (the token
    /// expiry timer).
    closed: CancellationToken,
}

impl Session {
    pub fn new(claims: Claims) -> Self {
        Session {
            user: UserId::new(claims.sub.clone()),
            claims: Arc::new(claims),
            joined: Arc::default(),
            waiting: Arc::default(),
            order: Arc::default(),
            closed: CancellationToken::new(),
        }
    }

    /// Fires once the socket has disconnected.
    pub fn closed(&self) -> &CancellationToken {
        &self.closed
    }

    /// When the token stops being accepted: `exp` plus the clock-skew leeway that
    /// [`crate::auth::JwtKeys::verify`] allows at connect time.
    pub fn expires_at(&self) -> std::time::SystemTime {
        std::time::UNIX_EPOCH
            + std::time::Duration::from_secs(
                self.claims.exp.saturating_add(crate::auth::LEEWAY_SECS),
            )
    }

    /// Wait for this socket's earlier membership events (join, leave, SDP, disconnect)
    /// to finish; the next one waits for the guard to drop. Tokio's mutex is fair, so
    /// they run in the order they asked.
    pub async fn turn(&self) -> OwnedMutexGuard<()> {
        self.order.clone().lock_owned().await
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Joined>> {
        self.joined.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn joined(&self) -> Option<Joined> {
        self.lock().clone()
    }

    pub fn set_joined(&self, joined: Option<Joined>) -> Option<Joined> {
        std::mem::replace(&mut *self.lock(), joined)
    }

    /// Set (or with `None` clear) the lobby this socket waits in; returns the previous.
    pub fn set_waiting(&self, waiting: Option<(RoomId, PeerId)>) -> Option<(RoomId, PeerId)> {
        let mut guard = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::replace(&mut *guard, waiting)
    }

    /// Mark the connection as known to the SFU, if it is still the one joined.
    pub fn set_in_sfu(&self, peer: &PeerId) {
        if let Some(j) = self.lock().as_mut().filter(|j| &j.peer == peer) {
            j.in_sfu = true;
        }
    }

    /// Forget the meeting if the socket is still in it under `peer`.
    pub fn clear_if(&self, peer: &PeerId) -> bool {
        let mut guard = self.lock();
        if guard.as_ref().is_some_and(|j| &j.peer == peer) {
            *guard = None;
            true
        } else {
            false
        }
    }
}
