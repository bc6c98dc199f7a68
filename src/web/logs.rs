//! A person's own requests: filters, totals, pages, and the same rows as CSV.

use askama::Template;
use askama_web::WebTemplate;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::error::WebError;
use super::format;
use super::page::{Page, SignedIn, urlencode};
use crate::db::logs::{LogTotals, RequestLog};
use crate::db::tokens::TokenRow;
use crate::domain::kinds::Outcome;
use crate::domain::money::Quota;
use crate::msg;
use crate::service::logs::LogQuery;
use crate::service::{self, Caller};
use crate::state::AppState;

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
    before: Option<i64>,
}

impl Filters {
    /// The query for the service; a date or value that does not parse is reported.
    fn query(&self, page: &Page) -> Result<LogQuery, WebError> {
        let bad = |field: &str| {
            page.error(
                StatusCode::BAD_REQUEST,
                msg!("web-logs-bad-filter", field = field),
            )
        };
        let day = |text: &str, field: &str| -> Result<Option<i64>, WebError> {
            if text.trim().is_empty() {
                return Ok(None);
            }
            format::day_start(text.trim())
                .map(Some)
                .ok_or_else(|| bad(field))
        };
        let to = day(&self.to, "to")?.map(|start| start + format::DAY_MS);
        Ok(LogQuery {
            username: None,
            token_id: match self.key.trim() {
                "" => None,
                id => Some(id.parse().map_err(|_| bad("key"))?),
            },
            model: Some(self.model.trim().to_string()).filter(|m| !m.is_empty()),
            request_id: None,
            before_id: self.before,
            from_ms: day(&self.from, "from")?,
            to_ms: to,
            outcome: match self.outcome.trim() {
                "" => None,
                text => Some(Outcome::parse(text).ok_or_else(|| bad("outcome"))?),
            },
            limit: Some(PAGE_ROWS),
        })
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

#[derive(Template, WebTemplate)]
#[template(path = "logs.html")]
pub struct LogsPage {
    page: Page,
    filters: Filters,
    rows: Vec<RequestLog>,
    totals: LogTotals,
    keys: Vec<TokenRow>,
    outcomes: Vec<(&'static str, &'static str)>,
    /// The link to the next (older) page, when there may be one.
    older: Option<String>,
    csv: String,
}

impl LogsPage {
    fn when(&self, log: &RequestLog) -> String {
        format::minute(log.created_at)
    }

    fn outcome(&self, log: &RequestLog) -> String {
        self.page.t(format::outcome_key(log.outcome))
    }

    fn key_selected(&self, key: &TokenRow) -> bool {
        self.filters.key.trim() == key.id.to_string()
    }
}

pub async fn page(
    State(state): State<AppState>,
    SignedIn { page, user }: SignedIn,
    Query(filters): Query<Filters>,
) -> Result<Response, WebError> {
    let query = filters.query(&page)?;
    let caller = Caller::User(user.id);
    let fail = |e: service::ServiceError| WebError::internal(page.lang, &e);
    let (rows, totals) = service::logs::query(&state.ctx, &caller, query)
        .await
        .map_err(fail)?;
    let keys = service::tokens::list_for_user(&state.ctx, &caller, &user.username)
        .await
        .map_err(fail)?;
    let query_string = filters.query_string();
    let older = (rows.len() == usize::try_from(PAGE_ROWS).unwrap_or(usize::MAX))
        .then(|| rows.last().map(|last| last.id))
        .flatten()
        .map(|id| {
            let sep = if query_string.is_empty() { "" } else { "&" };
            format!("/logs?{query_string}{sep}before={id}")
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
    Ok(LogsPage {
        page,
        filters,
        rows,
        totals,
        keys,
        outcomes,
        older,
        csv,
    }
    .into_response())
}

/// A cell a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, or a tab or return first)
/// is prefixed with `'`; cells with commas, quotes or line breaks are quoted.
pub fn csv_cell(text: &str) -> String {
    let text = match text.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{text}"),
        _ => text.to_string(),
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

fn csv_row(cells: &[String]) -> String {
    let mut line = cells
        .iter()
        .map(|c| csv_cell(c))
        .collect::<Vec<_>>()
        .join(",");
    line.push_str("\r\n");
    line
}

/// The filtered rows as CSV, newest first, written as they are read (in batches), then a
/// totals row.
pub async fn csv(
    State(state): State<AppState>,
    SignedIn { page, user }: SignedIn,
    Query(filters): Query<Filters>,
) -> Result<Response, WebError> {
    let mut query = filters.query(&page)?;
    query.before_id = None;
    query.limit = Some(CSV_BATCH);
    let qpu = page.quota_per_usd;
    let caller = Caller::User(user.id);
    let header = csv_row(
        &[
            "time_utc",
            "request_id",
            "key",
            "model",
            "prompt_tokens",
            "completion_tokens",
            "cached_tokens",
            "cost_usd",
            "cost_units",
            "outcome",
            "status",
        ]
        .map(str::to_string),
    );
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
                        text.push_str(&csv_row(&[
                            format::minute(log.created_at),
                            log.request_id.clone(),
                            log.token_name.clone(),
                            log.model.clone(),
                            log.prompt_tokens.to_string(),
                            log.completion_tokens.to_string(),
                            log.cached_tokens.to_string(),
                            Quota(log.cost)
                                .usd_string(qpu)
                                .trim_start_matches('$')
                                .to_string(),
                            log.cost.to_string(),
                            log.outcome.as_str().to_string(),
                            log.status_code.to_string(),
                        ]));
                    }
                    let full = rows.len() == usize::try_from(CSV_BATCH).unwrap_or(usize::MAX);
                    if full && let Some(last) = rows.last() {
                        cursor.query = Some(LogQuery {
                            before_id: Some(last.id),
                            ..query
                        });
                    } else if let Some(totals) = cursor.totals {
                        text.push_str(&csv_row(&[
                            "total".into(),
                            String::new(),
                            String::new(),
                            String::new(),
                            totals.prompt_tokens.to_string(),
                            totals.completion_tokens.to_string(),
                            String::new(),
                            Quota(totals.cost)
                                .usd_string(qpu)
                                .trim_start_matches('$')
                                .to_string(),
                            totals.cost.to_string(),
                            format!("{} requests", totals.requests),
                            String::new(),
                        ]));
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
    use super::csv_cell;

    #[test]
    fn cells_cannot_become_formulas() {
        assert_eq!(csv_cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_cell("+1"), "'+1");
        assert_eq!(csv_cell("-1"), "'-1");
        assert_eq!(csv_cell("@SUM"), "'@SUM");
        assert_eq!(csv_cell("gpt-4o"), "gpt-4o");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
    }
}
