//! How Tollgate talks to each kind of upstream. A channel's type decides the URL of each
//! endpoint, how its key is sent, and whether the client's request goes through unchanged
//! (OpenAI-compatible upstreams) or is translated there and back (everything else).

pub mod anthropic;
pub mod azure;
pub mod bedrock;
pub(crate) mod chat;
pub mod cohere;
pub mod gemini;
pub mod ollama;
pub mod presets;
pub mod vertex;

use bytes::BytesMut;
use http::{HeaderName, HeaderValue};
use serde_json::Value;

use super::request::Endpoint;
use crate::domain::kinds::ChannelType;
use crate::domain::pricing::Usage;

/// How a request proves it may use a channel: a fixed header, or an access token obtained
/// with the key (Vertex's service accounts).
#[derive(Debug)]
pub enum Credential {
    Header(HeaderName, HeaderValue),
    Vertex(std::sync::Arc<vertex::TokenSource>),
    /// IAM credentials that sign each request (SigV4).
    AwsSigning(std::sync::Arc<bedrock::BedrockKey>),
}

/// The credential for one key of a channel, built once per key when the snapshot is built.
/// None when the key cannot be used (not a header value, not a service account).
pub fn credential(channel_type: ChannelType, key: &str, fingerprint: &str) -> Option<Credential> {
    match channel_type {
        ChannelType::Vertex => vertex::TokenSource::for_key(fingerprint, key)
            .ok()
            .map(Credential::Vertex),
        ChannelType::Bedrock => match bedrock::BedrockKey::parse(key).ok()? {
            bedrock::BedrockKey::Bearer(token) => {
                let mut value = HeaderValue::try_from(format!("Bearer {token}")).ok()?;
                value.set_sensitive(true);
                Some(Credential::Header(http::header::AUTHORIZATION, value))
            }
            signing => Some(Credential::AwsSigning(std::sync::Arc::new(signing))),
        },
        _ => key_header(channel_type, key).map(|(name, value)| Credential::Header(name, value)),
    }
}

/// The header that carries a channel key. None for a key that is not a header value, and for
/// Vertex, whose keys are traded for tokens (see [`credential`]).
pub fn key_header(channel_type: ChannelType, key: &str) -> Option<(HeaderName, HeaderValue)> {
    let (name, value) = match channel_type {
        ChannelType::Vertex | ChannelType::Bedrock => return None,
        // Ollama needs no key locally; Ollama's cloud and proxies in front of it take a bearer.
        ChannelType::OpenAi | ChannelType::Ollama | ChannelType::Cohere => {
            (http::header::AUTHORIZATION, format!("Bearer {key}"))
        }
        ChannelType::Anthropic => (HeaderName::from_static("x-api-key"), key.to_string()),
        ChannelType::Azure => (HeaderName::from_static("api-key"), key.to_string()),
        ChannelType::Gemini => (HeaderName::from_static("x-goog-api-key"), key.to_string()),
    };
    let mut value = HeaderValue::try_from(value).ok()?;
    value.set_sensitive(true);
    Some((name, value))
}

/// The upstream's own id for a request, from its answer's headers: Anthropic's `request-id`,
/// OpenAI's (and most vendors') `x-request-id`, Bedrock's `x-amzn-requestid`, Azure's
/// `apim-request-id`.
pub fn upstream_request_id(headers: &http::HeaderMap) -> Option<&str> {
    use http::HeaderName;
    // Built once rather than parsed from strings on every answer.
    const NAMES: [HeaderName; 4] = [
        HeaderName::from_static("request-id"),
        HeaderName::from_static("x-request-id"),
        HeaderName::from_static("x-amzn-requestid"),
        HeaderName::from_static("apim-request-id"),
    ];
    NAMES
        .iter()
        .find_map(|name| headers.get(name)?.to_str().ok())
        .filter(|id| !id.is_empty())
}

/// Headers every request to this kind of upstream carries (an admin's extra headers win).
pub fn fixed_headers(channel_type: ChannelType) -> &'static [(&'static str, &'static str)] {
    match channel_type {
        ChannelType::OpenAi
        | ChannelType::Azure
        | ChannelType::Gemini
        | ChannelType::Ollama
        | ChannelType::Cohere
        | ChannelType::Vertex
        | ChannelType::Bedrock => &[],
        ChannelType::Anthropic => &[("anthropic-version", anthropic::API_VERSION)],
    }
}

/// The path under the channel's base URL that serves an endpoint, or None when this kind of
/// upstream has no such endpoint. For upstreams that name the model in the path (Gemini) it is
/// the prefix the model is appended to, see [`request_uri`].
pub fn endpoint_path(channel_type: ChannelType, endpoint: Endpoint) -> Option<&'static str> {
    match (channel_type, endpoint) {
        // Anthropic clients are served from chat completions, translated.
        (ChannelType::OpenAi | ChannelType::Azure, Endpoint::Messages) => Some("/chat/completions"),
        // Rerank is served by OpenAI-compatible vendors (Jina, SiliconFlow, vLLM), not Azure.
        (ChannelType::Azure, Endpoint::Rerank) => None,
        (ChannelType::OpenAi | ChannelType::Azure, endpoint) => Some(endpoint.upstream_path()),
        (
            ChannelType::Anthropic,
            Endpoint::ChatCompletions | Endpoint::Messages | Endpoint::Responses,
        ) => Some("/messages"),
        (ChannelType::Anthropic, _) => None,
        (
            ChannelType::Gemini,
            Endpoint::ChatCompletions
            | Endpoint::Messages
            | Endpoint::Responses
            | Endpoint::Embeddings,
        ) => Some("/models"),
        (ChannelType::Gemini, _) => None,
        (
            ChannelType::Ollama,
            Endpoint::ChatCompletions | Endpoint::Messages | Endpoint::Responses,
        ) => Some("/chat"),
        (ChannelType::Ollama, Endpoint::Embeddings) => Some("/embed"),
        (ChannelType::Ollama, _) => None,
        (
            ChannelType::Cohere,
            Endpoint::ChatCompletions | Endpoint::Messages | Endpoint::Responses,
        ) => Some("/chat"),
        (ChannelType::Cohere, Endpoint::Embeddings) => Some("/embed"),
        (ChannelType::Cohere, Endpoint::Rerank) => Some("/rerank"),
        (ChannelType::Cohere, _) => None,
        // The publisher and model complete the path per request (see `request_uri`).
        (
            ChannelType::Vertex,
            Endpoint::ChatCompletions | Endpoint::Messages | Endpoint::Responses,
        ) => Some("/publishers"),
        (ChannelType::Vertex, _) => None,
        // The model id and the method complete the path per request.
        (
            ChannelType::Bedrock,
            Endpoint::ChatCompletions | Endpoint::Messages | Endpoint::Responses,
        ) => Some("/model"),
        (ChannelType::Bedrock, _) => None,
    }
}

/// Whether a channel of this type needs an upstream key (a local Ollama takes none).
pub fn needs_key(channel_type: ChannelType) -> bool {
    channel_type != ChannelType::Ollama
}

/// The URL an endpoint is served at, before the model is known (the relay parses it once per
/// channel; [`request_uri`] completes it per request). None when the upstream lacks the endpoint.
pub fn endpoint_url(
    channel_type: ChannelType,
    base_url: &str,
    endpoint: Endpoint,
) -> Option<String> {
    let path = endpoint_path(channel_type, endpoint)?;
    Some(match channel_type {
        ChannelType::Azure => azure::endpoint_url(base_url, path),
        _ => format!("{}{path}", base_url.trim_end_matches('/')),
    })
}

/// The full URL of one request, for the channel tools.
pub fn full_request_url(
    channel_type: ChannelType,
    base_url: &str,
    endpoint: Endpoint,
    upstream_model: &str,
) -> Option<String> {
    let base: http::Uri = endpoint_url(channel_type, base_url, endpoint)?
        .parse()
        .ok()?;
    request_uri(channel_type, endpoint, &base, upstream_model, false).map(|uri| uri.to_string())
}

/// The upstream's model list, which also serves as the health probe.
pub fn models_url(channel_type: ChannelType, base_url: &str) -> String {
    match channel_type {
        ChannelType::Azure => azure::models_url(base_url),
        // Gemini pages its list by 50 unless asked for more.
        ChannelType::Gemini => format!("{}/models?pageSize=1000", base_url.trim_end_matches('/')),
        ChannelType::OpenAi | ChannelType::Anthropic => {
            format!("{}/models", base_url.trim_end_matches('/'))
        }
        ChannelType::Ollama => format!("{}/tags", base_url.trim_end_matches('/')),
        // Publisher models are listed by v1beta1 only, under the publisher.
        ChannelType::Vertex => format!(
            "{}/publishers/google/models",
            base_url
                .trim_end_matches('/')
                .replacen("/v1/", "/v1beta1/", 1)
        ),
        // The model list is on the control plane (`bedrock.`), not the runtime.
        ChannelType::Bedrock => format!(
            "{}/foundation-models",
            base_url
                .trim_end_matches('/')
                .replacen("://bedrock-runtime.", "://bedrock.", 1)
        ),
        // Cohere lists its models in v1 only.
        ChannelType::Cohere => {
            let base = base_url.trim_end_matches('/');
            format!("{}/v1/models", base.strip_suffix("/v2").unwrap_or(base))
        }
    }
}

/// The URI one request goes to: the endpoint's own URI, or, where the upstream names the model
/// in the path, that URI completed with it: `/{model}:{method}` for Gemini, the deployment for
/// Azure.
pub fn request_uri(
    channel_type: ChannelType,
    endpoint: Endpoint,
    endpoint_uri: &http::Uri,
    upstream_model: &str,
    stream: bool,
) -> Option<http::Uri> {
    match channel_type {
        ChannelType::OpenAi
        | ChannelType::Anthropic
        | ChannelType::Ollama
        | ChannelType::Cohere => Some(endpoint_uri.clone()),
        ChannelType::Azure => azure::with_deployment(endpoint_uri, upstream_model),
        ChannelType::Gemini => {
            let method = match (endpoint, stream) {
                (Endpoint::Embeddings, _) => "batchEmbedContents",
                (_, true) => "streamGenerateContent?alt=sse",
                (_, false) => "generateContent",
            };
            let path = gemini::method_path(upstream_model, method);
            http::Uri::try_from(format!("{endpoint_uri}{path}")).ok()
        }
        ChannelType::Vertex => {
            let path = vertex::model_path(upstream_model, stream);
            http::Uri::try_from(format!("{endpoint_uri}{path}")).ok()
        }
        ChannelType::Bedrock => {
            let path = bedrock::model_path(upstream_model, stream);
            http::Uri::try_from(format!("{endpoint_uri}{path}")).ok()
        }
    }
}

/// The status an upstream's refusal counts as for retries and auto-disabling, where an upstream
/// reports a bad key with another status (Gemini answers 400).
pub fn effective_status(channel_type: ChannelType, status: u16, body: &[u8]) -> u16 {
    match channel_type {
        ChannelType::Gemini => gemini::effective_status(status, body),
        ChannelType::OpenAi
        | ChannelType::Azure
        | ChannelType::Anthropic
        | ChannelType::Ollama
        | ChannelType::Cohere
        | ChannelType::Vertex
        | ChannelType::Bedrock => status,
    }
}

/// The version prefix a bare base URL (`https://api.anthropic.com`) needs.
pub fn default_path_prefix(channel_type: ChannelType) -> &'static str {
    match channel_type {
        ChannelType::OpenAi | ChannelType::Anthropic => "/v1",
        ChannelType::Gemini => "/v1beta",
        // Ollama's native API lives under /api (its OpenAI mode under /v1 is the
        // `ollama-openai` preset).
        ChannelType::Ollama => "/api",
        ChannelType::Cohere => "/v2",
        // The resource alone: deployment URLs start at the root. Vertex's base URL names the
        // project and location, which no default can supply.
        ChannelType::Azure | ChannelType::Vertex | ChannelType::Bedrock => "",
    }
}

/// What the relay learns from one translated stream event.
#[derive(Debug, Default)]
pub struct TranslatedEvent {
    /// The usage so far, when the event reports it.
    pub usage: Option<Usage>,
    /// Generated text in this event, counted when the upstream never reports usage.
    pub text: String,
    /// The upstream reported an error inside the stream.
    pub error: Option<String>,
}

/// Turns an upstream's stream events into the client's protocol, one event at a time.
pub trait StreamTranslator: Send {
    /// Handles one upstream event (`raw`, as received; `data`, its joined data lines) and
    /// appends what the client receives to `out`.
    fn event(&mut self, raw: &[u8], data: &[u8], out: &mut bytes::BytesMut) -> TranslatedEvent;

    /// The upstream has sent its final event: the answer is complete.
    fn finished(&self) -> bool;
}

/// Two translations in a row, through OpenAI's chat chunks: an upstream's events become chat
/// chunks, which become the client's events (Gemini's stream for an Anthropic client, say).
/// Usage, counted text and errors are the upstream side's; the answer is finished when the
/// client's side has written its final event.
pub struct Chained {
    pub upstream: Box<dyn StreamTranslator>,
    pub client: Box<dyn StreamTranslator>,
}

impl StreamTranslator for Chained {
    fn event(&mut self, raw: &[u8], data: &[u8], out: &mut BytesMut) -> TranslatedEvent {
        let mut chat = BytesMut::new();
        let seen = self.upstream.event(raw, data, &mut chat);
        let mut rest = &chat[..];
        while let Some(end) = super::stream::event_end(rest) {
            let (event, after) = rest.split_at(end);
            if let Some(data) = super::stream::event_data(event) {
                self.client.event(event, &data, out);
            }
            rest = after;
        }
        seen
    }

    fn finished(&self) -> bool {
        self.client.finished()
    }
}

/// Writes the chat-completion chunks a translated stream is made of, all with one id, model
/// and creation time.
pub struct ChatChunks {
    pub id: String,
    pub model: String,
    pub created: i64,
}

impl ChatChunks {
    /// One choice's delta, with its finish reason when it ends.
    pub fn delta(&self, index: usize, delta: Value, finish: Option<&str>, out: &mut BytesMut) {
        write_data(
            &serde_json::json!({
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "choices": [{"index": index, "delta": delta, "finish_reason": finish, "logprobs": null}],
            }),
            out,
        );
    }

    /// The end of the stream: the usage chunk when the client asked for it, then `[DONE]`.
    pub fn end(&self, usage: Option<Usage>, out: &mut BytesMut) {
        if let Some(usage) = usage {
            write_data(
                &serde_json::json!({
                    "id": self.id,
                    "object": "chat.completion.chunk",
                    "created": self.created,
                    "model": self.model,
                    "choices": [],
                    "usage": openai_usage(usage),
                }),
                out,
            );
        }
        out.extend_from_slice(b"data: [DONE]\n\n");
    }
}

/// Vectors → OpenAI's embeddings list. With `base64`, each vector is its little-endian f32
/// bytes in base64, as OpenAI sends them (the official SDKs ask for that by default). None
/// when a value is not a number.
pub fn embedding_list(
    vectors: &[&[Value]],
    client_model: &str,
    prompt_tokens: i64,
    base64: bool,
) -> Option<Value> {
    let mut data = Vec::with_capacity(vectors.len());
    for (index, values) in vectors.iter().enumerate() {
        let vector = if base64 {
            let mut bytes = Vec::with_capacity(values.len() * 4);
            for value in values.iter() {
                // Vectors are single precision on both sides.
                #[allow(clippy::cast_possible_truncation)]
                let single = value.as_f64()? as f32;
                bytes.extend_from_slice(&single.to_le_bytes());
            }
            serde_json::json!(base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                bytes
            ))
        } else {
            if !values.iter().all(Value::is_number) {
                return None;
            }
            Value::Array(values.to_vec())
        };
        data.push(serde_json::json!({"object": "embedding", "index": index, "embedding": vector}));
    }
    Some(serde_json::json!({
        "object": "list",
        "data": data,
        "model": client_model,
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    }))
}

/// Billing usage → OpenAI's usage object.
pub fn openai_usage(usage: Usage) -> Value {
    let mut value = serde_json::json!({
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.prompt_tokens.saturating_add(usage.completion_tokens),
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
    });
    // OpenAI has no field for cache writes; LiteLLM's name lets a client see what it paid for.
    if usage.cache_write_tokens > 0 {
        value["cache_creation_input_tokens"] = usage.cache_write_tokens.into();
    }
    value
}

fn write_data(value: &Value, out: &mut BytesMut) {
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(value.to_string().as_bytes());
    out.extend_from_slice(b"\n\n");
}

/// OpenAI's error envelope.
pub fn openai_error(message: &str, kind: &str, code: &str) -> serde_json::Value {
    serde_json::json!({
        "error": {"message": message, "type": kind, "param": null, "code": code}
    })
}

/// Writes one OpenAI-style error event.
pub fn error_event(message: &str, kind: &str, code: &str, out: &mut BytesMut) {
    let event = openai_error(message, kind, code);
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(event.to_string().as_bytes());
    out.extend_from_slice(b"\n\n");
}
