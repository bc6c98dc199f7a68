//! API keys as stored.

use crate::domain::kinds::{BudgetPeriod, Status};
use crate::domain::rate_limits::RateLimits;

/// An API key as stored: only the hash of the key itself.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenRow {
    pub id: i64,
    pub user_id: i64,
    pub username: String,
    pub name: String,
    pub key_hash: String,
    pub key_display: String,
    pub status: Status,
    pub expires_at: Option<i64>,
    pub unlimited: bool,
    /// Remaining quota of the key itself; ignored when `unlimited`.
    pub remaining_quota: i64,
    pub used_quota: i64,
    pub request_count: i64,
    pub allowed_models: Vec<String>,
    /// Comma-separated IPs and CIDR ranges; empty allows all.
    pub allowed_ips: String,
    /// The group the key uses instead of its owner's; empty: the owner's.
    pub group: String,
    pub budget: Option<KeyBudget>,
    /// A team key's organisation and team (0, 0: a personal key).
    pub org_id: i64,
    pub team_id: i64,
    /// The key's own rate limits; each one not set is its group's.
    pub rate_limits: RateLimits,
    pub last_used_at: Option<i64>,
    pub created_at: i64,
}

/// A key's budget that starts over every period, with what the period recorded in `window`
/// spent (the latest period in `budget_spend`, see migration 0020).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyBudget {
    pub period: BudgetPeriod,
    pub quota: i64,
    pub spent: i64,
    /// When the period `spent` belongs to began (UTC milliseconds; 0: none yet).
    pub window: i64,
    /// When that period ends: not stored; 0 until the service places the row in the current
    /// period.
    pub window_end: i64,
}

/// What billing changes on a key: its own remaining quota and its budget's count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyBalance {
    pub id: i64,
    pub remaining_quota: i64,
    pub budget_quota: i64,
    pub budget_spent: i64,
    pub budget_window: i64,
}
