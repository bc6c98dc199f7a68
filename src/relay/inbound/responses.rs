//! OpenAI's Responses API (`/v1/responses`) in front of channels that do not speak it
//! (Anthropic, Gemini): translated to chat completions and back. OpenAI-type channels get the
//! request as it is (see `wire`), read on the way by [`ResponsesPassthrough`].
//!
//! Requests: `instructions` becomes the system message; `input` (a string, or a list of message,
//! `function_call` and `function_call_output` items) becomes chat messages, consecutive function
//! calls one assistant message with tool calls; text, image and file parts are kept; reasoning
//! items, which only OpenAI can read back, are dropped. Function tools, tool choice,
//! `max_output_tokens`, sampling, `reasoning.effort` and `text.format` (JSON mode and schemas)
//! are renamed. OpenAI's hosted tools (web search, file search, code interpreter, …) and
//! `previous_response_id` (a conversation stored at OpenAI) exist only on OpenAI, so they are
//! refused here and such a request goes to an OpenAI channel if the model has one.
//!
//! Answers: a chat completion becomes a response with a reasoning item (from
//! `reasoning_content`), a message item and one `function_call` item per tool call; streams are
//! rewritten by [`ResponsesFromChatStream`] into Responses' event sequence.

use bytes::BytesMut;
use serde_json::{Map, Value, json};

use crate::domain::pricing::Usage;
use crate::protocol::translate::{StreamTranslator, TranslatedEvent};
use crate::protocol::usage::AnswerWire;
use crate::relay::error::RelayError;

fn invalid(param: &'static str, message: String) -> RelayError {
    RelayError::bad_request(message).with_param(param)
}

fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

/// Responses request → chat request.
pub fn chat_request(
    request: &Map<String, Value>,
    upstream_model: &str,
    stream: bool,
) -> Result<Value, RelayError> {
    if request
        .get("previous_response_id")
        .is_some_and(|v| !v.is_null())
    {
        return Err(invalid(
            "previous_response_id",
            "'previous_response_id' continues a conversation stored at OpenAI; this model's channels are not OpenAI. Send the whole conversation in 'input' instead.".into(),
        ));
    }
    let mut messages: Vec<Value> = Vec::new();
    if let Some(instructions) = request.get("instructions").and_then(Value::as_str) {
        messages.push(json!({"role": "system", "content": instructions}));
    }
    match request.get("input") {
        Some(Value::String(text)) => messages.push(json!({"role": "user", "content": text})),
        Some(Value::Array(items)) => {
            for (position, item) in items.iter().enumerate() {
                input_item(item, position, &mut messages)?;
            }
        }
        _ => {
            return Err(invalid(
                "input",
                "'input' must be a string or a list of input items.".into(),
            ));
        }
    }

    let mut out = Map::new();
    out.insert("model".into(), json!(upstream_model));
    out.insert("messages".into(), Value::Array(messages));
    if let Some(max) = request.get("max_output_tokens").filter(|v| v.is_u64()) {
        out.insert("max_tokens".into(), max.clone());
    }
    for name in ["temperature", "top_p", "parallel_tool_calls", "user"] {
        if let Some(value) = request.get(name).filter(|v| !v.is_null()) {
            out.insert(name.into(), value.clone());
        }
    }
    if let Some(effort) = request
        .get("reasoning")
        .and_then(|r| r.get("effort"))
        .and_then(Value::as_str)
    {
        out.insert("reasoning_effort".into(), json!(effort));
    }
    if let Some(format) = request
        .get("text")
        .and_then(|t| t.get("format"))
        .filter(|v| !v.is_null())
    {
        match format.get("type").and_then(Value::as_str) {
            Some("json_schema") => {
                let mut schema = Map::new();
                for name in ["name", "schema", "strict", "description"] {
                    if let Some(value) = format.get(name) {
                        schema.insert(name.into(), value.clone());
                    }
                }
                out.insert(
                    "response_format".into(),
                    json!({"type": "json_schema", "json_schema": schema}),
                );
            }
            Some("json_object") => {
                out.insert("response_format".into(), json!({"type": "json_object"}));
            }
            _ => {}
        }
    }
    let tools = tools(request.get("tools"))?;
    let has_tools = !tools.is_empty();
    if has_tools {
        out.insert("tools".into(), Value::Array(tools));
        if let Some(choice) = request.get("tool_choice").filter(|v| !v.is_null()) {
            out.insert("tool_choice".into(), tool_choice(choice)?);
        }
    }
    if stream {
        out.insert("stream".into(), json!(true));
        out.insert("stream_options".into(), json!({"include_usage": true}));
    }
    Ok(Value::Object(out))
}

fn input_item(item: &Value, position: usize, messages: &mut Vec<Value>) -> Result<(), RelayError> {
    let kind = item
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("message");
    match kind {
        "message" => {
            let role = item.get("role").and_then(Value::as_str).unwrap_or("user");
            if !matches!(role, "user" | "assistant" | "system" | "developer") {
                return Err(invalid(
                    "input",
                    format!("input[{position}].role must be user, assistant, system or developer."),
                ));
            }
            let content = match item.get("content") {
                Some(Value::String(text)) => json!(text),
                Some(Value::Array(parts)) => Value::Array(
                    parts
                        .iter()
                        .map(|part| content_part(part, position))
                        .collect::<Result<Vec<_>, _>>()?,
                ),
                _ => {
                    return Err(invalid(
                        "input",
                        format!("input[{position}].content must be a string or a list of parts."),
                    ));
                }
            };
            messages.push(json!({"role": role, "content": content}));
        }
        "function_call" => {
            let call = json!({
                "id": item.get("call_id").cloned().unwrap_or(Value::Null),
                "type": "function",
                "function": {
                    "name": item.get("name").cloned().unwrap_or(Value::Null),
                    "arguments": item.get("arguments").cloned().unwrap_or_else(|| json!("{}")),
                },
            });
            // Parallel calls arrive as consecutive items; chat wants them in one message.
            match messages.last_mut() {
                Some(last)
                    if last["role"] == "assistant"
                        && last.get("tool_calls").is_some_and(Value::is_array) =>
                {
                    if let Some(calls) = last["tool_calls"].as_array_mut() {
                        calls.push(call);
                    }
                }
                _ => messages
                    .push(json!({"role": "assistant", "content": null, "tool_calls": [call]})),
            }
        }
        "function_call_output" => {
            let output = match item.get("output") {
                Some(Value::String(text)) => text.clone(),
                Some(other) => other.to_string(),
                None => String::new(),
            };
            messages.push(json!({
                "role": "tool",
                "tool_call_id": item.get("call_id").cloned().unwrap_or(Value::Null),
                "content": output,
            }));
        }
        // Encrypted reasoning only OpenAI can read back.
        "reasoning" => {}
        other => {
            return Err(invalid(
                "input",
                format!(
                    "input[{position}] is a '{other}' item, which exists only on OpenAI's own channels."
                ),
            ));
        }
    }
    Ok(())
}

fn content_part(part: &Value, position: usize) -> Result<Value, RelayError> {
    match part.get("type").and_then(Value::as_str) {
        Some("input_text" | "output_text" | "text") => {
            Ok(json!({"type": "text", "text": part.get("text").cloned().unwrap_or(json!(""))}))
        }
        Some("input_image") => {
            let url = part.get("image_url").and_then(Value::as_str).ok_or_else(|| {
                invalid(
                    "input",
                    format!("input[{position}] has an image without 'image_url' (uploaded file ids exist only on OpenAI)."),
                )
            })?;
            let mut image = json!({"url": url});
            if let Some(detail) = part.get("detail") {
                image["detail"] = detail.clone();
            }
            Ok(json!({"type": "image_url", "image_url": image}))
        }
        Some("input_file") => {
            let data = part.get("file_data").and_then(Value::as_str).ok_or_else(|| {
                invalid(
                    "input",
                    format!("input[{position}] has a file without 'file_data' (uploaded file ids exist only on OpenAI)."),
                )
            })?;
            let mut file = json!({"file_data": data});
            if let Some(name) = part.get("filename") {
                file["filename"] = name.clone();
            }
            Ok(json!({"type": "file", "file": file}))
        }
        other => Err(invalid(
            "input",
            format!(
                "input[{position}] has a '{}' part this channel cannot take.",
                other.unwrap_or("untyped")
            ),
        )),
    }
}

fn tools(tools: Option<&Value>) -> Result<Vec<Value>, RelayError> {
    let Some(list) = tools.and_then(Value::as_array) else {
        return Ok(Vec::new());
    };
    list.iter()
        .map(|tool| {
            let kind = tool.get("type").and_then(Value::as_str).unwrap_or("");
            if kind != "function" {
                return Err(invalid(
                    "tools",
                    format!("'{kind}' tools run only on OpenAI's own channels; this model's channels take function tools."),
                ));
            }
            let mut function = Map::new();
            for name in ["name", "description", "parameters", "strict"] {
                if let Some(value) = tool.get(name).filter(|v| !v.is_null()) {
                    function.insert(name.into(), value.clone());
                }
            }
            Ok(json!({"type": "function", "function": function}))
        })
        .collect()
}

fn tool_choice(choice: &Value) -> Result<Value, RelayError> {
    match choice {
        Value::String(mode) if matches!(mode.as_str(), "auto" | "none" | "required") => {
            Ok(choice.clone())
        }
        Value::Object(object) if object.get("type").and_then(Value::as_str) == Some("function") => {
            Ok(
                json!({"type": "function", "function": {"name": object.get("name").cloned().unwrap_or(Value::Null)}}),
            )
        }
        _ => Err(invalid(
            "tool_choice",
            "tool_choice must be auto, none, required or a function.".into(),
        )),
    }
}

/// Billing usage → the Responses usage object.
pub fn responses_usage(usage: Usage) -> Value {
    json!({
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {"cached_tokens": usage.cached_tokens},
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": usage.prompt_tokens.saturating_add(usage.completion_tokens),
    })
}

/// A Responses usage object → billing usage.
pub fn usage(usage: &Value) -> Option<Usage> {
    let input = usage.get("input_tokens")?.as_i64()?;
    let output = usage
        .get("output_tokens")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let cached = usage
        .pointer("/input_tokens_details/cached_tokens")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    Some(Usage {
        prompt_tokens: input.max(0),
        completion_tokens: output.max(0),
        cached_tokens: cached.clamp(0, input.max(0)),
        cache_write_tokens: 0,
        units: 0,
    })
}

/// The text a Responses answer generated (output text, refusals, reasoning summaries, function
/// names and arguments), for counting when it reports no usage.
pub fn generated_text(response: &Value) -> String {
    let mut text = String::new();
    for item in response
        .get("output")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for field in ["name", "arguments"] {
            if let Some(value) = item.get(field).and_then(Value::as_str) {
                text.push_str(value);
            }
        }
        for list in ["content", "summary"] {
            for part in item
                .get(list)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                for field in ["text", "refusal"] {
                    if let Some(value) = part.get(field).and_then(Value::as_str) {
                        text.push_str(value);
                    }
                }
            }
        }
    }
    text
}

/// The fields every response object carries, in the shape OpenAI sends them.
fn response_object(id: &str, model: &str, created: i64, status: &str) -> Map<String, Value> {
    let mut response = Map::new();
    response.insert("id".into(), json!(id));
    response.insert("object".into(), json!("response"));
    response.insert("created_at".into(), json!(created));
    response.insert("status".into(), json!(status));
    response.insert("model".into(), json!(model));
    response.insert("output".into(), json!([]));
    response.insert("error".into(), Value::Null);
    response.insert("incomplete_details".into(), Value::Null);
    response.insert("parallel_tool_calls".into(), json!(true));
    response.insert("tool_choice".into(), json!("auto"));
    response.insert("tools".into(), json!([]));
    response.insert("usage".into(), Value::Null);
    response
}

fn message_item(id: &str, text: &str, status: &str) -> Value {
    json!({
        "type": "message", "id": id, "status": status, "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    })
}

fn reasoning_item(id: &str, text: &str) -> Value {
    json!({"type": "reasoning", "id": id, "summary": [{"type": "summary_text", "text": text}]})
}

fn function_item(id: &str, call_id: &Value, name: &Value, arguments: &str, status: &str) -> Value {
    json!({
        "type": "function_call", "id": id, "call_id": call_id, "name": name,
        "arguments": arguments, "status": status,
    })
}

/// Chat completion → response. None when the body is not a chat completion.
pub fn response_from_chat(
    body: &[u8],
    client_model: &str,
    created: i64,
    usage: Usage,
) -> Option<Value> {
    let answer: Value = serde_json::from_slice(body).ok()?;
    let choice = answer.get("choices")?.as_array()?.first()?;
    let message = choice.get("message")?;
    let mut output = Vec::new();
    if let Some(reasoning) = message
        .get("reasoning_content")
        .and_then(Value::as_str)
        .filter(|r| !r.is_empty())
    {
        output.push(reasoning_item(&new_id("rs"), reasoning));
    }
    if let Some(text) = message
        .get("content")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
    {
        output.push(message_item(&new_id("msg"), text, "completed"));
    }
    for call in message
        .get("tool_calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let function = call.get("function").unwrap_or(&Value::Null);
        output.push(function_item(
            &new_id("fc"),
            call.get("id").unwrap_or(&Value::Null),
            function.get("name").unwrap_or(&Value::Null),
            function
                .get("arguments")
                .and_then(Value::as_str)
                .unwrap_or("{}"),
            "completed",
        ));
    }
    let truncated = choice.get("finish_reason").and_then(Value::as_str) == Some("length");
    let status = if truncated { "incomplete" } else { "completed" };
    let mut response = response_object(&new_id("resp"), client_model, created, status);
    response.insert("output".into(), Value::Array(output));
    if truncated {
        response.insert(
            "incomplete_details".into(),
            json!({"reason": "max_output_tokens"}),
        );
    }
    response.insert("usage".into(), responses_usage(usage));
    Some(Value::Object(response))
}

fn write_event(name: &str, mut data: Value, sequence: &mut u64, out: &mut BytesMut) {
    data["type"] = json!(name);
    data["sequence_number"] = json!(*sequence);
    *sequence += 1;
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    out.extend_from_slice(data.to_string().as_bytes());
    out.extend_from_slice(b"\n\n");
}

/// Writes Responses' `error` event (numbered after the events already sent, when known).
pub fn error_event(code: &str, message: &str, sequence: u64, out: &mut BytesMut) {
    let mut sequence = sequence;
    write_event(
        "error",
        json!({"code": code, "message": message, "param": null}),
        &mut sequence,
        out,
    );
}

/// An output item being streamed.
enum OpenItem {
    Reasoning {
        id: String,
        text: String,
    },
    Message {
        id: String,
        text: String,
    },
    /// A function call, by its chat tool-call index.
    Function {
        index: u64,
        id: String,
        call_id: Value,
        name: Value,
        arguments: String,
    },
}

/// Chat-completion chunks → Responses' stream events.
///
/// `response.created` and `response.in_progress` open the answer; reasoning, text and each
/// tool call become output items in the order they arrive (`response.output_item.added`, their
/// deltas, then their `…done` events before the next item opens); `[DONE]` closes the last item
/// and ends with `response.completed` (or `response.incomplete` when the output limit cut the
/// answer), carrying every item and the usage.
pub struct ResponsesFromChatStream {
    id: String,
    model: String,
    created: i64,
    sequence: u64,
    started: bool,
    open: Option<OpenItem>,
    done_items: Vec<Value>,
    truncated: bool,
    usage: Option<Usage>,
    finished: bool,
}

impl ResponsesFromChatStream {
    pub fn new(client_model: &str, created: i64) -> Self {
        ResponsesFromChatStream {
            id: new_id("resp"),
            model: client_model.to_string(),
            created,
            sequence: 0,
            started: false,
            open: None,
            done_items: Vec::new(),
            truncated: false,
            usage: None,
            finished: false,
        }
    }

    fn emit(&mut self, name: &str, data: Value, out: &mut BytesMut) {
        write_event(name, data, &mut self.sequence, out);
    }

    fn start(&mut self, out: &mut BytesMut) {
        if self.started {
            return;
        }
        self.started = true;
        let response = Value::Object(response_object(
            &self.id,
            &self.model,
            self.created,
            "in_progress",
        ));
        self.emit("response.created", json!({"response": response}), out);
        self.emit("response.in_progress", json!({"response": response}), out);
    }

    fn output_index(&self) -> usize {
        self.done_items.len()
    }

    fn close_item(&mut self, out: &mut BytesMut) {
        let Some(item) = self.open.take() else {
            return;
        };
        let output_index = self.output_index();
        let done = match item {
            OpenItem::Reasoning { id, text } => {
                let part = json!({"type": "summary_text", "text": text});
                self.emit("response.reasoning_summary_text.done", json!({"item_id": id, "output_index": output_index, "summary_index": 0, "text": text}), out);
                self.emit("response.reasoning_summary_part.done", json!({"item_id": id, "output_index": output_index, "summary_index": 0, "part": part}), out);
                reasoning_item(&id, &text)
            }
            OpenItem::Message { id, text } => {
                let part = json!({"type": "output_text", "text": text, "annotations": []});
                self.emit("response.output_text.done", json!({"item_id": id, "output_index": output_index, "content_index": 0, "text": text}), out);
                self.emit("response.content_part.done", json!({"item_id": id, "output_index": output_index, "content_index": 0, "part": part}), out);
                message_item(&id, &text, "completed")
            }
            OpenItem::Function {
                id,
                call_id,
                name,
                arguments,
                ..
            } => {
                self.emit(
                    "response.function_call_arguments.done",
                    json!({"item_id": id, "output_index": output_index, "arguments": arguments}),
                    out,
                );
                function_item(&id, &call_id, &name, &arguments, "completed")
            }
        };
        self.emit(
            "response.output_item.done",
            json!({"output_index": output_index, "item": done}),
            out,
        );
        self.done_items.push(done);
    }

    fn push_reasoning(&mut self, delta: &str, out: &mut BytesMut) {
        if !matches!(self.open, Some(OpenItem::Reasoning { .. })) {
            self.close_item(out);
            let id = new_id("rs");
            let output_index = self.output_index();
            self.emit("response.output_item.added", json!({"output_index": output_index, "item": {"type": "reasoning", "id": id, "summary": []}}), out);
            self.emit("response.reasoning_summary_part.added", json!({"item_id": id, "output_index": output_index, "summary_index": 0, "part": {"type": "summary_text", "text": ""}}), out);
            self.open = Some(OpenItem::Reasoning {
                id,
                text: String::new(),
            });
        }
        let output_index = self.output_index();
        if let Some(OpenItem::Reasoning { id, text }) = &mut self.open {
            text.push_str(delta);
            let data = json!({"item_id": id, "output_index": output_index, "summary_index": 0, "delta": delta});
            write_event(
                "response.reasoning_summary_text.delta",
                data,
                &mut self.sequence,
                out,
            );
        }
    }

    fn push_text(&mut self, delta: &str, out: &mut BytesMut) {
        if !matches!(self.open, Some(OpenItem::Message { .. })) {
            self.close_item(out);
            let id = new_id("msg");
            let output_index = self.output_index();
            let item = json!({"type": "message", "id": id, "status": "in_progress", "role": "assistant", "content": []});
            self.emit(
                "response.output_item.added",
                json!({"output_index": output_index, "item": item}),
                out,
            );
            self.emit("response.content_part.added", json!({"item_id": id, "output_index": output_index, "content_index": 0, "part": {"type": "output_text", "text": "", "annotations": []}}), out);
            self.open = Some(OpenItem::Message {
                id,
                text: String::new(),
            });
        }
        let output_index = self.output_index();
        if let Some(OpenItem::Message { id, text }) = &mut self.open {
            text.push_str(delta);
            let data = json!({"item_id": id, "output_index": output_index, "content_index": 0, "delta": delta});
            write_event("response.output_text.delta", data, &mut self.sequence, out);
        }
    }

    fn push_tool_call(&mut self, call: &Value, out: &mut BytesMut) {
        let index = call.get("index").and_then(Value::as_u64).unwrap_or(0);
        let same =
            matches!(&self.open, Some(OpenItem::Function { index: open, .. }) if *open == index);
        if !same {
            self.close_item(out);
            let id = new_id("fc");
            let call_id = call.get("id").cloned().unwrap_or(Value::Null);
            let name = call
                .pointer("/function/name")
                .cloned()
                .unwrap_or(Value::Null);
            let output_index = self.output_index();
            let item = function_item(&id, &call_id, &name, "", "in_progress");
            self.emit(
                "response.output_item.added",
                json!({"output_index": output_index, "item": item}),
                out,
            );
            self.open = Some(OpenItem::Function {
                index,
                id,
                call_id,
                name,
                arguments: String::new(),
            });
        }
        let Some(delta) = call
            .pointer("/function/arguments")
            .and_then(Value::as_str)
            .filter(|d| !d.is_empty())
        else {
            return;
        };
        let output_index = self.output_index();
        if let Some(OpenItem::Function { id, arguments, .. }) = &mut self.open {
            arguments.push_str(delta);
            let data = json!({"item_id": id, "output_index": output_index, "delta": delta});
            write_event(
                "response.function_call_arguments.delta",
                data,
                &mut self.sequence,
                out,
            );
        }
    }

    fn finish(&mut self, out: &mut BytesMut) {
        self.start(out);
        self.close_item(out);
        let status = if self.truncated {
            "incomplete"
        } else {
            "completed"
        };
        let mut response = response_object(&self.id, &self.model, self.created, status);
        response.insert(
            "output".into(),
            Value::Array(std::mem::take(&mut self.done_items)),
        );
        response.insert(
            "usage".into(),
            responses_usage(self.usage.unwrap_or_default()),
        );
        if self.truncated {
            response.insert(
                "incomplete_details".into(),
                json!({"reason": "max_output_tokens"}),
            );
        }
        let name = if self.truncated {
            "response.incomplete"
        } else {
            "response.completed"
        };
        self.emit(name, json!({"response": response}), out);
        self.finished = true;
    }
}

impl StreamTranslator for ResponsesFromChatStream {
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
            let code = error
                .get("code")
                .and_then(Value::as_str)
                .unwrap_or("upstream_error");
            error_event(code, &message, self.sequence, out);
            seen.error = Some(message);
            return seen;
        }
        self.start(out);
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
            self.push_reasoning(text, out);
        }
        if let Some(text) = delta
            .get("content")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
        {
            self.push_text(text, out);
        }
        for call in delta
            .get("tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            self.push_tool_call(call, out);
        }
        if choice.get("finish_reason").and_then(Value::as_str) == Some("length") {
            self.truncated = true;
        }
        seen
    }

    fn finished(&self) -> bool {
        self.finished
    }
}

/// Responses' own stream forwarded unchanged to a Responses client, read on the way for usage
/// (in `response.completed`, `response.incomplete` or `response.failed`, which also end the
/// answer), generated text (counted if the stream breaks off first) and errors.
#[derive(Default)]
pub struct ResponsesPassthrough {
    finished: bool,
}

impl StreamTranslator for ResponsesPassthrough {
    fn event(&mut self, raw: &[u8], data: &[u8], out: &mut BytesMut) -> TranslatedEvent {
        out.extend_from_slice(raw);
        let mut seen = TranslatedEvent::default();
        let Ok(event) = serde_json::from_slice::<Value>(data) else {
            return seen;
        };
        match event.get("type").and_then(Value::as_str).unwrap_or("") {
            "response.completed" | "response.incomplete" | "response.failed" => {
                self.finished = true;
                seen.usage = event.pointer("/response/usage").and_then(usage);
                if let Some(message) = event
                    .pointer("/response/error/message")
                    .and_then(Value::as_str)
                {
                    seen.error = Some(message.to_string());
                }
            }
            "error" => {
                seen.error = Some(
                    event
                        .get("message")
                        .and_then(Value::as_str)
                        .unwrap_or("the upstream reported an error")
                        .to_string(),
                );
            }
            kind if kind.ends_with(".delta") => {
                if let Some(delta) = event.get("delta").and_then(Value::as_str) {
                    seen.text.push_str(delta);
                }
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

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn translates_a_responses_request_with_items_tools_and_format() {
        let request = object(json!({
            "model": "claude",
            "instructions": "Be brief.",
            "input": [
                {"role": "user", "content": [
                    {"type": "input_text", "text": "Weather?"},
                    {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "low"}
                ]},
                {"type": "function_call", "call_id": "call_1", "name": "weather", "arguments": "{\"city\":\"Oslo\"}"},
                {"type": "function_call", "call_id": "call_2", "name": "time", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "call_1", "output": "rain"},
                {"type": "function_call_output", "call_id": "call_2", "output": "noon"},
                {"type": "reasoning", "id": "rs_1", "encrypted_content": "xyz", "summary": []}
            ],
            "tools": [{"type": "function", "name": "weather", "parameters": {"type": "object"}, "strict": true}],
            "tool_choice": {"type": "function", "name": "weather"},
            "max_output_tokens": 99,
            "reasoning": {"effort": "low"},
            "text": {"format": {"type": "json_schema", "name": "w", "schema": {"type": "object"}}}
        }));
        let chat = chat_request(&request, "claude-x", true).unwrap();
        assert_eq!(
            chat,
            json!({
                "model": "claude-x",
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": [
                        {"type": "text", "text": "Weather?"},
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}}
                    ]},
                    {"role": "assistant", "content": null, "tool_calls": [
                        {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Oslo\"}"}},
                        {"id": "call_2", "type": "function", "function": {"name": "time", "arguments": "{}"}}
                    ]},
                    {"role": "tool", "tool_call_id": "call_1", "content": "rain"},
                    {"role": "tool", "tool_call_id": "call_2", "content": "noon"}
                ],
                "max_tokens": 99,
                "reasoning_effort": "low",
                "response_format": {"type": "json_schema", "json_schema": {"name": "w", "schema": {"type": "object"}}},
                "tools": [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}, "strict": true}}],
                "tool_choice": {"type": "function", "function": {"name": "weather"}},
                "stream": true,
                "stream_options": {"include_usage": true}
            })
        );
    }

    #[test]
    fn refuses_what_only_openai_has() {
        let hosted = object(json!({"input": "x", "tools": [{"type": "web_search"}]}));
        assert_eq!(
            chat_request(&hosted, "m", false).unwrap_err().param,
            Some("tools")
        );
        let stored = object(json!({"input": "x", "previous_response_id": "resp_1"}));
        assert_eq!(
            chat_request(&stored, "m", false).unwrap_err().param,
            Some("previous_response_id")
        );
        let item = object(json!({"input": [{"type": "computer_call_output"}]}));
        assert!(chat_request(&item, "m", false).is_err());
    }

    #[test]
    fn builds_a_response_from_a_chat_answer() {
        let chat = json!({"id": "c", "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": "Checking.", "reasoning_content": "Hmm.",
            "tool_calls": [{"id": "call_9", "type": "function", "function": {"name": "weather", "arguments": "{}"}}]}}]});
        let usage = Usage {
            prompt_tokens: 10,
            completion_tokens: 4,
            cached_tokens: 2,
            cache_write_tokens: 0,
            units: 0,
        };
        let response = response_from_chat(chat.to_string().as_bytes(), "m", 7, usage).unwrap();
        assert_eq!(response["object"], "response");
        assert_eq!(response["status"], "completed");
        let kinds: Vec<&str> = response["output"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["type"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["reasoning", "message", "function_call"]);
        assert_eq!(response["output"][1]["content"][0]["text"], "Checking.");
        assert_eq!(response["output"][2]["call_id"], "call_9");
        assert_eq!(
            response["usage"]["input_tokens_details"]["cached_tokens"],
            2
        );
        assert_eq!(self::usage(&response["usage"]), Some(usage));
        assert_eq!(generated_text(&response), "Hmm.Checking.weather{}");
    }

    #[test]
    fn streams_chat_chunks_as_response_events() {
        let mut translator = ResponsesFromChatStream::new("m", 7);
        let mut out = BytesMut::new();
        let chunks = [
            r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"content":"lo"}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":""}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{}"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
            r#"{"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":3,"total_tokens":8}}"#,
            "[DONE]",
        ];
        let mut usage = None;
        for chunk in chunks {
            usage = translator
                .event(chunk.as_bytes(), chunk.as_bytes(), &mut out)
                .usage
                .or(usage);
        }
        assert!(translator.finished());
        assert_eq!(
            usage,
            Some(Usage {
                prompt_tokens: 5,
                completion_tokens: 3,
                cache_write_tokens: 0,
                units: 0,
                cached_tokens: 0
            })
        );
        let wire = String::from_utf8(out.to_vec()).unwrap();
        let events: Vec<Value> = wire
            .split("\n\n")
            .filter_map(|e| e.lines().find_map(|l| l.strip_prefix("data: ")))
            .map(|d| serde_json::from_str(d).unwrap())
            .collect();
        let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(
            kinds,
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.output_text.delta",
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.output_item.added",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.done",
                "response.output_item.done",
                "response.completed",
            ]
        );
        let sequence: Vec<u64> = events
            .iter()
            .map(|e| e["sequence_number"].as_u64().unwrap())
            .collect();
        assert_eq!(sequence, (0..14).collect::<Vec<u64>>());
        let done = &events[13]["response"];
        assert_eq!(done["output"][0]["content"][0]["text"], "Hello");
        assert_eq!(done["output"][1]["arguments"], "{}");
        assert_eq!(done["usage"]["output_tokens"], 3);
    }
}
