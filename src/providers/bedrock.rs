//! AWS Bedrock (`type bedrock`): the Converse and ConverseStream APIs of `bedrock-runtime`,
//! for every model Bedrock serves behind them (Claude, Llama, Mistral, Nova, …).
//!
//! A key is either `ACCESS_KEY_ID|SECRET_ACCESS_KEY|REGION` (optionally `|SESSION_TOKEN`), and
//! each request is signed with AWS Signature Version 4 by the `aws-sigv4` crate, or a Bedrock
//! API key, sent as a bearer token. The region of a bearer key, or of a signing key that names
//! none, is read from the base URL (`https://bedrock-runtime.us-east-1.amazonaws.com`).
//!
//! Requests arrive as OpenAI chat requests (the relay's pivot) and become Converse requests:
//! system messages → `system`; user and assistant turns → `messages` with text, image (data
//! URLs; Bedrock fetches no links), `toolUse` and `toolResult` blocks, consecutive turns of a
//! role merged as Converse requires; sampling settings → `inferenceConfig`; tools →
//! `toolConfig`. `reasoning_effort` on Claude models becomes Anthropic's `thinking` in
//! `additionalModelRequestFields`. Converse has no JSON mode and one choice: `response_format`
//! JSON and `n` > 1 are refused with a 400.
//!
//! ConverseStream answers in AWS's binary event-stream framing: each message is a prelude
//! (total length, headers length, CRC-32), typed headers (`:event-type`, `:message-type`), a
//! JSON payload and a CRC-32 of the whole; both checksums are verified.

use std::time::SystemTime;

use bytes::BytesMut;
use serde_json::{Map, Value, json};

use super::chat::{self, invalid};
use crate::domain::pricing::Usage;
use crate::protocol::Invalid;
use crate::protocol::openai::openai_usage;
use crate::protocol::translate::{ChatChunks, StreamTranslator, TranslatedEvent};

/// How a Bedrock key authenticates.
#[derive(Debug)]
pub enum BedrockKey {
    /// IAM credentials: every request is signed.
    Signing {
        access_key_id: String,
        secret_access_key: String,
        session_token: Option<String>,
        /// None: the base URL's.
        region: Option<String>,
    },
    /// A Bedrock API key, sent as a bearer token.
    Bearer(String),
}

impl BedrockKey {
    pub fn parse(key: &str) -> Result<BedrockKey, String> {
        if !key.contains('|') {
            if key.is_empty() {
                return Err(
                    "a Bedrock key is ACCESS_KEY_ID|SECRET_ACCESS_KEY|REGION or a Bedrock API key"
                        .into(),
                );
            }
            return Ok(BedrockKey::Bearer(key.to_string()));
        }
        let parts: Vec<&str> = key.split('|').map(str::trim).collect();
        match parts.as_slice() {
            [id, secret, rest @ ..] if !id.is_empty() && !secret.is_empty() && rest.len() <= 2 => {
                Ok(BedrockKey::Signing {
                    access_key_id: (*id).to_string(),
                    secret_access_key: (*secret).to_string(),
                    region: rest.first().filter(|r| !r.is_empty()).map(|r| (*r).to_string()),
                    session_token: rest.get(1).filter(|t| !t.is_empty()).map(|t| (*t).to_string()),
                })
            }
            _ => Err(
                "a Bedrock signing key is ACCESS_KEY_ID|SECRET_ACCESS_KEY|REGION (optionally |SESSION_TOKEN)"
                    .into(),
            ),
        }
    }
}

/// The region in a Bedrock URL's host (`bedrock-runtime.eu-west-1.amazonaws.com`), or
/// us-east-1.
pub fn region_of(url: &str) -> String {
    let host = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest)
        .split(['/', ':'])
        .next()
        .unwrap_or("");
    let mut labels = host.split('.');
    match (labels.next(), labels.next()) {
        (Some(service), Some(region)) if service.starts_with("bedrock") => region.to_string(),
        _ => "us-east-1".to_string(),
    }
}

/// Signs a request in place: `authorization`, `x-amz-date` and, for temporary credentials,
/// `x-amz-security-token`. `service` is `bedrock` (model listing) or `bedrock-runtime`'s
/// signing name, also `bedrock`.
pub fn sign<B>(
    request: &mut http::Request<B>,
    body: &[u8],
    key: &BedrockKey,
    base_url: &str,
) -> Result<(), String> {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    let BedrockKey::Signing {
        access_key_id,
        secret_access_key,
        session_token,
        region,
    } = key
    else {
        return Ok(());
    };
    let region = region.clone().unwrap_or_else(|| region_of(base_url));
    let credentials = aws_credential_types::Credentials::new(
        access_key_id,
        secret_access_key,
        session_token.clone(),
        None,
        "tollgate-channel",
    );
    let identity = credentials.into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(&region)
        .name("bedrock")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| format!("cannot sign the request: {e}"))?
        .into();
    let uri = request.uri().to_string();
    let headers = request
        .headers()
        .iter()
        .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)));
    let signable = SignableRequest::new(
        request.method().as_str(),
        &uri,
        headers,
        SignableBody::Bytes(body),
    )
    .map_err(|e| format!("cannot sign the request: {e}"))?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| format!("cannot sign the request: {e}"))?
        .into_parts();
    instructions.apply_to_request_http1x(request);
    Ok(())
}

/// The path after the base URL for one request: `/model/{id}/converse[-stream]`, the model
/// id escaped (ids carry `:`, inference-profile ARNs also `/`).
pub fn model_path(model: &str, stream: bool) -> String {
    let mut escaped = String::with_capacity(model.len() + 8);
    for byte in model.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                escaped.push(char::from(byte));
            }
            other => escaped.push_str(&format!("%{other:02X}")),
        }
    }
    let method = if stream {
        "converse-stream"
    } else {
        "converse"
    };
    format!("/{escaped}/{method}")
}

/// OpenAI chat request → Converse request.
pub fn chat_request(request: &Map<String, Value>, upstream_model: &str) -> Result<Value, Invalid> {
    chat::one_choice(request, "Bedrock")?;
    if let Some(kind) = request
        .get("response_format")
        .and_then(|f| f.get("type"))
        .and_then(Value::as_str)
        .filter(|kind| *kind != "text")
    {
        return Err(invalid(
            "response_format",
            format!(
                "Bedrock's Converse API has no JSON mode ('{kind}'); describe the format in the prompt or use a tool."
            ),
        ));
    }
    let messages = chat::messages(request)?;
    let mut system = Vec::new();
    let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for (position, message) in messages.iter().enumerate() {
        let role = message.get("role").and_then(Value::as_str).unwrap_or("");
        let (role, blocks) = match role {
            "system" | "developer" => {
                let text = text_of(message.get("content"));
                if !text.is_empty() {
                    system.push(json!({"text": text}));
                }
                continue;
            }
            "user" => ("user", user_blocks(message.get("content"), position)?),
            "assistant" => ("assistant", assistant_blocks(message, position)?),
            "tool" | "function" => {
                let id = message
                    .get("tool_call_id")
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        invalid(
                            "messages",
                            format!(
                                "messages[{position}] is a tool result without 'tool_call_id'."
                            ),
                        )
                    })?;
                let text = text_of(message.get("content"));
                (
                    "user",
                    vec![json!({"toolResult": {"toolUseId": id, "content": [{"text": text}]}})],
                )
            }
            other => {
                return Err(invalid(
                    "messages",
                    format!("messages[{position}] has an unknown role '{other}'."),
                ));
            }
        };
        if blocks.is_empty() {
            continue;
        }
        // Converse wants turns to alternate; tool results and the user's next words are one turn.
        match turns.last_mut() {
            Some((last, existing)) if *last == role => existing.extend(blocks),
            _ => turns.push((role, blocks)),
        }
    }
    let mut out = Map::new();
    out.insert(
        "messages".into(),
        Value::Array(
            turns
                .into_iter()
                .map(|(role, content)| json!({"role": role, "content": content}))
                .collect(),
        ),
    );
    if !system.is_empty() {
        out.insert("system".into(), Value::Array(system));
    }
    let mut inference = Map::new();
    if let Some(max) = chat::max_output_tokens(request) {
        inference.insert("maxTokens".into(), max.clone());
    }
    for (from, to) in [("temperature", "temperature"), ("top_p", "topP")] {
        if let Some(value) = request.get(from).filter(|v| v.is_number()) {
            inference.insert(to.into(), value.clone());
        }
    }
    if let Some(stops) = chat::stop_sequences(request) {
        inference.insert("stopSequences".into(), stops);
    }
    if !inference.is_empty() {
        out.insert("inferenceConfig".into(), Value::Object(inference));
    }
    if let Some(config) = tool_config(request)? {
        out.insert("toolConfig".into(), config);
    }
    let mut additional = Map::new();
    if let Some(k) = request.get("top_k").filter(|v| v.is_number()) {
        additional.insert("top_k".into(), k.clone());
    }
    if let Some(effort) = request.get("reasoning_effort").and_then(Value::as_str) {
        if upstream_model.contains("anthropic.claude") {
            let budget = match effort {
                "none" => None,
                "minimal" | "low" => Some(1024),
                "medium" => Some(8192),
                "high" => Some(24576),
                other => {
                    return Err(invalid(
                        "reasoning_effort",
                        format!(
                            "'{other}' is not a reasoning effort (none, minimal, low, medium, high)."
                        ),
                    ));
                }
            };
            if let Some(budget) = budget {
                additional.insert(
                    "thinking".into(),
                    json!({"type": "enabled", "budget_tokens": budget}),
                );
            }
        } else {
            tracing::debug!(
                model = upstream_model,
                "dropping reasoning_effort, which this Bedrock model has no setting for"
            );
        }
    }
    if !additional.is_empty() {
        out.insert(
            "additionalModelRequestFields".into(),
            Value::Object(additional),
        );
    }
    Ok(Value::Object(out))
}

fn tool_config(request: &Map<String, Value>) -> Result<Option<Value>, Invalid> {
    let Some(tools) = request
        .get("tools")
        .and_then(Value::as_array)
        .filter(|t| !t.is_empty())
    else {
        return Ok(None);
    };
    let choice = request.get("tool_choice").filter(|v| !v.is_null());
    if choice.and_then(Value::as_str) == Some("none") {
        return Ok(None);
    }
    let mut specs = Vec::with_capacity(tools.len());
    for tool in tools {
        let function = tool
            .get("function")
            .filter(|_| tool.get("type").and_then(Value::as_str) == Some("function"))
            .ok_or_else(|| invalid("tools", "Bedrock channels take function tools only.".into()))?;
        let mut spec = json!({
            "name": function.get("name"),
            "inputSchema": {"json": function.get("parameters").cloned().unwrap_or_else(|| json!({"type": "object"}))},
        });
        if let Some(description) = function.get("description") {
            spec["description"] = description.clone();
        }
        specs.push(json!({"toolSpec": spec}));
    }
    let mut config = json!({"tools": specs});
    match choice {
        None => {}
        Some(Value::String(choice)) if choice == "auto" => {
            config["toolChoice"] = json!({"auto": {}});
        }
        Some(Value::String(choice)) if choice == "required" => {
            config["toolChoice"] = json!({"any": {}});
        }
        Some(named) => {
            let name = named
                .pointer("/function/name")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    invalid(
                        "tool_choice",
                        "'tool_choice' is none, auto, required or a named function.".into(),
                    )
                })?;
            config["toolChoice"] = json!({"tool": {"name": name}});
        }
    }
    Ok(Some(config))
}

fn text_of(content: Option<&Value>) -> String {
    chat::text_of(content, "\n")
}

fn user_blocks(content: Option<&Value>, position: usize) -> Result<Vec<Value>, Invalid> {
    let parts = match content {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::String(text)) => return Ok(vec![json!({"text": text})]),
        Some(Value::Array(parts)) => parts,
        Some(_) => {
            return Err(invalid(
                "messages",
                format!(
                    "messages[{position}] has content that is neither text nor a list of parts."
                ),
            ));
        }
    };
    let mut blocks = Vec::with_capacity(parts.len());
    for part in parts {
        match part.get("type").and_then(Value::as_str) {
            Some("text") => {
                if let Some(text) = part.get("text").and_then(Value::as_str) {
                    blocks.push(json!({"text": text}));
                }
            }
            Some("image_url") => {
                let url = part
                    .pointer("/image_url/url")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                blocks.push(image_block(url, position)?);
            }
            Some(other) => {
                return Err(invalid(
                    "messages",
                    format!(
                        "messages[{position}] has a '{other}' part, which Bedrock channels cannot take."
                    ),
                ));
            }
            None => {}
        }
    }
    Ok(blocks)
}

fn image_block(url: &str, position: usize) -> Result<Value, Invalid> {
    let refuse = || {
        invalid(
            "messages",
            format!(
                "messages[{position}] has an image Bedrock cannot take; give it as a data URL of a png, jpeg, gif or webp image."
            ),
        )
    };
    let (mime_type, data) = url
        .strip_prefix("data:")
        .and_then(|rest| rest.split_once(";base64,"))
        .ok_or_else(refuse)?;
    let format = match mime_type {
        "image/png" => "png",
        "image/jpeg" | "image/jpg" => "jpeg",
        "image/gif" => "gif",
        "image/webp" => "webp",
        _ => return Err(refuse()),
    };
    Ok(json!({"image": {"format": format, "source": {"bytes": data}}}))
}

fn assistant_blocks(message: &Value, position: usize) -> Result<Vec<Value>, Invalid> {
    let mut blocks = Vec::new();
    let text = text_of(message.get("content"));
    if !text.is_empty() {
        blocks.push(json!({"text": text}));
    }
    for call in message
        .get("tool_calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let input = chat::tool_call_input(call, position)?;
        blocks.push(json!({"toolUse": {
            "toolUseId": call.get("id"),
            "name": call.pointer("/function/name"),
            "input": input,
        }}));
    }
    Ok(blocks)
}

fn finish_reason(stop_reason: Option<&str>) -> &'static str {
    match stop_reason {
        Some("tool_use") => "tool_calls",
        Some("max_tokens" | "model_context_window_exceeded") => "length",
        Some("guardrail_intervened" | "content_filtered") => "content_filter",
        _ => "stop",
    }
}

/// Converse usage → billing usage. Bedrock's `inputTokens` leaves out cache reads and writes.
pub fn usage(usage: &Value) -> Usage {
    let field = |name: &str| usage.get(name).and_then(Value::as_i64).unwrap_or(0).max(0);
    let cached = field("cacheReadInputTokens");
    let written = field("cacheWriteInputTokens");
    Usage {
        prompt_tokens: field("inputTokens")
            .saturating_add(cached)
            .saturating_add(written),
        completion_tokens: field("outputTokens"),
        cached_tokens: cached,
        cache_write_tokens: written,
        ..Usage::default()
    }
}

/// Converse answer → OpenAI chat completion, with its usage. None when the body is not one.
pub fn chat_response(body: &[u8], client_model: &str, created: i64) -> Option<(Value, Usage)> {
    let answer: Value = serde_json::from_slice(body).ok()?;
    let content = answer.pointer("/output/message/content")?.as_array()?;
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut calls = Vec::new();
    for block in content {
        if let Some(piece) = block.get("text").and_then(Value::as_str) {
            text.push_str(piece);
        } else if let Some(piece) = block
            .pointer("/reasoningContent/reasoningText/text")
            .and_then(Value::as_str)
        {
            reasoning.push_str(piece);
        } else if let Some(tool) = block.get("toolUse") {
            calls.push(json!({
                "id": tool.get("toolUseId"),
                "type": "function",
                "function": {
                    "name": tool.get("name"),
                    "arguments": tool.get("input").map_or_else(|| "{}".to_string(), Value::to_string),
                }
            }));
        }
    }
    let mut reply = json!({"role": "assistant", "content": text});
    if !reasoning.is_empty() {
        reply["reasoning_content"] = json!(reasoning);
    }
    if !calls.is_empty() {
        reply["tool_calls"] = Value::Array(calls);
    }
    let finish = finish_reason(answer.get("stopReason").and_then(Value::as_str));
    let usage = answer.get("usage").map(usage).unwrap_or_default();
    let completion = json!({
        "id": format!("chatcmpl-{}", uuid::Uuid::new_v4().simple()),
        "object": "chat.completion",
        "created": created,
        "model": client_model,
        "choices": [{"index": 0, "message": reply, "finish_reason": finish, "logprobs": null}],
        "usage": openai_usage(usage),
    });
    Some((completion, usage))
}

/// The largest message accepted; Bedrock's are a few kilobytes.
const MAX_FRAME: usize = 16 * 1024 * 1024;

/// Where the next event-stream message ends: its total length, from the prelude. A prelude
/// that fails its checksum or names an impossible length ends at once, so the translator
/// reports a broken stream rather than the relay buffering what a corrupt length promises.
pub fn frame_end(buffer: &[u8]) -> Option<usize> {
    let prelude = buffer.get(..12)?;
    let total = u32::from_be_bytes([prelude[0], prelude[1], prelude[2], prelude[3]]) as usize;
    let checksum = u32::from_be_bytes([prelude[8], prelude[9], prelude[10], prelude[11]]);
    if CRC32.checksum(&prelude[..8]) != checksum || !(16..=MAX_FRAME).contains(&total) {
        return Some(12);
    }
    (buffer.len() >= total).then_some(total)
}

const CRC32: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// One decoded event-stream message: its string headers and payload.
#[derive(Debug, PartialEq)]
pub struct Frame {
    pub headers: Vec<(String, String)>,
    pub payload: Vec<u8>,
}

impl Frame {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Decodes one message, checking both CRCs. Header values other than strings are skipped.
pub fn decode_frame(frame: &[u8]) -> Result<Frame, String> {
    let broken = |what: &str| format!("a broken event-stream message ({what})");
    if frame.len() < 16 {
        return Err(broken("too short"));
    }
    let word =
        |at: usize| u32::from_be_bytes([frame[at], frame[at + 1], frame[at + 2], frame[at + 3]]);
    let total = word(0) as usize;
    let headers_len = word(4) as usize;
    if total != frame.len() || 12 + headers_len + 4 > total {
        return Err(broken("lengths"));
    }
    if CRC32.checksum(&frame[..8]) != word(8) {
        return Err(broken("prelude checksum"));
    }
    if CRC32.checksum(&frame[..total - 4]) != word(total - 4) {
        return Err(broken("message checksum"));
    }
    let mut headers = Vec::new();
    let mut rest = &frame[12..12 + headers_len];
    while !rest.is_empty() {
        let name_len = usize::from(rest[0]);
        let name = rest
            .get(1..1 + name_len)
            .ok_or_else(|| broken("header name"))?;
        let name = String::from_utf8_lossy(name).into_owned();
        let kind = *rest
            .get(1 + name_len)
            .ok_or_else(|| broken("header type"))?;
        rest = &rest[2 + name_len..];
        // Value sizes by type: 0/1 bool (none), 2 byte, 3 short, 4 int, 5 long, 6 bytes,
        // 7 string, 8 timestamp, 9 uuid.
        let size = match kind {
            0 | 1 => 0,
            2 => 1,
            3 => 2,
            4 => 4,
            5 | 8 => 8,
            9 => 16,
            6 | 7 => {
                let len = rest.get(..2).ok_or_else(|| broken("header value"))?;
                let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
                let value = rest.get(2..2 + len).ok_or_else(|| broken("header value"))?;
                if kind == 7 {
                    headers.push((name, String::from_utf8_lossy(value).into_owned()));
                }
                rest = &rest[2 + len..];
                continue;
            }
            _ => return Err(broken("header type")),
        };
        rest = rest.get(size..).ok_or_else(|| broken("header value"))?;
    }
    Ok(Frame {
        headers,
        payload: frame[12 + headers_len..total - 4].to_vec(),
    })
}

/// Encodes a message with string headers (the tests' fake Bedrock, and this module's own).
pub fn encode_frame(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let mut encoded_headers = Vec::new();
    for (name, value) in headers {
        encoded_headers.push(u8::try_from(name.len()).unwrap_or(u8::MAX));
        encoded_headers.extend_from_slice(name.as_bytes());
        encoded_headers.push(7);
        encoded_headers
            .extend_from_slice(&u16::try_from(value.len()).unwrap_or(u16::MAX).to_be_bytes());
        encoded_headers.extend_from_slice(value.as_bytes());
    }
    let total = 12 + encoded_headers.len() + payload.len() + 4;
    let mut frame = Vec::with_capacity(total);
    frame.extend_from_slice(&u32::try_from(total).unwrap_or(u32::MAX).to_be_bytes());
    frame.extend_from_slice(
        &u32::try_from(encoded_headers.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    let prelude_crc = CRC32.checksum(&frame);
    frame.extend_from_slice(&prelude_crc.to_be_bytes());
    frame.extend_from_slice(&encoded_headers);
    frame.extend_from_slice(payload);
    let message_crc = CRC32.checksum(&frame);
    frame.extend_from_slice(&message_crc.to_be_bytes());
    frame
}

/// ConverseStream's events → OpenAI chat-completion chunks. The stream ends with the
/// `metadata` event (usage), which follows `messageStop` (the stop reason).
pub struct ChatStreamFromBedrock {
    chunks: ChatChunks,
    include_usage: bool,
    started: bool,
    /// Converse content-block index → OpenAI tool-call index.
    tool_blocks: Vec<(u64, usize)>,
    finish: Option<&'static str>,
    finished: bool,
}

impl ChatStreamFromBedrock {
    pub fn new(client_model: &str, created: i64, include_usage: bool) -> Self {
        ChatStreamFromBedrock {
            chunks: ChatChunks {
                id: format!("chatcmpl-{}", uuid::Uuid::new_v4().simple()),
                model: client_model.to_string(),
                created,
            },
            include_usage,
            started: false,
            tool_blocks: Vec::new(),
            finish: None,
            finished: false,
        }
    }

    fn start(&mut self, out: &mut BytesMut) {
        if !self.started {
            self.chunks.role(0, out);
            self.started = true;
        }
    }
}

impl StreamTranslator for ChatStreamFromBedrock {
    fn event(&mut self, _raw: &[u8], data: &[u8], out: &mut BytesMut) -> TranslatedEvent {
        let mut seen = TranslatedEvent::default();
        let frame = match decode_frame(data) {
            Ok(frame) => frame,
            Err(message) => {
                crate::protocol::openai::error_event(
                    &message,
                    "upstream_error",
                    "upstream_error",
                    out,
                );
                seen.error = Some(message);
                self.finished = true;
                return seen;
            }
        };
        let payload: Value = serde_json::from_slice(&frame.payload).unwrap_or(Value::Null);
        if frame.header(":message-type") == Some("exception") {
            let kind = frame.header(":exception-type").unwrap_or("upstream_error");
            let message = payload
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("Bedrock reported an error in the stream")
                .to_string();
            crate::protocol::openai::error_event(&message, kind, kind, out);
            seen.error = Some(message);
            self.finished = true;
            return seen;
        }
        let block = payload
            .get("contentBlockIndex")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        match frame.header(":event-type") {
            Some("messageStart") => self.start(out),
            Some("contentBlockStart") => {
                self.start(out);
                if let Some(tool) = payload.pointer("/start/toolUse") {
                    let index = self.tool_blocks.len();
                    self.tool_blocks.push((block, index));
                    let name = tool.get("name").and_then(Value::as_str).unwrap_or("");
                    self.chunks.delta(
                        0,
                        json!({"tool_calls": [{"index": index, "id": tool.get("toolUseId"),
                               "type": "function", "function": {"name": name, "arguments": ""}}]}),
                        &mut seen,
                        out,
                    );
                }
            }
            Some("contentBlockDelta") => {
                self.start(out);
                let delta = payload.get("delta");
                if let Some(text) = delta.and_then(|d| d.get("text")).and_then(Value::as_str) {
                    self.chunks
                        .delta(0, json!({"content": text}), &mut seen, out);
                } else if let Some(text) = delta
                    .and_then(|d| d.pointer("/reasoningContent/text"))
                    .and_then(Value::as_str)
                {
                    self.chunks
                        .delta(0, json!({"reasoning_content": text}), &mut seen, out);
                } else if let Some(input) = delta
                    .and_then(|d| d.pointer("/toolUse/input"))
                    .and_then(Value::as_str)
                {
                    let index = self
                        .tool_blocks
                        .iter()
                        .find(|(b, _)| *b == block)
                        .map_or(0, |(_, i)| *i);
                    self.chunks.delta(
                        0,
                        json!({"tool_calls": [{"index": index, "function": {"arguments": input}}]}),
                        &mut seen,
                        out,
                    );
                }
            }
            Some("messageStop") => {
                self.start(out);
                let reason = finish_reason(payload.get("stopReason").and_then(Value::as_str));
                self.finish = Some(reason);
                self.chunks.finish(0, reason, out);
            }
            Some("metadata") => {
                let used = payload.get("usage").map(usage);
                seen.usage = used;
                if self.finish.is_none() {
                    self.start(out);
                    self.chunks.finish(0, "stop", out);
                }
                self.chunks
                    .end(self.include_usage.then(|| used.unwrap_or_default()), out);
                self.finished = true;
            }
            _ => {}
        }
        seen
    }

    fn finished(&self) -> bool {
        self.finished
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn parses_keys() {
        match BedrockKey::parse("AKIA123|secret|eu-west-1").unwrap() {
            BedrockKey::Signing {
                region,
                session_token,
                ..
            } => {
                assert_eq!(region.as_deref(), Some("eu-west-1"));
                assert!(session_token.is_none());
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            BedrockKey::parse("ABSKbedrockapikey").unwrap(),
            BedrockKey::Bearer(_)
        ));
        assert!(BedrockKey::parse("AKIA|").is_err());
        assert_eq!(
            region_of("https://bedrock-runtime.ap-northeast-1.amazonaws.com"),
            "ap-northeast-1"
        );
        assert_eq!(region_of("http://127.0.0.1:9000"), "us-east-1");
    }

    #[test]
    fn escapes_model_ids_in_paths() {
        assert_eq!(
            model_path("us.anthropic.claude-sonnet-4-5-20250929-v1:0", true),
            "/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse-stream"
        );
    }

    #[test]
    fn translates_a_chat_request() {
        let body = request(json!({
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBOR"}}]},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "t1", "type": "function",
                    "function": {"name": "lookup", "arguments": "{\"q\":\"cat\"}"}}]},
                {"role": "tool", "tool_call_id": "t1", "content": "a cat"},
                {"role": "user", "content": "Thanks"}
            ],
            "tools": [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}],
            "tool_choice": "required",
            "max_tokens": 100, "temperature": 0.5, "stop": "END",
            "reasoning_effort": "low"
        }));
        assert_eq!(
            chat_request(&body, "anthropic.claude-sonnet-4-5-20250929-v1:0").unwrap(),
            json!({
                "messages": [
                    {"role": "user", "content": [{"text": "What is this?"},
                        {"image": {"format": "png", "source": {"bytes": "iVBOR"}}}]},
                    {"role": "assistant", "content": [{"toolUse": {"toolUseId": "t1", "name": "lookup", "input": {"q": "cat"}}}]},
                    {"role": "user", "content": [
                        {"toolResult": {"toolUseId": "t1", "content": [{"text": "a cat"}]}},
                        {"text": "Thanks"}
                    ]}
                ],
                "system": [{"text": "Be brief."}],
                "inferenceConfig": {"maxTokens": 100, "temperature": 0.5, "stopSequences": ["END"]},
                "toolConfig": {"tools": [{"toolSpec": {"name": "lookup", "inputSchema": {"json": {"type": "object"}}}}],
                               "toolChoice": {"any": {}}},
                "additionalModelRequestFields": {"thinking": {"type": "enabled", "budget_tokens": 1024}}
            })
        );
        let json_mode =
            request(json!({"messages": [], "response_format": {"type": "json_object"}}));
        assert_eq!(
            chat_request(&json_mode, "m").unwrap_err().param,
            "response_format"
        );
        let link = request(json!({"messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}]}));
        assert!(chat_request(&link, "m").is_err());
    }

    #[test]
    fn translates_an_answer() {
        let body = br#"{"output":{"message":{"role":"assistant","content":[
            {"reasoningContent":{"reasoningText":{"text":"Hm.","signature":"s"}}},
            {"text":"Checking."},
            {"toolUse":{"toolUseId":"tooluse_1","name":"weather","input":{"city":"Oslo"}}}]}},
            "stopReason":"tool_use",
            "usage":{"inputTokens":20,"outputTokens":9,"totalTokens":129,"cacheReadInputTokens":100}}"#;
        let (completion, usage) = chat_response(body, "claude", 3).unwrap();
        assert_eq!(
            (
                usage.prompt_tokens,
                usage.cached_tokens,
                usage.completion_tokens
            ),
            (120, 100, 9)
        );
        let message = &completion["choices"][0]["message"];
        assert_eq!(completion["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(message["reasoning_content"], "Hm.");
        assert_eq!(message["content"], "Checking.");
        assert_eq!(
            message["tool_calls"][0]["function"]["arguments"],
            "{\"city\":\"Oslo\"}"
        );
    }

    #[test]
    fn frames_round_trip_and_broken_frames_are_caught() {
        let frame = encode_frame(
            &[
                (":event-type", "contentBlockDelta"),
                (":message-type", "event"),
            ],
            br#"{"contentBlockIndex":0,"delta":{"text":"Hi"}}"#,
        );
        assert_eq!(frame_end(&frame), Some(frame.len()));
        assert_eq!(frame_end(&frame[..frame.len() - 1]), None);
        assert_eq!(frame_end(&frame[..11]), None);
        // A prelude that fails its checksum ends at once and decodes as broken.
        let mut bad_prelude = frame.clone();
        bad_prelude[1] ^= 0x40;
        assert_eq!(frame_end(&bad_prelude), Some(12));
        assert!(decode_frame(&bad_prelude[..12]).is_err());
        let decoded = decode_frame(&frame).unwrap();
        assert_eq!(decoded.header(":event-type"), Some("contentBlockDelta"));
        assert_eq!(
            decoded.payload,
            br#"{"contentBlockIndex":0,"delta":{"text":"Hi"}}"#
        );
        let mut corrupt = frame.clone();
        let at = corrupt.len() - 6;
        corrupt[at] ^= 1;
        assert!(decode_frame(&corrupt).unwrap_err().contains("checksum"));
    }

    #[test]
    fn streams_events_as_chat_chunks() {
        let events: Vec<Vec<u8>> = [
            ("messageStart", json!({"role": "assistant"})),
            ("contentBlockDelta", json!({"contentBlockIndex": 0, "delta": {"text": "Hi"}})),
            ("contentBlockStart", json!({"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "tu1", "name": "f"}}})),
            ("contentBlockDelta", json!({"contentBlockIndex": 1, "delta": {"toolUse": {"input": "{\"a\":1}"}}})),
            ("contentBlockStop", json!({"contentBlockIndex": 1})),
            ("messageStop", json!({"stopReason": "tool_use"})),
            ("metadata", json!({"usage": {"inputTokens": 7, "outputTokens": 3, "totalTokens": 10}})),
        ]
        .iter()
        .map(|(kind, payload)| {
            encode_frame(&[(":event-type", kind), (":message-type", "event")], payload.to_string().as_bytes())
        })
        .collect();
        let mut translator = ChatStreamFromBedrock::new("claude", 1, true);
        let mut out = BytesMut::new();
        let mut last = TranslatedEvent::default();
        for frame in &events {
            last = translator.event(frame, frame, &mut out);
        }
        assert!(translator.finished());
        assert_eq!(last.usage.map(|u| u.prompt_tokens), Some(7));
        let text = String::from_utf8(out.to_vec()).unwrap();
        assert!(text.contains(r#""content":"Hi""#), "{text}");
        assert!(text.contains(r#""id":"tu1""#), "{text}");
        assert!(text.contains(r#""arguments":"{\"a\":1}""#), "{text}");
        assert!(text.contains(r#""finish_reason":"tool_calls""#), "{text}");
        assert!(text.ends_with("data: [DONE]\n\n"));
    }
}
