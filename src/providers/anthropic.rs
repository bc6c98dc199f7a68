//! Anthropic's Messages API behind the OpenAI chat-completions protocol.
//!
//! Requests: system and developer messages become the top-level `system` blocks; user, assistant
//! and tool messages become alternating user/assistant turns (consecutive turns of one role are
//! merged, tool results travel as `tool_result` blocks in a user turn); images become base64 or
//! URL image sources; tools, tool choice, stop sequences and sampling parameters are renamed.
//! `max_tokens` is required by Anthropic, so a request without one gets the gateway's default.
//!
//! Answers: text, tool calls and thinking blocks come back as an OpenAI message (thinking as
//! `reasoning_content`, as DeepSeek and most OpenAI-compatible vendors spell it); stop reasons
//! are mapped; usage counts cache reads and writes as prompt tokens, and cache reads as cached.
//! Streams are translated event by event (see [`ChatStreamFromMessages`]).

use bytes::BytesMut;
use serde_json::{Map, Value, json};

use crate::domain::pricing::Usage;
use crate::protocol::Invalid;
use crate::protocol::openai::openai_usage;
use crate::protocol::translate::{ChatChunks, StreamTranslator, TranslatedEvent};

/// The API version Tollgate speaks; the request and event shapes below are this version's.
pub const API_VERSION: &str = "2023-06-01";

/// OpenAI chat request → Anthropic Messages request.
pub fn chat_request(
    request: &Map<String, Value>,
    upstream_model: &str,
    default_max_tokens: u64,
) -> Result<Value, Invalid> {
    if request.get("n").and_then(Value::as_i64).unwrap_or(1) > 1 {
        return Err(unsupported(
            "n",
            "Anthropic models return one choice per request; send 'n' = 1.",
        ));
    }
    if let Some(format) = request.get("response_format") {
        if format.get("type").and_then(Value::as_str) == Some("json_schema") {
            return Err(unsupported(
                "response_format",
                "Anthropic channels do not support 'response_format' of type 'json_schema'.",
            ));
        }
        tracing::debug!("dropping response_format for an Anthropic channel");
    }
    let messages = request
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("messages", "'messages' must be an array of messages."))?;

    let mut system: Vec<Value> = Vec::new();
    let mut turns: Vec<(String, Vec<Value>)> = Vec::new();
    for (position, message) in messages.iter().enumerate() {
        let role = message.get("role").and_then(Value::as_str).unwrap_or("");
        let (turn_role, blocks) = match role {
            "system" | "developer" => {
                system.extend(text_blocks(message.get("content"), position)?);
                continue;
            }
            "user" => ("user", content_blocks(message.get("content"), position)?),
            "assistant" => ("assistant", assistant_blocks(message, position)?),
            "tool" | "function" => ("user", vec![tool_result_block(message, position)?]),
            other => {
                return Err(invalid(
                    "messages",
                    &format!("messages[{position}] has an unknown role '{other}'."),
                ));
            }
        };
        if blocks.is_empty() {
            continue;
        }
        match turns.last_mut() {
            Some((last_role, last_blocks)) if last_role == turn_role => last_blocks.extend(blocks),
            _ => turns.push((turn_role.to_string(), blocks)),
        }
    }
    if turns.is_empty() {
        return Err(invalid(
            "messages",
            "Anthropic models need at least one user or assistant message besides the system prompt.",
        ));
    }

    let max_tokens = request
        .get("max_completion_tokens")
        .or_else(|| request.get("max_tokens"))
        .and_then(Value::as_u64)
        .unwrap_or(default_max_tokens);
    let mut out = Map::new();
    out.insert("model".into(), json!(upstream_model));
    out.insert("max_tokens".into(), json!(max_tokens));
    if !system.is_empty() {
        out.insert("system".into(), Value::Array(system));
    }
    out.insert(
        "messages".into(),
        Value::Array(
            turns
                .into_iter()
                .map(|(role, content)| json!({"role": role, "content": content}))
                .collect(),
        ),
    );
    if let Some(temperature) = request.get("temperature").and_then(Value::as_f64) {
        // OpenAI's range is 0–2, Anthropic's 0–1.
        out.insert("temperature".into(), json!(temperature.clamp(0.0, 1.0)));
    }
    if let Some(top_p) = request.get("top_p").filter(|v| v.is_number()) {
        out.insert("top_p".into(), top_p.clone());
    }
    if let Some(top_k) = request.get("top_k").filter(|v| v.is_number()) {
        out.insert("top_k".into(), top_k.clone());
    }
    match request.get("stop") {
        Some(Value::String(stop)) => {
            out.insert("stop_sequences".into(), json!([stop]));
        }
        Some(Value::Array(stops)) if !stops.is_empty() => {
            out.insert("stop_sequences".into(), Value::Array(stops.clone()));
        }
        _ => {}
    }
    if request.get("stream").and_then(Value::as_bool) == Some(true) {
        out.insert("stream".into(), Value::Bool(true));
    }
    if let Some(user) = request.get("user").and_then(Value::as_str) {
        out.insert("metadata".into(), json!({"user_id": user}));
    }
    let tools = tools(request.get("tools"))?;
    let has_tools = !tools.is_empty();
    if has_tools {
        out.insert("tools".into(), Value::Array(tools));
    }
    let choice = tool_choice(
        request.get("tool_choice"),
        request.get("parallel_tool_calls"),
    )?;
    // Anthropic refuses a tool choice without tools; OpenAI ignores it.
    if let (Some(choice), true) = (choice, has_tools) {
        out.insert("tool_choice".into(), choice);
    }
    Ok(Value::Object(out))
}

fn invalid(param: &'static str, message: &str) -> Invalid {
    Invalid::new(param, message)
}

fn unsupported(param: &'static str, message: &str) -> Invalid {
    Invalid::new(param, message)
}

/// System content: a string or a list of text parts.
fn text_blocks(content: Option<&Value>, position: usize) -> Result<Vec<Value>, Invalid> {
    Ok(match content {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(text)) if text.is_empty() => Vec::new(),
        Some(Value::String(text)) => vec![json!({"type": "text", "text": text})],
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|part| part.get("text").and_then(Value::as_str))
            .map(|text| json!({"type": "text", "text": text}))
            .collect(),
        Some(_) => {
            return Err(invalid(
                "messages",
                &format!("messages[{position}].content must be a string or a list of parts."),
            ));
        }
    })
}

/// User content: text and images.
fn content_blocks(content: Option<&Value>, position: usize) -> Result<Vec<Value>, Invalid> {
    let parts = match content {
        Some(Value::Array(parts)) => parts,
        other => return text_blocks(other, position),
    };
    let mut blocks = Vec::with_capacity(parts.len());
    for part in parts {
        match part.get("type").and_then(Value::as_str) {
            Some("text") => {
                if let Some(text) = part.get("text").and_then(Value::as_str) {
                    blocks.push(json!({"type": "text", "text": text}));
                }
            }
            Some("image_url") => {
                let url = part
                    .get("image_url")
                    .and_then(|image| image.get("url").or(Some(image)))
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        invalid(
                            "messages",
                            &format!("messages[{position}] has an image part without a URL."),
                        )
                    })?;
                blocks.push(image_block(url, position)?);
            }
            Some(other) => {
                return Err(invalid(
                    "messages",
                    &format!(
                        "messages[{position}] has a '{other}' part, which Anthropic channels cannot take."
                    ),
                ));
            }
            None => {}
        }
    }
    Ok(blocks)
}

/// `data:image/png;base64,…` → a base64 source; anything else → a URL source.
fn image_block(url: &str, position: usize) -> Result<Value, Invalid> {
    if let Some(rest) = url.strip_prefix("data:") {
        let (media_type, data) = rest
            .split_once(";base64,")
            .filter(|(media_type, _)| media_type.starts_with("image/"))
            .ok_or_else(|| {
                invalid(
                    "messages",
                    &format!(
                        "messages[{position}] has an image data URL that is not 'data:image/…;base64,…'."
                    ),
                )
            })?;
        return Ok(json!({
            "type": "image",
            "source": {"type": "base64", "media_type": media_type, "data": data},
        }));
    }
    Ok(json!({"type": "image", "source": {"type": "url", "url": url}}))
}

fn assistant_blocks(message: &Value, position: usize) -> Result<Vec<Value>, Invalid> {
    let mut blocks = text_blocks(message.get("content"), position)?;
    for call in message
        .get("tool_calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let function = call.get("function").unwrap_or(&Value::Null);
        let name = function.get("name").and_then(Value::as_str).unwrap_or("");
        let arguments = function
            .get("arguments")
            .and_then(Value::as_str)
            .unwrap_or("");
        let input = if arguments.trim().is_empty() {
            json!({})
        } else {
            serde_json::from_str::<Value>(arguments).map_err(|_| {
                invalid(
                    "messages",
                    &format!("messages[{position}] has a tool call whose arguments are not JSON."),
                )
            })?
        };
        let id = call.get("id").and_then(Value::as_str).unwrap_or("");
        blocks.push(json!({"type": "tool_use", "id": id, "name": name, "input": input}));
    }
    Ok(blocks)
}

fn tool_result_block(message: &Value, position: usize) -> Result<Value, Invalid> {
    let id = message
        .get("tool_call_id")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            invalid(
                "messages",
                &format!("messages[{position}] is a tool result without 'tool_call_id'."),
            )
        })?;
    let content = match message.get("content") {
        Some(Value::String(text)) => json!(text),
        Some(Value::Array(_)) => Value::Array(text_blocks(message.get("content"), position)?),
        _ => json!(""),
    };
    Ok(json!({"type": "tool_result", "tool_use_id": id, "content": content}))
}

fn tools(tools: Option<&Value>) -> Result<Vec<Value>, Invalid> {
    let Some(list) = tools.and_then(Value::as_array) else {
        return Ok(Vec::new());
    };
    list.iter()
        .map(|tool| {
            let function = tool
                .get("function")
                .filter(|_| tool.get("type").and_then(Value::as_str) == Some("function"))
                .ok_or_else(|| {
                    invalid(
                        "tools",
                        "Anthropic channels take only tools of type 'function'.",
                    )
                })?;
            let name = function
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid("tools", "Every tool needs a function name."))?;
            let mut out = Map::new();
            out.insert("name".into(), json!(name));
            if let Some(description) = function.get("description").and_then(Value::as_str) {
                out.insert("description".into(), json!(description));
            }
            let schema = function
                .get("parameters")
                .cloned()
                .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
            out.insert("input_schema".into(), schema);
            Ok(Value::Object(out))
        })
        .collect()
}

fn tool_choice(choice: Option<&Value>, parallel: Option<&Value>) -> Result<Option<Value>, Invalid> {
    let mut out = match choice {
        None | Some(Value::Null) => {
            if parallel.and_then(Value::as_bool) == Some(false) {
                json!({"type": "auto"})
            } else {
                return Ok(None);
            }
        }
        Some(Value::String(mode)) => match mode.as_str() {
            "auto" => json!({"type": "auto"}),
            "required" => json!({"type": "any"}),
            "none" => json!({"type": "none"}),
            other => {
                return Err(invalid(
                    "tool_choice",
                    &format!(
                        "'{other}' is not a tool_choice (auto, required, none or a function)."
                    ),
                ));
            }
        },
        Some(object) => {
            let name = object
                .get("function")
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str)
                .ok_or_else(|| invalid("tool_choice", "tool_choice names no function."))?;
            json!({"type": "tool", "name": name})
        }
    };
    if parallel.and_then(Value::as_bool) == Some(false) && out["type"] != "none" {
        out["disable_parallel_tool_use"] = Value::Bool(true);
    }
    Ok(Some(out))
}

/// Anthropic's stop reason → OpenAI's finish reason.
fn finish_reason(stop_reason: Option<&str>) -> Option<&'static str> {
    Some(match stop_reason? {
        "max_tokens" | "model_context_window_exceeded" => "length",
        "tool_use" => "tool_calls",
        "refusal" => "content_filter",
        _ => "stop",
    })
}

/// Anthropic usage → billing usage. Anthropic's `input_tokens` leaves out the cached prompt,
/// OpenAI's `prompt_tokens` includes it.
pub fn usage(usage: &Value) -> Usage {
    // Reported figures are untrusted: negative ones count as zero, sums saturate (billing
    // holds them to the request's bounds).
    let field = |name: &str| usage.get(name).and_then(Value::as_i64).unwrap_or(0).max(0);
    let cached = field("cache_read_input_tokens");
    let written = field("cache_creation_input_tokens");
    Usage {
        prompt_tokens: field("input_tokens")
            .saturating_add(cached)
            .saturating_add(written),
        completion_tokens: field("output_tokens"),
        cached_tokens: cached,
        cache_write_tokens: written,
        units: 0,
    }
}

/// Anthropic Messages answer → OpenAI chat completion, with the usage to bill. None when the
/// body is not a Messages answer.
pub fn chat_response(body: &[u8], client_model: &str, created: i64) -> Option<(Value, Usage)> {
    let answer: Value = serde_json::from_slice(body).ok()?;
    if answer.get("type").and_then(Value::as_str) != Some("message") {
        return None;
    }
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut tool_calls = Vec::new();
    for block in answer
        .get("content")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        match block.get("type").and_then(Value::as_str) {
            Some("text") => text.push_str(block.get("text").and_then(Value::as_str).unwrap_or("")),
            Some("thinking") => {
                reasoning.push_str(block.get("thinking").and_then(Value::as_str).unwrap_or(""))
            }
            Some("tool_use") => tool_calls.push(json!({
                "id": block.get("id").cloned().unwrap_or(Value::Null),
                "type": "function",
                "function": {
                    "name": block.get("name").cloned().unwrap_or(Value::Null),
                    "arguments": block.get("input").map_or_else(|| "{}".to_string(), Value::to_string),
                },
            })),
            _ => {}
        }
    }
    let mut message = Map::new();
    message.insert("role".into(), json!("assistant"));
    let has_tool_calls = !tool_calls.is_empty();
    message.insert(
        "content".into(),
        if text.is_empty() && has_tool_calls {
            Value::Null
        } else {
            json!(text)
        },
    );
    if !reasoning.is_empty() {
        message.insert("reasoning_content".into(), json!(reasoning));
    }
    if has_tool_calls {
        message.insert("tool_calls".into(), Value::Array(tool_calls));
    }
    let usage = answer.get("usage").map(usage).unwrap_or_default();
    let id = answer.get("id").and_then(Value::as_str).unwrap_or("");
    let completion = json!({
        "id": format!("chatcmpl-{id}"),
        "object": "chat.completion",
        "created": created,
        "model": client_model,
        "choices": [{
            "index": 0,
            "message": message,
            "finish_reason": finish_reason(answer.get("stop_reason").and_then(Value::as_str)),
            "logprobs": null,
        }],
        "usage": openai_usage(usage),
    });
    Some((completion, usage))
}

/// An Anthropic error body (`{"type":"error","error":{"type","message"}}`) → its type and
/// message.
pub fn error_parts(body: &[u8]) -> Option<(String, String)> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let error = value.get("error")?;
    Some((
        error.get("type")?.as_str()?.to_string(),
        error.get("message")?.as_str()?.to_string(),
    ))
}

/// Anthropic's stream events → OpenAI chat-completion chunks.
///
/// `message_start` opens the answer (the role chunk); text, thinking and tool-input deltas
/// become content, `reasoning_content` and tool-call argument chunks (tool calls are numbered
/// in order of appearance, as OpenAI numbers them); `message_delta` carries the finish reason
/// and the output token count; `message_stop` ends with the usage chunk when the client asked
/// for it, then `[DONE]`. Pings become SSE comments, which keep the connection alive.
pub struct ChatStreamFromMessages {
    chunks: ChatChunks,
    include_usage: bool,
    usage_json: Value,
    /// Content-block index → tool-call index, for tool-use blocks.
    tool_blocks: Vec<(u64, usize)>,
    tool_count: usize,
    finished: bool,
}

impl ChatStreamFromMessages {
    pub fn new(client_model: &str, created: i64, include_usage: bool) -> Self {
        ChatStreamFromMessages {
            chunks: ChatChunks {
                id: String::new(),
                model: client_model.to_string(),
                created,
            },
            include_usage,
            usage_json: json!({}),
            tool_blocks: Vec::new(),
            tool_count: 0,
            finished: false,
        }
    }

    fn merge_usage(&mut self, usage: &Value) {
        if let Some(into) = self.usage_json.as_object_mut() {
            merge_usage(into, usage);
        }
    }
}

impl StreamTranslator for ChatStreamFromMessages {
    fn event(&mut self, _raw: &[u8], data: &[u8], out: &mut BytesMut) -> TranslatedEvent {
        let mut seen = TranslatedEvent::default();
        let Ok(event) = serde_json::from_slice::<Value>(data) else {
            return seen;
        };
        match event.get("type").and_then(Value::as_str) {
            Some("message_start") => {
                let message = event.get("message").unwrap_or(&Value::Null);
                let id = message.get("id").and_then(Value::as_str).unwrap_or("");
                self.chunks.id = format!("chatcmpl-{id}");
                if let Some(usage) = message.get("usage") {
                    self.merge_usage(usage);
                }
                self.chunks.role(0, out);
            }
            Some("content_block_start") => {
                let index = event.get("index").and_then(Value::as_u64).unwrap_or(0);
                let block = event.get("content_block").unwrap_or(&Value::Null);
                if block.get("type").and_then(Value::as_str) == Some("tool_use") {
                    let tool_index = self.tool_count;
                    self.tool_count += 1;
                    self.tool_blocks.push((index, tool_index));
                    let name = block.get("name").and_then(Value::as_str).unwrap_or("");
                    self.chunks.delta(
                        0,
                        json!({"tool_calls": [{
                            "index": tool_index,
                            "id": block.get("id").cloned().unwrap_or(Value::Null),
                            "type": "function",
                            "function": {"name": name, "arguments": ""},
                        }]}),
                        &mut seen,
                        out,
                    );
                }
            }
            Some("content_block_delta") => {
                let index = event.get("index").and_then(Value::as_u64).unwrap_or(0);
                let delta = event.get("delta").unwrap_or(&Value::Null);
                match delta.get("type").and_then(Value::as_str) {
                    Some("text_delta") => {
                        let text = delta.get("text").and_then(Value::as_str).unwrap_or("");
                        self.chunks
                            .delta(0, json!({"content": text}), &mut seen, out);
                    }
                    Some("thinking_delta") => {
                        let text = delta.get("thinking").and_then(Value::as_str).unwrap_or("");
                        self.chunks
                            .delta(0, json!({"reasoning_content": text}), &mut seen, out);
                    }
                    Some("input_json_delta") => {
                        let partial = delta
                            .get("partial_json")
                            .and_then(Value::as_str)
                            .unwrap_or("");
                        let tool_index = self
                            .tool_blocks
                            .iter()
                            .find(|(block, _)| *block == index)
                            .map_or(0, |(_, tool)| *tool);
                        self.chunks.delta(0, json!({"tool_calls": [{"index": tool_index, "function": {"arguments": partial}}]}), &mut seen, out);
                    }
                    _ => {} // signature deltas and block kinds OpenAI has no field for
                }
            }
            Some("message_delta") => {
                if let Some(usage) = event.get("usage") {
                    self.merge_usage(usage);
                }
                let stop = event
                    .get("delta")
                    .and_then(|d| d.get("stop_reason"))
                    .and_then(Value::as_str);
                if let Some(reason) = finish_reason(stop) {
                    self.chunks.finish(0, reason, out);
                }
                seen.usage = Some(usage(&self.usage_json));
            }
            Some("message_stop") => {
                let usage = usage(&self.usage_json);
                seen.usage = Some(usage);
                self.chunks.end(self.include_usage.then_some(usage), out);
                self.finished = true;
            }
            Some("ping") => out.extend_from_slice(b": ping\n\n"),
            Some("error") => {
                let error = event.get("error").unwrap_or(&Value::Null);
                let message = error
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("the upstream reported an error")
                    .to_string();
                let kind = error
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or("api_error");
                crate::protocol::openai::error_event(&message, kind, kind, out);
                seen.error = Some(message);
            }
            _ => {}
        }
        seen
    }

    fn finished(&self) -> bool {
        self.finished
    }
}

/// Anthropic's stream events forwarded unchanged to an Anthropic client, read on the way for
/// usage (`message_start` and `message_delta` carry it), generated text (counted when the
/// stream breaks off before its usage arrives) and errors; `message_stop` ends the answer.
#[derive(Default)]
pub struct MessagesPassthrough {
    usage_json: Map<String, Value>,
    finished: bool,
}

fn merge_usage(into: &mut Map<String, Value>, from: &Value) {
    for (name, value) in from.as_object().into_iter().flatten() {
        if !value.is_null() {
            into.insert(name.clone(), value.clone());
        }
    }
}

impl StreamTranslator for MessagesPassthrough {
    fn event(&mut self, raw: &[u8], data: &[u8], out: &mut BytesMut) -> TranslatedEvent {
        out.extend_from_slice(raw);
        let mut seen = TranslatedEvent::default();
        let Ok(event) = serde_json::from_slice::<Value>(data) else {
            return seen;
        };
        match event.get("type").and_then(Value::as_str) {
            Some("message_start") => {
                if let Some(usage) = event.get("message").and_then(|m| m.get("usage")) {
                    merge_usage(&mut self.usage_json, usage);
                }
            }
            Some("content_block_start") => {
                let block = event.get("content_block").unwrap_or(&Value::Null);
                if let Some(name) = block.get("name").and_then(Value::as_str) {
                    seen.text.push_str(name);
                }
            }
            Some("content_block_delta") => {
                let delta = event.get("delta").unwrap_or(&Value::Null);
                for field in ["text", "thinking", "partial_json"] {
                    if let Some(text) = delta.get(field).and_then(Value::as_str) {
                        seen.text.push_str(text);
                    }
                }
            }
            Some("message_delta") => {
                if let Some(usage) = event.get("usage") {
                    merge_usage(&mut self.usage_json, usage);
                }
                seen.usage = Some(usage(&Value::Object(self.usage_json.clone())));
            }
            Some("message_stop") => {
                self.finished = true;
                seen.usage = Some(usage(&Value::Object(self.usage_json.clone())));
            }
            Some("error") => {
                seen.error = Some(
                    event
                        .pointer("/error/message")
                        .and_then(Value::as_str)
                        .unwrap_or("the upstream reported an error")
                        .to_string(),
                );
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
    fn translates_a_chat_request_with_system_images_tools_and_results() {
        let body = request(json!({
            "model": "claude-sonnet",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "developer", "content": [{"type": "text", "text": "Use tools."}]},
                {"role": "user", "content": [
                    {"type": "text", "text": "What is in this picture, and the weather?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0"}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}}
                ]},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_1", "type": "function",
                     "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}}
                ]},
                {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
                {"role": "user", "content": "Thanks"}
            ],
            "tools": [{"type": "function", "function": {
                "name": "weather", "description": "Weather by city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
            "tool_choice": "required",
            "parallel_tool_calls": false,
            "temperature": 1.5,
            "top_p": 0.9,
            "stop": "END",
            "max_tokens": 300,
            "stream": true,
            "stream_options": {"include_usage": true},
            "user": "u-42",
            "logprobs": false
        }));
        let out = chat_request(&body, "claude-sonnet-4-5", 4096).unwrap();
        assert_eq!(
            out,
            json!({
                "model": "claude-sonnet-4-5",
                "max_tokens": 300,
                "system": [{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Use tools."}],
                "messages": [
                    {"role": "user", "content": [
                        {"type": "text", "text": "What is in this picture, and the weather?"},
                        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0"}},
                        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}}
                    ]},
                    {"role": "assistant", "content": [
                        {"type": "tool_use", "id": "call_1", "name": "weather", "input": {"city": "Paris"}}
                    ]},
                    {"role": "user", "content": [
                        {"type": "tool_result", "tool_use_id": "call_1", "content": "sunny"},
                        {"type": "text", "text": "Thanks"}
                    ]}
                ],
                "temperature": 1.0,
                "top_p": 0.9,
                "stop_sequences": ["END"],
                "stream": true,
                "metadata": {"user_id": "u-42"},
                "tools": [{"name": "weather", "description": "Weather by city",
                           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}],
                "tool_choice": {"type": "any", "disable_parallel_tool_use": true}
            })
        );
    }

    #[test]
    fn fills_in_max_tokens_and_refuses_what_anthropic_cannot_do() {
        let out = chat_request(
            &request(json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]})),
            "m",
            1234,
        )
        .unwrap();
        assert_eq!(out["max_tokens"], 1234);
        assert_eq!(
            out["messages"],
            json!([{"role": "user", "content": [{"type": "text", "text": "hi"}]}])
        );
        let n = chat_request(
            &request(
                json!({"model": "m", "n": 2, "messages": [{"role": "user", "content": "hi"}]}),
            ),
            "m",
            1,
        )
        .unwrap_err();
        assert_eq!(n.param, "n");
        let schema = chat_request(
            &request(
                json!({"model": "m", "response_format": {"type": "json_schema"},
                            "messages": [{"role": "user", "content": "hi"}]}),
            ),
            "m",
            1,
        )
        .unwrap_err();
        assert_eq!(schema.param, "response_format");
        let only_system = chat_request(
            &request(json!({"model": "m", "messages": [{"role": "system", "content": "x"}]})),
            "m",
            1,
        )
        .unwrap_err();
        assert_eq!(only_system.param, "messages");
        let bad_image = chat_request(
            &request(
                json!({"model": "m", "messages": [{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "data:text/plain;base64,AAAA"}}]}]}),
            ),
            "m",
            1,
        )
        .unwrap_err();
        assert!(
            bad_image.message.contains("data:image"),
            "{}",
            bad_image.message
        );
    }

    #[test]
    fn translates_an_answer_with_text_thinking_and_tool_use() {
        let body = br#"{"id":"msg_01","type":"message","role":"assistant","model":"claude-sonnet-4-5",
            "content":[{"type":"thinking","thinking":"Let me see.","signature":"sig"},
                       {"type":"text","text":"Checking."},
                       {"type":"tool_use","id":"toolu_1","name":"weather","input":{"city":"Paris"}}],
            "stop_reason":"tool_use","stop_sequence":null,
            "usage":{"input_tokens":20,"cache_creation_input_tokens":5,"cache_read_input_tokens":100,"output_tokens":30}}"#;
        let (completion, usage) = chat_response(body, "claude-sonnet", 1_700_000_000).unwrap();
        assert_eq!(
            usage,
            Usage {
                prompt_tokens: 125,
                completion_tokens: 30,
                cache_write_tokens: 5,
                units: 0,
                cached_tokens: 100
            }
        );
        assert_eq!(
            completion,
            json!({
                "id": "chatcmpl-msg_01",
                "object": "chat.completion",
                "created": 1_700_000_000,
                "model": "claude-sonnet",
                "choices": [{
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": "Checking.",
                        "reasoning_content": "Let me see.",
                        "tool_calls": [{"id": "toolu_1", "type": "function",
                                        "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}}]
                    },
                    "finish_reason": "tool_calls",
                    "logprobs": null
                }],
                "usage": {"prompt_tokens": 125, "completion_tokens": 30, "total_tokens": 155,
                          "prompt_tokens_details": {"cached_tokens": 100},
                          "cache_creation_input_tokens": 5}
            })
        );
        assert!(chat_response(br#"{"type":"error","error":{}}"#, "m", 0).is_none());
        assert_eq!(
            error_parts(
                br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#
            ),
            Some(("overloaded_error".into(), "Overloaded".into()))
        );
    }

    fn feed(
        translator: &mut ChatStreamFromMessages,
        events: &[Value],
    ) -> (Vec<Value>, Option<Usage>) {
        let mut out = BytesMut::new();
        let mut usage = None;
        for event in events {
            let seen = translator.event(b"", event.to_string().as_bytes(), &mut out);
            usage = seen.usage.or(usage);
        }
        let text = String::from_utf8(out.to_vec()).unwrap();
        let chunks = text
            .split("\n\n")
            .filter_map(|event| event.strip_prefix("data: "))
            .map(|data| serde_json::from_str(data).unwrap_or(json!(data)))
            .collect();
        (chunks, usage)
    }

    #[test]
    fn translates_a_stream_with_text_and_a_tool_call() {
        let mut translator = ChatStreamFromMessages::new("claude-sonnet", 7, true);
        let (chunks, usage) = feed(
            &mut translator,
            &[
                json!({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant",
                        "content": [], "model": "claude-sonnet-4-5", "stop_reason": null,
                        "usage": {"input_tokens": 10, "cache_read_input_tokens": 4, "output_tokens": 1}}}),
                json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
                json!({"type": "ping"}),
                json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}}),
                json!({"type": "content_block_stop", "index": 0}),
                json!({"type": "content_block_start", "index": 1, "content_block":
                        {"type": "tool_use", "id": "toolu_9", "name": "weather", "input": {}}}),
                json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"city\":"}}),
                json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "\"Paris\"}"}}),
                json!({"type": "content_block_stop", "index": 1}),
                json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null},
                        "usage": {"output_tokens": 17}}),
                json!({"type": "message_stop"}),
            ],
        );
        assert!(translator.finished());
        assert_eq!(
            usage,
            Some(Usage {
                prompt_tokens: 14,
                completion_tokens: 17,
                cache_write_tokens: 0,
                units: 0,
                cached_tokens: 4
            })
        );
        let deltas: Vec<&Value> = chunks
            .iter()
            .filter_map(|c| c.pointer("/choices/0/delta"))
            .collect();
        assert_eq!(deltas[0], &json!({"role": "assistant", "content": ""}));
        assert_eq!(deltas[1], &json!({"content": "Hi"}));
        assert_eq!(
            deltas[2],
            &json!({"tool_calls": [{"index": 0, "id": "toolu_9", "type": "function",
                                    "function": {"name": "weather", "arguments": ""}}]})
        );
        assert_eq!(
            deltas[3],
            &json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\":"}}]})
        );
        assert_eq!(
            deltas[4],
            &json!({"tool_calls": [{"index": 0, "function": {"arguments": "\"Paris\"}"}}]})
        );
        assert_eq!(chunks[5]["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(chunks[0]["id"], "chatcmpl-msg_1");
        assert_eq!(chunks[0]["model"], "claude-sonnet");
        assert_eq!(
            chunks[6]["usage"],
            json!({"prompt_tokens": 14, "completion_tokens": 17, "total_tokens": 31,
                   "prompt_tokens_details": {"cached_tokens": 4}})
        );
        assert_eq!(chunks[6]["choices"], json!([]));
        assert_eq!(chunks.last().unwrap(), &json!("[DONE]"));
    }

    #[test]
    fn reports_a_stream_error_in_openai_shape() {
        let mut translator = ChatStreamFromMessages::new("m", 0, false);
        let mut out = BytesMut::new();
        let seen = translator.event(
            b"",
            br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
            &mut out,
        );
        assert_eq!(seen.error.as_deref(), Some("Overloaded"));
        let text = String::from_utf8(out.to_vec()).unwrap();
        assert!(text.contains(r#""type":"overloaded_error""#), "{text}");
        assert!(!translator.finished());
    }
}
