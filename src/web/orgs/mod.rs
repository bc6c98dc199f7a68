//! Organisations in the portal: the ones a person belongs to and making one (`/orgs`), and
//! each organisation's pages under `/orgs/{slug}` — its overview, teams, members, wallet and
//! settings — with a row of links between them. Every page asks `service::orgs` as the
//! signed-in person, so an outsider is told the organisation does not exist (404), and a
//! member's POST to a form for admins is refused by the service (403).

mod audit;
mod members;
mod overview;
mod settings;
mod teams;
mod wallet;

use axum::Router;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use tower_sessions::Session;

use super::error::WebError;
use super::page::{Page, flash};
use crate::domain::kinds::{BudgetPeriod, OrgRole};
use crate::service::orgs::{BudgetUse, OrgView};
use crate::service::sessions::Viewer;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/orgs",
            get(overview::list).post(overview::create_from_list),
        )
        .route("/orgs/new", get(overview::new_form).post(overview::create))
        .route("/orgs/{slug}", get(overview::show))
        .route("/orgs/{slug}/transfer", post(members::transfer))
        .route("/orgs/{slug}/transfer/accept", post(members::accept))
        .route("/orgs/{slug}/transfer/cancel", post(members::cancel))
        .route("/orgs/{slug}/teams", get(teams::list).post(teams::create))
        .route(
            "/orgs/{slug}/teams/{id}",
            get(teams::show).post(teams::save),
        )
        .route("/orgs/{slug}/teams/{id}/members", post(teams::add_member))
        .route(
            "/orgs/{slug}/teams/{id}/members/{user}/cap",
            post(teams::set_cap),
        )
        .route(
            "/orgs/{slug}/teams/{id}/members/{user}/remove",
            post(teams::remove_member),
        )
        .route(
            "/orgs/{slug}/teams/{id}/delete",
            get(teams::delete_form).post(teams::delete),
        )
        .route(
            "/orgs/{slug}/members",
            get(members::list).post(members::add),
        )
        .route("/orgs/{slug}/members/{user}/role", post(members::set_role))
        .route("/orgs/{slug}/members/{user}/remove", post(members::remove))
        .route("/orgs/{slug}/leave", post(members::leave))
        .route("/orgs/{slug}/wallet", get(wallet::show))
        .route("/orgs/{slug}/wallet/redeem", post(wallet::redeem))
        .route(
            "/orgs/{slug}/wallet/topup",
            get(wallet::quote).post(wallet::pay),
        )
        .route(
            "/orgs/{slug}/settings",
            get(settings::show).post(settings::save),
        )
        .route("/orgs/{slug}/delete", post(settings::delete))
        .route("/orgs/{slug}/audit", get(audit::page))
}

/// The sub-navigation's pages: (tab, path after `/orgs/{slug}`, text key). Usage and
/// invitations are other pages' (linked all the same); settings and the audit are for admins,
/// invitations for those who may invite.
const TABS: [(&str, &str, &str); 8] = [
    ("overview", "", "web-org-tab-overview"),
    ("teams", "/teams", "web-org-tab-teams"),
    ("members", "/members", "web-org-tab-members"),
    ("invitations", "/invitations", "web-org-tab-invitations"),
    ("wallet", "/wallet", "web-org-tab-wallet"),
    ("usage", "/usage", "web-org-tab-usage"),
    ("settings", "/settings", "web-org-tab-settings"),
    ("audit", "/audit", "web-org-tab-audit"),
];

/// What every organisation page shows above its own part: the name, the reader's role and
/// the row of links between the organisation's pages.
pub struct OrgFrame {
    pub slug: String,
    pub name: String,
    /// The reader's role in words (empty: a site administrator from outside).
    pub role: String,
    /// Which link is this page.
    pub tab: &'static str,
    /// The organisation's admins and owner, and site administrators.
    pub manages: bool,
    /// Whether the reader may invite people: those who manage the organisation or a team.
    pub invites: bool,
}

/// A link of the sub-navigation.
pub struct Tab {
    pub href: String,
    pub key: &'static str,
    pub current: bool,
}

impl OrgFrame {
    /// The links between the organisation's pages.
    pub fn tabs(&self) -> Vec<Tab> {
        TABS.iter()
            .filter(|(tab, _, _)| *tab != "invitations" || self.invites)
            .filter(|(tab, _, _)| !matches!(*tab, "settings" | "audit") || self.manages)
            .map(|(tab, path, key)| Tab {
                href: format!("/orgs/{}{path}", self.slug),
                key,
                current: *tab == self.tab,
            })
            .collect()
    }
}

/// The text key of a role.
pub fn role_key(role: OrgRole) -> &'static str {
    match role {
        OrgRole::Owner => "web-org-role-owner",
        OrgRole::Admin => "web-org-role-admin",
        OrgRole::Member => "web-org-role-member",
    }
}

/// Whether the reader manages the whole organisation.
pub fn manages(view: &OrgView, user: &Viewer) -> bool {
    user.is_admin() || matches!(view.role, Some(OrgRole::Owner | OrgRole::Admin))
}

/// The organisation as the reader may see it, with the frame of its pages (an outsider: 404).
pub async fn load(
    state: &AppState,
    page: &Page,
    user: &Viewer,
    slug: &str,
    tab: &'static str,
) -> Result<(OrgView, OrgFrame), WebError> {
    let view = crate::service::orgs::show(&state.ctx, &user.caller(), slug)
        .await
        .map_err(|e| page.failed(e))?;
    let frame = OrgFrame {
        slug: view.slug.clone(),
        name: view.name.clone(),
        role: view.role.map(|r| page.t(role_key(r))).unwrap_or_default(),
        tab,
        manages: manages(&view, user),
        invites: !view.managed_teams.is_empty() || manages(&view, user),
    };
    Ok((view, frame))
}

/// A bar for a budget: how much of it this period spent, as a width in steps of 5 % (the
/// stylesheet has a class per step: pages allow no inline styles).
pub struct Bar {
    pub label: String,
    /// "$12.00 of $500.00 this month".
    pub text: String,
    /// The bar's width class: 0, 5, … 100.
    pub fill: i64,
    /// The share spent as the bar's text says it (see [`percent_text`]).
    pub percent: String,
    /// `ok`, `near` (80 % or more) or `over` (all of it).
    pub state: &'static str,
    /// Where the label links (empty: nowhere).
    pub href: String,
}

/// The share of `quota` that `spent` is, in whole percent (0 when there is no budget).
pub fn percent_of(spent: i64, quota: i64) -> i64 {
    if quota <= 0 {
        return 0;
    }
    let share = i128::from(spent.max(0)) * 100 / i128::from(quota);
    i64::try_from(share).unwrap_or(i64::MAX)
}

/// The share spent in whole percent as a reader takes it: `<1` when something was spent but
/// less than 1 % (a bare `0` would say nothing was).
pub fn percent_text(spent: i64, quota: i64) -> String {
    match percent_of(spent, quota) {
        0 if spent > 0 && quota > 0 => "<1".to_string(),
        percent => percent.to_string(),
    }
}

/// A budget's state: `near` from 80 %, `over` once all is spent.
pub fn state_of(spent: i64, quota: i64) -> &'static str {
    if quota > 0 && spent >= quota {
        "over"
    } else if quota > 0 && i128::from(spent) * 100 >= i128::from(quota) * 80 {
        "near"
    } else {
        "ok"
    }
}

/// "$12.00 of $500.00 this month".
pub fn budget_text(page: &Page, budget: &BudgetUse) -> String {
    crate::i18n::text(
        page.lang,
        super::keys::per_period_key(budget.period),
        &[
            ("spent", &page.usd(&budget.spent_quota)),
            ("limit", &page.usd(&budget.quota)),
        ],
    )
}

pub fn bar(page: &Page, label: String, href: String, budget: &BudgetUse) -> Bar {
    let percent = percent_of(budget.spent_quota, budget.quota);
    Bar {
        label,
        text: budget_text(page, budget),
        fill: (percent.min(100) + 2) / 5 * 5,
        percent: percent_text(budget.spent_quota, budget.quota),
        state: state_of(budget.spent_quota, budget.quota),
        href,
    }
}

/// The text key saying what "this period" is: "Spent this month".
pub fn spent_key(period: BudgetPeriod) -> &'static str {
    match period {
        BudgetPeriod::Daily => "web-org-spent-daily",
        BudgetPeriod::Weekly => "web-org-spent-weekly",
        BudgetPeriod::Monthly => "web-org-spent-monthly",
        BudgetPeriod::Quarterly => "web-org-spent-quarterly",
    }
}

/// "$500.00 a month" for a budget on forms and lists.
pub fn per_period(page: &Page, quota: i64, period: BudgetPeriod) -> String {
    let key = match period {
        BudgetPeriod::Daily => "web-org-per-day",
        BudgetPeriod::Weekly => "web-org-per-week",
        BudgetPeriod::Monthly => "web-org-per-month",
        BudgetPeriod::Quarterly => "web-org-per-quarter",
    };
    page.t1(key, "amount", &page.usd(&quota))
}

/// Leaves `key`'s notice for the next page and goes there (303).
pub async fn done(
    session: &Session,
    page: &Page,
    key: &'static str,
    to: &str,
) -> Result<Response, WebError> {
    flash(session, page.t(key)).await?;
    Ok(Redirect::to(to).into_response())
}

/// Empty text as "not given".
pub fn given(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_and_states_of_budgets() {
        assert_eq!(percent_of(0, 100), 0);
        assert_eq!(percent_of(79, 100), 79);
        assert_eq!(percent_of(250, 100), 250);
        assert_eq!(percent_of(5, 0), 0);
        assert_eq!(percent_text(0, 100_000), "0");
        assert_eq!(percent_text(1, 100_000), "<1");
        assert_eq!(percent_text(999, 100_000), "<1");
        assert_eq!(percent_text(1_000, 100_000), "1");
        assert_eq!(percent_text(5, 0), "0");
        assert_eq!(state_of(79, 100), "ok");
        assert_eq!(state_of(80, 100), "near");
        assert_eq!(state_of(100, 100), "over");
        assert_eq!(state_of(1, 0), "ok");
    }
}
