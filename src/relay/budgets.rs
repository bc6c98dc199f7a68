//! The budget scopes a caller's request is held on, and the words of a refusal that names the
//! one that bound.
//!
//! A personal key is held on its own limit, its periodic budget and its owner's balance. A
//! team key is held on its own limit and budget, the member's cap in the team, the team's
//! budget, the organisation's budget and the organisation's wallet. The order is the order a
//! refusal checks them in, so the budget named is the first that cannot cover the request.

use std::sync::Arc;

use super::auth::Caller;
use crate::billing::scopes::{LiveScope, Refusal, ScopeKind};
use crate::domain::calendar::SiteCalendar;
use crate::domain::kinds::BudgetPeriod;
use crate::domain::money::Quota;
use crate::snapshot::directory::PeriodicScope;

/// Moves a budget into the period that holds `now_ms` once the one it knows has ended.
fn current(budget: &PeriodicScope, zone: &str, now_ms: i64) -> Arc<LiveScope> {
    let (period, scope) = budget;
    if now_ms >= scope.window_end() {
        let (start, end) = SiteCalendar::new(zone).budget_window(*period, now_ms);
        scope.enter(start, end);
    }
    Arc::clone(scope)
}

impl Caller {
    /// The time zone the caller's budgets start over in: the organisation's for a team key,
    /// else the site's.
    pub fn budget_zone<'a>(&'a self, site_zone: &'a str) -> &'a str {
        match &self.org {
            Some(org) if !org.timezone.is_empty() => &org.timezone,
            _ => site_zone,
        }
    }

    /// Every scope a request of this caller is held on, each budget in its current period.
    /// A key's own budget starts over in the site's time zone, an organisation's budgets in
    /// the organisation's.
    pub fn scopes(&self, site_zone: &str, now_ms: i64) -> Vec<Arc<LiveScope>> {
        let mut scopes = Vec::with_capacity(6);
        if !self.token.unlimited {
            scopes.push(Arc::clone(&self.token.limit));
        }
        if let Some(budget) = &self.token.budget {
            scopes.push(current(budget, site_zone, now_ms));
        }
        let Some(org) = &self.org else {
            scopes.push(Arc::clone(&self.user.balance));
            return scopes;
        };
        let zone = self.budget_zone(site_zone);
        let cap = org
            .members
            .get(&self.user.id)
            .and_then(|member| member.teams.get(&self.token.team_id))
            .and_then(Option::as_ref);
        if let Some(cap) = cap {
            scopes.push(current(cap, zone, now_ms));
        }
        let team = org
            .teams
            .get(&self.token.team_id)
            .and_then(|team| team.budget.as_ref());
        if let Some(team) = team {
            scopes.push(current(team, zone, now_ms));
        }
        if let Some(budget) = &org.budget {
            scopes.push(current(budget, zone, now_ms));
        }
        scopes.push(Arc::clone(&org.wallet));
        scopes
    }

    /// The period of the budget that refused, as the caller's key and organisation set it.
    fn period_of(&self, refusal: &Refusal) -> Option<BudgetPeriod> {
        let period = |budget: Option<&PeriodicScope>| budget.map(|(period, _)| *period);
        let org = self.org.as_deref();
        match refusal.scope.kind {
            ScopeKind::KeyBudget => period(self.token.budget.as_ref()),
            ScopeKind::MemberCap => org
                .and_then(|org| org.members.get(&self.user.id))
                .and_then(|member| member.teams.get(&self.token.team_id))
                .and_then(|cap| period(cap.as_ref())),
            ScopeKind::TeamBudget => org
                .and_then(|org| org.teams.get(&refusal.scope.row))
                .and_then(|team| period(team.budget.as_ref())),
            ScopeKind::OrgBudget => org.and_then(|org| period(org.budget.as_ref())),
            ScopeKind::KeyLimit | ScopeKind::Wallet | ScopeKind::Balance => None,
        }
    }

    /// What a refusal tells the caller: which budget bound, what it has left of what, when it
    /// starts over and in which zone, and what the request needed.
    pub fn refusal_message(
        &self,
        refusal: &Refusal,
        needed: i64,
        quota_per_usd: i64,
        site_zone: &str,
    ) -> String {
        let usd = |units: i64| Quota(units).usd_string(quota_per_usd);
        let readable = |units: i64| Quota(units).usd_display(quota_per_usd);
        let needed_exact = usd(needed);
        let needed = readable(needed);
        let left = readable(refusal.available.max(0));
        let limit = readable(refusal.limit);
        let period = self.period_of(refusal).map_or("periodic", |p| p.as_str());
        let org_name = self.org.as_ref().map_or("", |org| org.name.as_str());
        let team_name = self
            .org
            .as_ref()
            .and_then(|org| org.teams.get(&self.token.team_id))
            .map_or("", |team| team.name.as_str());
        let starts_over = |zone: &str| {
            let calendar = SiteCalendar::new(zone);
            let day: String = calendar
                .local_time(refusal.resets_at)
                .chars()
                .take(10)
                .collect();
            format!("it starts over on {day} ({})", calendar.zone_name())
        };
        match refusal.scope.kind {
            ScopeKind::Balance => format!(
                "You exceeded your current quota: this request needs up to {needed_exact} but the account balance is {}. Top up or lower max_tokens.",
                usd(refusal.available)
            ),
            ScopeKind::KeyLimit => format!(
                "This API key's quota is used up: the request needs up to {needed_exact} but the key has {} left.",
                usd(refusal.available)
            ),
            ScopeKind::KeyBudget => format!(
                "This API key's {period} budget is used up: the request needs up to {needed} but {left} is left of {limit} until it starts over at {} ({}).",
                jiff::Timestamp::from_millisecond(refusal.resets_at)
                    .map(|at| at.to_string())
                    .unwrap_or_default(),
                SiteCalendar::new(site_zone).zone_name()
            ),
            ScopeKind::MemberCap => format!(
                "This request needs up to {needed}, but your {period} cap in team {team_name} has {left} left of {limit}; {}.",
                starts_over(self.budget_zone(site_zone))
            ),
            ScopeKind::TeamBudget => format!(
                "This request needs up to {needed}, but team {team_name}'s {period} budget has {left} left of {limit}; {}.",
                starts_over(self.budget_zone(site_zone))
            ),
            ScopeKind::OrgBudget => format!(
                "This request needs up to {needed}, but organisation {org_name}'s {period} budget has {left} left of {limit}; {}.",
                starts_over(self.budget_zone(site_zone))
            ),
            ScopeKind::Wallet => format!(
                "This request needs up to {needed}, but organisation {org_name}'s wallet has {} left. Ask the organisation's admins to top it up.",
                readable(refusal.available)
            ),
        }
    }
}
