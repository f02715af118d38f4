//! One seat of a soak meeting: a participant after another, each cycle a new user who
//! joins, publishes, stays, and leaves one of three ways.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use proto::ErrorCode;
use proto::signaling::SfuAnswerData;
use rand::Rng;
use rand::rngs::StdRng;
use serde_json::{Value, json};
use tokio::sync::watch;

use super::{Counters, REQUEST_TIMEOUT, SoakConfig};
use crate::engine::{Command, MediaThread};
use crate::rest::Rest;
use crate::scenario::{self, Scenario};
use crate::sio::{ServerEvent, SioClient, refusal};

/// How a cycle ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Exit {
    /// `leave-meeting`, then a clean close.
    Leave,
    /// The TCP connection dropped while in the meeting.
    DropAfterJoin,
    /// The TCP connection dropped right after sending `join-meeting`.
    DropMidJoin,
}

impl Exit {
    fn draw(rng: &mut StdRng) -> Exit {
        match rng.random_range(0..10) {
            0..5 => Exit::Leave,
            5..8 => Exit::DropAfterJoin,
            _ => Exit::DropMidJoin,
        }
    }
}

/// One seat of one meeting: a participant after another.
pub(super) struct Seat {
    pub(super) room: String,
    pub(super) name: String,
    pub(super) user_prefix: String,
    pub(super) thread: MediaThread,
    /// Index for the media thread's report.
    pub(super) participant: usize,
    pub(super) rest: Rest,
    pub(super) config: SoakConfig,
    pub(super) counters: Arc<Counters>,
    pub(super) rng: StdRng,
}

impl Seat {
    pub(super) async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let mut cycle = 0u64;
        while !*stop.borrow() {
            cycle += 1;
            self.counters.cycles.fetch_add(1, Ordering::Relaxed);
            let exit = Exit::draw(&mut self.rng);
            if let Err(e) = self.cycle(cycle, exit, &mut stop).await {
                if refusal(&e) == Some(ErrorCode::RoomFull) {
                    self.counters.room_full.fetch_add(1, Ordering::Relaxed);
                } else {
                    self.counters.join_errors.fetch_add(1, Ordering::Relaxed);
                    self.counters.error(format!("{}: {e:#}", self.name));
                }
                // A refused or broken join: back off a little before the next user.
                let _ = tokio::time::timeout(Duration::from_secs(1), stop.changed()).await;
            }
            let pause = Duration::from_millis(self.rng.random_range(100..500));
            let _ = tokio::time::timeout(pause, stop.changed()).await;
        }
    }

    /// One participant: join, stay, leave as `exit` says. The connection is closed (or
    /// dropped) on every path out.
    async fn cycle(
        &mut self,
        cycle: u64,
        exit: Exit,
        stop: &mut watch::Receiver<bool>,
    ) -> anyhow::Result<()> {
        let user = format!("{}-{cycle}", self.user_prefix);
        let token = self.rest.token(&user, &self.name).await?;
        let (client, events) =
            SioClient::connect(&self.config.url, &token, REQUEST_TIMEOUT).await?;
        let join_req = json!({ "roomId": self.room, "userName": self.name });
        if exit == Exit::DropMidJoin {
            // Ask for the ack as a browser would, and drop the connection while the
            // server is still admitting us (somewhere in the first few milliseconds).
            let request = client.request("join-meeting", &join_req, REQUEST_TIMEOUT);
            let wait = Duration::from_millis(self.rng.random_range(0..15));
            let _ = tokio::time::timeout(wait, request).await;
            client.abort();
            self.counters
                .dropped_mid_join
                .fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        let slot = match self.join(&client, join_req).await {
            Ok(slot) => slot,
            Err(e) => {
                client.abort();
                return Err(e);
            }
        };
        self.counters.joined.fetch_add(1, Ordering::Relaxed);
        let dwell = self
            .rng
            .random_range(self.config.dwell.0..=self.config.dwell.1.max(self.config.dwell.0));
        self.stay(&client, events, slot, dwell, stop).await;
        match exit {
            Exit::Leave => {
                let _ = client
                    .request(
                        "leave-meeting",
                        &json!({ "roomId": self.room }),
                        REQUEST_TIMEOUT,
                    )
                    .await;
                client.close();
                self.counters.left_cleanly.fetch_add(1, Ordering::Relaxed);
            }
            Exit::DropAfterJoin | Exit::DropMidJoin => {
                client.abort();
                self.counters
                    .dropped_after_join
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
        let _ = self.thread.send(Command::Remove { slot });
        Ok(())
    }

    /// `join-meeting`, a media peer on the thread, the publishing offer; the peer's slot.
    async fn join(&self, client: &SioClient, join_req: Value) -> anyhow::Result<usize> {
        // socketioxide may drop an event sent right after CONNECT (see scenario.rs):
        // one retry.
        let first = client
            .request("join-meeting", &join_req, Duration::from_secs(3))
            .await;
        let _: Value = match first {
            Ok(ack) => crate::sio::client::parse_ack("join-meeting", ack)?,
            Err(_) => {
                client
                    .call("join-meeting", &join_req, REQUEST_TIMEOUT)
                    .await?
            }
        };
        let plan = Scenario::Meeting.plan(0, &self.config.video, None, None);
        let participant = self.participant;
        let (slot, offer, mids) = self
            .thread
            .ask(|reply| Command::Add {
                participant,
                plan,
                started: Instant::now(),
                reply,
            })
            .await??;
        let sources: std::collections::BTreeMap<String, &str> = [
            (mids.microphone, "microphone"),
            (mids.camera, "camera"),
            (mids.screen, "screen"),
        ]
        .into_iter()
        .collect();
        let answered: anyhow::Result<SfuAnswerData> = client
            .call(
                "sfu-offer",
                &json!({ "roomId": self.room, "sdp": offer, "sources": sources }),
                REQUEST_TIMEOUT,
            )
            .await;
        let applied = match answered {
            Ok(answer) => self
                .thread
                .ask(|reply| Command::Answer {
                    slot,
                    sdp: answer.sdp,
                    reply,
                })
                .await
                .and_then(|r| r),
            Err(e) => Err(e),
        };
        if let Err(e) = applied {
            let _ = self.thread.send(Command::Remove { slot });
            return Err(e);
        }
        Ok(slot)
    }

    /// In the meeting for `dwell` (or until the stop): answer the server's offers.
    async fn stay(
        &self,
        client: &SioClient,
        mut events: tokio::sync::mpsc::UnboundedReceiver<ServerEvent>,
        slot: usize,
        dwell: Duration,
        stop: &mut watch::Receiver<bool>,
    ) {
        let until = tokio::time::Instant::now() + dwell;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(until) => return,
                _ = stop.changed() => return,
                ev = events.recv() => {
                    let Some(ev) = ev else { return };
                    let Some(offer) = ev.decode::<proto::events::ServerOffer>() else {
                        continue;
                    };
                    self.counters.renegotiations.fetch_add(1, Ordering::Relaxed);
                    let answered = match offer {
                        Ok(offer) => scenario::answer_offer(client, &self.thread, &self.room, slot, offer).await,
                        Err(e) => Err(e),
                    };
                    if let Err(e) = answered {
                        self.counters.renegotiation_errors.fetch_add(1, Ordering::Relaxed);
                        self.counters.error(format!("{}: renegotiation: {e:#}", self.name));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    #[test]
    fn exits_are_all_drawn() {
        let mut rng = StdRng::seed_from_u64(7);
        let draws: Vec<Exit> = (0..200).map(|_| Exit::draw(&mut rng)).collect();
        for exit in [Exit::Leave, Exit::DropAfterJoin, Exit::DropMidJoin] {
            assert!(draws.contains(&exit), "{exit:?} never drawn");
        }
    }
}
