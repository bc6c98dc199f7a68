//! Webhooks other services call: Stripe's events at `POST /stripe/webhook`. No session, no
//! CSRF token (Stripe sends neither): a delivery is believed only when its `Stripe-Signature`
//! verifies against the endpoint's signing secret. The body is bounded before it is read.
//!
//! Answers follow what Stripe does with them: 2xx when the event is applied (or was before,
//! or is of a type Tollgate ignores); 400 for a delivery that is not Stripe's (it stops);
//! 5xx when applying failed inside Tollgate, so Stripe delivers it again later.

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use http::{HeaderMap, StatusCode};
use serde_json::json;

use crate::domain::stripe_signature;
use crate::protocol::client::BodyDeadlinePassed;
use crate::service::topups::{self, EventError};
use crate::state::AppState;

/// Stripe's events are a few kilobytes; anything far larger is not one.
const MAX_BODY_BYTES: usize = 512 * 1024;

pub fn router() -> Router<AppState> {
    Router::new().route("/stripe/webhook", post(stripe_webhook))
}

/// Why a delivery was refused, as Stripe's dashboard shows it.
#[derive(Debug)]
pub struct WebhookError {
    status: StatusCode,
    message: String,
}

impl WebhookError {
    fn refused(message: impl Into<String>) -> WebhookError {
        WebhookError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    fn too_large() -> WebhookError {
        WebhookError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            message: format!("the body is larger than {MAX_BODY_BYTES} bytes"),
        }
    }
}

impl WebhookError {
    /// The body missed its deadline (`--body-timeout-secs`); the connection closes after this.
    fn too_slow() -> WebhookError {
        WebhookError {
            status: StatusCode::REQUEST_TIMEOUT,
            message: "the body arrived too slowly".into(),
        }
    }
}

impl IntoResponse for WebhookError {
    fn into_response(self) -> Response {
        (
            self.status,
            axum::Json(json!({ "error": { "message": self.message } })),
        )
            .into_response()
    }
}

async fn stripe_webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, WebhookError> {
    let (secret, configured) = {
        let options = &state.snapshot.load().options;
        (
            options.stripe_webhook_secret.clone(),
            !options.stripe_secret_key.is_empty(),
        )
    };
    if secret.is_empty() || !configured {
        return Err(WebhookError::refused(
            "Stripe is not configured on this site (stripe_secret_key and stripe_webhook_secret)",
        ));
    }
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    // A declared length over the bound is refused unread; an undeclared one is read only
    // up to it.
    if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
        return Err(WebhookError::too_large());
    }
    let body = axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|e| {
            if BodyDeadlinePassed::caused(&e) {
                WebhookError::too_slow()
            } else {
                WebhookError::too_large()
            }
        })?;
    let signature = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| WebhookError::refused("the Stripe-Signature header is missing"))?;
    let now = crate::clock::now_ms() / 1000;
    stripe_signature::verify(
        &body,
        signature,
        &secret,
        now,
        stripe_signature::DEFAULT_TOLERANCE_SECS,
    )
    .map_err(|e| WebhookError::refused(e.to_string()))?;
    match topups::apply_event(&state.ctx, &body, &state.listen_url).await {
        Ok(outcome) => {
            Ok(axum::Json(json!({ "received": true, "outcome": outcome })).into_response())
        }
        Err(EventError::Malformed(reason)) => Err(WebhookError::refused(reason)),
        Err(EventError::Internal(error)) => {
            tracing::error!(%error, "a Stripe event could not be applied; Stripe will deliver it again");
            Err(WebhookError {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                message: "the event could not be applied; it will be retried".into(),
            })
        }
    }
}
