use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::ApiError;
use super::extract::{ApiCaller, ApiJson, decimal, nullable};
use super::quota_per_usd as qpu;
use crate::service::users::{CreateUser, QuotaChange, UpdateUser};
use crate::service::views::{SessionView, UserView};
use crate::service::{self};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/users", get(list).post(create))
        .route("/users/{username}", get(show).patch(update))
        .route("/users/{username}/quota", post(change_quota))
        .route(
            "/users/{username}/sessions",
            get(sessions).delete(end_sessions),
        )
        .route(
            "/users/{username}/sessions/{id}",
            axum::routing::delete(end_session),
        )
}

#[derive(Deserialize)]
struct Page {
    limit: Option<i64>,
    offset: Option<i64>,
}

async fn list(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Query(page): Query<Page>,
) -> Result<Json<Value>, ApiError> {
    let users = service::users::list(
        &state.ctx,
        &caller,
        page.limit.unwrap_or(100),
        page.offset.unwrap_or(0),
    )
    .await?;
    let qpu = qpu(&state);
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
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateBody>,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    let user = service::users::create(
        &state.ctx,
        &caller,
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
    Ok((StatusCode::CREATED, Json(UserView::new(&user, qpu(&state)))))
}

async fn show(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Path(username): Path<String>,
) -> Result<Json<UserView>, ApiError> {
    let user = service::users::get(&state.ctx, &caller, &username).await?;
    Ok(Json(UserView::new(&user, qpu(&state))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    username: Option<String>,
    password: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    email: Option<Option<String>>,
    display_name: Option<String>,
    role: Option<String>,
    status: Option<String>,
    group: Option<String>,
}

async fn update(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Path(username): Path<String>,
    ApiJson(body): ApiJson<UpdateBody>,
) -> Result<Json<UserView>, ApiError> {
    let user = service::users::update(
        &state.ctx,
        &caller,
        &username,
        UpdateUser {
            username: body.username,
            password: body.password,
            email: body.email,
            display_name: body.display_name,
            role: body.role,
            status: body.status,
            group: body.group,
        },
    )
    .await?;
    Ok(Json(UserView::new(&user, qpu(&state))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QuotaBody {
    #[serde(default, deserialize_with = "decimal")]
    usd: Option<String>,
    units: Option<i64>,
    /// Why, for the ledger.
    reason: Option<String>,
    /// The same key twice changes the balance once (also taken from `Idempotency-Key`).
    idempotency_key: Option<String>,
}

/// Adds to a balance (a negative amount deducts), with a ledger row. A key sent before
/// changes nothing and answers with the balance as it is.
async fn change_quota(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Path(username): Path<String>,
    headers: http::HeaderMap,
    ApiJson(body): ApiJson<QuotaBody>,
) -> Result<impl IntoResponse, ApiError> {
    let header_key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let changed = service::users::change_quota(
        &state.ctx,
        &caller,
        &username,
        QuotaChange {
            usd: body.usd,
            units: body.units,
            reason: body.reason,
            idempotency_key: body.idempotency_key.or(header_key),
        },
    )
    .await?;
    let view = Json(UserView::new(&changed.user, qpu(&state)));
    // Like Stripe's: tells a client retrying a request that this answer is the first one's.
    let replayed = (!changed.applied).then_some([("idempotent-replayed", "true")]);
    Ok((replayed, view))
}

/// The account's sign-in sessions that have not expired, most recently seen first.
async fn sessions(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Path(username): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let sessions = service::sessions::list_of(&state.ctx, &caller, &username).await?;
    let data: Vec<SessionView> = sessions.iter().map(SessionView::new).collect();
    Ok(Json(json!({ "data": data })))
}

/// Signs the account out everywhere.
async fn end_sessions(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Path(username): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let ended = service::sessions::end_of(&state.ctx, &caller, &username, None).await?;
    Ok(Json(json!({ "ended": ended })))
}

/// Ends one of the account's sessions.
async fn end_session(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Path((username, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    service::sessions::end_of(&state.ctx, &caller, &username, Some(&id)).await?;
    Ok(StatusCode::NO_CONTENT)
}
