//! ICE restart by the client: an offer with new ICE credentials (the page's
//! `pc.restartIce()` after a network change). str0m restarts ICE inside `accept_offer`:
//! it forgets the remote candidates and pairs and makes new random local credentials,
//! without the worker's ufrag prefix that the one-port demultiplexer routes first STUN
//! requests by (`net::ufrag_prefix`). The engine puts the prefix back, routes the new
//! ufrag to the same participant, and names it in every SDP it sends from then on.
//! Publications, subscriptions and mids are untouched: only the transport restarts.
//! Media from a new address routes to the participant once a STUN request from it
//! passes the ICE check (`network.rs`), as for a first contact.

use std::time::Instant;

use str0m::IceCreds;
use str0m::media::MediaKind;
use tracing::info;

use super::Engine;
use super::routes::Routes;
use crate::model::{Key, Participant, SubState};

/// After str0m accepted (or refused) participant `p`'s offer: if it restarted ICE, give it
/// local credentials that start with `prefix` and route them to `key`.
pub(super) fn adopt_ice_restart(routes: &mut Routes, key: Key, p: &mut Participant, prefix: &str) {
    let made = p.rtc.direct_api().local_ice_credentials();
    if made.ufrag == p.ufrag {
        return;
    }
    let ufrag = format!("{prefix}{}", made.ufrag);
    if !prefix.is_empty() {
        let creds = IceCreds {
            ufrag: ufrag.clone(),
            pass: made.pass,
        };
        p.rtc.direct_api().set_local_ice_credentials(creds);
        p.stale_ufrag = Some(made.ufrag);
    } else {
        p.stale_ufrag = None;
    }
    info!(participant = %p.id, "ICE restart");
    p.keyframes_on_connect = true;
    let old = std::mem::replace(&mut p.ufrag, ufrag.clone());
    routes.rename_ufrag(key, &old, ufrag);
}

impl Engine {
    /// Participant `key`'s ICE connected again after a restart or a disconnection: ask the
    /// publishers of every video it receives for a keyframe, and forward each from one,
    /// since what it lost meanwhile left its decoders waiting for one; the same for the
    /// video it publishes.
    pub(super) fn keyframes_after_reconnect(&mut self, key: Key, now: Instant) {
        let Some(p) = self.participants.get_mut(&key) else {
            return;
        };
        if !std::mem::take(&mut p.keyframes_on_connect) {
            return;
        }
        let mut wanted = Vec::new();
        for s in &mut p.subscriptions {
            if s.kind == MediaKind::Video && matches!(s.state, SubState::Open(_)) {
                s.needs_keyframe = true;
                wanted.push((s.publisher, s.source_mid));
            }
        }
        // And its own cameras and screen: what it sent meanwhile was lost on the way, so
        // its subscribers wait for a keyframe too.
        for publ in &p.publications {
            if publ.kind == MediaKind::Video && publ.published {
                wanted.push((key, publ.mid));
            }
        }
        for (publisher, mid) in wanted {
            self.request_target_keyframe(publisher, mid, now);
        }
    }
}

/// `sdp` (str0m's text, our answer or offer to `p`) with the ufrag str0m still gives our
/// candidates after a restart replaced by the one the engine set.
pub(super) fn local_sdp(p: &Participant, sdp: String) -> String {
    match &p.stale_ufrag {
        Some(stale) => with_ufrag(&sdp, stale, &p.ufrag),
        None => sdp,
    }
}

/// Replace `stale` by `ufrag` where an SDP names our ICE ufrag: `a=ice-ufrag:` lines and
/// the `ufrag` extension at the end of `a=candidate:` lines. Nothing else is touched.
fn with_ufrag(sdp: &str, stale: &str, ufrag: &str) -> String {
    let mut out = String::with_capacity(sdp.len() + 16);
    for line in sdp.split_inclusive('\n') {
        let body = line.trim_end_matches(['\r', '\n']);
        let end = &line[body.len()..];
        if body.strip_prefix("a=ice-ufrag:") == Some(stale) {
            out.push_str("a=ice-ufrag:");
            out.push_str(ufrag);
        } else if let Some(head) = body
            .strip_suffix(stale)
            .and_then(|h| h.strip_suffix(" ufrag "))
            .filter(|_| body.starts_with("a=candidate:"))
        {
            out.push_str(head);
            out.push_str(" ufrag ");
            out.push_str(ufrag);
        } else {
            out.push_str(body);
        }
        out.push_str(end);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::with_ufrag;

    #[test]
    fn names_the_new_ufrag_in_ufrag_lines_and_candidates_only() {
        let sdp = "v=0\r\n\
            a=ice-ufrag:Ab12\r\n\
            a=ice-pwd:Ab12Ab12\r\n\
            a=candidate:1 1 udp 2130706175 10.0.0.1 10000 typ host ufrag Ab12\r\n\
            a=candidate:2 1 tcp 2130706175 10.0.0.1 10000 typ host tcptype passive ufrag Ab12\r\n\
            a=mid:Ab12\r\n";
        let out = with_ufrag(sdp, "Ab12", "w3+Ab12");
        assert_eq!(
            out,
            "v=0\r\n\
            a=ice-ufrag:w3+Ab12\r\n\
            a=ice-pwd:Ab12Ab12\r\n\
            a=candidate:1 1 udp 2130706175 10.0.0.1 10000 typ host ufrag w3+Ab12\r\n\
            a=candidate:2 1 tcp 2130706175 10.0.0.1 10000 typ host tcptype passive ufrag w3+Ab12\r\n\
            a=mid:Ab12\r\n"
        );
    }

    #[test]
    fn leaves_other_ufrags_and_a_last_line_without_newline() {
        let sdp = "a=ice-ufrag:Other\r\na=candidate:1 1 udp 1 10.0.0.1 1 typ host ufrag Other";
        assert_eq!(with_ufrag(sdp, "Ab12", "w3+Ab12"), sdp);
        assert_eq!(
            with_ufrag("a=ice-ufrag:Ab12", "Ab12", "w0+Ab12"),
            "a=ice-ufrag:w0+Ab12"
        );
    }
}
