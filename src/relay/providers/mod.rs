//! How Tollgate talks to each kind of upstream. A channel's type decides the URL of each
//! endpoint, how its key is sent, and whether the client's request goes through unchanged
//! (OpenAI-compatible upstreams) or is translated there and back (everything else).

pub mod anthropic;
pub mod presets;

use bytes::BytesMut;
use http::{HeaderName, HeaderValue};

use super::request::Endpoint;
use crate::domain::kinds::ChannelType;
use crate::domain::pricing::Usage;

/// The header that carries a channel key, built once per key when the snapshot is built.
pub fn key_header(channel_type: ChannelType, key: &str) -> Option<(HeaderName, HeaderValue)> {
    let (name, value) = match channel_type {
        ChannelType::OpenAi => (http::header::AUTHORIZATION, format!("Bearer {key}")),
        ChannelType::Anthropic => (HeaderName::from_static("x-api-key"), key.to_string()),
    };
    let mut value = HeaderValue::try_from(value).ok()?;
    value.set_sensitive(true);
    Some((name, value))
}

/// Headers every request to this kind of upstream carries (an admin's extra headers win).
pub fn fixed_headers(channel_type: ChannelType) -> &'static [(&'static str, &'static str)] {
    match channel_type {
        ChannelType::OpenAi => &[],
        ChannelType::Anthropic => &[("anthropic-version", anthropic::API_VERSION)],
    }
}

/// The path under the channel's base URL that serves an endpoint, or None when this kind of
/// upstream has no such endpoint.
pub fn endpoint_path(channel_type: ChannelType, endpoint: Endpoint) -> Option<&'static str> {
    match (channel_type, endpoint) {
        // Anthropic clients are served from chat completions, translated.
        (ChannelType::OpenAi, Endpoint::Messages) => Some("/chat/completions"),
        (ChannelType::OpenAi, endpoint) => Some(endpoint.upstream_path()),
        (ChannelType::Anthropic, Endpoint::ChatCompletions | Endpoint::Messages) => {
            Some("/messages")
        }
        (ChannelType::Anthropic, Endpoint::Completions | Endpoint::Embeddings) => None,
    }
}

/// The path of the upstream's model list, used to probe a channel's health.
pub fn models_path(channel_type: ChannelType) -> &'static str {
    match channel_type {
        ChannelType::OpenAi | ChannelType::Anthropic => "/models",
    }
}

/// The version prefix a bare base URL (`https://api.anthropic.com`) needs.
pub fn default_path_prefix(channel_type: ChannelType) -> &'static str {
    match channel_type {
        ChannelType::OpenAi | ChannelType::Anthropic => "/v1",
    }
}

/// Whether the client's OpenAI request is forwarded as it is (only the model name and the
/// stream-usage option may change) rather than translated.
pub fn speaks_openai(channel_type: ChannelType) -> bool {
    channel_type == ChannelType::OpenAi
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
