//! Cohere's v2 API (`type cohere`): `/v2/chat` (server-sent events with Cohere's own event
//! types), `/v2/embed` and `/v2/rerank`.
//!
//! Chat requests arrive as OpenAI chat requests (the relay's pivot). Cohere v2 takes OpenAI's
//! message shapes nearly as they are: system, user (text and image parts), assistant (with tool
//! calls, and a `tool_plan` that carries the reasoning sent back), and tool results. Sampling
//! settings are renamed (`top_p`→`p`, `top_k`→`k`, `stop`→`stop_sequences`), `tool_choice`
//! `required`/`none` become `REQUIRED`/`NONE`, JSON mode and schemas go in `response_format`, and
//! `reasoning_effort` turns thinking on or off. Cohere cannot name the one tool to call or
//! return several choices: those are refused with a 400.
//!
//! Answers: text content, thinking and the tool plan (as `reasoning_content`), tool calls with
//! Cohere's ids, finish reasons (`COMPLETE`, `STOP_SEQUENCE`→`stop`, `MAX_TOKENS`→`length`,
//! `TOOL_CALL`→`tool_calls`), and usage from `billed_units` (what Cohere charges), or from
//! `tokens` when it reports no billed units.

use bytes::BytesMut;
use serde_json::{Map, Value, json};

use super::chat::{self, invalid};
use crate::domain::pricing::Usage;
use crate::protocol::Invalid;
use crate::protocol::openai::{embedding_list, openai_usage};
use crate::protocol::translate::{ChatChunks, StreamTranslator, TranslatedEvent};

/// OpenAI chat request → Cohere `/v2/chat` request.
pub fn chat_request(
    request: &Map<String, Value>,
    upstream_model: &str,
    stream: bool,
) -> Result<Value, Invalid> {
    chat::one_choice(request, "Cohere")?;
    let messages = chat::messages(request)?;
    let mut converted = Vec::with_capacity(messages.len());
    for (position, message) in messages.iter().enumerate() {
        converted.push(message_to_cohere(message, position)?);
    }
    let mut out = Map::new();
    out.insert("model".into(), json!(upstream_model));
    out.insert("messages".into(), Value::Array(converted));
    out.insert("stream".into(), json!(stream));
    if let Some(tools) = request.get("tools").and_then(Value::as_array)
        && !tools.is_empty()
    {
        if tools
            .iter()
            .any(|t| t.get("type").and_then(Value::as_str) != Some("function"))
        {
            return Err(invalid(
                "tools",
                "Cohere channels take function tools only.".into(),
            ));
        }
        out.insert("tools".into(), Value::Array(tools.clone()));
        match request.get("tool_choice").filter(|v| !v.is_null()) {
            None => {}
            Some(Value::String(choice)) if choice == "auto" => {}
            Some(Value::String(choice)) if choice == "required" => {
                out.insert("tool_choice".into(), json!("REQUIRED"));
            }
            Some(Value::String(choice)) if choice == "none" => {
                out.insert("tool_choice".into(), json!("NONE"));
            }
            Some(_) => {
                return Err(invalid(
                    "tool_choice",
                    "Cohere channels cannot name the tool to call; use 'auto', 'required' or 'none'."
                        .into(),
                ));
            }
        }
    }
    for (from, to) in [
        ("temperature", "temperature"),
        ("top_p", "p"),
        ("top_k", "k"),
        ("seed", "seed"),
        ("presence_penalty", "presence_penalty"),
        ("frequency_penalty", "frequency_penalty"),
    ] {
        if let Some(value) = request.get(from).filter(|v| v.is_number()) {
            out.insert(to.into(), value.clone());
        }
    }
    if let Some(max) = chat::max_output_tokens(request) {
        out.insert("max_tokens".into(), max.clone());
    }
    if let Some(stops) = chat::stop_sequences(request) {
        out.insert("stop_sequences".into(), stops);
    }
    if let Some(format) = request.get("response_format").filter(|v| !v.is_null()) {
        match format.get("type").and_then(Value::as_str) {
            Some("json_object") => {
                out.insert("response_format".into(), json!({"type": "json_object"}));
            }
            Some("json_schema") => {
                let schema = format.pointer("/json_schema/schema").ok_or_else(|| {
                    invalid(
                        "response_format",
                        "'response_format.json_schema.schema' is missing.".into(),
                    )
                })?;
                out.insert(
                    "response_format".into(),
                    json!({"type": "json_object", "json_schema": schema}),
                );
            }
            Some("text") | None => {}
            Some(other) => {
                return Err(invalid(
                    "response_format",
                    format!(
                        "'{other}' is not a response_format type (text, json_object, json_schema)."
                    ),
                ));
            }
        }
    }
    if let Some(effort) = request.get("reasoning_effort").and_then(Value::as_str) {
        let thinking = match effort {
            "none" => json!({"type": "disabled"}),
            "minimal" | "low" => json!({"type": "enabled", "token_budget": 1024}),
            "medium" => json!({"type": "enabled", "token_budget": 8192}),
            "high" => json!({"type": "enabled"}),
            other => {
                return Err(invalid(
                    "reasoning_effort",
                    format!(
                        "'{other}' is not a reasoning effort (none, minimal, low, medium, high)."
                    ),
                ));
            }
        };
        out.insert("thinking".into(), thinking);
    }
    for dropped in [
        "logprobs",
        "top_logprobs",
        "logit_bias",
        "parallel_tool_calls",
        "user",
    ] {
        if request.get(dropped).is_some_and(|v| !v.is_null()) {
            tracing::debug!(field = dropped, "dropping a chat field Cohere lacks");
        }
    }
    Ok(Value::Object(out))
}

fn message_to_cohere(message: &Value, position: usize) -> Result<Value, Invalid> {
    let role = message.get("role").and_then(Value::as_str).unwrap_or("");
    let content = message.get("content").filter(|c| !c.is_null());
    match role {
        "system" | "developer" => Ok(json!({"role": "system", "content": text_of(content)})),
        "user" => {
            let content = match content {
                Some(Value::Array(parts)) => {
                    for part in parts {
                        match part.get("type").and_then(Value::as_str) {
                            Some("text" | "image_url") | None => {}
                            Some(other) => {
                                return Err(invalid(
                                    "messages",
                                    format!(
                                        "messages[{position}] has a '{other}' part, which Cohere channels cannot take."
                                    ),
                                ));
                            }
                        }
                    }
                    Value::Array(parts.clone())
                }
                other => json!(text_of(other)),
            };
            Ok(json!({"role": "user", "content": content}))
        }
        "assistant" => {
            let mut assistant = json!({"role": "assistant"});
            let text = text_of(content);
            if !text.is_empty() {
                assistant["content"] = json!(text);
            }
            if let Some(calls) = message
                .get("tool_calls")
                .and_then(Value::as_array)
                .filter(|c| !c.is_empty())
            {
                assistant["tool_calls"] = Value::Array(calls.clone());
                // Cohere plans before it calls tools; the plan came back as reasoning.
                if let Some(plan) = message.get("reasoning_content").and_then(Value::as_str) {
                    assistant["tool_plan"] = json!(plan);
                }
            }
            Ok(assistant)
        }
        "tool" | "function" => {
            let id = message
                .get("tool_call_id")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    invalid(
                        "messages",
                        format!("messages[{position}] is a tool result without 'tool_call_id'."),
                    )
                })?;
            Ok(json!({"role": "tool", "tool_call_id": id, "content": text_of(content)}))
        }
        other => Err(invalid(
            "messages",
            format!("messages[{position}] has an unknown role '{other}'."),
        )),
    }
}

fn text_of(content: Option<&Value>) -> String {
    chat::text_of(content, "\n")
}

fn finish_reason(reason: Option<&str>, called_tools: bool) -> &'static str {
    match reason {
        Some("MAX_TOKENS") => "length",
        Some("TOOL_CALL") => "tool_calls",
        _ if called_tools => "tool_calls",
        _ => "stop",
    }
}

/// Cohere's usage (`billed_units`, else `tokens`) → billing usage.
pub fn usage(usage: &Value) -> Option<Usage> {
    let counts = usage
        .get("billed_units")
        .filter(|b| b.get("input_tokens").is_some() || b.get("output_tokens").is_some())
        .or_else(|| usage.get("tokens"))?;
    let field = |name: &str| counts.get(name).and_then(Value::as_f64).unwrap_or(0.0);
    // Cohere reports counts as numbers that may carry a fraction (`12.0`).
    #[allow(clippy::cast_possible_truncation)]
    let whole = |value: f64| value.max(0.0).round() as i64;
    Some(Usage {
        prompt_tokens: whole(field("input_tokens")),
        completion_tokens: whole(field("output_tokens")),
        ..Usage::default()
    })
}

/// Cohere `/v2/chat` answer → OpenAI chat completion, with the usage it reported. None when
/// the body is not a Cohere chat answer.
pub fn chat_response(
    body: &[u8],
    client_model: &str,
    created: i64,
) -> Option<(Value, Option<Usage>)> {
    let answer: Value = serde_json::from_slice(body).ok()?;
    let message = answer.get("message").filter(|m| m.is_object())?;
    let mut text = String::new();
    let mut reasoning = String::new();
    for block in message
        .get("content")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        match block.get("type").and_then(Value::as_str) {
            Some("thinking") => {
                reasoning.push_str(block.get("thinking").and_then(Value::as_str).unwrap_or(""))
            }
            _ => text.push_str(block.get("text").and_then(Value::as_str).unwrap_or("")),
        }
    }
    if let Some(plan) = message.get("tool_plan").and_then(Value::as_str) {
        reasoning.push_str(plan);
    }
    let calls: Vec<Value> = message
        .get("tool_calls")
        .and_then(Value::as_array)
        .map(|calls| {
            calls
                .iter()
                .map(|call| {
                    json!({
                        "id": call.get("id"),
                        "type": "function",
                        "function": {
                            "name": call.pointer("/function/name"),
                            "arguments": call.pointer("/function/arguments").and_then(Value::as_str).unwrap_or("{}"),
                        }
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let mut reply = json!({"role": "assistant", "content": text});
    if !reasoning.is_empty() {
        reply["reasoning_content"] = json!(reasoning);
    }
    let finish = finish_reason(
        answer.get("finish_reason").and_then(Value::as_str),
        !calls.is_empty(),
    );
    if !calls.is_empty() {
        reply["tool_calls"] = Value::Array(calls);
    }
    let usage = answer.get("usage").and_then(usage);
    let id = answer.get("id").and_then(Value::as_str).map_or_else(
        || format!("chatcmpl-{}", uuid::Uuid::new_v4().simple()),
        |id| format!("chatcmpl-{id}"),
    );
    let mut completion = json!({
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": client_model,
        "choices": [{"index": 0, "message": reply, "finish_reason": finish, "logprobs": null}],
    });
    if let Some(usage) = usage {
        completion["usage"] = openai_usage(usage);
    }
    Some((completion, usage))
}

/// OpenAI embeddings request → Cohere `/v2/embed` request (documents to be searched, floats).
pub fn embedding_request(
    request: &Map<String, Value>,
    upstream_model: &str,
) -> Result<Value, Invalid> {
    let texts = match request.get("input") {
        Some(Value::String(text)) => json!([text]),
        Some(Value::Array(items)) if !items.is_empty() && items.iter().all(Value::is_string) => {
            Value::Array(items.clone())
        }
        _ => {
            return Err(invalid(
                "input",
                "Cohere channels embed text: 'input' must be a string or a non-empty list of strings (not token ids).".into(),
            ));
        }
    };
    let mut out = json!({
        "model": upstream_model,
        "texts": texts,
        "input_type": "search_document",
        "embedding_types": ["float"],
    });
    if let Some(dimensions) = request.get("dimensions").filter(|v| v.is_u64()) {
        out["output_dimension"] = dimensions.clone();
    }
    Ok(out)
}

/// Cohere `/v2/embed` answer → OpenAI embeddings list, with the tokens Cohere billed (the
/// prompt estimate when it billed none).
pub fn embedding_response(
    body: &[u8],
    client_model: &str,
    prompt_estimate: i64,
    base64: bool,
) -> Option<(Value, i64)> {
    let answer: Value = serde_json::from_slice(body).ok()?;
    let vectors: Vec<&[Value]> = answer
        .pointer("/embeddings/float")?
        .as_array()?
        .iter()
        .map(|v| v.as_array().map(Vec::as_slice))
        .collect::<Option<_>>()?;
    #[allow(clippy::cast_possible_truncation)]
    let tokens = answer
        .pointer("/meta/billed_units/input_tokens")
        .and_then(Value::as_f64)
        .map_or(prompt_estimate, |t| t.max(0.0).round() as i64);
    Some((
        embedding_list(&vectors, client_model, tokens, base64)?,
        tokens,
    ))
}

/// A rerank request (Cohere's or Jina's shape) → Cohere `/v2/rerank`: documents as strings
/// (v2 takes no objects), and whether the client wants the documents back (v2 never returns
/// them, so the relay adds them).
pub fn rerank_request(
    request: &Map<String, Value>,
    upstream_model: &str,
) -> Result<(Value, bool), Invalid> {
    let query = request
        .get("query")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("query", "'query' must be a string.".into()))?;
    let documents = rerank_documents(request)?;
    let mut out = json!({"model": upstream_model, "query": query, "documents": documents});
    for name in ["top_n", "max_tokens_per_doc"] {
        if let Some(value) = request.get(name).filter(|v| v.is_u64()) {
            out[name] = value.clone();
        }
    }
    let return_documents = request
        .get("return_documents")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Ok((out, return_documents))
}

/// The documents of a rerank request as strings: each a string or an object with `text`.
pub fn rerank_documents(request: &Map<String, Value>) -> Result<Vec<String>, Invalid> {
    let refuse = || {
        invalid(
            "documents",
            "'documents' must be a non-empty list of strings or of objects with 'text'.".into(),
        )
    };
    let documents = request
        .get("documents")
        .and_then(Value::as_array)
        .filter(|d| !d.is_empty())
        .ok_or_else(refuse)?;
    documents
        .iter()
        .map(|document| match document {
            Value::String(text) => Some(text.clone()),
            other => other
                .get("text")
                .and_then(Value::as_str)
                .map(str::to_string),
        })
        .collect::<Option<Vec<_>>>()
        .ok_or_else(refuse)
}

/// Cohere `/v2/rerank` answer → the client's rerank answer (Cohere's shape, which Jina's
/// clients read too), with each document added when asked for, and the search units billed.
pub fn rerank_response(
    body: &[u8],
    client_model: &str,
    documents: &[String],
    return_documents: bool,
) -> Option<(Value, i64)> {
    let mut answer: Value = serde_json::from_slice(body).ok()?;
    let results = answer.get_mut("results")?.as_array_mut()?;
    if return_documents {
        for result in results.iter_mut() {
            let index = result.get("index").and_then(Value::as_u64)?;
            let text = documents.get(usize::try_from(index).ok()?)?;
            result["document"] = json!({"text": text});
        }
    }
    let units = search_units(&answer).unwrap_or(1);
    answer["model"] = json!(client_model);
    Some((answer, units))
}

/// The search units a rerank answer says were billed (`meta.billed_units.search_units`).
pub fn search_units(answer: &Value) -> Option<i64> {
    #[allow(clippy::cast_possible_truncation)]
    answer
        .pointer("/meta/billed_units/search_units")
        .and_then(Value::as_f64)
        .map(|units| units.max(0.0).round() as i64)
}

/// Cohere's stream (events typed `message-start`, `content-delta`, `tool-plan-delta`,
/// `tool-call-start`, `tool-call-delta`, `message-end`, …) → OpenAI chat-completion chunks.
pub struct ChatStreamFromCohere {
    chunks: ChatChunks,
    include_usage: bool,
    started: bool,
    called_tools: bool,
    finished: bool,
}

impl ChatStreamFromCohere {
    pub fn new(client_model: &str, created: i64, include_usage: bool) -> Self {
        ChatStreamFromCohere {
            chunks: ChatChunks {
                id: format!("chatcmpl-{}", uuid::Uuid::new_v4().simple()),
                model: client_model.to_string(),
                created,
            },
            include_usage,
            started: false,
            called_tools: false,
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

impl StreamTranslator for ChatStreamFromCohere {
    fn event(&mut self, _raw: &[u8], data: &[u8], out: &mut BytesMut) -> TranslatedEvent {
        let mut seen = TranslatedEvent::default();
        let Ok(event) = serde_json::from_slice::<Value>(data) else {
            return seen;
        };
        let message = event.pointer("/delta/message");
        match event.get("type").and_then(Value::as_str) {
            Some("message-start") => {
                if let Some(id) = event.get("id").and_then(Value::as_str) {
                    self.chunks.id = format!("chatcmpl-{id}");
                }
                self.start(out);
            }
            Some("content-delta") => {
                self.start(out);
                let content = message.and_then(|m| m.get("content"));
                if let Some(thinking) = content
                    .and_then(|c| c.get("thinking"))
                    .and_then(Value::as_str)
                    .filter(|t| !t.is_empty())
                {
                    self.chunks
                        .delta(0, json!({"reasoning_content": thinking}), &mut seen, out);
                }
                if let Some(text) = content
                    .and_then(|c| c.get("text"))
                    .and_then(Value::as_str)
                    .filter(|t| !t.is_empty())
                {
                    self.chunks
                        .delta(0, json!({"content": text}), &mut seen, out);
                }
            }
            Some("tool-plan-delta") => {
                self.start(out);
                if let Some(plan) = message
                    .and_then(|m| m.get("tool_plan"))
                    .and_then(Value::as_str)
                    .filter(|p| !p.is_empty())
                {
                    self.chunks
                        .delta(0, json!({"reasoning_content": plan}), &mut seen, out);
                }
            }
            Some(kind @ ("tool-call-start" | "tool-call-delta")) => {
                self.start(out);
                let index = event.get("index").and_then(Value::as_u64).unwrap_or(0);
                let call = message.and_then(|m| m.get("tool_calls"));
                let arguments = call
                    .and_then(|c| c.pointer("/function/arguments"))
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let delta = if kind == "tool-call-start" {
                    self.called_tools = true;
                    let name = call
                        .and_then(|c| c.pointer("/function/name"))
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    json!({"index": index, "id": call.and_then(|c| c.get("id")), "type": "function",
                           "function": {"name": name, "arguments": arguments}})
                } else {
                    json!({"index": index, "function": {"arguments": arguments}})
                };
                self.chunks
                    .delta(0, json!({"tool_calls": [delta]}), &mut seen, out);
            }
            Some("message-end") => {
                self.start(out);
                let delta = event.get("delta");
                let usage = delta.and_then(|d| d.get("usage")).and_then(usage);
                seen.usage = usage;
                let reason = delta
                    .and_then(|d| d.get("finish_reason"))
                    .and_then(Value::as_str);
                if let Some(message) = delta
                    .and_then(|d| d.get("error"))
                    .and_then(Value::as_str)
                    .filter(|_| reason == Some("ERROR"))
                {
                    crate::protocol::openai::error_event(
                        message,
                        "upstream_error",
                        "upstream_error",
                        out,
                    );
                    seen.error = Some(message.to_string());
                    self.finished = true;
                    return seen;
                }
                self.chunks
                    .finish(0, finish_reason(reason, self.called_tools), out);
                self.chunks
                    .end(self.include_usage.then(|| usage.unwrap_or_default()), out);
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
    fn translates_a_chat_request() {
        let body = request(json!({
            "model": "command",
            "messages": [
                {"role": "developer", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "Weather?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}}]},
                {"role": "assistant", "content": null, "reasoning_content": "I will look it up.",
                 "tool_calls": [{"id": "c1", "type": "function",
                                 "function": {"name": "weather", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "sunny"}
            ],
            "tools": [{"type": "function", "function": {"name": "weather"}}],
            "tool_choice": "required",
            "top_p": 0.9, "max_tokens": 50, "stop": ["END"],
            "response_format": {"type": "json_schema", "json_schema": {"schema": {"type": "object"}}}
        }));
        assert_eq!(
            chat_request(&body, "command-a-03-2025", false).unwrap(),
            json!({
                "model": "command-a-03-2025",
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": [{"type": "text", "text": "Weather?"},
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}}]},
                    {"role": "assistant", "tool_plan": "I will look it up.",
                     "tool_calls": [{"id": "c1", "type": "function",
                                     "function": {"name": "weather", "arguments": "{}"}}]},
                    {"role": "tool", "tool_call_id": "c1", "content": "sunny"}
                ],
                "stream": false,
                "tools": [{"type": "function", "function": {"name": "weather"}}],
                "tool_choice": "REQUIRED",
                "p": 0.9, "max_tokens": 50, "stop_sequences": ["END"],
                "response_format": {"type": "json_object", "json_schema": {"type": "object"}}
            })
        );
        let named = request(
            json!({"messages": [], "tools": [{"type": "function", "function": {"name": "f"}}],
            "tool_choice": {"type": "function", "function": {"name": "f"}}}),
        );
        assert_eq!(
            chat_request(&named, "m", false).unwrap_err().param,
            "tool_choice"
        );
    }

    #[test]
    fn translates_an_answer() {
        let body = br#"{"id":"abc","finish_reason":"TOOL_CALL","message":{"role":"assistant",
            "tool_plan":"Checking the weather.","tool_calls":[{"id":"weather_1","type":"function",
            "function":{"name":"weather","arguments":"{\"city\":\"Oslo\"}"}}]},
            "usage":{"billed_units":{"input_tokens":31,"output_tokens":9},"tokens":{"input_tokens":520,"output_tokens":40}}}"#;
        let (completion, usage) = chat_response(body, "command", 5).unwrap();
        assert_eq!(
            usage.map(|u| (u.prompt_tokens, u.completion_tokens)),
            Some((31, 9))
        );
        assert_eq!(completion["id"], "chatcmpl-abc");
        let message = &completion["choices"][0]["message"];
        assert_eq!(completion["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(message["reasoning_content"], "Checking the weather.");
        assert_eq!(message["tool_calls"][0]["id"], "weather_1");
        assert_eq!(
            message["tool_calls"][0]["function"]["arguments"],
            "{\"city\":\"Oslo\"}"
        );
    }

    #[test]
    fn streams_events_as_chat_chunks() {
        let mut translator = ChatStreamFromCohere::new("command", 1, true);
        let mut out = BytesMut::new();
        let events = [
            json!({"type": "message-start", "id": "m1", "delta": {"message": {"role": "assistant"}}}),
            json!({"type": "tool-plan-delta", "delta": {"message": {"tool_plan": "Plan."}}}),
            json!({"type": "tool-call-start", "index": 0, "delta": {"message": {"tool_calls":
                {"id": "t1", "type": "function", "function": {"name": "weather", "arguments": ""}}}}}),
            json!({"type": "tool-call-delta", "index": 0, "delta": {"message": {"tool_calls":
                {"function": {"arguments": "{\"city\":"}}}}}),
            json!({"type": "tool-call-delta", "index": 0, "delta": {"message": {"tool_calls":
                {"function": {"arguments": "\"Oslo\"}"}}}}}),
            json!({"type": "tool-call-end", "index": 0}),
            json!({"type": "message-end", "delta": {"finish_reason": "TOOL_CALL",
                "usage": {"billed_units": {"input_tokens": 10, "output_tokens": 4}}}}),
        ];
        let mut last = TranslatedEvent::default();
        for event in &events {
            let data = event.to_string();
            last = translator.event(data.as_bytes(), data.as_bytes(), &mut out);
        }
        assert!(translator.finished());
        assert_eq!(last.usage.map(|u| u.prompt_tokens), Some(10));
        let text = String::from_utf8(out.to_vec()).unwrap();
        assert!(text.contains(r#""id":"chatcmpl-m1""#), "{text}");
        assert!(text.contains(r#""reasoning_content":"Plan.""#), "{text}");
        assert!(text.contains(r#""finish_reason":"tool_calls""#), "{text}");
        assert!(text.ends_with("data: [DONE]\n\n"));
    }

    #[test]
    fn translates_rerank() {
        let body = request(
            json!({"model": "r", "query": "q", "documents": ["a", {"text": "b"}],
                                  "top_n": 1, "return_documents": true}),
        );
        let (upstream, return_documents) = rerank_request(&body, "rerank-v3.5").unwrap();
        assert_eq!(
            upstream,
            json!({"model": "rerank-v3.5", "query": "q", "documents": ["a", "b"], "top_n": 1})
        );
        assert!(return_documents);
        let answer = br#"{"id":"x","results":[{"index":1,"relevance_score":0.9}],"meta":{"billed_units":{"search_units":1}}}"#;
        let (client, units) =
            rerank_response(answer, "r", &["a".into(), "b".into()], true).unwrap();
        assert_eq!(units, 1);
        assert_eq!(client["results"][0]["document"], json!({"text": "b"}));
        assert!(rerank_request(&request(json!({"query": "q", "documents": [1]})), "m").is_err());
    }
}
