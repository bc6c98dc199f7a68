//! Rate limits on what an attacker would repeat: sign-in, registration, and (with the
//! features that send mail) codes and resets. Counted per kind and key (an address, an
//! account) in fixed windows, in this server's memory.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One limit: at most `max` attempts per `window`.
#[derive(Clone, Copy, Debug)]
pub struct Limit {
    pub kind: &'static str,
    pub max: u32,
    pub window: Duration,
}

pub const SIGN_IN_PER_IP: Limit = Limit {
    kind: "sign-in-ip",
    max: 30,
    window: Duration::from_secs(300),
};
pub const SIGN_IN_PER_ACCOUNT: Limit = Limit {
    kind: "sign-in-account",
    max: 10,
    window: Duration::from_secs(300),
};
pub const REGISTER_PER_IP: Limit = Limit {
    kind: "register-ip",
    max: 10,
    window: Duration::from_secs(3600),
};

pub const CODE_SEND_PER_IP: Limit = Limit {
    kind: "code-send-ip",
    max: 10,
    window: Duration::from_secs(3600),
};
pub const CODE_CHECK_PER_IP: Limit = Limit {
    kind: "code-check-ip",
    max: 30,
    window: Duration::from_secs(600),
};
pub const RESET_PER_IP: Limit = Limit {
    kind: "reset-ip",
    max: 10,
    window: Duration::from_secs(3600),
};
pub const RESET_PER_ADDRESS: Limit = Limit {
    kind: "reset-address",
    max: 3,
    window: Duration::from_secs(3600),
};
/// Wrong redemption codes: enough for typos, far too few to guess a code.
pub const REDEEM_FAILURES_PER_IP: Limit = Limit {
    kind: "redeem-ip",
    max: 20,
    window: Duration::from_secs(3600),
};
pub const REDEEM_FAILURES_PER_ACCOUNT: Limit = Limit {
    kind: "redeem-account",
    max: 10,
    window: Duration::from_secs(3600),
};
const SIGNUPS_PER_DAY_KIND: &str = "signup-day";
const DAY: Duration = Duration::from_secs(86_400);

/// The site's daily limit of new accounts per address (option `signups_per_ip_per_day`).
pub fn signups_per_day(max: u64) -> Limit {
    Limit {
        kind: SIGNUPS_PER_DAY_KIND,
        max: u32::try_from(max).unwrap_or(u32::MAX),
        window: DAY,
    }
}

/// Past this many keys the windows that have ended are swept out.
const SWEEP_AT: usize = 10_000;

/// A limit's kind and what it counts (an address, an account).
type Counted = (&'static str, String);
/// When the window began, and the attempts in it.
type Window = (Instant, u32);

#[derive(Debug, Default)]
pub struct Limiter {
    windows: Mutex<HashMap<Counted, Window>>,
}

impl Limiter {
    /// Counts an attempt; false when the limit is reached (the attempt is refused and does
    /// not count).
    pub fn allow(&self, limit: Limit, key: &str) -> bool {
        let now = Instant::now();
        let mut windows = self
            .windows
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if windows.len() >= SWEEP_AT {
            windows.retain(|(kind, _), (start, _)| {
                let window = limit_window(kind).unwrap_or(limit.window);
                now.duration_since(*start) < window
            });
        }
        let entry = windows
            .entry((limit.kind, key.to_lowercase()))
            .or_insert((now, 0));
        if now.duration_since(entry.0) >= limit.window {
            *entry = (now, 0);
        }
        if entry.1 >= limit.max {
            return false;
        }
        entry.1 += 1;
        true
    }

    /// Whether an attempt would be allowed now, without counting it (for limits on what
    /// succeeded, counted with [`Limiter::allow`] after the fact).
    pub fn would_allow(&self, limit: Limit, key: &str) -> bool {
        if limit.max == 0 {
            return true;
        }
        let windows = self
            .windows
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match windows.get(&(limit.kind, key.to_lowercase())) {
            Some((start, count)) => start.elapsed() >= limit.window || *count < limit.max,
            None => true,
        }
    }

    /// Counts an attempt against a limit that may be switched off (a maximum of 0).
    pub fn allow_unless_off(&self, limit: Limit, key: &str) -> bool {
        limit.max == 0 || self.allow(limit, key)
    }

    /// Forgets a key's attempts (a successful sign-in clears the account's failures).
    pub fn clear(&self, limit: Limit, key: &str) {
        self.windows
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(&(limit.kind, key.to_lowercase()));
    }
}

fn limit_window(kind: &str) -> Option<Duration> {
    if kind == SIGNUPS_PER_DAY_KIND {
        return Some(DAY);
    }
    [
        SIGN_IN_PER_IP,
        SIGN_IN_PER_ACCOUNT,
        REGISTER_PER_IP,
        CODE_SEND_PER_IP,
        CODE_CHECK_PER_IP,
        RESET_PER_IP,
        RESET_PER_ADDRESS,
    ]
    .iter()
    .find(|l| l.kind == kind)
    .map(|l| l.window)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_past_the_limit_per_key() {
        let limiter = Limiter::default();
        let limit = Limit {
            kind: "test",
            max: 2,
            window: Duration::from_secs(60),
        };
        assert!(limiter.allow(limit, "a"));
        assert!(limiter.allow(limit, "A"));
        assert!(!limiter.allow(limit, "a"));
        assert!(limiter.allow(limit, "b"));
        limiter.clear(limit, "a");
        assert!(limiter.allow(limit, "a"));
    }
}
