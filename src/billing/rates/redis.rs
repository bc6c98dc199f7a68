//! The rate store of several servers: every counter in Redis, so N nodes together hold each
//! limit as one would.
//!
//! One Lua script per call, so admission and settlement are one round trip each and atomic:
//! the admission reads every subject's counters, decides by the rule of
//! [`crate::domain::rate_limits::check`] and takes the request on all of them or none; the
//! settlement frees the request's slots and corrects its tokens. Redis's own clock
//! (`TIME`) is the one clock, so nodes whose clocks differ still count the same minute.
//!
//! Keys, under the configured prefix (`tollgate:` by default):
//! - `rate:key:ID` / `rate:account:ID`: a hash of the two windows' buckets (`rs rc rp` for
//!   requests, `ts tc tp` for tokens: bucket start, current, previous), expiring once nothing
//!   in it counts;
//! - `…:slots`: the requests in flight, a sorted set of request ids by when their lease ends;
//! - `rate:hold:REQUEST_ID`: the bucket a request's tokens were held in. It makes a retried
//!   admission (after a timeout) apply once and a settlement apply once, and expires with the
//!   lease.
//!
//! A slot is leased: a node that dies with requests in flight leaves slots that free
//! themselves when their lease ends (10 minutes unless set otherwise); a request running
//! longer than its lease stops counting against the concurrency limit then.

use std::time::Duration;

use futures::future::BoxFuture;
use redis::aio::ConnectionManager;
use smallvec::SmallVec;

use super::{Admitted, AdmittedSubject, RateError, RateRefusal, RateStore, RateSubject, status_of};
use crate::domain::rate_limits::{self, LimitKind, RateLimits, Reading, WINDOW_MS, Window};

/// How long a slot stays taken without its settlement.
pub const DEFAULT_SLOT_LEASE: Duration = Duration::from_secs(600);

const ADMIT: &str = r#"
-- KEYS[1]: the request's hold record; then per subject its counters (a hash) and its slots
-- (a sorted set of request ids scored by when their lease ends).
-- ARGV: window_ms, lease_ms, tokens, request_id; then per subject rpm, tpm, max_concurrent
-- (-1: no limit).
-- Returns {admitted (1/0), now, bucket start (admitted) or refusing subject (1-based),
-- refusing limit (1 requests, 2 tokens, 3 slots; 0), then per subject rs rc rp ts tc tp slots}.
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local W = tonumber(ARGV[1])
local lease = tonumber(ARGV[2])
local tokens = tonumber(ARGV[3])
local id = ARGV[4]
local n = (#KEYS - 1) / 2
local start = now - (now % W)

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

local readings = {}
for i = 1, n do
  local base = 4 + 3 * (i - 1)
  local h = redis.call('HMGET', KEYS[2 * i], 'rs', 'rc', 'rp', 'ts', 'tc', 'tp')
  local rs, rc, rp = roll(tonumber(h[1]) or 0, tonumber(h[2]) or 0, tonumber(h[3]) or 0)
  local ts, tc, tp = roll(tonumber(h[4]) or 0, tonumber(h[5]) or 0, tonumber(h[6]) or 0)
  local busy = 0
  if tonumber(ARGV[base + 3]) >= 0 then
    redis.call('ZREMRANGEBYSCORE', KEYS[2 * i + 1], '-inf', now)
    busy = redis.call('ZCARD', KEYS[2 * i + 1])
  end
  readings[i] = {rs, rc, rp, ts, tc, tp, busy}
end

local function answer(admitted, third, fourth)
  local out = {admitted, now, third, fourth}
  for i = 1, n do
    for j = 1, 7 do out[#out + 1] = readings[i][j] end
  end
  return out
end

-- A retried admission (its first answer was lost): it was taken already.
local held = redis.call('GET', KEYS[1])
if held then return answer(1, tonumber(held), 0) end

for i = 1, n do
  local base = 4 + 3 * (i - 1)
  local r = readings[i]
  local rpm, tpm, slots = tonumber(ARGV[base + 1]), tonumber(ARGV[base + 2]), tonumber(ARGV[base + 3])
  if rpm >= 0 and used(r[1], r[2], r[3]) + 1 > rpm then return answer(0, i, 1) end
  if tpm >= 0 and used(r[4], r[5], r[6]) + tokens > tpm then return answer(0, i, 2) end
  if slots >= 0 and r[7] >= slots then return answer(0, i, 3) end
end

for i = 1, n do
  local base = 4 + 3 * (i - 1)
  local r = readings[i]
  r[2] = r[2] + 1
  r[5] = r[5] + tokens
  redis.call('HSET', KEYS[2 * i], 'rs', r[1], 'rc', r[2], 'rp', r[3], 'ts', r[4], 'tc', r[5], 'tp', r[6])
  -- What is counted now counts until the end of the next bucket.
  redis.call('PEXPIRE', KEYS[2 * i], 2 * W)
  if tonumber(ARGV[base + 3]) >= 0 then
    redis.call('ZADD', KEYS[2 * i + 1], now + lease, id)
    redis.call('PEXPIRE', KEYS[2 * i + 1], lease)
    r[7] = r[7] + 1
  end
end
redis.call('SET', KEYS[1], start, 'PX', lease)
return answer(1, start, 0)
"#;

const SETTLE: &str = r#"
-- KEYS[1]: the request's hold record; then per subject its counters and its slots.
-- ARGV: window_ms, tokens held, tokens used, request_id; then per subject 1 when the request
-- holds one of its slots.
local start = redis.call('GET', KEYS[1])
-- Settled already (a retry), or the lease ran out: nothing left to undo.
if not start then return 0 end
redis.call('DEL', KEYS[1])
start = tonumber(start)
local W = tonumber(ARGV[1])
local held = tonumber(ARGV[2])
local used = tonumber(ARGV[3])
local id = ARGV[4]
for i = 1, (#KEYS - 1) / 2 do
  if ARGV[4 + i] == '1' then redis.call('ZREM', KEYS[2 * i + 1], id) end
  if held ~= used then
    local h = redis.call('HMGET', KEYS[2 * i], 'ts', 'tc', 'tp')
    local ts = tonumber(h[1])
    if ts == start then
      redis.call('HSET', KEYS[2 * i], 'tc', math.max(0, (tonumber(h[2]) or 0) - held) + used)
    elseif ts and ts - W == start then
      redis.call('HSET', KEYS[2 * i], 'tp', math.max(0, (tonumber(h[3]) or 0) - held) + used)
    end
  end
end
return 1
"#;

/// Rate limits counted in Redis (see the module's doc).
#[derive(Clone)]
pub struct RedisRateStore {
    connection: ConnectionManager,
    prefix: String,
    lease: Duration,
    admit: redis::Script,
    settle: redis::Script,
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
    /// itself.
    pub fn new(connection: ConnectionManager, prefix: impl Into<String>) -> RedisRateStore {
        RedisRateStore {
            connection,
            prefix: prefix.into(),
            lease: DEFAULT_SLOT_LEASE,
            admit: redis::Script::new(ADMIT),
            settle: redis::Script::new(SETTLE),
        }
    }

    /// Sets how long a concurrency slot stays taken without its settlement.
    pub fn with_slot_lease(mut self, lease: Duration) -> RedisRateStore {
        self.lease = lease.max(Duration::from_millis(1));
        self
    }

    fn hold_key(&self, request_id: &str) -> String {
        format!("{}rate:hold:{request_id}", self.prefix)
    }

    fn counters_key(&self, id: super::RateId) -> String {
        format!("{}rate:{}:{}", self.prefix, id.scope.as_str(), id.row)
    }

    /// Runs a script once, and once more when the first call may have been lost.
    async fn run(&self, invocation: &redis::ScriptInvocation<'_>) -> redis::RedisResult<Vec<i64>> {
        let mut connection = self.connection.clone();
        match invocation.invoke_async(&mut connection).await {
            Err(error) if worth_retrying(&error) => {
                tracing::debug!(error = %error, "a rate-limit call to Redis is sent again");
                invocation.invoke_async(&mut connection).await
            }
            other => other,
        }
    }
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
        let mut invocation = self.admit.prepare_invoke();
        invocation.key(self.hold_key(request_id));
        invocation
            .arg(WINDOW_MS)
            .arg(i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX))
            .arg(as_i64(tokens))
            .arg(request_id);
        for subject in subjects {
            let counters = self.counters_key(subject.id);
            invocation
                .key(&counters)
                .key(format!("{counters}:slots"))
                .arg(limit_arg(subject.limits.rpm))
                .arg(limit_arg(subject.limits.tpm))
                .arg(limit_arg(subject.limits.max_concurrent));
        }
        let answer = self.run(&invocation).await.map_err(|error| {
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
        let store = self.clone();
        let request_id = request_id.to_string();
        let keys: Vec<(String, bool)> = admitted
            .subjects
            .iter()
            .map(|s| (self.counters_key(s.id), s.slot))
            .collect();
        let held = admitted.held_tokens;
        Box::pin(async move {
            let mut invocation = store.settle.prepare_invoke();
            invocation.key(store.hold_key(&request_id));
            invocation
                .arg(WINDOW_MS)
                .arg(as_i64(held))
                .arg(as_i64(tokens))
                .arg(&request_id);
            for (counters, slot) in &keys {
                invocation
                    .key(counters)
                    .key(format!("{counters}:slots"))
                    .arg(if *slot { "1" } else { "0" });
            }
            let mut connection = store.connection.clone();
            let settled: redis::RedisResult<i64> =
                match invocation.invoke_async(&mut connection).await {
                    Err(error) if worth_retrying(&error) => {
                        invocation.invoke_async(&mut connection).await
                    }
                    other => other,
                };
            if let Err(error) = settled {
                tracing::warn!(
                    request_id = %request_id,
                    error = %error,
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
        let mut connection = store.connection.clone();
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
}
