//! `/orgs`: the organisations a person belongs to, ownership offered to them, and making one;
//! `/orgs/{slug}`: an organisation's wallet, how long it lasts, and this period's spending
//! against each budget, per team and per member.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tower_sessions::Session;

use super::{Bar, OrgFrame, given, load, role_key};
use crate::service::orgs::{self, CreateOrg, OrgSummary, OwnershipOffer};
use crate::service::sessions::Viewer;
use crate::state::AppState;
use crate::web::error::WebError;
use crate::web::form::{FieldErrors, Posted};
use crate::web::page::{Page, SignedIn};

/// The choices of a budget's period: (value, text key).
pub const BUDGET_PERIODS: [(&str, &str); 5] = [
    ("", "web-org-budget-none"),
    ("daily", "web-budget-daily"),
    ("weekly", "web-budget-weekly"),
    ("monthly", "web-budget-monthly"),
    ("quarterly", "web-budget-quarterly"),
];

#[derive(Deserialize, Default, Clone)]
pub struct OrgForm {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub slug: String,
    #[serde(default)]
    pub timezone: String,
    #[serde(default)]
    pub budget_usd: String,
    #[serde(default)]
    pub budget_period: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "orgs/list.html")]
pub struct ListPage {
    page: Page,
    /// Whether the list is shown (`/orgs`), or the form alone (`/orgs/new`).
    with_list: bool,
    orgs: Vec<OrgSummary>,
    offers: Vec<OwnershipOffer>,
    form: OrgForm,
    errors: FieldErrors,
    budget_periods: &'static [(&'static str, &'static str)],
    /// The site's zone, the default of a new organisation's.
    site_zone: String,
}

impl ListPage {
    /// "Alice offers you Acme: accept to own it."
    fn offer_text(&self, offer: &OwnershipOffer) -> String {
        match &offer.owner {
            Some(owner) => crate::i18n::text(
                self.page.lang,
                "web-org-offer-from",
                &[("owner", owner), ("name", &offer.name)],
            ),
            None => self.page.t1("web-org-offer", "name", &offer.name),
        }
    }

    fn role(&self, org: &OrgSummary) -> String {
        org.role
            .map(|r| self.page.t(role_key(r)))
            .unwrap_or_default()
    }
}

async fn render(
    state: &AppState,
    page: Page,
    user: &Viewer,
    with_list: bool,
    form: OrgForm,
    errors: FieldErrors,
) -> Result<ListPage, WebError> {
    let caller = user.caller();
    let (orgs, offers) = if with_list {
        let orgs = orgs::list_mine(&state.ctx, &caller)
            .await
            .map_err(|e| page.failed(e))?;
        let offers = orgs::offers_to_me(&state.ctx, &caller)
            .await
            .map_err(|e| page.failed(e))?;
        (orgs, offers)
    } else {
        (Vec::new(), Vec::new())
    };
    let site_zone = page.calendar.zone_name().to_string();
    Ok(ListPage {
        page,
        with_list,
        orgs,
        offers,
        form,
        errors,
        budget_periods: &BUDGET_PERIODS,
        site_zone,
    })
}

pub async fn list(
    State(state): State<AppState>,
    SignedIn { page, user }: SignedIn,
) -> Result<Response, WebError> {
    let shown = render(
        &state,
        page,
        &user,
        true,
        OrgForm::default(),
        FieldErrors::default(),
    )
    .await?;
    Ok(shown.into_response())
}

pub async fn new_form(
    State(state): State<AppState>,
    SignedIn { page, user }: SignedIn,
) -> Result<Response, WebError> {
    let shown = render(
        &state,
        page,
        &user,
        false,
        OrgForm::default(),
        FieldErrors::default(),
    )
    .await?;
    Ok(shown.into_response())
}

async fn create_in(
    state: &AppState,
    session: &Session,
    page: Page,
    user: &Viewer,
    form: OrgForm,
    with_list: bool,
) -> Result<Response, WebError> {
    let input = CreateOrg {
        name: form.name.trim().to_string(),
        slug: form.slug.trim().to_string(),
        owner: None,
        timezone: given(&form.timezone),
        budget_period: given(&form.budget_period),
        budget_usd: given(&form.budget_usd),
        group: None,
    };
    match orgs::create(&state.ctx, &user.caller(), input).await {
        Ok(org) => {
            super::done(
                session,
                &page,
                "web-org-created",
                &format!("/orgs/{}", org.slug),
            )
            .await
        }
        Err(error) => {
            let status = match &error {
                crate::service::ServiceError::Forbidden(_) => StatusCode::FORBIDDEN,
                crate::service::ServiceError::Conflict { .. } => StatusCode::CONFLICT,
                _ => StatusCode::UNPROCESSABLE_ENTITY,
            };
            let errors = FieldErrors::from_service(&error, page.lang, &[]);
            let shown = render(state, page, user, with_list, form, errors).await?;
            Ok((status, shown).into_response())
        }
    }
}

/// The form on `/orgs`: a mistake comes back there, with the list.
pub async fn create_from_list(
    State(state): State<AppState>,
    session: Session,
    SignedIn { page, user }: SignedIn,
    Posted(form): Posted<OrgForm>,
) -> Result<Response, WebError> {
    create_in(&state, &session, page, &user, form, true).await
}

/// The form on `/orgs/new`: a mistake comes back there, alone.
pub async fn create(
    State(state): State<AppState>,
    session: Session,
    SignedIn { page, user }: SignedIn,
    Posted(form): Posted<OrgForm>,
) -> Result<Response, WebError> {
    create_in(&state, &session, page, &user, form, false).await
}

/// A row of a spending table: who or what, what they spent this period, and their budget.
pub struct SpendRow {
    pub label: String,
    pub href: String,
    pub spent: i64,
    /// "$12.00 of $50.00 this month", or empty without a budget or cap.
    pub budget: String,
    pub state: &'static str,
}

#[derive(Template, WebTemplate)]
#[template(path = "orgs/overview.html")]
pub struct OverviewPage {
    page: Page,
    frame: OrgFrame,
    balance: i64,
    /// "About 12 days at the last 7 days' rate", or why it cannot say.
    runway: String,
    spent_label: String,
    spent: i64,
    period_start: String,
    zone: String,
    bars: Vec<Bar>,
    teams: Vec<SpendRow>,
    members: Vec<SpendRow>,
    /// For admins: teams and members at 80 % of their budget or more.
    watch: Vec<SpendRow>,
    /// Ownership offered to the reader.
    offered_to_me: bool,
    owner: String,
}

/// How many days the balance lasts at the recent rate, in words.
fn runway(page: &Page, balance: i64, recent: i64) -> String {
    if balance <= 0 {
        return page.t("web-org-runway-empty");
    }
    if recent <= 0 {
        return page.t("web-org-runway-unknown");
    }
    let days = i128::from(balance) * i128::from(orgs::RECENT_DAYS) / i128::from(recent);
    let days = i64::try_from(days).unwrap_or(i64::MAX);
    if days < 1 {
        page.t("web-org-runway-under-a-day")
    } else {
        page.tn("web-org-runway-days", days)
    }
}

pub async fn show(
    State(state): State<AppState>,
    SignedIn { page, user }: SignedIn,
    Path(slug): Path<String>,
) -> Result<Response, WebError> {
    let (view, frame) = load(&state, &page, &user, &slug, "overview").await?;
    let spend = orgs::spending(&state.ctx, &user.caller(), &view.slug, None)
        .await
        .map_err(|e| page.failed(e))?;
    let period = orgs::reported_period(view.budget.as_ref());
    let mut bars = Vec::new();
    if let Some(budget) = &view.budget {
        bars.push(super::bar(
            &page,
            page.t("web-org-budget-whole"),
            String::new(),
            budget,
        ));
    }
    for team in &view.teams {
        if let Some(budget) = &team.budget {
            bars.push(super::bar(
                &page,
                team.name.clone(),
                format!("/orgs/{}/teams/{}", view.slug, team.id),
                budget,
            ));
        }
    }
    let mut teams: Vec<SpendRow> = view
        .teams
        .iter()
        .map(|team| SpendRow {
            label: team.name.clone(),
            href: format!("/orgs/{}/teams/{}", view.slug, team.id),
            spent: spend.of_team(team.id),
            budget: team
                .budget
                .as_ref()
                .map(|b| super::budget_text(&page, b))
                .unwrap_or_default(),
            state: team
                .budget
                .as_ref()
                .map_or("ok", |b| super::state_of(b.spent_quota, b.quota)),
        })
        .collect();
    teams.sort_by(|a, b| b.spent.cmp(&a.spent).then(a.label.cmp(&b.label)));
    let mut members: Vec<SpendRow> = view
        .members
        .iter()
        .map(|m| SpendRow {
            label: m.username.clone(),
            href: String::new(),
            spent: spend.of_member(m.user_id),
            budget: String::new(),
            state: "ok",
        })
        .collect();
    members.sort_by(|a, b| b.spent.cmp(&a.spent).then(a.label.cmp(&b.label)));
    let mut watch = Vec::new();
    if frame.manages {
        for team in &view.teams {
            let href = format!("/orgs/{}/teams/{}", view.slug, team.id);
            if let Some(b) = &team.budget
                && super::state_of(b.spent_quota, b.quota) != "ok"
            {
                watch.push(SpendRow {
                    label: page.t1("web-org-watch-team", "team", &team.name),
                    href: href.clone(),
                    spent: b.spent_quota,
                    budget: super::budget_text(&page, b),
                    state: super::state_of(b.spent_quota, b.quota),
                });
            }
            for m in &team.members {
                if let Some(cap) = &m.cap
                    && super::state_of(cap.spent_quota, cap.quota) != "ok"
                {
                    watch.push(SpendRow {
                        label: crate::i18n::text(
                            page.lang,
                            "web-org-watch-member",
                            &[("name", &m.username), ("team", &team.name)],
                        ),
                        href: href.clone(),
                        spent: cap.spent_quota,
                        budget: super::budget_text(&page, cap),
                        state: super::state_of(cap.spent_quota, cap.quota),
                    });
                }
            }
        }
    }
    let offered_to_me = view.pending_owner.as_deref() == Some(user.username.as_str());
    let zone = view.effective_timezone.clone();
    let calendar = crate::domain::calendar::SiteCalendar::new(&zone);
    Ok(OverviewPage {
        runway: runway(&page, view.quota, spend.recent),
        spent_label: page.t(super::spent_key(period)),
        spent: spend.total,
        period_start: calendar
            .local_time(spend.period_start)
            .chars()
            .take(10)
            .collect(),
        zone,
        balance: view.quota,
        bars,
        teams,
        members,
        watch,
        offered_to_me,
        owner: view.owner.clone().unwrap_or_default(),
        frame,
        page,
    }
    .into_response())
}
