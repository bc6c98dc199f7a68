//! Keeps the server's in-memory view in step with the database through the change feed
//! (`service::feed`). Every `sync_interval_ms` one tiny query reads the data version; when it moved,
//! the changes recorded since are read and applied: a changed key or account is re-read on its
//! own, a change to channels, groups, prices, aliases or options rebuilds the routing view (a
//! few hundred rows). A gap in the feed (this server fell behind the pruned edge, or something
//! wrote around the feed) triggers one full reload.
//!
//! Also on this loop: balances held in memory are re-read every 20 s (other servers' billing
//! changes them without a feed entry), idle keys and accounts are dropped, and old feed rows
//! are pruned.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use crate::clock::now_ms;
use crate::records::{Change, DbResult};
use crate::service::AfterWrite;
use crate::service::feed;
use crate::snapshot::Snapshot;
use crate::state::{AppInner, AppState};

/// Re-read the balances held this often.
const BALANCE_RESYNC: Duration = Duration::from_secs(20);
// A node that dies after its billing commit but before telling Redis leaves that spending in
// its part of what Redis counts in flight until its lease runs out. Every other node must
// have read the database since the commit by then, or it would count the spending nowhere:
// the commit came at most a heartbeat after the dead node's last beat.
const _: () = assert!(
    BALANCE_RESYNC.as_secs() + crate::cluster::HEARTBEAT.as_secs()
        < crate::cluster::LEASE.as_secs()
);
/// Drop idle keys and accounts, and prune the feed, this often.
const HOUSEKEEPING: Duration = Duration::from_secs(60);
/// Keys and accounts unused this long are dropped from memory (read again on next use).
const IDLE_ENTRY: Duration = Duration::from_secs(600);
/// A server this many versions behind reloads rather than reading the changes one by one;
/// the feed keeps as many versions, and prunes older ones.
const MAX_FEED_READ: i64 = 10_000;

/// What bringing the view up to date did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Synced {
    /// Nothing had changed.
    Current,
    /// The changes since the last sync were applied.
    Applied {
        changes: usize,
        routing_rebuilt: bool,
    },
    /// Everything was read again.
    Reloaded,
}

/// Reads the routing view and re-reads every key and account held: at start, after a gap in
/// the feed, or when asked to.
pub async fn reload(state: &AppState) -> DbResult<()> {
    let mut applied = state.applied_version.lock().await;
    reload_locked(state, &mut applied).await
}

async fn reload_locked(state: &AppState, applied: &mut i64) -> DbResult<()> {
    // The version first: what commits during the load is applied again from the feed, which
    // is harmless; what committed before is in the load.
    let version = feed::data_version(&state.ctx).await?;
    rebuild_routing(state).await?;
    state.directory.reread_all().await?;
    *applied = version;
    state.metrics.feed_applied(version);
    Ok(())
}

async fn rebuild_routing(state: &AppState) -> DbResult<()> {
    let previous = state.snapshot.load_full();
    let rows = crate::service::catalog::rows(&state.ctx).await?;
    let (snapshot, problems) = Snapshot::from_rows(rows, &previous);
    for problem in problems {
        tracing::warn!("{problem}");
    }
    if let Some(cluster) = &state.cluster {
        cluster.set_outage_mode(snapshot.options.redis_outage_mode == "local_share");
    }
    // Each channel's counters are looked up now rather than by its first request.
    for channel in snapshot.channels() {
        channel.metrics(&state.metrics);
    }
    state.snapshot.store(Arc::new(snapshot));
    state.health.routing_loaded();
    Ok(())
}

/// Applies what changed since the last sync (see the module's doc).
pub async fn catch_up(state: &AppState) -> DbResult<Synced> {
    let mut applied = state.applied_version.lock().await;
    let current = feed::data_version(&state.ctx).await?;
    state.metrics.feed_seen(current);
    if current == *applied {
        return Ok(Synced::Current);
    }
    if current < *applied || current - *applied > MAX_FEED_READ {
        tracing::info!(
            from = *applied,
            to = current,
            "far behind the change feed; reloading"
        );
        reload_locked(state, &mut applied).await?;
        return Ok(Synced::Reloaded);
    }
    let read = feed::changes(&state.ctx, *applied, current).await?;
    if !read.is_complete(*applied, current) {
        tracing::info!(
            from = *applied,
            to = current,
            "the change feed has a gap (pruned, or written around); reloading"
        );
        reload_locked(state, &mut applied).await?;
        return Ok(Synced::Reloaded);
    }
    let routing_rebuilt = read.changes.iter().any(Change::is_routing);
    if routing_rebuilt {
        rebuild_routing(state).await?;
    }
    state.directory.apply(&read.changes).await?;
    *applied = current;
    state.metrics.feed_applied(current);
    Ok(Synced::Applied {
        changes: read.changes.len(),
        routing_rebuilt,
    })
}

/// Applies a management write to the server's view as soon as it committed: its changes are
/// in the change feed by then, read with any others since the last sync. Refers to the server
/// without keeping it alive.
pub struct ApplyChanges(pub Weak<AppInner>);

impl AfterWrite for ApplyChanges {
    fn committed<'a>(&'a self, _changes: &'a [Change]) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let Some(inner) = self.0.upgrade() else {
                return;
            };
            let state = AppState(inner);
            if let Some(cluster) = &state.cluster {
                crate::cluster::feed::announce(cluster).await;
            }
            if let Err(e) = catch_up(&state).await {
                tracing::warn!(error = %e, "applying a management write failed; the sync job will retry");
                state.reload.notify_one();
            }
        })
    }
}

/// Drops idle keys and accounts, prunes old feed rows, expired portal sessions and
/// old emailed codes.
pub async fn housekeeping(state: &AppState) -> DbResult<()> {
    let dropped = state.directory.drop_idle(now_ms(), IDLE_ENTRY).await;
    if dropped.tokens > 0 || dropped.users > 0 {
        tracing::debug!(
            keys = dropped.tokens,
            accounts = dropped.users,
            "dropped idle keys and accounts from memory"
        );
    }
    feed::tidy(&state.ctx, MAX_FEED_READ).await
}

pub async fn run(state: AppState, cancel: CancellationToken) {
    let interval = Duration::from_millis(state.config.server.sync_interval_ms.max(10));
    let mut last_balances = Instant::now();
    let mut last_housekeeping = Instant::now();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = state.reload.notified() => {}
            _ = tokio::time::sleep(interval) => {}
        }
        if let Err(e) = catch_up(&state).await {
            tracing::error!(error = %e, "could not apply the latest changes; keeping the current view");
        }
        if last_balances.elapsed() >= BALANCE_RESYNC {
            last_balances = Instant::now();
            if let Err(e) = state.directory.reread_balances().await {
                tracing::warn!(error = %e, "could not re-read the balances held");
            }
        }
        if last_housekeeping.elapsed() >= HOUSEKEEPING {
            last_housekeeping = Instant::now();
            if let Err(e) = housekeeping(&state).await {
                tracing::warn!(error = %e, "could not prune the change feed");
            }
        }
    }
}
