//! Teams: a budget per period, a default cap on what each member spends, the groups their
//! keys may use, and members (some of whom manage the team).

use serde_json::{Value, json};

use super::{
    Access, Spending, TeamView, about_org, access, budget_entry, dollars, parse_budget, parse_name,
    team_change, team_view,
};
use crate::msg;
use crate::service::db::orgs::{Budget, OrgRow, TeamRow, TeamSettings};
use crate::service::{Caller, Ctx, Problems, ServiceError, ServiceResult, audit, db};

/// A team's settings; on an update, fields not given stay as they are.
#[derive(Debug, Clone, Default)]
pub struct TeamInput {
    /// Required to create; a new name to update.
    pub name: Option<String>,
    /// `daily`, `weekly`, `monthly` or `quarterly`, with `budget_usd`; empty: no budget.
    pub budget_period: Option<String>,
    pub budget_usd: Option<String>,
    /// What each member may spend per the team's period unless their own cap says; empty:
    /// no cap. Needs the team to have a budget (whose period it counts in).
    pub member_cap_usd: Option<String>,
    /// The groups the team's keys may use, comma-separated: the organisation's group and the
    /// groups the site lets people pick. Empty: the organisation's group alone.
    pub groups: Option<String>,
}

/// A member's place in a team: fields not given stay as they are (or take their defaults
/// for a new member: not a manager, the team's cap).
#[derive(Debug, Clone, Default)]
pub struct TeamMemberInput {
    pub manager: Option<bool>,
    /// `Some(None)`: back to the team's default cap.
    pub cap_usd: Option<Option<String>>,
}

fn team_fields(team: &TeamSettings) -> Value {
    let (period, quota) = super::budget_fields(team.budget);
    json!({
        "name": team.name,
        "budget_period": period,
        "budget_quota": quota,
        "member_cap_quota": team.member_cap_quota,
        "groups": team.group_names.join(","),
    })
}

fn settings_of(team: &TeamRow) -> TeamSettings {
    TeamSettings {
        name: team.name.clone(),
        budget: team.budget,
        member_cap_quota: team.member_cap_quota,
        group_names: team.group_names.clone(),
    }
}

/// The groups a team may list: the organisation's group and the ones people may pick.
/// Stored empty when the list is the organisation's group alone, so the team follows it.
async fn parse_groups(db_: &db::Db, org: &OrgRow, text: &str) -> ServiceResult<Vec<String>> {
    let mut groups: Vec<String> = Vec::new();
    for name in text.split(',').map(str::trim).filter(|g| !g.is_empty()) {
        if !groups.iter().any(|g| g == name) {
            groups.push(name.to_string());
        }
    }
    let selectable: Vec<String> = db::groups::list(db_)
        .await?
        .into_iter()
        .filter(|g| g.user_selectable)
        .map(|g| g.name)
        .collect();
    let refused: Vec<String> = groups
        .iter()
        .filter(|g| **g != org.group_name && !selectable.contains(g))
        .map(|g| format!("'{}'", crate::domain::names::quoted(g)))
        .collect();
    if !refused.is_empty() {
        return Err(ServiceError::invalid(
            "groups",
            msg!(
                "team-groups-unavailable",
                groups = refused.join(", "),
                count = refused.len()
            ),
        ));
    }
    if groups.len() == 1 && groups[0] == org.group_name {
        groups.clear();
    }
    Ok(groups)
}

/// A cap must fit in the team's budget: more than the whole team may spend means nothing.
fn check_cap(field: &'static str, cap: i64, budget: Option<Budget>) -> ServiceResult<()> {
    match budget {
        None => Err(ServiceError::invalid(field, msg!("team-cap-needs-budget"))),
        Some(budget) if cap > budget.quota => {
            Err(ServiceError::invalid(field, msg!("team-cap-over-budget")))
        }
        Some(_) => Ok(()),
    }
}

/// The team's settings after `input`, checked together: caps within the budget.
async fn settings_after(
    ctx: &Ctx,
    access: &Access,
    current: Option<&TeamRow>,
    input: &TeamInput,
) -> ServiceResult<TeamSettings> {
    let db_ = &ctx.db;
    let mut problems = Problems::default();
    let mut settings = match current {
        Some(team) => settings_of(team),
        None => TeamSettings {
            name: String::new(),
            budget: None,
            member_cap_quota: None,
            group_names: Vec::new(),
        },
    };
    match (&input.name, current) {
        (Some(text), _) => {
            if let Some(name) = problems.check(parse_name("name", text))? {
                settings.name = name;
            }
        }
        (None, None) => {
            problems.check::<()>(Err(ServiceError::invalid("name", msg!("name-empty"))))?;
        }
        (None, Some(_)) => {}
    }
    if input.budget_period.is_some() || input.budget_usd.is_some() {
        let budget = parse_budget(
            db_,
            input.budget_period.as_deref(),
            input.budget_usd.as_deref(),
            settings.budget,
        )
        .await;
        if let Some(budget) = problems.check(budget)? {
            settings.budget = budget;
        }
    }
    if let Some(text) = input.member_cap_usd.as_deref().map(str::trim) {
        settings.member_cap_quota = if text.is_empty() {
            None
        } else {
            problems.check(dollars(db_, "member_cap_usd", text).await)?
        };
    }
    if let Some(text) = &input.groups
        && let Some(groups) = problems.check(parse_groups(db_, access.org(), text).await)?
    {
        settings.group_names = groups;
    }
    problems.finish()?;
    if let Some(cap) = settings.member_cap_quota {
        check_cap("member_cap_usd", cap, settings.budget)?;
    }
    // Members' own caps must still fit the budget the team is left with.
    if let Some(team) = current {
        let over = access
            .tree
            .members_of(team.id)
            .filter_map(|m| m.cap_quota)
            .any(|cap| check_cap("budget_usd", cap, settings.budget).is_err());
        if over {
            return Err(ServiceError::invalid(
                "budget_usd",
                msg!("team-budget-under-member-caps"),
            ));
        }
    }
    Ok(settings)
}

async fn team_view_of(
    ctx: &Ctx,
    caller: &Caller,
    slug: &str,
    team_id: i64,
) -> ServiceResult<TeamView> {
    let access = access(ctx, caller, slug).await?;
    let spending = Spending::of(ctx, &access.tree).await?;
    let team = access
        .tree
        .teams
        .iter()
        .find(|t| t.id == team_id)
        .ok_or_else(|| {
            ServiceError::NotFound(msg!("team-not-found", name = team_id.to_string()))
        })?;
    Ok(team_view(&access, team, &spending))
}

pub async fn create_team(
    ctx: &Ctx,
    caller: &Caller,
    slug: &str,
    input: TeamInput,
) -> ServiceResult<TeamView> {
    let access = access(ctx, caller, slug).await?;
    access.require_manages_org()?;
    let settings = settings_after(ctx, &access, None, &input).await?;
    let org = access.org().clone();
    let id = ctx
        .write(caller, async |tx| {
            let id = db::orgs::insert_team(tx, org.id, &settings).await.map_err(
                crate::service::conflict(
                    "name",
                    msg!("team-exists", name = settings.name.as_str()),
                ),
            )?;
            tx.audit(team_change(
                "team.create",
                &org,
                (id, &settings.name),
                json!({}),
                None,
                Some(team_fields(&settings)),
            ));
            Ok(id)
        })
        .await?;
    team_view_of(ctx, caller, &org.slug, id).await
}

pub async fn update_team(
    ctx: &Ctx,
    caller: &Caller,
    slug: &str,
    team: &str,
    input: TeamInput,
) -> ServiceResult<TeamView> {
    let access = access(ctx, caller, slug).await?;
    access.require_manages_org()?;
    let current = access.team(team)?.clone();
    let settings = settings_after(ctx, &access, Some(&current), &input).await?;
    let org = access.org().clone();
    let was = settings_of(&current);
    // Each kind of change is its own entry, so a reader may look for budgets or caps alone;
    // a form sent back unchanged changes and records nothing.
    let renamed = was.name != settings.name || was.group_names != settings.group_names;
    let budget_changed = was.budget != settings.budget;
    let cap_changed = was.member_cap_quota != settings.member_cap_quota;
    if renamed || budget_changed || cap_changed {
        ctx.write(caller, async |tx| {
            db::orgs::update_team(tx, org.id, current.id, &settings)
                .await
                .map_err(crate::service::conflict(
                    "name",
                    msg!("team-exists", name = settings.name.as_str()),
                ))?;
            let team = (current.id, current.name.as_str());
            if renamed {
                let named =
                    |t: &TeamSettings| json!({ "name": t.name, "groups": t.group_names.join(",") });
                tx.audit(team_change(
                    "team.update",
                    &org,
                    team,
                    json!({}),
                    Some(named(&was)),
                    Some(named(&settings)),
                ));
            }
            if budget_changed {
                tx.audit(about_org(
                    &org,
                    json!({ "team": current.name }),
                    budget_entry(
                        "team.budget",
                        audit::team_target(org.id, current.id),
                        was.budget,
                        settings.budget,
                    ),
                ));
            }
            if cap_changed {
                tx.audit(team_change(
                    "team.cap",
                    &org,
                    team,
                    json!({}),
                    Some(json!({ "member_cap_quota": was.member_cap_quota })),
                    Some(json!({ "member_cap_quota": settings.member_cap_quota })),
                ));
            }
            Ok(())
        })
        .await?;
    }
    team_view_of(ctx, caller, &org.slug, current.id).await
}

/// Deletes a team with its memberships and its keys.
pub async fn delete_team(ctx: &Ctx, caller: &Caller, slug: &str, team: &str) -> ServiceResult<()> {
    let access = access(ctx, caller, slug).await?;
    access.require_manages_org()?;
    let team = access.team(team)?.clone();
    let org = access.org().clone();
    ctx.write(caller, async |tx| {
        let keys = db::orgs::delete_team(tx, org.id, team.id).await?;
        tx.audit(team_change(
            "team.delete",
            &org,
            (team.id, &team.name),
            json!({}),
            Some(json!({ "settings": team_fields(&settings_of(&team)), "keys_deleted": keys })),
            None,
        ));
        Ok(())
    })
    .await
}

/// A team's id by name, for edges that name teams (the command line).
pub async fn team_id(ctx: &Ctx, caller: &Caller, slug: &str, team: &str) -> ServiceResult<i64> {
    let access = access(ctx, caller, slug).await?;
    Ok(access.team(team)?.id)
}

async fn cap_units(ctx: &Ctx, team: &TeamRow, cap_usd: Option<&str>) -> ServiceResult<Option<i64>> {
    match cap_usd.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(text) => {
            let cap = dollars(&ctx.db, "cap_usd", text).await?;
            check_cap("cap_usd", cap, team.budget)?;
            Ok(Some(cap))
        }
    }
}

/// Puts a member of the organisation into a team, or changes their place in it. Admins may
/// do anything here; the team's managers may add members and set caps, not make managers.
pub async fn put_team_member(
    ctx: &Ctx,
    caller: &Caller,
    slug: &str,
    team: &str,
    username: &str,
    input: TeamMemberInput,
) -> ServiceResult<TeamView> {
    let access = access(ctx, caller, slug).await?;
    let team = access.team(team)?.clone();
    if !access.manages_team(team.id) {
        return Err(ServiceError::Forbidden(msg!("team-managers-only")));
    }
    let member = access.member_named(username).map_err(|_| {
        ServiceError::invalid(
            "username",
            msg!("org-member-not-found", name = username.trim()),
        )
    })?;
    let current = access.tree.membership(team.id, member.user_id);
    let manager = input
        .manager
        .unwrap_or_else(|| current.is_some_and(|m| m.manager));
    if manager != current.is_some_and(|m| m.manager) && !access.manages_org() {
        return Err(ServiceError::Forbidden(msg!("team-managers-by-admins")));
    }
    let cap = match &input.cap_usd {
        Some(cap) => cap_units(ctx, &team, cap.as_deref()).await?,
        None => current.and_then(|m| m.cap_quota),
    };
    let org = access.org().clone();
    let was = current.map(|m| (m.manager, m.cap_quota));
    if was == Some((manager, cap)) {
        // Nothing to change, nothing to record.
        return team_view_of(ctx, caller, &org.slug, team.id).await;
    }
    let about = json!({ "username": member.username });
    let user_id = member.user_id;
    ctx.write(caller, async |tx| {
        db::orgs::put_team_member(tx, org.id, team.id, user_id, manager, cap).await?;
        let in_team = |action, before, after| {
            team_change(
                action,
                &org,
                (team.id, &team.name),
                about.clone(),
                before,
                after,
            )
        };
        match was {
            None => tx.audit(in_team(
                "team.member.add",
                None,
                Some(json!({ "manager": manager, "cap_quota": cap })),
            )),
            Some((was_manager, was_cap)) => {
                if was_manager != manager {
                    tx.audit(in_team(
                        "team.member.manager",
                        Some(json!({ "manager": was_manager })),
                        Some(json!({ "manager": manager })),
                    ));
                }
                if was_cap != cap {
                    tx.audit(in_team(
                        "team.member.cap",
                        Some(json!({ "cap_quota": was_cap })),
                        Some(json!({ "cap_quota": cap })),
                    ));
                }
            }
        }
        Ok(())
    })
    .await?;
    team_view_of(ctx, caller, &org.slug, team.id).await
}

/// Sets a team member's own cap (`None`: back to the team's default). The member must be in
/// the team already.
pub async fn set_member_cap(
    ctx: &Ctx,
    caller: &Caller,
    slug: &str,
    team: &str,
    username: &str,
    cap_usd: Option<String>,
) -> ServiceResult<TeamView> {
    let access = access(ctx, caller, slug).await?;
    let team_row = access.team(team)?.clone();
    if !access.manages_team(team_row.id) {
        return Err(ServiceError::Forbidden(msg!("team-managers-only")));
    }
    let member = access.member_named(username)?;
    if access
        .tree
        .membership(team_row.id, member.user_id)
        .is_none()
    {
        return Err(ServiceError::NotFound(msg!(
            "team-member-not-found",
            name = member.username.as_str(),
            team = team_row.name.as_str()
        )));
    }
    put_team_member(
        ctx,
        caller,
        slug,
        team,
        username,
        TeamMemberInput {
            manager: None,
            cap_usd: Some(cap_usd),
        },
    )
    .await
}

/// Takes a member out of a team, with their keys of the team: admins, the team's managers
/// (for members who do not manage it), or the member themselves.
pub async fn remove_team_member(
    ctx: &Ctx,
    caller: &Caller,
    slug: &str,
    team: &str,
    username: &str,
) -> ServiceResult<()> {
    let access = access(ctx, caller, slug).await?;
    let team = access.team(team)?.clone();
    let member = access.member_named(username)?.clone();
    let membership = access
        .tree
        .membership(team.id, member.user_id)
        .cloned()
        .ok_or_else(|| {
            ServiceError::NotFound(msg!(
                "team-member-not-found",
                name = member.username.as_str(),
                team = team.name.as_str()
            ))
        })?;
    let themselves = access
        .me
        .as_ref()
        .is_some_and(|me| me.user_id == member.user_id);
    let allowed =
        access.manages_org() || themselves || (access.manages_team(team.id) && !membership.manager);
    if !allowed {
        return Err(ServiceError::Forbidden(msg!("team-managers-only")));
    }
    let org = access.org().clone();
    ctx.write(caller, async |tx| {
        let keys = db::orgs::remove_team_member(tx, org.id, team.id, member.user_id).await?;
        tx.audit(team_change(
            "team.member.remove",
            &org,
            (team.id, &team.name),
            json!({ "username": member.username }),
            Some(json!({
                "manager": membership.manager,
                "cap_quota": membership.cap_quota,
                "keys_deleted": keys,
            })),
            None,
        ));
        Ok(())
    })
    .await
}
