//! One API's balance routes, for third-party balance checkers: `GET
//! /v1/dashboard/billing/subscription` and `GET /v1/dashboard/billing/usage`, answering for
//! the calling key. Served beside the relay (its own router, error type and no hold, pricing or
//! upstream), in the shapes those checkers read.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::clock::now_ms;
use crate::domain::calendar::SiteCalendar;
use crate::domain::money::Quota;
use crate::service::{self, ServiceError};
use crate::state::AppState;

/// What a limit with no bound reads as (One API's figure for "unlimited"), in dollars.
const UNLIMITED_USD: f64 = 100_000_000.0;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/dashboard/billing/subscription", get(subscription))
        .route("/v1/dashboard/billing/usage", get(usage))
}

/// An error in OpenAI's shape: `{"error":{"message","type","code"}}`.
#[derive(Debug)]
pub struct OneApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl OneApiError {
    fn unauthorized() -> Self {
        OneApiError {
            status: StatusCode::UNAUTHORIZED,
            code: "invalid_api_key",
            message: "The API key is missing, unknown, disabled or expired.".into(),
        }
    }
}

impl From<ServiceError> for OneApiError {
    fn from(error: ServiceError) -> Self {
        match error {
            ServiceError::Forbidden(_) | ServiceError::NotFound(_) => OneApiError::unauthorized(),
            other => {
                tracing::error!(error = %other, "a balance check failed");
                OneApiError {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    code: "internal_error",
                    message: "The balance could not be read; try again.".into(),
                }
            }
        }
    }
}

impl IntoResponse for OneApiError {
    fn into_response(self) -> Response {
        let kind = if self.status == StatusCode::UNAUTHORIZED {
            "invalid_request_error"
        } else {
            "server_error"
        };
        (
            self.status,
            Json(json!({"error": {"message": self.message, "type": kind, "code": self.code}})),
        )
            .into_response()
    }
}

/// The key in `Authorization: Bearer …`.
fn bearer(headers: &HeaderMap) -> Result<&str, OneApiError> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|key| !key.is_empty())
        .ok_or_else(OneApiError::unauthorized)
}

fn dollars(state: &AppState, units: i64) -> f64 {
    Quota(units).usd_f64(state.snapshot.load().options.quota_per_usd())
}

/// The key's limit: spent plus remaining (the key's own, or its owner's when the key has no
/// limit of its own), the same figure for the soft, hard and system limits.
async fn subscription(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, OneApiError> {
    let key = bearer(&headers)?;
    let limit = service::key_billing::limit(&state.ctx, key, now_ms()).await?;
    let usd = dollars(&state, limit.total).min(UNLIMITED_USD);
    Ok(Json(json!({
        "object": "billing_subscription",
        "has_payment_method": true,
        "soft_limit_usd": usd,
        "hard_limit_usd": usd,
        "system_hard_limit_usd": usd,
        "access_until": limit.expires_at.map_or(0, |ms| ms / 1000),
    })))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct UsageParams {
    start_date: String,
    end_date: String,
}

/// What the key spent from `start_date` up to `end_date` (days of the site's zone, the end
/// excluded, as OpenAI's route took them), in US cents.
async fn usage(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<UsageParams>,
) -> Result<Json<serde_json::Value>, OneApiError> {
    let key = bearer(&headers)?;
    let calendar = SiteCalendar::new(&state.snapshot.load().options.timezone);
    let day = |text: &str, name: &str| -> Result<Option<i64>, OneApiError> {
        if text.trim().is_empty() {
            return Ok(None);
        }
        calendar
            .date_start_ms(text)
            .map(Some)
            .ok_or_else(|| OneApiError {
                status: StatusCode::BAD_REQUEST,
                code: "invalid_request",
                message: format!("`{name}` must be a date such as 2026-11-30"),
            })
    };
    let from = day(&params.start_date, "start_date")?;
    let to = day(&params.end_date, "end_date")?;
    let spent = service::key_billing::spent(&state.ctx, key, from, to, now_ms()).await?;
    Ok(Json(json!({
        "object": "list",
        "total_usage": dollars(&state, spent) * 100.0,
    })))
}
