//! Meeting IDs: short enough to read aloud, unguessable enough to act as an invitation.
//!
//! Ten characters from a 31-symbol alphabet (`23456789ABCDEFGHJKMNPQRSTUVWXYZ`: digits
//! without 0 and 1, letters without I, L and O, so nothing looks or sounds alike), drawn
//! from the OS-seeded CSPRNG and grouped 4-3-3: `KXRT-PQZ-MHN`. That is 31^10 ≈ 8.2·10^14
//! codes, 49.5 bits: guessing one of a million live meetings takes ~800 million tries.
//!
//! [`normalise`] is the one place where what a client sent becomes a meeting id: the
//! REST paths, every Socket.IO event's `roomId` and the page's `/m/<code>` route all go
//! through it, so `u5hek92qjm`, `U5HE K92 QJM` and `U5HE-K92-QJM` name one meeting
//! everywhere. Meetings imported from the service we replace keep their own ids
//! (`meeting-service import`), which [`normalise`] passes through upper-cased.

use proto::RoomId;
use rand::Rng;

pub const ALPHABET: &[u8; 31] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";
pub const LEN: usize = 10;

/// A fresh random meeting ID.
pub fn generate() -> RoomId {
    let mut rng = rand::rng();
    let raw: String = (0..LEN)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    RoomId::new(group(&raw))
}

/// `len` random characters of a lower-case alphabet without look-alikes (guest user
/// ids).
pub fn random_suffix(len: usize) -> String {
    const LOWER: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| LOWER[rng.random_range(0..LOWER.len())] as char)
        .collect()
}

fn group(raw: &str) -> String {
    format!("{}-{}-{}", &raw[..4], &raw[4..7], &raw[7..])
}

/// What a user typed (any case, dashes or spaces optional) as the canonical ID, or
/// `None` if it cannot be one of ours.
pub fn parse(input: &str) -> Option<RoomId> {
    let raw: String = input
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if raw.len() != LEN || !raw.bytes().all(|b| ALPHABET.contains(&b)) {
        return None;
    }
    Some(RoomId::new(group(&raw)))
}

/// Longest id accepted: [`proto::signaling::limits::ROOM_ID`].
const MAX_LEN: usize = proto::signaling::limits::ROOM_ID;

/// What a client sent (a REST path segment, an event's `roomId`, a pasted code) as the
/// meeting id to look up, or `None` if it cannot name any meeting:
/// - one of our codes in any spelling (case, dashes, spaces) becomes its canonical form;
/// - otherwise an id of the service we replace (imported meetings: 1 to 32 letters,
///   digits, `-` or `_`; that service upper-cased its ids) is trimmed and upper-cased.
pub fn normalise(input: &str) -> Option<RoomId> {
    if let Some(ours) = parse(input) {
        return Some(ours);
    }
    let t = input.trim();
    let legacy = !t.is_empty()
        && t.len() <= MAX_LEN
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    legacy.then(|| RoomId::new(t.to_ascii_uppercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_codes_parse_back_and_differ() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            let id = generate();
            assert_eq!(id.as_str().len(), 12);
            assert_eq!(parse(id.as_str()).as_ref(), Some(&id));
            assert!(seen.insert(id));
        }
    }

    #[test]
    fn lenient_input_strict_alphabet() {
        assert_eq!(
            parse("kxrt pqz mhn").map(|r| r.into_string()),
            Some("KXRT-PQZ-MHN".into())
        );
        assert_eq!(
            parse("KXRTPQZMHN").map(|r| r.into_string()),
            Some("KXRT-PQZ-MHN".into())
        );
        assert!(parse("KXRT-PQZ-MH0").is_none(), "0 is not in the alphabet");
        assert!(parse("KXRT-PQZ").is_none());
        assert!(parse("../../etc").is_none());
    }

    #[test]
    fn normalise_joins_every_spelling_and_keeps_legacy_ids() {
        for spelling in [
            "U5HE-K92-QJM",
            "U5HEK92QJM",
            "u5hek92qjm",
            "U5HE K92 QJM",
            " u5he-k92 qjm ",
        ] {
            assert_eq!(
                normalise(spelling).map(|r| r.into_string()),
                Some("U5HE-K92-QJM".into()),
                "{spelling:?}"
            );
        }
        // Ids of the original service: not ours (0, 1, O, length), kept, upper-cased.
        assert_eq!(
            normalise("abc123xyz").map(|r| r.into_string()),
            Some("ABC123XYZ".into())
        );
        assert_eq!(
            normalise("65a1f0c2e4b0a1b2c3d4e5f6").map(|r| r.into_string()),
            Some("65A1F0C2E4B0A1B2C3D4E5F6".into())
        );
        for bad in ["", "   ", "../x", "a b c", "a/b", &"A".repeat(33), "ünï"] {
            assert!(normalise(bad).is_none(), "{bad:?}");
        }
    }
}
