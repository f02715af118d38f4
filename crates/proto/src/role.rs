//! What a participant is in a meeting: the role the participant list shows and the
//! host controls are checked against.

use serde::{Deserialize, Serialize};

/// A participant's role in one meeting. The wire form is camelCase (`coHost`).
///
/// - `host`: the meeting's creator (or a token whose grants say so): every control,
///   ending the meeting and promoting co-hosts included;
/// - `coHost`: promoted by the host (or so granted): every host control but ending the
///   meeting and promoting or demoting;
/// - `participant`: publishes, receives and chats as the token's grants allow;
/// - `viewer`: receives only (publishes nothing).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Role {
    Host,
    CoHost,
    #[default]
    Participant,
    Viewer,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Host, Role::CoHost, Role::Participant, Role::Viewer];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Host => "host",
            Role::CoHost => "coHost",
            Role::Participant => "participant",
            Role::Viewer => "viewer",
        }
    }

    /// Host or co-host: may use the host controls.
    pub fn moderates(self) -> bool {
        matches!(self, Role::Host | Role::CoHost)
    }
}
