use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::Data;
use super::error::{ApiError, ApiErrorBody};
use super::extract::{ApiCaller, ApiJson};
use crate::options::OptionInfo;
use crate::service::{self};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(set, reset))
        .routes(routes!(test_email))
        .routes(routes!(check_stripe))
}

/// Every runtime option with its value, default and description.
#[utoipa::path(get, path = "/options",
    responses((status = 200, description = "The options", body = Data<OptionInfo>)))]
async fn list(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
) -> Result<Json<Data<OptionInfo>>, ApiError> {
    Ok(Data::of(service::options::list(&state.ctx, &caller).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct OptionBody {
    /// The new value: a string, or any JSON value (stored as its JSON text).
    #[schema(value_type = Object)]
    value: serde_json::Value,
    /// Needed to switch on a feature that moves money: payments, invite rewards, a balance
    /// for new accounts.
    #[serde(default)]
    confirm: bool,
}

/// Sets an option.
#[utoipa::path(put, path = "/options/{name}", request_body = OptionBody,
    responses(
        (status = 200, description = "The option as stored", body = OptionInfo),
        (status = 403, description = "The option is root's alone", body = ApiErrorBody),
        (status = 404, description = "No such option", body = ApiErrorBody),
    ))]
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

/// Puts an option back to its default.
#[utoipa::path(delete, path = "/options/{name}",
    responses(
        (status = 200, description = "The option at its default", body = OptionInfo),
        (status = 403, description = "The option is root's alone", body = ApiErrorBody),
        (status = 404, description = "No such option", body = ApiErrorBody),
    ))]
async fn reset(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<OptionInfo>, ApiError> {
    let info = service::options::reset(&state.ctx, &caller, &name).await?;
    Ok(Json(info))
}

/// `{"to": "someone@example.com"}`
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct TestEmailBody {
    to: String,
}

#[derive(Serialize, ToSchema)]
struct EmailSent {
    /// Always true: a failure is an error.
    sent: bool,
    to: String,
}

/// Sends a test email through the mail settings (root's alone).
#[utoipa::path(post, path = "/mail/test", request_body = TestEmailBody,
    responses(
        (status = 200, description = "The mail server took the message", body = EmailSent),
        (status = 403, description = "Root's alone", body = ApiErrorBody),
        (status = 502, description = "The mail server refused or could not be reached", body = ApiErrorBody),
    ))]
async fn test_email(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<TestEmailBody>,
) -> Result<Json<EmailSent>, ApiError> {
    service::site_checks::send_test_email(&state.ctx, &caller, &body.to).await?;
    Ok(Json(EmailSent {
        sent: true,
        to: body.to.trim().to_string(),
    }))
}

#[derive(Serialize, ToSchema)]
struct StripeChecked {
    /// Always true: a refusal is an error.
    ok: bool,
}

/// Checks the Stripe secret key with a read-only call (root's alone): `{"ok": true}`, or
/// Stripe's refusal as a 502.
#[utoipa::path(post, path = "/stripe/check",
    responses(
        (status = 200, description = "Stripe took the key", body = StripeChecked),
        (status = 403, description = "Root's alone", body = ApiErrorBody),
        (status = 502, description = "Stripe refused the key or could not be reached", body = ApiErrorBody),
    ))]
async fn check_stripe(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
) -> Result<Json<StripeChecked>, ApiError> {
    service::site_checks::check_stripe(&state.ctx, &caller).await?;
    Ok(Json(StripeChecked { ok: true }))
}
