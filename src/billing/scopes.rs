//! Budget scopes: every balance and budget a request is held on, behind one store.
//!
//! A request is charged to a list of scopes, in the order a refusal names them: the key's own
//! limit, the key's periodic budget, the member's cap in their team, the team's budget, the
//! organisation's budget, and last the balance that pays (the organisation's wallet for a team
//! key, the person's balance for a personal key). Each scope has a stable id (kind and row),
//! a limit, a window (none, or a calendar period that starts over), and what it has spent and
//! holds.
//!
//! Admission asks the [`ScopeStore`] to hold the request's amount on every scope or on none;
//! the request's end settles the hold once, with the real cost. Both are async calls, so a
//! shared store (Redis) can take the memory store's place without changing the callers. The
//! memory store keeps the figures of each scope in a [`LiveScope`] that the directory holds
//! beside the key, account or organisation it belongs to; it takes each scope's lock in list
//! order, so two requests sharing scopes (two keys of one team) always lock them in the same
//! order.
//!
//! A scope's available amount is `limit − spent − unflushed − held`:
//! - `limit` is the balance as last read from the database (balances) or what one period may
//!   spend (budgets);
//! - `spent` is what the current period spent as last read, plus the batches committed since
//!   (always 0 for a balance: a committed batch lowers its `limit` instead, as the database
//!   lowers the balance);
//! - `unflushed` is settled spending the billing writer has not committed;
//! - `held` is the sum of the holds of requests in flight.
//!
//! The sums saturate at the 64-bit bounds rather than wrap: holds and costs are never
//! negative, so no figure can turn a debt into a balance.

use std::sync::{Arc, Mutex, MutexGuard};

use futures::future::BoxFuture;
use smallvec::SmallVec;

use crate::domain::kinds::BudgetPeriod;

/// What kind of balance or budget a scope is, in the order a refusal checks them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScopeKind {
    /// A key's own limit (its remaining quota); the row is the key.
    KeyLimit,
    /// A key's budget per period; the row is the key.
    KeyBudget,
    /// A member's cap in a team, per the team's period; the row is the team membership.
    MemberCap,
    /// A team's budget per period; the row is the team.
    TeamBudget,
    /// An organisation's overall budget per period; the row is the organisation.
    OrgBudget,
    /// An organisation's wallet; the row is the organisation.
    Wallet,
    /// A person's balance; the row is the account.
    Balance,
}

impl ScopeKind {
    /// Whether the scope is a balance, which a committed cost lowers for good, rather than a
    /// budget whose spending starts over each period.
    pub fn is_balance(self) -> bool {
        matches!(
            self,
            ScopeKind::KeyLimit | ScopeKind::Wallet | ScopeKind::Balance
        )
    }

    /// The scope's label in `tollgate_budget_refused_total`.
    pub fn metric_scope(self) -> crate::metrics::BudgetScope {
        use crate::metrics::BudgetScope;
        match self {
            ScopeKind::KeyLimit => BudgetScope::KeyLimit,
            ScopeKind::KeyBudget => BudgetScope::KeyBudget,
            ScopeKind::MemberCap => BudgetScope::MemberCap,
            ScopeKind::TeamBudget => BudgetScope::TeamBudget,
            ScopeKind::OrgBudget => BudgetScope::OrgBudget,
            ScopeKind::Wallet => BudgetScope::Wallet,
            ScopeKind::Balance => BudgetScope::Balance,
        }
    }

    /// The `budget_spend.scope_kind` a budget's spending is kept under; None for balances,
    /// whose spending lowers their own row.
    pub fn spend_kind(self) -> Option<&'static str> {
        match self {
            ScopeKind::KeyBudget => Some("key"),
            ScopeKind::MemberCap => Some("member"),
            ScopeKind::TeamBudget => Some("team"),
            ScopeKind::OrgBudget => Some("org"),
            ScopeKind::KeyLimit | ScopeKind::Wallet | ScopeKind::Balance => None,
        }
    }
}

/// A scope's stable id: its kind and the row it belongs to. With a window's start it names
/// the counter a shared store keeps for one period.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ScopeId {
    pub kind: ScopeKind,
    pub row: i64,
}

impl ScopeId {
    pub fn new(kind: ScopeKind, row: i64) -> ScopeId {
        ScopeId { kind, row }
    }
}

#[derive(Debug, Default)]
struct ScopeState {
    limit: i64,
    spent: i64,
    unflushed: i64,
    held: i64,
    /// The period spending counts toward, as [start, end) in UTC milliseconds; 0 and 0 for a
    /// balance, and for a budget before its first use places it in a period.
    window_start: i64,
    window_end: i64,
    /// For a shared store: what the store had counted as committed for this scope (and the
    /// period `mark_window`) just before `limit` and `spent` were read from the database, so
    /// commits since can be told from commits the read already includes (see `cluster`).
    /// `mark_era` names the store's era it was read in; a mark of another era counts as 0.
    mark: i64,
    mark_window: i64,
    mark_era: u64,
    /// A mark read before a database read in progress, adopted when that read is set.
    next_mark: Option<(i64, i64, u64)>,
    /// What a shared store said was left after this process's last hold there.
    shared_left: Option<i64>,
    /// While the shared store is unreachable (`redis_outage_mode = local_share`): the outage
    /// it belongs to and what this process may still spend of the scope in it.
    share: Option<(u64, i64)>,
    /// Allowance a shared store lent this process beyond its holds (see [`Lease`]).
    lease: Option<Lease>,
}

/// Allowance a shared store counts as this process's, held by no request yet: this process
/// holds against it without asking the store, and gives it back when idle. It belongs to one
/// generation of this process's part in the store (a rewrite of that part leaves it out, so
/// the lease is void from then on) and to one period of the scope.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Lease {
    generation: u64,
    window: i64,
    spare: i64,
    /// Whether a hold drew on it since the last look for idle leases.
    drawn: bool,
}

/// What a look for idle leases found on a scope (see [`LiveScope::take_idle_lease`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdleLease {
    /// No lease any more: nothing to watch.
    None,
    /// Drawn on lately: kept, and looked at again later.
    InUse,
    /// Taken back from this process: give this much back to the period starting at the
    /// window given.
    Return { window: i64, spare: i64 },
}

impl ScopeState {
    fn available(&self) -> i64 {
        self.limit
            .saturating_sub(self.spent)
            .saturating_sub(self.unflushed)
            .saturating_sub(self.held)
    }

    /// The mark read before the database read just set, if any. Without one (a read no
    /// shared store prepared) the old mark stays: it was read before an older read, so it
    /// counts no commit the new figures miss (it may count some twice, which refuses early).
    fn adopt_mark(&mut self) {
        if let Some((mark, window, era)) = self.next_mark.take() {
            self.mark = mark;
            self.mark_window = window;
            self.mark_era = era;
        }
    }
}

/// One scope's figures in this process (see the module's doc).
#[derive(Debug)]
pub struct LiveScope {
    pub id: ScopeId,
    /// A budget's period as it was set when this scope was made: its spending is written
    /// only while the budget still counts in that period (`None` for a balance).
    pub period: Option<BudgetPeriod>,
    state: Mutex<ScopeState>,
}

/// Which scope refused a hold, and what it had.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub scope: ScopeId,
    /// What was left to hold (may be negative after an answer that cost more than its hold).
    pub available: i64,
    /// The balance as stored, or what one period may spend.
    pub limit: i64,
    /// When the period ends and the budget starts over (UTC ms); 0 for a balance.
    pub resets_at: i64,
}

/// A scope as a shared store sees it (see [`LiveScope::shared_view`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SharedView {
    pub stored: i64,
    pub mark: i64,
    pub window_start: i64,
    pub window_end: i64,
}

/// Why a hold was not placed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HoldError {
    /// A scope cannot cover the amount.
    Refused(Refusal),
    /// The shared store cannot be reached, so no node can tell what is left: nothing is
    /// served on credit.
    Unavailable,
}

impl From<Refusal> for HoldError {
    fn from(refusal: Refusal) -> Self {
        HoldError::Refused(refusal)
    }
}

impl LiveScope {
    /// A balance of `stored` units, as read from the database.
    pub fn balance(id: ScopeId, stored: i64) -> LiveScope {
        LiveScope {
            id,
            period: None,
            state: Mutex::new(ScopeState {
                limit: stored,
                ..ScopeState::default()
            }),
        }
    }

    /// A budget of `limit` per `period`, with `spent` recorded in the database for the
    /// period that began at `window_start` (an older period counts as nothing spent now).
    pub fn budget(
        id: ScopeId,
        period: BudgetPeriod,
        limit: i64,
        spent: i64,
        window_start: i64,
    ) -> LiveScope {
        LiveScope {
            id,
            period: Some(period),
            state: Mutex::new(ScopeState {
                limit,
                spent,
                window_start,
                ..ScopeState::default()
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, ScopeState> {
        // A few integers: a panic while one was held cannot leave them inconsistent in a way
        // that matters more than stopping billing altogether, so recover.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn available(&self) -> i64 {
        self.lock().available()
    }

    /// The balance as stored, or what one period may spend.
    pub fn limit(&self) -> i64 {
        self.lock().limit
    }

    /// When the current period ends; 0 for a balance, or before the first [`LiveScope::enter`].
    pub fn window_end(&self) -> i64 {
        self.lock().window_end
    }

    /// What the current period spent (committed and not), and when it began.
    pub fn spent(&self) -> (i64, i64) {
        let state = self.lock();
        (
            state.spent.saturating_add(state.unflushed),
            state.window_start,
        )
    }

    /// Moves a budget to the period `[start, end)` that holds now, starting it from nothing
    /// when it is a later one. A period never begins before the one it follows ended: an
    /// organisation that moved to another time zone keeps the period it is in, and the new
    /// zone applies from the next.
    pub fn enter(&self, start: i64, end: i64) {
        let mut state = self.lock();
        let start = if state.window_end > state.window_start && start < state.window_end {
            if end <= state.window_end {
                return;
            }
            state.window_end
        } else {
            start
        };
        if start > state.window_start {
            state.window_start = start;
            state.spent = 0;
            state.unflushed = 0;
        }
        if start == state.window_start {
            state.window_end = end;
        }
    }

    /// A fresh database read of a balance. The caller holds the billing writer's lock, so no
    /// batch committed between the read and this call.
    pub fn set_balance(&self, stored: i64) {
        let mut state = self.lock();
        state.limit = stored;
        state.adopt_mark();
    }

    /// A fresh database read of a budget: its limit and what the period that began at
    /// `window_start` spent (under the billing writer's lock, as [`LiveScope::set_balance`]).
    pub fn set_budget(&self, limit: i64, spent: i64, window_start: i64) {
        let mut state = self.lock();
        state.limit = limit;
        if window_start > state.window_start {
            // Another server began a later period: follow it (the end is found at next use).
            state.window_start = window_start;
            state.window_end = 0;
            state.unflushed = 0;
        }
        state.spent = if window_start == state.window_start {
            spent
        } else {
            // Nothing of the current period is committed yet.
            0
        };
        state.adopt_mark();
    }

    /// A batch holding `cost` settled on this scope committed; for a budget, `cost` was spent
    /// in the period that began at `window`.
    pub fn committed(&self, cost: i64, window: i64) {
        let mut state = self.lock();
        if self.id.kind.is_balance() {
            state.limit = state.limit.saturating_sub(cost);
            state.unflushed = state.unflushed.saturating_sub(cost);
        } else if window == state.window_start {
            state.spent = state.spent.saturating_add(cost);
            state.unflushed = state.unflushed.saturating_sub(cost);
        } else {
            return;
        }
        // A shared store counts this commit too: the figures above now include it, so the
        // mark moves with them (see `ScopeState::mark`).
        if state.mark_window == window {
            state.mark = state.mark.saturating_add(cost);
        }
    }

    /// Notes what a shared store counted as committed for this scope's current period, read
    /// just before a database read of the scope whose figures [`LiveScope::set_balance`] or
    /// [`LiveScope::set_budget`] will set.
    pub fn prepare_mark(&self, committed: i64, window: i64, era: u64) {
        self.lock().next_mark = Some((committed, window, era));
    }

    /// What a shared store needs to check a hold: what the database said may be spent
    /// (balance, or limit less the period's committed spending), and the mark that read
    /// goes with, for the era given (0 when it is of another era or period).
    pub fn shared_view(&self, era: u64) -> SharedView {
        let state = self.lock();
        let mark = if state.mark_era == era && state.mark_window == state.window_start {
            state.mark
        } else {
            0
        };
        SharedView {
            stored: state.limit.saturating_sub(state.spent),
            mark,
            window_start: state.window_start,
            window_end: state.window_end,
        }
    }

    /// Notes what a shared store had left of this scope after a hold of this process.
    pub fn note_shared_left(&self, left: i64) {
        self.lock().shared_left = Some(left);
    }

    /// This process's part of the scope in flight: its holds and its spending not yet
    /// written, and the period they count toward.
    pub fn in_flight(&self) -> (i64, i64) {
        let state = self.lock();
        (
            state.held.saturating_add(state.unflushed),
            state.window_start,
        )
    }

    /// Whether nothing is in flight: no hold placed, no spending waiting to be written. Only
    /// such a scope may be dropped from memory and read afresh later.
    pub fn is_settled(&self) -> bool {
        let state = self.lock();
        state.held == 0 && state.unflushed == 0
    }

    /// How much more lease this scope wants for holds of `amount` in `generation`: enough for
    /// `holds` of them, less what it still has.
    pub fn lease_wanted(&self, generation: u64, amount: i64, holds: i64) -> i64 {
        let state = self.lock();
        let spare = match state.lease {
            Some(lease) if lease.generation == generation && lease.window == state.window_start => {
                lease.spare
            }
            _ => 0,
        };
        amount.saturating_mul(holds).saturating_sub(spare).max(0)
    }

    /// Adds `extra` lent in `generation` for the period starting at `window`; a lease of
    /// that generation for another period comes back, to be given back to the store.
    pub fn add_lease(&self, generation: u64, window: i64, extra: i64) -> Option<(i64, i64)> {
        let mut state = self.lock();
        let mut previous = None;
        let spare = match state.lease {
            Some(lease) if lease.generation == generation && lease.window == window => lease.spare,
            Some(lease) if lease.generation == generation && lease.spare > 0 => {
                previous = Some((lease.window, lease.spare));
                0
            }
            _ => 0,
        };
        state.lease = Some(Lease {
            generation,
            window,
            spare: spare.saturating_add(extra),
            drawn: true,
        });
        previous
    }

    /// A settlement of a hold placed in the period starting at `window`, whose cost exceeds
    /// the hold by `change` (negative when it was less), in `generation`: the lease takes what
    /// it can (a cheaper answer gives the difference to the lease, a dearer one is paid from
    /// it). Returns what the store must still move.
    pub fn settle_into_lease(&self, generation: u64, window: i64, change: i64) -> i64 {
        let mut state = self.lock();
        let Some(lease) = state
            .lease
            .as_mut()
            .filter(|lease| lease.generation == generation && lease.window == window)
        else {
            return change;
        };
        let spare = lease.spare.saturating_sub(change);
        if spare >= 0 {
            lease.spare = spare;
            0
        } else {
            lease.spare = 0;
            -spare
        }
    }

    /// Looks at this scope's lease for `generation`: one no hold drew on since the last look
    /// is taken back (the caller gives it back to the store); one of another generation is
    /// void and dropped.
    pub fn take_idle_lease(&self, generation: u64) -> IdleLease {
        let mut state = self.lock();
        match state.lease {
            Some(ref mut lease) if lease.generation == generation && lease.drawn => {
                lease.drawn = false;
                IdleLease::InUse
            }
            Some(lease) if lease.generation == generation => {
                state.lease = None;
                if lease.spare > 0 {
                    IdleLease::Return {
                        window: lease.window,
                        spare: lease.spare,
                    }
                } else {
                    IdleLease::None
                }
            }
            _ => {
                state.lease = None;
                IdleLease::None
            }
        }
    }

    fn refusal(&self, state: &ScopeState) -> Refusal {
        Refusal {
            scope: self.id,
            available: state.available(),
            limit: state.limit,
            resets_at: state.window_end,
        }
    }

    #[cfg(test)]
    fn parts(&self) -> (i64, i64, i64, i64) {
        let s = self.lock();
        (s.limit, s.spent, s.unflushed, s.held)
    }
}

/// A hold placed on every scope of a request: each scope with the start of the period the
/// hold counts toward (0 for balances).
#[derive(Debug, Default)]
pub struct Holds {
    pub amount: i64,
    pub scopes: Vec<(Arc<LiveScope>, i64)>,
}

impl Holds {
    /// Whether the request was held on a scope of this kind.
    pub fn has(&self, kind: ScopeKind) -> bool {
        self.scopes.iter().any(|(scope, _)| scope.id.kind == kind)
    }
}

/// Where holds are counted. Each ticket holds once and settles once ([`Holds`] is consumed by
/// its one settlement); a store that can time out (a shared one) makes its own retries apply
/// once. Both take the request's id for a store that wants to name what it counts.
#[async_trait::async_trait]
pub trait ScopeStore: Send + Sync + std::fmt::Debug {
    /// Holds `amount` on every scope, or on none and names the first that cannot cover it.
    async fn hold(
        &self,
        request_id: &str,
        scopes: Vec<Arc<LiveScope>>,
        amount: i64,
    ) -> Result<Holds, HoldError>;

    /// Releases a hold and records the real cost as spending not yet written. `cost` may
    /// exceed the hold (an answer longer than estimated); the scopes then go below what the
    /// hold covered. A budget counts the cost only when the hold was placed in its current
    /// period. The settlement is under way when this returns (a shared store has queued it);
    /// the future only completes when it is applied, and may be dropped.
    fn settle(&self, request_id: &str, holds: &Holds, cost: i64) -> BoxFuture<'static, ()>;

    /// The billing writer committed these costs (scope, period start, cost); the scopes'
    /// own figures already moved. A shared store moves them from in flight to committed.
    fn committed(&self, _costs: Vec<(Arc<LiveScope>, i64, i64)>) -> BoxFuture<'static, ()> {
        Box::pin(Done)
    }

    /// Called before the database is read for these scopes' figures, under the billing
    /// writer's lock: a shared store notes what it counted as committed so far (see
    /// [`LiveScope::prepare_mark`]). False when the store cannot be reached.
    async fn prepare_marks(&self, _scopes: &[Arc<LiveScope>]) -> bool {
        true
    }

    /// Whether figures read from the database must be read again after
    /// [`ScopeStore::prepare_marks`] (a shared store); the memory store needs no mark.
    fn needs_marks(&self) -> bool {
        false
    }
}

/// The store of a single server: every scope's figures in this process's memory.
#[derive(Debug, Default)]
pub struct MemoryStore;

/// A future already complete: the memory store's settlement happens inside the call, and
/// this costs no allocation.
struct Done;

impl std::future::Future for Done {
    type Output = ();
    fn poll(self: std::pin::Pin<&mut Self>, _: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        std::task::Poll::Ready(())
    }
}

impl MemoryStore {
    /// [`ScopeStore::hold`] without the future: every scope's lock is taken in list order and
    /// kept until each scope has been checked, so the hold is all or nothing.
    pub fn hold_now(&self, scopes: Vec<Arc<LiveScope>>, amount: i64) -> Result<Holds, Refusal> {
        let amount = amount.max(0);
        // A request has at most six scopes: no allocation for the locks or the windows.
        let mut guards: SmallVec<[MutexGuard<'_, ScopeState>; 6]> = SmallVec::new();
        for scope in &scopes {
            let state = scope.lock();
            if state.available() < amount {
                return Err(scope.refusal(&state));
            }
            guards.push(state);
        }
        let mut windows: SmallVec<[i64; 6]> = SmallVec::new();
        for state in &mut guards {
            state.held = state.held.saturating_add(amount);
            windows.push(state.window_start);
        }
        drop(guards);
        Ok(Holds {
            amount,
            scopes: scopes.into_iter().zip(windows).collect(),
        })
    }

    /// Holds `amount` on every scope from what a shared store lent this process in
    /// `generation` (see [`Lease`]), or on none when one of them has not that much to spare
    /// for its current period.
    pub fn hold_from_leases(
        &self,
        scopes: &[Arc<LiveScope>],
        amount: i64,
        generation: u64,
    ) -> Option<Holds> {
        let amount = amount.max(0);
        let mut guards: SmallVec<[MutexGuard<'_, ScopeState>; 6]> = SmallVec::new();
        for scope in scopes {
            let state = scope.lock();
            let covered = state.lease.is_some_and(|lease| {
                lease.generation == generation
                    && lease.window == state.window_start
                    && lease.spare >= amount
            });
            if !covered {
                return None;
            }
            guards.push(state);
        }
        let mut windows: SmallVec<[i64; 6]> = SmallVec::new();
        for state in &mut guards {
            state.held = state.held.saturating_add(amount);
            if let Some(lease) = &mut state.lease {
                lease.spare -= amount;
                lease.drawn = true;
            }
            windows.push(state.window_start);
        }
        drop(guards);
        Some(Holds {
            amount,
            scopes: scopes.iter().cloned().zip(windows).collect(),
        })
    }

    /// Counts a hold a shared store has placed, so this process knows its own part in flight
    /// (and never drops a scope with a hold on it from memory).
    pub fn note_hold(&self, scopes: Vec<Arc<LiveScope>>, amount: i64) -> Holds {
        let amount = amount.max(0);
        let scopes = scopes
            .into_iter()
            .map(|scope| {
                let mut state = scope.lock();
                state.held = state.held.saturating_add(amount);
                let window = state.window_start;
                drop(state);
                (scope, window)
            })
            .collect();
        Holds { amount, scopes }
    }

    /// A hold while the shared store is unreachable, in outage `outage` among `nodes` nodes:
    /// on every scope or none, each within this process's share (1/`nodes` of what the shared
    /// store last said was left, taken at the outage's first hold). A scope this process has
    /// never held in the shared store has no share.
    pub fn hold_share(
        &self,
        scopes: Vec<Arc<LiveScope>>,
        amount: i64,
        outage: u64,
        nodes: u64,
    ) -> Result<Holds, Refusal> {
        let amount = amount.max(0);
        let nodes = i64::try_from(nodes.max(1)).unwrap_or(i64::MAX);
        let mut guards: SmallVec<[MutexGuard<'_, ScopeState>; 6]> = SmallVec::new();
        for scope in &scopes {
            let mut state = scope.lock();
            let left = match state.share {
                Some((at, left)) if at == outage => left,
                _ => {
                    let share = state.shared_left.map_or(0, |left| left.max(0) / nodes);
                    state.share = Some((outage, share));
                    share
                }
            };
            if left < amount {
                let mut refusal = scope.refusal(&state);
                refusal.available = left;
                return Err(refusal);
            }
            guards.push(state);
        }
        let mut windows: SmallVec<[i64; 6]> = SmallVec::new();
        for state in &mut guards {
            state.held = state.held.saturating_add(amount);
            if let Some((_, left)) = &mut state.share {
                *left = left.saturating_sub(amount);
            }
            windows.push(state.window_start);
        }
        drop(guards);
        Ok(Holds {
            amount,
            scopes: scopes.into_iter().zip(windows).collect(),
        })
    }

    /// [`ScopeStore::settle`] without the future.
    pub fn settle_now(&self, holds: &Holds, cost: i64) {
        let (hold, cost) = (holds.amount.max(0), cost.max(0));
        for (scope, window) in &holds.scopes {
            let mut state = scope.lock();
            state.held = state.held.saturating_sub(hold);
            // An outage's share is spent by the real cost, not the hold.
            if let Some((_, left)) = &mut state.share {
                *left = left.saturating_add(hold).saturating_sub(cost);
            }
            if scope.id.kind.is_balance() || *window == state.window_start {
                state.unflushed = state.unflushed.saturating_add(cost);
            }
        }
    }
}

#[async_trait::async_trait]
impl ScopeStore for MemoryStore {
    async fn hold(
        &self,
        _request_id: &str,
        scopes: Vec<Arc<LiveScope>>,
        amount: i64,
    ) -> Result<Holds, HoldError> {
        Ok(self.hold_now(scopes, amount)?)
    }

    fn settle(&self, _request_id: &str, holds: &Holds, cost: i64) -> BoxFuture<'static, ()> {
        self.settle_now(holds, cost);
        Box::pin(Done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn balance(kind: ScopeKind, row: i64, stored: i64) -> Arc<LiveScope> {
        Arc::new(LiveScope::balance(ScopeId::new(kind, row), stored))
    }

    fn budget(kind: ScopeKind, limit: i64, spent: i64, window: (i64, i64)) -> Arc<LiveScope> {
        let scope = LiveScope::budget(
            ScopeId::new(kind, 1),
            BudgetPeriod::Daily,
            limit,
            spent,
            window.0,
        );
        scope.enter(window.0, window.1);
        Arc::new(scope)
    }

    #[test]
    fn holds_on_every_scope_or_none() {
        let store = MemoryStore;
        let user = balance(ScopeKind::Balance, 1, 100);
        let key = balance(ScopeKind::KeyLimit, 1, 50);
        let holds = store.hold_now(vec![key.clone(), user.clone()], 40).unwrap();
        assert_eq!((user.available(), key.available()), (60, 10));
        let refused = store
            .hold_now(vec![key.clone(), user.clone()], 20)
            .unwrap_err();
        assert_eq!(refused.scope, key.id);
        assert_eq!(refused.available, 10);
        // The refused hold left nothing behind on the scope after the one that refused it,
        // nor on the one before it.
        assert_eq!((user.available(), key.available()), (60, 10));
        store.settle_now(&holds, 30);
        assert_eq!((user.available(), key.available()), (70, 20));
        assert_eq!(user.parts(), (100, 0, 30, 0));
        user.committed(30, 0);
        assert_eq!(user.parts(), (70, 0, 0, 0));
    }

    #[test]
    fn the_first_scope_that_cannot_cover_the_hold_is_named() {
        let store = MemoryStore;
        let cap = budget(ScopeKind::MemberCap, 10, 0, (0, 100));
        let team = budget(ScopeKind::TeamBudget, 5, 0, (0, 100));
        let wallet = balance(ScopeKind::Wallet, 1, 3);
        let refused = store
            .hold_now(vec![cap.clone(), team.clone(), wallet.clone()], 6)
            .unwrap_err();
        assert_eq!(refused.scope.kind, ScopeKind::TeamBudget);
        assert_eq!(
            (refused.available, refused.limit, refused.resets_at),
            (5, 5, 100)
        );
        let refused = store.hold_now(vec![cap, team, wallet], 4).unwrap_err();
        assert_eq!(refused.scope.kind, ScopeKind::Wallet);
        assert_eq!(refused.resets_at, 0);
    }

    #[test]
    fn huge_costs_saturate_instead_of_wrapping() {
        let store = MemoryStore;
        let user = balance(ScopeKind::Balance, 1, 1_000);
        let holds: Vec<Holds> = (0..3)
            .map(|_| store.hold_now(vec![user.clone()], 10).unwrap())
            .collect();
        for hold in &holds {
            store.settle_now(hold, i64::MAX);
        }
        // Three costs of i64::MAX: the unflushed debt stops at the bound, it never wraps into
        // credit.
        assert_eq!(user.available(), i64::MIN + 1_001);
        assert!(store.hold_now(vec![user.clone()], 1).is_err());
        // Negative amounts cannot raise a balance either.
        let user = balance(ScopeKind::Balance, 2, 100);
        let hold = store.hold_now(vec![user.clone()], -50).unwrap();
        store.settle_now(&hold, -50);
        assert_eq!(user.available(), 100);
    }

    #[test]
    fn concurrent_holds_never_overspend_any_scope() {
        let user = balance(ScopeKind::Wallet, 1, 1_000);
        let team = budget(ScopeKind::TeamBudget, 700, 0, (1, 2));
        let cap = budget(ScopeKind::MemberCap, 350, 0, (1, 2));
        let threads: Vec<_> = (0..16)
            .map(|i| {
                let scopes = if i % 2 == 0 {
                    vec![cap.clone(), team.clone(), user.clone()]
                } else {
                    vec![team.clone(), user.clone()]
                };
                std::thread::spawn(move || {
                    let store = MemoryStore;
                    let mut granted = 0;
                    for _ in 0..100 {
                        if let Ok(holds) = store.hold_now(scopes.clone(), 7) {
                            granted += 1;
                            store.settle_now(&holds, 7);
                        }
                    }
                    granted
                })
            })
            .collect();
        let granted: i64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(granted, 100); // 700 / 7
        assert_eq!(team.available(), 0);
        assert!(cap.available() >= 0);
        assert_eq!(user.available(), 300);
    }

    #[test]
    fn budgets_start_over_each_period() {
        let store = MemoryStore;
        let user = balance(ScopeKind::Balance, 1, 1_000);
        let key = budget(ScopeKind::KeyBudget, 100, 70, (10, 20));
        assert_eq!(key.available(), 30);
        let refused = store
            .hold_now(vec![key.clone(), user.clone()], 31)
            .unwrap_err();
        assert_eq!((refused.available, refused.resets_at), (30, 20));
        let holds = store.hold_now(vec![key.clone(), user.clone()], 30).unwrap();
        assert_eq!(holds.scopes[0].1, 10);
        // A hold placed before the period ended settles after it: its cost counts toward no
        // period, its hold is released.
        key.enter(20, 30);
        assert_eq!(key.available(), 70);
        store.settle_now(&holds, 25);
        assert_eq!(key.available(), 100);
        assert_eq!(user.available(), 975);
        // A late commit of the old period leaves the new one alone.
        key.committed(25, 10);
        assert_eq!(key.spent(), (0, 20));
        let holds = store.hold_now(vec![key.clone()], 40).unwrap();
        store.settle_now(&holds, 40);
        key.committed(40, 20);
        assert_eq!(key.spent(), (40, 20));
        assert!(key.is_settled());
        // An earlier period never comes back.
        key.enter(10, 20);
        assert_eq!(key.available(), 60);
    }

    #[test]
    fn a_new_time_zone_applies_from_the_next_period() {
        let team = budget(ScopeKind::TeamBudget, 100, 40, (1_000, 2_000));
        // The zone moved east: its period began at 900, inside the current one, which stays.
        team.enter(900, 1_900);
        assert_eq!(team.spent(), (40, 1_000));
        assert_eq!(team.window_end(), 2_000);
        // Once the current period ends, the next starts where it ended and ends on the new
        // zone's calendar.
        team.enter(1_900, 2_900);
        assert_eq!(team.spent(), (0, 2_000));
        assert_eq!(team.window_end(), 2_900);
        team.enter(2_900, 3_900);
        assert_eq!(team.spent(), (0, 2_900));
    }

    #[test]
    fn budgets_follow_what_another_server_wrote() {
        let key = budget(ScopeKind::KeyBudget, 100, 0, (10, 20));
        key.set_budget(100, 30, 10);
        assert_eq!(key.available(), 70);
        // The database still shows the previous period: nothing of this one is committed.
        key.set_budget(100, 90, 0);
        assert_eq!(key.available(), 100);
        // Another server already began the next period.
        key.set_budget(150, 5, 20);
        assert_eq!(key.spent(), (5, 20));
        assert_eq!(key.window_end(), 0);
        assert_eq!(key.available(), 145);
    }
}
