//! Values made once for the whole site and shared by every node on the database, by name
//! (migration 0014): written when absent, never overwritten, so every node reads the same.

use super::{Db, DbError, DbResult, Value, insert_if_absent_sql, text};

/// Most characters of a name and of a value (the columns' sizes).
pub const MAX_NAME: usize = 64;
pub const MAX_VALUE: usize = 255;

/// The value stored under `name`, if any.
pub async fn get(db: &Db, name: &str) -> DbResult<Option<String>> {
    let rows = db
        .fetch_all_with(
            "SELECT value FROM site_values WHERE name = ?",
            &[Value::Text(name.to_string())],
        )
        .await?;
    rows.first().map(|row| text(row, "value")).transpose()
}

/// The value stored under `name`; when there is none, `candidate` is stored and returned. Nodes
/// that race here all get the one value that was stored first: the insert leaves an existing
/// row alone, and the value is read back after it.
pub async fn get_or_create(db: &Db, name: &str, candidate: &str) -> DbResult<String> {
    if let Some(value) = get(db, name).await? {
        return Ok(value);
    }
    let sql = insert_if_absent_sql(db.backend(), "site_values", &["name", "value"], &["name"]);
    db.execute_with(
        db.pool(),
        &sql,
        &[
            Value::Text(name.to_string()),
            Value::Text(candidate.to_string()),
        ],
    )
    .await?;
    get(db, name).await?.ok_or_else(|| {
        DbError::Corrupt(format!("site value '{name}' vanished after it was written"))
    })
}
