//! Persists auto-disables decided on the hot path, and probes auto-disabled channels in the
//! background, re-enabling each one whose probe passes. A channel an admin disabled is never
//! probed or re-enabled.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::db::{self, channels::ChannelRow};
use crate::domain::kinds::ChannelStatus;
use crate::relay::providers;
use crate::service::channel_tools::upstream_request;
use crate::state::{AppState, ChannelEvent};

/// Longest a probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(15);

pub async fn record_events(
    state: AppState,
    mut events: mpsc::UnboundedReceiver<ChannelEvent>,
    cancel: CancellationToken,
) {
    loop {
        let event = tokio::select! {
            _ = cancel.cancelled() => return,
            event = events.recv() => match event { Some(e) => e, None => return },
        };
        match event {
            ChannelEvent::AutoDisable { channel_id, reason } => {
                match db::channels::set_status_if(
                    &state.db,
                    channel_id,
                    ChannelStatus::Enabled,
                    ChannelStatus::AutoDisabled,
                    &reason,
                )
                .await
                {
                    Ok(true) => state.reload.notify_one(),
                    Ok(false) => {} // already changed by someone else
                    Err(e) => {
                        tracing::error!(channel_id, error = %e, "could not record auto-disable")
                    }
                }
            }
        }
    }
}

pub async fn probe_loop(state: AppState, cancel: CancellationToken) {
    let mut last_round = std::time::Instant::now();
    loop {
        // Wake every second so a changed interval takes effect without a restart.
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        let interval =
            Duration::from_secs(state.snapshot.load().options.probe_interval_secs.max(1));
        if last_round.elapsed() < interval {
            continue;
        }
        last_round = std::time::Instant::now();
        let channels = match db::channels::list(&state.db).await {
            Ok(channels) => channels,
            Err(e) => {
                tracing::warn!(error = %e, "could not list channels to probe");
                continue;
            }
        };
        let probes = channels
            .into_iter()
            .filter(|c| c.status == ChannelStatus::AutoDisabled)
            .map(|channel| {
                let state = state.clone();
                async move {
                    match probe(&state, &channel).await {
                        Ok(()) => {
                            let changed = db::channels::set_status_if(
                                &state.db,
                                channel.id,
                                ChannelStatus::AutoDisabled,
                                ChannelStatus::Enabled,
                                "re-enabled: a background probe passed",
                            )
                            .await;
                            match changed {
                                Ok(true) => {
                                    tracing::info!(channel = %channel.name, "channel re-enabled after a passing probe");
                                    state.reload.notify_one();
                                }
                                Ok(false) => {}
                                Err(e) => tracing::error!(channel = %channel.name, error = %e, "could not re-enable channel"),
                            }
                        }
                        Err(reason) => {
                            tracing::debug!(channel = %channel.name, %reason, "probe failed; channel stays disabled");
                        }
                    }
                }
            });
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = futures::future::join_all(probes) => {}
        }
    }
}

/// One cheap, free call: list the upstream's models with the channel's first key. It proves the
/// upstream is reachable and accepts the key.
async fn probe(state: &AppState, channel: &ChannelRow) -> Result<(), String> {
    let url = providers::models_url(channel.channel_type, &channel.base_url);
    let response = upstream_request(&state.http, reqwest::Method::GET, channel, &url)
        .timeout(PROBE_TIMEOUT)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!("HTTP {}", response.status()))
    }
}
