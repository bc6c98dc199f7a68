use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Db, DbError, DbResult, Tx, Value, now_ms, text};
use crate::domain::kinds::{Role, Status};

#[derive(Clone, Debug, PartialEq)]
pub struct AdminTokenRow {
    pub id: i64,
    pub user_id: i64,
    pub username: String,
    pub name: String,
    pub token_display: String,
    pub last_used_at: Option<i64>,
    pub created_at: i64,
}

/// The owner of an admin token as the management API sees it at request time.
#[derive(Clone, Debug, PartialEq)]
pub struct AdminTokenOwner {
    pub token_id: i64,
    pub user_id: i64,
    pub username: String,
    pub role: Role,
    pub status: Status,
}

fn from_row(row: &AnyRow) -> DbResult<AdminTokenRow> {
    Ok(AdminTokenRow {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        username: text(row, "username")?,
        name: text(row, "name")?,
        token_display: text(row, "token_display")?,
        last_used_at: row.try_get("last_used_at")?,
        created_at: row.try_get("created_at")?,
    })
}

pub async fn insert(
    tx: &mut Tx,
    user_id: i64,
    name: &str,
    hash: &str,
    display: &str,
) -> DbResult<i64> {
    tx.insert_returning_id(
        "INSERT INTO admin_tokens (user_id, name, token_hash, token_display, created_at) VALUES (?, ?, ?, ?, ?)",
        &[
            Value::Int(user_id),
            Value::Text(name.to_string()),
            Value::Text(hash.to_string()),
            Value::Text(display.to_string()),
            Value::Int(now_ms()),
        ],
    )
    .await
}

pub async fn list(db: &Db) -> DbResult<Vec<AdminTokenRow>> {
    let rows = sqlx::query(
        "SELECT a.id, a.user_id, u.username, a.name, a.token_display, a.last_used_at, a.created_at \
         FROM admin_tokens a JOIN users u ON u.id = a.user_id ORDER BY a.id",
    )
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(from_row).collect()
}

pub async fn find_owner(db: &Db, hash: &str) -> DbResult<Option<AdminTokenOwner>> {
    let row = sqlx::query(&db.sql(
        "SELECT a.id AS token_id, u.id AS user_id, u.username, u.role, u.status \
         FROM admin_tokens a JOIN users u ON u.id = a.user_id WHERE a.token_hash = ?",
    ))
    .bind(hash)
    .fetch_optional(db.pool())
    .await?;
    let Some(row) = row else { return Ok(None) };
    let role: String = text(&row, "role")?;
    let status: String = text(&row, "status")?;
    Ok(Some(AdminTokenOwner {
        token_id: row.try_get("token_id")?,
        user_id: row.try_get("user_id")?,
        username: text(&row, "username")?,
        role: Role::parse(&role).ok_or_else(|| DbError::Corrupt(format!("role '{role}'")))?,
        status: Status::parse(&status)
            .ok_or_else(|| DbError::Corrupt(format!("status '{status}'")))?,
    }))
}

pub async fn touch(db: &Db, id: i64) -> DbResult<()> {
    db.execute_with(
        db.pool(),
        "UPDATE admin_tokens SET last_used_at = ? WHERE id = ?",
        &[Value::Int(now_ms()), Value::Int(id)],
    )
    .await?;
    Ok(())
}

pub async fn delete(tx: &mut Tx, id: i64) -> DbResult<bool> {
    let changed = tx
        .execute("DELETE FROM admin_tokens WHERE id = ?", &[Value::Int(id)])
        .await?;
    Ok(changed > 0)
}
