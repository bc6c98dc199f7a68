use axum::extract::{Path, State};
use axum::routing::{delete, get};
use axum::{Json, Router};
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::ApiError;
use super::extract::{Admin, ApiJson};
use crate::service::views::AliasView;
use crate::service::{self};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/model-aliases", get(list).post(add))
        // Model names may contain slashes.
        .route("/model-aliases/{*name}", delete(remove))
}

async fn list(_admin: Admin, State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let aliases = service::model_aliases::list(&state.db).await?;
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
    _admin: Admin,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<AliasBody>,
) -> Result<(StatusCode, Json<AliasView>), ApiError> {
    let alias = service::model_aliases::add(&state.db, &body.name, &body.to).await?;
    super::refresh(&state).await;
    Ok((StatusCode::CREATED, Json(AliasView::new(&alias))))
}

async fn remove(
    _admin: Admin,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    service::model_aliases::remove(&state.db, &name).await?;
    super::refresh(&state).await;
    Ok(StatusCode::NO_CONTENT)
}
