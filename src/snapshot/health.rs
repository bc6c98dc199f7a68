//! Per-channel runtime health: consecutive failures, timed cooldown, and an in-memory
//! auto-disable flag that takes effect before the database write lands. Lives across snapshot
//! reloads (the loader hands the same `Arc` to the channel's new entry). The keys of a
//! multi-key channel each have their own [`KeyHealth`], so one refused or rate-limited key
//! rests alone while the others keep serving.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rustc_hash::FxHashMap;

#[derive(Debug, Default)]
pub struct ChannelHealth {
    consecutive_failures: AtomicU64,
    cooldown_until_ms: AtomicI64,
    /// When this process auto-disabled the channel (0 = it has not).
    disabled_at_ms: AtomicI64,
    key_cursor: AtomicUsize,
    /// By key fingerprint; read only when a snapshot is built.
    keys: Mutex<FxHashMap<String, Arc<KeyHealth>>>,
}

/// How long a key disabled here stays out while the database does not show it disabled.
const UNSTORED_DISABLE_LAPSES_MS: i64 = 10 * 60 * 1000;

/// The runtime state of one upstream key of a multi-key channel.
#[derive(Debug, Default)]
pub struct KeyHealth {
    cooldown_until_ms: AtomicI64,
    /// When this process took the key out of rotation (0 = it has not).
    disabled_at_ms: AtomicI64,
    /// The loaded data shows the key disabled: from then on the database, not this flag,
    /// keeps it out, and its absence from the data means someone put it back.
    disable_stored: AtomicBool,
}

impl KeyHealth {
    pub fn is_resting(&self, now_ms: i64) -> bool {
        self.disabled_here(now_ms) || self.cooldown_until_ms.load(Ordering::Relaxed) > now_ms
    }

    /// Disabled by this process: stored in the data since, or recently enough that the write
    /// may still be on its way. A disable whose write never landed (the database refused it)
    /// lapses rather than keeping the key out, unseen by views and probes, until a restart.
    fn disabled_here(&self, now_ms: i64) -> bool {
        let disabled_at = self.disabled_at_ms.load(Ordering::Relaxed);
        disabled_at != 0
            && (self.disable_stored.load(Ordering::Relaxed)
                || now_ms - disabled_at < UNSTORED_DISABLE_LAPSES_MS)
    }

    pub fn cool_down(&self, until_ms: i64) {
        self.cooldown_until_ms
            .fetch_max(until_ms, Ordering::Relaxed);
    }

    /// Takes the key out of rotation here. True only for the first caller, so the database
    /// write happens once (again only after an earlier disable lapsed unstored).
    pub fn disable(&self, now_ms: i64) -> bool {
        if self.disabled_here(now_ms) {
            return false;
        }
        let current = self.disabled_at_ms.load(Ordering::Relaxed);
        self.disabled_at_ms
            .compare_exchange(current, now_ms.max(1), Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }

    /// Brings the in-memory state in line with newly loaded data.
    pub fn reconcile(&self, disabled_in_data: bool) {
        if disabled_in_data {
            self.disable_stored.store(true, Ordering::Relaxed);
        } else if self.disable_stored.swap(false, Ordering::Relaxed) {
            // Stored as disabled before and no longer: a probe or an admin put it back.
            self.disabled_at_ms.store(0, Ordering::Relaxed);
            self.cooldown_until_ms.store(0, Ordering::Relaxed);
        }
    }
}

/// What a failure did to the channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureEffect {
    None,
    CooledDown,
    /// The caller must persist the auto-disable.
    Disable,
}

impl ChannelHealth {
    pub fn is_cooling(&self, now_ms: i64) -> bool {
        self.cooldown_until_ms.load(Ordering::Relaxed) > now_ms
    }

    pub fn cooldown_until_ms(&self) -> i64 {
        self.cooldown_until_ms.load(Ordering::Relaxed)
    }

    pub fn is_disabled_here(&self) -> bool {
        self.disabled_at_ms.load(Ordering::Relaxed) != 0
    }

    /// Clears the in-memory auto-disable once the database shows the channel enabled by a change
    /// made after it (an admin or a passing probe).
    pub fn reconcile_enabled(&self, status_changed_at_ms: i64) {
        let disabled_at = self.disabled_at_ms.load(Ordering::Relaxed);
        if disabled_at != 0 && status_changed_at_ms >= disabled_at {
            self.disabled_at_ms.store(0, Ordering::Relaxed);
            self.consecutive_failures.store(0, Ordering::Relaxed);
            self.cooldown_until_ms.store(0, Ordering::Relaxed);
        }
    }

    pub fn record_success(&self) {
        if self.consecutive_failures.load(Ordering::Relaxed) != 0 {
            self.consecutive_failures.store(0, Ordering::Relaxed);
        }
    }

    /// Counts a retryable failure; starts a cooldown or asks for an auto-disable at the
    /// configured thresholds (`disable_after` 0 = never).
    pub fn record_failure(
        &self,
        now_ms: i64,
        cooldown_after: u64,
        cooldown_ms: i64,
        disable_after: u64,
    ) -> FailureEffect {
        let failures = self.consecutive_failures.fetch_add(1, Ordering::Relaxed) + 1;
        if disable_after > 0 && failures >= disable_after {
            return self.disable(now_ms);
        }
        if cooldown_after > 0 && failures.is_multiple_of(cooldown_after) && cooldown_ms > 0 {
            self.cooldown_until_ms
                .store(now_ms + cooldown_ms, Ordering::Relaxed);
            return FailureEffect::CooledDown;
        }
        FailureEffect::None
    }

    /// Marks the channel disabled in this process. Returns `Disable` only for the first caller,
    /// so the database write happens once.
    pub fn disable(&self, now_ms: i64) -> FailureEffect {
        match self.disabled_at_ms.compare_exchange(
            0,
            now_ms.max(1),
            Ordering::Relaxed,
            Ordering::Relaxed,
        ) {
            Ok(_) => FailureEffect::Disable,
            Err(_) => FailureEffect::None,
        }
    }

    /// Where the rotation over `count` keys starts for the next request.
    pub fn next_key(&self, count: usize) -> usize {
        if count <= 1 {
            return 0;
        }
        self.key_cursor.fetch_add(1, Ordering::Relaxed) % count
    }

    /// The health of the key with this fingerprint, the same one across snapshot reloads.
    pub fn key_health(&self, fingerprint: &str) -> Arc<KeyHealth> {
        let mut keys = self
            .keys
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        keys.entry(fingerprint.to_string()).or_default().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cools_down_then_disables_once() {
        let health = ChannelHealth::default();
        assert_eq!(
            health.record_failure(1_000, 3, 30_000, 5),
            FailureEffect::None
        );
        assert_eq!(
            health.record_failure(1_000, 3, 30_000, 5),
            FailureEffect::None
        );
        assert_eq!(
            health.record_failure(1_000, 3, 30_000, 5),
            FailureEffect::CooledDown
        );
        assert!(health.is_cooling(30_999));
        assert!(!health.is_cooling(31_000));
        assert_eq!(
            health.record_failure(2_000, 3, 30_000, 5),
            FailureEffect::None
        );
        assert_eq!(
            health.record_failure(2_000, 3, 30_000, 5),
            FailureEffect::Disable
        );
        assert!(health.is_disabled_here());
        assert_eq!(
            health.record_failure(2_000, 3, 30_000, 5),
            FailureEffect::None
        );
        // A change older than the disable does not clear it; a newer one does.
        health.reconcile_enabled(1_999);
        assert!(health.is_disabled_here());
        health.reconcile_enabled(2_000);
        assert!(!health.is_disabled_here());
        assert!(!health.is_cooling(3_000));
    }

    #[test]
    fn success_resets_the_failure_streak() {
        let health = ChannelHealth::default();
        health.record_failure(0, 3, 1_000, 0);
        health.record_failure(0, 3, 1_000, 0);
        health.record_success();
        assert_eq!(health.record_failure(0, 3, 1_000, 0), FailureEffect::None);
    }

    #[test]
    fn a_key_rests_until_the_data_puts_it_back() {
        let key = KeyHealth::default();
        assert!(!key.is_resting(0));
        key.cool_down(5_000);
        assert!(key.is_resting(4_999));
        assert!(!key.is_resting(5_000));
        assert!(key.disable(6_000));
        assert!(
            !key.disable(6_001),
            "the second caller must not write again"
        );
        // Before the write lands, the data still shows the key enabled: it stays out.
        key.reconcile(false);
        assert!(key.is_resting(10_000));
        key.reconcile(true);
        assert!(key.is_resting(10_000));
        // Enabled again in the data after being stored disabled: back in rotation.
        key.reconcile(false);
        assert!(!key.is_resting(10_000));
    }

    #[test]
    fn a_disable_whose_write_never_lands_lapses() {
        let key = KeyHealth::default();
        assert!(key.disable(1_000));
        assert!(key.is_resting(1_000 + UNSTORED_DISABLE_LAPSES_MS - 1));
        assert!(!key.is_resting(1_000 + UNSTORED_DISABLE_LAPSES_MS));
        // A new refusal disables it again and asks for the write again.
        assert!(key.disable(1_000 + UNSTORED_DISABLE_LAPSES_MS));
        assert!(!key.disable(1_001 + UNSTORED_DISABLE_LAPSES_MS));
    }

    #[test]
    fn key_health_survives_reloads_by_fingerprint() {
        let health = ChannelHealth::default();
        health.key_health("aaaa").cool_down(9_000);
        assert!(health.key_health("aaaa").is_resting(1_000));
        assert!(!health.key_health("bbbb").is_resting(1_000));
    }

    #[test]
    fn rotates_keys() {
        let health = ChannelHealth::default();
        let picks: Vec<usize> = (0..6).map(|_| health.next_key(3)).collect();
        assert_eq!(picks, vec![0, 1, 2, 0, 1, 2]);
        assert_eq!(health.next_key(1), 0);
    }
}
