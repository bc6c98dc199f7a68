//! Codes and links sent by email (see migration 0008), stored as SHA-256.

use sqlx::Row;

use super::{Db, DbResult, Tx, Value, text};

/// One code or link as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmailCodeRow {
    pub id: i64,
    pub user_id: i64,
    pub purpose: String,
    pub email: String,
    pub code_hash: String,
    pub attempts: i64,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

const COLUMNS: &str =
    "id, user_id, purpose, email, code_hash, attempts, created_at, expires_at, used_at";

fn from_row(row: &sqlx::any::AnyRow) -> DbResult<EmailCodeRow> {
    Ok(EmailCodeRow {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        purpose: text(row, "purpose")?,
        email: text(row, "email")?,
        code_hash: text(row, "code_hash")?,
        attempts: row.try_get("attempts")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        used_at: row.try_get("used_at")?,
    })
}

/// What a new code is.
pub struct NewEmailCode<'a> {
    pub user_id: i64,
    pub purpose: &'a str,
    pub email: &'a str,
    pub code_hash: &'a str,
    pub now_ms: i64,
    pub expires_at: i64,
}

/// Stores a new code; the earlier unspent ones of the same account and purpose stop working,
/// so only the latest mail counts.
pub async fn replace(tx: &mut Tx, code: &NewEmailCode<'_>) -> DbResult<i64> {
    tx.execute(
        "UPDATE email_codes SET used_at = ? WHERE user_id = ? AND purpose = ? AND used_at IS NULL",
        &[
            Value::Int(code.now_ms),
            Value::Int(code.user_id),
            Value::Text(code.purpose.to_string()),
        ],
    )
    .await?;
    tx.insert_returning_id(
        "INSERT INTO email_codes (user_id, purpose, email, code_hash, attempts, created_at, \
         expires_at) VALUES (?, ?, ?, ?, 0, ?, ?)",
        &[
            Value::Int(code.user_id),
            Value::Text(code.purpose.to_string()),
            Value::Text(code.email.to_string()),
            Value::Text(code.code_hash.to_string()),
            Value::Int(code.now_ms),
            Value::Int(code.expires_at),
        ],
    )
    .await
}

/// The newest code of an account for a purpose, spent or not (its age decides the resend
/// cooldown).
pub async fn latest(db: &Db, user_id: i64, purpose: &str) -> DbResult<Option<EmailCodeRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM email_codes WHERE user_id = ? AND purpose = ? \
         ORDER BY id DESC LIMIT 1"
    );
    let rows = db
        .fetch_all_with(
            &sql,
            &[Value::Int(user_id), Value::Text(purpose.to_string())],
        )
        .await?;
    rows.first().map(from_row).transpose()
}

/// The unspent code with this hash, for links that carry the whole secret.
pub async fn find_unspent(
    db: &Db,
    purpose: &str,
    code_hash: &str,
) -> DbResult<Option<EmailCodeRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM email_codes WHERE purpose = ? AND code_hash = ? AND used_at IS NULL"
    );
    let rows = db
        .fetch_all_with(
            &sql,
            &[
                Value::Text(purpose.to_string()),
                Value::Text(code_hash.to_string()),
            ],
        )
        .await?;
    rows.first().map(from_row).transpose()
}

/// [`find_unspent`] inside a transaction that then spends it.
pub async fn find_unspent_in(
    tx: &mut Tx,
    purpose: &str,
    code_hash: &str,
) -> DbResult<Option<EmailCodeRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM email_codes WHERE purpose = ? AND code_hash = ? AND used_at IS NULL"
    );
    let rows = tx
        .fetch_all(
            &sql,
            &[
                Value::Text(purpose.to_string()),
                Value::Text(code_hash.to_string()),
            ],
        )
        .await?;
    rows.first().map(from_row).transpose()
}

/// Removes a code that was never delivered.
pub async fn forget(tx: &mut Tx, id: i64) -> DbResult<()> {
    tx.execute("DELETE FROM email_codes WHERE id = ?", &[Value::Int(id)])
        .await?;
    Ok(())
}

/// Counts a try against an unspent code that has tries left, before the try is judged;
/// false when it has none left or was spent meanwhile (so concurrent guesses get no more tries
/// than one after another).
pub async fn count_attempt(tx: &mut Tx, id: i64, max_attempts: i64) -> DbResult<bool> {
    let changed = tx
        .execute(
            "UPDATE email_codes SET attempts = attempts + 1 \
             WHERE id = ? AND used_at IS NULL AND attempts < ?",
            &[Value::Int(id), Value::Int(max_attempts)],
        )
        .await?;
    Ok(changed == 1)
}

/// Spends a code, once: false when another request spent it first.
pub async fn spend(tx: &mut Tx, id: i64, now_ms: i64) -> DbResult<bool> {
    let changed = tx
        .execute(
            "UPDATE email_codes SET used_at = ? WHERE id = ? AND used_at IS NULL",
            &[Value::Int(now_ms), Value::Int(id)],
        )
        .await?;
    Ok(changed == 1)
}

/// Forgets every code an account was sent (it is being deleted: the addresses go with it).
pub async fn delete_all_of(tx: &mut Tx, user_id: i64) -> DbResult<u64> {
    tx.execute(
        "DELETE FROM email_codes WHERE user_id = ?",
        &[Value::Int(user_id)],
    )
    .await
}

/// Forgets codes that ended a day ago or more.
pub async fn prune(db: &Db, before_ms: i64) -> DbResult<u64> {
    db.execute_with(
        db.pool(),
        "DELETE FROM email_codes WHERE expires_at < ?",
        &[Value::Int(before_ms)],
    )
    .await
}
