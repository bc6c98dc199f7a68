//! Server-sent-event pass-through. Each event is forwarded as soon as its closing blank line
//! arrives, byte for byte; nothing waits for the rest of the answer. On the way through, the
//! relay reads the usage report and counts the generated text (so a stream that ends without
//! usage, or a client that hangs up, is still billed for what was generated), and drops the
//! usage-only chunk when the client did not ask for it.
//!
//! The stream owns the request's billing ticket: it settles when the upstream finishes, when
//! the upstream fails or goes silent past the idle timeout, or when the client goes away
//! (the body is dropped), whichever comes first, and only once.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::Stream;
use futures::stream::BoxStream;
use tokio::time::{Instant, Sleep};

use super::inbound::ClientProtocol;
use super::providers::StreamTranslator;
use super::usage::{AnswerWire, TextCounter};
use super::wire::Framing;
use crate::billing::Ticket;
use crate::domain::kinds::Outcome;
use crate::domain::pricing::Usage;
use crate::domain::tokenizer::Tokenizer;

pub struct SseRelay {
    upstream: BoxStream<'static, Result<Bytes, hyper::Error>>,
    buffer: BytesMut,
    usage: Option<Usage>,
    counter: TextCounter,
    ticket: Option<Ticket>,
    prompt_estimate: i64,
    client_wants_usage: bool,
    tokenizer: &'static Tokenizer,
    idle_timeout: Duration,
    idle: Pin<Box<Sleep>>,
    done: bool,
    /// Set when the upstream speaks another protocol: its events are rewritten rather than
    /// forwarded.
    translator: Option<Box<dyn StreamTranslator>>,
    /// An error the upstream reported inside the stream.
    upstream_error: Option<String>,
    /// The client's protocol, for the error events the relay itself writes.
    protocol: ClientProtocol,
    /// How the upstream frames its events.
    framing: Framing,
    /// Units a per-unit price bills the stream for (images asked for, seconds of an upload):
    /// streams report none.
    units: i64,
}

/// Where an event ends: the index after its closing blank line.
pub(crate) fn event_end(buffer: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i + 1 < buffer.len() {
        match buffer[i] {
            b'\n' if buffer[i + 1] == b'\n' => return Some(i + 2),
            b'\r' if buffer[i + 1] == b'\r' => return Some(i + 2),
            b'\r' if buffer[i..].starts_with(b"\r\n\r\n") => return Some(i + 4),
            _ => i += 1,
        }
    }
    None
}

/// Where the next upstream event ends, by the upstream's framing.
fn next_event_end(buffer: &[u8], framing: Framing) -> Option<usize> {
    match framing {
        Framing::ServerSentEvents => event_end(buffer),
        Framing::JsonLines => buffer.iter().position(|&b| b == b'\n').map(|i| i + 1),
        Framing::AwsEventStream => super::providers::bedrock::frame_end(buffer),
    }
}

/// The `data:` payload of one event (several data lines are joined with newlines, as the SSE
/// specification says).
pub(crate) fn event_data(event: &[u8]) -> Option<Vec<u8>> {
    let mut data: Option<Vec<u8>> = None;
    for line in event.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Some(rest) = line.strip_prefix(b"data:") {
            let rest = rest.strip_prefix(b" ").unwrap_or(rest);
            match &mut data {
                Some(joined) => {
                    joined.push(b'\n');
                    joined.extend_from_slice(rest);
                }
                None => data = Some(rest.to_vec()),
            }
        }
    }
    data
}

impl SseRelay {
    pub fn new(
        upstream: BoxStream<'static, Result<Bytes, hyper::Error>>,
        first_chunk: Bytes,
        ticket: Ticket,
        prompt_estimate: i64,
        client_wants_usage: bool,
        tokenizer: &'static Tokenizer,
        idle_timeout: Duration,
    ) -> SseRelay {
        SseRelay {
            upstream,
            buffer: BytesMut::from(&first_chunk[..]),
            usage: None,
            counter: TextCounter::default(),
            ticket: Some(ticket),
            prompt_estimate,
            client_wants_usage,
            tokenizer,
            idle_timeout,
            idle: Box::pin(tokio::time::sleep(idle_timeout)),
            done: false,
            translator: None,
            upstream_error: None,
            protocol: ClientProtocol::OpenAi,
            framing: Framing::ServerSentEvents,
            units: 0,
        }
    }

    /// Bills these units to a per-unit price when the stream reports none.
    pub fn billing_units(mut self, units: i64) -> SseRelay {
        self.units = units;
        self
    }

    /// The upstream frames its events this way (server-sent events unless told otherwise).
    pub fn framed(mut self, framing: Framing) -> SseRelay {
        self.framing = framing;
        self
    }

    /// The client speaks `protocol` (OpenAI's unless told otherwise).
    pub fn speaking(mut self, protocol: ClientProtocol) -> SseRelay {
        self.protocol = protocol;
        self
    }

    /// Rewrites every upstream event with `translator` instead of forwarding it.
    pub fn translated(mut self, translator: Box<dyn StreamTranslator>) -> SseRelay {
        self.translator = Some(translator);
        self
    }

    /// Hands one complete event to the translator; what the client receives goes to `out`.
    fn translate(&mut self, event: &[u8], out: &mut BytesMut) {
        let data = match self.framing {
            Framing::ServerSentEvents => event_data(event),
            Framing::JsonLines => Some(event.trim_ascii().to_vec()).filter(|line| !line.is_empty()),
            // Binary messages: the translator decodes the whole frame.
            Framing::AwsEventStream => Some(event.to_vec()).filter(|frame| !frame.is_empty()),
        };
        let (Some(translator), Some(data)) = (self.translator.as_mut(), data) else {
            return;
        };
        if translator.finished() {
            return;
        }
        let seen = translator.event(event, &data, out);
        if let Some(usage) = seen.usage {
            self.usage = Some(usage);
        }
        if !seen.text.is_empty() {
            self.counter.push(&seen.text, self.tokenizer);
        }
        if seen.error.is_some() {
            self.upstream_error = seen.error;
        }
    }

    /// How the stream ended when the upstream closed it.
    fn end_outcome(&self) -> (Outcome, Option<String>) {
        if let Some(error) = &self.upstream_error {
            return (Outcome::StreamError, Some(error.clone()));
        }
        match &self.translator {
            Some(translator) if !translator.finished() => (
                Outcome::StreamError,
                Some("the upstream stream ended before its final event".into()),
            ),
            _ => (Outcome::Success, None),
        }
    }

    /// Inspects one complete event and says whether to forward it.
    fn inspect(&mut self, event: &[u8]) -> bool {
        let Some(data) = event_data(event) else {
            return true; // comments and keep-alives pass through
        };
        if data.first() != Some(&b'{') {
            return true; // `[DONE]` and anything else that is not a JSON chunk
        }
        let Some(chunk) = AnswerWire::parse(&data) else {
            return true;
        };
        if let Some(usage) = chunk.usage() {
            self.usage = Some(usage);
        }
        let tokenizer = self.tokenizer;
        let counter = &mut self.counter;
        chunk.for_each_text(|text| counter.push(text, tokenizer));
        !chunk.is_usage_only() || self.client_wants_usage
    }

    /// Moves every complete event out of the buffer; returns the bytes to forward.
    fn take_complete_events(&mut self) -> BytesMut {
        let mut out = BytesMut::new();
        while let Some(end) = next_event_end(&self.buffer, self.framing) {
            let event = self.buffer.split_to(end);
            if self.translator.is_some() {
                self.translate(&event, &mut out);
            } else if self.inspect(&event) {
                out.extend_from_slice(&event);
            }
        }
        out
    }

    fn settle(&mut self, outcome: Outcome, error: Option<String>) {
        let Some(mut ticket) = self.ticket.take() else {
            return;
        };
        if let Some(message) = error {
            ticket.log.error_message = message;
        }
        let (mut usage, estimated) = match self.usage {
            Some(usage) => (usage, false),
            None => (
                Usage {
                    prompt_tokens: self.prompt_estimate,
                    completion_tokens: self.counter.total(self.tokenizer),
                    ..Usage::default()
                },
                true,
            ),
        };
        if usage.units == 0 {
            usage.units = self.units;
        }
        ticket.settle(usage, estimated, outcome);
    }

    /// Ends the stream after an upstream failure, telling the client why in an error event.
    fn fail(&mut self, message: String) -> Bytes {
        self.done = true;
        let mut event = BytesMut::new();
        self.protocol
            .stream_error_event(&message, "upstream_stream_error", &mut event);
        self.settle(Outcome::StreamError, Some(message));
        event.freeze()
    }
}

impl Stream for SseRelay {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            let out = this.take_complete_events();
            // A translator that stopped on an error the upstream sent (or a broken frame) has
            // told the client; waiting for the upstream to close would only hold the request.
            if this.upstream_error.is_some()
                && this.translator.as_ref().is_some_and(|t| t.finished())
            {
                this.done = true;
                let (outcome, error) = this.end_outcome();
                this.settle(outcome, error);
                return Poll::Ready((!out.is_empty()).then(|| Ok(out.freeze())));
            }
            if !out.is_empty() {
                return Poll::Ready(Some(Ok(out.freeze())));
            }
            match this.upstream.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(bytes))) => {
                    this.buffer.extend_from_slice(&bytes);
                    let deadline = Instant::now() + this.idle_timeout;
                    this.idle.as_mut().reset(deadline);
                }
                Poll::Ready(Some(Err(e))) => {
                    let event = this.fail(format!("The upstream stream failed: {e}"));
                    return Poll::Ready(Some(Ok(event)));
                }
                Poll::Ready(None) => {
                    // A last event without its closing blank line is still forwarded.
                    let rest = this.buffer.split();
                    let mut out = BytesMut::new();
                    if this.translator.is_some() {
                        this.translate(&rest, &mut out);
                        // A truncated answer is told to the client (an error the upstream
                        // reported has been passed on already).
                        let (outcome, message) = this.end_outcome();
                        if outcome == Outcome::StreamError && this.upstream_error.is_none() {
                            this.protocol.stream_error_event(
                                message.as_deref().unwrap_or("the stream ended early"),
                                "upstream_stream_error",
                                &mut out,
                            );
                        }
                    } else if !rest.is_empty() && this.inspect(&rest) {
                        out = rest;
                    }
                    this.done = true;
                    let (outcome, error) = this.end_outcome();
                    this.settle(outcome, error);
                    if !out.is_empty() {
                        return Poll::Ready(Some(Ok(out.freeze())));
                    }
                    return Poll::Ready(None);
                }
                Poll::Pending => {
                    if this.idle.as_mut().poll(cx).is_ready() {
                        let seconds = this.idle_timeout.as_secs();
                        let event = this.fail(format!(
                            "The upstream sent nothing for {seconds} s; the stream was cut."
                        ));
                        return Poll::Ready(Some(Ok(event)));
                    }
                    return Poll::Pending;
                }
            }
        }
    }
}

impl Drop for SseRelay {
    /// The client went away (or the server is stopping) before the upstream finished: bill
    /// what was generated until now.
    fn drop(&mut self) {
        if self.ticket.is_some() {
            self.settle(
                Outcome::ClientClosed,
                Some("the client closed the stream before it ended".into()),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_event_boundaries_in_every_line_ending() {
        assert_eq!(event_end(b"data: a\n\ndata: b"), Some(9));
        assert_eq!(event_end(b"data: a\r\n\r\nx"), Some(11));
        assert_eq!(event_end(b"data: a\r\rx"), Some(9));
        assert_eq!(event_end(b"data: a\n"), None);
        assert_eq!(event_end(b""), None);
    }

    #[test]
    fn extracts_data_payloads() {
        assert_eq!(
            event_data(b"data: {\"a\":1}\n\n"),
            Some(b"{\"a\":1}".to_vec())
        );
        assert_eq!(event_data(b"data:[DONE]\r\n\r\n"), Some(b"[DONE]".to_vec()));
        assert_eq!(event_data(b"data: x\ndata: y\n\n"), Some(b"x\ny".to_vec()));
        assert_eq!(event_data(b": keep-alive\n\n"), None);
        assert_eq!(event_data(b"event: ping\n\n"), None);
    }
}
