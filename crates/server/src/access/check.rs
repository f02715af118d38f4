//! The one table of what each client event needs ([`needs`]), and the check every
//! event passes through ([`check`]): the signaling calls it with the caller's grants
//! and role before it does anything; membership calls [`check_role`] (the same table,
//! the role's part) for the host controls it also offers without a socket.

use proto::{Role, RoomId};

use super::grants::Grants;

/// Every client event that acts on a meeting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    Join,
    Leave,
    SfuOffer,
    SfuAnswer,
    AudioOn,
    AudioOff,
    VideoOn,
    VideoOff,
    ScreenOn,
    ScreenOff,
    ChangeVideoQuality,
    /// The page's report of the remote videos it shows (`tile-views`).
    TileViews,
    Chat,
    RaiseHand,
    Reaction,
    RelayOffer,
    RelayAnswer,
    RelayCandidate,
    HostMute,
    HostMuteAll,
    HostAskUnmute,
    HostStopScreen,
    HostRemove,
    HostAllow,
    HostLock,
    LobbyAdmit,
    LobbyDeny,
    RecordingStart,
    RecordingStop,
    SetCoHost,
    EndMeeting,
    /// Making, listing and revoking invite links.
    Invites,
}

impl Action {
    pub const ALL: [Action; 32] = [
        Action::Join,
        Action::Leave,
        Action::SfuOffer,
        Action::SfuAnswer,
        Action::AudioOn,
        Action::AudioOff,
        Action::VideoOn,
        Action::VideoOff,
        Action::ScreenOn,
        Action::ScreenOff,
        Action::ChangeVideoQuality,
        Action::TileViews,
        Action::Chat,
        Action::RaiseHand,
        Action::Reaction,
        Action::RelayOffer,
        Action::RelayAnswer,
        Action::RelayCandidate,
        Action::HostMute,
        Action::HostMuteAll,
        Action::HostAskUnmute,
        Action::HostStopScreen,
        Action::HostRemove,
        Action::HostAllow,
        Action::HostLock,
        Action::LobbyAdmit,
        Action::LobbyDeny,
        Action::RecordingStart,
        Action::RecordingStop,
        Action::SetCoHost,
        Action::EndMeeting,
        Action::Invites,
    ];

    /// The Socket.IO event (for the toggles: with the direction), for messages.
    pub fn event(self) -> &'static str {
        match self {
            Action::Join => "join-meeting",
            Action::Leave => "leave-meeting",
            Action::SfuOffer => "sfu-offer",
            Action::SfuAnswer => "sfu-answer",
            Action::AudioOn => "toggle-audio on",
            Action::AudioOff => "toggle-audio off",
            Action::VideoOn => "toggle-video on",
            Action::VideoOff => "toggle-video off",
            Action::ScreenOn => "toggle-screen-share on",
            Action::ScreenOff => "toggle-screen-share off",
            Action::ChangeVideoQuality => "change-video-quality",
            Action::TileViews => "tile-views",
            Action::Chat => "meeting-chat-message",
            Action::RaiseHand => "raise-hand",
            Action::Reaction => "reaction",
            Action::RelayOffer => "webrtc-offer",
            Action::RelayAnswer => "webrtc-answer",
            Action::RelayCandidate => "ice-candidate",
            Action::HostMute => "host-mute",
            Action::HostMuteAll => "host-mute-all",
            Action::HostAskUnmute => "host-ask-unmute",
            Action::HostStopScreen => "host-stop-screen",
            Action::HostRemove => "host-remove",
            Action::HostAllow => "host-allow",
            Action::HostLock => "host-lock",
            Action::LobbyAdmit => "lobby-admit",
            Action::LobbyDeny => "lobby-deny",
            Action::RecordingStart => "recording-start",
            Action::RecordingStop => "recording-stop",
            Action::SetCoHost => "host-set-co-host",
            Action::EndMeeting => "end-meeting",
            Action::Invites => "invite-create / invite-list / invite-revoke",
        }
    }
}

/// A right an event may need: a grant of the token, or a role in the meeting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Grant {
    Meetings,
    CanPublishAudio,
    CanPublishVideo,
    CanPublishScreen,
    CanSubscribe,
    CanChat,
    /// The host or a co-host.
    CoHost,
    /// The host only.
    Host,
}

impl Grant {
    /// The name clients see (`error.grant`): the claim's field, or the role.
    pub fn as_str(self) -> &'static str {
        match self {
            Grant::Meetings => "meetings",
            Grant::CanPublishAudio => "canPublishAudio",
            Grant::CanPublishVideo => "canPublishVideo",
            Grant::CanPublishScreen => "canPublishScreen",
            Grant::CanSubscribe => "canSubscribe",
            Grant::CanChat => "canChat",
            Grant::CoHost => "coHost",
            Grant::Host => "host",
        }
    }

    fn held(self, grants: &Grants, role: Role, room: &RoomId) -> bool {
        match self {
            Grant::Meetings => grants.meetings.allows(room),
            Grant::CanPublishAudio => grants.can_publish_audio,
            Grant::CanPublishVideo => grants.can_publish_video,
            Grant::CanPublishScreen => grants.can_publish_screen,
            Grant::CanSubscribe => grants.can_subscribe,
            Grant::CanChat => grants.can_chat,
            Grant::CoHost => role.moderates(),
            Grant::Host => role == Role::Host,
        }
    }
}

/// What an event needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// Being in the meeting is enough.
    Nothing,
    Grant(Grant),
    /// The publishing grant of each medium the event's SDP sends ([`check_media`]); the
    /// handler reads the SDP and checks it, this table says that it must.
    OfferedMedia,
}

/// The table. Turning one's own microphone, camera or screen off never needs a grant;
/// co-hosts have every host control but ending the meeting and making or unmaking
/// co-hosts.
pub fn needs(action: Action) -> Need {
    use Action as A;
    match action {
        A::Join => Need::Grant(Grant::Meetings),
        // A viewer may raise its hand too: it is how it asks to speak.
        A::Leave | A::AudioOff | A::VideoOff | A::ScreenOff | A::RelayCandidate | A::RaiseHand => {
            Need::Nothing
        }
        A::ChangeVideoQuality | A::TileViews | A::SfuAnswer => Need::Grant(Grant::CanSubscribe),
        A::SfuOffer | A::RelayOffer | A::RelayAnswer => Need::OfferedMedia,
        A::AudioOn => Need::Grant(Grant::CanPublishAudio),
        A::VideoOn => Need::Grant(Grant::CanPublishVideo),
        A::ScreenOn => Need::Grant(Grant::CanPublishScreen),
        // A reaction is a message to everyone, as chat is.
        A::Chat | A::Reaction => Need::Grant(Grant::CanChat),
        A::HostMute
        | A::HostMuteAll
        | A::HostAskUnmute
        | A::HostStopScreen
        | A::HostRemove
        | A::HostAllow
        | A::HostLock
        | A::LobbyAdmit
        | A::LobbyDeny
        | A::RecordingStart
        | A::RecordingStop
        | A::Invites => Need::Grant(Grant::CoHost),
        A::SetCoHost | A::EndMeeting => Need::Grant(Grant::Host),
    }
}

/// An event refused for want of a grant (`FORBIDDEN`, with the grant's name).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub struct Denied {
    pub grant: Grant,
    pub action: Action,
}

impl std::fmt::Display for Denied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let event = self.action.event();
        match self.grant {
            Grant::Host => write!(f, "only the host can use {event}"),
            Grant::CoHost => write!(f, "only the host or a co-host can use {event}"),
            Grant::Meetings => write!(f, "your token does not grant this meeting"),
            g => write!(f, "your token does not grant `{}` ({event})", g.as_str()),
        }
    }
}

/// May a bearer of `grants`, with `role` in `room`, do `action`? For
/// [`Need::OfferedMedia`] this passes: the handler checks the SDP with [`check_media`].
pub fn check(grants: &Grants, role: Role, room: &RoomId, action: Action) -> Result<(), Denied> {
    match needs(action) {
        Need::Grant(grant) if !grant.held(grants, role, room) => Err(Denied { grant, action }),
        _ => Ok(()),
    }
}

/// The role's part of [`check`] (for membership, which has no token): the host
/// controls.
pub fn check_role(role: Role, action: Action) -> Result<(), Denied> {
    match needs(action) {
        Need::Grant(grant @ (Grant::CoHost | Grant::Host)) => {
            let held = match grant {
                Grant::Host => role == Role::Host,
                _ => role.moderates(),
            };
            if held {
                Ok(())
            } else {
                Err(Denied { grant, action })
            }
        }
        _ => Ok(()),
    }
}

/// One medium an offer sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Medium {
    Audio,
    Video,
    Screen,
    /// A mesh video m-line: the page sends its camera or, by replacing the track, its
    /// screen on it; either grant lets it send.
    CameraOrScreen,
}

/// [`Need::OfferedMedia`]: every medium sent must be granted.
pub fn check_media(grants: &Grants, action: Action, sent: &[Medium]) -> Result<(), Denied> {
    for m in sent {
        let (ok, grant) = match m {
            Medium::Audio => (grants.can_publish_audio, Grant::CanPublishAudio),
            Medium::Video => (grants.can_publish_video, Grant::CanPublishVideo),
            Medium::Screen => (grants.can_publish_screen, Grant::CanPublishScreen),
            Medium::CameraOrScreen => (
                grants.can_publish_video || grants.can_publish_screen,
                Grant::CanPublishVideo,
            ),
        };
        if !ok {
            return Err(Denied { grant, action });
        }
    }
    Ok(())
}

/// An SDP that receives needs `canSubscribe`.
pub fn check_receiving(grants: &Grants, action: Action, receives: bool) -> Result<(), Denied> {
    if receives && !grants.can_subscribe {
        return Err(Denied {
            grant: Grant::CanSubscribe,
            action,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::grants::Meetings;

    fn room() -> RoomId {
        RoomId::from("ABCD-EFG-HJK")
    }

    /// Every event against every role's default grants, the host controls by role, and
    /// each token flag turned off alone: what is refused, and for which grant.
    #[test]
    fn every_event_against_every_role() {
        let mine = room();
        for action in Action::ALL {
            for role in Role::ALL {
                let grants = Grants::for_role(role, Meetings::All);
                let got = check(&grants, role, &mine, action).map_err(|d| d.grant);
                let expected = match (needs(action), role) {
                    (Need::Grant(Grant::Host), r) if r != Role::Host => Err(Grant::Host),
                    (Need::Grant(Grant::CoHost), Role::Participant | Role::Viewer) => {
                        Err(Grant::CoHost)
                    }
                    (Need::Grant(g @ Grant::CanPublishAudio), Role::Viewer)
                    | (Need::Grant(g @ Grant::CanPublishVideo), Role::Viewer)
                    | (Need::Grant(g @ Grant::CanPublishScreen), Role::Viewer) => Err(g),
                    _ => Ok(()),
                };
                assert_eq!(got, expected, "{action:?} as {role:?}");
                assert_eq!(
                    check_role(role, action).map_err(|d| d.grant),
                    expected.or_else(|g| match g {
                        Grant::Host | Grant::CoHost => Err(g),
                        _ => Ok(()),
                    }),
                    "{action:?} as {role:?}, by role"
                );
            }
        }
    }

    #[test]
    fn each_flag_refuses_exactly_its_events() {
        let mine = room();
        type TurnOff = fn(&mut Grants);
        let off: [(Grant, TurnOff); 5] = [
            (Grant::CanPublishAudio, |g| g.can_publish_audio = false),
            (Grant::CanPublishVideo, |g| g.can_publish_video = false),
            (Grant::CanPublishScreen, |g| g.can_publish_screen = false),
            (Grant::CanSubscribe, |g| g.can_subscribe = false),
            (Grant::CanChat, |g| g.can_chat = false),
        ];
        for (grant, turn_off) in off {
            let mut grants = Grants::default();
            turn_off(&mut grants);
            for action in Action::ALL {
                let got = check(&grants, Role::Host, &mine, action).map_err(|d| d.grant);
                let expected = if needs(action) == Need::Grant(grant) {
                    Err(grant)
                } else {
                    Ok(())
                };
                assert_eq!(got, expected, "{action:?} without {grant:?}");
            }
        }
        // A meeting outside the list: only the join is refused (nothing else can happen
        // without it).
        let scoped = Grants::for_role(Role::Participant, Meetings::Only(vec![mine.clone()]));
        let other = RoomId::from("BBBB-BBB-BBB");
        assert_eq!(
            check(&scoped, Role::Participant, &other, Action::Join).map_err(|d| d.grant),
            Err(Grant::Meetings)
        );
        assert_eq!(
            check(&scoped, Role::Participant, &mine, Action::Join),
            Ok(())
        );
    }

    #[test]
    fn offered_media_need_their_publishing_grants() {
        let viewer = Grants::for_role(Role::Viewer, Meetings::All);
        assert_eq!(check_media(&viewer, Action::SfuOffer, &[]), Ok(()));
        for (m, g) in [
            (Medium::Audio, Grant::CanPublishAudio),
            (Medium::Video, Grant::CanPublishVideo),
            (Medium::Screen, Grant::CanPublishScreen),
            (Medium::CameraOrScreen, Grant::CanPublishVideo),
        ] {
            assert_eq!(
                check_media(&viewer, Action::SfuOffer, &[m]).map_err(|d| d.grant),
                Err(g)
            );
        }
        let screen_only = Grants {
            can_publish_screen: true,
            ..viewer
        };
        assert_eq!(
            check_media(&screen_only, Action::RelayOffer, &[Medium::CameraOrScreen]),
            Ok(())
        );
        assert!(check_media(&screen_only, Action::SfuOffer, &[Medium::Video]).is_err());
    }
}
