use axum::extract::{Path, State};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::ApiError;
use super::extract::{ApiCaller, ApiJson};
use crate::options::OptionInfo;
use crate::service::{self};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/options", get(list))
        .route("/options/{name}", put(set).delete(reset))
        .route("/mail/test", post(test_email))
        .route("/stripe/check", post(check_stripe))
}

async fn list(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        json!({ "data": service::options::list(&state.ctx, &caller).await? }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OptionBody {
    value: serde_json::Value,
    /// Needed to switch on a feature that moves money: payments, invite rewards, a balance
    /// for new accounts.
    #[serde(default)]
    confirm: bool,
}

async fn set(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<OptionBody>,
) -> Result<Json<OptionInfo>, ApiError> {
    let value = match body.value {
        serde_json::Value::String(text) => text,
        other => other.to_string(),
    };
    let info =
        service::options::set_confirmed(&state.ctx, &caller, &name, &value, body.confirm).await?;
    Ok(Json(info))
}

async fn reset(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<OptionInfo>, ApiError> {
    let info = service::options::reset(&state.ctx, &caller, &name).await?;
    Ok(Json(info))
}

/// `{"to": "someone@example.com"}`
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TestEmailBody {
    to: String,
}

/// Sends a test email through the mail settings (root's alone).
async fn test_email(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<TestEmailBody>,
) -> Result<Json<Value>, ApiError> {
    service::site_checks::send_test_email(&state.ctx, &caller, &body.to).await?;
    Ok(Json(json!({ "sent": true, "to": body.to.trim() })))
}

/// Checks the Stripe secret key with a read-only call (root's alone): `{"ok": true}`, or
/// Stripe's refusal as a 502.
async fn check_stripe(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
) -> Result<Json<Value>, ApiError> {
    service::site_checks::check_stripe(&state.ctx, &caller).await?;
    Ok(Json(json!({ "ok": true })))
}
