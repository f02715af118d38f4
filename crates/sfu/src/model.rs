//! The engine's data model: rooms hold participants; a participant owns one str0m `Rtc`,
//! the [`Publication`]s it sends and the [`Subscription`]s (m-lines) it receives.
//!
//! Ownership is a tree a reader can draw: `Engine → Room → Participant → {Publication,
//! Subscription}`. Cross references are by [`Key`] (the participant's slot in the
//! engine), never by pointer, so removing a participant cannot leave a dangling link:
//! a subscription whose publisher key is gone simply matches nothing.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::net::SocketAddr;
use std::time::Instant;

use str0m::Rtc;
use str0m::change::SdpPendingOffer;
use str0m::format::Codec;
use str0m::media::{MediaKind, Mid, Pt, Rid};
use str0m::rtp::Ssrc;

use crate::api::{OutgoingTrack, ParticipantId, RoomId, TileView, TrackSource, Transport};
use crate::forward::{LayerStat, Rewriter};
use crate::speaker::SpeakerDetector;
use crate::vp8_numbering::Vp8Numbering;

/// A participant's slot in the engine: the engine's own counter ([`Key::FIRST`],
/// [`Key::next`]), never reused within one engine and never taken from remote input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Key(u64);

impl Key {
    pub const FIRST: Key = Key(1);

    /// The key after this one.
    pub fn next(self) -> Key {
        Key(self.0 + 1)
    }
}

impl Hash for Key {
    /// One `write_u64`, so that [`KeyHasher`] sees the counter itself.
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.0);
    }
}

/// A map keyed by [`Key`], with [`KeyHasher`].
pub type KeyMap<V> = HashMap<Key, V, BuildHasherDefault<KeyHasher>>;

/// Hash of a [`Key`]: one multiplication (Fibonacci hashing) instead of SipHash, which
/// cost a few per cent of the instructions per forwarded packet (several participant
/// lookups per packet). Safe here because keys are the engine's own counter, never
/// remote input: maps keyed by what peers send (addresses, ufrags) keep SipHash.
#[derive(Debug, Default, Clone, Copy)]
pub struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        // Not used by `u64` keys; correct for anything else, just not tuned.
        for &b in bytes {
            self.write_u64((self.0 << 8) | u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        // The odd constant spreads sequential keys over the high bits (hashbrown's
        // tags) and keeps the low bits (its bucket index) a permutation.
        self.0 = n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[derive(Debug, Default)]
pub struct Room {
    pub members: Vec<Key>,
    /// Published cameras, counted when publications change (`Engine::count_cameras`):
    /// the gallery size that picks the simulcast layer (`forward::gallery_skip`).
    pub cameras: usize,
    /// Members that asked for less than [`crate::ReceiveQuality::Full`], with the least
    /// skip each wants (`Engine::set_receive_quality`). Empty in almost every room, so the
    /// forwarding path only looks further when it is not.
    pub reduced: Vec<(Key, usize)>,
    /// Set while the room is recorded: where its packets go (`engine/record.rs`).
    pub recording: Option<RoomRecording>,
    /// The dominant speaker, from the members' microphone levels (`engine/speaking.rs`).
    pub speakers: SpeakerDetector<Key>,
    /// Who was reported speaking last (`SfuEvent::ActiveSpeaker`), to report changes only.
    pub speaking_reported: Vec<Key>,
}

/// A recorded room's tap, and which recording it is (a new one asks every publication
/// for a keyframe again).
#[derive(Debug)]
pub struct RoomRecording {
    pub tap: crate::api::RecordTap,
    pub epoch: u64,
}

/// A publication's part in the room's recording.
#[derive(Debug, Default)]
pub struct RecordState {
    /// The recording epoch this publication was last handed to (0: none yet).
    pub epoch: u64,
    /// Video: a keyframe started the recorded stream (on the layer `layer`).
    pub started: bool,
    /// The simulcast layer recorded (the highest one available).
    pub layer: Option<Rid>,
    /// The recorder's last keyframe request (`TapStats::keyframe_requests`) seen.
    pub requests_seen: u64,
    /// The recorded layers as one stream (a layer switch continues it).
    pub splice: crate::forward::RecordSplice,
}

/// Our offer to a participant that awaits its answer.
#[derive(Debug)]
pub struct PendingOffer {
    pub id: u64,
    pub offer: SdpPendingOffer,
}

#[derive(Debug)]
pub struct Participant {
    pub id: ParticipantId,
    pub room: RoomId,
    pub rtc: Rtc,
    /// Our ICE ufrag: the first half of the USERNAME of the peer's STUN requests.
    pub ufrag: String,
    /// The ufrag str0m made at the last ICE restart, before the engine put the worker's
    /// prefix on it (`engine/restart.rs`): str0m's local candidates still name it, so every
    /// SDP sent to the peer has it replaced by `ufrag`.
    pub stale_ufrag: Option<String>,
    /// ICE restarted or was disconnected: when it connects again, every video it receives
    /// resumes on a keyframe asked for at once (`engine/restart.rs`), not when its
    /// decoder notices what it lost.
    pub keyframes_on_connect: bool,
    /// Source addresses routed to this participant (kept by `engine::routes::Routes`,
    /// bounded there).
    pub addrs: Vec<(SocketAddr, Transport)>,
    pub joined_at: Instant,
    /// ICE + DTLS completed at least once.
    pub connected: bool,
    pub disconnected_since: Option<Instant>,
    /// When str0m next wants `Input::Timeout`.
    pub next_timeout: Instant,
    /// Last time given to this `Rtc` (input or timeout). str0m often asks to be woken
    /// "now" after output; it has been polled to quiescence at that time already, so the
    /// engine does not feed it the same instant again (one str0m cycle saved per
    /// subscriber and packet).
    pub last_fed: Instant,
    /// Queued in `Engine::dirty` for polling.
    pub dirty: bool,
    /// Subscriptions changed; an offer is due when none is pending.
    pub renegotiate: bool,
    pub pending: Option<PendingOffer>,
    /// What the client said each m-line carries.
    pub source_hints: Vec<(Mid, TrackSource)>,
    /// `set_publishing` calls that arrived before the m-line was seen.
    pub publishing_overrides: Vec<(TrackSource, bool)>,
    pub publications: Vec<Publication>,
    pub subscriptions: Vec<Subscription>,
    /// Incoming SSRC → (mid, rid), filled from str0m's `StreamRx` on first sight.
    pub ssrc_cache: HashMap<Ssrc, (Mid, Option<Rid>)>,
    /// str0m's NACK totals per stream as last reported (`engine::quality`), so that the
    /// engine counts only what is new: `(mid, rid, outgoing)`.
    pub nacks_seen: HashMap<(Mid, Option<Rid>, bool), u64>,
    /// What the allocation knows of this participant as a subscriber (`engine/adapt.rs`).
    pub downlink: Downlink,
}

/// A subscriber's downlink, as the allocation sees it.
#[derive(Debug, Default)]
pub struct Downlink {
    /// str0m's TWCC estimate of what we can send it, bits per second (`None` before the
    /// first one, or with bandwidth estimation off: no limit then).
    pub estimate: Option<u64>,
    /// The tiles it last reported (`Engine::set_tile_views`); empty: none reported, the
    /// gallery rule applies.
    pub views: Vec<TileView>,
    /// When an allocation last moved one of its tracks down (upward moves wait
    /// `adapt::UP_HOLD` after it).
    pub last_down: Option<Instant>,
    /// The (minimum, desired) rates last given to str0m's BWE, bits per second.
    pub bwe_rates: (u64, u64),
}

impl Participant {
    /// Every m-line we send to this participant after the current negotiation.
    pub fn tracks(&self) -> Vec<OutgoingTrack> {
        self.subscriptions
            .iter()
            .filter(|s| !s.remove_after_answer)
            .filter_map(|s| match s.state {
                SubState::Negotiating(m) | SubState::Open(m) => Some(OutgoingTrack {
                    mid: m.to_string(),
                    from: s.publisher_id.clone(),
                    source: s.source,
                }),
                _ => None,
            })
            .collect()
    }

    /// Forget our unanswered offer: its changes were never applied by str0m.
    pub fn rollback_pending(&mut self) {
        if self.pending.take().is_none() {
            return;
        }
        self.undo_negotiating();
        self.renegotiate = true;
    }

    /// Put the changes of an offer that will not be answered (rolled back, or refused
    /// by str0m) back to be offered again: opening ones to `ToOpen`, stopping ones to
    /// `ToStop`; one that was to be removed after the answer just goes.
    pub fn undo_negotiating(&mut self) {
        self.subscriptions.retain_mut(|s| match s.state {
            SubState::Negotiating(_) if s.remove_after_answer => false,
            SubState::Negotiating(_) => {
                s.state = SubState::ToOpen;
                true
            }
            SubState::NegotiatingStop(m) => {
                s.state = SubState::ToStop(m);
                true
            }
            _ => true,
        });
    }
}

/// A track a participant sends (one of its m-lines).
#[derive(Debug)]
pub struct Publication {
    pub mid: Mid,
    pub kind: MediaKind,
    pub source: TrackSource,
    /// Offered to the other participants (mic/camera once media flows; screen share only
    /// between `set_publishing(.., true)` and `false`).
    pub published: bool,
    /// To be published when the participant starts sending (mic and camera unless
    /// `set_publishing` said otherwise). Not at once: a send-only m-line may carry
    /// nothing (a viewer's, a camera that is off), and offering it to everybody made
    /// every join renegotiate the whole room (docs/sfu.md, "Signalling").
    pub auto_publish: bool,
    /// The offer's m-line names a media stream (`a=msid:<stream> <track>`, stream not
    /// `-`): the client attached a track. Published together with the participant's
    /// first media, so that mic and camera reach the others in one offer.
    pub has_track: bool,
    /// Forwarding paused; subscribers keep their m-line.
    pub muted: bool,
    /// RTP arrived at least once.
    pub receiving: bool,
    /// `PublicationAdded` was emitted (and `PublicationRemoved` is owed).
    pub announced: bool,
    /// Incoming payload type → codec, cached (PTs are fixed by negotiation).
    pub pt_codec: Option<(Pt, Codec)>,
    /// Simulcast layers seen (one entry with rid `None` without simulcast).
    pub layers: Vec<LayerStat>,
    /// Layer currently chosen for subscribers.
    pub target: Option<Rid>,
    /// The layers chosen for subscribers that want at least 1 and 2 layers below the
    /// best (only kept up to date while the room has such subscribers).
    pub reduced_targets: [Option<Rid>; 2],
    pub keyframe: Vec<KeyframeState>,
    /// Its part in the room's recording, if the room is recorded.
    pub record: RecordState,
}

/// Rate limiting of keyframe requests to a publisher, per layer.
#[derive(Debug)]
pub struct KeyframeState {
    pub rid: Option<Rid>,
    pub last_sent: Instant,
    /// A request arrived while rate limited; send it when allowed.
    pub pending: bool,
}

/// One m-line this participant receives: another participant's publication.
#[derive(Debug)]
pub struct Subscription {
    pub publisher: Key,
    pub publisher_id: ParticipantId,
    /// The publication's mid on the publisher's connection.
    pub source_mid: Mid,
    pub kind: MediaKind,
    pub source: TrackSource,
    pub state: SubState,
    /// The publication went away while our offer adding it was pending.
    pub remove_after_answer: bool,
    /// Do not forward until a keyframe starts the stream (new subscriber, unmute).
    pub needs_keyframe: bool,
    /// Layer (rid) currently forwarded.
    pub layer: Option<Rid>,
    /// What the allocation decided for this subscriber (video only).
    pub grant: Grant,
    /// VP8 picture ID / TL0PICIDX / KEYIDX continuity across layer switches.
    pub vp8: Vp8Numbering,
    /// Outgoing payload type, resolved once per negotiation.
    pub out_pt: Option<(Codec, Pt)>,
    /// SSRC of the m-line's send stream, resolved once per negotiation: found by SSRC
    /// (one hash lookup) rather than by mid (a scan of the connection's send streams,
    /// two per other participant in a meeting).
    pub out_ssrc: Option<Ssrc>,
    pub rewriter: Rewriter,
}

/// The allocation's decision for one video subscription (`engine/adapt.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Grant {
    /// No allocation yet: the room's layer (gallery size, quality asked for).
    #[default]
    Room,
    /// This layer (`None`: the one stream of a camera sent without simulcast).
    Layer(Option<Rid>),
    /// Nothing: the tile is hidden, or the downlink has no room for it.
    Paused,
}

/// Negotiation state of a subscription's m-line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubState {
    /// To be added in the next offer.
    ToOpen,
    /// Added in the pending offer.
    Negotiating(Mid),
    /// Negotiated: packets flow.
    Open(Mid),
    /// To be stopped in the next offer.
    ToStop(Mid),
    /// Stopped in the pending offer; dropped when answered.
    NegotiatingStop(Mid),
}
