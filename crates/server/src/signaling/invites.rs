//! Invite links at the socket edge, for the host and co-hosts (rules in
//! [`crate::invites`]; REST offers the same to the host): `invite-create`, `invite-list`,
//! `invite-revoke`, each answered with the invite(s) and their links.

use std::time::Duration;

use proto::Role;
use proto::signaling::{InviteCreate, InviteRevoke, RoomOnly};
use serde_json::json;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, SocketRef, State};

use super::request::{Payload, answer, member, parse};
use super::{SignalError, Signaling};
use crate::access::Action;
use crate::invites::{self, InviteError, InviteRequest};

impl From<InviteError> for SignalError {
    fn from(e: InviteError) -> Self {
        match e {
            InviteError::Denied(d) => SignalError::Denied(d),
            InviteError::NotFound(room) => SignalError::NotFound(room.to_string()),
            InviteError::NoSuchInvite(_) => SignalError::BadRequest(e.to_string()),
            InviteError::MeetingEnded => SignalError::MeetingEnded,
            InviteError::Locked => SignalError::RoomLocked,
            InviteError::Store(_) => SignalError::Unavailable(e.to_string()),
            InviteError::Sign(cause) => SignalError::Internal(cause.into()),
            other => SignalError::BadRequest(other.to_string()),
        }
    }
}

pub async fn invite_create<A: Adapter>(
    s: SocketRef<A>,
    State(sig): State<Signaling>,
    data: Payload,
    ack: AckSender<A>,
) {
    let result = async {
        let req: InviteCreate = parse(data)?;
        let (_, _, me) = member(&s, &sig, &req.room_id, Action::Invites).await?;
        let ask = InviteRequest {
            role: req.role.unwrap_or(Role::Participant),
            expires_in: req
                .expires_in
                .map(Duration::from_secs)
                .unwrap_or(invites::DEFAULT_TTL),
            max_uses: req.max_uses,
        };
        let link = invites::create(sig.app(), &req.room_id, &me.user_id, me.role(), ask).await?;
        Ok(json!({ "invite": link }))
    }
    .await;
    answer(&s, ack, result);
}

pub async fn invite_list<A: Adapter>(
    s: SocketRef<A>,
    State(sig): State<Signaling>,
    data: Payload,
    ack: AckSender<A>,
) {
    let result = async {
        let req: RoomOnly = parse(data)?;
        let (_, _, me) = member(&s, &sig, &req.room_id, Action::Invites).await?;
        let links = invites::list(sig.app(), &req.room_id, me.role()).await?;
        Ok(json!({ "invites": links }))
    }
    .await;
    answer(&s, ack, result);
}

pub async fn invite_revoke<A: Adapter>(
    s: SocketRef<A>,
    State(sig): State<Signaling>,
    data: Payload,
    ack: AckSender<A>,
) {
    let result = async {
        let req: InviteRevoke = parse(data)?;
        let (_, _, me) = member(&s, &sig, &req.room_id, Action::Invites).await?;
        let link = invites::revoke(sig.app(), &req.room_id, me.role(), &req.invite_id).await?;
        Ok(json!({ "invite": link }))
    }
    .await;
    answer(&s, ack, result);
}
