//! What a database operation can fail with.

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("{0}")]
    BadUrl(String),
    /// A unique constraint refused the write; carries the constraint or index name.
    #[error("already exists ({0})")]
    Conflict(String),
    #[error(transparent)]
    Sqlx(sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
}

impl DbError {
    /// Whether a unique-constraint refusal was on `column`: the constraint's name (PostgreSQL,
    /// `users_email_key`) or the database's message (SQLite's `UNIQUE constraint failed:
    /// users.email`, MySQL's `for key 'users_email_key'`) names it.
    pub fn is_conflict_on(&self, column: &str) -> bool {
        match self {
            DbError::Conflict(name) => {
                // MySQL's message quotes the duplicate value first: read only the key's name.
                let name = name
                    .rsplit_once(" for key ")
                    .map_or(name.as_str(), |(_, key)| key);
                name.split(|c: char| !c.is_ascii_alphanumeric())
                    .any(|word| word == column)
            }
            _ => false,
        }
    }

    /// Whether the same write may succeed when tried again later: the database was
    /// unreachable, busy, out of resources or picked this transaction as a deadlock victim.
    /// Otherwise it refused the data itself (a constraint, a value it cannot store), and
    /// retrying the same rows can never help.
    pub fn is_transient(&self) -> bool {
        let DbError::Sqlx(error) = self else {
            return false;
        };
        match error {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => true,
            sqlx::Error::Database(db_err) => {
                if let Some(mysql) = db_err.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
                    // Too many connections, shutdown, lock wait timeout, deadlock, killed,
                    // interrupted, server gone.
                    // Read-only (a replica, a failover), not ready (Galera), denied.
                    return matches!(
                        mysql.number(),
                        1040 | 1047
                            | 1053
                            | 1142
                            | 1205
                            | 1213
                            | 1290
                            | 1317
                            | 1836
                            | 1927
                            | 2006
                            | 2013
                            | 3024
                    );
                }
                let code = db_err.code().unwrap_or_default();
                if db_err
                    .try_downcast_ref::<sqlx::sqlite::SqliteError>()
                    .is_some()
                {
                    // Extended result codes carry the primary code in the low byte: busy,
                    // locked, read-only, I/O error, disk full, cannot open.
                    return code
                        .parse::<u32>()
                        .is_ok_and(|code| matches!(code & 0xff, 5 | 6 | 8 | 10 | 13 | 14));
                }
                // PostgreSQL's SQLSTATE: connection exceptions, serialization failures and
                // deadlocks, lock timeouts, insufficient resources, operator intervention.
                // Read-only transactions (a standby) and denied privileges too.
                code.starts_with("08")
                    || code.starts_with("40")
                    || code.starts_with("53")
                    || code.starts_with("57")
                    || code == "55P03"
                    || code == "25006"
                    || code == "42501"
            }
            _ => false,
        }
    }
}

pub type DbResult<T> = Result<T, DbError>;

impl From<sqlx::Error> for DbError {
    fn from(err: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db_err) = &err
            && db_err.is_unique_violation()
        {
            let name = db_err
                .constraint()
                .map(str::to_string)
                .unwrap_or_else(|| db_err.message().to_string());
            return DbError::Conflict(name);
        }
        DbError::Sqlx(err)
    }
}
