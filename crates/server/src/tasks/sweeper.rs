//! `MEETING_TTL`: ends meetings that have stayed empty longer than the TTL.

use std::time::Duration;

use chrono::Utc;

use crate::state::{AppState, EndReason, MeetingEvent};

/// How often to look: a quarter of the TTL, so a meeting ends at most 25% late, but
/// not busier than every 50 ms nor lazier than every minute.
pub fn interval(ttl: Duration) -> Duration {
    (ttl / 4).clamp(Duration::from_millis(50), Duration::from_secs(60))
}

/// Runs until shutdown. A failing sweep is logged and retried at the next tick.
pub async fn run(state: AppState) {
    let ttl = state.config.meeting_ttl;
    let mut ticker = tokio::time::interval(interval(ttl));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = state.shutdown.cancelled() => break,
            _ = ticker.tick() => {}
        }
        match state.store.end_idle_meetings(Utc::now(), ttl).await {
            Ok(ended) => {
                for m in ended {
                    tracing::info!(room = %m.room_id, ttl_secs = ttl.as_secs(), "meeting ended: empty longer than MEETING_TTL");
                    let reason = EndReason::Ttl;
                    let hook = crate::webhooks::WebhookEvent::MeetingEnded { reason };
                    state.webhooks.emit(&m.room_id, hook);
                    state.publish(MeetingEvent::Ended {
                        room_id: m.room_id,
                        reason: EndReason::Ttl,
                    });
                }
            }
            Err(e) => tracing::warn!(error = %e, "TTL sweep failed; retrying at the next tick"),
        }
    }
    tracing::debug!("TTL sweeper stopped");
}
