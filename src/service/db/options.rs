use super::{Change, Db, DbResult, Tx, Value, now_ms, text, upsert_sql};

/// Every stored option as (name, value text). Options never written keep their defaults.
pub async fn all(db: &Db) -> DbResult<Vec<(String, String)>> {
    let rows = sqlx::query("SELECT name, value FROM options")
        .fetch_all(db.pool())
        .await?;
    rows.iter()
        .map(|r| Ok((text(r, "name")?, text(r, "value")?)))
        .collect()
}

pub async fn set(tx: &mut Tx, name: &str, value: &str) -> DbResult<()> {
    let sql = upsert_sql(
        tx.backend(),
        "options",
        &["name", "value", "updated_at"],
        &["name"],
    );
    tx.execute(
        &sql,
        &[
            Value::Text(name.to_string()),
            Value::Text(value.to_string()),
            Value::Int(now_ms()),
        ],
    )
    .await?;
    tx.changed(Change::Option(name.to_string()));
    Ok(())
}

/// Removes a stored value so the option returns to its default.
pub async fn reset(tx: &mut Tx, name: &str) -> DbResult<()> {
    tx.execute(
        "DELETE FROM options WHERE name = ?",
        &[Value::Text(name.to_string())],
    )
    .await?;
    tx.changed(Change::Option(name.to_string()));
    Ok(())
}
