//! Password hashing with argon2id. Hashing is deliberately slow: call these from
//! `tokio::task::spawn_blocking`, never on an async worker thread.

use std::collections::HashSet;
use std::sync::LazyLock;

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

/// Minimum and maximum accepted password length, in characters.
pub const MIN_PASSWORD_CHARS: usize = 10;
pub const MAX_PASSWORD_CHARS: usize = 128;

/// The 10,000 most common passwords, most common first, one per line: the start of the
/// ranked list zxcvbn ships (MIT licence, Copyright (c) 2012-2016 Dan Wheeler and Dropbox,
/// Inc.; the Rust port by Joshua Holmer), taken from leaked password dumps.
const COMMON: &str = include_str!("common_passwords.txt");

static COMMON_SET: LazyLock<HashSet<&'static str>> = LazyLock::new(|| COMMON.lines().collect());

/// Whether the password is one of the 10,000 most common, whatever its case.
pub fn is_common(password: &str) -> bool {
    COMMON_SET.contains(password.to_lowercase().as_str())
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("the password must be at least {MIN_PASSWORD_CHARS} characters long")]
    TooShort,
    #[error("the password must be at most {MAX_PASSWORD_CHARS} characters long")]
    TooLong,
    #[error("the password is one of the most common ones, which are guessed first")]
    Common,
    #[error("the password could not be hashed")]
    Hashing,
}

pub fn validate(password: &str) -> Result<(), PasswordError> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(PasswordError::TooShort);
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(PasswordError::TooLong);
    }
    if is_common(password) {
        return Err(PasswordError::Common);
    }
    Ok(())
}

/// Returns the PHC string (`$argon2id$v=19$...`) with a fresh random salt.
pub fn hash(password: &str) -> Result<String, PasswordError> {
    validate(password)?;
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|_| PasswordError::Hashing)
}

/// True when `password` matches the stored PHC string. A malformed stored hash never matches.
pub fn verify(password: &str, stored: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), stored)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_short_and_common_passwords() {
        assert_eq!(validate("nine char"), Err(PasswordError::TooShort));
        assert_eq!(validate("1234567890"), Err(PasswordError::Common));
        assert_eq!(validate("Qwertyuiop"), Err(PasswordError::Common));
        assert_eq!(validate("Manchester"), Err(PasswordError::Common));
        assert_eq!(validate("password123"), Err(PasswordError::Common));
        assert_eq!(validate("correct horse battery"), Ok(()));
        assert_eq!(COMMON.lines().count(), 10_000);
        assert_eq!(COMMON.lines().next(), Some("123456"));
    }

    #[test]
    fn hashes_with_argon2id_and_verifies() {
        let stored = hash("correct horse battery").unwrap();
        assert!(stored.starts_with("$argon2id$"));
        assert!(verify("correct horse battery", &stored));
        assert!(!verify("wrong horse battery", &stored));
        assert!(!verify("anything", "not-a-hash"));
        // A fresh salt each time.
        assert_ne!(stored, hash("correct horse battery").unwrap());
    }

    #[test]
    fn refuses_short_passwords() {
        assert_eq!(hash("short"), Err(PasswordError::TooShort));
        assert_eq!(validate(&"x".repeat(200)), Err(PasswordError::TooLong));
    }
}
