//! Anthropic's Messages API in front of channels that speak OpenAI chat completions.
//!
//! Requests: the top-level `system` becomes a system message; user turns keep their text,
//! images (base64 or URL) and PDF documents as content parts, and their `tool_result` blocks
//! become `tool` messages placed before the rest of the turn (OpenAI wants tool results right
//! after the assistant message that called the tools); assistant turns keep text and turn
//! `tool_use` blocks into tool calls; thinking blocks, which only Anthropic can verify, are
//! dropped. Tools, tool choice, stop sequences and sampling parameters are renamed. Anthropic's
//! built-in server tools (web search, bash, …) exist only on Anthropic, so a request that uses
//! them is refused here and goes to an Anthropic channel if the model has one.
//!
//! Answers: text, `reasoning_content` (as a thinking block) and tool calls become content
//! blocks; finish reasons become stop reasons; usage is split Anthropic's way (`input_tokens`
//! leaves out the cached prompt). Streams are rewritten event by event by
//! [`MessagesFromChatStream`].

use bytes::BytesMut;
use serde_json::{Map, Value, json};

use crate::domain::pricing::Usage;
use crate::protocol::translate::{StreamTranslator, TranslatedEvent};
use crate::protocol::usage::AnswerWire;
use crate::providers::takes_max_completion_tokens;
use crate::relay::error::RelayError;

fn invalid(param: &'static str, message: String) -> RelayError {
    RelayError::bad_request(message).with_param(param)
}

/// Anthropic Messages request → OpenAI chat request.
pub fn chat_request(
    request: &Map<String, Value>,
    upstream_model: &str,
    stream: bool,
) -> Result<Value, RelayError> {
    let mut messages: Vec<Value> = Vec::new();
    if let Some(system) = request.get("system").filter(|s| !s.is_null()) {
        let text = joined_text(system, "system")?;
        if !text.is_empty() {
            messages.push(json!({"role": "system", "content": text}));
        }
    }
    let turns = request
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            invalid(
                "messages",
                "'messages' must be an array of messages.".into(),
            )
        })?;
    for (position, turn) in turns.iter().enumerate() {
        let content = turn.get("content").unwrap_or(&Value::Null);
        match turn.get("role").and_then(Value::as_str) {
            Some("user") => user_turn(content, position, &mut messages)?,
            Some("assistant") => messages.push(assistant_turn(content, position)?),
            // Instructions given mid-conversation (Claude Code sends them): a system message
            // at that position; upstreams that take one system prompt merge them in order.
            Some("system") => {
                let text = joined_text(content, "messages")?;
                if !text.is_empty() {
                    messages.push(json!({"role": "system", "content": text}));
                }
            }
            _ => {
                return Err(invalid(
                    "messages",
                    format!("messages[{position}].role must be 'user', 'assistant' or 'system'."),
                ));
            }
        }
    }

    let mut out = Map::new();
    out.insert("model".into(), json!(upstream_model));
    out.insert("messages".into(), Value::Array(messages));
    if let Some(max) = request.get("max_tokens").filter(|v| !v.is_null()) {
        let name = if takes_max_completion_tokens(upstream_model) {
            "max_completion_tokens"
        } else {
            "max_tokens"
        };
        out.insert(name.into(), max.clone());
    }
    for (from, to) in [
        ("temperature", "temperature"),
        ("top_p", "top_p"),
        ("stop_sequences", "stop"),
    ] {
        if let Some(value) = request.get(from).filter(|v| !v.is_null()) {
            out.insert(to.into(), value.clone());
        }
    }
    for dropped in [
        "top_k",
        "thinking",
        "service_tier",
        "container",
        "mcp_servers",
    ] {
        if request.get(dropped).is_some_and(|v| !v.is_null()) {
            tracing::debug!(
                field = dropped,
                "dropping a Messages field chat completions lack"
            );
        }
    }
    if let Some(user) = request
        .get("metadata")
        .and_then(|m| m.get("user_id"))
        .and_then(Value::as_str)
    {
        out.insert("user".into(), json!(user));
    }
    let tools = tools(request.get("tools"))?;
    let has_tools = !tools.is_empty();
    if has_tools {
        out.insert("tools".into(), Value::Array(tools));
    }
    if let Some(choice) = request.get("tool_choice").filter(|v| !v.is_null()) {
        let (choice, parallel) = tool_choice(choice)?;
        if has_tools {
            out.insert("tool_choice".into(), choice);
            if !parallel {
                out.insert("parallel_tool_calls".into(), json!(false));
            }
        }
    }
    if stream {
        out.insert("stream".into(), json!(true));
        out.insert("stream_options".into(), json!({"include_usage": true}));
    }
    Ok(Value::Object(out))
}

/// A string, or a list of text blocks, as one string.
fn joined_text(value: &Value, param: &'static str) -> Result<String, RelayError> {
    match value {
        Value::String(text) => Ok(text.clone()),
        Value::Array(blocks) => {
            let mut text = String::new();
            for block in blocks {
                if let Some(part) = block.get("text").and_then(Value::as_str) {
                    if !text.is_empty() {
                        text.push_str("\n\n");
                    }
                    text.push_str(part);
                }
            }
            Ok(text)
        }
        _ => Err(invalid(
            param,
            format!("'{param}' must be a string or a list of text blocks."),
        )),
    }
}

fn block_type(block: &Value) -> &str {
    block.get("type").and_then(Value::as_str).unwrap_or("")
}

/// An image or document source → the URL OpenAI takes (a data URL for base64 data).
fn source_url(source: &Value) -> Option<String> {
    match source.get("type").and_then(Value::as_str)? {
        "base64" => {
            let media_type = source.get("media_type").and_then(Value::as_str)?;
            let data = source.get("data").and_then(Value::as_str)?;
            Some(format!("data:{media_type};base64,{data}"))
        }
        "url" => source
            .get("url")
            .and_then(Value::as_str)
            .map(str::to_string),
        _ => None,
    }
}

/// One user content block → an OpenAI content part.
fn user_part(block: &Value, position: usize) -> Result<Option<Value>, RelayError> {
    let source = block.get("source").unwrap_or(&Value::Null);
    match block_type(block) {
        "text" => Ok(Some(json!({
            "type": "text",
            "text": block.get("text").and_then(Value::as_str).unwrap_or(""),
        }))),
        "image" => {
            let url = source_url(source).ok_or_else(|| {
                invalid(
                    "messages",
                    format!(
                        "messages[{position}]: an image needs a base64 source with media_type and data, or a url source."
                    ),
                )
            })?;
            Ok(Some(
                json!({"type": "image_url", "image_url": {"url": url}}),
            ))
        }
        "document" => match source.get("type").and_then(Value::as_str) {
            Some("text") => Ok(Some(json!({
                "type": "text",
                "text": source.get("data").and_then(Value::as_str).unwrap_or(""),
            }))),
            Some("base64") => {
                let url = source_url(source).unwrap_or_default();
                let name = block
                    .get("title")
                    .and_then(Value::as_str)
                    .unwrap_or("document.pdf");
                Ok(Some(json!({
                    "type": "file",
                    "file": {"filename": name, "file_data": url},
                })))
            }
            _ => Err(invalid(
                "messages",
                format!(
                    "messages[{position}]: only base64 and text documents can be sent to this model's channels."
                ),
            )),
        },
        // Thinking blocks carry Anthropic's signature and mean nothing to other models.
        "thinking" | "redacted_thinking" => Ok(None),
        other => Err(invalid(
            "messages",
            format!(
                "messages[{position}]: content blocks of type '{other}' are not supported here."
            ),
        )),
    }
}

fn user_turn(content: &Value, position: usize, out: &mut Vec<Value>) -> Result<(), RelayError> {
    let blocks = match content {
        Value::String(text) => {
            out.push(json!({"role": "user", "content": text}));
            return Ok(());
        }
        Value::Array(blocks) => blocks,
        _ => {
            return Err(invalid(
                "messages",
                format!("messages[{position}].content must be a string or a list of blocks."),
            ));
        }
    };
    let mut parts = Vec::new();
    for block in blocks {
        if block_type(block) == "tool_result" {
            out.push(tool_message(block, &mut parts, position)?);
        } else if let Some(part) = user_part(block, position)? {
            parts.push(part);
        }
    }
    if !parts.is_empty() {
        out.push(json!({"role": "user", "content": parts}));
    }
    Ok(())
}

/// A `tool_result` block → a `tool` message. Images in a result cannot ride in a tool message,
/// so they join the user turn that follows.
fn tool_message(
    block: &Value,
    user_parts: &mut Vec<Value>,
    position: usize,
) -> Result<Value, RelayError> {
    let id = block
        .get("tool_use_id")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            invalid(
                "messages",
                format!("messages[{position}]: a tool_result block needs its tool_use_id."),
            )
        })?;
    let mut text = String::new();
    match block.get("content") {
        Some(Value::String(content)) => text.push_str(content),
        Some(Value::Array(parts)) => {
            for part in parts {
                match block_type(part) {
                    "text" => {
                        if !text.is_empty() {
                            text.push('\n');
                        }
                        text.push_str(part.get("text").and_then(Value::as_str).unwrap_or(""));
                    }
                    _ => {
                        if let Some(part) = user_part(part, position)? {
                            user_parts.push(part);
                        }
                    }
                }
            }
        }
        _ => {}
    }
    if block.get("is_error").and_then(Value::as_bool) == Some(true) {
        text = format!("Error: {text}");
    }
    Ok(json!({"role": "tool", "tool_call_id": id, "content": text}))
}

fn assistant_turn(content: &Value, position: usize) -> Result<Value, RelayError> {
    let blocks = match content {
        Value::String(text) => return Ok(json!({"role": "assistant", "content": text})),
        Value::Array(blocks) => blocks,
        _ => {
            return Err(invalid(
                "messages",
                format!("messages[{position}].content must be a string or a list of blocks."),
            ));
        }
    };
    let mut text = String::new();
    let mut calls = Vec::new();
    for block in blocks {
        match block_type(block) {
            "text" => text.push_str(block.get("text").and_then(Value::as_str).unwrap_or("")),
            "tool_use" => calls.push(json!({
                "id": block.get("id").cloned().unwrap_or(Value::Null),
                "type": "function",
                "function": {
                    "name": block.get("name").cloned().unwrap_or(Value::Null),
                    "arguments": block.get("input").map_or_else(|| "{}".to_string(), Value::to_string),
                },
            })),
            "thinking" | "redacted_thinking" => {}
            other => {
                return Err(invalid(
                    "messages",
                    format!(
                        "messages[{position}]: assistant blocks of type '{other}' are not supported here."
                    ),
                ));
            }
        }
    }
    let mut message = Map::new();
    message.insert("role".into(), json!("assistant"));
    message.insert(
        "content".into(),
        if text.is_empty() && !calls.is_empty() {
            Value::Null
        } else {
            json!(text)
        },
    );
    if !calls.is_empty() {
        message.insert("tool_calls".into(), Value::Array(calls));
    }
    Ok(Value::Object(message))
}

fn tools(tools: Option<&Value>) -> Result<Vec<Value>, RelayError> {
    let Some(tools) = tools.filter(|t| !t.is_null()) else {
        return Ok(Vec::new());
    };
    let tools = tools
        .as_array()
        .ok_or_else(|| invalid("tools", "'tools' must be a list of tools.".into()))?;
    tools
        .iter()
        .map(|tool| {
            let name = tool.get("name").and_then(Value::as_str).unwrap_or("");
            match tool.get("type").and_then(Value::as_str) {
                None | Some("custom") => {}
                Some(kind) => {
                    return Err(invalid(
                        "tools",
                        format!(
                            "The tool '{name}' is Anthropic's built-in '{kind}' tool, which only Anthropic channels can run."
                        ),
                    ));
                }
            }
            if name.is_empty() {
                return Err(invalid("tools", "Every tool needs a 'name'.".into()));
            }
            let mut function = Map::new();
            function.insert("name".into(), json!(name));
            if let Some(description) = tool.get("description").filter(|d| !d.is_null()) {
                function.insert("description".into(), description.clone());
            }
            function.insert(
                "parameters".into(),
                tool.get("input_schema")
                    .cloned()
                    .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
            );
            Ok(json!({"type": "function", "function": function}))
        })
        .collect()
}

/// Anthropic `tool_choice` → OpenAI `tool_choice`, and whether parallel calls stay allowed.
fn tool_choice(choice: &Value) -> Result<(Value, bool), RelayError> {
    let parallel = choice
        .get("disable_parallel_tool_use")
        .and_then(Value::as_bool)
        != Some(true);
    let mapped = match choice.get("type").and_then(Value::as_str) {
        Some("auto") => json!("auto"),
        Some("any") => json!("required"),
        Some("none") => json!("none"),
        Some("tool") => {
            let name = choice.get("name").and_then(Value::as_str).ok_or_else(|| {
                invalid(
                    "tool_choice",
                    "A tool_choice of type 'tool' needs the tool's 'name'.".into(),
                )
            })?;
            json!({"type": "function", "function": {"name": name}})
        }
        _ => {
            return Err(invalid(
                "tool_choice",
                "'tool_choice.type' must be 'auto', 'any', 'tool' or 'none'.".into(),
            ));
        }
    };
    Ok((mapped, parallel))
}

fn stop_reason(finish_reason: Option<&str>) -> &'static str {
    match finish_reason {
        Some("length") => "max_tokens",
        Some("tool_calls" | "function_call") => "tool_use",
        Some("content_filter") => "refusal",
        _ => "end_turn",
    }
}

/// Billing usage → Anthropic's usage object.
pub fn messages_usage(usage: Usage) -> Value {
    json!({
        "input_tokens": usage.prompt_tokens - usage.cached_tokens - usage.cache_write_tokens,
        "output_tokens": usage.completion_tokens,
        "cache_creation_input_tokens": usage.cache_write_tokens,
        "cache_read_input_tokens": usage.cached_tokens,
    })
}

fn message_id(openai_id: &str) -> String {
    let id = openai_id.strip_prefix("chatcmpl-").unwrap_or(openai_id);
    if id.is_empty() {
        format!("msg_{}", uuid::Uuid::new_v4().simple())
    } else {
        format!("msg_{id}")
    }
}

/// Parsed tool arguments; arguments that are not a JSON object are kept whole under `input`
/// rather than lost.
fn tool_input(arguments: &str) -> Value {
    match serde_json::from_str::<Value>(arguments) {
        Ok(Value::Object(input)) => Value::Object(input),
        _ if arguments.trim().is_empty() => json!({}),
        _ => json!({"input": arguments}),
    }
}

/// OpenAI chat completion → Anthropic message, with the usage the upstream reported (None when
/// it reported none). None when the body is not a chat completion.
pub fn message_response(body: &[u8], client_model: &str) -> Option<(Value, Option<Usage>)> {
    let answer: Value = serde_json::from_slice(body).ok()?;
    let choice = answer.get("choices")?.as_array()?.first()?;
    let message = choice.get("message")?;
    let mut content = Vec::new();
    if let Some(reasoning) = message
        .get("reasoning_content")
        .and_then(Value::as_str)
        .filter(|r| !r.is_empty())
    {
        content.push(json!({"type": "thinking", "thinking": reasoning, "signature": ""}));
    }
    if let Some(text) = message
        .get("content")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
    {
        content.push(json!({"type": "text", "text": text}));
    }
    for call in message
        .get("tool_calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let function = call.get("function").unwrap_or(&Value::Null);
        content.push(json!({
            "type": "tool_use",
            "id": call.get("id").cloned().unwrap_or(Value::Null),
            "name": function.get("name").cloned().unwrap_or(Value::Null),
            "input": tool_input(function.get("arguments").and_then(Value::as_str).unwrap_or("")),
        }));
    }
    let usage = AnswerWire::parse(body).and_then(|a| a.usage());
    let id = answer.get("id").and_then(Value::as_str).unwrap_or("");
    let message = json!({
        "id": message_id(id),
        "type": "message",
        "role": "assistant",
        "model": client_model,
        "content": content,
        "stop_reason": stop_reason(choice.get("finish_reason").and_then(Value::as_str)),
        "stop_sequence": null,
        "usage": messages_usage(usage.unwrap_or_default()),
    });
    Some((message, usage))
}

/// Anthropic's error `type` for an HTTP status.
pub fn error_type(status: u16) -> &'static str {
    match status {
        400 | 422 => "invalid_request_error",
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        504 => "timeout_error",
        529 | 503 => "overloaded_error",
        _ => "api_error",
    }
}

/// Anthropic's error envelope.
pub fn error_body(kind: &str, message: &str) -> Value {
    json!({"type": "error", "error": {"type": kind, "message": message}})
}

/// Writes one Anthropic `error` event.
pub fn error_event(kind: &str, message: &str, out: &mut BytesMut) {
    write_event("error", &error_body(kind, message), out);
}

fn write_event(name: &str, data: &Value, out: &mut BytesMut) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    out.extend_from_slice(data.to_string().as_bytes());
    out.extend_from_slice(b"\n\n");
}

/// The content block being streamed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum OpenBlock {
    Thinking,
    Text,
    /// A tool call, by its OpenAI index.
    Tool(u64),
}

/// OpenAI chat-completion chunks → Anthropic's stream events.
///
/// The first chunk opens the message (`message_start`); content, reasoning and each tool call
/// become content blocks in the order they arrive, each opened with `content_block_start`,
/// filled with deltas and closed before the next one opens; `[DONE]` closes the last block and
/// ends with `message_delta` (stop reason and final usage) and `message_stop`.
pub struct MessagesFromChatStream {
    model: String,
    prompt_estimate: i64,
    started: bool,
    open: Option<OpenBlock>,
    next_index: u64,
    stop_reason: &'static str,
    usage: Option<Usage>,
    finished: bool,
}

impl MessagesFromChatStream {
    pub fn new(client_model: &str, prompt_estimate: i64) -> Self {
        MessagesFromChatStream {
            model: client_model.to_string(),
            prompt_estimate,
            started: false,
            open: None,
            next_index: 0,
            stop_reason: "end_turn",
            usage: None,
            finished: false,
        }
    }

    fn start(&mut self, openai_id: &str, out: &mut BytesMut) {
        if self.started {
            return;
        }
        self.started = true;
        write_event(
            "message_start",
            &json!({"type": "message_start", "message": {
                "id": message_id(openai_id),
                "type": "message",
                "role": "assistant",
                "model": self.model,
                "content": [],
                "stop_reason": null,
                "stop_sequence": null,
                "usage": {"input_tokens": self.prompt_estimate, "output_tokens": 0},
            }}),
            out,
        );
    }

    fn close_block(&mut self, out: &mut BytesMut) {
        if self.open.take().is_some() {
            let index = self.next_index - 1;
            write_event(
                "content_block_stop",
                &json!({"type": "content_block_stop", "index": index}),
                out,
            );
        }
    }

    /// Opens `block` unless it is the one already open; returns its index.
    fn ensure_block(&mut self, block: OpenBlock, start: Value, out: &mut BytesMut) -> u64 {
        if self.open != Some(block) {
            self.close_block(out);
            self.open = Some(block);
            self.next_index += 1;
            write_event(
                "content_block_start",
                &json!({"type": "content_block_start", "index": self.next_index - 1, "content_block": start}),
                out,
            );
        }
        self.next_index - 1
    }

    fn delta(index: u64, delta: Value, out: &mut BytesMut) {
        write_event(
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": index, "delta": delta}),
            out,
        );
    }

    fn finish(&mut self, out: &mut BytesMut) {
        self.start("", out);
        self.close_block(out);
        let usage = self.usage.unwrap_or_default();
        write_event(
            "message_delta",
            &json!({"type": "message_delta",
                    "delta": {"stop_reason": self.stop_reason, "stop_sequence": null},
                    "usage": messages_usage(usage)}),
            out,
        );
        write_event("message_stop", &json!({"type": "message_stop"}), out);
        self.finished = true;
    }
}

impl StreamTranslator for MessagesFromChatStream {
    fn event(&mut self, _raw: &[u8], data: &[u8], out: &mut BytesMut) -> TranslatedEvent {
        let mut seen = TranslatedEvent::default();
        if data == b"[DONE]" {
            self.finish(out);
            seen.usage = self.usage;
            return seen;
        }
        let Ok(chunk) = serde_json::from_slice::<Value>(data) else {
            return seen;
        };
        if let Some(error) = chunk.get("error") {
            let message = error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("the upstream reported an error")
                .to_string();
            error_event("api_error", &message, out);
            seen.error = Some(message);
            return seen;
        }
        self.start(chunk.get("id").and_then(Value::as_str).unwrap_or(""), out);
        if let Some(usage) = AnswerWire::parse(data).and_then(|a| a.usage()) {
            self.usage = Some(usage);
            seen.usage = Some(usage);
        }
        let Some(choice) = chunk
            .get("choices")
            .and_then(Value::as_array)
            .and_then(|c| c.first())
        else {
            return seen;
        };
        let delta = choice.get("delta").unwrap_or(&Value::Null);
        seen.count_chat_delta(delta);
        if let Some(text) = delta
            .get("reasoning_content")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
        {
            let index = self.ensure_block(
                OpenBlock::Thinking,
                json!({"type": "thinking", "thinking": "", "signature": ""}),
                out,
            );
            Self::delta(
                index,
                json!({"type": "thinking_delta", "thinking": text}),
                out,
            );
        }
        if let Some(text) = delta
            .get("content")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
        {
            let index =
                self.ensure_block(OpenBlock::Text, json!({"type": "text", "text": ""}), out);
            Self::delta(index, json!({"type": "text_delta", "text": text}), out);
        }
        for call in delta
            .get("tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let tool = call.get("index").and_then(Value::as_u64).unwrap_or(0);
            let function = call.get("function").unwrap_or(&Value::Null);
            let name = function.get("name").and_then(Value::as_str).unwrap_or("");
            let id = call
                .get("id")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| format!("toolu_{}", self.next_index));
            let index = self.ensure_block(
                OpenBlock::Tool(tool),
                json!({"type": "tool_use", "id": id, "name": name, "input": {}}),
                out,
            );
            if let Some(arguments) = function
                .get("arguments")
                .and_then(Value::as_str)
                .filter(|a| !a.is_empty())
            {
                Self::delta(
                    index,
                    json!({"type": "input_json_delta", "partial_json": arguments}),
                    out,
                );
            }
        }
        if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
            self.stop_reason = stop_reason(Some(reason));
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

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn translates_a_messages_request_with_tools_results_and_images() {
        let request = object(json!({
            "model": "claude-sonnet-4-5",
            "max_tokens": 1024,
            "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
            "messages": [
                {"role": "user", "content": [
                    {"type": "text", "text": "Weather in Paris? See the photo."},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBOR"}}
                ]},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "Let me check.", "signature": "sig"},
                    {"type": "text", "text": "Checking."},
                    {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Paris"}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "sunny"}]},
                    {"type": "text", "text": "And tomorrow?"}
                ]}
            ],
            "tools": [{"name": "weather", "description": "Weather by city",
                       "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}],
            "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
            "stop_sequences": ["END"],
            "temperature": 0.5,
            "top_k": 5,
            "metadata": {"user_id": "u-1"},
            "stream": true
        }));
        let out = chat_request(&request, "gpt-4o", true).unwrap();
        assert_eq!(
            out,
            json!({
                "model": "gpt-4o",
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": [
                        {"type": "text", "text": "Weather in Paris? See the photo."},
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBOR"}}
                    ]},
                    {"role": "assistant", "content": "Checking.", "tool_calls": [
                        {"id": "toolu_1", "type": "function",
                         "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}}
                    ]},
                    {"role": "tool", "tool_call_id": "toolu_1", "content": "sunny"},
                    {"role": "user", "content": [{"type": "text", "text": "And tomorrow?"}]}
                ],
                "max_tokens": 1024,
                "temperature": 0.5,
                "stop": ["END"],
                "user": "u-1",
                "tools": [{"type": "function", "function": {
                    "name": "weather", "description": "Weather by city",
                    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
                "tool_choice": "required",
                "parallel_tool_calls": false,
                "stream": true,
                "stream_options": {"include_usage": true}
            })
        );
        // Reasoning models take max_completion_tokens.
        let out = chat_request(&request, "o4-mini", false).unwrap();
        assert_eq!(out["max_completion_tokens"], json!(1024));
        assert!(out.get("max_tokens").is_none());
        assert!(out.get("stream").is_none());
    }

    #[test]
    fn refuses_server_tools_and_bad_roles() {
        let request = object(json!({
            "model": "m", "max_tokens": 10,
            "messages": [{"role": "user", "content": "hi"}],
            "tools": [{"type": "web_search_20250305", "name": "web_search"}]
        }));
        let error = chat_request(&request, "gpt-4o", false).unwrap_err();
        assert_eq!(error.param, Some("tools"));
        assert!(error.message.contains("web_search"), "{}", error.message);
        let request = object(json!({
            "model": "m", "max_tokens": 10,
            "messages": [{"role": "tool", "content": "hi"}]
        }));
        let error = chat_request(&request, "gpt-4o", false).unwrap_err();
        assert!(
            error.message.contains("messages[0].role"),
            "{}",
            error.message
        );
    }

    #[test]
    fn system_messages_inside_the_conversation_keep_their_place() {
        let request = object(json!({
            "model": "m", "max_tokens": 10,
            "system": "Be brief.",
            "messages": [
                {"role": "user", "content": "Fix the test."},
                {"role": "system", "content": [{"type": "text", "text": "Plan mode is on."}]},
                {"role": "assistant", "content": "Looking."},
                {"role": "system", "content": "Keep changes small."}
            ]
        }));
        let chat = chat_request(&request, "gpt-4o", false).unwrap();
        let roles: Vec<&str> = chat["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["role"].as_str().unwrap())
            .collect();
        assert_eq!(roles, ["system", "user", "system", "assistant", "system"]);
        assert_eq!(chat["messages"][2]["content"], "Plan mode is on.");
        assert_eq!(chat["messages"][4]["content"], "Keep changes small.");
    }

    #[test]
    fn translates_an_answer_with_reasoning_and_tool_calls() {
        let body = json!({
            "id": "chatcmpl-abc", "object": "chat.completion", "model": "gpt-4o",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": "Let me look.", "reasoning_content": "Think.",
                "tool_calls": [{"id": "call_1", "type": "function",
                                "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}}]}}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120,
                      "prompt_tokens_details": {"cached_tokens": 40}}
        });
        let (message, usage) =
            message_response(body.to_string().as_bytes(), "claude-sonnet-4-5").unwrap();
        assert_eq!(
            message,
            json!({
                "id": "msg_abc", "type": "message", "role": "assistant",
                "model": "claude-sonnet-4-5",
                "content": [
                    {"type": "thinking", "thinking": "Think.", "signature": ""},
                    {"type": "text", "text": "Let me look."},
                    {"type": "tool_use", "id": "call_1", "name": "weather", "input": {"city": "Paris"}}
                ],
                "stop_reason": "tool_use", "stop_sequence": null,
                "usage": {"input_tokens": 60, "output_tokens": 20,
                          "cache_creation_input_tokens": 0, "cache_read_input_tokens": 40}
            })
        );
        assert_eq!(
            usage,
            Some(Usage {
                prompt_tokens: 100,
                completion_tokens: 20,
                cache_write_tokens: 0,
                units: 0,
                cached_tokens: 40
            })
        );
        assert!(message_response(b"<html>", "m").is_none());
    }

    fn run_stream(chunks: &[&str]) -> (String, Option<Usage>, String, bool) {
        let mut translator = MessagesFromChatStream::new("claude-x", 7);
        let mut out = BytesMut::new();
        let mut usage = None;
        let mut text = String::new();
        for chunk in chunks {
            let seen = translator.event(b"", chunk.as_bytes(), &mut out);
            if seen.usage.is_some() {
                usage = seen.usage;
            }
            text.push_str(&seen.text);
        }
        (
            String::from_utf8(out.to_vec()).unwrap(),
            usage,
            text,
            translator.finished(),
        )
    }

    fn events(wire: &str) -> Vec<Value> {
        wire.split("\n\n")
            .filter(|e| !e.is_empty())
            .map(|e| {
                let mut lines = e.lines();
                let name = lines.next().unwrap().strip_prefix("event: ").unwrap();
                let data: Value =
                    serde_json::from_str(lines.next().unwrap().strip_prefix("data: ").unwrap())
                        .unwrap();
                assert_eq!(data["type"], json!(name), "event name matches its type");
                data
            })
            .collect()
    }

    #[test]
    fn streams_text_then_a_tool_call_as_content_blocks() {
        let (wire, usage, text, finished) = run_stream(&[
            r#"{"id":"chatcmpl-1","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}"#,
            r#"{"id":"chatcmpl-1","choices":[{"index":0,"delta":{"content":"Hi"}}]}"#,
            r#"{"id":"chatcmpl-1","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_9","type":"function","function":{"name":"weather","arguments":""}}]}}]}"#,
            r#"{"id":"chatcmpl-1","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}}]}}]}"#,
            r#"{"id":"chatcmpl-1","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"Oslo\"}"}}]}}]}"#,
            r#"{"id":"chatcmpl-1","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
            r#"{"id":"chatcmpl-1","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":9,"total_tokens":21}}"#,
            "[DONE]",
        ]);
        assert!(finished);
        assert_eq!(
            usage,
            Some(Usage {
                prompt_tokens: 12,
                completion_tokens: 9,
                cache_write_tokens: 0,
                units: 0,
                cached_tokens: 0
            })
        );
        assert_eq!(text, "Hiweather{\"city\":\"Oslo\"}");
        let events = events(&wire);
        let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(
            kinds,
            [
                "message_start",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
        assert_eq!(events[0]["message"]["id"], json!("msg_1"));
        assert_eq!(events[0]["message"]["usage"]["input_tokens"], json!(7));
        assert_eq!(
            events[4]["content_block"],
            json!({"type": "tool_use", "id": "call_9", "name": "weather", "input": {}})
        );
        assert_eq!(events[4]["index"], json!(1));
        assert_eq!(
            events[6]["delta"],
            json!({"type": "input_json_delta", "partial_json": "\"Oslo\"}"})
        );
        assert_eq!(events[8]["delta"]["stop_reason"], json!("tool_use"));
        assert_eq!(events[8]["usage"]["input_tokens"], json!(12));
        assert_eq!(events[8]["usage"]["output_tokens"], json!(9));
    }

    #[test]
    fn a_stream_without_done_is_not_finished_and_errors_become_error_events() {
        let (wire, _, _, finished) = run_stream(&[
            r#"{"id":"c","choices":[{"index":0,"delta":{"content":"partial"}}]}"#,
            r#"{"error":{"message":"overloaded","type":"server_error"}}"#,
        ]);
        assert!(!finished);
        let events = events(&wire);
        let last = events.last().unwrap();
        assert_eq!(
            last,
            &json!({"type": "error", "error": {"type": "api_error", "message": "overloaded"}})
        );
    }
}
