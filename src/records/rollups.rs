//! The request logs rolled up per 15 minutes (see `domain::rollup`), and what reads of them
//! give back.

use crate::domain::latency::{self, Histogram};
use crate::records::logs::RequestLog;

/// Sums over a set of requests, with histograms of their latency and time to first token.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RollupSums {
    pub requests: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cost: i64,
    pub latency: Histogram,
    /// Only requests that had a first token (streamed) are counted here.
    pub ttft: Histogram,
}

impl RollupSums {
    /// Counts one request.
    pub fn add_log(&mut self, log: &RequestLog) {
        self.add(&Counted {
            prompt_tokens: log.prompt_tokens,
            completion_tokens: log.completion_tokens,
            cost: log.cost,
            latency_ms: log.latency_ms,
            ttft_ms: log.ttft_ms,
        });
    }

    /// Counts one request from its figures.
    pub fn add(&mut self, request: &Counted) {
        self.requests = self.requests.saturating_add(1);
        self.prompt_tokens = self.prompt_tokens.saturating_add(request.prompt_tokens);
        self.completion_tokens = self
            .completion_tokens
            .saturating_add(request.completion_tokens);
        self.cost = self.cost.saturating_add(request.cost);
        latency::record(&mut self.latency, request.latency_ms);
        if let Some(ttft) = request.ttft_ms {
            latency::record(&mut self.ttft, ttft);
        }
    }

    /// Adds another set's sums.
    pub fn merge(&mut self, other: &RollupSums) {
        self.requests = self.requests.saturating_add(other.requests);
        self.prompt_tokens = self.prompt_tokens.saturating_add(other.prompt_tokens);
        self.completion_tokens = self
            .completion_tokens
            .saturating_add(other.completion_tokens);
        self.cost = self.cost.saturating_add(other.cost);
        latency::merge(&mut self.latency, &other.latency);
        latency::merge(&mut self.ttft, &other.ttft);
    }
}

/// The figures of one request that the rollups sum.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counted {
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cost: i64,
    pub latency_ms: i64,
    pub ttft_ms: Option<i64>,
}

/// The group a request is rolled up in: a 15-minute bucket and who, what and how.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RollupKey {
    pub bucket_start: i64,
    pub user_id: i64,
    pub token_id: i64,
    pub model: String,
    /// 0 for a request refused before any channel.
    pub channel_id: i64,
    pub group: String,
    pub outcome: String,
}

impl RollupKey {
    pub fn of(log: &RequestLog) -> RollupKey {
        RollupKey {
            bucket_start: crate::domain::rollup::bucket_start(log.created_at),
            user_id: log.user_id,
            token_id: log.token_id,
            model: log.model.clone(),
            channel_id: log.channel_id.unwrap_or(0),
            group: log.group.clone(),
            outcome: log.outcome.as_str().to_string(),
        }
    }
}

/// What a read of the rollups groups by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dimension {
    /// One row for everything.
    Total,
    /// The 15-minute bucket (its start, ms since the epoch, in `id`).
    Bucket,
    /// The bucket (in `id`) and the model (in `name`).
    BucketModel,
    /// The model (in `name`).
    Model,
    /// The account (in `id`).
    User,
    /// The channel (in `id`; 0 for requests refused before any channel).
    Channel,
    /// The outcome (in `name`).
    Outcome,
}

/// One group of a read: its key (`id` or `name`, by the dimension) and its sums.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Aggregate {
    pub id: i64,
    pub name: String,
    pub sums: RollupSums,
}

/// How far rolling up the logs written before the rollups existed has come.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Backfill {
    /// Logs with ids up to here are rolled up.
    pub done_id: i64,
    /// The newest log written before the rollups existed.
    pub through_id: i64,
}

impl Backfill {
    pub fn finished(&self) -> bool {
        self.done_id >= self.through_id
    }
}

/// What a rebuild of the rollups did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Rebuilt {
    /// Buckets recomputed (those that still had log rows).
    pub buckets: i64,
    /// Log rows read.
    pub rows: i64,
}

/// The overview's coarser rollups (see `migrations/*/0018_overview_rollups.sql`): each a sum of
/// the 15-minute rows over fewer columns, so a month reads a few thousand rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Coarse {
    /// Per hour and per day, per model, channel, group and outcome, with the histograms.
    Usage,
    /// Per hour and per day, per account.
    Users,
    /// Per 15 minutes, everything together: periods of any zone (offsets are whole quarter
    /// hours) add up exactly.
    Totals,
}

impl Coarse {
    pub const ALL: [Coarse; 3] = [Coarse::Usage, Coarse::Users, Coarse::Totals];

    /// The grains this table is kept at, coarsest first.
    pub fn grains(self) -> &'static [i64] {
        use crate::domain::rollup::{BUCKET_MS, DAY_MS, HOUR_MS};
        match self {
            Coarse::Usage | Coarse::Users => &[DAY_MS, HOUR_MS],
            Coarse::Totals => &[BUCKET_MS],
        }
    }

    /// Whether it keeps the latency and time-to-first-token histograms.
    pub fn histograms(self) -> bool {
        self == Coarse::Usage
    }

    /// The row at `grain_ms` that a 15-minute group adds to: the columns this table does not
    /// keep are left 0 or empty.
    pub fn key(self, grain_ms: i64, key: &RollupKey) -> CoarseKey {
        let bucket_start = key.bucket_start - key.bucket_start.rem_euclid(grain_ms);
        match self {
            Coarse::Usage => CoarseKey {
                grain_ms,
                bucket_start,
                model: key.model.clone(),
                channel_id: key.channel_id,
                group: key.group.clone(),
                outcome: key.outcome.clone(),
                user_id: 0,
            },
            Coarse::Users => CoarseKey {
                grain_ms,
                bucket_start,
                user_id: key.user_id,
                ..CoarseKey::default()
            },
            Coarse::Totals => CoarseKey {
                grain_ms,
                bucket_start,
                ..CoarseKey::default()
            },
        }
    }
}

/// A row of a coarser rollup: its grain and start, and the columns its table keeps.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CoarseKey {
    pub grain_ms: i64,
    pub bucket_start: i64,
    pub model: String,
    pub channel_id: i64,
    pub group: String,
    pub outcome: String,
    pub user_id: i64,
}

/// What 15-minute groups add to each coarser table, at each of its grains (histograms only
/// where the table keeps them).
pub fn coarse_of(
    groups: &std::collections::BTreeMap<RollupKey, RollupSums>,
) -> std::collections::BTreeMap<(Coarse, CoarseKey), RollupSums> {
    let mut out: std::collections::BTreeMap<(Coarse, CoarseKey), RollupSums> =
        std::collections::BTreeMap::new();
    for (key, sums) in groups {
        for table in Coarse::ALL {
            let mut sums = *sums;
            if !table.histograms() {
                sums.latency = [0; latency::BUCKETS];
                sums.ttft = [0; latency::BUCKETS];
            }
            for &grain in table.grains() {
                out.entry((table, table.key(grain, key)))
                    .or_default()
                    .merge(&sums);
            }
        }
    }
    out
}
