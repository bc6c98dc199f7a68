//! `/admin/audit`: every change administrators, root, the command line and admin tokens made,
//! with filters, and `/admin/audit.jsonl`: the same rows as JSON lines.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::AdminPage;
use crate::records::audit::AuditRow;
use crate::service;
use crate::service::audit::AuditQuery;
use crate::state::AppState;
use crate::web::error::WebError;
use crate::web::form::FieldErrors;
use crate::web::page::{Page, urlencode};

/// Pages and forms that need only an administrator.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/audit", get(page))
        .route("/admin/audit.jsonl", get(export))
}

/// Forms that need a sign-in within the last minutes too (see `reauth`): none here.
pub fn sensitive_routes() -> Router<AppState> {
    Router::new()
}

/// Rows on one page.
const PAGE_ROWS: i64 = 50;
/// Rows read per step of the export.
const EXPORT_BATCH: i64 = 1_000;

/// One row as the page shows it.
pub struct Line {
    id: i64,
    time: String,
    datetime: String,
    actor: String,
    auth: String,
    ip: String,
    action: String,
    target: String,
    /// The names an organisation's row kept beside the ids of its target ("acme · Research").
    target_names: String,
    before: String,
    after: String,
    ledger_id: Option<i64>,
}

impl Line {
    fn of(row: &AuditRow, page: &Page) -> Line {
        let json = |value: &Option<serde_json::Value>| {
            value
                .as_ref()
                .map(crate::domain::canonical_json::to_string)
                .unwrap_or_default()
        };
        Line {
            id: row.id,
            time: page.calendar.local_time(row.at),
            datetime: page.calendar.rfc3339(row.at),
            actor: row.actor.clone(),
            auth: row.auth.clone(),
            ip: row.ip.clone().unwrap_or_default(),
            action: row.action.clone(),
            target: row.target.clone(),
            target_names: target_names(row),
            before: json(&row.before),
            after: json(&row.after),
            ledger_id: row.ledger_id,
        }
    }
}

/// The organisation's slug and the team's name an organisation's row kept (its target names
/// them by id, which outlives a rename); empty for other rows.
fn target_names(row: &AuditRow) -> String {
    if !service::audit::is_organisation_change(&row.target) {
        return String::new();
    }
    let named = |name: &str| {
        [&row.after, &row.before]
            .into_iter()
            .flatten()
            .find_map(|side| side.get(name)?.as_str().map(str::to_string))
    };
    [named("org"), named("team")]
        .into_iter()
        .flatten()
        .filter(|n| !n.is_empty())
        .collect::<Vec<_>>()
        .join(" · ")
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/audit.html")]
pub struct AuditPage {
    page: Page,
    filters: AuditQuery,
    errors: FieldErrors,
    lines: Vec<Line>,
    /// The next (older) page's address.
    older: Option<String>,
    /// The export of what the filters match.
    export: String,
}

impl AuditPage {
    fn active(&self) -> bool {
        [
            &self.filters.actor,
            &self.filters.action,
            &self.filters.target,
            &self.filters.from,
            &self.filters.to,
        ]
        .iter()
        .any(|v| !v.trim().is_empty())
    }
}

/// The filters as a query string (without `before` and `limit`).
fn query_string(filters: &AuditQuery) -> String {
    [
        ("actor", &filters.actor),
        ("action", &filters.action),
        ("target", &filters.target),
        ("from", &filters.from),
        ("to", &filters.to),
    ]
    .iter()
    .filter(|(_, v)| !v.trim().is_empty())
    .map(|(n, v)| format!("{n}={}", urlencode(v.trim())))
    .collect::<Vec<_>>()
    .join("&")
}

async fn page(
    State(state): State<AppState>,
    admin: AdminPage,
    Query(filters): Query<AuditQuery>,
) -> Result<Response, WebError> {
    let caller = admin.caller();
    let page = admin.page;
    let query = AuditQuery {
        limit: Some(PAGE_ROWS),
        ..filters.clone()
    };
    let (rows, errors) = match service::audit::query(&state.ctx, &caller, &query).await {
        Ok(rows) => (rows, FieldErrors::default()),
        Err(error) if !error.fields().is_empty() => (
            Vec::new(),
            FieldErrors::from_service(&error, page.lang, &[]),
        ),
        Err(error) => return Err(page.failed(error)),
    };
    let base = query_string(&filters);
    let joiner = if base.is_empty() { "" } else { "&" };
    let older = (rows.len() == usize::try_from(PAGE_ROWS).unwrap_or(usize::MAX))
        .then(|| {
            rows.last()
                .map(|r| format!("/admin/audit?{base}{joiner}before={}", r.id))
        })
        .flatten();
    let export = if base.is_empty() {
        "/admin/audit.jsonl".to_string()
    } else {
        format!("/admin/audit.jsonl?{base}")
    };
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let lines = rows.iter().map(|r| Line::of(r, &page)).collect();
    Ok((
        status,
        AuditPage {
            page,
            filters,
            errors,
            lines,
            older,
            export,
        },
    )
        .into_response())
}

/// Every row the filters match, newest first, one JSON object per line, read in batches.
async fn export(
    State(state): State<AppState>,
    admin: AdminPage,
    Query(filters): Query<AuditQuery>,
) -> Result<Response, WebError> {
    let caller = admin.caller();
    let page = admin.page;
    // A wrong filter is said on the page, with its field marked.
    let first = AuditQuery {
        limit: Some(EXPORT_BATCH),
        before: None,
        ..filters
    };
    if let Err(error) = service::audit::query(
        &state.ctx,
        &caller,
        &AuditQuery {
            limit: Some(1),
            ..first.clone()
        },
    )
    .await
    {
        return Err(page.failed(error));
    }
    let ctx = state.ctx.clone();
    let stream = futures::stream::unfold(Some(first), move |next| {
        let ctx = ctx.clone();
        async move {
            let query = next?;
            match service::audit::query(&ctx, &caller, &query).await {
                Ok(rows) if rows.is_empty() => None,
                Ok(rows) => {
                    let mut text = String::new();
                    for row in &rows {
                        text.push_str(&serde_json::to_string(row).unwrap_or_default());
                        text.push('\n');
                    }
                    let full = rows.len() == usize::try_from(EXPORT_BATCH).unwrap_or(usize::MAX);
                    let next = full.then(|| AuditQuery {
                        before: rows.last().map(|r| r.id),
                        ..query
                    });
                    Some((Ok::<_, std::io::Error>(text), next))
                }
                Err(error) => {
                    tracing::error!(%error, "the audit export stopped");
                    Some((Err(std::io::Error::other(error.to_string())), None))
                }
            }
        }
    });
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-ndjson; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"audit.jsonl\"",
            ),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}
