//! The only place SQL lives. One query layer over SQLite, PostgreSQL and MySQL/MariaDB:
//! queries are written once with `?` placeholders (rewritten to `$n` for PostgreSQL) and run
//! through sqlx's `Any` driver. Only statements that truly differ between backends (upserts,
//! insert ids) branch on [`Backend`].

pub mod admin_tokens;
pub mod audit;
pub mod budget_alerts;
pub mod channels;
pub mod codes;
pub mod email_codes;
pub mod feed;
pub mod groups;
pub mod ledger;
pub mod logs;
pub mod meta;
pub mod model_aliases;
pub mod oauth;
pub mod options;
pub mod orders;
pub mod org_invitations;
pub mod org_reads;
pub mod org_usage;
pub mod orgs;
pub mod prices;
pub mod rollups;
pub mod scopes;
pub mod setup_tokens;
pub mod site_values;
pub mod tokens;
pub mod users;
pub mod web_sessions;

mod migrate;

pub use crate::clock::now_ms;
pub use crate::records::audit::AuditEntry;
pub use crate::records::error::{DbError, DbResult};
pub use feed::Change;

use std::borrow::Cow;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use sqlx::any::{AnyArguments, AnyPoolOptions, AnyRow};
use sqlx::{AnyConnection, AnyPool, Arguments, Connection, Executor};

/// Which database server a URL points at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
    MySql,
}

impl Backend {
    pub fn from_url(url: &str) -> Result<Backend, DbError> {
        let scheme = url.split(':').next().unwrap_or_default();
        match scheme {
            "sqlite" => Ok(Backend::Sqlite),
            "postgres" | "postgresql" => Ok(Backend::Postgres),
            "mysql" | "mariadb" => Ok(Backend::MySql),
            _ => Err(DbError::BadUrl(format!(
                "unsupported database URL scheme '{scheme}:' (use sqlite:, postgres: or mysql:)"
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
            Backend::MySql => "mysql",
        }
    }
}

/// A connection pool and the backend it talks to. Cheap to clone.
#[derive(Clone)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
}

impl fmt::Debug for Db {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Db")
            .field("backend", &self.backend)
            .finish()
    }
}

/// A bind value for statements assembled at run time.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Int(i64),
    OptInt(Option<i64>),
    Text(String),
    OptText(Option<String>),
}

impl Db {
    /// Connects, creating the SQLite file when needed, and applies pending migrations.
    pub async fn connect(url: &str, max_connections: u32) -> DbResult<Db> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url)?;
        let url = match backend {
            Backend::Sqlite => prepare_sqlite(url).await?,
            _ => url.to_string(),
        };
        // SQLite serialises writers anyway; extra connections would only hold page caches and
        // compiled statements.
        let max_connections = match backend {
            Backend::Sqlite => max_connections.clamp(1, 3),
            _ => max_connections.max(1),
        };
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL is set once on the file (see prepare_sqlite); these are per connection.
                        // A 1 MiB page cache per connection: writes append to the right edge of
                        // each B-tree, and the operating system caches the file anyway.
                        // Temporary storage in memory: each multi-row insert of the billing
                        // writer keeps a statement journal, which otherwise spills to a temp
                        // file and costs a write system call per flush and row batch.
                        conn.execute(
                            "PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 10000; \
                             PRAGMA foreign_keys = ON; PRAGMA cache_size = -1024; \
                             PRAGMA temp_store = MEMORY;",
                        )
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await?;
        let db = Db { pool, backend };
        migrate::run(&db).await?;
        users::fill_identity_keys(&db).await?;
        Ok(db)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Runs `work` in one write transaction: everything it writes commits together, or (on
    /// an error, a panic, a dropped future) nothing does. Returns its value and what it
    /// changed of what running servers hold in memory; the data version they watch is bumped
    /// once for the whole transaction, and only when something they hold changed.
    pub async fn write<T, E>(
        &self,
        work: impl AsyncFnOnce(&mut Tx) -> Result<T, E>,
    ) -> Result<(T, Vec<Change>), E>
    where
        E: From<DbError>,
    {
        let mut tx = Tx {
            inner: self.begin_write().await?,
            backend: self.backend,
            changes: Vec::new(),
            audits: Vec::new(),
            rows_written: 0,
            own_records: false,
        };
        let value = work(&mut tx).await?;
        let changes = tx.commit().await?;
        Ok((value, changes))
    }

    /// Starts a transaction that writes. SQLite's takes the write lock at once (`BEGIN
    /// IMMEDIATE`), so it waits for other writers (the busy timeout) instead of failing with
    /// SQLITE_BUSY_SNAPSHOT when it reads before it writes and another connection committed
    /// in between; the other backends lock rows as they are written.
    pub async fn begin_write(&self) -> DbResult<sqlx::Transaction<'static, sqlx::Any>> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres | Backend::MySql => self.pool.begin().await?,
        })
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Rewrites `?` placeholders into the backend's syntax.
    pub fn sql<'q>(&self, query: &'q str) -> Cow<'q, str> {
        match self.backend {
            Backend::Postgres => Cow::Owned(numbered_placeholders(query)),
            _ => Cow::Borrowed(query),
        }
    }

    /// Runs a statement assembled at run time with its bind values.
    pub async fn execute_with<'c, E>(
        &self,
        executor: E,
        sql: &str,
        values: &[Value],
    ) -> DbResult<u64>
    where
        E: Executor<'c, Database = sqlx::Any>,
    {
        let sql = self.sql(sql);
        let args = bind_all(values)?;
        let result = sqlx::query_with(&sql, args).execute(executor).await?;
        Ok(result.rows_affected())
    }

    /// Whether `table` has an index named `index`.
    pub async fn has_index(&self, table: &str, index: &str) -> DbResult<bool> {
        let sql = match self.backend {
            Backend::Sqlite => {
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND name = ?"
            }
            Backend::Postgres => {
                "SELECT CAST(indexname AS TEXT) AS name FROM pg_indexes \
                 WHERE schemaname = current_schema() AND tablename = ? AND indexname = ?"
            }
            Backend::MySql => {
                "SELECT INDEX_NAME FROM information_schema.statistics \
                 WHERE table_schema = DATABASE() AND TABLE_NAME = ? AND INDEX_NAME = ?"
            }
        };
        let rows = self
            .fetch_all_with(
                sql,
                &[
                    Value::Text(table.to_string()),
                    Value::Text(index.to_string()),
                ],
            )
            .await?;
        Ok(!rows.is_empty())
    }

    /// Fetches rows for a statement assembled at run time.
    pub async fn fetch_all_with(&self, sql: &str, values: &[Value]) -> DbResult<Vec<AnyRow>> {
        let sql = self.sql(sql);
        let args = bind_all(values)?;
        Ok(sqlx::query_with(&sql, args).fetch_all(&self.pool).await?)
    }

    /// Inserts one row and returns its generated `id`: through `RETURNING` on PostgreSQL and
    /// SQLite (whose `Any` driver drops the last-insert id), through the last-insert id on
    /// MySQL, which has no `RETURNING`.
    pub async fn insert_returning_id<'c, E>(
        &self,
        executor: E,
        sql: &str,
        values: &[Value],
    ) -> DbResult<i64>
    where
        E: Executor<'c, Database = sqlx::Any>,
    {
        let args = bind_all(values)?;
        match self.backend {
            Backend::Postgres | Backend::Sqlite => {
                let sql = self.sql(&format!("{sql} RETURNING id")).into_owned();
                let id: i64 = sqlx::query_scalar_with(&sql, args)
                    .fetch_one(executor)
                    .await?;
                Ok(id)
            }
            Backend::MySql => {
                let result = sqlx::query_with(sql, args).execute(executor).await?;
                result
                    .last_insert_id()
                    .ok_or_else(|| DbError::Corrupt("the database reported no insert id".into()))
            }
        }
    }
}

/// Ids bound per `IN (…)` query: well under every backend's limit on bind parameters.
pub(crate) const IDS_PER_QUERY: usize = 500;

/// `?, ?, ?` for `count` values.
pub(crate) fn placeholders(count: usize) -> String {
    vec!["?"; count].join(", ")
}

/// The values a 64-bit balance may hold for `balance + delta` not to overflow.
pub(crate) fn addable_range(delta: i64) -> (i64, i64) {
    if delta < 0 {
        (i64::MIN - delta, i64::MAX)
    } else {
        (i64::MIN, i64::MAX - delta)
    }
}

/// One write transaction, given to the work of [`Db::write`]. Db functions that write take
/// it, so several of them compose into one transaction.
pub struct Tx {
    inner: sqlx::Transaction<'static, sqlx::Any>,
    backend: Backend,
    changes: Vec<Change>,
    /// What the work says it changed, for the audit log (see `service::audit`).
    audits: Vec<AuditEntry>,
    /// Rows the work's statements inserted, updated or deleted.
    rows_written: u64,
    /// The work changed only the caller's own records, which are not audited.
    own_records: bool,
}

impl Tx {
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Notes that running servers must re-read `change` once this transaction commits.
    pub fn changed(&mut self, change: Change) {
        if !self.changes.contains(&change) {
            self.changes.push(change);
        }
    }

    /// Records what this transaction changed for the audit log; the write path stores it, in
    /// this transaction, when the caller is one whose changes are audited.
    pub fn audit(&mut self, entry: AuditEntry) {
        self.audits.push(entry);
    }

    /// Notes that this transaction changes the caller's own records (a person's own keys,
    /// profile, sessions), which are not audited even when the person is an administrator.
    pub fn own_records(&mut self) {
        self.own_records = true;
    }

    /// Whether [`Tx::own_records`] was noted.
    pub fn is_own_records(&self) -> bool {
        self.own_records
    }

    /// The audit entries recorded so far, taken out.
    pub fn take_audits(&mut self) -> Vec<AuditEntry> {
        std::mem::take(&mut self.audits)
    }

    /// How many rows the statements so far inserted, updated or deleted.
    pub fn rows_written(&self) -> u64 {
        self.rows_written
    }

    fn sql<'q>(&self, query: &'q str) -> Cow<'q, str> {
        match self.backend {
            Backend::Postgres => Cow::Owned(numbered_placeholders(query)),
            _ => Cow::Borrowed(query),
        }
    }

    /// Runs a statement with its bind values; returns the rows it affected.
    pub async fn execute(&mut self, sql: &str, values: &[Value]) -> DbResult<u64> {
        let sql = self.sql(sql);
        let result = sqlx::query_with(&sql, bind_all(values)?)
            .execute(&mut *self.inner)
            .await?;
        self.rows_written += result.rows_affected();
        Ok(result.rows_affected())
    }

    /// Runs a statement without arguments as plain text (not prepared): for transaction
    /// control such as savepoints, which not every backend prepares.
    pub async fn execute_raw(&mut self, sql: &str) -> DbResult<()> {
        // Without arguments sqlx sends the text as a plain query, not a prepared statement.
        (&mut *self.inner).execute(sql).await?;
        Ok(())
    }

    /// Runs a statement whose arguments were bound by the caller (rows borrowed, not copied).
    pub async fn execute_args(&mut self, sql: &str, args: AnyArguments<'_>) -> DbResult<u64> {
        let sql = self.sql(sql);
        let result = sqlx::query_with(&sql, args)
            .execute(&mut *self.inner)
            .await?;
        self.rows_written += result.rows_affected();
        Ok(result.rows_affected())
    }

    pub async fn fetch_all(&mut self, sql: &str, values: &[Value]) -> DbResult<Vec<AnyRow>> {
        let sql = self.sql(sql);
        Ok(sqlx::query_with(&sql, bind_all(values)?)
            .fetch_all(&mut *self.inner)
            .await?)
    }

    pub async fn fetch_optional(
        &mut self,
        sql: &str,
        values: &[Value],
    ) -> DbResult<Option<AnyRow>> {
        let sql = self.sql(sql);
        Ok(sqlx::query_with(&sql, bind_all(values)?)
            .fetch_optional(&mut *self.inner)
            .await?)
    }

    /// Inserts one row and returns its generated `id` (see [`Db::insert_returning_id`]).
    pub async fn insert_returning_id(&mut self, sql: &str, values: &[Value]) -> DbResult<i64> {
        let args = bind_all(values)?;
        let id = match self.backend {
            Backend::Postgres | Backend::Sqlite => {
                let sql = self.sql(&format!("{sql} RETURNING id")).into_owned();
                sqlx::query_scalar_with(&sql, args)
                    .fetch_one(&mut *self.inner)
                    .await?
            }
            Backend::MySql => {
                let result = sqlx::query_with(sql, args)
                    .execute(&mut *self.inner)
                    .await?;
                result
                    .last_insert_id()
                    .ok_or_else(|| DbError::Corrupt("the database reported no insert id".into()))?
            }
        };
        self.rows_written += 1;
        Ok(id)
    }

    /// Commits, recording what servers hold that changed in the change feed (under one new
    /// data version) when something did.
    async fn commit(mut self) -> DbResult<Vec<Change>> {
        let changes = std::mem::take(&mut self.changes);
        if !changes.is_empty() {
            feed::record(&mut self, &changes).await?;
        }
        self.inner.commit().await?;
        Ok(changes)
    }
}

/// `INSERT … ON CONFLICT … DO UPDATE` in the backend's dialect: every column that is not part of
/// the key is overwritten with the new value.
pub(crate) fn upsert_sql(backend: Backend, table: &str, columns: &[&str], key: &[&str]) -> String {
    let placeholders = vec!["?"; columns.len()].join(", ");
    let updated: Vec<&&str> = columns.iter().filter(|c| !key.contains(c)).collect();
    let insert = format!(
        "INSERT INTO {table} ({}) VALUES ({placeholders})",
        columns.join(", ")
    );
    match backend {
        Backend::MySql => {
            let sets: Vec<String> = updated
                .iter()
                .map(|c| format!("{c} = VALUES({c})"))
                .collect();
            format!("{insert} ON DUPLICATE KEY UPDATE {}", sets.join(", "))
        }
        Backend::Sqlite | Backend::Postgres => {
            let sets: Vec<String> = updated
                .iter()
                .map(|c| format!("{c} = excluded.{c}"))
                .collect();
            format!(
                "{insert} ON CONFLICT ({}) DO UPDATE SET {}",
                key.join(", "),
                sets.join(", ")
            )
        }
    }
}

/// `INSERT …` that leaves an existing row with the same key as it is, without an error (so a
/// writer racing another on the key does not fail, and PostgreSQL's transaction stays usable),
/// in the backend's dialect.
pub(crate) fn insert_if_absent_sql(
    backend: Backend,
    table: &str,
    columns: &[&str],
    key: &[&str],
) -> String {
    let placeholders = vec!["?"; columns.len()].join(", ");
    let insert = format!(
        "INSERT INTO {table} ({}) VALUES ({placeholders})",
        columns.join(", ")
    );
    match backend {
        // MySQL's INSERT IGNORE would also turn other errors (a value too long) into
        // warnings; a no-op update on the duplicate key ignores only that.
        Backend::MySql => format!("{insert} ON DUPLICATE KEY UPDATE {0} = {0}", key[0]),
        Backend::Sqlite | Backend::Postgres => {
            format!("{insert} ON CONFLICT ({}) DO NOTHING", key.join(", "))
        }
    }
}

pub(crate) fn bind_all(values: &[Value]) -> DbResult<AnyArguments<'static>> {
    let mut args = AnyArguments::default();
    for value in values {
        let added = match value.clone() {
            Value::Int(v) => args.add(v),
            Value::OptInt(v) => args.add(v),
            Value::Text(v) => args.add(v),
            Value::OptText(v) => args.add(v),
        };
        added.map_err(|e| DbError::Sqlx(sqlx::Error::Encode(e)))?;
    }
    Ok(args)
}

/// `?` → `$1`, `$2`, … outside string literals and quoted identifiers.
fn numbered_placeholders(query: &str) -> String {
    let mut out = String::with_capacity(query.len() + 16);
    let mut n = 0;
    let mut quote: Option<char> = None;
    for c in query.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c == '?' => {
                n += 1;
                out.push('$');
                out.push_str(&n.to_string());
                continue;
            }
            None => {}
        }
        out.push(c);
    }
    out
}

/// Normalises a SQLite URL (creating the file if missing) and switches the file to WAL mode,
/// which lets the CLI write while the server reads. WAL is a property of the file, so it is
/// set once here rather than per pooled connection.
async fn prepare_sqlite(url: &str) -> DbResult<String> {
    let mut url = url.to_string();
    if !url.contains("mode=") && !url.contains(":memory:") {
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str("mode=rwc");
    }
    let path = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:")
        .split('?')
        .next()
        .unwrap_or_default();
    if let Some(parent) = Path::new(path).parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent).map_err(|e| {
            DbError::BadUrl(format!("cannot create directory {}: {e}", parent.display()))
        })?;
    }
    let mut conn = AnyConnection::connect(&url).await?;
    conn.execute("PRAGMA journal_mode = WAL;").await?;
    conn.close().await?;
    Ok(url)
}

/// Reads a string column. MySQL reports TEXT columns to the `Any` driver as BLOB, so a value
/// that does not decode as a string is read as bytes and checked to be UTF-8.
pub(crate) fn text(row: &AnyRow, column: &str) -> DbResult<String> {
    use sqlx::Row;
    match row.try_get::<String, _>(column) {
        Ok(value) => Ok(value),
        Err(_) => {
            let bytes: Vec<u8> = row.try_get(column)?;
            String::from_utf8(bytes)
                .map_err(|_| DbError::Corrupt(format!("column {column} is not UTF-8")))
        }
    }
}

/// A nullable string column; see [`text`].
pub(crate) fn opt_text(row: &AnyRow, column: &str) -> DbResult<Option<String>> {
    use sqlx::Row;
    match row.try_get::<Option<String>, _>(column) {
        Ok(value) => Ok(value),
        Err(_) => {
            let bytes: Option<Vec<u8>> = row.try_get(column)?;
            bytes
                .map(|b| {
                    String::from_utf8(b)
                        .map_err(|_| DbError::Corrupt(format!("column {column} is not UTF-8")))
                })
                .transpose()
        }
    }
}

/// Reads a 0/1 integer column as a bool.
pub(crate) fn flag(value: i64) -> bool {
    value != 0
}

/// The rate limits of a row that selected the columns a key, an account and a group keep
/// them in (`rpm`, `tpm`, `max_concurrent`); NULL (or a value no form could have set) is no
/// limit.
pub(crate) fn rate_limits(row: &AnyRow) -> DbResult<crate::domain::rate_limits::RateLimits> {
    use sqlx::Row;
    let limit = |column: &str| -> DbResult<Option<u64>> {
        let value: Option<i64> = row.try_get(column)?;
        Ok(value.and_then(|v| u64::try_from(v).ok()).filter(|v| *v > 0))
    };
    Ok(crate::domain::rate_limits::RateLimits {
        rpm: limit("rpm")?,
        tpm: limit("tpm")?,
        max_concurrent: limit("max_concurrent")?,
    })
}

/// The values of `rpm`, `tpm` and `max_concurrent` for these limits.
pub(crate) fn rate_limit_values(limits: crate::domain::rate_limits::RateLimits) -> [Value; 3] {
    let value = |limit: Option<u64>| Value::OptInt(limit.and_then(|v| i64::try_from(v).ok()));
    [
        value(limits.rpm),
        value(limits.tpm),
        value(limits.max_concurrent),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_placeholders_outside_literals() {
        assert_eq!(
            numbered_placeholders("SELECT a FROM t WHERE b = ? AND c = '?' AND d = ?"),
            "SELECT a FROM t WHERE b = $1 AND c = '?' AND d = $2"
        );
    }

    #[test]
    fn names_the_column_a_unique_value_collided_on() {
        let on = |text: &str| DbError::Conflict(text.into());
        assert!(on("users_email_key").is_conflict_on("email"));
        assert!(on("UNIQUE constraint failed: users.email").is_conflict_on("email"));
        assert!(!on("UNIQUE constraint failed: users.username").is_conflict_on("email"));
        assert!(
            !on("Duplicate entry 'email' for key 'users_username_key'").is_conflict_on("email")
        );
        assert!(on("Duplicate entry 'a@b.c' for key 'users_email_key'").is_conflict_on("email"));
    }

    #[test]
    fn inserts_if_absent_in_each_dialect() {
        let sql = |backend| insert_if_absent_sql(backend, "t", &["name", "value"], &["name"]);
        assert_eq!(
            sql(Backend::Sqlite),
            "INSERT INTO t (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING"
        );
        assert_eq!(sql(Backend::Postgres), sql(Backend::Sqlite));
        assert_eq!(
            sql(Backend::MySql),
            "INSERT INTO t (name, value) VALUES (?, ?) ON DUPLICATE KEY UPDATE name = name"
        );
    }

    #[test]
    fn recognises_backends() {
        assert_eq!(Backend::from_url("sqlite://x.db").unwrap(), Backend::Sqlite);
        assert_eq!(
            Backend::from_url("postgresql://h/db").unwrap(),
            Backend::Postgres
        );
        assert_eq!(Backend::from_url("mariadb://h/db").unwrap(), Backend::MySql);
        assert!(Backend::from_url("oracle://h").is_err());
    }
}
