//! An organisation's settings (its admins and owner): name, short name, time zone and budget;
//! and deleting it (the owner), refused while its wallet holds money.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tower_sessions::Session;

use super::overview::{BUDGET_PERIODS, OrgForm};
use super::teams::Nothing;
use super::{OrgFrame, done, load};
use crate::domain::kinds::OrgRole;
use crate::msg;
use crate::service::ServiceError;
use crate::service::orgs::{self, DeleteOrg, OrgView, UpdateOrg};
use crate::service::sessions::Viewer;
use crate::state::AppState;
use crate::web::error::WebError;
use crate::web::form::{FieldErrors, Posted};
use crate::web::format;
use crate::web::page::{Page, SignedIn};

#[derive(Template, WebTemplate)]
#[template(path = "orgs/settings.html")]
pub struct SettingsPage {
    page: Page,
    frame: OrgFrame,
    form: OrgForm,
    errors: FieldErrors,
    budget_periods: &'static [(&'static str, &'static str)],
    site_zone: String,
    /// The reader owns the organisation (or runs the site): they may delete it.
    may_delete: bool,
    /// Why deleting it was refused.
    delete_error: Option<String>,
    balance: i64,
}

fn form_of(view: &OrgView, quota_per_usd: i64) -> OrgForm {
    OrgForm {
        name: view.name.clone(),
        slug: view.slug.clone(),
        timezone: view.timezone.clone(),
        budget_usd: view
            .budget
            .as_ref()
            .map(|b| format::editable_usd(b.quota, quota_per_usd))
            .unwrap_or_default(),
        budget_period: view
            .budget
            .as_ref()
            .map(|b| b.period.as_str().to_string())
            .unwrap_or_default(),
    }
}

async fn render(
    state: &AppState,
    page: Page,
    user: &Viewer,
    slug: &str,
    form: Option<OrgForm>,
    errors: FieldErrors,
    delete_error: Option<String>,
) -> Result<SettingsPage, WebError> {
    let (view, frame) = load(state, &page, user, slug, "settings").await?;
    if !frame.manages {
        return Err(page.error(StatusCode::FORBIDDEN, msg!("org-admins-only")));
    }
    Ok(SettingsPage {
        form: form.unwrap_or_else(|| form_of(&view, page.quota_per_usd)),
        errors,
        budget_periods: &BUDGET_PERIODS,
        site_zone: page.calendar.zone_name().to_string(),
        may_delete: user.is_admin() || view.role == Some(OrgRole::Owner),
        delete_error,
        // Settings are for those who manage the organisation, who see the wallet.
        balance: view.quota.unwrap_or_default(),
        frame,
        page,
    })
}

pub async fn show(
    State(state): State<AppState>,
    SignedIn { page, user }: SignedIn,
    Path(slug): Path<String>,
) -> Result<Response, WebError> {
    let shown = render(
        &state,
        page,
        &user,
        &slug,
        None,
        FieldErrors::default(),
        None,
    )
    .await?;
    Ok(shown.into_response())
}

pub async fn save(
    State(state): State<AppState>,
    session: Session,
    SignedIn { page, user }: SignedIn,
    Path(slug): Path<String>,
    Posted(form): Posted<OrgForm>,
) -> Result<Response, WebError> {
    let input = UpdateOrg {
        name: Some(form.name.trim().to_string()),
        slug: Some(form.slug.trim().to_string()),
        timezone: Some(form.timezone.trim().to_string()),
        budget_period: Some(form.budget_period.trim().to_string()),
        budget_usd: Some(form.budget_usd.trim().to_string()),
        group: None,
    };
    match orgs::update(&state.ctx, &user.caller(), &slug, input).await {
        Ok(view) => {
            done(
                &session,
                &page,
                "web-org-saved",
                &format!("/orgs/{}/settings", view.slug),
            )
            .await
        }
        Err(
            error @ (ServiceError::Forbidden(_) | ServiceError::NotFound(_) | ServiceError::Db(_)),
        ) => Err(page.failed(error)),
        Err(error) => {
            let errors = FieldErrors::from_service(&error, page.lang, &[]);
            let shown = render(&state, page, &user, &slug, Some(form), errors, None).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, shown).into_response())
        }
    }
}

pub async fn delete(
    State(state): State<AppState>,
    session: Session,
    SignedIn { page, user }: SignedIn,
    Path(slug): Path<String>,
    Posted(_): Posted<Nothing>,
) -> Result<Response, WebError> {
    match orgs::delete(&state.ctx, &user.caller(), &slug, DeleteOrg::default()).await {
        Ok(()) => done(&session, &page, "web-org-deleted", "/orgs").await,
        Err(ServiceError::Conflict { message, .. }) => {
            let said = page.say(&message);
            let shown = render(
                &state,
                page,
                &user,
                &slug,
                None,
                FieldErrors::default(),
                Some(said),
            )
            .await?;
            Ok((StatusCode::CONFLICT, shown).into_response())
        }
        Err(error) => Err(page.failed(error)),
    }
}
