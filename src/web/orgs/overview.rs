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
use crate::service::org_usage::{self, ModelSpend};
use crate::service::orgs::{
    self, CreateOrg, OrgSummary, OrgView, OwnershipOffer, Sight, TeamMemberView, TeamView,
};
use crate::service::sessions::Viewer;
use crate::state::AppState;
use crate::web::error::WebError;
use crate::web::form::{FieldErrors, Posted};
use crate::web::logs::LogLine;
use crate::web::page::{Page, SignedIn};

/// Requests listed under "latest".
const LATEST_SHOWN: i64 = 10;

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
    /// The wallet's balance, for those who see it (the owner and admins).
    balance: Option<i64>,
    /// "About 12 days at the last 7 days' rate", or why it cannot say.
    runway: String,
    spent_label: String,
    spent: i64,
    period_start: String,
    zone: String,
    bars: Vec<Bar>,
    /// The teams whose spending the reader sees: every team, or theirs.
    teams_title: String,
    teams: Vec<SpendRow>,
    /// The members whose spending the reader sees (none for a member: theirs is per team).
    members: Vec<SpendRow>,
    show_members: bool,
    /// For admins: teams and members at 80 % of their budget or more.
    watch: Vec<SpendRow>,
    /// Ownership offered to the reader.
    offered_to_me: bool,
    owner: String,
    /// What each model cost this month, of what the reader sees.
    models: Vec<ModelSpend>,
    /// The latest requests the reader sees.
    lines: Vec<LogLine>,
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

/// The reader's membership of a team, when they are in it.
fn member_of(team: &TeamView, user_id: i64) -> Option<&TeamMemberView> {
    team.members.iter().find(|m| m.user_id == user_id)
}

/// The budgets near or over their limit, for those who manage the organisation.
fn watch_list(page: &Page, view: &OrgView) -> Vec<SpendRow> {
    let mut watch = Vec::new();
    for team in &view.teams {
        let href = format!("/orgs/{}/teams/{}", view.slug, team.id);
        if let Some(b) = &team.budget
            && super::state_of(b.spent_quota, b.quota) != "ok"
        {
            watch.push(SpendRow {
                label: page.t1("web-org-watch-team", "team", &team.name),
                href: href.clone(),
                spent: b.spent_quota,
                budget: super::budget_text(page, b),
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
                    budget: super::budget_text(page, cap),
                    state: super::state_of(cap.spent_quota, cap.quota),
                });
            }
        }
    }
    watch
}

/// What the reader sees of the organisation: admins and the owner all of it; a team's
/// manager their teams' members; a member what they spent in each of their teams, against
/// their cap and the team's budget. The service already left out what they may not see
/// (`Sight`); this page picks the rows that are theirs.
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
    let sight = spend.sight;
    let whole = sight == Sight::Whole;
    let manages = |team: &TeamView| whole || view.managed_teams.contains(&team.id);
    let shown: Vec<&TeamView> = view
        .teams
        .iter()
        .filter(|team| manages(team) || member_of(team, user.id).is_some())
        .collect();
    let team_href = |team: &TeamView| format!("/orgs/{}/teams/{}", view.slug, team.id);

    let mut bars = Vec::new();
    if whole && let Some(budget) = &view.budget {
        bars.push(super::bar(
            &page,
            page.t("web-org-budget-whole"),
            String::new(),
            budget,
        ));
    }
    for team in &shown {
        if let Some(budget) = &team.budget {
            bars.push(super::bar(
                &page,
                team.name.clone(),
                team_href(team),
                budget,
            ));
        }
    }
    // A member's own cap in the teams they do not manage: the budget that binds them first.
    for team in shown.iter().filter(|team| !manages(team)) {
        if let Some(cap) = member_of(team, user.id).and_then(|m| m.cap.as_ref()) {
            let label = page.t1("web-org-cap-yours-in", "team", &team.name);
            bars.push(super::bar(&page, label, team_href(team), cap));
        }
    }

    let mut teams: Vec<SpendRow> = shown
        .iter()
        .map(|team| {
            // A team they manage reads whole, with its budget; another, as their own line
            // against their cap.
            let budget = if manages(team) {
                team.budget.as_ref()
            } else {
                member_of(team, user.id).and_then(|m| m.cap.as_ref())
            };
            let text = budget
                .map(|b| super::budget_text(&page, b))
                .unwrap_or_default();
            SpendRow {
                label: team.name.clone(),
                href: team_href(team),
                spent: spend.of_team(team.id),
                budget: if manages(team) || text.is_empty() {
                    text
                } else {
                    page.t1("web-org-cap-yours", "budget", &text)
                },
                state: budget.map_or("ok", |b| super::state_of(b.spent_quota, b.quota)),
            }
        })
        .collect();
    teams.sort_by(|a, b| b.spent.cmp(&a.spent).then(a.label.cmp(&b.label)));

    let mut members: Vec<SpendRow> = match sight {
        Sight::Whole => view
            .members
            .iter()
            .map(|m| (m.user_id, m.username.clone(), spend.of_member(m.user_id)))
            .collect(),
        Sight::Teams => {
            // The members of the teams they manage, with what they spent in those teams.
            let managed: Vec<&&TeamView> = shown.iter().filter(|team| manages(team)).collect();
            let mut rows: Vec<(i64, String, i64)> = Vec::new();
            for team in &managed {
                for m in &team.members {
                    if rows.iter().all(|(id, _, _)| *id != m.user_id) {
                        let spent = managed
                            .iter()
                            .map(|t| spend.of_team_member(t.id, m.user_id))
                            .sum();
                        rows.push((m.user_id, m.username.clone(), spent));
                    }
                }
            }
            rows
        }
        Sight::Own => Vec::new(),
    }
    .into_iter()
    .map(|(_, label, spent)| SpendRow {
        label,
        href: String::new(),
        spent,
        budget: String::new(),
        state: "ok",
    })
    .collect();
    members.sort_by(|a, b| b.spent.cmp(&a.spent).then(a.label.cmp(&b.label)));

    let watch = if frame.manages {
        watch_list(&page, &view)
    } else {
        Vec::new()
    };
    let period_word = period.as_str();
    let (spent, spent_label) = match sight {
        Sight::Whole => (spend.total, page.t(super::spent_key(period))),
        Sight::Teams => (
            shown
                .iter()
                .filter(|team| manages(team))
                .map(|team| spend.of_team(team.id))
                .sum(),
            page.t1("web-org-spent-your-teams", "period", period_word),
        ),
        Sight::Own => (
            spend.total,
            page.t1("web-org-spent-yours", "period", period_word),
        ),
    };
    let teams_title = if sight == Sight::Own {
        page.t("web-org-spend-teams-yours")
    } else {
        page.t("web-org-spend-teams")
    };
    let activity = org_usage::activity(&state.ctx, &user.caller(), &view.slug, LATEST_SHOWN)
        .await
        .map_err(|e| page.failed(e))?;
    let offered_to_me = view.pending_owner.as_deref() == Some(user.username.as_str());
    let zone = view.effective_timezone.clone();
    let calendar = crate::domain::calendar::SiteCalendar::new(&zone);
    Ok(OverviewPage {
        runway: view
            .quota
            .map(|balance| runway(&page, balance, spend.recent))
            .unwrap_or_default(),
        spent_label,
        spent,
        period_start: calendar
            .local_time(spend.period_start)
            .chars()
            .take(10)
            .collect(),
        zone,
        balance: view.quota,
        bars,
        teams_title,
        teams,
        members,
        show_members: sight != Sight::Own,
        watch,
        offered_to_me,
        owner: view.owner.clone().unwrap_or_default(),
        models: activity.models,
        lines: crate::web::logs::lines(&page, &activity.latest),
        frame,
        page,
    }
    .into_response())
}
