//! Values a browser carries that only this site could have made: a tag of HMAC-SHA256 under a
//! secret kept in the database (the same on every node), over the value and what it is for, so
//! a tag made for one purpose is worth nothing for another.

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

fn key(secret: &str) -> hmac::Key {
    hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes())
}

fn message(purpose: &str, value: &str) -> Vec<u8> {
    let mut message = Vec::with_capacity(purpose.len() + 1 + value.len());
    message.extend_from_slice(purpose.as_bytes());
    // The purpose never holds a NUL, so no purpose and value can pass for another pair.
    message.push(0);
    message.extend_from_slice(value.as_bytes());
    message
}

/// The tag of `value` for `purpose`, in base64url (43 characters).
pub fn tag(secret: &str, purpose: &str, value: &str) -> String {
    URL_SAFE_NO_PAD.encode(hmac::sign(&key(secret), &message(purpose, value)))
}

/// Whether `tag` is the tag of `value` for `purpose`, compared in constant time.
pub fn verify(secret: &str, purpose: &str, value: &str, tag: &str) -> bool {
    let Ok(tag) = URL_SAFE_NO_PAD.decode(tag) else {
        return false;
    };
    hmac::verify(&key(secret), &message(purpose, value), &tag).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_holds_for_its_secret_purpose_and_value_only() {
        let made = tag("secret", "form", "visitor-1");
        assert_eq!(made.len(), 43);
        assert!(verify("secret", "form", "visitor-1", &made));
        assert!(!verify("other secret", "form", "visitor-1", &made));
        assert!(!verify("secret", "device", "visitor-1", &made));
        assert!(!verify("secret", "form", "visitor-2", &made));
        assert!(!verify("secret", "form", "visitor-1", "not base64 !"));
        assert!(!verify("secret", "form", "visitor-1", ""));
        // The purpose and the value cannot trade characters.
        assert_ne!(tag("secret", "ab", "c"), tag("secret", "a", "bc"));
    }
}
