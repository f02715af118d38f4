//! Entry point of the `signaling_payload` fuzz target (`fuzz/`) and of the corpus test
//! that replays its seeds in `cargo test`. Not part of the wire contract.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::signaling::*;

/// One Socket.IO event payload as the server reads it: the JSON that socketioxide hands
/// a handler, deserialized into every inbound type and validated, as the server's
/// `parse` does. Panics (the fuzzer's finding) if a payload that passed validation does
/// not survive a serialize → parse → validate round trip unchanged. Returns how many of
/// the inbound types accepted the payload.
pub fn signaling_payload(data: &[u8]) -> usize {
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return 0;
    };
    [
        inbound::<JoinMeeting>(&value),
        inbound::<RoomOnly>(&value),
        inbound::<Toggle>(&value),
        inbound::<ToggleScreenShare>(&value),
        inbound::<ChatSend>(&value),
        inbound::<HostMute>(&value),
        inbound::<HostRemove>(&value),
        inbound::<LobbyDecision>(&value),
        inbound::<HostLock>(&value),
        inbound::<HostMuteAll>(&value),
        inbound::<RaiseHand>(&value),
        inbound::<SendReaction>(&value),
        inbound::<SfuOffer>(&value),
        inbound::<SfuAnswer>(&value),
        inbound::<TileViews>(&value),
        inbound::<Relay>(&value),
    ]
    .into_iter()
    .filter(|accepted| *accepted)
    .count()
}

fn inbound<T: DeserializeOwned + Serialize + Validate>(value: &Value) -> bool {
    let Ok(parsed) = serde_json::from_value::<T>(value.clone()) else {
        return false;
    };
    if parsed.validate().is_err() {
        return false;
    }
    let wire = serde_json::to_value(&parsed).expect("a parsed payload serializes");
    let again: T = serde_json::from_value(wire.clone()).expect("a valid payload parses again");
    assert!(again.validate().is_ok(), "validation is not stable: {wire}");
    let wire_again = serde_json::to_value(&again).expect("serializes");
    assert_eq!(wire, wire_again, "the round trip changed the payload");
    true
}
