use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use http::StatusCode;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::Data;
use super::error::{ApiError, ApiErrorBody};
use super::extract::{ApiCaller, ApiJson, Decimal, decimal, nullable, rate_limit};
use super::quota_per_usd as qpu;
use crate::service::rate_limits::RateLimitInput;
use crate::service::users::{CreateUser, QuotaChange, UpdateUser};
use crate::service::views::{SessionView, UserView};
use crate::service::{self};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, update))
        .routes(routes!(change_quota))
        .routes(routes!(sessions, end_sessions))
        .routes(routes!(end_session))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct Page {
    /// Find accounts by username, email or id, as the console's search does (at most 200;
    /// `limit` and `offset` then do not apply).
    q: Option<String>,
    /// At most this many (default 100).
    limit: Option<i64>,
    /// Skip this many first (default 0).
    offset: Option<i64>,
}

/// Accounts, by id.
#[utoipa::path(get, path = "/users", params(Page),
    responses((status = 200, description = "The accounts", body = Data<UserView>)))]
async fn list(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Query(page): Query<Page>,
) -> Result<Json<Data<UserView>>, ApiError> {
    let users = match page.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
        Some(q) => service::users::search(&state.ctx, &caller, q).await?,
        None => {
            service::users::list(
                &state.ctx,
                &caller,
                page.limit.unwrap_or(100),
                page.offset.unwrap_or(0),
            )
            .await?
        }
    };
    let qpu = qpu(&state);
    Ok(Data::of(
        users.iter().map(|u| UserView::new(u, qpu)).collect(),
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateUserBody {
    username: String,
    /// Without one the account signs in through a reset link or a provider.
    password: Option<String>,
    email: Option<String>,
    /// `user` (default), `admin` or `root`.
    role: Option<String>,
    group: Option<String>,
    /// The opening balance in dollars, as a number or a decimal string.
    #[serde(default, deserialize_with = "decimal")]
    #[schema(value_type = Option<Decimal>)]
    quota_usd: Option<String>,
    /// Rate limits on all of the account's keys together.
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

/// Creates an account.
#[utoipa::path(post, path = "/users", request_body = CreateUserBody,
    responses(
        (status = 201, description = "The new account", body = UserView),
        (status = 403, description = "Only root makes administrators", body = ApiErrorBody),
        (status = 409, description = "The username or email is taken", body = ApiErrorBody),
    ))]
async fn create(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateUserBody>,
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
            rate_limits: RateLimitInput {
                rpm: body.rpm,
                tpm: body.tpm,
                max_concurrent: body.max_concurrent,
            },
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(UserView::new(&user, qpu(&state)))))
}

#[utoipa::path(get, path = "/users/{username}",
    responses(
        (status = 200, description = "The account", body = UserView),
        (status = 404, description = "No such account", body = ApiErrorBody),
    ))]
async fn show(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Path(username): Path<String>,
) -> Result<Json<UserView>, ApiError> {
    let user = service::users::get(&state.ctx, &caller, &username).await?;
    Ok(Json(UserView::new(&user, qpu(&state))))
}

/// The fields to change; absent ones stay as they are.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct UpdateUserBody {
    /// A new username: renames the account.
    username: Option<String>,
    password: Option<String>,
    /// Null removes the address.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    email: Option<Option<String>>,
    display_name: Option<String>,
    role: Option<String>,
    status: Option<String>,
    group: Option<String>,
    /// Rate limits on all of the account's keys together; null clears one.
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

/// Changes an account.
#[utoipa::path(patch, path = "/users/{username}", request_body = UpdateUserBody,
    responses(
        (status = 200, description = "The account as changed", body = UserView),
        (status = 403, description = "Only root changes administrators", body = ApiErrorBody),
        (status = 404, description = "No such account", body = ApiErrorBody),
        (status = 409, description = "The new username or email is taken", body = ApiErrorBody),
    ))]
async fn update(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Path(username): Path<String>,
    ApiJson(body): ApiJson<UpdateUserBody>,
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
            rate_limits: RateLimitInput {
                rpm: body.rpm,
                tpm: body.tpm,
                max_concurrent: body.max_concurrent,
            },
        },
    )
    .await?;
    Ok(Json(UserView::new(&user, qpu(&state))))
}

/// `usd` or `units`, and why.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct QuotaBody {
    /// Dollars, as a number or a decimal string.
    #[serde(default, deserialize_with = "decimal")]
    #[schema(value_type = Option<Decimal>)]
    usd: Option<String>,
    /// Quota units.
    units: Option<i64>,
    /// Why, for the ledger.
    reason: Option<String>,
    /// The same key twice changes the balance once (also taken from `Idempotency-Key`).
    idempotency_key: Option<String>,
}

/// Adds to a balance (a negative amount deducts), with a ledger row. A key sent before
/// changes nothing and answers with the balance as it is.
#[utoipa::path(post, path = "/users/{username}/quota", request_body = QuotaBody,
    params(("Idempotency-Key" = Option<String>, Header,
        description = "The same key twice changes the balance once")),
    responses(
        (status = 200, description = "The account with its new balance", body = UserView,
            headers(("Idempotent-Replayed" = String,
                description = "`true` when the key was seen before: this is the first answer's balance"))),
        (status = 404, description = "No such account", body = ApiErrorBody),
    ))]
async fn change_quota(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Path(username): Path<String>,
    headers: http::HeaderMap,
    ApiJson(body): ApiJson<QuotaBody>,
) -> Result<impl IntoResponse, ApiError> {
    let change = body.into_change(&headers);
    let changed = service::users::change_quota(&state.ctx, &caller, &username, change).await?;
    let view = Json(UserView::new(&changed.user, qpu(&state)));
    Ok((replayed(changed.applied), view))
}

impl QuotaBody {
    /// The change asked for; the key from the body, else from the `Idempotency-Key` header.
    pub(super) fn into_change(self, headers: &http::HeaderMap) -> QuotaChange {
        let header_key = headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        QuotaChange {
            usd: self.usd,
            units: self.units,
            reason: self.reason,
            idempotency_key: self.idempotency_key.or(header_key),
        }
    }
}

/// Like Stripe's: tells a client retrying a request that this answer is the first one's.
pub(super) fn replayed(applied: bool) -> Option<[(&'static str, &'static str); 1]> {
    (!applied).then_some([("idempotent-replayed", "true")])
}

/// The account's sign-in sessions that have not expired, most recently seen first.
#[utoipa::path(get, path = "/users/{username}/sessions",
    responses(
        (status = 200, description = "Its sessions", body = Data<SessionView>),
        (status = 404, description = "No such account", body = ApiErrorBody),
    ))]
async fn sessions(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Path(username): Path<String>,
) -> Result<Json<Data<SessionView>>, ApiError> {
    let sessions = service::sessions::list_of(&state.ctx, &caller, &username).await?;
    Ok(Data::of(sessions.iter().map(SessionView::new).collect()))
}

#[derive(serde::Serialize, ToSchema)]
struct Ended {
    /// How many sessions ended.
    ended: u64,
}

/// Signs the account out everywhere.
#[utoipa::path(delete, path = "/users/{username}/sessions",
    responses(
        (status = 200, description = "Every session ended", body = Ended),
        (status = 404, description = "No such account", body = ApiErrorBody),
    ))]
async fn end_sessions(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Path(username): Path<String>,
) -> Result<Json<Ended>, ApiError> {
    let ended = service::sessions::end_of(&state.ctx, &caller, &username, None).await?;
    Ok(Json(Ended { ended }))
}

/// Ends one of the account's sessions.
#[utoipa::path(delete, path = "/users/{username}/sessions/{id}",
    responses(
        (status = 204, description = "The session ended"),
        (status = 404, description = "No such account or session", body = ApiErrorBody),
    ))]
async fn end_session(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Path((username, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    service::sessions::end_of(&state.ctx, &caller, &username, Some(&id)).await?;
    Ok(StatusCode::NO_CONTENT)
}
