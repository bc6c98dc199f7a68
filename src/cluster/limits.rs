//! The portal's limits (sign-in, registration, codes, resets) counted in Redis, so an
//! attacker gets the same number of tries however many nodes answer. The rule is the memory
//! store's sliding window (`domain::sliding_window`), in one script with Redis' clock.
//!
//! While Redis does not answer, each node counts in its own memory (and says so in the log):
//! a limit that refused everyone would lock administrators out of the console. Budgets never
//! fall back this way.

use std::sync::Arc;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use redis::Script;

use super::Cluster;
use crate::service::limits::{Limit, LimitStore, MemoryLimits};

/// KEYS: the limit's counters. ARGV: window (ms), maximum, `hit` or `back`. Returns 1 when
/// the attempt is allowed (and counted), 0 when refused.
static SLIDING: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
local v = redis.call('HMGET', KEYS[1], 's', 'c', 'p')
local start = tonumber(v[1]) or 0
local current = tonumber(v[2]) or 0
local previous = tonumber(v[3]) or 0
local bucket = now - (now % window)
if bucket ~= start then
  if bucket - start == window then previous = current else previous = 0 end
  current = 0
  start = bucket
end
local allowed = 1
if ARGV[3] == 'back' then
  if current > 0 then current = current - 1 elseif previous > 0 then previous = previous - 1 end
else
  local share = window - (now - start)
  if math.ceil(previous * share / window) + current >= tonumber(ARGV[2]) then
    allowed = 0
  else
    current = current + 1
  end
end
redis.call('HSET', KEYS[1], 's', string.format('%d', start), 'c', current, 'p', previous)
redis.call('PEXPIRE', KEYS[1], 2 * window)
return allowed
",
    )
});

/// Limits counted in Redis, in this node's memory while Redis does not answer.
pub struct RedisLimits {
    cluster: Arc<Cluster>,
    fallback: MemoryLimits,
    falling_back: AtomicBool,
}

impl RedisLimits {
    pub fn new(cluster: Arc<Cluster>) -> RedisLimits {
        RedisLimits {
            cluster,
            fallback: MemoryLimits::default(),
            falling_back: AtomicBool::new(false),
        }
    }

    async fn count(&self, limit: Limit, key: &str, op: &str) -> Option<bool> {
        let window = i64::try_from(limit.window.as_millis())
            .unwrap_or(i64::MAX)
            .max(1);
        let mut call = SLIDING.prepare_invoke();
        call.key(self.cluster.key(&format!("limit:{}:{key}", limit.kind)))
            .arg(window)
            .arg(limit.max)
            .arg(op);
        let mut connection = self.cluster.connection();
        let result: redis::RedisResult<i64> = call.invoke_async(&mut connection).await;
        match result {
            Ok(allowed) => {
                if self.falling_back.swap(false, Ordering::SeqCst) {
                    tracing::info!("portal limits are counted in Redis again");
                }
                Some(allowed == 1)
            }
            Err(e) => {
                if !self.falling_back.swap(true, Ordering::SeqCst) {
                    tracing::warn!(error = %e, "Redis does not answer: portal limits are counted in this node's memory until it does");
                }
                None
            }
        }
    }
}

#[async_trait]
impl LimitStore for RedisLimits {
    async fn hit(&self, limit: Limit, key: &str, now_ms: i64) -> bool {
        match self.count(limit, key, "hit").await {
            Some(allowed) => allowed,
            None => self.fallback.hit(limit, key, now_ms).await,
        }
    }

    async fn give_back(&self, limit: Limit, key: &str, now_ms: i64) {
        if self.count(limit, key, "back").await.is_none() {
            self.fallback.give_back(limit, key, now_ms).await;
        }
    }
}
