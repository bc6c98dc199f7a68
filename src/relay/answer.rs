//! A long whole (non-streamed) answer relayed as it arrives, when the client gets it as the
//! upstream sent it: its start was checked to be the upstream's protocol, the rest goes to the
//! client chunk by chunk, and only its tail is kept, where the usage report is. A 40 MB answer
//! then costs the gateway a few kilobytes instead of 40 MB.
//!
//! The relay owns the request's ticket: the answer is billed from the usage in its tail when
//! it ends (or estimated: the prompt, and a token per four bytes of output). An answer that
//! breaks off, or goes silent past the idle timeout, ends the response and is billed for the
//! prompt only (the units asked for, for a per-unit price). One the client stops reading is
//! billed for the prompt and the output it received.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use futures::Stream;
use futures::stream::BoxStream;
use tokio::time::{Instant, Sleep};

use super::wire::Wire;
use crate::billing::Ticket;
use crate::domain::kinds::Outcome;
use crate::domain::pricing::Usage;
use crate::metrics::RequestOutcome;

/// How much of the answer's end is kept to find its usage report.
const TAIL_BYTES: usize = 64 * 1024;

/// What the relay needs to bill the answer.
pub struct AnswerBilling {
    pub wire: Wire,
    pub prompt_estimate: i64,
    /// Units held for a per-unit price (images asked for, characters spoken).
    pub held_units: i64,
    /// Whether the endpoint generates output (an estimate counts it).
    pub generates: bool,
}

pub struct AnswerRelay {
    upstream: BoxStream<'static, Result<Bytes, hyper::Error>>,
    head: Option<Bytes>,
    tail: BytesMut,
    received: usize,
    ticket: Option<Ticket>,
    billing: AnswerBilling,
    idle_timeout: Duration,
    idle: Pin<Box<Sleep>>,
    /// The last poll handed the client data: the idle time starts again at the next poll, so
    /// a client that reads slowly is not taken for a silent upstream.
    yielded: bool,
    done: bool,
}

impl AnswerRelay {
    pub fn new(
        upstream: BoxStream<'static, Result<Bytes, hyper::Error>>,
        head: Bytes,
        ticket: Ticket,
        billing: AnswerBilling,
        idle_timeout: Duration,
    ) -> AnswerRelay {
        let mut relay = AnswerRelay {
            upstream,
            head: None,
            tail: BytesMut::new(),
            received: 0,
            ticket: Some(ticket),
            billing,
            idle_timeout,
            idle: Box::pin(tokio::time::sleep(idle_timeout)),
            yielded: false,
            done: false,
        };
        relay.keep(&head);
        relay.head = Some(head);
        relay
    }

    /// Notes a chunk on its way to the client, keeping the answer's last bytes.
    fn keep(&mut self, chunk: &[u8]) {
        self.received = self.received.saturating_add(chunk.len());
        let chunk = &chunk[chunk.len().saturating_sub(TAIL_BYTES)..];
        self.tail.extend_from_slice(chunk);
        if self.tail.len() > 2 * TAIL_BYTES {
            self.tail.advance(self.tail.len() - TAIL_BYTES);
        }
    }

    /// Output tokens estimated from the bytes received: a token per four bytes.
    fn received_tokens(&self) -> i64 {
        if self.billing.generates {
            i64::try_from(self.received / 4).unwrap_or(i64::MAX)
        } else {
            0
        }
    }

    /// The answer ended: billed from the usage in its tail, or estimated.
    fn finish(&mut self) {
        let Some(ticket) = self.ticket.take() else {
            return;
        };
        let billing = &self.billing;
        let (mut usage, estimated) = match billing.wire.usage_in_tail(&self.tail) {
            Some(usage) => (usage, false),
            None => {
                let usage = Usage {
                    prompt_tokens: billing.prompt_estimate,
                    completion_tokens: self.received_tokens(),
                    ..Usage::default()
                };
                // Speech is billed per character asked for; nothing about it is estimated.
                (usage, billing.generates)
            }
        };
        if usage.units == 0 {
            usage.units = billing.held_units;
        }
        ticket.settle(usage, estimated, Outcome::Success);
    }

    /// The answer ended early after part of it reached the client: the upstream broke off
    /// (billed for the prompt only), or the client left (billed for what it received too).
    fn break_off(&mut self, outcome: Outcome, message: String) {
        let Some(mut ticket) = self.ticket.take() else {
            return;
        };
        ticket.log.error_message = message;
        let usage = Usage {
            prompt_tokens: self.billing.prompt_estimate,
            completion_tokens: match outcome {
                Outcome::ClientClosed => self.received_tokens(),
                _ => 0,
            },
            units: self.billing.held_units,
            ..Usage::default()
        };
        ticket.settle(usage, true, outcome);
    }
}

impl Stream for AnswerRelay {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        if let Some(head) = this.head.take() {
            this.yielded = true;
            return Poll::Ready(Some(Ok(head)));
        }
        if std::mem::take(&mut this.yielded) {
            let deadline = Instant::now() + this.idle_timeout;
            this.idle.as_mut().reset(deadline);
        }
        match this.upstream.as_mut().poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                this.keep(&chunk);
                this.yielded = true;
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(e))) => {
                this.done = true;
                let message = format!("The upstream's answer broke off: {e}");
                this.break_off(Outcome::UpstreamError, message.clone());
                // An error ends the response without its proper end, so the client sees the
                // answer is incomplete.
                Poll::Ready(Some(Err(std::io::Error::other(message))))
            }
            Poll::Ready(None) => {
                this.done = true;
                this.finish();
                Poll::Ready(None)
            }
            Poll::Pending => {
                if this.idle.as_mut().poll(cx).is_ready() {
                    this.done = true;
                    let seconds = this.idle_timeout.as_secs();
                    let message = format!(
                        "The upstream sent nothing of its answer for {seconds} s; it was cut."
                    );
                    if let Some(ticket) = &mut this.ticket {
                        ticket.set_outcome(RequestOutcome::ProviderTimeout);
                    }
                    this.break_off(Outcome::UpstreamError, message.clone());
                    return Poll::Ready(Some(Err(std::io::Error::other(message))));
                }
                Poll::Pending
            }
        }
    }
}

impl Drop for AnswerRelay {
    /// The client stopped reading (or the server is stopping) before the answer ended.
    fn drop(&mut self) {
        if self.ticket.is_some() {
            self.break_off(
                Outcome::ClientClosed,
                "the client closed the connection before the answer ended".into(),
            );
        }
    }
}
