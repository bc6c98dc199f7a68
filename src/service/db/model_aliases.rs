//! Model aliases: a name clients may ask for and the model it stands for.

use sqlx::Row;

use super::{Change, Db, DbResult, Tx, Value, now_ms, text};
pub use crate::records::model_aliases::AliasRow;

pub async fn list(db: &Db) -> DbResult<Vec<AliasRow>> {
    let rows = sqlx::query("SELECT name, target, created_at FROM model_aliases ORDER BY name")
        .fetch_all(db.pool())
        .await?;
    rows.iter()
        .map(|row| {
            Ok(AliasRow {
                name: text(row, "name")?,
                target: text(row, "target")?,
                created_at: row.try_get("created_at")?,
            })
        })
        .collect()
}

/// Adds an alias; a name already taken is a `DbError::Conflict`.
pub async fn insert(tx: &mut Tx, name: &str, target: &str) -> DbResult<AliasRow> {
    let created_at = now_ms();
    tx.execute(
        "INSERT INTO model_aliases (name, target, created_at) VALUES (?, ?, ?)",
        &[
            Value::Text(name.to_string()),
            Value::Text(target.to_string()),
            Value::Int(created_at),
        ],
    )
    .await?;
    tx.changed(Change::Alias(name.to_string()));
    Ok(AliasRow {
        name: name.to_string(),
        target: target.to_string(),
        created_at,
    })
}

pub async fn delete(tx: &mut Tx, name: &str) -> DbResult<bool> {
    let changed = tx
        .execute(
            "DELETE FROM model_aliases WHERE name = ?",
            &[Value::Text(name.to_string())],
        )
        .await?;
    tx.changed(Change::Alias(name.to_string()));
    Ok(changed > 0)
}
