//! Keeps this node's lease in Redis: a heartbeat every few seconds, and, whenever its part of
//! the shared counters may be wrong (Redis was unreachable, lost its data, or dropped the
//! lease), writes that part again from what the node holds in memory. Until then the node
//! holds nothing in Redis, so it tries at once and then every 200 ms to come back quickly.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::cluster::{Cluster, HEARTBEAT};
use crate::state::AppState;

/// How often a node whose part must be written again tries.
const RETRY: Duration = Duration::from_millis(200);

pub async fn run(state: AppState, cluster: Arc<Cluster>, cancel: CancellationToken) {
    loop {
        cluster.tend(|| state.directory.scopes_in_flight()).await;
        let pause = if cluster.is_ready() { HEARTBEAT } else { RETRY };
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(pause) => {}
            _ = cluster.needs_tending() => {}
        }
    }
}
