//! Organisations, their members, teams and team memberships. Every write notes
//! `Change::Org`, so the relay re-reads the organisation once the transaction commits.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Change, Db, DbError, DbResult, Tx, Value, flag, now_ms, text};
use crate::domain::kinds::{BudgetPeriod, OrgRole};
pub use crate::records::orgs::{Budget, OrgMemberRow, OrgRow, OrgTree, TeamMemberRow, TeamRow};

const ORG_COLUMNS: &str = "o.id, o.name, o.slug, o.group_name, o.timezone, o.budget_period, \
     o.budget_quota, o.quota, o.used_quota, o.request_count, o.pending_owner, o.created_at, \
     o.updated_at";

const TEAM_COLUMNS: &str = "id, org_id, name, budget_period, budget_quota, member_cap_quota, \
     group_names, created_at, updated_at";

fn budget_of(row: &AnyRow, what: &str) -> DbResult<Option<Budget>> {
    let period = text(row, "budget_period")?;
    if period.is_empty() {
        return Ok(None);
    }
    let period = BudgetPeriod::parse(&period)
        .ok_or_else(|| DbError::Corrupt(format!("{what} budget period '{period}'")))?;
    Ok(Some(Budget {
        period,
        quota: row.try_get("budget_quota")?,
    }))
}

fn budget_values(budget: Option<Budget>) -> [Value; 2] {
    [
        Value::Text(budget.map_or("", |b| b.period.as_str()).to_string()),
        Value::Int(budget.map_or(0, |b| b.quota)),
    ]
}

fn role_of(row: &AnyRow) -> DbResult<OrgRole> {
    let role = text(row, "role")?;
    OrgRole::parse(&role).ok_or_else(|| DbError::Corrupt(format!("organisation role '{role}'")))
}

fn org_from_row(row: &AnyRow) -> DbResult<OrgRow> {
    Ok(OrgRow {
        id: row.try_get("id")?,
        name: text(row, "name")?,
        slug: text(row, "slug")?,
        group_name: text(row, "group_name")?,
        timezone: text(row, "timezone")?,
        budget: budget_of(row, "organisation")?,
        quota: row.try_get("quota")?,
        used_quota: row.try_get("used_quota")?,
        request_count: row.try_get("request_count")?,
        pending_owner: row.try_get("pending_owner")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn team_from_row(row: &AnyRow) -> DbResult<TeamRow> {
    let groups = text(row, "group_names")?;
    Ok(TeamRow {
        id: row.try_get("id")?,
        org_id: row.try_get("org_id")?,
        name: text(row, "name")?,
        budget: budget_of(row, "team")?,
        member_cap_quota: row.try_get("member_cap_quota")?,
        group_names: groups
            .split(',')
            .filter(|g| !g.is_empty())
            .map(str::to_string)
            .collect(),
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn member_from_row(row: &AnyRow) -> DbResult<OrgMemberRow> {
    Ok(OrgMemberRow {
        id: row.try_get("id")?,
        org_id: row.try_get("org_id")?,
        user_id: row.try_get("user_id")?,
        username: text(row, "username")?,
        role: role_of(row)?,
        created_at: row.try_get("created_at")?,
    })
}

fn team_member_from_row(row: &AnyRow) -> DbResult<TeamMemberRow> {
    Ok(TeamMemberRow {
        id: row.try_get("id")?,
        team_id: row.try_get("team_id")?,
        org_id: row.try_get("org_id")?,
        user_id: row.try_get("user_id")?,
        username: text(row, "username")?,
        manager: flag(row.try_get("manager")?),
        cap_quota: row.try_get("cap_quota")?,
        created_at: row.try_get("created_at")?,
    })
}

/// A new organisation's settings; its wallet starts empty.
#[derive(Clone, Debug)]
pub struct NewOrg {
    pub name: String,
    pub slug: String,
    pub group_name: String,
    pub timezone: String,
    pub budget: Option<Budget>,
}

/// Creates an organisation with `owner_id` as its owner. A slug that is taken is a
/// `DbError::Conflict`.
pub async fn insert(tx: &mut Tx, org: &NewOrg, owner_id: i64) -> DbResult<i64> {
    let now = now_ms();
    let [period, quota] = budget_values(org.budget);
    let id = tx
        .insert_returning_id(
            "INSERT INTO orgs (name, slug, group_name, timezone, budget_period, budget_quota, \
             quota, used_quota, request_count, pending_owner, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, 0, 0, 0, 0, ?, ?)",
            &[
                Value::Text(org.name.clone()),
                Value::Text(org.slug.clone()),
                Value::Text(org.group_name.clone()),
                Value::Text(org.timezone.clone()),
                period,
                quota,
                Value::Int(now),
                Value::Int(now),
            ],
        )
        .await?;
    add_member(tx, id, owner_id, OrgRole::Owner).await?;
    Ok(id)
}

pub async fn find_by_slug(db: &Db, slug: &str) -> DbResult<Option<OrgRow>> {
    let sql = format!("SELECT {ORG_COLUMNS} FROM orgs o WHERE o.slug = ?");
    let rows = db
        .fetch_all_with(&sql, &[Value::Text(slug.to_string())])
        .await?;
    rows.first().map(org_from_row).transpose()
}

pub async fn find(db: &Db, id: i64) -> DbResult<Option<OrgRow>> {
    let sql = format!("SELECT {ORG_COLUMNS} FROM orgs o WHERE o.id = ?");
    let rows = db.fetch_all_with(&sql, &[Value::Int(id)]).await?;
    rows.first().map(org_from_row).transpose()
}

/// The organisation as this transaction sees it (after its own changes).
pub async fn find_in(tx: &mut Tx, id: i64) -> DbResult<Option<OrgRow>> {
    let sql = format!("SELECT {ORG_COLUMNS} FROM orgs o WHERE o.id = ?");
    let rows = tx.fetch_all(&sql, &[Value::Int(id)]).await?;
    rows.first().map(org_from_row).transpose()
}

/// Every organisation, by slug.
pub async fn list_all(db: &Db) -> DbResult<Vec<OrgRow>> {
    let sql = format!("SELECT {ORG_COLUMNS} FROM orgs o ORDER BY o.slug");
    let rows = db.fetch_all_with(&sql, &[]).await?;
    rows.iter().map(org_from_row).collect()
}

/// The organisations a person belongs to, with their role in each, by slug.
pub async fn list_of_user(db: &Db, user_id: i64) -> DbResult<Vec<(OrgRow, OrgRole)>> {
    let sql = format!(
        "SELECT {ORG_COLUMNS}, m.role FROM orgs o JOIN org_members m ON m.org_id = o.id \
         WHERE m.user_id = ? ORDER BY o.slug"
    );
    let rows = db.fetch_all_with(&sql, &[Value::Int(user_id)]).await?;
    rows.iter()
        .map(|row| Ok((org_from_row(row)?, role_of(row)?)))
        .collect()
}

/// An organisation as the platform console lists it.
#[derive(Clone, Debug)]
pub struct OrgListRow {
    pub org: OrgRow,
    /// The owner's username (None only while the data is broken).
    pub owner: Option<String>,
    pub members: i64,
    pub teams: i64,
}

/// Organisations whose name or slug holds `text` (case aside; every one when empty), by
/// slug, `limit` from `offset`, with their owner and sizes.
pub async fn search(db: &Db, text: &str, limit: i64, offset: i64) -> DbResult<Vec<OrgListRow>> {
    // `!` escapes LIKE's wildcards the same way on every backend (a backslash does not).
    let escaped = text
        .trim()
        .to_lowercase()
        .replace('!', "!!")
        .replace('%', "!%")
        .replace('_', "!_");
    let pattern = format!("%{escaped}%");
    let sql = format!(
        "SELECT {ORG_COLUMNS}, \
         (SELECT u.username FROM org_members m JOIN users u ON u.id = m.user_id \
          WHERE m.org_id = o.id AND m.role = 'owner') AS owner, \
         (SELECT COUNT(*) FROM org_members m WHERE m.org_id = o.id) AS members, \
         (SELECT COUNT(*) FROM teams t WHERE t.org_id = o.id) AS teams \
         FROM orgs o WHERE LOWER(o.name) LIKE ? ESCAPE '!' OR o.slug LIKE ? ESCAPE '!' \
         ORDER BY o.slug LIMIT ? OFFSET ?"
    );
    let rows = db
        .fetch_all_with(
            &sql,
            &[
                Value::Text(pattern.clone()),
                Value::Text(pattern),
                Value::Int(limit),
                Value::Int(offset),
            ],
        )
        .await?;
    rows.iter()
        .map(|row| {
            Ok(OrgListRow {
                org: org_from_row(row)?,
                owner: super::opt_text(row, "owner")?,
                members: row.try_get("members")?,
                teams: row.try_get("teams")?,
            })
        })
        .collect()
}

/// How many members and teams each organisation has: (org id, members, teams).
pub async fn sizes(db: &Db) -> DbResult<Vec<(i64, i64, i64)>> {
    let rows = db
        .fetch_all_with(
            "SELECT o.id, (SELECT COUNT(*) FROM org_members m WHERE m.org_id = o.id) AS members, \
             (SELECT COUNT(*) FROM teams t WHERE t.org_id = o.id) AS teams FROM orgs o",
            &[],
        )
        .await?;
    rows.iter()
        .map(|row| {
            Ok((
                row.try_get("id")?,
                row.try_get("members")?,
                row.try_get("teams")?,
            ))
        })
        .collect()
}

/// The organisation with its members, teams and team memberships; None when there is none.
pub async fn tree(db: &Db, org_id: i64) -> DbResult<Option<OrgTree>> {
    let Some(org) = find(db, org_id).await? else {
        return Ok(None);
    };
    let id = [Value::Int(org_id)];
    // Owner first, then admins, then members.
    let members = db
        .fetch_all_with(
            "SELECT m.id, m.org_id, m.user_id, u.username, m.role, m.created_at \
             FROM org_members m JOIN users u ON u.id = m.user_id WHERE m.org_id = ? \
             ORDER BY CASE m.role WHEN 'owner' THEN 0 WHEN 'admin' THEN 1 ELSE 2 END, u.username",
            &id,
        )
        .await?
        .iter()
        .map(member_from_row)
        .collect::<DbResult<Vec<_>>>()?;
    let teams = db
        .fetch_all_with(
            &format!("SELECT {TEAM_COLUMNS} FROM teams WHERE org_id = ? ORDER BY name"),
            &id,
        )
        .await?
        .iter()
        .map(team_from_row)
        .collect::<DbResult<Vec<_>>>()?;
    let team_members = db
        .fetch_all_with(
            "SELECT tm.id, tm.team_id, tm.org_id, tm.user_id, u.username, tm.manager, \
             tm.cap_quota, tm.created_at FROM team_members tm JOIN users u ON u.id = tm.user_id \
             WHERE tm.org_id = ? ORDER BY tm.team_id, u.username",
            &id,
        )
        .await?
        .iter()
        .map(team_member_from_row)
        .collect::<DbResult<Vec<_>>>()?;
    Ok(Some(OrgTree {
        org,
        members,
        teams,
        team_members,
    }))
}

/// How many organisations the person owns, read in the transaction that would add one.
pub async fn owned_count_in(tx: &mut Tx, user_id: i64) -> DbResult<i64> {
    let row = tx
        .fetch_optional(
            "SELECT COUNT(*) AS n FROM org_members WHERE user_id = ? AND role = 'owner'",
            &[Value::Int(user_id)],
        )
        .await?
        .ok_or_else(|| DbError::Corrupt("COUNT returned no row".into()))?;
    Ok(row.try_get("n")?)
}

/// The slugs of the organisations a person owns.
pub async fn owned_slugs(db: &Db, user_id: i64) -> DbResult<Vec<String>> {
    let rows = db
        .fetch_all_with(
            "SELECT o.slug FROM orgs o JOIN org_members m ON m.org_id = o.id \
             WHERE m.user_id = ? AND m.role = 'owner' ORDER BY o.slug",
            &[Value::Int(user_id)],
        )
        .await?;
    rows.iter().map(|row| text(row, "slug")).collect()
}

/// Locks the organisation's row for the rest of the transaction (without changing it), so
/// checks and the writes that depend on them run one at a time. (The row count is not
/// the answer: MySQL counts only rows whose values changed.)
pub async fn lock(tx: &mut Tx, org_id: i64) -> DbResult<()> {
    tx.execute(
        "UPDATE orgs SET updated_at = updated_at WHERE id = ?",
        &[Value::Int(org_id)],
    )
    .await?;
    Ok(())
}

/// Changes the organisation's settings (not its wallet). A budget of another period starts
/// counting afresh: what the old period spent is forgotten.
pub async fn update(tx: &mut Tx, org: &OrgRow) -> DbResult<bool> {
    let new_period = org.budget.map_or("", |b| b.period.as_str()).to_string();
    let period_changed = tx
        .fetch_optional(
            "SELECT id FROM orgs WHERE id = ? AND budget_period <> ?",
            &[Value::Int(org.id), Value::Text(new_period)],
        )
        .await?
        .is_some();
    let [period, quota] = budget_values(org.budget);
    let changed = tx
        .execute(
            "UPDATE orgs SET name = ?, slug = ?, group_name = ?, timezone = ?, budget_period = ?, \
             budget_quota = ?, updated_at = ? WHERE id = ?",
            &[
                Value::Text(org.name.clone()),
                Value::Text(org.slug.clone()),
                Value::Text(org.group_name.clone()),
                Value::Text(org.timezone.clone()),
                period,
                quota,
                Value::Int(now_ms()),
                Value::Int(org.id),
            ],
        )
        .await?;
    if period_changed {
        // After the update locked the row, as for a key's budget (see `tokens::update`).
        tx.execute(
            "DELETE FROM budget_spend WHERE scope_kind = 'org' AND scope_id = ?",
            &[Value::Int(org.id)],
        )
        .await?;
    }
    tx.changed(Change::Org(org.id));
    Ok(changed > 0)
}

/// Offers ownership to a member (0: withdraws the offer).
pub async fn set_pending_owner(tx: &mut Tx, org_id: i64, user_id: i64) -> DbResult<bool> {
    let changed = tx
        .execute(
            "UPDATE orgs SET pending_owner = ?, updated_at = ? WHERE id = ?",
            &[
                Value::Int(user_id),
                Value::Int(now_ms()),
                Value::Int(org_id),
            ],
        )
        .await?;
    tx.changed(Change::Org(org_id));
    Ok(changed > 0)
}

/// Adds `delta` (negative to deduct) to the wallet in one atomic statement; false when the
/// organisation is gone or the balance would leave the 64-bit range.
pub async fn add_quota(tx: &mut Tx, org_id: i64, delta: i64) -> DbResult<bool> {
    let (low, high) = super::addable_range(delta);
    let changed = tx
        .execute(
            "UPDATE orgs SET quota = quota + ?, updated_at = ? WHERE id = ? AND quota >= ? \
             AND quota <= ?",
            &[
                Value::Int(delta),
                Value::Int(now_ms()),
                Value::Int(org_id),
                Value::Int(low),
                Value::Int(high),
            ],
        )
        .await?;
    tx.changed(Change::Org(org_id));
    Ok(changed > 0)
}

/// The wallet's balance as this transaction sees it.
pub async fn quota_in(tx: &mut Tx, org_id: i64) -> DbResult<i64> {
    let row = tx
        .fetch_optional("SELECT quota FROM orgs WHERE id = ?", &[Value::Int(org_id)])
        .await?
        .ok_or_else(|| DbError::Corrupt(format!("organisation {org_id} vanished")))?;
    Ok(row.try_get("quota")?)
}

/// Adds a person to an organisation. Already a member: `DbError::Conflict`.
pub async fn add_member(tx: &mut Tx, org_id: i64, user_id: i64, role: OrgRole) -> DbResult<i64> {
    let id = tx
        .insert_returning_id(
            "INSERT INTO org_members (org_id, user_id, role, created_at) VALUES (?, ?, ?, ?)",
            &[
                Value::Int(org_id),
                Value::Int(user_id),
                Value::Text(role.as_str().to_string()),
                Value::Int(now_ms()),
            ],
        )
        .await?;
    tx.changed(Change::Org(org_id));
    Ok(id)
}

pub async fn set_role(tx: &mut Tx, org_id: i64, user_id: i64, role: OrgRole) -> DbResult<bool> {
    let changed = tx
        .execute(
            "UPDATE org_members SET role = ? WHERE org_id = ? AND user_id = ?",
            &[
                Value::Text(role.as_str().to_string()),
                Value::Int(org_id),
                Value::Int(user_id),
            ],
        )
        .await?;
    tx.changed(Change::Org(org_id));
    Ok(changed > 0)
}

/// Deletes keys by id (team keys whose owner left their team), with what their budgets spent.
async fn delete_keys(tx: &mut Tx, ids: &[i64]) -> DbResult<()> {
    for &id in ids {
        tx.execute("DELETE FROM tokens WHERE id = ?", &[Value::Int(id)])
            .await?;
        tx.execute(
            "DELETE FROM budget_spend WHERE scope_kind = 'key' AND scope_id = ?",
            &[Value::Int(id)],
        )
        .await?;
        tx.changed(Change::Token(id));
    }
    Ok(())
}

async fn ids(tx: &mut Tx, sql: &str, values: &[Value]) -> DbResult<Vec<i64>> {
    tx.fetch_all(sql, values)
        .await?
        .iter()
        .map(|row| Ok(row.try_get("id")?))
        .collect()
}

/// Deletes team memberships by id, with what their caps spent.
async fn delete_team_members(tx: &mut Tx, ids: &[i64]) -> DbResult<()> {
    for &id in ids {
        tx.execute("DELETE FROM team_members WHERE id = ?", &[Value::Int(id)])
            .await?;
        tx.execute(
            "DELETE FROM budget_spend WHERE scope_kind = 'member' AND scope_id = ?",
            &[Value::Int(id)],
        )
        .await?;
    }
    Ok(())
}

/// Takes a person out of an organisation: their team memberships and team keys of it go,
/// and an offer of ownership to them is withdrawn. Returns the keys deleted.
pub async fn remove_member(tx: &mut Tx, org_id: i64, user_id: i64) -> DbResult<Vec<i64>> {
    let both = [Value::Int(org_id), Value::Int(user_id)];
    let keys = ids(
        tx,
        "SELECT id FROM tokens WHERE org_id = ? AND user_id = ?",
        &both,
    )
    .await?;
    delete_keys(tx, &keys).await?;
    let memberships = ids(
        tx,
        "SELECT id FROM team_members WHERE org_id = ? AND user_id = ?",
        &both,
    )
    .await?;
    delete_team_members(tx, &memberships).await?;
    tx.execute(
        "DELETE FROM org_members WHERE org_id = ? AND user_id = ?",
        &both,
    )
    .await?;
    tx.execute(
        "UPDATE orgs SET pending_owner = 0 WHERE id = ? AND pending_owner = ?",
        &both,
    )
    .await?;
    tx.changed(Change::Org(org_id));
    Ok(keys)
}

/// Takes a person out of every organisation they belong to (their account is being deleted;
/// the owner of one cannot be). Their keys are deleted by the caller.
pub async fn remove_person(tx: &mut Tx, user_id: i64) -> DbResult<()> {
    let orgs: Vec<i64> = tx
        .fetch_all(
            "SELECT org_id FROM org_members WHERE user_id = ?",
            &[Value::Int(user_id)],
        )
        .await?
        .iter()
        .map(|row| row.try_get("org_id"))
        .collect::<Result<_, _>>()?;
    for org_id in orgs {
        remove_member(tx, org_id, user_id).await?;
    }
    Ok(())
}

/// Settings of a team to store.
#[derive(Clone, Debug)]
pub struct TeamSettings {
    pub name: String,
    pub budget: Option<Budget>,
    pub member_cap_quota: Option<i64>,
    pub group_names: Vec<String>,
}

fn team_values(team: &TeamSettings) -> Vec<Value> {
    let [period, quota] = budget_values(team.budget);
    vec![
        Value::Text(team.name.clone()),
        period,
        quota,
        Value::OptInt(team.member_cap_quota),
        Value::Text(team.group_names.join(",")),
    ]
}

/// Creates a team. A name the organisation already has is a `DbError::Conflict`.
pub async fn insert_team(tx: &mut Tx, org_id: i64, team: &TeamSettings) -> DbResult<i64> {
    let now = now_ms();
    let mut values = vec![Value::Int(org_id)];
    values.extend(team_values(team));
    values.extend([Value::Int(now), Value::Int(now)]);
    let id = tx
        .insert_returning_id(
            "INSERT INTO teams (org_id, name, budget_period, budget_quota, member_cap_quota, \
             group_names, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            &values,
        )
        .await?;
    tx.changed(Change::Org(org_id));
    Ok(id)
}

/// Changes a team. Another period starts the team's and its members' spending afresh.
pub async fn update_team(
    tx: &mut Tx,
    org_id: i64,
    team_id: i64,
    team: &TeamSettings,
) -> DbResult<bool> {
    let new_period = team.budget.map_or("", |b| b.period.as_str()).to_string();
    let period_changed = tx
        .fetch_optional(
            "SELECT id FROM teams WHERE id = ? AND budget_period <> ?",
            &[Value::Int(team_id), Value::Text(new_period)],
        )
        .await?
        .is_some();
    let mut values = team_values(team);
    values.extend([
        Value::Int(now_ms()),
        Value::Int(team_id),
        Value::Int(org_id),
    ]);
    let changed = tx
        .execute(
            "UPDATE teams SET name = ?, budget_period = ?, budget_quota = ?, member_cap_quota = ?, \
             group_names = ?, updated_at = ? WHERE id = ? AND org_id = ?",
            &values,
        )
        .await?;
    if changed > 0 && period_changed {
        // After the update locked the team's row, which its members' caps count by too
        // (see `tokens::update`).
        tx.execute(
            "DELETE FROM budget_spend WHERE scope_kind = 'team' AND scope_id = ?",
            &[Value::Int(team_id)],
        )
        .await?;
        tx.execute(
            "DELETE FROM budget_spend WHERE scope_kind = 'member' AND scope_id IN \
             (SELECT id FROM team_members WHERE team_id = ?)",
            &[Value::Int(team_id)],
        )
        .await?;
    }
    tx.changed(Change::Org(org_id));
    Ok(changed > 0)
}

/// Deletes a team with its memberships and keys. Returns the keys deleted.
pub async fn delete_team(tx: &mut Tx, org_id: i64, team_id: i64) -> DbResult<Vec<i64>> {
    let team = [Value::Int(team_id)];
    let keys = ids(tx, "SELECT id FROM tokens WHERE team_id = ?", &team).await?;
    delete_keys(tx, &keys).await?;
    let memberships = ids(tx, "SELECT id FROM team_members WHERE team_id = ?", &team).await?;
    delete_team_members(tx, &memberships).await?;
    tx.execute(
        "DELETE FROM budget_spend WHERE scope_kind = 'team' AND scope_id = ?",
        &team,
    )
    .await?;
    tx.execute(
        "DELETE FROM teams WHERE id = ? AND org_id = ?",
        &[Value::Int(team_id), Value::Int(org_id)],
    )
    .await?;
    tx.changed(Change::Org(org_id));
    Ok(keys)
}

/// Puts a member in a team, or changes their place in it: whether they manage it, and their
/// own cap (None: the team's default).
pub async fn put_team_member(
    tx: &mut Tx,
    org_id: i64,
    team_id: i64,
    user_id: i64,
    manager: bool,
    cap_quota: Option<i64>,
) -> DbResult<()> {
    let changed = tx
        .execute(
            "UPDATE team_members SET manager = ?, cap_quota = ? WHERE team_id = ? AND user_id = ?",
            &[
                Value::Int(i64::from(manager)),
                Value::OptInt(cap_quota),
                Value::Int(team_id),
                Value::Int(user_id),
            ],
        )
        .await?;
    if changed == 0 {
        tx.insert_returning_id(
            "INSERT INTO team_members (team_id, org_id, user_id, manager, cap_quota, created_at) \
             VALUES (?, ?, ?, ?, ?, ?)",
            &[
                Value::Int(team_id),
                Value::Int(org_id),
                Value::Int(user_id),
                Value::Int(i64::from(manager)),
                Value::OptInt(cap_quota),
                Value::Int(now_ms()),
            ],
        )
        .await?;
    }
    tx.changed(Change::Org(org_id));
    Ok(())
}

/// Takes a member out of a team, with their keys of that team. Returns the keys deleted.
pub async fn remove_team_member(
    tx: &mut Tx,
    org_id: i64,
    team_id: i64,
    user_id: i64,
) -> DbResult<Vec<i64>> {
    let both = [Value::Int(team_id), Value::Int(user_id)];
    let keys = ids(
        tx,
        "SELECT id FROM tokens WHERE team_id = ? AND user_id = ?",
        &both,
    )
    .await?;
    delete_keys(tx, &keys).await?;
    let memberships = ids(
        tx,
        "SELECT id FROM team_members WHERE team_id = ? AND user_id = ?",
        &both,
    )
    .await?;
    delete_team_members(tx, &memberships).await?;
    tx.changed(Change::Org(org_id));
    Ok(keys)
}

/// Deletes an organisation with its teams, memberships, invitations, team keys and budgets'
/// spending. The ledger keeps its rows. Returns the keys deleted.
pub async fn delete(tx: &mut Tx, org_id: i64) -> DbResult<Vec<i64>> {
    let org = [Value::Int(org_id)];
    let keys = ids(tx, "SELECT id FROM tokens WHERE org_id = ?", &org).await?;
    delete_keys(tx, &keys).await?;
    let teams = ids(tx, "SELECT id FROM teams WHERE org_id = ?", &org).await?;
    for team_id in teams {
        delete_team(tx, org_id, team_id).await?;
    }
    for sql in [
        "DELETE FROM budget_spend WHERE scope_kind = 'org' AND scope_id = ?",
        "DELETE FROM org_invitations WHERE org_id = ?",
        "DELETE FROM org_members WHERE org_id = ?",
        "DELETE FROM orgs WHERE id = ?",
    ] {
        tx.execute(sql, &org).await?;
    }
    tx.changed(Change::Org(org_id));
    Ok(keys)
}

/// One budget's period: its kind (`org`, `team`, `member`), its row and when the period
/// began.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScopeWindow {
    pub kind: &'static str,
    pub scope_id: i64,
    pub window_start: i64,
}

/// Scopes per statement (three bind values each).
const SCOPES_PER_QUERY: usize = 150;

/// What each of these budgets spent in the period given, as recorded (absent: nothing).
pub async fn spent_in(db: &Db, windows: &[ScopeWindow]) -> DbResult<Vec<(ScopeWindow, i64)>> {
    let mut found = Vec::new();
    for chunk in windows.chunks(SCOPES_PER_QUERY) {
        let conditions =
            vec!["(scope_kind = ? AND scope_id = ? AND window_start = ?)"; chunk.len()]
                .join(" OR ");
        let sql = format!(
            "SELECT scope_kind, scope_id, window_start, spent FROM budget_spend WHERE {conditions}"
        );
        let values: Vec<Value> = chunk
            .iter()
            .flat_map(|w| {
                [
                    Value::Text(w.kind.to_string()),
                    Value::Int(w.scope_id),
                    Value::Int(w.window_start),
                ]
            })
            .collect();
        for row in db.fetch_all_with(&sql, &values).await? {
            let kind = text(&row, "scope_kind")?;
            let scope_id: i64 = row.try_get("scope_id")?;
            let window_start: i64 = row.try_get("window_start")?;
            if let Some(window) = chunk.iter().find(|w| {
                w.kind == kind && w.scope_id == scope_id && w.window_start == window_start
            }) {
                found.push((*window, row.try_get("spent")?));
            }
        }
    }
    Ok(found)
}

/// Teams by id with their organisation's slug: (team id, org slug, team name), for showing
/// team keys.
pub async fn team_labels(db: &Db, team_ids: &[i64]) -> DbResult<Vec<(i64, String, String)>> {
    let mut labels = Vec::new();
    for chunk in team_ids.chunks(super::IDS_PER_QUERY) {
        let sql = format!(
            "SELECT t.id, o.slug, t.name FROM teams t JOIN orgs o ON o.id = t.org_id \
             WHERE t.id IN ({})",
            super::placeholders(chunk.len())
        );
        let values: Vec<Value> = chunk.iter().map(|&id| Value::Int(id)).collect();
        for row in db.fetch_all_with(&sql, &values).await? {
            labels.push((row.try_get("id")?, text(&row, "slug")?, text(&row, "name")?));
        }
    }
    Ok(labels)
}

/// An organisation whose wallet is not what its ledger says.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct OrgDiscrepancy {
    pub org_id: i64,
    pub slug: String,
    pub quota: i64,
    pub used_quota: i64,
    /// The sum of the organisation's ledger rows; the wallet should be this minus
    /// `used_quota`.
    pub ledger_total: i64,
}

/// Every organisation where `quota != SUM(ledger.amount) - used_quota`, and how many were
/// checked.
pub async fn discrepancies(db: &Db) -> DbResult<(i64, Vec<OrgDiscrepancy>)> {
    let total = match db.backend() {
        super::Backend::MySql => "CAST(COALESCE(SUM(amount), 0) AS SIGNED)",
        _ => "CAST(COALESCE(SUM(amount), 0) AS BIGINT)",
    };
    let sql = format!(
        "SELECT o.id, o.slug, o.quota, o.used_quota, COALESCE(l.total, 0) AS ledger_total \
         FROM orgs o LEFT JOIN (SELECT org_id, {total} AS total FROM ledger WHERE org_id <> 0 \
         GROUP BY org_id) l ON l.org_id = o.id \
         WHERE o.quota <> COALESCE(l.total, 0) - o.used_quota ORDER BY o.id"
    );
    let found = db
        .fetch_all_with(&sql, &[])
        .await?
        .iter()
        .map(|row| {
            Ok(OrgDiscrepancy {
                org_id: row.try_get("id")?,
                slug: text(row, "slug")?,
                quota: row.try_get("quota")?,
                used_quota: row.try_get("used_quota")?,
                ledger_total: row.try_get("ledger_total")?,
            })
        })
        .collect::<DbResult<Vec<_>>>()?;
    let checked: i64 = db
        .fetch_all_with("SELECT COUNT(*) AS n FROM orgs", &[])
        .await?
        .first()
        .map(|row| row.try_get("n"))
        .transpose()?
        .unwrap_or(0);
    Ok((checked, found))
}
