//! An organisation's wallet: changed by platform administrators (and, later, card payments
//! and codes) through ledger rows, and spent by its team keys.

use serde_json::json;

use super::{OrgView, access, org_change, show_by_id};
use crate::domain::kinds::LedgerKind;
use crate::msg;
use crate::records::ledger::Entry;
use crate::service::db::ledger::NewEntry;
use crate::service::users::{QuotaChange, quota_change_units};
use crate::service::{Caller, Ctx, Problems, ServiceError, ServiceResult, db};

/// The longest idempotency key a caller may give.
const MAX_IDEMPOTENCY_KEY: usize = 120;

/// What a wallet change did.
#[derive(Debug, Clone)]
pub struct WalletChanged {
    pub org: OrgView,
    /// False when the idempotency key was used before: nothing changed now.
    pub applied: bool,
}

/// Adds to (or, with a negative amount, takes from) an organisation's wallet, with a ledger
/// row in the same transaction: platform administrators only, with a reason. The wallet
/// changes through a conditional update whose row count is checked; a key submitted before
/// changes nothing.
pub async fn adjust_wallet(
    ctx: &Ctx,
    caller: &Caller,
    slug: &str,
    change: QuotaChange,
) -> ServiceResult<WalletChanged> {
    let access = access(ctx, caller, slug).await?;
    caller.require_admin()?;
    let org = access.org().clone();
    let db_ = &ctx.db;
    // Every wrong field is named at once, so a form comes back with all of them marked.
    let mut problems = Problems::default();
    let units = problems.check(quota_change_units(db_, &change).await.and_then(|units| {
        if units == 0 {
            Err(ServiceError::invalid("amount", msg!("org-wallet-zero")))
        } else {
            Ok(units)
        }
    }))?;
    let reason = change.reason.as_deref().unwrap_or("").trim();
    if reason.is_empty() {
        problems.check::<()>(Err(ServiceError::invalid(
            "reason",
            msg!("balance-reason-needed"),
        )))?;
    } else if reason.chars().count() > 500 {
        problems.check::<()>(Err(ServiceError::invalid(
            "reason",
            msg!("name-too-long", max = 500_usize),
        )))?;
    }
    problems.finish()?;
    let Some(units) = units else {
        return Err(ServiceError::invalid("amount", msg!("org-wallet-zero")));
    };
    // The same namespace as a person's balance changes: a key is one change, whoever's.
    let key = match change.idempotency_key.as_deref().map(str::trim) {
        Some(key) if !key.is_empty() => {
            if key.chars().count() > MAX_IDEMPOTENCY_KEY {
                return Err(ServiceError::invalid(
                    "idempotency_key",
                    msg!("name-too-long", max = MAX_IDEMPOTENCY_KEY),
                ));
            }
            format!("client:{key}")
        }
        _ => format!("adjustment:{}", uuid::Uuid::new_v4().simple()),
    };
    let actor = caller.actor();
    let applied = ctx
        .write(caller, async |tx| {
            let entry = NewEntry {
                user_id: 0,
                kind: LedgerKind::Adjustment,
                amount: units,
                actor: &actor,
                reference: "",
                reason,
                idempotency_key: &key,
            };
            let Some(ledger_id) = db::ledger::insert_for_org(tx, org.id, &entry).await? else {
                return Ok(false);
            };
            if !db::orgs::add_quota(tx, org.id, units).await? {
                // Gone since it was read, or the change would carry the wallet out of range.
                return Err(ServiceError::invalid(
                    "amount",
                    msg!("balance-out-of-range"),
                ));
            }
            // Read under the row lock the update took: exact however many change it at once.
            let after = db::orgs::quota_in(tx, org.id).await?;
            let mut changed = org_change(
                "org.wallet.adjust",
                &org,
                json!({}),
                Some(json!({ "quota": after - units })),
                Some(json!({ "quota": after, "amount": units, "reason": reason })),
            );
            changed.ledger_id = Some(ledger_id);
            tx.audit(changed);
            Ok(true)
        })
        .await?;
    if !applied {
        // The key was used before: for this very change (a retry, answered as the first
        // was), or for another one, which must not pass for done.
        let earlier = db::ledger::by_key(db_, &key).await?;
        let earlier_org = db::ledger::org_of_key(db_, &key).await?;
        let same = earlier.is_some_and(|e| {
            e.user_id == 0 && e.kind == LedgerKind::Adjustment && e.amount == units
        }) && earlier_org == Some(org.id);
        if !same {
            return Err(ServiceError::conflict(
                "idempotency_key",
                msg!("idempotency-key-reused"),
            ));
        }
    }
    Ok(WalletChanged {
        org: show_by_id(ctx, caller, org.id).await?,
        applied,
    })
}

/// The wallet's ledger, newest first: for the organisation's admins and platform
/// administrators.
pub async fn ledger(
    ctx: &Ctx,
    caller: &Caller,
    slug: &str,
    limit: i64,
) -> ServiceResult<Vec<Entry>> {
    let access = access(ctx, caller, slug).await?;
    access.require_manages_org()?;
    Ok(db::ledger::for_org(&ctx.db, access.org().id, limit).await?)
}
