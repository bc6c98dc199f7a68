//! Operators' metrics: one registry of this process's own (no global), rendered in
//! Prometheus' text format by `/metrics` (see `ops`).
//!
//! The relay only touches atomics: every label set a request can reach is resolved once, at
//! start (route × outcome, budget scopes, token directions) or when a channel's routing
//! entry is first used, and kept as handles (prometheus-client's counters share an `Arc`d
//! atomic among their clones). Figures that describe state rather than events (the billing
//! queue, the dead-letter file, channel states) are read when scraped.
//!
//! No label names a key, a person or anything a caller chooses: routes are templates, and a
//! channel's name is an administrator's.

pub mod histogram;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

pub use histogram::Histogram;

use crate::protocol::Endpoint;

macro_rules! label_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub const COUNT: usize = $name::ALL.len();

            /// The label's value.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }
    };
}

label_enum!(
    /// How a `/v1` request ended, for `tollgate_requests_total{outcome}`: whose doing it was
    /// (the caller's, a policy's, the provider's, Tollgate's) and what.
    RequestOutcome {
        Ok => "ok",
        CallerBadRequest => "caller_bad_request",
        CallerUnauthorized => "caller_unauthorized",
        CallerForbidden => "caller_forbidden",
        /// The client went away before the answer ended.
        CallerClosed => "caller_closed",
        PolicyBudget => "policy_budget",
        PolicyRateLimit => "policy_rate_limit",
        ProviderError => "provider_error",
        ProviderTimeout => "provider_timeout",
        ProviderRateLimited => "provider_rate_limited",
        TollgateError => "tollgate_error",
        /// Something Tollgate depends on (the database, the budget store) did not answer.
        TollgateUnavailable => "tollgate_unavailable",
    }
);

impl RequestOutcome {
    /// An upstream's own error answer, passed to the client as it came: a rate limit or a
    /// timeout is the provider's, as is a refusal of Tollgate's credentials (401, 403) or
    /// any status that is not a client error; other client errors say the request itself
    /// was wrong.
    pub fn of_upstream_status(status: u16) -> RequestOutcome {
        match status {
            429 => RequestOutcome::ProviderRateLimited,
            408 | 504 => RequestOutcome::ProviderTimeout,
            401 | 403 => RequestOutcome::ProviderError,
            400..=499 => RequestOutcome::CallerBadRequest,
            _ => RequestOutcome::ProviderError,
        }
    }
}

label_enum!(
    /// What an upstream call came to, for `tollgate_upstream_requests_total{status_class}`.
    StatusClass {
        Success => "2xx",
        ClientError => "4xx",
        ServerError => "5xx",
        /// No answer: the connection could not be made or broke.
        Connect => "connect",
        /// No answer within the channel's first-byte timeout.
        Timeout => "timeout",
    }
);

impl StatusClass {
    /// The class of an answer's status. A redirect (the relay follows none) or an
    /// informational status is a failed answer, counted with the server errors.
    pub fn of_status(status: u16) -> StatusClass {
        match status {
            200..=299 => StatusClass::Success,
            400..=499 => StatusClass::ClientError,
            _ => StatusClass::ServerError,
        }
    }
}

label_enum!(
    /// The budget scope that refused a hold, for `tollgate_budget_refused_total{scope}`.
    BudgetScope {
        KeyLimit => "key_limit",
        KeyBudget => "key_budget",
        MemberCap => "member_cap",
        TeamBudget => "team_budget",
        OrgBudget => "org_budget",
        Wallet => "wallet",
        Balance => "balance",
    }
);

label_enum!(
    /// Whose rate limit refused a request, for `tollgate_rate_limited_total{scope}`.
    RateLimitScope {
        Key => "key",
        Account => "account",
        Group => "group",
    }
);

/// A channel's state in `tollgate_channel_state` (its value).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelState {
    Up = 0,
    CoolingDown = 1,
    Disabled = 2,
}

/// The `/v1` routes requests are counted under, by their templates (the `endpoint` label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route(u8);

impl Route {
    /// The templates: first those of [`Endpoint::ALL`], in its order, then the routes that
    /// are not relayed endpoints of their own.
    const TEMPLATES: [&'static str; 16] = [
        "/v1/chat/completions",
        "/v1/completions",
        "/v1/embeddings",
        "/v1/messages",
        "/v1/responses",
        "/v1/rerank",
        "/v1/images/generations",
        "/v1/moderations",
        "/v1/audio/speech",
        "/v1/audio/transcriptions",
        "/v1/audio/translations",
        "/v1/images/edits",
        "/v2/rerank",
        "/v1/models",
        "/v1/models/{*id}",
        "/v1/messages/count_tokens",
    ];
    pub const RERANK_V2: Route = Route(12);
    pub const MODELS: Route = Route(13);
    pub const MODEL: Route = Route(14);
    pub const COUNT_TOKENS: Route = Route(15);

    /// The route an endpoint is served at under `/v1`.
    pub fn of(endpoint: Endpoint) -> Route {
        Route(endpoint.index() as u8)
    }

    pub fn template(self) -> &'static str {
        Route::TEMPLATES[usize::from(self.0)]
    }

    fn all() -> impl Iterator<Item = Route> {
        (0..Route::TEMPLATES.len() as u8).map(Route)
    }
}

type Labels<const N: usize> = [(&'static str, &'static str); N];
type ChannelLabel = [(&'static str, String); 1];
type ChannelClassLabels = [(&'static str, String); 2];

/// One channel's upstream counters and timings, resolved once per routing entry.
#[derive(Clone, Debug)]
pub struct ChannelMetrics {
    requests: [Counter; StatusClass::COUNT],
    duration: Histogram,
}

impl ChannelMetrics {
    /// One upstream call: how it ended, and how long it took to get the answer's headers
    /// (or to fail).
    pub fn observe(&self, class: StatusClass, took: Duration) {
        self.requests[class as usize].inc();
        self.duration.observe(took);
    }
}

/// What `/metrics` reads from the server's state when it is scraped.
#[derive(Debug, Default)]
pub struct ScrapedState {
    pub billing_queue_depth: usize,
    pub dead_letter_records: u64,
    /// Every channel by name, with its state.
    pub channels: Vec<(String, ChannelState)>,
}

/// Every metric of the process. Shared as `Arc<Metrics>` (see `AppState::metrics`).
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// By route, then outcome.
    requests: Vec<[Counter; RequestOutcome::COUNT]>,
    request_duration: Histogram,
    overhead: Histogram,
    time_to_first_token: Histogram,
    upstream_requests: Family<ChannelClassLabels, Counter>,
    upstream_duration: Family<ChannelLabel, Histogram, fn() -> Histogram>,
    /// input, output, cached.
    tokens: [Counter; 3],
    spend_units: Counter,
    holds_in_flight: Gauge,
    billing_queue_depth: Gauge,
    billing_flush: Histogram,
    dead_letter_records: Gauge,
    channel_state: Family<ChannelLabel, Gauge>,
    rate_limited: [Counter; RateLimitScope::COUNT],
    budget_refused: [Counter; BudgetScope::COUNT],
    /// Absent until a Redis connection reports its state (no Redis, no series).
    redis_up: Family<Labels<0>, Gauge>,
    /// 1 for the outage mode in force (`closed` or `local_share`); absent without Redis.
    redis_outage_mode: Family<Labels<1>, Gauge>,
    redis_duration: Histogram,
    feed_lag: Gauge,
    feed_seen: AtomicI64,
    feed_applied: AtomicI64,
    /// One scrape at a time: each sets the figures read at scrape time, then renders.
    scrape: std::sync::Mutex<()>,
}

fn upstream_histogram() -> Histogram {
    Histogram::new(histogram::REQUEST_SECONDS)
}

/// Every label set of a fixed family, created (at zero) so each series exists from the start.
fn counters<const N: usize>(
    family: &Family<Labels<2>, Counter>,
    labels: [Labels<2>; N],
) -> [Counter; N] {
    labels.map(|set| family.get_or_create_owned(&set))
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();

        let requests_family = Family::<Labels<2>, Counter>::default();
        let requests = Route::all()
            .map(|route| {
                counters(
                    &requests_family,
                    std::array::from_fn(|i| {
                        [
                            ("endpoint", route.template()),
                            ("outcome", RequestOutcome::ALL[i].as_str()),
                        ]
                    }),
                )
            })
            .collect();
        // The text encoder adds `_total` to counters' names.
        registry.register(
            "tollgate_requests",
            "Requests to /v1 by route template and how they ended",
            requests_family,
        );
        let request_duration = Histogram::new(histogram::REQUEST_SECONDS);
        registry.register(
            "tollgate_request_duration_seconds",
            "Time from a /v1 request's arrival to its end (a stream's last byte)",
            request_duration.clone(),
        );
        let overhead = Histogram::new(histogram::REQUEST_SECONDS);
        registry.register(
            "tollgate_overhead_seconds",
            "Time Tollgate adds to a /v1 request: its whole time less the time spent waiting on upstreams",
            overhead.clone(),
        );
        let time_to_first_token = Histogram::new(histogram::REQUEST_SECONDS);
        registry.register(
            "tollgate_time_to_first_token_seconds",
            "Time from a request's arrival to the first bytes of a streamed (or relayed) answer",
            time_to_first_token.clone(),
        );
        let upstream_requests = Family::<ChannelClassLabels, Counter>::default();
        registry.register(
            "tollgate_upstream_requests",
            "Calls to upstreams by channel and what came back",
            upstream_requests.clone(),
        );
        let upstream_duration =
            Family::<ChannelLabel, Histogram, fn() -> Histogram>::new_with_constructor(
                upstream_histogram,
            );
        registry.register(
            "tollgate_upstream_duration_seconds",
            "Time from sending a request to an upstream to its answer's headers (or the failure)",
            upstream_duration.clone(),
        );
        let tokens_family = Family::<Labels<1>, Counter>::default();
        let tokens = ["input", "output", "cached"]
            .map(|direction| tokens_family.get_or_create_owned(&[("direction", direction)]));
        registry.register(
            "tollgate_tokens",
            "Tokens billed: input (the prompt, cached tokens included), output, and cached (read from the provider's cache)",
            tokens_family,
        );
        let spend_units = Counter::default();
        registry.register(
            "tollgate_spend_units",
            "Quota units charged for requests",
            spend_units.clone(),
        );
        let holds_in_flight = Gauge::default();
        registry.register(
            "tollgate_holds_in_flight",
            "Requests holding budget now (admitted and not yet settled)",
            holds_in_flight.clone(),
        );
        let billing_queue_depth = Gauge::default();
        registry.register(
            "tollgate_billing_queue_depth",
            "Finished requests waiting for the billing writer",
            billing_queue_depth.clone(),
        );
        let billing_flush = Histogram::new(histogram::CALL_SECONDS);
        registry.register(
            "tollgate_billing_flush_seconds",
            "Time each billing flush took to write its records",
            billing_flush.clone(),
        );
        let dead_letter_records = Gauge::default();
        registry.register(
            "tollgate_dead_letter_records",
            "Billing records in the dead-letter file, waiting for `tollgate billing replay`",
            dead_letter_records.clone(),
        );
        let channel_state = Family::<ChannelLabel, Gauge>::default();
        registry.register(
            "tollgate_channel_state",
            "Each channel's state: 0 up, 1 cooling down, 2 disabled",
            channel_state.clone(),
        );
        let rate_family = Family::<Labels<1>, Counter>::default();
        let rate_limited = std::array::from_fn(|i| {
            rate_family.get_or_create_owned(&[("scope", RateLimitScope::ALL[i].as_str())])
        });
        registry.register(
            "tollgate_rate_limited",
            "Requests refused by a rate limit, by whose limit",
            rate_family,
        );
        let budget_family = Family::<Labels<1>, Counter>::default();
        let budget_refused = std::array::from_fn(|i| {
            budget_family.get_or_create_owned(&[("scope", BudgetScope::ALL[i].as_str())])
        });
        registry.register(
            "tollgate_budget_refused",
            "Requests refused because a balance or budget could not hold them, by that scope",
            budget_family,
        );
        let redis_up = Family::<Labels<0>, Gauge>::default();
        registry.register(
            "tollgate_redis_up",
            "1 when Redis answers, 0 when it does not (absent without --redis-url)",
            redis_up.clone(),
        );
        let redis_outage_mode = Family::<Labels<1>, Gauge>::default();
        registry.register(
            "tollgate_redis_outage_mode",
            "1 for what paid requests do while Redis is unreachable: mode closed (refused) or local_share (each node spends its share); absent without --redis-url",
            redis_outage_mode.clone(),
        );
        let redis_duration = Histogram::new(histogram::CALL_SECONDS);
        registry.register(
            "tollgate_redis_duration_seconds",
            "Time each Redis round trip took",
            redis_duration.clone(),
        );
        let feed_lag = Gauge::default();
        registry.register(
            "tollgate_feed_lag_versions",
            "Data versions of the change feed seen at the last check and not yet applied to the in-memory view",
            feed_lag.clone(),
        );

        Metrics {
            registry,
            requests,
            request_duration,
            overhead,
            time_to_first_token,
            upstream_requests,
            upstream_duration,
            tokens,
            spend_units,
            holds_in_flight,
            billing_queue_depth,
            billing_flush,
            dead_letter_records,
            channel_state,
            rate_limited,
            budget_refused,
            redis_up,
            redis_outage_mode,
            redis_duration,
            feed_lag,
            feed_seen: AtomicI64::new(0),
            feed_applied: AtomicI64::new(0),
            scrape: std::sync::Mutex::new(()),
        }
    }

    /// A channel's handles, made once per routing entry (the families' lock is taken here,
    /// not per request).
    pub fn channel(&self, name: &str) -> ChannelMetrics {
        ChannelMetrics {
            requests: std::array::from_fn(|i| {
                self.upstream_requests.get_or_create_owned(&[
                    ("channel", name.to_string()),
                    ("status_class", StatusClass::ALL[i].as_str().to_string()),
                ])
            }),
            duration: self
                .upstream_duration
                .get_or_create_owned(&[("channel", name.to_string())]),
        }
    }

    /// Tokens and quota units a finished request was charged.
    pub fn charged(&self, input: i64, output: i64, cached: i64, cost: i64) {
        let count = |value: i64| u64::try_from(value).unwrap_or(0);
        for (counter, value) in self.tokens.iter().zip([input, output, cached]) {
            if value > 0 {
                counter.inc_by(count(value));
            }
        }
        if cost > 0 {
            self.spend_units.inc_by(count(cost));
        }
    }

    pub fn budget_refused(&self, scope: BudgetScope) {
        self.budget_refused[scope as usize].inc();
    }

    /// A request refused by a rate limit (the limiter calls this; the request itself is
    /// counted as `policy_rate_limit` by the relay, from its error).
    pub fn rate_limited(&self, scope: RateLimitScope) {
        self.rate_limited[scope as usize].inc();
    }

    /// Whether Redis answers now. The series exists from the first call on, so a node
    /// without Redis has none.
    /// Which `redis_outage_mode` is in force.
    pub fn set_redis_outage_mode(&self, local_share: bool) {
        for (mode, on) in [("closed", !local_share), ("local_share", local_share)] {
            self.redis_outage_mode
                .get_or_create(&[("mode", mode)])
                .set(i64::from(on));
        }
    }

    pub fn set_redis_up(&self, up: bool) {
        self.redis_up.get_or_create(&[]).set(i64::from(up));
    }

    /// One Redis round trip.
    pub fn observe_redis(&self, took: Duration) {
        self.redis_duration.observe(took);
    }

    /// The billing writer's flushes.
    pub fn billing_flush(&self) -> &Histogram {
        &self.billing_flush
    }

    /// The change feed's version read at a check (by the one sync at a time).
    pub fn feed_seen(&self, version: i64) {
        self.feed_seen.store(version, Ordering::Relaxed);
        self.update_feed_lag();
    }

    /// The version the in-memory view now reflects.
    pub fn feed_applied(&self, version: i64) {
        self.feed_applied.store(version, Ordering::Relaxed);
        self.feed_seen.fetch_max(version, Ordering::Relaxed);
        self.update_feed_lag();
    }

    fn update_feed_lag(&self) {
        let seen = self.feed_seen.load(Ordering::Relaxed);
        let applied = self.feed_applied.load(Ordering::Relaxed);
        self.feed_lag.set((seen - applied).max(0));
    }

    /// The text `/metrics` answers, with the state read at scrape time.
    pub fn render(&self, state: ScrapedState) -> String {
        let _one_scrape = self.scrape.lock().unwrap_or_else(|p| p.into_inner());
        self.billing_queue_depth
            .set(i64::try_from(state.billing_queue_depth).unwrap_or(i64::MAX));
        self.dead_letter_records
            .set(i64::try_from(state.dead_letter_records).unwrap_or(i64::MAX));
        // Channels come and go: the family holds exactly the channels of now.
        self.channel_state.clear();
        for (name, channel_state) in state.channels {
            self.channel_state
                .get_or_create(&[("channel", name)])
                .set(channel_state as i64);
        }
        let mut text = String::new();
        // Writing to a String cannot fail; a metric that could not encode would be a bug here.
        if let Err(e) =
            prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry)
        {
            tracing::error!(error = %e, "the metrics could not be rendered");
        }
        text
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// One `/v1` request's measurements, from its arrival to its end: it is counted once, with
/// one outcome, when [`RequestMeter::finish`] is called or when it is dropped unfinished
/// (the client went away, or a panic unwound it). The relay hands it to the request's
/// billing ticket once one is opened, so a stream is measured to its last byte.
#[derive(Debug)]
pub struct RequestMeter {
    metrics: Arc<Metrics>,
    route: Route,
    started: Instant,
    /// Since when an upstream is being waited on, if one is.
    upstream_since: Option<Instant>,
    /// Time spent waiting on upstreams so far.
    upstream: Duration,
    /// The outcome decided where the cause was known (wins over the one given at the end).
    outcome: Option<RequestOutcome>,
    holding: bool,
    finished: bool,
}

impl RequestMeter {
    pub fn start(metrics: &Arc<Metrics>, route: Route) -> RequestMeter {
        RequestMeter {
            metrics: metrics.clone(),
            route,
            started: Instant::now(),
            upstream_since: None,
            upstream: Duration::ZERO,
            outcome: None,
            holding: false,
            finished: false,
        }
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Sets how the request ended, where the cause is known best.
    pub fn set_outcome(&mut self, outcome: RequestOutcome) {
        self.outcome = Some(outcome);
    }

    /// The request now holds budget (until it finishes).
    pub fn hold_placed(&mut self) {
        if !self.holding {
            self.holding = true;
            self.metrics.holds_in_flight.inc();
        }
    }

    /// A call to an upstream starts: the time until [`RequestMeter::upstream_ended`] (or the
    /// request's end) is the upstream's, not Tollgate's.
    pub fn upstream_started(&mut self) {
        self.upstream_ended();
        self.upstream_since = Some(Instant::now());
    }

    pub fn upstream_ended(&mut self) {
        if let Some(since) = self.upstream_since.take() {
            self.upstream += since.elapsed();
        }
    }

    /// The answer's first bytes are on their way to the client.
    pub fn first_byte(&self) {
        self.metrics
            .time_to_first_token
            .observe(self.started.elapsed());
    }

    /// Counts the request as ended with `outcome` (unless a more precise one was set).
    pub fn finish(mut self, outcome: RequestOutcome) {
        self.record(outcome);
    }

    fn record(&mut self, outcome: RequestOutcome) {
        if self.finished {
            return;
        }
        self.finished = true;
        self.upstream_ended();
        let outcome = if std::thread::panicking() {
            RequestOutcome::TollgateError
        } else {
            self.outcome.unwrap_or(outcome)
        };
        let metrics = &self.metrics;
        metrics.requests[usize::from(self.route.0)][outcome as usize].inc();
        let took = self.started.elapsed();
        metrics.request_duration.observe(took);
        metrics.overhead.observe(took.saturating_sub(self.upstream));
        if self.holding {
            metrics.holds_in_flight.dec();
        }
    }
}

impl Drop for RequestMeter {
    /// Dropped unfinished: the request's future was dropped, so the client went away (a
    /// panic is counted as Tollgate's error in `record`).
    fn drop(&mut self) {
        self.record(RequestOutcome::CallerClosed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_of_endpoints_are_their_v1_paths() {
        for endpoint in Endpoint::ALL {
            assert_eq!(
                Route::of(endpoint).template(),
                format!("/v1{}", endpoint.upstream_path())
            );
        }
    }

    #[test]
    fn every_request_series_exists_from_the_start_and_counts_once() {
        let metrics = Arc::new(Metrics::new());
        let text = metrics.render(ScrapedState::default());
        assert!(text.contains(
            "tollgate_requests_total{endpoint=\"/v1/models/{*id}\",outcome=\"tollgate_unavailable\"} 0"
        ));
        assert!(!text.contains("tollgate_redis_up"), "no Redis, no series");
        let mut meter = RequestMeter::start(&metrics, Route::of(Endpoint::ChatCompletions));
        meter.hold_placed();
        meter.set_outcome(RequestOutcome::ProviderTimeout);
        meter.finish(RequestOutcome::Ok);
        drop(RequestMeter::start(&metrics, Route::MODELS));
        metrics.set_redis_up(true);
        let text = metrics.render(ScrapedState::default());
        assert!(text.contains(
            "tollgate_requests_total{endpoint=\"/v1/chat/completions\",outcome=\"provider_timeout\"} 1"
        ));
        assert!(text.contains(
            "tollgate_requests_total{endpoint=\"/v1/models\",outcome=\"caller_closed\"} 1"
        ));
        assert!(text.contains("tollgate_holds_in_flight 0"), "{text}");
        assert!(text.contains("tollgate_request_duration_seconds_count 2"));
        assert!(text.contains("tollgate_redis_up 1"), "{text}");
    }

    #[test]
    fn channel_states_are_those_of_the_last_scrape() {
        let metrics = Metrics::new();
        let first = metrics.render(ScrapedState {
            channels: vec![("old".into(), ChannelState::Disabled)],
            ..ScrapedState::default()
        });
        assert!(first.contains("tollgate_channel_state{channel=\"old\"} 2"));
        let second = metrics.render(ScrapedState {
            channels: vec![("new".into(), ChannelState::CoolingDown)],
            ..ScrapedState::default()
        });
        assert!(!second.contains("\"old\""));
        assert!(second.contains("tollgate_channel_state{channel=\"new\"} 1"));
    }

    #[test]
    fn feed_lag_is_what_was_seen_and_not_applied() {
        let metrics = Metrics::new();
        metrics.feed_applied(10);
        metrics.feed_seen(14);
        assert_eq!(metrics.feed_lag.get(), 4);
        metrics.feed_applied(14);
        assert_eq!(metrics.feed_lag.get(), 0);
    }
}
