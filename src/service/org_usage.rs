//! Who in an organisation spent what: its usage page and its chargeback report — per month
//! in the organisation's time zone, team, member and model, summed from the organisation's
//! request log rows, so the report's costs are the rows' costs.
//!
//! Admins and the owner see everything; a team's manager sees the teams they manage; a member
//! sees their own spending.

use serde::Serialize;

use super::orgs::{Access, access};
use super::{Caller, Ctx, Problems, ServiceError, ServiceResult};
use crate::domain::calendar::SiteCalendar;
use crate::domain::kinds::BudgetPeriod;
use crate::domain::money::Quota;
use crate::msg;
use crate::records::logs::RequestLog;
use crate::service::db::org_usage::{UsageQuery, UsageSums};
use crate::service::db::{self, now_ms};

/// What to show, as typed (every field optional).
#[derive(Debug, Clone, Default)]
pub struct UsageFilter {
    /// A team's id.
    pub team: Option<String>,
    /// A member's username.
    pub member: Option<String>,
    /// A key's id.
    pub key: Option<String>,
    pub model: Option<String>,
    /// A day of the organisation's zone (`2026-11-01`), an RFC 3339 time or Unix ms; default:
    /// the start of this month.
    pub from: Option<String>,
    /// The end, included when a day; default: now.
    pub to: Option<String>,
}

/// One line of the chargeback report.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ChargebackLine {
    /// `2026-12`, in the organisation's zone.
    pub month: String,
    pub team_id: i64,
    pub team: String,
    pub member: String,
    pub model: String,
    pub requests: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cost_quota: i64,
}

/// The report, with its range and totals.
#[derive(Debug, Clone, Serialize)]
pub struct OrgUsage {
    pub lines: Vec<ChargebackLine>,
    pub requests: i64,
    pub cost_quota: i64,
    /// The zone the months are in.
    pub zone: String,
    pub from_ms: i64,
    pub to_ms: i64,
}

fn given(text: &Option<String>) -> Option<&str> {
    text.as_deref().map(str::trim).filter(|t| !t.is_empty())
}

/// The organisation's usage as `caller` may see it.
pub async fn usage(
    ctx: &Ctx,
    caller: &Caller,
    slug: &str,
    filter: &UsageFilter,
) -> ServiceResult<OrgUsage> {
    let access = access(ctx, caller, slug).await?;
    let org = access.org().clone();
    let zone = if org.timezone.is_empty() {
        super::options::current(&ctx.db).await?.timezone
    } else {
        org.timezone.clone()
    };
    let calendar = SiteCalendar::new(&zone);
    let now = now_ms();
    let mut problems = Problems::default();
    let from = match given(&filter.from) {
        None => Some(calendar.budget_window(BudgetPeriod::Monthly, now).0),
        Some(text) => problems.check(
            calendar
                .bound_ms(text, false)
                .ok_or_else(|| ServiceError::invalid("from", msg!("usage-bad-time"))),
        )?,
    };
    let to = match given(&filter.to) {
        None => Some(now + 1),
        Some(text) => problems.check(
            calendar
                .bound_ms(text, true)
                .ok_or_else(|| ServiceError::invalid("to", msg!("usage-bad-time"))),
        )?,
    };
    let team_id = match given(&filter.team) {
        None => None,
        Some(text) => problems.check(
            text.parse::<i64>()
                .ok()
                .filter(|id| access.tree.teams.iter().any(|t| t.id == *id))
                .ok_or_else(|| ServiceError::invalid("team", msg!("invite-team-invalid"))),
        )?,
    };
    let user_id = match given(&filter.member) {
        None => None,
        Some(name) => problems.check(
            access
                .tree
                .members
                .iter()
                .find(|m| m.username.eq_ignore_ascii_case(name))
                .map(|m| m.user_id)
                .ok_or_else(|| {
                    ServiceError::invalid("member", msg!("org-member-not-found", name = name))
                }),
        )?,
    };
    let token_id = match given(&filter.key) {
        None => None,
        Some(text) => problems.check(
            text.parse::<i64>()
                .map_err(|_| ServiceError::invalid("key", msg!("usage-bad-key"))),
        )?,
    };
    problems.finish()?;
    let (from, to) = (from.unwrap_or(0), to.unwrap_or(now));
    let mut query = UsageQuery {
        org_id: org.id,
        from_ms: from,
        to_ms: to,
        team_id,
        team_ids: None,
        user_id,
        token_id,
        model: given(&filter.model).map(str::to_string),
    };
    visible_to(&access, &mut query);
    let mut lines = Vec::new();
    let mut start = from;
    while start < to {
        let (month_start, month_end) = calendar.budget_window(BudgetPeriod::Monthly, start);
        let end = month_end.min(to);
        let month: String = calendar.local_time(month_start).chars().take(7).collect();
        let sums = db::org_usage::sums(
            &ctx.db,
            &UsageQuery {
                from_ms: start,
                to_ms: end,
                ..query.clone()
            },
        )
        .await?;
        lines.extend(sums.into_iter().map(|s: UsageSums| {
            ChargebackLine {
                month: month.clone(),
                team_id: s.team_id,
                team: access
                    .tree
                    .teams
                    .iter()
                    .find(|t| t.id == s.team_id)
                    .map(|t| t.name.clone())
                    .unwrap_or_else(|| format!("#{}", s.team_id)),
                member: s.username,
                model: s.model,
                requests: s.requests,
                prompt_tokens: s.prompt_tokens,
                completion_tokens: s.completion_tokens,
                cost_quota: s.cost,
            }
        }));
        if end <= start {
            break;
        }
        start = end;
    }
    Ok(OrgUsage {
        requests: lines.iter().map(|l| l.requests).sum(),
        cost_quota: lines.iter().map(|l| l.cost_quota).sum(),
        lines,
        zone: calendar.zone_name().to_string(),
        from_ms: from,
        to_ms: to,
    })
}

/// Narrows a query to what the caller may see: admins everything, managers their teams,
/// members themselves.
fn visible_to(access: &Access, query: &mut UsageQuery) {
    if access.manages_org() {
        return;
    }
    let managed: Vec<i64> = access
        .tree
        .teams
        .iter()
        .filter(|t| access.manages_team(t.id))
        .map(|t| t.id)
        .collect();
    if managed.is_empty() {
        query.user_id = access.me.as_ref().map(|me| me.user_id);
    } else {
        query.team_ids = Some(managed);
    }
}

/// What one model cost this month.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelSpend {
    pub model: String,
    pub requests: i64,
    pub cost_quota: i64,
}

/// The organisation's activity this month (in its zone) as the caller may see it: the spend
/// per model, most first, and the latest requests.
#[derive(Debug, Clone)]
pub struct Activity {
    pub models: Vec<ModelSpend>,
    pub latest: Vec<RequestLog>,
}

/// The overview's activity (see [`Activity`]), `latest` requests at most.
pub async fn activity(
    ctx: &Ctx,
    caller: &Caller,
    slug: &str,
    latest: i64,
) -> ServiceResult<Activity> {
    let access = access(ctx, caller, slug).await?;
    let zone = if access.org().timezone.is_empty() {
        super::options::current(&ctx.db).await?.timezone
    } else {
        access.org().timezone.clone()
    };
    let now = now_ms();
    let (month_start, _) = SiteCalendar::new(&zone).budget_window(BudgetPeriod::Monthly, now);
    let mut query = UsageQuery {
        org_id: access.org().id,
        from_ms: month_start,
        to_ms: now + 1,
        ..UsageQuery::default()
    };
    visible_to(&access, &mut query);
    let mut models: Vec<ModelSpend> = Vec::new();
    for sums in db::org_usage::sums(&ctx.db, &query).await? {
        match models.iter_mut().find(|m| m.model == sums.model) {
            Some(model) => {
                model.requests += sums.requests;
                model.cost_quota += sums.cost;
            }
            None => models.push(ModelSpend {
                model: sums.model,
                requests: sums.requests,
                cost_quota: sums.cost,
            }),
        }
    }
    models.sort_by(|a, b| b.cost_quota.cmp(&a.cost_quota).then(a.model.cmp(&b.model)));
    let latest = db::org_usage::latest(&ctx.db, &query, latest).await?;
    Ok(Activity { models, latest })
}

/// The chargeback report as CSV: `month,team,member,model,requests,prompt_tokens,
/// completion_tokens,cost_usd`, costs in dollars to the micro-dollar.
pub fn chargeback_csv(usage: &OrgUsage, quota_per_usd: i64) -> String {
    use crate::domain::csv::row;
    let mut text = row(&[
        "month",
        "team",
        "member",
        "model",
        "requests",
        "prompt_tokens",
        "completion_tokens",
        "cost_usd",
    ]);
    for line in &usage.lines {
        let cost = Quota(line.cost_quota).usd_string(quota_per_usd);
        text.push_str(&row(&[
            line.month.as_str(),
            line.team.as_str(),
            line.member.as_str(),
            line.model.as_str(),
            &line.requests.to_string(),
            &line.prompt_tokens.to_string(),
            &line.completion_tokens.to_string(),
            cost.trim_start_matches('$'),
        ]));
    }
    text
}
