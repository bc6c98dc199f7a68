//! Organisations: a shared wallet, an optional budget per period, members with a role (one
//! owner, admins, members) and teams whose keys spend the wallet (see migration 0020).
//!
//! Who may do what is decided here, never by the caller's edge:
//! - someone outside an organisation is told it does not exist (its name is not confirmed);
//! - members read it; managers of a team manage that team's members and caps;
//! - admins and the owner manage everything in it; only the owner deletes it or hands it on;
//! - platform administrators (and the command line) may do all of that, and alone set its
//!   group, put people in it directly and change its wallet.
//!
//! Every write notes `Change::Org` (the relay re-reads the whole organisation) and describes
//! itself for the audit log, which keeps it when the caller is audited.

mod console;
mod history;
mod members;
mod reads;
mod sight;
mod teams;
mod wallet;

pub use console::{CONSOLE_PAGE_ROWS, ConsoleOrg, ConsoleOrgs, console_list};
pub use history::{FieldChange, HistoryQuery, OrgChange, OrgHistory, history};
pub use members::{AddMember, add_member, leave, remove_member, update_member};
pub use reads::*;
pub use sight::Sight;
pub use teams::{
    TeamInput, TeamMemberInput, create_team, delete_team, put_team_member, remove_team_member,
    set_member_cap, team_id, update_team,
};
pub use wallet::{WalletChanged, adjust_wallet, ledger};

use serde::Serialize;
use serde_json::{Map, Value, json};

use super::{Caller, Ctx, Problems, ServiceError, ServiceResult, audit, decimal_err};
use crate::domain::calendar::{SiteCalendar, is_zone};
use crate::domain::kinds::{BudgetPeriod, OrgRole};
use crate::domain::money::{MicroUsd, Quota};
use crate::msg;
use crate::records::audit::AuditEntry;
use crate::service::db::orgs::{
    Budget, NewOrg, OrgMemberRow, OrgRow, OrgTree, ScopeWindow, TeamMemberRow, TeamRow,
};
use crate::service::db::{self, Db, DbError, ledger::NewEntry};
use crate::service::views::timestamp;

/// The longest organisation or team name.
const MAX_NAME_CHARS: usize = 100;

/// A slug that names a page of its own (`/orgs/new`), so no organisation may take it.
const RESERVED_SLUGS: &[&str] = &["new"];

/// What the caller is to an organisation.
pub(crate) struct Access {
    pub(crate) tree: OrgTree,
    /// The caller's own membership (None: a platform administrator from outside).
    pub(crate) me: Option<OrgMemberRow>,
    /// A platform administrator or the command line.
    pub(crate) platform: bool,
}

impl Access {
    pub(crate) fn org(&self) -> &OrgRow {
        &self.tree.org
    }

    fn role(&self) -> Option<OrgRole> {
        self.me.as_ref().map(|m| m.role)
    }

    fn is_owner(&self) -> bool {
        self.role() == Some(OrgRole::Owner)
    }

    /// Admins, the owner and platform administrators manage the whole organisation.
    pub(crate) fn manages_org(&self) -> bool {
        self.platform || matches!(self.role(), Some(OrgRole::Owner | OrgRole::Admin))
    }

    pub(crate) fn require_manages_org(&self) -> ServiceResult<()> {
        if self.manages_org() {
            Ok(())
        } else {
            Err(ServiceError::Forbidden(msg!("org-admins-only")))
        }
    }

    /// Whether the caller manages the team: as one who manages the organisation, or as one of
    /// the team's managers.
    pub(crate) fn manages_team(&self, team_id: i64) -> bool {
        self.manages_org()
            || self.me.as_ref().is_some_and(|me| {
                self.tree
                    .membership(team_id, me.user_id)
                    .is_some_and(|m| m.manager)
            })
    }

    fn team(&self, name: &str) -> ServiceResult<&TeamRow> {
        self.tree
            .team_named(name.trim())
            .ok_or_else(|| ServiceError::NotFound(msg!("team-not-found", name = name.trim())))
    }

    fn member_named(&self, username: &str) -> ServiceResult<&OrgMemberRow> {
        let wanted = username.trim().to_ascii_lowercase();
        self.tree
            .members
            .iter()
            .find(|m| m.username.to_ascii_lowercase() == wanted)
            .ok_or_else(|| {
                ServiceError::NotFound(msg!("org-member-not-found", name = username.trim()))
            })
    }
}

fn not_found(slug: &str) -> ServiceError {
    ServiceError::NotFound(msg!("org-not-found", slug = slug.trim()))
}

/// The organisation with everything in it, as `caller` may see it: a member or a platform
/// administrator; to anyone else it does not exist.
pub(crate) async fn access(ctx: &Ctx, caller: &Caller, slug: &str) -> ServiceResult<Access> {
    let org = db::orgs::find_by_slug(&ctx.db, slug.trim())
        .await?
        .ok_or_else(|| not_found(slug))?;
    let tree = db::orgs::tree(&ctx.db, org.id)
        .await?
        .ok_or_else(|| not_found(slug))?;
    let me = caller.account_id().and_then(|id| tree.member(id)).cloned();
    let platform = caller.is_admin();
    if me.is_none() && !platform {
        return Err(not_found(slug));
    }
    Ok(Access { tree, me, platform })
}

fn parse_name(field: &'static str, text: &str) -> ServiceResult<String> {
    let name = text.trim();
    if name.is_empty() {
        return Err(ServiceError::invalid(field, msg!("name-empty")));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(ServiceError::invalid(
            field,
            msg!("name-too-long", max = MAX_NAME_CHARS),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(ServiceError::invalid(field, msg!("org-name-control")));
    }
    Ok(name.to_string())
}

/// 2 to 32 lowercase letters, digits and `-`, and not a word the portal's addresses use.
pub fn parse_slug(text: &str) -> ServiceResult<String> {
    let slug = text.trim();
    let shaped = (2..=32).contains(&slug.len())
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !shaped {
        return Err(ServiceError::invalid(
            "slug",
            msg!(
                "org-slug-invalid",
                value = crate::domain::names::quoted(slug)
            ),
        ));
    }
    if RESERVED_SLUGS.contains(&slug) {
        return Err(ServiceError::invalid(
            "slug",
            msg!("org-slug-reserved", value = slug),
        ));
    }
    Ok(slug.to_string())
}

/// Empty (the site's zone) or an IANA zone name.
fn parse_zone(text: &str) -> ServiceResult<String> {
    let zone = text.trim();
    if zone.is_empty() || is_zone(zone) {
        Ok(zone.to_string())
    } else {
        Err(ServiceError::invalid(
            "timezone",
            msg!("option-not-a-zone", value = zone),
        ))
    }
}

/// Dollars (at least 0) in quota units at the current rate.
async fn dollars(db: &Db, field: &'static str, text: &str) -> ServiceResult<i64> {
    let usd = MicroUsd::parse(text.trim()).map_err(decimal_err(field))?;
    let options = super::options::current(db).await?;
    Ok(super::usd_to_quota(field, usd, options.quota_per_usd())?.0)
}

/// A budget from its period and amount. An empty period is no budget; a period needs an
/// amount above zero. A field not given (`None`) keeps its part of `current`.
async fn parse_budget(
    db: &Db,
    period: Option<&str>,
    usd: Option<&str>,
    current: Option<Budget>,
) -> ServiceResult<Option<Budget>> {
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
        None => current.map(|b| b.period),
    };
    let quota = match usd.map(str::trim) {
        Some("") => None,
        Some(text) => Some(dollars(db, "budget_usd", text).await?),
        None => current.map(|b| b.quota),
    };
    match (period, quota) {
        (None, None) => Ok(None),
        // Only the period was cleared: the budget goes, whatever its amount was.
        (None, Some(_)) if usd.is_none() => Ok(None),
        (None, Some(_)) => Err(ServiceError::invalid(
            "budget_period",
            msg!("budget-needs-period"),
        )),
        (Some(period), Some(quota)) if quota > 0 => Ok(Some(Budget { period, quota })),
        (Some(_), _) => Err(ServiceError::invalid(
            "budget_usd",
            msg!("budget-needs-amount"),
        )),
    }
}

/// The calendar an organisation's budgets run on: its own zone, else the site's.
async fn calendar_of(db: &Db, org: &OrgRow) -> ServiceResult<SiteCalendar> {
    if org.timezone.is_empty() {
        Ok(SiteCalendar::new(
            &super::options::current(db).await?.timezone,
        ))
    } else {
        Ok(SiteCalendar::new(&org.timezone))
    }
}

fn budget_fields(budget: Option<Budget>) -> (String, i64) {
    budget.map_or((String::new(), 0), |b| {
        (b.period.as_str().to_string(), b.quota)
    })
}

/// An organisation's settings as the audit log keeps them.
fn org_fields(org: &OrgRow) -> Value {
    let (period, quota) = budget_fields(org.budget);
    json!({
        "name": org.name,
        "slug": org.slug,
        "group": org.group_name,
        "timezone": org.timezone,
        "budget_period": period,
        "budget_quota": quota,
    })
}

/// `entry` as the audit log keeps it for an organisation: with its slug, and `about` (a
/// member's username, a team's name) as they were, beside the ids its target names.
pub(crate) fn about_org(org: &OrgRow, about: Value, entry: AuditEntry) -> AuditEntry {
    let mut context = Map::new();
    context.insert("org".into(), json!(org.slug));
    if let Value::Object(about) = about {
        context.extend(about);
    }
    audit::with_context(entry, Value::Object(context))
}

/// A change to the organisation (its fields that differ between `before` and `after`).
pub(crate) fn org_change(
    action: &'static str,
    org: &OrgRow,
    about: Value,
    before: Option<Value>,
    after: Option<Value>,
) -> AuditEntry {
    about_org(
        org,
        about,
        audit::change(action, audit::org_target(org.id), before, after, &[]),
    )
}

/// A change to a team or its members, with the team's name as it was.
pub(crate) fn team_change(
    action: &'static str,
    org: &OrgRow,
    team: (i64, &str),
    about: Value,
    before: Option<Value>,
    after: Option<Value>,
) -> AuditEntry {
    let mut context = json!({ "team": team.1 });
    if let (Value::Object(context), Value::Object(about)) = (&mut context, about) {
        context.extend(about);
    }
    about_org(
        org,
        context,
        audit::change(
            action,
            audit::team_target(org.id, team.0),
            before,
            after,
            &[],
        ),
    )
}

/// A budget's change as the audit log keeps it: its period and amount on both sides, even
/// the one that stayed, so a reader sees the whole budget before and after.
pub(crate) fn budget_entry(
    action: &'static str,
    target: String,
    before: Option<Budget>,
    after: Option<Budget>,
) -> AuditEntry {
    let side = |budget: Option<Budget>| {
        let (period, quota) = budget_fields(budget);
        Some(json!({ "budget_period": period, "budget_quota": quota }))
    };
    AuditEntry {
        before: side(before),
        after: side(after),
        ..audit::entry(action, target)
    }
}

/// A new organisation's settings as a row (its wallet, counts and times at zero).
fn org_row_of(org: &NewOrg) -> OrgRow {
    OrgRow {
        id: 0,
        name: org.name.clone(),
        slug: org.slug.clone(),
        group_name: org.group_name.clone(),
        timezone: org.timezone.clone(),
        budget: org.budget,
        quota: 0,
        used_quota: 0,
        request_count: 0,
        pending_owner: 0,
        created_at: 0,
        updated_at: 0,
    }
}

/// Whether a person may create an organisation of their own: one whose email address is
/// proven, or an administrator.
fn may_create(user: &db::users::UserRow) -> bool {
    user.email_verified || user.role.is_admin()
}

/// A new organisation's settings.
#[derive(Debug, Clone, Default)]
pub struct CreateOrg {
    pub name: String,
    pub slug: String,
    /// The owner's username: a platform administrator names them (default: themselves); a
    /// person creates organisations they own.
    pub owner: Option<String>,
    /// An IANA zone; empty or absent: the site's.
    pub timezone: Option<String>,
    /// `daily`, `weekly`, `monthly` or `quarterly`, with `budget_usd`; empty or absent: no
    /// budget.
    pub budget_period: Option<String>,
    pub budget_usd: Option<String>,
    /// The group its team keys use by default (platform administrators only; default
    /// `default`).
    pub group: Option<String>,
}

/// Creates an organisation; its wallet starts empty.
pub async fn create(ctx: &Ctx, caller: &Caller, input: CreateOrg) -> ServiceResult<OrgView> {
    let db = &ctx.db;
    let options = super::options::current(db).await?;
    let owner = match (caller.owner(), input.owner.as_deref().map(str::trim)) {
        (Some(own), named) => {
            let me = super::users::find_id(db, own).await?;
            if named.is_some_and(|n| !n.is_empty() && !n.eq_ignore_ascii_case(&me.username)) {
                return Err(ServiceError::Forbidden(msg!("org-owner-self")));
            }
            if !options.org_creation_enabled {
                return Err(ServiceError::Forbidden(msg!("org-creation-closed")));
            }
            if !may_create(&me) {
                return Err(ServiceError::Forbidden(msg!("org-creation-unverified")));
            }
            me
        }
        (None, Some(named)) if !named.is_empty() => {
            super::users::find(db, named).await.map_err(|e| match e {
                ServiceError::NotFound(message) => ServiceError::invalid("owner", message),
                other => other,
            })?
        }
        (None, _) => match caller.account_id() {
            Some(id) => super::users::find_id(db, id).await?,
            None => return Err(ServiceError::invalid("owner", msg!("field-required"))),
        },
    };
    let mut problems = Problems::default();
    let name = problems.check(parse_name("name", &input.name))?;
    let slug = problems.check(parse_slug(&input.slug))?;
    let timezone = problems.check(parse_zone(input.timezone.as_deref().unwrap_or("")))?;
    let budget = problems.check(
        parse_budget(
            db,
            input.budget_period.as_deref(),
            input.budget_usd.as_deref(),
            None,
        )
        .await,
    )?;
    let group = match input.group.as_deref().map(str::trim) {
        Some(group) if !group.is_empty() => {
            if !caller.is_admin() {
                return Err(ServiceError::Forbidden(msg!("org-group-admins-only")));
            }
            problems.check(super::groups::require(db, "group", group).await)?;
            group.to_string()
        }
        _ => super::groups::DEFAULT_GROUP.to_string(),
    };
    problems.finish()?;
    let (Some(name), Some(slug), Some(timezone), Some(budget)) = (name, slug, timezone, budget)
    else {
        return Err(ServiceError::invalid("name", msg!("name-empty")));
    };
    let org = NewOrg {
        name,
        slug: slug.clone(),
        group_name: group,
        timezone,
        budget,
    };
    // People are held to the site's cap on organisations they own; administrators are not.
    let cap = caller.owner().map(|_| options.max_orgs_per_user);
    let id = ctx
        .write(caller, async |tx| {
            if let Some(cap) = cap.filter(|&cap| cap > 0) {
                // One at a time per person, so two forms sent at once cannot pass the cap.
                db::users::lock(tx, owner.id).await?;
                let owned = db::orgs::owned_count_in(tx, owner.id).await?;
                if u64::try_from(owned).unwrap_or(u64::MAX) >= cap {
                    return Err(ServiceError::Forbidden(msg!("org-cap-reached", max = cap)));
                }
            }
            let id = db::orgs::insert(tx, &org, owner.id)
                .await
                .map_err(super::conflict(
                    "slug",
                    msg!("org-slug-taken", slug = slug.as_str()),
                ))?;
            let mut fields = org_fields(&org_row_of(&org));
            fields["owner"] = json!(owner.username);
            tx.audit(org_change(
                "org.create",
                &OrgRow {
                    id,
                    ..org_row_of(&org)
                },
                json!({}),
                None,
                Some(fields),
            ));
            Ok(id)
        })
        .await?;
    show_by_id(ctx, caller, id).await
}

/// A change of an organisation's settings; fields not given stay as they are.
#[derive(Debug, Clone, Default)]
pub struct UpdateOrg {
    pub name: Option<String>,
    pub slug: Option<String>,
    /// Empty: the site's zone.
    pub timezone: Option<String>,
    /// Empty: no budget. Another period starts counting afresh.
    pub budget_period: Option<String>,
    /// A new amount per period; with no period given, the current one.
    pub budget_usd: Option<String>,
    /// Platform administrators only.
    pub group: Option<String>,
}

pub async fn update(
    ctx: &Ctx,
    caller: &Caller,
    slug: &str,
    input: UpdateOrg,
) -> ServiceResult<OrgView> {
    let access = access(ctx, caller, slug).await?;
    access.require_manages_org()?;
    let before = access.org().clone();
    let mut org = before.clone();
    let mut problems = Problems::default();
    if let Some(text) = &input.name
        && let Some(name) = problems.check(parse_name("name", text))?
    {
        org.name = name;
    }
    if let Some(text) = &input.slug
        && let Some(slug) = problems.check(parse_slug(text))?
    {
        org.slug = slug;
    }
    if let Some(text) = &input.timezone
        && let Some(zone) = problems.check(parse_zone(text))?
    {
        org.timezone = zone;
    }
    if input.budget_period.is_some() || input.budget_usd.is_some() {
        let budget = parse_budget(
            &ctx.db,
            input.budget_period.as_deref(),
            input.budget_usd.as_deref(),
            before.budget,
        )
        .await;
        if let Some(budget) = problems.check(budget)? {
            org.budget = budget;
        }
    }
    if let Some(group) = input.group.as_deref().map(str::trim) {
        if !access.platform {
            return Err(ServiceError::Forbidden(msg!("org-group-admins-only")));
        }
        if group != before.group_name
            && problems
                .check(super::groups::require(&ctx.db, "group", group).await)?
                .is_some()
        {
            org.group_name = group.to_string();
        }
    }
    problems.finish()?;
    // The budget is its own entry (a reader filters budgets apart from settings); a form sent
    // back unchanged changes and records nothing.
    let settings = |o: &OrgRow| {
        (
            o.name.clone(),
            o.slug.clone(),
            o.timezone.clone(),
            o.group_name.clone(),
        )
    };
    let settings_changed = settings(&before) != settings(&org);
    let budget_changed = before.budget != org.budget;
    if !settings_changed && !budget_changed {
        return show_by_id(ctx, caller, org.id).await;
    }
    let new_slug = org.slug.clone();
    ctx.write(caller, async |tx| {
        db::orgs::update(tx, &org).await.map_err(super::conflict(
            "slug",
            msg!("org-slug-taken", slug = new_slug.as_str()),
        ))?;
        if settings_changed {
            let without_budget = |o: &OrgRow| {
                org_fields(&OrgRow {
                    budget: None,
                    ..o.clone()
                })
            };
            tx.audit(org_change(
                "org.update",
                &before,
                json!({}),
                Some(without_budget(&before)),
                Some(without_budget(&org)),
            ));
        }
        if budget_changed {
            tx.audit(about_org(
                &before,
                json!({}),
                budget_entry(
                    "org.budget",
                    audit::org_target(org.id),
                    before.budget,
                    org.budget,
                ),
            ));
        }
        Ok(())
    })
    .await?;
    show_by_id(ctx, caller, org.id).await
}

/// How an organisation is deleted.
#[derive(Debug, Clone, Default)]
pub struct DeleteOrg {
    /// Delete it although its wallet holds money (platform administrators only, with a
    /// reason): the balance is written off in the ledger.
    pub force: bool,
    pub reason: Option<String>,
}

/// Deletes an organisation with its teams, memberships, invitations and team keys. Its
/// owner may while the wallet is empty; a platform administrator also, with `force` and a
/// reason, when it is not.
pub async fn delete(ctx: &Ctx, caller: &Caller, slug: &str, input: DeleteOrg) -> ServiceResult<()> {
    let access = access(ctx, caller, slug).await?;
    if !access.platform && !access.is_owner() {
        return Err(ServiceError::Forbidden(msg!("org-owner-only")));
    }
    let reason = input.reason.as_deref().unwrap_or("").trim().to_string();
    if input.force {
        if !access.platform {
            return Err(ServiceError::Forbidden(msg!("admins-only")));
        }
        if reason.is_empty() {
            return Err(ServiceError::invalid(
                "reason",
                msg!("org-delete-reason-needed"),
            ));
        }
    }
    if reason.chars().count() > 500 {
        return Err(ServiceError::invalid(
            "reason",
            msg!("name-too-long", max = 500_usize),
        ));
    }
    let org = access.org().clone();
    let actor = caller.actor();
    let qpu = quota_per_usd(ctx).await?;
    ctx.write(caller, async |tx| {
        // Read under the row's lock: a top-up committing meanwhile is seen, not lost.
        db::orgs::lock(tx, org.id).await?;
        let balance = db::orgs::quota_in(tx, org.id).await?;
        if balance > 0 && !input.force {
            return Err(ServiceError::Conflict {
                field: None,
                message: msg!("org-delete-has-money", usd = Quota(balance).usd_string(qpu)),
            });
        }
        // A card payment still open would credit a wallet that is gone (it would be refunded,
        // but the payer should see why first).
        let open = db::orders::open_for_org(tx, org.id).await?;
        if open > 0 && !input.force {
            return Err(ServiceError::Conflict {
                field: None,
                message: msg!("org-delete-has-orders", count = open),
            });
        }
        let mut entry = org_change(
            "org.delete",
            &org,
            json!({}),
            Some(json!({ "settings": org_fields(&org), "quota": balance, "reason": reason })),
            None,
        );
        // What the wallet still holds (or owes) is written off in the ledger, so its rows
        // add up to what it spent.
        if balance != 0 {
            let key = format!("org-close:{}", org.id);
            let reason = if reason.is_empty() {
                "organisation deleted"
            } else {
                reason.as_str()
            };
            let closing = NewEntry {
                user_id: 0,
                kind: crate::domain::kinds::LedgerKind::Adjustment,
                amount: -balance,
                actor: &actor,
                reference: "",
                reason,
                idempotency_key: &key,
            };
            let Some(ledger_id) = db::ledger::insert_for_org(tx, org.id, &closing).await? else {
                return Err(DbError::Corrupt(format!("ledger key {key} exists")).into());
            };
            entry.ledger_id = Some(ledger_id);
        }
        db::orgs::delete(tx, org.id).await?;
        tx.audit(entry);
        Ok(())
    })
    .await
}

async fn quota_per_usd(ctx: &Ctx) -> ServiceResult<i64> {
    super::options::quota_per_usd(ctx).await
}

/// What [`transfer`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Transfer {
    /// The owner offered ownership; it moves when the member accepts.
    Offered,
    /// Ownership moved (a platform administrator's transfer): the old owner is an admin now.
    Done,
}

/// Hands an organisation to another member: the owner offers it (the member must accept,
/// see [`accept_transfer`]); a platform administrator moves it at once.
pub async fn transfer(
    ctx: &Ctx,
    caller: &Caller,
    slug: &str,
    username: &str,
) -> ServiceResult<Transfer> {
    let access = access(ctx, caller, slug).await?;
    if !access.platform && !access.is_owner() {
        return Err(ServiceError::Forbidden(msg!("org-owner-only")));
    }
    let to = access.member_named(username).map_err(|_| {
        ServiceError::invalid(
            "username",
            msg!("org-transfer-not-member", name = username.trim()),
        )
    })?;
    if to.role == OrgRole::Owner {
        return Err(ServiceError::invalid(
            "username",
            msg!("org-transfer-to-owner", name = to.username.as_str()),
        ));
    }
    let org = access.org().clone();
    let to = to.clone();
    let owner = access
        .tree
        .owner()
        .cloned()
        .ok_or_else(|| DbError::Corrupt(format!("organisation {} has no owner", org.id)))?;
    if access.platform {
        ctx.write(caller, async |tx| {
            swap_owner(tx, &org, &owner, &to).await?;
            Ok(())
        })
        .await?;
        return Ok(Transfer::Done);
    }
    ctx.write(caller, async |tx| {
        db::orgs::set_pending_owner(tx, org.id, to.user_id).await?;
        tx.audit(org_change(
            "org.transfer",
            &org,
            json!({}),
            Some(json!({ "offered_to": null })),
            Some(json!({ "offered_to": to.username })),
        ));
        Ok(())
    })
    .await?;
    Ok(Transfer::Offered)
}

/// Makes `to` the owner and the old owner an admin, in one transaction.
async fn swap_owner(
    tx: &mut db::Tx,
    org: &OrgRow,
    owner: &OrgMemberRow,
    to: &OrgMemberRow,
) -> ServiceResult<()> {
    db::orgs::set_role(tx, org.id, owner.user_id, OrgRole::Admin).await?;
    db::orgs::set_role(tx, org.id, to.user_id, OrgRole::Owner).await?;
    db::orgs::set_pending_owner(tx, org.id, 0).await?;
    tx.audit(org_change(
        "org.transfer",
        org,
        json!({}),
        Some(json!({ "owner": owner.username })),
        Some(json!({ "owner": to.username })),
    ));
    Ok(())
}

/// The member ownership was offered to takes it: they become the owner, the old owner an
/// admin.
pub async fn accept_transfer(ctx: &Ctx, caller: &Caller, slug: &str) -> ServiceResult<OrgView> {
    let access = access(ctx, caller, slug).await?;
    let org = access.org().clone();
    let me = access
        .me
        .clone()
        .filter(|me| org.pending_owner == me.user_id)
        .ok_or_else(|| ServiceError::Conflict {
            field: None,
            message: msg!("org-no-transfer-offered"),
        })?;
    let owner = access
        .tree
        .owner()
        .cloned()
        .ok_or_else(|| DbError::Corrupt(format!("organisation {} has no owner", org.id)))?;
    let cap = match caller.owner() {
        Some(_) => super::options::current(&ctx.db).await?.max_orgs_per_user,
        None => 0,
    };
    ctx.write(caller, async |tx| {
        db::orgs::lock(tx, org.id).await?;
        // The offer may have been withdrawn since it was read.
        let current = db::orgs::find_in(tx, org.id).await?;
        if current.is_none_or(|o| o.pending_owner != me.user_id) {
            return Err(ServiceError::Conflict {
                field: None,
                message: msg!("org-no-transfer-offered"),
            });
        }
        if cap > 0 {
            db::users::lock(tx, me.user_id).await?;
            let owned = db::orgs::owned_count_in(tx, me.user_id).await?;
            if u64::try_from(owned).unwrap_or(u64::MAX) >= cap {
                return Err(ServiceError::Forbidden(msg!("org-cap-reached", max = cap)));
            }
        }
        swap_owner(tx, &org, &owner, &me).await
    })
    .await?;
    show_by_id(ctx, caller, org.id).await
}

/// Withdraws an offer of ownership: the owner, the member it was offered to, or a platform
/// administrator.
pub async fn cancel_transfer(ctx: &Ctx, caller: &Caller, slug: &str) -> ServiceResult<()> {
    let access = access(ctx, caller, slug).await?;
    let org = access.org().clone();
    let offered_to_me = access
        .me
        .as_ref()
        .is_some_and(|me| me.user_id == org.pending_owner);
    if !access.platform && !access.is_owner() && !offered_to_me {
        return Err(ServiceError::Forbidden(msg!("org-owner-only")));
    }
    if org.pending_owner == 0 {
        return Ok(());
    }
    let offered_to = access
        .tree
        .member(org.pending_owner)
        .map(|m| m.username.clone());
    ctx.write(caller, async |tx| {
        db::orgs::set_pending_owner(tx, org.id, 0).await?;
        tx.audit(org_change(
            "org.transfer",
            &org,
            json!({}),
            Some(json!({ "offered_to": offered_to })),
            Some(json!({ "offered_to": null })),
        ));
        Ok(())
    })
    .await
}

/// A budget and what its current period spent.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BudgetUse {
    pub period: BudgetPeriod,
    pub quota: i64,
    pub usd: f64,
    pub spent_quota: i64,
    pub spent_usd: f64,
    /// When the current period began and when the next begins (RFC 3339).
    pub period_start: String,
    pub next_start: String,
}

/// An organisation in a list.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OrgSummary {
    pub id: i64,
    pub name: String,
    pub slug: String,
    pub group: String,
    /// The caller's role (absent: a platform administrator from outside).
    pub role: Option<OrgRole>,
    /// The wallet's balance and what it spent in all (absent: the caller does not manage the
    /// organisation, and only those who do see its money).
    pub quota: Option<i64>,
    pub quota_usd: Option<f64>,
    pub used_quota: Option<i64>,
    pub used_usd: Option<f64>,
    pub members: i64,
    pub teams: i64,
    pub created_at: String,
}

/// An organisation with its budget, members and teams.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OrgView {
    pub id: i64,
    pub name: String,
    pub slug: String,
    /// The group its team keys use unless their team lets them pick another.
    pub group: String,
    /// The organisation's own zone; empty: the site's.
    pub timezone: String,
    /// The zone its budgets start over in.
    pub effective_timezone: String,
    /// The wallet's balance, what it spent and the requests it paid for, in all (absent: the
    /// caller does not manage the organisation, and only those who do see its money).
    pub quota: Option<i64>,
    pub quota_usd: Option<f64>,
    pub used_quota: Option<i64>,
    pub used_usd: Option<f64>,
    pub request_count: Option<i64>,
    pub budget: Option<BudgetUse>,
    pub owner: Option<String>,
    /// The member ownership was offered to, until they accept.
    pub pending_owner: Option<String>,
    /// The caller's role (absent: a platform administrator from outside).
    pub role: Option<OrgRole>,
    pub members: Vec<MemberView>,
    pub teams: Vec<TeamView>,
    pub created_at: String,
    /// How much of the organisation's spending the caller sees (see [`sight`]).
    #[serde(skip)]
    pub sight: Sight,
    /// The teams the caller manages: every team for those who manage the organisation.
    #[serde(skip)]
    pub managed_teams: Vec<i64>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MemberView {
    pub user_id: i64,
    pub username: String,
    pub role: OrgRole,
    /// The teams they are in, by name.
    pub teams: Vec<String>,
    pub joined_at: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TeamView {
    pub id: i64,
    pub name: String,
    /// The groups its keys may use, the organisation's first when it lists none.
    pub groups: Vec<String>,
    pub budget: Option<BudgetUse>,
    /// What each member may spend per the team's period unless their own cap says (absent:
    /// no cap).
    pub member_cap_quota: Option<i64>,
    pub member_cap_usd: Option<f64>,
    pub members: Vec<TeamMemberView>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TeamMemberView {
    /// The membership's id (the scope of the member's cap).
    pub id: i64,
    pub user_id: i64,
    pub username: String,
    pub manager: bool,
    /// Their own cap (absent: the team's default).
    pub own_cap_quota: Option<i64>,
    /// The cap that holds them with what its period spent (absent: none). What they spent
    /// is 0 unless the caller sees it (see `spend_visible`).
    pub cap: Option<BudgetUse>,
    /// Whether the caller sees what this member spent: their own, or as one who manages the
    /// team (see `sight`). A member sees their teammates and caps, not their spending.
    #[serde(skip)]
    pub spend_visible: bool,
}

/// The periods an organisation's budgets are in now, and what each spent.
struct Spending {
    calendar: SiteCalendar,
    now: i64,
    spent: Vec<(ScopeWindow, i64)>,
    quota_per_usd: i64,
}

impl Spending {
    async fn of(ctx: &Ctx, tree: &OrgTree) -> ServiceResult<Spending> {
        let calendar = calendar_of(&ctx.db, &tree.org).await?;
        let now = db::now_ms();
        let window = |kind, scope_id, period: BudgetPeriod| ScopeWindow {
            kind,
            scope_id,
            window_start: calendar.budget_window(period, now).0,
        };
        let mut windows = Vec::new();
        if let Some(budget) = tree.org.budget {
            windows.push(window("org", tree.org.id, budget.period));
        }
        for team in &tree.teams {
            let Some(budget) = team.budget else { continue };
            windows.push(window("team", team.id, budget.period));
            for member in tree.members_of(team.id) {
                if member.effective_cap(team).is_some() {
                    windows.push(window("member", member.id, budget.period));
                }
            }
        }
        let spent = db::orgs::spent_in(&ctx.db, &windows).await?;
        Ok(Spending {
            calendar,
            now,
            spent,
            quota_per_usd: quota_per_usd(ctx).await?,
        })
    }

    fn usd(&self, units: i64) -> f64 {
        Quota(units).usd_f64(self.quota_per_usd)
    }

    fn usage(&self, kind: &str, scope_id: i64, period: BudgetPeriod, quota: i64) -> BudgetUse {
        let (start, end) = self.calendar.budget_window(period, self.now);
        let spent = self
            .spent
            .iter()
            .find(|(w, _)| w.kind == kind && w.scope_id == scope_id && w.window_start == start)
            .map_or(0, |(_, spent)| *spent);
        BudgetUse {
            period,
            quota,
            usd: self.usd(quota),
            spent_quota: spent,
            spent_usd: self.usd(spent),
            period_start: timestamp(start),
            next_start: timestamp(end),
        }
    }
}

fn team_view(access: &Access, team: &TeamRow, spending: &Spending) -> TeamView {
    let tree = &access.tree;
    let members = tree
        .members_of(team.id)
        .map(|m: &TeamMemberRow| {
            let spend_visible = access.sees_spend_of(team.id, m.user_id);
            TeamMemberView {
                id: m.id,
                user_id: m.user_id,
                username: m.username.clone(),
                manager: m.manager,
                own_cap_quota: m.cap_quota,
                cap: m.effective_cap(team).and_then(|cap| {
                    let period = team.budget?.period;
                    let mut usage = spending.usage("member", m.id, period, cap);
                    if !spend_visible {
                        usage.spent_quota = 0;
                        usage.spent_usd = 0.0;
                    }
                    Some(usage)
                }),
                spend_visible,
            }
        })
        .collect();
    TeamView {
        id: team.id,
        name: team.name.clone(),
        groups: team
            .groups(&tree.org)
            .into_iter()
            .map(str::to_string)
            .collect(),
        budget: team
            .budget
            .map(|b| spending.usage("team", team.id, b.period, b.quota)),
        member_cap_quota: team.member_cap_quota,
        member_cap_usd: team.member_cap_quota.map(|q| spending.usd(q)),
        members,
    }
}

async fn view_of(ctx: &Ctx, access: &Access) -> ServiceResult<OrgView> {
    let tree = &access.tree;
    let org = &tree.org;
    let spending = Spending::of(ctx, tree).await?;
    let username_of = |user_id: i64| tree.member(user_id).map(|m| m.username.clone());
    let wallet = access.sees_wallet();
    Ok(OrgView {
        id: org.id,
        name: org.name.clone(),
        slug: org.slug.clone(),
        group: org.group_name.clone(),
        timezone: org.timezone.clone(),
        effective_timezone: spending.calendar.zone_name().to_string(),
        quota: wallet.then_some(org.quota),
        quota_usd: wallet.then(|| spending.usd(org.quota)),
        used_quota: wallet.then_some(org.used_quota),
        used_usd: wallet.then(|| spending.usd(org.used_quota)),
        request_count: wallet.then_some(org.request_count),
        budget: org
            .budget
            .map(|b| spending.usage("org", org.id, b.period, b.quota)),
        owner: tree.owner().map(|m| m.username.clone()),
        pending_owner: username_of(org.pending_owner),
        role: access.role(),
        members: tree
            .members
            .iter()
            .map(|m| MemberView {
                user_id: m.user_id,
                username: m.username.clone(),
                role: m.role,
                teams: tree
                    .team_members
                    .iter()
                    .filter(|tm| tm.user_id == m.user_id)
                    .filter_map(|tm| tree.teams.iter().find(|t| t.id == tm.team_id))
                    .map(|t| t.name.clone())
                    .collect(),
                joined_at: timestamp(m.created_at),
            })
            .collect(),
        teams: tree
            .teams
            .iter()
            .map(|team| team_view(access, team, &spending))
            .collect(),
        created_at: timestamp(org.created_at),
        sight: access.sight(),
        managed_teams: access.managed_teams(),
    })
}

/// An organisation as a member (or a platform administrator) sees it: its wallet, budgets
/// with the current period's spending, members and teams.
pub async fn show(ctx: &Ctx, caller: &Caller, slug: &str) -> ServiceResult<OrgView> {
    let access = access(ctx, caller, slug).await?;
    view_of(ctx, &access).await
}

async fn show_by_id(ctx: &Ctx, caller: &Caller, id: i64) -> ServiceResult<OrgView> {
    let org = db::orgs::find(&ctx.db, id)
        .await?
        .ok_or_else(|| ServiceError::NotFound(msg!("org-not-found", slug = id.to_string())))?;
    show(ctx, caller, &org.slug).await
}

/// The members with their roles and teams.
pub async fn members(ctx: &Ctx, caller: &Caller, slug: &str) -> ServiceResult<Vec<MemberView>> {
    Ok(show(ctx, caller, slug).await?.members)
}

/// The teams with their budgets, members and caps.
pub async fn teams(ctx: &Ctx, caller: &Caller, slug: &str) -> ServiceResult<Vec<TeamView>> {
    Ok(show(ctx, caller, slug).await?.teams)
}

/// The organisations the caller belongs to (for everyone, administrators too).
pub async fn list_mine(ctx: &Ctx, caller: &Caller) -> ServiceResult<Vec<OrgSummary>> {
    let user_id = caller.own_account()?;
    let mine = db::orgs::list_of_user(&ctx.db, user_id).await?;
    summaries(
        ctx,
        caller,
        mine.into_iter().map(|(o, r)| (o, Some(r))).collect(),
    )
    .await
}

/// Every organisation for a platform administrator; the caller's own for anyone else.
pub async fn list(ctx: &Ctx, caller: &Caller) -> ServiceResult<Vec<OrgSummary>> {
    if !caller.is_admin() {
        return list_mine(ctx, caller).await;
    }
    let mine: Vec<(i64, OrgRole)> = match caller.account_id() {
        Some(id) => db::orgs::list_of_user(&ctx.db, id)
            .await?
            .into_iter()
            .map(|(o, r)| (o.id, r))
            .collect(),
        None => Vec::new(),
    };
    let all = db::orgs::list_all(&ctx.db).await?;
    let with_roles = all
        .into_iter()
        .map(|o| {
            let role = mine.iter().find(|(id, _)| *id == o.id).map(|(_, r)| *r);
            (o, role)
        })
        .collect();
    summaries(ctx, caller, with_roles).await
}

async fn summaries(
    ctx: &Ctx,
    caller: &Caller,
    orgs: Vec<(OrgRow, Option<OrgRole>)>,
) -> ServiceResult<Vec<OrgSummary>> {
    let qpu = quota_per_usd(ctx).await?;
    let sizes = db::orgs::sizes(&ctx.db).await?;
    let usd = |units: i64| Quota(units).usd_f64(qpu);
    Ok(orgs
        .into_iter()
        .map(|(org, role)| {
            let (members, teams) = sizes
                .iter()
                .find(|(id, _, _)| *id == org.id)
                .map_or((0, 0), |(_, m, t)| (*m, *t));
            // The wallet is theirs who manage the organisation (see `sight`).
            let wallet = caller.is_admin() || matches!(role, Some(OrgRole::Owner | OrgRole::Admin));
            OrgSummary {
                id: org.id,
                name: org.name,
                slug: org.slug,
                group: org.group_name,
                role,
                quota: wallet.then_some(org.quota),
                quota_usd: wallet.then(|| usd(org.quota)),
                used_quota: wallet.then_some(org.used_quota),
                used_usd: wallet.then(|| usd(org.used_quota)),
                members,
                teams,
                created_at: timestamp(org.created_at),
            }
        })
        .collect())
}

/// A team key's organisation and team, checked for the key's owner: the team exists in an
/// organisation the caller may see, and the owner belongs to it.
pub(crate) struct KeyTeam {
    pub(crate) org: OrgRow,
    pub(crate) team: TeamRow,
}

impl KeyTeam {
    /// The groups the team's keys may use now: the team's, as far as the organisation may
    /// still use them (its group, and the groups the site lets people pick).
    pub(crate) async fn groups(&self, db: &Db) -> ServiceResult<Vec<String>> {
        let selectable: Vec<String> = db::groups::list(db)
            .await?
            .into_iter()
            .filter(|g| g.user_selectable)
            .map(|g| g.name)
            .collect();
        Ok(self
            .team
            .groups(&self.org)
            .into_iter()
            .filter(|g| *g == self.org.group_name || selectable.iter().any(|s| s == g))
            .map(str::to_string)
            .collect())
    }
}

/// Resolves `org` (a slug) and `team` (a team id as text) for a key `owner_id` will hold.
pub(crate) async fn key_team(
    ctx: &Ctx,
    caller: &Caller,
    owner_id: i64,
    org: &str,
    team: &str,
) -> ServiceResult<KeyTeam> {
    let access = access(ctx, caller, org).await?;
    let team_row = team
        .trim()
        .parse::<i64>()
        .ok()
        .and_then(|id| access.tree.teams.iter().find(|t| t.id == id))
        .ok_or_else(|| ServiceError::invalid("team", msg!("team-not-found", name = team.trim())))?;
    if access.tree.membership(team_row.id, owner_id).is_none() {
        return Err(ServiceError::invalid(
            "team",
            msg!("team-key-not-member", team = team_row.name.as_str()),
        ));
    }
    Ok(KeyTeam {
        org: access.tree.org.clone(),
        team: team_row.clone(),
    })
}

/// The organisation slug and team name of each team key's team: (team id, slug, name).
pub(crate) async fn team_labels(
    ctx: &Ctx,
    team_ids: &[i64],
) -> ServiceResult<Vec<(i64, String, String)>> {
    let mut ids: Vec<i64> = team_ids.iter().copied().filter(|&id| id > 0).collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(db::orgs::team_labels(&ctx.db, &ids).await?)
}

/// Refuses deleting an account that owns an organisation: it must be handed on first.
pub(crate) async fn check_not_owner(db: &Db, user_id: i64) -> ServiceResult<()> {
    let owned = db::orgs::owned_slugs(db, user_id).await?;
    if owned.is_empty() {
        Ok(())
    } else {
        Err(ServiceError::Forbidden(msg!(
            "account-delete-org-owner",
            orgs = owned.join(", ")
        )))
    }
}
