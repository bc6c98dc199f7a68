use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::ApiError;
use super::extract::{Admin, ApiJson, decimal, nullable};
use super::quota_per_usd as qpu;
use crate::domain::kinds::Role;
use crate::service::users::{CreateUser, QuotaChange, UpdateUser};
use crate::service::views::UserView;
use crate::service::{self};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/users", get(list).post(create))
        .route("/users/{username}", get(show).patch(update))
        .route("/users/{username}/quota", post(change_quota))
}

#[derive(Deserialize)]
struct Page {
    limit: Option<i64>,
    offset: Option<i64>,
}

async fn list(
    _admin: Admin,
    State(state): State<AppState>,
    Query(page): Query<Page>,
) -> Result<Json<Value>, ApiError> {
    let users = service::users::list(
        &state.db,
        page.limit.unwrap_or(100),
        page.offset.unwrap_or(0),
    )
    .await?;
    let qpu = qpu(&state).await?;
    let data: Vec<UserView> = users.iter().map(|u| UserView::new(u, qpu)).collect();
    Ok(Json(json!({ "data": data })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    username: String,
    password: Option<String>,
    email: Option<String>,
    role: Option<String>,
    group: Option<String>,
    #[serde(default, deserialize_with = "decimal")]
    quota_usd: Option<String>,
}

async fn create(
    admin: Admin,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateBody>,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    if let Some(role) = body.role.as_deref().and_then(Role::parse) {
        admin.may_manage_role(role)?;
    }
    let user = service::users::create(
        &state.db,
        CreateUser {
            username: body.username,
            password: body.password,
            email: body.email,
            role: body.role,
            group: body.group,
            quota_usd: body.quota_usd,
        },
    )
    .await?;
    super::refresh(&state).await;
    Ok((
        StatusCode::CREATED,
        Json(UserView::new(&user, qpu(&state).await?)),
    ))
}

async fn show(
    _admin: Admin,
    State(state): State<AppState>,
    Path(username): Path<String>,
) -> Result<Json<UserView>, ApiError> {
    let user = service::users::get(&state.db, &username).await?;
    Ok(Json(UserView::new(&user, qpu(&state).await?)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    password: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    email: Option<Option<String>>,
    display_name: Option<String>,
    role: Option<String>,
    status: Option<String>,
    group: Option<String>,
}

async fn update(
    admin: Admin,
    State(state): State<AppState>,
    Path(username): Path<String>,
    ApiJson(body): ApiJson<UpdateBody>,
) -> Result<Json<UserView>, ApiError> {
    let current = service::users::get(&state.db, &username).await?;
    admin.may_manage_role(current.role)?;
    if let Some(role) = body.role.as_deref().and_then(Role::parse) {
        admin.may_manage_role(role)?;
    }
    let user = service::users::update(
        &state.db,
        &username,
        UpdateUser {
            password: body.password,
            email: body.email,
            display_name: body.display_name,
            role: body.role,
            status: body.status,
            group: body.group,
        },
    )
    .await?;
    super::refresh(&state).await;
    Ok(Json(UserView::new(&user, qpu(&state).await?)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QuotaBody {
    #[serde(default, deserialize_with = "decimal")]
    usd: Option<String>,
    units: Option<i64>,
}

/// Adds to a balance (a negative amount deducts).
async fn change_quota(
    _admin: Admin,
    State(state): State<AppState>,
    Path(username): Path<String>,
    ApiJson(body): ApiJson<QuotaBody>,
) -> Result<Json<UserView>, ApiError> {
    let user = service::users::change_quota(
        &state.db,
        &username,
        QuotaChange {
            usd: body.usd,
            units: body.units,
        },
    )
    .await?;
    super::refresh(&state).await;
    Ok(Json(UserView::new(&user, qpu(&state).await?)))
}
