//! Trying channels for one request: each attempt picks a channel and a key, sends, and on a
//! failure that allows it moves on to another (see `proxy` for the rules), recording what
//! each failure means for the channel's health.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, StatusCode, header};
use http_body_util::Full;

use super::error::RelayError;
use super::request::ClientRequest;
use super::wire::Wire;
use crate::billing::Ticket;
use crate::clock::now_ms;
use crate::domain::kinds::ChannelType;
use crate::domain::pricing::Usage;
use crate::metrics::{RequestOutcome, StatusClass};
use crate::options::RuntimeOptions;
use crate::providers::{self, Credential, bedrock, vertex};
use crate::records::logs::FailedAttempt;
use crate::snapshot::health::FailureEffect;
use crate::snapshot::routing::NoChannel;
use crate::snapshot::{ChannelEntry, ChannelKey, KeyPick};
use crate::state::{AppState, ChannelEvent};
use crate::upstream::UpstreamResponse;

use super::answers::{is_stream, read_limited, upstream_error_message};
use super::proxy::{ANTHROPIC_BETA, MAX_ERROR_BODY};

/// Bodies above this size are tokenized on the blocking pool rather than on a request thread.
/// The headers every upstream request of the channel carries besides its key: the channel's
/// fixed and extra headers, and an Anthropic client's beta opt-ins for Anthropic channels.
pub(super) fn add_channel_headers(
    channel: &ChannelEntry,
    client_headers: &HeaderMap,
    headers: &mut HeaderMap,
) {
    // Anthropic clients opt into beta features per request (Claude Code does); Claude on
    // Vertex takes them too.
    if matches!(
        channel.channel_type,
        ChannelType::Anthropic | ChannelType::Vertex
    ) && let Some(beta) = client_headers.get(ANTHROPIC_BETA)
    {
        headers.insert(ANTHROPIC_BETA, beta.clone());
    }
    for (name, value) in &channel.extra_headers {
        headers.insert(name, value.clone());
    }
}

/// Why one attempt failed.
pub(super) enum AttemptFailure {
    /// Try another channel.
    Retry(RelayError),
    /// One key of a multi-key channel failed and now rests: the channel may serve the retry
    /// with another of its keys.
    RetryKey(RelayError),
    /// Stop and answer the client with this response (an upstream client error).
    Final {
        response: Response,
        status: u16,
        message: String,
    },
}

pub(super) struct Attempts<'a> {
    pub(super) state: &'a AppState,
    pub(super) options: &'a RuntimeOptions,
    pub(super) request: &'a ClientRequest<'a>,
    /// The model routed and priced (the request's own name, or what it resolved to).
    pub(super) model: &'a str,
    pub(super) raw: &'a Bytes,
    pub(super) client_headers: &'a HeaderMap,
    pub(super) prompt_estimate: i64,
    /// Units held for a per-unit price (images, seconds); a stream is billed for them.
    pub(super) held_units: i64,
}

/// An attempt that failed gives the ticket back for the next one.
pub(super) type AttemptResult = Result<Response, (AttemptFailure, Ticket)>;

impl Attempts<'_> {
    pub(super) async fn run(
        self,
        routes: &crate::snapshot::routing::RouteSet,
        mut ticket: Ticket,
    ) -> Result<Response, RelayError> {
        let max_attempts = 1 + self.options.retry_count;
        let mut tried: Vec<i64> = Vec::new();
        let mut last_error: Option<RelayError> = None;
        // The failed attempt before this one: it joins the log's list only when another
        // attempt follows, since the row itself describes the last.
        let mut previous: Option<FailedAttempt> = None;
        for _ in 0..max_attempts {
            let channel = match routes.pick(&tried, now_ms()) {
                Ok(channel) => channel,
                Err(NoChannel::CoolingDown { until_ms }) if last_error.is_none() => {
                    let wait = u64::try_from((until_ms - now_ms()).max(1000) / 1000).unwrap_or(1);
                    last_error = Some(
                        RelayError::no_channel(format!(
                            "Every channel for the model '{}' is cooling down after failures; retry in {wait} s.",
                            self.request.model
                        ))
                        .with_retry_after(wait),
                    );
                    break;
                }
                Err(_) => break,
            };
            tried.push(channel.id);
            ticket.log.failed_attempts.extend(previous.take());
            let started = now_ms();
            let counted_before = ticket.log.attempts;
            let upstream_model = channel.upstream_model(self.model).to_string();
            ticket.log.channel_id = Some(channel.id);
            ticket.log.channel_name = channel.name.clone();
            ticket.log.upstream_model = upstream_model.clone();
            let (error, returned) = match self.attempt(&channel, &upstream_model, ticket).await {
                Ok(response) => return Ok(response),
                Err((AttemptFailure::Retry(error), returned)) => (error, returned),
                Err((AttemptFailure::RetryKey(error), returned)) => {
                    // Only that key rests; the channel stays a candidate for its other keys.
                    tried.pop();
                    (error, returned)
                }
                Err((
                    AttemptFailure::Final {
                        response,
                        status,
                        message,
                    },
                    mut returned,
                )) => {
                    returned.set_outcome(RequestOutcome::of_upstream_status(status));
                    returned.refund(status, &message);
                    return Ok(response);
                }
            };
            ticket = returned;
            ticket.log.error_message = error.message.clone();
            ticket.log.status_code = i64::from(error.status.as_u16());
            // Only attempts that reached the upstream (or its token endpoint) are counted
            // and listed; a channel whose keys were all resting was passed over.
            if ticket.log.attempts > counted_before {
                previous = Some(FailedAttempt {
                    channel_id: channel.id,
                    channel: channel.name.clone(),
                    status: error.status.as_u16(),
                    latency_ms: now_ms() - started,
                    error: error.message.clone(),
                });
            }
            last_error = Some(error);
        }
        let error = last_error.unwrap_or_else(|| {
            RelayError::no_channel(format!(
                "No channel is available for the model '{}' right now.",
                self.request.model
            ))
        });
        let status = error.status.as_u16();
        let message = error.message.clone();
        ticket.set_outcome(error.metric_outcome());
        ticket.refund(status, &message);
        Err(error)
    }

    fn first_byte_timeout(&self, channel: &ChannelEntry) -> Duration {
        let secs = if channel.timeout_secs > 0 {
            channel.timeout_secs
        } else {
            self.options.first_byte_timeout_secs
        };
        Duration::from_secs(secs)
    }

    /// Records a retryable failure on the channel's health and turns it into a retry.
    pub(super) fn channel_failed(
        &self,
        channel: &ChannelEntry,
        status: Option<u16>,
        error: RelayError,
    ) -> AttemptFailure {
        let options = self.options;
        let now = now_ms();
        let disable_now = status.is_some_and(|code| options.auto_disable_statuses.contains(code));
        let effect = if disable_now {
            channel.health.disable(now)
        } else {
            channel.health.record_failure(
                now,
                options.cooldown_after_failures,
                i64::try_from(options.cooldown_secs.saturating_mul(1000)).unwrap_or(i64::MAX),
                options.auto_disable_after_failures,
            )
        };
        if effect == FailureEffect::Disable {
            let reason = if disable_now {
                error.message.clone()
            } else {
                format!(
                    "{} consecutive failures, the last: {}",
                    options.auto_disable_after_failures, error.message
                )
            };
            tracing::warn!(channel = %channel.name, %reason, "auto-disabling channel");
            let _ = self.state.channel_events.send(ChannelEvent::AutoDisable {
                channel_id: channel.id,
                reason,
            });
        }
        AttemptFailure::Retry(error)
    }

    /// No access token could be had for a key: a refused service account counts like an
    /// upstream's 401 (the key or channel is disabled and re-probed), an unreachable token
    /// endpoint like an unreachable upstream.
    fn credential_failed(
        &self,
        channel: &ChannelEntry,
        key: &ChannelKey,
        refused: vertex::TokenError,
    ) -> AttemptFailure {
        let error = RelayError::upstream(
            StatusCode::SERVICE_UNAVAILABLE,
            "upstream_unavailable",
            refused.message,
        );
        match refused.status {
            Some(400 | 401 | 403) => {
                if channel.has_several_keys()
                    && let Some(failure) = self.key_failed(channel, key, 401, &error)
                {
                    return failure;
                }
                self.channel_failed(channel, Some(401), error)
            }
            _ => self.channel_failed(channel, None, error),
        }
    }

    /// A refusal (401/403) or rate limit (429) of one key of a multi-key channel rests that
    /// key alone: disabled until a probe passes, or cooled down. Other failures are the
    /// channel's (None).
    fn key_failed(
        &self,
        channel: &ChannelEntry,
        key: &ChannelKey,
        code: u16,
        error: &RelayError,
    ) -> Option<AttemptFailure> {
        let options = self.options;
        let now = now_ms();
        if options.auto_disable_statuses.contains(code) {
            if key.health.disable(now) {
                tracing::warn!(channel = %channel.name, key = %key.fingerprint, reason = %error.message, "disabling one key of the channel");
                let _ = self.state.channel_events.send(ChannelEvent::DisableKey {
                    channel_id: channel.id,
                    fingerprint: key.fingerprint.clone(),
                    reason: error.message.clone(),
                });
            }
        } else if code == 429 {
            let cooldown_ms =
                i64::try_from(options.cooldown_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
            key.health.cool_down(now.saturating_add(cooldown_ms));
            tracing::debug!(channel = %channel.name, key = %key.fingerprint, "one key of the channel is cooling down");
        } else {
            return None;
        }
        Some(AttemptFailure::RetryKey(error.clone()))
    }

    /// One try on one channel: the request in its protocol, the key, the call, and the answer
    /// relayed, or why the next channel should be tried.
    async fn attempt(
        &self,
        channel: &Arc<ChannelEntry>,
        upstream_model: &str,
        mut ticket: Ticket,
    ) -> AttemptResult {
        let (wire, uri, body) = match self.upstream_body(channel, upstream_model) {
            Ok(prepared) => prepared,
            // Not the channel's fault: another channel of another type may take the request.
            Err(error) => return Err((AttemptFailure::Retry(error), ticket)),
        };
        let content_type = match &self.request.form {
            Some(form) => form.content_type.as_str(),
            None => "application/json",
        };
        let builder = http::Request::builder()
            .method(http::Method::POST)
            .uri(uri)
            .header(header::CONTENT_TYPE, content_type);
        let (builder, key, signing_key) = match self.authorize(channel, builder, &mut ticket).await
        {
            Ok(authorized) => authorized,
            Err(failure) => return Err((failure, ticket)),
        };
        let upstream_request = match self.finish_request(channel, builder, body, signing_key) {
            Ok(upstream_request) => upstream_request,
            Err(error) => return Err((AttemptFailure::Retry(error), ticket)),
        };
        let timeout = self.first_byte_timeout(channel);
        // While the upstream works, a vanished client still pays for the prompt it sent.
        ticket.charge_on_drop = Some(Usage {
            prompt_tokens: self.prompt_estimate,
            ..Usage::default()
        });
        ticket.upstream_started();
        let response = match self.send(channel, upstream_request, timeout).await {
            Ok(response) => response,
            Err(failure) => {
                ticket.upstream_ended();
                ticket.charge_on_drop = None;
                return Err((failure, ticket));
            }
        };
        ticket.log.upstream_request_id = providers::upstream_request_id(response.headers())
            .unwrap_or_default()
            .to_string();
        if !response.status().is_success() {
            ticket.charge_on_drop = None;
            let failure = self
                .upstream_error(wire, channel, key, response, timeout)
                .await;
            ticket.upstream_ended();
            return Err((failure, ticket));
        }
        if self.request.stream && is_stream(wire, &response) {
            self.start_stream(wire, channel, response, timeout, ticket)
                .await
        } else {
            self.whole_answer(wire, channel, response, timeout, ticket)
                .await
        }
    }

    /// The request in the channel's protocol, and where it goes.
    fn upstream_body(
        &self,
        channel: &ChannelEntry,
        upstream_model: &str,
    ) -> Result<(Wire, http::Uri, Bytes), RelayError> {
        let request = self.request;
        let Some(uri) = channel.endpoint_uri(request.endpoint) else {
            // Not a failure of the channel: it cannot serve this endpoint at all.
            return Err(RelayError::bad_request(format!(
                "The channels serving '{}' cannot answer {} requests ({} channel).",
                request.model,
                request.endpoint.log_name(),
                channel.channel_type
            )));
        };
        let wire = Wire::new(request.endpoint, channel.channel_type, upstream_model);
        let body = wire.body(
            request,
            self.raw,
            upstream_model,
            self.options.default_max_tokens,
        )?;
        let uri = providers::request_uri(
            channel.channel_type,
            request.endpoint,
            uri,
            upstream_model,
            request.stream,
        )
        .ok_or_else(|| {
            RelayError::bad_request(format!(
                "The model name '{upstream_model}' cannot be part of the upstream's URL."
            ))
        })?;
        Ok((wire, uri, body))
    }

    /// Picks the channel's key and puts its credential on the request (IAM credentials are
    /// returned instead: they sign the finished request). From here the upstream, or its
    /// token endpoint, is contacted: the attempt counts.
    async fn authorize<'c>(
        &self,
        channel: &'c ChannelEntry,
        mut builder: http::request::Builder,
        ticket: &mut Ticket,
    ) -> Result<
        (
            http::request::Builder,
            Option<&'c ChannelKey>,
            Option<&'c Arc<bedrock::BedrockKey>>,
        ),
        AttemptFailure,
    > {
        let key = match channel.pick_key(now_ms()) {
            KeyPick::Key(key) => key,
            KeyPick::NoKeyNeeded => {
                ticket.log.attempts += 1;
                return Ok((builder, None, None));
            }
            KeyPick::AllResting => {
                return Err(AttemptFailure::Retry(RelayError::upstream(
                    StatusCode::TOO_MANY_REQUESTS,
                    "upstream_rate_limited",
                    format!(
                        "Every key of the channel '{}' is resting after rate limits or refusals.",
                        channel.name
                    ),
                )));
            }
        };
        ticket.log.attempts += 1;
        match &key.credential {
            Credential::AwsSigning(aws) => return Ok((builder, Some(key), Some(aws))),
            Credential::Header(name, value) => builder = builder.header(name, value.clone()),
            Credential::Vertex(tokens) => {
                let limit = self.first_byte_timeout(channel);
                let token = tokio::time::timeout(limit, tokens.authorization(&self.state.http))
                    .await
                    .unwrap_or_else(|_| {
                        Err(vertex::TokenError {
                            status: None,
                            message: format!(
                                "Google's token endpoint did not answer within {} s.",
                                limit.as_secs()
                            ),
                        })
                    });
                match token {
                    Ok(value) => builder = builder.header(header::AUTHORIZATION, value),
                    Err(refused) => return Err(self.credential_failed(channel, key, refused)),
                }
            }
        }
        Ok((builder, Some(key), None))
    }

    /// The finished request: the channel's and client's headers, the body, and the IAM
    /// signature over them all.
    fn finish_request(
        &self,
        channel: &ChannelEntry,
        mut builder: http::request::Builder,
        body: Bytes,
        signing_key: Option<&Arc<bedrock::BedrockKey>>,
    ) -> Result<http::Request<Full<Bytes>>, RelayError> {
        if self.request.stream {
            builder = builder.header(header::ACCEPT, "text/event-stream");
        }
        if let Some(headers) = builder.headers_mut() {
            add_channel_headers(channel, self.client_headers, headers);
        }
        let mut upstream_request = builder
            .body(Full::new(body.clone()))
            .map_err(|_| RelayError::internal())?;
        if let Some(aws) = signing_key
            && let Err(message) =
                bedrock::sign(&mut upstream_request, &body, aws, &channel.base_url)
        {
            tracing::error!(channel = %channel.name, %message, "cannot sign a Bedrock request");
            return Err(RelayError::internal());
        }
        Ok(upstream_request)
    }

    /// Sends the request; no answer within `timeout`, or no connection, is the channel's
    /// failure.
    async fn send(
        &self,
        channel: &ChannelEntry,
        upstream_request: http::Request<Full<Bytes>>,
        timeout: Duration,
    ) -> Result<UpstreamResponse, AttemptFailure> {
        let measured = channel.metrics(&self.state.metrics);
        let sent = Instant::now();
        let answered =
            tokio::time::timeout(timeout, self.state.upstream.send(upstream_request)).await;
        let class = match &answered {
            Ok(Ok(response)) => StatusClass::of_status(response.status().as_u16()),
            Ok(Err(_)) => StatusClass::Connect,
            Err(_) => StatusClass::Timeout,
        };
        measured.observe(class, sent.elapsed());
        match answered {
            Ok(Ok(response)) => Ok(response),
            Err(_) => {
                let error = RelayError::upstream(
                    StatusCode::GATEWAY_TIMEOUT,
                    "upstream_timeout",
                    format!(
                        "The upstream did not answer within {} s.",
                        timeout.as_secs()
                    ),
                );
                Err(self.channel_failed(channel, None, error))
            }
            Ok(Err(e)) => {
                let error = RelayError::upstream(
                    StatusCode::BAD_GATEWAY,
                    "upstream_unreachable",
                    format!(
                        "The upstream could not be reached: {}",
                        crate::upstream::describe(&e)
                    ),
                );
                Err(self.channel_failed(channel, None, error))
            }
        }
    }

    /// A non-2xx answer: retry on the configured statuses, otherwise hand it to the client.
    async fn upstream_error(
        &self,
        wire: Wire,
        channel: &ChannelEntry,
        key: Option<&ChannelKey>,
        response: UpstreamResponse,
        timeout: Duration,
    ) -> AttemptFailure {
        let status = response.status();
        let content_type = response.headers().get(header::CONTENT_TYPE).cloned();
        let body = read_limited(response, MAX_ERROR_BODY, timeout)
            .await
            .unwrap_or_default();
        let upstream_message = upstream_error_message(&body);
        let code = providers::effective_status(channel.channel_type, status.as_u16(), &body);
        if self.options.retry_statuses.contains(code) {
            let (client_status, client_code) = match code {
                429 => (StatusCode::TOO_MANY_REQUESTS, "upstream_rate_limited"),
                401 | 403 => (StatusCode::SERVICE_UNAVAILABLE, "upstream_unavailable"),
                408 | 504 => (StatusCode::GATEWAY_TIMEOUT, "upstream_timeout"),
                _ => (StatusCode::BAD_GATEWAY, "upstream_error"),
            };
            let error = RelayError::upstream(
                client_status,
                client_code,
                format!("The upstream answered HTTP {code}: {upstream_message}"),
            );
            if let Some(key) = key.filter(|_| channel.has_several_keys())
                && let Some(failure) = self.key_failed(channel, key, code, &error)
            {
                return failure;
            }
            return self.channel_failed(channel, Some(code), error);
        }
        // The upstream refused the request itself (bad parameters and the like): the client
        // needs the upstream's own explanation, so it is passed through unchanged.
        channel.health.record_success();
        let response = wire.error_response(status, content_type, body, &upstream_message);
        AttemptFailure::Final {
            response,
            status: code,
            message: format!("upstream answered HTTP {code}: {upstream_message}"),
        }
    }
}
