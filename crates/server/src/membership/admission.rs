//! Admission: who may join a meeting, and what a join replaces.
//!
//! In two steps, because the caller has its own work in between (moving the socket into
//! the meeting's channels): [`Membership::admit`] takes the seat, [`Membership::confirm`]
//! writes the history and gives the seat back if the meeting ended (or the user was
//! removed) meanwhile.

use chrono::Utc;
use proto::{PeerId, RoomId, UserId};

use super::leave::{Departure, LeaveWhy};
use super::{MeetingView, Membership, MembershipError, records};
use crate::access::{Action, Grants, check};
use crate::live::LivePeer;
use proto::Role;

/// A connection asking to join: who it is and how it starts.
#[derive(Clone, Debug)]
pub struct Candidate {
    pub user: UserId,
    /// Already trimmed, or the token's name.
    pub user_name: String,
    pub user_picture: Option<String>,
    pub audio_enabled: bool,
    pub video_enabled: bool,
    /// What its token grants (the meetings it may join, its role, what it publishes).
    pub grants: Grants,
}

/// A connection admitted to a meeting, with what its admission changed.
#[derive(Debug)]
pub struct Admission {
    pub room: RoomId,
    /// The meeting as it was read for the admission.
    pub meeting: MeetingView,
    /// The new connection (with its fresh peer id).
    pub peer: LivePeer,
    /// The user's earlier connections to the meeting, now out of it (registry, media,
    /// history): the caller tells them and the others.
    pub replaced: Vec<Departure>,
    /// How many are in the meeting now, the new one included.
    pub present: usize,
}

impl Admission {
    pub fn is_host(&self) -> bool {
        self.peer.is_host
    }
}

/// A join undone by [`Membership::confirm`].
#[derive(Debug)]
pub struct Refusal {
    pub error: MembershipError,
    /// The admitted connection, taken out again (`None` if it was gone already).
    pub undone: Option<Departure>,
}

impl Membership {
    /// Admit `candidate` to `room`: the meeting must exist and not have ended, the
    /// candidate's grants must list it, a locked meeting admits only its host and
    /// co-hosts, a user the host removed is refused (the host never is), a meeting that
    /// requires approval admits (besides the host and co-hosts) only users the host let in
    /// ([`MembershipError::ApprovalRequired`] otherwise: see [`super::lobby`]), and the meeting must have a seat within its cap. The user's earlier
    /// connections are replaced (and do not count against the cap).
    pub async fn admit(
        &self,
        room: &RoomId,
        candidate: Candidate,
    ) -> Result<Admission, MembershipError> {
        let meeting = self.meeting(room).await?;
        if meeting.ended {
            return Err(MembershipError::MeetingEnded);
        }
        let grants = &candidate.grants;
        let is_host = meeting.host_id == candidate.user || grants.role == Role::Host;
        let co_host = !is_host
            && (grants.role == Role::CoHost
                || self.live().is_co_host(room, &candidate.user).await?);
        let role = if is_host {
            Role::Host
        } else if co_host {
            Role::CoHost
        } else {
            grants.role
        };
        check(grants, role, room, Action::Join)?;
        let moderates = role.moderates();
        if meeting.locked && !moderates {
            return Err(MembershipError::RoomLocked);
        }
        if !is_host && records::is_removed(self, room, &candidate.user).await? {
            return Err(MembershipError::Removed);
        }
        if meeting.require_approval
            && !moderates
            && !self.live().is_approved(room, &candidate.user).await?
        {
            return Err(MembershipError::ApprovalRequired);
        }
        let limit = self.participant_cap(&meeting);
        let peer = LivePeer {
            peer_id: PeerId::random(),
            user_id: candidate.user,
            user_name: candidate.user_name,
            user_picture: candidate.user_picture,
            is_host,
            co_host,
            viewer: candidate.grants.receives_only(),
            audio_enabled: candidate.audio_enabled && candidate.grants.can_publish_audio,
            video_enabled: candidate.video_enabled && candidate.grants.can_publish_video,
            screen_sharing: false,
            joined_at: Utc::now(),
        };
        let admitted = self.live().admit(room, peer.clone(), limit).await?;
        self.app()
            .monitor
            .admitted(room, &peer.peer_id, meeting.topology.as_str());
        let mut replaced = Vec::with_capacity(admitted.replaced.len());
        for old in admitted.replaced {
            replaced.push(self.departed(room, old, LeaveWhy::Replaced).await);
        }
        Ok(Admission {
            room: room.clone(),
            meeting,
            peer,
            replaced,
            present: admitted.present,
        })
    }

    /// Write the admitted join to the history. If the meeting ended (or was deleted), or
    /// the host removed the user, since [`Membership::admit`] read it, the admission is
    /// undone: otherwise the connection would hold a seat, and its history row stay
    /// open, in a meeting that is gone.
    pub async fn confirm(&self, admission: &Admission) -> Result<(), Refusal> {
        let room = &admission.room;
        match records::joined(self, room, &admission.peer, admission.present).await {
            Ok(()) => Ok(()),
            Err(error) => {
                let undone = self
                    .leave(room, &admission.peer.peer_id, LeaveWhy::Refused)
                    .await;
                Err(Refusal { error, undone })
            }
        }
    }
}
