//! Secrets handed to people: API keys (`sk-…`) and admin access tokens (`tga-…`).
//! Only their SHA-256 is stored; the plain value is shown once, at creation.

use rand::RngExt;
use sha2::{Digest, Sha256};

const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const RANDOM_CHARS: usize = 48;

pub const API_KEY_PREFIX: &str = "sk-";
pub const ADMIN_TOKEN_PREFIX: &str = "tga-";

/// A freshly generated secret: the value to show once, its hash to store, and a short
/// display form (`sk-AbCd…wxyz`) safe to show later.
#[derive(Debug, Clone)]
pub struct NewSecret {
    pub plain: String,
    pub hash: String,
    pub display: String,
}

pub fn generate(prefix: &str) -> NewSecret {
    let mut rng = rand::rng();
    let random: String = (0..RANDOM_CHARS)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect();
    let plain = format!("{prefix}{random}");
    NewSecret {
        hash: hash(&plain),
        display: display_form(&plain),
        plain,
    }
}

/// Whether `plain` could be a secret made by [`generate`] with `prefix`: the prefix, then
/// exactly the random characters of its alphabet (a typo of the wrong shape is not a guess).
pub fn has_shape(plain: &str, prefix: &str) -> bool {
    plain.strip_prefix(prefix).is_some_and(|random| {
        random.len() == RANDOM_CHARS && random.bytes().all(|b| ALPHABET.contains(&b))
    })
}

/// Whether two secrets are equal, looking at every byte whatever differs first, so the time
/// taken tells nothing of how much of a guess was right.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// SHA-256 of the whole secret. Secrets are 286 bits of randomness, so a fast hash is enough;
/// a slow password hash here would cost every API request.
pub fn digest(plain: &str) -> [u8; 32] {
    Sha256::digest(plain.as_bytes()).into()
}

/// [`digest`] in hex, the form stored in the database.
pub fn hash(plain: &str) -> String {
    hex(&digest(plain))
}

/// A digest in lowercase hex.
pub fn hex(digest: &[u8; 32]) -> String {
    let mut out = String::with_capacity(64);
    for byte in digest {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    out
}

/// Names one upstream key of a channel without revealing it: the first 16 hex digits of its
/// SHA-256. Stable across edits of the channel's other keys, unlike the key's position.
pub fn upstream_key_fingerprint(key: &str) -> String {
    let mut full = hash(key);
    full.truncate(16);
    full
}

/// Parses a stored hex hash back into its digest.
pub fn digest_from_hex(hex: &str) -> Option<[u8; 32]> {
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let nibble = |c: u8| -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        }
    };
    let mut out = [0_u8; 32];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        out[i] = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Some(out)
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The first 7 and last 4 characters, e.g. `sk-AbCd…wxyz`.
pub fn display_form(plain: &str) -> String {
    let chars: Vec<char> = plain.chars().collect();
    if chars.len() <= 12 {
        return "…".to_string();
    }
    let head: String = chars[..7].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}…{tail}")
}

/// Masks an upstream credential for display: never more than the last four characters.
pub fn mask_upstream_key(key: &str) -> String {
    // A service account's JSON key (Vertex) is shown by the account it names, which is no
    // secret; its private key never.
    if key.starts_with('{')
        && let Ok(account) = serde_json::from_str::<serde_json::Value>(key)
    {
        let email = account
            .get("client_email")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("unknown");
        return format!("service account {email}");
    }
    let chars: Vec<char> = key.chars().collect();
    if chars.len() <= 8 {
        return "****".to_string();
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}****{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_service_accounts_by_their_email() {
        let account = r#"{"type":"service_account","private_key":"-----BEGIN PRIVATE KEY-----\nMIIE\n","client_email":"relay@p.iam.gserviceaccount.com"}"#;
        assert_eq!(
            mask_upstream_key(account),
            "service account relay@p.iam.gserviceaccount.com"
        );
        assert_eq!(mask_upstream_key("sk-abcdefgh1234"), "sk-****1234");
    }

    #[test]
    fn generates_prefixed_unique_keys_with_matching_hash() {
        let a = generate(API_KEY_PREFIX);
        let b = generate(API_KEY_PREFIX);
        assert!(a.plain.starts_with("sk-"));
        assert_eq!(a.plain.len(), 3 + RANDOM_CHARS);
        assert_ne!(a.plain, b.plain);
        assert_eq!(a.hash, hash(&a.plain));
        assert_eq!(a.hash.len(), 64);
        assert!(a.display.starts_with("sk-"));
        assert!(!a.display.contains(&a.plain[7..a.plain.len() - 4]));
    }

    #[test]
    fn digests_round_trip_through_hex() {
        let hex = hash("sk-test");
        assert_eq!(digest_from_hex(&hex), Some(digest("sk-test")));
        assert_eq!(digest_from_hex("zz"), None);
    }

    #[test]
    fn known_sha256() {
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn masks_upstream_keys() {
        assert_eq!(mask_upstream_key("sk-upstream-secret-1234"), "sk-****1234");
        assert_eq!(mask_upstream_key("short"), "****");
    }
}
