//! Taking a dropped connection's place again (`resume-meeting`).
//!
//! A connection whose socket dropped without closing (a network cut, a heartbeat that
//! timed out) stays in the registry for the grace period (`RECONNECT_GRACE_SECONDS`,
//! held by the signaling); its media stays in the engine. A new socket of the same user
//! that shows the connection's resume token takes its place: same connection id, same
//! media, nothing announced to the others.
//!
//! The token is an HMAC of the meeting, the connection and the user under the service's
//! secret (`JWT_SECRET`), so that any node of a cluster can check a token another node
//! issued without sharing any state, and a connection id seen in a participant list is
//! not enough to take somebody's place.
//!
//! A process that restarted (one node, no Redis: SIGTERM, then started again) has an
//! empty registry. There the token re-creates the connection, same ids, from its
//! history row, which says it existed: the row must be this user's, in this meeting,
//! and open, or closed within the grace period by the previous process (its drain) or
//! by this one's start (the reconciliation after a crash), not by a leave this process
//! saw (a grace period that ran out here); it opens again. The meeting must not have ended, nor the
//! host have removed the user, and the token's grants must still admit the user. The
//! engine has no media for it: the page opens a new media connection ([`Resumed::recreated`]).

use hmac::{Hmac, KeyInit, Mac};
use proto::{PeerId, ResumeToken, RoomId, UserId};
use sha2::Sha256;

use super::{MeetingView, Membership, MembershipError};
use crate::access::{Action, Grants, check};
use crate::live::LivePeer;
use crate::store::StoreError;

/// What a resumed connection needs to show the meeting as it is now.
#[derive(Debug)]
pub struct Resumed {
    pub meeting: MeetingView,
    /// The connection as the registry has it (mute changes made while away included).
    pub me: LivePeer,
    /// Everybody else present.
    pub others: Vec<LivePeer>,
    /// The registry did not have the connection: it was re-created from its history
    /// row (a restarted process). The others were not told it left; they are told it
    /// is present (`participant-joined`), since those that resumed before it did not
    /// find it; and it has no media in the engine.
    pub recreated: bool,
}

/// The connection's own state, as the page says it when resuming (used only to
/// re-create it).
#[derive(Clone, Copy, Debug)]
pub struct PageState<'a> {
    pub grants: &'a Grants,
    pub audio_enabled: bool,
    pub video_enabled: bool,
}

fn mac(secret: &str, room: &RoomId, peer: &PeerId, user: &UserId) -> Hmac<Sha256> {
    // HMAC takes keys of any length: `new_from_slice` cannot fail here.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    // Lengths first, so that no two (room, peer, user) triples share a message.
    for part in [room.as_str(), peer.as_str(), user.as_str()] {
        mac.update(&(part.len() as u64).to_be_bytes());
        mac.update(part.as_bytes());
    }
    mac
}

/// The token that lets `user` resume `peer` in `room`.
pub fn resume_token(secret: &str, room: &RoomId, peer: &PeerId, user: &UserId) -> ResumeToken {
    let tag = mac(secret, room, peer, user).finalize().into_bytes();
    ResumeToken::new(tag.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

/// Whether `token` is the one [`resume_token`] issued for these ids (in constant time).
fn token_matches(
    secret: &str,
    room: &RoomId,
    peer: &PeerId,
    user: &UserId,
    token: &ResumeToken,
) -> bool {
    let text = token.as_str();
    if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return false;
    }
    let bytes: Vec<u8> = (0..32)
        .filter_map(|i| u8::from_str_radix(&text[i * 2..i * 2 + 2], 16).ok())
        .collect();
    mac(secret, room, peer, user).verify_slice(&bytes).is_ok()
}

impl Membership {
    /// The resume token of a connection this node admitted.
    pub fn resume_token(&self, room: &RoomId, peer: &PeerId, user: &UserId) -> ResumeToken {
        resume_token(&self.app().config.jwt_secret, room, peer, user)
    }

    /// Let `user` take `peer`'s place in `room` again. Refused with `NotInMeeting` when
    /// the token is not that connection's, or the connection is gone (the grace period
    /// ran out, the host removed it, the user joined again elsewhere); `MeetingEnded`
    /// when the meeting ended meanwhile.
    pub async fn resume(
        &self,
        room: &RoomId,
        peer: &PeerId,
        user: &UserId,
        token: &ResumeToken,
        page: PageState<'_>,
    ) -> Result<Resumed, MembershipError> {
        let secret = &self.app().config.jwt_secret;
        if !token_matches(secret, room, peer, user, token) {
            return Err(MembershipError::NotInMeeting);
        }
        let meeting = self.meeting(room).await?;
        if meeting.ended {
            return Err(MembershipError::MeetingEnded);
        }
        let (mine, others): (Vec<_>, Vec<_>) = self
            .present(room)
            .await?
            .into_iter()
            .partition(|p| &p.peer_id == peer);
        if !mine.is_empty() {
            let me = mine
                .into_iter()
                .find(|p| &p.user_id == user)
                .ok_or(MembershipError::NotInMeeting)?;
            self.live().adopt(room, me.clone());
            return Ok(Resumed {
                meeting,
                me,
                others,
                recreated: false,
            });
        }
        // The user joined again meanwhile (another tab, a reload): that one stays.
        if others.iter().any(|p| &p.user_id == user) {
            return Err(MembershipError::NotInMeeting);
        }
        self.recreate(room, peer, user, meeting, others, page).await
    }

    /// The connection from its history row, into the registry again (see the module doc).
    async fn recreate(
        &self,
        room: &RoomId,
        peer: &PeerId,
        user: &UserId,
        meeting: MeetingView,
        others: Vec<LivePeer>,
        page: PageState<'_>,
    ) -> Result<Resumed, MembershipError> {
        let now = chrono::Utc::now();
        let grace = chrono::Duration::from_std(self.app().config.reconnect_grace)
            .unwrap_or_else(|_| chrono::Duration::zero());
        let record = self
            .app()
            .store
            .reopen_participant(room, peer, user, (now - grace, self.app().started_at), now)
            .await
            .map_err(|e| match e {
                StoreError::MeetingClosed => MembershipError::MeetingEnded,
                StoreError::UserRemoved => MembershipError::Removed,
                other => MembershipError::Store(other),
            })?
            .ok_or(MembershipError::NotInMeeting)?;
        let grants = page.grants;
        let is_host = record.is_host;
        let co_host = !is_host && self.live().is_co_host(room, user).await?;
        let role = if is_host {
            proto::Role::Host
        } else if co_host {
            proto::Role::CoHost
        } else {
            grants.role
        };
        check(grants, role, room, Action::Join)?;
        let me = LivePeer {
            peer_id: peer.clone(),
            user_id: user.clone(),
            user_name: record.user_name,
            user_picture: record.user_picture,
            is_host,
            co_host,
            viewer: grants.receives_only(),
            audio_enabled: page.audio_enabled && grants.can_publish_audio,
            video_enabled: page.video_enabled && grants.can_publish_video,
            screen_sharing: false,
            joined_at: record.joined_at,
        };
        let limit = self.participant_cap(&meeting);
        let admitted = match self.live().admit(room, me.clone(), limit).await {
            Ok(a) => a,
            Err(e) => {
                // No seat (or no registry): the row closes again, as it was.
                super::records::left(self, room, &me, None).await;
                return Err(e.into());
            }
        };
        for old in admitted.replaced {
            // A join of the same user that raced this resume: the resume wins, as a
            // later join would.
            self.departed(room, old, super::LeaveWhy::Replaced).await;
        }
        self.app()
            .monitor
            .admitted(room, &me.peer_id, meeting.topology.as_str());
        tracing::info!(room = %room, peer = %peer, "re-created a resumed connection from its history row");
        Ok(Resumed {
            meeting,
            me,
            others,
            recreated: true,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_opens_only_its_own_connection() {
        let (room, peer, user) = (RoomId::from("R"), PeerId::from("p_1"), UserId::from("ann"));
        let t = resume_token("s3cret", &room, &peer, &user);
        assert!(token_matches("s3cret", &room, &peer, &user, &t));
        assert!(!token_matches("other", &room, &peer, &user, &t));
        assert!(!token_matches(
            "s3cret",
            &room,
            &PeerId::from("p_2"),
            &user,
            &t
        ));
        assert!(!token_matches(
            "s3cret",
            &room,
            &peer,
            &UserId::from("bob"),
            &t
        ));
        assert!(!token_matches(
            "s3cret",
            &RoomId::from("S"),
            &peer,
            &user,
            &t
        ));
        assert!(!token_matches(
            "s3cret",
            &room,
            &peer,
            &user,
            &ResumeToken::from("zz")
        ));
    }
}
