//! The physical floor: the least CPU any SFU can spend per forwarded packet, which is
//! to SRTP-protect it for the subscriber and hand it to the kernel. Measured here on
//! the same packets the load scenario sends (a publisher's audio + video mix), with
//! str0m's own cipher implementations (the same crypto provider the SFU uses), into
//! preallocated buffers, sent with `sendmmsg` batches (and one `send_to` per packet
//! for comparison). Only the sending thread's CPU time counts; a drain thread keeps
//! the receiving socket from filling up.

use std::net::{SocketAddr, SocketAddrV4, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Serialize;
use str0m::crypto::{AeadAes128Gcm, Aes128CmSha1_80, CryptoProvider};

use crate::peer::VideoPlan;
use crate::synth::{self, VideoSchedule};
use crate::udp_batch::{send_batch, thread_cpu};

/// The SRTP protection profiles str0m negotiates (GCM first when both sides offer it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
pub enum Profile {
    /// SRTP_AEAD_AES_128_GCM (RFC 7714).
    #[serde(rename = "SRTP_AEAD_AES_128_GCM")]
    Gcm,
    /// SRTP_AES128_CM_HMAC_SHA1_80 (RFC 3711).
    #[serde(rename = "SRTP_AES128_CM_HMAC_SHA1_80")]
    Cm,
}

#[derive(Clone, Debug, Serialize)]
pub struct FloorResult {
    pub profile: Profile,
    /// Packets per `sendmmsg` call; 0 = protect only, no send.
    pub batch: usize,
    pub packets: u64,
    pub mean_packet_bytes: f64,
    pub cpu_s: f64,
    pub us_per_packet: f64,
    pub packets_per_s_per_core: f64,
}

/// RTP header as str0m writes it for forwarded media: 12 bytes and a one-byte-header
/// extension block with two elements (8 bytes).
const HEADER: [u8; 20] = [
    0x90, 96, 0, 0, 0, 0, 0, 0, 0x12, 0x34, 0x56, 0x78, 0xbe, 0xde, 0, 1, 0x22, 0x01, 0x02, 0x03,
];

/// One second of one publisher's RTP payloads (audio every 20 ms, video per the plan).
pub fn sample_payloads(video: &VideoPlan, audio: bool) -> Vec<Vec<u8>> {
    let now = Instant::now();
    let mut out = Vec::new();
    if audio {
        out.extend((0..50).map(|_| synth::opus_packet(80, 0, now)));
    }
    let origin = synth::Origin {
        publisher: 0,
        stream: synth::StreamTag::Video,
    };
    let mut sched = VideoSchedule::new(
        origin,
        video.bitrate_bps,
        video.fps,
        video.keyframe_interval,
    );
    for _ in 0..video.fps {
        out.extend(sched.next_frame(now).0);
    }
    if out.is_empty() {
        out.push(synth::opus_packet(80, 0, now));
    }
    out
}

enum Cipher {
    Gcm(Box<dyn str0m::crypto::AeadAes128GcmCipher>, [u8; 12]),
    Cm(
        Box<dyn str0m::crypto::Aes128CmSha1_80Cipher>,
        [u8; 14],
        [u8; 20],
        CryptoProvider,
    ),
}

impl Cipher {
    fn new(profile: Profile, provider: &CryptoProvider) -> Cipher {
        // Fixed session keys: the cost does not depend on their value.
        match profile {
            Profile::Gcm => Cipher::Gcm(
                provider
                    .srtp_provider
                    .aead_aes_128_gcm()
                    .create_cipher([7; 16], true),
                [9; 12],
            ),
            Profile::Cm => Cipher::Cm(
                provider
                    .srtp_provider
                    .aes_128_cm_sha1_80()
                    .create_cipher([7; 16], true),
                [9; 14],
                [5; 20],
                provider.clone(),
            ),
        }
    }

    /// Protects `header + payload` into `out`; returns the SRTP packet's length.
    fn protect(
        &mut self,
        header: &[u8],
        payload: &[u8],
        index: u64,
        out: &mut [u8],
    ) -> anyhow::Result<usize> {
        let h = header.len();
        out[..h].copy_from_slice(header);
        match self {
            Cipher::Gcm(enc, salt) => {
                let iv =
                    AeadAes128Gcm::rtp_iv(*salt, 0x1234_5678, (index >> 16) as u32, index as u16);
                let end = h + payload.len() + AeadAes128Gcm::TAG_LEN;
                enc.encrypt(&iv, header, payload, &mut out[h..end])
                    .context("GCM encrypt")?;
                Ok(end)
            }
            Cipher::Cm(enc, salt, auth_key, provider) => {
                let iv = Aes128CmSha1_80::rtp_iv(*salt, 0x1234_5678, index);
                // The CTR implementations want up to a block of scratch past the end.
                let scratch = h + payload.len() + 16;
                enc.encrypt(&iv, payload, &mut out[h..scratch])
                    .context("CM encrypt")?;
                let hmac_start = h + payload.len();
                let hmac = |k: &[u8], p: &[&[u8]]| provider.sha1_hmac_provider.sha1_hmac(k, p);
                Aes128CmSha1_80::rtp_hmac(hmac, auth_key.as_slice(), out, index, hmac_start);
                Ok(hmac_start + Aes128CmSha1_80::HMAC_TAG_LEN)
            }
        }
    }
}

/// Protects (and with `batch > 0` sends) the payloads round-robin for `duration`.
pub fn measure(
    profile: Profile,
    batch: usize,
    payloads: &[Vec<u8>],
    duration: Duration,
) -> anyhow::Result<FloorResult> {
    if payloads.is_empty() {
        bail!("no packets to measure");
    }
    let provider = str0m::crypto::from_feature_flags();
    let mut cipher = Cipher::new(profile, &provider);
    let sink = UdpSocket::bind("127.0.0.1:0").context("binding the sink")?;
    sink.set_read_timeout(Some(Duration::from_millis(100)))?;
    let SocketAddr::V4(dest) = sink.local_addr()? else {
        bail!("the sink is not IPv4")
    };
    let socket = UdpSocket::bind("127.0.0.1:0").context("binding the sender")?;
    let stop = Arc::new(AtomicBool::new(false));
    let drained = Arc::new(AtomicU64::new(0));
    let drain = {
        let (stop, drained) = (stop.clone(), drained.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !stop.load(Ordering::Relaxed) {
                if sink.recv(&mut buf).is_ok() {
                    drained.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };

    let slots = batch.max(1);
    let mut bufs = vec![vec![0u8; 1600]; slots];
    let mut lens = vec![0usize; slots];
    let dests: Vec<SocketAddrV4> = vec![dest; slots];
    let mut header = HEADER;
    let mut index: u64 = 0;
    let mut packets = 0u64;
    let mut bytes = 0u64;
    let cpu_before = thread_cpu();
    let wall_deadline = Instant::now() + duration;
    let mut result = Ok(());
    'outer: while Instant::now() < wall_deadline {
        // Check the clock every 64 batches only: reading it is not part of the floor.
        for _ in 0..64 {
            for (i, buf) in bufs.iter_mut().enumerate() {
                let payload = &payloads[(index as usize) % payloads.len()];
                header[2..4].copy_from_slice(&(index as u16).to_be_bytes());
                match cipher.protect(&header, payload, index, buf) {
                    Ok(n) => lens[i] = n,
                    Err(e) => {
                        result = Err(e);
                        break 'outer;
                    }
                }
                index += 1;
            }
            if batch > 0 {
                let slices: Vec<&[u8]> = bufs.iter().zip(&lens).map(|(b, n)| &b[..*n]).collect();
                if let Err(e) = send_batch(&socket, &slices, &dests) {
                    result = Err(e.into());
                    break 'outer;
                }
            }
            packets += slots as u64;
            bytes += lens.iter().sum::<usize>() as u64;
        }
    }
    let cpu = thread_cpu().saturating_sub(cpu_before).as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let _ = drain.join();
    result?;
    let us = cpu * 1e6 / packets.max(1) as f64;
    Ok(FloorResult {
        profile,
        batch,
        packets,
        mean_packet_bytes: bytes as f64 / packets.max(1) as f64,
        cpu_s: cpu,
        us_per_packet: us,
        packets_per_s_per_core: if us > 0.0 { 1e6 / us } else { 0.0 },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gcm_output_is_payload_plus_tag_and_differs_from_plaintext() {
        let provider = str0m::crypto::from_feature_flags();
        let mut c = Cipher::new(Profile::Gcm, &provider);
        let payload = vec![0xaa; 100];
        let mut out = vec![0u8; 1600];
        let n = c.protect(&HEADER, &payload, 1, &mut out).expect("protect");
        assert_eq!(n, HEADER.len() + 100 + 16);
        assert_eq!(&out[..HEADER.len()], &HEADER);
        assert_ne!(&out[HEADER.len()..HEADER.len() + 100], &payload[..]);
    }

    #[test]
    fn cm_output_is_payload_plus_short_tag() {
        let provider = str0m::crypto::from_feature_flags();
        let mut c = Cipher::new(Profile::Cm, &provider);
        let payload = vec![0xaa; 1077];
        let mut out = vec![0u8; 1600];
        let n = c
            .protect(&HEADER, &payload, 70_000, &mut out)
            .expect("protect");
        assert_eq!(n, HEADER.len() + 1077 + 10);
    }

    #[test]
    fn a_short_measurement_counts_packets_and_cpu() {
        let plan = VideoPlan {
            bitrate_bps: 500_000,
            fps: 15,
            keyframe_interval: Duration::from_secs(2),
            simulcast: false,
        };
        let payloads = sample_payloads(&plan, true);
        assert!(payloads.len() > 50);
        let r = measure(Profile::Gcm, 16, &payloads, Duration::from_millis(200)).expect("measure");
        assert!(r.packets > 0);
        assert!(r.us_per_packet > 0.0, "{r:?}");
    }
}
