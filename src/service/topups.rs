//! Stripe top-ups: a person asks for some dollars of balance, Tollgate writes a pending order
//! with the exact quote, makes a Checkout Session and sends them to Stripe; Stripe's events
//! (and the reconciliation job, for events that were lost) pay, close, refund and dispute it.
//!
//! Every balance change here is one transaction holding the event's record (its id is unique,
//! so a repeated delivery changes nothing), the order's conditional state change, a ledger row
//! with an idempotency key, and the balance update. Nothing credits from a browser redirect.

use super::invites::{self, RewardWhen, Rewards};
use super::{Caller, Ctx, ServiceError, ServiceResult, decimal_err};
use crate::domain::calendar::SiteCalendar;
use crate::domain::kinds::{LedgerKind, OrderStatus};
use crate::domain::money::{MicroUsd, Quota};
use crate::domain::topup::{self, BonusTier, Currency, Quote, QuoteError};
use crate::i18n::Lang;
use crate::mail::{self, Email, SmtpSettings};
use crate::msg;
use crate::options::RuntimeOptions;
use crate::payments::{self, CheckoutRequest, PaymentError, SessionState, StripeAccess};
use crate::service::db::ledger::NewEntry;
use crate::service::db::orders::{EventRow, NewOrder, OrderRow, Transition};
use crate::service::db::users::UserRow;
use crate::service::db::{self, DbError, Tx};

/// The site's top-up settings; None while Stripe is not configured (both keys are needed:
/// without the webhook's secret no payment could ever be credited).
#[derive(Clone, Debug)]
pub struct TopupSettings {
    pub access: StripeAccess,
    pub currency: Currency,
    pub price_per_usd: MicroUsd,
    pub min: MicroUsd,
    pub max: MicroUsd,
    pub presets: Vec<MicroUsd>,
    pub tiers: Vec<BonusTier>,
    pub max_pending: u64,
    /// Zero: no daily cap.
    pub daily_cap: MicroUsd,
    pub checkout_minutes: u64,
    pub quota_per_usd: i64,
}

impl TopupSettings {
    pub fn of(options: &RuntimeOptions) -> Option<TopupSettings> {
        if options.stripe_secret_key.is_empty() || options.stripe_webhook_secret.is_empty() {
            return None;
        }
        Some(TopupSettings {
            access: StripeAccess {
                secret_key: options.stripe_secret_key.clone(),
                api_base: options.stripe_api_base.clone(),
            },
            currency: Currency::parse(&options.topup_currency)?,
            price_per_usd: MicroUsd::parse(&options.topup_price_per_usd).ok()?,
            min: MicroUsd::parse(&options.topup_min_usd).ok()?,
            max: MicroUsd::parse(&options.topup_max_usd).ok()?,
            presets: topup::parse_presets(&options.topup_presets_usd).unwrap_or_default(),
            tiers: topup::parse_tiers(&options.topup_bonus_tiers).unwrap_or_default(),
            max_pending: options.topup_max_pending_per_user,
            daily_cap: MicroUsd::parse(&options.topup_daily_cap_usd).unwrap_or(MicroUsd(0)),
            checkout_minutes: options.topup_checkout_minutes,
            quota_per_usd: options.quota_per_usd(),
        })
    }

    /// The presets within the site's bounds.
    pub fn offered_presets(&self) -> Vec<MicroUsd> {
        self.presets
            .iter()
            .copied()
            .filter(|p| p.0 >= self.min.0 && p.0 <= self.max.0)
            .collect()
    }

    /// What `usd` of balance costs and credits, or why it cannot be bought.
    pub fn quote(&self, usd: MicroUsd) -> ServiceResult<Quote> {
        const FIELD: &str = "amount_usd";
        if usd.0 < self.min.0 || usd.0 > self.max.0 {
            return Err(ServiceError::invalid(
                FIELD,
                msg!(
                    "topup-amount-range",
                    min = self.min.dollars(),
                    max = self.max.dollars()
                ),
            ));
        }
        topup::quote(
            usd,
            self.quota_per_usd,
            self.price_per_usd,
            &self.currency,
            &self.tiers,
        )
        .map_err(|e| {
            ServiceError::invalid(
                FIELD,
                match e {
                    QuoteError::Overflow => msg!("amount-too-large"),
                    QuoteError::PriceTooLarge => msg!("topup-price-too-large"),
                    QuoteError::PriceTooSmall => msg!("topup-price-too-small"),
                },
            )
        })
    }

    /// The quote for what a person typed.
    pub fn quote_text(&self, text: &str) -> ServiceResult<Quote> {
        let text = text.trim();
        if text.is_empty() {
            return Err(ServiceError::invalid("amount_usd", msg!("field-required")));
        }
        let usd = MicroUsd::parse(text).map_err(decimal_err("amount_usd"))?;
        self.quote(usd)
    }
}

/// The site's settings now, or why top-ups are off.
pub async fn settings(ctx: &Ctx) -> ServiceResult<TopupSettings> {
    let options = super::options::current(&ctx.db).await?;
    TopupSettings::of(&options).ok_or_else(|| ServiceError::Forbidden(msg!("topup-off")))
}

/// A request key as the form carries it: letters, digits and dashes, 16 to 64 of them.
fn valid_request_key(key: &str) -> bool {
    (16..=64).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Starts a top-up of the caller's own balance (see [`start`]).
pub async fn start_own(
    ctx: &Ctx,
    caller: &Caller,
    amount_usd: &str,
    request_key: &str,
    base_url: &str,
) -> ServiceResult<OrderRow> {
    let user = super::users::find_id(&ctx.db, caller.own_account()?).await?;
    start(ctx, &user, amount_usd, request_key, base_url).await
}

/// Starts a top-up for `user`: writes the pending order, makes its Checkout Session, and
/// returns the order with the address to send the payer to. The same `request_key` (one per
/// form shown) finds the same order and the same session, so a double click pays once.
pub async fn start(
    ctx: &Ctx,
    user: &UserRow,
    amount_usd: &str,
    request_key: &str,
    base_url: &str,
) -> ServiceResult<OrderRow> {
    let options = super::options::current(&ctx.db).await?;
    let settings =
        TopupSettings::of(&options).ok_or_else(|| ServiceError::Forbidden(msg!("topup-off")))?;
    if !valid_request_key(request_key) {
        return Err(ServiceError::invalid(
            "amount_usd",
            msg!("topup-form-expired"),
        ));
    }
    if let Some(order) = db::orders::by_request_key(&ctx.db, user.id, request_key).await? {
        return resume(ctx, &settings, user, order, base_url).await;
    }
    let quote = settings.quote_text(amount_usd)?;
    if user.quota.checked_add(quote.quota).is_none() {
        return Err(ServiceError::invalid(
            "amount_usd",
            msg!("balance-out-of-range"),
        ));
    }
    let now = db::now_ms();
    let day_start = SiteCalendar::new(&options.timezone).day_start_ms(now, 0);
    let new = NewOrder {
        user_id: user.id,
        usd_micros: quote.usd.0,
        quota: quote.quota,
        bonus: quote.bonus,
        amount: quote.amount,
        currency: &quote.currency.code,
        request_key,
    };
    // The limits are read and the order written in one transaction, with the account's row
    // locked first: forms submitted at once are counted one after another.
    let inserted = ctx
        .write_own(&Caller::User(user.id), async |tx| {
            db::users::lock(tx, user.id).await?;
            let (pending, today) = db::orders::recent_totals(tx, user.id, day_start).await?;
            if settings.max_pending > 0
                && pending >= i64::try_from(settings.max_pending).unwrap_or(0)
            {
                return Err(ServiceError::invalid(
                    "amount_usd",
                    msg!("topup-too-many-pending", max = settings.max_pending),
                ));
            }
            if settings.daily_cap.0 > 0 && today.saturating_add(quote.usd.0) > settings.daily_cap.0
            {
                let left = MicroUsd((settings.daily_cap.0 - today).max(0));
                return Err(ServiceError::invalid(
                    "amount_usd",
                    msg!(
                        "topup-daily-cap",
                        cap = settings.daily_cap.dollars(),
                        left = left.dollars()
                    ),
                ));
            }
            Ok(db::orders::insert(tx, &new).await?)
        })
        .await;
    let id = match inserted {
        Ok(id) => id,
        // The same form submitted twice at once: the other submission wrote it.
        Err(ServiceError::Db(DbError::Conflict(_))) => {
            let order = db::orders::by_request_key(&ctx.db, user.id, request_key)
                .await?
                .ok_or_else(|| ServiceError::NotFound(msg!("order-not-found")))?;
            return resume(ctx, &settings, user, order, base_url).await;
        }
        Err(other) => return Err(other),
    };
    let order = find_any(ctx, id).await?;
    resume(ctx, &settings, user, order, base_url).await
}

/// Makes (or gets back, by the idempotency key) the order's Checkout Session.
async fn resume(
    ctx: &Ctx,
    settings: &TopupSettings,
    user: &UserRow,
    order: OrderRow,
    base_url: &str,
) -> ServiceResult<OrderRow> {
    if order.checkout_url.is_some() || order.status != OrderStatus::Pending {
        return Ok(order);
    }
    let description = format!(
        "{} balance",
        Quota(order.quota).usd_display(settings.quota_per_usd)
    );
    let page = format!("{base_url}/wallet/orders/{}", order.id);
    let cancel = format!("{page}?cancelled=1");
    let expires_at =
        db::now_ms() / 1000 + i64::try_from(settings.checkout_minutes).unwrap_or(60) * 60;
    let site_id = super::site_values::site_id(ctx).await?;
    let request = CheckoutRequest {
        site_id: &site_id,
        order_id: order.id,
        amount: order.amount,
        currency: &order.currency,
        description: &description,
        success_url: &page,
        cancel_url: &cancel,
        expires_at,
        customer_email: user.email.as_deref(),
        locale: &user.locale,
    };
    match payments::create_checkout(&settings.access, &request).await {
        Ok(session) => {
            let url = session.url.clone().unwrap_or_default();
            ctx.write(&Caller::System, async |tx| {
                Ok(db::orders::set_session(
                    tx,
                    order.id,
                    &session.id,
                    &url,
                    session.expires_at.saturating_mul(1000),
                )
                .await?)
            })
            .await?;
            find_any(ctx, order.id).await
        }
        Err(PaymentError::Refused { message, .. }) => {
            // Stripe will not take this one (a bad key, an amount it refuses): close the order
            // with Stripe's words, so nobody waits on it.
            let note = format!("Stripe refused the Checkout Session: {message}");
            ctx.write(&Caller::System, async |tx| {
                let change = Transition {
                    note: &note,
                    ..Transition::default()
                };
                Ok(db::orders::transition(
                    tx,
                    order.id,
                    &[OrderStatus::Pending],
                    OrderStatus::Closed,
                    &change,
                )
                .await?)
            })
            .await?;
            Err(ServiceError::Upstream(msg!(
                "topup-stripe-refused",
                message = message
            )))
        }
        Err(PaymentError::Unreachable(reason)) => {
            // The session may or may not exist: the order stays pending; trying again (same
            // key) or reconciliation finds out.
            tracing::warn!(order_id = order.id, %reason, "Stripe could not be reached for a Checkout Session");
            Err(ServiceError::Upstream(msg!("topup-stripe-unreachable")))
        }
    }
}

async fn find_any(ctx: &Ctx, id: i64) -> ServiceResult<OrderRow> {
    db::orders::find(&ctx.db, id)
        .await?
        .ok_or_else(|| ServiceError::NotFound(msg!("order-not-found")))
}

/// One order as the caller may see it: their own, or any for administrators.
pub async fn find(ctx: &Ctx, caller: &Caller, id: i64) -> ServiceResult<OrderRow> {
    let found = match caller.owner() {
        Some(user_id) => db::orders::find_owned(&ctx.db, user_id, id).await?,
        None => db::orders::find(&ctx.db, id).await?,
    };
    found.ok_or_else(|| ServiceError::NotFound(msg!("order-not-found")))
}

/// Orders, newest first: the caller's own, or (administrators) anyone's, by user and state.
pub async fn list(
    ctx: &Ctx,
    caller: &Caller,
    user: Option<&str>,
    status: Option<&str>,
    limit: i64,
) -> ServiceResult<Vec<OrderRow>> {
    let status = status
        .map(|s| {
            OrderStatus::parse(s).ok_or_else(|| {
                ServiceError::invalid(
                    "status",
                    msg!(
                        "choice-invalid",
                        value = s,
                        choices = OrderStatus::choices()
                    ),
                )
            })
        })
        .transpose()?;
    let user_id = match (caller.owner(), user) {
        (Some(own), _) => Some(own),
        (None, Some(name)) => Some(super::users::find(&ctx.db, name).await?.id),
        (None, None) => None,
    };
    Ok(db::orders::list(&ctx.db, user_id, status, limit).await?)
}

/// An order with the Stripe events applied to it (administrators).
pub async fn show(ctx: &Ctx, caller: &Caller, id: i64) -> ServiceResult<(OrderRow, Vec<EventRow>)> {
    caller.require_admin()?;
    let order = find(ctx, caller, id).await?;
    let events = db::orders::events_of(&ctx.db, id).await?;
    Ok((order, events))
}

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
            let mut entry = super::audit::change(
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
        tx.audit(super::audit::change(
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

/// What a paid order brings to the transaction that credits it.
struct Paid<'a> {
    session_id: Option<&'a str>,
    payment_intent: Option<&'a str>,
    note: &'a str,
    /// Who credits: `stripe` for events, `reconcile`, or an administrator.
    actor: &'a str,
    /// The invite rewards a first top-up pays.
    rewards: Option<Rewards>,
}

/// Credits the order's quoted balance once: its state change, the ledger row (keyed by the
/// order) and the balance, and the first top-up's invite rewards. False when another event
/// credited it first.
async fn pay(
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
    let entry = NewEntry {
        user_id: order.user_id,
        kind: LedgerKind::TopUp,
        amount: order.quota,
        actor: facts.actor,
        reference: &reference,
        reason: &reason,
        idempotency_key: &key,
    };
    if db::ledger::insert(tx, &entry).await?.is_none() {
        // The order moved to paid just now, so its credit cannot be on record: a ledger that
        // says otherwise is not to be paid over.
        return Err(
            DbError::Corrupt(format!("order {} already has a top-up row", order.id)).into(),
        );
    }
    if !db::users::add_quota(tx, order.user_id, order.quota).await? {
        return Err(ServiceError::invalid(
            "amount_usd",
            msg!("balance-out-of-range"),
        ));
    }
    if let Some(rewards) = facts.rewards.filter(|r| r.when == RewardWhen::FirstTopup)
        && !db::orders::has_other_standing(tx, order.user_id, order.id).await?
    {
        invites::on_first_topup(tx, order.user_id, rewards).await?;
    }
    Ok(true)
}

/// The site's invite rewards now, for the credit about to be made.
async fn rewards(ctx: &Ctx) -> ServiceResult<Option<Rewards>> {
    let options = super::options::current(&ctx.db).await?;
    Ok(Rewards::of(&options).ok())
}

/// The fields of a Checkout Session an event or Stripe's API reports.
#[derive(Clone, Debug, Default)]
struct SessionFacts {
    id: String,
    status: String,
    payment_status: String,
    amount_total: Option<i64>,
    currency: Option<String>,
    payment_intent: Option<String>,
    client_reference_id: Option<String>,
    metadata_order_id: Option<String>,
    metadata_site_id: Option<String>,
    expires_at: Option<i64>,
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
    fn from_json(object: &serde_json::Value) -> SessionFacts {
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
    async fn order(&self, ctx: &Ctx) -> ServiceResult<Option<OrderRow>> {
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
fn metadata_text(object: &serde_json::Value, name: &str) -> Option<String> {
    object
        .get("metadata")
        .and_then(|m| m.get(name))
        .and_then(|v| v.as_str())
        .map(str::to_string)
}

/// Whether metadata naming `site` was written by this site. Order ids repeat from site to
/// site: another site on the same Stripe account (whose events reach this webhook too) has
/// an order of every number this one has.
async fn is_this_site(ctx: &Ctx, site: Option<&str>) -> ServiceResult<bool> {
    match site {
        Some(site) => Ok(site == super::site_values::site_id(ctx).await?),
        None => Ok(false),
    }
}

/// Credits an order for a paid session, after checking the payment against the quote; a
/// mismatch is held for an administrator. A payment that arrives after the order was closed
/// locally still credits it. Returns the outcome recorded with the event.
async fn credit_session(
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
    if db::users::is_deleted_in(tx, order.user_id).await? {
        // Paid after its account was deleted: nobody is left to credit, so the payment goes
        // back (asked of Stripe once this commits; see `refund_for_deleted_account`).
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
const REFUND_DELETED: &str = "refund_deleted_account";

/// Asks Stripe to refund the whole payment of an order whose account was deleted before it was
/// paid. The idempotency key names the site and the order, so asking again (the next
/// reconciliation round, another node) refunds once; the balance is untouched (nothing was
/// credited) and Stripe's refund event records the refund on the order.
async fn refund_for_deleted_account(ctx: &Ctx, order_id: i64) {
    let asked = async {
        let settings = settings(ctx).await?;
        let order = find_any(ctx, order_id).await?;
        let Some(intent) = order.payment_intent.as_deref() else {
            return Ok(None);
        };
        let site = super::site_values::site_id(ctx).await?;
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
async fn close_session(tx: &mut Tx, order_id: i64, why: &str) -> ServiceResult<&'static str> {
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
async fn apply_refund(
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
async fn open_dispute(
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
async fn close_dispute(
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
    let entry = NewEntry {
        user_id: order.user_id,
        kind,
        amount,
        actor: "stripe",
        reference: &reference,
        reason: "",
        idempotency_key: key,
    };
    if db::ledger::insert(tx, &entry).await?.is_none() {
        return Ok(false);
    }
    if amount != 0 && !db::users::add_quota(tx, order.user_id, amount).await? {
        return Err(ServiceError::invalid(
            "amount",
            msg!("balance-out-of-range"),
        ));
    }
    Ok(true)
}

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

/// What one reconciliation round did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
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
    let options = super::options::current(&ctx.db).await?;
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

/// Mails the payer a receipt for a credited order, in their language, after the credit has
/// committed; a mail failure is logged and changes nothing.
async fn mail_receipt(ctx: &Ctx, order_id: i64, listen_url: &str) {
    if let Err(error) = receipt(ctx, order_id, listen_url).await {
        tracing::warn!(order_id, %error, "the top-up receipt could not be mailed");
    }
}

/// [`mail_receipt`] without waiting for it: the webhook answers Stripe at once.
fn send_receipt(ctx: &Ctx, order_id: i64, listen_url: &str) {
    let ctx = ctx.clone();
    let listen_url = listen_url.to_string();
    tokio::spawn(async move { mail_receipt(&ctx, order_id, &listen_url).await });
}

async fn receipt(ctx: &Ctx, order_id: i64, listen_url: &str) -> Result<(), String> {
    let options = super::options::current(&ctx.db)
        .await
        .map_err(|e| e.to_string())?;
    let Some(settings) = SmtpSettings::from_options(&options) else {
        return Ok(());
    };
    let order = find_any(ctx, order_id).await.map_err(|e| e.to_string())?;
    let user = super::users::find_id(&ctx.db, order.user_id)
        .await
        .map_err(|e| e.to_string())?;
    let Some(to) = user.email.clone() else {
        return Ok(());
    };
    let lang = Lang::from_tag(&user.locale).unwrap_or(Lang::En);
    let qpu = options.quota_per_usd();
    let paid = topup::display_amount(&order.currency, order.amount);
    let credited = Quota(order.credited).usd_display(qpu);
    let balance = Quota(user.quota).usd_display(qpu);
    let link = format!(
        "{}/wallet/orders/{}",
        options.base_url(listen_url),
        order.id
    );
    let site = options.site_name.as_str();
    let id = order.id.to_string();
    let args: [(&str, &str); 7] = [
        ("site", site),
        ("name", &user.username),
        ("order", &id),
        ("paid", &paid),
        ("credited", &credited),
        ("balance", &balance),
        ("link", &link),
    ];
    let email = Email {
        to,
        subject: crate::i18n::text(lang, "mail-receipt-subject", &args),
        text: crate::i18n::text(lang, "mail-receipt-text", &args),
    };
    mail::send(&settings, email)
        .await
        .map_err(|e| e.to_string())
}
