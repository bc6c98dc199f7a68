use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;

use crate::domain::kinds::Outcome;
use serde_json::{Value, json};

use super::error::ApiError;
use super::extract::ApiCaller;
use crate::domain::money::Quota;
use crate::service::logs::LogQuery;
use crate::service::views::LogView;
use crate::service::{self};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/logs", get(list))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LogParams {
    user: Option<String>,
    token_id: Option<i64>,
    model: Option<String>,
    request_id: Option<String>,
    before_id: Option<i64>,
    /// Times in ms since the epoch: rows at or after `from`, before `to`.
    from: Option<i64>,
    to: Option<i64>,
    outcome: Option<Outcome>,
    limit: Option<i64>,
}

/// Newest first; page backwards with `before_id` = the last id received.
async fn list(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Query(params): Query<LogParams>,
) -> Result<Json<Value>, ApiError> {
    let (rows, totals) = service::logs::query(
        &state.ctx,
        &caller,
        LogQuery {
            username: params.user,
            token_id: params.token_id,
            model: params.model,
            request_id: params.request_id,
            before_id: params.before_id,
            from_ms: params.from,
            to_ms: params.to,
            outcome: params.outcome,
            limit: params.limit,
        },
    )
    .await?;
    let qpu = super::quota_per_usd(&state);
    let data: Vec<LogView> = rows.iter().map(|l| LogView::new(l, qpu)).collect();
    Ok(Json(json!({
        "data": data,
        "totals": {
            "requests": totals.requests,
            "cost": totals.cost,
            "cost_usd": Quota(totals.cost).usd_f64(qpu),
            "prompt_tokens": totals.prompt_tokens,
            "completion_tokens": totals.completion_tokens,
        }
    })))
}
