use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime, PrimitiveDateTime, Time};

use super::{
    Caller, Ctx, Problems, ServiceError, ServiceResult, audit, decimal_err, name_err, usd_to_quota,
};
use crate::domain::calendar::SiteCalendar;
use crate::domain::ip_allow::IpAllowList;
use crate::domain::kinds::{BudgetPeriod, Status};
use crate::domain::money::MicroUsd;
use crate::domain::rate_limits::RateLimits;
use crate::domain::{names, secret_key};
use crate::msg;
use crate::records::audit::AuditEntry;
use crate::service::db::Tx;
use crate::service::db::tokens::{BudgetSetting, NewToken, TokenPatch, TokenRow};
use crate::service::db::users::UserRow;
use crate::service::db::{self, Db, DbError};
use crate::service::rate_limits::RateLimitInput;

#[derive(Debug, Clone, Default)]
pub struct CreateToken {
    pub username: String,
    pub name: String,
    /// The key's own limit in dollars; without it the key is limited only by the user's balance.
    pub quota_usd: Option<String>,
    /// `2027-01-01` (start of that day, UTC) or an RFC 3339 time.
    pub expires: Option<String>,
    /// Comma-separated model names; empty allows every model of the user's group.
    pub models: Option<String>,
    /// Comma-separated IPs or CIDR ranges; empty allows every address.
    pub allow_ips: Option<String>,
    /// A group the owner may pick (see [`key_group`]); empty or absent: the owner's group.
    pub group: Option<String>,
    /// `daily`, `weekly` or `monthly`, with `budget_usd`: what the key may spend per period
    /// (in the site's time zone). Empty or absent: no periodic budget.
    pub budget_period: Option<String>,
    pub budget_usd: Option<String>,
    /// The one-time key of the form this came from: the same form sent twice (a double click)
    /// makes one key, and the second is told so.
    pub form_key: Option<String>,
    /// A team key: the organisation's slug, with `team`. The key spends the organisation's
    /// wallet through its team, whose member the owner must be.
    pub org: Option<String>,
    /// The team's id (as text, as forms send it), with `org`. Fixed once the key is made.
    pub team: Option<String>,
    /// The key's own rate limits (absent or empty: its group's, if any).
    pub rate_limits: RateLimitInput,
}

#[derive(Debug, Clone, Default)]
pub struct UpdateToken {
    pub name: Option<String>,
    pub status: Option<String>,
    /// `Some(None)` removes the expiry.
    pub expires: Option<Option<String>>,
    /// Sets a limit (and makes the key limited).
    pub quota_usd: Option<String>,
    pub unlimited: Option<bool>,
    pub models: Option<String>,
    pub allow_ips: Option<String>,
    /// Empty: back to the owner's group.
    pub group: Option<String>,
    /// A new period (empty: no budget); a new period starts counting afresh.
    pub budget_period: Option<String>,
    /// A new amount per period; with no period given, the key's current one.
    pub budget_usd: Option<String>,
    /// The key's own rate limits: a field absent stays, an empty one is cleared.
    pub rate_limits: RateLimitInput,
}

/// Parses `YYYY-MM-DD` or RFC 3339 into Unix milliseconds.
pub fn parse_expiry(text: &str) -> ServiceResult<i64> {
    let text = text.trim();
    let time = if let Ok(date) = Date::parse(text, format_description!("[year]-[month]-[day]")) {
        PrimitiveDateTime::new(date, Time::MIDNIGHT).assume_utc()
    } else {
        OffsetDateTime::parse(text, &Rfc3339)
            .map_err(|_| ServiceError::invalid("expires", msg!("date-invalid", value = text)))?
    };
    Ok((time.unix_timestamp_nanos() / 1_000_000) as i64)
}

fn parse_models(text: &str) -> ServiceResult<Vec<String>> {
    names::list(text, names::model_name).map_err(name_err("models"))
}

fn parse_ips(text: &str) -> ServiceResult<String> {
    IpAllowList::parse(text)
        .map(|l| l.to_list_string())
        .map_err(|e| {
            let values =
                e.0.iter()
                    .map(|bad| format!("'{}'", crate::domain::names::quoted(bad)))
                    .collect::<Vec<_>>()
                    .join(", ");
            ServiceError::invalid(
                "allow_ips",
                msg!("ip-range-invalid", values = values, count = e.0.len()),
            )
        })
}

async fn quota_units(db: &Db, text: &str) -> ServiceResult<i64> {
    dollar_units(db, "quota_usd", text).await
}

async fn dollar_units(db: &Db, field: &'static str, text: &str) -> ServiceResult<i64> {
    let usd = MicroUsd::parse(text).map_err(decimal_err(field))?;
    let options = super::options::current(db).await?;
    Ok(usd_to_quota(field, usd, options.quota_per_usd())?.0)
}

/// A budget from its period and amount. No period (empty) is no budget; a period needs a
/// positive amount. `current` is the key's budget: a field not given (`None`) keeps its part
/// of it, while an empty amount is no amount.
async fn parse_budget(
    db: &Db,
    period: Option<&str>,
    usd: Option<&str>,
    current: Option<(BudgetPeriod, i64)>,
) -> ServiceResult<BudgetSetting> {
    let period = match period.map(str::trim) {
        Some("") => None,
        Some(text) => Some(BudgetPeriod::parse(text).ok_or_else(|| {
            ServiceError::invalid(
                "budget_period",
                msg!(
                    "choice-invalid",
                    value = text,
                    choices = BudgetPeriod::choices()
                ),
            )
        })?),
        None => current.map(|(period, _)| period),
    };
    let quota = match usd.map(str::trim) {
        Some("") => None,
        Some(text) => Some(dollar_units(db, "budget_usd", text).await?),
        None => current.map(|(_, quota)| quota),
    };
    match (period, quota) {
        (None, None) => Ok(None),
        // Only the period was cleared: the budget goes, whatever its amount was.
        (None, Some(_)) if usd.is_none() => Ok(None),
        (None, Some(_)) => Err(ServiceError::invalid(
            "budget_period",
            msg!("key-budget-needs-period"),
        )),
        (Some(period), Some(quota)) if quota > 0 => Ok(Some((period, quota))),
        (Some(_), _) => Err(ServiceError::invalid(
            "budget_usd",
            msg!("key-budget-needs-amount"),
        )),
    }
}

/// Places a key's budget in the period that holds now (site time zone): spending recorded
/// for an earlier period is not spending of this one.
fn in_current_period(mut row: TokenRow, calendar: &SiteCalendar, now_ms: i64) -> TokenRow {
    if let Some(budget) = &mut row.budget {
        let (start, end) = calendar.budget_window(budget.period, now_ms);
        if budget.window != start {
            budget.spent = 0;
            budget.window = start;
        }
        budget.window_end = end;
    }
    row
}

async fn site_calendar(db: &Db) -> ServiceResult<SiteCalendar> {
    Ok(SiteCalendar::new(
        &super::options::current(db).await?.timezone,
    ))
}

/// The group a key may use: empty for the owner's own, or one the admin made user-selectable
/// (an administrator may give any group that exists). The owner's group named explicitly is
/// stored as empty, so the key follows the owner when their group changes.
pub async fn key_group(
    ctx: &Ctx,
    caller: &Caller,
    owner: &UserRow,
    text: &str,
) -> ServiceResult<String> {
    let name = text.trim();
    if name.is_empty() || name == owner.group {
        return Ok(String::new());
    }
    match db::groups::find(&ctx.db, name).await? {
        Some(group) if group.user_selectable || caller.is_admin() => Ok(group.name),
        _ => Err(ServiceError::invalid(
            "group",
            msg!("key-group-unavailable", group = name),
        )),
    }
}

/// Refuses allowed models that the key's group cannot use (the relay would refuse them on
/// every request): each name is checked as the relay routes it — names a channel lists, names
/// a pattern channel (`gpt-*`) serves, aliases and dated names of those.
async fn check_models_served(ctx: &Ctx, group: &str, models: &[String]) -> ServiceResult<()> {
    if models.is_empty() {
        return Ok(());
    }
    let rows = super::catalog::rows(ctx).await?;
    let (snapshot, _) =
        crate::snapshot::Snapshot::from_rows(rows, &crate::snapshot::Snapshot::default());
    let unserved: Vec<String> = models
        .iter()
        .filter(|model| !snapshot.group_serves(group, model))
        .map(|model| format!("'{}'", names::quoted(model)))
        .collect();
    if unserved.is_empty() {
        return Ok(());
    }
    Err(ServiceError::invalid(
        "models",
        msg!(
            "key-models-not-served",
            models = unserved.join(", "),
            count = unserved.len(),
            group = group
        ),
    ))
}

/// The groups a person in `owner_group` may pick for their keys: their own first, then the
/// selectable ones.
pub async fn selectable_groups(
    ctx: &Ctx,
    owner_group: &str,
) -> ServiceResult<Vec<db::groups::GroupRow>> {
    let mut groups: Vec<db::groups::GroupRow> = db::groups::list(&ctx.db)
        .await?
        .into_iter()
        .filter(|g| g.name == owner_group || g.user_selectable)
        .collect();
    groups.sort_by_key(|g| g.name != owner_group);
    Ok(groups)
}

/// The team a key is made for, when it is a team key: both `org` and `team` given, the team
/// one of the organisation's, the owner one of its members (see [`super::orgs::key_team`]).
async fn key_team(
    ctx: &Ctx,
    caller: &Caller,
    owner: &UserRow,
    input: &CreateToken,
) -> ServiceResult<Option<super::orgs::KeyTeam>> {
    fn given(text: &Option<String>) -> Option<&str> {
        text.as_deref().map(str::trim).filter(|t| !t.is_empty())
    }
    match (given(&input.org), given(&input.team)) {
        (None, None) => Ok(None),
        (Some(_), None) => Err(ServiceError::invalid("team", msg!("team-key-needs-team"))),
        (None, Some(_)) => Err(ServiceError::invalid("org", msg!("team-key-needs-org"))),
        (Some(org), Some(team)) => Ok(Some(
            super::orgs::key_team(ctx, caller, owner.id, org, team).await?,
        )),
    }
}

/// The group a team key uses: one of its team's (default: the organisation's group), always
/// stored by name, so the key never follows its owner's own group.
async fn team_key_group(
    ctx: &Ctx,
    team: &super::orgs::KeyTeam,
    text: &str,
) -> ServiceResult<String> {
    let name = text.trim();
    let name = if name.is_empty() {
        team.org.group_name.as_str()
    } else {
        name
    };
    let groups = team.groups(&ctx.db).await?;
    if groups.iter().any(|g| g == name) {
        Ok(name.to_string())
    } else {
        Err(ServiceError::invalid(
            "group",
            msg!(
                "team-key-group-unavailable",
                group = name,
                team = team.team.name.as_str(),
                groups = groups.join(", ")
            ),
        ))
    }
}

/// The user a key is made for: a user makes their own (naming anyone else finds nobody); an
/// administrator names the user.
async fn key_owner(ctx: &Ctx, caller: &Caller, username: &str) -> ServiceResult<UserRow> {
    match caller.owner() {
        Some(own) => {
            let user = super::users::find_id(&ctx.db, own).await?;
            if !username.is_empty() && username != user.username {
                return Err(ServiceError::NotFound(msg!(
                    "user-not-found",
                    name = username
                )));
            }
            Ok(user)
        }
        None => super::users::find(&ctx.db, username).await,
    }
}

/// Creates a key and returns it with the plain key, which is not stored and cannot be shown
/// again. A user makes keys for their own account; an administrator for anyone's.
pub async fn create(
    ctx: &Ctx,
    caller: &Caller,
    input: CreateToken,
) -> ServiceResult<(TokenRow, String)> {
    let user = key_owner(ctx, caller, &input.username).await?;
    let db = &ctx.db;
    // People making their own keys are held to the site's cap; an administrator is not.
    if caller.owner().is_some() {
        let cap = super::options::current(db).await?.max_keys_per_user;
        let held = db::tokens::list_for_user(db, user.id).await?.len();
        if cap > 0 && u64::try_from(held).unwrap_or(u64::MAX) >= cap {
            return Err(ServiceError::Forbidden(msg!("key-cap-reached", max = cap)));
        }
    }
    // Every wrong value is reported at once.
    let mut problems = Problems::default();
    let name = problems.check(names::label("a key name", &input.name).map_err(name_err("name")))?;
    let expiry = input
        .expires
        .as_deref()
        .map(|text| match parse_expiry(text) {
            Ok(at) if at <= db::now_ms() => {
                Err(ServiceError::invalid("expires", msg!("expiry-in-the-past")))
            }
            other => other,
        })
        .transpose();
    let expires_at = problems.check(expiry)?.flatten();
    let limit = match &input.quota_usd {
        Some(text) => quota_units(db, text).await.map(|units| (false, units)),
        None => Ok((true, 0)),
    };
    let limit = problems.check(limit)?;
    let allowed_models = problems.check(input.models.as_deref().map(parse_models).transpose())?;
    let allowed_ips = problems.check(input.allow_ips.as_deref().map(parse_ips).transpose())?;
    let team = problems
        .check(key_team(ctx, caller, &user, &input).await)?
        .flatten();
    let group = match &team {
        Some(team) => {
            let group = team_key_group(ctx, team, input.group.as_deref().unwrap_or("")).await;
            problems.check(group)?
        }
        None => problems
            .check(key_group(ctx, caller, &user, input.group.as_deref().unwrap_or("")).await)?,
    };
    if let (Some(Some(models)), Some(group)) = (&allowed_models, &group) {
        let serving_group = if group.is_empty() { &user.group } else { group };
        problems.check(check_models_served(ctx, serving_group, models).await)?;
    }
    let budget = problems.check(
        parse_budget(
            db,
            input.budget_period.as_deref(),
            input.budget_usd.as_deref(),
            None,
        )
        .await,
    )?;
    let rate_limits = problems.check(input.rate_limits.applied_to(RateLimits::NONE))?;
    problems.finish()?;
    let (Some(name), Some((unlimited, remaining_quota)), Some(allowed_models), Some(allowed_ips)) =
        (name, limit, allowed_models, allowed_ips)
    else {
        return Err(ServiceError::invalid("name", msg!("name-empty")));
    };
    let allowed_models = allowed_models.unwrap_or_default();
    let allowed_ips = allowed_ips.unwrap_or_default();
    let form_key = input.form_key.filter(|key| !key.is_empty());
    if form_key.as_deref().is_some_and(|key| {
        key.len() > 64
            || !key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    }) {
        return Err(ServiceError::invalid("name", msg!("key-form-expired")));
    }
    let secret = secret_key::generate(secret_key::API_KEY_PREFIX);
    let token = NewToken {
        user_id: user.id,
        name,
        key_hash: secret.hash,
        key_display: secret.display,
        expires_at,
        unlimited,
        remaining_quota,
        allowed_models,
        allowed_ips,
        group: group.unwrap_or_default(),
        budget: budget.flatten(),
        org_id: team.as_ref().map_or(0, |t| t.org.id),
        team_id: team.as_ref().map_or(0, |t| t.team.id),
        rate_limits: rate_limits.unwrap_or_default(),
        form_key,
    };
    let team_label = team
        .as_ref()
        .map(|t| (t.org.slug.clone(), t.team.name.clone()));
    let id = ctx
        .write(caller, async |tx| {
            let id = db::tokens::insert(tx, &token).await.map_err(|e| match e {
                DbError::Conflict(_) if e.is_conflict_on("form") => ServiceError::Conflict {
                    field: None,
                    message: msg!("key-form-already-sent"),
                },
                other => ServiceError::from(other),
            })?;
            note_key_change(
                tx,
                caller,
                user.id,
                audit::change(
                    "key.create",
                    format!("key:{id}"),
                    None,
                    Some(match &team_label {
                        Some((org, team)) => serde_json::json!({
                            "user": user.username, "name": token.name, "org": org, "team": team,
                            "group": token.group,
                        }),
                        None => serde_json::json!({ "user": user.username, "name": token.name }),
                    }),
                    &[],
                ),
            );
            Ok(id)
        })
        .await?;
    Ok((get(ctx, caller, id).await?, secret.plain))
}

/// A key by id: a user's own, or any for an administrator. Another user's key is not found.
pub async fn get(ctx: &Ctx, caller: &Caller, id: i64) -> ServiceResult<TokenRow> {
    let row = db::tokens::find(&ctx.db, id, caller.owner())
        .await?
        .ok_or_else(|| ServiceError::NotFound(msg!("key-not-found", id = id)))?;
    Ok(in_current_period(
        row,
        &site_calendar(&ctx.db).await?,
        db::now_ms(),
    ))
}

/// A user's keys: the caller's own, or (for an administrator) the named user's.
pub async fn list_for_user(
    ctx: &Ctx,
    caller: &Caller,
    username: &str,
) -> ServiceResult<Vec<TokenRow>> {
    let user = key_owner(ctx, caller, username).await?;
    let calendar = site_calendar(&ctx.db).await?;
    let now = db::now_ms();
    Ok(db::tokens::list_for_user(&ctx.db, user.id)
        .await?
        .into_iter()
        .map(|row| in_current_period(row, &calendar, now))
        .collect())
}

pub async fn update(
    ctx: &Ctx,
    caller: &Caller,
    id: i64,
    input: UpdateToken,
) -> ServiceResult<TokenRow> {
    let key = get(ctx, caller, id).await?;
    let group = match &input.group {
        // A team key keeps its team (fixed at creation) and picks among the team's groups.
        Some(text) if key.team_id != 0 => {
            let team = team_of_key(ctx, &key).await?;
            Some(team_key_group(ctx, &team, text).await?)
        }
        Some(text) => {
            let owner = super::users::find_id(&ctx.db, key.user_id).await?;
            Some(key_group(ctx, caller, &owner, text).await?)
        }
        None => None,
    };
    let mut patch = TokenPatch {
        group,
        name: input
            .name
            .map(|n| names::label("a key name", &n).map_err(name_err("name")))
            .transpose()?,
        status: input
            .status
            .map(|s| {
                Status::parse(&s).ok_or_else(|| {
                    ServiceError::invalid(
                        "status",
                        msg!(
                            "choice-invalid",
                            value = s.as_str(),
                            choices = Status::choices()
                        ),
                    )
                })
            })
            .transpose()?,
        unlimited: input.unlimited,
        allowed_models: input.models.as_deref().map(parse_models).transpose()?,
        allowed_ips: input.allow_ips.as_deref().map(parse_ips).transpose()?,
        ..TokenPatch::default()
    };
    if patch.allowed_models.is_some() || patch.group.is_some() {
        // The models the key will allow, checked against the group it will use.
        let models = patch.allowed_models.as_ref().unwrap_or(&key.allowed_models);
        let group = patch.group.as_ref().unwrap_or(&key.group);
        let serving_group = if group.is_empty() {
            super::users::find_id(&ctx.db, key.user_id).await?.group
        } else {
            group.clone()
        };
        check_models_served(ctx, &serving_group, models).await?;
    }
    if let Some(expires) = input.expires {
        patch.expires_at = Some(expires.as_deref().map(parse_expiry).transpose()?);
    }
    if input.budget_period.is_some() || input.budget_usd.is_some() {
        patch.budget = Some(
            parse_budget(
                &ctx.db,
                input.budget_period.as_deref(),
                input.budget_usd.as_deref(),
                key.budget.map(|b| (b.period, b.quota)),
            )
            .await?,
        );
    }
    if !input.rate_limits.is_empty() {
        patch.rate_limits = Some(input.rate_limits.applied_to(key.rate_limits)?);
    }
    if let Some(text) = &input.quota_usd {
        if input.unlimited == Some(true) {
            return Err(ServiceError::invalid(
                "quota_usd",
                msg!("key-quota-and-unlimited"),
            ));
        }
        patch.remaining_quota = Some(quota_units(&ctx.db, text).await?);
        patch.unlimited = Some(false);
    }
    let owner = caller.owner();
    let before = get(ctx, caller, id).await?;
    let updated = ctx
        .write(caller, async |tx| {
            let updated = db::tokens::update(tx, id, owner, &patch).await?;
            let after = db::tokens::find_in(tx, id).await?;
            note_key_change(
                tx,
                caller,
                before.user_id,
                audit::change(
                    "key.update",
                    format!("key:{id}"),
                    Some(audit::fields::token(&before)),
                    after.as_ref().map(audit::fields::token),
                    &[],
                ),
            );
            Ok(updated)
        })
        .await?;
    if !updated {
        return Err(ServiceError::NotFound(msg!("key-not-found", id = id)));
    }
    get(ctx, caller, id).await
}

/// A team key's organisation and team as they are now (the key's owner is a member of the
/// team while the key exists: leaving the team deletes it).
async fn team_of_key(ctx: &Ctx, key: &TokenRow) -> ServiceResult<super::orgs::KeyTeam> {
    let (_, slug, _) = super::orgs::team_labels(ctx, &[key.team_id])
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| ServiceError::NotFound(msg!("key-not-found", id = key.id)))?;
    super::orgs::key_team(
        ctx,
        &Caller::System,
        key.user_id,
        &slug,
        &key.team_id.to_string(),
    )
    .await
}

/// Keys as people see them, with each team key's organisation and team named.
pub async fn views(ctx: &Ctx, rows: &[TokenRow]) -> ServiceResult<Vec<super::views::TokenView>> {
    let quota_per_usd = super::options::quota_per_usd(ctx).await?;
    let team_ids: Vec<i64> = rows.iter().map(|r| r.team_id).collect();
    let labels = super::orgs::team_labels(ctx, &team_ids).await?;
    Ok(rows
        .iter()
        .map(|row| {
            let view = super::views::TokenView::new(row, quota_per_usd);
            match labels
                .iter()
                .find(|(team_id, _, _)| *team_id == row.team_id)
            {
                Some((_, org, team)) => view.in_team(org, team),
                None => view,
            }
        })
        .collect())
}

/// One key as people see it (see [`views`]).
pub async fn view(ctx: &Ctx, row: &TokenRow) -> ServiceResult<super::views::TokenView> {
    let mut views = views(ctx, std::slice::from_ref(row)).await?;
    views
        .pop()
        .ok_or_else(|| ServiceError::NotFound(msg!("key-not-found", id = row.id)))
}

pub async fn delete(ctx: &Ctx, caller: &Caller, id: i64) -> ServiceResult<()> {
    let owner = caller.owner();
    let before = get(ctx, caller, id).await?;
    let deleted = ctx
        .write(caller, async |tx| {
            let deleted = db::tokens::delete(tx, id, owner).await?;
            note_key_change(
                tx,
                caller,
                before.user_id,
                audit::change(
                    "key.delete",
                    format!("key:{id}"),
                    Some(audit::fields::token(&before)),
                    None,
                    &[],
                ),
            );
            Ok(deleted)
        })
        .await?;
    if !deleted {
        return Err(ServiceError::NotFound(msg!("key-not-found", id = id)));
    }
    Ok(())
}

/// A key change is audited when an administrator (or the command line) changes another
/// person's key; a person's change of their own keys is not.
fn note_key_change(tx: &mut Tx, caller: &Caller, owner_id: i64, entry: AuditEntry) {
    if caller.account_id() == Some(owner_id) {
        tx.own_records();
    } else {
        tx.audit(entry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_expiry_dates() {
        assert_eq!(parse_expiry("2027-01-01").unwrap(), 1_798_761_600_000);
        assert_eq!(
            parse_expiry("2027-01-01T00:00:01Z").unwrap(),
            1_798_761_601_000
        );
        assert!(parse_expiry("next tuesday").is_err());
    }
}
