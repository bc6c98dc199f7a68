//! Groups as stored.

use crate::domain::money::Ratio;
use crate::domain::rate_limits::RateLimits;

#[derive(Clone, Debug, PartialEq)]
pub struct GroupRow {
    pub name: String,
    pub ratio: Ratio,
    pub description: String,
    pub user_selectable: bool,
    /// Rate limits of each key of the group that sets none of its own.
    pub rate_limits: RateLimits,
    pub created_at: i64,
    pub updated_at: i64,
}
