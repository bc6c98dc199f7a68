//! The wallet: the balance, the ledger's history of this account, redeeming a code, and card
//! top-ups through Stripe Checkout (a quote shown before paying, the order's page after).

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;

use super::error::WebError;
use super::form::{FieldErrors, Posted};
use super::page::{Page, SignedIn, flash};
use crate::domain::kinds::OrderStatus;
use crate::domain::money::MicroUsd;
use crate::domain::topup::{Quote, display_amount};
use crate::protocol::client::ClientAddress;
use crate::records::ledger::Entry;
use crate::records::orders::OrderRow;
use crate::service::limits;
use crate::service::sessions::Viewer;
use crate::service::topups::TopupSettings;
use crate::service::{self, Caller};
use crate::state::AppState;

/// Orders listed on the wallet.
const ORDERS_SHOWN: i64 = 20;

/// A preset amount as offered: what it credits and costs.
pub struct Offer {
    /// The dollars, as the link carries them (`10`).
    pub usd: String,
    pub balance: String,
    pub price: String,
    /// `+10 %`, or empty.
    pub bonus: String,
}

impl TopupOffer {
    /// The custom amount's hint: its bounds, and the bonus tiers when there are some.
    pub fn amount_hint(&self) -> String {
        if self.tiers.is_empty() {
            self.hint.clone()
        } else {
            format!("{} {}", self.hint, self.tiers)
        }
    }
}

/// The top-up part of the wallet, when Stripe is set up.
pub struct TopupOffer {
    pub offers: Vec<Offer>,
    /// The bounds, in words.
    pub hint: String,
    /// The bonus tiers in words, or empty.
    pub tiers: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "wallet.html")]
pub struct WalletPage {
    page: Page,
    balance: i64,
    entries: Vec<Entry>,
    /// The code as typed, when it was refused.
    code: String,
    errors: FieldErrors,
    /// The person's invite link, once made.
    invite_link: Option<String>,
    /// What inviting someone earns, in words.
    invite_terms: String,
    topup: Option<TopupOffer>,
    /// The custom amount as typed, when it was refused.
    amount_usd: String,
    orders: Vec<OrderRow>,
}

/// The invite link of an account with a code.
pub fn invite_link(state: &AppState, user: &Viewer) -> Option<String> {
    user.invite_code
        .as_ref()
        .map(|code| format!("{}/register?invite={code}", super::pages::base_url(state)))
}

/// What inviting someone earns, in the reader's words.
fn invite_terms(state: &AppState, page: &Page) -> String {
    let options = state.snapshot.load().options.clone();
    match service::invites::Rewards::of(&options) {
        Ok(rewards) if rewards.inviter > 0 || rewards.invitee > 0 => {
            let key = match rewards.when {
                service::invites::RewardWhen::Signup => "web-invite-terms-signup",
                service::invites::RewardWhen::FirstTopup => "web-invite-terms-topup",
            };
            crate::i18n::text(
                page.lang,
                key,
                &[
                    ("inviter", &page.usd(&rewards.inviter)),
                    ("invitee", &page.usd(&rewards.invitee)),
                ],
            )
        }
        _ => page.t("web-invite-no-rewards"),
    }
}

impl WalletPage {
    fn kind(&self, entry: &Entry) -> String {
        self.page.t(super::format::ledger_key(entry.kind))
    }

    fn order_status(&self, order: &OrderRow) -> String {
        self.page.t(status_key(order.status))
    }

    fn order_price(&self, order: &OrderRow) -> String {
        price_text(order)
    }
}

pub(super) fn status_key(status: OrderStatus) -> &'static str {
    match status {
        OrderStatus::Pending => "web-order-pending",
        OrderStatus::Paid => "web-order-paid",
        OrderStatus::Closed => "web-order-closed",
        OrderStatus::Held => "web-order-held",
    }
}

pub(super) fn price_text(order: &OrderRow) -> String {
    display_amount(&order.currency, order.amount)
}

/// The bonus percent as people read it: `10 %`, `2.5 %`.
fn percent(micros: i64) -> String {
    format!("{} %", MicroUsd(micros))
}

pub(super) fn offer_of(settings: &TopupSettings, page: &Page) -> TopupOffer {
    let offers = settings
        .offered_presets()
        .into_iter()
        .filter_map(|usd| settings.quote(usd).ok())
        .map(|quote| Offer {
            usd: plain_usd(quote.usd),
            balance: page.usd(&quote.quota),
            price: quote.currency.display(quote.amount),
            bonus: if quote.bonus > 0 {
                format!("+{}", percent(quote.bonus_percent_micros))
            } else {
                String::new()
            },
        })
        .collect();
    let tiers = settings
        .tiers
        .iter()
        .map(|t| {
            crate::i18n::text(
                page.lang,
                "web-topup-tier",
                &[
                    ("from", &t.from_usd.dollars()),
                    ("percent", &percent(t.percent_micros)),
                ],
            )
        })
        .collect::<Vec<_>>()
        .join(" · ");
    let hint = crate::i18n::text(
        page.lang,
        "web-topup-amount-hint",
        &[
            ("min", &settings.min.dollars()),
            ("max", &settings.max.dollars()),
        ],
    );
    TopupOffer {
        offers,
        hint,
        tiers,
    }
}

/// Dollars as a form value: `10`, `12.5`.
fn plain_usd(usd: MicroUsd) -> String {
    usd.to_string()
}

/// The page's policy, letting its forms lead on to Stripe's checkout page (browsers apply
/// `form-action` to where a form's answer redirects). A test's stand-in for Stripe serves its
/// checkout page from its API address, so that origin is allowed too.
fn checkout_policy(state: &AppState) -> HeaderValue {
    let base = state.snapshot.load().options.stripe_api_base.clone();
    let mut origins = String::from("https://checkout.stripe.com");
    if let Ok(uri) = base.parse::<http::Uri>()
        && let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority())
        && authority.host() != "api.stripe.com"
    {
        origins.push_str(&format!(" {scheme}://{authority}"));
    }
    let policy = super::CONTENT_SECURITY_POLICY.replace(
        "form-action 'self'",
        &format!("form-action 'self' {origins}"),
    );
    HeaderValue::from_str(&policy)
        .unwrap_or_else(|_| HeaderValue::from_static(super::CONTENT_SECURITY_POLICY))
}

pub(super) fn with_checkout_policy(
    state: &AppState,
    page: impl IntoResponse,
    status: StatusCode,
) -> Response {
    let mut response = (status, page).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_SECURITY_POLICY, checkout_policy(state));
    response
}

/// What a person typed into the wallet's forms, to show again with their errors.
#[derive(Default)]
struct Typed {
    code: String,
    amount_usd: String,
}

async fn render(
    state: &AppState,
    page: Page,
    user: &Viewer,
    typed: Typed,
    errors: FieldErrors,
) -> Result<WalletPage, WebError> {
    let caller = Caller::User(user.id);
    let entries = service::ledger::entries(&state.ctx, &caller, &user.username, 100)
        .await
        .map_err(|e| page.failed(e))?;
    let orders = service::topups::list(&state.ctx, &caller, None, None, ORDERS_SHOWN)
        .await
        .map_err(|e| page.failed(e))?;
    let options = state.snapshot.load().options.clone();
    let topup = TopupSettings::of(&options).map(|settings| offer_of(&settings, &page));
    Ok(WalletPage {
        balance: user.quota,
        entries,
        invite_link: invite_link(state, user),
        invite_terms: invite_terms(state, &page),
        topup,
        amount_usd: typed.amount_usd,
        orders,
        page,
        code: typed.code,
        errors,
    })
}

pub async fn show(
    State(state): State<AppState>,
    SignedIn { page, user }: SignedIn,
    Query(query): Query<QuoteQuery>,
) -> Result<Response, WebError> {
    // Back from a quote to change the amount: the amount stays typed.
    let typed = Typed {
        amount_usd: query.amount_usd,
        ..Typed::default()
    };
    let wallet = render(&state, page, &user, typed, FieldErrors::default()).await?;
    Ok(with_checkout_policy(&state, wallet, StatusCode::OK))
}

#[derive(Deserialize)]
pub struct RedeemForm {
    #[serde(default)]
    pub(super) code: String,
}

/// Redeems a code into the person's own balance (see [`redeem_counted`]).
pub async fn redeem(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    session: Session,
    SignedIn { page, user }: SignedIn,
    Posted(form): Posted<RedeemForm>,
) -> Result<Response, WebError> {
    let ctx = state.ctx.clone();
    let tried = redeem_counted(
        &state,
        &client.to_string(),
        user.id,
        page.lang,
        &form.code,
        || service::codes::redeem(&ctx, user.id, &form.code),
    )
    .await;
    match tried {
        Ok(units) => {
            let amount = page.usd(&units);
            flash(&session, page.t1("web-code-redeemed", "amount", &amount)).await?;
            Ok(Redirect::to("/wallet").into_response())
        }
        Err((status, errors)) => {
            let typed = Typed {
                code: form.code,
                ..Typed::default()
            };
            let again = render(&state, page, &user, typed, errors).await?;
            Ok((status, again).into_response())
        }
    }
}

/// Redeems a code through `redeem`, whichever wallet it credits. Wrong codes are counted per
/// account and per address, so codes cannot be guessed: each try is counted before it is
/// looked up and given back when the code works; a typo of the wrong shape is no guess and
/// counts nothing. A refusal comes back as the status and the marked field to show.
pub(super) async fn redeem_counted<F, Fut>(
    state: &AppState,
    ip: &str,
    user_id: i64,
    lang: crate::i18n::Lang,
    code: &str,
    redeem: F,
) -> Result<i64, (StatusCode, FieldErrors)>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = service::ServiceResult<i64>>,
{
    if let Err(error) = service::codes::check_shape(code) {
        let errors = FieldErrors::from_service(&error, lang, &[]);
        return Err((StatusCode::UNPROCESSABLE_ENTITY, errors));
    }
    let account = user_id.to_string();
    let counted = [
        (limits::REDEEM_FAILURES_PER_IP, ip),
        (limits::REDEEM_FAILURES_PER_ACCOUNT, account.as_str()),
    ];
    if !state.limits.hit_all(&counted).await {
        return Err((
            StatusCode::TOO_MANY_REQUESTS,
            FieldErrors::too_many_attempts(lang),
        ));
    }
    match redeem().await {
        Ok(units) => {
            for (limit, key) in counted {
                state.limits.give_back(limit, key).await;
            }
            Ok(units)
        }
        Err(error) => {
            let status = match &error {
                service::ServiceError::Forbidden(_) => StatusCode::FORBIDDEN,
                _ => StatusCode::UNPROCESSABLE_ENTITY,
            };
            Err((status, FieldErrors::from_service(&error, lang, &[])))
        }
    }
}

#[derive(Deserialize)]
pub struct InviteForm {}

/// Makes the person's invite link (a POST: nothing is made on GET).
pub async fn make_invite(
    State(state): State<AppState>,
    SignedIn { page, user }: SignedIn,
    Posted(_): Posted<InviteForm>,
) -> Result<Response, WebError> {
    service::invites::ensure_code(&state.ctx, user.id)
        .await
        .map_err(|e| page.failed(e))?;
    Ok(Redirect::to("/wallet#invite").into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "topup.html")]
pub struct TopupPage {
    page: Page,
    amount_usd: String,
    /// One per page shown: the same submission twice makes one order and one session.
    request_key: String,
    balance_text: String,
    bonus_text: String,
    price_text: String,
    errors: FieldErrors,
    /// Where the form posts: `/wallet/topup`, or an organisation's.
    action: String,
    /// The wallet page the amount is changed on.
    back: String,
    /// The organisation's name when its wallet is topped up.
    org_name: Option<String>,
}

/// Whose wallet a quote is for.
pub(super) struct QuoteFor {
    pub(super) wallet: String,
    pub(super) org_name: Option<String>,
}

impl QuoteFor {
    fn own() -> QuoteFor {
        QuoteFor {
            wallet: "/wallet".into(),
            org_name: None,
        }
    }
}

pub(super) fn topup_page(
    page: Page,
    quote: Quote,
    request_key: String,
    errors: FieldErrors,
    target: QuoteFor,
) -> TopupPage {
    let bonus_text = if quote.bonus > 0 {
        crate::i18n::text(
            page.lang,
            "web-topup-bonus",
            &[
                ("bonus", &page.usd(&quote.bonus)),
                ("percent", &percent(quote.bonus_percent_micros)),
            ],
        )
    } else {
        String::new()
    };
    TopupPage {
        amount_usd: plain_usd(quote.usd),
        balance_text: page.usd(&quote.quota),
        price_text: quote.currency.display(quote.amount),
        bonus_text,
        request_key,
        page,
        errors,
        action: format!("{}/topup", target.wallet),
        back: target.wallet,
        org_name: target.org_name,
    }
}

pub(super) fn new_request_key() -> String {
    crate::domain::secret_key::generate("")
        .plain
        .chars()
        .take(32)
        .collect()
}

#[derive(Deserialize)]
pub struct QuoteQuery {
    #[serde(default)]
    pub(super) amount_usd: String,
}

/// The exact price of an amount before paying (a GET: it changes nothing). A wrong amount
/// shows the wallet again with the field marked.
pub async fn quote(
    State(state): State<AppState>,
    SignedIn { page, user }: SignedIn,
    Query(query): Query<QuoteQuery>,
) -> Result<Response, WebError> {
    let quoted = service::topups::settings(&state.ctx)
        .await
        .and_then(|settings| settings.quote_text(&query.amount_usd));
    match quoted {
        Ok(quote) => {
            let shown = topup_page(
                page,
                quote,
                new_request_key(),
                FieldErrors::default(),
                QuoteFor::own(),
            );
            Ok(with_checkout_policy(&state, shown, StatusCode::OK))
        }
        Err(error) => {
            let errors = FieldErrors::from_service(&error, page.lang, &[]);
            let typed = Typed {
                amount_usd: query.amount_usd,
                ..Typed::default()
            };
            let again = render(&state, page, &user, typed, errors).await?;
            Ok(with_checkout_policy(
                &state,
                again,
                StatusCode::UNPROCESSABLE_ENTITY,
            ))
        }
    }
}

#[derive(Deserialize)]
pub struct PayForm {
    #[serde(default)]
    pub(super) amount_usd: String,
    #[serde(default)]
    pub(super) request_key: String,
}

/// Writes the order, makes its Checkout Session and sends the person to Stripe (303). What
/// goes wrong is shown on the quote again, in the reader's words.
pub async fn pay(
    State(state): State<AppState>,
    SignedIn { page, user }: SignedIn,
    Posted(form): Posted<PayForm>,
) -> Result<Response, WebError> {
    let base = super::pages::base_url(&state);
    let started = service::topups::start_own(
        &state.ctx,
        &user.caller(),
        &form.amount_usd,
        &form.request_key,
        &base,
    )
    .await;
    let refused = match started {
        Ok(order) => return Ok(to_checkout(&order)),
        Err(error) => error,
    };
    let quoted = quote_again(&state, page, &form.amount_usd, &refused, QuoteFor::own()).await;
    match quoted {
        Ok(shown) => Ok(shown),
        Err((page, errors, status)) => {
            let typed = Typed {
                amount_usd: form.amount_usd,
                ..Typed::default()
            };
            let again = render(&state, page, &user, typed, errors).await?;
            Ok(with_checkout_policy(&state, again, status))
        }
    }
}

/// Where a started order sends the payer: Stripe's page, or the order's own when it has
/// none to go to (already paid or closed).
pub(super) fn to_checkout(order: &OrderRow) -> Response {
    let to = match (&order.checkout_url, order.status) {
        (Some(url), OrderStatus::Pending) if !url.is_empty() => url.clone(),
        _ => format!("/wallet/orders/{}", order.id),
    };
    Redirect::to(&to).into_response()
}

/// A payment that could not start, shown on its quote again with what went wrong (a fresh
/// request key: the refused attempt's order is closed or pending, and trying again should not
/// land on it). When the amount itself is wrong there is no quote: the page, the marked field
/// and the status come back for the wallet to show.
pub(super) async fn quote_again(
    state: &AppState,
    page: Page,
    amount_usd: &str,
    refused: &service::ServiceError,
    target: QuoteFor,
) -> Result<Response, (Page, FieldErrors, StatusCode)> {
    let errors = FieldErrors::from_service(refused, page.lang, &[]);
    let status = match refused {
        service::ServiceError::Upstream(_) => StatusCode::BAD_GATEWAY,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    let quoted = service::topups::settings(&state.ctx)
        .await
        .and_then(|settings| settings.quote_text(amount_usd));
    match quoted {
        Ok(quote) => {
            let again = topup_page(page, quote, new_request_key(), errors, target);
            Ok(with_checkout_policy(state, again, status))
        }
        Err(_) => Err((page, errors, status)),
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "order.html")]
pub struct OrderPage {
    page: Page,
    order: OrderRow,
    status_text: String,
    status_hint: String,
    price_text: String,
    created: String,
    expires: String,
    /// The person came back from Stripe's page without paying.
    cancelled: bool,
    /// Still waiting for Stripe: the page reloads itself.
    waiting: bool,
}

#[derive(Deserialize)]
pub struct OrderQuery {
    cancelled: Option<String>,
}

/// One of the person's orders: where it stands. It credits nothing itself (Stripe's event
/// does); while the order is pending it reloads every few seconds.
pub async fn order(
    State(state): State<AppState>,
    SignedIn { page, user }: SignedIn,
    Path(id): Path<i64>,
    Query(query): Query<OrderQuery>,
) -> Result<Response, WebError> {
    let order = match service::topups::find(&state.ctx, &Caller::User(user.id), id).await {
        Ok(order) => order,
        Err(service::ServiceError::NotFound(_)) => return Err(WebError::not_found(page.lang)),
        Err(error) => return Err(page.failed(error)),
    };
    let hint_key = match order.status {
        OrderStatus::Pending => "web-order-pending-hint",
        OrderStatus::Paid => "web-order-paid-hint",
        OrderStatus::Closed => "web-order-closed-hint",
        OrderStatus::Held => "web-order-held-hint",
    };
    let shown = OrderPage {
        status_text: page.t(status_key(order.status)),
        status_hint: page.t(hint_key),
        price_text: price_text(&order),
        created: page.time(&order.created_at),
        expires: order
            .expires_at
            .map(|at| page.time(&at))
            .unwrap_or_default(),
        cancelled: query.cancelled.is_some() && order.status == OrderStatus::Pending,
        waiting: order.status == OrderStatus::Pending && query.cancelled.is_none(),
        order,
        page,
    };
    Ok(with_checkout_policy(&state, shown, StatusCode::OK))
}
