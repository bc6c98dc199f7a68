//! Asks Stripe about unpaid orders every minute (`--reconcile-interval-ms`) (`service::topups::reconcile`): a payment whose
//! webhook was lost, or arrived while the server was down, is still credited; a session that
//! expired closes its order.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::service::{Caller, topups};
use crate::state::AppState;

pub async fn run(state: AppState, cancel: CancellationToken) {
    let round = Duration::from_millis(state.config.server.reconcile_interval_ms.max(100));
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(round) => {}
        }
        let after = state.snapshot.load().options.topup_reconcile_after_secs;
        match topups::reconcile(&state.ctx, &Caller::System, after, &state.listen_url).await {
            Ok(report) if report.credited + report.closed + report.held + report.failed > 0 => {
                tracing::info!(?report, "reconciled top-up orders with Stripe");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "could not reconcile top-up orders"),
        }
    }
}
