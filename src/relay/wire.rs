//! How one attempt's request and answer travel between the client's protocol and the
//! channel's: forwarded untouched when both speak the same protocol, translated otherwise.
//! Every protocol pair lives here, so the relay pipeline never branches on channel types.
//!
//! Translations go through OpenAI's chat completions, the relay's own protocol: a client's
//! request becomes a chat request (unless it is one), which becomes the upstream's request
//! (unless the upstream speaks chat); answers and streams come back the same way in reverse.
//! So each protocol is written once per direction, not once per pair.

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use serde_json::{Map, Value};

use super::error::RelayError;
use super::inbound;
use super::request::ClientRequest;
use crate::domain::kinds::ChannelType;
use crate::domain::pricing::Usage;
use crate::domain::tokenizer::Tokenizer;
use crate::protocol::ClientProtocol;
use crate::protocol::Endpoint;
use crate::protocol::translate::{Chained, StreamTranslator};
use crate::protocol::usage::{AnswerWire, TextCounter, find_usage, find_usage_object};
use crate::providers::gemini::{self, GeminiAnswer};
use crate::providers::{anthropic, bedrock, cohere, ollama, vertex};

/// The protocol an upstream speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dialect {
    OpenAiChat,
    AnthropicMessages,
    Gemini,
    Ollama,
    Cohere,
    /// Bedrock's Converse API.
    Converse,
}

impl Dialect {
    /// The protocol a channel speaks for a model (Vertex serves Gemini and Claude models,
    /// each in its own publisher's protocol).
    fn of(channel: ChannelType, upstream_model: &str) -> Dialect {
        match channel {
            ChannelType::OpenAi | ChannelType::Azure => Dialect::OpenAiChat,
            ChannelType::Anthropic => Dialect::AnthropicMessages,
            ChannelType::Gemini => Dialect::Gemini,
            ChannelType::Ollama => Dialect::Ollama,
            ChannelType::Cohere => Dialect::Cohere,
            ChannelType::Vertex if vertex::is_anthropic_model(upstream_model) => {
                Dialect::AnthropicMessages
            }
            ChannelType::Vertex => Dialect::Gemini,
            ChannelType::Bedrock => Dialect::Converse,
        }
    }
}

/// A client and an upstream speaking the same protocol: the client's bytes go through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SameProtocol {
    OpenAiChat,
    /// OpenAI's Responses API, served by an OpenAI-compatible upstream.
    Responses,
    AnthropicMessages,
}

/// How an upstream frames a streamed answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// Server-sent events, each ended by a blank line.
    ServerSentEvents,
    /// One JSON object per line (Ollama).
    JsonLines,
    /// AWS's binary event stream (Bedrock).
    AwsEventStream,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wire {
    endpoint: Endpoint,
    client: ClientProtocol,
    dialect: Dialect,
    /// Vertex's variant of the dialect: Messages bodies carry the API version, not the model.
    on_vertex: bool,
}

/// A complete answer in the client's protocol, with what to bill.
pub struct WholeAnswer {
    pub body: Bytes,
    pub content_type: HeaderValue,
    pub usage: Usage,
    /// The upstream reported no usage; the generated text was counted.
    pub estimated: bool,
}

/// Why a 2xx answer cannot be handed to the client.
pub enum Unusable {
    /// Not an answer of the upstream's protocol at all (an HTML page from a proxy, say): a
    /// failure of the channel, not something to bill.
    NotAnAnswer(&'static str),
    /// The upstream refused the prompt itself (a safety block): the client's error, told in
    /// its protocol.
    Refused(String),
}

/// What the answer's translation needs to know about the request.
pub struct AnswerContext<'a> {
    pub request: &'a ClientRequest<'a>,
    pub now_secs: i64,
    pub prompt_estimate: i64,
    pub tokenizer: &'static Tokenizer,
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

/// Usage counted from an OpenAI-shaped answer's text, when the upstream reported none.
fn counted_usage(openai_answer: &[u8], context: &AnswerContext<'_>) -> Usage {
    let mut counter = TextCounter::default();
    if let Some(parsed) = AnswerWire::parse(openai_answer) {
        parsed.for_each_text(|text| counter.push(text, context.tokenizer));
    }
    Usage {
        prompt_tokens: context.prompt_estimate,
        completion_tokens: counter.total(context.tokenizer),
        cached_tokens: 0,
        cache_write_tokens: 0,
        units: 0,
    }
}

/// Seconds of audio assumed per uploaded byte: 16 kB a second is 128 kbit/s, a common MP3
/// rate. Used for the hold, and for billing when the upstream reports no duration.
const AUDIO_BYTES_PER_SECOND: usize = 16_000;

/// The seconds of audio an upload of this size is assumed to hold (at least one).
pub fn estimated_audio_seconds(file_bytes: usize) -> i64 {
    i64::try_from(file_bytes.div_ceil(AUDIO_BYTES_PER_SECOND).max(1)).unwrap_or(i64::MAX)
}

/// The units a passed-through answer was billed in, for a per-request price: search units of
/// a rerank (Cohere-compatible vendors), images generated; 0 when the request is the unit.
fn billed_units(endpoint: Endpoint, body: &[u8]) -> i64 {
    let units = match endpoint {
        Endpoint::Rerank => serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|answer| cohere::search_units(&answer)),
        Endpoint::ImageGenerations | Endpoint::ImageEdits => serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|answer| Some(answer.get("data")?.as_array()?.len()))
            .and_then(|images| i64::try_from(images).ok()),
        _ => None,
    };
    units.unwrap_or(0)
}

/// An audio answer, passed through as it came (audio bytes, JSON or subtitles), with what to
/// bill: the characters spoken; or the tokens or seconds the upstream reports for a
/// transcription, and otherwise the seconds the upload is assumed to hold and the tokens of
/// the text returned.
fn audio_answer(
    body: Bytes,
    content_type: Option<HeaderValue>,
    context: &AnswerContext<'_>,
) -> WholeAnswer {
    let request = context.request;
    let content_type = content_type.unwrap_or_else(json_content_type);
    if request.endpoint == Endpoint::AudioSpeech {
        let characters = request
            .json_field("input")
            .and_then(|input| Some(input.as_str()?.chars().count()))
            .and_then(|chars| i64::try_from(chars).ok())
            .unwrap_or(0);
        return WholeAnswer {
            body,
            content_type,
            usage: Usage {
                prompt_tokens: context.prompt_estimate,
                units: characters,
                ..Usage::default()
            },
            estimated: false,
        };
    }
    let answer: Option<Value> = serde_json::from_slice(&body).ok();
    let tokens = find_usage(&body).filter(|u| u.prompt_tokens > 0 || u.completion_tokens > 0);
    let seconds = answer.as_ref().and_then(|answer| {
        answer
            .pointer("/usage/seconds")
            .or_else(|| answer.get("duration"))
            .and_then(Value::as_f64)
    });
    #[allow(clippy::cast_possible_truncation)]
    let reported_units = seconds.map(|s| s.max(0.0).ceil() as i64);
    let (usage, estimated) = match (tokens, reported_units) {
        (Some(usage), units) => (
            Usage {
                units: units.unwrap_or(0),
                ..usage
            },
            false,
        ),
        (None, Some(units)) => (
            Usage {
                units,
                ..Usage::default()
            },
            false,
        ),
        (None, None) => {
            // Plain text or subtitles: count what came back, assume the upload's length.
            let text = answer
                .as_ref()
                .and_then(|a| a.get("text").and_then(Value::as_str).map(str::to_string))
                .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
            let mut counter = TextCounter::default();
            counter.push(&text, context.tokenizer);
            let file_bytes = request.form.as_ref().map_or(0, |f| f.file_bytes);
            (
                Usage {
                    completion_tokens: counter.total(context.tokenizer),
                    units: estimated_audio_seconds(file_bytes),
                    ..Usage::default()
                },
                true,
            )
        }
    };
    WholeAnswer {
        body,
        content_type,
        usage,
        estimated,
    }
}

/// Cohere's reranking → the Cohere-compatible answer clients of the rerank endpoint expect,
/// billed per search unit.
fn rerank_answer(body: &[u8], context: &AnswerContext<'_>) -> Result<WholeAnswer, Unusable> {
    let client_model = context.request.model.as_str();
    let request: Map<String, Value> = ["documents", "return_documents"]
        .into_iter()
        .filter_map(|name| Some((name.to_string(), context.request.json_field(name)?)))
        .collect();
    let documents = cohere::rerank_documents(&request).unwrap_or_default();
    let return_documents = request
        .get("return_documents")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let (answer, units) = cohere::rerank_response(body, client_model, &documents, return_documents)
        .ok_or(Unusable::NotAnAnswer(
            "something that is not a Cohere rerank answer",
        ))?;
    Ok(WholeAnswer {
        body: Bytes::from(answer.to_string()),
        content_type: json_content_type(),
        usage: Usage {
            prompt_tokens: context.prompt_estimate,
            units,
            ..Usage::default()
        },
        estimated: false,
    })
}

impl Wire {
    pub fn new(endpoint: Endpoint, channel: ChannelType, upstream_model: &str) -> Wire {
        Wire {
            endpoint,
            client: endpoint.protocol(),
            dialect: Dialect::of(channel, upstream_model),
            on_vertex: channel == ChannelType::Vertex,
        }
    }

    /// The protocol client and upstream both speak, if they do.
    fn same_protocol(self) -> Option<SameProtocol> {
        match (self.client, self.dialect) {
            (ClientProtocol::OpenAi, Dialect::OpenAiChat) => Some(SameProtocol::OpenAiChat),
            (ClientProtocol::Responses, Dialect::OpenAiChat) => Some(SameProtocol::Responses),
            (ClientProtocol::Anthropic, Dialect::AnthropicMessages) => {
                Some(SameProtocol::AnthropicMessages)
            }
            (
                ClientProtocol::OpenAi | ClientProtocol::Responses,
                Dialect::AnthropicMessages
                | Dialect::Gemini
                | Dialect::Ollama
                | Dialect::Cohere
                | Dialect::Converse,
            )
            | (
                ClientProtocol::Anthropic,
                Dialect::OpenAiChat
                | Dialect::Gemini
                | Dialect::Ollama
                | Dialect::Cohere
                | Dialect::Converse,
            ) => None,
        }
    }

    /// Client and upstream speak the same protocol: the client's bytes go through.
    fn passes_through(self) -> bool {
        self.same_protocol().is_some()
    }

    /// Whether a whole answer goes to the client as the upstream sent it, so a long one can
    /// be relayed as it arrives. (Transcripts are short and billed from their text.)
    pub fn relays_answer_as_is(self) -> bool {
        self.passes_through()
            && !matches!(
                self.endpoint,
                Endpoint::AudioTranscriptions | Endpoint::AudioTranslations
            )
    }

    /// Whether the first bytes of an answer relayed as is look like the upstream's protocol:
    /// the start of a JSON object (speech is audio, whatever it starts with).
    pub fn answer_start_usable(self, head: &[u8]) -> bool {
        self.endpoint == Endpoint::AudioSpeech || head.trim_ascii_start().first() == Some(&b'{')
    }

    /// The usage in the tail of an answer relayed as is, which is all that is kept of it;
    /// None when the tail holds none (or for speech, billed per character).
    pub fn usage_in_tail(self, tail: &[u8]) -> Option<Usage> {
        match (self.client, self.endpoint) {
            (_, Endpoint::AudioSpeech) => None,
            (ClientProtocol::Responses, _) => {
                find_usage_object(tail).and_then(|usage| inbound::responses::usage(&usage))
            }
            (ClientProtocol::Anthropic, _) => {
                find_usage_object(tail).map(|usage| anthropic::usage(&usage))
            }
            (ClientProtocol::OpenAi, _) => find_usage(tail),
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
        let body = self.protocol_body(request, raw, upstream_model, default_max_tokens)?;
        if self.on_vertex && self.dialect == Dialect::AnthropicMessages {
            return vertex::anthropic_body(&body).ok_or_else(RelayError::internal);
        }
        Ok(body)
    }

    /// The body in the upstream's protocol.
    fn protocol_body(
        self,
        request: &ClientRequest<'_>,
        raw: &Bytes,
        upstream_model: &str,
        default_max_tokens: u64,
    ) -> Result<Bytes, RelayError> {
        if self.passes_through() {
            // Chat streams report usage only when asked; Responses streams always do; other
            // endpoints have no such option.
            let ask_for_usage =
                self.client == ClientProtocol::OpenAi && self.endpoint.takes_stream_options();
            return request.upstream_body(raw, upstream_model, ask_for_usage);
        }
        if self.endpoint == Endpoint::Embeddings {
            let request = fields(raw)?;
            return to_bytes(&match self.dialect {
                Dialect::Ollama => ollama::embedding_request(&request, upstream_model)?,
                Dialect::Cohere => cohere::embedding_request(&request, upstream_model)?,
                Dialect::Gemini => gemini::embedding_request(&request, upstream_model)?,
                // Routing never sends embeddings to a channel without an embeddings URL.
                Dialect::OpenAiChat | Dialect::AnthropicMessages | Dialect::Converse => {
                    return Err(RelayError::internal());
                }
            });
        }
        if self.endpoint == Endpoint::Rerank {
            // The only translated reranking is Cohere's (OpenAI-type vendors pass through).
            return to_bytes(&cohere::rerank_request(&fields(raw)?, upstream_model)?.0);
        }
        let chat = match self.client {
            ClientProtocol::OpenAi => fields(raw)?,
            ClientProtocol::Anthropic => match inbound::anthropic::chat_request(
                &fields(raw)?,
                upstream_model,
                request.stream,
            )? {
                Value::Object(chat) => chat,
                _ => return Err(RelayError::internal()),
            },
            ClientProtocol::Responses => match inbound::responses::chat_request(
                &fields(raw)?,
                upstream_model,
                request.stream,
            )? {
                Value::Object(chat) => chat,
                _ => return Err(RelayError::internal()),
            },
        };
        match self.dialect {
            Dialect::OpenAiChat => to_bytes(&Value::Object(chat)),
            Dialect::AnthropicMessages => to_bytes(&anthropic::chat_request(
                &chat,
                upstream_model,
                default_max_tokens,
            )?),
            Dialect::Gemini => to_bytes(&gemini::chat_request(&chat, upstream_model)?),
            Dialect::Ollama => to_bytes(&ollama::chat_request(
                &chat,
                upstream_model,
                request.stream,
            )?),
            Dialect::Cohere => to_bytes(&cohere::chat_request(
                &chat,
                upstream_model,
                request.stream,
            )?),
            Dialect::Converse => to_bytes(&bedrock::chat_request(&chat, upstream_model)?),
        }
    }

    /// How the upstream frames its streams.
    pub fn framing(self) -> Framing {
        match self.dialect {
            Dialect::Ollama => Framing::JsonLines,
            Dialect::Converse => Framing::AwsEventStream,
            Dialect::OpenAiChat
            | Dialect::AnthropicMessages
            | Dialect::Gemini
            | Dialect::Cohere => Framing::ServerSentEvents,
        }
    }

    /// The upstream's successful answer in the client's protocol, with what to bill.
    pub fn whole_answer(
        self,
        body: Bytes,
        content_type: Option<HeaderValue>,
        context: &AnswerContext<'_>,
    ) -> Result<WholeAnswer, Unusable> {
        if matches!(
            self.endpoint,
            Endpoint::AudioSpeech | Endpoint::AudioTranscriptions | Endpoint::AudioTranslations
        ) {
            return Ok(audio_answer(body, content_type, context));
        }
        if let Some(same) = self.same_protocol() {
            return self.answer_as_is(same, body, content_type, context);
        }
        match self.endpoint {
            Endpoint::Embeddings => self.embeddings_answer(&body, context),
            Endpoint::Rerank => rerank_answer(&body, context),
            _ => {
                let (chat, usage, estimated) = self.chat_answer(body, context)?;
                self.client_answer(chat, usage, estimated, context)
            }
        }
    }

    /// An answer in the client's own protocol: checked to be one, and read for usage.
    fn answer_as_is(
        self,
        same: SameProtocol,
        body: Bytes,
        content_type: Option<HeaderValue>,
        context: &AnswerContext<'_>,
    ) -> Result<WholeAnswer, Unusable> {
        match same {
            SameProtocol::Responses => {
                let answer: Value = serde_json::from_slice(&body)
                    .map_err(|_| Unusable::NotAnAnswer("something that is not a response"))?;
                if answer.get("object").and_then(Value::as_str) != Some("response") {
                    return Err(Unusable::NotAnAnswer("something that is not a response"));
                }
                let (usage, estimated) =
                    match answer.get("usage").and_then(inbound::responses::usage) {
                        Some(usage) => (usage, false),
                        None => {
                            let mut counter = TextCounter::default();
                            counter.push(
                                &inbound::responses::generated_text(&answer),
                                context.tokenizer,
                            );
                            let usage = Usage {
                                prompt_tokens: context.prompt_estimate,
                                completion_tokens: counter.total(context.tokenizer),
                                cached_tokens: 0,
                                cache_write_tokens: 0,
                                units: 0,
                            };
                            (usage, true)
                        }
                    };
                Ok(WholeAnswer {
                    body,
                    content_type: content_type.unwrap_or_else(json_content_type),
                    usage,
                    estimated,
                })
            }
            SameProtocol::AnthropicMessages => {
                let answer: Value = serde_json::from_slice(&body).map_err(|_| {
                    Unusable::NotAnAnswer("something that is not an Anthropic message")
                })?;
                if answer.get("type").and_then(Value::as_str) != Some("message") {
                    return Err(Unusable::NotAnAnswer(
                        "something that is not an Anthropic message",
                    ));
                }
                let usage = answer
                    .get("usage")
                    .map(anthropic::usage)
                    .unwrap_or_default();
                Ok(WholeAnswer {
                    body,
                    content_type: content_type.unwrap_or_else(json_content_type),
                    usage,
                    estimated: false,
                })
            }
            SameProtocol::OpenAiChat => {
                let usage = find_usage(&body);
                if usage.is_none() && AnswerWire::parse(&body).is_none() {
                    return Err(Unusable::NotAnAnswer(
                        "something that is not an OpenAI JSON response",
                    ));
                }
                let (mut usage, estimated) = match usage {
                    Some(usage) => (usage, false),
                    None => (counted_usage(&body, context), true),
                };
                usage.units = billed_units(self.endpoint, &body);
                Ok(WholeAnswer {
                    body,
                    content_type: content_type.unwrap_or_else(json_content_type),
                    usage,
                    estimated,
                })
            }
        }
    }

    /// Another protocol's embeddings → OpenAI's embeddings list.
    fn embeddings_answer(
        self,
        body: &[u8],
        context: &AnswerContext<'_>,
    ) -> Result<WholeAnswer, Unusable> {
        let client_model = context.request.model.as_str();
        let base64 = context.request.text_field("encoding_format") == Some("base64");
        let (answer, usage, estimated) = match self.dialect {
            Dialect::Ollama => {
                let (answer, tokens) =
                    ollama::embedding_response(body, client_model, context.prompt_estimate, base64)
                        .ok_or(Unusable::NotAnAnswer(
                            "something that is not an Ollama embedding list",
                        ))?;
                let usage = Usage {
                    prompt_tokens: tokens,
                    ..Usage::default()
                };
                (answer, usage, false)
            }
            Dialect::Cohere => {
                let (answer, tokens) =
                    cohere::embedding_response(body, client_model, context.prompt_estimate, base64)
                        .ok_or(Unusable::NotAnAnswer(
                            "something that is not a Cohere embedding answer",
                        ))?;
                let usage = Usage {
                    prompt_tokens: tokens,
                    ..Usage::default()
                };
                (answer, usage, false)
            }
            Dialect::Gemini => {
                let answer =
                    gemini::embedding_response(body, client_model, context.prompt_estimate, base64)
                        .ok_or(Unusable::NotAnAnswer(
                            "something that is not a Gemini embedding list",
                        ))?;
                let usage = Usage {
                    prompt_tokens: context.prompt_estimate,
                    ..Usage::default()
                };
                (answer, usage, true)
            }
            Dialect::OpenAiChat | Dialect::AnthropicMessages | Dialect::Converse => {
                return Err(Unusable::NotAnAnswer(
                    "an embeddings answer from an upstream that has no embeddings",
                ));
            }
        };
        Ok(WholeAnswer {
            body: Bytes::from(answer.to_string()),
            content_type: json_content_type(),
            usage,
            estimated,
        })
    }

    /// Another protocol's answer → an OpenAI chat completion, with the usage it reported or,
    /// failing that, counted from its text.
    fn chat_answer(
        self,
        body: Bytes,
        context: &AnswerContext<'_>,
    ) -> Result<(Bytes, Usage, bool), Unusable> {
        let client_model = context.request.model.as_str();
        let (chat, reported): (Bytes, Option<Usage>) = match self.dialect {
            Dialect::OpenAiChat => {
                if AnswerWire::parse(&body).is_none() {
                    return Err(Unusable::NotAnAnswer(
                        "something that is not an OpenAI chat completion",
                    ));
                }
                let usage = find_usage(&body);
                (body, usage)
            }
            Dialect::AnthropicMessages => {
                let (completion, usage) =
                    anthropic::chat_response(&body, client_model, context.now_secs).ok_or(
                        Unusable::NotAnAnswer("something that is not an Anthropic message"),
                    )?;
                (Bytes::from(completion.to_string()), Some(usage))
            }
            Dialect::Gemini => {
                match gemini::chat_response(&body, client_model, context.now_secs).ok_or(
                    Unusable::NotAnAnswer("something that is not a Gemini answer"),
                )? {
                    GeminiAnswer::Chat(completion, usage) => {
                        (Bytes::from(completion.to_string()), usage)
                    }
                    GeminiAnswer::Blocked(message) => return Err(Unusable::Refused(message)),
                }
            }
            Dialect::Ollama => {
                let (completion, usage) =
                    ollama::chat_response(&body, client_model, context.now_secs).ok_or(
                        Unusable::NotAnAnswer("something that is not an Ollama chat answer"),
                    )?;
                (Bytes::from(completion.to_string()), usage)
            }
            Dialect::Cohere => {
                let (completion, usage) =
                    cohere::chat_response(&body, client_model, context.now_secs).ok_or(
                        Unusable::NotAnAnswer("something that is not a Cohere chat answer"),
                    )?;
                (Bytes::from(completion.to_string()), usage)
            }
            Dialect::Converse => {
                let (completion, usage) =
                    bedrock::chat_response(&body, client_model, context.now_secs).ok_or(
                        Unusable::NotAnAnswer("something that is not a Converse answer"),
                    )?;
                (Bytes::from(completion.to_string()), Some(usage))
            }
        };
        let (usage, estimated) = match reported {
            Some(usage) => (usage, false),
            None => (counted_usage(&chat, context), true),
        };
        Ok((chat, usage, estimated))
    }

    /// A chat completion → the client's protocol.
    fn client_answer(
        self,
        chat: Bytes,
        usage: Usage,
        estimated: bool,
        context: &AnswerContext<'_>,
    ) -> Result<WholeAnswer, Unusable> {
        let client_model = context.request.model.as_str();
        let body = match self.client {
            ClientProtocol::OpenAi => chat,
            ClientProtocol::Anthropic => {
                let (message, _) = inbound::anthropic::message_response(&chat, client_model)
                    .ok_or(Unusable::NotAnAnswer(
                        "something that is not an OpenAI chat completion",
                    ))?;
                let mut message = message;
                message["usage"] = inbound::anthropic::messages_usage(usage);
                Bytes::from(message.to_string())
            }
            ClientProtocol::Responses => {
                let response = inbound::responses::response_from_chat(
                    &chat,
                    client_model,
                    context.now_secs,
                    usage,
                )
                .ok_or(Unusable::NotAnAnswer(
                    "something that is not an OpenAI chat completion",
                ))?;
                Bytes::from(response.to_string())
            }
        };
        Ok(WholeAnswer {
            body,
            content_type: json_content_type(),
            usage,
            estimated,
        })
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
        if let Some(same) = self.same_protocol() {
            return match same {
                SameProtocol::Responses => {
                    Some(Box::new(inbound::responses::ResponsesPassthrough::default()))
                }
                SameProtocol::AnthropicMessages => {
                    Some(Box::new(anthropic::MessagesPassthrough::default()))
                }
                SameProtocol::OpenAiChat => None,
            };
        }
        // A client of another protocol needs the usage chunk to write its own usage.
        let chat_usage = client_wants_usage || self.client != ClientProtocol::OpenAi;
        let upstream: Option<Box<dyn StreamTranslator>> =
            match self.dialect {
                Dialect::OpenAiChat => None,
                Dialect::AnthropicMessages => Some(Box::new(
                    anthropic::ChatStreamFromMessages::new(client_model, now_secs, chat_usage),
                )),
                Dialect::Gemini => Some(Box::new(gemini::ChatStreamFromGemini::new(
                    client_model,
                    now_secs,
                    chat_usage,
                ))),
                Dialect::Ollama => Some(Box::new(ollama::ChatStreamFromOllama::new(
                    client_model,
                    now_secs,
                    chat_usage,
                ))),
                Dialect::Cohere => Some(Box::new(cohere::ChatStreamFromCohere::new(
                    client_model,
                    now_secs,
                    chat_usage,
                ))),
                Dialect::Converse => Some(Box::new(bedrock::ChatStreamFromBedrock::new(
                    client_model,
                    now_secs,
                    chat_usage,
                ))),
            };
        let client: Option<Box<dyn StreamTranslator>> = match self.client {
            ClientProtocol::OpenAi => None,
            ClientProtocol::Anthropic => Some(Box::new(
                inbound::anthropic::MessagesFromChatStream::new(client_model, prompt_estimate),
            )),
            ClientProtocol::Responses => Some(Box::new(
                inbound::responses::ResponsesFromChatStream::new(client_model, now_secs),
            )),
        };
        match (upstream, client) {
            (Some(upstream), Some(client)) => Some(Box::new(Chained { upstream, client })),
            (one, other) => one.or(other),
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
        if self.passes_through() {
            let mut builder = Response::builder().status(status);
            if let Some(content_type) = content_type {
                builder = builder.header(header::CONTENT_TYPE, content_type);
            }
            return builder
                .body(Body::from(body))
                .unwrap_or_else(|_| RelayError::internal().into_response());
        }
        let kind = match self.dialect {
            Dialect::AnthropicMessages => anthropic::error_parts(&body).map(|(kind, _)| kind),
            Dialect::Gemini => gemini::error_parts(&body).map(|(kind, _)| kind),
            Dialect::OpenAiChat | Dialect::Ollama | Dialect::Cohere | Dialect::Converse => None,
        }
        .unwrap_or_else(|| "upstream_error".into());
        let envelope = self
            .client
            .upstream_error_body(status.as_u16(), &kind, upstream_message);
        let mut out = Response::new(Body::from(envelope.to_string()));
        *out.status_mut() = status;
        out.headers_mut()
            .insert(header::CONTENT_TYPE, json_content_type());
        out
    }
}
