//! What the platform console reads of organisations: every one, found by name or slug, a
//! page at a time, with its owner, sizes, wallet and what it spent this period. Platform
//! administrators only.

use crate::domain::calendar::SiteCalendar;
use crate::domain::kinds::BudgetPeriod;
use crate::msg;
use crate::service::{Caller, Ctx, ServiceError, ServiceResult, db};

/// Organisations on one page of the console's list.
pub const CONSOLE_PAGE_ROWS: i64 = 50;

/// An organisation in the console's list.
#[derive(Debug, Clone)]
pub struct ConsoleOrg {
    pub id: i64,
    pub name: String,
    pub slug: String,
    pub owner: Option<String>,
    pub members: i64,
    pub teams: i64,
    /// The wallet's balance.
    pub quota: i64,
    /// The period "this period" is: its budget's, else the month, in its zone.
    pub period: BudgetPeriod,
    /// What its team keys spent this period (from the request log).
    pub spent_quota: i64,
    /// Unix milliseconds.
    pub created_at: i64,
}

/// A page of the console's list.
#[derive(Debug, Clone)]
pub struct ConsoleOrgs {
    pub orgs: Vec<ConsoleOrg>,
    /// This page's number, from 1.
    pub page: i64,
    /// Whether a next page exists.
    pub more: bool,
}

/// The organisations whose name or slug holds `text` (every one when empty), by slug, page
/// `page` (from 1).
pub async fn console_list(
    ctx: &Ctx,
    caller: &Caller,
    text: &str,
    page: i64,
) -> ServiceResult<ConsoleOrgs> {
    caller.require_admin()?;
    let offset = page
        .checked_sub(1)
        .filter(|p| *p >= 0)
        .and_then(|p| p.checked_mul(CONSOLE_PAGE_ROWS))
        .ok_or_else(|| ServiceError::invalid("page", msg!("admin-orgs-page-invalid")))?;
    // One row more than the page tells whether a next page exists.
    let mut rows = db::orgs::search(&ctx.db, text, CONSOLE_PAGE_ROWS + 1, offset).await?;
    let more = rows.len() > usize::try_from(CONSOLE_PAGE_ROWS).unwrap_or(usize::MAX);
    rows.truncate(usize::try_from(CONSOLE_PAGE_ROWS).unwrap_or(usize::MAX));
    let site_zone = crate::service::options::current(&ctx.db).await?.timezone;
    let now = db::now_ms();
    // Each organisation's period begins in its own zone; one query sums them all.
    let periods: Vec<(i64, BudgetPeriod, i64)> = rows
        .iter()
        .map(|row| {
            let zone = if row.org.timezone.is_empty() {
                site_zone.as_str()
            } else {
                row.org.timezone.as_str()
            };
            let period = row.org.budget.map_or(BudgetPeriod::Monthly, |b| b.period);
            let start = SiteCalendar::new(zone).budget_window(period, now).0;
            (row.org.id, period, start)
        })
        .collect();
    let since: Vec<(i64, i64)> = periods.iter().map(|(id, _, from)| (*id, *from)).collect();
    let spent = db::org_reads::spent_by_orgs(&ctx.db, &since).await?;
    let orgs = rows
        .into_iter()
        .zip(periods)
        .map(|(row, (id, period, _))| ConsoleOrg {
            id,
            spent_quota: spent
                .iter()
                .find(|(org, _)| *org == id)
                .map_or(0, |(_, units)| *units),
            period,
            name: row.org.name,
            slug: row.org.slug,
            owner: row.owner,
            members: row.members,
            teams: row.teams,
            quota: row.org.quota,
            created_at: row.org.created_at,
        })
        .collect();
    Ok(ConsoleOrgs { orgs, page, more })
}
