//! The Redis live registry against a real Redis (127.0.0.1:6379, or `TEST_REDIS_URL`):
//! the cap under concurrency, replacement of a user's earlier connection, lease expiry
//! of a crashed node's participants, re-sync after the keys are lost, and the lobby
//! shared between nodes.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use meeting_service::cluster::Cluster;
use meeting_service::live::RedisLive;
use meeting_service::live::{LiveChange, LiveError, LivePeer, LiveRooms, LobbyEntry, Pick};
use proto::{PeerId, RoomId, UserId};

fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

async fn cluster() -> Cluster {
    let prefix = format!("ms-test-{}-{}:", std::process::id(), PeerId::random());
    Cluster::connect(&redis_url(), &prefix)
        .await
        .expect("Redis on 127.0.0.1:6379")
}

/// Remove every key of this test's prefix.
async fn cleanup(cluster: &Cluster) {
    let mut conn = cluster.conn.clone();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}*", cluster.prefix))
        .query_async(&mut conn)
        .await
        .unwrap_or_default();
    if !keys.is_empty() {
        let _: Result<(), _> = redis::cmd("DEL").arg(keys).query_async(&mut conn).await;
    }
}

fn peer(user: &str) -> LivePeer {
    LivePeer {
        peer_id: PeerId::random(),
        user_id: UserId::from(user),
        user_name: user.to_owned(),
        user_picture: None,
        is_host: false,
        co_host: false,
        viewer: false,
        audio_enabled: true,
        video_enabled: true,
        screen_sharing: false,
        joined_at: Utc::now(),
    }
}

#[tokio::test]
#[ignore = "needs Redis"]
async fn two_hundred_concurrent_admissions_over_two_nodes_admit_exactly_the_cap() {
    let a = cluster().await;
    let b = Cluster {
        node_id: "other".into(),
        ..a.clone()
    };
    let nodes = [
        Arc::new(RedisLive::new(a.clone(), Duration::from_secs(600))),
        Arc::new(RedisLive::new(b, Duration::from_secs(600))),
    ];
    let room = RoomId::from("CAP");
    let mut tasks = Vec::new();
    for i in 0..200 {
        let live = nodes[i % 2].clone();
        let room = room.clone();
        tasks.push(tokio::spawn(async move {
            live.admit(&room, peer(&format!("u{i}")), 50).await
        }));
    }
    let mut ok = 0;
    let mut full = 0;
    for t in tasks {
        match t.await.expect("task") {
            Ok(_) => ok += 1,
            Err(LiveError::Full { limit: 50 }) => full += 1,
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!((ok, full), (50, 150));
    assert_eq!(nodes[0].peers(&room).await.expect("peers").len(), 50);
    cleanup(&a).await;
}

#[tokio::test]
#[ignore = "needs Redis"]
async fn a_users_second_connection_replaces_the_first_and_updates_are_shared() {
    let c = cluster().await;
    let live = RedisLive::new(c.clone(), Duration::from_secs(600));
    let room = RoomId::from("R");
    let first = peer("ann");
    live.admit(&room, first.clone(), 2).await.expect("first");
    live.admit(&room, peer("ben"), 2).await.expect("ben");
    let again = live.admit(&room, peer("ann"), 2).await.expect("ann again");
    assert_eq!(again.replaced.len(), 1);
    assert_eq!(again.replaced[0].peer_id, first.peer_id);
    let peers = live.peers(&room).await.expect("peers");
    assert_eq!(peers.len(), 2);
    assert!(peers.iter().all(|p| p.peer_id != first.peer_id));

    let ben = peers
        .iter()
        .find(|p| p.user_id.as_str() == "ben")
        .expect("ben")
        .clone();
    let updated = live
        .update(&room, &ben.peer_id, LiveChange::Audio(false))
        .await
        .expect("update")
        .expect("present");
    assert!(!updated.audio_enabled);
    // A refused join leaves the room unchanged.
    assert_eq!(
        live.admit(&room, peer("cy"), 2).await.err(),
        Some(LiveError::Full { limit: 2 })
    );
    assert_eq!(live.peers(&room).await.expect("peers").len(), 2);
    cleanup(&c).await;
}

#[tokio::test]
#[ignore = "needs Redis"]
async fn a_crashed_nodes_participants_expire_and_a_live_node_re_syncs_after_data_loss() {
    let c = cluster().await;
    let live = RedisLive::new(c.clone(), Duration::from_secs(600));
    let room = RoomId::from("X");
    let ghost = peer("ghost");
    {
        // Admitted through a node that then crashes (its registry handle is gone).
        let crashed = RedisLive::new(c.clone(), Duration::from_secs(600));
        crashed.admit(&room, ghost.clone(), 1).await.expect("ghost");
    }
    assert_eq!(
        live.admit(&room, peer("new"), 1).await.err(),
        Some(LiveError::Full { limit: 1 })
    );

    // The ghost's node stopped refreshing it: its lease is in the past.
    let mut conn = c.conn.clone();
    let alive = format!("{}room:X:alive", c.prefix);
    let _: () = redis::cmd("ZADD")
        .arg(&alive)
        .arg(1)
        .arg(ghost.peer_id.as_str())
        .query_async(&mut conn)
        .await
        .expect("zadd");
    let newcomer = peer("new");
    live.admit(&room, newcomer.clone(), 1)
        .await
        .expect("the ghost no longer counts");

    // Redis loses everything (restart without persistence); the node's heartbeat puts
    // its own participants back.
    cleanup(&c).await;
    assert!(live.peers(&room).await.expect("peers").is_empty());
    live.refresh().await.expect("refresh");
    let back = live.peers(&room).await.expect("peers");
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].peer_id, newcomer.peer_id);
    cleanup(&c).await;
}

#[tokio::test]
async fn unreachable_redis_is_a_clear_error() {
    let err = Cluster::connect("redis://127.0.0.1:1", "x:")
        .await
        .expect_err("nothing listens on port 1");
    let text = err.to_string();
    assert!(
        text.contains("unreachable") && text.contains("REDIS_URL"),
        "{text}"
    );
}

/// The lobby is shared: a guest waits through one node, the host decides on the other,
/// and concurrent "admit" decisions over both nodes take each waiting entry once.
#[tokio::test]
#[ignore = "needs Redis"]
async fn the_lobby_is_shared_between_nodes_and_each_entry_is_decided_once() {
    let a = cluster().await;
    let b = Cluster {
        node_id: "other".into(),
        ..a.clone()
    };
    let node_a = LiveRooms::Redis(Arc::new(RedisLive::new(
        a.clone(),
        Duration::from_secs(600),
    )));
    let node_b = LiveRooms::Redis(Arc::new(RedisLive::new(b, Duration::from_secs(600))));
    let room = RoomId::from("LOBBY");
    let entry = |user: &str| LobbyEntry {
        peer_id: PeerId::random(),
        user_id: UserId::from(user),
        user_name: user.to_owned(),
        user_picture: None,
        asked_at: Utc::now(),
    };
    for i in 0..40 {
        node_a
            .wait(&room, entry(&format!("g{i}")))
            .await
            .expect("wait");
    }
    let seen = node_b.waiting(&room).await.expect("waiting");
    assert_eq!(seen.len(), 40);
    // Every entry is admitted twice at once, once per node: one decision takes it.
    let mut tasks = Vec::new();
    for e in &seen {
        for node in [node_a.clone(), node_b.clone()] {
            let (room, pick) = (room.clone(), Pick::One(e.peer_id.clone()));
            tasks.push(tokio::spawn(async move {
                node.decide(&room, &pick, true).await
            }));
        }
    }
    let mut taken = 0;
    for t in tasks {
        taken += t.await.expect("task").expect("decide").len();
    }
    assert_eq!(taken, 40);
    assert!(node_a.waiting(&room).await.expect("waiting").is_empty());
    for i in 0..40 {
        let user = UserId::from(format!("g{i}").as_str());
        assert!(node_a.is_approved(&room, &user).await.expect("approved"));
    }
    assert!(
        !node_b
            .is_approved(&room, &UserId::from("stranger"))
            .await
            .expect("approved")
    );
    cleanup(&a).await;
}
