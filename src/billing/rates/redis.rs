//! The rate store of several servers: every counter in Redis, so N nodes together hold each
//! limit as one would.
//!
//! Admissions and settlements go to Redis in batches, as holds on budgets do
//! (`cluster::scopes::batch`): one task per store sends whatever is waiting as one script
//! call, and what arrives meanwhile waits for the next. At one request at a time a batch is
//! one admission; under load one round trip carries many, and the script reads and writes
//! each subject's counters once per batch however many requests it carries.
//!
//! The script applies the operations in the order they were queued, each exactly as a call of
//! its own would: an admission reads every subject's counters, decides by the rule of
//! [`crate::domain::rate_limits::check`] and takes the request on all of them or none; a
//! settlement frees the request's slots and corrects its tokens. Redis's own clock (`TIME`,
//! read once per batch) is the one clock, so nodes whose clocks differ still count the same
//! minute.
//!
//! Keys, under the configured prefix (`tollgate:` by default):
//! - `rate:key:ID` / `rate:account:ID`: a hash of the two windows' buckets (`rs rc rp` for
//!   requests, `ts tc tp` for tokens: bucket start, current, previous), expiring once nothing
//!   in it counts;
//! - `…:slots`: the requests in flight, a sorted set of request ids by when their lease ends;
//! - `rate:hold:REQUEST_ID`: the bucket a request's tokens were held in. It makes an admission
//!   sent again apply once and a settlement apply once, and expires with the lease;
//! - `rate:batch:STORE`: this store's last batch, its number and answer, so a batch sent again
//!   after a timeout (its first try may have been applied) applies once and gets the same
//!   answer.
//!
//! A slot is leased: a node that dies with requests in flight leaves slots that free
//! themselves when their lease ends (10 minutes unless set otherwise); a request running
//! longer than its lease stops counting against the concurrency limit then.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;
use redis::aio::ConnectionManager;
use smallvec::SmallVec;
use tokio::sync::{mpsc, oneshot};

use super::{Admitted, AdmittedSubject, RateError, RateRefusal, RateStore, RateSubject, status_of};
use crate::domain::rate_limits::{self, LimitKind, RateLimits, Reading, WINDOW_MS, Window};

/// How long a slot stays taken without its settlement.
pub const DEFAULT_SLOT_LEASE: Duration = Duration::from_secs(600);

/// The most operations one call carries: the script runs alone in Redis, so a batch is kept
/// short.
const MAX_BATCH: usize = 256;

/// How long Redis keeps a store's last batch: far longer than a call is ever sent again.
const LAST_BATCH_KEPT_MS: i64 = 60_000;

const BATCH: &str = r#"
-- KEYS[1]: this store's last batch (a hash of its number and answer).
-- ARGV: this batch's number, how long the last batch is kept (ms), window_ms, the key prefix
-- of hold records, then the operations:
-- 'a', request_id, tokens, lease_ms, n, then per subject its counters' key (a hash; its slots
--   are the sorted set at the key followed by ':slots'), rpm, tpm, max_concurrent (-1: no
--   limit): takes the request on every subject or none;
-- 's', request_id, tokens held, tokens used, n, then per subject its counters' key and 1 when
--   the request holds one of its slots: frees the slots and corrects the tokens, once.
-- Returns {now, then per admission in order: admitted (1/0), bucket start (admitted) or
-- refusing subject (1-based), refusing limit (1 requests, 2 tokens, 3 slots; 0), then per
-- subject rs rc rp ts tc tp slots: with the request when admitted, else without}.
local last = redis.call('HMGET', KEYS[1], 'number', 'answer')
if last[1] == ARGV[1] then return cmsgpack.unpack(last[2]) end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local W = tonumber(ARGV[3])
local holds = ARGV[4]
local start = now - (now % W)
local reply = {now}
local function put(v) reply[#reply + 1] = v end

local function roll(s, c, p)
  if start <= s then return s, c, p end
  if start - s == W then return start, 0, c end
  return start, 0, 0
end

local function used(s, c, p)
  local left = W - (now - s)
  if left < 0 then left = 0 elseif left > W then left = W end
  return math.ceil(p * left / W) + c
end

-- Per subject touched, read once: {rs, rc, rp, ts, tc, tp, slots in flight (nil: not read)}.
local subjects, order, changed, leases = {}, {}, {}, {}
local function subject(key)
  local r = subjects[key]
  if not r then
    local h = redis.call('HMGET', key, 'rs', 'rc', 'rp', 'ts', 'tc', 'tp')
    local rs, rc, rp = roll(tonumber(h[1]) or 0, tonumber(h[2]) or 0, tonumber(h[3]) or 0)
    local ts, tc, tp = roll(tonumber(h[4]) or 0, tonumber(h[5]) or 0, tonumber(h[6]) or 0)
    r = {rs, rc, rp, ts, tc, tp}
    subjects[key] = r
    order[#order + 1] = key
  end
  return r
end
local function busy(key, r)
  if r[7] == nil then
    redis.call('ZREMRANGEBYSCORE', key .. ':slots', '-inf', now)
    r[7] = redis.call('ZCARD', key .. ':slots')
  end
  return r[7]
end

local i = 5
while i <= #ARGV do
  if ARGV[i] == 'a' then
    local id, tokens, lease, n = ARGV[i + 1], tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3]), tonumber(ARGV[i + 4])
    local base = i + 5
    local readings = {}
    for j = 0, n - 1 do
      local s = base + 4 * j
      local r = subject(ARGV[s])
      local slots = 0
      if tonumber(ARGV[s + 3]) >= 0 then slots = busy(ARGV[s], r) end
      readings[j] = {r[1], r[2], r[3], r[4], r[5], r[6], slots}
    end
    local function answer(admitted, third, fourth)
      put(admitted) put(third) put(fourth)
      for j = 0, n - 1 do
        for k = 1, 7 do put(readings[j][k]) end
      end
    end
    local held = redis.call('GET', holds .. id)
    if held then
      -- Admitted already (an admission sent again): it was taken then.
      answer(1, tonumber(held), 0)
    else
      local refused = false
      for j = 0, n - 1 do
        local s = base + 4 * j
        local r = readings[j]
        local rpm, tpm, slots = tonumber(ARGV[s + 1]), tonumber(ARGV[s + 2]), tonumber(ARGV[s + 3])
        if rpm >= 0 and used(r[1], r[2], r[3]) + 1 > rpm then answer(0, j + 1, 1) refused = true break end
        if tpm >= 0 and used(r[4], r[5], r[6]) + tokens > tpm then answer(0, j + 1, 2) refused = true break end
        if slots >= 0 and r[7] >= slots then answer(0, j + 1, 3) refused = true break end
      end
      if not refused then
        for j = 0, n - 1 do
          local s = base + 4 * j
          local key = ARGV[s]
          local r, seen = subjects[key], readings[j]
          r[2] = r[2] + 1
          r[5] = r[5] + tokens
          seen[2] = r[2]
          seen[5] = r[5]
          changed[key] = true
          if tonumber(ARGV[s + 3]) >= 0 then
            redis.call('ZADD', key .. ':slots', now + lease, id)
            r[7] = r[7] + 1
            seen[7] = r[7]
            if (leases[key] or 0) < lease then leases[key] = lease end
          end
        end
        redis.call('SET', holds .. id, start, 'PX', lease)
        answer(1, start, 0)
      end
    end
    i = base + 4 * n
  else
    local id, held, spent, n = ARGV[i + 1], tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3]), tonumber(ARGV[i + 4])
    local base = i + 5
    local bucket = redis.call('GET', holds .. id)
    -- Settled already (a retry), or the lease ran out: nothing left to undo.
    if bucket then
      redis.call('DEL', holds .. id)
      bucket = tonumber(bucket)
      for j = 0, n - 1 do
        local key = ARGV[base + 2 * j]
        if ARGV[base + 2 * j + 1] == '1' then
          local freed = redis.call('ZREM', key .. ':slots', id)
          local r = subjects[key]
          if r and r[7] ~= nil then r[7] = r[7] - freed end
        end
        -- The counters are read only when the tokens need correcting.
        if held ~= spent then
          local r = subject(key)
          if r[4] == bucket then
            r[5] = math.max(0, r[5] - held) + spent
            changed[key] = true
          elseif r[4] - W == bucket then
            r[6] = math.max(0, r[6] - held) + spent
            changed[key] = true
          end
        end
      end
    end
    i = base + 2 * n
  end
end

for _, key in ipairs(order) do
  if changed[key] then
    local r = subjects[key]
    redis.call('HSET', key, 'rs', r[1], 'rc', r[2], 'rp', r[3], 'ts', r[4], 'tc', r[5], 'tp', r[6])
    -- What is counted now counts until the end of the next bucket.
    redis.call('PEXPIRE', key, 2 * W)
  end
  if leases[key] then redis.call('PEXPIRE', key .. ':slots', leases[key]) end
end
redis.call('HSET', KEYS[1], 'number', ARGV[1], 'answer', cmsgpack.pack(reply))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return reply
"#;

/// One admission or settlement waiting for the next batch.
enum Operation {
    Admit {
        request_id: String,
        tokens: i64,
        lease_ms: i64,
        /// Each subject's counters' key and its limits.
        subjects: SmallVec<[(String, RateLimits); 2]>,
        answer: oneshot::Sender<redis::RedisResult<Vec<i64>>>,
    },
    Settle {
        request_id: String,
        held: i64,
        used: i64,
        /// Each subject's counters' key, and whether the request holds one of its slots.
        subjects: SmallVec<[(String, bool); 2]>,
        failed: oneshot::Sender<bool>,
    },
}

/// Rate limits counted in Redis (see the module's doc).
#[derive(Clone)]
pub struct RedisRateStore {
    prefix: String,
    lease: Duration,
    queue: mpsc::UnboundedSender<Operation>,
}

impl std::fmt::Debug for RedisRateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisRateStore")
            .field("prefix", &self.prefix)
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

/// A number a limit is sent as: -1 for none.
fn limit_arg(limit: Option<u64>) -> i64 {
    limit.map_or(-1, |value| i64::try_from(value).unwrap_or(i64::MAX))
}

fn as_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn as_u64(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// Whether a call may have been lost on its way, so sending it once more is worth it. Only for
/// calls that apply once however often they are sent (here: once per request id).
pub(crate) fn worth_retrying(error: &redis::RedisError) -> bool {
    error.is_io_error() || error.is_timeout() || error.is_connection_dropped()
}

impl RedisRateStore {
    /// Counts under `prefix` (e.g. `tollgate:`) through `connection`, which reconnects by
    /// itself. Starts the store's sender on the current runtime; it stops when the last clone
    /// of the store is dropped.
    pub fn new(connection: ConnectionManager, prefix: impl Into<String>) -> RedisRateStore {
        let prefix = prefix.into();
        let (queue, waiting) = mpsc::unbounded_channel();
        let sender = Sender {
            connection,
            last_batch: format!("{prefix}rate:batch:{}", uuid::Uuid::new_v4().simple()),
            holds: format!("{prefix}rate:hold:"),
            script: redis::Script::new(BATCH),
            number: AtomicU64::new(0),
        };
        tokio::spawn(sender.run(waiting));
        RedisRateStore {
            prefix,
            lease: DEFAULT_SLOT_LEASE,
            queue,
        }
    }

    /// Sets how long a concurrency slot stays taken without its settlement.
    pub fn with_slot_lease(mut self, lease: Duration) -> RedisRateStore {
        self.lease = lease.max(Duration::from_millis(1));
        self
    }

    fn counters_key(&self, id: super::RateId) -> String {
        format!("{}rate:{}:{}", self.prefix, id.scope.as_str(), id.row)
    }
}

/// The task that sends a store's batches.
struct Sender {
    connection: ConnectionManager,
    /// This store's last batch: its number and answer.
    last_batch: String,
    /// The prefix of hold records' keys.
    holds: String,
    script: redis::Script,
    number: AtomicU64,
}

impl Sender {
    async fn run(self, mut waiting: mpsc::UnboundedReceiver<Operation>) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        while waiting.recv_many(&mut batch, MAX_BATCH).await > 0 {
            self.send(&mut batch).await;
        }
    }

    /// The script call that applies `batch`, under a number of its own.
    fn invocation(&self, batch: &[Operation]) -> redis::ScriptInvocation<'_> {
        let mut call = self.script.prepare_invoke();
        call.key(&self.last_batch)
            .arg(self.number.fetch_add(1, Ordering::Relaxed))
            .arg(LAST_BATCH_KEPT_MS)
            .arg(WINDOW_MS)
            .arg(&self.holds);
        for operation in batch {
            match operation {
                Operation::Admit {
                    request_id,
                    tokens,
                    lease_ms,
                    subjects,
                    ..
                } => {
                    call.arg("a")
                        .arg(request_id)
                        .arg(tokens)
                        .arg(lease_ms)
                        .arg(subjects.len());
                    for (counters, limits) in subjects {
                        call.arg(counters)
                            .arg(limit_arg(limits.rpm))
                            .arg(limit_arg(limits.tpm))
                            .arg(limit_arg(limits.max_concurrent));
                    }
                }
                Operation::Settle {
                    request_id,
                    held,
                    used,
                    subjects,
                    ..
                } => {
                    call.arg("s")
                        .arg(request_id)
                        .arg(held)
                        .arg(used)
                        .arg(subjects.len());
                    for (counters, slot) in subjects {
                        call.arg(counters).arg(if *slot { "1" } else { "0" });
                    }
                }
            }
        }
        call
    }

    /// Sends one batch and hands out the answers; `batch` is left empty.
    async fn send(&self, batch: &mut Vec<Operation>) {
        let call = self.invocation(batch);
        let mut connection = self.connection.clone();
        let mut result: redis::RedisResult<Vec<i64>> = call.invoke_async(&mut connection).await;
        // The script keeps the last batch's answer, so a second try cannot apply twice.
        if matches!(&result, Err(error) if worth_retrying(error)) {
            tracing::debug!("a batch of rate-limit calls is sent to Redis again");
            result = call.invoke_async(&mut connection).await;
        }
        // Each admission's part of the reply: three numbers and seven per subject, after `now`.
        let mut reply = match &result {
            Ok(reply) if !reply.is_empty() => Ok((reply[0], &reply[1..])),
            Ok(_) => Err(malformed()),
            Err(error) => Err(error.clone()),
        };
        for operation in batch.drain(..) {
            match operation {
                Operation::Admit {
                    subjects, answer, ..
                } => {
                    let part = reply
                        .as_mut()
                        .map_err(|e| e.clone())
                        .and_then(|(now, rest)| {
                            let length = 3 + 7 * subjects.len();
                            if rest.len() < length {
                                return Err(malformed());
                            }
                            let (part, tail) = rest.split_at(length);
                            *rest = tail;
                            // As the admission's own call answered: admitted, now, then the rest.
                            let mut answer = Vec::with_capacity(length + 1);
                            answer.extend([part[0], *now]);
                            answer.extend_from_slice(&part[1..]);
                            Ok(answer)
                        });
                    let _ = answer.send(part);
                }
                Operation::Settle { failed, .. } => {
                    let _ = failed.send(result.is_err());
                }
            }
        }
    }
}

fn malformed() -> redis::RedisError {
    redis::RedisError::from((
        redis::ErrorKind::Parse,
        "Redis answered a batch of rate-limit calls in a form Tollgate does not know",
    ))
}

fn stopped() -> redis::RedisError {
    redis::RedisError::from((redis::ErrorKind::Io, "the rate-limit sender has stopped"))
}

/// The readings an admission script returned, seven numbers per subject.
fn readings(numbers: &[i64]) -> SmallVec<[Reading; 2]> {
    numbers
        .chunks_exact(7)
        .map(|r| Reading {
            requests: Window {
                start_ms: r[0],
                current: as_u64(r[1]),
                previous: as_u64(r[2]),
            },
            tokens: Window {
                start_ms: r[3],
                current: as_u64(r[4]),
                previous: as_u64(r[5]),
            },
            in_flight: as_u64(r[6]),
        })
        .collect()
}

#[async_trait::async_trait]
impl RateStore for RedisRateStore {
    async fn admit(
        &self,
        request_id: &str,
        subjects: &[RateSubject],
        tokens: u64,
    ) -> Result<Admitted, RateError> {
        let (answer, answered) = oneshot::channel();
        let operation = Operation::Admit {
            request_id: request_id.to_string(),
            tokens: as_i64(tokens),
            lease_ms: i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX),
            subjects: subjects
                .iter()
                .map(|subject| (self.counters_key(subject.id), subject.limits))
                .collect(),
            answer,
        };
        let answer = match self.queue.send(operation) {
            Ok(()) => answered.await.unwrap_or_else(|_| Err(stopped())),
            Err(_) => Err(stopped()),
        }
        .map_err(|error| {
            RateError::Unavailable(format!("the rate-limit store did not answer: {error}"))
        })?;
        let [admitted, now, third, fourth, ..] = answer[..] else {
            return Err(RateError::Unavailable(
                "the rate-limit store gave an answer this build cannot read".into(),
            ));
        };
        let read = readings(&answer[4..]);
        if read.len() != subjects.len() {
            return Err(RateError::Unavailable(
                "the rate-limit store gave an answer this build cannot read".into(),
            ));
        }
        for (subject, mut reading) in subjects.iter().zip(read.iter().copied()) {
            if admitted == 1 {
                reading.requests.add(now, WINDOW_MS, 1);
                reading.tokens.add(now, WINDOW_MS, tokens);
            }
            subject.counters.follow(reading);
        }
        let checked: SmallVec<[(RateLimits, Reading); 2]> = subjects
            .iter()
            .map(|s| s.limits)
            .zip(read.iter().copied())
            .collect();
        let status = status_of(now, &checked);
        if admitted == 1 {
            return Ok(Admitted {
                subjects: subjects
                    .iter()
                    .map(|s| AdmittedSubject {
                        id: s.id,
                        counters: s.counters.clone(),
                        slot: s.limits.max_concurrent.is_some(),
                    })
                    .collect(),
                held_tokens: tokens,
                window_start: third,
                status,
                in_memory: false,
            });
        }
        // The script's readings are before this request: the one rule names the limit and
        // the wait; should rounding ever make it see room, the script's verdict stands.
        let exceeded = rate_limits::check(now, WINDOW_MS, &checked, tokens)
            .err()
            .unwrap_or_else(|| {
                let subject = usize::try_from(third - 1)
                    .unwrap_or(0)
                    .min(subjects.len() - 1);
                let kind = match fourth {
                    1 => LimitKind::Requests,
                    2 => LimitKind::Tokens,
                    _ => LimitKind::Concurrent,
                };
                rate_limits::Exceeded {
                    subject,
                    kind,
                    limit: subjects[subject].limits.get(kind).unwrap_or(0),
                    wait_ms: Some(rate_limits::CONCURRENCY_RETRY_MS),
                }
            });
        Err(RateError::Refused(RateRefusal {
            subject: subjects[exceeded.subject].id,
            kind: exceeded.kind,
            limit: exceeded.limit,
            tokens,
            retry_after_ms: exceeded.wait_ms,
            status,
        }))
    }

    fn settle(&self, request_id: &str, admitted: &Admitted, tokens: u64) -> BoxFuture<'static, ()> {
        let (failed, answered) = oneshot::channel();
        let operation = Operation::Settle {
            request_id: request_id.to_string(),
            held: as_i64(admitted.held_tokens),
            used: as_i64(tokens),
            subjects: admitted
                .subjects
                .iter()
                .map(|subject| (self.counters_key(subject.id), subject.slot))
                .collect(),
            failed,
        };
        let sent = self.queue.send(operation).is_ok();
        let request_id = request_id.to_string();
        Box::pin(async move {
            let failed = !sent || answered.await.unwrap_or(true);
            if failed {
                tracing::warn!(
                    request_id = %request_id,
                    "a rate-limit settlement did not reach Redis; its slots free themselves when their lease ends"
                );
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::billing::rates::{RateId, RateScope};

    /// A store on the test Redis (`TOLLGATE_TEST_REDIS_URL`, else 127.0.0.1:6379) under a
    /// prefix of this test's own. None, with the reason printed, when Redis does not answer;
    /// a failure then under `TOLLGATE_REQUIRE_ALL=1`.
    fn redis_url() -> String {
        std::env::var("TOLLGATE_TEST_REDIS_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379/".to_string())
    }

    async fn store() -> Option<RedisRateStore> {
        let url = redis_url();
        let connect = async {
            let client = redis::Client::open(url.as_str())?;
            ConnectionManager::new(client).await
        };
        let reason = match tokio::time::timeout(Duration::from_secs(3), connect).await {
            Ok(Ok(connection)) => {
                let prefix = format!("tollgate-test:{}:", uuid::Uuid::new_v4().simple());
                return Some(RedisRateStore::new(connection, prefix));
            }
            Ok(Err(error)) => format!("Redis at {url} does not answer: {error}"),
            Err(_) => format!("Redis at {url} does not answer within 3 s"),
        };
        if std::env::var("TOLLGATE_REQUIRE_ALL").is_ok_and(|v| v == "1") {
            panic!("{reason} (TOLLGATE_REQUIRE_ALL=1 requires Redis)");
        }
        eprintln!("skipped: {reason}");
        None
    }

    /// Removes every key the test made.
    async fn forget(store: &RedisRateStore) {
        let client = redis::Client::open(redis_url()).unwrap();
        let mut connection = client.get_multiplexed_async_connection().await.unwrap();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}*", store.prefix))
            .query_async(&mut connection)
            .await
            .unwrap();
        if !keys.is_empty() {
            let _: () = redis::cmd("DEL")
                .arg(keys)
                .query_async(&mut connection)
                .await
                .unwrap();
        }
    }

    fn subject(scope: RateScope, row: i64, limits: RateLimits) -> RateSubject {
        RateSubject {
            id: RateId::new(scope, row),
            limits,
            counters: Arc::default(),
        }
    }

    fn rpm(limit: u64) -> RateLimits {
        RateLimits {
            rpm: Some(limit),
            ..RateLimits::NONE
        }
    }

    fn refused(result: Result<Admitted, RateError>) -> RateRefusal {
        match result {
            Err(RateError::Refused(refusal)) => refusal,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn requests_per_minute_hold_across_two_nodes() {
        let Some(a) = store().await else { return };
        // A second node: its own connection, the same Redis and prefix.
        let b = {
            let client = redis::Client::open(redis_url()).unwrap();
            RedisRateStore::new(
                ConnectionManager::new(client).await.unwrap(),
                a.prefix.clone(),
            )
        };
        let key = [subject(RateScope::Key, 7, rpm(3))];
        let first = a.admit("r1", &key, 0).await.unwrap();
        let requests = first.status.requests.unwrap();
        assert_eq!((requests.limit, requests.remaining), (3, 2));
        assert!(first.status.tokens.is_none());
        b.admit("r2", &key, 0).await.unwrap();
        let third = a.admit("r3", &key, 0).await.unwrap();
        assert_eq!(third.status.requests.unwrap().remaining, 0);
        let refusal = refused(b.admit("r4", &key, 0).await);
        assert_eq!(refusal.subject, RateId::new(RateScope::Key, 7));
        assert_eq!((refusal.kind, refusal.limit), (LimitKind::Requests, 3));
        let wait = refusal.retry_after_ms.unwrap();
        assert!(wait > 0 && wait <= 2 * WINDOW_MS, "{wait}");
        // Another key counts on its own.
        let other = [subject(RateScope::Key, 8, rpm(3))];
        b.admit("r5", &other, 0).await.unwrap();
        forget(&a).await;
    }

    #[tokio::test]
    async fn tokens_are_held_on_the_estimate_and_corrected() {
        let Some(store) = store().await else { return };
        let limits = RateLimits {
            tpm: Some(1_000),
            ..RateLimits::NONE
        };
        let key = [subject(RateScope::Key, 1, limits)];
        let held = store.admit("t1", &key, 800).await.unwrap();
        assert_eq!(held.status.tokens.unwrap().remaining, 200);
        let refusal = refused(store.admit("t2", &key, 300).await);
        assert_eq!((refusal.kind, refusal.tokens), (LimitKind::Tokens, 300));
        // The answer used 100 tokens: the other 700 are free at once.
        store.settle("t1", &held, 100).await;
        let again = store.admit("t3", &key, 300).await.unwrap();
        assert_eq!(again.status.tokens.unwrap().remaining, 600);
        // A second settlement of the same request changes nothing.
        store.settle("t1", &held, 0).await;
        let refusal = refused(store.admit("t4", &key, 601).await);
        assert_eq!(refusal.kind, LimitKind::Tokens);
        // More than the whole limit never fits.
        let refusal = refused(store.admit("t5", &key, 1_001).await);
        assert_eq!(refusal.retry_after_ms, None);
        forget(&store).await;
    }

    #[tokio::test]
    async fn slots_are_freed_once_and_expire_with_their_lease() {
        let Some(store) = store().await else { return };
        let limits = RateLimits {
            max_concurrent: Some(1),
            ..RateLimits::NONE
        };
        let key = [subject(RateScope::Key, 1, limits)];
        let first = store.admit("c1", &key, 5).await.unwrap();
        let refusal = refused(store.admit("c2", &key, 5).await);
        assert_eq!((refusal.kind, refusal.limit), (LimitKind::Concurrent, 1));
        store.settle("c1", &first, 5).await;
        let second = store.admit("c3", &key, 5).await.unwrap();
        // The first request settled again (a retry) frees nothing of the second's.
        store.settle("c1", &first, 5).await;
        refused(store.admit("c4", &key, 5).await);
        store.settle("c3", &second, 5).await;
        // A node that never settles (it died): its slot frees itself when the lease ends.
        let short = store.clone().with_slot_lease(Duration::from_millis(300));
        short.admit("c5", &key, 5).await.unwrap();
        refused(short.admit("c6", &key, 5).await);
        tokio::time::sleep(Duration::from_millis(400)).await;
        short.admit("c7", &key, 5).await.unwrap();
        forget(&store).await;
    }

    #[tokio::test]
    async fn a_retried_admission_counts_once() {
        let Some(store) = store().await else { return };
        let limits = RateLimits {
            rpm: Some(2),
            tpm: Some(100),
            max_concurrent: Some(2),
        };
        let key = [subject(RateScope::Key, 1, limits)];
        let first = store.admit("same", &key, 40).await.unwrap();
        let retried = store.admit("same", &key, 40).await.unwrap();
        assert_eq!(retried.window_start, first.window_start);
        // One request, 40 tokens and one slot are taken, not two of each.
        store.admit("other", &key, 60).await.unwrap();
        forget(&store).await;
    }

    #[tokio::test]
    async fn a_request_is_taken_on_every_subject_or_none() {
        let Some(store) = store().await else { return };
        let key = subject(RateScope::Key, 1, rpm(10));
        let account = subject(RateScope::Account, 1, rpm(2));
        let other_key = subject(RateScope::Key, 2, rpm(10));
        store
            .admit("a1", &[key.clone(), account.clone()], 0)
            .await
            .unwrap();
        let admitted = store
            .admit("a2", &[other_key.clone(), account.clone()], 0)
            .await
            .unwrap();
        // The account's limit binds: two keys of one person count together.
        assert_eq!(admitted.status.requests.unwrap().remaining, 0);
        let refusal = refused(store.admit("a3", &[key.clone(), account.clone()], 0).await);
        assert_eq!(refusal.subject, RateId::new(RateScope::Account, 1));
        // The refusal took nothing from the key: nine more fit on it alone.
        for i in 0..9 {
            store
                .admit(&format!("k{i}"), std::slice::from_ref(&key), 0)
                .await
                .unwrap();
        }
        refused(store.admit("k9", std::slice::from_ref(&key), 0).await);
        forget(&store).await;
    }

    #[tokio::test]
    async fn concurrent_admissions_in_batches_hold_every_limit_exactly() {
        let Some(store) = store().await else { return };
        let per_minute = [subject(RateScope::Key, 1, rpm(50))];
        let admissions = (0..200).map(|i| {
            let store = store.clone();
            let key = per_minute.clone();
            async move { store.admit(&format!("m{i}"), &key, 0).await.is_ok() }
        });
        let admitted = futures::future::join_all(admissions).await;
        assert_eq!(admitted.iter().filter(|ok| **ok).count(), 50);

        let at_once = RateLimits {
            max_concurrent: Some(10),
            tpm: Some(10_000),
            ..RateLimits::NONE
        };
        let key = [subject(RateScope::Key, 2, at_once)];
        let admissions = (0..100).map(|i| {
            let store = store.clone();
            let key = key.clone();
            async move { (i, store.admit(&format!("c{i}"), &key, 100).await) }
        });
        let taken: Vec<(i32, Admitted)> = futures::future::join_all(admissions)
            .await
            .into_iter()
            .filter_map(|(i, result)| Some((i, result.ok()?)))
            .collect();
        assert_eq!(taken.len(), 10, "ten slots");
        // All settle at once, each having used 10 of its 100 tokens: the slots are free and
        // the minute counts 100 tokens, so 9,900 more fit (not 9,000, as uncorrected).
        let settlements = taken
            .iter()
            .map(|(i, admitted)| store.settle(&format!("c{i}"), admitted, 10));
        futures::future::join_all(settlements).await;
        let again = store.admit("after", &key, 9_900).await.unwrap();
        assert_eq!(again.status.tokens.unwrap().remaining, 0);
        store.settle("after", &again, 9_900).await;
        forget(&store).await;
    }

    #[tokio::test]
    async fn a_batch_sent_twice_applies_once() {
        let Some(store) = store().await else { return };
        let client = redis::Client::open(redis_url()).unwrap();
        let sender = Sender {
            connection: ConnectionManager::new(client).await.unwrap(),
            last_batch: format!("{}rate:batch:test", store.prefix),
            holds: format!("{}rate:hold:", store.prefix),
            script: redis::Script::new(BATCH),
            number: AtomicU64::new(7),
        };
        let key = subject(RateScope::Key, 3, rpm(5));
        let (answer, _) = oneshot::channel();
        let batch = [Operation::Admit {
            request_id: "twice".into(),
            tokens: 0,
            lease_ms: 60_000,
            subjects: [(store.counters_key(key.id), key.limits)]
                .into_iter()
                .collect(),
            answer,
        }];
        let call = sender.invocation(&batch);
        let mut connection = sender.connection.clone();
        let first: Vec<i64> = call.invoke_async(&mut connection).await.unwrap();
        let second: Vec<i64> = call.invoke_async(&mut connection).await.unwrap();
        assert_eq!(first, second, "the same answer");
        // One request counted: four more fit in the minute.
        let admitted = store.admit("next", &[key], 0).await.unwrap();
        assert_eq!(admitted.status.requests.unwrap().remaining, 3);
        forget(&store).await;
    }
}
