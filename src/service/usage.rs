//! How an account spends: today, the last 7 and 30 days, per day and per model, and how long
//! its balance lasts at the recent rate. Days are the site's (option `timezone`).

use std::collections::BTreeMap;

use super::{Caller, Ctx, ServiceError, ServiceResult};
use crate::domain::calendar::SiteCalendar;
use crate::msg;
use crate::service::db;

/// Requests and their cost (quota units).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Spend {
    pub requests: i64,
    pub cost: i64,
}

impl Spend {
    fn add(&mut self, requests: i64, cost: i64) {
        self.requests = self.requests.saturating_add(requests);
        self.cost = self.cost.saturating_add(cost);
    }
}

/// One day of the chart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DaySpend {
    /// `2026-11-30`.
    pub label: String,
    pub spend: Spend,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelSpend {
    pub model: String,
    pub spend: Spend,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageSummary {
    pub today: Spend,
    pub week: Spend,
    pub month: Spend,
    /// The last 30 days, oldest first, today last; days without requests included.
    pub days: Vec<DaySpend>,
    /// The last 30 days by model, the costliest first.
    pub models: Vec<ModelSpend>,
    /// Whole days the balance lasts at the last 7 days' average; None without spending.
    pub runway_days: Option<i64>,
}

/// Days the dashboard looks back.
pub const DAYS: i64 = 30;

/// The usage of `user_id`, as of `now_ms`: one's own, or anyone's for an administrator.
pub async fn summary(
    ctx: &Ctx,
    caller: &Caller,
    user_id: i64,
    now_ms: i64,
) -> ServiceResult<UsageSummary> {
    if caller.owner().is_some_and(|own| own != user_id) {
        return Err(ServiceError::NotFound(msg!(
            "user-not-found",
            name = user_id.to_string()
        )));
    }
    let user = super::users::find_id(&ctx.db, user_id).await?;
    let options = super::options::current(&ctx.db).await?;
    let calendar = SiteCalendar::new(&options.timezone);
    let today = calendar.day_number(now_ms);
    let from_ms = calendar.day_start_ms(now_ms, DAYS - 1);
    // From the rollups: every zone's offset is a whole number of quarter hours, so each
    // 15-minute bucket lies within one local day, and the local midnight the range starts at
    // is a bucket's start (no raw rows are read).
    let filter = db::logs::LogFilter {
        user_id: Some(user_id),
        from_ms: Some(from_ms),
        ..Default::default()
    };
    let buckets = db::rollups::sums(&ctx.db, &filter, db::rollups::Dimension::BucketModel).await?;
    Ok(summarize(
        &on_local_days(buckets, &calendar),
        today,
        user.quota,
    ))
}

/// Rollup buckets per model placed on the local day each began on.
fn on_local_days(
    buckets: Vec<db::rollups::Aggregate>,
    calendar: &SiteCalendar,
) -> Vec<db::logs::ModelUsage> {
    buckets
        .into_iter()
        .map(|bucket| db::logs::ModelUsage {
            period: calendar.day_number(bucket.id),
            model: bucket.name,
            requests: bucket.sums.requests,
            cost: bucket.sums.cost,
        })
        .collect()
}

/// The summary of per-day, per-model rows (`period` = local day number).
pub fn summarize(rows: &[db::logs::ModelUsage], today: i64, balance: i64) -> UsageSummary {
    let first_day = today - (DAYS - 1);
    let mut by_day: BTreeMap<i64, Spend> = (first_day..=today)
        .map(|day| (day, Spend::default()))
        .collect();
    let mut by_model: BTreeMap<&str, Spend> = BTreeMap::new();
    let (mut today_spend, mut week, mut month) =
        (Spend::default(), Spend::default(), Spend::default());
    for row in rows
        .iter()
        .filter(|r| (first_day..=today).contains(&r.period))
    {
        by_day
            .entry(row.period)
            .or_default()
            .add(row.requests, row.cost);
        by_model
            .entry(row.model.as_str())
            .or_default()
            .add(row.requests, row.cost);
        month.add(row.requests, row.cost);
        if row.period > today - 7 {
            week.add(row.requests, row.cost);
        }
        if row.period == today {
            today_spend.add(row.requests, row.cost);
        }
    }
    let mut models: Vec<ModelSpend> = by_model
        .into_iter()
        .map(|(model, spend)| ModelSpend {
            model: model.to_string(),
            spend,
        })
        .collect();
    models.sort_by(|a, b| b.spend.cost.cmp(&a.spend.cost).then(a.model.cmp(&b.model)));
    let runway_days = (week.cost > 0).then(|| balance.max(0).saturating_mul(7) / week.cost);
    UsageSummary {
        today: today_spend,
        week,
        month,
        days: by_day
            .into_iter()
            .map(|(day, spend)| DaySpend {
                label: SiteCalendar::day_label(day),
                spend,
            })
            .collect(),
        models,
        runway_days,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::db::logs::ModelUsage;

    const HOUR_MS: i64 = 3_600_000;

    fn row(day: i64, model: &str, requests: i64, cost: i64) -> ModelUsage {
        ModelUsage {
            period: day,
            model: model.into(),
            requests,
            cost,
        }
    }

    #[test]
    fn sums_today_the_week_and_the_month_and_the_runway() {
        let today = 20_000;
        let rows = [
            row(today, "a", 2, 100),
            row(today, "b", 1, 50),
            row(today - 6, "a", 1, 200),
            row(today - 7, "b", 4, 1000),
            row(today - 29, "a", 1, 1),
            row(today - 30, "a", 9, 9),
        ];
        let summary = summarize(&rows, today, 3500);
        assert_eq!(
            summary.today,
            Spend {
                requests: 3,
                cost: 150
            }
        );
        assert_eq!(
            summary.week,
            Spend {
                requests: 4,
                cost: 350
            }
        );
        assert_eq!(
            summary.month,
            Spend {
                requests: 9,
                cost: 1351
            }
        );
        assert_eq!(summary.days.len(), 30);
        assert_eq!(summary.days.last().unwrap().spend.cost, 150);
        assert_eq!(summary.models[0].model, "b");
        // 350 per week = 50 a day; 3500 lasts 70 days.
        assert_eq!(summary.runway_days, Some(70));
        assert_eq!(summarize(&[], today, 3500).runway_days, None);
    }

    #[test]
    fn buckets_land_on_their_local_day_across_daylight_saving() {
        use crate::domain::rollup::BUCKET_MS;
        use crate::records::rollups::{Aggregate, RollupSums};
        // New York, 2026-11-01: midnight is 04:00 UTC, the next midnight 05:00 UTC the day
        // after (a 25-hour day). Its last bucket begins at 04:45 UTC on the 2nd.
        let new_york = SiteCalendar::new("America/New_York");
        let midnight = 1_793_505_600_000;
        let bucket = |at: i64, cost: i64| Aggregate {
            id: at,
            name: "m".into(),
            sums: RollupSums {
                requests: 1,
                cost,
                ..Default::default()
            },
        };
        let buckets = vec![
            bucket(midnight - BUCKET_MS, 1),
            bucket(midnight, 2),
            bucket(midnight + 25 * HOUR_MS - BUCKET_MS, 4),
            bucket(midnight + 25 * HOUR_MS, 8),
        ];
        let days = on_local_days(buckets, &new_york);
        let day = new_york.day_number(midnight);
        let placed: Vec<(i64, i64)> = days.iter().map(|d| (d.period - day, d.cost)).collect();
        assert_eq!(placed, vec![(-1, 1), (0, 2), (0, 4), (1, 8)]);
    }
}
