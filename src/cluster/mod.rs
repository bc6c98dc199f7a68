//! What the nodes of one deployment share live, in Redis (`--redis-url`): budget holds
//! ([`scopes`]), the change feed's announcements ([`feed`]) and the portal's limits
//! ([`limits`]). The database stays the record; Redis only counts what is in flight between
//! the nodes and the database, so losing it loses no money, and no node serves on credit
//! while it is gone (see [`scopes`] for the one exception an operator may choose).
//!
//! Every node has an id of its own and a lease: it writes a heartbeat every
//! [`HEARTBEAT`], and the part of each scope it holds or has not yet written is kept under its
//! id. A node whose heartbeat is older than [`LEASE`] is gone (killed, cut off): the first
//! node to notice takes its part off every scope, so its holds stop counting.
//!
//! Redis may lose everything (a restart without persistence). Each deployment therefore
//! keeps an epoch in Redis, set by the first node that finds none; every script checks it, and
//! a node that finds another epoch starts a new era: it forgets what it knew of committed
//! counts and writes its part in flight again.

pub mod feed;
pub mod limits;
pub mod rates;
pub mod scopes;

/// `/readyz` while Redis is shared: ready when this node can hold budgets there, or when
/// `redis_outage_mode = local_share` lets it serve without.
pub struct RedisReadiness(pub Arc<Cluster>);

#[async_trait::async_trait]
impl crate::health::ReadinessCheck for RedisReadiness {
    fn name(&self) -> &'static str {
        "redis"
    }

    async fn check(&self) -> Result<(), String> {
        if self.0.is_ready() || self.0.shares_in_outage() {
            Ok(())
        } else if self.0.is_up() {
            Err("this node's holds are being written to Redis again".into())
        } else {
            Err("budget store unreachable".into())
        }
    }
}

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use redis::aio::ConnectionManager;

use crate::config::RedisConfig;

/// How often a node renews its lease.
pub const HEARTBEAT: Duration = Duration::from_secs(5);
/// How long a lease lasts without renewal: past this a node is gone and its part is dropped.
pub const LEASE: Duration = Duration::from_secs(30);
/// How long after its last heartbeat a node still draws on the allowance Redis lent it: half
/// the lease, so a node cut off stops well before any other node may drop its part.
pub const LEASE_DRAWN: Duration = Duration::from_secs(15);
const _: () = assert!(LEASE_DRAWN.as_millis() + HEARTBEAT.as_millis() * 2 < LEASE.as_millis());
/// How long a node counts as one of the deployment's for `local_share` after its last beat.
pub const NODE_SEEN: Duration = Duration::from_secs(60);
/// The longest a call to Redis may take before the node treats Redis as unreachable.
const RESPONSE_TIMEOUT: Duration = Duration::from_millis(500);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// One node's connection to the deployment's Redis.
pub struct Cluster {
    connection: ConnectionManager,
    client: redis::Client,
    prefix: String,
    node: String,
    /// The deployment's epoch as this node last saw it.
    epoch: Mutex<String>,
    /// This node's count of epochs seen: marks read in another era count as nothing.
    era: AtomicU64,
    /// Whether Redis answered the last call.
    up: AtomicBool,
    /// Whether the log said Redis does not answer (and has not said it answers again).
    reported_down: AtomicBool,
    /// Whether this node's part in Redis may be wrong (a call failed, the epoch changed, its
    /// lease was dropped): until it is written again, nothing is held in Redis.
    dirty: AtomicBool,
    /// Calls that change counters, in flight: a rewrite of this node's part waits for none.
    writing: AtomicUsize,
    /// Nodes with a heartbeat in the last [`NODE_SEEN`], this one included.
    nodes_seen: AtomicU64,
    /// Option `redis_outage_mode` is `local_share`: while Redis is away each node spends at
    /// most its share of what each scope had left.
    local_share: AtomicBool,
    /// Whether the mode was set once (and logged).
    mode_known: AtomicBool,
    /// Counts the times this node lost Redis: a share belongs to one outage.
    outages: AtomicU64,
    /// Wakes the lease job to write this node's part again at once.
    tend_now: tokio::sync::Notify,
    /// Where Redis' state and round trips are reported (`/metrics`).
    metrics: std::sync::OnceLock<Arc<crate::metrics::Metrics>>,
    /// When the last heartbeat Redis took was sent (ms since `started`); `i64::MIN`: none.
    beat_sent: AtomicI64,
    started: std::time::Instant,
    /// Commits Redis could not be told of, by epoch: the next rewrite of this node's part
    /// adds them to the committed counts.
    deferred_commits: Mutex<Vec<DeferredCommit>>,
}

/// Costs committed to the database in an epoch, by scope key.
type DeferredCommit = (String, Vec<(String, i64)>);

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("prefix", &self.prefix)
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// Connects a node, and joins the deployment's epoch (starting one if Redis has none).
    pub async fn connect(config: &RedisConfig) -> anyhow::Result<Option<Arc<Cluster>>> {
        let Some(cluster) = Cluster::open(config)? else {
            return Ok(None);
        };
        let redacted = config
            .url
            .as_deref()
            .map(crate::config::redact_url)
            .unwrap_or_default();
        match cluster.join().await {
            Ok(()) => {
                tracing::info!(redis = %redacted, node = %cluster.node, "sharing budgets, limits and changes through Redis")
            }
            Err(e) => {
                cluster.reported_down.store(true, Ordering::SeqCst);
                tracing::error!(redis = %redacted, error = %e, "Redis does not answer; paid requests are refused until it does")
            }
        }
        Ok(Some(cluster))
    }

    /// A connection that does not join as a node: a command-line process announcing its
    /// writes. Nothing is sent until it is used.
    pub fn open(config: &RedisConfig) -> anyhow::Result<Option<Arc<Cluster>>> {
        let Some(url) = config.url.as_deref().filter(|url| !url.is_empty()) else {
            return Ok(None);
        };
        let redacted = crate::config::redact_url(url);
        let client = redis::Client::open(url)
            .with_context(|| format!("cannot read the Redis URL {redacted}"))?;
        let settings = redis::aio::ConnectionManagerConfig::new()
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        // Lazy: a node starts while Redis is down, and serves nothing paid until it answers.
        let connection = ConnectionManager::new_lazy_with_config(client.clone(), settings)
            .with_context(|| format!("cannot prepare a connection to Redis at {redacted}"))?;
        let cluster = Arc::new(Cluster {
            connection,
            client,
            prefix: config.key_prefix.clone(),
            node: uuid::Uuid::new_v4().simple().to_string(),
            epoch: Mutex::new(String::new()),
            era: AtomicU64::new(1),
            up: AtomicBool::new(false),
            reported_down: AtomicBool::new(false),
            dirty: AtomicBool::new(true),
            writing: AtomicUsize::new(0),
            nodes_seen: AtomicU64::new(1),
            local_share: AtomicBool::new(false),
            mode_known: AtomicBool::new(false),
            outages: AtomicU64::new(1),
            tend_now: tokio::sync::Notify::new(),
            deferred_commits: Mutex::new(Vec::new()),
            beat_sent: AtomicI64::new(i64::MIN),
            started: std::time::Instant::now(),
            metrics: std::sync::OnceLock::new(),
        });
        Ok(Some(cluster))
    }

    /// Reads (or starts) the epoch and writes this node's heartbeat.
    async fn join(&self) -> redis::RedisResult<()> {
        self.start_or_take_epoch().await?;
        self.beat().await
    }

    /// Starts an epoch when Redis has none, or takes the one it has (another node may have
    /// just started it), in one atomic `SET NX GET`.
    async fn start_or_take_epoch(&self) -> redis::RedisResult<()> {
        let mut connection = self.connection();
        let proposed = uuid::Uuid::new_v4().simple().to_string();
        let epoch: String = redis::cmd("SET")
            .arg(self.key("epoch"))
            .arg(&proposed)
            .arg("NX")
            .arg("GET")
            .query_async::<Option<String>>(&mut connection)
            .await?
            .unwrap_or(proposed);
        self.adopt_epoch(&epoch);
        Ok(())
    }

    pub fn connection(&self) -> ConnectionManager {
        self.connection.clone()
    }

    pub fn client(&self) -> &redis::Client {
        &self.client
    }

    /// A key under the deployment's prefix.
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::SeqCst)
    }

    /// Whether holds can go to Redis now: it answers and this node's part there is right.
    pub fn is_ready(&self) -> bool {
        self.is_up() && !self.dirty.load(Ordering::SeqCst)
    }

    pub fn era(&self) -> u64 {
        self.era.load(Ordering::SeqCst)
    }

    pub fn epoch(&self) -> String {
        self.epoch
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Completes when this node's part must be written again (see [`Cluster::tend`]).
    pub async fn needs_tending(&self) {
        self.tend_now.notified().await;
    }

    /// Nodes with a recent heartbeat (at least this one).
    pub fn nodes_seen(&self) -> u64 {
        self.nodes_seen.load(Ordering::SeqCst).max(1)
    }

    /// Reports to `metrics` from now on.
    pub fn report_to(&self, metrics: Arc<crate::metrics::Metrics>) {
        metrics.set_redis_up(self.is_up());
        metrics.set_redis_outage_mode(self.shares_in_outage());
        let _ = self.metrics.set(metrics);
    }

    /// Notes how long a call took (since `started`).
    fn took(&self, started: std::time::Instant) {
        if let Some(metrics) = self.metrics.get() {
            metrics.observe_redis(started.elapsed());
        }
    }

    /// Follows the option `redis_outage_mode`, saying so when it changes.
    pub fn set_outage_mode(&self, local_share: bool) {
        if let Some(metrics) = self.metrics.get() {
            metrics.set_redis_outage_mode(local_share);
        }
        let first = !self.mode_known.swap(true, Ordering::SeqCst);
        if self.local_share.swap(local_share, Ordering::SeqCst) != local_share || first {
            tracing::info!(
                mode = if local_share { "local_share" } else { "closed" },
                "while Redis is unreachable, paid requests are {}",
                if local_share {
                    "held within this node's share of each budget"
                } else {
                    "refused"
                }
            );
        }
    }

    pub fn shares_in_outage(&self) -> bool {
        self.local_share.load(Ordering::SeqCst)
    }

    /// The current outage's number (see `outages`).
    pub fn outage(&self) -> u64 {
        self.outages.load(Ordering::SeqCst)
    }

    /// The generation of this node's part in Redis: a lease lent in one is void in the next.
    /// Every rewrite of the part follows [`Cluster::mark_dirty`], which begins a new one.
    /// Read it before [`Cluster::enter`]: a lease noted under a generation read after the part
    /// was marked could outlive the rewrite that left it out.
    pub fn lease_generation(&self) -> u64 {
        self.outage()
    }

    /// Whether this node may hold against a lease now: its part is right, and its last
    /// heartbeat is recent enough that no other node can have dropped that part (and with it
    /// the lease) for a lease run out. A node cut off from Redis stops drawing on its leases
    /// long before the others could spend them.
    pub fn may_draw_leases(&self) -> bool {
        let sent = self.beat_sent.load(Ordering::SeqCst);
        !self.dirty.load(Ordering::SeqCst)
            && sent != i64::MIN
            && self.since_started().saturating_sub(sent) < millis(LEASE_DRAWN)
    }

    /// Milliseconds since this node started.
    fn since_started(&self) -> i64 {
        millis(self.started.elapsed())
    }

    /// Makes this node's last heartbeat look `age` old (tests of a node cut off).
    #[cfg(test)]
    pub fn age_heartbeat(&self, age: Duration) {
        let sent = self.since_started() - millis(age);
        self.beat_sent.store(sent, Ordering::SeqCst);
    }

    /// Marks this node's part as needing a rewrite; the first time after it was right, a new
    /// outage begins (with shares of its own in `local_share` mode).
    fn mark_dirty(&self) {
        if !self.dirty.swap(true, Ordering::SeqCst) {
            // Once per outage, or a beat that fails would wake its own job at once, forever.
            self.tend_now.notify_one();
            self.outages.fetch_add(1, Ordering::SeqCst);
            if self.shares_in_outage() {
                tracing::warn!(
                    nodes = self.nodes_seen(),
                    "Redis is unreachable: this node spends at most its share of each budget until it returns (redis_outage_mode = local_share)"
                );
            }
        }
    }

    /// Takes the epoch Redis has; a different one starts a new era, and this node's part
    /// must be written again.
    fn adopt_epoch(&self, epoch: &str) {
        let mut known = self
            .epoch
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if *known != epoch {
            if !known.is_empty() {
                tracing::warn!(
                    "Redis lost the deployment's counters (restarted?); writing this node's part again"
                );
            }
            *known = epoch.to_string();
            self.era.fetch_add(1, Ordering::SeqCst);
            self.mark_dirty();
        }
    }

    fn deferred(&self) -> std::sync::MutexGuard<'_, Vec<DeferredCommit>> {
        self.deferred_commits
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Keeps commits for the next rewrite of this node's part, and asks for one.
    fn defer_commit(&self, epoch: String, costs: Vec<(String, i64)>) {
        self.mark_dirty();
        self.deferred().push((epoch, costs));
    }

    fn take_deferred_commits(&self) -> Vec<DeferredCommit> {
        std::mem::take(&mut *self.deferred())
    }

    fn restore_deferred_commits(&self, mut commits: Vec<DeferredCommit>) {
        let mut deferred = self.deferred();
        commits.append(&mut deferred);
        *deferred = commits;
    }

    /// Notes the outcome of a call.
    fn answered<T>(&self, result: &redis::RedisResult<T>) {
        if let Some(metrics) = self.metrics.get() {
            metrics.set_redis_up(result.is_ok());
        }
        match result {
            Ok(_) => {
                let was_up = self.up.swap(true, Ordering::SeqCst);
                if !was_up && self.reported_down.swap(false, Ordering::SeqCst) {
                    tracing::info!("Redis answers again");
                }
            }
            Err(e) => {
                self.mark_dirty();
                self.up.store(false, Ordering::SeqCst);
                if !self.reported_down.swap(true, Ordering::SeqCst) {
                    tracing::error!(error = %e, "Redis does not answer; paid requests are refused until it does");
                }
            }
        }
    }

    /// Enters a call that changes counters; `None` while this node's part must be written
    /// again first (the call must not race that rewrite).
    fn enter(self: &Arc<Self>) -> Option<Entered> {
        self.writing.fetch_add(1, Ordering::SeqCst);
        let entered = Entered(Arc::clone(self));
        if self.dirty.load(Ordering::SeqCst) {
            return None;
        }
        Some(entered)
    }

    /// Renews this node's lease, drops the part of nodes whose lease ran out, and counts the
    /// nodes seen lately. Finds a lost epoch or a lease of its own that was dropped.
    async fn beat(&self) -> redis::RedisResult<()> {
        let mut connection = self.connection();
        let mut beat = scopes::BEAT.prepare_invoke();
        beat.key(self.key("epoch"))
            .key(self.key("nodes"))
            .arg(&self.node)
            .arg(self.key("node:"))
            .arg(millis(LEASE))
            .arg(millis(NODE_SEEN));
        // Redis notes the beat after it was sent, so the lease lasts at least from here.
        let sent = self.since_started();
        let result: redis::RedisResult<(Option<String>, i64, i64)> =
            beat.invoke_async(&mut connection).await;
        self.answered(&result);
        let (epoch, seen, was_listed) = result?;
        self.beat_sent.store(sent, Ordering::SeqCst);
        match epoch {
            Some(epoch) => self.adopt_epoch(&epoch),
            // Redis lost everything.
            None => self.start_or_take_epoch().await?,
        }
        if was_listed == 0 {
            // Our lease had run out (or this is our first beat): whatever part we had was
            // dropped by another node.
            self.mark_dirty();
        }
        self.nodes_seen
            .store(u64::try_from(seen).unwrap_or(1).max(1), Ordering::SeqCst);
        Ok(())
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// A counter-changing call in flight (see [`Cluster::enter`]); it may wait in a batch.
struct Entered(Arc<Cluster>);

impl std::fmt::Debug for Entered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Entered")
    }
}

impl Drop for Entered {
    fn drop(&mut self) {
        self.0.writing.fetch_sub(1, Ordering::SeqCst);
    }
}
