//! The balance ledger: what changed each balance besides relay spend, and the proof that every
//! balance is what its ledger says.

use serde::Serialize;

use super::{Caller, Ctx, ServiceResult};
use crate::service::db;
use crate::service::db::ledger::{Discrepancy, Entry};
use crate::service::db::orgs::OrgDiscrepancy;

/// What `ledger check` found.
#[derive(Debug, Serialize)]
pub struct LedgerCheck {
    /// Accounts checked.
    pub accounts: i64,
    /// Accounts whose balance is not the sum of their ledger rows minus their relay spend.
    pub discrepancies: Vec<Discrepancy>,
    /// Organisations checked.
    pub orgs: i64,
    /// Organisations whose wallet is not the sum of their ledger rows minus their team keys'
    /// spend.
    pub org_discrepancies: Vec<OrgDiscrepancy>,
}

impl LedgerCheck {
    /// Whether every balance and every wallet is what its ledger says.
    pub fn is_clean(&self) -> bool {
        self.discrepancies.is_empty() && self.org_discrepancies.is_empty()
    }
}

/// Proves, for every account, that balance = sum of ledger rows − relay spend, and for every
/// organisation that wallet = sum of its ledger rows − its team keys' spend.
pub async fn check(ctx: &Ctx, caller: &Caller) -> ServiceResult<LedgerCheck> {
    caller.require_admin()?;
    let (accounts, discrepancies) = db::ledger::discrepancies(&ctx.db).await?;
    let (orgs, org_discrepancies) = db::orgs::discrepancies(&ctx.db).await?;
    Ok(LedgerCheck {
        accounts,
        discrepancies,
        orgs,
        org_discrepancies,
    })
}

/// A user's ledger, newest first: their own for a user, anyone's for an administrator.
pub async fn entries(
    ctx: &Ctx,
    caller: &Caller,
    username: &str,
    limit: i64,
) -> ServiceResult<Vec<Entry>> {
    let user = super::users::get(ctx, caller, username).await?;
    Ok(db::ledger::for_user(&ctx.db, user.id, limit).await?)
}
