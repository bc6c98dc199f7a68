//! Asking Stripe about pending orders whose events may have been lost.

use super::TopupSettings;
use super::crediting::{
    REFUND_DELETED, SessionFacts, close_session, credit_session, refund_for_deleted_account,
};
use super::receipts::mail_receipt;
use crate::payments::{self};
use crate::service::db::{self};
use crate::service::invites::Rewards;
use crate::service::{Caller, Ctx, ServiceResult};

/// What one reconciliation round did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Reconciled {
    pub checked: usize,
    pub credited: usize,
    pub closed: usize,
    pub held: usize,
    /// Orders Stripe could not tell about now (tried again next round).
    pub failed: usize,
}

/// Asks Stripe about pending orders older than `older_than_secs` and applies what it says:
/// paid → credited (through the same path as the webhook), expired → closed. An order whose
/// session could still be paid stays pending; one that never got a session is closed once its
/// checkout window has passed.
pub async fn reconcile(
    ctx: &Ctx,
    caller: &Caller,
    older_than_secs: u64,
    listen_url: &str,
) -> ServiceResult<Reconciled> {
    caller.require_admin()?;
    let options = crate::service::options::current(&ctx.db).await?;
    let Some(settings) = TopupSettings::of(&options) else {
        return Ok(Reconciled::default());
    };
    let now = db::now_ms();
    let age = i64::try_from(older_than_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    let rewards = Rewards::of(&options).ok();
    let mut report = Reconciled::default();
    for order in db::orders::pending_before(&ctx.db, now.saturating_sub(age), 500).await? {
        report.checked += 1;
        let Some(session_id) = order.session_id.clone() else {
            let window = i64::try_from(settings.checkout_minutes).unwrap_or(60) * 60_000;
            if order.created_at + window + 3_600_000 < now {
                ctx.write(&Caller::System, async |tx| {
                    close_session(tx, order.id, "no Checkout Session was made").await
                })
                .await?;
                report.closed += 1;
            }
            continue;
        };
        let session = match payments::session(&settings.access, &session_id).await {
            Ok(session) => SessionFacts::from(session),
            Err(error) => {
                tracing::warn!(order_id = order.id, %error, "could not ask Stripe about an order");
                report.failed += 1;
                continue;
            }
        };
        let outcome = if session.payment_status == "paid" {
            ctx.write(&Caller::System, async |tx| {
                credit_session(tx, order.id, &session, "reconcile", rewards).await
            })
            .await?
        } else if session.status == "expired"
            || session
                .expires_at
                .is_some_and(|at| at * 1000 < now - 60_000)
                && session.status != "complete"
        {
            ctx.write(&Caller::System, async |tx| {
                close_session(tx, order.id, "the Checkout Session expired").await
            })
            .await?
        } else {
            "pending"
        };
        match outcome {
            "credited" => {
                report.credited += 1;
                mail_receipt(ctx, order.id, listen_url).await;
            }
            "closed" => report.closed += 1,
            "held" => report.held += 1,
            REFUND_DELETED => {
                report.held += 1;
                refund_for_deleted_account(ctx, order.id).await;
            }
            _ => {}
        }
    }
    // Refunds for deleted accounts that Stripe could not be asked for before.
    for order in db::orders::held_for_deleted_accounts(&ctx.db, 100).await? {
        refund_for_deleted_account(ctx, order.id).await;
    }
    Ok(report)
}
