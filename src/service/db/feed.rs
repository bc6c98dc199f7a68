//! The change feed: what each committed write changed of what running servers hold in memory,
//! so each server applies just that. Written by [`super::Tx`] when it commits; read by every
//! server's sync job (`jobs::snapshot_sync`).
//!
//! Order without gaps: a writing transaction bumps `meta.data_version` and records its changes
//! under that version. The bump locks the row until the transaction ends, so writers that
//! record changes commit one after the other in version order; a reader that sees version N
//! committed has every version below it visible too. (An auto-increment id would not do: on
//! PostgreSQL and MySQL a later id can commit before an earlier one, and a reader polling
//! `id > last` would skip the earlier one for good.) Every version has at least one row, so a
//! version missing from a read means the rows were pruned, or were written by something that
//! bypassed the feed: the reader then reloads everything once.

use sqlx::Row;

use super::{Db, DbResult, Tx, Value, now_ms, text};
pub use crate::records::feed::{Change, FeedRead};

/// Rows inserted per statement.
const ROWS_PER_INSERT: usize = 100;

/// Bumps the data version and records `changes` under it, inside the writing transaction.
pub(super) async fn record(tx: &mut Tx, changes: &[Change]) -> DbResult<i64> {
    tx.execute(
        "UPDATE meta SET value = value + 1 WHERE name = 'data_version'",
        &[],
    )
    .await?;
    let row = tx
        .fetch_optional("SELECT value FROM meta WHERE name = 'data_version'", &[])
        .await?
        .ok_or_else(|| super::DbError::Corrupt("the meta table has no data_version".into()))?;
    let version: i64 = row.try_get("value")?;
    let now = now_ms();
    for chunk in changes.chunks(ROWS_PER_INSERT) {
        let rows = vec!["(?, ?, ?, ?)"; chunk.len()].join(", ");
        let mut values = Vec::with_capacity(chunk.len() * 4);
        for change in chunk {
            values.extend([
                Value::Int(version),
                Value::Text(change.kind().to_string()),
                Value::Text(change.subject()),
                Value::Int(now),
            ]);
        }
        tx.execute(
            &format!("INSERT INTO change_feed (version, kind, subject, created_at) VALUES {rows}"),
            &values,
        )
        .await?;
    }
    Ok(version)
}

/// The changes recorded under versions `after + 1 ..= upto`.
pub async fn read(db: &Db, after: i64, upto: i64) -> DbResult<FeedRead> {
    let rows = db
        .fetch_all_with(
            "SELECT version, kind, subject FROM change_feed WHERE version > ? AND version <= ? \
             ORDER BY version, id",
            &[Value::Int(after), Value::Int(upto)],
        )
        .await?;
    let mut read = FeedRead::default();
    let mut seen = std::collections::HashSet::new();
    for row in &rows {
        let version: i64 = row.try_get("version")?;
        if read.versions.last() != Some(&version) {
            read.versions.push(version);
        }
        match Change::decode(&text(row, "kind")?, text(row, "subject")?) {
            Some(change) => {
                if seen.insert(change.clone()) {
                    read.changes.push(change);
                }
            }
            None => read.unknown += 1,
        }
    }
    Ok(read)
}

/// Deletes the rows of versions below `below_version`; returns how many. By version, not by
/// time: servers' clocks may disagree, versions do not.
pub async fn prune(db: &Db, below_version: i64) -> DbResult<u64> {
    db.execute_with(
        db.pool(),
        "DELETE FROM change_feed WHERE version < ?",
        &[Value::Int(below_version)],
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_survive_the_round_trip() {
        for change in [
            Change::User(7),
            Change::Token(-1),
            Change::Channel(3),
            Change::Group("vip".into()),
            Change::Price("gpt-4o".into()),
            Change::Option("retry_count".into()),
            Change::Alias("fast".into()),
        ] {
            assert_eq!(
                Change::decode(change.kind(), change.subject()),
                Some(change)
            );
        }
        assert_eq!(Change::decode("invoice", "1".into()), None);
        assert_eq!(Change::decode("user", "x".into()), None);
    }

    #[test]
    fn a_read_is_complete_only_without_gaps() {
        let read = |versions: Vec<i64>| FeedRead {
            versions,
            ..FeedRead::default()
        };
        assert!(read(vec![]).is_complete(5, 5));
        assert!(read(vec![6, 7, 8]).is_complete(5, 8));
        assert!(!read(vec![6, 8]).is_complete(5, 8));
        assert!(!read(vec![7, 8]).is_complete(5, 8));
        assert!(!read(vec![6, 7]).is_complete(5, 8));
        assert!(!read(vec![]).is_complete(5, 6));
        let unknown = FeedRead {
            versions: vec![6],
            unknown: 1,
            ..FeedRead::default()
        };
        assert!(!unknown.is_complete(5, 6));
    }
}
