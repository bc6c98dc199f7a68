//! Request logs and the batched billing write that goes with them.

use sqlx::any::{AnyArguments, AnyRow};
use sqlx::error::BoxDynError;
use sqlx::{Arguments, Row};

use super::{Change, Db, DbError, DbResult, Tx, Value, flag, text};
use crate::domain::kinds::Outcome;
pub use crate::records::logs::{BillingBatch, LogTotals, Replayed, RequestLog};

const COLUMNS: [&str; 29] = [
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
    })
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
     last_used_at = CASE WHEN last_used_at IS NULL OR last_used_at < ? THEN ? ELSE last_used_at END, \
     budget_spent = CASE WHEN ? = 0 THEN budget_spent \
         WHEN budget_window = ? THEN (CASE WHEN budget_spent > ? THEN ? ELSE budget_spent + ? END) \
         WHEN budget_window < ? THEN ? ELSE budget_spent END, \
     budget_window = CASE WHEN budget_window < ? THEN ? ELSE budget_window END \
     WHERE id = ?"
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
        // A record written late (a retry, a replay) never moves the last use back, nor the
        // budget to an earlier period. `budget_spent` is set before `budget_window` because
        // MySQL evaluates each assignment with the ones before it already applied.
        let spent = d.budget_spent.max(0);
        values.extend([
            Value::Int(d.requests),
            Value::Int(d.last_used_at),
            Value::Int(d.last_used_at),
            Value::Int(d.budget_window),
            Value::Int(d.budget_window),
            Value::Int(i64::MAX - spent),
            Value::Int(i64::MAX),
            Value::Int(spent),
            Value::Int(d.budget_window),
            Value::Int(spent),
            Value::Int(d.budget_window),
            Value::Int(d.budget_window),
            Value::Int(d.id),
        ]);
        tx.execute(UPDATE_TOKEN_BALANCE, &values).await?;
    }
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
    /// Only rows with an id below this (for paging backwards).
    pub before_id: Option<i64>,
    /// Only rows written at or after this time (ms since the epoch).
    pub from_ms: Option<i64>,
    /// Only rows written before this time.
    pub to_ms: Option<i64>,
    pub outcome: Option<Outcome>,
    pub limit: i64,
}

impl LogFilter {
    fn where_clause(&self) -> (String, Vec<Value>) {
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

pub async fn list(db: &Db, filter: &LogFilter) -> DbResult<Vec<RequestLog>> {
    let (where_clause, mut values) = filter.where_clause();
    values.push(Value::Int(filter.limit.clamp(1, 1000)));
    let sql = format!(
        "SELECT id, {} FROM request_logs{where_clause} ORDER BY id DESC LIMIT ?",
        COLUMNS.join(", ")
    );
    let rows = db.fetch_all_with(&sql, &values).await?;
    rows.iter().map(from_row).collect()
}

/// The models an account's requests named (every account's when `user_id` is None), sorted,
/// at most `limit` of them.
pub async fn models_seen(db: &Db, user_id: Option<i64>, limit: i64) -> DbResult<Vec<String>> {
    let (condition, mut values) = match user_id {
        Some(id) => (" WHERE user_id = ?", vec![Value::Int(id)]),
        None => ("", Vec::new()),
    };
    values.push(Value::Int(limit.clamp(1, 10_000)));
    let sql = format!("SELECT DISTINCT model FROM request_logs{condition} ORDER BY model LIMIT ?");
    let rows = db.fetch_all_with(&sql, &values).await?;
    rows.iter().map(|row| text(row, "model")).collect()
}

pub async fn totals(db: &Db, filter: &LogFilter) -> DbResult<LogTotals> {
    let filter = LogFilter {
        before_id: None,
        ..filter.clone()
    };
    let (where_clause, values) = filter.where_clause();
    // CAST keeps the sums BIGINT on every backend (PostgreSQL returns NUMERIC for SUM(BIGINT)).
    let sql = format!(
        "SELECT COUNT(*) AS n, CAST(COALESCE(SUM(cost), 0) AS BIGINT) AS cost, \
         CAST(COALESCE(SUM(prompt_tokens), 0) AS BIGINT) AS prompt, \
         CAST(COALESCE(SUM(completion_tokens), 0) AS BIGINT) AS completion \
         FROM request_logs{where_clause}"
    );
    let sql = match db.backend() {
        // MySQL spells a 64-bit integer cast SIGNED.
        super::Backend::MySql => sql.replace("AS BIGINT)", "AS SIGNED)"),
        _ => sql,
    };
    let rows = db.fetch_all_with(&sql, &values).await?;
    let row = rows
        .first()
        .ok_or_else(|| DbError::Corrupt("no totals row".into()))?;
    Ok(LogTotals {
        requests: row.try_get("n")?,
        cost: row.try_get("cost")?,
        prompt_tokens: row.try_get("prompt")?,
        completion_tokens: row.try_get("completion")?,
    })
}

/// One period's usage of one model by an account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelUsage {
    /// The period's number: an hour from [`hourly_usage`], a local day once the service has
    /// placed the hours on days.
    pub period: i64,
    pub model: String,
    pub requests: i64,
    pub cost: i64,
}

/// An account's requests and cost per hour and model since `from_ms`. Hour `h` is the hour
/// that began at `h × 3,600,000 − align_ms` (UTC milliseconds): `align_ms` is the site zone's
/// offset within the hour (30 minutes in India), so every local midnight starts an hour and the
/// caller can place each hour on its local day exactly, daylight saving or not.
pub async fn hourly_usage(
    db: &Db,
    user_id: i64,
    from_ms: i64,
    align_ms: i64,
) -> DbResult<Vec<ModelUsage>> {
    let (hour, bigint) = match db.backend() {
        // MySQL's `/` is decimal division; DIV is the integer one. MySQL spells BIGINT SIGNED.
        super::Backend::MySql => ("(created_at + ?) DIV 3600000", "SIGNED"),
        _ => ("(created_at + ?) / 3600000", "BIGINT"),
    };
    let sql = format!(
        "SELECT {hour} AS hour, model, COUNT(*) AS n, \
         CAST(COALESCE(SUM(cost), 0) AS {bigint}) AS cost \
         FROM request_logs WHERE user_id = ? AND created_at >= ? \
         GROUP BY hour, model ORDER BY hour, model"
    );
    let rows = db
        .fetch_all_with(
            &sql,
            &[
                Value::Int(align_ms),
                Value::Int(user_id),
                Value::Int(from_ms),
            ],
        )
        .await?;
    rows.iter()
        .map(|row| {
            Ok(ModelUsage {
                period: row.try_get("hour")?,
                model: text(row, "model")?,
                requests: row.try_get("n")?,
                cost: row.try_get("cost")?,
            })
        })
        .collect()
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
