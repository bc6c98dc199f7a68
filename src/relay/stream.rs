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

use super::wire::Framing;
use crate::billing::Ticket;
use crate::domain::kinds::Outcome;
use crate::domain::pricing::Usage;
use crate::domain::tokenizer::Tokenizer;
use crate::metrics::RequestOutcome;
use crate::protocol::ClientProtocol;
use crate::protocol::sse::{event_data, event_end};
use crate::protocol::translate::StreamTranslator;
use crate::protocol::usage::{AnswerWire, TextCounter};

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
    /// The last poll handed the client events: the idle time starts again at the next poll,
    /// so a client that reads slowly is not taken for a silent upstream.
    yielded: bool,
    done: bool,
    /// Set when the upstream speaks another protocol: its events are rewritten rather than
    /// forwarded.
    translator: Option<Box<dyn StreamTranslator>>,
    /// An error the upstream reported inside the stream.
    upstream_error: Option<String>,
    /// Set when an event's data is not of the upstream's protocol: the stream ends there.
    garbage: bool,
    /// The client's protocol, for the error events the relay itself writes.
    protocol: ClientProtocol,
    /// How the upstream frames its events.
    framing: Framing,
    /// Units a per-unit price bills the stream for (images asked for, seconds of an upload):
    /// streams report none.
    units: i64,
}

/// Why a stream whose events stopped being its protocol's was cut.
const GARBAGE: &str =
    "The upstream's stream turned into something that is not its protocol's events; it was cut.";

/// Where the next upstream event ends, by the upstream's framing.
fn next_event_end(buffer: &[u8], framing: Framing) -> Option<usize> {
    match framing {
        Framing::ServerSentEvents => event_end(buffer),
        Framing::JsonLines => buffer.iter().position(|&b| b == b'\n').map(|i| i + 1),
        Framing::AwsEventStream => crate::providers::bedrock::frame_end(buffer),
    }
}

/// What an event's data is, at a glance.
#[derive(Debug, PartialEq, Eq)]
enum Data {
    /// Nothing: a keep-alive.
    Empty,
    /// OpenAI's `[DONE]`.
    Done,
    /// It starts like JSON (whether it parses is for its reader to find out).
    Json,
    /// Not what any streaming protocol the relay reads sends.
    Other,
}

fn data_kind(data: &[u8]) -> Data {
    let data = data.trim_ascii();
    match data.first() {
        None => Data::Empty,
        _ if data == b"[DONE]" => Data::Done,
        Some(b'{' | b'[') => Data::Json,
        _ => Data::Other,
    }
}

/// Whether an event's data is a whole JSON value or `[DONE]`.
fn is_json_data(data: &[u8]) -> bool {
    match data_kind(data) {
        Data::Done => true,
        Data::Json => serde_json::from_slice::<serde::de::IgnoredAny>(data).is_ok(),
        Data::Empty | Data::Other => false,
    }
}

/// What the start of an upstream's stream, buffered before anything reaches the client, says
/// about it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum StreamStart {
    /// No event with data yet: read on.
    Undecided,
    /// Its first event carries data of the upstream's protocol: relay it.
    Usable,
    /// Not a stream of the upstream's protocol (what it is instead): try another channel.
    Unusable(&'static str),
}

/// Judges the buffered start of a stream by its first event that carries data (comments and
/// keep-alives before it do not count); `ended` when the upstream has sent all it will.
pub(crate) fn stream_start(buffer: &[u8], framing: Framing, ended: bool) -> StreamStart {
    const NOT_JSON: StreamStart = StreamStart::Unusable("a stream whose events are not JSON");
    match framing {
        Framing::ServerSentEvents => {
            let mut rest = buffer;
            while !rest.is_empty() {
                let (event, after) = match event_end(rest) {
                    Some(end) => rest.split_at(end),
                    None if ended => (rest, &[][..]),
                    None => return StreamStart::Undecided,
                };
                if let Some(data) = event_data(event)
                    && data_kind(&data) != Data::Empty
                {
                    return if is_json_data(&data) {
                        StreamStart::Usable
                    } else {
                        NOT_JSON
                    };
                }
                rest = after;
            }
        }
        Framing::JsonLines => {
            let mut rest = buffer;
            while !rest.is_empty() {
                let (line, after) = match rest.iter().position(|&b| b == b'\n') {
                    Some(end) => rest.split_at(end + 1),
                    None if ended => (rest, &[][..]),
                    None => return StreamStart::Undecided,
                };
                if !line.trim_ascii().is_empty() {
                    return if is_json_data(line) {
                        StreamStart::Usable
                    } else {
                        NOT_JSON
                    };
                }
                rest = after;
            }
        }
        Framing::AwsEventStream => match crate::providers::bedrock::frame_end(buffer) {
            Some(end) => {
                return match crate::providers::bedrock::decode_frame(&buffer[..end]) {
                    Ok(_) => StreamStart::Usable,
                    Err(_) => StreamStart::Unusable("a broken event stream"),
                };
            }
            None if !ended => return StreamStart::Undecided,
            None => {}
        },
    }
    if ended {
        StreamStart::Unusable("a stream that ended before any event")
    } else {
        StreamStart::Undecided
    }
}

impl SseRelay {
    pub fn new(
        upstream: BoxStream<'static, Result<Bytes, hyper::Error>>,
        head: BytesMut,
        ticket: Ticket,
        prompt_estimate: i64,
        client_wants_usage: bool,
        tokenizer: &'static Tokenizer,
        idle_timeout: Duration,
    ) -> SseRelay {
        SseRelay {
            upstream,
            buffer: head,
            usage: None,
            counter: TextCounter::default(),
            ticket: Some(ticket),
            prompt_estimate,
            client_wants_usage,
            tokenizer,
            idle_timeout,
            idle: Box::pin(tokio::time::sleep(idle_timeout)),
            yielded: false,
            done: false,
            translator: None,
            upstream_error: None,
            garbage: false,
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
        if self.framing != Framing::AwsEventStream {
            // Each translator parses its events; here only what cannot be an event at all
            // (text that does not start like JSON) ends the stream.
            match data_kind(&data) {
                Data::Empty => return,
                Data::Other => {
                    self.garbage = true;
                    return;
                }
                Data::Done | Data::Json => {}
            }
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

    /// Inspects one complete event and says whether to forward it. Data that is not JSON
    /// marks the stream as garbage.
    fn inspect(&mut self, event: &[u8]) -> bool {
        let Some(data) = event_data(event) else {
            return true; // comments and keep-alives pass through
        };
        let Some(chunk) = AnswerWire::parse(&data) else {
            // `[DONE]`, or JSON of a shape billing does not read, passes; anything else ends
            // the stream.
            self.garbage = data_kind(&data) != Data::Empty && !is_json_data(&data);
            return !self.garbage;
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
        while !self.garbage
            && let Some(end) = next_event_end(&self.buffer, self.framing)
        {
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

    /// Ends the stream after an upstream failure, telling the client why in an error event
    /// after `out` (what was ready to forward).
    fn fail(&mut self, outcome: Outcome, message: String, mut out: BytesMut) -> Bytes {
        self.done = true;
        self.protocol
            .stream_error_event(&message, "upstream_stream_error", &mut out);
        self.settle(outcome, Some(message));
        out.freeze()
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
            if this.garbage {
                // Billed for what reached the client; logged as the upstream's failure.
                let event = this.fail(Outcome::UpstreamError, GARBAGE.into(), out);
                return Poll::Ready(Some(Ok(event)));
            }
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
                this.yielded = true;
                return Poll::Ready(Some(Ok(out.freeze())));
            }
            if std::mem::take(&mut this.yielded) {
                let deadline = Instant::now() + this.idle_timeout;
                this.idle.as_mut().reset(deadline);
            }
            match this.upstream.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(bytes))) => {
                    this.buffer.extend_from_slice(&bytes);
                    let deadline = Instant::now() + this.idle_timeout;
                    this.idle.as_mut().reset(deadline);
                }
                Poll::Ready(Some(Err(e))) => {
                    let message = format!("The upstream stream failed: {e}");
                    let event = this.fail(Outcome::StreamError, message, BytesMut::new());
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
                        if outcome == Outcome::StreamError
                            && this.upstream_error.is_none()
                            && !this.garbage
                        {
                            this.protocol.stream_error_event(
                                message.as_deref().unwrap_or("the stream ended early"),
                                "upstream_stream_error",
                                &mut out,
                            );
                        }
                    } else if !rest.is_empty() && this.inspect(&rest) {
                        out = rest;
                    }
                    if this.garbage {
                        let event = this.fail(Outcome::UpstreamError, GARBAGE.into(), out);
                        return Poll::Ready(Some(Ok(event)));
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
                        let message = format!(
                            "The upstream sent nothing for {seconds} s; the stream was cut."
                        );
                        if let Some(ticket) = &mut this.ticket {
                            ticket.set_outcome(RequestOutcome::ProviderTimeout);
                        }
                        let event = this.fail(Outcome::StreamError, message, BytesMut::new());
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
    fn judges_a_stream_by_its_first_data_event() {
        use StreamStart::*;
        let sse = Framing::ServerSentEvents;
        assert_eq!(stream_start(b": keep-alive\n\n", sse, false), Undecided);
        assert_eq!(
            stream_start(b": keep-alive\n\ndata: {\"a\":1}\n\n", sse, false),
            Usable
        );
        assert_eq!(
            stream_start(b"event: ping\n\ndata: [DONE]\n\n", sse, false),
            Usable
        );
        assert_eq!(stream_start(b"data: {\"a\":", sse, false), Undecided);
        assert_eq!(stream_start(b"data:\n\ndata: {}\n\n", sse, false), Usable);
        assert!(matches!(
            stream_start(b"data: <html>\n\n", sse, false),
            Unusable(_)
        ));
        assert!(matches!(
            stream_start(b"data: {\"cut", sse, true),
            Unusable(_)
        ));
        assert!(matches!(
            stream_start(b"<html><body>oops</body></html>", sse, true),
            Unusable(_)
        ));
        assert!(matches!(stream_start(b"", sse, true), Unusable(_)));
        let lines = Framing::JsonLines;
        assert_eq!(stream_start(b"\n{\"done\":false}\n", lines, false), Usable);
        assert_eq!(stream_start(b"{\"done\":", lines, false), Undecided);
        assert!(matches!(
            stream_start(b"hello\n", lines, false),
            Unusable(_)
        ));
        let aws = Framing::AwsEventStream;
        assert_eq!(stream_start(&[0, 0], aws, false), Undecided);
        assert!(matches!(stream_start(&[0; 16], aws, false), Unusable(_)));
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
