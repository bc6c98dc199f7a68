//! Reads of an organisation's spending and team keys for its pages: what each team and member
//! spent since a moment (from the request log, whose `(org_id, created_at, id)` index finds the
//! organisation's rows), and the keys a team holds.

use sqlx::Row;

use super::{Backend, Db, DbResult, Value, text};

/// `CAST(COALESCE(SUM(cost), 0) AS BIGINT)` spelled for the backend (PostgreSQL sums BIGINT
/// as NUMERIC).
fn summed_cost(backend: Backend) -> &'static str {
    match backend {
        Backend::MySql => "CAST(COALESCE(SUM(cost), 0) AS SIGNED)",
        _ => "CAST(COALESCE(SUM(cost), 0) AS BIGINT)",
    }
}

/// What the organisation's team keys spent from `since_ms` on, per team and member:
/// (team id, user id, spent units).
pub async fn spent_since(db: &Db, org_id: i64, since_ms: i64) -> DbResult<Vec<(i64, i64, i64)>> {
    let sql = format!(
        "SELECT team_id, user_id, {} AS spent FROM request_logs \
         WHERE org_id = ? AND created_at >= ? GROUP BY team_id, user_id",
        summed_cost(db.backend())
    );
    let rows = db
        .fetch_all_with(&sql, &[Value::Int(org_id), Value::Int(since_ms)])
        .await?;
    rows.iter()
        .map(|row| {
            Ok((
                row.try_get("team_id")?,
                row.try_get("user_id")?,
                row.try_get("spent")?,
            ))
        })
        .collect()
}

/// What each organisation's team keys spent from its own moment on: `since` holds (org id,
/// from ms) pairs; the answer (org id, spent units) names those that spent. One query for a
/// page of organisations, each in its own period and zone.
pub async fn spent_by_orgs(db: &Db, since: &[(i64, i64)]) -> DbResult<Vec<(i64, i64)>> {
    if since.is_empty() {
        return Ok(Vec::new());
    }
    let each = vec!["(org_id = ? AND created_at >= ?)"; since.len()].join(" OR ");
    let sql = format!(
        "SELECT org_id, {} AS spent FROM request_logs WHERE {each} GROUP BY org_id",
        summed_cost(db.backend())
    );
    let values: Vec<Value> = since
        .iter()
        .flat_map(|(org, from)| [Value::Int(*org), Value::Int(*from)])
        .collect();
    db.fetch_all_with(&sql, &values)
        .await?
        .iter()
        .map(|row| Ok((row.try_get("org_id")?, row.try_get("spent")?)))
        .collect()
}

/// A team key, as the page deleting its team names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TeamKeyRow {
    pub id: i64,
    pub name: String,
    pub user_id: i64,
}

/// The keys of a team of the organisation, by name.
pub async fn team_keys(db: &Db, org_id: i64, team_id: i64) -> DbResult<Vec<TeamKeyRow>> {
    let rows = db
        .fetch_all_with(
            "SELECT id, name, user_id FROM tokens WHERE org_id = ? AND team_id = ? \
             ORDER BY name, id",
            &[Value::Int(org_id), Value::Int(team_id)],
        )
        .await?;
    rows.iter()
        .map(|row| {
            Ok(TeamKeyRow {
                id: row.try_get("id")?,
                name: text(row, "name")?,
                user_id: row.try_get("user_id")?,
            })
        })
        .collect()
}
