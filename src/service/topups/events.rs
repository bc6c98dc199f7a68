//! Stripe's webhook events, each applied once in one transaction.

use super::crediting::{
    REFUND_DELETED, SessionFacts, close_session, credit_session, is_this_site, metadata_text,
    refund_for_deleted_account, rewards,
};
use super::money_back::{apply_refund, close_dispute, open_dispute};
use super::receipts::send_receipt;
use super::settings;
use crate::msg;
use crate::payments::{self};
use crate::service::db::orders::OrderRow;
use crate::service::db::{self};
use crate::service::{Caller, Ctx, ServiceError, ServiceResult};

/// The order a payment unknown here was made for, asking Stripe for its Checkout Session.
/// Stripe unreachable is a failure (the event is delivered again), not "not ours".
async fn order_of_payment(ctx: &Ctx, payment_intent: &str) -> ServiceResult<Option<OrderRow>> {
    let settings = settings(ctx).await?;
    match payments::session_of_payment(&settings.access, payment_intent).await {
        Ok(Some(session)) => SessionFacts::from(session).order(ctx).await,
        Ok(None) => Ok(None),
        Err(error) => Err(ServiceError::Upstream(msg!(
            "topup-stripe-refused",
            message = error.to_string()
        ))),
    }
}

/// Why a webhook delivery was not applied: the delivery is wrong (answered 400, Stripe
/// stops), or Tollgate failed (answered 500, Stripe retries).
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("the event is not JSON with an id and a type: {0}")]
    Malformed(String),
    #[error(transparent)]
    Internal(#[from] ServiceError),
}

/// Applies one verified Stripe event exactly once; returns what it did (recorded with the
/// event). `duplicate` for a repeated delivery; `ignored` for types Tollgate does not use.
pub async fn apply_event(ctx: &Ctx, body: &[u8], listen_url: &str) -> Result<String, EventError> {
    let event: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| EventError::Malformed(e.to_string()))?;
    let id = event
        .get("id")
        .and_then(|v| v.as_str())
        .filter(|id| !id.is_empty() && id.len() <= 255)
        .ok_or_else(|| EventError::Malformed("no id".into()))?
        .to_string();
    let kind = event
        .get("type")
        .and_then(|v| v.as_str())
        .filter(|k| k.len() <= 64)
        .ok_or_else(|| EventError::Malformed("no type".into()))?
        .to_string();
    let object = event
        .get("data")
        .and_then(|d| d.get("object"))
        .cloned()
        .unwrap_or(serde_json::Value::Null);
    let text = |name: &str| {
        object
            .get(name)
            .and_then(|v| v.as_str())
            .map(str::to_string)
    };
    let int = |name: &str| object.get(name).and_then(|v| v.as_i64()).unwrap_or(0);

    // Which order the event is about (read before the transaction; the transaction locks
    // the order and reads it again).
    let session = SessionFacts::from_json(&object);
    let order = match kind.as_str() {
        k if k.starts_with("checkout.session.") => session.order(ctx).await?,
        "charge.refunded" | "charge.dispute.created" | "charge.dispute.closed" => {
            let intent = text("payment_intent");
            let by_intent = match &intent {
                Some(intent) => db::orders::by_payment_intent(&ctx.db, intent)
                    .await
                    .map_err(ServiceError::from)?,
                None => None,
            };
            // A charge carries the order id this site gave its payment: found by it, an order
            // whose payment is not applied yet makes this event wait (5xx) rather than pass.
            let named = if is_this_site(ctx, metadata_text(&object, "site_id").as_deref()).await? {
                metadata_text(&object, "order_id").and_then(|id| id.parse::<i64>().ok())
            } else {
                None
            };
            match (by_intent, named, intent) {
                (Some(order), _, _) => Some(order),
                (None, Some(id), intent) => db::orders::find(&ctx.db, id)
                    .await
                    .map_err(ServiceError::from)?
                    .filter(|o| o.payment_intent.is_none() || o.payment_intent == intent),
                // A payment Tollgate has not seen: Stripe says which Checkout Session (if
                // any) it was made through. Ours, not yet applied: the event waits (5xx).
                (None, None, Some(intent)) => order_of_payment(ctx, &intent).await?,
                (None, None, None) => None,
            }
        }
        _ => None,
    };
    let order_id = order.as_ref().map(|o| o.id);
    let rewards = rewards(ctx).await?;
    let outcome = ctx
        .write(&Caller::System, async |tx| {
            if !db::orders::record_event(tx, &id, &kind, order_id).await? {
                return Ok("duplicate");
            }
            let outcome = match (kind.as_str(), order_id) {
                (
                    "checkout.session.completed"
                    | "checkout.session.async_payment_succeeded"
                    | "checkout.session.async_payment_failed"
                    | "checkout.session.expired"
                    | "charge.refunded"
                    | "charge.dispute.created"
                    | "charge.dispute.closed",
                    None,
                ) => "no_order",
                ("checkout.session.completed", Some(order)) => {
                    if session.payment_status == "paid" {
                        credit_session(tx, order, &session, "stripe", rewards).await?
                    } else {
                        // Paid later by a delayed method: async_payment_succeeded follows.
                        "awaiting_payment"
                    }
                }
                ("checkout.session.async_payment_succeeded", Some(order)) => {
                    credit_session(tx, order, &session, "stripe", rewards).await?
                }
                ("checkout.session.async_payment_failed", Some(order)) => {
                    close_session(tx, order, "the payment failed").await?
                }
                ("checkout.session.expired", Some(order)) => {
                    close_session(tx, order, "the Checkout Session expired").await?
                }
                ("charge.refunded", Some(order)) => {
                    apply_refund(tx, order, int("amount_refunded"), rewards).await?
                }
                ("charge.dispute.created", Some(order)) => {
                    let dispute = text("id").unwrap_or_default();
                    open_dispute(tx, order, &dispute, int("amount"), rewards).await?
                }
                ("charge.dispute.closed", Some(order)) => {
                    let dispute = text("id").unwrap_or_default();
                    // `warning_closed`: an inquiry that ended without a chargeback.
                    match text("status").as_deref() {
                        Some("won" | "warning_closed") => {
                            close_dispute(tx, order, &dispute).await?
                        }
                        _ => "dispute_lost",
                    }
                }
                _ => "ignored",
            };
            db::orders::set_event_outcome(tx, &id, outcome).await?;
            Ok(outcome)
        })
        .await?;
    if let Some(order) = order_id {
        match outcome {
            "credited" => send_receipt(ctx, order, listen_url),
            REFUND_DELETED => refund_for_deleted_account(ctx, order).await,
            _ => {}
        }
    }
    Ok(outcome.to_string())
}
