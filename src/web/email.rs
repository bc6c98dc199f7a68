//! Proving an email address with the emailed 6-digit code (or the link carrying it), and
//! setting a new password with the emailed link. Opening either link changes nothing: the
//! page it opens has the button that does.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;

use super::error::WebError;
use super::form::{FieldErrors, Posted};
use super::page::{Page, flash};
use super::signing::{TokenQuery, start_session};
use crate::i18n::Lang;
use crate::msg;
use crate::protocol::client::ClientAddress;
use crate::service::limits;
use crate::service::sessions::{self, Viewer, keys};
use crate::service::{ServiceError, accounts, email_codes};
use crate::state::AppState;

/// The account this visitor is proving an address for: the signed-in one, or the one that
/// gave its password but is held back until its address is proven.
async fn proving(
    state: &AppState,
    session: &Session,
    page: &Page,
) -> Result<Option<Viewer>, WebError> {
    if let Some(viewer) = &page.viewer {
        return Ok(Some(viewer.clone()));
    }
    let pending = session
        .get::<i64>(keys::PENDING_USER_ID)
        .await
        .map_err(WebError::session)?;
    match pending {
        Some(id) => sessions::viewer(&state.ctx, id)
            .await
            .map_err(|e| page.failed(e)),
        None => Ok(None),
    }
}

/// Sends a code, turning a refusal into words for the next page.
pub(super) async fn send_code(
    state: &AppState,
    user: &Viewer,
    lang: Lang,
) -> Result<String, String> {
    match email_codes::send_verification(&state.ctx, user.id, lang, &state.listen_url).await {
        Ok(()) => Ok(crate::i18n::text(
            lang,
            "web-code-sent",
            &[("email", user.email.as_deref().unwrap_or(""))],
        )),
        Err(error) => Err(error
            .message()
            .map(|m| m.render(lang))
            .unwrap_or_else(|| crate::i18n::text(lang, "web-internal-error", &[]))),
    }
}

/// After a correct password or a registration: signs the person in, or, while the site
/// requires a proven address and theirs is not, holds them at `/verify-email` with a code on
/// its way. Without the requirement a code is still sent when the site has mail, so the
/// address can be proven at leisure.
/// Where a person who just proved who they are comes from and goes to.
pub struct Arrival<'a> {
    pub ip: &'a str,
    pub headers: &'a HeaderMap,
    /// The page to land on once signed in.
    pub next: &'a str,
    /// A greeting for new accounts.
    pub welcome: Option<String>,
}

pub async fn after_password(
    state: &AppState,
    session: &Session,
    lang: Lang,
    user: &Viewer,
    arrival: Arrival<'_>,
) -> Result<Response, WebError> {
    let hold = accounts::must_verify_email(&state.ctx, user)
        .await
        .map_err(|e| WebError::service(lang, e))?;
    if hold {
        session.cycle_id().await.map_err(WebError::session)?;
        session
            .insert(keys::PENDING_USER_ID, user.id)
            .await
            .map_err(WebError::session)?;
        let notice = match send_code(state, user, lang).await {
            Ok(sent) => sent,
            Err(problem) => problem,
        };
        flash(session, notice).await?;
        return Ok(Redirect::to("/verify-email").into_response());
    }
    start_session(session, user, arrival.ip, arrival.headers).await?;
    let mail = email_codes::mail_configured(&state.ctx)
        .await
        .map_err(|e| WebError::service(lang, e))?;
    let mut notice = arrival.welcome;
    if mail && welcome_needs_code(user) && notice.is_some() {
        let sent = match send_code(state, user, lang).await {
            Ok(sent) => sent,
            Err(problem) => problem,
        };
        notice = notice.map(|w| format!("{w} {sent}"));
    }
    if let Some(notice) = notice {
        flash(session, notice).await?;
    }
    Ok(Redirect::to(arrival.next).into_response())
}

fn welcome_needs_code(user: &Viewer) -> bool {
    user.email.is_some() && !user.email_verified
}

#[derive(Template, WebTemplate)]
#[template(path = "verify_email.html")]
pub struct VerifyPage {
    page: Page,
    /// The address the code went to.
    email: String,
    /// Whether the visitor can ask for another code (they are signed in or held back).
    can_resend: bool,
    code: String,
    errors: FieldErrors,
}

#[derive(Deserialize, Default)]
pub struct VerifyQuery {
    #[serde(default)]
    email: String,
    #[serde(default)]
    code: String,
}

pub async fn verify_form(
    State(state): State<AppState>,
    session: Session,
    page: Page,
    Query(query): Query<VerifyQuery>,
) -> Result<Response, WebError> {
    let user = proving(&state, &session, &page).await?;
    if user.as_ref().is_some_and(|u| u.email_verified) {
        return Ok(Redirect::to("/dashboard").into_response());
    }
    let email = match &user {
        Some(user) => user.email.clone().unwrap_or_default(),
        None if !query.email.is_empty() => query.email.clone(),
        None => return Ok(Redirect::to("/login").into_response()),
    };
    Ok(VerifyPage {
        page,
        email,
        can_resend: user.is_some(),
        code: query
            .code
            .chars()
            .filter(char::is_ascii_digit)
            .take(6)
            .collect(),
        errors: FieldErrors::default(),
    }
    .into_response())
}

#[derive(Deserialize)]
pub struct VerifyForm {
    #[serde(default)]
    code: String,
    /// From the emailed link, when it is opened where nobody is signed in.
    #[serde(default)]
    email: String,
}

pub async fn verify(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    session: Session,
    headers: HeaderMap,
    page: Page,
    Posted(form): Posted<VerifyForm>,
) -> Result<Response, WebError> {
    let ip = client.to_string();
    let user = proving(&state, &session, &page).await?;
    let again = |errors: FieldErrors, status: StatusCode, email: String| {
        (
            status,
            VerifyPage {
                page: page.clone(),
                email,
                can_resend: user.is_some(),
                code: form.code.clone(),
                errors,
            },
        )
            .into_response()
    };
    let shown_email = user
        .as_ref()
        .and_then(|u| u.email.clone())
        .unwrap_or_else(|| form.email.clone());
    if !state.limits.hit(limits::CODE_CHECK_PER_IP, &ip).await {
        let errors = FieldErrors::too_many_attempts(page.lang);
        return Ok(again(errors, StatusCode::TOO_MANY_REQUESTS, shown_email));
    }
    let target = match &user {
        Some(user) => Some(user.clone()),
        None => email_codes::account_with_email(&state.ctx, &form.email)
            .await
            .map_err(|e| page.failed(e))?,
    };
    let Some(target) = target else {
        let mut errors = FieldErrors::default();
        errors.add("code", page.say(&msg!("code-expired")));
        return Ok(again(errors, StatusCode::UNPROCESSABLE_ENTITY, shown_email));
    };
    match email_codes::verify_email(&state.ctx, target.id, &form.code).await {
        Ok(verified) => {
            let signed_in = page.viewer.as_ref().is_some_and(|v| v.id == verified.id);
            let held_here = user.as_ref().is_some_and(|u| u.id == verified.id);
            // A person who registered from an invitation goes back to it.
            let next = if signed_in || held_here {
                session
                    .remove::<String>(keys::AFTER_VERIFY)
                    .await
                    .map_err(WebError::session)?
                    .unwrap_or_else(|| "/dashboard".into())
            } else {
                String::new()
            };
            if signed_in {
                flash(&session, page.t("web-email-verified")).await?;
                Ok(Redirect::to(&next).into_response())
            } else if held_here {
                session
                    .remove::<i64>(keys::PENDING_USER_ID)
                    .await
                    .map_err(WebError::session)?;
                start_session(&session, &verified, &ip, &headers).await?;
                flash(&session, page.t("web-email-verified")).await?;
                Ok(Redirect::to(&next).into_response())
            } else {
                flash(&session, page.t("web-email-verified-sign-in")).await?;
                Ok(Redirect::to("/login").into_response())
            }
        }
        Err(error) => Ok(again(
            FieldErrors::from_service(&error, page.lang, &[]),
            StatusCode::UNPROCESSABLE_ENTITY,
            shown_email,
        )),
    }
}

#[derive(Deserialize)]
pub struct ResendForm {}

pub async fn resend(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    session: Session,
    page: Page,
    Posted(_): Posted<ResendForm>,
) -> Result<Response, WebError> {
    let Some(user) = proving(&state, &session, &page).await? else {
        return Ok(Redirect::to("/login").into_response());
    };
    let ip = client.to_string();
    let notice = if state.limits.hit(limits::CODE_SEND_PER_IP, &ip).await {
        match send_code(&state, &user, page.lang).await {
            Ok(sent) => sent,
            Err(problem) => problem,
        }
    } else {
        page.say(&msg!("web-too-many-attempts"))
    };
    flash(&session, notice).await?;
    Ok(Redirect::to("/verify-email").into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "forgot_password.html")]
pub struct ForgotPage {
    page: Page,
    email: String,
    /// Shown after a request: the same words whether or not the address has an account.
    sent: bool,
    errors: FieldErrors,
}

pub async fn forgot_form(page: Page) -> Response {
    ForgotPage {
        page,
        email: String::new(),
        sent: false,
        errors: FieldErrors::default(),
    }
    .into_response()
}

#[derive(Deserialize)]
pub struct ForgotForm {
    #[serde(default)]
    email: String,
}

pub async fn forgot(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    page: Page,
    Posted(form): Posted<ForgotForm>,
) -> Result<Response, WebError> {
    let ip = client.to_string();
    let email = form.email.trim().to_string();
    let again = |errors: FieldErrors, status: StatusCode, sent: bool| {
        (
            status,
            ForgotPage {
                page: page.clone(),
                email: email.clone(),
                sent,
                errors,
            },
        )
            .into_response()
    };
    if email.is_empty() {
        let mut errors = FieldErrors::default();
        errors.add("email", page.say(&msg!("field-required")));
        return Ok(again(errors, StatusCode::UNPROCESSABLE_ENTITY, false));
    }
    let address = email.to_lowercase();
    let counted = [
        (limits::RESET_PER_IP, ip.as_str()),
        (limits::RESET_PER_ADDRESS, address.as_str()),
    ];
    if !state.limits.hit_all(&counted).await {
        let errors = FieldErrors::too_many_attempts(page.lang);
        return Ok(again(errors, StatusCode::TOO_MANY_REQUESTS, false));
    }
    match email_codes::request_reset(&state.ctx, &email, page.lang, &state.listen_url).await {
        Ok(()) => Ok(again(FieldErrors::default(), StatusCode::OK, true)),
        Err(error) => Ok(again(
            FieldErrors::from_service(&error, page.lang, &[]),
            StatusCode::SERVICE_UNAVAILABLE,
            false,
        )),
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "reset_password.html")]
pub struct ResetPage {
    page: Page,
    token: String,
    /// The account's name, for password managers to file the new password under.
    username: String,
    errors: FieldErrors,
}

pub async fn reset_form(
    State(state): State<AppState>,
    page: Page,
    Query(query): Query<TokenQuery>,
) -> Result<Response, WebError> {
    let username = email_codes::reset_link_username(&state.ctx, &query.token)
        .await
        .map_err(|e| page.failed(e))?;
    let Some(username) = username else {
        return Err(page.error(StatusCode::NOT_FOUND, msg!("reset-link-spent")));
    };
    Ok(ResetPage {
        page,
        token: query.token,
        username,
        errors: FieldErrors::default(),
    }
    .into_response())
}

#[derive(Deserialize)]
pub struct ResetForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_confirm: String,
}

pub async fn reset(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    session: Session,
    page: Page,
    Posted(form): Posted<ResetForm>,
) -> Result<Response, WebError> {
    let ip = client.to_string();
    if !state.limits.hit(limits::CODE_CHECK_PER_IP, &ip).await {
        return Err(page.error(StatusCode::TOO_MANY_REQUESTS, msg!("web-too-many-attempts")));
    }
    match email_codes::reset_password(
        &state.ctx,
        &form.token,
        &form.password,
        &form.password_confirm,
    )
    .await
    {
        Ok(_) => {
            // Whoever was signed in here is signed out with the old password; the person
            // signs in with the new one.
            session.flush().await.map_err(WebError::session)?;
            flash(&session, page.t("web-password-reset-done")).await?;
            Ok(Redirect::to("/login").into_response())
        }
        Err(ServiceError::Forbidden(message)) => Err(page.error(StatusCode::NOT_FOUND, message)),
        Err(error) => {
            let username = email_codes::reset_link_username(&state.ctx, &form.token)
                .await
                .ok()
                .flatten()
                .unwrap_or_default();
            Ok((
                StatusCode::UNPROCESSABLE_ENTITY,
                ResetPage {
                    errors: FieldErrors::from_service(&error, page.lang, &[]),
                    page,
                    token: form.token,
                    username,
                },
            )
                .into_response())
        }
    }
}
