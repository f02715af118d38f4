//! The host's meeting-wide controls that change the meeting itself: locking it (no new
//! joins but the host's, whatever link or token a joiner has).

use chrono::Utc;
use proto::RoomId;

use super::{Membership, MembershipError};
use crate::live::LivePeer;
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
        if !by.is_host {
            return Err(MembershipError::Forbidden("lock the meeting"));
        }
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
