use axum::Json;
use axum::extract::{Path, State};
use http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::Data;
use super::error::{ApiError, ApiErrorBody};
use super::extract::{ApiCaller, ApiJson, Decimal, List, decimal, nullable, rate_limit};
use crate::service::rate_limits::RateLimitInput;
use crate::service::tokens::{CreateToken, UpdateToken};
use crate::service::views::{NewTokenView, TokenView};
use crate::service::{self};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, update, remove))
}

/// The account's API keys.
#[utoipa::path(get, path = "/users/{username}/tokens",
    responses(
        (status = 200, description = "Its keys", body = Data<TokenView>),
        (status = 404, description = "No such account", body = ApiErrorBody),
    ))]
async fn list(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Path(username): Path<String>,
) -> Result<Json<Data<TokenView>>, ApiError> {
    let tokens = service::tokens::list_for_user(&state.ctx, &caller, &username).await?;
    Ok(Data::of(service::tokens::views(&state.ctx, &tokens).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateTokenBody {
    name: String,
    /// The key's own quota in dollars; without it the key is unlimited.
    #[serde(default, deserialize_with = "decimal")]
    #[schema(value_type = Option<Decimal>)]
    quota_usd: Option<String>,
    /// A date (`2027-01-01`) or an RFC 3339 instant.
    expires: Option<String>,
    /// The models it may use: a list, or one comma-separated string.
    models: Option<List>,
    /// The addresses or CIDR ranges it may be used from.
    allow_ips: Option<List>,
    group: Option<String>,
    /// `daily`, `weekly` or `monthly`.
    budget_period: Option<String>,
    /// Dollars per budget period.
    #[serde(default, deserialize_with = "decimal")]
    #[schema(value_type = Option<Decimal>)]
    budget_usd: Option<String>,
    /// A team key: the organisation's slug, with `team`. It spends the organisation's wallet
    /// through the team, which the account must be a member of.
    org: Option<String>,
    /// The team's id, with `org`. Fixed once the key is made.
    team: Option<i64>,
    /// The key's own rate limits (absent or null: its group's, if any); counted on this key.
    /// Requests per minute.
    #[serde(default, deserialize_with = "rate_limit")]
    #[schema(value_type = Option<u64>)]
    rpm: Option<String>,
    /// Tokens per minute, input and output together; null: no limit.
    #[serde(default, deserialize_with = "rate_limit")]
    #[schema(value_type = Option<u64>)]
    tpm: Option<String>,
    /// Requests in flight at once; null: no limit.
    #[serde(default, deserialize_with = "rate_limit")]
    #[schema(value_type = Option<u64>)]
    max_concurrent: Option<String>,
}

/// Makes an API key for the account: the answer's `key` is the only time it is shown.
#[utoipa::path(post, path = "/users/{username}/tokens", request_body = CreateTokenBody,
    responses(
        (status = 201, description = "The new key, with `key` in full", body = NewTokenView),
        (status = 404, description = "No such account", body = ApiErrorBody),
    ))]
async fn create(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Path(username): Path<String>,
    ApiJson(body): ApiJson<CreateTokenBody>,
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
            org: body.org,
            team: body.team.map(|id| id.to_string()),
            rate_limits: RateLimitInput {
                rpm: body.rpm,
                tpm: body.tpm,
                max_concurrent: body.max_concurrent,
            },
        },
    )
    .await?;
    let token = service::tokens::view(&state.ctx, &token).await?;
    Ok((StatusCode::CREATED, Json(NewTokenView { key, token })))
}

#[utoipa::path(get, path = "/tokens/{id}",
    responses(
        (status = 200, description = "The key", body = TokenView),
        (status = 404, description = "No such key", body = ApiErrorBody),
    ))]
async fn show(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<TokenView>, ApiError> {
    let token = service::tokens::get(&state.ctx, &caller, id).await?;
    Ok(Json(service::tokens::view(&state.ctx, &token).await?))
}

/// The fields to change; absent ones stay as they are.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct UpdateTokenBody {
    name: Option<String>,
    /// `active` or `disabled`.
    status: Option<String>,
    /// Null: never expires.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    expires: Option<Option<String>>,
    #[serde(default, deserialize_with = "decimal")]
    #[schema(value_type = Option<Decimal>)]
    quota_usd: Option<String>,
    unlimited: Option<bool>,
    models: Option<List>,
    allow_ips: Option<List>,
    group: Option<String>,
    /// Empty or null: no budget.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    budget_period: Option<Option<String>>,
    #[serde(default, deserialize_with = "decimal")]
    #[schema(value_type = Option<Decimal>)]
    budget_usd: Option<String>,
    /// The key's own rate limits; null clears one (the group's applies again).
    /// Requests per minute.
    #[serde(default, deserialize_with = "rate_limit")]
    #[schema(value_type = Option<u64>)]
    rpm: Option<String>,
    /// Tokens per minute, input and output together; null: no limit.
    #[serde(default, deserialize_with = "rate_limit")]
    #[schema(value_type = Option<u64>)]
    tpm: Option<String>,
    /// Requests in flight at once; null: no limit.
    #[serde(default, deserialize_with = "rate_limit")]
    #[schema(value_type = Option<u64>)]
    max_concurrent: Option<String>,
}

/// Changes a key.
#[utoipa::path(patch, path = "/tokens/{id}", request_body = UpdateTokenBody,
    responses(
        (status = 200, description = "The key as changed", body = TokenView),
        (status = 404, description = "No such key", body = ApiErrorBody),
    ))]
async fn update(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<UpdateTokenBody>,
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
            rate_limits: RateLimitInput {
                rpm: body.rpm,
                tpm: body.tpm,
                max_concurrent: body.max_concurrent,
            },
        },
    )
    .await?;
    Ok(Json(service::tokens::view(&state.ctx, &token).await?))
}

/// Deletes a key: it stops working at once.
#[utoipa::path(delete, path = "/tokens/{id}",
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such key", body = ApiErrorBody),
    ))]
async fn remove(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    service::tokens::delete(&state.ctx, &caller, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
