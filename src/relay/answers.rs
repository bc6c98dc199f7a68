//! An upstream's successful answer on its way to the client: read whole and billed, relayed as
//! it arrives, or streamed; and the bounded reads they use.

use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use futures::StreamExt;
use http::{HeaderValue, StatusCode, header};
use hyper::body::Incoming;

use super::answer::{AnswerBilling, AnswerRelay};
use super::error::RelayError;
use super::stream::{SseRelay, StreamStart, stream_start};
use super::wire::{AnswerContext, Framing, Unusable, Wire};
use crate::billing::Ticket;
use crate::clock::now_ms;
use crate::domain::kinds::Outcome;
use crate::domain::pricing::Usage;
use crate::snapshot::ChannelEntry;
use crate::upstream::{self, UpstreamResponse};

use super::attempts::{AttemptFailure, AttemptResult, Attempts};
use super::proxy::{MAX_HELD_ANSWER, MAX_STREAM_HEAD};

/// Bodies above this size are tokenized on the blocking pool rather than on a request thread.
impl Attempts<'_> {
    /// A non-streamed answer: read it whole (a failure here can still move on to another
    /// channel, since the client has received nothing), bill it, return it in the client's
    /// protocol.
    pub(super) async fn whole_answer(
        &self,
        wire: Wire,
        channel: &ChannelEntry,
        response: UpstreamResponse,
        timeout: Duration,
        mut ticket: Ticket,
    ) -> AttemptResult {
        let status = response.status();
        let content_type = response.headers().get(header::CONTENT_TYPE).cloned();
        // An answer the client gets as sent is held only up to a limit; a longer one is
        // relayed as it arrives. One that needs translating is read whole.
        let hold_limit = if wire.relays_answer_as_is() {
            MAX_HELD_ANSWER
        } else {
            usize::MAX
        };
        let read = read_until(response, hold_limit, timeout).await;
        // The upstream's part is over unless the rest of its answer is still to come.
        if !matches!(read, Ok((_, Some(_)))) {
            ticket.upstream_ended();
        }
        let body = match read {
            Ok((body, None)) => body,
            Ok((head, Some(rest))) => {
                if !wire.answer_start_usable(&head) {
                    let message =
                        "The upstream answered with something that is not JSON.".to_string();
                    return self.broken_answer(channel, message, ticket);
                }
                let answer = (status, content_type, head, rest);
                return Ok(self.relay_answer(wire, channel, answer, ticket));
            }
            Err(message) => {
                let message = format!("The upstream's answer broke off: {message}");
                return self.broken_answer(channel, message, ticket);
            }
        };
        let context = AnswerContext {
            request: self.request,
            now_secs: now_ms() / 1000,
            prompt_estimate: self.prompt_estimate,
            tokenizer: self.state.tokenizer,
        };
        let answer = match wire.whole_answer(body, content_type, &context) {
            Ok(answer) => answer,
            Err(Unusable::NotAnAnswer(what)) => {
                // A 2xx answer that is not the upstream's protocol (an HTML error page from a
                // proxy in front of it, say) is a channel failure, not something to bill.
                let message = format!("The upstream answered with {what}.");
                return self.broken_answer(channel, message, ticket);
            }
            Err(Unusable::Refused(message)) => {
                // The upstream refused the prompt itself: the client's to fix, on any channel.
                channel.health.record_success();
                let error = RelayError::upstream(
                    StatusCode::BAD_REQUEST,
                    "content_filter",
                    message.clone(),
                );
                let response = self.request.endpoint.protocol().error_response(error);
                return Err((
                    AttemptFailure::Final {
                        response,
                        status: 400,
                        message,
                    },
                    ticket,
                ));
            }
        };
        Ok(self
            .settle_whole(
                channel,
                status,
                answer.usage,
                answer.estimated,
                answer.body,
                answer.content_type,
                ticket,
            )
            .await)
    }

    /// A long answer the client gets as sent, relayed as it arrives from its checked start;
    /// the relay bills it when it ends.
    fn relay_answer(
        &self,
        wire: Wire,
        channel: &ChannelEntry,
        (status, content_type, head, rest): (StatusCode, Option<HeaderValue>, Bytes, Incoming),
        mut ticket: Ticket,
    ) -> Response {
        channel.health.record_success();
        ticket.charge_on_drop = None;
        ticket.log.status_code = i64::from(status.as_u16());
        ticket.first_byte();
        let billing = AnswerBilling {
            wire,
            prompt_estimate: self.prompt_estimate,
            held_units: self.held_units,
            generates: self.request.endpoint.generates(),
        };
        let idle = Duration::from_secs(self.options.stream_idle_timeout_secs);
        let rest = Box::pin(http_body_util::BodyDataStream::new(rest));
        let relay = AnswerRelay::new(rest, head, ticket, billing, idle);
        let mut out = Response::new(Body::from_stream(relay));
        *out.status_mut() = status;
        out.headers_mut().insert(
            header::CONTENT_TYPE,
            content_type.unwrap_or_else(|| HeaderValue::from_static("application/json")),
        );
        out
    }

    /// A 2xx answer that cannot be used (cut off, or not the upstream's protocol): a failure
    /// of the channel, charged nothing, and another channel may be tried.
    // The same result type as the attempt functions that return it; the ticket travels back
    // by value on purpose (failures are rare, so no box per attempt).
    #[allow(clippy::result_large_err)]
    fn broken_answer(
        &self,
        channel: &ChannelEntry,
        message: String,
        mut ticket: Ticket,
    ) -> AttemptResult {
        ticket.charge_on_drop = None;
        let error = RelayError::upstream(StatusCode::BAD_GATEWAY, "upstream_error", message);
        Err((self.channel_failed(channel, None, error), ticket))
    }

    /// Bills a complete answer and hands it to the client.
    #[allow(clippy::too_many_arguments)]
    async fn settle_whole(
        &self,
        channel: &ChannelEntry,
        status: StatusCode,
        usage: Usage,
        estimated: bool,
        body: Bytes,
        content_type: HeaderValue,
        mut ticket: Ticket,
    ) -> Response {
        channel.health.record_success();
        ticket.charge_on_drop = None;
        ticket.log.status_code = i64::from(status.as_u16());
        ticket.settle(usage, estimated, Outcome::Success);
        if self.state.billing.is_synchronous() {
            self.state.billing.flush().await;
        }
        let mut out = Response::new(Body::from(body));
        *out.status_mut() = status;
        out.headers_mut().insert(header::CONTENT_TYPE, content_type);
        out
    }

    /// A streamed answer: wait for the first chunk (until then another channel may still be
    /// tried), then hand the stream and the ticket to the SSE relay.
    pub(super) async fn start_stream(
        &self,
        wire: Wire,
        channel: &ChannelEntry,
        response: UpstreamResponse,
        timeout: Duration,
        mut ticket: Ticket,
    ) -> AttemptResult {
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .cloned()
            .unwrap_or_else(|| HeaderValue::from_static("text/event-stream"));
        let mut upstream = upstream::data_stream(response);
        // Nothing reaches the client until the stream's first event shows it is the
        // upstream's protocol: until then another channel may still be tried.
        let mut head = bytes::BytesMut::new();
        let mut ended = false;
        // One deadline for the first event, however many keep-alives come before it.
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match stream_start(&head, wire.framing(), ended) {
                StreamStart::Usable => break,
                StreamStart::Unusable(what) => {
                    let message = format!("The upstream answered with {what}.");
                    return self.broken_answer(channel, message, ticket);
                }
                StreamStart::Undecided if head.len() > MAX_STREAM_HEAD => {
                    let message = format!(
                        "The upstream's stream sent {} KiB without an event.",
                        head.len() / 1024
                    );
                    return self.broken_answer(channel, message, ticket);
                }
                StreamStart::Undecided => {}
            }
            let failure = match tokio::time::timeout_at(deadline, upstream.next()).await {
                Ok(Some(Ok(chunk))) => {
                    head.extend_from_slice(&chunk);
                    continue;
                }
                Ok(None) => {
                    ended = true;
                    continue;
                }
                Ok(Some(Err(e))) => upstream::describe(&e),
                Err(_) => format!("no stream data within {} s", timeout.as_secs()),
            };
            let message = format!("The upstream stream failed before it started: {failure}");
            return self.broken_answer(channel, message, ticket);
        }
        channel.health.record_success();
        ticket.charge_on_drop = None;
        ticket.log.status_code = i64::from(status.as_u16());
        ticket.first_byte();
        let idle = Duration::from_secs(self.options.stream_idle_timeout_secs);
        let mut relay = SseRelay::new(
            upstream,
            head,
            ticket,
            self.prompt_estimate,
            self.request.client_wants_usage,
            self.state.tokenizer,
            idle,
        )
        .speaking(self.request.endpoint.protocol())
        .framed(wire.framing())
        .billing_units(self.held_units);
        let mut content_type = content_type;
        if let Some(translator) = wire.stream_translator(
            &self.request.model,
            now_ms() / 1000,
            self.request.client_wants_usage,
            self.prompt_estimate,
        ) {
            relay = relay.translated(translator);
            // Whatever the upstream framed its stream as, every client protocol speaks SSE.
            content_type = HeaderValue::from_static("text/event-stream");
        }
        let mut out = Response::new(Body::from_stream(relay));
        *out.status_mut() = status;
        let headers = out.headers_mut();
        headers.insert(header::CONTENT_TYPE, content_type);
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
        Ok(out)
    }
}
/// Whether a 2xx answer is a stream in the upstream's framing (an upstream may answer a
/// stream request with a whole answer, an error or a proxy's page).
pub(super) fn is_stream(wire: Wire, response: &UpstreamResponse) -> bool {
    let stream_type = match wire.framing() {
        Framing::ServerSentEvents => "text/event-stream",
        Framing::JsonLines => "application/x-ndjson",
        Framing::AwsEventStream => "application/vnd.amazon.eventstream",
    };
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with(stream_type))
}

/// Reads an answer within `timeout` until its end, or until more than `stop_after` bytes have
/// come; then the rest of the body is handed back unread. A body that arrives in one chunk
/// (the usual case for JSON answers) is kept as it is, without a copy.
async fn read_until(
    response: UpstreamResponse,
    stop_after: usize,
    timeout: Duration,
) -> Result<(Bytes, Option<Incoming>), String> {
    use http_body::Body as _;
    let read = async {
        let mut body = response.into_body();
        let mut first: Option<Bytes> = None;
        let mut joined = bytes::BytesMut::new();
        while let Some(chunk) = upstream::next_data(&mut body).await {
            let chunk = chunk.map_err(|e| upstream::describe(&e))?;
            match first.take() {
                None if joined.is_empty() => first = Some(chunk),
                earlier => {
                    if let Some(earlier) = earlier {
                        joined.extend_from_slice(&earlier);
                    }
                    joined.extend_from_slice(&chunk);
                }
            }
            let received = first.as_ref().map_or(joined.len(), Bytes::len);
            if received > stop_after && !body.is_end_stream() {
                let head = first.take().unwrap_or_else(|| joined.split().freeze());
                return Ok((head, Some(body)));
            }
        }
        Ok((first.unwrap_or_else(|| joined.freeze()), None))
    };
    tokio::time::timeout(timeout, read)
        .await
        .unwrap_or_else(|_| Err(format!("no complete answer within {} s", timeout.as_secs())))
}

/// Reads a response body up to `limit` bytes within `timeout`.
pub(super) async fn read_limited(
    response: UpstreamResponse,
    limit: usize,
    timeout: Duration,
) -> Result<Bytes, String> {
    let (mut body, _unread) = read_until(response, limit, timeout).await?;
    body.truncate(limit);
    Ok(body)
}

/// The upstream's own error message when its body is an OpenAI envelope, else a short excerpt.
pub(super) fn upstream_error_message(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Envelope {
        error: Inner,
    }
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Inner {
        Object { message: String },
        Text(String),
    }
    /// Cohere's errors: `{"id": "…", "message": "…"}`.
    #[derive(serde::Deserialize)]
    struct Bare {
        message: String,
    }
    if let Ok(envelope) = serde_json::from_slice::<Envelope>(body) {
        return match envelope.error {
            Inner::Object { message } | Inner::Text(message) => message,
        };
    }
    if let Ok(bare) = serde_json::from_slice::<Bare>(body) {
        return bare.message;
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return "(no body)".into();
    }
    text.chars().take(300).collect()
}
