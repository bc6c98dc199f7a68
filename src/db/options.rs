use super::{Db, DbResult, Value, meta, now_ms, text, upsert_sql};

/// Every stored option as (name, value text). Options never written keep their defaults.
pub async fn all(db: &Db) -> DbResult<Vec<(String, String)>> {
    let rows = sqlx::query("SELECT name, value FROM options")
        .fetch_all(db.pool())
        .await?;
    rows.iter()
        .map(|r| Ok((text(r, "name")?, text(r, "value")?)))
        .collect()
}

pub async fn set(db: &Db, name: &str, value: &str) -> DbResult<()> {
    let sql = upsert_sql(
        db.backend(),
        "options",
        &["name", "value", "updated_at"],
        &["name"],
    );
    let mut tx = db.begin_write().await?;
    db.execute_with(
        &mut *tx,
        &sql,
        &[
            Value::Text(name.to_string()),
            Value::Text(value.to_string()),
            Value::Int(now_ms()),
        ],
    )
    .await?;
    meta::bump_data_version(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}

/// Removes a stored value so the option returns to its default.
pub async fn reset(db: &Db, name: &str) -> DbResult<()> {
    let mut tx = db.begin_write().await?;
    db.execute_with(
        &mut *tx,
        "DELETE FROM options WHERE name = ?",
        &[Value::Text(name.to_string())],
    )
    .await?;
    meta::bump_data_version(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}
