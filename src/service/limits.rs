//! Rate limits on what an attacker would repeat: signing in, registering, emailed codes,
//! password resets, redemption codes, sensitive profile changes. Every limit counts and
//! decides in one atomic call ([`LimitStore::hit`]) with a sliding window
//! ([`crate::domain::sliding_window`]), so concurrent attempts cannot all pass a check made
//! before any of them is counted. Limits on failures count an attempt before it is tried and
//! give it back when it succeeds.
//!
//! The store is a trait: this server's memory today; a store shared by every node can take its
//! place without touching the callers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use crate::domain::sliding_window::Buckets;

/// One limit: at most `max` attempts in any `window`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    pub kind: &'static str,
    pub max: u32,
    pub window: Duration,
}

impl Limit {
    fn window_ms(&self) -> i64 {
        i64::try_from(self.window.as_millis()).unwrap_or(i64::MAX)
    }
}

const HOUR: Duration = Duration::from_secs(3600);

/// Sign-in attempts from one address.
pub const SIGN_IN_PER_IP: Limit = Limit {
    kind: "sign-in-ip",
    max: 30,
    window: Duration::from_secs(5 * 60),
};
/// Failed sign-ins to one account from browsers it has not signed in from before. Past this
/// those browsers are locked out of the account for a while; its owner's browsers are not.
pub const SIGN_IN_PER_ACCOUNT: Limit = Limit {
    kind: "sign-in-account",
    max: 10,
    window: Duration::from_secs(5 * 60),
};
/// Failed sign-ins from one browser the account signed in from before (its device cookie).
pub const SIGN_IN_PER_DEVICE: Limit = Limit {
    kind: "sign-in-device",
    max: 10,
    window: Duration::from_secs(5 * 60),
};
/// Wrong current passwords given to change one's email or password (as sign-in's).
pub const REAUTH_PER_ACCOUNT: Limit = Limit {
    kind: "reauth-account",
    max: 10,
    window: Duration::from_secs(5 * 60),
};
pub const REGISTER_PER_IP: Limit = Limit {
    kind: "register-ip",
    max: 10,
    window: HOUR,
};
pub const CODE_SEND_PER_IP: Limit = Limit {
    kind: "code-send-ip",
    max: 10,
    window: HOUR,
};
pub const CODE_CHECK_PER_IP: Limit = Limit {
    kind: "code-check-ip",
    max: 30,
    window: Duration::from_secs(10 * 60),
};
pub const RESET_PER_IP: Limit = Limit {
    kind: "reset-ip",
    max: 10,
    window: HOUR,
};
pub const RESET_PER_ADDRESS: Limit = Limit {
    kind: "reset-address",
    max: 3,
    window: HOUR,
};
/// Wrong redemption codes: enough for typos, far too few to guess a code.
pub const REDEEM_FAILURES_PER_IP: Limit = Limit {
    kind: "redeem-ip",
    max: 20,
    window: HOUR,
};
pub const REDEEM_FAILURES_PER_ACCOUNT: Limit = Limit {
    kind: "redeem-account",
    max: 10,
    window: HOUR,
};

/// The site's daily limit of new accounts per address (option `signups_per_ip_per_day`; 0 is
/// no limit, see [`Limits::hit_unless_off`]).
pub fn signups_per_day(max: u64) -> Limit {
    Limit {
        kind: "signup-day",
        max: u32::try_from(max).unwrap_or(u32::MAX),
        window: 24 * HOUR,
    }
}

/// Where attempts are counted.
#[async_trait]
pub trait LimitStore: Send + Sync {
    /// Counts an attempt against `limit` for `key` and says whether it is allowed, in one
    /// atomic step: a refused attempt is not counted. A store that cannot decide refuses.
    async fn hit(&self, limit: Limit, key: &str, now_ms: i64) -> bool;

    /// Takes back one attempt counted earlier.
    async fn give_back(&self, limit: Limit, key: &str, now_ms: i64);
}

/// Past this many keys, the ones whose attempts have all slid out are swept away.
const SWEEP_AT: usize = 10_000;

/// A limit's kind and what it counts (an address, an account).
type Counted = (&'static str, String);
/// The buckets of one limit and key, and the limit's window in milliseconds.
type Counts = HashMap<Counted, (Buckets, i64)>;

/// This server's memory.
#[derive(Debug, Default)]
pub struct MemoryLimits {
    counts: Mutex<Counts>,
}

impl MemoryLimits {
    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        // A few counters: recovered rather than failing every limited page.
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl LimitStore for MemoryLimits {
    async fn hit(&self, limit: Limit, key: &str, now_ms: i64) -> bool {
        let window_ms = limit.window_ms();
        let mut counts = self.counts();
        if counts.len() >= SWEEP_AT {
            counts.retain(|_, (buckets, window)| !buckets.is_spent(now_ms, *window));
        }
        let (buckets, _) = counts
            .entry((limit.kind, key.to_string()))
            .or_insert((Buckets::default(), window_ms));
        buckets.hit(now_ms, window_ms, limit.max)
    }

    async fn give_back(&self, limit: Limit, key: &str, now_ms: i64) {
        if let Some((buckets, _)) = self.counts().get_mut(&(limit.kind, key.to_string())) {
            buckets.give_back(now_ms, limit.window_ms());
        }
    }
}

/// The limits every request handler shares.
#[derive(Clone)]
pub struct Limits {
    store: Arc<dyn LimitStore>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits::new(Arc::new(MemoryLimits::default()))
    }
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Limits")
    }
}

impl Limits {
    pub fn new(store: Arc<dyn LimitStore>) -> Limits {
        Limits { store }
    }

    /// Counts an attempt; false when the limit is reached (see [`LimitStore::hit`]).
    pub async fn hit(&self, limit: Limit, key: &str) -> bool {
        self.store
            .hit(limit, key, crate::service::db::now_ms())
            .await
    }

    /// As [`Limits::hit`], for a limit an option may switch off (a maximum of 0).
    pub async fn hit_unless_off(&self, limit: Limit, key: &str) -> bool {
        limit.max == 0 || self.hit(limit, key).await
    }

    /// Counts an attempt against each limit in turn; when one refuses, the ones already
    /// counted are given back, so a refused attempt counts nowhere.
    pub async fn hit_all(&self, limits: &[(Limit, &str)]) -> bool {
        for (index, (limit, key)) in limits.iter().enumerate() {
            if !self.hit(*limit, key).await {
                for (counted, key) in &limits[..index] {
                    self.give_back(*counted, key).await;
                }
                return false;
            }
        }
        true
    }

    /// Takes back an attempt counted earlier: it succeeded where only failures count, or what
    /// it guarded did not happen.
    pub async fn give_back(&self, limit: Limit, key: &str) {
        self.store
            .give_back(limit, key, crate::service::db::now_ms())
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn concurrent_attempts_never_pass_the_limit() {
        let limits = Limits::default();
        let limit = Limit {
            kind: "test",
            max: 2,
            window: Duration::from_secs(60),
        };
        let attempts = (0..50).map(|_| {
            let limits = limits.clone();
            tokio::spawn(async move { limits.hit(limit, "203.0.113.9").await })
        });
        let allowed = futures::future::join_all(attempts)
            .await
            .into_iter()
            .filter(|r| matches!(r, Ok(true)))
            .count();
        assert_eq!(allowed, 2);
        // Another key has its own count.
        assert!(limits.hit(limit, "203.0.113.10").await);
    }

    #[tokio::test]
    async fn a_refused_attempt_counts_nowhere() {
        let limits = Limits::default();
        let wide = Limit {
            kind: "wide",
            max: 5,
            window: Duration::from_secs(60),
        };
        let narrow = Limit {
            kind: "narrow",
            max: 1,
            window: Duration::from_secs(60),
        };
        assert!(limits.hit_all(&[(wide, "a"), (narrow, "b")]).await);
        assert!(!limits.hit_all(&[(wide, "a"), (narrow, "b")]).await);
        // The wide limit kept only the attempt that passed both.
        for _ in 0..4 {
            assert!(limits.hit(wide, "a").await);
        }
        assert!(!limits.hit(wide, "a").await);
    }
}
