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
    /// One choice's delta, with its finish reason when it ends.
    pub fn delta(&self, index: usize, delta: Value, finish: Option<&str>, out: &mut BytesMut) {
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
