//! The console's overview: requests, tokens, spend and revenue over the last 24 hours, 7 or
//! 30 days (per hour or per day of the site's zone); the top models, users and channels; each
//! channel's error rate, latency and time to first token; the channels that are cooling down
//! or auto-disabled, and why. Every figure comes from the rollups (and the ledger for revenue),
//! never from a scan of the logs: the coarser ones (per hour and day, without accounts and keys,
//! or per account alone, or per quarter hour for the chart) wherever they hold what is asked,
//! so a month reads a few thousand rows.

use std::collections::BTreeMap;

use super::{Caller, Ctx, ServiceResult};
use crate::domain::calendar::SiteCalendar;
use crate::domain::kinds::{ChannelStatus, LedgerKind, Outcome};
use crate::domain::latency;
use crate::service::db;
use crate::service::db::logs::LogFilter;
use crate::service::db::rollups::{Aggregate, Dimension, RollupSums};

/// How far back the overview looks.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
pub enum Range {
    #[serde(rename = "24h")]
    Day,
    #[serde(rename = "7d")]
    Week,
    #[serde(rename = "30d")]
    Month,
}

impl Range {
    pub const ALL: [Range; 3] = [Range::Day, Range::Week, Range::Month];

    pub fn parse(text: &str) -> Option<Range> {
        match text.trim() {
            "24h" => Some(Range::Day),
            "7d" => Some(Range::Week),
            "30d" => Some(Range::Month),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Range::Day => "24h",
            Range::Week => "7d",
            Range::Month => "30d",
        }
    }
}

/// What one period (an hour, or a day of the site's zone) adds up to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Figures {
    pub requests: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    /// What the requests cost (quota units).
    pub cost: i64,
    /// Balance bought with paid top-ups.
    pub topups: i64,
    /// Balance added by redemption codes.
    pub redeemed: i64,
    /// Balance taken back for refunded payments (a positive amount).
    pub refunds: i64,
}

impl Figures {
    fn add_usage(&mut self, sums: &RollupSums) {
        self.requests = self.requests.saturating_add(sums.requests);
        self.prompt_tokens = self.prompt_tokens.saturating_add(sums.prompt_tokens);
        self.completion_tokens = self
            .completion_tokens
            .saturating_add(sums.completion_tokens);
        self.cost = self.cost.saturating_add(sums.cost);
    }

    fn add_ledger(&mut self, kind: LedgerKind, amount: i64) {
        match kind {
            LedgerKind::TopUp => self.topups = self.topups.saturating_add(amount),
            LedgerKind::Redemption => self.redeemed = self.redeemed.saturating_add(amount),
            LedgerKind::Refund => self.refunds = self.refunds.saturating_sub(amount),
            _ => {}
        }
    }

    fn add(&mut self, other: &Figures) {
        self.add_usage(&RollupSums {
            requests: other.requests,
            prompt_tokens: other.prompt_tokens,
            completion_tokens: other.completion_tokens,
            cost: other.cost,
            ..RollupSums::default()
        });
        self.topups = self.topups.saturating_add(other.topups);
        self.redeemed = self.redeemed.saturating_add(other.redeemed);
        self.refunds = self.refunds.saturating_add(other.refunds);
    }
}

/// One period of the chart: `2026-11-30`, or `2026-11-30 14:00` for an hour.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Period {
    pub label: String,
    pub figures: Figures,
}

/// A model, user or channel among the busiest.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Top {
    pub id: i64,
    pub name: String,
    pub requests: i64,
    pub cost: i64,
}

/// How a channel served over the range.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct ChannelService {
    pub id: i64,
    pub name: String,
    pub requests: i64,
    /// Requests that did not succeed.
    pub errors: i64,
    /// Per mille (‰) of the requests, rounded down.
    pub error_permille: i64,
    /// Of the successful requests, in ms: the upper bound of the histogram bucket the
    /// percentile falls in (see `domain::latency`).
    pub latency_p50_ms: Option<i64>,
    pub latency_p95_ms: Option<i64>,
    pub ttft_p50_ms: Option<i64>,
    pub ttft_p95_ms: Option<i64>,
}

/// A channel out of rotation now.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Resting {
    pub id: i64,
    pub name: String,
    /// `cooling_down` or `auto_disabled`.
    pub state: &'static str,
    /// Why (the upstream's words when it was disabled), or empty.
    pub reason: String,
    /// When the cooldown ends, or when it was disabled (ms).
    pub at_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Overview {
    pub range: Range,
    pub from_ms: i64,
    pub to_ms: i64,
    pub totals: Figures,
    /// Oldest first, empty periods included.
    pub periods: Vec<Period>,
    pub top_models: Vec<Top>,
    pub top_users: Vec<Top>,
    pub top_channels: Vec<Top>,
    pub channels: Vec<ChannelService>,
    pub resting: Vec<Resting>,
    /// The rollups of the logs written before this version are still being made: older
    /// figures are not all in yet.
    pub rebuilding: bool,
}

/// How many models, users and channels the top lists hold.
pub const TOP: usize = 10;
const HOUR_MS: i64 = 3_600_000;

/// The overview as of `now_ms`. `cooling` is what the routing holds in memory: each channel
/// cooling down and until when (ms).
pub async fn build(
    ctx: &Ctx,
    caller: &Caller,
    range: Range,
    now_ms: i64,
    cooling: &[(i64, i64)],
) -> ServiceResult<Overview> {
    caller.require_admin()?;
    let db = &ctx.db;
    let options = super::options::current(db).await?;
    let calendar = SiteCalendar::new(&options.timezone);
    // Hours for the last day; days of the site's zone, today included, for the others.
    let (from_ms, mut periods): (i64, BTreeMap<i64, Figures>) = match range {
        Range::Day => {
            let from_ms = now_ms - 24 * HOUR_MS;
            let first = from_ms.div_euclid(HOUR_MS);
            (
                from_ms,
                (first..=now_ms.div_euclid(HOUR_MS))
                    .map(|h| (h, Figures::default()))
                    .collect(),
            )
        }
        Range::Week | Range::Month => {
            let days = if range == Range::Week { 7 } else { 30 };
            let today = calendar.day_number(now_ms);
            (
                calendar.day_start_ms(now_ms, days - 1),
                (today - (days - 1)..=today)
                    .map(|d| (d, Figures::default()))
                    .collect(),
            )
        }
    };
    let period_of = |at_ms: i64| match range {
        Range::Day => at_ms.div_euclid(HOUR_MS),
        Range::Week | Range::Month => calendar.day_number(at_ms),
    };
    let filter = LogFilter {
        from_ms: Some(from_ms),
        to_ms: Some(now_ms + 1),
        ..LogFilter::default()
    };
    for bucket in db::rollups::overview_sums(db, &filter, Dimension::Bucket).await? {
        if let Some(figures) = periods.get_mut(&period_of(bucket.id)) {
            figures.add_usage(&bucket.sums);
        }
    }
    let revenue = [
        LedgerKind::TopUp,
        LedgerKind::Redemption,
        LedgerKind::Refund,
    ];
    for (bucket, kind, amount) in
        db::ledger::sums_by_bucket(db, &revenue, from_ms, now_ms + 1).await?
    {
        // A bucket that began before the range is counted in its first period.
        let period = period_of(bucket.max(from_ms));
        if let Some(figures) = periods.get_mut(&period) {
            figures.add_ledger(kind, amount);
        }
    }
    let mut totals = Figures::default();
    for figures in periods.values() {
        totals.add(figures);
    }
    let periods = periods
        .into_iter()
        .map(|(period, figures)| Period {
            label: match range {
                Range::Day => calendar.local_time(period * HOUR_MS)[..16].to_string(),
                Range::Week | Range::Month => SiteCalendar::day_label(period),
            },
            figures,
        })
        .collect();

    let channels = db::channels::list(db).await?;
    let channel_name = |id: i64| {
        channels
            .iter()
            .find(|c| c.id == id)
            .map(|c| c.name.clone())
            .unwrap_or_else(|| {
                if id == 0 {
                    String::new()
                } else {
                    format!("#{id}")
                }
            })
    };
    let top = |groups: &[Aggregate]| -> Vec<Top> {
        let mut top: Vec<Top> = groups
            .iter()
            .map(|g| Top {
                id: g.id,
                name: g.name.clone(),
                requests: g.sums.requests,
                cost: g.sums.cost,
            })
            .collect();
        top.sort_by(|a, b| {
            (b.cost, b.requests, &a.name, a.id).cmp(&(a.cost, a.requests, &b.name, b.id))
        });
        top.truncate(TOP);
        top
    };
    let top_models = top(&db::rollups::overview_sums(db, &filter, Dimension::Model).await?);
    let mut top_users = top(&db::rollups::overview_sums(db, &filter, Dimension::User).await?);
    let ids: Vec<i64> = top_users.iter().map(|t| t.id).collect();
    for (id, user) in db::users::by_ids(db, &ids).await? {
        if let (Some(entry), Ok(user)) = (top_users.iter_mut().find(|t| t.id == id), user) {
            entry.name = user.username;
        }
    }
    let by_channel = db::rollups::overview_aggregate(db, &filter, Dimension::Channel).await?;
    let served: Vec<Aggregate> = by_channel.iter().filter(|c| c.id != 0).cloned().collect();
    let mut top_channels = top(&served);
    for entry in &mut top_channels {
        entry.name = channel_name(entry.id);
    }
    let succeeded = db::rollups::overview_aggregate(
        db,
        &LogFilter {
            outcome: Some(Outcome::Success),
            ..filter.clone()
        },
        Dimension::Channel,
    )
    .await?;
    let mut channel_service: Vec<ChannelService> = served
        .iter()
        .map(|all| {
            let ok = succeeded
                .iter()
                .find(|s| s.id == all.id)
                .map(|s| s.sums)
                .unwrap_or_default();
            let errors = all.sums.requests - ok.requests;
            ChannelService {
                id: all.id,
                name: channel_name(all.id),
                requests: all.sums.requests,
                errors,
                error_permille: errors.saturating_mul(1000) / all.sums.requests.max(1),
                latency_p50_ms: latency::percentile(&ok.latency, 50),
                latency_p95_ms: latency::percentile(&ok.latency, 95),
                ttft_p50_ms: latency::percentile(&ok.ttft, 50),
                ttft_p95_ms: latency::percentile(&ok.ttft, 95),
            }
        })
        .collect();
    channel_service.sort_by(|a, b| (b.requests, &a.name).cmp(&(a.requests, &b.name)));

    let mut resting: Vec<Resting> = channels
        .iter()
        .filter(|c| c.status == ChannelStatus::AutoDisabled)
        .map(|c| Resting {
            id: c.id,
            name: c.name.clone(),
            state: "auto_disabled",
            reason: c.status_reason.clone(),
            at_ms: c.status_changed_at,
        })
        .collect();
    for &(id, until) in cooling {
        if until > now_ms && !resting.iter().any(|r| r.id == id) {
            resting.push(Resting {
                id,
                name: channel_name(id),
                state: "cooling_down",
                reason: String::new(),
                at_ms: until,
            });
        }
    }
    resting.sort_by(|a, b| a.name.cmp(&b.name));
    let rebuilding = !db::rollups::backfill(db).await?.finished();
    Ok(Overview {
        range,
        from_ms,
        to_ms: now_ms,
        totals,
        periods,
        top_models,
        top_users,
        top_channels,
        channels: channel_service,
        resting,
        rebuilding,
    })
}
