//! Operators' endpoints, outside the portal's sessions and the relay's request logs:
//!
//! - `GET /healthz`: 200 `ok` while the process serves; it touches nothing else, so a
//!   container's health check never restarts a node for an outage of something it depends on.
//! - `GET /readyz`: 200 when the node should get traffic; 503 naming what is not ready (it is
//!   draining at a graceful stop, its routing view is not loaded, the database does not
//!   answer, or a registered check fails).
//! - `GET /metrics`: Prometheus' text format. On the listen address it needs the option
//!   `metrics_token` as a bearer token, and answers 404 while that is empty; on the address of
//!   `--metrics-listen` it is served without one.

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde_json::json;

use crate::clock::now_ms;
use crate::domain::secret_key::{constant_time_eq, digest};
use crate::metrics::ScrapedState;
use crate::state::AppState;

/// How long `/readyz` waits for each dependency before it counts as not answering.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// The routes on the listen address.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_with_token))
}

/// The routes on the `--metrics-listen` address: the same, `/metrics` without a token.
pub fn metrics_listener_router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn healthz() -> Response {
    no_store("ok".into_response())
}

async fn readyz(State(state): State<AppState>) -> Response {
    let mut failing = serde_json::Map::new();
    if state.health.is_draining() {
        failing.insert("draining".into(), "the server is stopping".into());
    }
    if !state.health.is_routing_loaded() {
        failing.insert(
            "routing".into(),
            "the routing view is not loaded yet".into(),
        );
    }
    let waited = format!("no answer within {} s", CHECK_TIMEOUT.as_secs());
    let database = async {
        let answered = tokio::time::timeout(
            CHECK_TIMEOUT,
            crate::service::health::database_answers(&state.ctx),
        )
        .await;
        match answered {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => {
                tracing::warn!(%error, "not ready: the database answered with an error");
                Err("the database answered with an error".to_string())
            }
            Err(_) => {
                tracing::warn!("not ready: the database did not answer");
                Err(waited.clone())
            }
        }
    };
    let checks = state.health.checks();
    let others = futures::future::join_all(checks.iter().map(|check| async {
        let result = tokio::time::timeout(CHECK_TIMEOUT, check.check())
            .await
            .unwrap_or_else(|_| Err(waited.clone()));
        (check.name(), result)
    }));
    let (database, others) = tokio::join!(database, others);
    if let Err(reason) = database {
        failing.insert("database".into(), reason.into());
    }
    for (name, result) in others {
        if let Err(reason) = result {
            failing.insert(name.into(), reason.into());
        }
    }
    let response = if failing.is_empty() {
        (StatusCode::OK, axum::Json(json!({ "ready": true }))).into_response()
    } else {
        let body = json!({ "ready": false, "failing": failing });
        (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
    };
    no_store(response)
}

/// The token of an `Authorization: Bearer …` header.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

async fn metrics_with_token(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let authorized = {
        let snapshot = state.snapshot.load();
        let token = &snapshot.options.metrics_token;
        if token.is_empty() {
            return (StatusCode::NOT_FOUND, "not found").into_response();
        }
        // Digests compared, so neither the time taken nor the length tells anything.
        bearer(&headers).is_some_and(|given| constant_time_eq(&digest(given), &digest(token)))
    };
    if !authorized {
        let mut response = (StatusCode::UNAUTHORIZED, "a bearer token is needed").into_response();
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"metrics\""),
        );
        return response;
    }
    metrics(State(state)).await
}

async fn metrics(State(state): State<AppState>) -> Response {
    let path = state.config.dead_letter_path();
    let counted =
        tokio::task::spawn_blocking(move || crate::billing::dead_letter::count(&path)).await;
    let dead_letter_records = match counted {
        Ok(Ok(records)) => records,
        Ok(Err(error)) => {
            tracing::warn!(%error, "cannot read the dead-letter file to count its records");
            0
        }
        Err(_) => 0,
    };
    let scraped = ScrapedState {
        billing_queue_depth: state.billing.queued(),
        dead_letter_records,
        channels: state.snapshot.load().channel_states(now_ms()),
    };
    let text = state.metrics.render(scraped);
    let mut response = text.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(prometheus_client::encoding::prometheus_text::CONTENT_TYPE),
    );
    no_store(response)
}
