use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::ApiError;
use super::extract::{ApiCaller, ApiJson, List, decimal, nullable};
use super::quota_per_usd as qpu;
use crate::service::tokens::{CreateToken, UpdateToken};
use crate::service::views::{NewTokenView, TokenView};
use crate::service::{self};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/users/{username}/tokens", get(list).post(create))
        .route("/tokens/{id}", get(show).patch(update).delete(remove))
}

async fn list(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Path(username): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let tokens = service::tokens::list_for_user(&state.ctx, &caller, &username).await?;
    let qpu = qpu(&state);
    let data: Vec<TokenView> = tokens.iter().map(|t| TokenView::new(t, qpu)).collect();
    Ok(Json(json!({ "data": data })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    name: String,
    #[serde(default, deserialize_with = "decimal")]
    quota_usd: Option<String>,
    expires: Option<String>,
    models: Option<List>,
    allow_ips: Option<List>,
    group: Option<String>,
    budget_period: Option<String>,
    #[serde(default, deserialize_with = "decimal")]
    budget_usd: Option<String>,
}

async fn create(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Path(username): Path<String>,
    ApiJson(body): ApiJson<CreateBody>,
) -> Result<(StatusCode, Json<NewTokenView>), ApiError> {
    let (token, key) = service::tokens::create(
        &state.ctx,
        &caller,
        CreateToken {
            username,
            name: body.name,
            quota_usd: body.quota_usd,
            expires: body.expires,
            models: body.models.map(List::joined),
            allow_ips: body.allow_ips.map(List::joined),
            group: body.group,
            budget_period: body.budget_period,
            budget_usd: body.budget_usd,
            form_key: None,
        },
    )
    .await?;
    let token = TokenView::new(&token, qpu(&state));
    Ok((StatusCode::CREATED, Json(NewTokenView { key, token })))
}

async fn show(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<TokenView>, ApiError> {
    let token = service::tokens::get(&state.ctx, &caller, id).await?;
    Ok(Json(TokenView::new(&token, qpu(&state))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    name: Option<String>,
    status: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    expires: Option<Option<String>>,
    #[serde(default, deserialize_with = "decimal")]
    quota_usd: Option<String>,
    unlimited: Option<bool>,
    models: Option<List>,
    allow_ips: Option<List>,
    group: Option<String>,
    /// Empty or null: no budget.
    #[serde(default, deserialize_with = "nullable")]
    budget_period: Option<Option<String>>,
    #[serde(default, deserialize_with = "decimal")]
    budget_usd: Option<String>,
}

async fn update(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<UpdateBody>,
) -> Result<Json<TokenView>, ApiError> {
    let token = service::tokens::update(
        &state.ctx,
        &caller,
        id,
        UpdateToken {
            name: body.name,
            status: body.status,
            expires: body.expires,
            quota_usd: body.quota_usd,
            unlimited: body.unlimited,
            models: body.models.map(List::joined),
            allow_ips: body.allow_ips.map(List::joined),
            group: body.group,
            budget_period: body.budget_period.map(Option::unwrap_or_default),
            budget_usd: body.budget_usd,
        },
    )
    .await?;
    Ok(Json(TokenView::new(&token, qpu(&state))))
}

async fn remove(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    service::tokens::delete(&state.ctx, &caller, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
