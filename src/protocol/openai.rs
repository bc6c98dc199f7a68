//! OpenAI's shapes that every translation writes: the error envelope and error event, the
//! usage object and the embeddings list.

use bytes::BytesMut;
use serde_json::Value;

use crate::domain::pricing::Usage;

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

/// Billing usage → OpenAI's usage object.
pub fn openai_usage(usage: Usage) -> Value {
    let mut value = serde_json::json!({
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.prompt_tokens.saturating_add(usage.completion_tokens),
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
    });
    // OpenAI has no field for cache writes; LiteLLM's name lets a client see what it paid for.
    if usage.cache_write_tokens > 0 {
        value["cache_creation_input_tokens"] = usage.cache_write_tokens.into();
    }
    value
}

/// Vectors → OpenAI's embeddings list. With `base64`, each vector is its little-endian f32
/// bytes in base64, as OpenAI sends them (the official SDKs ask for that by default). None
/// when a value is not a number.
pub fn embedding_list(
    vectors: &[&[Value]],
    client_model: &str,
    prompt_tokens: i64,
    base64: bool,
) -> Option<Value> {
    let mut data = Vec::with_capacity(vectors.len());
    for (index, values) in vectors.iter().enumerate() {
        let vector = if base64 {
            let mut bytes = Vec::with_capacity(values.len() * 4);
            for value in values.iter() {
                // Vectors are single precision on both sides.
                #[allow(clippy::cast_possible_truncation)]
                let single = value.as_f64()? as f32;
                bytes.extend_from_slice(&single.to_le_bytes());
            }
            serde_json::json!(base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                bytes
            ))
        } else {
            if !values.iter().all(Value::is_number) {
                return None;
            }
            Value::Array(values.to_vec())
        };
        data.push(serde_json::json!({"object": "embedding", "index": index, "embedding": vector}));
    }
    Some(serde_json::json!({
        "object": "list",
        "data": data,
        "model": client_model,
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    }))
}
