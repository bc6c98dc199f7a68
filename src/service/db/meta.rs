//! The data version: a counter bumped by every write that servers' in-memory views depend on
//! (see [`super::feed`]). Servers poll it (one tiny query) to notice changes made by the CLI,
//! the management API or another node.

use super::{Db, DbResult};

pub async fn data_version(db: &Db) -> DbResult<i64> {
    let version: i64 = sqlx::query_scalar("SELECT value FROM meta WHERE name = 'data_version'")
        .fetch_one(db.pool())
        .await?;
    Ok(version)
}

/// A query that reads nothing: whether the database answers at all.
pub async fn ping(db: &Db) -> DbResult<()> {
    sqlx::query("SELECT 1").execute(db.pool()).await?;
    Ok(())
}

/// Whether the database takes writes now: a write transaction that changes nothing, rolled
/// back. (A read-only replica after a failover answers reads but refuses this.)
pub async fn accepts_writes(db: &Db) -> bool {
    let Ok(mut tx) = db.begin_write().await else {
        return false;
    };
    let written = sqlx::query("UPDATE meta SET value = value WHERE name = 'data_version'")
        .execute(&mut *tx)
        .await
        .is_ok();
    let _ = tx.rollback().await;
    written
}
