//! Crediting a paid order once: checking the payment against its quote, the ledger row and
//! the balance, the first top-up's invite rewards; closing an order whose session expired.

use super::{find_any, settings};
use crate::domain::kinds::{LedgerKind, OrderStatus};
use crate::domain::topup::{self};
use crate::msg;
use crate::payments::{self, SessionState};
use crate::service::db::ledger::NewEntry;
use crate::service::db::orders::{OrderRow, Transition};
use crate::service::db::{self, DbError, Tx};
use crate::service::invites::{self, RewardWhen, Rewards};
use crate::service::{Ctx, ServiceError, ServiceResult};

/// What a paid order brings to the transaction that credits it.
pub(super) struct Paid<'a> {
    pub(super) session_id: Option<&'a str>,
    pub(super) payment_intent: Option<&'a str>,
    pub(super) note: &'a str,
    /// Who credits: `stripe` for events, `reconcile`, or an administrator.
    pub(super) actor: &'a str,
    /// The invite rewards a first top-up pays.
    pub(super) rewards: Option<Rewards>,
}

/// Credits the order's quoted balance once: its state change, the ledger row (keyed by the
/// order) and the balance, and the first top-up's invite rewards. False when another event
/// credited it first.
pub(super) async fn pay(
    tx: &mut Tx,
    order: &OrderRow,
    from: &[OrderStatus],
    facts: &Paid<'_>,
) -> ServiceResult<bool> {
    let change = Transition {
        credit: order.quota,
        payment_intent: facts.payment_intent,
        session_id: facts.session_id,
        note: facts.note,
        paid_at: Some(db::now_ms()),
    };
    if !db::orders::transition(tx, order.id, from, OrderStatus::Paid, &change).await? {
        return Ok(false);
    }
    let key = format!("topup:{}", order.id);
    let reference = format!("order:{}", order.id);
    let reason = topup::display_amount(&order.currency, order.amount);
    // An organisation's wallet has its ledger rows under the organisation (user 0), like its
    // other changes; a person's under them.
    let entry = NewEntry {
        user_id: if order.org_id == 0 { order.user_id } else { 0 },
        kind: LedgerKind::TopUp,
        amount: order.quota,
        actor: facts.actor,
        reference: &reference,
        reason: &reason,
        idempotency_key: &key,
    };
    let inserted = if order.org_id == 0 {
        db::ledger::insert(tx, &entry).await?
    } else {
        db::ledger::insert_for_org(tx, order.org_id, &entry).await?
    };
    if inserted.is_none() {
        // The order moved to paid just now, so its credit cannot be on record: a ledger that
        // says otherwise is not to be paid over.
        return Err(
            DbError::Corrupt(format!("order {} already has a top-up row", order.id)).into(),
        );
    }
    let added = if order.org_id == 0 {
        db::users::add_quota(tx, order.user_id, order.quota).await?
    } else {
        db::orgs::add_quota(tx, order.org_id, order.quota).await?
    };
    if !added {
        return Err(ServiceError::invalid(
            "amount_usd",
            msg!("balance-out-of-range"),
        ));
    }
    // Money into an organisation is in its history too, with who paid.
    if order.org_id != 0
        && let Some(org) = db::orgs::find_in(tx, order.org_id).await?
    {
        let mut entry = crate::service::orgs::org_change(
            "org.wallet.topup",
            &org,
            serde_json::json!({ "username": order.username }),
            None,
            Some(serde_json::json!({ "amount": order.quota, "order": order.id })),
        );
        entry.ledger_id = inserted;
        tx.audit(entry);
    }
    // Paying into an organisation's wallet is not the person's first top-up: it pays no
    // invite rewards.
    if let Some(rewards) = facts.rewards.filter(|r| r.when == RewardWhen::FirstTopup)
        && order.org_id == 0
        && !db::orders::has_other_standing(tx, order.user_id, order.id).await?
    {
        invites::on_first_topup(tx, order.user_id, rewards).await?;
    }
    Ok(true)
}

/// The site's invite rewards now, for the credit about to be made.
pub(super) async fn rewards(ctx: &Ctx) -> ServiceResult<Option<Rewards>> {
    let options = crate::service::options::current(&ctx.db).await?;
    Ok(Rewards::of(&options).ok())
}

/// The fields of a Checkout Session an event or Stripe's API reports.
#[derive(Clone, Debug, Default)]
pub(super) struct SessionFacts {
    pub(super) id: String,
    pub(super) status: String,
    pub(super) payment_status: String,
    pub(super) amount_total: Option<i64>,
    pub(super) currency: Option<String>,
    pub(super) payment_intent: Option<String>,
    pub(super) client_reference_id: Option<String>,
    pub(super) metadata_order_id: Option<String>,
    pub(super) metadata_site_id: Option<String>,
    pub(super) expires_at: Option<i64>,
}

impl From<SessionState> for SessionFacts {
    fn from(s: SessionState) -> SessionFacts {
        SessionFacts {
            id: s.id,
            status: s.status,
            payment_status: s.payment_status,
            amount_total: s.amount_total,
            currency: s.currency,
            payment_intent: s.payment_intent,
            client_reference_id: s.client_reference_id,
            metadata_order_id: s.metadata_order_id,
            metadata_site_id: s.metadata_site_id,
            expires_at: Some(s.expires_at),
        }
    }
}

impl SessionFacts {
    pub(super) fn from_json(object: &serde_json::Value) -> SessionFacts {
        let text = |name: &str| {
            object
                .get(name)
                .and_then(|v| v.as_str())
                .map(str::to_string)
        };
        SessionFacts {
            id: text("id").unwrap_or_default(),
            status: text("status").unwrap_or_default(),
            payment_status: text("payment_status").unwrap_or_default(),
            amount_total: object.get("amount_total").and_then(|v| v.as_i64()),
            currency: text("currency"),
            // A string, or the whole object when expanded.
            payment_intent: object.get("payment_intent").and_then(|v| {
                v.as_str()
                    .map(str::to_string)
                    .or_else(|| v.get("id").and_then(|id| id.as_str()).map(str::to_string))
            }),
            client_reference_id: text("client_reference_id"),
            metadata_order_id: metadata_text(object, "order_id"),
            metadata_site_id: metadata_text(object, "site_id"),
            expires_at: object.get("expires_at").and_then(|v| v.as_i64()),
        }
    }

    /// The order the session was made for: by the session's id, else (its creation was cut
    /// short before the id was stored) by the order id this site put in it, when that order
    /// has no other session. (Sessions made before sites had ids are found by their id.)
    pub(super) async fn order(&self, ctx: &Ctx) -> ServiceResult<Option<OrderRow>> {
        if !self.id.is_empty()
            && let Some(order) = db::orders::by_session(&ctx.db, &self.id).await?
        {
            return Ok(Some(order));
        }
        if !is_this_site(ctx, self.metadata_site_id.as_deref()).await? {
            return Ok(None);
        }
        let named = self
            .client_reference_id
            .as_deref()
            .or(self.metadata_order_id.as_deref())
            .and_then(|id| id.parse::<i64>().ok());
        let Some(id) = named else {
            return Ok(None);
        };
        Ok(db::orders::find(&ctx.db, id)
            .await?
            .filter(|o| o.session_id.is_none() || o.session_id.as_deref() == Some(&self.id)))
    }
}

/// A string in a Stripe object's `metadata`.
pub(super) fn metadata_text(object: &serde_json::Value, name: &str) -> Option<String> {
    object
        .get("metadata")
        .and_then(|m| m.get(name))
        .and_then(|v| v.as_str())
        .map(str::to_string)
}

/// Whether metadata naming `site` was written by this site. Order ids repeat from site to
/// site: another site on the same Stripe account (whose events reach this webhook too) has
/// an order of every number this one has.
pub(super) async fn is_this_site(ctx: &Ctx, site: Option<&str>) -> ServiceResult<bool> {
    match site {
        Some(site) => Ok(site == crate::service::site_values::site_id(ctx).await?),
        None => Ok(false),
    }
}

/// Credits an order for a paid session, after checking the payment against the quote; a
/// mismatch is held for an administrator. A payment that arrives after the order was closed
/// locally still credits it. Returns the outcome recorded with the event.
pub(super) async fn credit_session(
    tx: &mut Tx,
    order_id: i64,
    session: &SessionFacts,
    actor: &str,
    rewards: Option<Rewards>,
) -> ServiceResult<&'static str> {
    let Some(order) = db::orders::lock(tx, order_id).await? else {
        return Ok("no_order");
    };
    match order.status {
        OrderStatus::Paid => return Ok("already_paid"),
        OrderStatus::Held => return Ok("already_held"),
        OrderStatus::Pending | OrderStatus::Closed => {}
    }
    let wallet_gone = if order.org_id == 0 {
        db::users::is_deleted_in(tx, order.user_id).await?
    } else {
        db::orgs::find_in(tx, order.org_id).await?.is_none()
    };
    if wallet_gone {
        // Paid after its account (or organisation) was deleted: nobody is left to credit, so
        // the payment goes back (asked of Stripe once this commits; see
        // `refund_for_deleted_account`).
        let change = Transition {
            payment_intent: session.payment_intent.as_deref(),
            session_id: Some(&session.id)
                .filter(|id| !id.is_empty())
                .map(|s| s.as_str()),
            note: "paid after the account was deleted: refunded",
            ..Transition::default()
        };
        db::orders::transition(
            tx,
            order.id,
            &[OrderStatus::Pending, OrderStatus::Closed],
            OrderStatus::Held,
            &change,
        )
        .await?;
        return Ok(REFUND_DELETED);
    }
    let matches = session.amount_total == Some(order.amount)
        && session
            .currency
            .as_deref()
            .is_some_and(|c| c.eq_ignore_ascii_case(&order.currency));
    if !matches {
        let note = format!(
            "paid {} {}, quoted {} {}: held for an administrator",
            session.amount_total.unwrap_or(0),
            session.currency.as_deref().unwrap_or("?"),
            order.amount,
            order.currency
        );
        let change = Transition {
            payment_intent: session.payment_intent.as_deref(),
            session_id: Some(&session.id)
                .filter(|id| !id.is_empty())
                .map(|s| s.as_str()),
            note: &note,
            ..Transition::default()
        };
        db::orders::transition(
            tx,
            order.id,
            &[OrderStatus::Pending, OrderStatus::Closed],
            OrderStatus::Held,
            &change,
        )
        .await?;
        return Ok("held");
    }
    let facts = Paid {
        session_id: Some(session.id.as_str()).filter(|id| !id.is_empty()),
        payment_intent: session.payment_intent.as_deref(),
        note: "",
        actor,
        rewards,
    };
    if pay(
        tx,
        &order,
        &[OrderStatus::Pending, OrderStatus::Closed],
        &facts,
    )
    .await?
    {
        Ok("credited")
    } else {
        Ok("already_paid")
    }
}

/// The outcome of a payment that completed for a deleted account: held, to be refunded.
pub(super) const REFUND_DELETED: &str = "refund_deleted_account";

/// Asks Stripe to refund the whole payment of an order whose account was deleted before it was
/// paid. The idempotency key names the site and the order, so asking again (the next
/// reconciliation round, another node) refunds once; the balance is untouched (nothing was
/// credited) and Stripe's refund event records the refund on the order.
pub(super) async fn refund_for_deleted_account(ctx: &Ctx, order_id: i64) {
    let asked = async {
        let settings = settings(ctx).await?;
        let order = find_any(ctx, order_id).await?;
        let Some(intent) = order.payment_intent.as_deref() else {
            return Ok(None);
        };
        let site = crate::service::site_values::site_id(ctx).await?;
        let key = format!("tollgate-{site}-refund-deleted-{order_id}");
        payments::refund(&settings.access, intent, None, &key)
            .await
            .map(Some)
            .map_err(|e| {
                ServiceError::Upstream(msg!("topup-stripe-refused", message = e.to_string()))
            })
    };
    match asked.await {
        Ok(Some(refund)) => {
            tracing::info!(order_id, %refund, "refunded a payment made after its account was deleted");
        }
        Ok(None) => {}
        Err(error) => {
            tracing::warn!(order_id, %error, "could not refund a payment made after its account was deleted; trying again next round");
        }
    }
}

/// Closes a pending order whose session expired or whose payment failed.
pub(super) async fn close_session(
    tx: &mut Tx,
    order_id: i64,
    why: &str,
) -> ServiceResult<&'static str> {
    let change = Transition {
        note: why,
        ..Transition::default()
    };
    if db::orders::transition(
        tx,
        order_id,
        &[OrderStatus::Pending],
        OrderStatus::Closed,
        &change,
    )
    .await?
    {
        Ok("closed")
    } else {
        Ok("not_pending")
    }
}
