//! `GET /api/audit`: the audit log, newest first, with the console's filters.

use axum::Json;
use axum::extract::{Query, State};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ApiError;
use super::extract::ApiCaller;
use crate::records::audit::AuditRow;
use crate::service;
use crate::service::audit::AuditQuery;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list))
}

/// A page of the audit log.
#[derive(Serialize, ToSchema)]
struct AuditPage {
    data: Vec<AuditRow>,
    /// `before` for the next page: the last row's id (null when the page is empty).
    next_before: Option<i64>,
}

/// Rows as stored (`id`, `at` in Unix ms, `actor`, `auth`, `ip`, `user_agent`, `action`,
/// `target`, `before`, `after`, `ledger_id`, `prev_hash`, `hash`); the next page with
/// `before` = the last id received.
#[utoipa::path(get, path = "/audit", params(AuditQuery),
    responses((status = 200, description = "Rows, newest first", body = AuditPage)))]
async fn list(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Query(query): Query<AuditQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    let rows = service::audit::query(&state.ctx, &caller, &query).await?;
    let next_before = rows.last().map(|r| r.id);
    Ok(Json(AuditPage {
        data: rows,
        next_before,
    }))
}
