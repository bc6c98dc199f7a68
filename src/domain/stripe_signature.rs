//! Stripe's webhook signatures: the `Stripe-Signature` header carries a timestamp and one or
//! more `v1` signatures, each an HMAC-SHA256 of `"{timestamp}.{raw body}"` under the endpoint's
//! signing secret. A delivery is believed only when one of them verifies (compared in constant
//! time, by aws-lc-rs) and the timestamp is recent, so a captured delivery cannot be replayed
//! later. An empty secret verifies nothing: a webhook left unconfigured refuses everything,
//! rather than accepting what anyone can sign with an empty key.

use aws_lc_rs::hmac;

/// Stripe's own libraries allow five minutes between signing and checking.
pub const DEFAULT_TOLERANCE_SECS: i64 = 300;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the webhook has no signing secret configured")]
    NoSecret,
    #[error("the Stripe-Signature header is missing or malformed")]
    Malformed,
    #[error("the Stripe-Signature header carries no v1 signature")]
    NoSignature,
    #[error("the delivery was signed {0} s away from now, beyond the tolerance")]
    Stale(i64),
    #[error("no signature matches the body")]
    Mismatch,
}

/// Checks `header` (the `Stripe-Signature` value) against the raw `body`.
pub fn verify(
    body: &[u8],
    header: &str,
    secret: &str,
    now_secs: i64,
    tolerance_secs: i64,
) -> Result<(), SignatureError> {
    if secret.is_empty() {
        return Err(SignatureError::NoSecret);
    }
    let mut timestamp: Option<i64> = None;
    let mut signatures: Vec<Vec<u8>> = Vec::new();
    for part in header.split(',') {
        let Some((name, value)) = part.trim().split_once('=') else {
            continue;
        };
        match name {
            "t" => timestamp = Some(value.parse().map_err(|_| SignatureError::Malformed)?),
            // A signature that is not hex cannot match; it is skipped, not an error, so a
            // future scheme's value in a `v1` slot cannot hide a good one beside it.
            "v1" => signatures.extend(decode_hex(value)),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if signatures.is_empty() {
        return Err(SignatureError::NoSignature);
    }
    let age = now_secs.saturating_sub(timestamp);
    if age.saturating_abs() > tolerance_secs {
        return Err(SignatureError::Stale(age));
    }
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let mut signed = Vec::with_capacity(body.len() + 21);
    signed.extend_from_slice(timestamp.to_string().as_bytes());
    signed.push(b'.');
    signed.extend_from_slice(body);
    if signatures
        .iter()
        .any(|signature| hmac::verify(&key, &signed, signature).is_ok())
    {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// The header Stripe would send for `body` at `timestamp` (for tests and the local stand-in).
pub fn sign(body: &[u8], secret: &str, timestamp: i64) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let mut signed = timestamp.to_string().into_bytes();
    signed.push(b'.');
    signed.extend_from_slice(body);
    let tag = hmac::sign(&key, &signed);
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("t={timestamp},v1={hex}")
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test_secret";
    const BODY: &[u8] = br#"{"id":"evt_1","type":"checkout.session.completed"}"#;
    const NOW: i64 = 1_796_000_000;

    #[test]
    fn a_signed_delivery_verifies() {
        let header = sign(BODY, SECRET, NOW - 10);
        assert_eq!(
            verify(BODY, &header, SECRET, NOW, DEFAULT_TOLERANCE_SECS),
            Ok(())
        );
    }

    #[test]
    fn any_of_several_v1_signatures_may_match() {
        // Stripe sends one per active secret while a secret is being rolled.
        let good = sign(BODY, SECRET, NOW);
        let good_v1 = good.split_once(",v1=").unwrap().1;
        let header = format!(
            "t={NOW},v1={},v1=not-hex,v0=abcd,v1={good_v1}",
            "00".repeat(32)
        );
        assert_eq!(
            verify(BODY, &header, SECRET, NOW, DEFAULT_TOLERANCE_SECS),
            Ok(())
        );
    }

    #[test]
    fn tampering_and_wrong_secrets_fail() {
        let header = sign(BODY, SECRET, NOW);
        let changed = br#"{"id":"evt_1","type":"checkout.session.completed "}"#;
        assert_eq!(
            verify(changed, &header, SECRET, NOW, DEFAULT_TOLERANCE_SECS),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(BODY, &header, "whsec_other", NOW, DEFAULT_TOLERANCE_SECS),
            Err(SignatureError::Mismatch)
        );
        // A timestamp moved forward to pass the tolerance breaks the signature.
        let moved = header.replacen(&format!("t={NOW}"), &format!("t={}", NOW + 1), 1);
        assert_eq!(
            verify(BODY, &moved, SECRET, NOW, DEFAULT_TOLERANCE_SECS),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn old_and_future_deliveries_are_stale() {
        let old = sign(BODY, SECRET, NOW - 301);
        assert_eq!(
            verify(BODY, &old, SECRET, NOW, DEFAULT_TOLERANCE_SECS),
            Err(SignatureError::Stale(301))
        );
        let future = sign(BODY, SECRET, NOW + 400);
        assert_eq!(
            verify(BODY, &future, SECRET, NOW, DEFAULT_TOLERANCE_SECS),
            Err(SignatureError::Stale(-400))
        );
    }

    #[test]
    fn an_empty_secret_or_header_verifies_nothing() {
        // Signed with the empty key, as an attacker could: still refused.
        let header = sign(BODY, "", NOW);
        assert_eq!(
            verify(BODY, &header, "", NOW, DEFAULT_TOLERANCE_SECS),
            Err(SignatureError::NoSecret)
        );
        for header in ["", "garbage", "v1=abcd", "t=soon,v1=abcd"] {
            assert_eq!(
                verify(BODY, header, SECRET, NOW, DEFAULT_TOLERANCE_SECS),
                Err(SignatureError::Malformed),
                "{header}"
            );
        }
        assert_eq!(
            verify(
                BODY,
                &format!("t={NOW}"),
                SECRET,
                NOW,
                DEFAULT_TOLERANCE_SECS
            ),
            Err(SignatureError::NoSignature)
        );
    }
}
