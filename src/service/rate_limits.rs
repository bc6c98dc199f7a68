//! Rate limits as people give them (a form, `/api`, the command line), for keys, accounts
//! and groups alike.

use super::{Problems, ServiceError, ServiceResult};
use crate::domain::rate_limits::{self, RateLimits};
use crate::msg;

/// Each limit as typed: a whole number; empty or `none` for no limit; absent (None) to keep
/// what is set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RateLimitInput {
    /// Requests per minute.
    pub rpm: Option<String>,
    /// Tokens per minute, input and output together.
    pub tpm: Option<String>,
    /// Requests in flight at once.
    pub max_concurrent: Option<String>,
}

impl RateLimitInput {
    /// Whether no limit is given (every one keeps what is set).
    pub fn is_empty(&self) -> bool {
        self.rpm.is_none() && self.tpm.is_none() && self.max_concurrent.is_none()
    }

    /// The limits as they are to be, from `current`; every wrong value is named by its field.
    pub fn applied_to(&self, current: RateLimits) -> ServiceResult<RateLimits> {
        let mut problems = Problems::default();
        let mut field = |name: &'static str, text: &Option<String>, now: Option<u64>| {
            let Some(text) = text else {
                return Ok(now);
            };
            let parsed = rate_limits::parse_limit(text).map_err(|_| {
                ServiceError::invalid(
                    name,
                    msg!(
                        "rate-limit-invalid",
                        value = crate::domain::names::quoted(text.trim())
                    ),
                )
            });
            problems.check(parsed).map(|value| value.unwrap_or(now))
        };
        let limits = RateLimits {
            rpm: field("rpm", &self.rpm, current.rpm)?,
            tpm: field("tpm", &self.tpm, current.tpm)?,
            max_concurrent: field(
                "max_concurrent",
                &self.max_concurrent,
                current.max_concurrent,
            )?,
        };
        problems.finish()?;
        Ok(limits)
    }
}

/// A limit as a form shows it: the number, or empty for none.
pub fn editable(limit: Option<u64>) -> String {
    limit.map(|value| value.to_string()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(rpm: Option<&str>, tpm: Option<&str>, max: Option<&str>) -> RateLimitInput {
        RateLimitInput {
            rpm: rpm.map(str::to_string),
            tpm: tpm.map(str::to_string),
            max_concurrent: max.map(str::to_string),
        }
    }

    #[test]
    fn absent_keeps_empty_or_none_clears() {
        let current = RateLimits {
            rpm: Some(5),
            tpm: Some(1_000),
            max_concurrent: Some(2),
        };
        let changed = input(Some("60"), Some(""), None)
            .applied_to(current)
            .unwrap();
        assert_eq!(
            changed,
            RateLimits {
                rpm: Some(60),
                tpm: None,
                max_concurrent: Some(2)
            }
        );
        let cleared = input(Some("none"), None, Some("NONE"))
            .applied_to(current)
            .unwrap();
        assert_eq!(cleared.rpm, None);
        assert_eq!(cleared.max_concurrent, None);
        assert!(RateLimitInput::default().is_empty());
    }

    #[test]
    fn every_wrong_value_is_named() {
        let error = input(Some("0"), Some("lots"), Some("3"))
            .applied_to(RateLimits::NONE)
            .unwrap_err();
        let fields: Vec<&str> = error.fields().iter().map(|p| p.field).collect();
        assert_eq!(fields, ["rpm", "tpm"]);
    }
}
