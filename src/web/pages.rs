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
use crate::service::onboarding::FirstSteps;
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
    /// No administrator exists yet: the site waits for its first-run link.
    setup_needed: bool,
    /// The base of the first-run link the server printed.
    base_url: String,
}

pub async fn home(State(state): State<AppState>, page: Page) -> Result<HomePage, WebError> {
    let setup_needed = service::onboarding::setup_needed(&state.ctx)
        .await
        .map_err(|e| page.failed(e))?;
    let options = &state.snapshot.load().options;
    Ok(HomePage {
        page,
        announcement: options.announcement.clone(),
        registration_open: options.registration_enabled,
        setup_needed,
        base_url: base_url(&state),
    })
}

/// One of the operator's first steps on the dashboard: how to do it today (the command line
/// and the management API), and where the guide explains it.
pub struct Step {
    /// The element's id (`step-channel`).
    id: &'static str,
    done: bool,
    title: &'static str,
    text: &'static str,
    cli: String,
    api: String,
    /// The section of the operator's guide (README) that explains it.
    guide: &'static str,
}

/// The operator's first steps with the commands that do them, for a site at `base`.
fn operator_steps(steps: FirstSteps, base: &str) -> Vec<Step> {
    let api = format!(
        "curl -H \"Authorization: Bearer $TOKEN\" -H 'Content-Type: application/json' \\\n  {base}/api"
    );
    vec![
        Step {
            id: "step-channel",
            done: steps.channel,
            title: "web-step-channel",
            text: "web-step-channel-text",
            cli: "tollgate channel add --name main --type openai \\\n  --base-url https://api.openai.com/v1 --key sk-… --models gpt-4o-mini".into(),
            api: format!("{api}/channels -d '{{\"name\": \"main\", \"type\": \"openai\",\n  \"base_url\": \"https://api.openai.com/v1\", \"keys\": [\"sk-…\"], \"models\": [\"gpt-4o-mini\"]}}'"),
            guide: "set-up-a-user-a-channel-a-price-and-a-key",
        },
        Step {
            id: "step-price",
            done: steps.price,
            title: "web-step-price",
            text: "web-step-price-text",
            cli: "tollgate price set gpt-4o-mini --input 0.15 --output 0.60".into(),
            api: format!("{api}/prices/gpt-4o-mini -X PUT -d '{{\"input\": 0.15, \"output\": 0.60}}'"),
            guide: "how-billing-works",
        },
        Step {
            id: "step-balance",
            done: steps.balance,
            title: "web-step-balance",
            text: "web-step-balance-text",
            cli: "tollgate user topup alice --usd 5 --reason welcome\ntollgate code create --count 10 --usd 5".into(),
            api: format!("{api}/users/alice/quota -d '{{\"usd\": \"5\", \"reason\": \"welcome\"}}'"),
            guide: "command-line",
        },
    ]
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
    /// The model the example names: one the person can call.
    example_model: Option<String>,
    /// An administrator's first steps while some are not done.
    steps: Vec<Step>,
}

impl DashboardPage {
    /// The model the example names: a real one, or a placeholder to replace.
    fn example_model_text(&self) -> &str {
        self.example_model.as_deref().unwrap_or(MODEL_PLACEHOLDER)
    }

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
    let fail = |e: service::ServiceError| page.failed(e);
    let steps = if user.is_admin() {
        let steps = service::onboarding::first_steps(&state.ctx, &user.caller())
            .await
            .map_err(fail)?;
        if steps.all_done() {
            Vec::new()
        } else {
            operator_steps(steps, &base_url(&state))
        }
    } else {
        Vec::new()
    };
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
        page.say(
            &crate::i18n::Message::new("web-dashboard-bar")
                .with("day", day)
                .with("usd", usd)
                .with("requests", requests),
        )
    });
    Ok(DashboardPage {
        balance: user.quota,
        usage,
        chart,
        lines: super::logs::lines(&page, &recent),
        base_url: base_url(&state),
        has_keys,
        example_model: super::models::example_model(&state.snapshot.load(), &user.group),
        steps,
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
    /// The model the examples name: the cheapest chat model of the reader's group (the default
    /// group for visitors); None when the group can call none.
    model: Option<String>,
}

impl DocsPage {
    /// The model as the examples write it: a real one, or a placeholder to replace.
    fn model_text(&self) -> &str {
        self.model.as_deref().unwrap_or(MODEL_PLACEHOLDER)
    }
}

/// What examples name when the reader's group can call no model yet.
const MODEL_PLACEHOLDER: &str = "MODEL_NAME";

pub async fn docs(State(state): State<AppState>, page: Page) -> DocsPage {
    let group = page
        .viewer
        .as_ref()
        .map_or(DEFAULT_GROUP.to_string(), |v| v.group.clone());
    DocsPage {
        base_url: base_url(&state),
        model: super::models::example_model(&state.snapshot.load(), &group),
        page,
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "guide.html")]
pub struct GuidePage {
    page: Page,
    guide: String,
}

/// The operator's guide (this version's README), for administrators: the dashboard's first
/// steps link to its sections.
pub async fn operator_guide(SignedIn { page, user }: SignedIn) -> Result<GuidePage, WebError> {
    if !user.is_admin() {
        return Err(WebError::not_found(page.lang));
    }
    Ok(GuidePage {
        guide: super::guide::html(),
        page,
    })
}
