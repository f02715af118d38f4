//! A meeting's chat history and raised hands in the live registry: the history keeps the
//! newest messages within its count and byte bounds, in order; hands keep the order they
//! went up in (a raised hand raised again keeps its place); the meeting's end forgets
//! both. Each scenario runs on the in-process registry, and on Redis (127.0.0.1:6379, or
//! `TEST_REDIS_URL`) with `--include-ignored`.

mod common;

use std::sync::Arc;
use std::time::Duration;

use meeting_service::cluster::Cluster;
use meeting_service::live::activity::{CHAT_HISTORY_BYTES, CHAT_HISTORY_MESSAGES};
use meeting_service::live::{LiveRooms, RedisLive};
use proto::events::{ChatMessage, RaisedHand};
use proto::{PeerId, RoomId, UserId};

/// The registry to test, and the Redis keys to remove after.
async fn registry(redis: bool) -> (LiveRooms, Option<Cluster>) {
    if !redis {
        return (LiveRooms::local(), None);
    }
    let cluster = common::redis_cluster().await;
    let live = RedisLive::new(cluster.clone(), Duration::from_secs(600));
    (LiveRooms::Redis(Arc::new(live)), Some(cluster))
}

async fn cleanup(cluster: Option<Cluster>) {
    if let Some(cluster) = cluster {
        common::drop_redis_keys(&cluster).await;
    }
}

fn message(n: usize, len: usize) -> ChatMessage {
    ChatMessage {
        user_id: UserId::from("alice"),
        peer_id: PeerId::random(),
        user_name: "Alice".into(),
        message: format!("{n:05} {}", "x".repeat(len)),
        timestamp: "2026-12-01T05:00:00.000Z".into(),
    }
}

fn hand(user: &str) -> RaisedHand {
    RaisedHand {
        user_id: UserId::from(user),
        peer_id: PeerId::random(),
        user_name: user.to_owned(),
        raised_at: "2026-12-01T05:00:00.000Z".into(),
    }
}

fn users(hands: &[RaisedHand]) -> Vec<&str> {
    hands.iter().map(|h| h.user_id.as_str()).collect()
}

async fn history_keeps_the_newest_within_its_bounds(redis: bool) {
    let (live, cluster) = registry(redis).await;
    let room = RoomId::from("HIST");
    assert!(live.chat_history(&room).await.expect("empty").is_empty());

    // Short messages: the count bound holds, the newest kept, oldest first.
    let total = CHAT_HISTORY_MESSAGES + 30;
    for n in 0..total {
        live.remember_chat(&room, &message(n, 10))
            .await
            .expect("remember");
    }
    let kept = live.chat_history(&room).await.expect("history");
    assert_eq!(kept.len(), CHAT_HISTORY_MESSAGES);
    assert!(
        kept[0]
            .message
            .starts_with(&format!("{:05}", total - CHAT_HISTORY_MESSAGES))
    );
    assert!(
        kept.last()
            .expect("one")
            .message
            .starts_with(&format!("{:05}", total - 1))
    );

    // Long messages: the byte bound holds before the count does.
    for n in 0..100 {
        live.remember_chat(&room, &message(10_000 + n, 1990))
            .await
            .expect("remember");
    }
    let kept = live.chat_history(&room).await.expect("history");
    let bytes: usize = kept
        .iter()
        .map(|m| serde_json::to_string(m).expect("json").len())
        .sum();
    assert!(bytes <= CHAT_HISTORY_BYTES, "{bytes} bytes kept");
    assert!(kept.len() < 100 && kept.len() > 10, "{} kept", kept.len());
    assert!(kept.last().expect("one").message.starts_with("10099"));
    let order: Vec<&str> = kept.iter().map(|m| &m.message[..5]).collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted, "oldest first");

    // Another meeting's history is its own; the end of the meeting forgets it.
    assert!(
        live.chat_history(&RoomId::from("OTHER"))
            .await
            .expect("other")
            .is_empty()
    );
    live.clear_activity(&room).await.expect("clear");
    assert!(live.chat_history(&room).await.expect("cleared").is_empty());
    cleanup(cluster).await;
}

async fn hands_keep_the_order_they_went_up_in(redis: bool) {
    let (live, cluster) = registry(redis).await;
    let room = RoomId::from("HANDS");
    let (a, b, c) = (hand("a"), hand("b"), hand("c"));
    live.raise_hand(&room, b.clone()).await.expect("b");
    live.raise_hand(&room, a.clone()).await.expect("a");
    let all = live.raise_hand(&room, c.clone()).await.expect("c");
    assert_eq!(users(&all), ["b", "a", "c"]);
    // Raising again keeps the place.
    let again = live.raise_hand(&room, b.clone()).await.expect("b again");
    assert_eq!(users(&again), ["b", "a", "c"]);

    let lowered = live.lower_hand(&room, &b.peer_id).await.expect("lower b");
    assert_eq!(users(&lowered.expect("b was up")), ["a", "c"]);
    assert!(
        live.lower_hand(&room, &b.peer_id)
            .await
            .expect("lower b again")
            .is_none()
    );
    // Up again: at the back of the queue.
    live.raise_hand(&room, b.clone()).await.expect("b up again");
    assert_eq!(
        users(&live.hands(&room).await.expect("hands")),
        ["a", "c", "b"]
    );

    live.clear_activity(&room).await.expect("clear");
    assert!(live.hands(&room).await.expect("cleared").is_empty());
    cleanup(cluster).await;
}

#[tokio::test]
async fn local_history_keeps_the_newest_within_its_bounds() {
    history_keeps_the_newest_within_its_bounds(false).await;
}

#[tokio::test]
async fn local_hands_keep_the_order_they_went_up_in() {
    hands_keep_the_order_they_went_up_in(false).await;
}

#[tokio::test]
#[ignore = "needs Redis"]
async fn redis_history_keeps_the_newest_within_its_bounds() {
    history_keeps_the_newest_within_its_bounds(true).await;
}

#[tokio::test]
#[ignore = "needs Redis"]
async fn redis_hands_keep_the_order_they_went_up_in() {
    hands_keep_the_order_they_went_up_in(true).await;
}
