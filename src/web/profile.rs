//! One's own profile: name and email, password, language, where one is signed in, a copy of
//! one's data, and deleting the account.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;

use super::error::WebError;
use super::form::{FieldErrors, Posted};
use super::page::{Page, SignedIn, flash};
use crate::i18n::Lang;
use crate::service::accounts::{self, ProfileChange, Reauthentication};
use crate::service::oauth::IdentityView;
use crate::service::sessions::{self, SessionView, Viewer, row_id};
use crate::service::{ServiceError, limits};
use crate::state::AppState;

#[derive(Template, WebTemplate)]
#[template(path = "profile.html")]
pub struct ProfilePage {
    page: Page,
    user: Viewer,
    display_name: String,
    email: String,
    details_errors: FieldErrors,
    password_errors: FieldErrors,
    delete_errors: FieldErrors,
    /// The low-balance line as typed or stored (empty: the site's default).
    low_balance: String,
    low_balance_errors: FieldErrors,
    sessions: Vec<SessionView>,
    /// The row id of the session asking.
    current: String,
    /// The sign-in providers, as (name, what the button says), and the identities linked.
    providers: Vec<(String, String)>,
    identities: Vec<IdentityView>,
    invite_link: Option<String>,
}

impl ProfilePage {
    fn seen(&self, session: &SessionView) -> String {
        self.page.time(&session.last_seen_at)
    }

    fn device(&self, session: &SessionView) -> String {
        super::format::device(&session.user_agent)
    }

    fn is_current(&self, session: &SessionView) -> bool {
        session.id == self.current
    }

    fn provider_label(&self, name: &str) -> String {
        self.providers
            .iter()
            .find(|(n, _)| n == name)
            .map_or_else(|| name.to_string(), |(_, label)| label.clone())
    }

    /// Whether changing the email or password asks for the current password: the account has
    /// one and the session did not sign in recently.
    fn asks_current_password(&self) -> bool {
        self.user.has_password && !self.page.recent_sign_in()
    }

    /// Whether changing the email or password first needs a sign-in through a provider: the
    /// account has no password and the session did not sign in recently.
    fn asks_provider_sign_in(&self) -> bool {
        !self.user.has_password && !self.page.recent_sign_in()
    }

    fn is_linked(&self, provider: &str) -> bool {
        self.identities.iter().any(|i| i.provider == provider)
    }

    fn lang_selected(&self, tag: &str) -> bool {
        self.user.locale == tag
    }
}

async fn current_row(session: &Session) -> String {
    session.id().map(|id| row_id(&id)).unwrap_or_default()
}

/// The profile's forms: a refused one comes back marked, the others blank.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Section {
    Details,
    Password,
    Delete,
    LowBalance,
}

/// The page, with `refused`'s problems on its form (None: every form clean).
async fn render(
    state: &AppState,
    session: &Session,
    page: Page,
    user: Viewer,
    refused: Option<(Section, FieldErrors)>,
    typed: Option<(String, String)>,
) -> Result<ProfilePage, WebError> {
    let caller = user.caller();
    let sessions = sessions::list(&state.ctx, &caller)
        .await
        .map_err(|e| page.failed(e))?;
    let providers = crate::service::oauth::sign_in_choices(&state.ctx)
        .await
        .map_err(|e| page.failed(e))?;
    let identities = crate::service::oauth::identities(&state.ctx, &caller)
        .await
        .map_err(|e| page.failed(e))?;
    let invite_link = super::wallet::invite_link(state, &user);
    let (display_name, email) = typed.unwrap_or_else(|| {
        (
            user.display_name.clone(),
            user.email.clone().unwrap_or_default(),
        )
    });
    let errors_of = |section: Section| match &refused {
        Some((refused, errors)) if *refused == section => errors.clone(),
        _ => FieldErrors::default(),
    };
    let details_errors = errors_of(Section::Details);
    let password_errors = errors_of(Section::Password);
    let delete_errors = errors_of(Section::Delete);
    let low_balance_errors = errors_of(Section::LowBalance);
    Ok(ProfilePage {
        low_balance: crate::service::balance_alerts::threshold_text(&user, page.quota_per_usd),
        low_balance_errors,
        current: current_row(session).await,
        page,
        user,
        display_name,
        email,
        details_errors,
        password_errors,
        delete_errors,
        sessions,
        providers,
        identities,
        invite_link,
    })
}

/// The page again with one form's problems (and what was typed in the details form),
/// answered with `status`.
async fn again(
    state: &AppState,
    session: &Session,
    page: Page,
    user: Viewer,
    refused: (Section, FieldErrors),
    typed: Option<(String, String)>,
    status: StatusCode,
) -> Result<Response, WebError> {
    let page_again = render(state, session, page, user, Some(refused), typed).await?;
    Ok((status, page_again).into_response())
}

pub async fn show(
    State(state): State<AppState>,
    session: Session,
    SignedIn { page, user }: SignedIn,
) -> Result<Response, WebError> {
    Ok(render(&state, &session, page, user, None, None)
        .await?
        .into_response())
}

async fn notice(session: &Session, page: &Page, key: &str) -> Result<Response, WebError> {
    flash(session, page.t(key)).await?;
    Ok(Redirect::to("/profile").into_response())
}

#[derive(Deserialize)]
pub struct DetailsForm {
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    email: String,
    /// Needed to change the email without a recent sign-in (named apart from the password
    /// form's field on the same page).
    #[serde(default, rename = "details_current_password")]
    current_password: String,
}

/// The proof a form gives that its sender is the account's owner. A current password typed is
/// counted against the account's limit before it is checked (as a sign-in's would be); the
/// key to give the attempt back once it proved right comes back with it.
async fn proof(
    state: &AppState,
    page: &Page,
    user: &Viewer,
    current_password: &str,
) -> Result<(Reauthentication, Option<String>), Reauthentication> {
    let proof = Reauthentication {
        recent_sign_in: page.recent_sign_in(),
        current_password: current_password.to_string(),
    };
    if proof.recent_sign_in || current_password.is_empty() {
        return Ok((proof, None));
    }
    let key = format!("account:{}", user.id);
    if state.limits.hit(limits::REAUTH_PER_ACCOUNT, &key).await {
        Ok((proof, Some(key)))
    } else {
        Err(proof)
    }
}

/// A password that proved right gives its counted attempt back.
async fn proven(state: &AppState, counted: Option<String>, result: &Result<Viewer, ServiceError>) {
    let wrong_password =
        matches!(result, Err(e) if e.fields().iter().any(|p| p.field == "current_password"));
    if let Some(key) = counted
        && !wrong_password
    {
        state
            .limits
            .give_back(limits::REAUTH_PER_ACCOUNT, &key)
            .await;
    }
}

pub async fn details(
    State(state): State<AppState>,
    session: Session,
    SignedIn { page, user }: SignedIn,
    Posted(form): Posted<DetailsForm>,
) -> Result<Response, WebError> {
    let typed = Some((form.display_name.clone(), form.email.clone()));
    let Ok((proof, counted)) = proof(&state, &page, &user, &form.current_password).await else {
        let errors = (Section::Details, FieldErrors::too_many_attempts(page.lang));
        let status = StatusCode::TOO_MANY_REQUESTS;
        return again(&state, &session, page, user, errors, typed, status).await;
    };
    let change = ProfileChange {
        display_name: form.display_name.clone(),
        email: form.email.clone(),
    };
    let result = accounts::update_profile(&state.ctx, &user.caller(), change, &proof).await;
    proven(&state, counted, &result).await;
    match result {
        Ok(updated) => {
            let new_address = updated.email.is_some() && updated.email != user.email;
            if new_address && page.mail_enabled {
                // The new address is proven the same way as at registration.
                let sent = super::email::send_code(&state, &updated, page.lang).await;
                let text = match sent {
                    Ok(sent) => format!("{} {sent}", page.t("web-profile-saved")),
                    Err(problem) => problem,
                };
                flash(&session, text).await?;
                return Ok(Redirect::to("/verify-email").into_response());
            }
            notice(&session, &page, "web-profile-saved").await
        }
        Err(error) => {
            let aliases = [("current_password", "details_current_password")];
            let errors = (
                Section::Details,
                FieldErrors::from_service(&error, page.lang, &aliases),
            );
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            again(&state, &session, page, user, errors, typed, status).await
        }
    }
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_confirm: String,
}

pub async fn password(
    State(state): State<AppState>,
    session: Session,
    SignedIn { page, user }: SignedIn,
    Posted(form): Posted<PasswordForm>,
) -> Result<Response, WebError> {
    let Ok((proof, counted)) = proof(&state, &page, &user, &form.current_password).await else {
        let errors = (Section::Password, FieldErrors::too_many_attempts(page.lang));
        let status = StatusCode::TOO_MANY_REQUESTS;
        return again(&state, &session, page, user, errors, None, status).await;
    };
    let result = accounts::change_password(
        &state.ctx,
        &user.caller(),
        &form.password,
        &form.password_confirm,
        &proof,
    )
    .await;
    proven(&state, counted, &result).await;
    match result {
        Ok(updated) => {
            // This session stays signed in, under the new password; the others end.
            super::signing::restamp(&session, &updated).await?;
            let current = current_row(&session).await;
            sessions::end_others(&state.ctx, &user.caller(), Some(&current))
                .await
                .map_err(|e| page.failed(e))?;
            notice(&session, &page, "web-profile-password-changed").await
        }
        Err(error) => {
            let errors = (
                Section::Password,
                FieldErrors::from_service(&error, page.lang, &[]),
            );
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            again(&state, &session, page, user, errors, None, status).await
        }
    }
}

#[derive(Deserialize)]
pub struct LanguageForm {
    #[serde(default)]
    language: String,
}

pub async fn language(
    State(state): State<AppState>,
    session: Session,
    SignedIn { user, .. }: SignedIn,
    Posted(form): Posted<LanguageForm>,
) -> Result<Response, WebError> {
    let tag = Lang::from_tag(&form.language).map_or("", Lang::tag);
    sessions::set_language(&state.ctx, &user.caller(), tag)
        .await
        .map_err(|e| WebError::service(Lang::En, e))?;
    let lang = Lang::from_tag(tag).unwrap_or(Lang::En);
    flash(&session, crate::i18n::text(lang, "web-profile-saved", &[])).await?;
    Ok(Redirect::to("/profile").into_response())
}

#[derive(Deserialize)]
pub struct LowBalanceForm {
    #[serde(default)]
    low_balance_usd: String,
}

/// One's low-balance line: empty for the site's default, 0 for none.
pub async fn low_balance(
    State(state): State<AppState>,
    session: Session,
    SignedIn { page, user }: SignedIn,
    Posted(form): Posted<LowBalanceForm>,
) -> Result<Response, WebError> {
    match crate::service::balance_alerts::set_threshold(
        &state.ctx,
        &user.caller(),
        &form.low_balance_usd,
    )
    .await
    {
        Ok(()) => notice(&session, &page, "web-profile-saved").await,
        Err(error) => {
            let errors = FieldErrors::from_service(&error, page.lang, &[]);
            let mut again = render(
                &state,
                &session,
                page,
                user,
                Some((Section::LowBalance, errors)),
                None,
            )
            .await?;
            again.low_balance = form.low_balance_usd;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, again).into_response())
        }
    }
}

#[derive(Deserialize)]
pub struct EmptyForm {}

pub async fn end_other_sessions(
    State(state): State<AppState>,
    session: Session,
    SignedIn { page, user }: SignedIn,
    Posted(_): Posted<EmptyForm>,
) -> Result<Response, WebError> {
    let current = current_row(&session).await;
    sessions::end_others(&state.ctx, &user.caller(), Some(&current))
        .await
        .map_err(|e| page.failed(e))?;
    notice(&session, &page, "web-profile-sessions-ended").await
}

pub async fn end_session(
    State(state): State<AppState>,
    session: Session,
    SignedIn { page, user }: SignedIn,
    Path(id): Path<String>,
    Posted(_): Posted<EmptyForm>,
) -> Result<Response, WebError> {
    sessions::end(&state.ctx, &user.caller(), &id)
        .await
        .map_err(|e| page.failed(e))?;
    notice(&session, &page, "web-profile-session-ended").await
}

/// A copy of one's data as JSON (reading only: a GET).
pub async fn export(
    State(state): State<AppState>,
    SignedIn { page, user }: SignedIn,
) -> Result<Response, WebError> {
    let data = accounts::export(&state.ctx, &user.caller())
        .await
        .map_err(|e| page.failed(e))?;
    let body =
        serde_json::to_string_pretty(&data).map_err(|e| WebError::internal(page.lang, &e))?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/json; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"my-data.json\"",
            ),
        ],
        body,
    )
        .into_response())
}

#[derive(Deserialize)]
pub struct DeleteForm {
    #[serde(default)]
    confirm_username: String,
}

pub async fn delete(
    State(state): State<AppState>,
    session: Session,
    SignedIn { page, user }: SignedIn,
    Posted(form): Posted<DeleteForm>,
) -> Result<Response, WebError> {
    match accounts::delete_account(&state.ctx, &user.caller(), &form.confirm_username).await {
        Ok(()) => {
            session.flush().await.map_err(WebError::session)?;
            Ok(Redirect::to("/").into_response())
        }
        Err(error) => {
            let errors = (
                Section::Delete,
                FieldErrors::from_service(&error, page.lang, &[]),
            );
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            again(&state, &session, page, user, errors, None, status).await
        }
    }
}
