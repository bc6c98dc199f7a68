//! The console's orders pages.

use axum::Router;

use crate::state::AppState;

/// Pages and forms that need only an administrator.
pub fn routes() -> Router<AppState> {
    Router::new()
}

/// Forms that need a sign-in within the last minutes too (see `reauth`).
pub fn sensitive_routes() -> Router<AppState> {
    Router::new()
}
