//! Ollama's native API (`type ollama`): `POST /api/chat` with newline-delimited JSON streams,
//! `POST /api/embed`, and `GET /api/tags` for the model list.
//!
//! Requests arrive as OpenAI chat requests (the relay's pivot) and are rewritten: system and
//! developer messages become system messages; user text parts join into one content string and
//! data-URL images travel base64 in `images` (Ollama fetches nothing itself, so a link is
//! refused); assistant tool calls carry their arguments as objects; tool results name the
//! function they answer (`tool_name`), found through the call's id. Sampling settings,
//! `max_tokens` (`num_predict`) and stop sequences go in `options`; JSON mode and schemas in
//! `format`; `reasoning_effort` in `think`. Ollama cannot force a tool call or return several
//! choices, so `tool_choice` `required` or a named function and `n` > 1 are refused.
//!
//! Answers: `message.thinking` becomes `reasoning_content`, tool calls get ids (Ollama sends
//! none), `done_reason` `length` maps to `length`, and `prompt_eval_count` / `eval_count`
//! are the usage. A stream is one JSON object per line; tool calls arrive whole; the line with
//! `done: true` ends it with the usage.

use bytes::BytesMut;
use serde_json::{Map, Value, json};

use super::chat::{self, invalid};
use crate::domain::pricing::Usage;
use crate::protocol::Invalid;
use crate::protocol::openai::{embedding_list, openai_usage};
use crate::protocol::translate::{ChatChunks, StreamTranslator, TranslatedEvent};

/// OpenAI chat request → Ollama `/api/chat` request.
pub fn chat_request(
    request: &Map<String, Value>,
    upstream_model: &str,
    stream: bool,
) -> Result<Value, Invalid> {
    chat::one_choice(request, "Ollama")?;
    let messages = chat::messages(request)?;
    // Tool results name the function they answer; OpenAI's carry only the call's id.
    let mut call_names: Vec<(String, String)> = Vec::new();
    let mut out_messages = Vec::with_capacity(messages.len());
    for (position, message) in messages.iter().enumerate() {
        let role = message.get("role").and_then(Value::as_str).unwrap_or("");
        let converted = match role {
            "system" | "developer" => {
                let (text, _) = content_parts(message.get("content"), position, false)?;
                json!({"role": "system", "content": text})
            }
            "user" => {
                let (text, images) = content_parts(message.get("content"), position, true)?;
                let mut user = json!({"role": "user", "content": text});
                if !images.is_empty() {
                    user["images"] = Value::Array(images);
                }
                user
            }
            "assistant" => assistant_message(message, position, &mut call_names)?,
            "tool" | "function" => tool_message(message, position, &call_names)?,
            other => {
                return Err(invalid(
                    "messages",
                    format!("messages[{position}] has an unknown role '{other}'."),
                ));
            }
        };
        out_messages.push(converted);
    }
    let mut out = Map::new();
    out.insert("model".into(), json!(upstream_model));
    out.insert("messages".into(), Value::Array(out_messages));
    out.insert("stream".into(), json!(stream));
    let tool_choice = request.get("tool_choice").filter(|v| !v.is_null());
    let tools_off = tool_choice.and_then(Value::as_str) == Some("none");
    if let Some(tools) = request.get("tools").and_then(Value::as_array)
        && !tools.is_empty()
        && !tools_off
    {
        match tool_choice {
            None => {}
            Some(Value::String(choice)) if choice == "auto" => {}
            Some(_) => {
                return Err(invalid(
                    "tool_choice",
                    "Ollama channels cannot force a tool call; use 'auto' or 'none'.".into(),
                ));
            }
        }
        let mut declared = Vec::with_capacity(tools.len());
        for tool in tools {
            if tool.get("type").and_then(Value::as_str) != Some("function") {
                return Err(invalid(
                    "tools",
                    "Ollama channels take function tools only.".into(),
                ));
            }
            declared.push(json!({"type": "function", "function": tool.get("function")}));
        }
        out.insert("tools".into(), Value::Array(declared));
    }
    if let Some(format) = response_format(request.get("response_format"))? {
        out.insert("format".into(), format);
    }
    if let Some(effort) = request.get("reasoning_effort").and_then(Value::as_str) {
        let think = match effort {
            "none" => json!(false),
            "minimal" | "low" => json!("low"),
            "medium" | "high" => json!(effort),
            other => {
                return Err(invalid(
                    "reasoning_effort",
                    format!(
                        "'{other}' is not a reasoning effort (none, minimal, low, medium, high)."
                    ),
                ));
            }
        };
        out.insert("think".into(), think);
    }
    let options = options(request);
    if !options.is_empty() {
        out.insert("options".into(), Value::Object(options));
    }
    for dropped in [
        "logprobs",
        "top_logprobs",
        "logit_bias",
        "parallel_tool_calls",
        "user",
    ] {
        if request.get(dropped).is_some_and(|v| !v.is_null()) {
            tracing::debug!(field = dropped, "dropping a chat field Ollama lacks");
        }
    }
    Ok(Value::Object(out))
}

fn options(request: &Map<String, Value>) -> Map<String, Value> {
    let mut options = Map::new();
    for name in [
        "temperature",
        "top_p",
        "top_k",
        "seed",
        "presence_penalty",
        "frequency_penalty",
    ] {
        if let Some(value) = request.get(name).filter(|v| v.is_number()) {
            options.insert(name.into(), value.clone());
        }
    }
    if let Some(max) = chat::max_output_tokens(request) {
        options.insert("num_predict".into(), max.clone());
    }
    if let Some(stops) = chat::stop_sequences(request) {
        options.insert("stop".into(), stops);
    }
    options
}

/// `response_format` → Ollama's `format`: `"json"` for JSON mode, the schema itself for a
/// structured answer.
fn response_format(format: Option<&Value>) -> Result<Option<Value>, Invalid> {
    let Some(format) = format.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    match format.get("type").and_then(Value::as_str) {
        Some("json_object") => Ok(Some(json!("json"))),
        Some("json_schema") => format
            .pointer("/json_schema/schema")
            .cloned()
            .map(Some)
            .ok_or_else(|| {
                invalid(
                    "response_format",
                    "'response_format.json_schema.schema' is missing.".into(),
                )
            }),
        Some("text") | None => Ok(None),
        Some(other) => Err(invalid(
            "response_format",
            format!("'{other}' is not a response_format type (text, json_object, json_schema)."),
        )),
    }
}

/// A message's text (parts joined) and, where allowed, its images as base64.
fn content_parts(
    content: Option<&Value>,
    position: usize,
    images_allowed: bool,
) -> Result<(String, Vec<Value>), Invalid> {
    let parts = match content {
        None | Some(Value::Null) => return Ok((String::new(), Vec::new())),
        Some(Value::String(text)) => return Ok((text.clone(), Vec::new())),
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
    let mut texts = Vec::new();
    let mut images = Vec::new();
    for part in parts {
        match part.get("type").and_then(Value::as_str) {
            Some("text") => {
                if let Some(text) = part.get("text").and_then(Value::as_str) {
                    texts.push(text);
                }
            }
            Some("image_url") if images_allowed => {
                let url = part
                    .pointer("/image_url/url")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                images.push(json!(image_data(url, position)?));
            }
            Some(other) => {
                return Err(invalid(
                    "messages",
                    format!(
                        "messages[{position}] has a '{other}' part, which Ollama channels cannot take here."
                    ),
                ));
            }
            None => {}
        }
    }
    Ok((texts.join("\n"), images))
}

/// The base64 payload of a data URL: Ollama takes images inline only.
fn image_data(url: &str, position: usize) -> Result<&str, Invalid> {
    url.strip_prefix("data:")
        .and_then(|rest| rest.split_once(";base64,"))
        .map(|(_, data)| data)
        .ok_or_else(|| {
            invalid(
                "messages",
                format!(
                    "messages[{position}] has an image link; Ollama channels take images as data URLs (data:image/png;base64,…)."
                ),
            )
        })
}

fn assistant_message(
    message: &Value,
    position: usize,
    call_names: &mut Vec<(String, String)>,
) -> Result<Value, Invalid> {
    let (text, _) = content_parts(message.get("content"), position, false)?;
    let mut assistant = json!({"role": "assistant", "content": text});
    if let Some(thinking) = message.get("reasoning_content").and_then(Value::as_str) {
        assistant["thinking"] = json!(thinking);
    }
    let calls = message
        .get("tool_calls")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    if !calls.is_empty() {
        let mut converted = Vec::with_capacity(calls.len());
        for call in calls {
            let name = call
                .pointer("/function/name")
                .and_then(Value::as_str)
                .unwrap_or("");
            let arguments = chat::tool_call_input(call, position)?;
            if let Some(id) = call.get("id").and_then(Value::as_str) {
                call_names.push((id.to_string(), name.to_string()));
            }
            converted.push(json!({"function": {"name": name, "arguments": arguments}}));
        }
        assistant["tool_calls"] = Value::Array(converted);
    }
    Ok(assistant)
}

fn tool_message(
    message: &Value,
    position: usize,
    call_names: &[(String, String)],
) -> Result<Value, Invalid> {
    let name = chat::answered_function(message, position, call_names)?;
    let (text, _) = content_parts(message.get("content"), position, false)?;
    Ok(json!({"role": "tool", "content": text, "tool_name": name}))
}

/// Ollama's tool calls → OpenAI's, with fresh ids (Ollama's carry none) and the arguments as a
/// JSON string.
fn tool_calls(message: &Value, first_index: usize) -> Vec<Value> {
    message
        .get("tool_calls")
        .and_then(Value::as_array)
        .map(|calls| {
            calls
                .iter()
                .enumerate()
                .map(|(offset, call)| {
                    let arguments = call
                        .pointer("/function/arguments")
                        .map_or_else(|| "{}".to_string(), Value::to_string);
                    json!({
                        "index": first_index + offset,
                        "id": format!("call_{}", uuid::Uuid::new_v4().simple()),
                        "type": "function",
                        "function": {
                            "name": call.pointer("/function/name").and_then(Value::as_str).unwrap_or(""),
                            "arguments": arguments,
                        }
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

fn finish_reason(done_reason: Option<&str>, called_tools: bool) -> &'static str {
    match done_reason {
        Some("length") => "length",
        _ if called_tools => "tool_calls",
        _ => "stop",
    }
}

/// Ollama's token counts → billing usage; None when the answer carries none.
pub fn usage(answer: &Value) -> Option<Usage> {
    let prompt = answer.get("prompt_eval_count").and_then(Value::as_i64);
    let completion = answer.get("eval_count").and_then(Value::as_i64);
    if prompt.is_none() && completion.is_none() {
        return None;
    }
    Some(Usage {
        prompt_tokens: prompt.unwrap_or(0).max(0),
        completion_tokens: completion.unwrap_or(0).max(0),
        ..Usage::default()
    })
}

/// Ollama `/api/chat` answer → OpenAI chat completion, with the usage it reported. None when
/// the body is not an Ollama chat answer.
pub fn chat_response(
    body: &[u8],
    client_model: &str,
    created: i64,
) -> Option<(Value, Option<Usage>)> {
    let answer: Value = serde_json::from_slice(body).ok()?;
    let message = answer.get("message").filter(|m| m.is_object())?;
    let text = message.get("content").and_then(Value::as_str).unwrap_or("");
    let calls = tool_calls(message, 0);
    let mut reply = json!({"role": "assistant", "content": text});
    if let Some(thinking) = message
        .get("thinking")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
    {
        reply["reasoning_content"] = json!(thinking);
    }
    let finish = finish_reason(
        answer.get("done_reason").and_then(Value::as_str),
        !calls.is_empty(),
    );
    if !calls.is_empty() {
        reply["tool_calls"] = Value::Array(calls);
    }
    let usage = usage(&answer);
    let mut completion = json!({
        "id": format!("chatcmpl-{}", uuid::Uuid::new_v4().simple()),
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

/// OpenAI embeddings request → Ollama `/api/embed` request.
pub fn embedding_request(
    request: &Map<String, Value>,
    upstream_model: &str,
) -> Result<Value, Invalid> {
    let input = match request.get("input") {
        Some(text @ Value::String(_)) => text.clone(),
        Some(Value::Array(items)) if !items.is_empty() && items.iter().all(Value::is_string) => {
            Value::Array(items.clone())
        }
        _ => {
            return Err(invalid(
                "input",
                "Ollama channels embed text: 'input' must be a string or a non-empty list of strings (not token ids).".into(),
            ));
        }
    };
    let mut out = json!({"model": upstream_model, "input": input});
    if let Some(dimensions) = request.get("dimensions").filter(|v| v.is_u64()) {
        out["dimensions"] = dimensions.clone();
    }
    Ok(out)
}

/// Ollama `/api/embed` answer → OpenAI embeddings list, with the tokens it counted (the
/// prompt estimate when it counted none).
pub fn embedding_response(
    body: &[u8],
    client_model: &str,
    prompt_estimate: i64,
    base64: bool,
) -> Option<(Value, i64)> {
    let answer: Value = serde_json::from_slice(body).ok()?;
    let vectors: Vec<&[Value]> = answer
        .get("embeddings")?
        .as_array()?
        .iter()
        .map(|v| v.as_array().map(Vec::as_slice))
        .collect::<Option<_>>()?;
    let tokens = answer
        .get("prompt_eval_count")
        .and_then(Value::as_i64)
        .unwrap_or(prompt_estimate);
    Some((
        embedding_list(&vectors, client_model, tokens, base64)?,
        tokens,
    ))
}

/// Ollama's stream (one JSON object per line) → OpenAI chat-completion chunks.
pub struct ChatStreamFromOllama {
    chunks: ChatChunks,
    include_usage: bool,
    started: bool,
    tool_calls: usize,
    finished: bool,
}

impl ChatStreamFromOllama {
    pub fn new(client_model: &str, created: i64, include_usage: bool) -> Self {
        ChatStreamFromOllama {
            chunks: ChatChunks {
                id: format!("chatcmpl-{}", uuid::Uuid::new_v4().simple()),
                model: client_model.to_string(),
                created,
            },
            include_usage,
            started: false,
            tool_calls: 0,
            finished: false,
        }
    }
}

impl StreamTranslator for ChatStreamFromOllama {
    fn event(&mut self, _raw: &[u8], data: &[u8], out: &mut BytesMut) -> TranslatedEvent {
        let mut seen = TranslatedEvent::default();
        let Ok(line) = serde_json::from_slice::<Value>(data) else {
            return seen;
        };
        if let Some(error) = line.get("error") {
            let message = error
                .as_str()
                .unwrap_or("the upstream reported an error")
                .to_string();
            crate::protocol::openai::error_event(&message, "upstream_error", "upstream_error", out);
            seen.error = Some(message);
            return seen;
        }
        if !self.started {
            self.chunks.role(0, out);
            self.started = true;
        }
        if let Some(message) = line.get("message") {
            if let Some(thinking) = message
                .get("thinking")
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
            {
                self.chunks
                    .delta(0, json!({"reasoning_content": thinking}), &mut seen, out);
            }
            if let Some(text) = message
                .get("content")
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
            {
                self.chunks
                    .delta(0, json!({"content": text}), &mut seen, out);
            }
            let calls = tool_calls(message, self.tool_calls);
            if !calls.is_empty() {
                self.tool_calls += calls.len();
                self.chunks
                    .delta(0, json!({"tool_calls": calls}), &mut seen, out);
            }
        }
        if line.get("done").and_then(Value::as_bool) == Some(true) {
            let usage = usage(&line);
            seen.usage = usage;
            let finish = finish_reason(
                line.get("done_reason").and_then(Value::as_str),
                self.tool_calls > 0,
            );
            self.chunks.finish(0, finish, out);
            self.chunks
                .end(self.include_usage.then(|| usage.unwrap_or_default()), out);
            self.finished = true;
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
    use base64::Engine;

    fn request(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn translates_a_chat_request_with_images_tools_and_results() {
        let body = request(json!({
            "model": "llama",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
                ]},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_a", "type": "function",
                     "function": {"name": "lookup", "arguments": "{\"q\":\"cat\"}"}}
                ]},
                {"role": "tool", "tool_call_id": "call_a", "content": "a cat"}
            ],
            "tools": [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}],
            "tool_choice": "auto",
            "temperature": 0.2,
            "max_tokens": 100,
            "stop": "END",
            "response_format": {"type": "json_object"},
            "reasoning_effort": "high"
        }));
        assert_eq!(
            chat_request(&body, "llama3.2:3b", true).unwrap(),
            json!({
                "model": "llama3.2:3b",
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "What is this?", "images": ["iVBORw0KGgo="]},
                    {"role": "assistant", "content": "",
                     "tool_calls": [{"function": {"name": "lookup", "arguments": {"q": "cat"}}}]},
                    {"role": "tool", "content": "a cat", "tool_name": "lookup"}
                ],
                "stream": true,
                "tools": [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}],
                "format": "json",
                "think": "high",
                "options": {"temperature": 0.2, "num_predict": 100, "stop": ["END"]}
            })
        );
    }

    #[test]
    fn refuses_what_ollama_cannot_do() {
        let link = request(json!({"messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}]}));
        let error = chat_request(&link, "m", false).unwrap_err();
        assert!(error.message.contains("data URLs"), "{}", error.message);
        let forced = request(json!({"messages": [{"role": "user", "content": "x"}],
            "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "required"}));
        assert_eq!(
            chat_request(&forced, "m", false).unwrap_err().param,
            "tool_choice"
        );
        let several = request(json!({"messages": [], "n": 2}));
        assert!(chat_request(&several, "m", false).is_err());
        let orphan =
            request(json!({"messages": [{"role": "tool", "tool_call_id": "x", "content": "y"}]}));
        assert!(chat_request(&orphan, "m", false).is_err());
        // tool_choice none leaves the tools out instead.
        let off = request(json!({"messages": [{"role": "user", "content": "x"}],
            "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "none"}));
        assert!(
            chat_request(&off, "m", false)
                .unwrap()
                .get("tools")
                .is_none()
        );
    }

    #[test]
    fn translates_an_answer_with_thinking_and_tool_calls() {
        let body = br#"{"model":"qwen3","created_at":"2026-01-01T00:00:00Z",
            "message":{"role":"assistant","content":"","thinking":"Need the weather.",
                "tool_calls":[{"function":{"name":"weather","arguments":{"city":"Oslo"}}}]},
            "done":true,"done_reason":"stop","prompt_eval_count":26,"eval_count":12}"#;
        let (completion, usage) = chat_response(body, "qwen", 1_700_000_000).unwrap();
        assert_eq!(
            usage,
            Some(Usage {
                prompt_tokens: 26,
                completion_tokens: 12,
                ..Usage::default()
            })
        );
        let choice = &completion["choices"][0];
        assert_eq!(choice["finish_reason"], "tool_calls");
        assert_eq!(choice["message"]["reasoning_content"], "Need the weather.");
        let call = &choice["message"]["tool_calls"][0];
        assert_eq!(call["function"]["name"], "weather");
        assert_eq!(call["function"]["arguments"], "{\"city\":\"Oslo\"}");
        assert!(call["id"].as_str().unwrap().starts_with("call_"));
        assert_eq!(completion["usage"]["total_tokens"], 38);
        assert!(chat_response(br#"{"error":"model not found"}"#, "m", 0).is_none());
        let cut = br#"{"message":{"role":"assistant","content":"Once upon"},"done":true,"done_reason":"length","eval_count":2}"#;
        let (completion, _) = chat_response(cut, "m", 0).unwrap();
        assert_eq!(completion["choices"][0]["finish_reason"], "length");
    }

    #[test]
    fn streams_lines_as_chat_chunks() {
        let mut translator = ChatStreamFromOllama::new("qwen", 7, true);
        let mut out = BytesMut::new();
        let lines = [
            r#"{"message":{"role":"assistant","content":"","thinking":"Hm."},"done":false}"#,
            r#"{"message":{"role":"assistant","content":"Hi"},"done":false}"#,
            r#"{"message":{"role":"assistant","content":"","tool_calls":[{"function":{"name":"f","arguments":{}}}]},"done":false}"#,
            r#"{"message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","prompt_eval_count":5,"eval_count":3}"#,
        ];
        let mut last = TranslatedEvent::default();
        for line in lines {
            last = translator.event(line.as_bytes(), line.as_bytes(), &mut out);
        }
        assert!(translator.finished());
        assert_eq!(
            last.usage.map(|u| (u.prompt_tokens, u.completion_tokens)),
            Some((5, 3))
        );
        let text = String::from_utf8(out.to_vec()).unwrap();
        let chunks: Vec<Value> = text
            .split("\n\n")
            .filter_map(|e| e.strip_prefix("data: "))
            .filter(|d| *d != "[DONE]")
            .map(|d| serde_json::from_str(d).unwrap())
            .collect();
        assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
        assert_eq!(chunks[1]["choices"][0]["delta"]["reasoning_content"], "Hm.");
        assert_eq!(chunks[2]["choices"][0]["delta"]["content"], "Hi");
        assert_eq!(
            chunks[3]["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"],
            "{}"
        );
        assert_eq!(chunks[4]["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(chunks[5]["usage"]["prompt_tokens"], 5);
        assert!(text.ends_with("data: [DONE]\n\n"));
    }

    #[test]
    fn translates_embeddings() {
        let body = request(json!({"input": ["a", "b"], "dimensions": 2}));
        assert_eq!(
            embedding_request(&body, "nomic-embed-text").unwrap(),
            json!({"model": "nomic-embed-text", "input": ["a", "b"], "dimensions": 2})
        );
        assert!(embedding_request(&request(json!({"input": [1, 2]})), "m").is_err());
        let answer =
            br#"{"model":"nomic","embeddings":[[0.5,-1.0],[0.25,2.0]],"prompt_eval_count":4}"#;
        let (list, tokens) = embedding_response(answer, "embed", 9, false).unwrap();
        assert_eq!(tokens, 4);
        assert_eq!(list["data"][1]["embedding"], json!([0.25, 2.0]));
        assert_eq!(list["usage"]["prompt_tokens"], 4);
        let (encoded, _) = embedding_response(answer, "embed", 9, true).unwrap();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded["data"][0]["embedding"].as_str().unwrap())
            .unwrap();
        assert_eq!(
            bytes,
            [0.5f32.to_le_bytes(), (-1.0f32).to_le_bytes()].concat()
        );
    }
}
