use axum::extract::{Path, State};
use axum::routing::{get, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::ApiError;
use super::extract::{ApiCaller, ApiJson};
use crate::options::OptionInfo;
use crate::service::{self};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/options", get(list))
        .route("/options/{name}", put(set).delete(reset))
}

async fn list(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        json!({ "data": service::options::list(&state.ctx, &caller).await? }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OptionBody {
    value: serde_json::Value,
}

async fn set(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<OptionBody>,
) -> Result<Json<OptionInfo>, ApiError> {
    let value = match body.value {
        serde_json::Value::String(text) => text,
        other => other.to_string(),
    };
    let info = service::options::set(&state.ctx, &caller, &name, &value).await?;
    Ok(Json(info))
}

async fn reset(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<OptionInfo>, ApiError> {
    let info = service::options::reset(&state.ctx, &caller, &name).await?;
    Ok(Json(info))
}
