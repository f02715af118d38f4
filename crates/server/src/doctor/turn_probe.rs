//! A minimal TURN client (RFC 8656) for `doctor`: one Allocate with the credentials the
//! service would hand to a browser, over UDP or TCP, then a Refresh with lifetime 0 to
//! release the relay. It answers "do the TURN server and our credentials agree?", the
//! seed's "Check TURN server credentials", without a browser.
//!
//! Only what that needs: the 401 challenge (REALM, NONCE), long-term credentials
//! (MESSAGE-INTEGRITY keyed with MD5(username:realm:password)), ERROR-CODE and
//! XOR-RELAYED-ADDRESS. Every length read from the network is checked.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::time::{Duration, Instant};

use hmac::{KeyInit, Mac};
use md5::Digest as _;

const MAGIC: u32 = 0x2112_A442;
const ALLOCATE: u16 = 0x0003;
const REFRESH: u16 = 0x0004;
const SUCCESS: u16 = 0x0100;
const ERROR: u16 = 0x0110;

const ATTR_USERNAME: u16 = 0x0006;
const ATTR_MESSAGE_INTEGRITY: u16 = 0x0008;
const ATTR_ERROR_CODE: u16 = 0x0009;
const ATTR_LIFETIME: u16 = 0x000D;
const ATTR_REALM: u16 = 0x0014;
const ATTR_NONCE: u16 = 0x0015;
const ATTR_XOR_RELAYED_ADDRESS: u16 = 0x0016;
const ATTR_REQUESTED_TRANSPORT: u16 = 0x0019;

/// The transport to the TURN server (the relay itself is always UDP).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// What the TURN server said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeResult {
    /// Allocated (and released again): the relay address the server granted.
    Allocated { relayed: Option<SocketAddr> },
    /// The server answered with an error, e.g. 401 for credentials it does not accept.
    Refused { code: u16, reason: String },
    /// No usable answer: unreachable, timed out, or not a TURN server.
    Failed(String),
}

/// Allocates a relay on `host:port` with `username`/`password` and releases it.
pub fn probe(
    host: &str,
    port: u16,
    transport: Transport,
    username: &str,
    password: &str,
    timeout: Duration,
) -> ProbeResult {
    let addr = match (host, port).to_socket_addrs().map(|mut a| a.next()) {
        Ok(Some(a)) => a,
        Ok(None) => return ProbeResult::Failed(format!("{host} has no address")),
        Err(e) => return ProbeResult::Failed(format!("cannot resolve {host}: {e}")),
    };
    let mut conn = match Conn::open(addr, transport, timeout) {
        Ok(c) => c,
        Err(e) => {
            return ProbeResult::Failed(format!("cannot reach {addr} over {transport:?}: {e}"));
        }
    };
    match allocate(&mut conn, username, password) {
        Ok(r) => r,
        Err(e) => ProbeResult::Failed(e),
    }
}

fn allocate(conn: &mut Conn, username: &str, password: &str) -> Result<ProbeResult, String> {
    // 1. Unauthenticated: the server challenges with 401, REALM and NONCE.
    let first = Message::new(ALLOCATE).attr(ATTR_REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
    let resp = conn.exchange(&first.encode(None))?;
    if resp.class() == SUCCESS {
        return Ok(ProbeResult::Allocated {
            relayed: resp.relayed(),
        });
    }
    let (code, reason) = resp.error().ok_or("an Allocate error without ERROR-CODE")?;
    if code != 401 {
        return Ok(ProbeResult::Refused { code, reason });
    }
    let realm = resp.get(ATTR_REALM).ok_or("a 401 without REALM")?.to_vec();
    let nonce = resp.get(ATTR_NONCE).ok_or("a 401 without NONCE")?.to_vec();

    // 2. With long-term credentials.
    let key = long_term_key(username, &String::from_utf8_lossy(&realm), password);
    let second = Message::new(ALLOCATE)
        .attr(ATTR_REQUESTED_TRANSPORT, &[17, 0, 0, 0])
        .attr(ATTR_USERNAME, username.as_bytes())
        .attr(ATTR_REALM, &realm)
        .attr(ATTR_NONCE, &nonce);
    let resp = conn.exchange(&second.encode(Some(&key)))?;
    if resp.class() != SUCCESS {
        let (code, reason) = resp.error().ok_or("an Allocate error without ERROR-CODE")?;
        return Ok(ProbeResult::Refused { code, reason });
    }
    let relayed = resp.relayed();
    // 3. Release the relay at once (best effort: it expires by itself otherwise).
    let release = Message::new(REFRESH)
        .attr(ATTR_LIFETIME, &0u32.to_be_bytes())
        .attr(ATTR_USERNAME, username.as_bytes())
        .attr(ATTR_REALM, &realm)
        .attr(ATTR_NONCE, &nonce);
    let _ = conn.exchange(&release.encode(Some(&key)));
    Ok(ProbeResult::Allocated { relayed })
}

fn long_term_key(username: &str, realm: &str, password: &str) -> Vec<u8> {
    md5::Md5::digest(format!("{username}:{realm}:{password}").as_bytes()).to_vec()
}

struct Message {
    method: u16,
    txid: [u8; 12],
    attrs: Vec<(u16, Vec<u8>)>,
}

impl Message {
    fn new(method: u16) -> Message {
        let mut txid = [0u8; 12];
        rand::Rng::fill(&mut rand::rng(), &mut txid);
        Message {
            method,
            txid,
            attrs: Vec::new(),
        }
    }

    fn attr(mut self, kind: u16, value: &[u8]) -> Message {
        self.attrs.push((kind, value.to_vec()));
        self
    }

    /// The wire form; with `key`, MESSAGE-INTEGRITY last (RFC 8489 §14.5).
    fn encode(&self, key: Option<&[u8]>) -> Vec<u8> {
        let mut body = Vec::new();
        for (kind, value) in &self.attrs {
            push_attr(&mut body, *kind, value);
        }
        let mut out = Vec::with_capacity(20 + body.len() + 24);
        out.extend_from_slice(&self.method.to_be_bytes());
        let mi_len = if key.is_some() { 24 } else { 0 };
        out.extend_from_slice(&((body.len() + mi_len) as u16).to_be_bytes());
        out.extend_from_slice(&MAGIC.to_be_bytes());
        out.extend_from_slice(&self.txid);
        out.extend_from_slice(&body);
        if let Some(key) = key
            && let Ok(mut mac) = <hmac::Hmac<sha1::Sha1> as KeyInit>::new_from_slice(key)
        {
            mac.update(&out);
            let tag = mac.finalize().into_bytes();
            push_attr(&mut out, ATTR_MESSAGE_INTEGRITY, &tag);
        }
        out
    }
}

fn push_attr(out: &mut Vec<u8>, kind: u16, value: &[u8]) {
    out.extend_from_slice(&kind.to_be_bytes());
    out.extend_from_slice(&(value.len() as u16).to_be_bytes());
    out.extend_from_slice(value);
    out.resize(out.len() + (4 - value.len() % 4) % 4, 0);
}

/// A parsed response.
struct Response {
    kind: u16,
    txid: [u8; 12],
    attrs: Vec<(u16, Vec<u8>)>,
}

impl Response {
    fn parse(buf: &[u8]) -> Result<Response, String> {
        if buf.len() < 20 {
            return Err("a short reply (not STUN)".into());
        }
        let kind = u16::from_be_bytes([buf[0], buf[1]]);
        let len = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
        if u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]) != MAGIC || buf.len() < 20 + len {
            return Err("a reply that is not STUN (is this a TURN server?)".into());
        }
        let mut txid = [0u8; 12];
        txid.copy_from_slice(&buf[8..20]);
        let mut attrs = Vec::new();
        let mut rest = &buf[20..20 + len];
        while rest.len() >= 4 {
            let t = u16::from_be_bytes([rest[0], rest[1]]);
            let l = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
            let padded = l + (4 - l % 4) % 4;
            if rest.len() < 4 + l {
                return Err("a truncated STUN attribute".into());
            }
            attrs.push((t, rest[4..4 + l].to_vec()));
            rest = &rest[(4 + padded).min(rest.len())..];
        }
        Ok(Response { kind, txid, attrs })
    }

    fn class(&self) -> u16 {
        self.kind & 0x0110
    }

    fn get(&self, kind: u16) -> Option<&[u8]> {
        self.attrs
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, v)| v.as_slice())
    }

    fn error(&self) -> Option<(u16, String)> {
        if self.class() != ERROR {
            return None;
        }
        let v = self.get(ATTR_ERROR_CODE)?;
        if v.len() < 4 {
            return None;
        }
        let code = u16::from(v[2] & 0x07) * 100 + u16::from(v[3]);
        Some((code, String::from_utf8_lossy(&v[4..]).into_owned()))
    }

    fn relayed(&self) -> Option<SocketAddr> {
        let v = self.get(ATTR_XOR_RELAYED_ADDRESS)?;
        if v.len() < 8 {
            return None;
        }
        let port = u16::from_be_bytes([v[2], v[3]]) ^ (MAGIC >> 16) as u16;
        let ip = match v[1] {
            0x01 => IpAddr::V4(Ipv4Addr::from(
                u32::from_be_bytes([v[4], v[5], v[6], v[7]]) ^ MAGIC,
            )),
            0x02 if v.len() >= 20 => {
                let mut mask = [0u8; 16];
                mask[..4].copy_from_slice(&MAGIC.to_be_bytes());
                mask[4..].copy_from_slice(&self.txid);
                let mut b = [0u8; 16];
                for i in 0..16 {
                    b[i] = v[4 + i] ^ mask[i];
                }
                IpAddr::V6(Ipv6Addr::from(b))
            }
            _ => return None,
        };
        Some(SocketAddr::new(ip, port))
    }
}

enum Conn {
    Udp(UdpSocket, Duration),
    Tcp(TcpStream),
}

impl Conn {
    fn open(addr: SocketAddr, transport: Transport, timeout: Duration) -> std::io::Result<Conn> {
        match transport {
            Transport::Udp => {
                let bind: SocketAddr = if addr.is_ipv4() {
                    (Ipv4Addr::UNSPECIFIED, 0).into()
                } else {
                    (Ipv6Addr::UNSPECIFIED, 0).into()
                };
                let s = UdpSocket::bind(bind)?;
                s.connect(addr)?;
                Ok(Conn::Udp(s, timeout))
            }
            Transport::Tcp => {
                let s = TcpStream::connect_timeout(&addr, timeout)?;
                s.set_read_timeout(Some(timeout))?;
                s.set_write_timeout(Some(timeout))?;
                Ok(Conn::Tcp(s))
            }
        }
    }

    /// Sends a request and returns the response with the same transaction id.
    fn exchange(&mut self, request: &[u8]) -> Result<Response, String> {
        let txid = &request[8..20];
        match self {
            Conn::Udp(s, timeout) => {
                // Retransmit like a STUN client would (RFC 8489 §6.2.1), within the timeout.
                let deadline = Instant::now() + *timeout;
                let mut rto = Duration::from_millis(250);
                let mut buf = [0u8; 1500];
                while Instant::now() < deadline {
                    s.send(request).map_err(|e| format!("send: {e}"))?;
                    let wait = rto
                        .min(deadline.saturating_duration_since(Instant::now()))
                        .max(Duration::from_millis(1));
                    s.set_read_timeout(Some(wait)).map_err(|e| e.to_string())?;
                    match s.recv(&mut buf) {
                        Ok(n) => {
                            let r = Response::parse(&buf[..n])?;
                            if r.txid == txid {
                                return Ok(r);
                            }
                        }
                        Err(e)
                            if matches!(
                                e.kind(),
                                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                            ) => {}
                        Err(e) => return Err(format!("no answer: {e}")),
                    }
                    rto = (rto * 2).min(Duration::from_secs(2));
                }
                Err(format!("no answer within {} s over UDP", timeout.as_secs()))
            }
            Conn::Tcp(s) => {
                s.write_all(request).map_err(|e| format!("send: {e}"))?;
                // Responses to our one outstanding request; skip anything else (bounded).
                for _ in 0..8 {
                    let mut head = [0u8; 20];
                    s.read_exact(&mut head)
                        .map_err(|e| format!("no answer over TCP: {e}"))?;
                    let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
                    let mut msg = head.to_vec();
                    msg.resize(20 + len, 0);
                    s.read_exact(&mut msg[20..])
                        .map_err(|e| format!("a truncated answer over TCP: {e}"))?;
                    let r = Response::parse(&msg)?;
                    if r.txid == txid {
                        return Ok(r);
                    }
                }
                Err("no answer to our request over TCP".into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integrity_covers_the_header_with_its_own_length() {
        let m = Message::new(ALLOCATE).attr(ATTR_USERNAME, b"abc");
        let key = long_term_key("abc", "realm", "pw");
        let wire = m.encode(Some(&key));
        // header 20 + USERNAME (4 + 3 + 1 pad) + MESSAGE-INTEGRITY (4 + 20)
        assert_eq!(wire.len(), 20 + 8 + 24);
        assert_eq!(u16::from_be_bytes([wire[2], wire[3]]), 32);
        let mut mac = <hmac::Hmac<sha1::Sha1> as KeyInit>::new_from_slice(&key).expect("key");
        mac.update(&wire[..28]);
        assert_eq!(&wire[32..], mac.finalize().into_bytes().as_slice());
    }

    #[test]
    fn long_term_key_is_md5_of_user_realm_password() {
        // python3 -c "import hashlib; print(hashlib.md5(b'user:realm:pass').hexdigest())"
        let hex: String = long_term_key("user", "realm", "pass")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(hex, "8493fbc53ba582fb4c044c456bdc40eb");
    }

    #[test]
    fn garbage_is_refused_not_panicked_on() {
        for buf in [
            &[][..],
            &[0u8; 19][..],
            &[
                1, 1, 0, 200, 0x21, 0x12, 0xA4, 0x42, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            ][..],
        ] {
            assert!(Response::parse(buf).is_err());
        }
        // An attribute claiming more than the message holds.
        let mut m = vec![1, 0x13, 0, 8, 0x21, 0x12, 0xA4, 0x42];
        m.extend_from_slice(&[0; 12]);
        m.extend_from_slice(&[0, 9, 0, 200, 0, 0, 4, 1]);
        assert!(Response::parse(&m).is_err());
    }
}
