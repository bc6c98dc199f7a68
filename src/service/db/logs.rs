//! Request logs and the batched billing write that goes with them.

use sqlx::any::{AnyArguments, AnyRow};
use sqlx::error::BoxDynError;
use sqlx::{Arguments, Row};

use super::{Change, Db, DbError, DbResult, Tx, Value, flag, now_ms, text};
use crate::domain::kinds::Outcome;
pub use crate::records::logs::{BillingBatch, FailedAttempt, LogTotals, Replayed, RequestLog};

const COLUMNS: [&str; 32] = [
    "created_at",
    "request_id",
    "user_id",
    "username",
    "token_id",
    "token_name",
    "group_name",
    "endpoint",
    "model",
    "upstream_model",
    "channel_id",
    "channel_name",
    "attempts",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "cache_write_tokens",
    "usage_estimated",
    "cost",
    "latency_ms",
    "ttft_ms",
    "is_stream",
    "outcome",
    "status_code",
    "error_message",
    "client_ip",
    "requested_model",
    "upstream_request_id",
    "implausible_usage",
    "failed_attempts",
    "org_id",
    "team_id",
];

/// Binds one row's values, borrowing the strings from the row.
fn bind_row<'q>(args: &mut AnyArguments<'q>, log: &'q RequestLog) -> Result<(), BoxDynError> {
    args.add(log.created_at)?;
    args.add(log.request_id.as_str())?;
    args.add(log.user_id)?;
    args.add(log.username.as_str())?;
    args.add(log.token_id)?;
    args.add(log.token_name.as_str())?;
    args.add(log.group.as_str())?;
    args.add(log.endpoint.as_str())?;
    args.add(log.model.as_str())?;
    args.add(log.upstream_model.as_str())?;
    args.add(log.channel_id)?;
    args.add(log.channel_name.as_str())?;
    args.add(log.attempts)?;
    args.add(log.prompt_tokens)?;
    args.add(log.completion_tokens)?;
    args.add(log.cached_tokens)?;
    args.add(log.cache_write_tokens)?;
    args.add(i64::from(log.usage_estimated))?;
    args.add(log.cost)?;
    args.add(log.latency_ms)?;
    args.add(log.ttft_ms)?;
    args.add(i64::from(log.is_stream))?;
    args.add(log.outcome.as_str())?;
    args.add(log.status_code)?;
    args.add(log.error_message.as_str())?;
    args.add(log.client_ip.as_str())?;
    args.add(log.requested_model.as_str())?;
    args.add(log.upstream_request_id.as_str())?;
    args.add(log.implausible_usage.as_str())?;
    args.add(failed_attempts_text(&log.failed_attempts))?;
    args.add(log.org_id)?;
    args.add(log.team_id)?;
    Ok(())
}

fn from_row(row: &AnyRow) -> DbResult<RequestLog> {
    let outcome: String = text(row, "outcome")?;
    Ok(RequestLog {
        id: row.try_get("id")?,
        created_at: row.try_get("created_at")?,
        request_id: text(row, "request_id")?,
        user_id: row.try_get("user_id")?,
        username: text(row, "username")?,
        token_id: row.try_get("token_id")?,
        token_name: text(row, "token_name")?,
        group: text(row, "group_name")?,
        endpoint: text(row, "endpoint")?,
        model: text(row, "model")?,
        upstream_model: text(row, "upstream_model")?,
        channel_id: row.try_get("channel_id")?,
        channel_name: text(row, "channel_name")?,
        attempts: row.try_get("attempts")?,
        prompt_tokens: row.try_get("prompt_tokens")?,
        completion_tokens: row.try_get("completion_tokens")?,
        cached_tokens: row.try_get("cached_tokens")?,
        cache_write_tokens: row.try_get("cache_write_tokens")?,
        usage_estimated: flag(row.try_get("usage_estimated")?),
        cost: row.try_get("cost")?,
        latency_ms: row.try_get("latency_ms")?,
        ttft_ms: row.try_get("ttft_ms")?,
        is_stream: flag(row.try_get("is_stream")?),
        outcome: Outcome::parse(&outcome)
            .ok_or_else(|| DbError::Corrupt(format!("log outcome '{outcome}'")))?,
        status_code: row.try_get("status_code")?,
        error_message: text(row, "error_message")?,
        client_ip: text(row, "client_ip")?,
        requested_model: text(row, "requested_model")?,
        upstream_request_id: text(row, "upstream_request_id")?,
        implausible_usage: text(row, "implausible_usage")?,
        failed_attempts: failed_attempts_from(&text(row, "failed_attempts")?),
        org_id: row.try_get("org_id")?,
        team_id: row.try_get("team_id")?,
    })
}

/// The earlier attempts as stored: empty for none (nearly every row), else a JSON list.
fn failed_attempts_text(attempts: &[FailedAttempt]) -> String {
    if attempts.is_empty() {
        String::new()
    } else {
        serde_json::to_string(attempts).unwrap_or_default()
    }
}

/// A list that does not parse (written by hand, or cut) reads as none: the row's own fields
/// still say how the request ended.
fn failed_attempts_from(text: &str) -> Vec<FailedAttempt> {
    if text.is_empty() {
        return Vec::new();
    }
    serde_json::from_str(text).unwrap_or_default()
}

/// `column = column + ?` that stops at the 64-bit bounds instead of overflowing, which is an
/// error on PostgreSQL and MySQL and a silent switch to floating point on SQLite. Its four
/// binds come from [`saturating_binds`].
macro_rules! saturating_add {
    ($column:literal) => {
        concat!(
            $column,
            " = CASE WHEN ",
            $column,
            " < ? OR ",
            $column,
            " > ? THEN ? ELSE ",
            $column,
            " + ? END"
        )
    };
}

const UPDATE_USER_BALANCE: &str = concat!(
    "UPDATE users SET ",
    saturating_add!("quota"),
    ", ",
    saturating_add!("used_quota"),
    ", request_count = request_count + ? WHERE id = ?"
);
const UPDATE_TOKEN_BALANCE: &str = concat!(
    "UPDATE tokens SET ",
    saturating_add!("remaining_quota"),
    ", ",
    saturating_add!("used_quota"),
    ", request_count = request_count + ?, \
     last_used_at = CASE WHEN last_used_at IS NULL OR last_used_at < ? THEN ? ELSE last_used_at END \
     WHERE id = ?"
);
const UPDATE_ORG_BALANCE: &str = concat!(
    "UPDATE orgs SET ",
    saturating_add!("quota"),
    ", ",
    saturating_add!("used_quota"),
    ", request_count = request_count + ? WHERE id = ?"
);
const UPDATE_CHANNEL_USAGE: &str = concat!(
    "UPDATE channels SET ",
    saturating_add!("used_quota"),
    ", request_count = request_count + ? WHERE id = ?"
);

/// The binds of one [`saturating_add!`]: the range in which adding `delta` cannot overflow,
/// the bound to stop at outside it, and the delta. Computed without overflowing either.
fn saturating_binds(delta: i64) -> [Value; 4] {
    let (low, high) = super::addable_range(delta);
    let bound = if delta < 0 { i64::MIN } else { i64::MAX };
    [
        Value::Int(low),
        Value::Int(high),
        Value::Int(bound),
        Value::Int(delta),
    ]
}

/// Rows per multi-row INSERT. Larger statements save round trips but SQLite keeps a compiled
/// program per cached statement that grows with the rows (about 7 KB per row), so a modest
/// size keeps memory flat.
const LOG_ROWS_PER_STATEMENT: usize = 32;

/// Splits rows into statements of a few fixed sizes: full statements of
/// `LOG_ROWS_PER_STATEMENT` rows, then the rest in powers of two. Every prepared statement is
/// cached per connection, so a handful of shapes keeps that cache small whatever the batch
/// size; one shape per possible remainder would fill it with dozens of large programs.
fn statement_chunks<T>(rows: &[T]) -> Vec<&[T]> {
    let mut chunks = Vec::new();
    let mut rest = rows;
    let mut size = LOG_ROWS_PER_STATEMENT;
    while !rest.is_empty() {
        while size > rest.len() {
            size /= 2;
        }
        let (chunk, tail) = rest.split_at(size);
        chunks.push(chunk);
        rest = tail;
    }
    chunks
}

pub async fn apply_billing(db: &Db, batch: &BillingBatch<'_>) -> DbResult<()> {
    let ((), _) = db
        .write(async |tx| write_billing_in(tx, batch).await)
        .await?;
    Ok(())
}

/// Writes one batch of settled requests inside `tx`: balance and usage deltas, then the log
/// rows in multi-row statements.
async fn write_billing_in(tx: &mut Tx, batch: &BillingBatch<'_>) -> DbResult<()> {
    for d in &batch.users {
        let mut values = Vec::with_capacity(10);
        values.extend(saturating_binds(d.quota));
        values.extend(saturating_binds(d.used));
        values.extend([Value::Int(d.requests), Value::Int(d.id)]);
        tx.execute(UPDATE_USER_BALANCE, &values).await?;
    }
    for d in &batch.tokens {
        let mut values = Vec::with_capacity(20);
        values.extend(saturating_binds(d.quota));
        values.extend(saturating_binds(d.used));
        // A record written late (a retry, a replay) never moves the last use back.
        values.extend([
            Value::Int(d.requests),
            Value::Int(d.last_used_at),
            Value::Int(d.last_used_at),
            Value::Int(d.id),
        ]);
        tx.execute(UPDATE_TOKEN_BALANCE, &values).await?;
    }
    for d in &batch.orgs {
        let mut values = Vec::with_capacity(10);
        values.extend(saturating_binds(d.quota));
        values.extend(saturating_binds(d.used));
        values.extend([Value::Int(d.requests), Value::Int(d.id)]);
        tx.execute(UPDATE_ORG_BALANCE, &values).await?;
    }
    super::scopes::add_spend_in(tx, &batch.spend).await?;
    for d in &batch.channels {
        let mut values = Vec::with_capacity(6);
        values.extend(saturating_binds(d.used));
        values.extend([Value::Int(d.requests), Value::Int(d.id)]);
        tx.execute(UPDATE_CHANNEL_USAGE, &values).await?;
    }
    let row = format!("({})", vec!["?"; COLUMNS.len()].join(", "));
    for chunk in statement_chunks(&batch.logs) {
        let sql = format!(
            "INSERT INTO request_logs ({}) VALUES {}",
            COLUMNS.join(", "),
            vec![row.as_str(); chunk.len()].join(", ")
        );
        let mut args = AnyArguments::default();
        for log in chunk {
            bind_row(&mut args, log).map_err(|e| DbError::Sqlx(sqlx::Error::Encode(e)))?;
        }
        tx.execute_args(&sql, args).await?;
    }
    // The rollups move with the rows they sum, in the same transaction.
    super::rollups::add_in(tx, &super::rollups::rollup_of(batch.logs.iter().copied())).await?;
    Ok(())
}

/// Which of `request_ids` have their log row written already: after a write whose outcome was
/// lost (the connection broke during the commit), so it is not applied twice.
pub async fn logged_request_ids(
    db: &Db,
    request_ids: &[&str],
) -> DbResult<std::collections::HashSet<String>> {
    let mut logged = std::collections::HashSet::new();
    for chunk in request_ids.chunks(200) {
        let placeholders = vec!["?"; chunk.len()].join(", ");
        let sql =
            format!("SELECT request_id FROM request_logs WHERE request_id IN ({placeholders})");
        let values: Vec<Value> = chunk
            .iter()
            .map(|id| Value::Text((*id).to_string()))
            .collect();
        for row in db.fetch_all_with(&sql, &values).await? {
            logged.insert(super::text(&row, "request_id")?);
        }
    }
    Ok(logged)
}

/// Applies one billing record that the writer could not write (see `billing::dead_letter`),
/// exactly once: the request's id is recorded in the same transaction, and a request whose
/// log row exists was written after all.
pub async fn replay(
    tx: &mut Tx,
    request_id: &str,
    batch: &BillingBatch<'_>,
    now_ms: i64,
) -> DbResult<Replayed> {
    let logged = tx
        .fetch_optional(
            "SELECT id FROM request_logs WHERE request_id = ? LIMIT 1",
            &[Value::Text(request_id.to_string())],
        )
        .await?;
    if logged.is_some() {
        return Ok(Replayed::AlreadyApplied);
    }
    let marked = tx
        .execute(
            "INSERT INTO billing_replays (request_id, applied_at) VALUES (?, ?)",
            &[Value::Text(request_id.to_string()), Value::Int(now_ms)],
        )
        .await;
    match marked {
        Ok(_) => {}
        Err(DbError::Conflict(_)) => return Ok(Replayed::AlreadyApplied),
        Err(e) => return Err(e),
    }
    for d in &batch.users {
        // Balances changed outside the servers' own billing: have them re-read.
        tx.changed(Change::User(d.id));
    }
    write_billing_in(tx, batch).await?;
    Ok(Replayed::Applied)
}

/// A deleted account's requests stay for the books, under its new anonymous name and
/// without the addresses they came from.
pub async fn anonymize_user(tx: &mut Tx, user_id: i64, name: &str) -> DbResult<u64> {
    tx.execute(
        "UPDATE request_logs SET username = ?, client_ip = '' WHERE user_id = ?",
        &[Value::Text(name.to_string()), Value::Int(user_id)],
    )
    .await
}

/// Which logs to read. Results are newest first.
#[derive(Clone, Debug, Default)]
pub struct LogFilter {
    pub user_id: Option<i64>,
    pub token_id: Option<i64>,
    pub model: Option<String>,
    pub request_id: Option<String>,
    /// Only requests served (last tried) by this channel; 0: refused before any channel.
    pub channel_id: Option<i64>,
    /// Only rows older than this `(created_at, id)` (paging backwards through the order of
    /// the list).
    pub before: Option<(i64, i64)>,
    /// Only rows with an id below this (the older way of paging, kept for `/api/logs`).
    pub before_id: Option<i64>,
    /// Only rows written at or after this time (ms since the epoch).
    pub from_ms: Option<i64>,
    /// Only rows written before this time.
    pub to_ms: Option<i64>,
    pub outcome: Option<Outcome>,
    pub limit: i64,
}

impl LogFilter {
    pub(super) fn where_clause(&self) -> (String, Vec<Value>) {
        let mut conditions: Vec<&str> = Vec::new();
        let mut values = Vec::new();
        if let Some(id) = self.user_id {
            conditions.push("user_id = ?");
            values.push(Value::Int(id));
        }
        if let Some(id) = self.token_id {
            conditions.push("token_id = ?");
            values.push(Value::Int(id));
        }
        if let Some(model) = &self.model {
            conditions.push("model = ?");
            values.push(Value::Text(model.clone()));
        }
        if let Some(request_id) = &self.request_id {
            conditions.push("request_id = ?");
            values.push(Value::Text(request_id.clone()));
        }
        match self.channel_id {
            Some(0) => conditions.push("channel_id IS NULL"),
            Some(id) => {
                conditions.push("channel_id = ?");
                values.push(Value::Int(id));
            }
            None => {}
        }
        if let Some((at, id)) = self.before {
            conditions.push("(created_at < ? OR (created_at = ? AND id < ?))");
            values.extend([Value::Int(at), Value::Int(at), Value::Int(id)]);
        }
        if let Some(id) = self.before_id {
            conditions.push("id < ?");
            values.push(Value::Int(id));
        }
        if let Some(at) = self.from_ms {
            conditions.push("created_at >= ?");
            values.push(Value::Int(at));
        }
        if let Some(at) = self.to_ms {
            conditions.push("created_at < ?");
            values.push(Value::Int(at));
        }
        if let Some(outcome) = self.outcome {
            conditions.push("outcome = ?");
            values.push(Value::Text(outcome.as_str().to_string()));
        }
        if conditions.is_empty() {
            (String::new(), values)
        } else {
            (format!(" WHERE {}", conditions.join(" AND ")), values)
        }
    }
}

/// Newest first, by `(created_at, id)`: the order every filter's index reads in, so a page
/// is a short walk of an index whatever the table holds.
pub async fn list(db: &Db, filter: &LogFilter) -> DbResult<Vec<RequestLog>> {
    let (where_clause, mut values) = filter.where_clause();
    values.push(Value::Int(filter.limit.clamp(1, 1000)));
    let sql = format!(
        "SELECT id, {} FROM request_logs{where_clause} ORDER BY created_at DESC, id DESC LIMIT ?",
        COLUMNS.join(", ")
    );
    let rows = db.fetch_all_with(&sql, &values).await?;
    rows.iter().map(from_row).collect()
}

/// The columns a row is read with (`from_row`), for other modules' queries of the table.
pub(super) fn select_list() -> String {
    format!("id, {}", COLUMNS.join(", "))
}

/// A row read with [`select_list`].
pub(super) fn read_row(row: &AnyRow) -> DbResult<RequestLog> {
    from_row(row)
}

/// One request's row.
pub async fn get(db: &Db, id: i64) -> DbResult<Option<RequestLog>> {
    let sql = format!(
        "SELECT id, {} FROM request_logs WHERE id = ?",
        COLUMNS.join(", ")
    );
    let rows = db.fetch_all_with(&sql, &[Value::Int(id)]).await?;
    rows.first().map(from_row).transpose()
}

/// Deletes up to `batch` rows written before `before_ms`, oldest first; returns how many.
/// Small batches keep each transaction (and the locks it holds) short. Their rollups stay.
pub async fn purge_before(db: &Db, before_ms: i64, batch: i64) -> DbResult<u64> {
    let rows = db
        .fetch_all_with(
            "SELECT id FROM request_logs WHERE created_at < ? ORDER BY created_at, id LIMIT ?",
            &[Value::Int(before_ms), Value::Int(batch.clamp(1, 10_000))],
        )
        .await?;
    let ids: Vec<Value> = rows
        .iter()
        .map(|row| row.try_get::<i64, _>("id").map(Value::Int))
        .collect::<Result<_, _>>()?;
    if ids.is_empty() {
        return Ok(0);
    }
    let sql = format!(
        "DELETE FROM request_logs WHERE id IN ({})",
        super::placeholders(ids.len())
    );
    db.execute_with(db.pool(), &sql, &ids).await
}

/// The models an account's requests named (every account's when `user_id` is None), sorted,
/// at most `limit` of them.
pub async fn models_seen(db: &Db, user_id: Option<i64>, limit: i64) -> DbResult<Vec<String>> {
    let limit = Value::Int(limit.clamp(1, 10_000));
    // The rollups name every model the logs do, in far fewer rows. Everyone's: one step down
    // the model index per model (a loose index scan), however many rows each has.
    let (sql, values) = match user_id {
        Some(id) => (
            "SELECT DISTINCT model FROM log_rollups WHERE user_id = ? ORDER BY model LIMIT ?",
            vec![Value::Int(id), limit],
        ),
        None => (
            "WITH RECURSIVE seen (model) AS (\
             SELECT MIN(model) FROM log_rollups \
             UNION ALL SELECT (SELECT MIN(r.model) FROM log_rollups r WHERE r.model > seen.model) \
             FROM seen WHERE seen.model IS NOT NULL) \
             SELECT model FROM seen WHERE model IS NOT NULL ORDER BY model LIMIT ?",
            vec![limit],
        ),
    };
    let rows = db.fetch_all_with(sql, &values).await?;
    rows.iter().map(|row| text(row, "model")).collect()
}

/// Totals over what the filter matches (paging ignored): whole 15-minute buckets from the
/// rollups, the edges of its time range from the rows.
pub async fn totals(db: &Db, filter: &LogFilter) -> DbResult<LogTotals> {
    // Paging does not change the totals, and an open end is now (rows are stamped when their
    // request starts): so the range reads whole days and hours from the coarser rollups
    // where the filter allows, a few thousand rows whatever the range.
    let whole = LogFilter {
        before: None,
        before_id: None,
        to_ms: Some(filter.to_ms.unwrap_or_else(|| now_ms() + 1)),
        ..filter.clone()
    };
    let all = super::rollups::overview_sums(db, &whole, super::rollups::Dimension::Total).await?;
    let sums = all.first().map(|a| a.sums).unwrap_or_default();
    Ok(LogTotals {
        requests: sums.requests,
        cost: sums.cost,
        prompt_tokens: sums.prompt_tokens,
        completion_tokens: sums.completion_tokens,
    })
}

/// One period's usage of one model by an account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelUsage {
    /// The period's number: a local day once the service has placed the buckets on days.
    pub period: i64,
    pub model: String,
    pub requests: i64,
    pub cost: i64,
}

/// The indexes the log listing's filters read, each ending in `(created_at, id)`: the list's
/// order, so a page is a short walk of one index.
const LOG_INDEXES: [(&str, &str); 7] = [
    ("request_logs_time_idx", "created_at, id"),
    ("request_logs_user_time_id_idx", "user_id, created_at, id"),
    ("request_logs_token_time_idx", "token_id, created_at, id"),
    ("request_logs_model_time_idx", "model, created_at, id"),
    (
        "request_logs_channel_time_idx",
        "channel_id, created_at, id",
    ),
    ("request_logs_outcome_time_idx", "outcome, created_at, id"),
    ("request_logs_org_time_idx", "org_id, created_at, id"),
];

/// Builds the indexes of [`LOG_INDEXES`] that are missing, without blocking the writes of a
/// large table: CONCURRENTLY on PostgreSQL (an index left invalid by an interrupted build is
/// dropped and built again), online (LOCK=NONE) on MySQL. Returns how many were built.
pub async fn ensure_indexes(db: &Db) -> DbResult<usize> {
    let mut built = 0;
    for (name, columns) in LOG_INDEXES {
        match db.backend() {
            super::Backend::Sqlite => {
                if db.has_index("request_logs", name).await? {
                    continue;
                }
                let sql = format!("CREATE INDEX IF NOT EXISTS {name} ON request_logs ({columns})");
                db.execute_with(db.pool(), &sql, &[]).await?;
            }
            super::Backend::Postgres => {
                let state = db
                    .fetch_all_with(
                        "SELECT CAST(i.indisvalid AS INTEGER) AS valid FROM pg_index i \
                         JOIN pg_class c ON c.oid = i.indexrelid \
                         JOIN pg_namespace n ON n.oid = c.relnamespace \
                         WHERE c.relname = ? AND n.nspname = current_schema()",
                        &[Value::Text(name.to_string())],
                    )
                    .await?;
                match state.first() {
                    Some(row) if row.try_get::<i32, _>("valid")? == 1 => continue,
                    Some(_) => {
                        db.execute_with(db.pool(), &format!("DROP INDEX CONCURRENTLY {name}"), &[])
                            .await?;
                    }
                    None => {}
                }
                let sql = format!("CREATE INDEX CONCURRENTLY {name} ON request_logs ({columns})");
                db.execute_with(db.pool(), &sql, &[]).await?;
            }
            super::Backend::MySql => {
                if db.has_index("request_logs", name).await? {
                    continue;
                }
                let sql = format!(
                    "ALTER TABLE request_logs ADD INDEX {name} ({columns}), \
                     ALGORITHM=INPLACE, LOCK=NONE"
                );
                db.execute_with(db.pool(), &sql, &[]).await?;
            }
        }
        built += 1;
    }
    Ok(built)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_come_in_a_few_fixed_sizes() {
        let rows: Vec<u32> = (0..101).collect();
        let sizes: Vec<usize> = statement_chunks(&rows).iter().map(|c| c.len()).collect();
        assert_eq!(sizes, vec![32, 32, 32, 4, 1]);
        let flattened: Vec<u32> = statement_chunks(&rows).concat();
        assert_eq!(flattened, rows);
        assert!(statement_chunks::<u32>(&[]).is_empty());
    }
}
