//! The admin console: the whole platform run from the browser, on the portal's page framework.
//! Every page calls the same services as `/api` and the command line, as the signed-in
//! administrator (`Caller::Admin`), so the console and `/api` cannot disagree on who may do
//! what. A signed-in person who is not an administrator gets the portal's not-found page for
//! every `/admin` path: nothing of the console shows.

mod logs;
mod overview;

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

/// The console's pages, mounted under the portal's layers (session, language, errors).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin", get(overview::page))
        .route("/admin/logs", get(logs::page))
        .route("/admin/logs.csv", get(logs::csv))
        .route("/admin/logs/{id}", get(logs::detail))
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
