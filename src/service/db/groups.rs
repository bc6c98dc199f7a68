use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Change, Db, DbResult, Tx, Value, flag, now_ms, rate_limit_values, rate_limits, text};
use crate::domain::money::Ratio;
pub use crate::records::groups::GroupRow;

const COLUMNS: &str = "name, ratio_ppm, description, user_selectable, created_at, updated_at, rpm, tpm, max_concurrent";

fn from_row(row: &AnyRow) -> DbResult<GroupRow> {
    Ok(GroupRow {
        name: text(row, "name")?,
        ratio: Ratio(row.try_get("ratio_ppm")?),
        description: text(row, "description")?,
        user_selectable: flag(row.try_get("user_selectable")?),
        rate_limits: rate_limits(row)?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

pub async fn list(db: &Db) -> DbResult<Vec<GroupRow>> {
    let sql = format!("SELECT {COLUMNS} FROM user_groups ORDER BY name");
    let rows = sqlx::query(&sql).fetch_all(db.pool()).await?;
    rows.iter().map(from_row).collect()
}

pub async fn find(db: &Db, name: &str) -> DbResult<Option<GroupRow>> {
    let sql = format!("SELECT {COLUMNS} FROM user_groups WHERE name = ?");
    let row = sqlx::query(&db.sql(&sql))
        .bind(name)
        .fetch_optional(db.pool())
        .await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn insert(tx: &mut Tx, group: &GroupRow) -> DbResult<()> {
    let now = now_ms();
    let [rpm, tpm, max_concurrent] = rate_limit_values(group.rate_limits);
    tx.execute("INSERT INTO user_groups (name, ratio_ppm, description, user_selectable, created_at, updated_at, \
         rpm, tpm, max_concurrent) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        &[
            Value::Text(group.name.clone()),
            Value::Int(group.ratio.ppm()),
            Value::Text(group.description.clone()),
            Value::Int(i64::from(group.user_selectable)),
            Value::Int(now),
            Value::Int(now),
            rpm,
            tpm,
            max_concurrent,
        ],
    )
    .await?;
    tx.changed(Change::Group(group.name.clone()));
    Ok(())
}

/// Replaces the editable fields of an existing group. Returns false when there is no such group.
pub async fn update(tx: &mut Tx, group: &GroupRow) -> DbResult<bool> {
    let [rpm, tpm, max_concurrent] = rate_limit_values(group.rate_limits);
    let changed = tx.execute("UPDATE user_groups SET ratio_ppm = ?, description = ?, user_selectable = ?, updated_at = ?, \
             rpm = ?, tpm = ?, max_concurrent = ? WHERE name = ?",
            &[
                Value::Int(group.ratio.ppm()),
                Value::Text(group.description.clone()),
                Value::Int(i64::from(group.user_selectable)),
                Value::Int(now_ms()),
                rpm,
                tpm,
                max_concurrent,
                Value::Text(group.name.clone()),
            ],
        )
        .await?;
    tx.changed(Change::Group(group.name.clone()));
    Ok(changed > 0)
}

/// How many users belong to the group (a group in use cannot be deleted).
pub async fn member_count(db: &Db, name: &str) -> DbResult<i64> {
    let count: i64 = sqlx::query_scalar(&db.sql("SELECT COUNT(*) FROM users WHERE group_name = ?"))
        .bind(name)
        .fetch_one(db.pool())
        .await?;
    Ok(count)
}

pub async fn delete(tx: &mut Tx, name: &str) -> DbResult<bool> {
    let changed = tx
        .execute(
            "DELETE FROM user_groups WHERE name = ?",
            &[Value::Text(name.to_string())],
        )
        .await?;
    tx.changed(Change::Group(name.to_string()));
    Ok(changed > 0)
}
