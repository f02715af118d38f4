//! The engine's participant lookups, kept consistent in one place: by participant ID
//! (the server's requests), by source address (every packet after the first) and by
//! our ICE ufrag (a first STUN request from a new address). No lookup scans the
//! participants.

use std::collections::HashMap;
use std::net::SocketAddr;

use crate::api::{ParticipantId, Transport};
use crate::model::Key;

/// How many source addresses one participant may have in the routing map (host, srflx,
/// relay, IPv4/IPv6 …); bounds what a peer that knows the ufrag can make us store.
const MAX_ADDRS: usize = 8;

/// A packet's source: its address and the transport it came on.
pub(crate) type Source = (SocketAddr, Transport);

/// Participant lookups of one engine. Maps keyed by what peers send (addresses, ufrags)
/// keep SipHash (see `model::KeyHasher`).
#[derive(Debug, Default)]
pub(crate) struct Routes {
    by_id: HashMap<ParticipantId, Key>,
    by_addr: HashMap<Source, Key>,
    by_ufrag: HashMap<String, Key>,
}

impl Routes {
    /// A new participant `key`: found by `id`, and by `ufrag` until its first STUN
    /// request names an address.
    pub(crate) fn add(&mut self, key: Key, id: ParticipantId, ufrag: String) {
        self.by_id.insert(id, key);
        self.by_ufrag.insert(ufrag, key);
    }

    pub(crate) fn key(&self, id: &ParticipantId) -> Option<Key> {
        self.by_id.get(id).copied()
    }

    pub(crate) fn has(&self, id: &ParticipantId) -> bool {
        self.by_id.contains_key(id)
    }

    /// The participant packets from `source` go to (the per-packet fast path).
    #[inline]
    pub(crate) fn at_addr(&self, source: &Source) -> Option<Key> {
        self.by_addr.get(source).copied()
    }

    /// The participant whose local ICE ufrag is `ufrag`.
    pub(crate) fn with_ufrag(&self, ufrag: &str) -> Option<Key> {
        self.by_ufrag.get(ufrag).copied()
    }

    /// Participant `key`'s ufrag is now `new` (an ICE restart): STUN requests naming
    /// `old` no longer find it. Its addresses keep routing to it until a STUN request
    /// from a new one is accepted.
    pub(crate) fn rename_ufrag(&mut self, key: Key, old: &str, new: String) {
        if self.by_ufrag.get(old) == Some(&key) {
            self.by_ufrag.remove(old);
        }
        self.by_ufrag.insert(new, key);
    }

    /// Route `source` to `key`, whose own list of addresses is `addrs`, after a STUN
    /// request from it was accepted. At most [`MAX_ADDRS`] per participant: the oldest
    /// goes (and stops routing to it, unless another participant took it since).
    pub(crate) fn learn_addr(&mut self, key: Key, source: Source, addrs: &mut Vec<Source>) {
        if !addrs.contains(&source) {
            if addrs.len() >= MAX_ADDRS {
                let old = addrs.remove(0);
                if self.by_addr.get(&old) == Some(&key) {
                    self.by_addr.remove(&old);
                }
            }
            addrs.push(source);
        }
        self.by_addr.insert(source, key);
    }

    /// Forget participant `key` (ID `id`, ufrag `ufrag`, addresses `addrs`). An address
    /// that now routes to another participant stays theirs.
    pub(crate) fn remove(&mut self, key: Key, id: &ParticipantId, ufrag: &str, addrs: &[Source]) {
        self.by_id.remove(id);
        self.by_ufrag.remove(ufrag);
        for a in addrs {
            if self.by_addr.get(a) == Some(&key) {
                self.by_addr.remove(a);
            }
        }
    }
}
