//! Every request body gets a deadline, so a client cannot hold a connection (and its file
//! descriptor) by sending its body a byte at a time.
//!
//! Portal, `/api` and webhook bodies must arrive whole within `--body-timeout-secs`. A `/v1`
//! body may take longer (an audio file, a large batch) as long as, after that time, it has
//! kept an average of `--min-body-bytes-per-sec`. Only a read that has to wait is judged: a
//! body the server already holds is never refused for the time its handler took before
//! reading it, and the clock starts when the server first asks for the body.
//!
//! When a deadline passes the read fails with [`BodyDeadlinePassed`] (the handler answers in
//! its own terms) and the connection is closed once that answer is out. On the `/v1` hot path
//! this costs a counter per chunk; the timer is made only when a read has to wait.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http_body::{Frame, SizeHint};
use hyper::body::Incoming;

use super::descriptors::Activity;
use super::descriptors::WaitingRead;
use crate::config::BodyDeadlines;
use crate::protocol::client::BodyDeadlinePassed;

/// The most time a body earns by its rate (far beyond any body `max_request_body_kb` allows).
const LONGEST_BODY: Duration = Duration::from_secs(24 * 3600);

/// Which deadline a body gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum BodyRule {
    /// The whole body within this time.
    Whole(Duration),
    /// Any rate for `grace`, then at least `bytes_per_sec` on average since the start.
    Rate { grace: Duration, bytes_per_sec: u64 },
}

impl BodyRule {
    /// The rule for a request to `path`: the relay's rate, everyone else's whole-body time.
    pub(super) fn for_path(path: &str, deadlines: BodyDeadlines) -> BodyRule {
        let relay = path.starts_with("/v1/") || path.starts_with("/v2/") || path == "/v1";
        if relay {
            BodyRule::Rate {
                grace: deadlines.timeout,
                bytes_per_sec: deadlines.min_bytes_per_sec,
            }
        } else {
            BodyRule::Whole(deadlines.timeout)
        }
    }

    /// When a body that started at `started` and has brought `received` bytes is late.
    fn deadline(self, started: Instant, received: u64) -> Instant {
        match self {
            BodyRule::Whole(timeout) => started + timeout,
            BodyRule::Rate {
                grace,
                bytes_per_sec,
            } => {
                let earned =
                    Duration::from_millis(received.saturating_mul(1000) / bytes_per_sec.max(1));
                started + grace.max(earned.min(LONGEST_BODY))
            }
        }
    }
}

/// A request body with its deadline.
pub(super) struct TimedBody {
    inner: Incoming,
    rule: BodyRule,
    /// When the server first asked for the body.
    started: Option<Instant>,
    received: u64,
    /// Made the first time the read has to wait.
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    connection: Arc<Activity>,
    /// On the list of reads that wait (the first closed when descriptors run short).
    waiting: Option<WaitingRead>,
    late: bool,
}

impl TimedBody {
    pub(super) fn new(inner: Incoming, rule: BodyRule, connection: Arc<Activity>) -> TimedBody {
        TimedBody {
            inner,
            rule,
            started: None,
            received: 0,
            timer: None,
            connection,
            waiting: None,
            late: false,
        }
    }

    /// The body is read whole (or failed): off the waiting list, timer gone.
    fn finished(&mut self) {
        if let Some(waiting) = self.waiting.take() {
            self.connection.descriptors.stop_waiting(waiting);
        }
        self.timer = None;
    }

    fn deadline_passed(&mut self) -> Poll<Option<Result<Frame<bytes::Bytes>, axum::BoxError>>> {
        self.late = true;
        self.finished();
        tracing::debug!(
            received = self.received,
            "closing a connection whose request body is late"
        );
        self.connection.close_after_answer();
        Poll::Ready(Some(Err(Box::new(BodyDeadlinePassed))))
    }
}

impl http_body::Body for TimedBody {
    type Data = bytes::Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        if this.late {
            return Poll::Ready(Some(Err(Box::new(BodyDeadlinePassed))));
        }
        let started = *this.started.get_or_insert_with(Instant::now);
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.received = this.received.saturating_add(data.len() as u64);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) => {
                this.finished();
                Poll::Ready(Some(Err(Box::new(error))))
            }
            Poll::Ready(None) => {
                this.finished();
                Poll::Ready(None)
            }
            Poll::Pending => {
                let deadline = this.rule.deadline(started, this.received);
                if Instant::now() >= deadline {
                    return this.deadline_passed();
                }
                let deadline = tokio::time::Instant::from_std(deadline);
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if timer.deadline() != deadline {
                    timer.as_mut().reset(deadline);
                }
                if timer.as_mut().poll(cx).is_ready() {
                    return this.deadline_passed();
                }
                if this.waiting.is_none() {
                    this.waiting = Some(
                        this.connection
                            .descriptors
                            .start_waiting(started, &this.connection),
                    );
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        !self.late && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for TimedBody {
    fn drop(&mut self) {
        if let Some(waiting) = self.waiting.take() {
            self.connection.descriptors.stop_waiting(waiting);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEADLINES: BodyDeadlines = BodyDeadlines {
        timeout: Duration::from_secs(10),
        min_bytes_per_sec: 8192,
    };

    #[test]
    fn the_relay_gets_a_rate_and_everyone_else_a_whole_body_time() {
        let rate = BodyRule::Rate {
            grace: Duration::from_secs(10),
            bytes_per_sec: 8192,
        };
        for path in [
            "/v1/chat/completions",
            "/v1/audio/transcriptions",
            "/v2/rerank",
            "/v1",
        ] {
            assert_eq!(BodyRule::for_path(path, DEADLINES), rate, "{path}");
        }
        for path in [
            "/login",
            "/api/users",
            "/stripe/webhook",
            "/v1x",
            "/",
            "/playground",
        ] {
            assert_eq!(
                BodyRule::for_path(path, DEADLINES),
                BodyRule::Whole(Duration::from_secs(10)),
                "{path}"
            );
        }
    }

    #[test]
    fn a_rate_earns_time_after_the_grace_period() {
        let start = Instant::now();
        let rule = BodyRule::for_path("/v1/embeddings", DEADLINES);
        // Slower than the rate: the grace period is all it gets.
        assert_eq!(rule.deadline(start, 0), start + Duration::from_secs(10));
        assert_eq!(
            rule.deadline(start, 8192 * 3),
            start + Duration::from_secs(10)
        );
        // 15 s worth of bytes: late only after 15 s.
        assert_eq!(
            rule.deadline(start, 8192 * 15),
            start + Duration::from_secs(15)
        );
        assert_eq!(rule.deadline(start, 4096), start + Duration::from_secs(10));
        // A whole-body time does not move.
        let whole = BodyRule::for_path("/login", DEADLINES);
        assert_eq!(
            whole.deadline(start, 1 << 30),
            start + Duration::from_secs(10)
        );
        // No overflow for absurd counts.
        assert_eq!(rule.deadline(start, u64::MAX), start + LONGEST_BODY);
    }
}
