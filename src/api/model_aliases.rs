use axum::extract::{Path, State};
use axum::routing::{delete, get};
use axum::{Json, Router};
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::ApiError;
use super::extract::{ApiCaller, ApiJson};
use crate::service::views::AliasView;
use crate::service::{self};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/model-aliases", get(list).post(add))
        // Model names may contain slashes.
        .route("/model-aliases/{*name}", delete(remove))
}

async fn list(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
) -> Result<Json<Value>, ApiError> {
    let aliases = service::model_aliases::list(&state.ctx, &caller).await?;
    let data: Vec<AliasView> = aliases.iter().map(AliasView::new).collect();
    Ok(Json(json!({ "data": data })))
}

/// `{"name": "fast", "to": "gpt-4o-mini"}`
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AliasBody {
    name: String,
    to: String,
}

async fn add(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<AliasBody>,
) -> Result<(StatusCode, Json<AliasView>), ApiError> {
    let alias = service::model_aliases::add(&state.ctx, &caller, &body.name, &body.to).await?;
    Ok((StatusCode::CREATED, Json(AliasView::new(&alias))))
}

async fn remove(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    service::model_aliases::remove(&state.ctx, &caller, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
