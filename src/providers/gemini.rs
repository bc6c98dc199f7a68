//! Google's Gemini API (AI Studio, `generativelanguage.googleapis.com/v1beta`) behind the OpenAI
//! chat-completions and embeddings protocols.
//!
//! Requests: system and developer messages become `systemInstruction`; user, assistant and tool
//! messages become alternating `user`/`model` turns (tool results are `functionResponse` parts
//! named after the call they answer); images, audio and files given as data URLs travel inline,
//! other URLs as `fileData`; tools become function declarations with their JSON Schema as it is
//! (`parametersJsonSchema`, so no schema keyword is lost); tool choice, stop sequences, sampling
//! parameters, JSON mode and reasoning effort are renamed into `generationConfig`.
//!
//! Gemini 3 signs its function calls (`thoughtSignature`) and refuses a conversation that
//! replays a call without its signature. OpenAI clients cannot carry extra fields on a tool
//! call, so the signature travels inside the tool call's id (`gts_…`) and is restored from it
//! when the client sends the conversation back; a call with no signature gets Google's
//! documented placeholder instead.
//!
//! Answers: text, thoughts (as `reasoning_content`) and function calls become an OpenAI message
//! per candidate; finish reasons are mapped; usage counts thoughts as output, as Google bills
//! them. A prompt Gemini blocks outright is reported as an error, not as an empty answer.
//! Streams (`streamGenerateContent?alt=sse`) are translated chunk by chunk by
//! [`ChatStreamFromGemini`].

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bytes::BytesMut;
use serde_json::{Map, Value, json};

use super::chat::{self, invalid};
use crate::domain::pricing::Usage;
use crate::protocol::Invalid;
use crate::protocol::openai::openai_usage;
use crate::protocol::translate::{ChatChunks, StreamTranslator, TranslatedEvent};

/// Google's placeholder for a function call whose signature is unknown (a conversation begun
/// on another model, or a client that rewrote the call's id).
const UNKNOWN_SIGNATURE: &str = "skip_thought_signature_validator";
/// Marks a tool-call id that carries a Gemini thought signature.
const SIGNED_ID_PREFIX: &str = "gts_";

/// The path under the channel's base URL that serves a request for `model`.
pub fn method_path(model: &str, method: &str) -> String {
    let model = model.strip_prefix("models/").unwrap_or(model);
    let mut path = String::with_capacity(model.len() + method.len() + 2);
    path.push('/');
    for c in model.chars() {
        // A model id is letters, digits and `-._`; anything else must not change the path.
        if c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '@') {
            path.push(c);
        } else {
            let mut buffer = [0u8; 4];
            for byte in c.encode_utf8(&mut buffer).bytes() {
                path.push_str(&format!("%{byte:02X}"));
            }
        }
    }
    path.push(':');
    path.push_str(method);
    path
}

/// OpenAI chat request → Gemini `generateContent` request.
pub fn chat_request(request: &Map<String, Value>, upstream_model: &str) -> Result<Value, Invalid> {
    let messages = chat::messages(request)?;

    let mut system: Vec<Value> = Vec::new();
    let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::new();
    // Tool results name the function they answer; OpenAI's carry only the call's id.
    let mut call_names: Vec<(String, String)> = Vec::new();
    for (position, message) in messages.iter().enumerate() {
        let role = message.get("role").and_then(Value::as_str).unwrap_or("");
        let (turn_role, parts) = match role {
            "system" | "developer" => {
                system.extend(text_parts(message.get("content"), position)?);
                continue;
            }
            "user" => ("user", user_parts(message.get("content"), position)?),
            "assistant" => ("model", model_parts(message, position, &mut call_names)?),
            "tool" | "function" => (
                "user",
                vec![function_response(message, position, &call_names)?],
            ),
            other => {
                return Err(invalid(
                    "messages",
                    format!("messages[{position}] has an unknown role '{other}'."),
                ));
            }
        };
        if parts.is_empty() {
            continue;
        }
        match turns.last_mut() {
            Some((last_role, last_parts)) if *last_role == turn_role => last_parts.extend(parts),
            _ => turns.push((turn_role, parts)),
        }
    }
    if turns.is_empty() {
        return Err(invalid(
            "messages",
            "Gemini models need at least one user message besides the system prompt.".into(),
        ));
    }

    let mut out = Map::new();
    out.insert(
        "contents".into(),
        Value::Array(
            turns
                .into_iter()
                .map(|(role, parts)| json!({"role": role, "parts": parts}))
                .collect(),
        ),
    );
    if !system.is_empty() {
        out.insert("systemInstruction".into(), json!({"parts": system}));
    }
    let declarations = function_declarations(request.get("tools"))?;
    let has_tools = !declarations.is_empty();
    if has_tools {
        out.insert(
            "tools".into(),
            json!([{"functionDeclarations": declarations}]),
        );
        if let Some(config) = tool_config(request.get("tool_choice"))? {
            out.insert("toolConfig".into(), config);
        }
    }
    let config = generation_config(request, upstream_model)?;
    if !config.is_empty() {
        out.insert("generationConfig".into(), Value::Object(config));
    }
    for dropped in ["logprobs", "top_logprobs", "logit_bias", "service_tier"] {
        if request.get(dropped).is_some_and(|v| !v.is_null()) {
            tracing::debug!(field = dropped, "dropping a chat field Gemini lacks");
        }
    }
    Ok(Value::Object(out))
}

fn generation_config(
    request: &Map<String, Value>,
    upstream_model: &str,
) -> Result<Map<String, Value>, Invalid> {
    let mut config = Map::new();
    for (from, to) in [
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("top_k", "topK"),
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
        ("seed", "seed"),
        ("n", "candidateCount"),
    ] {
        if let Some(value) = request.get(from).filter(|v| v.is_number()) {
            config.insert(to.into(), value.clone());
        }
    }
    if let Some(max) = chat::max_output_tokens(request) {
        config.insert("maxOutputTokens".into(), max.clone());
    }
    if let Some(stops) = chat::stop_sequences(request) {
        config.insert("stopSequences".into(), stops);
    }
    if let Some(format) = request.get("response_format").filter(|v| !v.is_null()) {
        match format.get("type").and_then(Value::as_str) {
            Some("json_object") => {
                config.insert("responseMimeType".into(), json!("application/json"));
            }
            Some("json_schema") => {
                let schema = format
                    .pointer("/json_schema/schema")
                    .cloned()
                    .ok_or_else(|| {
                        invalid(
                            "response_format",
                            "'response_format.json_schema.schema' is missing.".into(),
                        )
                    })?;
                config.insert("responseMimeType".into(), json!("application/json"));
                config.insert("responseJsonSchema".into(), schema);
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
        config.insert(
            "thinkingConfig".into(),
            thinking_config(effort, upstream_model)?,
        );
    }
    Ok(config)
}

/// OpenAI's reasoning effort → Gemini's thinking configuration: a level on Gemini 3, a token
/// budget on earlier models.
fn thinking_config(effort: &str, model: &str) -> Result<Value, Invalid> {
    let gemini_3 = model.contains("gemini-3");
    let config = match (effort, gemini_3) {
        ("none" | "minimal", true) => json!({"thinkingLevel": "minimal"}),
        ("low" | "medium" | "high", true) => {
            json!({"thinkingLevel": effort, "includeThoughts": true})
        }
        ("none" | "minimal", false) => json!({"thinkingBudget": 0}),
        ("low", false) => json!({"thinkingBudget": 1024, "includeThoughts": true}),
        ("medium", false) => json!({"thinkingBudget": 8192, "includeThoughts": true}),
        ("high", false) => json!({"thinkingBudget": 24576, "includeThoughts": true}),
        (other, _) => {
            return Err(invalid(
                "reasoning_effort",
                format!("'{other}' is not a reasoning effort (none, minimal, low, medium, high)."),
            ));
        }
    };
    Ok(config)
}

/// System content: a string or a list of text parts.
fn text_parts(content: Option<&Value>, position: usize) -> Result<Vec<Value>, Invalid> {
    Ok(match content {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(text)) if text.is_empty() => Vec::new(),
        Some(Value::String(text)) => vec![json!({"text": text})],
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|part| part.get("text").and_then(Value::as_str))
            .map(|text| json!({"text": text}))
            .collect(),
        Some(_) => {
            return Err(invalid(
                "messages",
                format!("messages[{position}].content must be a string or a list of parts."),
            ));
        }
    })
}

/// User content: text, images, audio and files.
fn user_parts(content: Option<&Value>, position: usize) -> Result<Vec<Value>, Invalid> {
    let parts = match content {
        Some(Value::Array(parts)) => parts,
        other => return text_parts(other, position),
    };
    let mut out = Vec::with_capacity(parts.len());
    for part in parts {
        match part.get("type").and_then(Value::as_str) {
            Some("text") => {
                if let Some(text) = part.get("text").and_then(Value::as_str) {
                    out.push(json!({"text": text}));
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
                            format!("messages[{position}] has an image part without a URL."),
                        )
                    })?;
                out.push(media_part(url, position)?);
            }
            Some("input_audio") => {
                let audio = part.get("input_audio").unwrap_or(&Value::Null);
                let data = audio.get("data").and_then(Value::as_str).ok_or_else(|| {
                    invalid(
                        "messages",
                        format!("messages[{position}] has an audio part without data."),
                    )
                })?;
                let format = audio.get("format").and_then(Value::as_str).unwrap_or("wav");
                out.push(
                    json!({"inlineData": {"mimeType": format!("audio/{format}"), "data": data}}),
                );
            }
            Some("file") => {
                let file = part.get("file").unwrap_or(&Value::Null);
                let data = file.get("file_data").and_then(Value::as_str).ok_or_else(|| {
                    invalid(
                        "messages",
                        format!(
                            "messages[{position}] has a file part without 'file_data' (uploaded file ids exist only on OpenAI)."
                        ),
                    )
                })?;
                out.push(media_part(data, position)?);
            }
            Some(other) => {
                return Err(invalid(
                    "messages",
                    format!(
                        "messages[{position}] has a '{other}' part, which Gemini channels cannot take."
                    ),
                ));
            }
            None => {}
        }
    }
    Ok(out)
}

/// A data URL travels inline; any other URL as a file reference, typed by its extension.
fn media_part(url: &str, position: usize) -> Result<Value, Invalid> {
    if let Some(rest) = url.strip_prefix("data:") {
        let (mime_type, data) = rest
            .split_once(";base64,")
            .filter(|(mime_type, _)| mime_type.contains('/'))
            .ok_or_else(|| {
                invalid(
                    "messages",
                    format!(
                        "messages[{position}] has a data URL that is not 'data:<type>;base64,…'."
                    ),
                )
            })?;
        return Ok(json!({"inlineData": {"mimeType": mime_type, "data": data}}));
    }
    Ok(json!({"fileData": {"mimeType": mime_type_of(url), "fileUri": url}}))
}

fn mime_type_of(url: &str) -> &'static str {
    let path = url
        .split(['?', '#'])
        .next()
        .unwrap_or(url)
        .to_ascii_lowercase();
    let extension = path.rsplit('.').next().unwrap_or("");
    match extension {
        "png" => "image/png",
        "webp" => "image/webp",
        "gif" => "image/gif",
        "heic" => "image/heic",
        "heif" => "image/heif",
        "pdf" => "application/pdf",
        "mp3" => "audio/mp3",
        "wav" => "audio/wav",
        "mp4" => "video/mp4",
        _ => "image/jpeg",
    }
}

/// The tool-call id that carries a thought signature back to the client.
fn signed_call_id(signature: &str) -> String {
    // The signature is standard base64; the id uses the URL-safe alphabet, which every client
    // keeps intact (Anthropic's tool ids allow only letters, digits, `_` and `-`).
    match STANDARD.decode(signature) {
        Ok(raw) => format!("{SIGNED_ID_PREFIX}{}", URL_SAFE_NO_PAD.encode(raw)),
        Err(_) => format!("call_{}", uuid::Uuid::new_v4().simple()),
    }
}

/// The thought signature a tool-call id carries, if it is one of ours.
fn signature_from_call_id(id: &str) -> Option<String> {
    let encoded = id.strip_prefix(SIGNED_ID_PREFIX)?;
    let raw = URL_SAFE_NO_PAD.decode(encoded).ok()?;
    Some(STANDARD.encode(raw))
}

fn model_parts(
    message: &Value,
    position: usize,
    call_names: &mut Vec<(String, String)>,
) -> Result<Vec<Value>, Invalid> {
    let mut parts = text_parts(message.get("content"), position)?;
    let mut first_call = true;
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
        let args = if arguments.trim().is_empty() {
            json!({})
        } else {
            serde_json::from_str::<Value>(arguments).map_err(|_| {
                invalid(
                    "messages",
                    format!("messages[{position}] has a tool call whose arguments are not JSON."),
                )
            })?
        };
        let id = call.get("id").and_then(Value::as_str).unwrap_or("");
        call_names.push((id.to_string(), name.to_string()));
        let mut part = json!({"functionCall": {"name": name, "args": args}});
        // Gemini signs the first call of each step; parallel calls after it carry none.
        match signature_from_call_id(id) {
            Some(signature) => part["thoughtSignature"] = json!(signature),
            None if first_call => part["thoughtSignature"] = json!(UNKNOWN_SIGNATURE),
            None => {}
        }
        first_call = false;
        parts.push(part);
    }
    Ok(parts)
}

fn function_response(
    message: &Value,
    position: usize,
    call_names: &[(String, String)],
) -> Result<Value, Invalid> {
    let name = chat::answered_function(message, position, call_names)?;
    let text = chat::text_of(message.get("content"), "");
    // Gemini takes an object; a result that is one goes as it is, anything else under `content`.
    let response = match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(object)) => Value::Object(object),
        _ => json!({"content": text}),
    };
    Ok(json!({"functionResponse": {"name": name, "response": response}}))
}

fn function_declarations(tools: Option<&Value>) -> Result<Vec<Value>, Invalid> {
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
                        "Gemini channels take only tools of type 'function'.".into(),
                    )
                })?;
            let name = function
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid("tools", "Every tool needs a function name.".into()))?;
            let mut out = Map::new();
            out.insert("name".into(), json!(name));
            if let Some(description) = function.get("description").and_then(Value::as_str) {
                out.insert("description".into(), json!(description));
            }
            if let Some(schema) = function.get("parameters").filter(|p| !p.is_null()) {
                out.insert("parametersJsonSchema".into(), schema.clone());
            }
            Ok(Value::Object(out))
        })
        .collect()
}

fn tool_config(choice: Option<&Value>) -> Result<Option<Value>, Invalid> {
    let config = match choice {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(mode)) => match mode.as_str() {
            "auto" => json!({"mode": "AUTO"}),
            "required" => json!({"mode": "ANY"}),
            "none" => json!({"mode": "NONE"}),
            other => {
                return Err(invalid(
                    "tool_choice",
                    format!("'{other}' is not a tool_choice (auto, required, none or a function)."),
                ));
            }
        },
        Some(object) => {
            let name = object
                .get("function")
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str)
                .ok_or_else(|| invalid("tool_choice", "tool_choice names no function.".into()))?;
            json!({"mode": "ANY", "allowedFunctionNames": [name]})
        }
    };
    Ok(Some(json!({"functionCallingConfig": config})))
}

/// Gemini's finish reason → OpenAI's.
fn finish_reason(reason: &str, called_tools: bool) -> &'static str {
    match reason {
        "MAX_TOKENS" => "length",
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY" => {
            "content_filter"
        }
        _ if called_tools => "tool_calls",
        _ => "stop",
    }
}

/// Gemini's usage metadata → billing usage. Thoughts are billed as output; the prompt count
/// includes the cached part and the tool-use prompt.
pub fn usage(metadata: &Value) -> Usage {
    let field = |name: &str| {
        metadata
            .get(name)
            .and_then(Value::as_i64)
            .unwrap_or(0)
            .max(0)
    };
    let prompt = field("promptTokenCount").saturating_add(field("toolUsePromptTokenCount"));
    Usage {
        prompt_tokens: prompt,
        completion_tokens: field("candidatesTokenCount")
            .saturating_add(field("thoughtsTokenCount")),
        cached_tokens: field("cachedContentTokenCount").clamp(0, prompt),
        cache_write_tokens: 0,
        units: 0,
    }
}

/// Why Gemini refused a prompt outright, when it did (no candidates, a block reason).
pub fn prompt_block(answer: &Value) -> Option<String> {
    let no_candidates = answer
        .get("candidates")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty);
    let reason = answer
        .pointer("/promptFeedback/blockReason")
        .and_then(Value::as_str)?;
    no_candidates.then(|| {
        let detail = answer
            .pointer("/promptFeedback/blockReasonMessage")
            .and_then(Value::as_str)
            .map(|m| format!(": {m}"))
            .unwrap_or_default();
        format!("Gemini blocked the prompt ({reason}){detail}.")
    })
}

/// One candidate's parts, read into OpenAI's message fields.
#[derive(Default)]
struct CandidateParts {
    text: String,
    reasoning: String,
    tool_calls: Vec<Value>,
}

fn read_parts(candidate: &Value, first_tool_index: usize) -> CandidateParts {
    let mut read = CandidateParts::default();
    for part in candidate
        .pointer("/content/parts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(call) = part.get("functionCall") {
            let id = match part.get("thoughtSignature").and_then(Value::as_str) {
                Some(signature) => signed_call_id(signature),
                None => call
                    .get("id")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("call_{}", uuid::Uuid::new_v4().simple())),
            };
            let arguments = call
                .get("args")
                .map_or_else(|| "{}".to_string(), Value::to_string);
            read.tool_calls.push(json!({
                "index": first_tool_index + read.tool_calls.len(),
                "id": id,
                "type": "function",
                "function": {
                    "name": call.get("name").cloned().unwrap_or(Value::Null),
                    "arguments": arguments,
                },
            }));
        } else if let Some(text) = part.get("text").and_then(Value::as_str) {
            if part.get("thought").and_then(Value::as_bool) == Some(true) {
                read.reasoning.push_str(text);
            } else {
                read.text.push_str(text);
            }
        }
    }
    read
}

/// The outcome of reading a Gemini answer.
pub enum GeminiAnswer {
    /// The answer as an OpenAI chat completion, with the usage Gemini reported.
    Chat(Value, Option<Usage>),
    /// Gemini refused the prompt itself.
    Blocked(String),
}

/// Gemini `generateContent` answer → OpenAI chat completion. None when the body is not a
/// Gemini answer.
pub fn chat_response(body: &[u8], client_model: &str, created: i64) -> Option<GeminiAnswer> {
    let answer: Value = serde_json::from_slice(body).ok()?;
    if answer.get("candidates").is_none() && answer.get("promptFeedback").is_none() {
        return None;
    }
    if let Some(message) = prompt_block(&answer) {
        return Some(GeminiAnswer::Blocked(message));
    }
    let mut choices = Vec::new();
    for (position, candidate) in answer
        .get("candidates")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let read = read_parts(candidate, 0);
        let called_tools = !read.tool_calls.is_empty();
        let mut message = Map::new();
        message.insert("role".into(), json!("assistant"));
        message.insert(
            "content".into(),
            if read.text.is_empty() && called_tools {
                Value::Null
            } else {
                json!(read.text)
            },
        );
        if !read.reasoning.is_empty() {
            message.insert("reasoning_content".into(), json!(read.reasoning));
        }
        if called_tools {
            let calls = read
                .tool_calls
                .into_iter()
                .map(|mut call| {
                    if let Some(object) = call.as_object_mut() {
                        object.remove("index");
                    }
                    call
                })
                .collect();
            message.insert("tool_calls".into(), Value::Array(calls));
        }
        let reason = candidate
            .get("finishReason")
            .and_then(Value::as_str)
            .unwrap_or("STOP");
        let index = candidate
            .get("index")
            .and_then(Value::as_u64)
            .unwrap_or(position as u64);
        choices.push(json!({
            "index": index,
            "message": message,
            "finish_reason": finish_reason(reason, called_tools),
            "logprobs": null,
        }));
    }
    let usage = answer.get("usageMetadata").map(usage);
    let id = answer
        .get("responseId")
        .and_then(Value::as_str)
        .map_or_else(
            || format!("chatcmpl-{}", uuid::Uuid::new_v4().simple()),
            |id| format!("chatcmpl-{id}"),
        );
    let mut completion = json!({
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": client_model,
        "choices": choices,
    });
    if let Some(usage) = usage {
        completion["usage"] = openai_usage(usage);
    }
    Some(GeminiAnswer::Chat(completion, usage))
}

/// OpenAI embeddings request → Gemini `batchEmbedContents` request.
pub fn embedding_request(
    request: &Map<String, Value>,
    upstream_model: &str,
) -> Result<Value, Invalid> {
    let inputs: Vec<&str> = match request.get("input") {
        Some(Value::String(text)) => vec![text.as_str()],
        Some(Value::Array(items)) if items.iter().all(Value::is_string) && !items.is_empty() => {
            items.iter().filter_map(Value::as_str).collect()
        }
        _ => {
            return Err(invalid(
                "input",
                "Gemini channels embed text: 'input' must be a string or a non-empty list of strings (not token ids).".into(),
            ));
        }
    };
    let model = format!(
        "models/{}",
        upstream_model
            .strip_prefix("models/")
            .unwrap_or(upstream_model)
    );
    let dimensions = request.get("dimensions").filter(|v| v.is_u64());
    let requests: Vec<Value> = inputs
        .into_iter()
        .map(|text| {
            let mut one = json!({"model": model, "content": {"parts": [{"text": text}]}});
            if let Some(dimensions) = dimensions {
                one["outputDimensionality"] = dimensions.clone();
            }
            one
        })
        .collect();
    Ok(json!({"requests": requests}))
}

/// Gemini `batchEmbedContents` answer → OpenAI embeddings list. Gemini reports no token
/// count, so the prompt estimate stands in.
pub fn embedding_response(
    body: &[u8],
    client_model: &str,
    prompt_tokens: i64,
    base64: bool,
) -> Option<Value> {
    let answer: Value = serde_json::from_slice(body).ok()?;
    let vectors: Vec<&[Value]> = answer
        .get("embeddings")?
        .as_array()?
        .iter()
        .map(|embedding| embedding.get("values")?.as_array().map(Vec::as_slice))
        .collect::<Option<_>>()?;
    crate::protocol::openai::embedding_list(&vectors, client_model, prompt_tokens, base64)
}

/// A Gemini error body (`{"error":{"code","message","status"}}`) → its status, in OpenAI's
/// lower-case style (`invalid_argument`), and message.
pub fn error_parts(body: &[u8]) -> Option<(String, String)> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let error = value.get("error")?;
    Some((
        error
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or("upstream_error")
            .to_ascii_lowercase(),
        error.get("message")?.as_str()?.to_string(),
    ))
}

/// Gemini answers a bad API key with 400 `API_KEY_INVALID`; for routing it is a 401, so the
/// channel is taken out of rotation rather than the client told its request was wrong.
pub fn effective_status(status: u16, body: &[u8]) -> u16 {
    let text = String::from_utf8_lossy(body);
    if status == 400 && text.contains("API_KEY_INVALID") {
        401
    } else {
        status
    }
}

/// Gemini's stream (`streamGenerateContent?alt=sse`: one answer fragment per event, no end
/// marker) → OpenAI chat-completion chunks.
///
/// The first fragment opens the answer (the role chunk); text, thoughts and function calls
/// become content, `reasoning_content` and tool-call chunks (Gemini sends each call whole);
/// the fragment with a finish reason ends the answer with the finish chunk, the usage chunk
/// when the client asked for it, and `[DONE]`. Usage is read from every fragment (the last
/// one is complete).
pub struct ChatStreamFromGemini {
    chunks: ChatChunks,
    include_usage: bool,
    usage: Option<Usage>,
    started: bool,
    /// Per candidate index: tool calls so far, and whether it has finished.
    candidates: Vec<(usize, bool)>,
    finished: bool,
}

impl ChatStreamFromGemini {
    pub fn new(client_model: &str, created: i64, include_usage: bool) -> Self {
        ChatStreamFromGemini {
            chunks: ChatChunks {
                id: format!("chatcmpl-{}", uuid::Uuid::new_v4().simple()),
                model: client_model.to_string(),
                created,
            },
            include_usage,
            usage: None,
            started: false,
            candidates: Vec::new(),
            finished: false,
        }
    }

    fn candidate(&mut self, index: usize) -> &mut (usize, bool) {
        if self.candidates.len() <= index {
            self.candidates.resize(index + 1, (0, false));
        }
        &mut self.candidates[index]
    }

    fn finish(&mut self, out: &mut BytesMut) {
        let usage = self.usage.unwrap_or_default();
        self.chunks.end(self.include_usage.then_some(usage), out);
        self.finished = true;
    }
}

impl StreamTranslator for ChatStreamFromGemini {
    fn event(&mut self, _raw: &[u8], data: &[u8], out: &mut BytesMut) -> TranslatedEvent {
        let mut seen = TranslatedEvent::default();
        let Ok(fragment) = serde_json::from_slice::<Value>(data) else {
            return seen;
        };
        if let Some(error) = fragment.get("error") {
            let message = error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("the upstream reported an error")
                .to_string();
            let kind = error
                .get("status")
                .and_then(Value::as_str)
                .unwrap_or("upstream_error")
                .to_ascii_lowercase();
            crate::protocol::openai::error_event(&message, &kind, &kind, out);
            seen.error = Some(message);
            return seen;
        }
        if let Some(metadata) = fragment.get("usageMetadata") {
            let usage = usage(metadata);
            self.usage = Some(usage);
            seen.usage = Some(usage);
        }
        if let Some(id) = fragment.get("responseId").and_then(Value::as_str)
            && !self.started
        {
            self.chunks.id = format!("chatcmpl-{id}");
        }
        if let Some(message) = prompt_block(&fragment) {
            crate::protocol::openai::error_event(&message, "content_filter", "content_filter", out);
            seen.error = Some(message);
            return seen;
        }
        let candidates = fragment
            .get("candidates")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for (position, candidate) in candidates.iter().enumerate() {
            let index = candidate
                .get("index")
                .and_then(Value::as_u64)
                .and_then(|i| usize::try_from(i).ok())
                .unwrap_or(position);
            if !self.started || self.candidates.len() <= index {
                self.candidate(index);
                self.chunks.role(index, out);
                self.started = true;
            }
            let first_tool_index = self.candidate(index).0;
            let read = read_parts(candidate, first_tool_index);
            if !read.reasoning.is_empty() {
                self.chunks.delta(
                    index,
                    json!({"reasoning_content": read.reasoning}),
                    &mut seen,
                    out,
                );
            }
            if !read.text.is_empty() {
                self.chunks
                    .delta(index, json!({"content": read.text}), &mut seen, out);
            }
            if !read.tool_calls.is_empty() {
                self.candidate(index).0 += read.tool_calls.len();
                self.chunks.delta(
                    index,
                    json!({"tool_calls": read.tool_calls}),
                    &mut seen,
                    out,
                );
            }
            if let Some(reason) = candidate.get("finishReason").and_then(Value::as_str) {
                let called_tools = self.candidate(index).0 > 0;
                self.candidate(index).1 = true;
                self.chunks
                    .finish(index, finish_reason(reason, called_tools), out);
            }
        }
        if self.started && self.candidates.iter().all(|(_, finished)| *finished) {
            self.finish(out);
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
        let chat = request(json!({
            "model": "gemini-2.5-flash",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": [
                    {"type": "text", "text": "What is in this picture, and the weather?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.webp?x=1"}},
                ]},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}},
                    {"id": "call_2", "type": "function", "function": {"name": "time", "arguments": ""}},
                ]},
                {"role": "tool", "tool_call_id": "call_1", "content": "{\"celsius\":21}"},
                {"role": "tool", "tool_call_id": "call_2", "content": "noon"},
            ],
            "tools": [{"type": "function", "function": {
                "name": "weather", "description": "Weather now",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "additionalProperties": false},
            }}],
            "tool_choice": {"type": "function", "function": {"name": "weather"}},
            "temperature": 0.2, "top_p": 0.9, "max_tokens": 100, "stop": "END", "seed": 7,
            "response_format": {"type": "json_object"},
        }));
        let out = chat_request(&chat, "gemini-2.5-flash").unwrap();
        assert_eq!(
            out,
            json!({
                "contents": [
                    {"role": "user", "parts": [
                        {"text": "What is in this picture, and the weather?"},
                        {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
                        {"fileData": {"mimeType": "image/webp", "fileUri": "https://example.com/cat.webp?x=1"}},
                    ]},
                    {"role": "model", "parts": [
                        {"functionCall": {"name": "weather", "args": {"city": "Paris"}}, "thoughtSignature": UNKNOWN_SIGNATURE},
                        {"functionCall": {"name": "time", "args": {}}},
                    ]},
                    {"role": "user", "parts": [
                        {"functionResponse": {"name": "weather", "response": {"celsius": 21}}},
                        {"functionResponse": {"name": "time", "response": {"content": "noon"}}},
                    ]},
                ],
                "systemInstruction": {"parts": [{"text": "Be brief."}]},
                "tools": [{"functionDeclarations": [{
                    "name": "weather", "description": "Weather now",
                    "parametersJsonSchema": {"type": "object", "properties": {"city": {"type": "string"}}, "additionalProperties": false},
                }]}],
                "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["weather"]}},
                "generationConfig": {
                    "temperature": 0.2, "topP": 0.9, "seed": 7, "maxOutputTokens": 100,
                    "stopSequences": ["END"], "responseMimeType": "application/json",
                },
            })
        );
    }

    #[test]
    fn refuses_what_gemini_cannot_take() {
        let unknown_result = request(json!({"messages": [
            {"role": "user", "content": "hi"},
            {"role": "tool", "tool_call_id": "nowhere", "content": "x"},
        ]}));
        let error = chat_request(&unknown_result, "gemini-2.5-flash").unwrap_err();
        assert!(
            error.message.contains("matches no earlier tool call"),
            "{}",
            error.message
        );
        let only_system = request(json!({"messages": [{"role": "system", "content": "x"}]}));
        assert!(chat_request(&only_system, "g").is_err());
        let bad_effort = request(
            json!({"messages": [{"role": "user", "content": "x"}], "reasoning_effort": "huge"}),
        );
        assert!(chat_request(&bad_effort, "g").is_err());
        let token_input = request(json!({"input": [[1, 2, 3]]}));
        assert!(embedding_request(&token_input, "text-embedding-004").is_err());
    }

    #[test]
    fn maps_reasoning_effort_by_model_generation() {
        let with = |effort: &str, model: &str| {
            let chat = request(
                json!({"messages": [{"role": "user", "content": "x"}], "reasoning_effort": effort}),
            );
            chat_request(&chat, model).unwrap()["generationConfig"]["thinkingConfig"].clone()
        };
        assert_eq!(
            with("high", "gemini-3-pro-preview"),
            json!({"thinkingLevel": "high", "includeThoughts": true})
        );
        assert_eq!(
            with("minimal", "gemini-2.5-flash"),
            json!({"thinkingBudget": 0})
        );
        assert_eq!(
            with("low", "gemini-2.5-pro"),
            json!({"thinkingBudget": 1024, "includeThoughts": true})
        );
    }

    #[test]
    fn carries_thought_signatures_through_tool_call_ids() {
        let signature = "CpYBAb4+9vv0dGVzdA==";
        let answer = json!({
            "candidates": [{"content": {"role": "model", "parts": [
                {"text": "Thinking it over.", "thought": true},
                {"functionCall": {"name": "weather", "args": {"city": "Paris"}}, "thoughtSignature": signature},
            ]}, "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": 12, "candidatesTokenCount": 5, "thoughtsTokenCount": 7, "cachedContentTokenCount": 4},
            "responseId": "abc",
        });
        let Some(GeminiAnswer::Chat(completion, usage)) =
            chat_response(answer.to_string().as_bytes(), "gemini-3-flash", 1)
        else {
            panic!("not translated");
        };
        assert_eq!(
            usage,
            Some(Usage {
                prompt_tokens: 12,
                completion_tokens: 12,
                cache_write_tokens: 0,
                units: 0,
                cached_tokens: 4
            })
        );
        let message = &completion["choices"][0]["message"];
        assert_eq!(completion["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(completion["id"], "chatcmpl-abc");
        assert_eq!(message["reasoning_content"], "Thinking it over.");
        assert_eq!(message["content"], Value::Null);
        let id = message["tool_calls"][0]["id"].as_str().unwrap();
        assert!(
            id.starts_with(SIGNED_ID_PREFIX)
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
            "{id}"
        );
        assert_eq!(
            message["tool_calls"][0]["function"]["arguments"],
            "{\"city\":\"Paris\"}"
        );

        // The client sends the call back: the signature returns with it.
        let next = request(json!({"messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": null, "tool_calls": message["tool_calls"].clone()},
            {"role": "tool", "tool_call_id": id, "content": "sunny"},
        ]}));
        let out = chat_request(&next, "gemini-3-flash").unwrap();
        assert_eq!(
            out["contents"][1]["parts"][0]["thoughtSignature"],
            signature
        );
    }

    #[test]
    fn reports_a_blocked_prompt_and_filtered_answers() {
        let blocked = json!({"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 9}});
        match chat_response(blocked.to_string().as_bytes(), "m", 1) {
            Some(GeminiAnswer::Blocked(message)) => assert!(message.contains("SAFETY")),
            _ => panic!("a blocked prompt is an error"),
        }
        let filtered = json!({"candidates": [{"content": {"parts": [{"text": "Par"}]}, "finishReason": "RECITATION"}]});
        let Some(GeminiAnswer::Chat(completion, usage)) =
            chat_response(filtered.to_string().as_bytes(), "m", 1)
        else {
            panic!("not translated");
        };
        assert_eq!(usage, None);
        assert_eq!(completion["choices"][0]["finish_reason"], "content_filter");
        assert!(chat_response(b"<html>oops</html>", "m", 1).is_none());
        assert!(chat_response(b"{\"data\":[]}", "m", 1).is_none());
        assert_eq!(
            effective_status(
                400,
                br#"{"error":{"details":[{"reason":"API_KEY_INVALID"}]}}"#
            ),
            401
        );
        assert_eq!(
            effective_status(400, br#"{"error":{"status":"INVALID_ARGUMENT"}}"#),
            400
        );
    }

    #[test]
    fn translates_embeddings_both_ways() {
        let out = embedding_request(
            &request(json!({"input": ["a", "b"], "dimensions": 8})),
            "text-embedding-004",
        )
        .unwrap();
        assert_eq!(
            out["requests"][1],
            json!({"model": "models/text-embedding-004", "content": {"parts": [{"text": "b"}]}, "outputDimensionality": 8})
        );
        let answer = br#"{"embeddings":[{"values":[0.5,-1.0]},{"values":[0.25,2.0]}]}"#;
        let floats = embedding_response(answer, "emb", 3, false).unwrap();
        assert_eq!(floats["data"][1]["embedding"], json!([0.25, 2.0]));
        assert_eq!(floats["usage"]["prompt_tokens"], 3);
        let packed = embedding_response(answer, "emb", 3, true).unwrap();
        let bytes = STANDARD
            .decode(packed["data"][0]["embedding"].as_str().unwrap())
            .unwrap();
        assert_eq!(
            bytes,
            [0.5f32.to_le_bytes(), (-1.0f32).to_le_bytes()].concat()
        );
    }

    fn feed(translator: &mut ChatStreamFromGemini, wire: &str) -> (String, Option<Usage>) {
        let mut out = BytesMut::new();
        let mut usage = None;
        for event in wire.split("\r\n\r\n").filter(|e| !e.is_empty()) {
            let data = event.strip_prefix("data: ").unwrap();
            let seen = translator.event(event.as_bytes(), data.as_bytes(), &mut out);
            usage = seen.usage.or(usage);
        }
        (String::from_utf8(out.to_vec()).unwrap(), usage)
    }

    #[test]
    fn translates_a_stream_with_text_and_a_tool_call() {
        let wire = concat!(
            "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hel\"}],\"role\":\"model\"},\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":8},\"responseId\":\"r1\"}\r\n\r\n",
            "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"lo\"}],\"role\":\"model\"},\"index\":0}]}\r\n\r\n",
            "data: {\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":{\"name\":\"f\",\"args\":{\"a\":1}}}],\"role\":\"model\"},\"finishReason\":\"STOP\",\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":8,\"candidatesTokenCount\":6}}\r\n\r\n",
        );
        let mut translator = ChatStreamFromGemini::new("gemini-2.5-flash", 5, true);
        let (out, usage) = feed(&mut translator, wire);
        assert!(translator.finished());
        assert_eq!(
            usage,
            Some(Usage {
                prompt_tokens: 8,
                completion_tokens: 6,
                cache_write_tokens: 0,
                units: 0,
                cached_tokens: 0
            })
        );
        let chunks: Vec<Value> = out
            .split("\n\n")
            .filter_map(|e| e.strip_prefix("data: "))
            .filter(|d| *d != "[DONE]")
            .map(|d| serde_json::from_str(d).unwrap())
            .collect();
        assert!(out.ends_with("data: [DONE]\n\n"));
        assert_eq!(
            chunks[0]["choices"][0]["delta"],
            json!({"role": "assistant", "content": ""})
        );
        assert_eq!(chunks[0]["id"], "chatcmpl-r1");
        assert_eq!(chunks[1]["choices"][0]["delta"]["content"], "Hel");
        assert_eq!(chunks[2]["choices"][0]["delta"]["content"], "lo");
        let call = &chunks[3]["choices"][0]["delta"]["tool_calls"][0];
        assert_eq!(call["index"], 0);
        assert_eq!(
            call["function"],
            json!({"name": "f", "arguments": "{\"a\":1}"})
        );
        assert_eq!(chunks[4]["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(chunks[5]["usage"]["completion_tokens"], 6);
    }

    #[test]
    fn a_stream_error_or_block_becomes_an_error_event() {
        let mut translator = ChatStreamFromGemini::new("m", 5, false);
        let (out, _) = feed(
            &mut translator,
            "data: {\"error\":{\"code\":503,\"message\":\"overloaded\",\"status\":\"UNAVAILABLE\"}}\r\n\r\n",
        );
        assert!(
            out.contains("\"message\":\"overloaded\"") && out.contains("unavailable"),
            "{out}"
        );
        assert!(!translator.finished());
        let mut translator = ChatStreamFromGemini::new("m", 5, false);
        let (out, _) = feed(
            &mut translator,
            "data: {\"promptFeedback\":{\"blockReason\":\"PROHIBITED_CONTENT\"}}\r\n\r\n",
        );
        assert!(
            out.contains("PROHIBITED_CONTENT") && out.contains("content_filter"),
            "{out}"
        );
    }
}
