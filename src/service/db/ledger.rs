//! The balance ledger: one append-only row per balance change that is not relay spend.

use sqlx::Row;

use super::{Db, DbError, DbResult, Tx, Value, now_ms, text};
use crate::domain::kinds::LedgerKind;
pub use crate::records::ledger::Entry;

/// A balance change to record, in the transaction that makes it.
#[derive(Clone, Debug)]
pub struct NewEntry<'a> {
    pub user_id: i64,
    pub kind: LedgerKind,
    /// Signed, in quota units.
    pub amount: i64,
    /// Who made it: `cli`, `admin:12`, `system`.
    pub actor: &'a str,
    /// What it refers to (a code, a payment), or empty.
    pub reference: &'a str,
    pub reason: &'a str,
    /// Unique: the same change submitted twice is recorded (and applied) once.
    pub idempotency_key: &'a str,
}

/// Records a change; `None` when its idempotency key was used before (nothing is written, and
/// the transaction goes on: the failed insert is undone to a savepoint, which PostgreSQL needs
/// to keep the transaction usable and which gives every backend the same behaviour).
pub async fn insert(tx: &mut Tx, entry: &NewEntry<'_>) -> DbResult<Option<i64>> {
    insert_once(tx, entry, 0).await
}

/// Records a change of an organisation's wallet, as [`insert`] does a person's: the row
/// carries `org_id` and no person (`entry.user_id` must be 0), so no person's ledger counts it.
pub async fn insert_for_org(
    tx: &mut Tx,
    org_id: i64,
    entry: &NewEntry<'_>,
) -> DbResult<Option<i64>> {
    if entry.user_id != 0 || org_id <= 0 {
        return Err(DbError::Corrupt(format!(
            "an organisation's ledger row names person {} and organisation {org_id}",
            entry.user_id
        )));
    }
    insert_once(tx, entry, org_id).await
}

async fn insert_once(tx: &mut Tx, entry: &NewEntry<'_>, org_id: i64) -> DbResult<Option<i64>> {
    tx.execute_raw("SAVEPOINT ledger_entry").await?;
    match insert_row(tx, entry, org_id).await {
        Ok(id) => {
            tx.execute_raw("RELEASE SAVEPOINT ledger_entry").await?;
            Ok(Some(id))
        }
        Err(DbError::Conflict(_)) => {
            tx.execute_raw("ROLLBACK TO SAVEPOINT ledger_entry").await?;
            tx.execute_raw("RELEASE SAVEPOINT ledger_entry").await?;
            Ok(None)
        }
        Err(other) => Err(other),
    }
}

async fn insert_row(tx: &mut Tx, entry: &NewEntry<'_>, org_id: i64) -> DbResult<i64> {
    tx.insert_returning_id(
        "INSERT INTO ledger (user_id, org_id, kind, amount, actor, reference, reason, \
         idempotency_key, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        &[
            Value::Int(entry.user_id),
            Value::Int(org_id),
            Value::Text(entry.kind.as_str().to_string()),
            Value::Int(entry.amount),
            Value::Text(entry.actor.to_string()),
            Value::Text(entry.reference.to_string()),
            Value::Text(entry.reason.to_string()),
            Value::Text(entry.idempotency_key.to_string()),
            Value::Int(now_ms()),
        ],
    )
    .await
}

fn entry_from_row(row: &sqlx::any::AnyRow) -> DbResult<Entry> {
    let kind: String = text(row, "kind")?;
    Ok(Entry {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        kind: LedgerKind::parse(&kind)
            .ok_or_else(|| DbError::Corrupt(format!("ledger kind '{kind}'")))?,
        amount: row.try_get("amount")?,
        actor: text(row, "actor")?,
        reference: text(row, "reference")?,
        reason: text(row, "reason")?,
        idempotency_key: text(row, "idempotency_key")?,
        created_at: row.try_get("created_at")?,
    })
}

const BY_KEY: &str = "SELECT id, user_id, kind, amount, actor, reference, reason, \
     idempotency_key, created_at FROM ledger WHERE idempotency_key = ?";

/// The entry recorded under an idempotency key.
pub async fn by_key(db: &Db, idempotency_key: &str) -> DbResult<Option<Entry>> {
    let rows = db
        .fetch_all_with(BY_KEY, &[Value::Text(idempotency_key.to_string())])
        .await?;
    rows.first().map(entry_from_row).transpose()
}

/// The entry recorded under an idempotency key, read in a transaction.
pub async fn by_key_in(tx: &mut Tx, idempotency_key: &str) -> DbResult<Option<Entry>> {
    let rows = tx
        .fetch_all(BY_KEY, &[Value::Text(idempotency_key.to_string())])
        .await?;
    rows.first().map(entry_from_row).transpose()
}

/// An organisation's entries, newest first.
pub async fn for_org(db: &Db, org_id: i64, limit: i64) -> DbResult<Vec<Entry>> {
    let rows = db
        .fetch_all_with(
            "SELECT id, user_id, kind, amount, actor, reference, reason, idempotency_key, \
             created_at FROM ledger WHERE org_id = ? ORDER BY id DESC LIMIT ?",
            &[Value::Int(org_id), Value::Int(limit.clamp(1, 1000))],
        )
        .await?;
    rows.iter().map(entry_from_row).collect()
}

/// The organisation an entry belongs to (0: a person's), read by its idempotency key.
pub async fn org_of_key(db: &Db, idempotency_key: &str) -> DbResult<Option<i64>> {
    let rows = db
        .fetch_all_with(
            "SELECT org_id FROM ledger WHERE idempotency_key = ?",
            &[Value::Text(idempotency_key.to_string())],
        )
        .await?;
    rows.first()
        .map(|row| row.try_get("org_id"))
        .transpose()
        .map_err(DbError::from)
}

/// A user's entries, newest first.
pub async fn for_user(db: &Db, user_id: i64, limit: i64) -> DbResult<Vec<Entry>> {
    let rows = db
        .fetch_all_with(
            "SELECT id, user_id, kind, amount, actor, reference, reason, idempotency_key, \
             created_at FROM ledger WHERE user_id = ? ORDER BY id DESC LIMIT ?",
            &[Value::Int(user_id), Value::Int(limit.clamp(1, 1000))],
        )
        .await?;
    rows.iter().map(entry_from_row).collect()
}

/// The sums of the ledger rows of `kinds` written in `[from_ms, to_ms)`, per 15-minute bucket
/// (its start, UTC ms) and kind.
pub async fn sums_by_bucket(
    db: &Db,
    kinds: &[LedgerKind],
    from_ms: i64,
    to_ms: i64,
) -> DbResult<Vec<(i64, LedgerKind, i64)>> {
    if kinds.is_empty() {
        return Ok(Vec::new());
    }
    let total = match db.backend() {
        super::Backend::MySql => "CAST(COALESCE(SUM(amount), 0) AS SIGNED)",
        _ => "CAST(COALESCE(SUM(amount), 0) AS BIGINT)",
    };
    let bucket = "created_at - (created_at % 900000)";
    let sql = format!(
        "SELECT {bucket} AS b, kind, {total} AS total FROM ledger \
         WHERE created_at >= ? AND created_at < ? AND kind IN ({}) GROUP BY {bucket}, kind",
        super::placeholders(kinds.len())
    );
    let mut values = vec![Value::Int(from_ms), Value::Int(to_ms)];
    values.extend(kinds.iter().map(|k| Value::Text(k.as_str().to_string())));
    let rows = db.fetch_all_with(&sql, &values).await?;
    rows.iter()
        .map(|row| {
            let kind = text(row, "kind")?;
            let kind = LedgerKind::parse(&kind)
                .ok_or_else(|| DbError::Corrupt(format!("ledger kind '{kind}'")))?;
            Ok((row.try_get("b")?, kind, row.try_get("total")?))
        })
        .collect()
}

/// An account whose balance is not what its ledger says.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Discrepancy {
    pub user_id: i64,
    pub username: String,
    pub quota: i64,
    pub used_quota: i64,
    /// The sum of the account's ledger rows; the balance should be this minus `used_quota`.
    pub ledger_total: i64,
}

/// Every account where `quota != SUM(ledger.amount) - used_quota`, and how many were checked.
pub async fn discrepancies(db: &Db) -> DbResult<(i64, Vec<Discrepancy>)> {
    let total = match db.backend() {
        super::Backend::MySql => "CAST(COALESCE(SUM(amount), 0) AS SIGNED)",
        _ => "CAST(COALESCE(SUM(amount), 0) AS BIGINT)",
    };
    let sql = format!(
        "SELECT u.id, u.username, u.quota, u.used_quota, COALESCE(l.total, 0) AS ledger_total \
         FROM users u LEFT JOIN (SELECT user_id, {total} AS total FROM ledger WHERE org_id = 0 \
         GROUP BY user_id) l \
         ON l.user_id = u.id \
         WHERE u.quota <> COALESCE(l.total, 0) - u.used_quota ORDER BY u.id"
    );
    let rows = db.fetch_all_with(&sql, &[]).await?;
    let found = rows
        .iter()
        .map(|row| {
            Ok(Discrepancy {
                user_id: row.try_get("id")?,
                username: text(row, "username")?,
                quota: row.try_get("quota")?,
                used_quota: row.try_get("used_quota")?,
                ledger_total: row.try_get("ledger_total")?,
            })
        })
        .collect::<DbResult<Vec<_>>>()?;
    let checked = super::users::count(db).await?;
    Ok((checked, found))
}
