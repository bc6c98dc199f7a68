//! `/api/codes`: redemption codes. A code is in the answer that makes it, and nowhere else.

use axum::extract::{Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::ApiError;
use super::extract::{ApiCaller, ApiJson, decimal};
use super::quota_per_usd as qpu;
use crate::service::codes::CreateCodes;
use crate::service::views::CodeView;
use crate::service::{self};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/codes", get(list).post(create))
        .route("/codes/disable", post(disable))
}

#[derive(Deserialize, Default)]
struct ListQuery {
    name: Option<String>,
    state: Option<String>,
}

async fn list(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let codes = service::codes::list(
        &state.ctx,
        &caller,
        query.name.as_deref(),
        query.state.as_deref(),
    )
    .await?;
    let (qpu, now) = (qpu(&state), crate::clock::now_ms());
    let data: Vec<CodeView> = codes.iter().map(|c| CodeView::new(c, qpu, now)).collect();
    Ok(Json(json!({ "data": data })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    #[serde(default = "one")]
    count: u32,
    #[serde(deserialize_with = "decimal")]
    usd: Option<String>,
    uses: Option<i64>,
    expires: Option<String>,
    name: Option<String>,
}

fn one() -> u32 {
    1
}

async fn create(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let input = CreateCodes {
        count: body.count,
        usd: body.usd.unwrap_or_default(),
        uses: body.uses,
        expires: body.expires,
        name: body.name,
    };
    let codes = service::codes::create(&state.ctx, &caller, input).await?;
    let data: Vec<Value> = codes
        .iter()
        .map(|c| json!({ "id": c.id, "code": c.code }))
        .collect();
    Ok((StatusCode::CREATED, Json(json!({ "data": data }))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DisableBody {
    id: Option<i64>,
    name: Option<String>,
}

async fn disable(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<DisableBody>,
) -> Result<Json<Value>, ApiError> {
    let disabled =
        service::codes::disable(&state.ctx, &caller, body.id, body.name.as_deref()).await?;
    Ok(Json(json!({ "disabled": disabled })))
}
