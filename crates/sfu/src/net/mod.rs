//! The workers' sockets: batched UDP ([`udp`]), ICE-TCP connections ([`tcp`]) and the
//! one-port demultiplexer ([`demux`]). Everything here is I/O; the engine never sees it.

pub(crate) mod demux;
pub(crate) mod tcp;
pub(crate) mod udp;

use str0m::ice::StunMessage;

/// Start of the local ICE ufrag of every participant on worker `index`. ICE ufrags may
/// hold letters, digits, `+` and `/` (RFC 8839); the `+` ends the index.
pub(crate) fn ufrag_prefix(index: usize) -> String {
    format!("w{index}+")
}

/// The worker named by a STUN request's USERNAME (`<our ufrag>:<peer ufrag>`), if the
/// datagram is a STUN message with one of our ufrags. Checked, not trusted: the worker's
/// `Rtc` verifies the message integrity before anything is learnt from it.
pub(crate) fn worker_of_stun(data: &[u8]) -> Option<usize> {
    let msg = StunMessage::parse(data).ok()?;
    let (local, _) = msg.split_username()?;
    let (index, _) = local.strip_prefix('w')?.split_once('+')?;
    index.parse().ok()
}

/// RFC 7983: STUN messages start with a byte in 0..=3.
pub(crate) fn is_stun(data: &[u8]) -> bool {
    data.first().is_some_and(|b| *b < 4)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A binding request with USERNAME `user` and the attributes a request needs to parse.
    fn request(user: &str) -> Vec<u8> {
        fn attr(m: &mut Vec<u8>, typ: u16, value: &[u8]) {
            m.extend_from_slice(&typ.to_be_bytes());
            m.extend_from_slice(&(value.len() as u16).to_be_bytes());
            m.extend_from_slice(value);
            m.resize(m.len().div_ceil(4) * 4, 0);
        }
        let mut m = vec![0x00, 0x01, 0, 0, 0x21, 0x12, 0xa4, 0x42];
        m.extend_from_slice(&[7; 12]);
        attr(&mut m, 0x0006, user.as_bytes());
        attr(&mut m, 0x0024, &[0x6e, 0x7f, 0x1e, 0xff]);
        attr(&mut m, 0x0008, &[0; 20]);
        let len = (m.len() - 20) as u16;
        m[2..4].copy_from_slice(&len.to_be_bytes());
        m
    }

    #[test]
    fn a_request_names_its_worker_by_our_ufrag() {
        let ours = format!("{}Ab3dEf:theirs", ufrag_prefix(12));
        assert!(is_stun(&request(&ours)));
        assert_eq!(worker_of_stun(&request(&ours)), Some(12));
        assert_eq!(worker_of_stun(&request("w0+x:y")), Some(0));
        // Not one of ours, or no worker number: nobody.
        assert_eq!(worker_of_stun(&request("Ab3dEf:theirs")), None);
        assert_eq!(worker_of_stun(&request("wx+y:z")), None);
        assert_eq!(
            worker_of_stun(&request("w99999999999999999999999+y:z")),
            None
        );
    }

    #[test]
    fn random_stun_shaped_datagrams_never_panic() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..200_000 {
            // A valid header (type, length, cookie) over random attributes, so that the
            // parser gets past its first checks; and sometimes pure noise.
            let body = 4 * rng.random_range(0..40usize);
            let mut m = vec![0u8; 20 + body];
            rng.fill(&mut m[..]);
            if rng.random_bool(0.9) {
                m[0] = rng.random_range(0..4);
                m[2..4].copy_from_slice(&(body as u16).to_be_bytes());
                m[4..8].copy_from_slice(&[0x21, 0x12, 0xa4, 0x42]);
            }
            let _ = worker_of_stun(&m);
        }
        // Truncated real requests too.
        let full = request("w3+abc:def");
        for n in 0..full.len() {
            assert_eq!(worker_of_stun(&full[..n]), None);
        }
        assert_eq!(worker_of_stun(&full), Some(3));
    }

    #[test]
    fn the_prefix_round_trips_and_junk_names_no_worker() {
        assert_eq!(ufrag_prefix(3), "w3+");
        assert_eq!(worker_of_stun(b""), None);
        assert_eq!(worker_of_stun(&[0, 1, 0, 0]), None);
        assert_eq!(worker_of_stun(&[0x80; 40]), None);
    }
}
