//! The console's users: find an account by name, email or id; see its balance, spend, keys,
//! requests, ledger, orders, sign-in identities and sessions (and end them); change its group,
//! status and (root only) role; change its balance with a reason.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use tower_sessions::Session;

use super::AdminPage;
use crate::service::logs::LogQuery;
use crate::service::oauth::IdentityView;
use crate::service::rate_limits::{RateLimitInput, editable};
use crate::service::users::{QuotaChange, UpdateUser};
use crate::service::views::{
    LedgerEntryView, LogView, OrderView, SessionView, TokenView, UserView,
};
use crate::service::{self, Caller, ServiceError};
use crate::state::AppState;
use crate::web::error::WebError;
use crate::web::form::{FieldErrors, Posted};
use crate::web::page::{Page, flash, urlencode};

/// Pages and forms that need only an administrator.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/users", get(list))
        .route("/admin/users/{id}", get(show).post(edit))
        .route("/admin/users/{id}/sessions/end", post(end_sessions))
}

/// Forms that need a sign-in within the last minutes too (see `reauth`).
pub fn sensitive_routes() -> Router<AppState> {
    Router::new()
        .route("/admin/users/{id}/role", post(change_role))
        .route("/admin/users/{id}/balance", post(change_balance))
}

/// A time a view gives (RFC 3339) on the site's clock; the text as given when unreadable.
pub(super) fn local_time(page: &Page, text: &str) -> String {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map(|at| {
            let ms = i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
            page.time(&ms)
        })
        .unwrap_or_else(|_| text.to_string())
}

/// An account's status or role in the reader's words.
pub(super) fn word(page: &Page, value: &str) -> String {
    let key = match value {
        "active" => "admin-people-status-active",
        "disabled" => "admin-people-status-disabled",
        "user" => "admin-people-role-user",
        "admin" => "admin-people-role-admin",
        "root" => "admin-people-role-root",
        other => return other.to_string(),
    };
    page.t(key)
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/users.html")]
pub struct UsersPage {
    page: Page,
    q: String,
    users: Vec<UserView>,
    limit: i64,
}

impl UsersPage {
    fn at(&self, text: &str) -> String {
        local_time(&self.page, text)
    }

    fn word(&self, value: &str) -> String {
        word(&self.page, value)
    }
}

#[derive(Deserialize, Default)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
}

async fn list(
    State(state): State<AppState>,
    admin: AdminPage,
    Query(query): Query<SearchQuery>,
) -> Result<UsersPage, WebError> {
    let caller = admin.caller();
    let page = admin.page;
    let users = service::users::search(&state.ctx, &caller, &query.q)
        .await
        .map_err(|e| page.failed(e))?;
    let qpu = page.quota_per_usd;
    Ok(UsersPage {
        q: query.q.trim().to_string(),
        users: users.iter().map(|u| UserView::new(u, qpu)).collect(),
        limit: service::users::SEARCH_LIMIT,
        page,
    })
}

/// What the edit form holds: the account's group, status, display name and rate limits.
#[derive(Deserialize, Default, Clone)]
pub struct EditForm {
    #[serde(default)]
    group: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    display_name: String,
    /// Rate limits on all of the account's keys together: whole numbers, empty for none.
    #[serde(default)]
    rpm: String,
    #[serde(default)]
    tpm: String,
    #[serde(default)]
    max_concurrent: String,
}

#[derive(Deserialize, Default, Clone)]
pub struct RoleForm {
    #[serde(default)]
    role: String,
}

/// A balance change: the field names of `POST /api/users/{username}/quota`.
#[derive(Deserialize, Default, Clone)]
pub struct BalanceForm {
    #[serde(default)]
    usd: String,
    #[serde(default)]
    reason: String,
    /// The form's one-time key: sent twice (a double click), it changes the balance once.
    #[serde(default)]
    idempotency_key: String,
}

impl BalanceForm {
    fn fresh() -> BalanceForm {
        BalanceForm {
            idempotency_key: crate::service::sessions::new_browser_id(),
            ..BalanceForm::default()
        }
    }
}

/// Which of the page's forms came back with problems (its summary shows there).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Failed {
    None,
    Edit,
    Role,
    Balance,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/user.html")]
pub struct UserPage {
    page: Page,
    user: UserView,
    is_root: bool,
    today_usd: String,
    month_usd: String,
    today_requests: i64,
    month_requests: i64,
    keys: Vec<TokenView>,
    logs: Vec<LogView>,
    ledger: Vec<LedgerEntryView>,
    /// Who made each ledger entry, by username (see `service::users::actor_names`).
    actors: std::collections::HashMap<String, String>,
    orders: Vec<OrderView>,
    identities: Vec<IdentityView>,
    sessions: Vec<SessionView>,
    groups: Vec<String>,
    edit: EditForm,
    role: RoleForm,
    balance: BalanceForm,
    errors: FieldErrors,
    failed: Failed,
}

impl UserPage {
    fn at(&self, text: &str) -> String {
        local_time(&self.page, text)
    }

    fn usd(&self, units: &i64) -> String {
        self.page.usd(units)
    }

    fn word(&self, value: &str) -> String {
        word(&self.page, value)
    }

    fn kind(&self, entry: &LedgerEntryView) -> String {
        self.page.t(crate::web::format::ledger_key(entry.kind))
    }

    /// A ledger entry's author by username where the account still exists.
    fn actor<'a>(&'a self, label: &'a str) -> &'a str {
        self.actors.get(label).map_or(label, String::as_str)
    }

    /// The console's logs filtered to this account.
    fn all_requests_href(&self) -> String {
        format!("/admin/logs?user={}", urlencode(&self.user.username))
    }

    fn outcome(&self, log: &LogView) -> String {
        self.page.t(crate::web::format::outcome_key(log.outcome))
    }

    fn order_status(&self, order: &OrderView) -> String {
        self.page.t(super::orders::status_key(order.status))
    }

    fn device(&self, session: &SessionView) -> String {
        crate::web::format::device(&session.user_agent)
    }

    fn failed_is(&self, form: &str) -> bool {
        matches!(
            (self.failed, form),
            (Failed::Edit, "edit") | (Failed::Role, "role") | (Failed::Balance, "balance")
        )
    }
}

/// Everything the user's page shows, as `caller` may see it.
async fn user_page(
    state: &AppState,
    page: Page,
    caller: &Caller,
    is_root: bool,
    id: i64,
) -> Result<UserPage, WebError> {
    let ctx = &state.ctx;
    let fail = |e: ServiceError| page.failed(e);
    let user = service::users::by_id(ctx, caller, id).await.map_err(fail)?;
    let name = user.username.clone();
    let qpu = page.quota_per_usd;
    let usage = service::usage::summary(ctx, caller, id, crate::clock::now_ms())
        .await
        .map_err(fail)?;
    let keys = service::tokens::list_for_user(ctx, caller, &name)
        .await
        .map_err(fail)?;
    let (logs, _) = service::logs::query(
        ctx,
        caller,
        LogQuery {
            username: Some(name.clone()),
            limit: Some(RECENT),
            ..LogQuery::default()
        },
    )
    .await
    .map_err(fail)?;
    let ledger = service::ledger::entries(ctx, caller, &name, RECENT)
        .await
        .map_err(fail)?;
    let actors = service::users::actor_names(ctx, caller, ledger.iter().map(|e| e.actor.as_str()))
        .await
        .map_err(fail)?;
    let orders = service::topups::list(ctx, caller, Some(&name), None, RECENT)
        .await
        .map_err(fail)?;
    let identities = service::oauth::identities_of(ctx, caller, &name)
        .await
        .map_err(fail)?;
    let sessions = service::sessions::list_of(ctx, caller, &name)
        .await
        .map_err(fail)?;
    let groups = service::groups::list(ctx, caller)
        .await
        .map_err(fail)?
        .into_iter()
        .map(|g| g.name)
        .collect();
    let edit = EditForm {
        group: user.group.clone(),
        status: user.status.as_str().to_string(),
        display_name: user.display_name.clone(),
        rpm: editable(user.rate_limits.rpm),
        tpm: editable(user.rate_limits.tpm),
        max_concurrent: editable(user.rate_limits.max_concurrent),
    };
    let role = RoleForm {
        role: user.role.as_str().to_string(),
    };
    Ok(UserPage {
        today_usd: page.usd(&usage.today.cost),
        month_usd: page.usd(&usage.month.cost),
        today_requests: usage.today.requests,
        month_requests: usage.month.requests,
        user: UserView::new(&user, qpu),
        is_root,
        keys: keys.iter().map(|t| TokenView::new(t, qpu)).collect(),
        logs: logs.iter().map(|l| LogView::new(l, qpu)).collect(),
        ledger: ledger
            .iter()
            .map(|e| LedgerEntryView::new(e, qpu))
            .collect(),
        actors,
        orders: orders.iter().map(|o| OrderView::new(o, qpu)).collect(),
        identities,
        sessions: sessions.iter().map(SessionView::new).collect(),
        groups,
        edit,
        role,
        balance: BalanceForm::fresh(),
        errors: FieldErrors::default(),
        failed: Failed::None,
        page,
    })
}

/// Rows of each recent list the page shows.
const RECENT: i64 = 20;

async fn show(
    State(state): State<AppState>,
    admin: AdminPage,
    Path(id): Path<i64>,
) -> Result<UserPage, WebError> {
    let (caller, is_root) = (admin.caller(), admin.is_root());
    user_page(&state, admin.page, &caller, is_root, id).await
}

/// The account's username, for the services (which take names, as `/api` does).
async fn username_of(
    state: &AppState,
    page: &Page,
    caller: &Caller,
    id: i64,
) -> Result<String, WebError> {
    Ok(service::users::by_id(&state.ctx, caller, id)
        .await
        .map_err(|e| page.failed(e))?
        .username)
}

/// After a change: back to the account's page, with what happened.
async fn done(session: &Session, id: i64, text: String) -> Result<Response, WebError> {
    flash(session, text).await?;
    Ok(Redirect::to(&format!("/admin/users/{id}")).into_response())
}

/// The page again, with a form's problems: 422 for wrong values; other refusals (403 for
/// what only root may do, 404) are the error page.
async fn again(
    state: &AppState,
    admin: AdminPage,
    id: i64,
    error: ServiceError,
    fill: impl FnOnce(&mut UserPage),
) -> Result<Response, WebError> {
    if matches!(
        error,
        ServiceError::Forbidden(_) | ServiceError::NotFound(_)
    ) {
        return Err(admin.page.failed(error));
    }
    let (caller, is_root) = (admin.caller(), admin.is_root());
    let lang = admin.page.lang;
    let mut page = user_page(state, admin.page, &caller, is_root, id).await?;
    page.errors = FieldErrors::from_service(&error, lang, &[("amount", "usd"), ("units", "usd")]);
    fill(&mut page);
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
}

fn blank(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

async fn edit(
    State(state): State<AppState>,
    session: Session,
    admin: AdminPage,
    Path(id): Path<i64>,
    Posted(form): Posted<EditForm>,
) -> Result<Response, WebError> {
    let caller = admin.caller();
    let username = username_of(&state, &admin.page, &caller, id).await?;
    let change = UpdateUser {
        group: blank(&form.group),
        status: blank(&form.status),
        // A display name cannot be emptied (the service refuses an empty one): empty keeps it.
        display_name: blank(&form.display_name),
        rate_limits: RateLimitInput {
            rpm: Some(form.rpm.trim().to_string()),
            tpm: Some(form.tpm.trim().to_string()),
            max_concurrent: Some(form.max_concurrent.trim().to_string()),
        },
        ..UpdateUser::default()
    };
    save_account(&state, &session, admin, id, &username, change, |page| {
        page.edit = form;
        page.failed = Failed::Edit;
    })
    .await
}

async fn change_role(
    State(state): State<AppState>,
    session: Session,
    admin: AdminPage,
    Path(id): Path<i64>,
    Posted(form): Posted<RoleForm>,
) -> Result<Response, WebError> {
    let caller = admin.caller();
    let username = username_of(&state, &admin.page, &caller, id).await?;
    let change = UpdateUser {
        role: Some(form.role.trim().to_string()),
        ..UpdateUser::default()
    };
    save_account(&state, &session, admin, id, &username, change, |page| {
        page.role = form;
        page.failed = Failed::Role;
    })
    .await
}

/// Saves a change to the account and says so; or the page again with the form that failed
/// (`fill` puts back what was typed).
async fn save_account(
    state: &AppState,
    session: &Session,
    admin: AdminPage,
    id: i64,
    username: &str,
    change: UpdateUser,
    fill: impl FnOnce(&mut UserPage),
) -> Result<Response, WebError> {
    match service::users::update(&state.ctx, &admin.caller(), username, change).await {
        Ok(user) => {
            let text = admin.page.t1("admin-user-saved", "name", &user.username);
            done(session, id, text).await
        }
        Err(error) => again(state, admin, id, error, fill).await,
    }
}

async fn change_balance(
    State(state): State<AppState>,
    session: Session,
    admin: AdminPage,
    Path(id): Path<i64>,
    Posted(form): Posted<BalanceForm>,
) -> Result<Response, WebError> {
    let caller = admin.caller();
    let username = username_of(&state, &admin.page, &caller, id).await?;
    let change = QuotaChange {
        usd: Some(form.usd.trim().to_string()),
        units: None,
        reason: Some(form.reason.clone()),
        idempotency_key: blank(&form.idempotency_key),
    };
    match service::users::change_quota(&state.ctx, &caller, &username, change).await {
        Ok(changed) => {
            let balance = admin.page.usd(&changed.user.quota);
            let key = if changed.applied {
                "admin-balance-changed"
            } else {
                "admin-balance-already-changed"
            };
            let text = admin.page.t1(key, "balance", &balance);
            done(&session, id, text).await
        }
        Err(error) => {
            again(&state, admin, id, error, |page| {
                page.balance = form;
                page.failed = Failed::Balance;
            })
            .await
        }
    }
}

#[derive(Deserialize, Default)]
pub struct EndForm {
    /// The session to end; empty ends them all.
    #[serde(default)]
    id: String,
}

async fn end_sessions(
    State(state): State<AppState>,
    session: Session,
    admin: AdminPage,
    Path(id): Path<i64>,
    Posted(form): Posted<EndForm>,
) -> Result<Response, WebError> {
    let caller = admin.caller();
    let username = username_of(&state, &admin.page, &caller, id).await?;
    let which = blank(&form.id);
    let ended = service::sessions::end_of(&state.ctx, &caller, &username, which.as_deref())
        .await
        .map_err(|e| admin.page.failed(e))?;
    let text = admin
        .page
        .t1("admin-sessions-ended", "count", &ended.to_string());
    done(&session, id, text).await
}
