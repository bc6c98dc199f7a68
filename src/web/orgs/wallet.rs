//! An organisation's wallet: its balance, what it spent in all, and (for its owner and admins)
//! money in — a card top-up through Stripe Checkout, or a code — the orders paid into it and
//! the ledger's history. The flows are the person's wallet's (`web::wallet`), aimed at the
//! organisation.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use tower_sessions::Session;

use super::{OrgFrame, load};
use crate::protocol::client::ClientAddress;
use crate::records::ledger::Entry;
use crate::records::orders::OrderRow;
use crate::service::sessions::Viewer;
use crate::service::topups::TopupSettings;
use crate::service::{self, ServiceError, orgs};
use crate::state::AppState;
use crate::web::error::WebError;
use crate::web::form::{FieldErrors, Posted};
use crate::web::page::{Page, SignedIn, flash};
use crate::web::wallet::{
    PayForm, QuoteFor, QuoteQuery, RedeemForm, TopupOffer, offer_of, price_text, quote_again,
    redeem_counted, status_key, to_checkout, with_checkout_policy,
};
use crate::web::wallet::{new_request_key, topup_page};

/// Ledger rows shown.
const ENTRIES_SHOWN: i64 = 100;
/// Orders shown.
const ORDERS_SHOWN: i64 = 20;

#[derive(Template, WebTemplate)]
#[template(path = "orgs/wallet.html")]
pub struct WalletPage {
    page: Page,
    frame: OrgFrame,
    /// The balance and what it spent in all, for those who see them (its owner and admins).
    balance: Option<i64>,
    used: Option<i64>,
    /// The history, for those who may read it (the organisation's admins).
    entries: Option<Vec<Entry>>,
    /// Card payments into the wallet (for its admins).
    orders: Vec<OrderRow>,
    /// The card top-up, when Stripe is set up (for its admins).
    topup: Option<TopupOffer>,
    /// What was typed, when it was refused.
    amount_usd: String,
    code: String,
    errors: FieldErrors,
    /// The command that tops the wallet up, for the site's administrators.
    command: String,
    /// The reader: their own orders link to the order's page.
    me: i64,
}

impl WalletPage {
    fn wallet_path(&self) -> String {
        format!("/orgs/{}/wallet", self.frame.slug)
    }

    fn kind(&self, entry: &Entry) -> String {
        self.page.t(crate::web::format::ledger_key(entry.kind))
    }

    fn order_status(&self, order: &OrderRow) -> String {
        self.page.t(status_key(order.status))
    }

    fn order_price(&self, order: &OrderRow) -> String {
        price_text(order)
    }
}

/// What was typed into the wallet's forms, shown again with its errors.
#[derive(Default)]
struct Typed {
    amount_usd: String,
    code: String,
}

async fn render(
    state: &AppState,
    page: Page,
    user: &Viewer,
    slug: &str,
    typed: Typed,
    errors: FieldErrors,
) -> Result<WalletPage, WebError> {
    let (view, frame) = load(state, &page, user, slug, "wallet").await?;
    let caller = user.caller();
    let (entries, orders, topup) = if frame.manages {
        let entries = orgs::ledger(&state.ctx, &caller, &view.slug, ENTRIES_SHOWN)
            .await
            .map_err(|e| page.failed(e))?;
        let orders = service::topups::list_for_org(&state.ctx, &caller, &view.slug, ORDERS_SHOWN)
            .await
            .map_err(|e| page.failed(e))?;
        let options = state.snapshot.load().options.clone();
        let topup = TopupSettings::of(&options).map(|settings| offer_of(&settings, &page));
        (Some(entries), orders, topup)
    } else {
        (None, Vec::new(), None)
    };
    Ok(WalletPage {
        balance: view.quota,
        used: view.used_quota,
        entries,
        orders,
        topup,
        amount_usd: typed.amount_usd,
        code: typed.code,
        errors,
        command: format!(
            "tollgate org topup {} --usd 100 --reason \"Invoice 2026-12\"",
            view.slug
        ),
        me: user.id,
        frame,
        page,
    })
}

pub async fn show(
    State(state): State<AppState>,
    SignedIn { page, user }: SignedIn,
    Path(slug): Path<String>,
    Query(query): Query<QuoteQuery>,
) -> Result<Response, WebError> {
    // Back from a quote to change the amount: the amount stays typed.
    let typed = Typed {
        amount_usd: query.amount_usd,
        ..Typed::default()
    };
    let shown = render(&state, page, &user, &slug, typed, FieldErrors::default()).await?;
    Ok(with_checkout_policy(&state, shown, StatusCode::OK))
}

/// Redeems a code into the organisation's wallet (its owner and admins); wrong codes count
/// against the person as on their own wallet.
pub async fn redeem(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    session: Session,
    SignedIn { page, user }: SignedIn,
    Path(slug): Path<String>,
    Posted(form): Posted<RedeemForm>,
) -> Result<Response, WebError> {
    let ctx = state.ctx.clone();
    let caller = user.caller();
    let tried = redeem_counted(
        &state,
        &client.to_string(),
        user.id,
        page.lang,
        &form.code,
        || service::codes::redeem_for_org(&ctx, &caller, &slug, &form.code),
    )
    .await;
    match tried {
        Ok(units) => {
            let amount = page.usd(&units);
            flash(
                &session,
                page.t1("web-org-code-redeemed", "amount", &amount),
            )
            .await?;
            Ok(Redirect::to(&format!("/orgs/{slug}/wallet")).into_response())
        }
        Err((StatusCode::FORBIDDEN, _)) => {
            Err(page.failed(ServiceError::Forbidden(crate::msg!("org-admins-only"))))
        }
        Err((status, errors)) => {
            let typed = Typed {
                code: form.code,
                ..Typed::default()
            };
            let again = render(&state, page, &user, &slug, typed, errors).await?;
            Ok((status, again).into_response())
        }
    }
}

/// The exact price of a card top-up into the organisation before paying (a GET: it changes
/// nothing). A wrong amount shows the wallet again with the field marked.
pub async fn quote(
    State(state): State<AppState>,
    SignedIn { page, user }: SignedIn,
    Path(slug): Path<String>,
    Query(query): Query<QuoteQuery>,
) -> Result<Response, WebError> {
    let (view, frame) = load(&state, &page, &user, &slug, "wallet").await?;
    if !frame.manages {
        return Err(page.failed(ServiceError::Forbidden(crate::msg!("org-admins-only"))));
    }
    let quoted = service::topups::settings(&state.ctx)
        .await
        .and_then(|settings| settings.quote_text(&query.amount_usd));
    match quoted {
        Ok(quote) => {
            let target = QuoteFor {
                wallet: format!("/orgs/{}/wallet", view.slug),
                org_name: Some(view.name),
            };
            let shown = topup_page(
                page,
                quote,
                new_request_key(),
                FieldErrors::default(),
                target,
            );
            Ok(with_checkout_policy(&state, shown, StatusCode::OK))
        }
        Err(error) => {
            let errors = FieldErrors::from_service(&error, page.lang, &[]);
            let typed = Typed {
                amount_usd: query.amount_usd,
                ..Typed::default()
            };
            let again = render(&state, page, &user, &slug, typed, errors).await?;
            Ok(with_checkout_policy(
                &state,
                again,
                StatusCode::UNPROCESSABLE_ENTITY,
            ))
        }
    }
}

/// Writes the order for the organisation's wallet, makes its Checkout Session and sends the
/// payer to Stripe (303). What goes wrong is shown on the quote again.
pub async fn pay(
    State(state): State<AppState>,
    SignedIn { page, user }: SignedIn,
    Path(slug): Path<String>,
    Posted(form): Posted<PayForm>,
) -> Result<Response, WebError> {
    let base = crate::web::pages::base_url(&state);
    let started = service::topups::start_for_org(
        &state.ctx,
        &user.caller(),
        &slug,
        &form.amount_usd,
        &form.request_key,
        &base,
    )
    .await;
    let refused = match started {
        Ok(order) => return Ok(to_checkout(&order)),
        Err(error @ (ServiceError::NotFound(_) | ServiceError::Forbidden(_))) => {
            return Err(page.failed(error));
        }
        Err(error) => error,
    };
    let (view, _) = load(&state, &page, &user, &slug, "wallet").await?;
    let target = QuoteFor {
        wallet: format!("/orgs/{}/wallet", view.slug),
        org_name: Some(view.name),
    };
    match quote_again(&state, page, &form.amount_usd, &refused, target).await {
        Ok(shown) => Ok(shown),
        Err((page, errors, status)) => {
            let typed = Typed {
                amount_usd: form.amount_usd,
                ..Typed::default()
            };
            let again = render(&state, page, &user, &slug, typed, errors).await?;
            Ok(with_checkout_policy(&state, again, status))
        }
    }
}
