//! Mails the organisations' budget alerts (`service::budget_alerts`) once a minute.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::clock::now_ms;
use crate::service::budget_alerts;
use crate::state::AppState;

/// How often budgets are compared with their thresholds: an alert may come up to this late.
const ROUND: Duration = Duration::from_secs(60);

pub async fn run(state: AppState, cancel: CancellationToken) {
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(ROUND) => {}
        }
        match budget_alerts::alert_budgets(&state.ctx, &state.listen_url, now_ms()).await {
            Ok(0) => {}
            Ok(sent) => tracing::info!(sent, "mailed budget alerts"),
            Err(e) => tracing::warn!(error = %e, "could not check budgets for alerts"),
        }
    }
}
