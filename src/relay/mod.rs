//! The `/v1` hot path: OpenAI-compatible endpoints authenticated by API keys, errors in
//! OpenAI's envelope, no sessions and no database round-trips.

pub mod auth;
pub mod error;
pub mod models;
pub mod proxy;
pub mod request;
pub mod stream;
pub mod usage;

use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::extract::OriginalUri;
use axum::extract::{ConnectInfo, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::{HeaderMap, HeaderValue, Method};

use crate::state::AppState;
use error::RelayError;
use request::Endpoint;

pub fn router() -> Router<AppState> {
    let v1 = Router::new()
        .route("/chat/completions", post(chat_completions))
        .route("/completions", post(completions))
        .route("/embeddings", post(embeddings))
        .route("/models", get(models::list))
        // Model ids may contain slashes (`meta-llama/Llama-3-8B`).
        .route("/models/{*id}", get(models::get))
        .fallback(unknown_route)
        .method_not_allowed_fallback(wrong_method)
        .layer(axum::middleware::map_response(ensure_request_id));
    Router::new().nest("/v1", v1)
}

async fn relay_endpoint(
    endpoint: Endpoint,
    state: AppState,
    peer: SocketAddr,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let ip = auth::client_ip(peer, &headers, state.config.server.trust_forwarded_for);
    proxy::relay(state, endpoint, ip, headers, body).await
}

async fn chat_completions(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    relay_endpoint(Endpoint::ChatCompletions, state, peer, headers, body).await
}

async fn completions(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    relay_endpoint(Endpoint::Completions, state, peer, headers, body).await
}

async fn embeddings(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    relay_endpoint(Endpoint::Embeddings, state, peer, headers, body).await
}

async fn unknown_route(OriginalUri(uri): OriginalUri) -> Response {
    RelayError::not_found_route(uri.path()).into_response()
}

async fn wrong_method(method: Method, OriginalUri(uri): OriginalUri) -> Response {
    RelayError::method_not_allowed(method.as_str(), uri.path()).into_response()
}

/// Every `/v1` answer carries a request id; the relay sets its own (the one in the logs), the
/// rest get a fresh one.
async fn ensure_request_id(mut response: Response) -> Response {
    if !response.headers().contains_key("x-request-id")
        && let Ok(value) = HeaderValue::try_from(proxy::new_request_id())
    {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}
