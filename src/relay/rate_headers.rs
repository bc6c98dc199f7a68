//! OpenAI's `x-ratelimit-*` headers on answers, from what a rate-limit admission left.

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::billing::rates::RateStatus;
use crate::domain::rate_limits::{self, Allowance};

const LIMIT_REQUESTS: HeaderName = HeaderName::from_static("x-ratelimit-limit-requests");
const REMAINING_REQUESTS: HeaderName = HeaderName::from_static("x-ratelimit-remaining-requests");
const RESET_REQUESTS: HeaderName = HeaderName::from_static("x-ratelimit-reset-requests");
const LIMIT_TOKENS: HeaderName = HeaderName::from_static("x-ratelimit-limit-tokens");
const REMAINING_TOKENS: HeaderName = HeaderName::from_static("x-ratelimit-remaining-tokens");
const RESET_TOKENS: HeaderName = HeaderName::from_static("x-ratelimit-reset-tokens");

fn write_allowance(headers: &mut HeaderMap, names: [HeaderName; 3], allowance: Option<Allowance>) {
    let Some(allowance) = allowance else {
        return;
    };
    let [limit, remaining, reset] = names;
    headers.insert(limit, HeaderValue::from(allowance.limit));
    headers.insert(remaining, HeaderValue::from(allowance.remaining));
    if let Ok(value) = HeaderValue::try_from(rate_limits::duration_text(allowance.reset_ms)) {
        headers.insert(reset, value);
    }
}

/// OpenAI's `x-ratelimit-*` headers: the request triple when requests are limited, the token
/// triple when tokens are.
pub fn write_headers(status: &RateStatus, headers: &mut HeaderMap) {
    write_allowance(
        headers,
        [LIMIT_REQUESTS, REMAINING_REQUESTS, RESET_REQUESTS],
        status.requests,
    );
    write_allowance(
        headers,
        [LIMIT_TOKENS, REMAINING_TOKENS, RESET_TOKENS],
        status.tokens,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_carry_the_limits_that_apply() {
        let mut headers = HeaderMap::new();
        let status = RateStatus {
            requests: Some(Allowance {
                limit: 60,
                remaining: 59,
                reset_ms: 1_000,
            }),
            tokens: None,
        };
        write_headers(&status, &mut headers);
        assert_eq!(headers["x-ratelimit-limit-requests"], "60");
        assert_eq!(headers["x-ratelimit-remaining-requests"], "59");
        assert_eq!(headers["x-ratelimit-reset-requests"], "1s");
        assert!(!headers.contains_key("x-ratelimit-limit-tokens"));
        let status = RateStatus {
            requests: None,
            tokens: Some(Allowance {
                limit: 150_000,
                remaining: 149_000,
                reset_ms: 360_000,
            }),
        };
        write_headers(&status, &mut headers);
        assert_eq!(headers["x-ratelimit-reset-tokens"], "6m0s");
        assert_eq!(headers["x-ratelimit-remaining-tokens"], "149000");
    }
}
