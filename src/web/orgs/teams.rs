//! An organisation's teams: the list with each budget and a form to make one (admins), and a
//! team's page: its settings (admins), its members with their caps and this period's spend,
//! adding a member, a member's own cap or the team's, taking one out, and deleting the team
//! after a page that names the keys that stop.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tower_sessions::Session;

use super::overview::BUDGET_PERIODS;
use super::{OrgFrame, done, load};
use crate::service::ServiceError;
use crate::service::orgs::{self, OrgView, TeamInput, TeamKey, TeamMemberInput, TeamView};
use crate::service::sessions::Viewer;
use crate::state::AppState;
use crate::web::error::WebError;
use crate::web::form::{FieldErrors, Posted};
use crate::web::format;
use crate::web::page::{Page, SignedIn};

#[derive(Deserialize, Default, Clone)]
pub struct TeamForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    budget_usd: String,
    #[serde(default)]
    budget_period: String,
    #[serde(default)]
    member_cap_usd: String,
}

impl TeamForm {
    fn of(team: &TeamView, quota_per_usd: i64) -> TeamForm {
        TeamForm {
            name: team.name.clone(),
            budget_usd: team
                .budget
                .as_ref()
                .map(|b| format::editable_usd(b.quota, quota_per_usd))
                .unwrap_or_default(),
            budget_period: team
                .budget
                .as_ref()
                .map(|b| b.period.as_str().to_string())
                .unwrap_or_default(),
            member_cap_usd: team
                .member_cap_quota
                .map(|q| format::editable_usd(q, quota_per_usd))
                .unwrap_or_default(),
        }
    }

    fn input(&self) -> TeamInput {
        TeamInput {
            name: Some(self.name.trim().to_string()),
            budget_period: Some(self.budget_period.trim().to_string()),
            budget_usd: Some(self.budget_usd.trim().to_string()),
            member_cap_usd: Some(self.member_cap_usd.trim().to_string()),
            groups: None,
        }
    }
}

/// A team in the list.
pub struct TeamLine {
    id: i64,
    name: String,
    members: usize,
    /// "$12.00 of $500.00 this month", or empty.
    budget: String,
    state: &'static str,
    /// "$50.00 a month", or empty.
    cap: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "orgs/teams.html")]
pub struct TeamsPage {
    page: Page,
    frame: OrgFrame,
    teams: Vec<TeamLine>,
    form: TeamForm,
    errors: FieldErrors,
    budget_periods: &'static [(&'static str, &'static str)],
}

fn lines(page: &Page, view: &OrgView) -> Vec<TeamLine> {
    view.teams
        .iter()
        .map(|team| TeamLine {
            id: team.id,
            name: team.name.clone(),
            members: team.members.len(),
            budget: team
                .budget
                .as_ref()
                .map(|b| super::budget_text(page, b))
                .unwrap_or_default(),
            state: team
                .budget
                .as_ref()
                .map_or("ok", |b| super::state_of(b.spent_quota, b.quota)),
            cap: match (team.member_cap_quota, team.budget.as_ref()) {
                (Some(cap), Some(b)) => super::per_period(page, cap, b.period),
                _ => String::new(),
            },
        })
        .collect()
}

pub async fn list(
    State(state): State<AppState>,
    SignedIn { page, user }: SignedIn,
    Path(slug): Path<String>,
) -> Result<Response, WebError> {
    let (view, frame) = load(&state, &page, &user, &slug, "teams").await?;
    Ok(TeamsPage {
        teams: lines(&page, &view),
        frame,
        form: TeamForm::default(),
        errors: FieldErrors::default(),
        budget_periods: &BUDGET_PERIODS,
        page,
    }
    .into_response())
}

pub async fn create(
    State(state): State<AppState>,
    session: Session,
    SignedIn { page, user }: SignedIn,
    Path(slug): Path<String>,
    Posted(form): Posted<TeamForm>,
) -> Result<Response, WebError> {
    let (view, frame) = load(&state, &page, &user, &slug, "teams").await?;
    match orgs::create_team(&state.ctx, &user.caller(), &view.slug, form.input()).await {
        Ok(team) => {
            done(
                &session,
                &page,
                "web-org-team-created",
                &format!("/orgs/{}/teams/{}", view.slug, team.id),
            )
            .await
        }
        Err(error @ (ServiceError::Forbidden(_) | ServiceError::NotFound(_))) => {
            Err(page.failed(error))
        }
        Err(error) => {
            let errors = FieldErrors::from_service(&error, page.lang, &[]);
            Ok((
                StatusCode::UNPROCESSABLE_ENTITY,
                TeamsPage {
                    teams: lines(&page, &view),
                    frame,
                    form,
                    errors,
                    budget_periods: &BUDGET_PERIODS,
                    page,
                },
            )
                .into_response())
        }
    }
}

/// A member of the team as its page lists them.
pub struct MemberLine {
    user_id: i64,
    username: String,
    manager: bool,
    /// Whether the member has a cap of their own (not the team's).
    own_cap: bool,
    /// The cap that holds them with what it spent ("$4.00 of $50.00 this month"), or empty.
    cap: String,
    state: &'static str,
    /// What they spent through the team this period.
    spent: i64,
    /// Whether the reader sees what they spent.
    spend_visible: bool,
    /// The cap field's value: their own cap, or what they typed.
    cap_value: String,
    /// Whether the reader may take them out.
    removable: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "orgs/team.html")]
pub struct TeamPage {
    page: Page,
    frame: OrgFrame,
    team_id: i64,
    team_name: String,
    /// "$12.00 of $500.00 this month", or empty.
    budget: String,
    /// "Spent this month".
    spent_label: String,
    /// "$50.00 a month", or empty.
    default_cap: String,
    members: Vec<MemberLine>,
    /// Members of the organisation not in the team, to add.
    addable: Vec<String>,
    /// The reader manages the team (its managers, the organisation's admins).
    manages_team: bool,
    form: TeamForm,
    errors: FieldErrors,
    budget_periods: &'static [(&'static str, &'static str)],
    /// The username typed in the form adding a member, when it came back.
    add_username: String,
}

impl TeamPage {
    fn cap_field(&self, member: &MemberLine) -> String {
        format!("cap-{}", member.user_id)
    }

    /// "Take alice out of Research? Their keys of the team stop working."
    fn remove_text(&self, member: &MemberLine) -> String {
        crate::i18n::text(
            self.page.lang,
            "web-org-team-remove-confirm",
            &[("name", &member.username), ("team", &self.team_name)],
        )
    }
}

fn team_of(view: &OrgView, id: i64, page: &Page) -> Result<TeamView, WebError> {
    view.teams
        .iter()
        .find(|t| t.id == id)
        .cloned()
        .ok_or_else(|| WebError::not_found(page.lang))
}

/// What the page shows in a form that came back: the team's settings, or a member's cap.
#[derive(Default)]
struct Typed {
    form: Option<TeamForm>,
    cap: Option<(i64, String)>,
    add_username: String,
}

async fn team_page(
    state: &AppState,
    page: Page,
    user: &Viewer,
    slug: &str,
    id: i64,
    typed: Typed,
    errors: FieldErrors,
) -> Result<TeamPage, WebError> {
    let (view, frame) = load(state, &page, user, slug, "teams").await?;
    let team = team_of(&view, id, &page)?;
    let period = team
        .budget
        .as_ref()
        .map(|b| b.period)
        .unwrap_or_else(|| orgs::reported_period(view.budget.as_ref()));
    let spend = orgs::spending(&state.ctx, &user.caller(), &view.slug, Some(period))
        .await
        .map_err(|e| page.failed(e))?;
    let i_manage = team
        .members
        .iter()
        .any(|m| m.user_id == user.id && m.manager);
    let manages_team = frame.manages || i_manage;
    let members = team
        .members
        .iter()
        .map(|m| MemberLine {
            user_id: m.user_id,
            username: m.username.clone(),
            manager: m.manager,
            own_cap: m.own_cap_quota.is_some(),
            // Another member's cap without what they spent, for a reader who may not see it.
            cap: m
                .cap
                .as_ref()
                .map(|c| {
                    if m.spend_visible {
                        super::budget_text(&page, c)
                    } else {
                        super::per_period(&page, c.quota, c.period)
                    }
                })
                .unwrap_or_default(),
            spend_visible: m.spend_visible,
            state: m
                .cap
                .as_ref()
                .map_or("ok", |c| super::state_of(c.spent_quota, c.quota)),
            spent: spend.of_team_member(team.id, m.user_id),
            cap_value: match &typed.cap {
                Some((uid, text)) if *uid == m.user_id => text.clone(),
                _ => m
                    .own_cap_quota
                    .map(|q| format::editable_usd(q, page.quota_per_usd))
                    .unwrap_or_default(),
            },
            removable: frame.manages || m.user_id == user.id || (i_manage && !m.manager),
        })
        .collect();
    let addable = view
        .members
        .iter()
        .filter(|m| !team.members.iter().any(|tm| tm.user_id == m.user_id))
        .map(|m| m.username.clone())
        .collect();
    Ok(TeamPage {
        team_id: team.id,
        team_name: team.name.clone(),
        budget: team
            .budget
            .as_ref()
            .map(|b| super::budget_text(&page, b))
            .unwrap_or_default(),
        spent_label: page.t(super::spent_key(period)),
        default_cap: match (team.member_cap_quota, team.budget.as_ref()) {
            (Some(cap), Some(b)) => super::per_period(&page, cap, b.period),
            _ => String::new(),
        },
        members,
        addable,
        manages_team,
        form: typed
            .form
            .unwrap_or_else(|| TeamForm::of(&team, page.quota_per_usd)),
        errors,
        budget_periods: &BUDGET_PERIODS,
        add_username: typed.add_username,
        frame,
        page,
    })
}

pub async fn show(
    State(state): State<AppState>,
    SignedIn { page, user }: SignedIn,
    Path((slug, id)): Path<(String, i64)>,
) -> Result<Response, WebError> {
    let shown = team_page(
        &state,
        page,
        &user,
        &slug,
        id,
        Typed::default(),
        FieldErrors::default(),
    )
    .await?;
    Ok(shown.into_response())
}

/// The team's name for the services, which name teams; an unknown id is a missing page.
async fn team_name(
    state: &AppState,
    page: &Page,
    user: &Viewer,
    slug: &str,
    id: i64,
) -> Result<(String, String), WebError> {
    let view = orgs::show(&state.ctx, &user.caller(), slug)
        .await
        .map_err(|e| page.failed(e))?;
    let team = team_of(&view, id, page)?;
    Ok((view.slug, team.name))
}

/// A refusal or a missing record is an error page; anything else comes back on the form.
fn form_error(page: &Page, error: ServiceError) -> Result<ServiceError, WebError> {
    match error {
        ServiceError::Forbidden(_) | ServiceError::NotFound(_) | ServiceError::Db(_) => {
            Err(page.failed(error))
        }
        other => Ok(other),
    }
}

pub async fn save(
    State(state): State<AppState>,
    session: Session,
    SignedIn { page, user }: SignedIn,
    Path((slug, id)): Path<(String, i64)>,
    Posted(form): Posted<TeamForm>,
) -> Result<Response, WebError> {
    let (slug, name) = team_name(&state, &page, &user, &slug, id).await?;
    match orgs::update_team(&state.ctx, &user.caller(), &slug, &name, form.input()).await {
        Ok(team) => {
            done(
                &session,
                &page,
                "web-org-team-saved",
                &format!("/orgs/{slug}/teams/{}", team.id),
            )
            .await
        }
        Err(error) => {
            let error = form_error(&page, error)?;
            let errors = FieldErrors::from_service(&error, page.lang, &[]);
            let typed = Typed {
                form: Some(form),
                ..Typed::default()
            };
            let shown = team_page(&state, page, &user, &slug, id, typed, errors).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, shown).into_response())
        }
    }
}

#[derive(Deserialize)]
pub struct AddForm {
    #[serde(default)]
    username: String,
    /// A checkbox: present when ticked.
    #[serde(default)]
    manager: Option<String>,
}

pub async fn add_member(
    State(state): State<AppState>,
    session: Session,
    SignedIn { page, user }: SignedIn,
    Path((slug, id)): Path<(String, i64)>,
    Posted(form): Posted<AddForm>,
) -> Result<Response, WebError> {
    let (slug, name) = team_name(&state, &page, &user, &slug, id).await?;
    let input = TeamMemberInput {
        // Only a ticked box says anything: a manager adding a member makes no manager.
        manager: form.manager.is_some().then_some(true),
        cap_usd: None,
    };
    match orgs::put_team_member(
        &state.ctx,
        &user.caller(),
        &slug,
        &name,
        &form.username,
        input,
    )
    .await
    {
        Ok(_) => {
            done(
                &session,
                &page,
                "web-org-team-member-added",
                &format!("/orgs/{slug}/teams/{id}"),
            )
            .await
        }
        Err(error) => {
            let error = form_error(&page, error)?;
            let errors = FieldErrors::from_service(&error, page.lang, &[]);
            let typed = Typed {
                add_username: form.username,
                ..Typed::default()
            };
            let shown = team_page(&state, page, &user, &slug, id, typed, errors).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, shown).into_response())
        }
    }
}

#[derive(Deserialize)]
pub struct CapForm {
    #[serde(default)]
    cap_usd: String,
    /// The button that returns the member to the team's cap.
    #[serde(default)]
    default: Option<String>,
}

/// The member of the organisation with this user id, by username.
fn username_of(view: &OrgView, user_id: i64, page: &Page) -> Result<String, WebError> {
    view.members
        .iter()
        .find(|m| m.user_id == user_id)
        .map(|m| m.username.clone())
        .ok_or_else(|| WebError::not_found(page.lang))
}

pub async fn set_cap(
    State(state): State<AppState>,
    session: Session,
    SignedIn { page, user }: SignedIn,
    Path((slug, id, member)): Path<(String, i64, i64)>,
    Posted(form): Posted<CapForm>,
) -> Result<Response, WebError> {
    let view = orgs::show(&state.ctx, &user.caller(), &slug)
        .await
        .map_err(|e| page.failed(e))?;
    let team = team_of(&view, id, &page)?;
    let username = username_of(&view, member, &page)?;
    let cap = if form.default.is_some() {
        None
    } else {
        super::given(&form.cap_usd)
    };
    match orgs::set_member_cap(
        &state.ctx,
        &user.caller(),
        &view.slug,
        &team.name,
        &username,
        cap,
    )
    .await
    {
        Ok(_) => {
            done(
                &session,
                &page,
                "web-org-cap-saved",
                &format!("/orgs/{}/teams/{id}", view.slug),
            )
            .await
        }
        Err(error) => {
            let error = form_error(&page, error)?;
            let field = format!("cap-{member}");
            let errors = FieldErrors::from_service(&error, page.lang, &[("cap_usd", &field)]);
            let typed = Typed {
                cap: Some((member, form.cap_usd)),
                ..Typed::default()
            };
            let shown = team_page(&state, page, &user, &view.slug, id, typed, errors).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, shown).into_response())
        }
    }
}

#[derive(Deserialize)]
pub struct Nothing {}

pub async fn remove_member(
    State(state): State<AppState>,
    session: Session,
    SignedIn { page, user }: SignedIn,
    Path((slug, id, member)): Path<(String, i64, i64)>,
    Posted(_): Posted<Nothing>,
) -> Result<Response, WebError> {
    let view = orgs::show(&state.ctx, &user.caller(), &slug)
        .await
        .map_err(|e| page.failed(e))?;
    let team = team_of(&view, id, &page)?;
    let username = username_of(&view, member, &page)?;
    orgs::remove_team_member(
        &state.ctx,
        &user.caller(),
        &view.slug,
        &team.name,
        &username,
    )
    .await
    .map_err(|e| page.failed(e))?;
    // One who left a team they were in may no longer see its page as a manager would; the
    // team's page still opens for every member of the organisation.
    done(
        &session,
        &page,
        "web-org-team-member-removed",
        &format!("/orgs/{}/teams/{id}", view.slug),
    )
    .await
}

#[derive(Template, WebTemplate)]
#[template(path = "orgs/team_delete.html")]
pub struct DeletePage {
    page: Page,
    frame: OrgFrame,
    team_id: i64,
    team_name: String,
    members: i64,
    key_count: i64,
    keys: Vec<TeamKey>,
}

/// Asks before deleting: names the keys that stop working.
pub async fn delete_form(
    State(state): State<AppState>,
    SignedIn { page, user }: SignedIn,
    Path((slug, id)): Path<(String, i64)>,
) -> Result<Response, WebError> {
    let (view, frame) = load(&state, &page, &user, &slug, "teams").await?;
    let team = team_of(&view, id, &page)?;
    let keys = orgs::team_keys(&state.ctx, &user.caller(), &view.slug, id)
        .await
        .map_err(|e| page.failed(e))?;
    Ok(DeletePage {
        team_id: team.id,
        team_name: team.name,
        members: i64::try_from(team.members.len()).unwrap_or(i64::MAX),
        key_count: i64::try_from(keys.len()).unwrap_or(i64::MAX),
        keys,
        frame,
        page,
    }
    .into_response())
}

pub async fn delete(
    State(state): State<AppState>,
    session: Session,
    SignedIn { page, user }: SignedIn,
    Path((slug, id)): Path<(String, i64)>,
    Posted(_): Posted<Nothing>,
) -> Result<Response, WebError> {
    let (slug, name) = team_name(&state, &page, &user, &slug, id).await?;
    orgs::delete_team(&state.ctx, &user.caller(), &slug, &name)
        .await
        .map_err(|e| page.failed(e))?;
    done(
        &session,
        &page,
        "web-org-team-deleted",
        &format!("/orgs/{slug}/teams"),
    )
    .await
}
