//! Holds and settlements go to Redis in batches: one task per node sends whatever is waiting
//! as one script call, and what arrives meanwhile waits for the next. At one request at a time
//! a batch is one hold; under load one round trip carries many, and the script reads and
//! writes each scope once per batch however many requests it carries, so Redis, the
//! connection and both processes do a fraction of the work per request.
//!
//! The script applies the operations in the order they were queued, each exactly as a call of
//! its own would: a hold checks every scope and takes all or none; a settlement moves what its
//! scopes count in flight by the cost less the hold. A settlement needs no record of its hold:
//! its hold is in what Redis counts, because it was held there in this epoch, or because this
//! node's part was written again from memory since (every hold placed in memory, while Redis
//! was away, is placed while this node's part is known to need that).
//!
//! Each batch has a number of this node's own. The script keeps the last batch's number and
//! answer, so a batch sent again after a timeout (its first try may have been applied) applies
//! once and gets the same answer.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};

use redis::Script;
use tokio::sync::{mpsc, oneshot};

use super::super::{Cluster, Entered};
use crate::billing::rates::redis::worth_retrying;

/// The most operations one call carries: the script runs alone in Redis, so a batch is kept
/// short (a few hundred microseconds at most).
const MAX_BATCH: usize = 256;

/// A scope lends a lease only when it is at least this many holds of the size that asked:
/// near the end of a balance no lease is lent, and the last of it goes hold by hold to
/// whichever node asks, as without leases.
pub const LEASE_FLOOR: i64 = 16;

/// KEYS: epoch, this node's part, this node's last batch (a hash of its number and answer).
/// ARGV: epoch, this batch's number, how long the last batch is kept (ms), the lease spread
/// (a lease takes at most 1/spread of what a scope has left), then the operations:
///
/// - `h`, amount, n, then per scope its key, stored amount, mark, when its counters expire
///   (0: never) and the lease wanted: holds the amount on all n scopes or on none, and lends
///   each scope up to the lease wanted (see [`LEASE_FLOOR`]);
/// - `s`, n, then n pairs of scope key and change: moves what each counts in flight;
/// - `c`, n, then n pairs of scope key and cost: the billing writer committed the cost, which
///   moves from in flight to committed (in the queue's order, so never before the settlement
///   that made it in flight).
///
/// Returns {2} in another epoch (nothing applied), else 1 followed, per hold in order, by
/// `0, n, (left, lent)…` (held; what each scope has left after it, and what it lent) or
/// `1, index, available` (refused by the index-th scope). Amounts are exact below 2^53 (Lua's
/// numbers are doubles; a quota that large is not money).
static BATCH: LazyLock<Script> = LazyLock::new(|| {
    let source = r"
local FLOOR = LEASE_FLOOR
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {2} end
local last = redis.call('HMGET', KEYS[3], 'number', 'answer')
if last[1] == ARGV[2] then return cmsgpack.unpack(last[2]) end
local reply = {1}
local function put(v) reply[#reply + 1] = v end
-- Per scope touched: what it counts (read once), how far this batch moves it in flight, and
-- when it expires.
local counted, moved, expires, touched, committed = {}, {}, {}, {}, {}
local function touch(key)
  if not moved[key] then
    moved[key] = 0
    touched[#touched + 1] = key
  end
end
local function counts(key)
  local k = counted[key]
  if not k then
    touch(key)
    local v = redis.call('HMGET', key, 'c', 'p')
    k = {(tonumber(v[1]) or 0) + (committed[key] or 0), (tonumber(v[2]) or 0) + moved[key]}
    counted[key] = k
  end
  return k
end
local spread = tonumber(ARGV[4])
local i = 5
while i <= #ARGV do
  if ARGV[i] == 'h' then
    local figure = tonumber(ARGV[i + 1])
    local n = tonumber(ARGV[i + 2])
    local base = i + 3
    local available = {}
    local refused = false
    for j = 0, n - 1 do
      local s = base + 5 * j
      local k = counts(ARGV[s])
      available[j] = tonumber(ARGV[s + 1]) - (k[1] - tonumber(ARGV[s + 2])) - k[2]
      if available[j] < figure then
        put(1) put(j + 1) put(available[j])
        refused = true
        break
      end
    end
    if not refused then
      put(0) put(n)
      for j = 0, n - 1 do
        local s = base + 5 * j
        local key = ARGV[s]
        local want = tonumber(ARGV[s + 4])
        local lent = 0
        if want > 0 then
          local share = math.floor((available[j] - figure) / spread)
          if share >= figure * FLOOR then lent = math.min(share, want) end
        end
        local taken = figure + lent
        counted[key][2] = counted[key][2] + taken
        moved[key] = moved[key] + taken
        if ARGV[s + 3] ~= '0' then expires[key] = ARGV[s + 3] end
        put(available[j] - taken) put(lent)
      end
    end
    i = base + 5 * n
  else
    local commit = ARGV[i] == 'c'
    local n = tonumber(ARGV[i + 1])
    for j = 0, n - 1 do
      local key = ARGV[i + 2 + 2 * j]
      local change = tonumber(ARGV[i + 3 + 2 * j])
      touch(key)
      if commit then
        committed[key] = (committed[key] or 0) + change
        if counted[key] then counted[key][1] = counted[key][1] + change end
        change = -change
      end
      moved[key] = moved[key] + change
      if counted[key] then counted[key][2] = counted[key][2] + change end
    end
    i = i + 2 + 2 * n
  end
end
for _, key in ipairs(touched) do
  if committed[key] then redis.call('HINCRBY', key, 'c', string.format('%d', committed[key])) end
  if moved[key] ~= 0 then
    local by = string.format('%d', moved[key])
    redis.call('HINCRBY', key, 'p', by)
    if redis.call('HINCRBY', KEYS[2], key, by) == 0 then redis.call('HDEL', KEYS[2], key) end
  end
  if expires[key] then redis.call('PEXPIREAT', key, expires[key]) end
end
redis.call('HSET', KEYS[3], 'number', ARGV[2], 'answer', cmsgpack.pack(reply))
redis.call('PEXPIRE', KEYS[3], ARGV[3])
return reply
";
    Script::new(&source.replace("LEASE_FLOOR", &LEASE_FLOOR.to_string()))
});

/// One scope of a hold, as the script takes it.
pub struct HeldScope {
    pub key: String,
    pub stored: i64,
    pub mark: i64,
    /// When the scope's counters expire (ms since the epoch; 0: never).
    pub expires: i64,
    /// The most it may lend this node beyond the hold (0: no lease).
    pub want: i64,
}

/// What Redis said of a hold.
#[derive(Debug, PartialEq, Eq)]
pub enum HoldAnswer {
    /// Held: what each scope has left, and what it lent this node beyond the hold.
    Held(Vec<(i64, i64)>),
    /// Refused by the scope at this index (from 0), which had this much available.
    Refused { index: usize, available: i64 },
    /// Redis is in another epoch: it lost its counters.
    OtherEpoch,
}

enum Operation {
    Hold {
        amount: i64,
        scopes: Vec<HeldScope>,
        answer: oneshot::Sender<redis::RedisResult<HoldAnswer>>,
    },
    Settle {
        /// Each scope's key and how far what it counts in flight moves.
        changes: Vec<(String, i64)>,
        /// Keeps a rewrite of this node's part waiting until Redis has it (the memory was
        /// settled when it was queued).
        _entered: Entered,
        done: oneshot::Sender<()>,
    },
    Commit {
        /// The epoch the costs were in flight in: in another, they are not (this node's part
        /// was written again from memory, where they are committed already).
        epoch: String,
        costs: Vec<(String, i64)>,
        _entered: Entered,
        /// Whether Redis may not have it (the call failed).
        failed: oneshot::Sender<bool>,
    },
}

/// The queue of one node's holds and settlements, sent by a task of its own.
#[derive(Debug)]
pub struct Batches {
    queue: mpsc::UnboundedSender<Operation>,
}

/// Numbers this process's batches (shared by every node a test runs in one process).
static BATCH_NUMBER: AtomicU64 = AtomicU64::new(0);

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
        amount: i64,
        scopes: Vec<HeldScope>,
    ) -> redis::RedisResult<HoldAnswer> {
        let (answer, answered) = oneshot::channel();
        let sent = self.queue.send(Operation::Hold {
            amount,
            scopes,
            answer,
        });
        if sent.is_err() {
            return Err(stopped());
        }
        answered.await.unwrap_or_else(|_| Err(stopped()))
    }

    /// Moves what each scope counts in flight by its change (a settlement's cost less its
    /// hold, or a lease given back) in the next batch. The returned receiver hears when Redis
    /// has it (or the call failed).
    pub fn settle(&self, changes: Vec<(String, i64)>, entered: Entered) -> oneshot::Receiver<()> {
        let (done, applied) = oneshot::channel();
        // A stopped sender belongs to a node shutting down: its memory is settled already.
        let _ = self.queue.send(Operation::Settle {
            changes,
            _entered: entered,
            done,
        });
        applied
    }
}

impl Batches {
    /// Moves `costs` (by scope key) from in flight to committed in the next batch, if Redis is
    /// still in `epoch` then. The receiver hears true when the call failed (it may have
    /// applied or not).
    pub fn commit(
        &self,
        epoch: String,
        costs: Vec<(String, i64)>,
        entered: Entered,
    ) -> oneshot::Receiver<bool> {
        let (failed, answered) = oneshot::channel();
        let _ = self.queue.send(Operation::Commit {
            epoch,
            costs,
            _entered: entered,
            failed,
        });
        answered
    }
}

fn stopped() -> redis::RedisError {
    redis::RedisError::from((redis::ErrorKind::Io, "the node's Redis sender has stopped"))
}

async fn send_batches(cluster: Arc<Cluster>, mut waiting: mpsc::UnboundedReceiver<Operation>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while waiting.recv_many(&mut batch, MAX_BATCH).await > 0 {
        send(&cluster, &mut batch).await;
    }
}

/// The script call that applies `batch`, under a number of its own.
fn invocation(cluster: &Cluster, batch: &[Operation]) -> redis::ScriptInvocation<'static> {
    let mut call = BATCH.prepare_invoke();
    let epoch = cluster.epoch();
    call.key(cluster.key("epoch"))
        .key(cluster.node_key())
        .key(cluster.batch_key())
        .arg(&epoch)
        .arg(BATCH_NUMBER.fetch_add(1, Ordering::Relaxed))
        .arg(super::super::millis(super::super::LEASE))
        .arg(lease_spread(cluster));
    for operation in batch {
        match operation {
            Operation::Hold { amount, scopes, .. } => {
                call.arg("h").arg(amount).arg(scopes.len());
                for scope in scopes {
                    call.arg(&scope.key)
                        .arg(scope.stored)
                        .arg(scope.mark)
                        .arg(scope.expires)
                        .arg(scope.want);
                }
            }
            Operation::Settle { changes, .. } => {
                call.arg("s").arg(changes.len());
                for (scope, change) in changes {
                    call.arg(scope).arg(change);
                }
            }
            Operation::Commit {
                epoch: theirs,
                costs,
                ..
            } => {
                if *theirs != epoch {
                    continue;
                }
                call.arg("c").arg(costs.len());
                for (scope, cost) in costs {
                    call.arg(scope).arg(cost);
                }
            }
        }
    }
    call
}

/// A lease takes at most a quarter of a scope's share among the nodes seen: what is left,
/// divided by four times their number. So the nodes together lend out at most about a quarter
/// of any scope, and one request never finds most of a balance lent to other nodes.
fn lease_spread(cluster: &Cluster) -> i64 {
    i64::try_from(cluster.nodes_seen())
        .unwrap_or(i64::MAX / 4)
        .saturating_mul(4)
}

/// Sends one batch and hands out the answers; `batch` is left empty.
async fn send(cluster: &Cluster, batch: &mut Vec<Operation>) {
    let call = invocation(cluster, batch);
    let mut connection = cluster.connection();
    let started = std::time::Instant::now();
    let mut result: redis::RedisResult<Vec<i64>> = call.invoke_async(&mut connection).await;
    // The script keeps the last batch's answer, so a second try cannot apply twice.
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
            Operation::Commit { failed, .. } => {
                let _ = failed.send(result.is_err());
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
                if count != scopes {
                    return Err(malformed());
                }
                let mut scopes = Vec::with_capacity(count);
                for _ in 0..count {
                    let (Some(left), Some(lent)) = (reply.next(), reply.next()) else {
                        return Err(malformed());
                    };
                    scopes.push((*left, *lent));
                }
                Ok(HoldAnswer::Held(scopes))
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

/// Sends a batch of one hold twice, as after a timeout whose first try was applied: both
/// replies.
#[cfg(test)]
pub(super) async fn hold_sent_twice(
    cluster: &Cluster,
    amount: i64,
    scopes: Vec<HeldScope>,
) -> [Vec<i64>; 2] {
    let (answer, _) = oneshot::channel();
    let call = invocation(
        cluster,
        &[Operation::Hold {
            amount,
            scopes,
            answer,
        }],
    );
    let mut connection = cluster.connection();
    let first = call.invoke_async(&mut connection).await.unwrap();
    let second = call.invoke_async(&mut connection).await.unwrap();
    [first, second]
}
