//! Budget alerts as stored: the organisations' budgets whose latest periods have spent 80 % or
//! more, who is mailed about them, and the alerts already claimed (`budget_alerts`, migration
//! 0022).

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Db, DbError, DbResult, Tx, Value, text};
use crate::domain::kinds::BudgetPeriod;

/// An organisation budget (`org`), team budget (`team`) or member cap (`member`) whose period
/// beginning at `window_start` has spent 80 % of its limit or more (a member cap: all of it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NearLimit {
    /// `org`, `team` or `member`, as in `budget_spend`.
    pub kind: &'static str,
    pub scope_id: i64,
    pub window_start: i64,
    pub spent: i64,
    pub limit: i64,
    /// The budget's period; None for a member cap whose team has no budget.
    pub period: Option<BudgetPeriod>,
    pub org_id: i64,
    pub org_name: String,
    pub org_slug: String,
    /// The organisation's zone; empty: the site's.
    pub timezone: String,
    /// The team (0 for the organisation's budget).
    pub team_id: i64,
    pub team_name: String,
    /// The member a cap belongs to (0 for a budget).
    pub user_id: i64,
}

fn period_of(row: &AnyRow) -> DbResult<Option<BudgetPeriod>> {
    let period = text(row, "budget_period")?;
    if period.is_empty() {
        return Ok(None);
    }
    BudgetPeriod::parse(&period)
        .map(Some)
        .ok_or_else(|| DbError::Corrupt(format!("budget period '{period}'")))
}

fn near_limit(kind: &'static str, row: &AnyRow) -> DbResult<NearLimit> {
    Ok(NearLimit {
        kind,
        scope_id: row.try_get("scope_id")?,
        window_start: row.try_get("window_start")?,
        spent: row.try_get("spent")?,
        limit: row.try_get("budget_limit")?,
        period: period_of(row)?,
        org_id: row.try_get("org_id")?,
        org_name: text(row, "org_name")?,
        org_slug: text(row, "org_slug")?,
        timezone: text(row, "timezone")?,
        team_id: row.try_get("team_id")?,
        team_name: text(row, "team_name")?,
        user_id: row.try_get("user_id")?,
    })
}

/// Every budget of an organisation whose period beginning at `since` or later has spent 80 %
/// of its limit, and every member cap fully spent. The database compares (`spent * 5 >=
/// limit * 4`), so a round reads only the few budgets near their end; whether a period is the
/// current one is for the caller, who knows the calendars.
pub async fn near_limits(db: &Db, since: i64) -> DbResult<Vec<NearLimit>> {
    let since = [Value::Int(since)];
    let mut found = Vec::new();
    for row in db
        .fetch_all_with(
            "SELECT b.scope_id, b.window_start, b.spent, o.budget_quota AS budget_limit, \
             o.budget_period, o.id AS org_id, o.name AS org_name, o.slug AS org_slug, \
             o.timezone, 0 AS team_id, '' AS team_name, 0 AS user_id \
             FROM budget_spend b JOIN orgs o ON o.id = b.scope_id \
             WHERE b.scope_kind = 'org' AND b.window_start >= ? AND o.budget_period <> '' \
             AND o.budget_quota > 0 AND b.spent * 5 >= o.budget_quota * 4 \
             ORDER BY b.scope_id, b.window_start",
            &since,
        )
        .await?
    {
        found.push(near_limit("org", &row)?);
    }
    for row in db
        .fetch_all_with(
            "SELECT b.scope_id, b.window_start, b.spent, t.budget_quota AS budget_limit, \
             t.budget_period, o.id AS org_id, o.name AS org_name, o.slug AS org_slug, \
             o.timezone, t.id AS team_id, t.name AS team_name, 0 AS user_id \
             FROM budget_spend b JOIN teams t ON t.id = b.scope_id JOIN orgs o ON o.id = t.org_id \
             WHERE b.scope_kind = 'team' AND b.window_start >= ? AND t.budget_period <> '' \
             AND t.budget_quota > 0 AND b.spent * 5 >= t.budget_quota * 4 \
             ORDER BY b.scope_id, b.window_start",
            &since,
        )
        .await?
    {
        found.push(near_limit("team", &row)?);
    }
    for row in db
        .fetch_all_with(
            "SELECT b.scope_id, b.window_start, b.spent, \
             COALESCE(m.cap_quota, t.member_cap_quota) AS budget_limit, t.budget_period, \
             o.id AS org_id, o.name AS org_name, o.slug AS org_slug, o.timezone, \
             t.id AS team_id, t.name AS team_name, m.user_id \
             FROM budget_spend b JOIN team_members m ON m.id = b.scope_id \
             JOIN teams t ON t.id = m.team_id JOIN orgs o ON o.id = m.org_id \
             WHERE b.scope_kind = 'member' AND b.window_start >= ? \
             AND COALESCE(m.cap_quota, t.member_cap_quota) > 0 \
             AND b.spent >= COALESCE(m.cap_quota, t.member_cap_quota) \
             ORDER BY b.scope_id, b.window_start",
            &since,
        )
        .await?
    {
        found.push(near_limit("member", &row)?);
    }
    Ok(found)
}

/// Someone an alert is mailed to: an account with a proven address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recipient {
    pub user_id: i64,
    pub username: String,
    pub email: String,
    /// The portal language they chose (empty: none).
    pub locale: String,
}

fn recipient(row: &AnyRow) -> DbResult<Recipient> {
    Ok(Recipient {
        user_id: row.try_get("id")?,
        username: text(row, "username")?,
        email: text(row, "email")?,
        locale: text(row, "locale")?,
    })
}

/// Only active accounts with a proven address are mailed.
const MAILABLE: &str = "u.status = 'active' AND u.email IS NOT NULL AND u.email_verified = 1";

/// Who is told about an organisation's budget (`team_id` 0) or a team's: the organisation's
/// owner and admins, and for a team its managers who are still members; each person once.
pub async fn budget_recipients(db: &Db, org_id: i64, team_id: i64) -> DbResult<Vec<Recipient>> {
    let sql = format!(
        "SELECT u.id, u.username, u.email, u.locale FROM users u WHERE {MAILABLE} AND (\
         u.id IN (SELECT user_id FROM org_members WHERE org_id = ? AND role IN ('owner', 'admin')) \
         OR u.id IN (SELECT tm.user_id FROM team_members tm JOIN org_members om \
         ON om.org_id = tm.org_id AND om.user_id = tm.user_id \
         WHERE tm.team_id = ? AND tm.org_id = ? AND tm.manager = 1)) ORDER BY u.id"
    );
    db.fetch_all_with(
        &sql,
        &[Value::Int(org_id), Value::Int(team_id), Value::Int(org_id)],
    )
    .await?
    .iter()
    .map(recipient)
    .collect()
}

/// The member a cap belongs to, when they can be mailed.
pub async fn member_recipient(db: &Db, user_id: i64) -> DbResult<Option<Recipient>> {
    let sql = format!(
        "SELECT u.id, u.username, u.email, u.locale FROM users u WHERE u.id = ? AND {MAILABLE}"
    );
    db.fetch_all_with(&sql, &[Value::Int(user_id)])
        .await?
        .first()
        .map(recipient)
        .transpose()
}

/// One alert: a budget's period, the threshold (percent) and who it is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AlertKey {
    pub kind: &'static str,
    pub scope_id: i64,
    pub window_start: i64,
    pub threshold: i64,
    pub user_id: i64,
}

/// Budgets per statement (three bind values each).
const SCOPES_PER_QUERY: usize = 150;

/// The alerts already claimed for these budgets' periods (kind, scope, window start).
pub async fn claimed(db: &Db, scopes: &[(&'static str, i64, i64)]) -> DbResult<Vec<AlertKey>> {
    let mut found = Vec::new();
    for chunk in scopes.chunks(SCOPES_PER_QUERY) {
        let conditions =
            vec!["(scope_kind = ? AND scope_id = ? AND window_start = ?)"; chunk.len()]
                .join(" OR ");
        let sql = format!(
            "SELECT scope_kind, scope_id, window_start, threshold, user_id FROM budget_alerts \
             WHERE {conditions}"
        );
        let values: Vec<Value> = chunk
            .iter()
            .flat_map(|&(kind, scope_id, window_start)| {
                [
                    Value::Text(kind.to_string()),
                    Value::Int(scope_id),
                    Value::Int(window_start),
                ]
            })
            .collect();
        for row in db.fetch_all_with(&sql, &values).await? {
            let kind = text(&row, "scope_kind")?;
            // The kinds asked for are the only ones that can come back; name them statically.
            let Some(&(kind, _, _)) = chunk.iter().find(|(k, _, _)| *k == kind) else {
                continue;
            };
            found.push(AlertKey {
                kind,
                scope_id: row.try_get("scope_id")?,
                window_start: row.try_get("window_start")?,
                threshold: row.try_get("threshold")?,
                user_id: row.try_get("user_id")?,
            });
        }
    }
    Ok(found)
}

/// Claims an alert before it is mailed: true when this call inserted its row, false when the
/// row was there (another round or server has it). A plain insert whose conflict is the
/// answer, inside a savepoint so the transaction stays usable on PostgreSQL; MySQL's
/// "insert unless present" forms cannot tell the two apart through the driver.
pub async fn claim(tx: &mut Tx, alert: &AlertKey, now: i64) -> DbResult<bool> {
    tx.execute_raw("SAVEPOINT budget_alert").await?;
    let inserted = tx
        .execute(
            "INSERT INTO budget_alerts (scope_kind, scope_id, window_start, threshold, user_id, \
             claimed_at) VALUES (?, ?, ?, ?, ?, ?)",
            &[
                Value::Text(alert.kind.to_string()),
                Value::Int(alert.scope_id),
                Value::Int(alert.window_start),
                Value::Int(alert.threshold),
                Value::Int(alert.user_id),
                Value::Int(now),
            ],
        )
        .await;
    match inserted {
        Ok(_) => {
            tx.execute_raw("RELEASE SAVEPOINT budget_alert").await?;
            Ok(true)
        }
        Err(DbError::Conflict(_)) => {
            tx.execute_raw("ROLLBACK TO SAVEPOINT budget_alert").await?;
            tx.execute_raw("RELEASE SAVEPOINT budget_alert").await?;
            Ok(false)
        }
        Err(other) => Err(other),
    }
}

/// Gives a claimed alert up (its mail failed), so the next round tries it again.
pub async fn release(tx: &mut Tx, alert: &AlertKey) -> DbResult<()> {
    tx.execute(
        "DELETE FROM budget_alerts WHERE scope_kind = ? AND scope_id = ? AND window_start = ? \
         AND threshold = ? AND user_id = ?",
        &[
            Value::Text(alert.kind.to_string()),
            Value::Int(alert.scope_id),
            Value::Int(alert.window_start),
            Value::Int(alert.threshold),
            Value::Int(alert.user_id),
        ],
    )
    .await?;
    Ok(())
}

/// Drops the alerts of periods that began before `before`: no current period is that old.
pub async fn forget_before(tx: &mut Tx, before: i64) -> DbResult<u64> {
    tx.execute(
        "DELETE FROM budget_alerts WHERE window_start < ?",
        &[Value::Int(before)],
    )
    .await
}
