//! The relay pipeline for one request: authenticate, read and check the body, price it, hold
//! the estimate, then try channels until one answers, and bill what it used.
//!
//! Failover: a connection error, a timeout, or an upstream status in `retry_statuses` moves on
//! to another channel (the same priority tier first, then lower tiers), never one already tried
//! for this request, up to `retry_count` extra attempts. Nothing is retried once any byte of an
//! answer has gone to the client: a stream is committed only when its first data event has
//! shown it is the upstream's protocol, and a non-streamed answer when it has been read whole
//! or, for a long one the client gets as sent, when its start is JSON.

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use futures::StreamExt;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;

use super::answer::{AnswerBilling, AnswerRelay};
use super::auth::{self, Caller, Denied};
use super::error::RelayError;
use super::request::{ClientRequest, PromptEstimate};
use super::stream::{SseRelay, StreamStart, stream_start};
use super::wire::{self, AnswerContext, Framing, Unusable, Wire};
use crate::billing::{PriceContext, Ticket, ledger::Shortfall};
use crate::clock::now_ms;
use crate::domain::kinds::{ChannelType, Outcome};
use crate::domain::money::Quota;
use crate::domain::names;
use crate::domain::pricing::{ModelPrice, Usage, UsageBounds};
use crate::options::RuntimeOptions;
use crate::protocol::Endpoint;
use crate::protocol::client::BodyDeadlinePassed;
use crate::providers::{self, Credential, bedrock, vertex};
use crate::records::logs::RequestLog;
use crate::snapshot::health::FailureEffect;
use crate::snapshot::routing::NoChannel;
use crate::snapshot::{ChannelEntry, ChannelKey, KeyPick, Snapshot};
use crate::state::{AppState, ChannelEvent};
use crate::upstream::{self, UpstreamResponse};

/// Bodies above this size are tokenized on the blocking pool rather than on a request thread.
const BLOCKING_ESTIMATE_BYTES: usize = 64 * 1024;
/// Most of a whole answer held before it is relayed as it arrives (when the client gets it as
/// the upstream sent it): far more than a chat answer, far less than a large embedding batch.
const MAX_HELD_ANSWER: usize = 256 * 1024;
/// Most of a stream buffered while waiting for its first event.
const MAX_STREAM_HEAD: usize = 1024 * 1024;
/// Most of an upstream error body kept for the log and the client.
const MAX_ERROR_BODY: usize = 64 * 1024;
const ANTHROPIC_BETA: &str = "anthropic-beta";

/// Which key a request is made with.
#[derive(Clone, Copy, Debug)]
pub enum CallerKey {
    /// The key the client presents in its headers (every `/v1` request).
    Presented,
    /// A key named by its digest: the portal's playground, which has checked that the key is
    /// the signed-in person's own. Everything after authentication is the same as on `/v1`.
    Digest([u8; 32]),
}

/// Entry point for the POST endpoints. Every response carries `x-request-id`.
pub async fn relay(
    state: AppState,
    endpoint: Endpoint,
    ip: IpAddr,
    headers: HeaderMap,
    body: Body,
) -> Response {
    relay_with(state, endpoint, CallerKey::Presented, ip, headers, body).await
}

/// [`relay`] with the key given by the caller: the in-process entry point for the portal.
pub async fn relay_with(
    state: AppState,
    endpoint: Endpoint,
    key: CallerKey,
    ip: IpAddr,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let request_id = state.request_ids.next();
    // The request's whole state machine (a few kilobytes) lives in one allocation: unboxed, it
    // would be copied at every level that awaits it, which cost ~4% of the CPU under load.
    let handled = Box::pin(handle(
        &state,
        endpoint,
        key,
        ip,
        &headers,
        body,
        &request_id,
    ))
    .await;
    let mut response = match handled {
        Ok(response) => response,
        Err(error) => endpoint.protocol().error_response(error),
    };
    if let Ok(value) = HeaderValue::try_from(request_id) {
        endpoint
            .protocol()
            .add_request_id(response.headers_mut(), value);
    }
    response
}

/// A request refused after authentication: logged, with nothing charged.
fn refuse(state: &AppState, mut log: RequestLog, error: RelayError) -> RelayError {
    log.outcome = Outcome::Refused;
    log.status_code = i64::from(error.status.as_u16());
    log.error_message = error.message.clone();
    state.billing.record_refusal(log);
    error
}

/// Authenticates a `/v1` request (`endpoint` is its name in the log). A good key refused for
/// the caller's address is logged as a refusal, so its owner sees who tried it and from where;
/// other refusals come before any key is known and are not.
pub(super) async fn admit(
    state: &AppState,
    key: CallerKey,
    headers: &HeaderMap,
    ip: IpAddr,
    endpoint: &'static str,
    request_id: &str,
) -> Result<Caller, RelayError> {
    let admitted = match key {
        CallerKey::Presented => auth::authenticate(&state.directory, headers, ip, now_ms()).await,
        CallerKey::Digest(digest) => {
            auth::authenticate_digest(&state.directory, &digest, ip, now_ms()).await
        }
    };
    admitted.map_err(|denied| match denied {
        Denied::Key(error) => error,
        Denied::Address(caller, error) => {
            refuse(state, base_log(&caller, endpoint, request_id, ip), error)
        }
    })
}

fn base_log(caller: &Caller, endpoint: &'static str, request_id: &str, ip: IpAddr) -> RequestLog {
    RequestLog {
        created_at: now_ms(),
        request_id: request_id.to_string(),
        user_id: caller.user.id,
        username: caller.user.username.clone(),
        token_id: caller.token.id,
        token_name: caller.token.name.clone(),
        group: caller.group().to_string(),
        endpoint: endpoint.to_string(),
        client_ip: ip.to_string(),
        ..RequestLog::empty()
    }
}

async fn read_body(body: Body, limit_kb: u64) -> Result<Bytes, RelayError> {
    let limit = usize::try_from(limit_kb.saturating_mul(1024)).unwrap_or(usize::MAX);
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let too_large = std::error::Error::source(&e)
            .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
        if too_large {
            RelayError::body_too_large(limit_kb)
        } else if BodyDeadlinePassed::caused(&e) {
            RelayError::body_too_slow()
        } else {
            RelayError::bad_request("The request body could not be read.".into())
        }
    })
}

async fn handle(
    state: &AppState,
    endpoint: Endpoint,
    key: CallerKey,
    ip: IpAddr,
    headers: &HeaderMap,
    body: Body,
    request_id: &str,
) -> Result<Response, RelayError> {
    let started = Instant::now();
    let snapshot = state.snapshot.load_full();
    let options = &snapshot.options;
    let caller = admit(state, key, headers, ip, endpoint.log_name(), request_id).await?;
    let mut log = base_log(&caller, endpoint.log_name(), request_id, ip);

    let raw = match read_body(body, options.max_request_body_kb).await {
        Ok(raw) => raw,
        Err(e) => return Err(refuse(state, log, e)),
    };
    let parsed = if endpoint.is_form() {
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        ClientRequest::parse_form(endpoint, &raw, content_type)
    } else {
        ClientRequest::parse(endpoint, &raw)
    };
    let request = match parsed {
        Ok(request) => request,
        Err(e) => return Err(refuse(state, log, e)),
    };
    // Cut to its column when recorded, so even a refused name is logged.
    log.model = request.model.clone();
    log.is_stream = request.stream;
    if let Err(problem) = names::requested_model(&request.model) {
        return Err(refuse(state, log, RelayError::invalid_model(&problem)));
    }
    if endpoint == Endpoint::Messages && request.max_output_tokens.is_none() {
        // Anthropic's API requires it, and clients of it always send it.
        return Err(refuse(state, log, RelayError::missing_field("max_tokens")));
    }

    // The model to route and price: the name asked for, or what an alias or a dated name
    // stands for (the log keeps both).
    let model: Cow<'_, str> = match snapshot.resolve_model(&request.model) {
        Some(resolved) => {
            log.requested_model = request.model.clone();
            log.model = resolved.clone();
            Cow::Owned(resolved)
        }
        None => Cow::Borrowed(request.model.as_str()),
    };
    let routes = match check_model_access(&snapshot, &caller, &request.model, &model) {
        Ok(routes) => routes,
        Err(e) => return Err(refuse(state, log, e)),
    };
    let price = if endpoint.makes_images() {
        image_price(&snapshot, &request, &model)
    } else {
        snapshot.price(&model)
    };
    let price = match price {
        Some(price) => Some(price),
        None if options.allow_unpriced_models => None,
        None => {
            let error = RelayError::forbidden(
                "model_price_not_set",
                format!(
                    "The model '{model}' has no price yet, so it cannot be used. Ask the operator to set one."
                ),
            );
            return Err(refuse(state, log, error));
        }
    };
    let estimate = estimate_prompt(state, &request, &raw).await;
    let prompt_estimate = estimate.tokens;
    // A prompt whose length the body does not tell holds the model's whole context window,
    // and is billed at most that: the hold stays an upper bound of the bill.
    let prompt_limit = estimate
        .open_ended
        .then(|| prompt_estimate.max(snapshot.context_window(&model)));
    let pricing = PriceContext {
        price,
        group_ratio: snapshot.group_ratio(caller.group()),
        quota_per_usd: options.quota_per_usd(),
        bounds: UsageBounds {
            output_limit: request
                .max_output_tokens
                .map(|limit| limit.saturating_mul(request.choices)),
            prompt_limit,
            ceiling: i64::try_from(options.usage_ceiling_tokens).unwrap_or(i64::MAX),
        },
    };
    let output_estimate = if endpoint.generates() {
        let per_choice = request
            .max_output_tokens
            .unwrap_or_else(|| i64::try_from(options.default_max_tokens).unwrap_or(i64::MAX));
        per_choice.saturating_mul(request.choices)
    } else {
        0
    };
    let units = held_units(&request);
    let hold = match pricing.hold(Usage {
        prompt_tokens: prompt_limit.unwrap_or(prompt_estimate),
        completion_tokens: output_estimate,
        units,
        ..Usage::default()
    }) {
        Ok(hold) => hold,
        Err(e) => {
            let error = RelayError::bad_request(format!(
                "This request cannot be priced ({e}); lower max_tokens or shorten the prompt."
            ));
            return Err(refuse(state, log, error));
        }
    };
    let ticket = match Ticket::open(
        &state.billing,
        caller.accounts(&options.timezone, log.created_at),
        hold,
        pricing,
        log,
        started,
    ) {
        Ok(ticket) => ticket,
        Err(refused) => {
            let (shortfall, log) = *refused;
            let qpu = options.quota_per_usd();
            let needed = Quota(hold).usd_string(qpu);
            let message = match shortfall {
                Shortfall::User { available } => format!(
                    "You exceeded your current quota: this request needs up to {needed} but the account balance is {}. Top up or lower max_tokens.",
                    Quota(available).usd_string(qpu)
                ),
                Shortfall::Key { available } => format!(
                    "This API key's quota is used up: the request needs up to {needed} but the key has {} left.",
                    Quota(available).usd_string(qpu)
                ),
                Shortfall::Budget {
                    available,
                    resets_at,
                } => format!(
                    "This API key's {} budget is used up: the request needs up to {needed} but {} is left until it starts over at {}.",
                    caller
                        .token
                        .budget
                        .as_ref()
                        .map_or("periodic", |(period, _)| period.as_str()),
                    Quota(available.max(0)).usd_string(qpu),
                    jiff::Timestamp::from_millisecond(resets_at)
                        .map(|at| at.to_string())
                        .unwrap_or_default()
                ),
            };
            return Err(refuse(state, log, RelayError::insufficient_quota(message)));
        }
    };

    Attempts {
        state,
        options,
        request: &request,
        model: &model,
        raw: &raw,
        client_headers: headers,
        prompt_estimate,
        held_units: units,
    }
    .run(&routes, ticket)
    .await
}

/// `/v1/messages/count_tokens`: the prompt's size, never charged. Anthropic's own count when
/// the request would go to an Anthropic channel (it knows its tokenizer and what tools and
/// images cost), otherwise, or when that call fails, the gateway's own tokenizer. Same
/// authentication and model checks as a real request.
pub async fn count_message_tokens(
    state: &AppState,
    ip: IpAddr,
    headers: &HeaderMap,
    body: Body,
    request_id: &str,
) -> Result<i64, RelayError> {
    let snapshot = state.snapshot.load_full();
    let caller = admit(
        state,
        CallerKey::Presented,
        headers,
        ip,
        "messages.count_tokens",
        request_id,
    )
    .await?;
    let raw = read_body(body, snapshot.options.max_request_body_kb).await?;
    let request = ClientRequest::parse(Endpoint::Messages, &raw)?;
    names::requested_model(&request.model).map_err(|e| RelayError::invalid_model(&e))?;
    let model = snapshot
        .resolve_model(&request.model)
        .unwrap_or_else(|| request.model.clone());
    let routes = check_model_access(&snapshot, &caller, &request.model, &model)?;
    if let Ok(channel) = routes.pick(&[], now_ms())
        && channel.channel_type == ChannelType::Anthropic
        && let Some(tokens) = anthropic_token_count(
            state,
            &snapshot.options,
            &channel,
            (&request, &model),
            &raw,
            headers,
        )
        .await
    {
        return Ok(tokens);
    }
    Ok(estimate_prompt(state, &request, &raw).await.tokens)
}

/// Asks an Anthropic channel's `messages/count_tokens` (free of charge upstream too). None when
/// the call fails in any way.
async fn anthropic_token_count(
    state: &AppState,
    options: &RuntimeOptions,
    channel: &ChannelEntry,
    (request, model): (&ClientRequest<'_>, &str),
    raw: &Bytes,
    client_headers: &HeaderMap,
) -> Option<i64> {
    let messages_uri = channel.endpoint_uri(Endpoint::Messages)?;
    let uri = http::Uri::try_from(format!("{messages_uri}/count_tokens")).ok()?;
    let body = request
        .upstream_body(raw, channel.upstream_model(model), false)
        .ok()?;
    let mut upstream_request = http::Request::builder()
        .method(http::Method::POST)
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/json");
    match channel.pick_key(now_ms()) {
        KeyPick::Key(ChannelKey {
            credential: Credential::Header(name, value),
            ..
        }) => {
            upstream_request = upstream_request.header(name, value.clone());
        }
        KeyPick::NoKeyNeeded => {}
        KeyPick::Key(_) | KeyPick::AllResting => return None,
    }
    if let Some(headers) = upstream_request.headers_mut() {
        add_channel_headers(channel, client_headers, headers);
    }
    let upstream_request = upstream_request.body(Full::new(body)).ok()?;
    let timeout = Duration::from_secs(options.first_byte_timeout_secs.clamp(1, 30));
    let response = tokio::time::timeout(timeout, state.upstream.send(upstream_request))
        .await
        .ok()?
        .ok()?;
    if !response.status().is_success() {
        tracing::debug!(channel = %channel.name, status = %response.status(), "count_tokens failed upstream; counting locally");
        return None;
    }
    let body = read_limited(response, MAX_ERROR_BODY, timeout).await.ok()?;
    serde_json::from_slice::<serde_json::Value>(&body).ok()?["input_tokens"].as_i64()
}

/// The headers every upstream request of the channel carries besides its key: the channel's
/// fixed and extra headers, and an Anthropic client's beta opt-ins for Anthropic channels.
fn add_channel_headers(
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

/// The units held for a price per unit: `n` images, the characters to speak, the seconds of
/// an upload (estimated from its size); 0 where the request is the unit.
fn held_units(request: &ClientRequest<'_>) -> i64 {
    match request.endpoint {
        Endpoint::ImageGenerations | Endpoint::ImageEdits => request.choices,
        Endpoint::AudioSpeech => request
            .json_field("input")
            .and_then(|input| Some(input.as_str()?.chars().count()))
            .and_then(|chars| i64::try_from(chars).ok())
            .unwrap_or(0),
        Endpoint::AudioTranscriptions | Endpoint::AudioTranslations => request
            .form
            .as_ref()
            .map_or(0, |form| wire::estimated_audio_seconds(form.file_bytes)),
        _ => 0,
    }
}

/// An image model's price for the size and quality asked for: `model@size@quality`, then
/// `model@size`, then the model's own price, so an admin prices sizes and qualities apart
/// only where they cost differently.
fn image_price(
    snapshot: &Snapshot,
    request: &ClientRequest<'_>,
    model: &str,
) -> Option<ModelPrice> {
    let size = request.param("size").filter(|s| *s != "auto");
    let quality = request.param("quality").filter(|q| *q != "auto");
    let variants = [
        size.zip(quality)
            .map(|(size, quality)| format!("{model}@{size}@{quality}")),
        size.map(|size| format!("{model}@{size}")),
    ];
    variants
        .into_iter()
        .flatten()
        .find_map(|key| snapshot.price(&key))
        .or_else(|| snapshot.price(model))
}

/// The model must be allowed by the key (by the name asked for, or the model it resolved
/// to), exist, and be served to the caller's group.
fn check_model_access(
    snapshot: &Snapshot,
    caller: &Caller,
    requested: &str,
    model: &str,
) -> Result<Arc<crate::snapshot::routing::RouteSet>, RelayError> {
    if !caller.token.allows_model(requested) && !caller.token.allows_model(model) {
        return Err(RelayError::forbidden(
            "model_not_allowed",
            format!("This API key may not use the model '{requested}'."),
        ));
    }
    if let Some(routes) = snapshot.routes(caller.group(), model) {
        return Ok(routes.clone());
    }
    if snapshot.is_configured_route(caller.group(), model) {
        return Err(RelayError::no_channel(format!(
            "Every channel serving the model '{model}' is disabled right now. Please retry later."
        )));
    }
    if snapshot.is_known_model(model) {
        return Err(RelayError::forbidden(
            "model_not_allowed",
            format!(
                "The model '{model}' is not available to your group '{}'.",
                caller.group()
            ),
        ));
    }
    Err(RelayError::model_not_found(requested))
}

/// The prompt's estimate and whether it is open-ended, read in one pass.
async fn estimate_prompt(
    state: &AppState,
    request: &ClientRequest<'_>,
    raw: &Bytes,
) -> PromptEstimate {
    // An upload's size is audio, not text.
    if raw.len() <= BLOCKING_ESTIMATE_BYTES || request.form.is_some() {
        return request.estimate_prompt(state.tokenizer);
    }
    // Large prompts are counted off the async workers. The parsed request borrows the body, so
    // the blocking task parses its own (reference-counted) copy. Should that fail, the prompt
    // is taken as open-ended: nothing was counted, so nothing may be assumed about it.
    let unread = PromptEstimate {
        tokens: 0,
        open_ended: true,
    };
    let tokenizer = state.tokenizer;
    let endpoint = request.endpoint;
    let raw = raw.clone();
    tokio::task::spawn_blocking(move || {
        ClientRequest::parse(endpoint, &raw).map_or(unread, |r| r.estimate_prompt(tokenizer))
    })
    .await
    .unwrap_or(unread)
}

/// Why one attempt failed.
enum AttemptFailure {
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

struct Attempts<'a> {
    state: &'a AppState,
    options: &'a RuntimeOptions,
    request: &'a ClientRequest<'a>,
    /// The model routed and priced (the request's own name, or what it resolved to).
    model: &'a str,
    raw: &'a Bytes,
    client_headers: &'a HeaderMap,
    prompt_estimate: i64,
    /// Units held for a per-unit price (images, seconds); a stream is billed for them.
    held_units: i64,
}

/// An attempt that failed gives the ticket back for the next one.
type AttemptResult = Result<Response, (AttemptFailure, Ticket)>;

impl Attempts<'_> {
    async fn run(
        self,
        routes: &crate::snapshot::routing::RouteSet,
        mut ticket: Ticket,
    ) -> Result<Response, RelayError> {
        let max_attempts = 1 + self.options.retry_count;
        let mut tried: Vec<i64> = Vec::new();
        let mut last_error: Option<RelayError> = None;
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
                    returned,
                )) => {
                    returned.refund(status, &message);
                    return Ok(response);
                }
            };
            ticket = returned;
            ticket.log.error_message = error.message.clone();
            ticket.log.status_code = i64::from(error.status.as_u16());
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
    fn channel_failed(
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
        let response = match self.send(channel, upstream_request, timeout).await {
            Ok(response) => response,
            Err(failure) => {
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
        match tokio::time::timeout(timeout, self.state.upstream.send(upstream_request)).await {
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

    /// A non-streamed answer: read it whole (a failure here can still move on to another
    /// channel, since the client has received nothing), bill it, return it in the client's
    /// protocol.
    async fn whole_answer(
        &self,
        wire: Wire,
        channel: &ChannelEntry,
        response: UpstreamResponse,
        timeout: Duration,
        ticket: Ticket,
    ) -> AttemptResult {
        let status = response.status();
        let content_type = response.headers().get(header::CONTENT_TYPE).cloned();
        // An answer the client gets as sent is held only up to a limit; a longer one is
        // relayed as it arrives. One that needs translating is read whole.
        let hold_limit = if wire.relays_answer_as_is() {
            MAX_HELD_ANSWER
        } else {
            usize::MAX
        };
        let body = match read_until(response, hold_limit, timeout).await {
            Ok((body, None)) => body,
            Ok((head, Some(rest))) => {
                if !wire.answer_start_usable(&head) {
                    let message =
                        "The upstream answered with something that is not JSON.".to_string();
                    return self.broken_answer(channel, message, ticket);
                }
                let answer = (status, content_type, head, rest);
                return Ok(self.relay_answer(wire, channel, answer, ticket));
            }
            Err(message) => {
                let message = format!("The upstream's answer broke off: {message}");
                return self.broken_answer(channel, message, ticket);
            }
        };
        let context = AnswerContext {
            request: self.request,
            now_secs: now_ms() / 1000,
            prompt_estimate: self.prompt_estimate,
            tokenizer: self.state.tokenizer,
        };
        let answer = match wire.whole_answer(body, content_type, &context) {
            Ok(answer) => answer,
            Err(Unusable::NotAnAnswer(what)) => {
                // A 2xx answer that is not the upstream's protocol (an HTML error page from a
                // proxy in front of it, say) is a channel failure, not something to bill.
                let message = format!("The upstream answered with {what}.");
                return self.broken_answer(channel, message, ticket);
            }
            Err(Unusable::Refused(message)) => {
                // The upstream refused the prompt itself: the client's to fix, on any channel.
                channel.health.record_success();
                let error = RelayError::upstream(
                    StatusCode::BAD_REQUEST,
                    "content_filter",
                    message.clone(),
                );
                let response = self.request.endpoint.protocol().error_response(error);
                return Err((
                    AttemptFailure::Final {
                        response,
                        status: 400,
                        message,
                    },
                    ticket,
                ));
            }
        };
        Ok(self
            .settle_whole(
                channel,
                status,
                answer.usage,
                answer.estimated,
                answer.body,
                answer.content_type,
                ticket,
            )
            .await)
    }

    /// A long answer the client gets as sent, relayed as it arrives from its checked start;
    /// the relay bills it when it ends.
    fn relay_answer(
        &self,
        wire: Wire,
        channel: &ChannelEntry,
        (status, content_type, head, rest): (StatusCode, Option<HeaderValue>, Bytes, Incoming),
        mut ticket: Ticket,
    ) -> Response {
        channel.health.record_success();
        ticket.charge_on_drop = None;
        ticket.log.status_code = i64::from(status.as_u16());
        ticket.log.ttft_ms =
            Some(i64::try_from(ticket.started().elapsed().as_millis()).unwrap_or(i64::MAX));
        let billing = AnswerBilling {
            wire,
            prompt_estimate: self.prompt_estimate,
            held_units: self.held_units,
            generates: self.request.endpoint.generates(),
        };
        let idle = Duration::from_secs(self.options.stream_idle_timeout_secs);
        let rest = Box::pin(http_body_util::BodyDataStream::new(rest));
        let relay = AnswerRelay::new(rest, head, ticket, billing, idle);
        let mut out = Response::new(Body::from_stream(relay));
        *out.status_mut() = status;
        out.headers_mut().insert(
            header::CONTENT_TYPE,
            content_type.unwrap_or_else(|| HeaderValue::from_static("application/json")),
        );
        out
    }

    /// A 2xx answer that cannot be used (cut off, or not the upstream's protocol): a failure
    /// of the channel, charged nothing, and another channel may be tried.
    // The same result type as the attempt functions that return it; the ticket travels back
    // by value on purpose (failures are rare, so no box per attempt).
    #[allow(clippy::result_large_err)]
    fn broken_answer(
        &self,
        channel: &ChannelEntry,
        message: String,
        mut ticket: Ticket,
    ) -> AttemptResult {
        ticket.charge_on_drop = None;
        let error = RelayError::upstream(StatusCode::BAD_GATEWAY, "upstream_error", message);
        Err((self.channel_failed(channel, None, error), ticket))
    }

    /// Bills a complete answer and hands it to the client.
    #[allow(clippy::too_many_arguments)]
    async fn settle_whole(
        &self,
        channel: &ChannelEntry,
        status: StatusCode,
        usage: Usage,
        estimated: bool,
        body: Bytes,
        content_type: HeaderValue,
        mut ticket: Ticket,
    ) -> Response {
        channel.health.record_success();
        ticket.charge_on_drop = None;
        ticket.log.status_code = i64::from(status.as_u16());
        ticket.settle(usage, estimated, Outcome::Success);
        if self.state.billing.is_synchronous() {
            self.state.billing.flush().await;
        }
        let mut out = Response::new(Body::from(body));
        *out.status_mut() = status;
        out.headers_mut().insert(header::CONTENT_TYPE, content_type);
        out
    }

    /// A streamed answer: wait for the first chunk (until then another channel may still be
    /// tried), then hand the stream and the ticket to the SSE relay.
    async fn start_stream(
        &self,
        wire: Wire,
        channel: &ChannelEntry,
        response: UpstreamResponse,
        timeout: Duration,
        mut ticket: Ticket,
    ) -> AttemptResult {
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .cloned()
            .unwrap_or_else(|| HeaderValue::from_static("text/event-stream"));
        let mut upstream = upstream::data_stream(response);
        // Nothing reaches the client until the stream's first event shows it is the
        // upstream's protocol: until then another channel may still be tried.
        let mut head = bytes::BytesMut::new();
        let mut ended = false;
        // One deadline for the first event, however many keep-alives come before it.
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match stream_start(&head, wire.framing(), ended) {
                StreamStart::Usable => break,
                StreamStart::Unusable(what) => {
                    let message = format!("The upstream answered with {what}.");
                    return self.broken_answer(channel, message, ticket);
                }
                StreamStart::Undecided if head.len() > MAX_STREAM_HEAD => {
                    let message = format!(
                        "The upstream's stream sent {} KiB without an event.",
                        head.len() / 1024
                    );
                    return self.broken_answer(channel, message, ticket);
                }
                StreamStart::Undecided => {}
            }
            let failure = match tokio::time::timeout_at(deadline, upstream.next()).await {
                Ok(Some(Ok(chunk))) => {
                    head.extend_from_slice(&chunk);
                    continue;
                }
                Ok(None) => {
                    ended = true;
                    continue;
                }
                Ok(Some(Err(e))) => upstream::describe(&e),
                Err(_) => format!("no stream data within {} s", timeout.as_secs()),
            };
            let message = format!("The upstream stream failed before it started: {failure}");
            return self.broken_answer(channel, message, ticket);
        }
        channel.health.record_success();
        ticket.charge_on_drop = None;
        ticket.log.status_code = i64::from(status.as_u16());
        ticket.log.ttft_ms =
            Some(i64::try_from(ticket.started().elapsed().as_millis()).unwrap_or(i64::MAX));
        let idle = Duration::from_secs(self.options.stream_idle_timeout_secs);
        let mut relay = SseRelay::new(
            upstream,
            head,
            ticket,
            self.prompt_estimate,
            self.request.client_wants_usage,
            self.state.tokenizer,
            idle,
        )
        .speaking(self.request.endpoint.protocol())
        .framed(wire.framing())
        .billing_units(self.held_units);
        let mut content_type = content_type;
        if let Some(translator) = wire.stream_translator(
            &self.request.model,
            now_ms() / 1000,
            self.request.client_wants_usage,
            self.prompt_estimate,
        ) {
            relay = relay.translated(translator);
            // Whatever the upstream framed its stream as, every client protocol speaks SSE.
            content_type = HeaderValue::from_static("text/event-stream");
        }
        let mut out = Response::new(Body::from_stream(relay));
        *out.status_mut() = status;
        let headers = out.headers_mut();
        headers.insert(header::CONTENT_TYPE, content_type);
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
        Ok(out)
    }
}

/// Whether a 2xx answer is a stream in the upstream's framing (an upstream may answer a
/// stream request with a whole answer, an error or a proxy's page).
fn is_stream(wire: Wire, response: &UpstreamResponse) -> bool {
    let stream_type = match wire.framing() {
        Framing::ServerSentEvents => "text/event-stream",
        Framing::JsonLines => "application/x-ndjson",
        Framing::AwsEventStream => "application/vnd.amazon.eventstream",
    };
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with(stream_type))
}

/// Reads an answer within `timeout` until its end, or until more than `stop_after` bytes have
/// come; then the rest of the body is handed back unread. A body that arrives in one chunk
/// (the usual case for JSON answers) is kept as it is, without a copy.
async fn read_until(
    response: UpstreamResponse,
    stop_after: usize,
    timeout: Duration,
) -> Result<(Bytes, Option<Incoming>), String> {
    use http_body::Body as _;
    let read = async {
        let mut body = response.into_body();
        let mut first: Option<Bytes> = None;
        let mut joined = bytes::BytesMut::new();
        while let Some(chunk) = upstream::next_data(&mut body).await {
            let chunk = chunk.map_err(|e| upstream::describe(&e))?;
            match first.take() {
                None if joined.is_empty() => first = Some(chunk),
                earlier => {
                    if let Some(earlier) = earlier {
                        joined.extend_from_slice(&earlier);
                    }
                    joined.extend_from_slice(&chunk);
                }
            }
            let received = first.as_ref().map_or(joined.len(), Bytes::len);
            if received > stop_after && !body.is_end_stream() {
                let head = first.take().unwrap_or_else(|| joined.split().freeze());
                return Ok((head, Some(body)));
            }
        }
        Ok((first.unwrap_or_else(|| joined.freeze()), None))
    };
    tokio::time::timeout(timeout, read)
        .await
        .unwrap_or_else(|_| Err(format!("no complete answer within {} s", timeout.as_secs())))
}

/// Reads a response body up to `limit` bytes within `timeout`.
async fn read_limited(
    response: UpstreamResponse,
    limit: usize,
    timeout: Duration,
) -> Result<Bytes, String> {
    let (mut body, _unread) = read_until(response, limit, timeout).await?;
    body.truncate(limit);
    Ok(body)
}

/// The upstream's own error message when its body is an OpenAI envelope, else a short excerpt.
fn upstream_error_message(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Envelope {
        error: Inner,
    }
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Inner {
        Object { message: String },
        Text(String),
    }
    /// Cohere's errors: `{"id": "…", "message": "…"}`.
    #[derive(serde::Deserialize)]
    struct Bare {
        message: String,
    }
    if let Ok(envelope) = serde_json::from_slice::<Envelope>(body) {
        return match envelope.error {
            Inner::Object { message } | Inner::Text(message) => message,
        };
    }
    if let Ok(bare) = serde_json::from_slice::<Bare>(body) {
        return bare.message;
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return "(no body)".into();
    }
    text.chars().take(300).collect()
}
