use axum::Json;
use axum::extract::{DefaultBodyLimit, Path, State};
use http::StatusCode;
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use super::Data;
use super::error::{ApiError, ApiErrorBody};
use super::extract::{ApiCaller, ApiJson, Decimal, decimal};
use crate::service::prices::PriceInput;
use crate::service::views::{PriceImportView, PriceView};
use crate::service::{self};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        // LiteLLM's whole price file is larger than the usual body limit.
        .routes(routes!(import).layer(DefaultBodyLimit::max(8 * 1024 * 1024)))
        // Model names may contain slashes: a catch-all segment.
        .routes(routes!(show, set, remove))
}

#[utoipa::path(get, path = "/prices",
    responses((status = 200, description = "Every model's price", body = Data<PriceView>)))]
async fn list(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
) -> Result<Json<Data<PriceView>>, ApiError> {
    let prices = service::prices::list(&state.ctx, &caller).await?;
    Ok(Data::of(prices.iter().map(PriceView::new).collect()))
}

#[utoipa::path(get, path = "/prices/{*model}",
    params(("model" = String, Path, description = "The model's name; it may hold slashes")),
    responses(
        (status = 200, description = "The model's price", body = PriceView),
        (status = 404, description = "The model has no price", body = ApiErrorBody),
    ))]
async fn show(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Path(model): Path<String>,
) -> Result<Json<PriceView>, ApiError> {
    Ok(Json(PriceView::new(
        &service::prices::get(&state.ctx, &caller, &model).await?,
    )))
}

/// Dollars per 1M tokens, or per request; each a number or a decimal string.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PriceBody {
    #[serde(default, deserialize_with = "decimal")]
    #[schema(value_type = Option<Decimal>)]
    input: Option<String>,
    #[serde(default, deserialize_with = "decimal")]
    #[schema(value_type = Option<Decimal>)]
    output: Option<String>,
    #[serde(default, deserialize_with = "decimal")]
    #[schema(value_type = Option<Decimal>)]
    cached_input: Option<String>,
    #[serde(default, deserialize_with = "decimal")]
    #[schema(value_type = Option<Decimal>)]
    cache_write: Option<String>,
    #[serde(default, deserialize_with = "decimal")]
    #[schema(value_type = Option<Decimal>)]
    per_request: Option<String>,
    /// Tokens, as a JSON integer (or its digits in a string).
    #[serde(default, deserialize_with = "decimal")]
    #[schema(value_type = Option<Decimal>)]
    context_tokens: Option<String>,
}

/// Sets a model's price.
#[utoipa::path(put, path = "/prices/{*model}", request_body = PriceBody,
    params(("model" = String, Path, description = "The model's name; it may hold slashes")),
    responses((status = 200, description = "The price as stored", body = PriceView)))]
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

#[utoipa::path(delete, path = "/prices/{*model}",
    params(("model" = String, Path, description = "The model's name; it may hold slashes")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "The model has no price", body = ApiErrorBody),
    ))]
async fn remove(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Path(model): Path<String>,
) -> Result<StatusCode, ApiError> {
    service::prices::delete(&state.ctx, &caller, &model).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `{"format": "oneapi" | "litellm", "data": {…} or its JSON text, "dry_run": true}`
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ImportPricesBody {
    /// `oneapi` or `litellm`.
    format: String,
    /// The other gateway's price table, as JSON or its text.
    #[schema(value_type = Object)]
    data: Value,
    #[serde(default)]
    dry_run: bool,
}

/// Imports another gateway's price table; with `dry_run` answers what it would change and
/// stores nothing.
#[utoipa::path(post, path = "/prices/import", request_body = ImportPricesBody,
    responses((status = 200, description = "What changed (or would change)", body = PriceImportView)))]
async fn import(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ImportPricesBody>,
) -> Result<Json<PriceImportView>, ApiError> {
    let data = match body.data {
        Value::String(text) => text,
        other => other.to_string(),
    };
    let import =
        service::prices::import(&state.ctx, &caller, &body.format, &data, body.dry_run).await?;
    Ok(Json(PriceImportView::new(&import)))
}
