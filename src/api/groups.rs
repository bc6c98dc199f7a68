use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::ApiError;
use super::extract::{ApiCaller, ApiJson, decimal};
use crate::service::groups::GroupInput;
use crate::service::views::GroupView;
use crate::service::{self};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/groups", get(list).post(create))
        .route("/groups/{name}", get(show).patch(update).delete(remove))
}

async fn list(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
) -> Result<Json<Value>, ApiError> {
    let groups = service::groups::list(&state.ctx, &caller).await?;
    let data: Vec<GroupView> = groups.iter().map(GroupView::new).collect();
    Ok(Json(json!({ "data": data })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupBody {
    name: Option<String>,
    #[serde(default, deserialize_with = "decimal")]
    ratio: Option<String>,
    description: Option<String>,
    user_selectable: Option<bool>,
}

impl GroupBody {
    fn input(self) -> GroupInput {
        GroupInput {
            ratio: self.ratio,
            description: self.description,
            user_selectable: self.user_selectable,
        }
    }
}

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

async fn show(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<GroupView>, ApiError> {
    Ok(Json(GroupView::new(
        &service::groups::get(&state.ctx, &caller, &name).await?,
    )))
}

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

async fn remove(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    service::groups::delete(&state.ctx, &caller, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
