//! `/api/admin-tokens`: the tokens `/api` takes. A token is in the answer that makes it, and
//! nowhere else; revoking one stops it at once.

use axum::Json;
use axum::extract::{Path, State};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::Data;
use super::error::{ApiError, ApiErrorBody};
use super::extract::{ApiCaller, ApiJson};
use crate::service::views::AdminTokenView;
use crate::service::{self};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(revoke))
}

/// The admin tokens, never the tokens themselves.
#[utoipa::path(get, path = "/admin-tokens",
    responses((status = 200, description = "The tokens", body = Data<AdminTokenView>)))]
async fn list(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
) -> Result<Json<Data<AdminTokenView>>, ApiError> {
    let tokens = service::admin_tokens::list(&state.ctx, &caller).await?;
    Ok(Data::of(tokens.iter().map(AdminTokenView::new).collect()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateAdminTokenBody {
    name: String,
    /// The administrator the token acts as; the caller's own account when absent.
    user: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct NewAdminToken {
    /// The token in full: the only time it is shown.
    token: String,
    admin_token: AdminTokenView,
}

/// Makes an admin token; another administrator's is root's alone to make.
#[utoipa::path(post, path = "/admin-tokens", request_body = CreateAdminTokenBody,
    responses(
        (status = 201, description = "The new token", body = NewAdminToken),
        (status = 403, description = "Only root makes tokens for another administrator", body = ApiErrorBody),
        (status = 404, description = "No such administrator", body = ApiErrorBody),
    ))]
async fn create(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateAdminTokenBody>,
) -> Result<(StatusCode, Json<NewAdminToken>), ApiError> {
    let (token, plain) =
        service::admin_tokens::create_for(&state.ctx, &caller, body.user.as_deref(), &body.name)
            .await?;
    Ok((
        StatusCode::CREATED,
        Json(NewAdminToken {
            token: plain,
            admin_token: AdminTokenView::new(&token),
        }),
    ))
}

/// Revokes a token: `/api` refuses it at once.
#[utoipa::path(delete, path = "/admin-tokens/{id}",
    responses(
        (status = 204, description = "Revoked"),
        (status = 403, description = "Another administrator's token is root's alone to revoke", body = ApiErrorBody),
        (status = 404, description = "No such token", body = ApiErrorBody),
    ))]
async fn revoke(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    service::admin_tokens::delete(&state.ctx, &caller, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
