//! The console's admin tokens (what `/api` takes): make one (shown once), see each with its
//! last use, revoke one.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use tower_sessions::Session;

use super::AdminPage;
use super::users::local_time;
use crate::service::views::AdminTokenView;
use crate::service::{self, Caller};
use crate::state::AppState;
use crate::web::error::WebError;
use crate::web::form::{FieldErrors, Posted};
use crate::web::page::{Page, flash};

/// Pages and forms that need only an administrator.
pub fn routes() -> Router<AppState> {
    Router::new().route("/admin/tokens", get(list))
}

/// Forms that need a sign-in within the last minutes too (see `reauth`).
pub fn sensitive_routes() -> Router<AppState> {
    Router::new()
        .route("/admin/tokens", post(create))
        .route("/admin/tokens/{id}/revoke", post(revoke))
}

/// The create form: the field names of `POST /api/admin-tokens`.
#[derive(Deserialize, Default, Clone)]
pub struct TokenForm {
    #[serde(default)]
    name: String,
    /// The administrator it acts as; empty: oneself.
    #[serde(default)]
    user: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/tokens.html")]
pub struct TokensPage {
    page: Page,
    tokens: Vec<AdminTokenView>,
    /// A token just made: shown this once.
    new_token: Option<String>,
    form: TokenForm,
    errors: FieldErrors,
}

impl TokensPage {
    fn at(&self, text: &str) -> String {
        local_time(&self.page, text)
    }
}

async fn tokens_page(
    state: &AppState,
    page: Page,
    caller: &Caller,
) -> Result<TokensPage, WebError> {
    let tokens = service::admin_tokens::list(&state.ctx, caller)
        .await
        .map_err(|e| page.failed(e))?;
    Ok(TokensPage {
        page,
        tokens: tokens.iter().map(AdminTokenView::new).collect(),
        new_token: None,
        form: TokenForm::default(),
        errors: FieldErrors::default(),
    })
}

async fn list(State(state): State<AppState>, admin: AdminPage) -> Result<TokensPage, WebError> {
    let caller = admin.caller();
    tokens_page(&state, admin.page, &caller).await
}

async fn create(
    State(state): State<AppState>,
    admin: AdminPage,
    Posted(form): Posted<TokenForm>,
) -> Result<Response, WebError> {
    let caller = admin.caller();
    let page = admin.page;
    let user = Some(form.user.trim()).filter(|u| !u.is_empty());
    let made = service::admin_tokens::create_for(&state.ctx, &caller, user, &form.name).await;
    match made {
        Ok((_, plain)) => {
            let mut shown = tokens_page(&state, page, &caller).await?;
            shown.new_token = Some(plain);
            Ok((StatusCode::CREATED, shown).into_response())
        }
        Err(error @ crate::service::ServiceError::Forbidden(_)) => Err(page.failed(error)),
        Err(error) => {
            let errors = FieldErrors::from_service(&error, page.lang, &[]);
            let mut again = tokens_page(&state, page, &caller).await?;
            again.form = form;
            again.errors = errors;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, again).into_response())
        }
    }
}

async fn revoke(
    State(state): State<AppState>,
    session: Session,
    admin: AdminPage,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    let caller = admin.caller();
    service::admin_tokens::delete(&state.ctx, &caller, id)
        .await
        .map_err(|e| admin.page.failed(e))?;
    flash(&session, admin.page.t("admin-token-revoked")).await?;
    Ok(Redirect::to("/admin/tokens").into_response())
}
