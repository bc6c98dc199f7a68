//! Holds and settlements go to Redis in batches: one task per node sends whatever is waiting
//! as one script call, and what arrives meanwhile waits for the next. At one request at a time
//! a batch is one hold (no wait is added); under load one round trip carries many, so Redis,
//! the connection and both processes do a fraction of the work per request.
//!
//! The script applies the operations in the order they were queued, each exactly as a call of
//! its own would: a hold checks every scope and takes all or none, a settlement swaps its hold
//! for the cost once. A batch retried after a timeout applies once, since every operation is
//! keyed by its request's hold.

use std::sync::{Arc, LazyLock};

use redis::Script;
use tokio::sync::{mpsc, oneshot};

use super::super::{Cluster, Entered};

/// The most operations one call carries: the script runs alone in Redis, so a batch is kept
/// short (a few hundred microseconds at most).
const MAX_BATCH: usize = 256;

/// A hold's record lives this long: far longer than any request, short enough that holds of
/// a node whose settlement never came do not pile up.
const HOLD_TTL_SECS: i64 = 24 * 3600;

/// KEYS: epoch, this node's part. ARGV: epoch, the hold TTL (seconds), then the operations:
///
/// - `h`, hold key, amount, n, then per scope its key, stored amount, mark and when its
///   counters expire (0: never): holds the amount on all n scopes or on none;
/// - `s`, hold key, cost, n, then n scope keys: swaps the hold for the cost, once.
///
/// Returns {2} in another epoch (nothing applied), else 1 followed, per hold in order, by
/// `0, n, left…` (held; what each scope has left after it; n is 0 for a hold already placed)
/// or `1, index, available` (refused by the index-th scope).
static BATCH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {2} end
local reply = {1}
local function put(v) reply[#reply + 1] = v end
local i = 3
while i <= #ARGV do
  local hold = ARGV[i + 1]
  local figure = ARGV[i + 2]
  local n = tonumber(ARGV[i + 3])
  if ARGV[i] == 'h' then
    local base = i + 4
    if redis.call('EXISTS', hold) == 1 then
      put(0) put(0)
    else
      local amount = tonumber(figure)
      local available = {}
      local refused = false
      for j = 0, n - 1 do
        local s = base + 4 * j
        local v = redis.call('HMGET', ARGV[s], 'c', 'p')
        available[j] = tonumber(ARGV[s + 1]) - ((tonumber(v[1]) or 0) - tonumber(ARGV[s + 2])) - (tonumber(v[2]) or 0)
        if available[j] < amount then
          put(1) put(j + 1) put(available[j])
          refused = true
          break
        end
      end
      if not refused then
        put(0) put(n)
        for j = 0, n - 1 do
          local s = base + 4 * j
          local key = ARGV[s]
          redis.call('HINCRBY', key, 'p', figure)
          redis.call('HINCRBY', KEYS[2], key, figure)
          if ARGV[s + 3] ~= '0' then redis.call('PEXPIREAT', key, ARGV[s + 3]) end
          put(available[j] - amount)
        end
        redis.call('SET', hold, figure, 'EX', ARGV[2])
      end
    end
    i = base + 4 * n
  else
    local held = redis.call('GET', hold)
    if held then
      redis.call('DEL', hold)
      -- Exact while both are below 2^53 (a quota that large is not money).
      local change = string.format('%d', tonumber(figure) - tonumber(held))
      for j = 0, n - 1 do
        local key = ARGV[i + 4 + j]
        redis.call('HINCRBY', key, 'p', change)
        if redis.call('HINCRBY', KEYS[2], key, change) == 0 then redis.call('HDEL', KEYS[2], key) end
      end
    end
    i = i + 4 + n
  end
end
return reply
",
    )
});

/// One scope of a hold, as the script takes it.
pub struct HeldScope {
    pub key: String,
    pub stored: i64,
    pub mark: i64,
    /// When the scope's counters expire (ms since the epoch; 0: never).
    pub expires: i64,
}

/// What Redis said of a hold.
#[derive(Debug, PartialEq, Eq)]
pub enum HoldAnswer {
    /// Held (or held already, with nothing left to report): what each scope has left.
    Held(Vec<i64>),
    /// Refused by the scope at this index (from 0), which had this much available.
    Refused { index: usize, available: i64 },
    /// Redis is in another epoch: it lost its counters.
    OtherEpoch,
}

enum Operation {
    Hold {
        key: String,
        amount: i64,
        scopes: Vec<HeldScope>,
        answer: oneshot::Sender<redis::RedisResult<HoldAnswer>>,
    },
    Settle {
        key: String,
        cost: i64,
        scopes: Vec<String>,
        /// Keeps a rewrite of this node's part waiting until Redis has it (the memory was
        /// settled when it was queued).
        _entered: Entered,
        done: oneshot::Sender<()>,
    },
}

/// The queue of one node's holds and settlements, sent by a task of its own.
#[derive(Debug)]
pub struct Batches {
    queue: mpsc::UnboundedSender<Operation>,
}

impl Batches {
    /// Starts the node's sender (on the current runtime); it stops when this is dropped.
    pub fn start(cluster: Arc<Cluster>) -> Batches {
        let (queue, waiting) = mpsc::unbounded_channel();
        tokio::spawn(send_batches(cluster, waiting));
        Batches { queue }
    }

    /// Holds `amount` on every scope or on none, in the next batch.
    pub async fn hold(
        &self,
        key: String,
        amount: i64,
        scopes: Vec<HeldScope>,
    ) -> redis::RedisResult<HoldAnswer> {
        let (answer, answered) = oneshot::channel();
        let sent = self.queue.send(Operation::Hold {
            key,
            amount,
            scopes,
            answer,
        });
        if sent.is_err() {
            return Err(stopped());
        }
        answered.await.unwrap_or_else(|_| Err(stopped()))
    }

    /// Swaps the hold under `key` for `cost` in the next batch. The returned receiver hears
    /// when Redis has it (or the call failed).
    pub fn settle(
        &self,
        key: String,
        cost: i64,
        scopes: Vec<String>,
        entered: Entered,
    ) -> oneshot::Receiver<()> {
        let (done, applied) = oneshot::channel();
        // A stopped sender belongs to a node shutting down: its memory is settled already.
        let _ = self.queue.send(Operation::Settle {
            key,
            cost,
            scopes,
            _entered: entered,
            done,
        });
        applied
    }
}

fn stopped() -> redis::RedisError {
    redis::RedisError::from((redis::ErrorKind::Io, "the node's Redis sender has stopped"))
}

/// Whether a failed call may have been a slow answer worth one more try (every operation is
/// keyed by its hold, so a second try cannot apply twice).
fn worth_retrying(error: &redis::RedisError) -> bool {
    error.is_timeout() || error.is_connection_dropped() || error.is_io_error()
}

async fn send_batches(cluster: Arc<Cluster>, mut waiting: mpsc::UnboundedReceiver<Operation>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while waiting.recv_many(&mut batch, MAX_BATCH).await > 0 {
        send(&cluster, &mut batch).await;
    }
}

/// Sends one batch and hands out the answers; `batch` is left empty.
async fn send(cluster: &Cluster, batch: &mut Vec<Operation>) {
    let mut call = BATCH.prepare_invoke();
    call.key(cluster.key("epoch"))
        .key(cluster.node_key())
        .arg(cluster.epoch())
        .arg(HOLD_TTL_SECS);
    for operation in batch.iter() {
        match operation {
            Operation::Hold {
                key,
                amount,
                scopes,
                ..
            } => {
                call.arg("h").arg(key).arg(amount).arg(scopes.len());
                for scope in scopes {
                    call.arg(&scope.key)
                        .arg(scope.stored)
                        .arg(scope.mark)
                        .arg(scope.expires);
                }
            }
            Operation::Settle {
                key, cost, scopes, ..
            } => {
                call.arg("s").arg(key).arg(cost).arg(scopes.len());
                for scope in scopes {
                    call.arg(scope);
                }
            }
        }
    }
    let mut connection = cluster.connection();
    let started = std::time::Instant::now();
    let mut result: redis::RedisResult<Vec<i64>> = call.invoke_async(&mut connection).await;
    if matches!(&result, Err(e) if worth_retrying(e)) {
        result = call.invoke_async(&mut connection).await;
    }
    cluster.took(started);
    cluster.answered(&result);
    let mut answers = match &result {
        Ok(reply) => Answers::read(reply),
        Err(_) => Answers::Failed,
    };
    if matches!(answers, Answers::OtherEpoch) {
        // Redis lost its counters: this node writes its part again (its next beat) before it
        // holds anything there.
        cluster.mark_dirty();
    }
    for operation in batch.drain(..) {
        match operation {
            Operation::Hold { scopes, answer, .. } => {
                let _ = answer.send(answers.next_hold(scopes.len(), &result));
            }
            Operation::Settle { done, .. } => {
                let _ = done.send(());
            }
        }
    }
}

/// Reads the script's reply hold by hold.
enum Answers<'a> {
    Reply(std::slice::Iter<'a, i64>),
    OtherEpoch,
    Failed,
}

impl<'a> Answers<'a> {
    fn read(reply: &'a [i64]) -> Answers<'a> {
        match reply.split_first() {
            Some((1, rest)) => Answers::Reply(rest.iter()),
            _ => Answers::OtherEpoch,
        }
    }

    /// The next hold's answer (of `scopes` scopes); an error when the call failed or the reply
    /// is short.
    fn next_hold(
        &mut self,
        scopes: usize,
        result: &redis::RedisResult<Vec<i64>>,
    ) -> redis::RedisResult<HoldAnswer> {
        let reply = match self {
            Answers::OtherEpoch => return Ok(HoldAnswer::OtherEpoch),
            Answers::Failed => {
                return Err(match result {
                    Err(e) => e.clone(),
                    Ok(_) => malformed(),
                });
            }
            Answers::Reply(reply) => reply,
        };
        match reply.next() {
            Some(0) => {
                let count = reply.next().copied().ok_or_else(malformed)?;
                let count = usize::try_from(count).map_err(|_| malformed())?;
                if count != 0 && count != scopes {
                    return Err(malformed());
                }
                let left: Vec<i64> = reply.by_ref().take(count).copied().collect();
                if left.len() != count {
                    return Err(malformed());
                }
                Ok(HoldAnswer::Held(left))
            }
            Some(1) => {
                let (Some(index), Some(available)) = (reply.next(), reply.next()) else {
                    return Err(malformed());
                };
                let index = usize::try_from(*index - 1).map_err(|_| malformed())?;
                Ok(HoldAnswer::Refused {
                    index,
                    available: *available,
                })
            }
            _ => Err(malformed()),
        }
    }
}

fn malformed() -> redis::RedisError {
    redis::RedisError::from((
        redis::ErrorKind::Parse,
        "Redis answered a batch of holds in a form Tollgate does not know",
    ))
}
