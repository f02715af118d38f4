//! Meeting IDs: short enough to read aloud, unguessable enough to act as an invitation.
//!
//! Ten characters from a 31-symbol alphabet (`23456789ABCDEFGHJKMNPQRSTUVWXYZ`: digits
//! without 0 and 1, letters without I, L and O, so nothing looks or sounds alike), drawn
//! from the OS-seeded CSPRNG and grouped 4-3-3: `KXRT-PQZ-MHN`. That is 31^10 ≈ 8.2·10^14
//! codes, 49.5 bits: guessing one of a million live meetings takes ~800 million tries.

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
}
