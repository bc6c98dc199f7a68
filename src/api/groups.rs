use axum::Json;
use axum::extract::{Path, State};
use http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::Data;
use super::error::{ApiError, ApiErrorBody};
use super::extract::{ApiCaller, ApiJson, Decimal, decimal, rate_limit};
use crate::service::groups::GroupInput;
use crate::service::rate_limits::RateLimitInput;
use crate::service::views::GroupView;
use crate::service::{self};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, update, remove))
}

#[utoipa::path(get, path = "/groups",
    responses((status = 200, description = "The groups", body = Data<GroupView>)))]
async fn list(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
) -> Result<Json<Data<GroupView>>, ApiError> {
    let groups = service::groups::list(&state.ctx, &caller).await?;
    Ok(Data::of(groups.iter().map(GroupView::new).collect()))
}

/// A group's settings; a change leaves absent ones as they are.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct GroupBody {
    /// Required to create; a group cannot be renamed.
    name: Option<String>,
    /// Price multiplier, as a number or a decimal string (e.g. 1.5).
    #[serde(default, deserialize_with = "decimal")]
    #[schema(value_type = Option<Decimal>)]
    ratio: Option<String>,
    description: Option<String>,
    user_selectable: Option<bool>,
    /// Rate limits of each key of the group that sets none of its own, counted per key; null
    /// clears one.
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

impl GroupBody {
    fn input(self) -> GroupInput {
        GroupInput {
            ratio: self.ratio,
            description: self.description,
            user_selectable: self.user_selectable,
            rate_limits: RateLimitInput {
                rpm: self.rpm,
                tpm: self.tpm,
                max_concurrent: self.max_concurrent,
            },
        }
    }
}

/// Creates a group.
#[utoipa::path(post, path = "/groups", request_body = GroupBody,
    responses(
        (status = 201, description = "The new group", body = GroupView),
        (status = 409, description = "The name is taken", body = ApiErrorBody),
    ))]
async fn create(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    ApiJson(mut body): ApiJson<GroupBody>,
) -> Result<(StatusCode, Json<GroupView>), ApiError> {
    let name = body
        .name
        .take()
        .ok_or_else(|| ApiError::bad_request("name: is required"))?;
    let group = service::groups::create(&state.ctx, &caller, &name, body.input()).await?;
    Ok((StatusCode::CREATED, Json(GroupView::new(&group))))
}

#[utoipa::path(get, path = "/groups/{name}",
    responses(
        (status = 200, description = "The group", body = GroupView),
        (status = 404, description = "No such group", body = ApiErrorBody),
    ))]
async fn show(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<GroupView>, ApiError> {
    Ok(Json(GroupView::new(
        &service::groups::get(&state.ctx, &caller, &name).await?,
    )))
}

/// Changes a group.
#[utoipa::path(patch, path = "/groups/{name}", request_body = GroupBody,
    responses(
        (status = 200, description = "The group as changed", body = GroupView),
        (status = 404, description = "No such group", body = ApiErrorBody),
    ))]
async fn update(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<GroupBody>,
) -> Result<Json<GroupView>, ApiError> {
    if body.name.as_deref().is_some_and(|n| n != name) {
        return Err(ApiError::bad_request("name: a group cannot be renamed"));
    }
    let group = service::groups::update(&state.ctx, &caller, &name, body.input()).await?;
    Ok(Json(GroupView::new(&group)))
}

/// Deletes a group no account, key or channel uses.
#[utoipa::path(delete, path = "/groups/{name}",
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such group", body = ApiErrorBody),
        (status = 409, description = "The group is in use", body = ApiErrorBody),
    ))]
async fn remove(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    service::groups::delete(&state.ctx, &caller, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
