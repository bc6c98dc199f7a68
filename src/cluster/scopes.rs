//! Budget scopes held and settled in Redis, so N nodes together never spend more than a
//! scope allows.
//!
//! Redis keeps two counters per scope (and per period, for a budget): `p`, what every node
//! holds or has settled but not yet written to the database, and `c`, what nodes have
//! written since the deployment's epoch began. A node knows what the database said a scope
//! may spend (`stored`: a balance, or a budget's limit less the period's spending), and the
//! `c` it read just before that database read (its mark). Commits since then are `c − mark`,
//! so what is left is
//!
//! ```text
//! available = stored − (c − mark) − p
//! ```
//!
//! A commit that lands between the mark and the database read is counted twice, never
//! missed: Redis may count more than the database, never less. A hold checks and takes every
//! scope in one script, all or none; a settlement turns the hold into the real cost; the
//! billing writer's commit moves costs from `p` to `c`. All three go in batches, in the order
//! they were made (see `batch`, which also makes a call retried after a timeout apply once),
//! so a commit never reaches Redis before the settlement that put its cost in flight. Each
//! node's part of `p` is also kept under its own id, so a node that dies is taken off (see
//! `super`), and a node whose part may be wrong (a call that failed) writes it again from what
//! it holds in memory before it places another hold. Most holds do not go to Redis at all, but
//! against a lease (see [`RedisScopes`]).

mod batch;

use std::sync::Arc;
use std::sync::LazyLock;
use std::sync::atomic::Ordering;

use futures::future::BoxFuture;
use redis::Script;

use super::Cluster;
use crate::billing::scopes::{
    HoldError, Holds, IdleLease, LiveScope, MemoryStore, Refusal, ScopeId, ScopeKind, ScopeStore,
};

/// A period's counters are kept this long after the period ends (late settlements and commits
/// still land on them).
const PERIOD_KEPT_MS: i64 = 24 * 3600 * 1000;

/// Makes a negative of an integer string, in Lua (numbers there are doubles, which print
/// large integers in exponent form).
const NEG: &str = r"
local function neg(s)
  if string.sub(s, 1, 1) == '-' then return string.sub(s, 2) end
  if s == '0' then return '0' end
  return '-' .. s
end
";

/// KEYS: epoch, this node's part. ARGV: epoch, the number of parts, then pairs of scope and
/// amount in flight, then pairs of scope and cost committed while Redis could not be told.
/// Replaces this node's part with what it holds in memory.
static REWRITE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{NEG}
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local old = redis.call('HGETALL', KEYS[2])
for i = 1, #old, 2 do redis.call('HINCRBY', old[i], 'p', neg(old[i + 1])) end
redis.call('DEL', KEYS[2])
local parts = 2 + 2 * tonumber(ARGV[2])
for i = 3, parts, 2 do
  redis.call('HINCRBY', ARGV[i], 'p', ARGV[i + 1])
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
end
for i = parts + 1, #ARGV, 2 do
  redis.call('HINCRBY', ARGV[i], 'c', ARGV[i + 1])
end
return 1
"
    ))
});

/// KEYS: epoch, the nodes' heartbeats. ARGV: this node, the prefix of nodes' parts, the
/// lease and the time a node counts as seen (ms). Renews this node's lease, takes the part of
/// every node whose lease ran out off the scopes, and returns the epoch, the nodes seen and
/// whether this node was still listed.
pub(super) static BEAT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{NEG}
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local listed = redis.call('ZSCORE', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[2], now, ARGV[1])
local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[3]))
for _, id in ipairs(gone) do
  local part = redis.call('HGETALL', ARGV[2] .. id)
  for i = 1, #part, 2 do redis.call('HINCRBY', part[i], 'p', neg(part[i + 1])) end
  redis.call('DEL', ARGV[2] .. id)
  redis.call('ZREM', KEYS[2], id)
end
local seen = redis.call('ZCOUNT', KEYS[2], now - tonumber(ARGV[4]), '+inf')
local epoch = redis.call('GET', KEYS[1])
if listed then listed = 1 else listed = 0 end
return {{epoch, seen, listed}}
"
    ))
});

fn kind_code(kind: ScopeKind) -> &'static str {
    match kind {
        ScopeKind::KeyLimit => "key",
        ScopeKind::KeyBudget => "keyb",
        ScopeKind::MemberCap => "cap",
        ScopeKind::TeamBudget => "team",
        ScopeKind::OrgBudget => "orgb",
        ScopeKind::Wallet => "wallet",
        ScopeKind::Balance => "user",
    }
}

impl Cluster {
    /// The counters of a scope in one period (0 for a balance).
    fn scope_key(&self, id: ScopeId, window: i64) -> String {
        format!(
            "{}s:{}:{}:{}",
            self.prefix,
            kind_code(id.kind),
            id.row,
            if id.kind.is_balance() { 0 } else { window }
        )
    }

    /// This node's last batch of holds and settlements (see `batch`).
    fn batch_key(&self) -> String {
        format!("{}batch:{}", self.prefix, self.node)
    }

    fn node_key(&self) -> String {
        format!("{}node:{}", self.prefix, self.node)
    }

    /// Writes this node's part again from `scopes` (every scope it holds in memory) once no
    /// counter-changing call is in flight, then lets holds go to Redis again. False when Redis
    /// did not take it.
    pub async fn rewrite_part(&self, scopes: &[Arc<LiveScope>]) -> bool {
        // New calls see `dirty` and stay away; wait for those already under way.
        while self.writing.load(Ordering::SeqCst) > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        let mut connection = self.connection();
        let mut rewrite = REWRITE.prepare_invoke();
        rewrite
            .key(self.key("epoch"))
            .key(self.node_key())
            .arg(self.epoch());
        let mut parts: std::collections::HashMap<String, i64> = Default::default();
        for scope in scopes {
            let (in_flight, window) = scope.in_flight();
            if in_flight != 0 {
                *parts.entry(self.scope_key(scope.id, window)).or_default() += in_flight;
            }
        }
        rewrite.arg(parts.len());
        for (key, amount) in &parts {
            rewrite.arg(key).arg(amount);
        }
        let epoch = self.epoch();
        let deferred = self.take_deferred_commits();
        for (_, costs) in deferred.iter().filter(|(at, _)| *at == epoch) {
            for (key, cost) in costs {
                rewrite.arg(key).arg(cost);
            }
        }
        let result: redis::RedisResult<i64> = rewrite.invoke_async(&mut connection).await;
        self.answered(&result);
        if !matches!(result, Ok(1)) {
            self.restore_deferred_commits(deferred);
        }
        match result {
            Ok(1) => {
                self.dirty.store(false, Ordering::SeqCst);
                true
            }
            // Another epoch began meanwhile: the next beat takes it, and this runs again.
            Ok(_) => false,
            Err(e) => {
                tracing::warn!(error = %e, "cannot write this node's part to Redis");
                false
            }
        }
    }

    /// Renews the lease; when this node's part may be wrong, writes it again from `scopes`.
    pub async fn tend(&self, scopes: impl FnOnce() -> Vec<Arc<LiveScope>>) {
        if let Err(e) = self.beat().await {
            tracing::debug!(error = %e, "Redis heartbeat failed");
            return;
        }
        if self.dirty.load(Ordering::SeqCst) {
            let held = scopes();
            if self.rewrite_part(&held).await {
                tracing::info!(
                    scopes = held.len(),
                    "this node's holds and unwritten spending are written in Redis; paid requests are served"
                );
            }
        }
    }
}

/// How many holds of the size that asked a lease covers at most (see `batch::LEASE_FLOOR`
/// for the least).
const LEASE_HOLDS: i64 = 256;

/// How often a node looks for leases no hold drew on since the last look, and gives them back:
/// an idle lease goes back within two of these.
const LEASE_IDLE: std::time::Duration = std::time::Duration::from_secs(1);

/// The scope store of a node among several.
///
/// A node may hold against allowance Redis lent it (a lease): a hold in Redis also asks each
/// scope for up to [`LEASE_HOLDS`] holds' worth more, which Redis counts in this node's part
/// like a hold, so no other node can spend it. The node then holds against that lease in its
/// memory, without a round trip; a settlement gives the difference between hold and cost to
/// the lease (or pays it from there), and a lease no hold drew on for [`LEASE_IDLE`] goes back.
/// Redis lends a lease only from a scope with plenty left (see `batch`), and a node draws on
/// one only while its part there is right and its heartbeat recent, so a node cut off stops
/// before its part could be dropped; a part dropped or written again takes its leases with it.
#[derive(Debug)]
pub struct RedisScopes {
    cluster: Arc<Cluster>,
    memory: MemoryStore,
    shared: Arc<Shared>,
}

/// What the store and its lease keeper share.
#[derive(Debug)]
struct Shared {
    batches: batch::Batches,
    /// Scopes that may have a lease, by address.
    leased: std::sync::Mutex<std::collections::HashMap<usize, Arc<LiveScope>>>,
}

impl RedisScopes {
    /// The store of `cluster`'s node; its holds and settlements go to Redis in batches sent by
    /// a task on the current runtime, and another gives idle leases back.
    pub fn new(cluster: Arc<Cluster>) -> RedisScopes {
        let shared = Arc::new(Shared {
            batches: batch::Batches::start(cluster.clone()),
            leased: Default::default(),
        });
        tokio::spawn(keep_leases(cluster.clone(), Arc::downgrade(&shared)));
        RedisScopes {
            shared,
            cluster,
            memory: MemoryStore,
        }
    }

    /// A hold while Redis cannot be reached (or this node's part there is being written
    /// again): refused, or in `local_share` mode held within this node's share.
    fn hold_in_outage(&self, scopes: Vec<Arc<LiveScope>>, amount: i64) -> Result<Holds, HoldError> {
        let cluster = &self.cluster;
        if !cluster.shares_in_outage() {
            return Err(HoldError::Unavailable);
        }
        Ok(self
            .memory
            .hold_share(scopes, amount, cluster.outage(), cluster.nodes_seen())?)
    }

    /// Gives back every lease no hold drew on since the last call (and forgets void ones).
    pub async fn return_idle_leases(&self) {
        if let Some(returned) = self.shared.return_idle(&self.cluster) {
            let _ = returned.await;
        }
    }
}

impl Shared {
    fn leased(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<usize, Arc<LiveScope>>> {
        self.leased
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues the return of idle leases; the receiver hears when Redis has it.
    fn return_idle(&self, cluster: &Arc<Cluster>) -> Option<tokio::sync::oneshot::Receiver<()>> {
        let generation = cluster.lease_generation();
        let entered = cluster.enter();
        let mut returns = Vec::new();
        self.leased()
            .retain(|_, scope| match scope.take_idle_lease(generation) {
                IdleLease::InUse => true,
                IdleLease::None => false,
                IdleLease::Return { window, spare } => {
                    returns.push((cluster.scope_key(scope.id, window), -spare));
                    false
                }
            });
        // Without `entered` this node's part is being written again, without the leases.
        let entered = entered?;
        if returns.is_empty() {
            return None;
        }
        Some(self.batches.settle(returns, entered))
    }
}

/// Gives idle leases back every [`LEASE_IDLE`], until the store is gone.
async fn keep_leases(cluster: Arc<Cluster>, shared: std::sync::Weak<Shared>) {
    loop {
        tokio::time::sleep(LEASE_IDLE).await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let _ = shared.return_idle(&cluster);
    }
}

#[async_trait::async_trait]
impl ScopeStore for RedisScopes {
    async fn hold(
        &self,
        _request_id: &str,
        scopes: Vec<Arc<LiveScope>>,
        amount: i64,
    ) -> Result<Holds, HoldError> {
        let cluster = &self.cluster;
        // Read before entering (see `Cluster::lease_generation`).
        let generation = cluster.lease_generation();
        let Some(_entered) = cluster.enter() else {
            return self.hold_in_outage(scopes, amount);
        };
        let amount = amount.max(0);
        let may_lease = cluster.may_draw_leases();
        if may_lease && let Some(holds) = self.memory.hold_from_leases(&scopes, amount, generation)
        {
            return Ok(holds);
        }
        let era = cluster.era();
        let (held_scopes, windows): (Vec<_>, Vec<_>) = scopes
            .iter()
            .map(|scope| {
                let view = scope.shared_view(era);
                let expires = if scope.id.kind.is_balance() || view.window_end == 0 {
                    0
                } else {
                    view.window_end.saturating_add(PERIOD_KEPT_MS)
                };
                let want = if may_lease {
                    scope.lease_wanted(generation, amount, LEASE_HOLDS)
                } else {
                    0
                };
                let held = batch::HeldScope {
                    key: cluster.scope_key(scope.id, view.window_start),
                    stored: view.stored,
                    mark: view.mark,
                    expires,
                    want,
                };
                (held, view.window_start)
            })
            .unzip();
        let answer = self.shared.batches.hold(amount, held_scopes).await;
        match answer {
            Ok(batch::HoldAnswer::Held(answers)) => {
                let mut returns = Vec::new();
                for ((scope, (left, lent)), window) in scopes.iter().zip(answers).zip(windows) {
                    scope.note_shared_left(left);
                    if lent > 0 {
                        if let Some((old, spare)) = scope.add_lease(generation, window, lent) {
                            returns.push((cluster.scope_key(scope.id, old), -spare));
                        }
                        self.shared
                            .leased()
                            .insert(Arc::as_ptr(scope) as usize, scope.clone());
                    }
                }
                if !returns.is_empty()
                    && let Some(entered) = cluster.enter()
                {
                    // Queued: nothing waits for Redis to have it.
                    drop(self.shared.batches.settle(returns, entered));
                }
                // Noted before `_entered` ends, so a rewrite of this node's part sees it.
                Ok(self.memory.note_hold(scopes, amount))
            }
            Ok(batch::HoldAnswer::Refused { index, available }) => {
                let scope = scopes.get(index).ok_or(HoldError::Unavailable)?;
                Err(HoldError::Refused(Refusal {
                    scope: scope.id,
                    available,
                    limit: scope.limit(),
                    resets_at: scope.window_end(),
                }))
            }
            // Redis lost its counters, or does not answer: this node's part must be written
            // again (it is marked so), and the rewrite waits for `_entered`, so a hold placed
            // in memory meanwhile is in it.
            Ok(batch::HoldAnswer::OtherEpoch) | Err(_) => self.hold_in_outage(scopes, amount),
        }
    }

    fn settle(&self, _request_id: &str, holds: &Holds, cost: i64) -> BoxFuture<'static, ()> {
        if holds.scopes.is_empty() {
            return Box::pin(async {});
        }
        let cluster = &self.cluster;
        let cost = cost.max(0);
        let generation = cluster.lease_generation();
        // The memory is settled while the settlement counts as a call under way, so a rewrite
        // of this node's part (which waits for those) sees it in both places or in neither.
        let entered = cluster.enter();
        self.memory.settle_now(holds, cost);
        let Some(entered) = entered else {
            // The rewrite under way takes this settlement from memory.
            return Box::pin(async {});
        };
        // This node's part counts its holds and its leases together, so whatever a lease of
        // the hold's period takes of the difference needs no call.
        let change = cost - holds.amount.max(0);
        let changes: Vec<(String, i64)> = holds
            .scopes
            .iter()
            .filter_map(|(scope, window)| {
                let left = scope.settle_into_lease(generation, *window, change);
                (left != 0).then(|| (cluster.scope_key(scope.id, *window), left))
            })
            .collect();
        if changes.is_empty() {
            return Box::pin(async {});
        }
        let applied = self.shared.batches.settle(changes, entered);
        Box::pin(async move {
            let _ = applied.await;
        })
    }

    fn committed(&self, costs: Vec<(Arc<LiveScope>, i64, i64)>) -> BoxFuture<'static, ()> {
        let cluster = Arc::clone(&self.cluster);
        let epoch = cluster.epoch();
        let costs: Vec<(String, i64)> = costs
            .iter()
            .map(|(scope, window, cost)| (cluster.scope_key(scope.id, *window), *cost))
            .collect();
        let Some(entered) = cluster.enter() else {
            // This node's part is rewritten from memory, where these costs are no longer in
            // flight; the rewrite adds them to what was committed.
            cluster.defer_commit(epoch, costs);
            return Box::pin(async {});
        };
        // Queued behind the settlements that put these costs in flight.
        let answered = self
            .shared
            .batches
            .commit(epoch.clone(), costs.clone(), entered);
        Box::pin(async move {
            if answered.await.unwrap_or(true) {
                // It may have applied: applying it again counts the costs twice as committed,
                // which refuses a little early rather than overspends.
                cluster.defer_commit(epoch, costs);
            }
        })
    }

    async fn prepare_marks(&self, scopes: &[Arc<LiveScope>]) -> bool {
        let cluster = &self.cluster;
        if scopes.is_empty() {
            return true;
        }
        let era = cluster.era();
        let windows: Vec<i64> = scopes
            .iter()
            .map(|scope| scope.shared_view(era).window_start)
            .collect();
        let mut connection = cluster.connection();
        // In chunks, so a node holding many scopes does not send one huge pipeline.
        for (chunk, chunk_windows) in scopes.chunks(1000).zip(windows.chunks(1000)) {
            let mut pipe = redis::pipe();
            for (scope, window) in chunk.iter().zip(chunk_windows) {
                pipe.hget(cluster.scope_key(scope.id, *window), "c");
            }
            let result: redis::RedisResult<Vec<Option<i64>>> =
                pipe.query_async(&mut connection).await;
            cluster.answered(&result);
            let Ok(marks) = result else {
                return false;
            };
            for ((scope, window), mark) in chunk.iter().zip(chunk_windows).zip(marks) {
                scope.prepare_mark(mark.unwrap_or(0), *window, era);
            }
        }
        true
    }

    fn needs_marks(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RedisConfig;

    /// A node on the test Redis (`TOLLGATE_TEST_REDIS_URL`, else 127.0.0.1:6379) under a
    /// prefix of the test's own, ready to hold. None, with the reason printed, when Redis does
    /// not answer; a failure then under `TOLLGATE_REQUIRE_ALL=1`.
    async fn node(prefix: &str) -> Option<Arc<Cluster>> {
        let url = std::env::var("TOLLGATE_TEST_REDIS_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379/".to_string());
        let config = RedisConfig {
            url: Some(url.clone()),
            key_prefix: prefix.to_string(),
        };
        let cluster = Cluster::connect(&config).await.ok().flatten()?;
        cluster.tend(Vec::new).await;
        if cluster.is_ready() {
            return Some(cluster);
        }
        let reason = format!("Redis at {url} does not answer");
        if std::env::var("TOLLGATE_REQUIRE_ALL").is_ok_and(|v| v == "1") {
            panic!("{reason} (TOLLGATE_REQUIRE_ALL=1 requires Redis)");
        }
        eprintln!("skipped: {reason}");
        None
    }

    fn prefix() -> String {
        format!("tollgate-test:{}:", uuid::Uuid::new_v4().simple())
    }

    fn balance(row: i64, stored: i64) -> Arc<LiveScope> {
        Arc::new(LiveScope::balance(
            ScopeId::new(ScopeKind::Balance, row),
            stored,
        ))
    }

    async fn pending(cluster: &Cluster, scope: &LiveScope) -> i64 {
        let mut connection = cluster.connection();
        redis::cmd("HGET")
            .arg(cluster.scope_key(scope.id, 0))
            .arg("p")
            .query_async::<Option<i64>>(&mut connection)
            .await
            .unwrap()
            .unwrap_or(0)
    }

    #[tokio::test]
    async fn two_nodes_share_one_balance() {
        let prefix = prefix();
        let (Some(a), Some(b)) = (node(&prefix).await, node(&prefix).await) else {
            return;
        };
        let (on_a, on_b) = (RedisScopes::new(a.clone()), RedisScopes::new(b.clone()));
        // Each node read the same balance of 100 from the database.
        let (seen_by_a, seen_by_b) = (balance(1, 100), balance(1, 100));
        let held = on_a.hold("r1", vec![seen_by_a.clone()], 60).await.unwrap();
        let refused = on_b
            .hold("r2", vec![seen_by_b.clone()], 60)
            .await
            .unwrap_err();
        assert_eq!(
            refused,
            HoldError::Refused(Refusal {
                scope: seen_by_b.id,
                available: 40,
                limit: 100,
                resets_at: 0,
            })
        );
        // The answer cost 30: B may now hold 70.
        on_a.settle("r1", &held, 30).await;
        assert!(on_b.hold("r3", vec![seen_by_b.clone()], 70).await.is_ok());
        assert_eq!(pending(&a, &seen_by_a).await, 100);
    }

    #[tokio::test]
    async fn a_batch_sent_again_applies_once_and_answers_the_same() {
        let Some(cluster) = node(&prefix()).await else {
            return;
        };
        let scope = balance(2, 100);
        let held = batch::HeldScope {
            key: cluster.scope_key(scope.id, 0),
            stored: 100,
            mark: 0,
            expires: 0,
            want: 0,
        };
        let [first, again] = batch::hold_sent_twice(&cluster, 40, vec![held]).await;
        assert_eq!(first, vec![1, 0, 1, 60, 0]);
        assert_eq!(again, first);
        assert_eq!(pending(&cluster, &scope).await, 40);
    }

    #[tokio::test]
    async fn large_amounts_settle_to_the_unit() {
        let Some(cluster) = node(&prefix()).await else {
            return;
        };
        let store = RedisScopes::new(cluster.clone());
        // Beyond what Lua prints without an exponent (10^14): still exact.
        let scope = balance(6, 4_000_000_000_000_001);
        let held = store
            .hold("big", vec![scope.clone()], 1_000_000_000_000_003)
            .await
            .unwrap();
        store.settle("big", &held, 2_500_000_000_000_007).await;
        assert_eq!(pending(&cluster, &scope).await, 2_500_000_000_000_007);
    }

    #[tokio::test]
    async fn commits_move_from_in_flight_to_committed_and_marks_tell_them_apart() {
        let prefix = prefix();
        let (Some(a), Some(b)) = (node(&prefix).await, node(&prefix).await) else {
            return;
        };
        let (on_a, on_b) = (RedisScopes::new(a.clone()), RedisScopes::new(b.clone()));
        let (seen_by_a, seen_by_b) = (balance(3, 1_000), balance(3, 1_000));
        assert!(on_b.prepare_marks(std::slice::from_ref(&seen_by_b)).await);
        seen_by_b.set_balance(1_000);
        // A spends 300 and writes it to the database.
        let held = on_a.hold("r1", vec![seen_by_a.clone()], 300).await.unwrap();
        on_a.settle("r1", &held, 300).await;
        seen_by_a.committed(300, 0);
        on_a.committed(vec![(seen_by_a.clone(), 0, 300)]).await;
        // B has not read the database again: the commit since its mark counts.
        let refused = on_b
            .hold("r2", vec![seen_by_b.clone()], 701)
            .await
            .unwrap_err();
        assert!(matches!(refused, HoldError::Refused(r) if r.available == 700));
        // B reads again (mark first): the database now says 700, and nothing is counted twice.
        assert!(on_b.prepare_marks(std::slice::from_ref(&seen_by_b)).await);
        seen_by_b.set_balance(700);
        assert!(on_b.hold("r3", vec![seen_by_b.clone()], 700).await.is_ok());
    }

    #[tokio::test]
    async fn a_settlement_and_its_commit_queued_together_count_exactly() {
        let Some(cluster) = node(&prefix()).await else {
            return;
        };
        let store = RedisScopes::new(cluster.clone());
        let scope = balance(8, 1_000);
        let held = store.hold("r1", vec![scope.clone()], 100).await.unwrap();
        // The answer cost three times its hold; its settlement and the billing writer's
        // commit are queued one after the other (one queue: never the commit first).
        let settled = store.settle("r1", &held, 300);
        scope.committed(300, 0);
        let committed = store.committed(vec![(scope.clone(), 0, 300)]);
        futures::future::join(settled, committed).await;
        let mut connection = cluster.connection();
        let (committed, pending): (Option<i64>, Option<i64>) = redis::cmd("HMGET")
            .arg(cluster.scope_key(scope.id, 0))
            .arg("c")
            .arg("p")
            .query_async(&mut connection)
            .await
            .unwrap();
        assert_eq!((committed, pending), (Some(300), Some(0)));
    }

    #[tokio::test]
    async fn a_hold_placed_in_memory_while_redis_was_away_settles_exactly() {
        let Some(cluster) = node(&prefix()).await else {
            return;
        };
        let store = RedisScopes::new(cluster.clone());
        let scope = balance(7, 1_000);
        let first = store.hold("r1", vec![scope.clone()], 60).await.unwrap();
        store.settle("r1", &first, 60).await;
        // Redis is away under local_share: the next hold is placed in memory only.
        cluster.set_outage_mode(true);
        cluster.mark_dirty();
        let second = store.hold("r2", vec![scope.clone()], 100).await.unwrap();
        assert_eq!(pending(&cluster, &scope).await, 60);
        // Redis answers again: this node's part is written from memory, the hold with it, so
        // its settlement there takes off the hold and adds the cost.
        cluster.tend(|| vec![scope.clone()]).await;
        assert!(cluster.is_ready());
        assert_eq!(pending(&cluster, &scope).await, 160);
        store.settle("r2", &second, 30).await;
        assert_eq!(pending(&cluster, &scope).await, 90);
    }

    #[tokio::test]
    async fn holds_sent_in_one_batch_never_take_more_than_a_scope_has() {
        let Some(cluster) = node(&prefix()).await else {
            return;
        };
        let store = RedisScopes::new(cluster.clone());
        let scope = balance(5, 100);
        let hold_all = |count: usize, first: usize, amount: i64| {
            let (store, scope) = (&store, &scope);
            futures::future::join_all((first..first + count).map(move |i| async move {
                store
                    .hold(&format!("r{i}"), vec![scope.clone()], amount)
                    .await
            }))
        };
        // Fifty holds of 10 wait together for one call: ten fit.
        let first = hold_all(50, 0, 10).await;
        let held: Vec<(usize, &Holds)> = first
            .iter()
            .enumerate()
            .filter_map(|(i, hold)| Some((i, hold.as_ref().ok()?)))
            .collect();
        assert_eq!(held.len(), 10);
        assert!(first.iter().all(|hold| match hold {
            Ok(_) => true,
            Err(HoldError::Refused(refusal)) => refusal.available == 0,
            Err(HoldError::Unavailable) => false,
        }));
        assert_eq!(pending(&cluster, &scope).await, 100);
        // Their settlements (5 each) queue ahead of twenty new holds of 5 in the same batch:
        // the holds see what the settlements gave back, and ten of them fit.
        let settled: Vec<_> = held
            .iter()
            .map(|(i, holds)| store.settle(&format!("r{i}"), holds, 5))
            .collect();
        let second = hold_all(20, 100, 5).await;
        futures::future::join_all(settled).await;
        assert_eq!(second.iter().filter(|hold| hold.is_ok()).count(), 10);
        assert_eq!(pending(&cluster, &scope).await, 100);
    }

    /// Makes `gone`'s heartbeat older than its lease, and lets `other` beat: `gone`'s part is
    /// taken off, as after a node is killed.
    async fn outlive(gone: &Cluster, other: &Cluster) {
        let mut connection = other.connection();
        let _: () = redis::cmd("ZADD")
            .arg(other.key("nodes"))
            .arg(0)
            .arg(gone.node())
            .query_async(&mut connection)
            .await
            .unwrap();
        other.tend(Vec::new).await;
    }

    /// Holds and settles `count` requests of `amount` costing `cost` one after another on
    /// `store`: how many were held.
    async fn spend(
        store: &RedisScopes,
        scope: &Arc<LiveScope>,
        count: usize,
        amount: i64,
        cost: i64,
    ) -> i64 {
        let mut held = 0;
        for i in 0..count {
            if let Ok(holds) = store
                .hold(&format!("r{i}"), vec![scope.clone()], amount)
                .await
            {
                store.settle(&format!("r{i}"), &holds, cost).await;
                held += 1;
            }
        }
        held
    }

    #[tokio::test]
    async fn a_lease_serves_holds_in_memory_and_counts_in_redis() {
        let prefix = prefix();
        let (Some(a), Some(b)) = (node(&prefix).await, node(&prefix).await) else {
            return;
        };
        let (on_a, on_b) = (RedisScopes::new(a.clone()), RedisScopes::new(b.clone()));
        let (seen_by_a, seen_by_b) = (balance(10, 1_000_000), balance(10, 1_000_000));
        // The first hold asks Redis, which lends 256 holds' worth besides (well within a
        // quarter of what is left among the two nodes).
        let first = on_a.hold("r1", vec![seen_by_a.clone()], 100).await.unwrap();
        assert_eq!(pending(&a, &seen_by_a).await, 100 + 25_600);
        // The next is held against the lease, in memory; settlements give the difference
        // between hold and cost to the lease, and a dearer answer is paid from it.
        let second = on_a.hold("r2", vec![seen_by_a.clone()], 100).await.unwrap();
        on_a.settle("r1", &first, 60).await;
        on_a.settle("r2", &second, 500).await;
        assert_eq!(pending(&a, &seen_by_a).await, 25_700);
        // What A leased, no other node can spend.
        let refused = on_b
            .hold("r3", vec![seen_by_b.clone()], 1_000_000)
            .await
            .unwrap_err();
        assert!(matches!(refused, HoldError::Refused(r) if r.available == 1_000_000 - 25_700));
        // Unused for a while, the lease goes back: Redis counts the two costs alone.
        on_a.return_idle_leases().await;
        assert_eq!(
            pending(&a, &seen_by_a).await,
            25_700,
            "drawn on lately: kept"
        );
        on_a.return_idle_leases().await;
        assert_eq!(pending(&a, &seen_by_a).await, 560);
        assert!(
            on_b.hold("r4", vec![seen_by_b.clone()], 1_000_000 - 560)
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn nothing_is_lent_near_the_end_of_a_balance() {
        let Some(cluster) = node(&prefix()).await else {
            return;
        };
        let store = RedisScopes::new(cluster.clone());
        // A quarter of what is left is less than 16 holds: each hold asks Redis for itself.
        let scope = balance(11, 6_000);
        assert_eq!(spend(&store, &scope, 3, 100, 100).await, 3);
        assert_eq!(pending(&cluster, &scope).await, 300);
    }

    #[tokio::test]
    async fn three_nodes_with_leases_never_overspend_and_lose_nothing() {
        let prefix = prefix();
        let (Some(a), Some(b), Some(c)) = (
            node(&prefix).await,
            node(&prefix).await,
            node(&prefix).await,
        ) else {
            return;
        };
        for cluster in [&a, &b, &c] {
            cluster.tend(Vec::new).await;
        }
        let stores = [
            RedisScopes::new(a.clone()),
            RedisScopes::new(b.clone()),
            RedisScopes::new(c.clone()),
        ];
        let seen: Vec<Arc<LiveScope>> = (0..3).map(|_| balance(12, 200_000)).collect();
        // Each node tries 1,000 requests of 10 (3,000 in all against room for 2,000), the
        // three at once; leases are lent while the balance is large.
        let held: Vec<i64> = futures::future::join_all(
            stores
                .iter()
                .zip(&seen)
                .map(|(store, scope)| spend(store, scope, 1_000, 100, 100)),
        )
        .await;
        let spent = held.iter().sum::<i64>() * 100;
        assert!(spent <= 200_000, "spent {spent}");
        // Leases come back once idle: Redis then counts exactly what was spent, and the rest
        // of the balance can be held to the unit.
        for _ in 0..2 {
            for store in &stores {
                store.return_idle_leases().await;
            }
        }
        assert_eq!(pending(&a, &seen[0]).await, spent);
        let rest = 200_000 - spent;
        if rest > 0 {
            let last = stores[1].hold("last", vec![seen[1].clone()], rest).await;
            assert!(last.is_ok(), "{last:?}");
        }
        assert!(
            stores[2]
                .hold("over", vec![seen[2].clone()], 1)
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn a_node_cut_off_stops_drawing_on_its_lease() {
        let Some(cluster) = node(&prefix()).await else {
            return;
        };
        let store = RedisScopes::new(cluster.clone());
        let scope = balance(13, 1_000_000);
        let _first = store.hold("r1", vec![scope.clone()], 100).await.unwrap();
        let leased = pending(&cluster, &scope).await;
        assert!(leased > 100);
        // No heartbeat has reached Redis for as long as a node may draw on its leases: the
        // next hold asks Redis, and asks for no lease.
        cluster.age_heartbeat(crate::cluster::LEASE_DRAWN);
        let _second = store.hold("r2", vec![scope.clone()], 100).await.unwrap();
        assert_eq!(pending(&cluster, &scope).await, leased + 100);
    }

    #[tokio::test]
    async fn a_lease_goes_with_its_node_and_a_rewrite_leaves_it_out() {
        let prefix = prefix();
        let (Some(a), Some(b)) = (node(&prefix).await, node(&prefix).await) else {
            return;
        };
        let on_a = RedisScopes::new(a.clone());
        let scope = balance(14, 1_000_000);
        let held = on_a.hold("r1", vec![scope.clone()], 100).await.unwrap();
        assert!(pending(&a, &scope).await > 100);
        // A's heartbeat is made older than its lease: B takes A's part off, lease and all.
        outlive(&a, &b).await;
        assert_eq!(pending(&b, &scope).await, 0);
        // A writes its part again from memory: its hold, and no lease.
        a.tend(|| vec![scope.clone()]).await;
        assert!(a.is_ready());
        assert_eq!(pending(&a, &scope).await, 100);
        // The void lease takes nothing of the settlement: Redis moves by cost less hold.
        on_a.settle("r1", &held, 60).await;
        assert_eq!(pending(&a, &scope).await, 60);
    }

    #[tokio::test]
    async fn a_node_whose_lease_ran_out_is_taken_off() {
        let prefix = prefix();
        let (Some(a), Some(b)) = (node(&prefix).await, node(&prefix).await) else {
            return;
        };
        let scope = balance(4, 100);
        let on_a = RedisScopes::new(a.clone());
        let _held = on_a.hold("r1", vec![scope.clone()], 100).await.unwrap();
        assert_eq!(pending(&a, &scope).await, 100);
        // A stops beating; its heartbeat is made older than the lease.
        outlive(&a, &b).await;
        assert_eq!(pending(&b, &scope).await, 0);
        // A finds out at its next beat and writes its part again from memory.
        a.tend(|| vec![scope.clone()]).await;
        assert!(a.is_ready());
        assert_eq!(pending(&a, &scope).await, 100);
    }
}
