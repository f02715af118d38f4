//! Who may do what: the grants a token carries ([`grants`]), in the manner of LiveKit's
//! video grants, and the one table of what each client event needs ([`check`]).
//!
//! A leaf, like `auth` (which reads the grants out of a token): the signaling checks
//! every event against [`check::check`], membership checks the host controls against
//! the same table ([`check::check_role`]), and neither knows the other's types.

pub mod check;
pub mod grants;

pub use check::{Action, Denied, Grant, check, check_role};
pub use grants::{Grants, GrantsError, Meetings};
