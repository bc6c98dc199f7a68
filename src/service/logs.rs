use super::{Caller, Ctx, ServiceResult};
use crate::db;
use crate::db::logs::{LogFilter, LogTotals, RequestLog};

#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    pub username: Option<String>,
    pub token_id: Option<i64>,
    pub model: Option<String>,
    pub request_id: Option<String>,
    pub before_id: Option<i64>,
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
        limit: query.limit.unwrap_or(50),
    };
    let rows = db::logs::list(db, &filter).await?;
    let totals = db::logs::totals(db, &filter).await?;
    Ok((rows, totals))
}
