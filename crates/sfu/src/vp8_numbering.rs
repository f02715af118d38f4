//! VP8 payload-descriptor numbering of one subscription: the picture ID, TL0PICIDX and
//! KEYIDX the subscriber sees stay continuous when its stream switches simulcast layer
//! (or resumes after a pause).
//!
//! Why: each simulcast layer is its own encoder with its own picture-ID space. A decoder
//! that sees the picture ID jump takes the frames in between as lost (Chrome's VP8
//! reference finder then waits for or asks for a keyframe, and counts a freeze). The
//! sequence number and timestamp are `forward::Rewriter`'s job; this is the same idea one
//! layer up. The bytes are changed by str0m while it writes the packet
//! (`RtpWrite::vp8_patch`, built from `str0m::rtp::Vp8Descriptor`), so the shared
//! payload is never copied; a subscription that never switched needs no patch at all.

use str0m::rtp::{Vp8Descriptor, Vp8Patch};

const PICTURE_ID_MASK: u16 = 0x7fff;
const KEY_IDX_MASK: u8 = 0x1f;

/// The numbering fields of one packet's VP8 payload descriptor (each optional).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Vp8Fields {
    pub picture_id: Option<u16>,
    pub tl0_pic_idx: Option<u8>,
    pub key_idx: Option<u8>,
}

impl Vp8Fields {
    pub fn of(d: &Vp8Descriptor) -> Self {
        Vp8Fields {
            picture_id: d.picture_id(),
            tl0_pic_idx: d.tl0_pic_idx(),
            key_idx: d.key_idx(),
        }
    }
}

/// Offsets from incoming to outgoing numbering, and the last numbers sent.
#[derive(Clone, Copy, Debug, Default)]
pub struct Vp8Numbering {
    picture_id_offset: u16,
    tl0_offset: u8,
    key_idx_offset: u8,
    last: Vp8Fields,
}

impl Vp8Numbering {
    /// The packet `incoming` starts a new incoming stream (the first packet of a
    /// keyframe): continue from the last numbers sent. The first stream keeps its own.
    pub fn rebase(&mut self, incoming: Vp8Fields) {
        if let (Some(last), Some(now)) = (self.last.picture_id, incoming.picture_id) {
            self.picture_id_offset = last.wrapping_add(1).wrapping_sub(now) & PICTURE_ID_MASK;
        }
        if let (Some(last), Some(now)) = (self.last.tl0_pic_idx, incoming.tl0_pic_idx) {
            self.tl0_offset = last.wrapping_add(1).wrapping_sub(now);
        }
        if let (Some(last), Some(now)) = (self.last.key_idx, incoming.key_idx) {
            self.key_idx_offset = last.wrapping_add(1).wrapping_sub(now) & KEY_IDX_MASK;
        }
    }

    /// The outgoing numbers of a packet, remembered when newer than the last ones (a
    /// reordered packet must not pull the next switch's starting point back).
    pub fn map(&mut self, incoming: Vp8Fields) -> Vp8Fields {
        let out = Vp8Fields {
            picture_id: incoming
                .picture_id
                .map(|p| p.wrapping_add(self.picture_id_offset) & PICTURE_ID_MASK),
            tl0_pic_idx: incoming
                .tl0_pic_idx
                .map(|t| t.wrapping_add(self.tl0_offset)),
            key_idx: incoming
                .key_idx
                .map(|k| k.wrapping_add(self.key_idx_offset) & KEY_IDX_MASK),
        };
        let newer = match (self.last.picture_id, out.picture_id) {
            (Some(last), Some(p)) => (p.wrapping_sub(last) & PICTURE_ID_MASK) < 0x4000,
            _ => true,
        };
        if newer {
            self.last = Vp8Fields {
                picture_id: out.picture_id.or(self.last.picture_id),
                tl0_pic_idx: out.tl0_pic_idx.or(self.last.tl0_pic_idx),
                key_idx: out.key_idx.or(self.last.key_idx),
            };
        }
        out
    }

    /// No switch has happened: the incoming numbers go out unchanged.
    pub fn is_identity(&self) -> bool {
        self.picture_id_offset == 0 && self.tl0_offset == 0 && self.key_idx_offset == 0
    }

    /// The patch that writes `out` into a packet with descriptor `d`. A picture ID that
    /// does not fit a 7-bit field is cut to 7 bits (wrapping, as the sender's own would);
    /// `None` when the descriptor cannot take the fields (then the packet goes unchanged).
    pub fn patch(d: &Vp8Descriptor, out: Vp8Fields) -> Option<Vp8Patch> {
        let build = |picture_id: Option<u16>| {
            let mut b = d.patch();
            if let Some(p) = picture_id {
                b = b.picture_id(p);
            }
            if let Some(t) = out.tl0_pic_idx {
                b = b.tl0_pic_idx(t);
            }
            if let Some(k) = out.key_idx {
                b = b.key_idx(k);
            }
            b.build()
        };
        build(out.picture_id)
            .or_else(|_| build(out.picture_id.map(|p| p & 0x7f)))
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(p: u16, t: u8, k: u8) -> Vp8Fields {
        Vp8Fields {
            picture_id: Some(p),
            tl0_pic_idx: Some(t),
            key_idx: Some(k),
        }
    }

    #[test]
    fn numbering_continues_across_a_switch() {
        let mut n = Vp8Numbering::default();
        // The first stream keeps its numbers.
        assert_eq!(n.map(fields(100, 7, 3)), fields(100, 7, 3));
        assert_eq!(n.map(fields(101, 8, 3)), fields(101, 8, 3));
        assert!(n.is_identity());
        // A reordered older packet does not move the starting point of the next switch.
        assert_eq!(n.map(fields(99, 6, 3)), fields(99, 6, 3));
        // Another layer, unrelated numbers (and wrapping ones): continues at 102, 9, 4.
        n.rebase(fields(32_760, 250, 31));
        assert!(!n.is_identity());
        assert_eq!(n.map(fields(32_760, 250, 31)), fields(102, 9, 4));
        assert_eq!(n.map(fields(32_767, 251, 31)), fields(109, 10, 4));
        assert_eq!(n.map(fields(0, 252, 0)), fields(110, 11, 5));
        // And back: 111.
        n.rebase(fields(102, 9, 3));
        assert_eq!(n.map(fields(102, 9, 3)), fields(111, 12, 6));
    }

    #[test]
    fn picture_ids_wrap_at_15_bits() {
        let mut n = Vp8Numbering::default();
        n.map(fields(32_767, 0, 0));
        n.rebase(fields(5, 0, 0));
        assert_eq!(n.map(fields(5, 0, 0)).picture_id, Some(0));
    }

    #[test]
    fn patch_fits_the_descriptor() {
        // X=1, S=1; I, L, T set; 15-bit picture id 0x0102; TL0PICIDX 5; TID 1.
        let payload = [0x90, 0xe0, 0x81, 0x02, 0x05, 0x40, 0x00, 0x00];
        let d = Vp8Descriptor::parse(&payload).expect("valid descriptor");
        assert_eq!(d.picture_id(), Some(0x0102));
        let out = Vp8Fields {
            picture_id: Some(0x7000),
            tl0_pic_idx: Some(9),
            key_idx: None,
        };
        assert!(Vp8Numbering::patch(&d, out).is_some());
        // A 7-bit picture id takes the value cut to 7 bits.
        let short = [0x90, 0x80, 0x05, 0x00, 0x00];
        let d = Vp8Descriptor::parse(&short).expect("valid descriptor");
        assert!(Vp8Numbering::patch(&d, Vp8Fields::of(&d)).is_some());
        assert!(
            Vp8Numbering::patch(
                &d,
                Vp8Fields {
                    picture_id: Some(0x1234),
                    ..Default::default()
                }
            )
            .is_some()
        );
        // A field the descriptor does not have: no patch.
        let out = Vp8Fields {
            key_idx: Some(1),
            ..Default::default()
        };
        assert!(Vp8Numbering::patch(&d, out).is_none());
    }
}
