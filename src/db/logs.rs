//! Request logs and the batched billing write that goes with them.

use sqlx::any::{AnyArguments, AnyRow};
use sqlx::error::BoxDynError;
use sqlx::{Arguments, Row};

use super::{Db, DbError, DbResult, Value, flag, text};
use crate::domain::kinds::Outcome;

/// One row per relayed request.
#[derive(Clone, Debug, PartialEq)]
pub struct RequestLog {
    /// Assigned by the database; ignored on insert.
    pub id: i64,
    pub created_at: i64,
    pub request_id: String,
    pub user_id: i64,
    pub username: String,
    pub token_id: i64,
    pub token_name: String,
    pub group: String,
    /// `chat.completions`, `completions`, `embeddings`.
    pub endpoint: String,
    pub model: String,
    pub upstream_model: String,
    pub channel_id: Option<i64>,
    pub channel_name: String,
    pub attempts: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cached_tokens: i64,
    pub cache_write_tokens: i64,
    /// True when the upstream reported no usage and the tokens were counted locally.
    pub usage_estimated: bool,
    pub cost: i64,
    pub latency_ms: i64,
    pub ttft_ms: Option<i64>,
    pub is_stream: bool,
    pub outcome: Outcome,
    pub status_code: i64,
    pub error_message: String,
    pub client_ip: String,
}

const COLUMNS: [&str; 26] = [
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
    })
}

/// A change to one balance row, summed over a batch of requests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BalanceDelta {
    pub id: i64,
    /// Added to the remaining balance (negative when spending).
    pub quota: i64,
    pub used: i64,
    pub requests: i64,
    /// Latest use, for keys.
    pub last_used_at: i64,
}

/// Everything a billing flush writes, applied in one transaction so balances and logs never
/// disagree.
#[derive(Debug, Default)]
pub struct BillingBatch {
    pub users: Vec<BalanceDelta>,
    pub tokens: Vec<BalanceDelta>,
    pub channels: Vec<BalanceDelta>,
    pub logs: Vec<RequestLog>,
}

impl BillingBatch {
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
            && self.tokens.is_empty()
            && self.channels.is_empty()
            && self.logs.is_empty()
    }
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

pub async fn apply_billing(db: &Db, batch: &BillingBatch) -> DbResult<()> {
    let mut tx = db.pool().begin().await?;
    for d in &batch.users {
        db.execute_with(
            &mut *tx,
            "UPDATE users SET quota = quota + ?, used_quota = used_quota + ?, \
             request_count = request_count + ? WHERE id = ?",
            &[
                Value::Int(d.quota),
                Value::Int(d.used),
                Value::Int(d.requests),
                Value::Int(d.id),
            ],
        )
        .await?;
    }
    for d in &batch.tokens {
        db.execute_with(
            &mut *tx,
            "UPDATE tokens SET remaining_quota = remaining_quota + ?, used_quota = used_quota + ?, \
             request_count = request_count + ?, last_used_at = ? WHERE id = ?",
            &[
                Value::Int(d.quota),
                Value::Int(d.used),
                Value::Int(d.requests),
                Value::Int(d.last_used_at),
                Value::Int(d.id),
            ],
        )
        .await?;
    }
    for d in &batch.channels {
        db.execute_with(
            &mut *tx,
            "UPDATE channels SET used_quota = used_quota + ?, request_count = request_count + ? WHERE id = ?",
            &[Value::Int(d.used), Value::Int(d.requests), Value::Int(d.id)],
        )
        .await?;
    }
    let row = format!("({})", vec!["?"; COLUMNS.len()].join(", "));
    for chunk in statement_chunks(&batch.logs) {
        let sql = format!(
            "INSERT INTO request_logs ({}) VALUES {}",
            COLUMNS.join(", "),
            vec![row.as_str(); chunk.len()].join(", ")
        );
        let sql = db.sql(&sql);
        let mut args = AnyArguments::default();
        for log in chunk {
            bind_row(&mut args, log).map_err(|e| DbError::Sqlx(sqlx::Error::Encode(e)))?;
        }
        sqlx::query_with(&sql, args).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
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

/// Totals over the rows a filter matches (its limit and paging are ignored).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogTotals {
    pub requests: i64,
    pub cost: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
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
