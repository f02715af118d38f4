//! Batched UDP send (`sendmmsg`) and per-thread CPU time: the two libc calls the floor
//! measurement needs. The only `unsafe` in the crate besides `sysconf`, kept here.
#![allow(unsafe_code)]

use std::io;
use std::net::{SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::Duration;

/// CPU time the calling thread has used (user + system).
pub fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant.
    let r = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if r != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn sockaddr(addr: SocketAddrV4) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: addr.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes(addr.ip().octets()),
        },
        sin_zero: [0; 8],
    }
}

/// Sends `packets[i]` to `dest[i]` with as few `sendmmsg` calls as it takes; returns
/// how many were sent (fewer when the socket buffer is full).
pub fn send_batch(
    socket: &UdpSocket,
    packets: &[&[u8]],
    dest: &[SocketAddrV4],
) -> io::Result<usize> {
    let n = packets.len().min(dest.len());
    let mut addrs: Vec<libc::sockaddr_in> = dest[..n].iter().map(|d| sockaddr(*d)).collect();
    let mut iovs: Vec<libc::iovec> = packets[..n]
        .iter()
        .map(|p| libc::iovec {
            iov_base: p.as_ptr() as *mut libc::c_void,
            iov_len: p.len(),
        })
        .collect();
    // SAFETY: mmsghdr is plain data; all-zero is a valid "empty" value.
    let mut msgs: Vec<libc::mmsghdr> = (0..n).map(|_| unsafe { std::mem::zeroed() }).collect();
    for i in 0..n {
        msgs[i].msg_hdr.msg_name = &mut addrs[i] as *mut libc::sockaddr_in as *mut libc::c_void;
        msgs[i].msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        msgs[i].msg_hdr.msg_iov = &mut iovs[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    let mut sent = 0;
    while sent < n {
        // SAFETY: `msgs[sent..n]` point into `addrs` and `iovs`, which outlive the call,
        // and each iovec points into a live packet slice that the kernel only reads.
        let r = unsafe {
            libc::sendmmsg(
                socket.as_raw_fd(),
                msgs[sent..].as_mut_ptr(),
                (n - sent) as libc::c_uint,
                0,
            )
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            if sent > 0 || e.kind() == io::ErrorKind::WouldBlock {
                return Ok(sent);
            }
            return Err(e);
        }
        if r == 0 {
            break;
        }
        sent += r as usize;
    }
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_arrives_intact() {
        let rx = UdpSocket::bind("127.0.0.1:0").expect("bind");
        rx.set_read_timeout(Some(Duration::from_secs(2)))
            .expect("timeout");
        let std::net::SocketAddr::V4(to) = rx.local_addr().expect("addr") else {
            panic!("v4")
        };
        let tx = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let a = [1u8; 10];
        let b = [2u8; 300];
        let sent = send_batch(&tx, &[&a, &b], &[to, to]).expect("send");
        assert_eq!(sent, 2);
        let mut buf = [0u8; 1500];
        assert_eq!(rx.recv(&mut buf).expect("first"), 10);
        assert_eq!(buf[0], 1);
        assert_eq!(rx.recv(&mut buf).expect("second"), 300);
        assert_eq!(buf[299], 2);
    }

    #[test]
    fn thread_cpu_advances_with_work() {
        let before = thread_cpu();
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = std::hint::black_box(x ^ i);
        }
        assert!(thread_cpu() > before);
    }
}
