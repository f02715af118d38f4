//! The host's meeting-wide controls that change the meeting itself: locking it (no new
//! joins but the host's and co-hosts', whatever link or token a joiner has), and making
//! a participant co-host or taking that back.

use chrono::Utc;
use proto::{RoomId, UserId};

use super::{Membership, MembershipError};
use crate::access::{Action, check_role};
use crate::live::{LiveChange, LivePeer};
use crate::state::MeetingEvent;
use crate::store::{MeetingStatus, MeetingUpdate};

impl Membership {
    /// The host `by` locks or unlocks `room`: stored in the meeting's settings
    /// (`lockRoom`, the setting [`Membership::admit`] checks), and announced as any
    /// change of the meeting is (`meeting:updated`).
    pub async fn set_locked(
        &self,
        room: &RoomId,
        by: &LivePeer,
        locked: bool,
    ) -> Result<(), MembershipError> {
        check_role(by.role(), Action::HostLock)?;
        let store = &self.app().store;
        let meeting = store
            .get_meeting(room)
            .await
            .map_err(MembershipError::Store)?
            .ok_or_else(|| MembershipError::NotFound(room.clone()))?;
        if meeting.status == MeetingStatus::Ended {
            return Err(MembershipError::MeetingEnded);
        }
        let mut settings = meeting.settings;
        settings.lock_room = locked;
        let update = MeetingUpdate {
            settings: Some(settings),
            ..MeetingUpdate::default()
        };
        let updated = store
            .update_meeting(room, update, Utc::now())
            .await
            .map_err(MembershipError::Store)?
            .ok_or_else(|| MembershipError::NotFound(room.clone()))?;
        self.app().publish(MeetingEvent::Updated(Box::new(updated)));
        Ok(())
    }
}

impl Membership {
    /// The host `by` makes `user` co-host of `room` (`on`) or takes it back: remembered
    /// for the user's later connections, and set on each present one. Returns them as
    /// they are now (the caller tells the meeting and moves their sockets in or out of
    /// the hosts' channel).
    pub async fn set_co_host(
        &self,
        room: &RoomId,
        by: &LivePeer,
        user: &UserId,
        on: bool,
    ) -> Result<Vec<LivePeer>, MembershipError> {
        check_role(by.role(), Action::SetCoHost)?;
        let targets = self.live().find_user(room, user).await?;
        if targets.is_empty() {
            return Err(MembershipError::PeerNotFound(user.clone()));
        }
        if targets.iter().any(|t| t.is_host) {
            return Err(MembershipError::BadTarget(
                "the host is already the host; co-host is for other participants",
            ));
        }
        self.live().set_co_host(room, user, on).await?;
        let mut changed = Vec::with_capacity(targets.len());
        for t in &targets {
            if let Some(p) = self
                .live()
                .update(room, &t.peer_id, LiveChange::CoHost(on))
                .await?
            {
                changed.push(p);
            }
        }
        Ok(changed)
    }
}
