//! The lobby of a meeting that requires approval (`settings.requireApproval`): a
//! candidate who is not the host, and whom the host has not let in yet, waits
//! ([`Membership::knock`]) instead of being admitted; the host admits or denies each
//! waiting connection, or all of them ([`Membership::decide`]). An admitted user's next
//! join passes [`Membership::admit`] for the rest of the meeting. A waiting connection
//! holds no seat and is in none of the meeting's channels, so it receives no media,
//! chat or participant list: every request about the meeting finds it not joined.

use chrono::Utc;
use proto::{PeerId, RoomId};

use super::{Candidate, Membership, MembershipError};
use crate::access::{Action, check_role};
use crate::live::{LivePeer, LobbyEntry, Pick};

/// A connection put in the lobby, and everyone waiting now (for the host's list).
#[derive(Debug)]
pub struct Knock {
    pub entry: LobbyEntry,
    pub waiting: Vec<LobbyEntry>,
}

/// What a host's decision took out of the lobby, and who still waits.
#[derive(Debug)]
pub struct Decision {
    pub taken: Vec<LobbyEntry>,
    pub waiting: Vec<LobbyEntry>,
}

impl Membership {
    /// Put `candidate` in `room`'s lobby, after [`Membership::admit`] answered
    /// [`MembershipError::ApprovalRequired`]. The meeting's rules are checked again here
    /// (it may have ended, or stopped requiring approval, meanwhile), so that a candidate
    /// never waits for a meeting it could not join.
    pub async fn knock(
        &self,
        room: &RoomId,
        candidate: Candidate,
    ) -> Result<Knock, MembershipError> {
        let meeting = self.meeting(room).await?;
        if meeting.ended {
            return Err(MembershipError::MeetingEnded);
        }
        let entry = LobbyEntry {
            peer_id: PeerId::random(),
            user_id: candidate.user,
            user_name: candidate.user_name,
            user_picture: candidate.user_picture,
            asked_at: Utc::now(),
        };
        let waiting = self.live().wait(room, entry.clone()).await?;
        Ok(Knock { entry, waiting })
    }

    /// The host `by` admits or denies the picked waiting connections.
    pub async fn decide(
        &self,
        room: &RoomId,
        by: &LivePeer,
        pick: &Pick,
        admit: bool,
    ) -> Result<Decision, MembershipError> {
        let action = if admit {
            Action::LobbyAdmit
        } else {
            Action::LobbyDeny
        };
        check_role(by.role(), action)?;
        let taken = self.live().decide(room, pick, admit).await?;
        if let (Pick::One(_), true) = (pick, taken.is_empty()) {
            return Err(MembershipError::NotWaiting);
        }
        let waiting = self.live().waiting(room).await?;
        Ok(Decision { taken, waiting })
    }

    /// A waiting connection went away (disconnect, leave, or another join): the
    /// lobby as it is now if it was still waiting, `None` if it was not.
    pub async fn leave_lobby(
        &self,
        room: &RoomId,
        peer: &PeerId,
    ) -> Result<Option<Vec<LobbyEntry>>, MembershipError> {
        if !self.live().leave_lobby(room, peer).await? {
            return Ok(None);
        }
        Ok(Some(self.live().waiting(room).await?))
    }

    /// Who waits in `room`'s lobby now.
    pub async fn waiting(&self, room: &RoomId) -> Result<Vec<LobbyEntry>, MembershipError> {
        Ok(self.live().waiting(room).await?)
    }
}
