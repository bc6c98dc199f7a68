//! Stripe top-ups: a person asks for some dollars of balance, Tollgate writes a pending order
//! with the exact quote, makes a Checkout Session and sends them to Stripe; Stripe's events
//! (and the reconciliation job, for events that were lost) pay, close, refund and dispute it.
//!
//! Every balance change here is one transaction holding the event's record (its id is unique,
//! so a repeated delivery changes nothing), the order's conditional state change, a ledger row
//! with an idempotency key, and the balance update. Nothing credits from a browser redirect.

mod admin;
mod crediting;
mod events;
mod money_back;
mod receipts;
mod reconcile;

pub use admin::{credit, refund};
pub use events::{EventError, apply_event};
pub use reconcile::{Reconciled, reconcile};

use super::{Caller, Ctx, ServiceError, ServiceResult, decimal_err};
use crate::domain::calendar::SiteCalendar;
use crate::domain::kinds::OrderStatus;
use crate::domain::money::{MicroUsd, Quota};
use crate::domain::topup::{self, BonusTier, Currency, Quote, QuoteError};
use crate::msg;
use crate::options::RuntimeOptions;
use crate::payments::{self, CheckoutRequest, PaymentError, StripeAccess};
use crate::records::orgs::OrgRow;
use crate::service::db::orders::{EventRow, NewOrder, OrderRow, OrdersOf, Transition};
use crate::service::db::users::UserRow;
use crate::service::db::{self, DbError};

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

/// Starts a top-up of `user`'s own balance (see [`start_into`]).
pub async fn start(
    ctx: &Ctx,
    user: &UserRow,
    amount_usd: &str,
    request_key: &str,
    base_url: &str,
) -> ServiceResult<OrderRow> {
    start_into(ctx, user, None, amount_usd, request_key, base_url).await
}

/// Starts a card top-up of an organisation's wallet (see [`start`]): its owner and admins pay
/// with their own card; the order is the purchaser's (their limits on pending orders and daily
/// dollars count it), the credit goes to the organisation's wallet.
pub async fn start_for_org(
    ctx: &Ctx,
    caller: &Caller,
    slug: &str,
    amount_usd: &str,
    request_key: &str,
    base_url: &str,
) -> ServiceResult<OrderRow> {
    let access = super::orgs::access(ctx, caller, slug).await?;
    access.require_manages_org()?;
    let purchaser = caller
        .account_id()
        .ok_or_else(|| ServiceError::Forbidden(msg!("org-admins-only")))?;
    let user = super::users::find_id(&ctx.db, purchaser).await?;
    start_into(
        ctx,
        &user,
        Some(access.org()),
        amount_usd,
        request_key,
        base_url,
    )
    .await
}

/// The orders paid (or being paid) into an organisation's wallet, newest first: for its owner
/// and admins.
pub async fn list_for_org(
    ctx: &Ctx,
    caller: &Caller,
    slug: &str,
    limit: i64,
) -> ServiceResult<Vec<OrderRow>> {
    let access = super::orgs::access(ctx, caller, slug).await?;
    access.require_manages_org()?;
    let org = OrdersOf::Org(access.org().id);
    Ok(db::orders::list(&ctx.db, org, None, limit).await?)
}

/// Starts a top-up by `user` of their own balance, or of `org`'s wallet: writes the pending
/// order, makes its Checkout Session, and returns the order with the address to send the
/// payer to. The same `request_key` (one per form shown) finds the same order and the same
/// session, so a double click pays once.
async fn start_into(
    ctx: &Ctx,
    user: &UserRow,
    org: Option<&OrgRow>,
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
    let balance = org.map_or(user.quota, |org| org.quota);
    if balance.checked_add(quote.quota).is_none() {
        return Err(ServiceError::invalid(
            "amount_usd",
            msg!("balance-out-of-range"),
        ));
    }
    let now = db::now_ms();
    let day_start = SiteCalendar::new(&options.timezone).day_start_ms(now, 0);
    let new = NewOrder {
        user_id: user.id,
        org_id: org.map_or(0, |org| org.id),
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
    let amount = Quota(order.quota).usd_display(settings.quota_per_usd);
    let description = match &order.org_slug {
        Some(slug) => format!("{amount} balance for organisation {slug}"),
        None => format!("{amount} balance"),
    };
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

pub(super) async fn find_any(ctx: &Ctx, id: i64) -> ServiceResult<OrderRow> {
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

/// An order state a person named (`held`), or why not.
fn order_status(text: &str) -> ServiceResult<OrderStatus> {
    OrderStatus::parse(text).ok_or_else(|| {
        ServiceError::invalid(
            "status",
            msg!(
                "choice-invalid",
                value = text,
                choices = OrderStatus::choices()
            ),
        )
    })
}

/// Orders, newest first: the caller's own, or (administrators) anyone's, by user and state.
pub async fn list(
    ctx: &Ctx,
    caller: &Caller,
    user: Option<&str>,
    status: Option<&str>,
    limit: i64,
) -> ServiceResult<Vec<OrderRow>> {
    let status = status.map(order_status).transpose()?;
    let owner = match (caller.owner(), user) {
        (Some(own), _) => OrdersOf::User(own),
        (None, Some(name)) => OrdersOf::User(super::users::find(&ctx.db, name).await?.id),
        (None, None) => OrdersOf::Everyone,
    };
    Ok(db::orders::list(&ctx.db, owner, status, limit).await?)
}

/// Orders an administrator looks for by one term: an order id, a Stripe Checkout Session
/// (`cs_…`) or payment (`pi_…`) id, or a username; in one state when asked. Newest first;
/// an empty term lists the newest orders.
pub async fn search(
    ctx: &Ctx,
    caller: &Caller,
    term: &str,
    status: Option<&str>,
    limit: i64,
) -> ServiceResult<Vec<OrderRow>> {
    caller.require_admin()?;
    let term = term.trim();
    if term.is_empty() {
        return list(ctx, caller, None, status, limit).await;
    }
    let state = status.map(order_status).transpose()?;
    let mut found = Vec::new();
    if let Ok(id) = term.trim_start_matches('#').parse::<i64>()
        && let Some(order) = db::orders::find(&ctx.db, id).await?
    {
        found.push(order);
    }
    if let Some(order) = db::orders::by_session(&ctx.db, term).await? {
        found.push(order);
    }
    if let Some(order) = db::orders::by_payment_intent(&ctx.db, term).await? {
        found.push(order);
    }
    if let Some(user) = db::users::find_by_username(&ctx.db, term).await? {
        let owner = OrdersOf::User(user.id);
        found.extend(db::orders::list(&ctx.db, owner, state, limit).await?);
    }
    found.retain(|order| state.is_none_or(|s| order.status == s));
    found.sort_by_key(|order| std::cmp::Reverse(order.id));
    found.dedup_by_key(|order| order.id);
    found.truncate(usize::try_from(limit.max(1)).unwrap_or(usize::MAX));
    Ok(found)
}

/// An order with the Stripe events applied to it (administrators).
pub async fn show(ctx: &Ctx, caller: &Caller, id: i64) -> ServiceResult<(OrderRow, Vec<EventRow>)> {
    caller.require_admin()?;
    let order = find(ctx, caller, id).await?;
    let events = db::orders::events_of(&ctx.db, id).await?;
    Ok((order, events))
}
