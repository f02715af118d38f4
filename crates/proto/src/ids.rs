//! Typed identifiers. All are text on the wire.
//!
//! These are the only id types of the workspace: the SFU engine (`meeting-sfu`) uses
//! [`RoomId`] and [`PeerId`] too (it calls a peer a participant), so an id crosses from
//! the signaling into the engine and back without a conversion. The text is shared
//! (`Arc<str>`), because the engine clones a packet's room and participant ids on its
//! forwarding path.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! text_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Arc<str>);

        // By hand rather than serde's `rc` feature: turning that on changes serde for
        // the whole workspace (and rebuilds everything that uses it) for two lines.
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                String::deserialize(d).map(|s| Self(s.into()))
            }
        }

        impl $name {
            pub fn new(s: impl Into<String>) -> Self {
                Self(s.into().into())
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
            pub fn into_string(self) -> String {
                self.0.to_string()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), &*self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.into())
            }
        }
    };
}

text_id!(
    /// A meeting's short code, e.g. `KXRT-PQZ-MHN`. Compared case-sensitively; the
    /// server upper-cases what users type.
    RoomId
);
text_id!(
    /// A user, from the token's `sub` claim.
    UserId
);
text_id!(
    /// One connection of a user to one meeting. A user who reconnects gets a new one, so
    /// that the old connection's leftovers can be told apart from the new one.
    PeerId
);
text_id!(
    /// Lets a connection that dropped take its place in the meeting again
    /// (`resume-meeting`): issued with the join, bound to the meeting, the connection id
    /// and the user, and checked by the server that issued it (or any node with its
    /// secret). Opaque to clients.
    ResumeToken
);

impl PeerId {
    /// A fresh random peer id (`p_` and 16 base-32 characters: 80 bits).
    pub fn random() -> Self {
        const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
        let mut bytes = [0u8; 16];
        fill_random(&mut bytes);
        let mut s = String::with_capacity(18);
        s.push_str("p_");
        for b in bytes {
            s.push(ALPHABET[(b & 31) as usize] as char);
        }
        PeerId(s.into())
    }
}

/// Randomness without a dependency: the std hasher is seeded per process from the OS.
/// Peer ids need to be unique and unpredictable to other users, not secret keys.
fn fill_random(out: &mut [u8]) {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    for chunk in out.chunks_mut(8) {
        let mut h = RandomState::new().build_hasher();
        h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        let v = h.finish().to_le_bytes();
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_ids_are_distinct_and_well_formed() {
        let ids: std::collections::HashSet<_> = (0..1000).map(|_| PeerId::random()).collect();
        assert_eq!(ids.len(), 1000);
        for id in ids {
            assert_eq!(id.as_str().len(), 18);
            assert!(id.as_str().starts_with("p_"));
        }
    }

    #[test]
    fn ids_are_plain_strings_on_the_wire() {
        let json = serde_json::to_string(&RoomId::from("ABC")).expect("serialize");
        assert_eq!(json, "\"ABC\"");
        let back: RoomId = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, RoomId::from("ABC"));
    }
}
