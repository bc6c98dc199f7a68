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
    User {
        available: i64,
    },
    Key {
        available: i64,
    },
    /// The key's periodic budget, which starts over at `resets_at` (UTC milliseconds).
    Budget {
        available: i64,
        resets_at: i64,
    },
}

#[derive(Debug, Default)]
struct BudgetState {
    limit: i64,
    /// The period spending counts toward, as [start, end) in UTC milliseconds.
    window_start: i64,
    window_end: i64,
    /// Spent in this period as of the last database read, plus batches committed since.
    stored: i64,
    /// Settled in this period, not yet committed by the billing writer.
    unflushed: i64,
    held: i64,
}

impl BudgetState {
    fn available(&self) -> i64 {
        self.limit
            .saturating_sub(self.stored)
            .saturating_sub(self.unflushed)
            .saturating_sub(self.held)
    }

    /// Starts the period `[start, end)` afresh, if it is a later one than the current.
    fn enter(&mut self, start: i64, end: i64) {
        if start > self.window_start {
            self.window_start = start;
            self.stored = 0;
            self.unflushed = 0;
        }
        if start == self.window_start {
            self.window_end = end;
        }
    }
}

/// A key's budget for the current day, week or month: what the period may spend, minus what it
/// spent and what is held. Spending is counted toward the period in which its hold was placed;
/// a request that settles after the period ended counts toward none (the next period starts
/// from nothing). Holds are released whichever period they belong to.
#[derive(Debug, Default)]
pub struct Budget {
    state: Mutex<BudgetState>,
}

impl Budget {
    /// A budget of `limit` per period, with `spent` recorded in the database for the period
    /// that began at `window_start` (an older period counts as nothing spent now).
    pub fn new(limit: i64, spent: i64, window_start: i64) -> Budget {
        let budget = Budget::default();
        {
            let mut state = budget.lock();
            state.limit = limit;
            state.window_start = window_start;
            state.stored = spent;
        }
        budget
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BudgetState> {
        // As for `Account`: a few integers, recovered rather than stopping billing.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// When the current period ends; 0 before the first [`Budget::enter`].
    pub fn window_end(&self) -> i64 {
        self.lock().window_end
    }

    /// Moves to the period `[start, end)` that holds now, starting it from nothing when it is
    /// a later one. The relay calls this when the known period has ended.
    pub fn enter(&self, start: i64, end: i64) {
        self.lock().enter(start, end);
    }

    pub fn available(&self) -> i64 {
        self.lock().available()
    }

    /// What the current period spent (committed and not), and when it began.
    pub fn spent(&self) -> (i64, i64) {
        let state = self.lock();
        (
            state.stored.saturating_add(state.unflushed),
            state.window_start,
        )
    }

    /// A fresh database read of the key's row. The caller holds the billing writer's lock, so
    /// no batch committed between the read and this call.
    pub fn set_stored(&self, limit: i64, spent: i64, window_start: i64) {
        let mut state = self.lock();
        state.limit = limit;
        if window_start > state.window_start {
            // Another server began a later period: follow it (the end is found at next use).
            state.window_start = window_start;
            state.window_end = 0;
            state.unflushed = 0;
        }
        state.stored = if window_start == state.window_start {
            spent
        } else {
            // Nothing of the current period is committed yet.
            0
        };
    }

    /// A batch holding `spent` of the period that began at `window_start` committed.
    pub fn committed(&self, spent: i64, window_start: i64) {
        let mut state = self.lock();
        if window_start == state.window_start {
            state.stored = state.stored.saturating_add(spent);
            state.unflushed = state.unflushed.saturating_sub(spent);
        }
    }

    pub fn is_settled(&self) -> bool {
        let state = self.lock();
        state.held == 0 && state.unflushed == 0
    }
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

/// Reserves `amount` on the user, on the key when it has a limit of its own, and on the key's
/// budget when it has one (locks taken in that order). Returns the start of the budget period
/// the hold counts toward (0 without a budget).
pub fn try_hold(
    user: &Account,
    key: Option<&Account>,
    budget: Option<&Budget>,
    amount: i64,
) -> Result<i64, Shortfall> {
    let amount = amount.max(0);
    let mut user_state = user.lock();
    let user_available = user_state.available();
    if user_available < amount {
        return Err(Shortfall::User {
            available: user_available,
        });
    }
    let mut key_state = key.map(Account::lock);
    if let Some(key_state) = &key_state {
        let key_available = key_state.available();
        if key_available < amount {
            return Err(Shortfall::Key {
                available: key_available,
            });
        }
    }
    let mut window = 0;
    if let Some(budget) = budget {
        let mut budget_state = budget.lock();
        let budget_available = budget_state.available();
        if budget_available < amount {
            return Err(Shortfall::Budget {
                available: budget_available,
                resets_at: budget_state.window_end,
            });
        }
        budget_state.held = budget_state.held.saturating_add(amount);
        window = budget_state.window_start;
    }
    if let Some(key_state) = &mut key_state {
        key_state.held = key_state.held.saturating_add(amount);
    }
    user_state.held = user_state.held.saturating_add(amount);
    Ok(window)
}

/// Releases a hold and records the real cost as unflushed spending. `cost` may exceed the hold
/// (an answer longer than estimated); the balance then goes below what the hold covered. The
/// budget counts the cost only when the hold was placed in its current period (`window`).
pub fn settle(
    user: &Account,
    key: Option<&Account>,
    budget: Option<(&Budget, i64)>,
    hold: i64,
    cost: i64,
) {
    let (hold, cost) = (hold.max(0), cost.max(0));
    for account in std::iter::once(user).chain(key) {
        let mut state = account.lock();
        state.held = state.held.saturating_sub(hold);
        state.unflushed = state.unflushed.saturating_sub(cost);
    }
    if let Some((budget, window)) = budget {
        let mut state = budget.lock();
        state.held = state.held.saturating_sub(hold);
        if window == state.window_start {
            state.unflushed = state.unflushed.saturating_add(cost);
        }
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
        try_hold(&user, Some(&key), None, 40).unwrap();
        assert_eq!(user.available(), 60);
        assert_eq!(key.available(), 10);
        assert_eq!(
            try_hold(&user, Some(&key), None, 20),
            Err(Shortfall::Key { available: 10 })
        );
        // The refused hold left nothing behind on the user.
        assert_eq!(user.available(), 60);
        settle(&user, Some(&key), None, 40, 30);
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
            try_hold(&user, None, None, 11),
            Err(Shortfall::User { available: 10 })
        );
        try_hold(&user, None, None, 10).unwrap();
        settle(&user, None, None, 10, 0);
        assert_eq!(user.available(), 10);
    }

    #[test]
    fn huge_costs_saturate_instead_of_wrapping() {
        let user = Account::new(1_000);
        // Requests already in flight when the first cost landed settle after it.
        for _ in 0..3 {
            try_hold(&user, None, None, 10).unwrap();
        }
        for _ in 0..3 {
            settle(&user, None, None, 10, i64::MAX);
        }
        // Three costs of i64::MAX: the unflushed debt stops at the bound, it never wraps into
        // credit.
        assert_eq!(user.available(), i64::MIN + 1_000);
        assert!(try_hold(&user, None, None, 1).is_err());
        user.committed(i64::MIN);
        assert!(user.available() < 0);
        // Negative amounts cannot raise a balance either.
        let user = Account::new(100);
        try_hold(&user, None, None, -50).unwrap();
        settle(&user, None, None, -50, -50);
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
                        if try_hold(&user, Some(&key), None, 7).is_ok() {
                            granted += 1;
                            settle(&user, Some(&key), None, 7, 7);
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

    #[test]
    fn budgets_start_over_each_period() {
        let user = Account::new(1_000);
        let budget = Budget::new(100, 70, 10);
        budget.enter(10, 20);
        assert_eq!(budget.available(), 30);
        assert_eq!(
            try_hold(&user, None, Some(&budget), 31),
            Err(Shortfall::Budget {
                available: 30,
                resets_at: 20
            })
        );
        let window = try_hold(&user, None, Some(&budget), 30).unwrap();
        assert_eq!(window, 10);
        // A hold placed before the period ended settles after it: its cost counts toward no
        // period, its hold is released.
        budget.enter(20, 30);
        assert_eq!(budget.available(), 70);
        settle(&user, None, Some((&budget, window)), 30, 25);
        assert_eq!(budget.available(), 100);
        assert_eq!(user.available(), 975);
        // A late commit of the old period leaves the new one alone.
        budget.committed(25, 10);
        assert_eq!(budget.spent(), (0, 20));
        let window = try_hold(&user, None, Some(&budget), 40).unwrap();
        settle(&user, None, Some((&budget, window)), 40, 40);
        budget.committed(40, 20);
        assert_eq!(budget.spent(), (40, 20));
        assert!(budget.is_settled());
        // An earlier period never comes back.
        budget.enter(10, 20);
        assert_eq!(budget.available(), 60);
    }

    #[test]
    fn budgets_follow_what_another_server_wrote() {
        let budget = Budget::new(100, 0, 10);
        budget.enter(10, 20);
        budget.set_stored(100, 30, 10);
        assert_eq!(budget.available(), 70);
        // The database still shows the previous period: nothing of this one is committed.
        budget.set_stored(100, 90, 0);
        assert_eq!(budget.available(), 100);
        // Another server already began the next period.
        budget.set_stored(150, 5, 20);
        assert_eq!(budget.spent(), (5, 20));
        assert_eq!(budget.window_end(), 0);
        assert_eq!(budget.available(), 145);
    }

    #[test]
    fn concurrent_holds_never_overspend_a_budget() {
        let user = Arc::new(Account::new(1_000));
        let budget = Arc::new(Budget::new(350, 0, 1));
        budget.enter(1, 2);
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (user, budget) = (user.clone(), budget.clone());
                std::thread::spawn(move || {
                    let mut granted = 0;
                    for _ in 0..100 {
                        if let Ok(window) = try_hold(&user, None, Some(&budget), 7) {
                            granted += 1;
                            settle(&user, None, Some((&budget, window)), 7, 7);
                        }
                    }
                    granted
                })
            })
            .collect();
        let granted: i64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(granted, 50);
        assert_eq!(user.available(), 650);
    }
}
