//! `GET /api/audit`: the audit log, newest first, with the console's filters.

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::error::ApiError;
use super::extract::ApiCaller;
use crate::service;
use crate::service::audit::AuditQuery;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/audit", get(list))
}

/// Rows as stored (`id`, `at` in Unix ms, `actor`, `auth`, `ip`, `user_agent`, `action`,
/// `target`, `before`, `after`, `ledger_id`, `prev_hash`, `hash`); the next page with
/// `before` = the last id received.
async fn list(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Query(query): Query<AuditQuery>,
) -> Result<Json<Value>, ApiError> {
    let rows = service::audit::query(&state.ctx, &caller, &query).await?;
    let next_before = rows.last().map(|r| r.id);
    Ok(Json(json!({ "data": rows, "next_before": next_before })))
}
