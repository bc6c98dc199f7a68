//! What administrators do to an order: credit a held payment, ask Stripe for a refund.

use super::crediting::{Paid, pay, rewards};
use super::receipts::mail_receipt;
use super::{find, find_any, settings};
use crate::domain::kinds::OrderStatus;
use crate::domain::money::MicroUsd;
use crate::domain::topup::{self};
use crate::msg;
use crate::payments::{self, PaymentError};
use crate::service::db::orders::OrderRow;
use crate::service::db::{self};
use crate::service::{Caller, Ctx, ServiceError, ServiceResult, decimal_err};

/// Applies a held credit (a payment that did not match its quote), after an administrator
/// checked it: the order's quoted balance, once.
pub async fn credit(
    ctx: &Ctx,
    caller: &Caller,
    id: i64,
    reason: &str,
    listen_url: &str,
) -> ServiceResult<OrderRow> {
    caller.require_admin()?;
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(ServiceError::invalid("reason", msg!("field-required")));
    }
    let actor = caller.actor();
    let rewards = rewards(ctx).await?;
    let credited = ctx
        .write(caller, async |tx| {
            let order = db::orders::lock(tx, id)
                .await?
                .ok_or_else(|| ServiceError::NotFound(msg!("order-not-found")))?;
            if order.status != OrderStatus::Held {
                return Err(ServiceError::Conflict {
                    field: None,
                    message: msg!("order-not-held", status = order.status.as_str()),
                });
            }
            if order.refunded > 0 || order.disputed > 0 {
                // Money already on its way back: crediting the quote would pay it out twice.
                return Err(ServiceError::Conflict {
                    field: None,
                    message: msg!("order-held-refunded"),
                });
            }
            let facts = Paid {
                session_id: None,
                payment_intent: None,
                note: reason,
                actor: &actor,
                rewards,
            };
            let credited = pay(tx, &order, &[OrderStatus::Held], &facts).await?;
            let mut entry = crate::service::audit::change(
                "order.credit",
                format!("order:{id}"),
                Some(serde_json::json!({ "status": order.status.as_str() })),
                Some(
                    serde_json::json!({ "status": "paid", "quota": order.quota, "reason": reason }),
                ),
                &[],
            );
            entry.ledger_id = db::ledger::by_key_in(tx, &format!("topup:{id}"))
                .await?
                .map(|e| e.id);
            tx.audit(entry);
            Ok(credited)
        })
        .await?;
    if credited {
        mail_receipt(ctx, id, listen_url).await;
    }
    find_any(ctx, id).await
}

/// Asks Stripe to refund an order (all of it, or `usd` dollars of balance's share). The
/// balance moves when Stripe's `charge.refunded` event arrives, as for a refund made on
/// Stripe's dashboard. Returns Stripe's refund id.
pub async fn refund(
    ctx: &Ctx,
    caller: &Caller,
    id: i64,
    usd: Option<&str>,
    reason: &str,
) -> ServiceResult<String> {
    caller.require_admin()?;
    if reason.trim().is_empty() {
        return Err(ServiceError::invalid("reason", msg!("field-required")));
    }
    let settings = settings(ctx).await?;
    let order = find(ctx, caller, id).await?;
    let Some(intent) = order
        .payment_intent
        .as_deref()
        .filter(|_| order.credited > 0)
    else {
        return Err(ServiceError::Conflict {
            field: None,
            message: msg!("order-not-paid"),
        });
    };
    let left = order.amount - order.refunded;
    let amount = match usd.map(str::trim).filter(|u| !u.is_empty()) {
        None => None,
        Some(text) => {
            let usd = MicroUsd::parse(text).map_err(decimal_err("usd"))?;
            if usd.0 <= 0 || usd.0 > order.usd_micros {
                return Err(ServiceError::invalid(
                    "usd",
                    msg!(
                        "order-refund-range",
                        max = MicroUsd(order.usd_micros).dollars()
                    ),
                ));
            }
            // The share of the price that many dollars of the order stand for.
            let part =
                i128::from(order.amount) * i128::from(usd.0) / i128::from(order.usd_micros.max(1));
            Some(i64::try_from(part).unwrap_or(order.amount).max(1))
        }
    };
    if left <= 0 || amount.is_some_and(|a| a > left) {
        return Err(ServiceError::invalid(
            "usd",
            msg!(
                "order-refund-left",
                left = topup::display_amount(&order.currency, left.max(0))
            ),
        ));
    }
    // One key per order and cumulative amount asked: repeating the same command does not
    // refund twice.
    let key = format!(
        "tollgate-refund-{}-{}-{}",
        order.id,
        order.refunded,
        amount.unwrap_or(left)
    );
    let refund_id = payments::refund(&settings.access, intent, amount, &key)
        .await
        .map_err(|e| match e {
            PaymentError::Refused { message, .. } => {
                ServiceError::Upstream(msg!("topup-stripe-refused", message = message))
            }
            PaymentError::Unreachable(_) => {
                ServiceError::Upstream(msg!("topup-stripe-unreachable"))
            }
        })?;
    tracing::info!(order_id = id, %refund_id, actor = %caller.actor(), reason = reason.trim(), "asked Stripe for a refund");
    // The balance moves when Stripe's event arrives (the server's own change); asking for
    // the refund is the administrator's, and the audit log keeps it.
    ctx.write(caller, async |tx| {
        tx.audit(crate::service::audit::change(
            "order.refund",
            format!("order:{id}"),
            None,
            Some(serde_json::json!({
                "refund_id": refund_id,
                "amount": amount.unwrap_or(left),
                "currency": order.currency,
                "reason": reason.trim(),
            })),
            &[],
        ));
        Ok(())
    })
    .await?;
    Ok(refund_id)
}
