//! The VP8 RTP payload (RFC 7741) as far as recording needs it: where the payload
//! descriptor ends, whether a packet starts a frame, and a keyframe's picture size.
//!
//! Written here because str0m's depacketizer is not part of its public API in the
//! version we use (0.25: `unversioned` only), and the descriptor is a few bytes.

/// Where the VP8 frame data starts in an RTP payload, and whether the packet starts a
/// frame (S = 1 and partition 0). `None` for a payload too short for its descriptor.
pub fn descriptor(payload: &[u8]) -> Option<(usize, bool)> {
    let b0 = *payload.first()?;
    let start = b0 & 0x10 != 0 && b0 & 0x07 == 0;
    let mut i = 1;
    if b0 & 0x80 != 0 {
        let x = *payload.get(i)?;
        i += 1;
        if x & 0x80 != 0 {
            // PictureID: 7 or 15 bits.
            let m = *payload.get(i)?;
            i += if m & 0x80 != 0 { 2 } else { 1 };
        }
        if x & 0x40 != 0 {
            i += 1; // TL0PICIDX
        }
        if x & 0x30 != 0 {
            i += 1; // TID/Y/KEYIDX
        }
    }
    (i <= payload.len()).then_some((i, start))
}

/// A VP8 frame's key-frame flag (bit 0 of the frame tag is 0 for a keyframe).
pub fn is_keyframe(frame: &[u8]) -> bool {
    frame.first().is_some_and(|b| b & 0x01 == 0)
}

/// Width and height from a keyframe's header (RFC 6386, 9.1): the 3-byte frame tag,
/// the start code 9d 01 2a, then 14-bit width and height.
pub fn keyframe_size(frame: &[u8]) -> Option<(u32, u32)> {
    if !is_keyframe(frame) || frame.get(3..6)? != [0x9d, 0x01, 0x2a] {
        return None;
    }
    let w = u16::from_le_bytes([*frame.get(6)?, *frame.get(7)?]) & 0x3fff;
    let h = u16::from_le_bytes([*frame.get(8)?, *frame.get(9)?]) & 0x3fff;
    (w > 0 && h > 0).then_some((u32::from(w), u32::from(h)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptors_of_the_shapes_browsers_send() {
        // Minimal: S=1, PID=0.
        assert_eq!(descriptor(&[0x10, 0xaa]), Some((1, true)));
        // X with a 15-bit PictureID, TL0PICIDX and TID: 5 bytes, a continuation packet.
        assert_eq!(
            descriptor(&[0x80, 0xe0, 0x81, 0x23, 0x05, 0x40, 0xaa]),
            Some((6, false))
        );
        // X with a 7-bit PictureID, start of a frame.
        assert_eq!(descriptor(&[0x90, 0x80, 0x12, 0xaa]), Some((3, true)));
        // Truncated descriptors are refused, not read past.
        assert_eq!(descriptor(&[]), None);
        assert_eq!(descriptor(&[0x80]), None);
        assert_eq!(descriptor(&[0x80, 0x80, 0x81]), None);
    }

    #[test]
    fn a_keyframe_s_size() {
        // Frame tag (keyframe, show), start code, 640x360 with scale bits set.
        let frame = [
            0x50, 0x2a, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x42, 0x68, 0x41, 0,
        ];
        assert_eq!(keyframe_size(&frame), Some((640, 360)));
        let mut inter = frame;
        inter[0] |= 1;
        assert_eq!(keyframe_size(&inter), None);
        assert_eq!(keyframe_size(&frame[..8]), None);
    }
}
