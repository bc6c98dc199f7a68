//! The relay's in-memory view of what it needs per request, so the `/v1` hot path never
//! queries the database: the routing view ([`Snapshot`]: groups, channels, routes, prices,
//! aliases and options, a few hundred rows, rebuilt whole and swapped in atomically when one
//! of them changes) and the [`Directory`] of keys and accounts, which can be hundreds of
//! thousands and is updated one entry at a time. Channel health is carried from one snapshot
//! to the next ([`health`]).

pub mod directory;
pub mod health;
pub mod routing;

pub use directory::{Directory, OrgEntry, TokenEntry, UserEntry};

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock};

use http::{HeaderMap, HeaderName, HeaderValue};
use rustc_hash::{FxHashMap, FxHashSet};

use crate::domain::kinds::{ChannelStatus, ChannelType};
use crate::domain::list_prices;
use crate::domain::money::Ratio;
use crate::domain::names;
use crate::domain::pricing::ModelPrice;
use crate::domain::rate_limits::RateLimits;
use crate::domain::secret_key::upstream_key_fingerprint;
use crate::metrics::{ChannelMetrics, ChannelState, Metrics};
use crate::options::RuntimeOptions;
use crate::protocol::Endpoint;
use crate::providers;
use crate::records::catalog::CatalogRows;
use crate::records::channels::{ChannelRow, RouteRow};
use crate::records::prices::PriceRow;
use health::{ChannelHealth, KeyHealth};
use routing::RouteSet;

#[derive(Debug)]
pub struct ChannelEntry {
    pub id: i64,
    pub name: String,
    pub channel_type: ChannelType,
    /// Without a trailing slash, e.g. `https://api.openai.com/v1`.
    pub base_url: String,
    /// The keys in rotation, each with the header carrying it (`Authorization: Bearer …`,
    /// `x-api-key: …`) built once.
    keys: Vec<ChannelKey>,
    /// How many keys the channel holds, disabled ones included.
    configured_keys: usize,
    pub model_mapping: BTreeMap<String, String>,
    pub priority: i64,
    pub weight: i64,
    pub timeout_secs: u64,
    pub extra_headers: HeaderMap,
    pub health: Arc<ChannelHealth>,
    /// The upstream URI of each endpoint, parsed once (indexed by `Endpoint::index`); None
    /// where this kind of upstream has no such endpoint.
    endpoint_uris: Vec<Option<http::Uri>>,
    /// Its upstream counters, resolved on first use (see [`ChannelEntry::metrics`]).
    metrics: OnceLock<ChannelMetrics>,
}

impl ChannelEntry {
    /// The channel's upstream counters: looked up in `all` once per routing entry (the
    /// routing view is rebuilt whenever a channel changes, so a renamed channel is counted
    /// under its new name), then a load of this entry's.
    pub fn metrics(&self, all: &Metrics) -> &ChannelMetrics {
        self.metrics.get_or_init(|| all.channel(&self.name))
    }

    /// Its state now, for `tollgate_channel_state`.
    pub fn state(&self, now_ms: i64) -> ChannelState {
        if self.health.is_disabled_here() {
            ChannelState::Disabled
        } else if self.health.is_cooling(now_ms) {
            ChannelState::CoolingDown
        } else {
            ChannelState::Up
        }
    }

    pub fn endpoint_uri(&self, endpoint: Endpoint) -> Option<&http::Uri> {
        self.endpoint_uris[endpoint.index()].as_ref()
    }

    pub fn upstream_model<'m>(&'m self, requested: &'m str) -> &'m str {
        self.model_mapping
            .get(requested)
            .map(String::as_str)
            .unwrap_or(requested)
    }

    /// The key for the next request, rotating when the channel holds several and skipping
    /// keys that are resting after a rate limit or a refusal.
    pub fn pick_key(&self, now_ms: i64) -> KeyPick<'_> {
        match self.keys.len() {
            0 if self.configured_keys == 0 => KeyPick::NoKeyNeeded,
            0 => KeyPick::AllResting,
            // A single key's failures are the channel's, handled by the channel's health.
            1 if self.configured_keys == 1 => KeyPick::Key(&self.keys[0]),
            count => {
                let start = self.health.next_key(count);
                (0..count)
                    .map(|offset| &self.keys[(start + offset) % count])
                    .find(|key| !key.health.is_resting(now_ms))
                    .map_or(KeyPick::AllResting, KeyPick::Key)
            }
        }
    }

    /// Whether a failure of one key should rest that key alone rather than count against
    /// the whole channel.
    pub fn has_several_keys(&self) -> bool {
        self.configured_keys > 1
    }
}

/// One upstream key of a channel.
#[derive(Debug)]
pub struct ChannelKey {
    pub credential: providers::Credential,
    /// `secret_key::upstream_key_fingerprint`: names the key in logs and stored status.
    pub fingerprint: String,
    pub health: Arc<KeyHealth>,
}

pub enum KeyPick<'c> {
    Key(&'c ChannelKey),
    /// The channel holds no key (a local server).
    NoKeyNeeded,
    /// Every key is cooling down or disabled.
    AllResting,
}

#[derive(Debug, Clone)]
pub struct GroupEntry {
    pub ratio: Ratio,
    /// The rate limits of each key of the group that sets none of its own.
    pub rate_limits: RateLimits,
}

impl GroupEntry {
    /// What a group not in the snapshot (deleted while a key still names it) stands for.
    const UNKNOWN: GroupEntry = GroupEntry {
        ratio: Ratio::ONE,
        rate_limits: RateLimits::NONE,
    };
}

/// The channels a pattern (`gpt-*`) brings to a group: those of every pattern of the group
/// whose prefix starts this one's. The longest pattern matching a name is thus the one to
/// route by: every other pattern matching the name is shorter and so starts its prefix.
#[derive(Debug)]
struct PatternRoute {
    prefix: String,
    routes: Arc<RouteSet>,
}

/// A consistent routing view, replaced as a whole.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub options: RuntimeOptions,
    groups: FxHashMap<String, GroupEntry>,
    channels: FxHashMap<i64, Arc<ChannelEntry>>,
    /// The names of the channels not in the view: disabled (by an administrator or by
    /// Tollgate), or with a base URL that cannot be used.
    unrouted_channels: Vec<String>,
    /// group → model → enabled channels.
    routes: FxHashMap<String, FxHashMap<String, Arc<RouteSet>>>,
    /// Every model some channel lists, whatever its status or groups; tells "no such model"
    /// (404) from "not for your group" (403).
    known_models: FxHashSet<String>,
    /// (group, model) pairs some channel is configured for, enabled or not; tells "not for
    /// your group" (403) from "no channel up right now" (503).
    configured_routes: FxHashSet<(String, String)>,
    /// group → the patterns its enabled channels list, longest prefix first. Consulted only
    /// for a name no channel lists exactly.
    pattern_routes: FxHashMap<String, Vec<PatternRoute>>,
    /// group → the prefixes of the patterns its channels list, enabled or not.
    configured_patterns: FxHashMap<String, Vec<String>>,
    /// The prefix of every pattern any channel lists.
    known_patterns: Vec<String>,
    /// Admin aliases: name → the model it stands for.
    aliases: FxHashMap<String, String>,
    prices: FxHashMap<String, ModelPrice>,
    /// The names the admin priced (the rest of `prices` is the shipped list).
    admin_priced: FxHashSet<String>,
    /// Context windows in tokens: the admin's, else the shipped table's.
    context_windows: FxHashMap<String, i64>,
}

impl Snapshot {
    pub fn group_ratio(&self, group: &str) -> Ratio {
        self.group(group).ratio
    }

    /// A group's price ratio and rate limits (a group not known: ratio 1, no limits).
    pub fn group(&self, group: &str) -> &GroupEntry {
        self.groups.get(group).unwrap_or(&GroupEntry::UNKNOWN)
    }

    /// The channels serving `model` to `group`: those listing it by name, else those listing
    /// the longest pattern that matches it.
    pub fn routes(&self, group: &str, model: &str) -> Option<&Arc<RouteSet>> {
        if let Some(routes) = self.routes.get(group).and_then(|models| models.get(model)) {
            return Some(routes);
        }
        self.pattern_routes
            .get(group)?
            .iter()
            .find(|pattern| model.starts_with(&pattern.prefix))
            .map(|pattern| &pattern.routes)
    }

    /// Whether a client in `group` asking for `requested` would be routed: the name or what it
    /// stands for (an alias, a dated name) is served to the group by a channel, by name or by
    /// a pattern, enabled now or not.
    pub fn group_serves(&self, group: &str, requested: &str) -> bool {
        let model = self.resolve_model(requested);
        let model = model.as_deref().unwrap_or(requested);
        self.routes(group, model).is_some() || self.is_configured_route(group, model)
    }

    /// Whether some channel lists `model`, by name or by a pattern.
    pub fn is_known_model(&self, model: &str) -> bool {
        self.known_models.contains(model)
            || self
                .known_patterns
                .iter()
                .any(|prefix| model.starts_with(prefix.as_str()))
    }

    /// Whether any channel, even a disabled one, serves `model` to `group`.
    pub fn is_configured_route(&self, group: &str, model: &str) -> bool {
        self.configured_routes
            .contains(&(group.to_string(), model.to_string()))
            || self.configured_patterns.get(group).is_some_and(|prefixes| {
                prefixes
                    .iter()
                    .any(|prefix| model.starts_with(prefix.as_str()))
            })
    }

    /// The model a requested name stands for, when it is not itself: an admin alias's
    /// target; or, for a name with a release date (`claude-sonnet-4-5-20250929`) that no
    /// channel lists and the admin has not priced, the name without it, when a channel lists
    /// or a price names that one. (The shipped list prices name dated models too; they do not
    /// stop the folding, or Claude Code's dated names would miss channels listing the model.)
    pub fn resolve_model(&self, requested: &str) -> Option<String> {
        if let Some(target) = self.aliases.get(requested) {
            return Some(target.clone());
        }
        if self.known_models.contains(requested) || self.admin_priced.contains(requested) {
            return None;
        }
        let undated = names::undated(requested)?;
        (self.known_models.contains(undated) || self.prices.contains_key(undated))
            .then(|| undated.to_string())
    }

    pub fn price(&self, model: &str) -> Option<ModelPrice> {
        self.prices.get(model).copied()
    }

    /// The model's context window in tokens: what its price sets, else the shipped table's
    /// window for it, else the option `default_context_tokens`.
    pub fn context_window(&self, model: &str) -> i64 {
        self.context_windows.get(model).copied().unwrap_or_else(|| {
            i64::try_from(self.options.default_context_tokens).unwrap_or(i64::MAX)
        })
    }

    pub fn channel(&self, id: i64) -> Option<&Arc<ChannelEntry>> {
        self.channels.get(&id)
    }

    pub fn channels(&self) -> impl Iterator<Item = &Arc<ChannelEntry>> {
        self.channels.values()
    }

    /// Every channel by name with its state at `now_ms`: those not in the view count as
    /// disabled.
    pub fn channel_states(&self, now_ms: i64) -> Vec<(String, ChannelState)> {
        self.channels
            .values()
            .map(|c| (c.name.clone(), c.state(now_ms)))
            .chain(
                self.unrouted_channels
                    .iter()
                    .map(|name| (name.clone(), ChannelState::Disabled)),
            )
            .collect()
    }

    /// The channels cooling down at `now_ms`, and until when (ms): routing's own view, kept
    /// in memory only.
    pub fn cooling_channels(&self, now_ms: i64) -> Vec<(i64, i64)> {
        self.channels
            .values()
            .filter(|c| c.health.is_cooling(now_ms))
            .map(|c| (c.id, c.health.cooldown_until_ms()))
            .collect()
    }

    /// The names a group can call, sorted: models an enabled channel lists, aliases of
    /// those, and priced names an enabled channel's pattern serves.
    pub fn group_models(&self, group: &str) -> Vec<&str> {
        let mut models: Vec<&str> = self
            .routes
            .get(group)
            .map(|m| m.keys().map(String::as_str).collect())
            .unwrap_or_default();
        if let Some(patterns) = self.pattern_routes.get(group) {
            models.extend(self.prices.keys().map(String::as_str).filter(|name| {
                !name.contains('@')
                    && patterns
                        .iter()
                        .any(|pattern| name.starts_with(&pattern.prefix))
            }));
        }
        models.extend(
            self.aliases
                .iter()
                .filter(|(_, target)| self.routes(group, target).is_some())
                .map(|(name, _)| name.as_str()),
        );
        models.sort_unstable();
        models.dedup();
        models
    }

    /// Builds the routing view from the stored rows (`service::catalog::rows`), carrying the
    /// previous snapshot's channel health over so cooldowns survive.
    pub fn from_rows(rows: CatalogRows, previous: &Snapshot) -> (Snapshot, Vec<String>) {
        let (options, problems) = RuntimeOptions::from_stored(&rows.options);
        let group_rows = rows.groups;
        let channel_rows = rows.channels;
        let route_rows = rows.routes;
        let price_rows = rows.prices;
        let alias_rows = rows.aliases;
        let mut problems = problems;

        let groups = group_rows
            .into_iter()
            .map(|g| {
                let entry = GroupEntry {
                    ratio: g.ratio,
                    rate_limits: g.rate_limits,
                };
                (g.name, entry)
            })
            .collect();

        let mut known_models = FxHashSet::default();
        let mut known_patterns: Vec<String> = Vec::new();
        let mut channels: FxHashMap<i64, Arc<ChannelEntry>> = FxHashMap::default();
        let mut unrouted_channels = Vec::new();
        for c in channel_rows {
            for model in &c.models {
                match names::pattern_prefix(model) {
                    Some(prefix) => known_patterns.push(prefix.to_string()),
                    None => {
                        known_models.insert(model.clone());
                    }
                }
            }
            let health = previous
                .channels
                .get(&c.id)
                .map(|e| e.health.clone())
                .unwrap_or_default();
            if c.status == ChannelStatus::Enabled {
                health.reconcile_enabled(c.status_changed_at);
            } else {
                unrouted_channels.push(c.name);
                continue;
            }
            let name = c.name.clone();
            match channel_entry(c, health, &mut problems) {
                Some(entry) => {
                    channels.insert(entry.id, Arc::new(entry));
                }
                None => unrouted_channels.push(name),
            }
        }

        let Routes {
            by_name: routes,
            configured: configured_routes,
            by_pattern: pattern_routes,
            configured_patterns,
        } = routes(route_rows, &channels);
        known_patterns.sort_unstable();
        known_patterns.dedup();
        let aliases = alias_rows
            .into_iter()
            .map(|alias| (alias.name, alias.target))
            .collect();

        let context_windows = context_windows(&price_rows);
        let (prices, admin_priced) = price_table(&options, price_rows);

        (
            Snapshot {
                options,
                groups,
                channels,
                unrouted_channels,
                routes,
                known_models,
                configured_routes,
                pattern_routes,
                configured_patterns,
                known_patterns,
                aliases,
                prices,
                admin_priced,
                context_windows,
            },
            problems,
        )
    }
}

/// A channel's entry: headers, endpoint URLs and keys built once. None when its base URL
/// cannot make URLs (the problem is noted).
fn channel_entry(
    c: ChannelRow,
    health: Arc<ChannelHealth>,
    problems: &mut Vec<String>,
) -> Option<ChannelEntry> {
    let mut extra_headers = HeaderMap::new();
    for (name, value) in &c.extra_headers {
        match (
            HeaderName::try_from(name.as_str()),
            HeaderValue::try_from(value.as_str()),
        ) {
            (Ok(n), Ok(v)) => {
                extra_headers.insert(n, v);
            }
            _ => problems.push(format!(
                "channel {} has an invalid extra header '{name}'",
                c.name
            )),
        }
    }
    for (name, value) in providers::fixed_headers(c.channel_type) {
        if !extra_headers.contains_key(*name) {
            extra_headers.insert(*name, HeaderValue::from_static(value));
        }
    }
    let base_url = c.base_url.trim_end_matches('/').to_string();
    let endpoint_uris: Result<Vec<Option<http::Uri>>, _> = Endpoint::ALL
        .iter()
        .map(|e| {
            providers::endpoint_url(c.channel_type, &base_url, *e)
                .map(http::Uri::try_from)
                .transpose()
        })
        .collect();
    let Ok(endpoint_uris) = endpoint_uris else {
        problems.push(format!(
            "channel {} has an invalid base URL; it is skipped",
            c.name
        ));
        return None;
    };
    let mut keys = Vec::with_capacity(c.secret_keys.len());
    for key in &c.secret_keys {
        let fingerprint = upstream_key_fingerprint(key);
        let key_health = health.key_health(&fingerprint);
        let disabled = c.disabled_keys.iter().any(|d| d.fingerprint == fingerprint);
        key_health.reconcile(disabled);
        if disabled {
            continue;
        }
        match providers::credential(c.channel_type, key, &fingerprint) {
            Some(credential) => keys.push(ChannelKey {
                credential,
                fingerprint,
                health: key_health,
            }),
            None => problems.push(format!(
                "channel {} has a key that cannot be used (not a valid header value, or not a service account)",
                c.name
            )),
        }
    }
    Some(ChannelEntry {
        id: c.id,
        name: c.name,
        channel_type: c.channel_type,
        base_url,
        endpoint_uris,
        keys,
        configured_keys: c.secret_keys.len(),
        model_mapping: c.model_mapping,
        priority: c.priority,
        weight: c.weight,
        timeout_secs: u64::try_from(c.timeout_secs).unwrap_or(0),
        extra_headers,
        health,
        metrics: OnceLock::new(),
    })
}

/// Which channels serve which (group, model), by name and by pattern; and which pairs are
/// configured at all, enabled or not.
struct Routes {
    by_name: FxHashMap<String, FxHashMap<String, Arc<RouteSet>>>,
    configured: FxHashSet<(String, String)>,
    by_pattern: FxHashMap<String, Vec<PatternRoute>>,
    configured_patterns: FxHashMap<String, Vec<String>>,
}

fn routes(route_rows: Vec<RouteRow>, channels: &FxHashMap<i64, Arc<ChannelEntry>>) -> Routes {
    let mut grouped: HashMap<String, HashMap<String, Vec<Arc<ChannelEntry>>>> = HashMap::new();
    let mut configured_routes = FxHashSet::default();
    let mut patterns: HashMap<String, HashMap<String, Vec<Arc<ChannelEntry>>>> = HashMap::new();
    let mut configured_patterns: FxHashMap<String, Vec<String>> = FxHashMap::default();
    for route in route_rows {
        let channel = channels.get(&route.channel_id);
        if let Some(prefix) = names::pattern_prefix(&route.model) {
            configured_patterns
                .entry(route.group.clone())
                .or_default()
                .push(prefix.to_string());
            let listed = patterns
                .entry(route.group)
                .or_default()
                .entry(prefix.to_string())
                .or_default();
            listed.extend(channel.cloned());
            continue;
        }
        configured_routes.insert((route.group.clone(), route.model.clone()));
        if let Some(channel) = channel {
            grouped
                .entry(route.group)
                .or_default()
                .entry(route.model)
                .or_default()
                .push(channel.clone());
        }
    }
    let routes = grouped
        .into_iter()
        .map(|(group, models)| {
            let models = models
                .into_iter()
                .map(|(model, list)| (model, Arc::new(RouteSet::new(list))))
                .collect();
            (group, models)
        })
        .collect();
    let pattern_routes = patterns
        .into_iter()
        .map(|(group, by_prefix)| (group, pattern_routes(&by_prefix)))
        .collect();
    Routes {
        by_name: routes,
        configured: configured_routes,
        by_pattern: pattern_routes,
        configured_patterns,
    }
}

/// Every price: the shipped list (when the option is on) and the admin's, which win; and the
/// names the admin priced.
fn price_table(
    options: &RuntimeOptions,
    price_rows: Vec<PriceRow>,
) -> (FxHashMap<String, ModelPrice>, FxHashSet<String>) {
    // The admin's prices win over the shipped list prices.
    let mut prices: FxHashMap<String, ModelPrice> = FxHashMap::default();
    if options.list_prices {
        for entry in &list_prices::shipped().entries {
            prices.insert(entry.model.clone(), entry.price);
        }
    }
    let admin_priced = price_rows.iter().map(|p| p.model.clone()).collect();
    prices.extend(price_rows.into_iter().map(|p| (p.model, p.price)));

    (prices, admin_priced)
}

/// Every context window known: the shipped table's (whether or not its prices are on: a
/// window is a fact about the model, not a price), overridden by those the admin set.
fn context_windows(price_rows: &[PriceRow]) -> FxHashMap<String, i64> {
    let mut windows: FxHashMap<String, i64> = list_prices::shipped()
        .entries
        .iter()
        .map(|entry| (entry.model.clone(), entry.context_tokens))
        .collect();
    windows.extend(
        price_rows
            .iter()
            .filter_map(|row| Some((row.model.clone(), row.context_tokens?))),
    );
    windows
}

/// One group's patterns, longest prefix first, each with the channels of every pattern whose
/// prefix starts its own (a channel listing two of them counts once).
fn pattern_routes(by_prefix: &HashMap<String, Vec<Arc<ChannelEntry>>>) -> Vec<PatternRoute> {
    let mut routes: Vec<PatternRoute> = by_prefix
        .keys()
        .map(|prefix| {
            let mut channels: Vec<Arc<ChannelEntry>> = Vec::new();
            for (shorter, listed) in by_prefix {
                if prefix.starts_with(shorter.as_str()) {
                    for channel in listed {
                        if !channels.iter().any(|c| c.id == channel.id) {
                            channels.push(channel.clone());
                        }
                    }
                }
            }
            PatternRoute {
                prefix: prefix.clone(),
                routes: Arc::new(RouteSet::new(channels)),
            }
        })
        .filter(|pattern| pattern.routes.channels().next().is_some())
        .collect();
    routes.sort_by(|a, b| {
        b.prefix
            .len()
            .cmp(&a.prefix.len())
            .then(a.prefix.cmp(&b.prefix))
    });
    routes
}
