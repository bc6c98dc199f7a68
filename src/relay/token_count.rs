//! `/v1/messages/count_tokens`: how large a prompt is, never charged.

use std::net::IpAddr;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderMap, header};
use http_body_util::Full;

use super::error::RelayError;
use super::request::ClientRequest;
use crate::clock::now_ms;
use crate::domain::kinds::ChannelType;
use crate::domain::names;
use crate::options::RuntimeOptions;
use crate::protocol::Endpoint;
use crate::providers::Credential;
use crate::snapshot::{ChannelEntry, ChannelKey, KeyPick};
use crate::state::AppState;

use super::answers::read_limited;
use super::attempts::add_channel_headers;
use super::proxy::{
    CallerKey, MAX_ERROR_BODY, admit, check_model_access, estimate_prompt, read_body,
};

/// Bodies above this size are tokenized on the blocking pool rather than on a request thread.
/// `/v1/messages/count_tokens`: the prompt's size, never charged. Anthropic's own count when
/// the request would go to an Anthropic channel (it knows its tokenizer and what tools and
/// images cost), otherwise, or when that call fails, the gateway's own tokenizer. Same
/// authentication and model checks as a real request.
pub async fn count_message_tokens(
    state: &AppState,
    ip: IpAddr,
    headers: &HeaderMap,
    body: Body,
    request_id: &str,
) -> Result<i64, RelayError> {
    let snapshot = state.snapshot.load_full();
    let caller = admit(
        state,
        CallerKey::Presented,
        headers,
        ip,
        "messages.count_tokens",
        request_id,
    )
    .await?;
    let raw = read_body(body, snapshot.options.max_request_body_kb).await?;
    let request = ClientRequest::parse(Endpoint::Messages, &raw)?;
    names::requested_model(&request.model).map_err(|e| RelayError::invalid_model(&e))?;
    let model = snapshot
        .resolve_model(&request.model)
        .unwrap_or_else(|| request.model.clone());
    let routes = check_model_access(&snapshot, &caller, &request.model, &model)?;
    if let Ok(channel) = routes.pick(&[], now_ms())
        && channel.channel_type == ChannelType::Anthropic
        && let Some(tokens) = anthropic_token_count(
            state,
            &snapshot.options,
            &channel,
            (&request, &model),
            &raw,
            headers,
        )
        .await
    {
        return Ok(tokens);
    }
    Ok(estimate_prompt(state, &request, &raw).await.tokens)
}

/// Asks an Anthropic channel's `messages/count_tokens` (free of charge upstream too). None when
/// the call fails in any way.
async fn anthropic_token_count(
    state: &AppState,
    options: &RuntimeOptions,
    channel: &ChannelEntry,
    (request, model): (&ClientRequest<'_>, &str),
    raw: &Bytes,
    client_headers: &HeaderMap,
) -> Option<i64> {
    let messages_uri = channel.endpoint_uri(Endpoint::Messages)?;
    let uri = http::Uri::try_from(format!("{messages_uri}/count_tokens")).ok()?;
    let body = request
        .upstream_body(raw, channel.upstream_model(model), false)
        .ok()?;
    let mut upstream_request = http::Request::builder()
        .method(http::Method::POST)
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/json");
    match channel.pick_key(now_ms()) {
        KeyPick::Key(ChannelKey {
            credential: Credential::Header(name, value),
            ..
        }) => {
            upstream_request = upstream_request.header(name, value.clone());
        }
        KeyPick::NoKeyNeeded => {}
        KeyPick::Key(_) | KeyPick::AllResting => return None,
    }
    if let Some(headers) = upstream_request.headers_mut() {
        add_channel_headers(channel, client_headers, headers);
    }
    let upstream_request = upstream_request.body(Full::new(body)).ok()?;
    let timeout = Duration::from_secs(options.first_byte_timeout_secs.clamp(1, 30));
    let response = tokio::time::timeout(timeout, state.upstream.send(upstream_request))
        .await
        .ok()?
        .ok()?;
    if !response.status().is_success() {
        tracing::debug!(channel = %channel.name, status = %response.status(), "count_tokens failed upstream; counting locally");
        return None;
    }
    let body = read_limited(response, MAX_ERROR_BODY, timeout).await.ok()?;
    serde_json::from_slice::<serde_json::Value>(&body).ok()?["input_tokens"].as_i64()
}
