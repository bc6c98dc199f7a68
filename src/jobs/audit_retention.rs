//! Deletes audit rows older than `audit_retention_days` once an hour (see
//! `service::audit::purge_older_than`).

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::service::audit;
use crate::state::AppState;

/// How often old rows are looked for: a row may stay up to this long past its time.
const ROUND: Duration = Duration::from_secs(3600);

pub async fn run(state: AppState, cancel: CancellationToken) {
    loop {
        let days = state.snapshot.load().options.audit_retention_days;
        let days = i64::try_from(days).unwrap_or(i64::MAX);
        match audit::purge_older_than(&state.ctx, days).await {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, days, "deleted audit rows past their retention"),
            Err(e) => tracing::warn!(error = %e, "could not delete old audit rows"),
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(ROUND) => {}
        }
    }
}
