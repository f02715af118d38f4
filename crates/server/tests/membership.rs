//! The membership rules without a socket: admission (the cap, an ended or locked
//! meeting, the lobby of one that requires approval, a removal that holds until the host allows), replacement of a user's earlier
//! connection, leaving, the host's removal and the end of the meeting for everyone,
//! with the history they write.
//!
//! Each scenario runs on SQLite with the in-process registry; the same scenarios run on
//! PostgreSQL and on the Redis registry where those are running (`--include-ignored`).

mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use meeting_service::access::{Grant, Grants, Meetings};
use meeting_service::cluster::Cluster;
use meeting_service::live::RedisLive;
use meeting_service::live::{LiveRooms, LobbyEntry, Pick};
use meeting_service::media::{LocalMedia, MediaRouter};
use meeting_service::membership::{
    Admission, Candidate, LeaveWhy, Membership, MembershipError, Refusal,
};
use meeting_service::state::{AppState, EndReason};
use meeting_service::store::{MeetingSettings, MeetingStatus, NewMeeting, Store, Topology};
use proto::{PeerId, Role, RoomId, UserId};
use tokio_util::sync::CancellationToken;

use common::{Db, config};

/// Where a scenario's meetings and live registry are.
#[derive(Clone, Copy, Debug)]
enum Backing {
    Sqlite,
    Postgres,
    Redis,
}

struct Fixture {
    m: Membership,
    cluster: Option<Cluster>,
    _db: Db,
}

impl Fixture {
    async fn new(backing: Backing) -> Fixture {
        let db = match backing {
            Backing::Postgres => Db::postgres().await,
            Backing::Sqlite | Backing::Redis => Db::sqlite(),
        };
        let config = config(&db.url(), &[]);
        let store = Store::connect(&config.database_url)
            .await
            .expect("database");
        let app = AppState::new(config, store, None, CancellationToken::new()).expect("state");
        let (m, cluster) = match backing {
            Backing::Sqlite | Backing::Postgres => (Membership::new(app), None),
            Backing::Redis => {
                let cluster = common::redis_cluster().await;
                let live = LiveRooms::Redis(Arc::new(RedisLive::new(
                    cluster.clone(),
                    Duration::from_secs(600),
                )));
                let media = MediaRouter::Local(LocalMedia::new(None));
                (Membership::with_parts(app, live, media), Some(cluster))
            }
        };
        Fixture {
            m,
            cluster,
            _db: db,
        }
    }

    /// A meeting hosted by `host`, for at most `cap` participants.
    async fn meeting(&self, host: &str, cap: u32, settings: MeetingSettings) -> RoomId {
        let new = NewMeeting {
            title: "Standup".into(),
            description: String::new(),
            host_id: UserId::from(host),
            max_participants: cap,
            settings,
            topology: Topology::Sfu,
            scheduled_at: None,
        };
        self.m
            .app()
            .store
            .create_meeting(new, Utc::now())
            .await
            .expect("create meeting")
            .room_id
    }

    /// Admit and confirm, as a `join-meeting` does.
    async fn join(&self, room: &RoomId, user: &str) -> Result<Admission, MembershipError> {
        let admission = self.m.admit(room, candidate(user)).await?;
        match self.m.confirm(&admission).await {
            Ok(()) => Ok(admission),
            Err(Refusal { error, .. }) => Err(error),
        }
    }

    async fn present(&self, room: &RoomId) -> Vec<String> {
        let peers = self.m.present(room).await.expect("registry");
        peers.iter().map(|p| p.user_id.to_string()).collect()
    }

    /// The users whose history rows are still open.
    async fn open_rows(&self, room: &RoomId) -> Vec<String> {
        let rows = self
            .m
            .app()
            .store
            .present_participants(room)
            .await
            .expect("history");
        rows.iter().map(|r| r.user_id.to_string()).collect()
    }

    async fn finish(self) {
        if let Some(cluster) = &self.cluster {
            common::drop_redis_keys(cluster).await;
        }
        self.m.app().store.close().await;
    }
}

fn candidate(user: &str) -> Candidate {
    Candidate {
        user: UserId::from(user),
        user_name: format!("User {user}"),
        user_picture: None,
        audio_enabled: true,
        video_enabled: false,
        grants: Default::default(),
    }
}

async fn the_cap_holds_and_a_rejoin_does_not_count(f: Fixture) {
    let room = f.meeting("host", 2, MeetingSettings::default()).await;
    let host = f.join(&room, "host").await.expect("host joins");
    assert!(host.is_host());
    assert_eq!(host.present, 1);
    let bob = f.join(&room, "bob").await.expect("bob joins");
    assert!(!bob.is_host());
    assert_eq!(bob.present, 2);

    let carol = f
        .join(&room, "carol")
        .await
        .expect_err("the meeting is full");
    assert!(
        matches!(carol, MembershipError::RoomFull { limit: 2 }),
        "{carol:?}"
    );
    // The refused join left nothing behind.
    assert_eq!(f.present(&room).await, ["host", "bob"]);
    assert_eq!(f.open_rows(&room).await, ["host", "bob"]);

    // Bob's second connection takes his own seat.
    let again = f.join(&room, "bob").await.expect("bob again");
    assert_eq!(again.present, 2);
    f.finish().await;
}

async fn a_second_connection_replaces_the_first(f: Fixture) {
    let room = f.meeting("host", 10, MeetingSettings::default()).await;
    let first = f.join(&room, "bob").await.expect("first");
    assert!(first.replaced.is_empty());
    let second = f.join(&room, "bob").await.expect("second");
    assert_ne!(first.peer.peer_id, second.peer.peer_id);

    let [old] = second.replaced.as_slice() else {
        panic!("one connection replaced: {:?}", second.replaced)
    };
    assert_eq!(old.peer.peer_id, first.peer.peer_id);
    assert_eq!((old.why, &old.room), (LeaveWhy::Replaced, &room));

    let peers = f.m.present(&room).await.expect("registry");
    let ids: Vec<&PeerId> = peers.iter().map(|p| &p.peer_id).collect();
    assert_eq!(ids, [&second.peer.peer_id]);
    let history =
        f.m.app()
            .store
            .participant_history(&room)
            .await
            .expect("history");
    let rows: Vec<(&PeerId, bool)> = history
        .iter()
        .map(|r| (&r.peer_id, r.left_at.is_some()))
        .collect();
    assert_eq!(
        rows,
        [(&first.peer.peer_id, true), (&second.peer.peer_id, false)]
    );
    f.finish().await;
}

async fn leaving_frees_the_seat_once(f: Fixture) {
    let room = f.meeting("host", 2, MeetingSettings::default()).await;
    f.join(&room, "host").await.expect("host");
    let bob = f.join(&room, "bob").await.expect("bob");

    let gone =
        f.m.leave(&room, &bob.peer.peer_id, LeaveWhy::Left)
            .await
            .expect("bob was in the meeting");
    assert_eq!(
        (gone.why, &gone.peer.peer_id),
        (LeaveWhy::Left, &bob.peer.peer_id)
    );
    // A second leave of the same connection (a disconnect after leave-meeting) finds
    // nothing and writes nothing.
    assert!(
        f.m.leave(&room, &bob.peer.peer_id, LeaveWhy::Disconnected)
            .await
            .is_none()
    );
    assert_eq!(f.present(&room).await, ["host"]);
    assert_eq!(f.open_rows(&room).await, ["host"]);
    // The seat is free again.
    f.join(&room, "carol").await.expect("carol takes the seat");
    f.finish().await;
}

async fn a_removal_holds_until_the_host_allows(f: Fixture) {
    let room = f.meeting("host", 10, MeetingSettings::default()).await;
    let host = f.join(&room, "host").await.expect("host");
    let bob = f.join(&room, "bob").await.expect("bob");
    let bob_user = UserId::from("bob");

    // Only the host removes, and only somebody present.
    let refused =
        f.m.remove_user(&room, &bob.peer, &UserId::from("host"))
            .await
            .expect_err("bob is not the host");
    assert!(matches!(refused, MembershipError::Denied(_)), "{refused:?}");
    let absent =
        f.m.remove_user(&room, &host.peer, &UserId::from("nobody"))
            .await
            .expect_err("nobody is not here");
    assert!(
        matches!(&absent, MembershipError::PeerNotFound(u) if u.as_str() == "nobody"),
        "{absent:?}"
    );

    let removal =
        f.m.remove_user(&room, &host.peer, &bob_user)
            .await
            .expect("host removes bob");
    assert_eq!(removal.targets.len(), 1);
    let [gone] = removal.departures.as_slice() else {
        panic!("bob's connection left: {:?}", removal.departures)
    };
    assert_eq!(
        (gone.why, &gone.peer.peer_id),
        (LeaveWhy::Removed, &bob.peer.peer_id)
    );
    assert_eq!(f.present(&room).await, ["host"]);
    assert_eq!(f.open_rows(&room).await, ["host"]);

    // Held: every join of bob's is refused.
    for _ in 0..2 {
        let e = f.join(&room, "bob").await.expect_err("bob stays out");
        assert!(matches!(e, MembershipError::Removed), "{e:?}");
    }
    // Only the host lets him back.
    let e =
        f.m.allow_user(&room, &bob.peer, &bob_user)
            .await
            .expect_err("not the host");
    assert!(matches!(e, MembershipError::Denied(_)), "{e:?}");
    f.m.allow_user(&room, &host.peer, &bob_user)
        .await
        .expect("host allows bob");
    f.join(&room, "bob").await.expect("bob is back");
    assert_eq!(f.present(&room).await, ["host", "bob"]);
    f.finish().await;
}

async fn the_host_ends_the_meeting_for_everyone(f: Fixture) {
    let room = f.meeting("host", 10, MeetingSettings::default()).await;
    let host = f.join(&room, "host").await.expect("host");
    let bob = f.join(&room, "bob").await.expect("bob");
    f.join(&room, "carol").await.expect("carol");

    let e =
        f.m.end_meeting(&room, &bob.peer)
            .await
            .expect_err("only the host ends it");
    assert!(matches!(e, MembershipError::Denied(_)), "{e:?}");
    assert_eq!(f.present(&room).await.len(), 3);

    f.m.end_meeting(&room, &host.peer).await.expect("host ends");
    let gone = f.m.clear(&room, EndReason::HostEnded).await;
    let mut users: Vec<String> = gone.iter().map(|p| p.user_id.to_string()).collect();
    users.sort();
    assert_eq!(users, ["bob", "carol", "host"]);
    assert!(f.present(&room).await.is_empty());
    assert!(f.open_rows(&room).await.is_empty());
    let meeting =
        f.m.app()
            .store
            .get_meeting(&room)
            .await
            .expect("store")
            .expect("meeting");
    assert_eq!(meeting.status, MeetingStatus::Ended);
    assert_eq!(meeting.end_reason.as_deref(), Some("host-ended"));

    // Nobody gets back in, the host neither.
    for user in ["host", "bob"] {
        let e = f.join(&room, user).await.expect_err("ended");
        assert!(matches!(e, MembershipError::MeetingEnded), "{user}: {e:?}");
    }
    f.finish().await;
}

/// A join admitted just before the meeting ends is undone when its history write finds
/// the meeting ended.
async fn a_join_overtaken_by_the_end_is_undone(f: Fixture) {
    let room = f.meeting("host", 10, MeetingSettings::default()).await;
    let admission = f.m.admit(&room, candidate("bob")).await.expect("admitted");
    assert_eq!(f.present(&room).await, ["bob"]);
    f.m.app()
        .store
        .end_meeting(&room, EndReason::Ttl.as_str(), Utc::now())
        .await
        .expect("end");

    let refusal = f.m.confirm(&admission).await.expect_err("ended meanwhile");
    assert!(
        matches!(refusal.error, MembershipError::MeetingEnded),
        "{:?}",
        refusal.error
    );
    let undone = refusal.undone.expect("the seat was given back");
    assert_eq!(
        (undone.why, &undone.peer.peer_id),
        (LeaveWhy::Refused, &admission.peer.peer_id)
    );
    assert!(f.present(&room).await.is_empty());
    assert!(f.open_rows(&room).await.is_empty());
    f.finish().await;
}

async fn a_locked_meeting_admits_only_its_host(f: Fixture) {
    let settings = MeetingSettings {
        lock_room: true,
        ..MeetingSettings::default()
    };
    let room = f.meeting("host", 10, settings).await;
    let e = f.join(&room, "bob").await.expect_err("locked");
    assert!(matches!(e, MembershipError::RoomLocked), "{e:?}");
    f.join(&room, "host").await.expect("the host gets in");
    let missing =
        f.m.admit(&RoomId::from("NOPE-NOP-NOP"), candidate("bob"))
            .await
            .expect_err("no such meeting");
    assert!(
        matches!(&missing, MembershipError::NotFound(r) if r.as_str() == "NOPE-NOP-NOP"),
        "{missing:?}"
    );
    assert_eq!(f.present(&room).await, ["host"]);
    f.finish().await;
}

fn tickets(waiting: &[LobbyEntry]) -> Vec<String> {
    waiting.iter().map(|w| w.user_id.to_string()).collect()
}

async fn a_meeting_that_requires_approval_waits_for_the_host(f: Fixture) {
    let settings = MeetingSettings {
        require_approval: true,
        ..MeetingSettings::default()
    };
    let room = f.meeting("host", 10, settings).await;
    let host = f.join(&room, "host").await.expect("the host never waits");
    let e = f.join(&room, "bob").await.expect_err("bob must wait");
    assert!(matches!(e, MembershipError::ApprovalRequired), "{e:?}");

    let first = f.m.knock(&room, candidate("bob")).await.expect("bob waits");
    f.m.knock(&room, candidate("carl"))
        .await
        .expect("carl waits");
    // Bob again (another tab): one place, the newest.
    let again = f.m.knock(&room, candidate("bob")).await.expect("bob again");
    assert_eq!(tickets(&again.waiting), ["carl", "bob"]);
    // Waiting holds no seat and is not presence.
    assert_eq!(f.present(&room).await, ["host"]);

    // Only the host decides.
    let mut guest = host.peer.clone();
    guest.is_host = false;
    let pick = Pick::One(again.entry.peer_id.clone());
    let e =
        f.m.decide(&room, &guest, &pick, true)
            .await
            .expect_err("not the host");
    assert!(matches!(e, MembershipError::Denied(_)), "{e:?}");
    // Bob's first ticket was replaced: nothing to decide.
    let stale = Pick::One(first.entry.peer_id.clone());
    let e =
        f.m.decide(&room, &host.peer, &stale, true)
            .await
            .expect_err("replaced ticket");
    assert!(matches!(e, MembershipError::NotWaiting), "{e:?}");

    // Two hosts' pages admit Bob at once: exactly one decision takes him.
    let (a, b) = tokio::join!(
        f.m.decide(&room, &host.peer, &pick, true),
        f.m.decide(&room, &host.peer, &pick, true)
    );
    let taken = [a, b]
        .into_iter()
        .map(|r| r.map(|d| d.taken.len()).unwrap_or(0))
        .sum::<usize>();
    assert_eq!(taken, 1);
    f.join(&room, "bob").await.expect("admitted bob gets in");
    // and gets back in after leaving, for the rest of the meeting.
    let bob = f.m.present(&room).await.expect("registry");
    let bob = bob
        .iter()
        .find(|p| p.user_id.as_str() == "bob")
        .expect("bob");
    f.m.leave(&room, &bob.peer_id, LeaveWhy::Left)
        .await
        .expect("left");
    f.join(&room, "bob")
        .await
        .expect("bob rejoins without waiting");

    // Deny everyone left: Carl is out of the lobby and still may not join.
    let denied =
        f.m.decide(&room, &host.peer, &Pick::All, false)
            .await
            .expect("deny all");
    assert_eq!(tickets(&denied.taken), ["carl"]);
    assert!(denied.waiting.is_empty());
    let e = f.join(&room, "carl").await.expect_err("denied carl");
    assert!(matches!(e, MembershipError::ApprovalRequired), "{e:?}");

    // A waiting connection that goes away leaves the lobby once.
    let dora =
        f.m.knock(&room, candidate("dora"))
            .await
            .expect("dora waits");
    let after =
        f.m.leave_lobby(&room, &dora.entry.peer_id)
            .await
            .expect("leave");
    assert_eq!(after.map(|w| w.len()), Some(0));
    assert!(
        f.m.leave_lobby(&room, &dora.entry.peer_id)
            .await
            .expect("again")
            .is_none()
    );

    // The meeting ends: the lobby empties, and the approvals go with it.
    f.m.knock(&room, candidate("erin"))
        .await
        .expect("erin waits");
    let gone = f.m.live().clear_lobby(&room).await.expect("clear");
    assert_eq!(tickets(&gone), ["erin"]);
    assert!(
        !f.m.live()
            .is_approved(&room, &UserId::from("bob"))
            .await
            .expect("approved?")
    );
    assert!(f.m.waiting(&room).await.expect("lobby").is_empty());
    f.finish().await;
}

async fn the_host_locks_and_unlocks_the_meeting(f: Fixture) {
    let room = f.meeting("host", 10, MeetingSettings::default()).await;
    let host = f.join(&room, "host").await.expect("host");
    let bob = f.join(&room, "bob").await.expect("bob");
    let e =
        f.m.set_locked(&room, &bob.peer, true)
            .await
            .expect_err("bob is not the host");
    assert!(matches!(e, MembershipError::Denied(_)), "{e:?}");
    f.m.set_locked(&room, &host.peer, true).await.expect("lock");
    let e = f.join(&room, "carl").await.expect_err("locked");
    assert!(matches!(e, MembershipError::RoomLocked), "{e:?}");
    assert_eq!(f.present(&room).await, ["host", "bob"], "those in stay");
    f.m.set_locked(&room, &host.peer, false)
        .await
        .expect("unlock");
    f.join(&room, "carl")
        .await
        .expect("carl gets in once unlocked");
    f.finish().await;
}

/// The host makes bob co-host: he locks the meeting, decides the lobby, and stays co-host
/// when he reconnects; he cannot end the meeting or make co-hosts. Demoted, he is a
/// participant again, also after a reconnect.
async fn a_co_host_moderates_until_demoted(f: Fixture) {
    let settings = MeetingSettings {
        require_approval: true,
        ..MeetingSettings::default()
    };
    let room = f.meeting("host", 10, settings).await;
    let host = f.join(&room, "host").await.expect("host");
    f.m.knock(&room, candidate("bob")).await.expect("bob waits");
    f.m.decide(&room, &host.peer, &Pick::All, true)
        .await
        .expect("host admits bob");
    let bob = f.join(&room, "bob").await.expect("bob");
    let e =
        f.m.set_co_host(&room, &bob.peer, &UserId::from("bob"), true)
            .await
            .expect_err("only the host makes co-hosts");
    assert!(matches!(e, MembershipError::Denied(_)), "{e:?}");
    let e =
        f.m.set_co_host(&room, &host.peer, &UserId::from("host"), true)
            .await
            .expect_err("the host is not made co-host");
    assert!(matches!(e, MembershipError::BadTarget(_)), "{e:?}");

    let changed =
        f.m.set_co_host(&room, &host.peer, &UserId::from("bob"), true)
            .await
            .expect("host promotes bob");
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0].role(), Role::CoHost);
    let bob =
        f.m.current(&room, &bob.peer.peer_id)
            .await
            .expect("registry")
            .expect("bob");
    assert_eq!(bob.role(), Role::CoHost);

    // What a co-host may do.
    f.m.knock(&room, candidate("carol"))
        .await
        .expect("carol waits");
    let decision =
        f.m.decide(&room, &bob, &Pick::All, false)
            .await
            .expect("the co-host denies carol");
    assert_eq!(decision.taken.len(), 1);
    f.m.set_locked(&room, &bob, true)
        .await
        .expect("co-host locks");
    f.m.set_locked(&room, &bob, false)
        .await
        .expect("co-host unlocks");
    let e =
        f.m.end_meeting(&room, &bob)
            .await
            .expect_err("co-hosts do not end");
    assert!(matches!(e, MembershipError::Denied(_)), "{e:?}");

    // Reconnecting keeps the role; demoted, the next connection is a participant.
    let again = f.join(&room, "bob").await.expect("bob reconnects");
    assert_eq!(again.peer.role(), Role::CoHost);
    f.m.set_co_host(&room, &host.peer, &UserId::from("bob"), false)
        .await
        .expect("host demotes bob");
    let now =
        f.m.current(&room, &again.peer.peer_id)
            .await
            .expect("registry")
            .expect("bob");
    assert_eq!(now.role(), Role::Participant);
    let e =
        f.m.set_locked(&room, &now, true)
            .await
            .expect_err("no longer");
    assert!(matches!(e, MembershipError::Denied(_)), "{e:?}");
    let last = f.join(&room, "bob").await.expect("bob reconnects");
    assert_eq!(last.peer.role(), Role::Participant);
    f.finish().await;
}

/// A token's grants at admission: a meeting outside its list is refused, a viewer is
/// admitted as a viewer with its microphone and camera off whatever it asked.
async fn grants_decide_admission_and_role(f: Fixture) {
    let room = f.meeting("host", 10, MeetingSettings::default()).await;
    let other = f.meeting("host", 10, MeetingSettings::default()).await;
    let scoped = Candidate {
        grants: Grants::for_role(Role::Participant, Meetings::Only(vec![other.clone()])),
        ..candidate("bob")
    };
    let e =
        f.m.admit(&room, scoped.clone())
            .await
            .expect_err("not granted");
    assert!(
        matches!(&e, MembershipError::Denied(d) if d.grant == Grant::Meetings),
        "{e:?}"
    );
    f.m.admit(&other, scoped).await.expect("granted meeting");
    let viewer = Candidate {
        grants: Grants::for_role(Role::Viewer, Meetings::All),
        video_enabled: true,
        ..candidate("vera")
    };
    let v = f.m.admit(&room, viewer).await.expect("viewer");
    assert_eq!(v.peer.role(), Role::Viewer);
    assert!(!v.peer.audio_enabled && !v.peer.video_enabled);
    f.finish().await;
}

/// Each scenario on SQLite with the in-process registry, on PostgreSQL, and with the
/// Redis registry.
macro_rules! scenarios {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            use super::*;
            $(#[tokio::test]
            async fn $name() {
                super::$name(Fixture::new(Backing::Sqlite).await).await;
            })*
        }
        mod postgres {
            use super::*;
            $(#[tokio::test]
            #[ignore = "needs PostgreSQL on 127.0.0.1:5432"]
            async fn $name() {
                super::$name(Fixture::new(Backing::Postgres).await).await;
            })*
        }
        mod redis_registry {
            use super::*;
            $(#[tokio::test]
            #[ignore = "needs Redis on 127.0.0.1:6379"]
            async fn $name() {
                super::$name(Fixture::new(Backing::Redis).await).await;
            })*
        }
    };
}

scenarios!(
    the_cap_holds_and_a_rejoin_does_not_count,
    a_second_connection_replaces_the_first,
    leaving_frees_the_seat_once,
    a_removal_holds_until_the_host_allows,
    the_host_ends_the_meeting_for_everyone,
    a_join_overtaken_by_the_end_is_undone,
    a_locked_meeting_admits_only_its_host,
    a_meeting_that_requires_approval_waits_for_the_host,
    the_host_locks_and_unlocks_the_meeting,
    a_co_host_moderates_until_demoted,
    grants_decide_admission_and_role,
);
