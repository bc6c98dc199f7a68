//! The request logs' upkeep: the indexes their filters read, the backfill of the rollups after
//! an upgrade (in the background: the overview says "rebuilding" until it is done), and the
//! purge of logs older than `log_retention_days`, once an hour.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::clock::now_ms;
use crate::service::rollups;
use crate::state::AppState;

/// How often old logs are purged.
const PURGE_EVERY: Duration = Duration::from_secs(3600);

/// The pause between backfill steps, so the billing writer and the pages keep their pace.
const BACKFILL_PAUSE: Duration = Duration::from_millis(20);

pub async fn run(state: AppState, cancel: CancellationToken) {
    if let Err(e) = crate::service::logs::ensure_indexes(&state.ctx).await {
        tracing::warn!(error = %e, "could not build the request logs' indexes");
    }
    backfill(&state, &cancel).await;
    loop {
        let days = state.snapshot.load().options.log_retention_days;
        match rollups::purge(&state.ctx, days, now_ms()).await {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, days, "purged old request logs"),
            Err(e) => tracing::warn!(error = %e, "could not purge old request logs"),
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(PURGE_EVERY) => {}
        }
    }
}

async fn backfill(state: &AppState, cancel: &CancellationToken) {
    let mut announced = false;
    loop {
        match rollups::backfill_step(&state.ctx).await {
            Ok(progress) if progress.finished() => {
                if announced {
                    tracing::info!("the request logs' rollups are complete");
                }
                return;
            }
            Ok(progress) => {
                if !announced {
                    tracing::info!(
                        through_id = progress.through_id,
                        "rolling up the request logs written before this version"
                    );
                    announced = true;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not roll up older request logs; retrying");
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(10)) => {}
                }
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(BACKFILL_PAUSE) => {}
        }
    }
}
