//! The public pages and the dashboard.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::response::{IntoResponse, Response};

use super::chart::SpendChart;
use super::error::WebError;
use super::logs::LogLine;
use super::page::{Page, SignedIn};
use crate::domain::pricing::ModelPrice;
use crate::service::groups::DEFAULT_GROUP;
use crate::service::logs::LogQuery;
use crate::service::usage::UsageSummary;
use crate::service::{self, Caller};
use crate::state::AppState;

/// The address clients call: the site's public URL, or the listen address.
pub fn base_url(state: &AppState) -> String {
    state.snapshot.load().options.base_url(&state.listen_url)
}

#[derive(Template, WebTemplate)]
#[template(path = "home.html")]
pub struct HomePage {
    page: Page,
    announcement: String,
    registration_open: bool,
}

pub async fn home(State(state): State<AppState>, page: Page) -> HomePage {
    let options = &state.snapshot.load().options;
    HomePage {
        page,
        announcement: options.announcement.clone(),
        registration_open: options.registration_enabled,
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "dashboard.html")]
pub struct DashboardPage {
    page: Page,
    balance: i64,
    usage: UsageSummary,
    chart: SpendChart,
    /// The latest requests.
    lines: Vec<LogLine>,
    base_url: String,
    has_keys: bool,
}

impl DashboardPage {
    /// "about N days at your last 7 days' rate", or a dash without recent spending.
    fn runway(&self) -> String {
        match self.usage.runway_days {
            Some(days) if days > 365 => self.page.t("web-dashboard-runway-long"),
            Some(days) => self
                .page
                .t1("web-dashboard-runway-days", "days", &days.to_string()),
            None => self.page.t("web-dashboard-runway-none"),
        }
    }

    fn chart_width(&self) -> i64 {
        super::chart::WIDTH
    }

    fn chart_height(&self) -> i64 {
        super::chart::HEIGHT
    }

    fn chart_middle(&self) -> i64 {
        super::chart::HEIGHT / 2
    }
}

pub async fn dashboard(
    State(state): State<AppState>,
    SignedIn { page, user }: SignedIn,
) -> Result<Response, WebError> {
    let caller = Caller::User(user.id);
    let fail = |e: service::ServiceError| WebError::internal(page.lang, &e);
    let (recent, _) = service::logs::query(
        &state.ctx,
        &caller,
        LogQuery {
            limit: Some(10),
            ..Default::default()
        },
    )
    .await
    .map_err(fail)?;
    let has_keys = !service::tokens::list_for_user(&state.ctx, &caller, &user.username)
        .await
        .map_err(fail)?
        .is_empty();
    let usage = service::usage::summary(&state.ctx, &caller, user.id, crate::clock::now_ms())
        .await
        .map_err(fail)?;
    let chart = super::chart::spend_chart(&usage.days, page.quota_per_usd, |day, usd, requests| {
        crate::i18n::text(
            page.lang,
            "web-dashboard-bar",
            &[
                ("day", day),
                ("usd", usd),
                ("requests", &requests.to_string()),
            ],
        )
    });
    Ok(DashboardPage {
        balance: user.quota,
        usage,
        chart,
        lines: super::logs::lines(&page, &recent),
        base_url: base_url(&state),
        has_keys,
        page,
    }
    .into_response())
}

/// One model's prices as shown, after the group's ratio.
pub struct PriceLine {
    model: String,
    input: String,
    output: String,
    cached: String,
    per_request: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "pricing.html")]
pub struct PricingPage {
    page: Page,
    group: String,
    /// The group's ratio when it is not 1, as `0.8`.
    ratio: Option<String>,
    lines: Vec<PriceLine>,
}

/// Every model the reader's group can call (the default group for visitors), priced after
/// the group's ratio.
pub async fn pricing(State(state): State<AppState>, page: Page) -> PricingPage {
    let group = page
        .viewer
        .as_ref()
        .map_or(DEFAULT_GROUP.to_string(), |v| v.group.clone());
    let snapshot = state.snapshot.load();
    let ratio = snapshot.group_ratio(&group);
    let lines = snapshot
        .group_models(&group)
        .into_iter()
        .filter_map(|model| {
            let resolved = snapshot
                .resolve_model(model)
                .unwrap_or_else(|| model.to_string());
            let price = snapshot.price(&resolved)?;
            let f = |micros| super::format::price(micros, ratio);
            Some(match price {
                ModelPrice::PerToken {
                    input,
                    output,
                    cached_input,
                    ..
                } => PriceLine {
                    model: model.to_string(),
                    input: f(input),
                    output: f(output),
                    cached: f(cached_input.unwrap_or(input)),
                    per_request: String::new(),
                },
                ModelPrice::PerRequest(each) => PriceLine {
                    model: model.to_string(),
                    input: String::new(),
                    output: String::new(),
                    cached: String::new(),
                    per_request: f(each),
                },
            })
        })
        .collect();
    let ratio = (ratio != crate::domain::money::Ratio::ONE)
        .then(|| crate::domain::money::Ratio::to_string(&ratio));
    PricingPage {
        page,
        group,
        ratio,
        lines,
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "docs.html")]
pub struct DocsPage {
    page: Page,
    base_url: String,
}

pub async fn docs(State(state): State<AppState>, page: Page) -> DocsPage {
    DocsPage {
        base_url: base_url(&state),
        page,
    }
}
