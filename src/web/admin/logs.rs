//! `/admin/logs`: every request, filtered (user, key, model, channel, outcome, time range),
//! with totals for the filter (from the rollups), pages by an opaque (time, id) cursor, the
//! filtered rows as CSV, and one request's whole record at `/admin/logs/{id}`.

use askama::Template;
use askama_web::WebTemplate;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AdminPage;
use crate::domain::calendar::SiteCalendar;
use crate::domain::kinds::Outcome;
use crate::domain::log_filters::{FilterText, Problem};
use crate::records::channels::ChannelRow;
use crate::records::logs::{LogTotals, RequestLog};
use crate::service::logs::LogQuery;
use crate::service::{self, Caller, Ctx};
use crate::state::AppState;
use crate::web::error::WebError;
use crate::web::form::FieldErrors;
use crate::web::format;
use crate::web::format::exact_usd;
use crate::web::logs::duration;
use crate::web::page::{Page, urlencode};

const PAGE_ROWS: i64 = 50;
const CSV_BATCH: i64 = 1000;
/// Without a `from`, the page and its CSV read the last 30 days: every query is bounded.
const DEFAULT_DAYS: i64 = 30;
const DAY_MS: i64 = 86_400_000;

/// The filters as typed, each parsed on its own; a value that does not parse is marked on its
/// field and nothing is listed.
fn parse(page: &Page, text: &FilterText) -> Result<LogQuery, FieldErrors> {
    let filters = text.parse(&page.calendar).map_err(|problems| {
        let mut errors = FieldErrors::default();
        for (field, problem) in problems {
            let key = match problem {
                Problem::Time => "admin-logs-bad-time",
                Problem::Number => "admin-logs-bad-number",
                Problem::Outcome => "web-logs-bad-outcome",
                Problem::Cursor => "admin-logs-bad-cursor",
                Problem::Order => "admin-logs-bad-order",
            };
            errors.add(field, page.t(key));
        }
        errors
    })?;
    Ok(LogQuery {
        username: filters.user,
        token_id: filters.token_id,
        model: filters.model,
        request_id: None,
        channel_id: filters.channel_id,
        before: filters.before,
        before_id: filters.before_id,
        from_ms: Some(
            filters
                .from_ms
                .unwrap_or_else(|| crate::clock::now_ms() - DEFAULT_DAYS * DAY_MS),
        ),
        to_ms: filters.to_ms,
        outcome: filters.outcome,
        limit: Some(PAGE_ROWS),
    })
}

/// The filters set, as a query string (without paging).
fn query_string(text: &FilterText) -> String {
    text.pairs()
        .iter()
        .map(|(n, v)| format!("{n}={}", urlencode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// One request as the console's table shows it.
pub struct AdminLine {
    pub id: i64,
    pub time: String,
    pub datetime: String,
    pub user: String,
    pub key: String,
    /// The model served, and the one asked for when it differs.
    pub model: String,
    pub requested: String,
    pub channel: String,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cost: String,
    pub latency: String,
    /// Time to first token, when streamed.
    pub ttft: String,
    pub outcome: String,
    pub succeeded: bool,
}

fn lines(page: &Page, rows: &[RequestLog]) -> Vec<AdminLine> {
    rows.iter()
        .map(|log| AdminLine {
            id: log.id,
            time: page.time(&log.created_at),
            datetime: page.datetime(&log.created_at),
            user: log.username.clone(),
            key: log.token_name.clone(),
            model: log.model.clone(),
            requested: log.requested_model.clone(),
            channel: log.channel_name.clone(),
            prompt_tokens: log.prompt_tokens,
            completion_tokens: log.completion_tokens,
            cost: page.usd(&log.cost),
            latency: duration(log.latency_ms),
            ttft: log.ttft_ms.map(duration).unwrap_or_default(),
            outcome: page.t(format::outcome_key(log.outcome)),
            succeeded: log.outcome == Outcome::Success,
        })
        .collect()
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/logs.html")]
pub struct LogsPage {
    page: Page,
    filters: FilterText,
    errors: FieldErrors,
    lines: Vec<AdminLine>,
    totals: LogTotals,
    models: Vec<String>,
    channels: Vec<ChannelRow>,
    outcomes: Vec<(&'static str, &'static str)>,
    older: Option<String>,
    csv: String,
    /// No `from` was given: the last 30 days are shown.
    default_range: bool,
}

impl LogsPage {
    fn model_selected(&self, model: &str) -> bool {
        self.filters.model.trim() == model
    }

    fn channel_selected(&self, channel: &ChannelRow) -> bool {
        self.filters.channel.trim() == channel.id.to_string()
    }

    fn outcome_selected(&self, outcome: &str) -> bool {
        self.filters.outcome.trim() == outcome
    }

    fn filters_summary(&self) -> String {
        match self.filters.active() {
            0 => self.page.t("web-logs-filters"),
            n => self
                .page
                .t1("web-logs-filters-set", "count", &n.to_string()),
        }
    }
}

pub async fn page(
    State(state): State<AppState>,
    admin: AdminPage,
    Query(filters): Query<FilterText>,
) -> Result<Response, WebError> {
    let query = parse(&admin.page, &filters);
    render(&state, admin, filters, query).await
}

async fn render(
    state: &AppState,
    admin: AdminPage,
    filters: FilterText,
    query: Result<LogQuery, FieldErrors>,
) -> Result<Response, WebError> {
    let caller = admin.caller();
    let page = admin.page;
    let fail = |e: service::ServiceError| page.failed(e);
    let (rows, totals, errors) = match query {
        Ok(query) => match service::logs::query(&state.ctx, &caller, query).await {
            Ok((rows, totals)) => (rows, totals, FieldErrors::default()),
            // A user that does not exist is the filter's problem, not the page's.
            Err(service::ServiceError::NotFound(message)) => {
                let mut errors = FieldErrors::default();
                errors.add("user", page.say(&message));
                (Vec::new(), LogTotals::default(), errors)
            }
            Err(e) => return Err(fail(e)),
        },
        Err(errors) => (Vec::new(), LogTotals::default(), errors),
    };
    let mut models = service::logs::models_seen(&state.ctx, &caller)
        .await
        .map_err(fail)?;
    let asked = filters.model.trim();
    if !asked.is_empty() && !models.iter().any(|m| m == asked) {
        models.insert(0, asked.to_string());
    }
    let channels = service::channels::list(&state.ctx, &caller)
        .await
        .map_err(fail)?;
    let query_string = query_string(&filters);
    let older = (rows.len() == usize::try_from(PAGE_ROWS).unwrap_or(usize::MAX))
        .then(|| service::logs::next_cursor(&rows))
        .flatten()
        .map(|cursor| {
            let sep = if query_string.is_empty() { "" } else { "&" };
            format!("/admin/logs?{query_string}{sep}before={}", cursor.encode())
        });
    let csv = if query_string.is_empty() {
        "/admin/logs.csv".to_string()
    } else {
        format!("/admin/logs.csv?{query_string}")
    };
    let outcomes = Outcome::ALL
        .iter()
        .map(|o| (o.as_str(), format::outcome_key(*o)))
        .collect();
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let default_range = filters.from.trim().is_empty();
    Ok((
        status,
        LogsPage {
            lines: lines(&page, &rows),
            page,
            filters,
            errors,
            totals,
            models,
            channels,
            outcomes,
            older,
            csv,
            default_range,
        },
    )
        .into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/log_detail.html")]
pub struct DetailPage {
    page: Page,
    log: RequestLog,
    line: AdminLine,
    /// RFC 3339 on the site's clock.
    when: String,
    /// Every attempt in order when there was more than one; the last is the row's own.
    attempts: Vec<AttemptLine>,
}

/// One attempt of a request on the detail page.
pub struct AttemptLine {
    number: usize,
    channel: String,
    channel_id: Option<i64>,
    status: i64,
    /// Empty for the last attempt, whose time is the request's.
    time: String,
    error: String,
}

/// The request's attempts, oldest first, ending with the one the row describes; empty when
/// the first attempt was the only one.
fn attempt_lines(log: &RequestLog) -> Vec<AttemptLine> {
    if log.failed_attempts.is_empty() {
        return Vec::new();
    }
    let mut lines: Vec<AttemptLine> = log
        .failed_attempts
        .iter()
        .enumerate()
        .map(|(at, a)| AttemptLine {
            number: at + 1,
            channel: a.channel.clone(),
            channel_id: Some(a.channel_id),
            status: i64::from(a.status),
            time: duration(a.latency_ms),
            error: a.error.clone(),
        })
        .collect();
    lines.push(AttemptLine {
        number: lines.len() + 1,
        channel: log.channel_name.clone(),
        channel_id: log.channel_id,
        status: log.status_code,
        time: String::new(),
        error: log.error_message.clone(),
    });
    lines
}

pub async fn detail(
    State(state): State<AppState>,
    admin: AdminPage,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let Ok(id) = id.parse::<i64>() else {
        return Err(WebError::not_found(admin.page.lang));
    };
    let log = service::logs::detail(&state.ctx, &admin.caller(), id)
        .await
        .map_err(|e| admin.page.failed(e))?;
    let page = admin.page;
    let line = lines(&page, std::slice::from_ref(&log)).remove(0);
    let when = page.calendar.rfc3339(log.created_at);
    let attempts = attempt_lines(&log);
    Ok(DetailPage {
        page,
        log,
        line,
        when,
        attempts,
    }
    .into_response())
}

/// The CSV's columns. `time` is RFC 3339 in the site's zone; `cost_usd` exact, `cost_units`
/// the quota units billed.
const CSV_COLUMNS: [&str; 23] = [
    "time",
    "id",
    "request_id",
    "user",
    "key",
    "model",
    "requested_model",
    "upstream_model",
    "channel",
    "attempts",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "cost_usd",
    "cost_units",
    "latency_ms",
    "ttft_ms",
    "stream",
    "outcome",
    "status",
    "upstream_request_id",
    "client_ip",
    "error",
];

fn csv_cells(log: &RequestLog, calendar: &SiteCalendar, qpu: i64) -> Vec<String> {
    vec![
        calendar.rfc3339(log.created_at),
        log.id.to_string(),
        log.request_id.clone(),
        log.username.clone(),
        log.token_name.clone(),
        log.model.clone(),
        log.requested_model.clone(),
        log.upstream_model.clone(),
        log.channel_name.clone(),
        log.attempts.to_string(),
        log.prompt_tokens.to_string(),
        log.completion_tokens.to_string(),
        log.cached_tokens.to_string(),
        exact_usd(log.cost, qpu),
        log.cost.to_string(),
        log.latency_ms.to_string(),
        log.ttft_ms.map(|ms| ms.to_string()).unwrap_or_default(),
        log.is_stream.to_string(),
        log.outcome.as_str().to_string(),
        log.status_code.to_string(),
        log.upstream_request_id.clone(),
        log.client_ip.clone(),
        log.error_message.clone(),
    ]
}

/// What the CSV stream carries between batches.
struct CsvCursor {
    ctx: Ctx,
    caller: Caller,
    calendar: SiteCalendar,
    qpu: i64,
    header: Option<String>,
    query: Option<LogQuery>,
    totals: Option<LogTotals>,
}

impl CsvCursor {
    /// The next piece of the file: the header, a batch of rows, the totals row at the end.
    async fn next(mut self) -> Option<(Result<String, std::io::Error>, CsvCursor)> {
        if let Some(header) = self.header.take() {
            return Some((Ok(header), self));
        }
        let query = self.query.take()?;
        let rows = match service::logs::rows(&self.ctx, &self.caller, query.clone()).await {
            Ok(rows) => rows,
            Err(error) => {
                tracing::error!(%error, "the console's CSV export stopped");
                return Some((Err(std::io::Error::other(error.to_string())), self));
            }
        };
        let mut text = String::new();
        for log in &rows {
            text.push_str(&crate::domain::csv::row(&csv_cells(
                log,
                &self.calendar,
                self.qpu,
            )));
        }
        let full = rows.len() == usize::try_from(CSV_BATCH).unwrap_or(usize::MAX);
        if full && let Some(next) = service::logs::next_cursor(&rows) {
            self.query = Some(LogQuery {
                before: Some(next),
                ..query
            });
        } else if let Some(totals) = self.totals.take() {
            let mut cells = vec![String::new(); CSV_COLUMNS.len()];
            cells[0] = "total".into();
            cells[10] = totals.prompt_tokens.to_string();
            cells[11] = totals.completion_tokens.to_string();
            cells[13] = exact_usd(totals.cost, self.qpu);
            cells[14] = totals.cost.to_string();
            cells[18] = format!("{} requests", totals.requests);
            text.push_str(&crate::domain::csv::row(&cells));
        }
        Some((Ok(text), self))
    }
}

/// The filtered rows as CSV, newest first, written as they are read (in batches), then a
/// totals row.
pub async fn csv(
    State(state): State<AppState>,
    admin: AdminPage,
    Query(filters): Query<FilterText>,
) -> Result<Response, WebError> {
    let mut query = match parse(&admin.page, &filters) {
        Ok(query) => query,
        Err(errors) => return render(&state, admin, filters, Err(errors)).await,
    };
    query.before = None;
    query.before_id = None;
    query.limit = Some(CSV_BATCH);
    let caller = admin.caller();
    let page = admin.page;
    let totals = match service::logs::query(
        &state.ctx,
        &caller,
        LogQuery {
            limit: Some(1),
            ..query.clone()
        },
    )
    .await
    {
        Ok((_, totals)) => totals,
        Err(e) => return Err(page.failed(e)),
    };
    let start = CsvCursor {
        ctx: state.ctx.clone(),
        caller,
        calendar: page.calendar.clone(),
        qpu: page.quota_per_usd,
        header: Some(crate::domain::csv::row(&CSV_COLUMNS)),
        query: Some(query),
        totals: Some(totals),
    };
    let stream = futures::stream::unfold(start, CsvCursor::next);
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"requests.csv\"",
            ),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}
