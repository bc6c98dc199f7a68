//! Channel tools: a test call (one cheap real request, its latency and outcome recorded on the
//! channel) and fetching the upstream's model list. Both speak to the upstream the way the relay
//! does: the channel's first key in its type's header, the type's fixed headers, the admin's
//! extra headers.

use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Value, json};

use super::{Caller, Ctx, ServiceError, ServiceResult};
use crate::domain::kinds::ChannelType;
use crate::domain::names;
use crate::domain::secret_key::upstream_key_fingerprint;
use crate::msg;
use crate::protocol::Endpoint;
use crate::providers::{self, Credential, bedrock, vertex};
use crate::service::db;
use crate::service::db::channels::ChannelRow;

/// How long a test or a model listing may take.
pub const UPSTREAM_TOOL_TIMEOUT: Duration = Duration::from_secs(30);

/// A request to the channel's upstream at `url` with an optional JSON body, authenticated
/// like the relay's. Fails only when a key cannot be used (a Vertex account refused, a Bedrock
/// request that cannot be signed).
pub async fn upstream_request(
    http: &reqwest::Client,
    method: reqwest::Method,
    channel: &ChannelRow,
    url: &str,
    body: Option<&Value>,
) -> Result<reqwest::RequestBuilder, String> {
    // The first key in rotation; a channel whose keys are all disabled is tried with its first.
    let key = channel
        .enabled_keys()
        .next()
        .or(channel.secret_keys.first())
        .map(String::as_str)
        .unwrap_or_default();
    upstream_request_with_key(http, method, channel, key, url, body).await
}

/// A request to the channel's upstream with one given key (empty: none).
pub async fn upstream_request_with_key(
    http: &reqwest::Client,
    method: reqwest::Method,
    channel: &ChannelRow,
    key: &str,
    url: &str,
    body: Option<&Value>,
) -> Result<reqwest::RequestBuilder, String> {
    let mut request = http::Request::builder().method(method).uri(url);
    for (name, value) in providers::fixed_headers(channel.channel_type) {
        request = request.header(*name, *value);
    }
    for (name, value) in &channel.extra_headers {
        request = request.header(name.as_str(), value.as_str());
    }
    if body.is_some() {
        request = request.header(http::header::CONTENT_TYPE, "application/json");
    }
    let body = body.map(Value::to_string).unwrap_or_default().into_bytes();
    let mut request = request
        .body(body.clone())
        .map_err(|e| format!("not a valid request: {e}"))?;
    let fingerprint = upstream_key_fingerprint(key);
    match providers::credential(channel.channel_type, key, &fingerprint) {
        Some(Credential::Header(name, value)) => {
            request.headers_mut().insert(name, value);
        }
        Some(Credential::Vertex(tokens)) => {
            let value = tokens.authorization(http).await.map_err(|e| e.message)?;
            request
                .headers_mut()
                .insert(http::header::AUTHORIZATION, value);
        }
        Some(Credential::AwsSigning(aws)) => {
            bedrock::sign(&mut request, &body, &aws, &channel.base_url)?;
        }
        None => {}
    }
    let request =
        reqwest::Request::try_from(request).map_err(|e| format!("not a valid request: {e}"))?;
    Ok(reqwest::RequestBuilder::from_parts(http.clone(), request))
}

#[derive(Serialize, utoipa::ToSchema, Debug, Clone, PartialEq, Eq)]
pub struct TestOutcome {
    pub channel: String,
    /// The model asked for, as the upstream knows it (after the channel's mapping).
    pub model: String,
    pub ok: bool,
    /// The upstream's HTTP status; None when it could not be reached.
    pub status: Option<u16>,
    pub latency_ms: i64,
    /// `ok`, or what went wrong in the upstream's words.
    pub message: String,
}

fn short_error(body: &[u8]) -> String {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    if let Some(message) = parsed
        .as_ref()
        .and_then(|v| v.pointer("/error/message"))
        .and_then(Value::as_str)
    {
        return message.to_string();
    }
    String::from_utf8_lossy(body).chars().take(200).collect()
}

/// The smallest real request for `model` (or the channel's first): one output token. Returns
/// the upstream's model name, the URL and the body.
pub fn minimal_call(
    channel: &ChannelRow,
    model: Option<&str>,
) -> ServiceResult<(String, String, Value)> {
    let requested = match model {
        Some(model) => model.to_string(),
        // A pattern (`gpt-*`) names no model to call.
        None => channel
            .models
            .iter()
            .find(|m| names::pattern_prefix(m).is_none())
            .or_else(|| channel.model_mapping.keys().next())
            .cloned()
            .ok_or_else(|| ServiceError::invalid("model", msg!("channel-test-needs-model")))?,
    };
    let upstream_model = channel
        .model_mapping
        .get(&requested)
        .cloned()
        .unwrap_or(requested);
    let url = providers::full_request_url(
        channel.channel_type,
        &channel.base_url,
        Endpoint::ChatCompletions,
        &upstream_model,
    )
    .ok_or_else(|| {
        ServiceError::invalid(
            "model",
            msg!("model-not-in-url", model = upstream_model.as_str()),
        )
    })?;
    let body = match channel.channel_type {
        ChannelType::Anthropic => json!({
            "model": upstream_model, "max_tokens": 1,
            "messages": [{"role": "user", "content": "hi"}],
        }),
        ChannelType::Gemini => json!({
            "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
            "generationConfig": {"maxOutputTokens": 1},
        }),
        ChannelType::Ollama => json!({
            "model": upstream_model, "stream": false, "options": {"num_predict": 1},
            "messages": [{"role": "user", "content": "hi"}],
        }),
        ChannelType::Cohere => json!({
            "model": upstream_model, "max_tokens": 1,
            "messages": [{"role": "user", "content": "hi"}],
        }),
        ChannelType::Vertex if vertex::is_anthropic_model(&upstream_model) => json!({
            "anthropic_version": vertex::ANTHROPIC_VERSION, "max_tokens": 1,
            "messages": [{"role": "user", "content": "hi"}],
        }),
        ChannelType::Vertex => json!({
            "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
            "generationConfig": {"maxOutputTokens": 1},
        }),
        ChannelType::Bedrock => json!({
            "messages": [{"role": "user", "content": [{"text": "hi"}]}],
            "inferenceConfig": {"maxTokens": 1},
        }),
        ChannelType::OpenAi | ChannelType::Azure => {
            let limit = if providers::takes_max_completion_tokens(&upstream_model) {
                "max_completion_tokens"
            } else {
                "max_tokens"
            };
            json!({
                "model": upstream_model, limit: 1,
                "messages": [{"role": "user", "content": "hi"}],
            })
        }
    };
    Ok((upstream_model, url, body))
}

/// Sends one minimal chat request (one output token) for `model`, or the channel's first
/// model, and records how it went on the channel.
pub async fn test(
    ctx: &Ctx,
    caller: &Caller,
    http: &reqwest::Client,
    name_or_id: &str,
    model: Option<&str>,
) -> ServiceResult<TestOutcome> {
    let channel = super::channels::get(ctx, caller, name_or_id).await?;
    test_channel(ctx, http, channel, model).await
}

/// How many channels a "test all" tests at once.
pub const TESTS_AT_ONCE: usize = 8;

/// Tests every channel (each with its first model), [`TESTS_AT_ONCE`] at a time, each within
/// [`UPSTREAM_TOOL_TIMEOUT`]; the outcomes in the channels' order.
pub async fn test_all(
    ctx: &Ctx,
    caller: &Caller,
    http: &reqwest::Client,
) -> ServiceResult<Vec<TestOutcome>> {
    use futures::StreamExt;
    let channels = super::channels::list(ctx, caller).await?;
    let outcomes = futures::stream::iter(channels)
        .map(|channel| async move {
            let name = channel.name.clone();
            let id = channel.id;
            let tested = tokio::time::timeout(
                UPSTREAM_TOOL_TIMEOUT,
                test_channel(ctx, http, channel, None),
            )
            .await;
            let failed = |message: String| TestOutcome {
                channel: name.clone(),
                model: String::new(),
                ok: false,
                status: None,
                latency_ms: 0,
                message,
            };
            match tested {
                Ok(Ok(outcome)) => Ok(outcome),
                // A channel that names no model to call says so, and the others go on.
                Ok(Err(ServiceError::Invalid(problems))) => Ok(failed(
                    problems
                        .first()
                        .map(|p| p.message.to_string())
                        .unwrap_or_default(),
                )),
                Ok(Err(other)) => Err(other),
                Err(_) => {
                    let latency_ms =
                        i64::try_from(UPSTREAM_TOOL_TIMEOUT.as_millis()).unwrap_or(i64::MAX);
                    let message = format!("no answer within {} s", UPSTREAM_TOOL_TIMEOUT.as_secs());
                    db::channels::record_test(&ctx.db, id, latency_ms, &message).await?;
                    Ok(TestOutcome {
                        latency_ms,
                        ..failed(message)
                    })
                }
            }
        })
        .buffered(TESTS_AT_ONCE)
        .collect::<Vec<ServiceResult<TestOutcome>>>()
        .await;
    outcomes.into_iter().collect()
}

/// Sends the minimal request through `channel` and records how it went.
async fn test_channel(
    ctx: &Ctx,
    http: &reqwest::Client,
    channel: ChannelRow,
    model: Option<&str>,
) -> ServiceResult<TestOutcome> {
    let (upstream_model, url, body) = minimal_call(&channel, model)?;
    let started = Instant::now();
    let sent =
        match upstream_request(http, reqwest::Method::POST, &channel, &url, Some(&body)).await {
            Ok(request) => Ok(request.timeout(UPSTREAM_TOOL_TIMEOUT).send().await),
            Err(refused) => Err(refused),
        };
    let (status, message) = match sent {
        Err(refused) => (None, format!("no access token: {refused}")),
        Ok(Err(e)) => (None, format!("unreachable: {e}")),
        Ok(Ok(response)) => {
            let status = response.status();
            let body = response.bytes().await.unwrap_or_default();
            if status.is_success() {
                (Some(status.as_u16()), "ok".to_string())
            } else {
                (
                    Some(status.as_u16()),
                    format!("HTTP {}: {}", status.as_u16(), short_error(&body)),
                )
            }
        }
    };
    let latency_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    db::channels::record_test(&ctx.db, channel.id, latency_ms, &message).await?;
    Ok(TestOutcome {
        channel: channel.name,
        model: upstream_model,
        ok: message == "ok",
        status,
        latency_ms,
        message,
    })
}

/// The models the upstream lists (`GET …/models`), sorted.
pub async fn fetch_models(
    ctx: &Ctx,
    caller: &Caller,
    http: &reqwest::Client,
    name_or_id: &str,
) -> ServiceResult<Vec<String>> {
    let channel = super::channels::get(ctx, caller, name_or_id).await?;
    if channel.channel_type == ChannelType::Vertex {
        return Err(ServiceError::invalid(
            "channel",
            msg!("vertex-has-no-model-list"),
        ));
    }
    let url = providers::models_url(channel.channel_type, &channel.base_url);
    let response = upstream_request(http, reqwest::Method::GET, &channel, &url, None)
        .await
        .map_err(|reason| ServiceError::Upstream(msg!("upstream-request-failed", reason = reason)))?
        .timeout(UPSTREAM_TOOL_TIMEOUT)
        .send()
        .await
        .map_err(|e| {
            ServiceError::Upstream(msg!("upstream-unreachable", reason = e.to_string()))
        })?;
    let status = response.status();
    let body = response.bytes().await.unwrap_or_default();
    if !status.is_success() {
        return Err(ServiceError::Upstream(msg!(
            "upstream-answered-error",
            status = u32::from(status.as_u16()),
            reason = short_error(&body)
        )));
    }
    let list: Value = serde_json::from_slice(&body)
        .map_err(|_| ServiceError::Upstream(msg!("upstream-model-list-not-json")))?;
    // OpenAI and Anthropic: `{"data":[{"id"}]}`; Gemini: `{"models":[{"name":"models/…"}]}`;
    // Ollama and Cohere: `{"models":[{"name":"llama3.2:3b"}]}`; Bedrock:
    // `{"modelSummaries":[{"modelId"}]}`.
    let openai_style = list
        .get("data")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|m| m.get("id").and_then(Value::as_str));
    let gemini_style = list
        .get("models")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|m| m.get("name").and_then(Value::as_str))
        .map(|name| name.strip_prefix("models/").unwrap_or(name));
    let bedrock_style = list
        .get("modelSummaries")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|m| m.get("modelId").and_then(Value::as_str));
    let mut models: Vec<String> = openai_style
        .chain(gemini_style)
        .chain(bedrock_style)
        .map(str::to_string)
        .collect();
    models.sort();
    Ok(models)
}
