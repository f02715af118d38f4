//! Leaving a meeting, for whatever reason, and the host's controls over who stays.

use proto::events::EndReason;
use proto::{PeerId, RoomId, UserId};

use super::{Membership, MembershipError, records};
use crate::access::{Action, check_role};
use crate::live::LivePeer;
use crate::recording::control::Command;

/// Why a connection left its meeting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaveWhy {
    Left,
    Disconnected,
    /// The same user joined from another connection.
    Replaced,
    /// The host removed the user.
    Removed,
    /// The engine lost the connection's media.
    MediaFailed,
    /// Admitted, then undone: the socket or the meeting was gone by then.
    Refused,
}

impl LeaveWhy {
    /// The `reason` label of `leaves_total`, and the webhook's `reason`.
    pub fn as_str(self) -> &'static str {
        match self {
            LeaveWhy::Left => "left",
            LeaveWhy::Disconnected => "disconnected",
            LeaveWhy::Replaced => "replaced",
            LeaveWhy::Removed => "removed",
            LeaveWhy::MediaFailed => "media_failed",
            LeaveWhy::Refused => "refused",
        }
    }
}

/// A connection that is out of its meeting: registry, media and history are done; the
/// meeting is told by the caller (`participant-left`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Departure {
    pub room: RoomId,
    pub peer: LivePeer,
    pub why: LeaveWhy,
}

/// What a host's removal did.
#[derive(Debug)]
pub struct Removal {
    /// The user's connections found in the meeting: each is told it was removed.
    pub targets: Vec<LivePeer>,
    /// Those of them this removal took out (one that left meanwhile is not here).
    pub departures: Vec<Departure>,
}

impl Membership {
    /// Take `peer` out of `room`. `None` if it was not there (left already, replaced,
    /// removed), or if the registry could not be reached: then its entry expires by
    /// itself once this node stops refreshing it, and its media stops now.
    pub async fn leave(&self, room: &RoomId, peer: &PeerId, why: LeaveWhy) -> Option<Departure> {
        match self.live().remove(room, peer).await {
            Ok(Some((gone, _remaining))) => Some(self.departed(room, gone, why).await),
            Ok(None) => {
                // Taken out elsewhere (another node ended the meeting): not here any more.
                self.app().monitor.departed(peer);
                None
            }
            Err(e) => {
                self.app().monitor.departed(peer);
                tracing::warn!(room = %room, peer = %peer, error = %e, "could not remove a participant from the registry");
                self.leave_media(peer);
                None
            }
        }
    }

    /// Everything that follows a connection's removal from the registry.
    pub(super) async fn departed(&self, room: &RoomId, gone: LivePeer, why: LeaveWhy) -> Departure {
        self.leave_media(&gone.peer_id);
        // Its hand goes down with it (the pages drop it on `participant-left`).
        if let Err(e) = self.live().lower_hand(room, &gone.peer_id).await {
            tracing::warn!(room = %room, peer = %gone.peer_id, error = %e, "could not lower the hand of a participant who left");
        }
        // A refused join was never announced as joined: no `participant_left` either.
        let hook = (why != LeaveWhy::Refused).then(|| why.as_str());
        records::left(self, room, &gone, hook).await;
        self.app().monitor.departed(&gone.peer_id);
        metrics::counter!(crate::monitoring::names::LEAVES, "reason" => why.as_str()).increment(1);
        tracing::info!(room = %room, peer = %gone.peer_id, ?why, "left");
        Departure {
            room: room.clone(),
            peer: gone,
            why,
        }
    }

    /// The host `by` removes `user` from `room`: every connection of the user leaves,
    /// and the user's joins are refused until [`Membership::allow_user`]. The removal is
    /// recorded first, so that a join of the same user racing it is refused.
    pub async fn remove_user(
        &self,
        room: &RoomId,
        by: &LivePeer,
        user: &UserId,
    ) -> Result<Removal, MembershipError> {
        check_role(by.role(), Action::HostRemove)?;
        let targets = self.live().find_user(room, user).await?;
        if targets.is_empty() {
            return Err(MembershipError::PeerNotFound(user.clone()));
        }
        records::removed(self, room, user, &by.user_id).await?;
        let mut departures = Vec::with_capacity(targets.len());
        for t in &targets {
            departures.extend(self.leave(room, &t.peer_id, LeaveWhy::Removed).await);
        }
        Ok(Removal {
            targets,
            departures,
        })
    }

    /// The host `by` lets a user it removed join again.
    pub async fn allow_user(
        &self,
        room: &RoomId,
        by: &LivePeer,
        user: &UserId,
    ) -> Result<(), MembershipError> {
        check_role(by.role(), Action::HostAllow)?;
        records::allowed(self, room, user).await
    }

    /// The host `by` ends the meeting for everyone: recorded as ended, so no join is
    /// admitted any more. The caller tells the meeting, then [`Membership::clear`]s it.
    pub async fn end_meeting(&self, room: &RoomId, by: &LivePeer) -> Result<(), MembershipError> {
        check_role(by.role(), Action::EndMeeting)?;
        records::ended(self, room).await
    }

    /// Everybody out of a meeting that ended (by its host, over REST, or its TTL):
    /// registry, media, history, and the engine's room. Returns who was in it.
    pub async fn clear(&self, room: &RoomId, reason: EndReason) -> Vec<LivePeer> {
        let gone = self.live().clear(room).await.unwrap_or_else(|e| {
            tracing::warn!(room = %room, error = %e, "could not clear the live registry; entries will expire");
            Vec::new()
        });
        for p in &gone {
            self.leave_media(&p.peer_id);
            records::left(self, room, p, Some("meeting_ended")).await;
        }
        let monitor = &self.app().monitor;
        monitor.meeting_cleared(room);
        metrics::counter!(crate::monitoring::names::LEAVES, "reason" => "meeting_ended")
            .increment(gone.len() as u64);
        self.close_media(room);
        // The chat history and raised hands last as long as the meeting.
        if let Err(e) = self.live().clear_activity(room).await {
            tracing::warn!(room = %room, error = %e, "could not clear the chat history and hands; they will expire");
        }
        // Ending the meeting stops its recording, on the node that holds its media (its
        // files are closed before this returns).
        let stop = Command::Stop(crate::recording::StopReason::MeetingEnded);
        if let Err(e) = self.recording().run(room, stop).await {
            tracing::warn!(room = %room, error = %e, "stopping the recording of an ended meeting failed");
        }
        tracing::info!(room = %room, reason = reason.as_str(), participants = gone.len(), "meeting ended");
        gone
    }
}
