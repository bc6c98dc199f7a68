//! The portal's sign-in sessions (see migration 0007). Rows are keyed by the SHA-256 of the
//! session id in the cookie.

use sqlx::Row;

use super::{Db, DbResult, Value, opt_text, text, upsert_sql};

/// One session as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRow {
    pub id: String,
    pub user_id: Option<i64>,
    /// The session's values, as JSON.
    pub data: String,
    pub ip: String,
    pub user_agent: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
}

const COLUMNS: [&str; 8] = [
    "id",
    "user_id",
    "data",
    "ip",
    "user_agent",
    "created_at",
    "last_seen_at",
    "expires_at",
];

fn from_row(row: &sqlx::any::AnyRow) -> DbResult<SessionRow> {
    Ok(SessionRow {
        id: text(row, "id")?,
        user_id: row.try_get("user_id")?,
        data: opt_text(row, "data")?.unwrap_or_default(),
        ip: text(row, "ip")?,
        user_agent: text(row, "user_agent")?,
        created_at: row.try_get("created_at")?,
        last_seen_at: row.try_get("last_seen_at")?,
        expires_at: row.try_get("expires_at")?,
    })
}

fn values(row: &SessionRow) -> Vec<Value> {
    vec![
        Value::Text(row.id.clone()),
        Value::OptInt(row.user_id),
        Value::Text(row.data.clone()),
        Value::Text(row.ip.clone()),
        Value::Text(row.user_agent.clone()),
        Value::Int(row.created_at),
        Value::Int(row.last_seen_at),
        Value::Int(row.expires_at),
    ]
}

/// Creates a session; false when the id is taken (the caller draws another).
pub async fn insert(db: &Db, row: &SessionRow) -> DbResult<bool> {
    let sql = format!(
        "INSERT INTO web_sessions ({}) VALUES ({})",
        COLUMNS.join(", "),
        super::placeholders(COLUMNS.len())
    );
    match db.execute_with(db.pool(), &sql, &values(row)).await {
        Ok(_) => Ok(true),
        Err(super::DbError::Conflict(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Writes a session, keeping the time it was created.
pub async fn save(db: &Db, row: &SessionRow) -> DbResult<()> {
    let sql = upsert_sql(db.backend(), "web_sessions", &COLUMNS, &["id"]);
    // An upsert overwrites every column but the key; `created_at` is carried by the caller.
    db.execute_with(db.pool(), &sql, &values(row)).await?;
    Ok(())
}

/// A session that has not expired.
pub async fn find(db: &Db, id: &str, now_ms: i64) -> DbResult<Option<SessionRow>> {
    let sql = format!(
        "SELECT {} FROM web_sessions WHERE id = ? AND expires_at > ?",
        COLUMNS.join(", ")
    );
    let rows = db
        .fetch_all_with(&sql, &[Value::Text(id.to_string()), Value::Int(now_ms)])
        .await?;
    rows.first().map(from_row).transpose()
}

pub async fn delete(db: &Db, id: &str) -> DbResult<()> {
    db.execute_with(
        db.pool(),
        "DELETE FROM web_sessions WHERE id = ?",
        &[Value::Text(id.to_string())],
    )
    .await?;
    Ok(())
}

/// A user's sessions that have not expired, most recently seen first.
pub async fn for_user(db: &Db, user_id: i64, now_ms: i64) -> DbResult<Vec<SessionRow>> {
    let sql = format!(
        "SELECT {} FROM web_sessions WHERE user_id = ? AND expires_at > ? \
         ORDER BY last_seen_at DESC",
        COLUMNS.join(", ")
    );
    let rows = db
        .fetch_all_with(&sql, &[Value::Int(user_id), Value::Int(now_ms)])
        .await?;
    rows.iter().map(from_row).collect()
}

/// Ends a user's sessions except `keep` (the one asking); returns how many ended.
pub async fn delete_for_user(db: &Db, user_id: i64, keep: Option<&str>) -> DbResult<u64> {
    db.execute_with(
        db.pool(),
        "DELETE FROM web_sessions WHERE user_id = ? AND id <> ?",
        &[
            Value::Int(user_id),
            Value::Text(keep.unwrap_or_default().to_string()),
        ],
    )
    .await
}

/// Ends one of a user's sessions (owner-scoped); false when there is no such session of theirs.
pub async fn delete_owned(db: &Db, user_id: i64, id: &str) -> DbResult<bool> {
    let deleted = db
        .execute_with(
            db.pool(),
            "DELETE FROM web_sessions WHERE user_id = ? AND id = ?",
            &[Value::Int(user_id), Value::Text(id.to_string())],
        )
        .await?;
    Ok(deleted > 0)
}

pub async fn delete_expired(db: &Db, now_ms: i64) -> DbResult<u64> {
    db.execute_with(
        db.pool(),
        "DELETE FROM web_sessions WHERE expires_at <= ?",
        &[Value::Int(now_ms)],
    )
    .await
}

/// Ends a user's sessions in a transaction: one (`id`) or all of them; how many ended.
pub async fn delete_of_user_in(
    tx: &mut super::Tx,
    user_id: i64,
    id: Option<&str>,
) -> DbResult<u64> {
    match id {
        Some(id) => {
            tx.execute(
                "DELETE FROM web_sessions WHERE user_id = ? AND id = ?",
                &[Value::Int(user_id), Value::Text(id.to_string())],
            )
            .await
        }
        None => {
            tx.execute(
                "DELETE FROM web_sessions WHERE user_id = ?",
                &[Value::Int(user_id)],
            )
            .await
        }
    }
}
