use super::{Caller, Ctx, ServiceResult};
use crate::domain::kinds::Outcome;
use crate::service::db;
use crate::service::db::logs::{LogFilter, LogTotals, RequestLog};

#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    pub username: Option<String>,
    pub token_id: Option<i64>,
    pub model: Option<String>,
    pub request_id: Option<String>,
    pub before_id: Option<i64>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    pub outcome: Option<Outcome>,
    pub limit: Option<i64>,
}

/// Newest logs first, with totals over everything the query matches. A user sees only their
/// own requests, whatever the query names.
pub async fn query(
    ctx: &Ctx,
    caller: &Caller,
    query: LogQuery,
) -> ServiceResult<(Vec<RequestLog>, LogTotals)> {
    let db = &ctx.db;
    let user_id = match (caller.owner(), &query.username) {
        (Some(owner), _) => Some(owner),
        (None, Some(name)) => Some(super::users::find(db, name).await?.id),
        (None, None) => None,
    };
    let filter = LogFilter {
        user_id,
        token_id: query.token_id,
        model: query.model,
        request_id: query.request_id,
        before_id: query.before_id,
        from_ms: query.from_ms,
        to_ms: query.to_ms,
        outcome: query.outcome,
        limit: query.limit.unwrap_or(50),
    };
    let rows = db::logs::list(db, &filter).await?;
    let totals = db::logs::totals(db, &filter).await?;
    Ok((rows, totals))
}

/// The most models [`models_seen`] lists.
const MODELS_SEEN_LIMIT: i64 = 500;

/// The models the caller's own requests named, sorted (an administrator's: everyone's), for
/// the usage log's model filter.
pub async fn models_seen(ctx: &Ctx, caller: &Caller) -> ServiceResult<Vec<String>> {
    Ok(db::logs::models_seen(&ctx.db, caller.owner(), MODELS_SEEN_LIMIT).await?)
}
