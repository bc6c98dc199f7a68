//! Reads the organisation pages need beyond [`super::show`]: what each team and member spent
//! this period (and the last seven days, for how long the wallet lasts), the teams a person
//! may make keys for, ownership offered to them, and the keys a team's deletion stops.

use super::{BudgetUse, Sight, access, calendar_of};
use crate::domain::kinds::BudgetPeriod;
use crate::service::{Caller, Ctx, ServiceError, ServiceResult, db};

/// The days the recent rate of spending is averaged over.
pub const RECENT_DAYS: i64 = 7;

/// What an organisation's team keys spent in one period (from the request log), as far as
/// the caller sees it: all of it, their teams' or their own (see [`Sight`]).
#[derive(Debug, Clone, Default)]
pub struct OrgSpend {
    pub sight: Sight,
    /// When the period began (UTC ms) in the organisation's zone.
    pub period_start: i64,
    /// (team id, spent units), every team that spent.
    pub by_team: Vec<(i64, i64)>,
    /// (user id, spent units) over all teams.
    pub by_member: Vec<(i64, i64)>,
    /// (team id, user id, spent units).
    pub by_team_member: Vec<(i64, i64, i64)>,
    pub total: i64,
    /// What the last [`RECENT_DAYS`] days spent.
    pub recent: i64,
}

impl OrgSpend {
    pub fn of_team(&self, team_id: i64) -> i64 {
        self.by_team
            .iter()
            .find(|(id, _)| *id == team_id)
            .map_or(0, |(_, spent)| *spent)
    }

    pub fn of_member(&self, user_id: i64) -> i64 {
        self.by_member
            .iter()
            .find(|(id, _)| *id == user_id)
            .map_or(0, |(_, spent)| *spent)
    }

    pub fn of_team_member(&self, team_id: i64, user_id: i64) -> i64 {
        self.by_team_member
            .iter()
            .find(|(t, u, _)| *t == team_id && *u == user_id)
            .map_or(0, |(_, _, spent)| *spent)
    }
}

/// The period the organisation's pages report: its budget's, else the month.
pub fn reported_period(org_budget: Option<&BudgetUse>) -> BudgetPeriod {
    org_budget.map_or(BudgetPeriod::Monthly, |b| b.period)
}

/// What the organisation's team keys spent in the current `period` (in its zone; default:
/// its budget's period, else the month), per team and member, and over the last seven days.
/// For its members and platform administrators, each seeing what [`Sight`] lets them.
pub async fn spending(
    ctx: &Ctx,
    caller: &Caller,
    slug: &str,
    period: Option<BudgetPeriod>,
) -> ServiceResult<OrgSpend> {
    let access = access(ctx, caller, slug).await?;
    let org = access.org();
    let calendar = calendar_of(&ctx.db, org).await?;
    let now = db::now_ms();
    let period = period
        .or(org.budget.map(|b| b.period))
        .unwrap_or(BudgetPeriod::Monthly);
    let period_start = calendar.budget_window(period, now).0;
    let recent_start = now - RECENT_DAYS * 86_400_000;
    let period_rows = db::org_reads::spent_since(&ctx.db, org.id, period_start).await?;
    let recent = db::org_reads::spent_since(&ctx.db, org.id, recent_start)
        .await?
        .iter()
        .filter(|(team_id, user_id, _)| access.sees_spend_of(*team_id, *user_id))
        .map(|(_, _, spent)| spent)
        .sum();
    let mut spend = OrgSpend {
        sight: access.sight(),
        period_start,
        recent,
        ..OrgSpend::default()
    };
    for (team_id, user_id, spent) in period_rows {
        if spent == 0 || !access.sees_spend_of(team_id, user_id) {
            continue;
        }
        spend.total += spent;
        spend.by_team_member.push((team_id, user_id, spent));
        match spend.by_team.iter_mut().find(|(id, _)| *id == team_id) {
            Some(entry) => entry.1 += spent,
            None => spend.by_team.push((team_id, spent)),
        }
        match spend.by_member.iter_mut().find(|(id, _)| *id == user_id) {
            Some(entry) => entry.1 += spent,
            None => spend.by_member.push((user_id, spent)),
        }
    }
    spend
        .by_team
        .sort_by_key(|entry| std::cmp::Reverse(entry.1));
    spend
        .by_member
        .sort_by_key(|entry| std::cmp::Reverse(entry.1));
    Ok(spend)
}

/// A team the caller may make keys for.
#[derive(Debug, Clone)]
pub struct MyTeam {
    pub org_slug: String,
    pub org_name: String,
    pub team_id: i64,
    pub team_name: String,
    pub budget: Option<BudgetUse>,
    /// The caller's cap in the team (absent: none).
    pub cap: Option<BudgetUse>,
}

/// The teams the caller is in, in every organisation they belong to.
pub async fn my_teams(ctx: &Ctx, caller: &Caller) -> ServiceResult<Vec<MyTeam>> {
    let me = caller.own_account()?;
    let mut found = Vec::new();
    for org in super::list_mine(ctx, caller).await? {
        let view = super::show(ctx, caller, &org.slug).await?;
        for team in view.teams {
            if let Some(mine) = team.members.iter().find(|m| m.user_id == me) {
                found.push(MyTeam {
                    org_slug: view.slug.clone(),
                    org_name: view.name.clone(),
                    team_id: team.id,
                    cap: mine.cap.clone(),
                    team_name: team.name,
                    budget: team.budget,
                });
            }
        }
    }
    Ok(found)
}

/// An organisation whose owner offered it to the caller.
#[derive(Debug, Clone)]
pub struct OwnershipOffer {
    pub slug: String,
    pub name: String,
    pub owner: Option<String>,
}

/// The organisations offered to the caller, waiting for them to accept.
pub async fn offers_to_me(ctx: &Ctx, caller: &Caller) -> ServiceResult<Vec<OwnershipOffer>> {
    let me = caller.own_account()?;
    let mut offers = Vec::new();
    for (org, _) in db::orgs::list_of_user(&ctx.db, me).await? {
        if org.pending_owner == me {
            let view = super::show(ctx, caller, &org.slug).await?;
            offers.push(OwnershipOffer {
                slug: view.slug,
                name: view.name,
                owner: view.owner,
            });
        }
    }
    Ok(offers)
}

/// A team key, as the page deleting its team names it.
#[derive(Debug, Clone)]
pub struct TeamKey {
    pub id: i64,
    pub name: String,
    pub username: String,
}

/// The keys that stop when the team is deleted: for those who may delete it.
pub async fn team_keys(
    ctx: &Ctx,
    caller: &Caller,
    slug: &str,
    team_id: i64,
) -> ServiceResult<Vec<TeamKey>> {
    let access = access(ctx, caller, slug).await?;
    access.require_manages_org()?;
    if !access.tree.teams.iter().any(|t| t.id == team_id) {
        return Err(ServiceError::NotFound(crate::msg!(
            "team-not-found",
            name = team_id.to_string()
        )));
    }
    let rows = db::org_reads::team_keys(&ctx.db, access.org().id, team_id).await?;
    Ok(rows
        .into_iter()
        .map(|row| TeamKey {
            id: row.id,
            username: access
                .tree
                .member(row.user_id)
                .map(|m| m.username.clone())
                .unwrap_or_default(),
            name: row.name,
        })
        .collect())
}
