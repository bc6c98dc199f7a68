use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;

use serde_json::{Value, json};

use super::error::ApiError;
use super::extract::ApiCaller;
use crate::domain::calendar::SiteCalendar;
use crate::domain::log_filters::{FilterText, Problem};
use crate::domain::money::Quota;
use crate::service::logs::LogQuery;
use crate::service::views::LogView;
use crate::service::{self};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/logs", get(list))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct LogParams {
    user: String,
    #[serde(alias = "token_id")]
    key: String,
    model: String,
    channel: String,
    outcome: String,
    request_id: Option<String>,
    /// A day of the site's zone, an RFC 3339 instant, or ms since the epoch: rows at or after
    /// `from`, before `to` (a day includes its whole day).
    from: String,
    to: String,
    before: String,
    before_id: String,
    limit: String,
}

/// What is wrong with a filter's value, for the client.
fn problem_text(field: &str, problem: Problem) -> String {
    let what = match problem {
        Problem::Time => "a date (YYYY-MM-DD), an RFC 3339 instant or milliseconds",
        Problem::Number => "a number",
        Problem::Outcome => "one of success, client_closed, stream_error, upstream_error, refused",
        Problem::Cursor => "the `next` cursor of a previous page",
        Problem::Order => "after `from`",
    };
    format!("`{field}` must be {what}")
}

/// Newest first (by time, then id); page backwards with `before` = the `next` cursor received
/// (or `before_id` = the last id received).
async fn list(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Query(params): Query<LogParams>,
) -> Result<Json<Value>, ApiError> {
    let text = FilterText {
        user: params.user,
        key: params.key,
        model: params.model,
        channel: params.channel,
        outcome: params.outcome,
        from: params.from,
        to: params.to,
        before: params.before,
        before_id: params.before_id,
        limit: params.limit,
    };
    let calendar = SiteCalendar::new(&state.snapshot.load().options.timezone);
    let filters = text.parse(&calendar).map_err(|problems| {
        let texts: Vec<String> = problems
            .iter()
            .map(|(field, problem)| problem_text(field, *problem))
            .collect();
        ApiError::bad_request(texts.join("; "))
    })?;
    let limit = filters.limit;
    let (rows, totals) = service::logs::query(
        &state.ctx,
        &caller,
        LogQuery {
            username: filters.user,
            token_id: filters.token_id,
            model: filters.model,
            request_id: params.request_id,
            channel_id: filters.channel_id,
            before: filters.before,
            before_id: filters.before_id,
            from_ms: filters.from_ms,
            to_ms: filters.to_ms,
            outcome: filters.outcome,
            limit,
        },
    )
    .await?;
    let qpu = super::quota_per_usd(&state);
    let full = i64::try_from(rows.len()).unwrap_or(i64::MAX) >= limit.unwrap_or(50).clamp(1, 1000);
    let next = full
        .then(|| service::logs::next_cursor(&rows))
        .flatten()
        .map(|cursor| cursor.encode());
    let data: Vec<LogView> = rows.iter().map(|l| LogView::new(l, qpu)).collect();
    Ok(Json(json!({
        "data": data,
        "next": next,
        "totals": {
            "requests": totals.requests,
            "cost": totals.cost,
            "cost_usd": Quota(totals.cost).usd_f64(qpu),
            "prompt_tokens": totals.prompt_tokens,
            "completion_tokens": totals.completion_tokens,
        }
    })))
}
