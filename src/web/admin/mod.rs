//! The admin console: the whole platform run from the browser, on the portal's page framework.
//! Every page calls the same services as `/api` and the command line, as the signed-in
//! administrator (`Caller::Admin`), so the console and `/api` cannot disagree on who may do
//! what. A signed-in person who is not an administrator gets the portal's not-found page for
//! every `/admin` path: nothing of the console shows.

mod audit;
mod catalog;
mod channels;
mod codes;
mod logs;
mod orders;
mod orgs;
mod overview;
pub mod reauth;
mod settings;
mod tokens;
mod users;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::error::WebError;
use super::page::{Page, SignedIn};
use crate::service::Caller;
use crate::service::sessions::Viewer;
use crate::state::AppState;

/// The console's pages, mounted under the portal's layers (session, language, errors). Each
/// section gives its pages and forms, and apart the forms that change settings, roles,
/// balances, orders or admin tokens: those need a recent sign-in too.
pub fn router(state: &AppState) -> Router<AppState> {
    let sensitive = Router::new()
        .merge(channels::sensitive_routes())
        .merge(users::sensitive_routes())
        .merge(orgs::sensitive_routes())
        .merge(catalog::sensitive_routes())
        .merge(codes::sensitive_routes())
        .merge(orders::sensitive_routes())
        .merge(tokens::sensitive_routes())
        .merge(settings::sensitive_routes())
        .merge(audit::sensitive_routes())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            reauth::require_recent_sign_in,
        ));
    Router::new()
        .route("/admin", get(overview::page))
        .route("/reauth", get(reauth::form).post(reauth::confirm))
        .route("/reauth/resume", get(reauth::resume))
        .route("/admin/logs", get(logs::page))
        .route("/admin/logs.csv", get(logs::csv))
        .route("/admin/logs/{id}", get(logs::detail))
        .merge(channels::routes())
        .merge(users::routes())
        .merge(orgs::routes())
        .merge(catalog::routes())
        .merge(codes::routes())
        .merge(orders::routes())
        .merge(tokens::routes())
        .merge(settings::routes())
        .merge(audit::routes())
        .merge(sensitive)
}

/// A console page: an administrator (or root) is signed in. Visitors are sent to sign in;
/// everyone else gets the portal's not-found page.
pub struct AdminPage {
    pub page: Page,
    pub admin: Viewer,
}

impl AdminPage {
    /// Who the administrator is to the services.
    pub fn caller(&self) -> Caller {
        self.admin.caller()
    }

    /// Whether the signed-in administrator is root (root-only sections show).
    pub fn is_root(&self) -> bool {
        self.admin.role == crate::domain::kinds::Role::Root
    }
}

impl FromRequestParts<AppState> for AdminPage {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let SignedIn { page, user } = SignedIn::from_request_parts(parts, state).await?;
        if !user.is_admin() {
            return Err(WebError::not_found(page.lang).into_response());
        }
        Ok(AdminPage { page, admin: user })
    }
}
