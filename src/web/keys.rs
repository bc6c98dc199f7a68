//! A person's own API keys: make them (shown once), limit them, disable and delete them.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;

use super::error::WebError;
use super::form::{FieldErrors, Posted};
use super::format;
use super::page::{Page, SignedIn, flash};
use crate::domain::kinds::{BudgetPeriod, Status};
use crate::records::tokens::TokenRow;
use crate::service::rate_limits::{RateLimitInput, editable};
use crate::service::sessions::Viewer;
use crate::service::tokens::{CreateToken, UpdateToken};
use crate::service::{self, Caller, ServiceError};
use crate::state::AppState;

#[derive(Template, WebTemplate)]
#[template(path = "keys.html")]
pub struct KeysPage {
    page: Page,
    keys: Vec<TokenRow>,
    /// A key just made: shown this once.
    new_key: Option<String>,
    form: KeyForm,
    errors: FieldErrors,
    limit_label: &'static str,
    limit_hint: &'static str,
    /// The groups the person may pick for a key: (name, what it says), their own first.
    groups: Vec<(String, String)>,
    budget_periods: &'static [(&'static str, &'static str)],
    /// The teams the person may make keys for.
    teams: Vec<TeamChoice>,
    /// Each team key's team as the list names it: (team id, "Org — Team").
    team_labels: Vec<(i64, String)>,
}

/// The limit field's words when making a key: the most it may spend.
const NEW_LIMIT: (&str, &str) = ("web-field-key-limit", "web-field-key-limit-hint");
/// ... and when editing one: what it may still spend.
const EDIT_LIMIT: (&str, &str) = ("web-field-key-remaining", "web-field-key-remaining-hint");

impl KeysPage {
    fn expires(&self, key: &TokenRow) -> String {
        key.expires_at.map(format::date).unwrap_or_default()
    }

    fn active(&self, key: &TokenRow) -> bool {
        key.status == Status::Active
    }

    /// "Team: Acme — Research" for a team key; empty for a personal one.
    fn team(&self, key: &TokenRow) -> String {
        self.team_labels
            .iter()
            .find(|(id, _)| *id == key.team_id && key.team_id != 0)
            .map(|(_, label)| label.clone())
            .unwrap_or_default()
    }

    /// "60 requests/min · 2 at once" for a key with rate limits of its own; empty without.
    fn rate_limits(&self, key: &TokenRow) -> String {
        rate_limits_text(&self.page, key.rate_limits)
    }

    /// "$1.20 of $5.00 a day" for a key with a budget; empty without.
    fn budget(&self, key: &TokenRow) -> String {
        let Some(budget) = key.budget else {
            return String::new();
        };
        let spent = self.page.usd(&budget.spent);
        let limit = self.page.usd(&budget.quota);
        crate::i18n::text(
            self.page.lang,
            per_period_key(budget.period),
            &[("spent", &spent), ("limit", &limit)],
        )
    }
}

#[derive(Deserialize, Default, Clone)]
pub struct KeyForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    quota_usd: String,
    #[serde(default)]
    expires: String,
    #[serde(default)]
    models: String,
    #[serde(default)]
    allow_ips: String,
    #[serde(default)]
    group: String,
    #[serde(default)]
    budget_usd: String,
    /// `daily`, `weekly`, `monthly`, or empty for none.
    #[serde(default)]
    budget_period: String,
    /// A team key's team as `slug/team id`; empty for a personal key.
    #[serde(default)]
    team: String,
    /// Rate limits: whole numbers, empty for none.
    #[serde(default)]
    rpm: String,
    #[serde(default)]
    tpm: String,
    #[serde(default)]
    max_concurrent: String,
    /// The form's one-time key: sent twice (a double click), it makes one key.
    #[serde(default)]
    form_key: String,
}

impl KeyForm {
    /// The rate limits as typed: each one empty is none.
    fn rate_limits(&self) -> RateLimitInput {
        RateLimitInput {
            rpm: Some(self.rpm.trim().to_string()),
            tpm: Some(self.tpm.trim().to_string()),
            max_concurrent: Some(self.max_concurrent.trim().to_string()),
        }
    }

    /// An empty form with a one-time key of its own.
    fn fresh() -> KeyForm {
        KeyForm {
            form_key: crate::service::sessions::new_browser_id(),
            ..KeyForm::default()
        }
    }
}

/// The choices of the budget's period: (value, message key).
const BUDGET_PERIODS: [(&str, &str); 5] = [
    ("", "web-budget-none"),
    ("daily", "web-budget-daily"),
    ("weekly", "web-budget-weekly"),
    ("monthly", "web-budget-monthly"),
    ("quarterly", "web-budget-quarterly"),
];

/// How a budget's period reads after an amount ("$5.00 a day").
pub(super) fn per_period_key(period: BudgetPeriod) -> &'static str {
    match period {
        BudgetPeriod::Daily => "web-budget-per-day",
        BudgetPeriod::Weekly => "web-budget-per-week",
        BudgetPeriod::Monthly => "web-budget-per-month",
        BudgetPeriod::Quarterly => "web-budget-per-quarter",
    }
}

/// Rate limits as a list reads them ("60 requests/min · 2 at once"); empty for none.
pub(super) fn rate_limits_text(
    page: &Page,
    limits: crate::domain::rate_limits::RateLimits,
) -> String {
    let parts: Vec<String> = [
        ("web-rate-rpm", limits.rpm),
        ("web-rate-tpm", limits.tpm),
        ("web-rate-concurrent", limits.max_concurrent),
    ]
    .into_iter()
    .filter_map(|(key, limit)| {
        let count = limit?.to_string();
        Some(crate::i18n::text(page.lang, key, &[("count", &count)]))
    })
    .collect();
    parts.join(" · ")
}

/// The groups a person may pick for a key, each with its price ratio: their own first
/// (chosen by leaving the field empty), then those the admin made selectable.
async fn group_choices(
    state: &AppState,
    page: &Page,
    user: &Viewer,
) -> Result<Vec<(String, String)>, WebError> {
    let groups = service::tokens::selectable_groups(&state.ctx, &user.group)
        .await
        .map_err(|e| page.failed(e))?;
    Ok(groups
        .into_iter()
        .map(|g| {
            let ratio = g.ratio.to_string();
            let label = if g.name == user.group {
                crate::i18n::text(
                    page.lang,
                    "web-key-group-own",
                    &[("group", &g.name), ("ratio", &ratio)],
                )
            } else {
                format!("{} (×{ratio})", g.name)
            };
            let value = if g.name == user.group {
                String::new()
            } else {
                g.name
            };
            (value, label)
        })
        .collect())
}

/// A team to make a key for.
pub struct TeamChoice {
    /// `slug/team id`.
    value: String,
    /// "Org — Team": short, so the choice is not cut on a phone.
    label: String,
    /// "$12.00 of $200.00 this month · your cap $25.00", shown under the choice.
    budget: String,
}

/// The teams the person is in, to make keys for, and how the list names each one's keys.
struct TeamChoices {
    choices: Vec<TeamChoice>,
    labels: Vec<(i64, String)>,
}

async fn team_choices(
    state: &AppState,
    page: &Page,
    user: &Viewer,
) -> Result<TeamChoices, WebError> {
    let teams = service::orgs::my_teams(&state.ctx, &Caller::User(user.id))
        .await
        .map_err(|e| page.failed(e))?;
    let mut choices = Vec::new();
    let mut labels = Vec::new();
    for team in teams {
        let names = [
            ("org", team.org_name.as_str()),
            ("team", team.team_name.as_str()),
        ];
        let label = crate::i18n::text(page.lang, "web-key-team-option", &names);
        let mut budget = match &team.budget {
            Some(budget) => super::orgs::budget_text(page, budget),
            None => page.t("web-key-team-no-budget"),
        };
        if let Some(cap) = &team.cap {
            budget = crate::i18n::text(
                page.lang,
                "web-key-team-budget-cap",
                &[("budget", &budget), ("cap", &page.usd(&cap.quota))],
            );
        }
        choices.push(TeamChoice {
            value: format!("{}/{}", team.org_slug, team.team_id),
            label,
            budget,
        });
        labels.push((
            team.team_id,
            crate::i18n::text(page.lang, "web-key-in-team", &names),
        ));
    }
    Ok(TeamChoices { choices, labels })
}

/// The organisation and team of a `slug/team id` choice.
fn team_of(choice: &str) -> (Option<String>, Option<String>) {
    match choice.trim().rsplit_once('/') {
        Some((org, team)) if !org.is_empty() && !team.is_empty() => {
            (Some(org.to_string()), Some(team.to_string()))
        }
        _ => (None, blank(choice)),
    }
}

async fn own_keys(
    state: &AppState,
    caller: &Caller,
    username: &str,
) -> Result<Vec<TokenRow>, ServiceError> {
    service::tokens::list_for_user(&state.ctx, caller, username).await
}

pub async fn list(
    State(state): State<AppState>,
    SignedIn { page, user }: SignedIn,
) -> Result<Response, WebError> {
    let keys = own_keys(&state, &Caller::User(user.id), &user.username)
        .await
        .map_err(|e| page.failed(e))?;
    let groups = group_choices(&state, &page, &user).await?;
    let teams = team_choices(&state, &page, &user).await?;
    Ok(KeysPage {
        page,
        keys,
        new_key: None,
        form: KeyForm::fresh(),
        errors: FieldErrors::default(),
        limit_label: NEW_LIMIT.0,
        limit_hint: NEW_LIMIT.1,
        groups,
        budget_periods: &BUDGET_PERIODS,
        teams: teams.choices,
        team_labels: teams.labels,
    }
    .into_response())
}

fn blank(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

pub async fn create(
    State(state): State<AppState>,
    SignedIn { page, user }: SignedIn,
    Posted(form): Posted<KeyForm>,
) -> Result<Response, WebError> {
    let caller = Caller::User(user.id);
    let mut errors = FieldErrors::default();
    let (org, team) = team_of(&form.team);
    let input = CreateToken {
        username: user.username.clone(),
        name: form.name.trim().to_string(),
        quota_usd: blank(&form.quota_usd),
        expires: blank(&form.expires),
        models: blank(&form.models),
        allow_ips: blank(&form.allow_ips),
        group: blank(&form.group),
        budget_period: blank(&form.budget_period),
        budget_usd: blank(&form.budget_usd),
        form_key: blank(&form.form_key),
        org,
        team,
        rate_limits: form.rate_limits(),
    };
    // The same form sent again (a double click) is told so: its key exists, and the first
    // answer showed its secret.
    let mut sent_twice = false;
    let created = match service::tokens::create(&state.ctx, &caller, input).await {
        Ok((_, plain)) => Some(plain),
        Err(error) => {
            sent_twice = matches!(error, ServiceError::Conflict { field: None, .. });
            errors = FieldErrors::from_service(&error, page.lang, &[("org", "team")]);
            None
        }
    };
    let keys = own_keys(&state, &caller, &user.username)
        .await
        .map_err(|e| page.failed(e))?;
    let status = if created.is_some() {
        StatusCode::CREATED
    } else if sent_twice {
        StatusCode::CONFLICT
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let form = if created.is_some() || sent_twice {
        KeyForm::fresh()
    } else {
        form
    };
    let groups = group_choices(&state, &page, &user).await?;
    let teams = team_choices(&state, &page, &user).await?;
    Ok((
        status,
        KeysPage {
            page,
            keys,
            new_key: created,
            form,
            errors,
            limit_label: NEW_LIMIT.0,
            limit_hint: NEW_LIMIT.1,
            groups,
            budget_periods: &BUDGET_PERIODS,
            teams: teams.choices,
            team_labels: teams.labels,
        },
    )
        .into_response())
}

#[derive(Deserialize)]
pub struct StatusForm {
    status: String,
}

async fn done(session: &Session, page: &Page, key: &'static str) -> Result<Response, WebError> {
    flash(session, page.t(key)).await?;
    Ok(Redirect::to("/keys").into_response())
}

pub async fn set_status(
    State(state): State<AppState>,
    session: Session,
    SignedIn { page, user }: SignedIn,
    Path(id): Path<i64>,
    Posted(form): Posted<StatusForm>,
) -> Result<Response, WebError> {
    let update = UpdateToken {
        status: Some(form.status.clone()),
        ..Default::default()
    };
    service::tokens::update(&state.ctx, &Caller::User(user.id), id, update)
        .await
        .map_err(|e| page.failed(e))?;
    let notice = if form.status == "disabled" {
        "web-key-disabled"
    } else {
        "web-key-enabled"
    };
    done(&session, &page, notice).await
}

#[derive(Deserialize)]
pub struct DeleteForm {}

pub async fn delete(
    State(state): State<AppState>,
    session: Session,
    SignedIn { page, user }: SignedIn,
    Path(id): Path<i64>,
    Posted(_): Posted<DeleteForm>,
) -> Result<Response, WebError> {
    service::tokens::delete(&state.ctx, &Caller::User(user.id), id)
        .await
        .map_err(|e| page.failed(e))?;
    done(&session, &page, "web-key-deleted").await
}

#[derive(Template, WebTemplate)]
#[template(path = "key_edit.html")]
pub struct KeyEditPage {
    page: Page,
    key_id: i64,
    key_name: String,
    key_display: String,
    form: KeyForm,
    errors: FieldErrors,
    limit_label: &'static str,
    limit_hint: &'static str,
    groups: Vec<(String, String)>,
    budget_periods: &'static [(&'static str, &'static str)],
    /// Always empty: a key's team is fixed once it is made.
    teams: Vec<TeamChoice>,
}

/// The form filled with the key as it is.
fn form_of(key: &TokenRow, quota_per_usd: i64) -> KeyForm {
    KeyForm {
        name: key.name.clone(),
        quota_usd: if key.unlimited {
            String::new()
        } else {
            format::editable_usd(key.remaining_quota, quota_per_usd)
        },
        expires: key.expires_at.map(format::date).unwrap_or_default(),
        models: key.allowed_models.join(", "),
        allow_ips: key.allowed_ips.clone(),
        group: key.group.clone(),
        budget_usd: key
            .budget
            .map(|b| format::editable_usd(b.quota, quota_per_usd))
            .unwrap_or_default(),
        form_key: String::new(),
        team: String::new(),
        budget_period: key
            .budget
            .map(|b| b.period.as_str().to_string())
            .unwrap_or_default(),
        rpm: editable(key.rate_limits.rpm),
        tpm: editable(key.rate_limits.tpm),
        max_concurrent: editable(key.rate_limits.max_concurrent),
    }
}

fn edit_page(
    page: Page,
    key: &TokenRow,
    form: KeyForm,
    errors: FieldErrors,
    groups: Vec<(String, String)>,
) -> KeyEditPage {
    KeyEditPage {
        groups,
        page,
        key_id: key.id,
        key_name: key.name.clone(),
        key_display: key.key_display.clone(),
        form,
        errors,
        limit_label: EDIT_LIMIT.0,
        limit_hint: EDIT_LIMIT.1,
        budget_periods: &BUDGET_PERIODS,
        teams: Vec::new(),
    }
}

pub async fn edit_form(
    State(state): State<AppState>,
    SignedIn { page, user }: SignedIn,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    let key = service::tokens::get(&state.ctx, &Caller::User(user.id), id)
        .await
        .map_err(|e| page.failed(e))?;
    let form = form_of(&key, page.quota_per_usd);
    let groups = group_choices(&state, &page, &user).await?;
    Ok(edit_page(page, &key, form, FieldErrors::default(), groups).into_response())
}

/// Saves every field of the form: an empty limit makes the key unlimited (bounded by the
/// balance), an empty expiry removes it, empty model and address lists allow all.
pub async fn edit(
    State(state): State<AppState>,
    session: Session,
    SignedIn { page, user }: SignedIn,
    Path(id): Path<i64>,
    Posted(form): Posted<KeyForm>,
) -> Result<Response, WebError> {
    let caller = Caller::User(user.id);
    let key = service::tokens::get(&state.ctx, &caller, id)
        .await
        .map_err(|e| page.failed(e))?;
    let limit = blank(&form.quota_usd);
    let update = UpdateToken {
        name: Some(form.name.trim().to_string()),
        status: None,
        expires: Some(blank(&form.expires)),
        unlimited: limit.is_none().then_some(true),
        quota_usd: limit,
        models: Some(form.models.trim().to_string()),
        allow_ips: Some(form.allow_ips.trim().to_string()),
        group: Some(form.group.trim().to_string()),
        budget_period: Some(form.budget_period.trim().to_string()),
        budget_usd: Some(form.budget_usd.trim().to_string()),
        rate_limits: form.rate_limits(),
    };
    match service::tokens::update(&state.ctx, &caller, id, update).await {
        Ok(_) => done(&session, &page, "web-key-saved").await,
        Err(ServiceError::NotFound(message)) => Err(page.error(StatusCode::NOT_FOUND, message)),
        Err(error) => {
            let errors = FieldErrors::from_service(&error, page.lang, &[]);
            let groups = group_choices(&state, &page, &user).await?;
            Ok((
                StatusCode::UNPROCESSABLE_ENTITY,
                edit_page(page, &key, form, errors, groups),
            )
                .into_response())
        }
    }
}
