//! Mails the low-balance warnings (`service::balance_alerts`) once a minute.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::service::balance_alerts;
use crate::state::AppState;

/// How often balances are compared with their lines: a warning may come up to this late.
const ROUND: Duration = Duration::from_secs(60);

pub async fn run(state: AppState, cancel: CancellationToken) {
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(ROUND) => {}
        }
        match balance_alerts::warn_low_balances(&state.ctx, &state.listen_url).await {
            Ok(0) => {}
            Ok(sent) => tracing::info!(sent, "mailed low-balance warnings"),
            Err(e) => tracing::warn!(error = %e, "could not check balances for warnings"),
        }
    }
}
