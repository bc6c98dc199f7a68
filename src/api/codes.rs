//! `/api/codes`: redemption codes. A code is in the answer that makes it, and nowhere else.

use axum::Json;
use axum::extract::{Path, Query, State};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::Data;
use super::error::{ApiError, ApiErrorBody};
use super::extract::{ApiCaller, ApiJson, Decimal, decimal};
use super::quota_per_usd as qpu;
use crate::service::codes::CreateCodes;
use crate::service::views::{CodeView, RedemptionView};
use crate::service::{self};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show))
        .routes(routes!(disable))
}

#[derive(Deserialize, Default, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// A batch's name.
    name: Option<String>,
    /// `unused`, `partly_used`, `used`, `disabled` or `expired`.
    state: Option<String>,
}

/// The codes, never in full (their `prefix` only).
#[utoipa::path(get, path = "/codes", params(ListQuery),
    responses((status = 200, description = "The codes", body = Data<CodeView>)))]
async fn list(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Data<CodeView>>, ApiError> {
    let codes = service::codes::list(
        &state.ctx,
        &caller,
        query.name.as_deref(),
        query.state.as_deref(),
    )
    .await?;
    let (qpu, now) = (qpu(&state), crate::clock::now_ms());
    Ok(Data::of(
        codes.iter().map(|c| CodeView::new(c, qpu, now)).collect(),
    ))
}

/// One code and who redeemed it.
#[derive(Serialize, ToSchema)]
struct CodeWithRedemptions {
    code: CodeView,
    /// Newest first, at most 500.
    redemptions: Vec<RedemptionView>,
    /// Earlier redemptions not listed.
    more: i64,
}

/// One code (never in full) with every account that redeemed it, newest first.
#[utoipa::path(get, path = "/codes/{id}",
    responses(
        (status = 200, description = "The code and its redemptions", body = CodeWithRedemptions),
        (status = 404, description = "No such code", body = ApiErrorBody),
    ))]
async fn show(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<CodeWithRedemptions>, ApiError> {
    let detail = service::codes::detail(&state.ctx, &caller, id).await?;
    let (qpu, now) = (qpu(&state), crate::clock::now_ms());
    Ok(Json(CodeWithRedemptions {
        code: CodeView::new(&detail.code, qpu, now),
        more: detail.more,
        redemptions: detail
            .redemptions
            .iter()
            .map(|r| RedemptionView::new(r, qpu))
            .collect(),
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateCodesBody {
    /// How many codes (default 1).
    #[serde(default = "one")]
    count: u32,
    /// What one use credits, in dollars: a number or a decimal string.
    #[serde(deserialize_with = "decimal")]
    #[schema(value_type = Decimal)]
    usd: Option<String>,
    /// How many times each code may be redeemed (default 1).
    uses: Option<i64>,
    /// A date or an RFC 3339 instant.
    expires: Option<String>,
    /// The batch's name.
    name: Option<String>,
}

/// A code made: the only time it is shown in full.
#[derive(Serialize, ToSchema)]
struct NewCode {
    id: i64,
    code: String,
}

fn one() -> u32 {
    1
}

/// Makes redemption codes.
#[utoipa::path(post, path = "/codes", request_body = CreateCodesBody,
    responses((status = 201, description = "The codes, in full", body = Data<NewCode>)))]
async fn create(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateCodesBody>,
) -> Result<(StatusCode, Json<Data<NewCode>>), ApiError> {
    let input = CreateCodes {
        count: body.count,
        usd: body.usd.unwrap_or_default(),
        uses: body.uses,
        expires: body.expires,
        name: body.name,
    };
    let codes = service::codes::create(&state.ctx, &caller, input).await?;
    let data = codes
        .into_iter()
        .map(|c| NewCode {
            id: c.id,
            code: c.code,
        })
        .collect();
    Ok((StatusCode::CREATED, Data::of(data)))
}

/// `id` (one code) or `name` (its whole batch).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct DisableBody {
    id: Option<i64>,
    name: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct Disabled {
    /// How many codes were disabled.
    disabled: u64,
}

/// Disables a code, or a batch of them.
#[utoipa::path(post, path = "/codes/disable", request_body = DisableBody,
    responses((status = 200, description = "How many were disabled", body = Disabled)))]
async fn disable(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<DisableBody>,
) -> Result<Json<Disabled>, ApiError> {
    let disabled =
        service::codes::disable(&state.ctx, &caller, body.id, body.name.as_deref()).await?;
    Ok(Json(Disabled { disabled }))
}
