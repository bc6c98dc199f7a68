//! `/api/admin-tokens`: the tokens `/api` takes. A token is in the answer that makes it, and
//! nowhere else; revoking one stops it at once.

use axum::extract::{Path, State};
use axum::routing::{delete, get};
use axum::{Json, Router};
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::ApiError;
use super::extract::{ApiCaller, ApiJson};
use crate::service::views::AdminTokenView;
use crate::service::{self};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin-tokens", get(list).post(create))
        .route("/admin-tokens/{id}", delete(revoke))
}

async fn list(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
) -> Result<Json<Value>, ApiError> {
    let tokens = service::admin_tokens::list(&state.ctx, &caller).await?;
    let data: Vec<AdminTokenView> = tokens.iter().map(AdminTokenView::new).collect();
    Ok(Json(json!({ "data": data })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    name: String,
    /// The administrator the token acts as; the caller's own account when absent.
    user: Option<String>,
}

async fn create(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (token, plain) =
        service::admin_tokens::create_for(&state.ctx, &caller, body.user.as_deref(), &body.name)
            .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "token": plain, "admin_token": AdminTokenView::new(&token) })),
    ))
}

async fn revoke(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    service::admin_tokens::delete(&state.ctx, &caller, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
