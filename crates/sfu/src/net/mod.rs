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

    #[test]
    fn the_prefix_round_trips_and_junk_names_no_worker() {
        assert_eq!(ufrag_prefix(3), "w3+");
        assert_eq!(worker_of_stun(b""), None);
        assert_eq!(worker_of_stun(&[0, 1, 0, 0]), None);
        assert_eq!(worker_of_stun(&[0x80; 40]), None);
    }
}
