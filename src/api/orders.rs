//! `/api/orders`: Stripe top-up orders for administrators: list, show with events, credit a
//! held one, refund, and reconcile against Stripe now.

use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::ApiError;
use super::extract::{ApiCaller, ApiJson, decimal};
use super::quota_per_usd as qpu;
use crate::service::views::{EventView, OrderView};
use crate::service::{self};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/orders", get(list))
        .route("/orders/reconcile", post(reconcile))
        .route("/orders/{id}", get(show))
        .route("/orders/{id}/credit", post(credit))
        .route("/orders/{id}/refund", post(refund))
}

#[derive(Deserialize, Default)]
struct ListQuery {
    user: Option<String>,
    status: Option<String>,
    limit: Option<i64>,
}

async fn list(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    caller.require_admin()?;
    let orders = service::topups::list(
        &state.ctx,
        &caller,
        query.user.as_deref(),
        query.status.as_deref(),
        query.limit.unwrap_or(100),
    )
    .await?;
    let qpu = qpu(&state);
    let data: Vec<OrderView> = orders.iter().map(|o| OrderView::new(o, qpu)).collect();
    Ok(Json(json!({ "data": data })))
}

async fn show(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    let (order, events) = service::topups::show(&state.ctx, &caller, id).await?;
    let events: Vec<EventView> = events.iter().map(EventView::new).collect();
    Ok(Json(
        json!({ "order": OrderView::new(&order, qpu(&state)), "events": events }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreditBody {
    reason: Option<String>,
}

async fn credit(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<CreditBody>,
) -> Result<Json<Value>, ApiError> {
    let order = service::topups::credit(
        &state.ctx,
        &caller,
        id,
        body.reason.as_deref().unwrap_or(""),
        &state.listen_url,
    )
    .await?;
    Ok(Json(
        json!({ "order": OrderView::new(&order, qpu(&state)) }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RefundBody {
    #[serde(default, deserialize_with = "decimal")]
    usd: Option<String>,
    reason: Option<String>,
}

async fn refund(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<RefundBody>,
) -> Result<Json<Value>, ApiError> {
    let refund_id = service::topups::refund(
        &state.ctx,
        &caller,
        id,
        body.usd.as_deref(),
        body.reason.as_deref().unwrap_or(""),
    )
    .await?;
    Ok(Json(json!({ "refund": refund_id, "pending": true })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReconcileBody {
    #[serde(default)]
    older_than_secs: u64,
}

async fn reconcile(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ReconcileBody>,
) -> Result<Json<Value>, ApiError> {
    let report =
        service::topups::reconcile(&state.ctx, &caller, body.older_than_secs, &state.listen_url)
            .await?;
    Ok(Json(json!(report)))
}
