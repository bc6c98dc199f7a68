//! The batched billing writer: one task that sums balance changes per user, key and channel,
//! and writes them with the request logs in one transaction per flush (every
//! `flush_interval`, default one second). A flush that fails is kept and retried, never dropped.
//! With a zero interval every record is written as it arrives.

use rustc_hash::FxHashMap as HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::ledger::Account;
use super::{Billing, Queue, Settled};
use crate::db::Db;
use crate::db::logs::{self, BalanceDelta, BillingBatch, RequestLog};

/// Flush early when this many requests are waiting, so memory stays flat however high the
/// request rate is.
pub(crate) const MAX_PENDING_ROWS: usize = 1024;

#[derive(Default)]
struct Pending {
    users: HashMap<i64, (BalanceDelta, Option<Arc<Account>>)>,
    tokens: HashMap<i64, (BalanceDelta, Option<Arc<Account>>)>,
    channels: HashMap<i64, BalanceDelta>,
    logs: Vec<RequestLog>,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.logs.is_empty() && self.users.is_empty()
    }

    fn add(&mut self, settled: Settled) {
        let Settled {
            log,
            user,
            token,
            counted,
        } = settled;
        let requests = i64::from(counted);
        if user.is_some() || counted {
            let (delta, account) = self.users.entry(log.user_id).or_insert_with(|| {
                (
                    BalanceDelta {
                        id: log.user_id,
                        ..BalanceDelta::default()
                    },
                    None,
                )
            });
            delta.quota -= log.cost;
            delta.used += log.cost;
            delta.requests += requests;
            if account.is_none() {
                *account = user;
            }
            let (delta, account) = self.tokens.entry(log.token_id).or_insert_with(|| {
                (
                    BalanceDelta {
                        id: log.token_id,
                        ..BalanceDelta::default()
                    },
                    None,
                )
            });
            // An unlimited key's remaining quota does not move; its usage still counts.
            if token.is_some() {
                delta.quota -= log.cost;
            }
            delta.used += log.cost;
            delta.requests += requests;
            delta.last_used_at = delta.last_used_at.max(log.created_at);
            if account.is_none() {
                *account = token;
            }
            if let Some(channel_id) = log.channel_id
                && counted
            {
                let delta = self.channels.entry(channel_id).or_insert(BalanceDelta {
                    id: channel_id,
                    ..BalanceDelta::default()
                });
                delta.used += log.cost;
                delta.requests += 1;
            }
        }
        self.logs.push(log);
    }

    /// Folds a batch that failed to write back in front of newer records.
    fn merge_back(&mut self, older: Pending) {
        let newer = std::mem::replace(self, older);
        for (id, (delta, account)) in newer.users {
            let entry = self.users.entry(id).or_insert((
                BalanceDelta {
                    id,
                    ..BalanceDelta::default()
                },
                None,
            ));
            add_delta(&mut entry.0, &delta);
            if entry.1.is_none() {
                entry.1 = account;
            }
        }
        for (id, (delta, account)) in newer.tokens {
            let entry = self.tokens.entry(id).or_insert((
                BalanceDelta {
                    id,
                    ..BalanceDelta::default()
                },
                None,
            ));
            add_delta(&mut entry.0, &delta);
            if entry.1.is_none() {
                entry.1 = account;
            }
        }
        for (id, delta) in newer.channels {
            let entry = self.channels.entry(id).or_insert(BalanceDelta {
                id,
                ..BalanceDelta::default()
            });
            add_delta(entry, &delta);
        }
        self.logs.extend(newer.logs);
    }

    /// The write to make; the log rows move into it (and back, should the write fail).
    fn take_batch(&mut self) -> BillingBatch {
        BillingBatch {
            users: self.users.values().map(|(d, _)| *d).collect(),
            tokens: self.tokens.values().map(|(d, _)| *d).collect(),
            channels: self.channels.values().copied().collect(),
            logs: std::mem::take(&mut self.logs),
        }
    }

    /// Moves the committed amounts from "unflushed" to "stored" on the live accounts.
    fn mark_committed(&self) {
        for (delta, account) in self.users.values().chain(self.tokens.values()) {
            if let Some(account) = account {
                account.committed(delta.quota);
            }
        }
    }
}

fn add_delta(into: &mut BalanceDelta, delta: &BalanceDelta) {
    into.quota += delta.quota;
    into.used += delta.used;
    into.requests += delta.requests;
    into.last_used_at = into.last_used_at.max(delta.last_used_at);
}

/// Starts the writer. The returned future runs until it is dropped; `Billing::flush` writes
/// everything queued so far.
pub fn start(
    db: Db,
    flush_interval: Duration,
) -> (
    Billing,
    impl std::future::Future<Output = ()> + Send + 'static,
) {
    let queue = Arc::new(Queue::default());
    let (flushes, flush_requests) = mpsc::unbounded_channel();
    let sync_lock = Arc::new(tokio::sync::Mutex::new(()));
    let billing = Billing {
        queue: queue.clone(),
        flushes,
        sync_lock: sync_lock.clone(),
        synchronous: flush_interval.is_zero(),
    };
    (
        billing,
        run(db, queue, flush_requests, sync_lock, flush_interval),
    )
}

async fn run(
    db: Db,
    queue: Arc<Queue>,
    mut flush_requests: mpsc::UnboundedReceiver<oneshot::Sender<()>>,
    sync_lock: Arc<tokio::sync::Mutex<()>>,
    flush_interval: Duration,
) {
    let mut ticker = tokio::time::interval(if flush_interval.is_zero() {
        Duration::from_secs(1)
    } else {
        flush_interval
    });
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut pending = Pending::default();
    loop {
        let ack = tokio::select! {
            request = flush_requests.recv() => match request {
                Some(ack) => Some(ack),
                None => return,
            },
            _ = queue.wake.notified() => None,
            _ = ticker.tick() => None,
        };
        for settled in queue.take() {
            pending.add(settled);
        }
        flush(&db, &sync_lock, &mut pending).await;
        if let Some(ack) = ack {
            // Someone is waiting for the records (a graceful stop, a synchronous request):
            // retry a brief database outage before answering.
            for attempt in 1..=5 {
                if pending.is_empty() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
                flush(&db, &sync_lock, &mut pending).await;
            }
            if !pending.is_empty() {
                tracing::error!(
                    requests = pending.logs.len(),
                    "billing records are still unwritten; the database keeps refusing them"
                );
            }
            let _ = ack.send(());
        }
    }
}

async fn flush(db: &Db, sync_lock: &tokio::sync::Mutex<()>, pending: &mut Pending) {
    if pending.is_empty() {
        return;
    }
    let mut taken = std::mem::take(pending);
    let batch = taken.take_batch();
    let _sync = sync_lock.lock().await;
    let started = std::time::Instant::now();
    match logs::apply_billing(db, &batch).await {
        Ok(()) => {
            taken.mark_committed();
            tracing::debug!(
                requests = batch.logs.len(),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "billing flushed"
            );
        }
        Err(e) => {
            tracing::error!(
                error = %e,
                requests = batch.logs.len(),
                "billing flush failed; will retry"
            );
            taken.logs = batch.logs;
            pending.merge_back(taken);
        }
    }
}
