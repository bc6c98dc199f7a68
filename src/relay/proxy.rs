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
use std::time::Instant;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, header};

use super::auth::{self, Caller, Denied};
use super::error::RelayError;
use super::request::{ClientRequest, PromptEstimate};
use super::wire::{self};
use crate::billing::rates::RateHold;
use crate::billing::scopes::HoldError;
use crate::billing::{PriceContext, Ticket};
use crate::clock::now_ms;
use crate::domain::kinds::Outcome;
use crate::domain::names;
use crate::domain::pricing::{ModelPrice, Usage, UsageBounds};
use crate::metrics::{RequestMeter, RequestOutcome, Route};
use crate::protocol::Endpoint;
use crate::protocol::client::BodyDeadlinePassed;
use crate::records::logs::RequestLog;
use crate::snapshot::Snapshot;
use crate::state::AppState;

use super::attempts::Attempts;

/// Bodies above this size are tokenized on the blocking pool rather than on a request thread.
const BLOCKING_ESTIMATE_BYTES: usize = 64 * 1024;
/// Most of a whole answer held before it is relayed as it arrives (when the client gets it as
/// the upstream sent it): far more than a chat answer, far less than a large embedding batch.
pub(super) const MAX_HELD_ANSWER: usize = 256 * 1024;
/// Most of a stream buffered while waiting for its first event.
pub(super) const MAX_STREAM_HEAD: usize = 1024 * 1024;
/// Most of an upstream error body kept for the log and the client.
pub(super) const MAX_ERROR_BODY: usize = 64 * 1024;
pub(super) const ANTHROPIC_BETA: &str = "anthropic-beta";

/// Which key a request is made with.
#[derive(Clone, Copy, Debug)]
pub enum CallerKey {
    /// The key the client presents in its headers (every `/v1` request).
    Presented,
    /// A key named by its digest: the portal's playground, which has checked that the key is
    /// the signed-in person's own. Everything after authentication is the same as on `/v1`.
    Digest([u8; 32]),
}

/// Entry point for the POST endpoints, counted under `route`. Every response carries
/// `x-request-id`.
pub async fn relay(
    state: AppState,
    endpoint: Endpoint,
    route: Route,
    ip: IpAddr,
    headers: HeaderMap,
    body: Body,
) -> Response {
    relay_routed(
        state,
        endpoint,
        route,
        CallerKey::Presented,
        ip,
        headers,
        body,
    )
    .await
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
    let route = Route::of(endpoint);
    relay_routed(state, endpoint, route, key, ip, headers, body).await
}

async fn relay_routed(
    state: AppState,
    endpoint: Endpoint,
    route: Route,
    key: CallerKey,
    ip: IpAddr,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let request_id = state.request_ids.next();
    // Counted here when the request ends before it has a ticket; the ticket takes it over.
    let mut meter = Some(RequestMeter::start(&state.metrics, route));
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
        &mut meter,
    ))
    .await;
    let mut response = match handled {
        Ok(response) => {
            if let Some(meter) = meter.take() {
                meter.finish(RequestOutcome::Ok);
            }
            response
        }
        Err(error) => {
            if let Some(meter) = meter.take() {
                meter.finish(error.metric_outcome());
            }
            endpoint.protocol().error_response(error)
        }
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
        org_id: caller.token.org_id,
        team_id: caller.token.team_id,
        ..RequestLog::empty()
    }
}

pub(super) async fn read_body(body: Body, limit_kb: u64) -> Result<Bytes, RelayError> {
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

#[allow(clippy::too_many_arguments)]
async fn handle(
    state: &AppState,
    endpoint: Endpoint,
    key: CallerKey,
    ip: IpAddr,
    headers: &HeaderMap,
    body: Body,
    request_id: &str,
    meter: &mut Option<RequestMeter>,
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
    let group = snapshot.group(caller.group());
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
        group_ratio: group.ratio,
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
    // Rate limits, checked on the request's estimated tokens (the prompt counted, the output
    // it may ask for); nothing at all for a key nothing limits.
    let subjects = caller.rate_subjects(group.rate_limits);
    let rates = if subjects.is_empty() {
        None
    } else {
        let tokens = prompt_estimate.saturating_add(output_estimate);
        let tokens = u64::try_from(tokens).unwrap_or(0);
        match RateHold::admit(state.billing.rates(), request_id, &subjects, tokens).await {
            Ok(rates) => rates,
            Err(error) => {
                if let crate::billing::rates::RateError::Refused(refusal) = &error {
                    state.metrics.rate_limited(caller.limit_scope(refusal));
                }
                let error = super::rates::admission_error(&caller, &error);
                return Err(refuse(state, log, error));
            }
        }
    };
    let rate_status = rates.as_ref().map(RateHold::status);
    let mut ticket = match Ticket::open(
        &state.billing,
        caller.scopes(&options.timezone, log.created_at),
        hold,
        pricing,
        log,
        started,
        rates,
    )
    .await
    {
        Ok(ticket) => ticket,
        Err(refused) => {
            let (error, log) = *refused;
            let error = match error {
                HoldError::Refused(refusal) => {
                    state
                        .metrics
                        .budget_refused(refusal.scope.kind.metric_scope());
                    RelayError::insufficient_quota(caller.refusal_message(
                        &refusal,
                        hold,
                        options.quota_per_usd(),
                        &options.timezone,
                    ))
                }
                HoldError::Unavailable => RelayError::budget_store_unavailable(),
            };
            let error = match rate_status {
                Some(status) => error.with_rate_status(status),
                None => error,
            };
            return Err(refuse(state, log, error));
        }
    };
    if let Some(meter) = meter.take() {
        ticket.attach_meter(meter);
    }

    let answered = Attempts {
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
    .await;
    match (answered, rate_status) {
        (answered, None) => answered,
        (Ok(mut response), Some(status)) => {
            super::rate_headers::write_headers(&status, response.headers_mut());
            Ok(response)
        }
        (Err(error), Some(status)) => Err(error.with_rate_status(status)),
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
pub(super) fn check_model_access(
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
pub(super) async fn estimate_prompt(
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
