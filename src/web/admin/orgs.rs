//! The console's organisations: every one, found by name or slug, a page at a time, with its
//! owner, size, wallet and this period's spend; an organisation's page with its wallet's
//! ledger, teams and members, a link to its audit, and the wallet adjustment (a signed amount
//! in dollars with a required reason, applied once however often the form is sent).

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
use crate::records::ledger::Entry;
use crate::service::orgs::{self, ConsoleOrg, OrgSpend, OrgView};
use crate::service::users::QuotaChange;
use crate::service::{self, Caller, ServiceError};
use crate::state::AppState;
use crate::web::error::WebError;
use crate::web::form::{FieldErrors, Posted};
use crate::web::orgs::{budget_text, per_period, role_key, spent_key};
use crate::web::page::{Page, flash, urlencode};

/// Pages that need only an administrator.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/orgs", get(list))
        .route("/admin/orgs/{slug}", get(show))
}

/// Forms that need a sign-in within the last minutes too (see `reauth`): the wallet.
pub fn sensitive_routes() -> Router<AppState> {
    Router::new().route("/admin/orgs/{slug}/wallet", post(adjust))
}

/// Ledger rows the page shows.
const LEDGER_ROWS: i64 = 50;

#[derive(Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    page: Option<i64>,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/orgs.html")]
pub struct OrgsPage {
    page: Page,
    q: String,
    orgs: Vec<ConsoleOrg>,
    /// The previous and next pages' addresses.
    previous: Option<String>,
    next: Option<String>,
}

impl OrgsPage {
    /// "$12.00 this month".
    fn spent(&self, org: &ConsoleOrg) -> String {
        crate::i18n::text(
            self.page.lang,
            spent_in_key(org.period),
            &[("amount", &self.page.usd(&org.spent_quota))],
        )
    }
}

/// "{ $amount } this month", for a period.
fn spent_in_key(period: crate::domain::kinds::BudgetPeriod) -> &'static str {
    use crate::domain::kinds::BudgetPeriod;
    match period {
        BudgetPeriod::Daily => "admin-orgs-spent-daily",
        BudgetPeriod::Weekly => "admin-orgs-spent-weekly",
        BudgetPeriod::Monthly => "admin-orgs-spent-monthly",
        BudgetPeriod::Quarterly => "admin-orgs-spent-quarterly",
    }
}

async fn list(
    State(state): State<AppState>,
    admin: AdminPage,
    Query(query): Query<ListQuery>,
) -> Result<OrgsPage, WebError> {
    let caller = admin.caller();
    let page = admin.page;
    let number = query.page.unwrap_or(1);
    let found = orgs::console_list(&state.ctx, &caller, &query.q, number)
        .await
        .map_err(|e| page.failed(e))?;
    let q = query.q.trim().to_string();
    let address = |n: i64| {
        let mut parts = Vec::new();
        if !q.is_empty() {
            parts.push(format!("q={}", urlencode(&q)));
        }
        if n > 1 {
            parts.push(format!("page={n}"));
        }
        if parts.is_empty() {
            "/admin/orgs".to_string()
        } else {
            format!("/admin/orgs?{}", parts.join("&"))
        }
    };
    Ok(OrgsPage {
        previous: (found.page > 1).then(|| address(found.page - 1)),
        next: found.more.then(|| address(found.page + 1)),
        orgs: found.orgs,
        q,
        page,
    })
}

/// The wallet form: the field names of `POST /api/orgs/{slug}/quota`.
#[derive(Deserialize, Default, Clone)]
pub struct WalletForm {
    #[serde(default)]
    usd: String,
    #[serde(default)]
    reason: String,
    /// The form's one-time key: sent twice (a double click), it changes the wallet once.
    #[serde(default)]
    idempotency_key: String,
}

impl WalletForm {
    fn fresh() -> WalletForm {
        WalletForm {
            idempotency_key: crate::service::sessions::new_browser_id(),
            ..WalletForm::default()
        }
    }
}

/// A team as the page lists it.
pub struct TeamLine {
    name: String,
    /// "$12.00 of $500.00 this month", or empty.
    budget: String,
    /// "$50.00 a month", or empty.
    cap: String,
    members: usize,
    spent: i64,
}

/// A member as the page lists it.
pub struct MemberLine {
    user_id: i64,
    username: String,
    role: String,
    teams: String,
    spent: i64,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/org.html")]
pub struct OrgPage {
    page: Page,
    org: OrgView,
    /// "$500.00 a month", or empty.
    budget: String,
    /// "Spent this month".
    spent_label: String,
    spent: i64,
    teams: Vec<TeamLine>,
    members: Vec<MemberLine>,
    ledger: Vec<Entry>,
    /// Who made each ledger entry, by username (see `service::users::actor_names`).
    actors: std::collections::HashMap<String, String>,
    wallet: WalletForm,
    errors: FieldErrors,
}

impl OrgPage {
    /// The wallet's balance (a platform administrator always sees it).
    fn balance(&self) -> &i64 {
        self.org.quota.as_ref().unwrap_or(&0)
    }

    /// What the organisation spent in all.
    fn used_total(&self) -> &i64 {
        self.org.used_quota.as_ref().unwrap_or(&0)
    }

    fn kind(&self, entry: &Entry) -> String {
        self.page.t(crate::web::format::ledger_key(entry.kind))
    }

    /// A ledger entry's author by username where the account still exists.
    fn actor<'a>(&'a self, label: &'a str) -> &'a str {
        self.actors.get(label).map_or(label, String::as_str)
    }

    /// The console's audit log narrowed to this organisation and its teams.
    fn audit_log_href(&self) -> String {
        format!("/admin/audit?target=org:{}", self.org.id)
    }

    fn created(&self) -> String {
        super::users::local_time(&self.page, &self.org.created_at)
    }
}

/// Everything the organisation's page shows, as the administrator may see it.
async fn org_page(
    state: &AppState,
    page: Page,
    caller: &Caller,
    slug: &str,
) -> Result<OrgPage, WebError> {
    let ctx = &state.ctx;
    let fail = |e: ServiceError| page.failed(e);
    let org = orgs::show(ctx, caller, slug).await.map_err(fail)?;
    let spend: OrgSpend = orgs::spending(ctx, caller, &org.slug, None)
        .await
        .map_err(fail)?;
    let ledger = orgs::ledger(ctx, caller, &org.slug, LEDGER_ROWS)
        .await
        .map_err(fail)?;
    let actors = service::users::actor_names(ctx, caller, ledger.iter().map(|e| e.actor.as_str()))
        .await
        .map_err(fail)?;
    let period = orgs::reported_period(org.budget.as_ref());
    let teams = org
        .teams
        .iter()
        .map(|team| TeamLine {
            name: team.name.clone(),
            budget: team
                .budget
                .as_ref()
                .map(|b| budget_text(&page, b))
                .unwrap_or_default(),
            cap: match (team.member_cap_quota, team.budget.as_ref()) {
                (Some(cap), Some(b)) => per_period(&page, cap, b.period),
                _ => String::new(),
            },
            members: team.members.len(),
            spent: spend.of_team(team.id),
        })
        .collect();
    let members = org
        .members
        .iter()
        .map(|m| MemberLine {
            user_id: m.user_id,
            username: m.username.clone(),
            role: page.t(role_key(m.role)),
            teams: m.teams.join(", "),
            spent: spend.of_member(m.user_id),
        })
        .collect();
    Ok(OrgPage {
        budget: org
            .budget
            .as_ref()
            .map(|b| per_period(&page, b.quota, b.period))
            .unwrap_or_default(),
        spent_label: page.t(spent_key(period)),
        spent: spend.total,
        teams,
        members,
        ledger,
        actors,
        org,
        wallet: WalletForm::fresh(),
        errors: FieldErrors::default(),
        page,
    })
}

async fn show(
    State(state): State<AppState>,
    admin: AdminPage,
    Path(slug): Path<String>,
) -> Result<OrgPage, WebError> {
    let caller = admin.caller();
    org_page(&state, admin.page, &caller, &slug).await
}

async fn adjust(
    State(state): State<AppState>,
    session: Session,
    admin: AdminPage,
    Path(slug): Path<String>,
    Posted(form): Posted<WalletForm>,
) -> Result<Response, WebError> {
    let caller = admin.caller();
    let change = QuotaChange {
        usd: Some(form.usd.trim().to_string()),
        units: None,
        reason: Some(form.reason.clone()),
        idempotency_key: Some(form.idempotency_key.trim().to_string()).filter(|k| !k.is_empty()),
    };
    match orgs::adjust_wallet(&state.ctx, &caller, &slug, change).await {
        Ok(changed) => {
            let key = if changed.applied {
                "admin-org-wallet-adjusted"
            } else {
                "admin-org-wallet-already"
            };
            let balance = admin.page.usd(&changed.org.quota.unwrap_or_default());
            flash(&session, admin.page.t1(key, "balance", &balance)).await?;
            Ok(Redirect::to(&format!("/admin/orgs/{}", changed.org.slug)).into_response())
        }
        // A missing organisation (or a refusal) is the error page; wrong values come back on
        // the form with their fields marked and what was typed kept.
        Err(
            error @ (ServiceError::Forbidden(_) | ServiceError::NotFound(_) | ServiceError::Db(_)),
        ) => Err(admin.page.failed(error)),
        Err(error) => {
            let lang = admin.page.lang;
            let mut shown = org_page(&state, admin.page, &caller, &slug).await?;
            shown.errors =
                FieldErrors::from_service(&error, lang, &[("amount", "usd"), ("units", "usd")]);
            shown.wallet = form;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, shown).into_response())
        }
    }
}
