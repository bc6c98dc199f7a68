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

use http::{HeaderName, HeaderValue};

use crate::domain::kinds::ChannelType;
use crate::protocol::Endpoint;

/// OpenAI models that refuse `max_tokens` and take `max_completion_tokens` instead.
pub fn takes_max_completion_tokens(model: &str) -> bool {
    let name = model.rsplit('/').next().unwrap_or(model);
    ["o1", "o3", "o4", "gpt-5"]
        .iter()
        .any(|prefix| name.starts_with(prefix))
}

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
