//! The JSON management API under `/api`, authenticated by admin access tokens
//! (`Authorization: Bearer tga-…`, from `tollgate admin-token create`). It exposes the same
//! operations as the command line, through the same services.

mod channels;
mod error;
mod extract;
mod groups;
mod logs;
mod model_aliases;
mod options;
mod prices;
mod tokens;
mod users;

use axum::Router;
use axum::extract::OriginalUri;
use axum::response::{IntoResponse, Response};
use http::Method;

use crate::state::AppState;
pub use error::ApiError;

pub fn router() -> Router<AppState> {
    let api = Router::new()
        .merge(users::router())
        .merge(tokens::router())
        .merge(groups::router())
        .merge(channels::router())
        .merge(prices::router())
        .merge(model_aliases::router())
        .merge(logs::router())
        .merge(options::router())
        .fallback(unknown_route)
        .method_not_allowed_fallback(wrong_method)
        .layer(axum::middleware::from_fn(|request, next| {
            crate::panic_guard::catch_panic(request, next, || {
                ApiError::new(
                    http::StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_error",
                    "the server hit an internal error; see its log",
                )
                .into_response()
            })
        }));
    Router::new().nest("/api", api)
}

/// Makes a write visible to this server's relay before the API answers (other servers pick it
/// up through the data version).
async fn refresh(state: &AppState) {
    if let Err(e) = crate::jobs::snapshot_sync::reload(state).await {
        tracing::warn!(error = %e, "reload after a management write failed; the sync job will retry");
        state.reload.notify_one();
    }
}

/// The current quota-per-dollar rate, for views that show dollars.
async fn quota_per_usd(state: &AppState) -> Result<i64, ApiError> {
    Ok(crate::service::options::current(&state.db)
        .await?
        .quota_per_usd())
}

async fn unknown_route(OriginalUri(uri): OriginalUri) -> Response {
    ApiError::not_found(format!("there is no API route {}", uri.path())).into_response()
}

async fn wrong_method(method: Method, OriginalUri(uri): OriginalUri) -> Response {
    ApiError::new(
        http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not supported on {}", uri.path()),
    )
    .into_response()
}
