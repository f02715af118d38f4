//! [`Sfu`], the handle the server holds: places rooms on workers and turns method
//! calls into commands on the owning worker's channel.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use tracing::info;

use crate::api::{
    EventSink, MidSource, OnePortStats, ParticipantId, RecordTap, Reply, RoomId, SdpAnswer,
    SfuError, TrackSource, WorkerStats,
};
use crate::config::SfuConfig;
use crate::directory::{AlreadyPlaced, Directory, lock};
use crate::start::{self, DemuxHandle, StartError, WorkerHandle};
use crate::worker::Command;

/// Handle to the running workers. Cheap to share (`Arc`) between the server's tasks.
#[derive(Debug)]
pub struct Sfu {
    workers: Vec<WorkerHandle>,
    directory: Arc<Directory>,
    demux: Option<DemuxHandle>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// Rooms being recorded: a room placed on a worker later (its first join) gets
    /// its tap with that join.
    recordings: Mutex<HashMap<RoomId, RecordTap>>,
}

impl Sfu {
    /// Start the workers (see [`SfuConfig`]); `events` receives every [`crate::SfuEvent`].
    pub fn start(config: SfuConfig, events: EventSink) -> Result<Sfu, StartError> {
        let started = start::launch(config, events)?;
        Ok(Sfu {
            workers: started.workers,
            directory: started.directory,
            demux: started.demux,
            threads: Mutex::new(started.threads),
            recordings: Mutex::new(HashMap::new()),
        })
    }

    /// The UDP port of each worker, in worker order.
    pub fn ports(&self) -> Vec<u16> {
        self.workers.iter().map(|w| w.port).collect()
    }

    /// Queue `cmd` on `worker` and wake it. If the worker is gone, the command's reply
    /// gets `WorkerGone` here and `false` is returned.
    fn send(&self, worker: usize, cmd: Command) -> bool {
        let Some(w) = self.workers.get(worker) else {
            cmd.fail(SfuError::WorkerGone);
            return false;
        };
        if let Err(mpsc::SendError(cmd)) = w.commands.send(cmd) {
            cmd.fail(SfuError::WorkerGone);
            return false;
        }
        // Best effort: without it the worker still wakes within its poll timeout.
        let _ = w.waker.wake();
        true
    }

    fn worker_of(&self, participant: &ParticipantId) -> Option<usize> {
        self.directory.worker_of_participant(participant)
    }

    /// The live worker with the fewest participants (then rooms), given the rooms
    /// placed on each worker, for a new room.
    fn least_loaded(&self, placed: &[usize]) -> usize {
        let placed = |i: usize| placed.get(i).copied().unwrap_or(0);
        (0..self.workers.len())
            .filter(|&i| self.workers[i].counters.alive.load(Ordering::Relaxed))
            .min_by_key(|&i| {
                (
                    self.workers[i]
                        .counters
                        .participants
                        .load(Ordering::Relaxed)
                        + placed(i),
                    placed(i),
                )
            })
            .unwrap_or(0)
    }

    /// Add a participant to `room` (opening the room on the least-loaded worker if new)
    /// from the client's offer; replies with the answer.
    pub fn join(
        &self,
        room: RoomId,
        participant: ParticipantId,
        offer: String,
        sources: Vec<MidSource>,
        reply: Reply<Result<SdpAnswer, SfuError>>,
    ) {
        let placed = self
            .directory
            .place_join(&room, &participant, self.workers.len(), |p| {
                self.least_loaded(p)
            });
        let placed = match placed {
            Ok(placed) => placed,
            Err(AlreadyPlaced) => {
                reply(Err(SfuError::DuplicateParticipant));
                return;
            }
        };
        let record = lock(&self.recordings).get(&room).cloned();
        // `placed` holds the directory's rooms lock until the command is queued (see
        // `PlacedJoin`).
        let sent = self.send(
            placed.worker(),
            Command::Join {
                room,
                participant,
                offer,
                sources,
                record,
                reply,
            },
        );
        if !sent {
            placed.worker_gone();
        }
    }

    /// A client-initiated offer for an existing participant (renegotiation).
    pub fn offer(
        &self,
        participant: ParticipantId,
        offer: String,
        sources: Vec<MidSource>,
        reply: Reply<Result<SdpAnswer, SfuError>>,
    ) {
        match self.worker_of(&participant) {
            Some(w) => {
                self.send(
                    w,
                    Command::Offer {
                        participant,
                        offer,
                        sources,
                        reply,
                    },
                );
            }
            None => reply(Err(SfuError::UnknownParticipant)),
        }
    }

    /// The client's answer to a [`crate::SfuEvent::Renegotiate`] offer.
    pub fn answer(
        &self,
        participant: ParticipantId,
        offer_id: u64,
        answer: String,
        reply: Reply<Result<(), SfuError>>,
    ) {
        match self.worker_of(&participant) {
            Some(w) => {
                self.send(
                    w,
                    Command::Answer {
                        participant,
                        offer_id,
                        answer,
                        reply,
                    },
                );
            }
            None => reply(Err(SfuError::UnknownParticipant)),
        }
    }

    /// Pause (muted = true) or resume forwarding one of the participant's publications.
    /// Subscribers keep their m-line (the tile stays, showing the participant's name).
    pub fn set_muted(&self, participant: ParticipantId, source: TrackSource, muted: bool) {
        if let Some(w) = self.worker_of(&participant) {
            self.send(
                w,
                Command::SetMuted {
                    participant,
                    source,
                    muted,
                },
            );
        }
    }

    /// Start or stop offering a publication to subscribers. Microphone and camera are
    /// published from join; a screen share is published only between
    /// `set_publishing(.., ScreenShare, true)` and `false`: stopping removes the
    /// subscribers' m-lines (renegotiation), so their tiles go away.
    pub fn set_publishing(&self, participant: ParticipantId, source: TrackSource, on: bool) {
        if let Some(w) = self.worker_of(&participant) {
            self.send(
                w,
                Command::SetPublishing {
                    participant,
                    source,
                    on,
                },
            );
        }
    }

    /// What the participant wants to receive of simulcast cameras (`change-video-quality`).
    pub fn set_receive_quality(&self, participant: ParticipantId, quality: crate::ReceiveQuality) {
        if let Some(w) = self.worker_of(&participant) {
            self.send(
                w,
                Command::SetReceiveQuality {
                    participant,
                    quality,
                },
            );
        }
    }

    /// The remote videos the participant shows and their sizes (the page's `tile-views`):
    /// no layer larger than a tile needs, no video to a hidden tile.
    pub fn set_tile_views(&self, participant: ParticipantId, views: Vec<crate::TileView>) {
        if let Some(w) = self.worker_of(&participant) {
            self.send(w, Command::SetTileViews { participant, views });
        }
    }

    /// Remove a participant: every subscriber's track of it ends (renegotiation follows).
    pub fn leave(&self, participant: ParticipantId) {
        if let Some(w) = self.worker_of(&participant) {
            self.send(w, Command::Leave { participant });
        }
    }

    /// Close a room and drop all its participants.
    pub fn close_room(&self, room: RoomId) {
        if let Some(w) = self.directory.worker_of_room(&room) {
            self.send(w, Command::CloseRoom { room });
        }
    }

    /// Start (`Some`) or stop (`None`) handing `room`'s packets to a recorder. The room
    /// may not be on a worker yet: its first join brings the tap along.
    pub fn set_recording(&self, room: RoomId, tap: Option<RecordTap>) {
        {
            let mut recordings = lock(&self.recordings);
            match &tap {
                Some(t) => recordings.insert(room.clone(), t.clone()),
                None => recordings.remove(&room),
            };
        }
        if let Some(w) = self.directory.worker_of_room(&room) {
            self.send(w, Command::Record { room, tap });
        }
    }

    pub fn stats(&self) -> Vec<WorkerStats> {
        self.workers
            .iter()
            .enumerate()
            .map(|(index, w)| {
                let c = &w.counters;
                WorkerStats {
                    index,
                    port: w.port,
                    alive: c.alive.load(Ordering::Relaxed),
                    rooms: c.rooms.load(Ordering::Relaxed),
                    participants: c.participants.load(Ordering::Relaxed),
                    datagrams_in: c.datagrams_in.load(Ordering::Relaxed),
                    datagrams_out: c.datagrams_out.load(Ordering::Relaxed),
                    datagrams_dropped: c.datagrams_dropped.load(Ordering::Relaxed),
                    rtp_forwarded: c.rtp_forwarded.load(Ordering::Relaxed),
                    send_dropped: c.send_dropped.load(Ordering::Relaxed),
                    tcp_connections: c.tcp_connections.load(Ordering::Relaxed),
                    media: c.media.lock().map(|m| *m).unwrap_or_default(),
                    busy: std::time::Duration::from_nanos(c.busy_nanos.load(Ordering::Relaxed)),
                }
            })
            .collect()
    }

    /// The demultiplexer's counters in one-port mode (`None` otherwise).
    pub fn one_port_stats(&self) -> Option<OnePortStats> {
        self.demux.as_ref().map(|d| OnePortStats {
            datagrams_in: d.counters.datagrams_in.load(Ordering::Relaxed),
            unrouted: d.counters.unrouted.load(Ordering::Relaxed),
        })
    }

    /// Stop all workers and join their threads. Idempotent.
    pub fn shutdown(&self) {
        let threads = std::mem::take(&mut *lock(&self.threads));
        if threads.is_empty() {
            return;
        }
        for i in 0..self.workers.len() {
            self.send(i, Command::Shutdown);
        }
        if let Some(d) = &self.demux {
            d.stop.store(true, Ordering::Relaxed);
            let _ = d.waker.wake();
        }
        for t in threads {
            let _ = t.join();
        }
        info!("SFU stopped");
    }
}

impl Drop for Sfu {
    fn drop(&mut self) {
        self.shutdown();
    }
}
