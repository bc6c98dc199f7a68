//! The first-run link's token, stored hashed, while no administrator exists.

use super::{Db, DbResult, Tx, Value};

/// Replaces any earlier token with this one.
pub async fn replace(tx: &mut Tx, token_hash: &str, now_ms: i64) -> DbResult<()> {
    tx.execute("DELETE FROM setup_tokens", &[]).await?;
    tx.execute(
        "INSERT INTO setup_tokens (token_hash, created_at) VALUES (?, ?)",
        &[Value::Text(token_hash.to_string()), Value::Int(now_ms)],
    )
    .await?;
    Ok(())
}

pub async fn exists(db: &Db, token_hash: &str) -> DbResult<bool> {
    let rows = db
        .fetch_all_with(
            "SELECT token_hash FROM setup_tokens WHERE token_hash = ?",
            &[Value::Text(token_hash.to_string())],
        )
        .await?;
    Ok(!rows.is_empty())
}

/// Spends the token: true when it was there (and is gone now), in the transaction that
/// creates the root account, so two people racing with one link make one account.
pub async fn take(tx: &mut Tx, token_hash: &str) -> DbResult<bool> {
    let deleted = tx
        .execute(
            "DELETE FROM setup_tokens WHERE token_hash = ?",
            &[Value::Text(token_hash.to_string())],
        )
        .await?;
    Ok(deleted > 0)
}

pub async fn clear(tx: &mut Tx) -> DbResult<()> {
    tx.execute("DELETE FROM setup_tokens", &[]).await?;
    Ok(())
}
