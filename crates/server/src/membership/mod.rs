//! Who may be in which meeting, and what follows from joining and leaving it: the
//! membership rules, apart from any socket.
//!
//! - admission ([`Membership::admit`], [`Membership::confirm`]): the meeting exists and
//!   has not ended, a locked meeting takes only its host, a user the host removed stays
//!   out, the participant cap (checked atomically by the live registry), and an earlier
//!   connection of the same user is replaced;
//! - leaving ([`Membership::leave`]) for any [`LeaveWhy`]: registry, media, history;
//! - the lobby of a meeting that requires approval ([`lobby`]): waiting, and the host's
//!   admit or deny;
//! - the host's controls (the host's and co-hosts', as `crate::access` says): locking
//!   the meeting ([`Membership::set_locked`]), making co-hosts
//!   ([`Membership::set_co_host`]), removal that holds until allowed ([`Membership::remove_user`],
//!   [`Membership::allow_user`]) and the end of the meeting ([`Membership::end_meeting`],
//!   then [`Membership::clear`] for everybody);
//! - resuming a connection that dropped ([`Membership::resume`], [`resume`]);
//! - the history writes these imply ([`records`]), and the media requests ([`media`]).
//!
//! Every operation returns what happened ([`Admission`], [`Departure`], [`Refusal`]);
//! telling the sockets is the caller's part (`signaling`), so that these rules run, and
//! are tested (`crates/server/tests/membership.rs`), without one.

pub mod media;
pub mod records;

mod admission;
mod host;
mod leave;
mod lobby;
mod resume;

use std::sync::Arc;

use proto::{PeerId, RoomId, UserId};

pub use admission::{Admission, Candidate, Refusal};
pub use leave::{Departure, LeaveWhy, Removal};
pub use lobby::{Decision, Knock};
pub use records::{MeetingView, Topology};
pub use resume::{PageState, Resumed, resume_token};

use crate::live::RedisLive;
use crate::live::{LiveError, LivePeer, LiveRooms};
use crate::media::{ClusterMedia, LocalMedia, MediaRouter};
use crate::recording::control::{Host, Route};
use crate::state::AppState;
use crate::store::StoreError;

/// Why a membership operation was refused or failed. The signaling turns each into the
/// client's error code.
#[derive(Debug, thiserror::Error)]
pub enum MembershipError {
    #[error("no meeting with id {0}")]
    NotFound(RoomId),
    #[error("this meeting has ended")]
    MeetingEnded,
    #[error("the meeting is locked by its host")]
    RoomLocked,
    #[error("the meeting is full ({limit} participants)")]
    RoomFull { limit: usize },
    #[error("the host removed you from this meeting")]
    Removed,
    /// The meeting requires approval and the host has not let this user in yet: the
    /// caller puts the connection in the lobby ([`Membership::knock`]).
    #[error("the host must let you in: you are waiting in the lobby")]
    ApprovalRequired,
    /// A lobby decision about a connection that is not waiting (any more).
    #[error("nobody with that id is waiting in the lobby")]
    NotWaiting,
    /// The connection is not (or no longer) in the meeting.
    #[error("you have not joined this meeting")]
    NotInMeeting,
    /// The caller's role or grants do not allow it; says which grant.
    #[error(transparent)]
    Denied(#[from] crate::access::Denied),
    /// A host control aimed at someone it cannot apply to (the host made co-host).
    #[error("{0}")]
    BadTarget(&'static str),
    #[error("{0} is not in this meeting")]
    PeerNotFound(UserId),
    /// The meeting store could not be read or written.
    #[error("the meeting store is unavailable: {0}")]
    Store(#[source] StoreError),
    /// The shared live registry (Redis) cannot be reached.
    #[error("live meeting state is unavailable (Redis): {0}")]
    LiveUnavailable(String),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl From<LiveError> for MembershipError {
    fn from(e: LiveError) -> Self {
        match e {
            LiveError::Full { limit } => MembershipError::RoomFull { limit },
            LiveError::Unavailable(why) => MembershipError::LiveUnavailable(why),
        }
    }
}

/// The membership of every meeting this node serves. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Membership {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    app: AppState,
    live: LiveRooms,
    /// Where each meeting's media requests go.
    media: MediaRouter,
    /// Where each meeting's recording commands go (the node with its media).
    recording: Route,
}

impl Membership {
    /// The in-process registry and this node's engine without `app.cluster`; with it,
    /// the registry shared through Redis and media placed across the cluster.
    pub fn new(app: AppState) -> Self {
        let local = LocalMedia::new(app.sfu.clone());
        let host = recording_host(&app);
        let (live, media) = match &app.cluster {
            Some(cluster) => (
                LiveRooms::Redis(Arc::new(RedisLive::new(
                    cluster.clone(),
                    app.config.meeting_ttl,
                ))),
                MediaRouter::Cluster(ClusterMedia::new(cluster.clone(), local, host)),
            ),
            None => (LiveRooms::local(), MediaRouter::Local(local)),
        };
        Membership::with_parts(app, live, media)
    }

    /// Built from chosen parts (tests: a given registry, no engine).
    pub fn with_parts(app: AppState, live: LiveRooms, media: MediaRouter) -> Self {
        let relay = media
            .cluster()
            .map(|c| c.clone() as Arc<dyn crate::recording::control::Relay>);
        let recording = Route::new(recording_host(&app), relay);
        Membership {
            inner: Arc::new(Inner {
                app,
                live,
                media,
                recording,
            }),
        }
    }

    pub fn app(&self) -> &AppState {
        &self.inner.app
    }

    pub fn live(&self) -> &LiveRooms {
        &self.inner.live
    }

    pub fn media(&self) -> &MediaRouter {
        &self.inner.media
    }

    /// Where this meeting's recording commands run (the node holding its media).
    pub fn recording(&self) -> &Route {
        &self.inner.recording
    }

    /// `peer` as the registry has it now, if it is still in `room`.
    pub async fn current(
        &self,
        room: &RoomId,
        peer: &PeerId,
    ) -> Result<Option<LivePeer>, MembershipError> {
        Ok(self.live().get(room, peer).await?)
    }

    /// Everyone in `room` now, in join order.
    pub async fn present(&self, room: &RoomId) -> Result<Vec<LivePeer>, MembershipError> {
        Ok(self.live().peers(room).await?)
    }
}

/// This node's recorder, as the node holding a meeting's media runs it.
fn recording_host(app: &AppState) -> Host {
    Host {
        store: app.store.clone(),
        recorder: app.recorder.clone(),
        auto_compose: app.config.recording_auto_compose,
    }
}
