//! The `grants` claim of a token (or an invite): which meetings the bearer may join,
//! what it may publish, whether it receives and chats, and its role.
//!
//! ```json
//! "grants": {
//!   "role": "viewer",                  // host | coHost | participant | viewer
//!   "meetings": ["abcdefghij"],        // or "*" (every meeting)
//!   "canPublishAudio": false,          // each flag defaults to what the role gives
//!   "canPublishVideo": false,
//!   "canPublishScreen": false,
//!   "canSubscribe": true,
//!   "canChat": true
//! }
//! ```
//!
//! A token without the claim is what every token was before grants: a participant of
//! any meeting with every right ([`Grants::default`]); the meeting's creator is its host
//! whatever the claim says.

use proto::{Role, RoomId};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Which meetings a token may join.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Meetings {
    All,
    Only(Vec<RoomId>),
}

impl Meetings {
    pub fn allows(&self, room: &RoomId) -> bool {
        match self {
            Meetings::All => true,
            Meetings::Only(list) => list.contains(room),
        }
    }
}

/// What a token lets its bearer do. The flags are already resolved (the role's
/// defaults, then the claim's explicit flags).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grants {
    pub role: Role,
    pub meetings: Meetings,
    pub can_publish_audio: bool,
    pub can_publish_video: bool,
    pub can_publish_screen: bool,
    pub can_subscribe: bool,
    pub can_chat: bool,
}

impl Default for Grants {
    fn default() -> Self {
        Grants::for_role(Role::Participant, Meetings::All)
    }
}

/// The claim as signed: every field optional.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawGrants {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    role: Option<Role>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    meetings: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    can_publish_audio: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    can_publish_video: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    can_publish_screen: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    can_subscribe: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    can_chat: Option<bool>,
}

/// Why a `grants` claim was refused (the token is then refused as invalid).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`grants`: {0}")]
pub struct GrantsError(String);

/// Most meetings one token may list: a token is sent with every connection.
pub const MAX_MEETINGS: usize = 100;

impl Grants {
    /// What `role` may do by default in `meetings`: a viewer publishes nothing, every
    /// other role publishes everything; all receive and chat.
    pub fn for_role(role: Role, meetings: Meetings) -> Self {
        let publish = role != Role::Viewer;
        Grants {
            role,
            meetings,
            can_publish_audio: publish,
            can_publish_video: publish,
            can_publish_screen: publish,
            can_subscribe: true,
            can_chat: true,
        }
    }

    /// The grants of a `grants` claim (`None`: the claim is absent).
    pub fn from_claim(claim: Option<&Value>) -> Result<Grants, GrantsError> {
        let Some(value) = claim.filter(|v| !v.is_null()) else {
            return Ok(Grants::default());
        };
        let raw: RawGrants =
            serde_json::from_value(value.clone()).map_err(|e| GrantsError(e.to_string()))?;
        let meetings = match &raw.meetings {
            None => Meetings::All,
            Some(Value::String(s)) if s == "*" => Meetings::All,
            Some(Value::Array(list)) if list.len() <= MAX_MEETINGS => {
                let mut rooms = Vec::with_capacity(list.len());
                for v in list {
                    let id = v
                        .as_str()
                        .and_then(crate::room_code::normalise)
                        .ok_or_else(|| {
                            GrantsError(format!("`meetings` holds {v}, not a meeting id"))
                        })?;
                    rooms.push(id);
                }
                Meetings::Only(rooms)
            }
            Some(Value::Array(_)) => {
                return Err(GrantsError(format!(
                    "`meetings` lists more than {MAX_MEETINGS} meetings"
                )));
            }
            Some(other) => {
                return Err(GrantsError(format!(
                    "`meetings` must be \"*\" or a list of meeting ids, not {other}"
                )));
            }
        };
        let base = Grants::for_role(raw.role.unwrap_or_default(), meetings);
        Ok(Grants {
            can_publish_audio: raw.can_publish_audio.unwrap_or(base.can_publish_audio),
            can_publish_video: raw.can_publish_video.unwrap_or(base.can_publish_video),
            can_publish_screen: raw.can_publish_screen.unwrap_or(base.can_publish_screen),
            can_subscribe: raw.can_subscribe.unwrap_or(base.can_subscribe),
            can_chat: raw.can_chat.unwrap_or(base.can_chat),
            ..base
        })
    }

    /// The claim that [`Grants::from_claim`] reads back as these grants.
    pub fn to_claim(&self) -> Value {
        let raw = RawGrants {
            role: Some(self.role),
            meetings: Some(match &self.meetings {
                Meetings::All => Value::from("*"),
                Meetings::Only(list) => list.iter().map(|r| Value::from(r.as_str())).collect(),
            }),
            can_publish_audio: Some(self.can_publish_audio),
            can_publish_video: Some(self.can_publish_video),
            can_publish_screen: Some(self.can_publish_screen),
            can_subscribe: Some(self.can_subscribe),
            can_chat: Some(self.can_chat),
        };
        serde_json::to_value(raw).unwrap_or(Value::Null)
    }

    /// The grants of a token without the claim (then it is not written).
    pub fn is_default(&self) -> bool {
        *self == Grants::default()
    }

    /// Publishes nothing at all.
    pub fn receives_only(&self) -> bool {
        !(self.can_publish_audio || self.can_publish_video || self.can_publish_screen)
    }
}

/// As the claim ([`Grants::to_claim`], [`Grants::from_claim`]), so that a token's
/// claims carry them as they are signed.
impl Serialize for Grants {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_claim().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Grants {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        Grants::from_claim(Some(&v)).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn absent_claim_is_a_participant_of_every_meeting() {
        let g = Grants::from_claim(None).expect("absent");
        assert_eq!(g, Grants::default());
        assert!(g.meetings.allows(&RoomId::from("ABCD-EFG-HJK")));
        assert!(g.can_publish_video && g.can_chat && g.can_subscribe);
    }

    #[test]
    fn roles_give_defaults_and_flags_override_them() {
        let v = Grants::from_claim(Some(&json!({ "role": "viewer" }))).expect("viewer");
        assert!(v.receives_only() && v.can_subscribe && v.can_chat);
        let v = Grants::from_claim(Some(&json!({ "role": "viewer", "canChat": false })))
            .expect("mute viewer");
        assert!(!v.can_chat);
        let p = Grants::from_claim(Some(
            &json!({ "meetings": ["abcd efg hjk"], "canPublishScreen": false }),
        ))
        .expect("scoped");
        assert_eq!(p.role, Role::Participant);
        assert!(p.can_publish_audio && !p.can_publish_screen);
        assert!(p.meetings.allows(&RoomId::from("ABCD-EFG-HJK")));
        assert!(!p.meetings.allows(&RoomId::from("BBBB-BBB-BBB")));
        assert_eq!(Grants::from_claim(Some(&p.to_claim())), Ok(p));
    }

    #[test]
    fn malformed_claims_are_refused_with_the_reason() {
        for (claim, why) in [
            (json!({ "role": "admin" }), "unknown variant"),
            (json!({ "meetings": "abc" }), "`meetings` must be"),
            (json!({ "meetings": [1] }), "not a meeting id"),
            (json!({ "canChat": "yes" }), "invalid type"),
            (json!({ "canFly": true }), "unknown field"),
            (json!("all"), "invalid type"),
        ] {
            let e = Grants::from_claim(Some(&claim)).expect_err("refused");
            assert!(e.to_string().contains(why), "{claim}: {e}");
        }
    }
}
