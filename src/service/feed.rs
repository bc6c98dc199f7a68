//! How a server follows what others changed: the data version every write bumps, the change
//! feed that says what changed, and the tidying of tables that only grow (old feed rows,
//! expired sessions and codes).

use super::Ctx;
use super::db::feed::FeedRead;
use super::db::{self, DbResult};

/// The data version now (one tiny query).
pub async fn data_version(ctx: &Ctx) -> DbResult<i64> {
    db::meta::data_version(&ctx.db).await
}

/// The changes recorded after version `after` up to `upto`.
pub async fn changes(ctx: &Ctx, after: i64, upto: i64) -> DbResult<FeedRead> {
    db::feed::read(&ctx.db, after, upto).await
}

/// Forgets feed rows more than `keep` versions old, expired portal sessions, and emailed codes
/// a day past their expiry (kept that long to answer "expired" rather than "unknown").
pub async fn tidy(ctx: &Ctx, keep: i64) -> DbResult<()> {
    let current = db::meta::data_version(&ctx.db).await?;
    db::feed::prune(&ctx.db, current.saturating_sub(keep)).await?;
    let now = crate::clock::now_ms();
    db::web_sessions::delete_expired(&ctx.db, now).await?;
    db::email_codes::prune(&ctx.db, now - 86_400_000).await?;
    Ok(())
}
