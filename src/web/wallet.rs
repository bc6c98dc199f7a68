//! The wallet: the balance, the ledger's history of this account, and redeeming a code.

use std::net::SocketAddr;
use std::sync::Arc;

use askama::Template;
use askama_web::WebTemplate;
use axum::Extension;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;

use super::error::WebError;
use super::form::{FieldErrors, Posted};
use super::limits::{self, Limiter};
use super::page::{Page, SignedIn, flash};
use super::signing::ip_of;
use crate::db::ledger::Entry;
use crate::db::users::UserRow;
use crate::service::{self, Caller};
use crate::state::AppState;

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
}

/// The invite link of an account with a code.
pub fn invite_link(state: &AppState, user: &UserRow) -> Option<String> {
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
    fn when(&self, entry: &Entry) -> String {
        super::format::minute(entry.created_at)
    }

    fn kind(&self, entry: &Entry) -> String {
        self.page.t(super::format::ledger_key(entry.kind))
    }
}

async fn render(
    state: &AppState,
    page: Page,
    user: &UserRow,
    code: String,
    errors: FieldErrors,
) -> Result<WalletPage, WebError> {
    let entries = service::ledger::entries(&state.ctx, &Caller::User(user.id), &user.username, 100)
        .await
        .map_err(|e| WebError::internal(page.lang, &e))?;
    Ok(WalletPage {
        balance: user.quota,
        entries,
        invite_link: invite_link(state, user),
        invite_terms: invite_terms(state, &page),
        page,
        code,
        errors,
    })
}

pub async fn show(
    State(state): State<AppState>,
    SignedIn { page, user }: SignedIn,
) -> Result<Response, WebError> {
    Ok(
        render(&state, page, &user, String::new(), FieldErrors::default())
            .await?
            .into_response(),
    )
}

#[derive(Deserialize)]
pub struct RedeemForm {
    #[serde(default)]
    code: String,
}

/// Redeems a code. Wrong codes are counted per account and per address, so codes cannot be
/// guessed; a code that works is not counted.
pub async fn redeem(
    State(state): State<AppState>,
    Extension(limiter): Extension<Arc<Limiter>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    session: Session,
    SignedIn { page, user }: SignedIn,
    Posted(form): Posted<RedeemForm>,
) -> Result<Response, WebError> {
    let ip = ip_of(&state, peer, &headers);
    let account = user.id.to_string();
    if !limiter.would_allow(limits::REDEEM_FAILURES_PER_IP, &ip)
        || !limiter.would_allow(limits::REDEEM_FAILURES_PER_ACCOUNT, &account)
    {
        let errors = FieldErrors::too_many_attempts(page.lang);
        let again = render(&state, page, &user, form.code, errors).await?;
        return Ok((StatusCode::TOO_MANY_REQUESTS, again).into_response());
    }
    match service::codes::redeem(&state.ctx, user.id, &form.code).await {
        Ok(units) => {
            let amount = page.usd(&units);
            flash(&session, page.t1("web-code-redeemed", "amount", &amount)).await?;
            Ok(Redirect::to("/wallet").into_response())
        }
        Err(error) => {
            limiter.allow(limits::REDEEM_FAILURES_PER_IP, &ip);
            limiter.allow(limits::REDEEM_FAILURES_PER_ACCOUNT, &account);
            let errors = FieldErrors::from_service(&error, page.lang, &[]);
            let again = render(&state, page, &user, form.code, errors).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, again).into_response())
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
        .map_err(|e| WebError::internal(page.lang, &e))?;
    Ok(Redirect::to("/wallet#invite").into_response())
}
