//! Holds, settlement and the batched writer.
//!
//! A relayed request gets exactly one [`Ticket`]: its hold is placed on every budget scope of
//! the request at admission ([`scopes`]), and the ticket is consumed by [`Ticket::settle`] or
//! [`Ticket::refund`]. A ticket dropped without either (a panic, a client that vanished, a
//! cancelled task) settles itself, so every hold is released exactly once. Settled costs reach
//! the database through the [`writer`], in batches.

pub mod dead_letter;
pub mod rates;
pub mod scopes;
pub mod writer;

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};

use crate::domain::kinds::Outcome;
use crate::domain::money::Ratio;
use crate::domain::pricing::{self, ModelPrice, Usage, UsageBounds};
use crate::metrics::{RequestMeter, RequestOutcome};
use crate::records::logs::RequestLog;
use rates::{RateHold, RateStore};
use scopes::{HoldError, Holds, LiveScope, ScopeStore};

/// One finished request on its way to the database.
#[derive(Debug)]
pub struct Settled {
    pub log: RequestLog,
    /// The scopes the request was held on, each with the period its cost counts toward;
    /// empty for a request refused before any hold.
    pub holds: Holds,
    /// Whether the request counts toward request totals (an upstream answered).
    pub counted: bool,
}

/// Records waiting for the writer. Requests push here under a short lock; the writer takes the
/// whole list at each flush. No per-request wake-up: the writer is only woken early when the
/// list reaches its size limit or every record must be written at once.
#[derive(Debug, Default)]
pub(crate) struct Queue {
    pub(crate) records: std::sync::Mutex<Vec<Settled>>,
    pub(crate) wake: tokio::sync::Notify,
}

impl Queue {
    /// Takes every waiting record.
    pub(crate) fn take(&self) -> Vec<Settled> {
        let mut records = self.records.lock().unwrap_or_else(|p| p.into_inner());
        let capacity = records.len();
        std::mem::replace(&mut *records, Vec::with_capacity(capacity))
    }
}

/// What readers of balances in the database share with the billing writer: its lock, held
/// while a batch commits, so no batch commits between a balance read and its use; and whether
/// the outcome of the last write is unknown (a broken connection may have committed it): the
/// batch may then be in the database and still counted as unflushed in memory, so a balance
/// read now would count it twice, and held balances keep their own figure until the writer
/// has found out.
#[derive(Debug, Clone, Default)]
pub struct BalanceSync {
    lock: Arc<tokio::sync::Mutex<()>>,
    uncertain: Arc<std::sync::atomic::AtomicBool>,
}

impl BalanceSync {
    pub async fn lock(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.lock.lock().await
    }

    /// Whether balances read from the database may be off by a batch (see above).
    pub fn is_uncertain(&self) -> bool {
        self.uncertain.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn set_uncertain(&self, uncertain: bool) {
        self.uncertain
            .store(uncertain, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Cheap handle to the billing writer.
#[derive(Clone, Debug)]
pub struct Billing {
    queue: Arc<Queue>,
    /// Asks the writer to write everything queued, then answers.
    flushes: mpsc::UnboundedSender<writer::FlushRequest>,
    /// Shared with whoever reads balances from the database (see `ledger`).
    sync: BalanceSync,
    synchronous: bool,
    stats: Arc<writer::WriterStats>,
    /// Where holds are placed and settled.
    scopes: Arc<dyn ScopeStore>,
    /// Where rate limits are counted.
    rates: Arc<dyn RateStore>,
}

impl Billing {
    /// Counts rate limits in `rates` rather than in this process's memory (a shared store,
    /// for several servers).
    pub fn with_rate_store(mut self, rates: Arc<dyn RateStore>) -> Billing {
        self.rates = rates;
        self
    }

    /// Where rate limits are counted.
    pub fn rates(&self) -> &Arc<dyn RateStore> {
        &self.rates
    }

    /// Where holds are placed and settled.
    pub fn scopes(&self) -> &Arc<dyn ScopeStore> {
        &self.scopes
    }

    pub fn balance_sync(&self) -> &BalanceSync {
        &self.sync
    }

    /// True when every record is written as it arrives (flush interval 0).
    pub fn is_synchronous(&self) -> bool {
        self.synchronous
    }

    /// What the writer has had to do besides writing.
    pub fn stats(&self) -> &writer::WriterStats {
        &self.stats
    }

    /// Finished requests waiting for the writer now.
    pub fn queued(&self) -> usize {
        self.queue
            .records
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    /// Queues a finished request for the writer, its text fitted to the log's columns.
    pub fn record(&self, mut settled: Settled) {
        settled.log.make_storable();
        let waiting = {
            let mut records = self.queue.records.lock().unwrap_or_else(|p| p.into_inner());
            records.push(settled);
            records.len()
        };
        if self.synchronous || waiting == writer::MAX_PENDING_ROWS {
            self.queue.wake.notify_one();
        }
    }

    /// Waits until everything recorded before this call is in the database.
    pub async fn flush(&self) {
        let (ack, done) = oneshot::channel();
        if self.flushes.send(writer::FlushRequest::Flush(ack)).is_ok() {
            let _ = done.await;
        }
    }

    /// The last flush before the server stops: what the database will not take goes to the
    /// dead-letter file rather than being dropped.
    pub async fn close(&self) {
        let (ack, done) = oneshot::channel();
        if self.flushes.send(writer::FlushRequest::Close(ack)).is_ok() {
            let _ = done.await;
        }
    }

    /// Logs a request refused before any hold (no money moves).
    pub fn record_refusal(&self, log: RequestLog) {
        self.record(Settled {
            log,
            holds: Holds::default(),
            counted: false,
        });
    }
}

/// How a request is priced, fixed at admission.
#[derive(Clone, Copy, Debug)]
pub struct PriceContext {
    /// `None` for an unpriced model the admin allowed: it costs nothing.
    pub price: Option<ModelPrice>,
    pub group_ratio: Ratio,
    pub quota_per_usd: i64,
    /// What the upstream's usage report may claim; anything beyond is billed at the bound.
    pub bounds: UsageBounds,
}

impl PriceContext {
    pub fn cost(&self, usage: Usage) -> Result<i64, pricing::PricingError> {
        match self.price {
            None => Ok(0),
            Some(price) => {
                pricing::cost(price, usage, self.group_ratio, self.quota_per_usd).map(|q| q.0)
            }
        }
    }

    /// What to hold for a request expected to use at most `usage`: its cost with every prompt
    /// token at the model's dearest prompt rate ([`pricing::held_usage`]), so no split of the
    /// prompt an upstream reports can bill more.
    pub fn hold(&self, usage: Usage) -> Result<i64, pricing::PricingError> {
        match self.price {
            None => Ok(0),
            Some(price) => self.cost(pricing::held_usage(price, usage)),
        }
    }
}

/// A request's hold and its log row in the making.
#[derive(Debug)]
pub struct Ticket {
    billing: Billing,
    holds: Holds,
    pub pricing: PriceContext,
    /// Filled in as the request goes; written when the ticket finishes.
    pub log: RequestLog,
    started: Instant,
    finished: bool,
    /// What to bill if the ticket is dropped unfinished: set while an upstream is working on
    /// the request, so a client that hangs up mid-answer still pays for the prompt the
    /// upstream processed.
    pub charge_on_drop: Option<Usage>,
    /// The request's measurements, counted when the ticket finishes.
    meter: Option<RequestMeter>,
    /// The request's admission under its rate limits (None: nothing limits it), settled with
    /// the ticket: its slots freed, its tokens corrected to what was used.
    rates: Option<RateHold>,
}

impl Ticket {
    /// Holds `hold` on every scope of the request, or on none. The ticket now owns the hold
    /// and the request's rate-limit admission; on a refusal the log row comes back for it
    /// (and the admission is settled having used no tokens).
    pub async fn open(
        billing: &Billing,
        scopes: Vec<Arc<LiveScope>>,
        hold: i64,
        pricing: PriceContext,
        log: RequestLog,
        started: Instant,
        rates: Option<RateHold>,
    ) -> Result<Ticket, Box<(HoldError, RequestLog)>> {
        let holds = match billing.scopes.hold(&log.request_id, scopes, hold).await {
            Ok(holds) => holds,
            Err(refusal) => {
                if let Some(rates) = rates {
                    rates.settle(0);
                }
                return Err(Box::new((refusal, log)));
            }
        };
        Ok(Ticket {
            billing: billing.clone(),
            holds,
            pricing,
            log,
            started,
            finished: false,
            charge_on_drop: None,
            meter: None,
            rates,
        })
    }

    /// Hands the request's measurements to the ticket: they end when it does (a stream's
    /// at its last byte), with its outcome.
    pub fn attach_meter(&mut self, mut meter: RequestMeter) {
        meter.hold_placed();
        self.meter = Some(meter);
    }

    /// How the request ended, where the cause is known best (see `RequestMeter`).
    pub fn set_outcome(&mut self, outcome: RequestOutcome) {
        if let Some(meter) = &mut self.meter {
            meter.set_outcome(outcome);
        }
    }

    /// An upstream is being waited on from now (its time is not Tollgate's overhead).
    pub fn upstream_started(&mut self) {
        if let Some(meter) = &mut self.meter {
            meter.upstream_started();
        }
    }

    /// The upstream's part is over (its answer read, or its failure known).
    pub fn upstream_ended(&mut self) {
        if let Some(meter) = &mut self.meter {
            meter.upstream_ended();
        }
    }

    /// The answer's first bytes go to the client now: its time to first token.
    pub fn first_byte(&mut self) {
        self.log.ttft_ms =
            Some(i64::try_from(self.started.elapsed().as_millis()).unwrap_or(i64::MAX));
        if let Some(meter) = &self.meter {
            meter.first_byte();
        }
    }

    pub fn hold(&self) -> i64 {
        self.holds.amount
    }

    pub fn started(&self) -> Instant {
        self.started
    }

    /// Bills real usage (held to the request's bounds) and releases the hold. Returns the
    /// cost. An answer that broke off is settled too, with the outcome saying so.
    pub fn settle(mut self, usage: Usage, estimated: bool, outcome: Outcome) -> i64 {
        self.finish(Some(usage), estimated, outcome)
    }

    /// Releases the hold without charging: no upstream produced an answer. With no upstream
    /// contacted at all (every channel cooling down, a body no channel could take) the request
    /// counts as refused.
    pub fn refund(mut self, status_code: u16, message: &str) {
        self.log.status_code = i64::from(status_code);
        self.log.error_message = message.to_string();
        let outcome = if self.log.attempts == 0 {
            Outcome::Refused
        } else {
            Outcome::UpstreamError
        };
        self.finish(None, false, outcome);
    }

    /// `charge`: the usage to bill, or None to charge nothing.
    fn finish(&mut self, charge: Option<Usage>, estimated: bool, outcome: Outcome) -> i64 {
        if self.finished {
            return 0;
        }
        self.finished = true;
        let charged = charge.is_some();
        let (usage, implausible) = match charge {
            Some(usage) => self.pricing.bounds.apply(usage),
            None => (Usage::default(), None),
        };
        // A count of our own that overshoots (another vendor's tokenizer) is held to the
        // bound too, but only an upstream's report is implausible.
        if let Some(note) = implausible.filter(|_| !estimated) {
            tracing::warn!(request_id = %self.log.request_id, channel = %self.log.channel_name, "{note}: the upstream's usage is beyond the request's bounds");
            self.log.implausible_usage = note;
        }
        let cost = if charged {
            self.pricing.cost(usage).unwrap_or_else(|e| {
                tracing::error!(request_id = %self.log.request_id, "pricing failed ({e}); charging the hold");
                self.holds.amount
            })
        } else {
            0
        }
        .max(0);
        // Under way once asked for; nothing here waits for a shared store to apply it.
        drop(
            self.billing
                .scopes
                .settle(&self.log.request_id, &self.holds, cost),
        );
        if let Some(rates) = self.rates.take() {
            let used = usage.prompt_tokens.saturating_add(usage.completion_tokens);
            rates.settle(u64::try_from(used).unwrap_or(0));
        }
        let log = &mut self.log;
        log.prompt_tokens = usage.prompt_tokens;
        log.completion_tokens = usage.completion_tokens;
        log.cached_tokens = usage.cached_tokens;
        log.cache_write_tokens = usage.cache_write_tokens;
        log.usage_estimated = estimated;
        log.cost = cost;
        log.outcome = outcome;
        log.latency_ms = i64::try_from(self.started.elapsed().as_millis()).unwrap_or(i64::MAX);
        if let Some(meter) = self.meter.take() {
            if charged {
                meter.metrics().charged(
                    usage.prompt_tokens,
                    usage.completion_tokens,
                    usage.cached_tokens,
                    cost,
                );
            }
            meter.finish(match outcome {
                Outcome::Success => RequestOutcome::Ok,
                Outcome::ClientClosed => RequestOutcome::CallerClosed,
                // A refusal through a ticket has had its precise outcome set already.
                Outcome::StreamError | Outcome::UpstreamError | Outcome::Refused => {
                    RequestOutcome::ProviderError
                }
            });
        }
        self.billing.record(Settled {
            log: std::mem::replace(log, RequestLog::empty()),
            holds: std::mem::take(&mut self.holds),
            counted: charged,
        });
        cost
    }
}

/// Completes a settlement: at once when the store did it in the call (memory), else on the
/// runtime, since a ticket dropped mid-answer cannot wait for it.
fn finish_settlement(mut settlement: futures::future::BoxFuture<'static, ()>) {
    use futures::FutureExt;
    if (&mut settlement).now_or_never().is_some() {
        return;
    }
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => {
            runtime.spawn(settlement);
        }
        Err(_) => tracing::error!(
            "a settlement could not be completed: no runtime is running; its scopes stay held until the next re-read"
        ),
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        // Dropped unfinished: the request's future was (the client went away), or a panic
        // unwinds it (which the meter counts as Tollgate's error).
        self.set_outcome(RequestOutcome::CallerClosed);
        match self.charge_on_drop.take() {
            Some(usage) => {
                if self.log.error_message.is_empty() {
                    self.log.error_message = "the client closed the connection".into();
                }
                self.finish(Some(usage), true, Outcome::ClientClosed);
            }
            None => {
                if self.log.error_message.is_empty() {
                    self.log.error_message = "request ended before it was billed".into();
                }
                self.finish(None, false, Outcome::UpstreamError);
            }
        }
    }
}

impl RequestLog {
    /// A blank row; the relay fills every field it knows.
    pub fn empty() -> RequestLog {
        RequestLog {
            id: 0,
            created_at: 0,
            request_id: String::new(),
            user_id: 0,
            username: String::new(),
            token_id: 0,
            token_name: String::new(),
            group: String::new(),
            endpoint: String::new(),
            model: String::new(),
            upstream_model: String::new(),
            channel_id: None,
            channel_name: String::new(),
            attempts: 0,
            prompt_tokens: 0,
            completion_tokens: 0,
            cached_tokens: 0,
            cache_write_tokens: 0,
            usage_estimated: false,
            cost: 0,
            latency_ms: 0,
            ttft_ms: None,
            is_stream: false,
            outcome: Outcome::Refused,
            status_code: 0,
            error_message: String::new(),
            client_ip: String::new(),
            requested_model: String::new(),
            upstream_request_id: String::new(),
            implausible_usage: String::new(),
            failed_attempts: Vec::new(),
            org_id: 0,
            team_id: 0,
        }
    }
}
