//! Translating one stream into another, event by event: the trait every translator
//! implements, what the relay learns from each event, and the writer of OpenAI chat chunks
//! that translations into the chat protocol share.

use bytes::BytesMut;
use serde_json::Value;

use super::openai::openai_usage;
use super::sse::{event_data, event_end, write_data};
use crate::domain::pricing::Usage;

/// What the relay learns from one translated stream event.
#[derive(Debug, Default)]
pub struct TranslatedEvent {
    /// The usage so far, when the event reports it.
    pub usage: Option<Usage>,
    /// Generated text in this event, counted when the upstream never reports usage.
    pub text: String,
    /// The upstream reported an error inside the stream.
    pub error: Option<String>,
}

impl TranslatedEvent {
    /// Notes what one OpenAI chat delta generated: its text, its reasoning, and the names
    /// and arguments of its tool calls. The one place a chat stream's output is counted,
    /// whether the relay writes the delta (a translation into chat) or reads it (a
    /// translation out of chat).
    pub fn count_chat_delta(&mut self, delta: &Value) {
        for field in ["reasoning_content", "content"] {
            if let Some(text) = delta.get(field).and_then(Value::as_str) {
                self.text.push_str(text);
            }
        }
        for call in delta
            .get("tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            for field in ["/function/name", "/function/arguments"] {
                if let Some(text) = call.pointer(field).and_then(Value::as_str) {
                    self.text.push_str(text);
                }
            }
        }
    }
}

/// Turns an upstream's stream events into the client's protocol, one event at a time.
pub trait StreamTranslator: Send {
    /// Handles one upstream event (`raw`, as received; `data`, its joined data lines) and
    /// appends what the client receives to `out`.
    fn event(&mut self, raw: &[u8], data: &[u8], out: &mut bytes::BytesMut) -> TranslatedEvent;

    /// The upstream has sent its final event: the answer is complete.
    fn finished(&self) -> bool;
}

/// Two translations in a row, through OpenAI's chat chunks: an upstream's events become chat
/// chunks, which become the client's events (Gemini's stream for an Anthropic client, say).
/// Usage, counted text and errors are the upstream side's; the answer is finished when the
/// client's side has written its final event.
pub struct Chained {
    pub upstream: Box<dyn StreamTranslator>,
    pub client: Box<dyn StreamTranslator>,
}

impl StreamTranslator for Chained {
    fn event(&mut self, raw: &[u8], data: &[u8], out: &mut BytesMut) -> TranslatedEvent {
        let mut chat = BytesMut::new();
        let seen = self.upstream.event(raw, data, &mut chat);
        let mut rest = &chat[..];
        while let Some(end) = event_end(rest) {
            let (event, after) = rest.split_at(end);
            if let Some(data) = event_data(event) {
                self.client.event(event, &data, out);
            }
            rest = after;
        }
        seen
    }

    fn finished(&self) -> bool {
        self.client.finished()
    }
}

/// Writes the chat-completion chunks a translated stream is made of, all with one id, model
/// and creation time.
pub struct ChatChunks {
    pub id: String,
    pub model: String,
    pub created: i64,
}

impl ChatChunks {
    /// Writes what choice `index` generated (text, reasoning, tool calls: OpenAI's delta
    /// object) and counts it into `seen`: a translation cannot write output it does not bill.
    pub fn delta(
        &self,
        index: usize,
        delta: Value,
        seen: &mut TranslatedEvent,
        out: &mut BytesMut,
    ) {
        seen.count_chat_delta(&delta);
        self.chunk(index, delta, None, out);
    }

    /// The first chunk of choice `index`: the assistant's role, no output yet.
    pub fn role(&self, index: usize, out: &mut BytesMut) {
        self.chunk(
            index,
            serde_json::json!({"role": "assistant", "content": ""}),
            None,
            out,
        );
    }

    /// Choice `index` ends, for `reason`.
    pub fn finish(&self, index: usize, reason: &str, out: &mut BytesMut) {
        self.chunk(index, serde_json::json!({}), Some(reason), out);
    }

    fn chunk(&self, index: usize, delta: Value, finish: Option<&str>, out: &mut BytesMut) {
        write_data(
            &serde_json::json!({
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "choices": [{"index": index, "delta": delta, "finish_reason": finish, "logprobs": null}],
            }),
            out,
        );
    }

    /// The end of the stream: the usage chunk when the client asked for it, then `[DONE]`.
    pub fn end(&self, usage: Option<Usage>, out: &mut BytesMut) {
        if let Some(usage) = usage {
            write_data(
                &serde_json::json!({
                    "id": self.id,
                    "object": "chat.completion.chunk",
                    "created": self.created,
                    "model": self.model,
                    "choices": [],
                    "usage": openai_usage(usage),
                }),
                out,
            );
        }
        out.extend_from_slice(b"data: [DONE]\n\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_delta_written_is_counted() {
        let chunks = ChatChunks {
            id: "chatcmpl-1".into(),
            model: "m".into(),
            created: 0,
        };
        let mut seen = TranslatedEvent::default();
        let mut out = BytesMut::new();
        chunks.role(0, &mut out);
        chunks.delta(
            0,
            json!({"reasoning_content": "think "}),
            &mut seen,
            &mut out,
        );
        chunks.delta(0, json!({"content": "hello "}), &mut seen, &mut out);
        chunks.delta(
            0,
            json!({"tool_calls": [
                {"index": 0, "id": "c1", "type": "function", "function": {"name": "lookup", "arguments": "{\"q\":"}},
                {"index": 0, "function": {"arguments": "1}"}}
            ]}),
            &mut seen,
            &mut out,
        );
        chunks.finish(0, "tool_calls", &mut out);
        assert_eq!(seen.text, "think hello lookup{\"q\":1}");
        let written = String::from_utf8(out.to_vec()).unwrap();
        assert_eq!(written.matches("data: ").count(), 5);
        assert!(written.contains(r#""finish_reason":"tool_calls""#));
    }

    #[test]
    fn a_delta_read_counts_what_a_delta_written_counts() {
        let delta = json!({"content": "a", "reasoning_content": "b",
            "tool_calls": [{"function": {"name": "c", "arguments": "d"}}]});
        let mut read = TranslatedEvent::default();
        read.count_chat_delta(&delta);
        let chunk = serde_json::to_vec(&json!({"choices": [{"delta": delta}]})).unwrap();
        let mut wire = String::new();
        crate::protocol::usage::AnswerWire::parse(&chunk)
            .unwrap()
            .for_each_text(|t| wire.push_str(t));
        let sorted = |s: &str| {
            let mut chars: Vec<char> = s.chars().collect();
            chars.sort_unstable();
            chars.into_iter().collect::<String>()
        };
        assert_eq!(sorted(&read.text), sorted(&wire));
    }
}
