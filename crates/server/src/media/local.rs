//! This node's engine, as awaits with a deadline.
//!
//! The engine answers through one-shot callbacks from its worker threads; here they
//! become awaits bounded by [`ENGINE_DEADLINE`], so that a stuck worker turns into an
//! `UNAVAILABLE` acknowledgement instead of a hung request.
//!
//! A request reaches its worker when the method is called, not when its answer is
//! awaited ([`Pending`]): requests from one caller reach the engine in the order they
//! were made, even when their answers are awaited on separate tasks (the cluster relay
//! serves its requests that way).

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use meeting_sfu::{MidSource, SdpAnswer, Sfu, SfuError, TrackSource};
use proto::{PeerId, RoomId};
use tokio::sync::oneshot;

use super::EngineError;

/// How long a worker may take to answer an SDP request.
pub const ENGINE_DEADLINE: Duration = Duration::from_secs(10);

/// This node's SFU, if it runs one. Cheap to clone.
#[derive(Clone, Debug)]
pub struct LocalMedia {
    sfu: Option<Arc<Sfu>>,
}

impl LocalMedia {
    pub fn new(sfu: Option<Arc<Sfu>>) -> Self {
        LocalMedia { sfu }
    }

    /// Whether this node runs an SFU.
    pub fn is_running(&self) -> bool {
        self.sfu.is_some()
    }

    fn engine(&self) -> Result<&Sfu, EngineError> {
        self.sfu.as_deref().ok_or(EngineError::NoEngine)
    }

    /// Send one request whose answer comes through a callback.
    fn ask<T>(&self, send: impl FnOnce(&Sfu, meeting_sfu::Reply<Result<T, SfuError>>)) -> Pending<T>
    where
        T: Send + 'static,
    {
        Pending(self.engine().map(|sfu| {
            let (tx, rx) = oneshot::channel();
            send(
                sfu,
                Box::new(move |r| {
                    let _ = tx.send(r);
                }),
            );
            rx
        }))
    }

    /// A participant's first offer: join `room` (placed on a worker if new).
    pub fn join(
        &self,
        room: &RoomId,
        peer: &PeerId,
        sdp: String,
        sources: Vec<MidSource>,
    ) -> Pending<SdpAnswer> {
        let (room, peer) = (room.clone(), peer.clone());
        self.ask(|sfu, reply| sfu.join(room, peer, sdp, sources, reply))
    }

    /// A later offer of a participant already in the engine (renegotiation).
    pub fn offer(&self, peer: &PeerId, sdp: String, sources: Vec<MidSource>) -> Pending<SdpAnswer> {
        let peer = peer.clone();
        self.ask(|sfu, reply| sfu.offer(peer, sdp, sources, reply))
    }

    /// The client's answer to the server's offer `offer_id`.
    pub fn answer(&self, peer: &PeerId, offer_id: u64, sdp: String) -> Pending<()> {
        let peer = peer.clone();
        self.ask(|sfu, reply| sfu.answer(peer, offer_id, sdp, reply))
    }

    pub fn set_muted(
        &self,
        peer: &PeerId,
        source: TrackSource,
        muted: bool,
    ) -> Result<(), EngineError> {
        self.engine()?.set_muted(peer.clone(), source, muted);
        Ok(())
    }

    pub fn set_publishing(
        &self,
        peer: &PeerId,
        source: TrackSource,
        on: bool,
    ) -> Result<(), EngineError> {
        self.engine()?.set_publishing(peer.clone(), source, on);
        Ok(())
    }

    pub fn set_receive_quality(
        &self,
        peer: &PeerId,
        quality: meeting_sfu::ReceiveQuality,
    ) -> Result<(), EngineError> {
        self.engine()?.set_receive_quality(peer.clone(), quality);
        Ok(())
    }

    pub fn set_tile_views(
        &self,
        peer: &PeerId,
        views: Vec<meeting_sfu::TileView>,
    ) -> Result<(), EngineError> {
        self.engine()?.set_tile_views(peer.clone(), views);
        Ok(())
    }

    pub fn leave(&self, peer: &PeerId) -> Result<(), EngineError> {
        self.engine()?.leave(peer.clone());
        Ok(())
    }

    pub fn close_room(&self, room: &RoomId) -> Result<(), EngineError> {
        self.engine()?.close_room(room.clone());
        Ok(())
    }
}

/// A request already sent to its worker; await it for the answer, within
/// [`ENGINE_DEADLINE`].
#[must_use = "the answer says whether the engine accepted the request"]
pub struct Pending<T>(Result<oneshot::Receiver<Result<T, SfuError>>, EngineError>);

impl<T> std::fmt::Debug for Pending<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Ok(_) => f.write_str("Pending(sent)"),
            Err(e) => write!(f, "Pending({e:?})"),
        }
    }
}

impl<T: Send + 'static> IntoFuture for Pending<T> {
    type Output = Result<T, EngineError>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            match tokio::time::timeout(ENGINE_DEADLINE, self.0?).await {
                Ok(Ok(reply)) => Ok(reply?),
                // The callback was dropped unanswered: its worker is gone.
                Ok(Err(_)) => Err(EngineError::WorkerGone),
                Err(_) => Err(EngineError::Timeout),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn without_an_engine_every_request_says_so() {
        let local = LocalMedia::new(None);
        let (room, peer) = (RoomId::from("R"), PeerId::from("p_1"));
        assert!(!local.is_running());
        assert_eq!(
            local.join(&room, &peer, "v=0".into(), vec![]).await,
            Err(EngineError::NoEngine)
        );
        assert_eq!(
            local.answer(&peer, 1, "v=0".into()).await,
            Err(EngineError::NoEngine)
        );
        assert_eq!(local.leave(&peer), Err(EngineError::NoEngine));
        assert_eq!(local.close_room(&room), Err(EngineError::NoEngine));
    }

    /// A real engine on loopback (workers, sockets), on a free port range.
    fn start_engine() -> Sfu {
        use std::net::{Ipv4Addr, UdpSocket};
        for attempt in 0..50u16 {
            let base = 30_000 + (std::process::id() as u16 % 1000) * 20 + attempt * 3;
            if UdpSocket::bind((Ipv4Addr::LOCALHOST, base)).is_err() {
                continue;
            }
            let mut config = meeting_sfu::SfuConfig::new(
                1,
                base,
                base,
                Ipv4Addr::LOCALHOST.into(),
                Ipv4Addr::LOCALHOST.into(),
            );
            config.allow_loopback_announced = true;
            match Sfu::start(config, Arc::new(|_| {})) {
                Ok(sfu) => return sfu,
                Err(meeting_sfu::StartError::Bind { .. }) => continue,
                Err(e) => panic!("the SFU did not start: {e}"),
            }
        }
        panic!("no free UDP port on 127.0.0.1 for the test engine");
    }

    #[tokio::test]
    async fn the_engine_s_refusals_and_its_absence_are_told_apart() {
        let sfu = Arc::new(start_engine());
        let local = LocalMedia::new(Some(sfu.clone()));
        let (room, peer) = (RoomId::from("R"), PeerId::from("p_1"));
        let refused = local.join(&room, &peer, "not SDP".into(), vec![]).await;
        assert!(
            matches!(refused, Err(EngineError::Refused(SfuError::InvalidSdp(_)))),
            "{refused:?}"
        );
        let unknown = local
            .offer(&PeerId::from("p_never"), "v=0".into(), vec![])
            .await;
        assert_eq!(
            unknown,
            Err(EngineError::Refused(SfuError::UnknownParticipant))
        );
        sfu.shutdown();
        let gone = local.join(&room, &peer, "not SDP".into(), vec![]).await;
        assert_eq!(gone, Err(EngineError::WorkerGone));
    }
}
