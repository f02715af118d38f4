//! docs/configuration.md documents every variable the service reads.

use meeting_service::config::KNOWN_VARS;

#[test]
fn every_variable_is_documented() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/configuration.md");
    let doc = std::fs::read_to_string(path).expect("docs/configuration.md");
    let missing: Vec<&str> = KNOWN_VARS
        .iter()
        .map(|v| {
            if *v == "STUN_SERVER_<n>" {
                "STUN_SERVER_1"
            } else {
                v
            }
        })
        .filter(|v| !doc.contains(&format!("`{v}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/configuration.md does not document {missing:?}"
    );
    // MONGO_URI is not read, but refused; the document must say so.
    assert!(doc.contains("`MONGO_URI`") && doc.contains("Refused"));
}

/// docs/protocol.md names every server → client event that `crates/proto` defines, and
/// points to where they are defined.
#[test]
fn every_server_event_is_documented() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/protocol.md");
    let doc = std::fs::read_to_string(path).expect("docs/protocol.md");
    let missing: Vec<&str> = proto::events::ALL
        .iter()
        .copied()
        .filter(|name| !doc.contains(&format!("`{name}")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/protocol.md does not document the events {missing:?}"
    );
    assert!(doc.contains("crates/proto/src/events.rs"));
    assert!(doc.contains("(rest-api.md)"));
}
