//! The `/v1` hot path: OpenAI-compatible endpoints authenticated by API keys, errors in
//! OpenAI's envelope, no sessions and no database round-trips.

pub mod answer;
mod answers;
mod attempts;
pub mod auth;
mod budgets;
pub mod error;
pub mod inbound;
pub mod models;
pub mod multipart;
pub mod proxy;
pub mod rate_headers;
mod rates;
pub mod request;
pub mod stream;
mod token_count;
pub mod wire;

use axum::Router;
use axum::extract::{OriginalUri, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::{HeaderValue, Method};

use crate::metrics::{RequestMeter, RequestOutcome, Route};
use crate::protocol::client::ClientAddress;
use crate::protocol::{ClientProtocol, Endpoint};
use crate::state::AppState;
use error::RelayError;

/// Routes carry their full paths (no `nest`, which would add work to every request).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/completions", post(completions))
        .route("/v1/embeddings", post(embeddings))
        .route("/v1/messages", post(messages))
        .route("/v1/responses", post(responses))
        // Jina's path, and Cohere's own (its SDK posts to /v2/rerank).
        .route("/v1/rerank", post(rerank))
        .route("/v2/rerank", post(rerank_v2))
        .route("/v1/images/generations", post(image_generations))
        .route("/v1/images/edits", post(image_edits))
        .route("/v1/moderations", post(moderations))
        .route("/v1/audio/speech", post(audio_speech))
        .route("/v1/audio/transcriptions", post(audio_transcriptions))
        .route("/v1/audio/translations", post(audio_translations))
        .route("/v1/messages/count_tokens", post(count_tokens))
        .route("/v1/models", get(models::list))
        // Model ids may contain slashes (`meta-llama/Llama-3-8B`).
        .route("/v1/models/{*id}", get(models::get))
        .method_not_allowed_fallback(wrong_method)
}

async fn relay_endpoint(endpoint: Endpoint, state: AppState, request: Request) -> Response {
    relay_at(endpoint, Route::of(endpoint), state, request).await
}

/// Relays `endpoint`, counted under `route` in the metrics.
async fn relay_at(endpoint: Endpoint, route: Route, state: AppState, request: Request) -> Response {
    use futures::FutureExt;
    // Taken apart rather than extracted, so the headers are moved, not copied.
    let (parts, body) = request.into_parts();
    let ClientAddress(ip) = ClientAddress::of(&parts.extensions);
    // A bug must not cost the client its answer: a panic becomes an OpenAI-style error (the
    // request's ticket refunds itself while unwinding). Caught here rather than in a
    // middleware layer, which would cost every request a boxed future.
    let relayed = std::panic::AssertUnwindSafe(proxy::relay(
        state.clone(),
        endpoint,
        route,
        ip,
        parts.headers,
        body,
    ))
    .catch_unwind()
    .await;
    relayed.unwrap_or_else(|_| {
        tracing::error!("a /v1 handler panicked");
        let protocol = endpoint.protocol();
        let mut response = protocol.error_response(RelayError::internal());
        if let Ok(id) = HeaderValue::try_from(state.request_ids.next()) {
            protocol.add_request_id(response.headers_mut(), id);
        }
        response
    })
}

async fn chat_completions(State(state): State<AppState>, request: Request) -> Response {
    relay_endpoint(Endpoint::ChatCompletions, state, request).await
}

async fn completions(State(state): State<AppState>, request: Request) -> Response {
    relay_endpoint(Endpoint::Completions, state, request).await
}

async fn embeddings(State(state): State<AppState>, request: Request) -> Response {
    relay_endpoint(Endpoint::Embeddings, state, request).await
}

async fn messages(State(state): State<AppState>, request: Request) -> Response {
    relay_endpoint(Endpoint::Messages, state, request).await
}

async fn responses(State(state): State<AppState>, request: Request) -> Response {
    relay_endpoint(Endpoint::Responses, state, request).await
}

async fn rerank(State(state): State<AppState>, request: Request) -> Response {
    relay_endpoint(Endpoint::Rerank, state, request).await
}

/// Cohere's own path for reranking, counted apart from `/v1/rerank`.
async fn rerank_v2(State(state): State<AppState>, request: Request) -> Response {
    relay_at(Endpoint::Rerank, Route::RERANK_V2, state, request).await
}

async fn image_generations(State(state): State<AppState>, request: Request) -> Response {
    relay_endpoint(Endpoint::ImageGenerations, state, request).await
}

async fn image_edits(State(state): State<AppState>, request: Request) -> Response {
    relay_endpoint(Endpoint::ImageEdits, state, request).await
}

async fn moderations(State(state): State<AppState>, request: Request) -> Response {
    relay_endpoint(Endpoint::Moderations, state, request).await
}

async fn audio_speech(State(state): State<AppState>, request: Request) -> Response {
    relay_endpoint(Endpoint::AudioSpeech, state, request).await
}

async fn audio_transcriptions(State(state): State<AppState>, request: Request) -> Response {
    relay_endpoint(Endpoint::AudioTranscriptions, state, request).await
}

async fn audio_translations(State(state): State<AppState>, request: Request) -> Response {
    relay_endpoint(Endpoint::AudioTranslations, state, request).await
}

async fn count_tokens(State(state): State<AppState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let ClientAddress(ip) = ClientAddress::of(&parts.extensions);
    let request_id = state.request_ids.next();
    let meter = RequestMeter::start(&state.metrics, Route::COUNT_TOKENS);
    let counted =
        token_count::count_message_tokens(&state, ip, &parts.headers, body, &request_id).await;
    let mut response = match counted {
        Ok(tokens) => {
            meter.finish(RequestOutcome::Ok);
            axum::Json(serde_json::json!({"input_tokens": tokens})).into_response()
        }
        Err(error) => {
            meter.finish(error.metric_outcome());
            ClientProtocol::Anthropic.error_response(error)
        }
    };
    if let Ok(id) = HeaderValue::try_from(request_id) {
        ClientProtocol::Anthropic.add_request_id(response.headers_mut(), id);
    }
    response
}

/// An unknown path under `/v1`, in OpenAI's envelope.
pub async fn unknown_route(
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
) -> Response {
    with_request_id(
        &state,
        RelayError::not_found_route(uri.path()).into_response(),
    )
}

async fn wrong_method(
    State(state): State<AppState>,
    method: Method,
    OriginalUri(uri): OriginalUri,
) -> Response {
    let error = RelayError::method_not_allowed(method.as_str(), uri.path());
    with_request_id(&state, error.into_response())
}

/// Built once rather than parsed from a string on every answer.
pub(crate) const REQUEST_ID_HEADER: http::HeaderName =
    http::HeaderName::from_static("x-request-id");

/// Every `/v1` answer carries a request id.
pub(crate) fn with_request_id(state: &AppState, response: Response) -> Response {
    with_this_request_id(state.request_ids.next(), response)
}

/// [`with_request_id`] for an id given out earlier (one a log row already names).
pub(crate) fn with_this_request_id(id: String, mut response: Response) -> Response {
    if let Ok(value) = HeaderValue::try_from(id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    response
}
