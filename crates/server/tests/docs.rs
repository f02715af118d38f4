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
