//! The batched billing writer: one task that sums balance changes per user, key and channel,
//! and writes them with the request logs in one transaction per flush (every
//! `flush_interval`, default one second). With a zero interval every record is written as it
//! arrives.
//!
//! A flush never blocks the ones after it:
//! - the database unreachable or busy: the records wait and are tried again at the next flush;
//! - the database refusing the batch itself: it is split in halves until the refused record is
//!   alone, so every other record is written; that record is written again with its text
//!   replaced (its money still applied), and if the database refuses even that, it goes to the
//!   dead-letter file with a loud log line, for `tollgate billing replay`;
//! - the server stopping while the database stays unreachable: after a few seconds, what is
//!   left goes to the dead-letter file too. No charge is dropped.
//!
//! A write whose outcome was lost (the connection broke during the commit) may have landed:
//! before the records are written again, those whose log row exists are taken as written, so
//! none is applied twice.

use rustc_hash::FxHashMap as HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::dead_letter::{DeadLetter, DeadLetterFile};
use super::scopes::{LiveScope, ScopeKind, ScopeStore};
use super::{BalanceSync, Billing, Queue, Settled};
use crate::clock::now_ms;
use crate::metrics::Histogram;
use crate::records::DbError;
use crate::records::logs::{BalanceDelta, BillingBatch, RequestLog, SpendDelta};

/// Where the writer puts batches: the database, through the services (`service::billing`).
#[async_trait::async_trait]
pub trait BillingStore: Send + Sync {
    /// Writes a batch's balance changes and log rows in one transaction.
    async fn apply(&self, batch: &BillingBatch<'_>) -> Result<(), DbError>;
    /// Which of these requests have their log rows written already (after a write whose
    /// outcome was lost, so it is not applied twice).
    async fn logged_request_ids(
        &self,
        ids: &[&str],
    ) -> Result<std::collections::HashSet<String>, DbError>;
    /// Whether the database takes writes now (a read-only replica after a failover does not).
    async fn accepts_writes(&self) -> bool;
}

/// Flush early when this many requests are waiting, so memory stays flat however high the
/// request rate is.
pub(crate) const MAX_PENDING_ROWS: usize = 1024;

/// How long the last flush before a stop may try the database before the records left go to
/// the dead-letter file: well inside the usual grace before a container is killed.
const CLOSING_BUDGET: Duration = Duration::from_secs(5);

/// Someone waiting for the writer.
#[derive(Debug)]
pub(crate) enum FlushRequest {
    /// Write everything queued, then answer.
    Flush(oneshot::Sender<()>),
    /// The server is stopping: write everything queued, set aside in the dead-letter file
    /// what the database will not take, then answer.
    Close(oneshot::Sender<()>),
}

/// What the writer has had to do besides writing, since it started.
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Flushes the database failed (each is retried or split).
    pub failed_writes: AtomicU64,
    /// Records written with their text replaced after the database refused it.
    pub text_replaced: AtomicU64,
    /// Records sent to the dead-letter file.
    pub dead_lettered: AtomicU64,
}

/// What one record contributes to the balance rows, for the database and for the file.
pub(crate) struct Entry<'a> {
    pub log: &'a RequestLog,
    pub moves_balance: bool,
    pub key_limited: bool,
    pub counted: bool,
    /// The budgets the cost counts toward, each with its period's start (none for a replayed
    /// record: its periods are long over).
    pub budgets: &'a [(std::sync::Arc<LiveScope>, i64)],
}

impl<'a> From<&'a Settled> for Entry<'a> {
    fn from(settled: &'a Settled) -> Self {
        Entry {
            log: &settled.log,
            moves_balance: !settled.holds.scopes.is_empty() || settled.counted,
            key_limited: settled.holds.has(ScopeKind::KeyLimit),
            counted: settled.counted,
            budgets: &settled.holds.scopes,
        }
    }
}

impl<'a> From<&'a DeadLetter> for Entry<'a> {
    fn from(letter: &'a DeadLetter) -> Self {
        Entry {
            log: &letter.log,
            moves_balance: letter.moves_balance,
            key_limited: letter.key_limited,
            counted: letter.counted,
            budgets: &[],
        }
    }
}

/// The write that applies `entries`: balance changes summed per user (or, for a team key,
/// organisation), key and channel, spending per budget and period (sums saturate; costs are
/// never negative), and their log rows.
pub(crate) fn batch_of<'a>(entries: impl IntoIterator<Item = Entry<'a>>) -> BillingBatch<'a> {
    let mut users: HashMap<i64, BalanceDelta> = HashMap::default();
    let mut orgs: HashMap<i64, BalanceDelta> = HashMap::default();
    let mut tokens: HashMap<i64, BalanceDelta> = HashMap::default();
    let mut channels: HashMap<i64, BalanceDelta> = HashMap::default();
    let mut spend: HashMap<(&'static str, i64, i64, &'static str), i64> = HashMap::default();
    let mut logs = Vec::new();
    for entry in entries {
        let log = entry.log;
        let cost = log.cost.max(0);
        let requests = i64::from(entry.counted);
        if entry.moves_balance {
            // A team key spends its organisation's wallet; its spending never counts as the
            // person's own.
            let (payers, payer_id) = if log.org_id != 0 {
                (&mut orgs, log.org_id)
            } else {
                (&mut users, log.user_id)
            };
            let payer = payers.entry(payer_id).or_insert(BalanceDelta {
                id: payer_id,
                ..BalanceDelta::default()
            });
            payer.quota = payer.quota.saturating_sub(cost);
            payer.used = payer.used.saturating_add(cost);
            payer.requests = payer.requests.saturating_add(requests);
            for (scope, window) in entry.budgets {
                if let (Some(kind), Some(period)) = (scope.id.kind.spend_kind(), scope.period)
                    && *window != 0
                {
                    let spent = spend
                        .entry((kind, scope.id.row, *window, period.as_str()))
                        .or_insert(0);
                    *spent = spent.saturating_add(cost);
                }
            }
            let token = tokens.entry(log.token_id).or_insert(BalanceDelta {
                id: log.token_id,
                ..BalanceDelta::default()
            });
            // An unlimited key's remaining quota does not move; its usage still counts.
            if entry.key_limited {
                token.quota = token.quota.saturating_sub(cost);
            }
            token.used = token.used.saturating_add(cost);
            token.requests = token.requests.saturating_add(requests);
            token.last_used_at = token.last_used_at.max(log.created_at);
            if let Some(channel_id) = log.channel_id
                && entry.counted
            {
                let channel = channels.entry(channel_id).or_insert(BalanceDelta {
                    id: channel_id,
                    ..BalanceDelta::default()
                });
                channel.used = channel.used.saturating_add(cost);
                channel.requests = channel.requests.saturating_add(1);
            }
        }
        logs.push(log);
    }
    let mut spend: Vec<SpendDelta> = spend
        .into_iter()
        .map(
            |((kind, scope_id, window_start, period), spent)| SpendDelta {
                kind,
                scope_id,
                window_start,
                period,
                spent,
            },
        )
        .collect();
    spend.sort_unstable();
    BillingBatch {
        users: users.into_values().collect(),
        tokens: tokens.into_values().collect(),
        channels: channels.into_values().collect(),
        orgs: orgs.into_values().collect(),
        spend,
        logs,
    }
}

/// Moves the costs of records now in the database from "unflushed" to "stored" on their live
/// scopes (summed per scope and period, one lock each).
fn mark_committed(records: &[Settled]) -> Vec<(Arc<LiveScope>, i64, i64)> {
    let mut costs: HashMap<(*const LiveScope, i64), (&Arc<LiveScope>, i64)> = HashMap::default();
    for record in records {
        let cost = record.log.cost.max(0);
        for (scope, window) in &record.holds.scopes {
            let entry = costs
                .entry((Arc::as_ptr(scope), *window))
                .or_insert((scope, 0));
            entry.1 = entry.1.saturating_add(cost);
        }
    }
    costs
        .into_iter()
        .map(|((_, window), (scope, cost))| {
            scope.committed(cost, window);
            (Arc::clone(scope), window, cost)
        })
        .collect()
}

/// Starts the writer. The returned future runs until it is dropped; `Billing::flush` writes
/// everything queued so far.
pub fn start(
    store: Arc<dyn BillingStore>,
    scopes: Arc<dyn ScopeStore>,
    flush_interval: Duration,
    dead_letters: DeadLetterFile,
    flush_times: Histogram,
) -> (
    Billing,
    impl std::future::Future<Output = ()> + Send + 'static,
) {
    let queue = Arc::new(Queue::default());
    let (flushes, flush_requests) = mpsc::unbounded_channel();
    let sync = BalanceSync::default();
    let stats = Arc::new(WriterStats::default());
    let billing = Billing {
        queue: queue.clone(),
        flushes,
        sync: sync.clone(),
        synchronous: flush_interval.is_zero(),
        stats: stats.clone(),
        scopes,
        // One server: counted in this process's memory (see `Billing::with_rate_store`).
        rates: Arc::new(super::rates::MemoryRateStore),
    };
    let writer = Writer {
        store,
        scopes: billing.scopes.clone(),
        sync,
        dead_letters,
        stats,
        flush_times,
    };
    (billing, run(writer, queue, flush_requests, flush_interval))
}

struct Writer {
    store: Arc<dyn BillingStore>,
    /// Told of every commit, so a shared store moves the costs from in flight to committed.
    scopes: Arc<dyn ScopeStore>,
    /// Held while a batch commits; says when a write failed in a way that may have
    /// committed (then the writer checks before writing again).
    sync: BalanceSync,
    dead_letters: DeadLetterFile,
    stats: Arc<WriterStats>,
    /// How long each flush that had records took.
    flush_times: Histogram,
}

async fn run(
    mut writer: Writer,
    queue: Arc<Queue>,
    mut flush_requests: mpsc::UnboundedReceiver<FlushRequest>,
    flush_interval: Duration,
) {
    let mut ticker = tokio::time::interval(if flush_interval.is_zero() {
        Duration::from_secs(1)
    } else {
        flush_interval
    });
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut pending: Vec<Settled> = Vec::new();
    loop {
        let request = tokio::select! {
            request = flush_requests.recv() => match request {
                Some(request) => Some(request),
                None => return,
            },
            _ = queue.wake.notified() => None,
            _ = ticker.tick() => None,
        };
        pending.extend(queue.take());
        // The last flush before a stop has a few seconds, not the database's timeouts.
        let deadline = matches!(request, Some(FlushRequest::Close(_)))
            .then(|| tokio::time::Instant::now() + CLOSING_BUDGET);
        writer.flush(&mut pending, deadline).await;
        let Some(request) = request else {
            continue;
        };
        // Someone is waiting for the records (a graceful stop, a synchronous request): retry a
        // brief database outage before answering.
        for attempt in 1..=5 {
            let pause = Duration::from_millis(200 * attempt);
            let out_of_time = deadline.is_some_and(|d| tokio::time::Instant::now() + pause >= d);
            if pending.is_empty() || out_of_time {
                break;
            }
            tokio::time::sleep(pause).await;
            writer.flush(&mut pending, deadline).await;
        }
        match request {
            FlushRequest::Flush(ack) => {
                if !pending.is_empty() {
                    tracing::error!(
                        requests = pending.len(),
                        "billing records are still unwritten; the database keeps refusing them"
                    );
                }
                let _ = ack.send(());
            }
            FlushRequest::Close(ack) => {
                if !pending.is_empty() {
                    let records = std::mem::take(&mut pending);
                    writer
                        .set_aside(
                            records,
                            "the database could not be written before the server stopped",
                        )
                        .await;
                }
                let _ = ack.send(());
            }
        }
    }
}

impl Writer {
    /// Marks these records' costs as in the database, here and in the scope store.
    async fn committed(&self, records: &[Settled]) {
        let costs = mark_committed(records);
        if !costs.is_empty() {
            self.scopes.committed(costs).await;
        }
    }

    /// Writes `pending`, each write ending by `deadline` when one is given; what must wait
    /// for the database is left in `pending`.
    async fn flush(&mut self, pending: &mut Vec<Settled>, deadline: Option<tokio::time::Instant>) {
        if pending.is_empty() {
            return;
        }
        let started = std::time::Instant::now();
        self.write_pending(pending, deadline).await;
        self.flush_times.observe(started.elapsed());
    }

    async fn write_pending(
        &mut self,
        pending: &mut Vec<Settled>,
        deadline: Option<tokio::time::Instant>,
    ) {
        let sync = self.sync.clone();
        let _sync = sync.lock().await;
        if self.sync.is_uncertain() && !self.drop_written(pending).await {
            return;
        }
        let records = std::mem::take(pending);
        let started = std::time::Instant::now();
        let count = records.len();
        // Groups still to write; a refused group comes back as its two halves.
        let mut groups = vec![records];
        while let Some(group) = groups.pop() {
            let written = {
                let batch = batch_of(group.iter().map(Entry::from));
                let write = self.store.apply(&batch);
                match deadline {
                    // Out of time counts as an unreachable database.
                    Some(deadline) => tokio::time::timeout_at(deadline, write)
                        .await
                        .unwrap_or(Err(DbError::Sqlx(sqlx::Error::PoolTimedOut))),
                    None => write.await,
                }
            };
            let error = match written {
                Ok(()) => {
                    self.committed(&group).await;
                    continue;
                }
                Err(error) => error,
            };
            self.stats.failed_writes.fetch_add(1, Ordering::Relaxed);
            if error.is_transient() || !self.store.accepts_writes().await {
                // A broken connection may have committed the write after all.
                self.sync.set_uncertain(true);
                tracing::error!(
                    error = %error,
                    requests = group.len() + groups.iter().map(Vec::len).sum::<usize>(),
                    "billing flush failed; will retry"
                );
                pending.extend(group);
                pending.extend(groups.into_iter().flatten());
                return;
            }
            if group.len() > 1 {
                if group.len() == count {
                    tracing::warn!(error = %error, requests = count, "the database refused a billing batch; writing its records apart to find the one it refuses");
                }
                let mut first = group;
                let second = first.split_off(first.len() / 2);
                groups.push(second);
                groups.push(first);
                continue;
            }
            if let Some(record) = group.into_iter().next()
                && let Some(record) = self.write_refused(record, &error).await
            {
                pending.push(record);
            }
        }
        tracing::debug!(
            requests = count,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "billing flushed"
        );
    }

    /// After a write whose outcome was lost: the records whose log row exists were written,
    /// so they leave `pending` (their accounts marked committed). False when the database
    /// cannot be asked now.
    async fn drop_written(&mut self, pending: &mut Vec<Settled>) -> bool {
        let ids: Vec<&str> = pending.iter().map(|r| r.log.request_id.as_str()).collect();
        let written = match self.store.logged_request_ids(&ids).await {
            Ok(written) => written,
            Err(error) => {
                tracing::warn!(%error, "cannot check which billing records were written; will retry");
                return false;
            }
        };
        self.sync.set_uncertain(false);
        if written.is_empty() {
            return true;
        }
        let (done, waiting): (Vec<Settled>, Vec<Settled>) = std::mem::take(pending)
            .into_iter()
            .partition(|r| written.contains(&r.log.request_id));
        tracing::info!(
            requests = done.len(),
            "billing records a broken write had committed are not written again"
        );
        self.committed(&done).await;
        *pending = waiting;
        true
    }

    /// One record the database refused: written again with its text replaced, else set aside.
    /// Returns it when the database must be waited for instead.
    async fn write_refused(&self, mut record: Settled, refused: &DbError) -> Option<Settled> {
        let original = record.log.clone();
        record.log.replace_text(&refused.to_string());
        let written = self.store.apply(&batch_of([Entry::from(&record)])).await;
        match written {
            Ok(()) => {
                self.committed(std::slice::from_ref(&record)).await;
                self.stats.text_replaced.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    request_id = %record.log.request_id,
                    user_id = record.log.user_id,
                    cost = record.log.cost,
                    error = %refused,
                    "the database refused a request's log text; written with the text replaced, its charge applied"
                );
                None
            }
            Err(error) if error.is_transient() => {
                record.log = original;
                Some(record)
            }
            Err(error) => {
                record.log = original;
                self.set_aside(vec![record], &error.to_string()).await;
                None
            }
        }
    }

    /// Appends records to the dead-letter file, loudly. Their accounts are marked committed,
    /// so the live balances mirror the database until the file is replayed.
    async fn set_aside(&self, records: Vec<Settled>, error: &str) {
        let letters: Vec<DeadLetter> = records
            .iter()
            .map(|record| {
                let entry = Entry::from(record);
                DeadLetter {
                    set_aside_at: now_ms(),
                    error: error.to_string(),
                    moves_balance: entry.moves_balance,
                    key_limited: entry.key_limited,
                    counted: entry.counted,
                    log: record.log.clone(),
                }
            })
            .collect();
        let file = self.dead_letters.clone();
        let to_write = letters.clone();
        let appended = tokio::task::spawn_blocking(move || file.append(&to_write))
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        self.stats
            .dead_lettered
            .fetch_add(letters.len() as u64, Ordering::Relaxed);
        self.committed(&records).await;
        let path = self.dead_letters.path().display();
        for letter in &letters {
            match &appended {
                Ok(()) => tracing::error!(
                    request_id = %letter.log.request_id,
                    user_id = letter.log.user_id,
                    cost = letter.log.cost,
                    %error,
                    "BILLING RECORD SET ASIDE: the database will not take it; it is in {path}, apply it with `tollgate billing replay {path}`"
                ),
                // The last place left: the log itself, whole, so it can be replayed by hand.
                Err(io) => tracing::error!(
                    record = %serde_json::to_string(letter).unwrap_or_default(),
                    %error,
                    "BILLING RECORD LOST FROM THE DATABASE AND THE DEAD-LETTER FILE ({path}: {io}); the record is in this log line"
                ),
            }
        }
    }
}
