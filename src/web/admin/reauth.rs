//! Sensitive console forms (settings, roles, balances, orders, admin tokens) need a sign-in
//! within [`sessions::RECENT_SIGN_IN`]. A stale session's POST is kept in the session (its form
//! token checked first), answered 303 to `/reauth?next=PATH`; once the person proves it is them
//! again — their password, or their sign-in provider for an account without one — the form
//! comes back with what was typed, to send again with one press.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{FromRequest, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};
use tower_sessions::Session;

use crate::service::limits;
use crate::service::oauth::{self, IdentityView};
use crate::service::{accounts, sessions};
use crate::state::AppState;
use crate::web::error::WebError;
use crate::web::form::{FieldErrors, Posted};
use crate::web::page::{Page, SignedIn, local_path, urlencode};
use crate::web::signing::renew_sign_in;

/// The session key of a form kept while its sender proves who they are.
const KEPT_FORM: &str = "reauth_kept_form";

/// A form a stale session sent: where it went and what it held (without its form token).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct KeptForm {
    action: String,
    fields: Vec<(String, String)>,
}

/// The layer over the sensitive forms: passes a recent sign-in through; keeps a stale one's
/// form and sends the person to prove who they are.
pub async fn require_recent_sign_in(
    State(state): State<AppState>,
    session: Session,
    request: Request,
    next: Next,
) -> Response {
    let (mut parts, body) = request.into_parts();
    let page = match Page::build(&mut parts, &state).await {
        Ok(page) => page,
        Err(error) => return error.into_response(),
    };
    // Visitors and non-administrators are answered by the handler (sign in; not found).
    if !page.is_admin() || page.recent_sign_in() {
        return next.run(Request::from_parts(parts, body)).await;
    }
    let action = parts.uri.path().to_string();
    // The form's token is checked before anything is kept.
    let Posted(fields) = match Posted::<Vec<(String, String)>>::from_request(
        Request::from_parts(parts, body),
        &state,
    )
    .await
    {
        Ok(posted) => posted,
        Err(error) => return error.into_response(),
    };
    let kept = KeptForm {
        action: action.clone(),
        fields: fields
            .into_iter()
            .filter(|(name, _)| name != "csrf_token")
            .collect(),
    };
    if let Err(error) = session.insert(KEPT_FORM, kept).await {
        return WebError::session(error).into_response();
    }
    Redirect::to(&format!("/reauth?next={}", urlencode(&action))).into_response()
}

#[derive(Deserialize, Default)]
pub struct NextQuery {
    #[serde(default)]
    next: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/reauth.html")]
pub struct ReauthPage {
    page: Page,
    next: String,
    has_password: bool,
    identities: Vec<IdentityView>,
    errors: FieldErrors,
}

async fn reauth_page(
    state: &AppState,
    page: Page,
    has_password: bool,
    next: String,
    errors: FieldErrors,
) -> Result<ReauthPage, WebError> {
    let caller = page
        .viewer
        .as_ref()
        .map(sessions::Viewer::caller)
        .ok_or_else(|| WebError::not_found(page.lang))?;
    let identities = oauth::identities(&state.ctx, &caller)
        .await
        .map_err(|e| page.failed(e))?;
    Ok(ReauthPage {
        page,
        next,
        has_password,
        identities,
        errors,
    })
}

pub async fn form(
    State(state): State<AppState>,
    SignedIn { page, user }: SignedIn,
    Query(query): Query<NextQuery>,
) -> Result<ReauthPage, WebError> {
    let next = local_path(Some(&query.next));
    reauth_page(
        &state,
        page,
        user.has_password,
        next,
        FieldErrors::default(),
    )
    .await
}

#[derive(Deserialize)]
pub struct ReauthForm {
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
}

pub async fn confirm(
    State(state): State<AppState>,
    session: Session,
    SignedIn { page, user }: SignedIn,
    Posted(form): Posted<ReauthForm>,
) -> Result<Response, WebError> {
    let next = local_path(Some(&form.next));
    let key = format!("account:{}", user.id);
    if !state.limits.hit(limits::REAUTH_PER_ACCOUNT, &key).await {
        let errors = FieldErrors::too_many_attempts(page.lang);
        let shown = reauth_page(&state, page, user.has_password, next, errors).await?;
        return Ok((StatusCode::TOO_MANY_REQUESTS, shown).into_response());
    }
    match accounts::confirm_password(&state.ctx, &user.caller(), &form.password).await {
        Ok(()) => {
            state
                .limits
                .give_back(limits::REAUTH_PER_ACCOUNT, &key)
                .await;
            renew_sign_in(&session).await?;
            Ok(Redirect::to(&after_reauth(&session, &next).await?).into_response())
        }
        Err(error) if !error.fields().is_empty() => {
            let errors = FieldErrors::from_service(&error, page.lang, &[]);
            let shown = reauth_page(&state, page, user.has_password, next, errors).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, shown).into_response())
        }
        Err(error) => Err(page.failed(error)),
    }
}

/// Where a person who just proved who they are goes: back to the form they sent, when one was
/// kept, else `next`.
pub async fn after_reauth(session: &Session, next: &str) -> Result<String, WebError> {
    let kept = session
        .get::<KeptForm>(KEPT_FORM)
        .await
        .map_err(WebError::session)?;
    Ok(if kept.is_some() {
        "/reauth/resume".to_string()
    } else {
        next.to_string()
    })
}

/// One field of a kept form as the page lists it.
pub struct KeptField {
    name: String,
    value: String,
    /// What the list shows: the value, or dots for a secret.
    shown: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/resume.html")]
pub struct ResumePage {
    page: Page,
    action: String,
    fields: Vec<KeptField>,
}

/// Fields whose values the list does not spell out (they still go back in the form).
fn is_secret(name: &str) -> bool {
    ["key", "secret", "password", "token"]
        .iter()
        .any(|word| name.contains(word))
}

pub async fn resume(
    session: Session,
    SignedIn { page, .. }: SignedIn,
) -> Result<Response, WebError> {
    let kept = session
        .remove::<KeptForm>(KEPT_FORM)
        .await
        .map_err(WebError::session)?;
    let Some(kept) = kept else {
        return Ok(Redirect::to("/admin").into_response());
    };
    if !page.recent_sign_in() {
        // Not proven yet: keep it for after.
        session
            .insert(KEPT_FORM, kept.clone())
            .await
            .map_err(WebError::session)?;
        return Ok(
            Redirect::to(&format!("/reauth?next={}", urlencode(&kept.action))).into_response(),
        );
    }
    let fields = kept
        .fields
        .into_iter()
        .map(|(name, value)| KeptField {
            shown: if is_secret(&name) && !value.is_empty() {
                "••••••••".to_string()
            } else {
                value.clone()
            },
            name,
            value,
        })
        .collect();
    Ok(ResumePage {
        page,
        action: local_path(Some(&kept.action)),
        fields,
    }
    .into_response())
}
