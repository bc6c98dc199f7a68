use axum::extract::{DefaultBodyLimit, Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::ApiError;
use super::extract::{ApiCaller, ApiJson, decimal};
use crate::service::prices::PriceInput;
use crate::service::views::{PriceImportView, PriceView};
use crate::service::{self};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/prices", get(list))
        // LiteLLM's whole price file is larger than the usual body limit.
        .route(
            "/prices/import",
            post(import).layer(DefaultBodyLimit::max(8 * 1024 * 1024)),
        )
        // Model names may contain slashes.
        .route("/prices/{*model}", get(show).put(set).delete(remove))
}

async fn list(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
) -> Result<Json<Value>, ApiError> {
    let prices = service::prices::list(&state.ctx, &caller).await?;
    let data: Vec<PriceView> = prices.iter().map(PriceView::new).collect();
    Ok(Json(json!({ "data": data })))
}

async fn show(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Path(model): Path<String>,
) -> Result<Json<PriceView>, ApiError> {
    Ok(Json(PriceView::new(
        &service::prices::get(&state.ctx, &caller, &model).await?,
    )))
}

/// Dollars per 1M tokens, or per request.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PriceBody {
    #[serde(default, deserialize_with = "decimal")]
    input: Option<String>,
    #[serde(default, deserialize_with = "decimal")]
    output: Option<String>,
    #[serde(default, deserialize_with = "decimal")]
    cached_input: Option<String>,
    #[serde(default, deserialize_with = "decimal")]
    cache_write: Option<String>,
    #[serde(default, deserialize_with = "decimal")]
    per_request: Option<String>,
    /// Tokens, as a JSON integer (or its digits in a string).
    #[serde(default, deserialize_with = "decimal")]
    context_tokens: Option<String>,
}

async fn set(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Path(model): Path<String>,
    ApiJson(body): ApiJson<PriceBody>,
) -> Result<Json<PriceView>, ApiError> {
    let input = PriceInput {
        input: body.input,
        output: body.output,
        cached_input: body.cached_input,
        cache_write: body.cache_write,
        per_request: body.per_request,
        context_tokens: body.context_tokens,
    };
    let price = service::prices::set(&state.ctx, &caller, &model, &input).await?;
    Ok(Json(PriceView::new(&price)))
}

async fn remove(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Path(model): Path<String>,
) -> Result<StatusCode, ApiError> {
    service::prices::delete(&state.ctx, &caller, &model).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `{"format": "oneapi" | "litellm", "data": {…} or its JSON text, "dry_run": true}`
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportBody {
    format: String,
    data: Value,
    #[serde(default)]
    dry_run: bool,
}

/// Imports another gateway's price table; with `dry_run` answers what it would change and
/// stores nothing.
async fn import(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ImportBody>,
) -> Result<Json<PriceImportView>, ApiError> {
    let data = match body.data {
        Value::String(text) => text,
        other => other.to_string(),
    };
    let import =
        service::prices::import(&state.ctx, &caller, &body.format, &data, body.dry_run).await?;
    Ok(Json(PriceImportView::new(&import)))
}
