//! Persists auto-disables decided on the hot path, and probes auto-disabled channels and
//! disabled keys in the background, re-enabling each one whose probe passes. A channel an
//! admin disabled is never probed or re-enabled. A channel whose last key is disabled is
//! auto-disabled as a whole.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::domain::kinds::{ChannelStatus, ChannelType};
use crate::domain::secret_key::upstream_key_fingerprint;
use crate::providers;
use crate::records::channels::ChannelRow;
use crate::service::channel_tools::{minimal_call, upstream_request_with_key};
use crate::service::channels::{change_health, set_key_health};
use crate::service::{Caller, channels};
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
                match change_health(
                    &state.ctx,
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
            ChannelEvent::DisableKey {
                channel_id,
                fingerprint,
                reason,
            } => disable_key(&state, channel_id, &fingerprint, &reason).await,
        }
    }
}

async fn disable_key(state: &AppState, channel_id: i64, fingerprint: &str, reason: &str) {
    let reason = format!("key refused: {reason}");
    let channel = match set_key_health(&state.ctx, channel_id, fingerprint, Some(&reason)).await {
        Ok(Some(channel)) => channel,
        Ok(None) => return, // deleted meanwhile
        Err(e) => {
            tracing::error!(channel_id, error = %e, "could not record a disabled key");
            return;
        }
    };
    if channel.enabled_keys().next().is_none() {
        let changed = change_health(
            &state.ctx,
            channel_id,
            ChannelStatus::Enabled,
            ChannelStatus::AutoDisabled,
            &format!("every key is disabled; the last one was refused: {reason}"),
        )
        .await;
        if let Err(e) = changed {
            tracing::error!(channel_id, error = %e, "could not record auto-disable");
        }
    }
    state.reload.notify_one();
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
        let channels = match channels::list(&state.ctx, &Caller::System).await {
            Ok(channels) => channels,
            Err(e) => {
                tracing::warn!(error = %e, "could not list channels to probe");
                continue;
            }
        };
        let probes = channels
            .into_iter()
            .filter(|c| {
                c.status == ChannelStatus::AutoDisabled
                    || (c.status == ChannelStatus::Enabled && !c.disabled_keys.is_empty())
            })
            .map(|channel| {
                let state = state.clone();
                async move { probe_channel(&state, &channel).await }
            });
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = futures::future::join_all(probes) => {}
        }
    }
}

/// Probes each disabled key of the channel, putting back those that pass, then re-enables an
/// auto-disabled channel when any of its keys passes.
async fn probe_channel(state: &AppState, channel: &ChannelRow) {
    let mut passed = false;
    for key in &channel.secret_keys {
        if !channel.is_key_disabled(key) {
            continue;
        }
        match probe(state, channel, key).await {
            Ok(()) => {
                passed = true;
                let fingerprint = upstream_key_fingerprint(key);
                match set_key_health(&state.ctx, channel.id, &fingerprint, None).await {
                    Ok(_) => {
                        tracing::info!(channel = %channel.name, key = %fingerprint, "key back in rotation after a passing probe");
                        state.reload.notify_one();
                    }
                    Err(e) => {
                        tracing::error!(channel = %channel.name, error = %e, "could not re-enable a key")
                    }
                }
            }
            Err(reason) => {
                tracing::debug!(channel = %channel.name, %reason, "probe failed; key stays disabled")
            }
        }
    }
    if channel.status != ChannelStatus::AutoDisabled {
        return;
    }
    if !passed {
        let key = channel.enabled_keys().next().map(String::as_str);
        let has_keys = !channel.secret_keys.is_empty();
        if key.is_none() && has_keys {
            return; // every key failed its probe above
        }
        if let Err(reason) = probe(state, channel, key.unwrap_or_default()).await {
            tracing::debug!(channel = %channel.name, %reason, "probe failed; channel stays disabled");
            return;
        }
    }
    let changed = change_health(
        &state.ctx,
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
        Err(e) => {
            tracing::error!(channel = %channel.name, error = %e, "could not re-enable channel")
        }
    }
}

/// One cheap call with the given key, proving the upstream is reachable and accepts it: the
/// free model listing where the API has one that needs the same permission as the models
/// themselves; for Vertex and Bedrock, whose listings need other permissions (or have none),
/// a one-token request to the channel's first model.
async fn probe(state: &AppState, channel: &ChannelRow, key: &str) -> Result<(), String> {
    let request = if matches!(
        channel.channel_type,
        ChannelType::Vertex | ChannelType::Bedrock
    ) {
        let (_, url, body) = minimal_call(channel, None).map_err(|e| e.to_string())?;
        upstream_request_with_key(
            &state.http,
            reqwest::Method::POST,
            channel,
            key,
            &url,
            Some(&body),
        )
        .await?
    } else {
        let url = providers::models_url(channel.channel_type, &channel.base_url);
        upstream_request_with_key(&state.http, reqwest::Method::GET, channel, key, &url, None)
            .await?
    };
    let response = request
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
