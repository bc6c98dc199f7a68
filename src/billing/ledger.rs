//! Live balances in memory, so admission needs no database round-trip.
//!
//! Each user and each API key has an [`Account`]. Its available balance is
//! `stored + unflushed − held`:
//! - `stored` is the balance in the database as of the last read, plus every batch this process
//!   has committed since;
//! - `unflushed` is the sum of settled costs (negative) not yet committed by the billing writer;
//! - `held` is the sum of holds of requests in flight.
//!
//! Admission reserves a hold only when both the user and the key can cover it, under both locks
//! (always taken user first, then key), so concurrent requests can never spend more than the
//! balance beyond what the holds in flight already account for.
//!
//! The sums saturate at the 64-bit bounds rather than wrap: holds and costs are never
//! negative, so no figure can turn a debt into a balance.

use std::sync::Mutex;

#[derive(Debug, Default)]
struct AccountState {
    stored: i64,
    unflushed: i64,
    held: i64,
}

impl AccountState {
    fn available(&self) -> i64 {
        self.stored
            .saturating_add(self.unflushed)
            .saturating_sub(self.held)
    }
}

#[derive(Debug, Default)]
pub struct Account {
    state: Mutex<AccountState>,
}

/// Which balance refused a hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shortfall {
    User { available: i64 },
    Key { available: i64 },
}

impl Account {
    pub fn new(stored: i64) -> Account {
        Account {
            state: Mutex::new(AccountState {
                stored,
                ..AccountState::default()
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, AccountState> {
        // A panic while holding this lock cannot leave the three integers inconsistent with each
        // other in a way that matters more than stopping billing altogether, so recover.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn available(&self) -> i64 {
        self.lock().available()
    }

    /// Replaces the stored balance with a fresh database read. The caller guarantees no batch
    /// commit happened between that read and this call (the billing writer's sync lock).
    pub fn set_stored(&self, stored: i64) {
        self.lock().stored = stored;
    }

    /// Whether nothing is in flight on the account: no hold placed, no spending waiting to be
    /// written. Only such an account may be dropped from memory and read afresh later.
    pub fn is_settled(&self) -> bool {
        let state = self.lock();
        state.held == 0 && state.unflushed == 0
    }

    /// A batch containing `delta` for this account has been committed.
    pub fn committed(&self, delta: i64) {
        let mut state = self.lock();
        state.stored = state.stored.saturating_add(delta);
        state.unflushed = state.unflushed.saturating_sub(delta);
    }

    #[cfg(test)]
    fn parts(&self) -> (i64, i64, i64) {
        let s = self.lock();
        (s.stored, s.unflushed, s.held)
    }
}

/// Reserves `amount` on the user and, when the key is limited, on the key.
pub fn try_hold(user: &Account, key: Option<&Account>, amount: i64) -> Result<(), Shortfall> {
    let amount = amount.max(0);
    let mut user_state = user.lock();
    let user_available = user_state.available();
    if user_available < amount {
        return Err(Shortfall::User {
            available: user_available,
        });
    }
    if let Some(key) = key {
        let mut key_state = key.lock();
        let key_available = key_state.available();
        if key_available < amount {
            return Err(Shortfall::Key {
                available: key_available,
            });
        }
        key_state.held = key_state.held.saturating_add(amount);
    }
    user_state.held = user_state.held.saturating_add(amount);
    Ok(())
}

/// Releases a hold and records the real cost as unflushed spending. `cost` may exceed the hold
/// (an answer longer than estimated); the balance then goes below what the hold covered.
pub fn settle(user: &Account, key: Option<&Account>, hold: i64, cost: i64) {
    let (hold, cost) = (hold.max(0), cost.max(0));
    for account in std::iter::once(user).chain(key) {
        let mut state = account.lock();
        state.held = state.held.saturating_sub(hold);
        state.unflushed = state.unflushed.saturating_sub(cost);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn holds_and_settles() {
        let user = Account::new(100);
        let key = Account::new(50);
        try_hold(&user, Some(&key), 40).unwrap();
        assert_eq!(user.available(), 60);
        assert_eq!(key.available(), 10);
        assert_eq!(
            try_hold(&user, Some(&key), 20),
            Err(Shortfall::Key { available: 10 })
        );
        // The refused hold left nothing behind on the user.
        assert_eq!(user.available(), 60);
        settle(&user, Some(&key), 40, 30);
        assert_eq!(user.available(), 70);
        assert_eq!(key.available(), 20);
        assert_eq!(user.parts(), (100, -30, 0));
        user.committed(-30);
        assert_eq!(user.parts(), (70, 0, 0));
    }

    #[test]
    fn unlimited_key_checks_only_the_user() {
        let user = Account::new(10);
        assert_eq!(
            try_hold(&user, None, 11),
            Err(Shortfall::User { available: 10 })
        );
        try_hold(&user, None, 10).unwrap();
        settle(&user, None, 10, 0);
        assert_eq!(user.available(), 10);
    }

    #[test]
    fn huge_costs_saturate_instead_of_wrapping() {
        let user = Account::new(1_000);
        // Requests already in flight when the first cost landed settle after it.
        for _ in 0..3 {
            try_hold(&user, None, 10).unwrap();
        }
        for _ in 0..3 {
            settle(&user, None, 10, i64::MAX);
        }
        // Three costs of i64::MAX: the unflushed debt stops at the bound, it never wraps into
        // credit.
        assert_eq!(user.available(), i64::MIN + 1_000);
        assert!(try_hold(&user, None, 1).is_err());
        user.committed(i64::MIN);
        assert!(user.available() < 0);
        // Negative amounts cannot raise a balance either.
        let user = Account::new(100);
        try_hold(&user, None, -50).unwrap();
        settle(&user, None, -50, -50);
        assert_eq!(user.available(), 100);
    }

    #[test]
    fn concurrent_holds_never_overspend() {
        let user = Arc::new(Account::new(1_000));
        let key = Arc::new(Account::new(700));
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let (user, key) = (user.clone(), key.clone());
                std::thread::spawn(move || {
                    let mut granted = 0;
                    for _ in 0..100 {
                        if try_hold(&user, Some(&key), 7).is_ok() {
                            granted += 1;
                            settle(&user, Some(&key), 7, 7);
                        }
                    }
                    granted
                })
            })
            .collect();
        let granted: i64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(granted, 100); // 700 / 7
        assert_eq!(key.available(), 0);
        assert_eq!(user.available(), 300);
    }
}
