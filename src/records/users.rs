//! Accounts as stored.

use crate::domain::kinds::{Role, Status};
use crate::domain::rate_limits::RateLimits;

#[derive(Clone, Debug, PartialEq)]
pub struct UserRow {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub password_hash: Option<String>,
    pub role: Role,
    pub status: Status,
    pub group: String,
    /// Remaining balance in quota units.
    pub quota: i64,
    pub used_quota: i64,
    pub request_count: i64,
    pub invite_code: Option<String>,
    pub inviter_id: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    /// The portal language the person chose (`en`, `zh-CN`); empty follows the browser.
    pub locale: String,
    /// Below this balance (quota units) one email warns; -1 the site's default, 0 never.
    pub low_balance_threshold: i64,
    /// Rate limits on every key of the person together.
    pub rate_limits: RateLimits,
}
