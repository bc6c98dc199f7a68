use axum::Json;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ApiError;
use super::extract::ApiCaller;
use crate::domain::calendar::SiteCalendar;
use crate::domain::log_filters::{FilterText, Problem};
use crate::domain::money::Quota;
use crate::service::logs::LogQuery;
use crate::service::views::LogView;
use crate::service::{self};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list))
}

#[derive(Deserialize, Default, IntoParams)]
#[serde(deny_unknown_fields, default)]
#[into_params(parameter_in = Query)]
struct LogParams {
    /// A username.
    user: String,
    /// An API key's id (also spelled `token_id`).
    #[serde(alias = "token_id")]
    key: String,
    model: String,
    /// A channel's id; 0 for requests refused before any channel.
    channel: String,
    /// `success`, `client_closed`, `stream_error`, `upstream_error` or `refused`.
    outcome: String,
    request_id: Option<String>,
    /// A day of the site's zone, an RFC 3339 instant, or ms since the epoch: rows at or after
    /// `from`, before `to` (a day includes its whole day).
    from: String,
    /// As `from`.
    to: String,
    /// The `next` cursor of the page before.
    before: String,
    /// A row's id: rows older than it (`before` is preferred).
    before_id: String,
    /// At most this many rows, 1 to 1000 (default 50).
    limit: String,
}

/// A page of request logs.
#[derive(Serialize, ToSchema)]
struct LogPage {
    data: Vec<LogView>,
    /// The cursor of the next page (`before`), or null on the last page.
    next: Option<String>,
    /// Every row the filter matches, from the rollups.
    totals: LogPageTotals,
}

#[derive(Serialize, ToSchema)]
struct LogPageTotals {
    requests: i64,
    /// Quota units.
    cost: i64,
    cost_usd: f64,
    prompt_tokens: i64,
    completion_tokens: i64,
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
#[utoipa::path(get, path = "/logs", params(LogParams),
    responses((status = 200, description = "A page of rows, with the filter's totals", body = LogPage)))]
async fn list(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Query(params): Query<LogParams>,
) -> Result<Json<LogPage>, ApiError> {
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
    Ok(Json(LogPage {
        data: rows.iter().map(|l| LogView::new(l, qpu)).collect(),
        next,
        totals: LogPageTotals {
            requests: totals.requests,
            cost: totals.cost,
            cost_usd: Quota(totals.cost).usd_f64(qpu),
            prompt_tokens: totals.prompt_tokens,
            completion_tokens: totals.completion_tokens,
        },
    }))
}
