//! The audit log's rows and the chain's head.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Db, DbError, DbResult, Tx, Value, opt_text, text};
use crate::records::audit::{AuditFilter, AuditRow};

/// The chain's head, taken under its row's lock until the transaction ends: the last row's id
/// and hash. Audited writes therefore append one after the other.
pub async fn lock_head(tx: &mut Tx) -> DbResult<(i64, String)> {
    // The update takes the row lock on PostgreSQL and MySQL (SQLite's writer already holds the
    // whole database); reading after it sees the head as of the lock.
    tx.execute(
        "UPDATE audit_head SET last_id = last_id WHERE name = 'chain'",
        &[],
    )
    .await?;
    let row = tx
        .fetch_optional(
            "SELECT last_id, last_hash FROM audit_head WHERE name = 'chain'",
            &[],
        )
        .await?
        .ok_or_else(|| DbError::Corrupt("the audit_head table has no chain row".into()))?;
    Ok((row.try_get("last_id")?, text(&row, "last_hash")?))
}

/// Appends `row` and makes it the head.
pub async fn append(tx: &mut Tx, row: &AuditRow) -> DbResult<()> {
    let json = |v: &Option<serde_json::Value>| Value::OptText(v.as_ref().map(|v| v.to_string()));
    tx.execute(
        "INSERT INTO audit_log (id, at, actor, auth, ip, user_agent, action, target, \
         before_json, after_json, ledger_id, prev_hash, hash) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        &[
            Value::Int(row.id),
            Value::Int(row.at),
            Value::Text(row.actor.clone()),
            Value::Text(row.auth.clone()),
            Value::OptText(row.ip.clone()),
            Value::OptText(row.user_agent.clone()),
            Value::Text(row.action.clone()),
            Value::Text(row.target.clone()),
            json(&row.before),
            json(&row.after),
            Value::OptInt(row.ledger_id),
            Value::Text(row.prev_hash.clone()),
            Value::Text(row.hash.clone()),
        ],
    )
    .await?;
    tx.execute(
        "UPDATE audit_head SET last_id = ?, last_hash = ? WHERE name = 'chain'",
        &[Value::Int(row.id), Value::Text(row.hash.clone())],
    )
    .await?;
    Ok(())
}

/// The username of an account (audit rows name administrators by it).
pub async fn username(tx: &mut Tx, user_id: i64) -> DbResult<Option<String>> {
    let row = tx
        .fetch_optional(
            "SELECT username FROM users WHERE id = ?",
            &[Value::Int(user_id)],
        )
        .await?;
    row.map(|r| text(&r, "username")).transpose()
}

const COLUMNS: &str = "id, at, actor, auth, ip, user_agent, action, target, before_json, \
                       after_json, ledger_id, prev_hash, hash";

fn row_of(row: &AnyRow) -> DbResult<AuditRow> {
    let json = |column: &str| -> DbResult<Option<serde_json::Value>> {
        opt_text(row, column)?
            .map(|t| {
                serde_json::from_str(&t)
                    .map_err(|e| DbError::Corrupt(format!("audit {column} is not JSON: {e}")))
            })
            .transpose()
    };
    Ok(AuditRow {
        id: row.try_get("id")?,
        at: row.try_get("at")?,
        actor: text(row, "actor")?,
        auth: text(row, "auth")?,
        ip: opt_text(row, "ip")?,
        user_agent: opt_text(row, "user_agent")?,
        action: text(row, "action")?,
        target: text(row, "target")?,
        before: json("before_json")?,
        after: json("after_json")?,
        ledger_id: row.try_get("ledger_id")?,
        prev_hash: text(row, "prev_hash")?,
        hash: text(row, "hash")?,
    })
}

/// Newest first, narrowed by `filter`.
pub async fn list(db: &Db, filter: &AuditFilter) -> DbResult<Vec<AuditRow>> {
    let mut sql = format!("SELECT {COLUMNS} FROM audit_log WHERE 1 = 1");
    let mut values = Vec::new();
    let mut narrow = |clause: &str, value: Value| {
        sql.push_str(clause);
        values.push(value);
    };
    if let Some(actor) = &filter.actor {
        narrow(" AND actor = ?", Value::Text(actor.clone()));
    }
    if let Some(action) = &filter.action {
        narrow(" AND action = ?", Value::Text(action.clone()));
    }
    if let Some(from) = filter.from_ms {
        narrow(" AND at >= ?", Value::Int(from));
    }
    if let Some(to) = filter.to_ms {
        narrow(" AND at < ?", Value::Int(to));
    }
    if let Some(before) = filter.before_id {
        narrow(" AND id < ?", Value::Int(before));
    }
    if let Some(target) = &filter.target {
        // A target and what is inside it: `org:12` finds its teams' rows (`org:12/team:3`).
        // `!` escapes LIKE's wildcards the same way on every backend.
        let escaped = target
            .replace('!', "!!")
            .replace('%', "!%")
            .replace('_', "!_");
        sql.push_str(" AND (target = ? OR target LIKE ? ESCAPE '!')");
        values.push(Value::Text(target.clone()));
        values.push(Value::Text(format!("{escaped}/%")));
    }
    sql.push_str(" ORDER BY id DESC LIMIT ?");
    values.push(Value::Int(filter.limit));
    db.fetch_all_with(&sql, &values)
        .await?
        .iter()
        .map(row_of)
        .collect()
}

/// An organisation's rows, newest first: those about it (`org:ID`) and its teams
/// (`org:ID/…`), of `actions` when given, older than `before_id` when given.
pub async fn list_for_org(
    db: &Db,
    org_id: i64,
    actions: Option<&[&str]>,
    before_id: Option<i64>,
    limit: i64,
) -> DbResult<Vec<AuditRow>> {
    let target = format!("org:{org_id}");
    // The target holds digits alone after `org:`, so the pattern needs no escaping.
    let mut sql = format!("SELECT {COLUMNS} FROM audit_log WHERE (target = ? OR target LIKE ?)");
    let mut values = vec![
        Value::Text(target.clone()),
        Value::Text(format!("{target}/%")),
    ];
    if let Some(actions) = actions {
        let marks = vec!["?"; actions.len().max(1)].join(", ");
        sql.push_str(&format!(" AND action IN ({marks})"));
        if actions.is_empty() {
            values.push(Value::Text(String::new()));
        }
        values.extend(actions.iter().map(|a| Value::Text((*a).to_string())));
    }
    if let Some(before) = before_id {
        sql.push_str(" AND id < ?");
        values.push(Value::Int(before));
    }
    sql.push_str(" ORDER BY id DESC LIMIT ?");
    values.push(Value::Int(limit));
    db.fetch_all_with(&sql, &values)
        .await?
        .iter()
        .map(row_of)
        .collect()
}

/// Up to `limit` rows in chain order after id `after`.
pub async fn chain_after(db: &Db, after: i64, limit: i64) -> DbResult<Vec<AuditRow>> {
    db.fetch_all_with(
        &format!("SELECT {COLUMNS} FROM audit_log WHERE id > ? ORDER BY id LIMIT ?"),
        &[Value::Int(after), Value::Int(limit)],
    )
    .await?
    .iter()
    .map(row_of)
    .collect()
}

/// The hash `verify` starts from: the last one retention deleted, or 64 zeros.
pub async fn anchor(db: &Db) -> DbResult<String> {
    let rows = db
        .fetch_all_with(
            "SELECT anchor_hash FROM audit_head WHERE name = 'chain'",
            &[],
        )
        .await?;
    let row = rows
        .first()
        .ok_or_else(|| DbError::Corrupt("the audit_head table has no chain row".into()))?;
    text(row, "anchor_hash")
}

/// Deletes up to `limit` of the oldest rows made before `cutoff_ms`, keeping the hash of the
/// last deleted as the anchor; returns how many went.
pub async fn delete_oldest_before(tx: &mut Tx, cutoff_ms: i64, limit: i64) -> DbResult<u64> {
    let rows = tx
        .fetch_all(
            "SELECT id, hash FROM audit_log WHERE at < ? ORDER BY id LIMIT ?",
            &[Value::Int(cutoff_ms), Value::Int(limit)],
        )
        .await?;
    let Some(last) = rows.last() else {
        return Ok(0);
    };
    let last_id: i64 = last.try_get("id")?;
    let last_hash = text(last, "hash")?;
    let deleted = tx
        .execute(
            "DELETE FROM audit_log WHERE id <= ?",
            &[Value::Int(last_id)],
        )
        .await?;
    tx.execute(
        "UPDATE audit_head SET anchor_hash = ? WHERE name = 'chain'",
        &[Value::Text(last_hash)],
    )
    .await?;
    Ok(deleted)
}
