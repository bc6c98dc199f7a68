use super::{Caller, Ctx, ServiceError, ServiceResult};
use crate::domain::cursor::Cursor;
use crate::domain::kinds::Outcome;
use crate::msg;
use crate::service::db;
use crate::service::db::logs::{LogFilter, LogTotals, RequestLog};

#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    pub username: Option<String>,
    pub token_id: Option<i64>,
    pub model: Option<String>,
    pub request_id: Option<String>,
    /// The channel that served (or last tried) the request; 0: refused before any channel.
    pub channel_id: Option<i64>,
    /// Where the page before ended (its last row): only older rows.
    pub before: Option<Cursor>,
    /// The older way of paging: only rows older than the one with this id.
    pub before_id: Option<i64>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    pub outcome: Option<Outcome>,
    pub limit: Option<i64>,
}

/// Where the next page starts: after the last row of this one.
pub fn next_cursor(rows: &[RequestLog]) -> Option<Cursor> {
    rows.last().map(|last| Cursor {
        created_at: last.created_at,
        id: last.id,
    })
}

/// Newest logs first (by time, then id), with totals over everything the query matches. A
/// user sees only their own requests, whatever the query names.
pub async fn query(
    ctx: &Ctx,
    caller: &Caller,
    query: LogQuery,
) -> ServiceResult<(Vec<RequestLog>, LogTotals)> {
    let filter = filter_of(ctx, caller, query).await?;
    let db = &ctx.db;
    let rows = db::logs::list(db, &filter).await?;
    let totals = db::logs::totals(db, &filter).await?;
    Ok((rows, totals))
}

/// Newest logs first, without the totals (the CSV's later batches).
pub async fn rows(ctx: &Ctx, caller: &Caller, query: LogQuery) -> ServiceResult<Vec<RequestLog>> {
    let filter = filter_of(ctx, caller, query).await?;
    Ok(db::logs::list(&ctx.db, &filter).await?)
}

async fn filter_of(ctx: &Ctx, caller: &Caller, query: LogQuery) -> ServiceResult<LogFilter> {
    let db = &ctx.db;
    let user_id = match (caller.owner(), &query.username) {
        (Some(owner), _) => Some(owner),
        (None, Some(name)) => Some(super::users::find(db, name).await?.id),
        (None, None) => None,
    };
    // `before_id` pages in the list's order from the row it names; a row that is gone (purged)
    // still bounds the ids.
    let (before, before_id) = match (query.before, query.before_id) {
        (Some(cursor), _) => (Some((cursor.created_at, cursor.id)), None),
        (None, Some(id)) => match db::logs::get(db, id).await? {
            Some(row) => (Some((row.created_at, row.id)), None),
            None => (None, Some(id)),
        },
        (None, None) => (None, None),
    };
    Ok(LogFilter {
        user_id,
        token_id: query.token_id,
        model: query.model,
        request_id: query.request_id,
        channel_id: query.channel_id,
        before,
        before_id,
        from_ms: query.from_ms,
        to_ms: query.to_ms,
        outcome: query.outcome,
        limit: query.limit.unwrap_or(50),
    })
}

/// One request's log row: an administrator's any, a user's only their own.
pub async fn detail(ctx: &Ctx, caller: &Caller, id: i64) -> ServiceResult<RequestLog> {
    let not_found = || ServiceError::NotFound(msg!("log-not-found", id = id.to_string()));
    let row = db::logs::get(&ctx.db, id).await?.ok_or_else(not_found)?;
    if caller.owner().is_some_and(|owner| owner != row.user_id) {
        return Err(not_found());
    }
    Ok(row)
}

/// Builds the indexes the log filters read that are missing (after an upgrade, in the
/// background: without blocking writes on PostgreSQL and MySQL). Returns how many were built.
pub async fn ensure_indexes(ctx: &Ctx) -> ServiceResult<usize> {
    Ok(db::logs::ensure_indexes(&ctx.db).await?)
}

/// The most models [`models_seen`] lists.
const MODELS_SEEN_LIMIT: i64 = 500;

/// The models the caller's own requests named, sorted (an administrator's: everyone's), for
/// the usage log's model filter.
pub async fn models_seen(ctx: &Ctx, caller: &Caller) -> ServiceResult<Vec<String>> {
    Ok(db::logs::models_seen(&ctx.db, caller.owner(), MODELS_SEEN_LIMIT).await?)
}
