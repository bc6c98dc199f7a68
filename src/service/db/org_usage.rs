//! An organisation's spending from its request log rows, for its usage page and its
//! chargeback report.

use sqlx::Row;

use super::{Backend, Db, DbResult, Value, text};
use crate::records::logs::RequestLog;

/// What to sum: the organisation's rows in `[from_ms, to_ms)`, narrowed by what is set.
#[derive(Clone, Debug, Default)]
pub struct UsageQuery {
    pub org_id: i64,
    pub from_ms: i64,
    pub to_ms: i64,
    pub team_id: Option<i64>,
    /// Several teams (a manager's): any of them.
    pub team_ids: Option<Vec<i64>>,
    pub user_id: Option<i64>,
    pub token_id: Option<i64>,
    pub model: Option<String>,
}

/// One group's sums.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageSums {
    pub team_id: i64,
    pub user_id: i64,
    pub username: String,
    pub model: String,
    pub requests: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cost: i64,
}

/// The conditions on `request_logs l` that `query` asks for; None when it can match nothing
/// (a manager of no team).
fn conditions_of(query: &UsageQuery) -> Option<(Vec<String>, Vec<Value>)> {
    let mut conditions = vec![
        "l.org_id = ?".to_string(),
        "l.created_at >= ?".to_string(),
        "l.created_at < ?".to_string(),
    ];
    let mut values = vec![
        Value::Int(query.org_id),
        Value::Int(query.from_ms),
        Value::Int(query.to_ms),
    ];
    if let Some(team) = query.team_id {
        conditions.push("l.team_id = ?".into());
        values.push(Value::Int(team));
    }
    if let Some(teams) = &query.team_ids {
        if teams.is_empty() {
            return None;
        }
        conditions.push(format!(
            "l.team_id IN ({})",
            super::placeholders(teams.len())
        ));
        values.extend(teams.iter().map(|&id| Value::Int(id)));
    }
    if let Some(user) = query.user_id {
        conditions.push("l.user_id = ?".into());
        values.push(Value::Int(user));
    }
    if let Some(token) = query.token_id {
        conditions.push("l.token_id = ?".into());
        values.push(Value::Int(token));
    }
    if let Some(model) = &query.model {
        conditions.push("l.model = ?".into());
        values.push(Value::Text(model.clone()));
    }
    Some((conditions, values))
}

/// The newest of the rows `query` matches, newest first, at most `limit`.
pub async fn latest(db: &Db, query: &UsageQuery, limit: i64) -> DbResult<Vec<RequestLog>> {
    let Some((conditions, mut values)) = conditions_of(query) else {
        return Ok(Vec::new());
    };
    values.push(Value::Int(limit.clamp(1, 1000)));
    let sql = format!(
        "SELECT {} FROM request_logs l WHERE {} ORDER BY l.created_at DESC, l.id DESC LIMIT ?",
        super::logs::select_list(),
        conditions.join(" AND "),
    );
    let rows = db.fetch_all_with(&sql, &values).await?;
    rows.iter().map(super::logs::read_row).collect()
}

/// The sums per team, member and model. Requests refused before any upstream was asked are
/// not counted (they cost nothing).
pub async fn sums(db: &Db, query: &UsageQuery) -> DbResult<Vec<UsageSums>> {
    let sum = |column: &str| match db.backend() {
        Backend::MySql => format!("CAST(COALESCE(SUM({column}), 0) AS SIGNED)"),
        _ => format!("CAST(COALESCE(SUM({column}), 0) AS BIGINT)"),
    };
    let Some((mut conditions, values)) = conditions_of(query) else {
        return Ok(Vec::new());
    };
    // Refused before any upstream was asked: they cost nothing.
    conditions.push("l.outcome <> 'refused'".into());
    let sql = format!(
        "SELECT l.team_id, l.user_id, MAX(l.username) AS username, l.model, \
         CAST(COUNT(*) AS {count}) AS requests, {prompt} AS prompt_tokens, \
         {completion} AS completion_tokens, {cost} AS cost \
         FROM request_logs l WHERE {} GROUP BY l.team_id, l.user_id, l.model \
         ORDER BY l.team_id, username, l.model",
        conditions.join(" AND "),
        count = if db.backend() == Backend::MySql {
            "SIGNED"
        } else {
            "BIGINT"
        },
        prompt = sum("l.prompt_tokens"),
        completion = sum("l.completion_tokens"),
        cost = sum("l.cost"),
    );
    db.fetch_all_with(&sql, &values)
        .await?
        .iter()
        .map(|row| {
            Ok(UsageSums {
                team_id: row.try_get("team_id")?,
                user_id: row.try_get("user_id")?,
                username: text(row, "username")?,
                model: text(row, "model")?,
                requests: row.try_get("requests")?,
                prompt_tokens: row.try_get("prompt_tokens")?,
                completion_tokens: row.try_get("completion_tokens")?,
                cost: row.try_get("cost")?,
            })
        })
        .collect()
}
