//! A person's own requests: filters, totals, pages, and the same rows as CSV.

use askama::Template;
use askama_web::WebTemplate;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::error::WebError;
use super::form::FieldErrors;
use super::format;
use super::page::{Page, SignedIn, urlencode};
use crate::domain::calendar::SiteCalendar;
use crate::domain::cursor::Cursor;
use crate::domain::kinds::Outcome;
use crate::records::logs::{LogTotals, RequestLog};
use crate::records::tokens::TokenRow;
use crate::service::logs::LogQuery;
use crate::service::sessions::Viewer;
use crate::service::{self, Caller};
use crate::state::AppState;
use crate::web::format::exact_usd;

const PAGE_ROWS: i64 = 50;
const CSV_BATCH: i64 = 1000;

/// The filters, as typed in the form (and kept in the links).
#[derive(Deserialize, Default, Clone, Debug)]
pub struct Filters {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    model: String,
    #[serde(default)]
    key: String,
    #[serde(default)]
    outcome: String,
    /// Where the page before ended (paging); a value that is no cursor starts at the newest.
    #[serde(default)]
    before: String,
}

impl Filters {
    /// The query for the service; each value that does not parse is marked on its field.
    fn query(&self, page: &Page) -> Result<LogQuery, FieldErrors> {
        let mut errors = FieldErrors::default();
        // Days are the site's (option `timezone`): "to" includes its whole day.
        let mut day = |text: &str, field: &str, end: bool| -> Option<i64> {
            if text.trim().is_empty() {
                return None;
            }
            let bound = if end {
                page.calendar.date_end_ms(text)
            } else {
                page.calendar.date_start_ms(text)
            };
            if bound.is_none() {
                errors.add(field, page.t("web-logs-bad-date"));
            }
            bound
        };
        let from_ms = day(&self.from, "from", false);
        let to_ms = day(&self.to, "to", true);
        let token_id = match self.key.trim() {
            "" => None,
            id => match id.parse() {
                Ok(id) => Some(id),
                Err(_) => {
                    errors.add("key", page.t("web-logs-bad-key"));
                    None
                }
            },
        };
        let outcome = match self.outcome.trim() {
            "" => None,
            text => match Outcome::parse(text) {
                Some(outcome) => Some(outcome),
                None => {
                    errors.add("outcome", page.t("web-logs-bad-outcome"));
                    None
                }
            },
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(LogQuery {
            username: None,
            token_id,
            model: Some(self.model.trim().to_string()).filter(|m| !m.is_empty()),
            request_id: None,
            channel_id: None,
            before: Cursor::decode(&self.before),
            before_id: None,
            from_ms,
            to_ms,
            outcome,
            limit: Some(PAGE_ROWS),
        })
    }

    /// How many filters are set (shown on the folded filters' summary).
    fn active(&self) -> usize {
        [&self.from, &self.to, &self.model, &self.key, &self.outcome]
            .iter()
            .filter(|v| !v.trim().is_empty())
            .count()
    }

    /// The filters as a query string (without paging).
    fn query_string(&self) -> String {
        [
            ("from", &self.from),
            ("to", &self.to),
            ("model", &self.model),
            ("key", &self.key),
            ("outcome", &self.outcome),
        ]
        .iter()
        .filter(|(_, v)| !v.trim().is_empty())
        .map(|(n, v)| format!("{n}={}", urlencode(v.trim())))
        .collect::<Vec<_>>()
        .join("&")
    }
}

/// One request as the usage tables show it (the log page, the dashboard's latest).
pub struct LogLine {
    /// On the site's clock, to the second, and as RFC 3339 for `<time>`.
    pub time: String,
    pub datetime: String,
    pub model: String,
    pub key: String,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cost: String,
    /// `820 ms`, `1.24 s`.
    pub latency: String,
    /// Streamed or whole, and when the first token came: `streamed, first token after 310 ms`.
    pub delivery: String,
    pub outcome: String,
    pub succeeded: bool,
    /// Why a request that did not succeed ended so (the relay's or the upstream's words).
    pub reason: String,
}

/// The longest reason shown in a table (the CSV has it whole).
const REASON_CHARS: usize = 240;

/// A duration in milliseconds as people read it: `820 ms`, `1.24 s`, `75.3 s`.
pub fn duration(ms: i64) -> String {
    let ms = ms.max(0);
    match ms {
        0..1_000 => format!("{ms} ms"),
        1_000..10_000 => format!("{}.{:02} s", ms / 1000, (ms % 1000) / 10),
        _ => format!("{}.{} s", ms / 1000, (ms % 1000) / 100),
    }
}

/// The rows as the usage tables show them, in the reader's language and the site's zone.
pub fn lines(page: &Page, rows: &[RequestLog]) -> Vec<LogLine> {
    rows.iter()
        .map(|log| {
            let delivery = match (log.is_stream, log.ttft_ms) {
                (true, Some(first)) => page.t1("web-log-streamed-first", "ttft", &duration(first)),
                (true, None) => page.t("web-log-streamed"),
                (false, _) => page.t("web-log-whole"),
            };
            let succeeded = log.outcome == Outcome::Success;
            let mut reason: String = if succeeded {
                String::new()
            } else {
                log.error_message.chars().take(REASON_CHARS).collect()
            };
            if !succeeded && log.error_message.chars().nth(REASON_CHARS).is_some() {
                reason.push('…');
            }
            LogLine {
                time: page.time(&log.created_at),
                datetime: page.datetime(&log.created_at),
                model: log.model.clone(),
                key: log.token_name.clone(),
                prompt_tokens: log.prompt_tokens,
                completion_tokens: log.completion_tokens,
                cost: page.usd(&log.cost),
                latency: duration(log.latency_ms),
                delivery,
                outcome: page.t(format::outcome_key(log.outcome)),
                succeeded,
                reason,
            }
        })
        .collect()
}

#[derive(Template, WebTemplate)]
#[template(path = "logs.html")]
pub struct LogsPage {
    page: Page,
    filters: Filters,
    /// Filter values that do not parse, marked on their fields (then nothing is listed).
    errors: FieldErrors,
    lines: Vec<LogLine>,
    totals: LogTotals,
    keys: Vec<TokenRow>,
    /// The models the person's requests named: the model filter's choices.
    models: Vec<String>,
    outcomes: Vec<(&'static str, &'static str)>,
    /// The link to the next (older) page, when there may be one.
    older: Option<String>,
    csv: String,
}

impl LogsPage {
    fn key_selected(&self, key: &TokenRow) -> bool {
        self.filters.key.trim() == key.id.to_string()
    }

    fn model_selected(&self, model: &str) -> bool {
        self.filters.model.trim() == model
    }

    fn outcome_selected(&self, outcome: &str) -> bool {
        self.filters.outcome.trim() == outcome
    }

    /// "Filters (2 set)", or "Filters".
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
    SignedIn { page, user }: SignedIn,
    Query(filters): Query<Filters>,
) -> Result<Response, WebError> {
    let query = filters.query(&page);
    render(&state, page, &user, filters, query).await
}

/// The page with what the filters found; filters that do not parse come back marked (422),
/// with nothing listed.
async fn render(
    state: &AppState,
    page: Page,
    user: &Viewer,
    filters: Filters,
    query: Result<LogQuery, FieldErrors>,
) -> Result<Response, WebError> {
    let caller = Caller::User(user.id);
    let fail = |e: service::ServiceError| page.failed(e);
    let (rows, totals, errors) = match query {
        Ok(query) => {
            let (rows, totals) = service::logs::query(&state.ctx, &caller, query)
                .await
                .map_err(fail)?;
            (rows, totals, FieldErrors::default())
        }
        Err(errors) => (Vec::new(), LogTotals::default(), errors),
    };
    let keys = service::tokens::list_for_user(&state.ctx, &caller, &user.username)
        .await
        .map_err(fail)?;
    let mut models = service::logs::models_seen(&state.ctx, &caller)
        .await
        .map_err(fail)?;
    // A model named in the address but not among the person's is still shown as chosen.
    let asked = filters.model.trim();
    if !asked.is_empty() && !models.iter().any(|m| m == asked) {
        models.insert(0, asked.to_string());
    }
    let query_string = filters.query_string();
    let older = (rows.len() == usize::try_from(PAGE_ROWS).unwrap_or(usize::MAX))
        .then(|| service::logs::next_cursor(&rows))
        .flatten()
        .map(|cursor| {
            let sep = if query_string.is_empty() { "" } else { "&" };
            format!("/logs?{query_string}{sep}before={}", cursor.encode())
        });
    let csv = if query_string.is_empty() {
        "/logs.csv".to_string()
    } else {
        format!("/logs.csv?{query_string}")
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
    Ok((
        status,
        LogsPage {
            lines: lines(&page, &rows),
            page,
            filters,
            errors,
            totals,
            keys,
            models,
            outcomes,
            older,
            csv,
        },
    )
        .into_response())
}

/// The CSV's columns. `time` is RFC 3339 with the offset of the site's zone (option
/// `timezone`); `cost_usd` is exact (six decimals), `cost_units` the quota units billed.
const CSV_COLUMNS: [&str; 15] = [
    "time",
    "request_id",
    "key",
    "model",
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
    "error",
];

fn csv_cells(log: &RequestLog, calendar: &SiteCalendar, quota_per_usd: i64) -> Vec<String> {
    vec![
        calendar.rfc3339(log.created_at),
        log.request_id.clone(),
        log.token_name.clone(),
        log.model.clone(),
        log.prompt_tokens.to_string(),
        log.completion_tokens.to_string(),
        log.cached_tokens.to_string(),
        exact_usd(log.cost, quota_per_usd),
        log.cost.to_string(),
        log.latency_ms.to_string(),
        log.ttft_ms.map(|ms| ms.to_string()).unwrap_or_default(),
        log.is_stream.to_string(),
        log.outcome.as_str().to_string(),
        log.status_code.to_string(),
        log.error_message.clone(),
    ]
}

/// The filtered rows as CSV, newest first, written as they are read (in batches), then a
/// totals row.
pub async fn csv(
    State(state): State<AppState>,
    SignedIn { page, user }: SignedIn,
    Query(filters): Query<Filters>,
) -> Result<Response, WebError> {
    let mut query = match filters.query(&page) {
        Ok(query) => query,
        // The filters come back marked on the page, not as a file.
        Err(errors) => return render(&state, page, &user, filters, Err(errors)).await,
    };
    query.before = None;
    query.limit = Some(CSV_BATCH);
    let qpu = page.quota_per_usd;
    let calendar = page.calendar.clone();
    let caller = Caller::User(user.id);
    let header = crate::domain::csv::row(&CSV_COLUMNS);
    struct Cursor {
        query: Option<LogQuery>,
        totals: Option<LogTotals>,
        header: Option<String>,
    }
    let start = Cursor {
        query: Some(query),
        totals: None,
        header: Some(header),
    };
    let ctx = state.ctx.clone();
    let stream = futures::stream::unfold(start, move |mut cursor| {
        let ctx = ctx.clone();
        let calendar = calendar.clone();
        async move {
            if let Some(header) = cursor.header.take() {
                return Some((Ok::<_, std::io::Error>(header), cursor));
            }
            let query = cursor.query.take()?;
            match service::logs::query(&ctx, &caller, query.clone()).await {
                Ok((rows, totals)) => {
                    cursor.totals.get_or_insert(totals);
                    let mut text = String::new();
                    for log in &rows {
                        text.push_str(&crate::domain::csv::row(&csv_cells(log, &calendar, qpu)));
                    }
                    let full = rows.len() == usize::try_from(CSV_BATCH).unwrap_or(usize::MAX);
                    if full && let Some(next) = service::logs::next_cursor(&rows) {
                        cursor.query = Some(LogQuery {
                            before: Some(next),
                            ..query
                        });
                    } else if let Some(totals) = cursor.totals {
                        let mut cells = vec![String::new(); CSV_COLUMNS.len()];
                        cells[0] = "total".into();
                        cells[4] = totals.prompt_tokens.to_string();
                        cells[5] = totals.completion_tokens.to_string();
                        cells[7] = exact_usd(totals.cost, qpu);
                        cells[8] = totals.cost.to_string();
                        cells[12] = format!("{} requests", totals.requests);
                        text.push_str(&crate::domain::csv::row(&cells));
                    }
                    Some((Ok(text), cursor))
                }
                Err(error) => {
                    tracing::error!(%error, "the CSV export stopped");
                    Some((Err(std::io::Error::other(error.to_string())), cursor))
                }
            }
        }
    });
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

#[cfg(test)]
mod tests {
    use super::duration;

    #[test]
    fn durations_read_in_milliseconds_or_seconds() {
        assert_eq!(duration(0), "0 ms");
        assert_eq!(duration(820), "820 ms");
        assert_eq!(duration(1_240), "1.24 s");
        assert_eq!(duration(75_312), "75.3 s");
        assert_eq!(duration(-5), "0 ms");
    }
}
