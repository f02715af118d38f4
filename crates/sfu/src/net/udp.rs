//! Batched UDP: `recvmmsg` to drain a socket and `sendmmsg` to send what one drive of
//! the engine produced, through `nix`'s safe wrappers. One system call per burst instead
//! of one per datagram is the largest single saving on the send side (the floor
//! measurement in docs/benchmarks.md puts it near 1 µs per packet).

use std::io::{self, IoSlice, IoSliceMut};
#[cfg(test)]
use std::net::UdpSocket;
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsFd, AsRawFd};

use nix::errno::Errno;
use nix::sys::socket::{
    MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg, sendmmsg, setsockopt, sockopt,
};

/// Most datagrams read or sent per system call.
pub(crate) const BURST: usize = 32;
/// Receive buffer per datagram: above any WebRTC MTU (str0m sends at most 1150 bytes,
/// browsers about 1200); a longer datagram is truncated by the kernel and dropped here.
const DATAGRAM_MAX: usize = 2048;
/// Socket buffers asked for. The default (about 200 KB) overflows when a burst of video
/// key frames from many publishers arrives while the worker is busy sending; 4 MB holds
/// about 3,000 full-size packets.
pub(crate) const SOCKET_BUFFER: usize = 4 << 20;

/// Enlarge the socket's buffers. As root (`CAP_NET_ADMIN`) the `*FORCE` options pass
/// `net.core.rmem_max`/`wmem_max`; otherwise the kernel caps the request at those
/// limits. Returns the sizes the kernel granted (it reports twice what it stores for
/// bookkeeping), for the start-up log.
pub(crate) fn enlarge_buffers(socket: &impl AsFd) -> (usize, usize) {
    if setsockopt(socket, sockopt::RcvBufForce, &SOCKET_BUFFER).is_err() {
        let _ = setsockopt(socket, sockopt::RcvBuf, &SOCKET_BUFFER);
    }
    if setsockopt(socket, sockopt::SndBufForce, &SOCKET_BUFFER).is_err() {
        let _ = setsockopt(socket, sockopt::SndBuf, &SOCKET_BUFFER);
    }
    let get = |o| match o {
        true => nix::sys::socket::getsockopt(socket, sockopt::RcvBuf).unwrap_or(0),
        false => nix::sys::socket::getsockopt(socket, sockopt::SndBuf).unwrap_or(0),
    };
    (get(true), get(false))
}

/// Buffers and headers for `recvmmsg`, allocated once per worker.
pub(crate) struct Receiver {
    bufs: Vec<Vec<u8>>,
    headers: MultiHeaders<SockaddrStorage>,
    /// What the last [`Receiver::recv`] got: (index into the buffers, source, length).
    got: Vec<(usize, SocketAddr, usize)>,
}

impl Receiver {
    pub(crate) fn new() -> Receiver {
        Receiver {
            bufs: (0..BURST).map(|_| vec![0u8; DATAGRAM_MAX]).collect(),
            headers: MultiHeaders::preallocate(BURST, None),
            got: Vec::with_capacity(BURST),
        }
    }

    /// Read up to [`BURST`] queued datagrams without blocking. `Ok(0)`: none queued
    /// (the socket would block). Truncated datagrams are skipped.
    pub(crate) fn recv(&mut self, socket: &impl AsFd) -> io::Result<usize> {
        self.got.clear();
        let mut slices: Vec<[IoSliceMut<'_>; 1]> =
            self.bufs.iter_mut().map(|b| [IoSliceMut::new(b)]).collect();
        let results = match recvmmsg(
            socket.as_fd().as_raw_fd(),
            &mut self.headers,
            slices.iter_mut(),
            MsgFlags::MSG_DONTWAIT,
            None,
        ) {
            Ok(r) => r,
            Err(Errno::EAGAIN) => return Ok(0),
            Err(Errno::EINTR) => return Ok(0),
            Err(e) => return Err(e.into()),
        };
        let mut read = 0;
        for (i, msg) in results.enumerate() {
            read += 1;
            if msg.flags.contains(MsgFlags::MSG_TRUNC) {
                continue;
            }
            if let Some(source) = msg.address.as_ref().and_then(socket_addr) {
                self.got.push((i, source, msg.bytes));
            }
        }
        Ok(read)
    }

    /// The datagrams of the last [`Receiver::recv`].
    pub(crate) fn datagrams(&self) -> impl Iterator<Item = (SocketAddr, &[u8])> {
        self.got
            .iter()
            .map(|&(i, source, n)| (source, &self.bufs[i][..n]))
    }
}

fn socket_addr(s: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = s.as_sockaddr_in() {
        return Some(SocketAddr::V4(SocketAddrV4::from(*v4)));
    }
    s.as_sockaddr_in6()
        .map(|v6| SocketAddr::V6(SocketAddrV6::from(*v6)))
}

/// Datagrams waiting to be sent with `sendmmsg`.
pub(crate) struct Sender {
    queue: Vec<(SocketAddr, Vec<u8>)>,
    headers: MultiHeaders<SockaddrStorage>,
}

/// What one [`Sender::flush`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Flushed {
    pub sent: usize,
    /// Datagrams the kernel refused (socket buffer full, unreachable destination): UDP
    /// is lossy anyway and the peers' RTCP recovers, so they are dropped, not retried.
    pub dropped: usize,
}

impl Sender {
    pub(crate) fn new() -> Sender {
        Sender {
            queue: Vec::with_capacity(BURST),
            headers: MultiHeaders::preallocate(BURST, None),
        }
    }

    pub(crate) fn push(&mut self, destination: SocketAddr, contents: Vec<u8>) {
        self.queue.push((destination, contents));
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }

    /// Send everything queued, [`BURST`] datagrams per system call.
    pub(crate) fn flush(&mut self, socket: &impl AsFd) -> Flushed {
        let mut done = Flushed::default();
        let mut start = 0;
        // Bounded: every round either sends at least one datagram or drops one.
        while start < self.queue.len() {
            let end = (start + BURST).min(self.queue.len());
            let chunk = &self.queue[start..end];
            let slices: Vec<[IoSlice<'_>; 1]> =
                chunk.iter().map(|(_, c)| [IoSlice::new(c)]).collect();
            let addrs: Vec<Option<SockaddrStorage>> = chunk
                .iter()
                .map(|(d, _)| Some(SockaddrStorage::from(*d)))
                .collect();
            match sendmmsg(
                socket.as_fd().as_raw_fd(),
                &mut self.headers,
                slices.iter(),
                &addrs,
                [],
                MsgFlags::MSG_DONTWAIT,
            ) {
                Ok(r) => {
                    let n = r.count();
                    if n == 0 {
                        done.dropped += 1;
                        start += 1;
                    } else {
                        done.sent += n;
                        start += n;
                    }
                }
                Err(Errno::EINTR) => {}
                // The first datagram of the chunk failed (full buffer, ICMP error of an
                // earlier send, bad address): drop it and go on with the rest.
                Err(_) => {
                    done.dropped += 1;
                    start += 1;
                }
            }
        }
        self.queue.clear();
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_goes_out_and_comes_back_in_order() {
        let a = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let b = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let to = b.local_addr().expect("addr");
        let from = a.local_addr().expect("addr");
        let mut tx = Sender::new();
        for i in 0..(BURST + 5) {
            tx.push(to, vec![i as u8; 100 + i]);
        }
        let flushed = tx.flush(&a);
        assert_eq!(
            flushed,
            Flushed {
                sent: BURST + 5,
                dropped: 0
            }
        );
        assert!(tx.is_empty());

        let mut rx = Receiver::new();
        let mut seen = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while seen.len() < BURST + 5 && std::time::Instant::now() < deadline {
            if rx.recv(&b).expect("recv") == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
            for (source, data) in rx.datagrams() {
                assert_eq!(source, from);
                seen.push(data.to_vec());
            }
        }
        assert_eq!(seen.len(), BURST + 5);
        for (i, d) in seen.iter().enumerate() {
            assert_eq!(d.len(), 100 + i);
            assert!(d.iter().all(|&x| x == i as u8));
        }
    }

    #[test]
    fn an_oversized_datagram_is_skipped_not_truncated() {
        let a = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let b = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let to = b.local_addr().expect("addr");
        a.send_to(&vec![1u8; DATAGRAM_MAX + 100], to).expect("send");
        a.send_to(&[2u8; 10], to).expect("send");
        let mut rx = Receiver::new();
        let mut seen = Vec::new();
        for _ in 0..500 {
            rx.recv(&b).expect("recv");
            seen.extend(rx.datagrams().map(|(_, d)| d.to_vec()));
            if !seen.is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        assert_eq!(seen, vec![vec![2u8; 10]]);
    }

    #[test]
    fn an_unreachable_destination_is_dropped_and_the_rest_sent() {
        let a = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let b = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let mut tx = Sender::new();
        // Port 0 is refused by the kernel (EINVAL) without sending anything.
        tx.push("127.0.0.1:0".parse().expect("addr"), vec![0; 10]);
        tx.push(b.local_addr().expect("addr"), vec![1; 10]);
        let flushed = tx.flush(&a);
        assert_eq!(
            flushed,
            Flushed {
                sent: 1,
                dropped: 1
            }
        );
    }

    #[test]
    fn buffers_grow() {
        let a = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let before = nix::sys::socket::getsockopt(&a, sockopt::RcvBuf).expect("get");
        let (rcv, snd) = enlarge_buffers(&a);
        // Without privileges the kernel may cap at rmem_max, which can equal the
        // default: then at least nothing shrank.
        assert!(rcv >= before && snd > 0, "{before} -> {rcv}/{snd}");
    }
}
