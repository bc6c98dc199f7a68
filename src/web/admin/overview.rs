//! `/admin`: the console's overview over the last 24 hours, 7 or 30 days (`?range=`), from
//! the rollups: requests, tokens, spend and revenue per period, the busiest models, users and
//! channels, how each channel serves, and which are out of rotation and why.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use serde::Deserialize;

use super::AdminPage;
use crate::clock::now_ms;
use crate::service::overview::{Overview, Range, Top};
use crate::service::usage::{DaySpend, Spend};
use crate::service::{self};
use crate::state::AppState;
use crate::web::chart::SpendChart;
use crate::web::error::WebError;
use crate::web::logs::duration;
use crate::web::page::Page;

#[derive(Deserialize, Default)]
pub struct OverviewParams {
    #[serde(default)]
    range: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/overview.html")]
pub struct OverviewPage {
    page: Page,
    overview: Overview,
    chart: SpendChart,
    ranges: Vec<(&'static str, &'static str, bool)>,
    /// Days request logs are kept (option `log_retention_days`; 0: for ever).
    retention_days: u64,
    /// Root changes the site's settings: the retention line links there.
    settings_link: bool,
}

impl OverviewPage {
    fn chart_width(&self) -> i64 {
        crate::web::chart::WIDTH
    }

    fn chart_height(&self) -> i64 {
        crate::web::chart::HEIGHT
    }

    fn chart_middle(&self) -> i64 {
        crate::web::chart::HEIGHT / 2
    }

    /// A percentile in words, or a dash without data.
    fn ms(&self, value: &Option<i64>) -> String {
        value.map(duration).unwrap_or_else(|| "—".to_string())
    }

    /// Per mille as a percentage with one decimal: `2.5 %`.
    fn percent(&self, permille: &i64) -> String {
        format!("{}.{} %", permille / 10, permille % 10)
    }

    /// How long logs are kept, in words.
    fn retention(&self) -> String {
        match self.retention_days {
            0 => self.page.t("admin-overview-retention-forever"),
            days => self
                .page
                .t1("admin-overview-retention-days", "days", &days.to_string()),
        }
    }

    /// The three top lists: their title, anchor and entries.
    fn tops(&self) -> [(&'static str, &'static str, &[Top]); 3] {
        [
            (
                "admin-overview-top-models",
                "top-models",
                &self.overview.top_models,
            ),
            (
                "admin-overview-top-users",
                "top-users",
                &self.overview.top_users,
            ),
            (
                "admin-overview-top-channels",
                "top-channels",
                &self.overview.top_channels,
            ),
        ]
    }

    fn resting_state(&self, state: &str) -> String {
        match state {
            "cooling_down" => self.page.t("admin-overview-cooling"),
            _ => self.page.t("admin-overview-auto-disabled"),
        }
    }
}

pub async fn page(
    State(state): State<AppState>,
    admin: AdminPage,
    Query(params): Query<OverviewParams>,
) -> Result<OverviewPage, WebError> {
    let range = Range::parse(&params.range).unwrap_or(Range::Week);
    let now = now_ms();
    let overview = service::overview::build(
        &state.ctx,
        &admin.caller(),
        range,
        now,
        &state.snapshot.load().cooling_channels(now),
    )
    .await
    .map_err(|e| admin.page.failed(e))?;
    let settings_link = admin.is_root();
    let retention_days = state.snapshot.load().options.log_retention_days;
    let page = admin.page;
    let days: Vec<DaySpend> = overview
        .periods
        .iter()
        .map(|p| DaySpend {
            label: p.label.clone(),
            spend: Spend {
                requests: p.figures.requests,
                cost: p.figures.cost,
            },
        })
        .collect();
    let chart = crate::web::chart::spend_chart(&days, page.quota_per_usd, |day, usd, requests| {
        page.say(
            &crate::i18n::Message::new("web-dashboard-bar")
                .with("day", day)
                .with("usd", usd)
                .with("requests", requests),
        )
    });
    let ranges = Range::ALL
        .iter()
        .map(|r| {
            let label = match r {
                Range::Day => "admin-overview-24h",
                Range::Week => "admin-overview-7d",
                Range::Month => "admin-overview-30d",
            };
            (r.as_str(), label, *r == range)
        })
        .collect();
    Ok(OverviewPage {
        page,
        overview,
        chart,
        ranges,
        retention_days,
        settings_link,
    })
}
