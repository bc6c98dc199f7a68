//! The request logs rolled up per 15 minutes: written with the log rows, read over a time range
//! as whole buckets plus raw rows at the edges, rebuilt from the logs on demand, and backfilled
//! for the logs written before the rollups existed. The overview's coarser rollups (per hour
//! and day, without the account and key; see `Coarse`) are sums of the 15-minute rows, written
//! by every write that adds to those and recomputed from them by a rebuild.

use std::collections::{BTreeMap, BTreeSet};

use sqlx::Arguments;
use sqlx::Row;
use sqlx::any::{AnyArguments, AnyRow};

use super::logs::LogFilter;
use super::{Backend, Db, DbError, DbResult, Tx, Value, text};
use crate::domain::latency::{self, BOUNDS_MS, BUCKETS};
use crate::domain::rollup::{self, BUCKET_MS, Span};
use crate::records::logs::RequestLog;
pub use crate::records::rollups::{
    Aggregate, Backfill, Coarse, CoarseKey, Counted, Dimension, Rebuilt, RollupKey, RollupSums,
    coarse_of,
};

const KEY_COLUMNS: [&str; 7] = [
    "bucket_start",
    "user_id",
    "token_id",
    "model",
    "channel_id",
    "group_name",
    "outcome",
];

const SUM_COLUMNS: [&str; 4] = ["requests", "prompt_tokens", "completion_tokens", "cost"];

/// Every column the writer sets, in bind order: the key, the sums, then both histograms.
fn write_columns() -> Vec<String> {
    KEY_COLUMNS
        .iter()
        .chain(SUM_COLUMNS.iter())
        .map(|c| (*c).to_string())
        .chain(latency::column_names("lat"))
        .chain(latency::column_names("ttft"))
        .collect()
}

/// Counted columns: the sums and both histograms.
fn counted_columns() -> Vec<String> {
    SUM_COLUMNS
        .iter()
        .map(|c| (*c).to_string())
        .chain(latency::column_names("lat"))
        .chain(latency::column_names("ttft"))
        .collect()
}

/// Rows per multi-row upsert (45 binds each).
const ROWS_PER_STATEMENT: usize = 32;

/// Groups a batch's log rows by their rollup key.
pub fn rollup_of<'a>(
    logs: impl IntoIterator<Item = &'a RequestLog>,
) -> BTreeMap<RollupKey, RollupSums> {
    let mut groups: BTreeMap<RollupKey, RollupSums> = BTreeMap::new();
    for log in logs {
        groups.entry(RollupKey::of(log)).or_default().add_log(log);
    }
    groups
}

/// Adds `groups` to the rollups inside `tx` (the same transaction as their log rows): the
/// 15-minute rows first, then the coarser ones, each in key order, so two writers never wait
/// on each other in a cycle and a rebuild that locks `log_rollups` first holds off both.
pub(super) async fn add_in(tx: &mut Tx, groups: &BTreeMap<RollupKey, RollupSums>) -> DbResult<()> {
    add_fine_in(tx, groups).await?;
    add_coarse_in(tx, groups).await
}

async fn add_fine_in(tx: &mut Tx, groups: &BTreeMap<RollupKey, RollupSums>) -> DbResult<()> {
    let rows: Vec<(&RollupKey, &RollupSums)> = groups.iter().collect();
    let columns = write_columns();
    let row = format!("({})", vec!["?"; columns.len()].join(", "));
    let counted = counted_columns();
    let update = match tx.backend() {
        Backend::MySql => counted
            .iter()
            .map(|c| format!("{c} = {c} + VALUES({c})"))
            .collect::<Vec<_>>()
            .join(", "),
        Backend::Sqlite | Backend::Postgres => counted
            .iter()
            .map(|c| format!("{c} = log_rollups.{c} + excluded.{c}"))
            .collect::<Vec<_>>()
            .join(", "),
    };
    let conflict = match tx.backend() {
        Backend::MySql => format!(" ON DUPLICATE KEY UPDATE {update}"),
        Backend::Sqlite | Backend::Postgres => format!(
            " ON CONFLICT ({}, org_id, team_id) DO UPDATE SET {update}",
            KEY_COLUMNS.join(", ")
        ),
    };
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO log_rollups ({}) VALUES {}{conflict}",
            columns.join(", "),
            vec![row.as_str(); chunk.len()].join(", ")
        );
        let mut args = AnyArguments::default();
        for (key, sums) in chunk {
            bind_group(&mut args, key, sums).map_err(|e| DbError::Sqlx(sqlx::Error::Encode(e)))?;
        }
        tx.execute_args(&sql, args).await?;
    }
    Ok(())
}

fn bind_group<'q>(
    args: &mut AnyArguments<'q>,
    key: &'q RollupKey,
    sums: &RollupSums,
) -> Result<(), sqlx::error::BoxDynError> {
    args.add(key.bucket_start)?;
    args.add(key.user_id)?;
    args.add(key.token_id)?;
    args.add(key.model.as_str())?;
    args.add(key.channel_id)?;
    args.add(key.group.as_str())?;
    args.add(key.outcome.as_str())?;
    args.add(sums.requests)?;
    args.add(sums.prompt_tokens)?;
    args.add(sums.completion_tokens)?;
    args.add(sums.cost)?;
    for count in sums.latency.iter().chain(sums.ttft.iter()) {
        args.add(*count)?;
    }
    Ok(())
}

/// The table of a coarser rollup.
fn coarse_table(table: Coarse) -> &'static str {
    match table {
        Coarse::Usage => "usage_rollups",
        Coarse::Users => "user_usage_rollups",
        Coarse::Totals => "total_usage_rollups",
    }
}

/// The key columns of a coarser rollup beyond `grain_ms` and `bucket_start`.
fn coarse_keys(table: Coarse) -> &'static [&'static str] {
    match table {
        Coarse::Usage => &["model", "channel_id", "group_name", "outcome"],
        Coarse::Users => &["user_id"],
        Coarse::Totals => &[],
    }
}

/// The counted columns of a coarser rollup.
fn coarse_counted(table: Coarse) -> Vec<String> {
    if table.histograms() {
        counted_columns()
    } else {
        SUM_COLUMNS.iter().map(|c| (*c).to_string()).collect()
    }
}

/// `INSERT INTO table (columns) VALUES {rows} ON CONFLICT …`: adds to a row that exists.
fn coarse_upsert(backend: Backend, table: Coarse, rows: usize) -> String {
    let name = coarse_table(table);
    let keys = coarse_keys(table);
    let counted = coarse_counted(table);
    let columns: Vec<String> = ["grain_ms", "bucket_start"]
        .iter()
        .chain(keys.iter())
        .map(|c| (*c).to_string())
        .chain(counted.iter().cloned())
        .collect();
    let row = format!("({})", vec!["?"; columns.len()].join(", "));
    let conflict = match backend {
        Backend::MySql => format!(
            " ON DUPLICATE KEY UPDATE {}",
            counted
                .iter()
                .map(|c| format!("{c} = {c} + VALUES({c})"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Backend::Sqlite | Backend::Postgres => format!(
            " ON CONFLICT (grain_ms, bucket_start{}) DO UPDATE SET {}",
            keys.iter().map(|k| format!(", {k}")).collect::<String>(),
            counted
                .iter()
                .map(|c| format!("{c} = {name}.{c} + excluded.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    format!(
        "INSERT INTO {name} ({}) VALUES {}{conflict}",
        columns.join(", "),
        vec![row.as_str(); rows].join(", ")
    )
}

/// Adds what `groups` add to each coarser rollup, in the order of their keys.
async fn add_coarse_in(tx: &mut Tx, groups: &BTreeMap<RollupKey, RollupSums>) -> DbResult<()> {
    let coarse = coarse_of(groups);
    for table in Coarse::ALL {
        let rows: Vec<(&CoarseKey, &RollupSums)> = coarse
            .iter()
            .filter(|((t, _), _)| *t == table)
            .map(|((_, key), sums)| (key, sums))
            .collect();
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let sql = coarse_upsert(tx.backend(), table, chunk.len());
            let mut args = AnyArguments::default();
            for (key, sums) in chunk {
                bind_coarse(&mut args, table, key, sums)
                    .map_err(|e| DbError::Sqlx(sqlx::Error::Encode(e)))?;
            }
            tx.execute_args(&sql, args).await?;
        }
    }
    Ok(())
}

fn bind_coarse<'q>(
    args: &mut AnyArguments<'q>,
    table: Coarse,
    key: &'q CoarseKey,
    sums: &RollupSums,
) -> Result<(), sqlx::error::BoxDynError> {
    args.add(key.grain_ms)?;
    args.add(key.bucket_start)?;
    match table {
        Coarse::Usage => {
            args.add(key.model.as_str())?;
            args.add(key.channel_id)?;
            args.add(key.group.as_str())?;
            args.add(key.outcome.as_str())?;
        }
        Coarse::Users => args.add(key.user_id)?,
        Coarse::Totals => {}
    }
    args.add(sums.requests)?;
    args.add(sums.prompt_tokens)?;
    args.add(sums.completion_tokens)?;
    args.add(sums.cost)?;
    if table.histograms() {
        for count in sums.latency.iter().chain(sums.ttft.iter()) {
            args.add(*count)?;
        }
    }
    Ok(())
}

/// Recomputes, inside `tx`, the coarser rows that the 15-minute `buckets` fall in from the
/// 15-minute rows (all of each hour or day, the buckets not rebuilt too): they are sums of
/// those, whatever the logs still hold.
async fn recompute_coarse_in(tx: &mut Tx, buckets: &BTreeSet<i64>) -> DbResult<()> {
    for table in Coarse::ALL {
        let name = coarse_table(table);
        let keys = coarse_keys(table);
        let counted = coarse_counted(table);
        for &grain in table.grains() {
            let starts: BTreeSet<i64> = buckets.iter().map(|b| b - b.rem_euclid(grain)).collect();
            for (from, to) in rollup::runs(starts, grain) {
                tx.execute(
                    &format!(
                        "DELETE FROM {name} WHERE grain_ms = ? AND bucket_start >= ? \
                         AND bucket_start < ?"
                    ),
                    &[Value::Int(grain), Value::Int(from), Value::Int(to)],
                )
                .await?;
                // The grain is a constant of ours, written into the statement so every
                // backend groups by the same expression it selects.
                let start = format!("bucket_start - (bucket_start % {grain})");
                let key_list: String = keys.iter().map(|k| format!(", {k}")).collect();
                tx.execute(
                    &format!(
                        "INSERT INTO {name} (grain_ms, bucket_start{key_list}, {}) \
                         SELECT {grain}, {start}{key_list}, {} FROM log_rollups \
                         WHERE bucket_start >= ? AND bucket_start < ? GROUP BY {start}{key_list}",
                        counted.join(", "),
                        counted
                            .iter()
                            .map(|c| format!("SUM({c})"))
                            .collect::<Vec<_>>()
                            .join(", "),
                    ),
                    &[Value::Int(from), Value::Int(to)],
                )
                .await?;
            }
        }
    }
    Ok(())
}

/// `CAST(COALESCE(SUM(expr), 0) AS BIGINT)`: PostgreSQL sums BIGINT as NUMERIC, MySQL spells
/// the cast SIGNED.
fn sum(backend: Backend, expr: &str, alias: &str) -> String {
    let bigint = match backend {
        Backend::MySql => "SIGNED",
        _ => "BIGINT",
    };
    format!("CAST(COALESCE(SUM({expr}), 0) AS {bigint}) AS {alias}")
}

/// The conditions a filter sets on the rollups (time aside).
fn rollup_conditions(filter: &LogFilter, span: Span) -> (Vec<String>, Vec<Value>) {
    let mut conditions = Vec::new();
    let mut values = Vec::new();
    if let Some(id) = filter.user_id {
        conditions.push("user_id = ?".to_string());
        values.push(Value::Int(id));
    }
    if let Some(id) = filter.token_id {
        conditions.push("token_id = ?".to_string());
        values.push(Value::Int(id));
    }
    if let Some(model) = &filter.model {
        conditions.push("model = ?".to_string());
        values.push(Value::Text(model.clone()));
    }
    if let Some(id) = filter.channel_id {
        conditions.push("channel_id = ?".to_string());
        values.push(Value::Int(id));
    }
    if let Some(outcome) = filter.outcome {
        conditions.push("outcome = ?".to_string());
        values.push(Value::Text(outcome.as_str().to_string()));
    }
    if let Some(from) = span.from {
        conditions.push("bucket_start >= ?".to_string());
        values.push(Value::Int(from));
    }
    if let Some(to) = span.to {
        conditions.push("bucket_start < ?".to_string());
        values.push(Value::Int(to));
    }
    (conditions, values)
}

fn where_of(conditions: &[String]) -> String {
    if conditions.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conditions.join(" AND "))
    }
}

/// Reads one group of a query's row into an aggregate.
fn aggregate_of(row: &AnyRow, by: Dimension, histograms: bool) -> DbResult<Aggregate> {
    let mut sums = RollupSums {
        requests: row.try_get("requests")?,
        prompt_tokens: row.try_get("prompt_tokens")?,
        completion_tokens: row.try_get("completion_tokens")?,
        cost: row.try_get("cost")?,
        ..RollupSums::default()
    };
    if histograms {
        for i in 0..BUCKETS {
            sums.latency[i] = row.try_get(format!("lat_{i}").as_str())?;
            sums.ttft[i] = row.try_get(format!("ttft_{i}").as_str())?;
        }
    }
    let (id_expr, name_expr) = key_exprs(by, false);
    let id = if id_expr == "0" {
        0
    } else {
        row.try_get("kid")?
    };
    let name = if name_expr == "''" {
        String::new()
    } else {
        text(row, "kname")?
    };
    Ok(Aggregate { id, name, sums })
}

/// The key expressions of a dimension (its number and its name; `0` and `''` when it has
/// none), over the rollups or the raw logs.
fn key_exprs(by: Dimension, raw: bool) -> (&'static str, &'static str) {
    let bucket = if raw {
        "created_at - (created_at % 900000)"
    } else {
        "bucket_start"
    };
    match by {
        Dimension::Total => ("0", "''"),
        Dimension::Bucket => (bucket, "''"),
        Dimension::BucketModel => (bucket, "model"),
        Dimension::Model => ("0", "model"),
        Dimension::User => ("user_id", "''"),
        Dimension::Channel if raw => ("COALESCE(channel_id, 0)", "''"),
        Dimension::Channel => ("channel_id", "''"),
        Dimension::Outcome => ("0", "outcome"),
    }
}

/// `kid, kname` and the GROUP BY of a dimension.
fn key_select(by: Dimension, raw: bool) -> (Vec<String>, String) {
    let (id, name) = key_exprs(by, raw);
    let mut select = Vec::new();
    let mut group = Vec::new();
    if id != "0" {
        select.push(format!("{id} AS kid"));
        group.push(id);
    }
    if name != "''" {
        select.push(format!("{name} AS kname"));
        group.push(name);
    }
    let group = if group.is_empty() {
        String::new()
    } else {
        format!(" GROUP BY {}", group.join(", "))
    };
    (select, group)
}

/// Which rollup table a read sums: the 15-minute one, or a coarser one at one of its grains.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    Fine,
    Coarse(Coarse, i64),
}

async fn from_rollups(
    db: &Db,
    source: Source,
    filter: &LogFilter,
    span: Span,
    by: Dimension,
    histograms: bool,
) -> DbResult<Vec<Aggregate>> {
    let backend = db.backend();
    let (mut select, group) = key_select(by, false);
    let columns = if histograms {
        counted_columns()
    } else {
        SUM_COLUMNS.iter().map(|c| (*c).to_string()).collect()
    };
    select.extend(columns.iter().map(|c| sum(backend, c, c)));
    let (mut conditions, mut values) = rollup_conditions(filter, span);
    let table = match source {
        Source::Fine => "log_rollups",
        Source::Coarse(table, grain) => {
            // Both grains share a table: the span is read at this one alone. The key begins
            // (grain, start), so this is a range of the primary key.
            conditions.insert(0, "grain_ms = ?".to_string());
            values.insert(0, Value::Int(grain));
            coarse_table(table)
        }
    };
    let sql = format!(
        "SELECT {} FROM {table}{}{group}",
        select.join(", "),
        where_of(&conditions)
    );
    let rows = db.fetch_all_with(&sql, &values).await?;
    rows.iter()
        .map(|row| aggregate_of(row, by, histograms))
        .filter(|a| !matches!(a, Ok(a) if a.sums.requests == 0))
        .collect()
}

/// The condition that a duration column falls in histogram bucket `i`.
fn in_bucket(column: &str, i: usize) -> String {
    let low = i.checked_sub(1).map(|j| BOUNDS_MS[j]);
    let high = BOUNDS_MS.get(i).copied();
    let mut parts = vec![format!("{column} IS NOT NULL")];
    if let Some(low) = low {
        parts.push(format!("{column} >= {low}"));
    }
    if let Some(high) = high {
        parts.push(format!("{column} < {high}"));
    }
    parts.join(" AND ")
}

async fn from_raw(
    db: &Db,
    filter: &LogFilter,
    span: Span,
    by: Dimension,
    histograms: bool,
) -> DbResult<Vec<Aggregate>> {
    let backend = db.backend();
    let (mut select, group) = key_select(by, true);
    select.extend([
        sum(backend, "1", "requests"),
        sum(backend, "prompt_tokens", "prompt_tokens"),
        sum(backend, "completion_tokens", "completion_tokens"),
        sum(backend, "cost", "cost"),
    ]);
    let histogram_columns: &[(&str, &str)] = if histograms {
        &[("latency_ms", "lat"), ("ttft_ms", "ttft")]
    } else {
        &[]
    };
    for (column, prefix) in histogram_columns {
        for i in 0..BUCKETS {
            select.push(sum(
                backend,
                &format!("CASE WHEN {} THEN 1 ELSE 0 END", in_bucket(column, i)),
                &format!("{prefix}_{i}"),
            ));
        }
    }
    let raw_filter = LogFilter {
        from_ms: span.from,
        to_ms: span.to,
        before_id: None,
        before: None,
        ..filter.clone()
    };
    let (where_clause, values) = raw_filter.where_clause();
    let sql = format!(
        "SELECT {} FROM request_logs{where_clause}{group}",
        select.join(", ")
    );
    let rows = db.fetch_all_with(&sql, &values).await?;
    rows.iter()
        .map(|row| aggregate_of(row, by, histograms))
        .filter(|a| !matches!(a, Ok(a) if a.sums.requests == 0))
        .collect()
}

/// Requests, tokens and cost (histograms left empty, which reads far fewer columns) over what
/// `filter` matches, grouped by `by`; see [`aggregate_with`].
pub async fn sums(db: &Db, filter: &LogFilter, by: Dimension) -> DbResult<Vec<Aggregate>> {
    aggregate_with(db, filter, by, false).await
}

/// Sums over what `filter` matches (its time range included; paging ignored), grouped by
/// `by`: whole 15-minute buckets from the rollups, the edges finer than a bucket from the raw
/// rows (at most one bucket each). A filter on a request id reads the raw rows alone.
async fn aggregate_with(
    db: &Db,
    filter: &LogFilter,
    by: Dimension,
    histograms: bool,
) -> DbResult<Vec<Aggregate>> {
    if filter.request_id.is_some() {
        let span = Span {
            from: filter.from_ms,
            to: filter.to_ms,
        };
        return from_raw(db, filter, span, by, histograms).await;
    }
    let split = rollup::split(filter.from_ms, filter.to_ms);
    let mut parts = Vec::new();
    if let Some(span) = split.head {
        parts.extend(from_raw(db, filter, span, by, histograms).await?);
    }
    if let Some(span) = split.rollups {
        parts.extend(from_rollups(db, Source::Fine, filter, span, by, histograms).await?);
    }
    if let Some(span) = split.tail {
        parts.extend(from_raw(db, filter, span, by, histograms).await?);
    }
    Ok(merge(parts))
}

/// The same group from several parts is one.
fn merge(parts: Vec<Aggregate>) -> Vec<Aggregate> {
    let mut merged: BTreeMap<(i64, String), RollupSums> = BTreeMap::new();
    for part in parts {
        merged
            .entry((part.id, part.name))
            .or_default()
            .merge(&part.sums);
    }
    merged
        .into_iter()
        .map(|((id, name), sums)| Aggregate { id, name, sums })
        .collect()
}

/// [`aggregate_with`] for the overview, with the histograms, from the coarser rollups where
/// the filter and the grouping allow: the range as whole days and hours (or quarter hours for
/// the totals) of the narrowest table that keeps what they name, and its edges as
/// [`aggregate_with`] reads them. The same sums, from a few thousand rows instead of one per
/// request.
pub async fn overview_aggregate(
    db: &Db,
    filter: &LogFilter,
    by: Dimension,
) -> DbResult<Vec<Aggregate>> {
    coarse_with(db, filter, by, true).await
}

/// [`overview_aggregate`] without the histograms, like [`sums`].
pub async fn overview_sums(db: &Db, filter: &LogFilter, by: Dimension) -> DbResult<Vec<Aggregate>> {
    coarse_with(db, filter, by, false).await
}

/// The coarser table that answers `filter` grouped `by`, if one does: it must keep every
/// column named. Buckets need the 15-minute grain (callers map them to their periods), which
/// only the totals have.
fn coarse_for(filter: &LogFilter, by: Dimension, histograms: bool) -> Option<Coarse> {
    if filter.request_id.is_some()
        || filter.token_id.is_some()
        || filter.before.is_some()
        || filter.before_id.is_some()
    {
        return None;
    }
    let user = filter.user_id.is_some();
    let usage = filter.model.is_some() || filter.channel_id.is_some() || filter.outcome.is_some();
    match by {
        Dimension::Total | Dimension::Bucket if !user && !usage && !histograms => {
            Some(Coarse::Totals)
        }
        Dimension::Total | Dimension::Model | Dimension::Channel | Dimension::Outcome if !user => {
            Some(Coarse::Usage)
        }
        Dimension::User if !usage && !histograms => Some(Coarse::Users),
        _ => None,
    }
}

async fn coarse_with(
    db: &Db,
    filter: &LogFilter,
    by: Dimension,
    histograms: bool,
) -> DbResult<Vec<Aggregate>> {
    let (Some(from), Some(to), Some(table)) = (
        filter.from_ms,
        filter.to_ms,
        coarse_for(filter, by, histograms),
    ) else {
        return aggregate_with(db, filter, by, histograms).await;
    };
    let layers = rollup::layers(from, to, table.grains());
    let mut parts = Vec::new();
    for (grain, span) in layers.whole {
        let source = Source::Coarse(table, grain);
        parts.extend(from_rollups(db, source, filter, span, by, histograms).await?);
    }
    for span in layers.rest {
        let edge = LogFilter {
            from_ms: span.from,
            to_ms: span.to,
            ..filter.clone()
        };
        parts.extend(aggregate_with(db, &edge, by, histograms).await?);
    }
    Ok(merge(parts))
}

/// The columns a rebuild reads of each log row.
const RAW_COLUMNS: &str = "id, created_at, user_id, token_id, model, channel_id, group_name, \
     outcome, prompt_tokens, completion_tokens, cost, latency_ms, ttft_ms";

fn key_and_counted(row: &AnyRow) -> DbResult<(RollupKey, Counted)> {
    let created_at: i64 = row.try_get("created_at")?;
    let channel: Option<i64> = row.try_get("channel_id")?;
    Ok((
        RollupKey {
            bucket_start: rollup::bucket_start(created_at),
            user_id: row.try_get("user_id")?,
            token_id: row.try_get("token_id")?,
            model: text(row, "model")?,
            channel_id: channel.unwrap_or(0),
            group: text(row, "group_name")?,
            outcome: text(row, "outcome")?,
        },
        Counted {
            prompt_tokens: row.try_get("prompt_tokens")?,
            completion_tokens: row.try_get("completion_tokens")?,
            cost: row.try_get("cost")?,
            latency_ms: row.try_get("latency_ms")?,
            ttft_ms: row.try_get("ttft_ms")?,
        },
    ))
}

fn group_rows(rows: &[AnyRow]) -> DbResult<BTreeMap<RollupKey, RollupSums>> {
    let mut groups: BTreeMap<RollupKey, RollupSums> = BTreeMap::new();
    for row in rows {
        let (key, counted) = key_and_counted(row)?;
        groups.entry(key).or_default().add(&counted);
    }
    Ok(groups)
}

/// How far the backfill has come.
pub async fn backfill(db: &Db) -> DbResult<Backfill> {
    let rows = db
        .fetch_all_with(
            "SELECT done_id, through_id FROM rollup_backfill WHERE id = 1",
            &[],
        )
        .await?;
    match rows.first() {
        Some(row) => Ok(Backfill {
            done_id: row.try_get("done_id")?,
            through_id: row.try_get("through_id")?,
        }),
        None => Ok(Backfill::default()),
    }
}

/// Rolls up the next (at most) `rows` logs written before the rollups existed, and records
/// how far it got in the same transaction: each log is added once, even with several servers
/// backfilling at once. Returns the progress after the step.
pub async fn backfill_step(db: &Db, rows: i64) -> DbResult<Backfill> {
    let progress = backfill(db).await?;
    if progress.finished() {
        return Ok(progress);
    }
    let read = db
        .fetch_all_with(
            &format!(
                "SELECT {RAW_COLUMNS} FROM request_logs WHERE id > ? AND id <= ? \
                 ORDER BY id LIMIT ?"
            ),
            &[
                Value::Int(progress.done_id),
                Value::Int(progress.through_id),
                Value::Int(rows.max(1)),
            ],
        )
        .await?;
    let last_id = match read.last() {
        Some(row) => row.try_get::<i64, _>("id")?,
        // Nothing left below the mark (purged): done.
        None => progress.through_id,
    };
    let groups = group_rows(&read)?;
    let ((), _) = db
        .write(async |tx: &mut Tx| {
            let moved = tx
                .execute(
                    "UPDATE rollup_backfill SET done_id = ? WHERE id = 1 AND done_id = ?",
                    &[Value::Int(last_id), Value::Int(progress.done_id)],
                )
                .await?;
            // Another server took this step.
            if moved == 1 {
                add_in(tx, &groups).await?;
            }
            Ok::<_, DbError>(())
        })
        .await?;
    backfill(db).await
}

/// Recomputes the rollups of `[from_ms, to_ms)` (bucket-aligned) from the log rows, a few
/// hours at a time, touching only buckets that still have log rows: the rollups of purged
/// logs stay.
pub async fn rebuild(db: &Db, from_ms: i64, to_ms: i64) -> DbResult<Rebuilt> {
    const STEP_MS: i64 = 6 * 3_600_000;
    let mut done = Rebuilt::default();
    let mut at = rollup::bucket_start(from_ms);
    let end = rollup::bucket_ceil(to_ms);
    while at < end {
        let next = (at + STEP_MS).min(end);
        let step = rebuild_span(db, at, next).await?;
        done.buckets += step.buckets;
        done.rows += step.rows;
        at = next;
    }
    Ok(done)
}

async fn rebuild_span(db: &Db, from_ms: i64, to_ms: i64) -> DbResult<Rebuilt> {
    let (rebuilt, _) = db
        .write(async |tx: &mut Tx| {
            if tx.backend() == Backend::Postgres {
                // Writers wait while these buckets (and the hours and days they fall in) are
                // recomputed; readers do not. Every writer adds to `log_rollups` before the
                // coarser tables, so this lock alone holds them off both.
                tx.execute_raw("LOCK TABLE log_rollups IN SHARE ROW EXCLUSIVE MODE")
                    .await?;
            }
            let range = [Value::Int(from_ms), Value::Int(to_ms)];
            let buckets: BTreeSet<i64> = tx
                .fetch_all(
                    "SELECT DISTINCT created_at - (created_at % 900000) AS b FROM request_logs \
                     WHERE created_at >= ? AND created_at < ?",
                    &range,
                )
                .await?
                .iter()
                .map(|row| row.try_get::<i64, _>("b"))
                .collect::<Result<_, _>>()?;
            if buckets.is_empty() {
                return Ok::<_, DbError>(Rebuilt::default());
            }
            let list: Vec<i64> = buckets.iter().copied().collect();
            for chunk in list.chunks(super::IDS_PER_QUERY) {
                let values: Vec<Value> = chunk.iter().map(|b| Value::Int(*b)).collect();
                tx.execute(
                    &format!(
                        "DELETE FROM log_rollups WHERE bucket_start IN ({})",
                        super::placeholders(chunk.len())
                    ),
                    &values,
                )
                .await?;
            }
            let rows = tx
                .fetch_all(
                    &format!(
                        "SELECT {RAW_COLUMNS} FROM request_logs \
                         WHERE created_at >= ? AND created_at < ?"
                    ),
                    &range,
                )
                .await?;
            add_fine_in(tx, &group_rows(&rows)?).await?;
            recompute_coarse_in(tx, &buckets).await?;
            Ok(Rebuilt {
                buckets: i64::try_from(buckets.len()).unwrap_or(i64::MAX),
                rows: i64::try_from(rows.len()).unwrap_or(i64::MAX),
            })
        })
        .await?;
    Ok(rebuilt)
}

/// When the oldest log row was written and the end of the newest one's bucket, if any.
pub async fn log_span(db: &Db) -> DbResult<Option<(i64, i64)>> {
    let rows = db
        .fetch_all_with(
            "SELECT MIN(created_at) AS lo, MAX(created_at) AS hi FROM request_logs",
            &[],
        )
        .await?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let lo: Option<i64> = row.try_get("lo")?;
    let hi: Option<i64> = row.try_get("hi")?;
    Ok(lo.zip(hi).map(|(lo, hi)| (lo, hi + BUCKET_MS)))
}
