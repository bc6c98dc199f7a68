//! How one attempt's request and answer travel between the client's protocol and the
//! channel's: forwarded untouched when both speak the same protocol, translated otherwise.
//! Every protocol pair lives here, so the relay pipeline never branches on channel types.

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use serde_json::{Map, Value};

use super::error::RelayError;
use super::inbound::{self, ClientProtocol};
use super::providers::{StreamTranslator, anthropic};
use super::request::ClientRequest;
use super::usage::find_usage;
use crate::domain::kinds::ChannelType;
use crate::domain::pricing::Usage;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wire {
    /// OpenAI client, OpenAI-compatible upstream: the client's bytes go through.
    OpenAi,
    /// OpenAI client, Anthropic upstream.
    OpenAiToAnthropic,
    /// Anthropic client, Anthropic upstream: the client's bytes go through.
    Anthropic,
    /// Anthropic client, OpenAI-compatible upstream.
    AnthropicToOpenAi,
}

/// A complete answer in the client's protocol.
pub struct WholeAnswer {
    pub body: Bytes,
    pub content_type: HeaderValue,
    /// What the upstream reported; None when it reported nothing and the generated text must
    /// be counted (the upstream's body is then an OpenAI chat answer).
    pub usage: Option<Usage>,
}

fn json_content_type() -> HeaderValue {
    HeaderValue::from_static("application/json")
}

fn fields(raw: &Bytes) -> Result<Map<String, Value>, RelayError> {
    serde_json::from_slice(raw)
        .map_err(|_| RelayError::bad_request("The request body must be a JSON object.".into()))
}

fn to_bytes(value: &Value) -> Result<Bytes, RelayError> {
    serde_json::to_vec(value)
        .map(Bytes::from)
        .map_err(|_| RelayError::internal())
}

impl Wire {
    pub fn new(client: ClientProtocol, channel: ChannelType) -> Wire {
        match (client, channel) {
            (ClientProtocol::OpenAi, ChannelType::OpenAi) => Wire::OpenAi,
            (ClientProtocol::OpenAi, ChannelType::Anthropic) => Wire::OpenAiToAnthropic,
            (ClientProtocol::Anthropic, ChannelType::Anthropic) => Wire::Anthropic,
            (ClientProtocol::Anthropic, ChannelType::OpenAi) => Wire::AnthropicToOpenAi,
        }
    }

    fn client(self) -> ClientProtocol {
        match self {
            Wire::OpenAi | Wire::OpenAiToAnthropic => ClientProtocol::OpenAi,
            Wire::Anthropic | Wire::AnthropicToOpenAi => ClientProtocol::Anthropic,
        }
    }

    /// The body sent upstream. OpenAI-compatible upstreams report stream usage only when
    /// asked, so it is asked for.
    pub fn body(
        self,
        request: &ClientRequest<'_>,
        raw: &Bytes,
        upstream_model: &str,
        default_max_tokens: u64,
    ) -> Result<Bytes, RelayError> {
        match self {
            Wire::OpenAi => request.upstream_body(raw, upstream_model, true),
            Wire::Anthropic => request.upstream_body(raw, upstream_model, false),
            Wire::OpenAiToAnthropic => to_bytes(&anthropic::chat_request(
                &fields(raw)?,
                upstream_model,
                default_max_tokens,
            )?),
            Wire::AnthropicToOpenAi => to_bytes(&inbound::anthropic::chat_request(
                &fields(raw)?,
                upstream_model,
                request.stream,
            )?),
        }
    }

    /// The upstream's successful answer in the client's protocol. Err when it is not an
    /// answer of the upstream's protocol at all (an HTML page from a proxy, say): a failure of
    /// the channel, not something to bill.
    pub fn whole_answer(
        self,
        body: Bytes,
        content_type: Option<HeaderValue>,
        client_model: &str,
        now_secs: i64,
    ) -> Result<WholeAnswer, &'static str> {
        match self {
            Wire::OpenAi => {
                let usage = find_usage(&body);
                if usage.is_none() && super::usage::AnswerWire::parse(&body).is_none() {
                    return Err("something that is not an OpenAI JSON response");
                }
                Ok(WholeAnswer {
                    body,
                    content_type: content_type.unwrap_or_else(json_content_type),
                    usage,
                })
            }
            Wire::Anthropic => {
                let answer: Value = serde_json::from_slice(&body)
                    .map_err(|_| "something that is not an Anthropic message")?;
                if answer.get("type").and_then(Value::as_str) != Some("message") {
                    return Err("something that is not an Anthropic message");
                }
                let usage = answer
                    .get("usage")
                    .map(anthropic::usage)
                    .unwrap_or_default();
                Ok(WholeAnswer {
                    body,
                    content_type: content_type.unwrap_or_else(json_content_type),
                    usage: Some(usage),
                })
            }
            Wire::OpenAiToAnthropic => {
                let (completion, usage) = anthropic::chat_response(&body, client_model, now_secs)
                    .ok_or("something that is not an Anthropic message")?;
                Ok(WholeAnswer {
                    body: Bytes::from(completion.to_string()),
                    content_type: json_content_type(),
                    usage: Some(usage),
                })
            }
            Wire::AnthropicToOpenAi => {
                let (message, usage) = inbound::anthropic::message_response(&body, client_model)
                    .ok_or("something that is not an OpenAI chat completion")?;
                Ok(WholeAnswer {
                    body: Bytes::from(message.to_string()),
                    content_type: json_content_type(),
                    usage,
                })
            }
        }
    }

    /// The translator a streamed answer goes through; None for OpenAI's own streams, which
    /// the relay forwards and reads itself.
    pub fn stream_translator(
        self,
        client_model: &str,
        now_secs: i64,
        client_wants_usage: bool,
        prompt_estimate: i64,
    ) -> Option<Box<dyn StreamTranslator>> {
        match self {
            Wire::OpenAi => None,
            Wire::Anthropic => Some(Box::new(anthropic::MessagesPassthrough::default())),
            Wire::OpenAiToAnthropic => Some(Box::new(anthropic::ChatStreamFromMessages::new(
                client_model,
                now_secs,
                client_wants_usage,
            ))),
            Wire::AnthropicToOpenAi => Some(Box::new(
                inbound::anthropic::MessagesFromChatStream::new(client_model, prompt_estimate),
            )),
        }
    }

    /// An upstream's refusal (a non-retried error status) for the client: passed through
    /// unchanged when both sides speak the same protocol, otherwise retold in the client's
    /// envelope with the upstream's own status and words.
    pub fn error_response(
        self,
        status: StatusCode,
        content_type: Option<HeaderValue>,
        body: Bytes,
        upstream_message: &str,
    ) -> Response {
        let same_protocol = matches!(self, Wire::OpenAi | Wire::Anthropic);
        if same_protocol {
            let mut builder = Response::builder().status(status);
            if let Some(content_type) = content_type {
                builder = builder.header(header::CONTENT_TYPE, content_type);
            }
            return builder
                .body(Body::from(body))
                .unwrap_or_else(|_| RelayError::internal().into_response());
        }
        let kind = match self {
            Wire::OpenAiToAnthropic => anthropic::error_parts(&body)
                .map(|(kind, _)| kind)
                .unwrap_or_else(|| "upstream_error".into()),
            _ => "upstream_error".into(),
        };
        let envelope = self
            .client()
            .upstream_error_body(status.as_u16(), &kind, upstream_message);
        let mut out = Response::new(Body::from(envelope.to_string()));
        *out.status_mut() = status;
        out.headers_mut()
            .insert(header::CONTENT_TYPE, json_content_type());
        out
    }
}
