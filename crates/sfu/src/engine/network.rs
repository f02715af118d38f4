//! Packets in: datagrams from the worker's UDP socket and frames from its ICE-TCP
//! connections, each routed to its participant (see [`super::routes`]) and handed to
//! that participant's `Rtc`.

use std::net::SocketAddr;
use std::time::Instant;

use str0m::Input;
use str0m::ice::StunMessage;
use str0m::net::{DatagramRecv, Receive};
use tracing::debug;

use super::{Engine, guarded};
use crate::api::{GoneReason, Transport};
use crate::model::Key;

impl Engine {
    /// One datagram received on the worker socket from `source`.
    pub fn handle_datagram(&mut self, now: Instant, source: SocketAddr, data: &[u8]) {
        self.handle_datagrams(now, [(source, data)]);
    }

    /// Packets received over ICE-TCP from the connection whose remote end is `source`,
    /// one per RFC 4571 frame (the driver removes the 2-byte length).
    ///
    /// Returns how many of them a participant took: routed to it (a first STUN request
    /// only when its credentials are valid, `Rtc::accepts`) and not refused by its
    /// `Rtc`. The driver counts only those as the connection's activity, so that a
    /// connection cannot hold a slot with packets nobody wants.
    pub fn handle_tcp_packets<'a>(
        &mut self,
        now: Instant,
        batch: impl IntoIterator<Item = (SocketAddr, &'a [u8])>,
    ) -> usize {
        let mut taken = 0;
        for (source, data) in batch {
            let dropped = self.stats.datagrams_dropped;
            if let Some(key) = self.receive(now, Transport::Tcp, source, data) {
                if self.stats.datagrams_dropped == dropped {
                    taken += 1;
                }
                self.poll_participant(key, now);
            }
        }
        self.drive(now);
        taken
    }

    /// Several datagrams received at `now` (a burst read from the socket). The same as
    /// [`Engine::handle_datagram`] for each, with one drive round (removals, offers)
    /// for the whole burst. Each receiving `Rtc` is polled right after its input, as
    /// str0m requires; subscribers are not polled here: what was forwarded to them goes
    /// out on their next timeout ([`Engine::handle_timeout`], at most 1 ms after their
    /// last input, see [`Engine::poll_timeout`]), in one str0m cycle per subscriber.
    pub fn handle_datagrams<'a>(
        &mut self,
        now: Instant,
        batch: impl IntoIterator<Item = (SocketAddr, &'a [u8])>,
    ) {
        for (source, data) in batch {
            if let Some(key) = self.receive(now, Transport::Udp, source, data) {
                self.poll_participant(key, now);
            }
        }
        self.drive(now);
    }

    /// Route one datagram and give it to its participant's `Rtc`; returns that
    /// participant, to be polled.
    pub(super) fn receive(
        &mut self,
        now: Instant,
        transport: Transport,
        source: SocketAddr,
        data: &[u8],
    ) -> Option<Key> {
        self.stats.datagrams_in += 1;
        let Some(key) = self.route(transport, source, data) else {
            self.stats.datagrams_dropped += 1;
            debug!(%source, len = data.len(), "datagram matches no participant");
            return None;
        };
        let Ok(contents) = DatagramRecv::try_from(data) else {
            self.stats.datagrams_dropped += 1;
            return None;
        };
        let destination = self.cfg.local_addr;
        let Some(p) = self.participants.get_mut(&key) else {
            self.stats.datagrams_dropped += 1;
            return None;
        };
        let input = Input::Receive(
            now,
            Receive {
                proto: transport.into(),
                source,
                destination,
                contents,
            },
        );
        p.last_fed = p.last_fed.max(now);
        match guarded(|| p.rtc.handle_input(input)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                // A bad packet is dropped; the participant lives on unless str0m gave up.
                self.stats.datagrams_dropped += 1;
                debug!(participant = %p.id, "input refused: {e}");
            }
            Err(()) => {
                self.doomed
                    .push((key, Some(GoneReason::Failed("internal error".into()))));
                return None;
            }
        }
        Some(key)
    }

    /// Find the participant a datagram belongs to: by source address once known,
    /// otherwise (first contact) by the ufrag of a STUN request, confirmed by
    /// `Rtc::accepts`. Never a scan of all participants.
    fn route(&mut self, transport: Transport, source: SocketAddr, data: &[u8]) -> Option<Key> {
        // RFC 7983: STUN datagrams start with 0..=3.
        let is_stun = data.first().is_some_and(|b| *b < 4);
        let addr = (source, transport);
        if let Some(key) = self.routes.at_addr(&addr) {
            if !is_stun {
                return Some(key);
            }
            // STUN from a known address: normally the same peer (consent checks); a new
            // participant behind a recycled address is found by ufrag below.
            if self.accepts(key, transport, source, data) {
                return Some(key);
            }
        }
        if !is_stun {
            return None;
        }
        let msg = StunMessage::parse(data).ok()?;
        let (local_ufrag, _) = msg.split_username()?;
        let key = self.routes.with_ufrag(local_ufrag)?;
        if !self.accepts(key, transport, source, data) {
            return None;
        }
        let p = self.participants.get_mut(&key)?;
        self.routes.learn_addr(key, addr, &mut p.addrs);
        Some(key)
    }

    fn accepts(&self, key: Key, transport: Transport, source: SocketAddr, data: &[u8]) -> bool {
        let Some(p) = self.participants.get(&key) else {
            return false;
        };
        let Ok(contents) = DatagramRecv::try_from(data) else {
            return false;
        };
        let destination = self.cfg.local_addr;
        // Any instant will do: `accepts` does not look at time.
        let input = Input::Receive(
            p.joined_at,
            Receive {
                proto: transport.into(),
                source,
                destination,
                contents,
            },
        );
        p.rtc.accepts(&input)
    }
}
