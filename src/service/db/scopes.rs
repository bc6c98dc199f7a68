//! Budget scopes as stored: each budget's spending per period (`budget_spend`), and the
//! organisations the relay holds its team keys' requests on.

use sqlx::Row;

use super::{Backend, Db, DbError, DbResult, Tx, Value, text};
use crate::domain::kinds::{BudgetPeriod, OrgRole};
pub use crate::records::logs::SpendDelta;
pub use crate::records::scopes::{Membership, OrgBalance, OrgScopes, ScopeSpend, TeamScopes};

/// Adds a batch's spending to its budgets' rows, creating the row of a period's first spend.
/// A row is written only while its budget is still set to the period the spending was held
/// in: a change of period forgets what the old one spent, and spending still on its way
/// (held before the change, written after) must not bring it back, nor count in the new
/// period, whose first window may begin at the same instant (a Monday, the 1st).
///
/// Each statement reads the budget's owner row with a shared lock, and a change of period
/// locks that row before it deletes the old period's rows (see `tokens::update`), so a
/// write and a change are ordered one way or the other: the change deletes what was
/// written, or the write sees the new period.
///
/// `spend` is in key order, so concurrent writers take the rows' locks in one order.
pub(super) async fn add_spend_in(tx: &mut Tx, spend: &[SpendDelta]) -> DbResult<()> {
    let backend = tx.backend();
    let conflict = match backend {
        Backend::MySql => " ON DUPLICATE KEY UPDATE spent = spent + ?",
        Backend::Sqlite | Backend::Postgres => {
            " ON CONFLICT (scope_kind, scope_id, window_start) \
             DO UPDATE SET spent = budget_spend.spent + excluded.spent"
        }
    };
    let lock = match backend {
        Backend::Sqlite => "",
        Backend::Postgres => " FOR SHARE OF o",
        Backend::MySql => " LOCK IN SHARE MODE",
    };
    for row in spend {
        let owner = owner_in_period(row.kind)?;
        let sql = format!(
            "INSERT INTO budget_spend (scope_kind, scope_id, window_start, spent) \
             SELECT ?, ?, ?, ? FROM {owner}{lock}{conflict}"
        );
        let spent = row.spent.max(0);
        let mut values = vec![
            Value::Text(row.kind.into()),
            Value::Int(row.scope_id),
            Value::Int(row.window_start),
            Value::Int(spent),
            Value::Int(row.scope_id),
            Value::Text(row.period.into()),
        ];
        if backend == Backend::MySql {
            values.push(Value::Int(spent));
        }
        tx.execute(&sql, &values).await?;
    }
    Ok(())
}

/// The `FROM … WHERE` that finds a budget's owner row while the budget counts in a given
/// period (binds: the scope's id, the period). A member's cap counts in its team's period,
/// or monthly where the team has no budget of its own.
fn owner_in_period(kind: &str) -> DbResult<String> {
    Ok(match kind {
        "key" => "tokens o WHERE o.id = ? AND o.budget_period = ?".into(),
        "team" => "teams o WHERE o.id = ? AND o.budget_period = ?".into(),
        "org" => "orgs o WHERE o.id = ? AND o.budget_period = ?".into(),
        "member" => format!(
            "team_members m JOIN teams o ON o.id = m.team_id WHERE m.id = ? \
             AND (CASE WHEN o.budget_period = '' THEN '{}' ELSE o.budget_period END) = ?",
            BudgetPeriod::CAP_WITHOUT_TEAM_BUDGET.as_str()
        ),
        other => return Err(DbError::Corrupt(format!("budget kind '{other}'"))),
    })
}

fn period_of(row: &sqlx::any::AnyRow, what: &str) -> DbResult<Option<(BudgetPeriod, i64)>> {
    let period: String = text(row, "budget_period")?;
    if period.is_empty() {
        return Ok(None);
    }
    let period = BudgetPeriod::parse(&period)
        .ok_or_else(|| DbError::Corrupt(format!("{what} budget period '{period}'")))?;
    Ok(Some((period, row.try_get("budget_quota")?)))
}

/// An organisation with its teams, members and budgets' latest spending; None when it does
/// not exist.
pub async fn org_scopes(db: &Db, org_id: i64) -> DbResult<Option<OrgScopes>> {
    let rows = db
        .fetch_all_with(
            "SELECT id, slug, name, timezone, quota, budget_period, budget_quota FROM orgs \
             WHERE id = ?",
            &[Value::Int(org_id)],
        )
        .await?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let mut org = OrgScopes {
        id: row.try_get("id")?,
        slug: text(row, "slug")?,
        name: text(row, "name")?,
        timezone: text(row, "timezone")?,
        quota: row.try_get("quota")?,
        budget: period_of(row, "organisation")?,
        teams: Vec::new(),
        members: Vec::new(),
        memberships: Vec::new(),
        spend: Vec::new(),
    };
    let id = Value::Int(org_id);
    for row in db
        .fetch_all_with(
            "SELECT id, name, budget_period, budget_quota, member_cap_quota FROM teams \
             WHERE org_id = ? ORDER BY id",
            std::slice::from_ref(&id),
        )
        .await?
    {
        org.teams.push(TeamScopes {
            id: row.try_get("id")?,
            name: text(&row, "name")?,
            budget: period_of(&row, "team")?,
            member_cap: row.try_get("member_cap_quota")?,
        });
    }
    for row in db
        .fetch_all_with(
            "SELECT user_id, role FROM org_members WHERE org_id = ? ORDER BY user_id",
            std::slice::from_ref(&id),
        )
        .await?
    {
        let role: String = text(&row, "role")?;
        let role = OrgRole::parse(&role)
            .ok_or_else(|| DbError::Corrupt(format!("organisation role '{role}'")))?;
        org.members.push((row.try_get("user_id")?, role));
    }
    for row in db
        .fetch_all_with(
            "SELECT id, team_id, user_id, cap_quota FROM team_members WHERE org_id = ? \
             ORDER BY id",
            std::slice::from_ref(&id),
        )
        .await?
    {
        org.memberships.push(Membership {
            id: row.try_get("id")?,
            team_id: row.try_get("team_id")?,
            user_id: row.try_get("user_id")?,
            cap: row.try_get("cap_quota")?,
        });
    }
    org.spend = latest_spend(db, &[org_id])
        .await?
        .into_iter()
        .map(|(_, spend)| spend)
        .collect();
    Ok(Some(org))
}

/// These organisations' wallets and budgets' latest spending, as stored.
pub async fn org_balances(db: &Db, org_ids: &[i64]) -> DbResult<Vec<OrgBalance>> {
    let mut balances = Vec::with_capacity(org_ids.len());
    for chunk in org_ids.chunks(super::IDS_PER_QUERY) {
        let sql = format!(
            "SELECT id, quota FROM orgs WHERE id IN ({})",
            super::placeholders(chunk.len())
        );
        let values: Vec<Value> = chunk.iter().map(|&id| Value::Int(id)).collect();
        for row in db.fetch_all_with(&sql, &values).await? {
            balances.push(OrgBalance {
                id: row.try_get("id")?,
                quota: row.try_get("quota")?,
                spend: Vec::new(),
            });
        }
        for (org_id, spend) in latest_spend(db, chunk).await? {
            if let Some(balance) = balances.iter_mut().find(|b| b.id == org_id) {
                balance.spend.push(spend);
            }
        }
    }
    Ok(balances)
}

/// The latest period's spending of every budget of these organisations (their own, their
/// teams', their members' caps), each with its organisation.
async fn latest_spend(db: &Db, org_ids: &[i64]) -> DbResult<Vec<(i64, ScopeSpend)>> {
    if org_ids.is_empty() {
        return Ok(Vec::new());
    }
    let ids = super::placeholders(org_ids.len());
    let latest = "b.window_start = (SELECT MAX(c.window_start) FROM budget_spend c \
         WHERE c.scope_kind = b.scope_kind AND c.scope_id = b.scope_id)";
    let sql = format!(
        "SELECT b.scope_id AS org_id, b.scope_kind, b.scope_id, b.window_start, b.spent \
         FROM budget_spend b WHERE b.scope_kind = 'org' AND b.scope_id IN ({ids}) AND {latest} \
         UNION ALL \
         SELECT t.org_id, b.scope_kind, b.scope_id, b.window_start, b.spent \
         FROM budget_spend b JOIN teams t ON t.id = b.scope_id \
         WHERE b.scope_kind = 'team' AND t.org_id IN ({ids}) AND {latest} \
         UNION ALL \
         SELECT m.org_id, b.scope_kind, b.scope_id, b.window_start, b.spent \
         FROM budget_spend b JOIN team_members m ON m.id = b.scope_id \
         WHERE b.scope_kind = 'member' AND m.org_id IN ({ids}) AND {latest}"
    );
    let values: Vec<Value> = std::iter::repeat_n(org_ids, 3)
        .flatten()
        .map(|&id| Value::Int(id))
        .collect();
    db.fetch_all_with(&sql, &values)
        .await?
        .iter()
        .map(|row| {
            Ok((
                row.try_get("org_id")?,
                ScopeSpend {
                    kind: text(row, "scope_kind")?,
                    scope_id: row.try_get("scope_id")?,
                    window_start: row.try_get("window_start")?,
                    spent: row.try_get("spent")?,
                },
            ))
        })
        .collect()
}
