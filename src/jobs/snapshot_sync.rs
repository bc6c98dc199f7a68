//! Keeps the in-memory snapshot in step with the database. A cheap version check runs every
//! `sync_interval_ms`; any write made through Tollgate (CLI, API, another node) bumps that
//! version, so changes are live within the interval. A full reload also runs periodically to
//! pick up balance changes made outside this process's billing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::db::{self, DbResult};
use crate::snapshot::Snapshot;
use crate::state::AppState;

/// Even with no version change, reload this often to re-read balances.
const FULL_RESYNC: Duration = Duration::from_secs(30);

/// Rebuilds the snapshot from the database and swaps it in.
pub async fn reload(state: &AppState) -> DbResult<()> {
    // Balances read during the load must not race a billing commit (see billing::ledger).
    let _sync = state.billing.sync_lock().lock().await;
    let previous = state.snapshot.load_full();
    let (snapshot, problems) = Snapshot::load(&state.db, &previous).await?;
    for problem in problems {
        tracing::warn!("{problem}");
    }
    state.snapshot.store(Arc::new(snapshot));
    Ok(())
}

pub async fn run(state: AppState, cancel: CancellationToken) {
    let interval = Duration::from_millis(state.config.server.sync_interval_ms.max(10));
    let mut last_reload = Instant::now();
    loop {
        let wanted = tokio::select! {
            _ = cancel.cancelled() => return,
            _ = state.reload.notified() => true,
            _ = tokio::time::sleep(interval) => {
                match db::meta::data_version(&state.db).await {
                    Ok(version) => {
                        version != state.snapshot.load().version
                            || last_reload.elapsed() >= FULL_RESYNC
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "could not check for data changes");
                        false
                    }
                }
            }
        };
        if wanted {
            match reload(&state).await {
                Ok(()) => last_reload = Instant::now(),
                Err(e) => {
                    tracing::error!(error = %e, "snapshot reload failed; keeping the old one")
                }
            }
        }
    }
}
