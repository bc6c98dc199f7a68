//! Redemption codes and who redeemed them (see migration 0012).

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Db, DbError, DbResult, Tx, Value, now_ms, text};
use crate::domain::kinds::Status;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodeRow {
    pub id: i64,
    pub code_hash: String,
    /// The code's first characters, to recognise it by.
    pub prefix: String,
    /// The batch's label.
    pub name: String,
    /// Quota units per use.
    pub amount: i64,
    pub uses: i64,
    pub uses_left: i64,
    pub status: Status,
    pub expires_at: Option<i64>,
    pub created_by: String,
    pub created_at: i64,
    /// Who redeemed it last and when (for the list); none before the first use.
    pub last_redeemed_by: Option<String>,
    pub last_redeemed_at: Option<i64>,
}

const COLUMNS: &str = "c.id, c.code_hash, c.prefix, c.name, c.amount, c.uses, c.uses_left, \
     c.status, c.expires_at, c.created_by, c.created_at, \
     (SELECT u.username FROM code_redemptions r JOIN users u ON u.id = r.user_id \
      WHERE r.code_id = c.id ORDER BY r.id DESC LIMIT 1) AS last_redeemed_by, \
     (SELECT MAX(r.created_at) FROM code_redemptions r WHERE r.code_id = c.id) AS last_redeemed_at";

fn from_row(row: &AnyRow) -> DbResult<CodeRow> {
    let status: String = text(row, "status")?;
    Ok(CodeRow {
        id: row.try_get("id")?,
        code_hash: text(row, "code_hash")?,
        prefix: text(row, "prefix")?,
        name: text(row, "name")?,
        amount: row.try_get("amount")?,
        uses: row.try_get("uses")?,
        uses_left: row.try_get("uses_left")?,
        status: Status::parse(&status)
            .ok_or_else(|| DbError::Corrupt(format!("code status '{status}'")))?,
        expires_at: row.try_get("expires_at")?,
        created_by: text(row, "created_by")?,
        created_at: row.try_get("created_at")?,
        last_redeemed_by: row.try_get("last_redeemed_by")?,
        last_redeemed_at: row.try_get("last_redeemed_at")?,
    })
}

/// A code to store.
pub struct NewCode<'a> {
    pub code_hash: &'a str,
    pub prefix: &'a str,
    pub name: &'a str,
    pub amount: i64,
    pub uses: i64,
    pub expires_at: Option<i64>,
    pub created_by: &'a str,
}

pub async fn insert(tx: &mut Tx, code: &NewCode<'_>) -> DbResult<i64> {
    tx.insert_returning_id(
        "INSERT INTO redemption_codes (code_hash, prefix, name, amount, uses, uses_left, status, \
         expires_at, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, 'active', ?, ?, ?)",
        &[
            Value::Text(code.code_hash.to_string()),
            Value::Text(code.prefix.to_string()),
            Value::Text(code.name.to_string()),
            Value::Int(code.amount),
            Value::Int(code.uses),
            Value::Int(code.uses),
            Value::OptInt(code.expires_at),
            Value::Text(code.created_by.to_string()),
            Value::Int(now_ms()),
        ],
    )
    .await
}

pub async fn by_hash(db: &Db, code_hash: &str) -> DbResult<Option<CodeRow>> {
    let sql = format!("SELECT {COLUMNS} FROM redemption_codes c WHERE c.code_hash = ?");
    db.fetch_all_with(&sql, &[Value::Text(code_hash.to_string())])
        .await?
        .first()
        .map(from_row)
        .transpose()
}

/// One code by id.
pub async fn find(db: &Db, id: i64) -> DbResult<Option<CodeRow>> {
    let sql = format!("SELECT {COLUMNS} FROM redemption_codes c WHERE c.id = ?");
    db.fetch_all_with(&sql, &[Value::Int(id)])
        .await?
        .first()
        .map(from_row)
        .transpose()
}

/// One redemption of a code: who, how much, when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedemptionRow {
    pub user_id: i64,
    /// `None` once the account is gone.
    pub username: Option<String>,
    pub amount: i64,
    pub created_at: i64,
}

/// A code's redemptions, newest first, at most `limit`.
pub async fn redemptions(db: &Db, code_id: i64, limit: i64) -> DbResult<Vec<RedemptionRow>> {
    let sql = "SELECT r.user_id, u.username, r.amount, r.created_at FROM code_redemptions r \
               LEFT JOIN users u ON u.id = r.user_id WHERE r.code_id = ? ORDER BY r.id DESC LIMIT ?";
    db.fetch_all_with(sql, &[Value::Int(code_id), Value::Int(limit)])
        .await?
        .iter()
        .map(|row| {
            Ok(RedemptionRow {
                user_id: row.try_get("user_id")?,
                username: row.try_get("username")?,
                amount: row.try_get("amount")?,
                created_at: row.try_get("created_at")?,
            })
        })
        .collect()
}

/// Codes, newest first; with `name`, one batch only.
pub async fn list(db: &Db, name: Option<&str>, limit: i64) -> DbResult<Vec<CodeRow>> {
    let (filter, mut values) = match name {
        Some(name) => (" WHERE c.name = ?", vec![Value::Text(name.to_string())]),
        None => ("", Vec::new()),
    };
    values.push(Value::Int(limit));
    let sql =
        format!("SELECT {COLUMNS} FROM redemption_codes c{filter} ORDER BY c.id DESC LIMIT ?");
    db.fetch_all_with(&sql, &values)
        .await?
        .iter()
        .map(from_row)
        .collect()
}

/// Disables one code by id, or a batch by name; how many were active.
pub async fn disable(tx: &mut Tx, id: Option<i64>, name: Option<&str>) -> DbResult<u64> {
    match (id, name) {
        (Some(id), _) => {
            tx.execute(
                "UPDATE redemption_codes SET status = 'disabled' WHERE id = ? AND status = 'active'",
                &[Value::Int(id)],
            )
            .await
        }
        (None, Some(name)) => {
            tx.execute(
                "UPDATE redemption_codes SET status = 'disabled' WHERE name = ? AND status = 'active'",
                &[Value::Text(name.to_string())],
            )
            .await
        }
        (None, None) => Ok(0),
    }
}

/// Takes one use of an active, unexpired code with uses left. False when there is none to
/// take (another redemption took the last one first): the row count decides, not a read.
pub async fn take_use(tx: &mut Tx, id: i64, now_ms: i64) -> DbResult<bool> {
    Ok(tx
        .execute(
            "UPDATE redemption_codes SET uses_left = uses_left - 1 WHERE id = ? AND uses_left > 0 \
             AND status = 'active' AND (expires_at IS NULL OR expires_at > ?)",
            &[Value::Int(id), Value::Int(now_ms)],
        )
        .await?
        == 1)
}

/// Records that `user_id` redeemed the code; a second time for the same account is refused by
/// the unique index (`DbError::Conflict`).
pub async fn record_redemption(
    tx: &mut Tx,
    code_id: i64,
    user_id: i64,
    org_id: i64,
    amount: i64,
) -> DbResult<()> {
    tx.insert_returning_id(
        "INSERT INTO code_redemptions (code_id, user_id, org_id, amount, created_at) \
         VALUES (?, ?, ?, ?, ?)",
        &[
            Value::Int(code_id),
            Value::Int(user_id),
            Value::Int(org_id),
            Value::Int(amount),
            Value::Int(now_ms()),
        ],
    )
    .await?;
    Ok(())
}
