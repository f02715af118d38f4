//! The STUN/TURN list handed to browsers (REST `/api/ice-servers` and the signaling's join).

use proto::signaling::IceServer;

use crate::config::IceConfig;

/// STUN servers first (one entry each), then the TURN URLs as one entry with their
/// credentials. `TURN_SECRET` (time-limited credentials) is not minted yet: with only a
/// secret configured, the TURN entry carries no credentials.
pub fn ice_servers(ice: &IceConfig) -> Vec<IceServer> {
    let mut out: Vec<IceServer> = ice.stun_servers.iter().map(|u| IceServer { urls: vec![u.clone()], username: None, credential: None }).collect();
    if let Some(turn) = &ice.turn {
        out.push(IceServer { urls: turn.urls.clone(), username: turn.username.clone(), credential: turn.credential.clone() });
    }
    out
}
