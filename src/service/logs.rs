use super::ServiceResult;
use crate::db::logs::{LogFilter, LogTotals, RequestLog};
use crate::db::{self, Db};

#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    pub username: Option<String>,
    pub token_id: Option<i64>,
    pub model: Option<String>,
    pub request_id: Option<String>,
    pub before_id: Option<i64>,
    pub limit: Option<i64>,
}

/// Newest logs first, with totals over everything the query matches.
pub async fn query(db: &Db, query: LogQuery) -> ServiceResult<(Vec<RequestLog>, LogTotals)> {
    let user_id = match &query.username {
        Some(name) => Some(super::users::get(db, name).await?.id),
        None => None,
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
