//! Asks Stripe about unpaid orders every minute (`service::topups::reconcile`): a payment whose
//! webhook was lost, or arrived while the server was down, is still credited; a session that
//! expired closes its order.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::service::{Caller, topups};
use crate::state::AppState;

const ROUND: Duration = Duration::from_secs(60);

pub async fn run(state: AppState, cancel: CancellationToken) {
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(ROUND) => {}
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
