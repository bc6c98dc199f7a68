//! Reading the relay's pivot, an OpenAI chat request, the way every upstream translation
//! needs: the messages, one choice, the output limit, stop sequences, message text, tool-call
//! arguments and the function a tool result answers. Each provider module maps these onto its
//! own request; the checks and their error messages live here once.

use serde_json::{Map, Value, json};

use crate::protocol::Invalid;

/// A 400 naming the parameter to fix.
pub(crate) fn invalid(param: &'static str, message: String) -> Invalid {
    Invalid::new(param, message)
}

/// The request's messages.
pub(crate) fn messages(request: &Map<String, Value>) -> Result<&[Value], Invalid> {
    request
        .get("messages")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .ok_or_else(|| {
            invalid(
                "messages",
                "'messages' must be an array of messages.".into(),
            )
        })
}

/// Refuses `n` > 1 for an upstream that answers with one choice.
pub(crate) fn one_choice(request: &Map<String, Value>, vendor: &str) -> Result<(), Invalid> {
    if request
        .get("n")
        .and_then(Value::as_u64)
        .is_some_and(|n| n > 1)
    {
        return Err(invalid(
            "n",
            format!("{vendor} channels return one choice; 'n' must be 1."),
        ));
    }
    Ok(())
}

/// `max_completion_tokens`, else `max_tokens`, when given as a count.
pub(crate) fn max_output_tokens(request: &Map<String, Value>) -> Option<&Value> {
    request
        .get("max_completion_tokens")
        .or_else(|| request.get("max_tokens"))
        .filter(|v| v.is_u64())
}

/// `stop` as a list, whether sent as one string or several.
pub(crate) fn stop_sequences(request: &Map<String, Value>) -> Option<Value> {
    match request.get("stop") {
        Some(Value::String(stop)) => Some(json!([stop])),
        Some(Value::Array(stops)) if !stops.is_empty() => Some(Value::Array(stops.clone())),
        _ => None,
    }
}

/// A message's text: the string itself, or its text parts joined by `separator`.
pub(crate) fn text_of(content: Option<&Value>, separator: &str) -> String {
    match content {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|part| part.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(separator),
        _ => String::new(),
    }
}

/// A tool call's arguments as a JSON value (upstreams other than OpenAI take an object).
pub(crate) fn tool_call_input(call: &Value, position: usize) -> Result<Value, Invalid> {
    Ok(match call.pointer("/function/arguments") {
        Some(Value::String(text)) if text.trim().is_empty() => json!({}),
        Some(Value::String(text)) => serde_json::from_str::<Value>(text).map_err(|_| {
            invalid(
                "messages",
                format!("messages[{position}] has tool-call arguments that are not JSON."),
            )
        })?,
        Some(object @ Value::Object(_)) => object.clone(),
        _ => json!({}),
    })
}

/// The function a tool result answers: its own `name`, or the name of the earlier call with
/// its `tool_call_id` (OpenAI's results carry only the id; `call_names` holds (id, name) of the
/// calls so far).
pub(crate) fn answered_function<'a>(
    message: &'a Value,
    position: usize,
    call_names: &'a [(String, String)],
) -> Result<&'a str, Invalid> {
    let id = message
        .get("tool_call_id")
        .and_then(Value::as_str)
        .unwrap_or("");
    message
        .get("name")
        .and_then(Value::as_str)
        .or_else(|| {
            call_names
                .iter()
                .rev()
                .find(|(call_id, _)| call_id == id)
                .map(|(_, name)| name.as_str())
        })
        .ok_or_else(|| {
            invalid(
                "messages",
                format!(
                    "messages[{position}] is a tool result whose 'tool_call_id' matches no earlier tool call."
                ),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn reads_the_common_fields() {
        let body = request(json!({"messages": [], "n": 1, "max_tokens": 9, "stop": "END"}));
        assert!(messages(&body).unwrap().is_empty());
        assert!(one_choice(&body, "X").is_ok());
        assert_eq!(max_output_tokens(&body), Some(&json!(9)));
        assert_eq!(stop_sequences(&body), Some(json!(["END"])));
        let several = request(json!({"n": 3, "max_completion_tokens": 5, "max_tokens": 9}));
        assert!(
            one_choice(&several, "X")
                .unwrap_err()
                .message
                .contains("X channels")
        );
        assert_eq!(max_output_tokens(&several), Some(&json!(5)));
        assert!(messages(&several).is_err());
        assert_eq!(
            text_of(
                Some(&json!([{"type": "text", "text": "a"}, {"type": "text", "text": "b"}])),
                "\n"
            ),
            "a\nb"
        );
    }

    #[test]
    fn reads_tool_calls_and_results() {
        let call = json!({"id": "c1", "function": {"name": "f", "arguments": "{\"x\":1}"}});
        assert_eq!(tool_call_input(&call, 0).unwrap(), json!({"x": 1}));
        let broken = json!({"function": {"arguments": "{x"}});
        assert!(
            tool_call_input(&broken, 2)
                .unwrap_err()
                .message
                .contains("messages[2]")
        );
        let names = vec![("c1".to_string(), "f".to_string())];
        let result = json!({"role": "tool", "tool_call_id": "c1", "content": "ok"});
        assert_eq!(answered_function(&result, 3, &names).unwrap(), "f");
        let orphan = json!({"role": "tool", "tool_call_id": "zz"});
        assert!(answered_function(&orphan, 3, &names).is_err());
    }
}
