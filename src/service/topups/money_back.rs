//! Money leaving after a credit: refunds and disputes move the balance by what left the
//! account, never twice, and take back invite rewards when every paid top-up is gone.

use crate::domain::kinds::{LedgerKind, OrderStatus};
use crate::domain::topup::{self};
use crate::msg;
use crate::service::db::ledger::NewEntry;
use crate::service::db::orders::OrderRow;
use crate::service::db::{self, Tx};
use crate::service::invites::{self, RewardWhen, Rewards};
use crate::service::{ServiceError, ServiceResult};

/// What of an order's credit should be taken back now: the share of the payment that has left
/// the account, refunded or held by an open (or lost) dispute, never more than the payment.
/// Every refund and dispute event moves the balance by the difference between this and what
/// was taken back so far, so a refund during an inquiry, or a won dispute after a partial
/// refund, can never take or give back the same money twice.
fn owed_back(order: &OrderRow, refunded: i64, disputed: i64) -> i64 {
    let gone = refunded.saturating_add(disputed.max(0)).min(order.amount);
    topup::share(order.credited, gone, order.amount)
}

/// The order a charge or dispute event is about, locked; a retryable failure when it is not
/// credited or held yet (its payment's completion has not been applied: Stripe delivers this
/// event again after it has).
async fn locked_paid_order(tx: &mut Tx, order_id: i64) -> ServiceResult<Option<OrderRow>> {
    let Some(order) = db::orders::lock(tx, order_id).await? else {
        return Ok(None);
    };
    if !matches!(order.status, OrderStatus::Paid | OrderStatus::Held) {
        return Err(ServiceError::Conflict {
            field: None,
            message: msg!("order-not-paid"),
        });
    }
    Ok(Some(order))
}

/// A refund: Stripe's `amount_refunded` is cumulative, so each event moves the order to that
/// total; an older or repeated total changes nothing. The balance may go below zero.
pub(super) async fn apply_refund(
    tx: &mut Tx,
    order_id: i64,
    amount_refunded: i64,
    rewards: Option<Rewards>,
) -> ServiceResult<&'static str> {
    let Some(order) = locked_paid_order(tx, order_id).await? else {
        return Ok("no_order");
    };
    if amount_refunded <= order.refunded {
        return Ok("already_refunded");
    }
    let before = order.refund_taken + order.dispute_taken;
    let delta = owed_back(&order, amount_refunded, order.disputed) - before;
    if !db::orders::record_refund(tx, order.id, amount_refunded, delta).await? {
        return Ok("already_refunded");
    }
    if delta != 0 {
        let key = format!("refund:{}:{amount_refunded}", order.id);
        take(tx, &order, LedgerKind::Refund, -delta, &key).await?;
    }
    reversed(tx, &order, before + delta, rewards).await?;
    Ok("refunded")
}

/// A dispute opened: its amount counts as gone until it closes, and is kept with the dispute,
/// so its close gives back what it took. Once per dispute id.
pub(super) async fn open_dispute(
    tx: &mut Tx,
    order_id: i64,
    dispute_id: &str,
    amount: i64,
    rewards: Option<Rewards>,
) -> ServiceResult<&'static str> {
    let Some(order) = locked_paid_order(tx, order_id).await? else {
        return Ok("no_order");
    };
    let amount = amount.clamp(0, order.amount);
    let before = order.refund_taken + order.dispute_taken;
    let delta = owed_back(&order, order.refunded, order.disputed + amount) - before;
    // The row is written even when nothing moves: its key is what makes the dispute once.
    let key = format!("dispute:{dispute_id}");
    if !take(tx, &order, LedgerKind::Dispute, -delta, &key).await? {
        return Ok("already_disputed");
    }
    db::orders::insert_dispute(tx, dispute_id, order.id, amount).await?;
    db::orders::record_dispute(tx, order.id, amount, delta).await?;
    reversed(tx, &order, before + delta, rewards).await?;
    Ok("disputed")
}

/// A dispute closed without the money leaving (won, or an inquiry closed): the amount it
/// opened with no longer counts as gone (whatever amount the closing event carries), and what
/// that frees is given back, once: with no refund in between, exactly what it took.
pub(super) async fn close_dispute(
    tx: &mut Tx,
    order_id: i64,
    dispute_id: &str,
) -> ServiceResult<&'static str> {
    let Some(order) = locked_paid_order(tx, order_id).await? else {
        return Ok("no_order");
    };
    let opened = match db::orders::dispute_amount(tx, dispute_id).await? {
        Some(amount) => amount,
        // Opened before disputes were kept one by one: a charge is disputed at most once,
        // so what the order counts as disputed is this dispute's.
        None if db::ledger::by_key_in(tx, &format!("dispute:{dispute_id}"))
            .await?
            .is_some() =>
        {
            order.disputed
        }
        None => {
            // Closed before Stripe's `created` was applied: answered 5xx, so this event
            // comes again after it.
            return Err(ServiceError::Conflict {
                field: None,
                message: msg!("order-dispute-unknown"),
            });
        }
    };
    let amount = opened.clamp(0, order.disputed.max(0));
    let before = order.refund_taken + order.dispute_taken;
    let delta = owed_back(&order, order.refunded, order.disputed - amount) - before;
    let key = format!("dispute-won:{dispute_id}");
    if !take(tx, &order, LedgerKind::DisputeReversal, -delta, &key).await? {
        return Ok("already_won");
    }
    db::orders::record_dispute(tx, order.id, -amount, delta).await?;
    Ok("dispute_won")
}

/// When an account's paid top-ups are all taken back in full, the invite rewards its first
/// top-up paid are taken back too (once): otherwise paying and charging back farms them.
async fn reversed(
    tx: &mut Tx,
    order: &OrderRow,
    taken: i64,
    rewards: Option<Rewards>,
) -> ServiceResult<()> {
    if taken < order.credited
        || order.credited == 0
        || order.org_id != 0
        || rewards.is_none_or(|r| r.when != RewardWhen::FirstTopup)
        || db::orders::has_other_standing(tx, order.user_id, order.id).await?
    {
        return Ok(());
    }
    invites::revoke(tx, order.user_id).await
}

/// Writes one ledger row for the order's owner and moves the balance by `amount` (either
/// sign; below zero allowed). False when the key was used before (nothing changes).
async fn take(
    tx: &mut Tx,
    order: &OrderRow,
    kind: LedgerKind,
    amount: i64,
    key: &str,
) -> ServiceResult<bool> {
    let reference = format!("order:{}", order.id);
    if order.org_id != 0 && db::orgs::find_in(tx, order.org_id).await?.is_none() {
        // The organisation was deleted (its wallet written off in the ledger when it closed):
        // there is no wallet left to take from.
        return Ok(true);
    }
    let entry = NewEntry {
        user_id: if order.org_id == 0 { order.user_id } else { 0 },
        kind,
        amount,
        actor: "stripe",
        reference: &reference,
        reason: "",
        idempotency_key: key,
    };
    let inserted = if order.org_id == 0 {
        db::ledger::insert(tx, &entry).await?
    } else {
        db::ledger::insert_for_org(tx, order.org_id, &entry).await?
    };
    if inserted.is_none() {
        return Ok(false);
    }
    let moved = amount == 0
        || if order.org_id == 0 {
            db::users::add_quota(tx, order.user_id, amount).await?
        } else {
            db::orgs::add_quota(tx, order.org_id, amount).await?
        };
    if !moved {
        return Err(ServiceError::invalid(
            "amount",
            msg!("balance-out-of-range"),
        ));
    }
    Ok(true)
}
