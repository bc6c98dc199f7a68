//! Signing in and out, registering, and the first run's root account.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;

use super::email::{Arrival, after_password};
use super::error::WebError;
use super::form::{FieldErrors, Posted};
use super::page::{DEVICE_COOKIE, DEVICE_COOKIE_DAYS, Page, cookie, local_path, set_cookie};
use super::signing::{TokenQuery, start_session};
use crate::msg;
use crate::protocol::client::ClientAddress;
use crate::service::accounts::{self, Registration};
use crate::service::limits;
use crate::service::sessions;
use crate::state::AppState;

#[derive(Template, WebTemplate)]
#[template(path = "login.html")]
pub struct LoginPage {
    page: Page,
    login: String,
    next: String,
    errors: FieldErrors,
    /// Sign-in providers, as (name, what the button says).
    providers: Vec<(String, String)>,
}

/// The providers offered next to the password forms (none when they cannot be read: the
/// password form still works).
async fn sign_in_choices(state: &AppState) -> Vec<(String, String)> {
    crate::service::oauth::sign_in_choices(&state.ctx)
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "could not list the sign-in providers");
            Vec::new()
        })
}

#[derive(Deserialize, Default)]
pub struct NextQuery {
    next: Option<String>,
}

pub async fn login_form(
    State(state): State<AppState>,
    page: Page,
    Query(query): Query<NextQuery>,
) -> Response {
    if page.signed_in() {
        return Redirect::to(&local_path(query.next.as_deref())).into_response();
    }
    LoginPage {
        page,
        login: String::new(),
        next: local_path(query.next.as_deref()),
        errors: FieldErrors::default(),
        providers: sign_in_choices(&state).await,
    }
    .into_response()
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    login: String,
    #[serde(default)]
    password: String,
    next: Option<String>,
}

pub async fn login(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    session: Session,
    headers: HeaderMap,
    page: Page,
    Posted(form): Posted<LoginForm>,
) -> Result<Response, WebError> {
    let ip = client.to_string();
    let next = local_path(form.next.as_deref());
    let providers = sign_in_choices(&state).await;
    let again = |errors: FieldErrors, status: StatusCode| {
        let login = form.login.clone();
        (
            status,
            LoginPage {
                page: page.clone(),
                login,
                next: next.clone(),
                errors,
                providers: providers.clone(),
            },
        )
            .into_response()
    };
    // Failures count per address, and per account whichever way it is named; but a browser
    // the account signed in from before (its device cookie) counts its own failures, so
    // others' failures cannot lock the owner out. A right password gives its attempt back.
    let target = accounts::sign_in_target(&state.ctx, &form.login)
        .await
        .map_err(|e| page.failed(e))?;
    let device = match (target.account_id, cookie(&headers, DEVICE_COOKIE)) {
        (Some(account), Some(cookie)) => sessions::trusted_device(&state.ctx, &cookie, account)
            .await
            .map_err(|e| page.failed(e))?,
        _ => None,
    };
    let (limit, key) = match &device {
        Some(device) => (limits::SIGN_IN_PER_DEVICE, device.as_str()),
        None => (limits::SIGN_IN_PER_ACCOUNT, target.limit_key.as_str()),
    };
    let counted = [(limits::SIGN_IN_PER_IP, ip.as_str()), (limit, key)];
    if !state.limits.hit_all(&counted).await {
        let errors = FieldErrors::too_many_attempts(page.lang);
        return Ok(again(errors, StatusCode::TOO_MANY_REQUESTS));
    }
    match accounts::sign_in(&state.ctx, &form.login, &form.password).await {
        Ok(user) => {
            state.limits.give_back(limit, key).await;
            let device_cookie = sessions::device_cookie(&state.ctx, user.id)
                .await
                .map_err(|e| page.failed(e))?;
            let arrival = Arrival {
                ip: &ip,
                headers: &headers,
                next: &next,
                welcome: None,
            };
            let mut response = after_password(&state, &session, page.lang, &user, arrival).await?;
            set_cookie(
                &state,
                &mut response,
                DEVICE_COOKIE,
                &device_cookie,
                DEVICE_COOKIE_DAYS,
            );
            Ok(response)
        }
        Err(error) => Ok(again(
            FieldErrors::from_service(&error, page.lang, &[]),
            StatusCode::UNPROCESSABLE_ENTITY,
        )),
    }
}

#[derive(Deserialize)]
pub struct LogoutForm {}

pub async fn logout(session: Session, Posted(_): Posted<LogoutForm>) -> Result<Response, WebError> {
    session.flush().await.map_err(WebError::session)?;
    Ok(Redirect::to("/").into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "register.html")]
pub struct RegisterPage {
    page: Page,
    open: bool,
    username: String,
    email: String,
    errors: FieldErrors,
    providers: Vec<(String, String)>,
    /// The invite code the person came with, carried by the form.
    invite: String,
    /// The page to go to once registered (an invitation's), or empty.
    next: String,
}

/// An invite code as it may appear in a link: letters and digits, at most 32 (anything else
/// cannot be a code, and must not ride along into the links the page makes).
fn invite_code(text: &str) -> String {
    text.chars()
        .filter(char::is_ascii_alphanumeric)
        .take(32)
        .collect()
}

#[derive(Deserialize, Default)]
pub struct InviteQuery {
    #[serde(default)]
    invite: String,
    next: Option<String>,
}

/// A page of this site to go to after registering, or empty for the usual.
fn after_register(next: Option<&str>) -> String {
    next.and_then(crate::domain::redirect::local_target)
        .map(str::to_string)
        .unwrap_or_default()
}

pub async fn register_form(
    State(state): State<AppState>,
    page: Page,
    Query(query): Query<InviteQuery>,
) -> Response {
    let next = after_register(query.next.as_deref());
    if page.signed_in() {
        return Redirect::to(if next.is_empty() { "/dashboard" } else { &next }).into_response();
    }
    let open = state.snapshot.load().options.registration_enabled;
    RegisterPage {
        next,
        page,
        open,
        username: String::new(),
        email: String::new(),
        errors: FieldErrors::default(),
        providers: sign_in_choices(&state).await,
        invite: invite_code(&query.invite),
    }
    .into_response()
}

#[derive(Deserialize)]
pub struct RegisterForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    password_confirm: Option<String>,
    /// The invite code of the link the person came by.
    invite: Option<String>,
    next: Option<String>,
}

pub async fn register(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    session: Session,
    headers: HeaderMap,
    page: Page,
    Posted(form): Posted<RegisterForm>,
) -> Result<Response, WebError> {
    let ip = client.to_string();
    let open = state.snapshot.load().options.registration_enabled;
    let providers = sign_in_choices(&state).await;
    let again = |errors: FieldErrors, status: StatusCode| {
        (
            status,
            RegisterPage {
                page: page.clone(),
                open,
                username: form.username.clone(),
                email: form.email.clone(),
                errors,
                providers: providers.clone(),
                invite: invite_code(form.invite.as_deref().unwrap_or_default()),
                next: after_register(form.next.as_deref()),
            },
        )
            .into_response()
    };
    // The day's new account from this address is taken before the account is made, and
    // given back if it is not: concurrent forms cannot all pass.
    let per_day = limits::signups_per_day(state.snapshot.load().options.signups_per_ip_per_day);
    if !state.limits.hit(limits::REGISTER_PER_IP, &ip).await
        || !state.limits.hit_unless_off(per_day, &ip).await
    {
        let errors = FieldErrors::too_many_attempts(page.lang);
        return Ok(again(errors, StatusCode::TOO_MANY_REQUESTS));
    }
    let registration = Registration {
        username: form.username.trim().to_string(),
        email: form.email.clone(),
        password: form.password.clone(),
        password_confirm: form.password_confirm.clone().filter(|c| !c.is_empty()),
        invite: form.invite.clone(),
    };
    match accounts::register(&state.ctx, registration).await {
        Ok(user) => {
            let welcome = page.t1("web-welcome", "name", &user.username);
            let next = after_register(form.next.as_deref());
            if !next.is_empty() {
                // Kept for after the address is proven, when the site holds new accounts
                // until then.
                session
                    .insert(sessions::keys::AFTER_VERIFY, next.clone())
                    .await
                    .map_err(WebError::session)?;
            }
            after_password(
                &state,
                &session,
                page.lang,
                &user,
                Arrival {
                    ip: &ip,
                    headers: &headers,
                    next: if next.is_empty() { "/dashboard" } else { &next },
                    welcome: Some(welcome),
                },
            )
            .await
        }
        Err(error) => {
            if per_day.max > 0 {
                state.limits.give_back(per_day, &ip).await;
            }
            Ok(again(
                FieldErrors::from_service(&error, page.lang, &[]),
                StatusCode::UNPROCESSABLE_ENTITY,
            ))
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "setup.html")]
pub struct SetupPage {
    page: Page,
    token: String,
    username: String,
    email: String,
    errors: FieldErrors,
}

pub async fn setup_form(
    State(state): State<AppState>,
    page: Page,
    Query(query): Query<TokenQuery>,
) -> Result<Response, WebError> {
    let works = accounts::setup_token_works(&state.ctx, &query.token)
        .await
        .map_err(|e| page.failed(e))?;
    if !works {
        return Err(page.error(StatusCode::NOT_FOUND, msg!("setup-link-spent")));
    }
    Ok(SetupPage {
        page,
        token: query.token,
        username: "root".into(),
        email: String::new(),
        errors: FieldErrors::default(),
    }
    .into_response())
}

#[derive(Deserialize)]
pub struct SetupForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    password_confirm: Option<String>,
}

pub async fn setup(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    session: Session,
    headers: HeaderMap,
    page: Page,
    Posted(form): Posted<SetupForm>,
) -> Result<Response, WebError> {
    let registration = Registration {
        username: form.username.trim().to_string(),
        email: form.email.clone(),
        password: form.password.clone(),
        password_confirm: Some(form.password_confirm.clone().unwrap_or_default()),
        invite: None,
    };
    match accounts::set_up_root(&state.ctx, &form.token, registration).await {
        Ok(user) => {
            let ip = client.to_string();
            start_session(&session, &user, &ip, &headers).await?;
            tracing::info!(username = %user.username, "the root account was created on the first-run page");
            // Root runs the site from the console.
            Ok(Redirect::to("/admin").into_response())
        }
        Err(crate::service::ServiceError::Forbidden(message)) => {
            Err(page.error(StatusCode::NOT_FOUND, message))
        }
        Err(error) => Ok((
            StatusCode::UNPROCESSABLE_ENTITY,
            SetupPage {
                errors: FieldErrors::from_service(&error, page.lang, &[]),
                page,
                token: form.token,
                username: form.username,
                email: form.email,
            },
        )
            .into_response()),
    }
}
