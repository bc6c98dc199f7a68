//! The rate limits a caller's request is checked against, and the words of a refusal that
//! names the one that bound (the headers that say what is left: `rate_headers`).
//!
//! A key is checked against its own limits, each one it does not set taken from its group's,
//! counted on the key alone; its owner's account against the account's limits, counted on
//! every key of the person together. A key with neither is not checked at all.

use std::sync::Arc;

use smallvec::SmallVec;

use super::auth::Caller;
use super::error::RelayError;
use crate::billing::rates::{RateError, RateId, RateRefusal, RateScope, RateSubject};
use crate::domain::rate_limits::{self, LimitKind, RateLimits};

/// At most a key and an account: no allocation.
pub type Subjects = SmallVec<[RateSubject; 2]>;

impl Caller {
    /// What a request of this caller is checked against, given its group's limits: empty
    /// when nothing limits it.
    pub fn rate_subjects(&self, group: RateLimits) -> Subjects {
        let mut subjects = Subjects::new();
        let key = self.token.rate_limits.or(group);
        if !key.is_none() {
            subjects.push(RateSubject {
                id: RateId::new(RateScope::Key, self.token.id),
                limits: key,
                counters: Arc::clone(&self.token.rates),
            });
        }
        if !self.user.rate_limits.is_none() {
            subjects.push(RateSubject {
                id: RateId::new(RateScope::Account, self.user.id),
                limits: self.user.rate_limits,
                counters: Arc::clone(&self.user.rates),
            });
        }
        subjects
    }

    /// Whose limit refused, for `tollgate_rate_limited_total`.
    pub fn limit_scope(&self, refusal: &RateRefusal) -> crate::metrics::RateLimitScope {
        use crate::metrics::RateLimitScope;
        match refusal.subject.scope {
            RateScope::Account => RateLimitScope::Account,
            RateScope::Key if self.token.rate_limits.get(refusal.kind).is_none() => {
                RateLimitScope::Group
            }
            RateScope::Key => RateLimitScope::Key,
        }
    }

    /// Whose limit refused, in words: the key's own, its group's, or the account's.
    fn limit_owner(&self, refusal: &RateRefusal) -> String {
        match refusal.subject.scope {
            RateScope::Account => "your account (all of its API keys together)".to_string(),
            RateScope::Key if self.token.rate_limits.get(refusal.kind).is_none() => format!(
                "this API key (the limit group '{}' sets for each of its keys)",
                self.group()
            ),
            RateScope::Key => "this API key".to_string(),
        }
    }

    /// The answer to a request a rate limit refused: which limit of whose, and when to try
    /// again (`Retry-After` in whole seconds); OpenAI's headers say what is left.
    pub fn rate_refusal(&self, refusal: &RateRefusal) -> RelayError {
        let owner = self.limit_owner(refusal);
        let limit = refusal.limit;
        let wait = refusal.retry_after_ms.map(rate_limits::duration_text);
        let message = match (refusal.kind, &wait) {
            (LimitKind::Tokens, None) => format!(
                "This request needs up to {} tokens, more than the {limit} tokens per minute (tpm) {owner} allows; lower max_tokens or shorten the prompt.",
                refusal.tokens
            ),
            (LimitKind::Requests, _) => format!(
                "Rate limit reached for {owner}: {limit} requests per minute (rpm). Please try again in {}.",
                wait.as_deref().unwrap_or("1s")
            ),
            (LimitKind::Tokens, Some(wait)) => format!(
                "Rate limit reached for {owner}: {limit} tokens per minute (tpm), and this request needs up to {} tokens. Please try again in {wait}.",
                refusal.tokens
            ),
            (LimitKind::Concurrent, _) => format!(
                "Too many requests at once for {owner}: at most {limit} in flight (max_concurrent). Please try again in {} or when one has finished.",
                wait.as_deref().unwrap_or("1s")
            ),
        };
        let error = RelayError::rate_limited(refusal.kind == LimitKind::Tokens, message)
            .with_rate_status(refusal.status);
        match refusal.retry_after_ms {
            Some(wait) => error.with_retry_after(rate_limits::retry_after_secs(wait)),
            None => error,
        }
    }
}

/// What an admission that could not be made answers.
pub fn admission_error(caller: &Caller, error: &RateError) -> RelayError {
    match error {
        RateError::Refused(refusal) => caller.rate_refusal(refusal),
        RateError::Unavailable(problem) => {
            tracing::warn!("{problem}; the request is refused");
            RelayError::limits_unavailable()
        }
    }
}
