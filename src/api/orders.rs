//! `/api/orders`: Stripe top-up orders for administrators: list, show with events, credit a
//! held one, refund, and reconcile against Stripe now.

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::Data;
use super::error::{ApiError, ApiErrorBody};
use super::extract::{ApiCaller, ApiJson, Decimal, decimal};
use super::quota_per_usd as qpu;
use crate::service::topups::Reconciled;
use crate::service::views::{EventView, OrderView};
use crate::service::{self};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(reconcile))
        .routes(routes!(show))
        .routes(routes!(credit))
        .routes(routes!(refund))
}

#[derive(Deserialize, Default, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Find orders as the console's search does: an order number, a username, or a Stripe
    /// session (`cs_…`) or payment (`pi_…`) id. `user` then does not apply.
    q: Option<String>,
    /// A username.
    user: Option<String>,
    /// `pending`, `paid`, `closed` or `held`.
    status: Option<String>,
    /// At most this many (default 100).
    limit: Option<i64>,
}

/// Orders, newest first.
#[utoipa::path(get, path = "/orders", params(ListQuery),
    responses((status = 200, description = "The orders", body = Data<OrderView>)))]
async fn list(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Data<OrderView>>, ApiError> {
    caller.require_admin()?;
    let limit = query.limit.unwrap_or(100);
    let orders = match query.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
        Some(q) => {
            service::topups::search(&state.ctx, &caller, q, query.status.as_deref(), limit).await?
        }
        None => {
            service::topups::list(
                &state.ctx,
                &caller,
                query.user.as_deref(),
                query.status.as_deref(),
                limit,
            )
            .await?
        }
    };
    let qpu = qpu(&state);
    Ok(Data::of(
        orders.iter().map(|o| OrderView::new(o, qpu)).collect(),
    ))
}

#[derive(Serialize, ToSchema)]
struct OrderWithEvents {
    order: OrderView,
    /// The Stripe events received for it.
    events: Vec<EventView>,
}

#[utoipa::path(get, path = "/orders/{id}",
    responses(
        (status = 200, description = "The order and its Stripe events", body = OrderWithEvents),
        (status = 404, description = "No such order", body = ApiErrorBody),
    ))]
async fn show(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<OrderWithEvents>, ApiError> {
    let (order, events) = service::topups::show(&state.ctx, &caller, id).await?;
    Ok(Json(OrderWithEvents {
        order: OrderView::new(&order, qpu(&state)),
        events: events.iter().map(EventView::new).collect(),
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreditBody {
    /// Why, for the ledger.
    reason: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct OrderOnly {
    order: OrderView,
}

/// Credits a held order (paid, but not as quoted).
#[utoipa::path(post, path = "/orders/{id}/credit", request_body = CreditBody,
    responses(
        (status = 200, description = "The order as credited", body = OrderOnly),
        (status = 404, description = "No such order", body = ApiErrorBody),
        (status = 409, description = "The order is not held", body = ApiErrorBody),
    ))]
async fn credit(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<CreditBody>,
) -> Result<Json<OrderOnly>, ApiError> {
    let order = service::topups::credit(
        &state.ctx,
        &caller,
        id,
        body.reason.as_deref().unwrap_or(""),
        &state.listen_url,
    )
    .await?;
    Ok(Json(OrderOnly {
        order: OrderView::new(&order, qpu(&state)),
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RefundBody {
    /// Dollars to refund (default: all that is left), a number or a decimal string.
    #[serde(default, deserialize_with = "decimal")]
    #[schema(value_type = Option<Decimal>)]
    usd: Option<String>,
    reason: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct RefundAsked {
    /// Stripe's refund id.
    refund: String,
    /// Always true: the balance is taken back when Stripe reports the refund.
    pending: bool,
}

/// Refunds a paid order through Stripe.
#[utoipa::path(post, path = "/orders/{id}/refund", request_body = RefundBody,
    responses(
        (status = 200, description = "Stripe took the refund", body = RefundAsked),
        (status = 404, description = "No such order", body = ApiErrorBody),
        (status = 409, description = "The order cannot be refunded (not paid, or nothing left)", body = ApiErrorBody),
        (status = 502, description = "Stripe refused or could not be reached", body = ApiErrorBody),
    ))]
async fn refund(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<RefundBody>,
) -> Result<Json<RefundAsked>, ApiError> {
    let refund_id = service::topups::refund(
        &state.ctx,
        &caller,
        id,
        body.usd.as_deref(),
        body.reason.as_deref().unwrap_or(""),
    )
    .await?;
    Ok(Json(RefundAsked {
        refund: refund_id,
        pending: true,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ReconcileBody {
    /// Only pending orders older than this (default 0: all).
    #[serde(default)]
    older_than_secs: u64,
}

/// Asks Stripe about pending orders now and applies what it says.
#[utoipa::path(post, path = "/orders/reconcile", request_body = ReconcileBody,
    responses((status = 200, description = "What the round did", body = Reconciled)))]
async fn reconcile(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ReconcileBody>,
) -> Result<Json<Reconciled>, ApiError> {
    let report =
        service::topups::reconcile(&state.ctx, &caller, body.older_than_secs, &state.listen_url)
            .await?;
    Ok(Json(report))
}
