//! The request logs' rollups (per 15 minutes; see `domain::rollup`) kept beside them, with the
//! overview's coarser ones summed from those: the background backfill of the logs written
//! before the rollups existed, their rebuild from the logs, and the purge of logs older than
//! `log_retention_days` (whose rollups, 15-minute and coarser, stay).

use super::{Caller, Ctx, ServiceError, ServiceResult};
use crate::domain::calendar::SiteCalendar;
use crate::domain::rollup::{BUCKET_MS, bucket_start};
use crate::msg;
pub use crate::records::rollups::{Backfill, Rebuilt};
use crate::service::db;

/// Log rows rolled up per backfill step: one short transaction each.
const BACKFILL_ROWS: i64 = 5_000;

/// Log rows deleted per purge step.
const PURGE_ROWS: i64 = 1_000;

/// How recent a bucket a rebuild leaves to the billing writer: requests still being written
/// (a long stream is logged when it ends) land in the last hour's buckets.
pub const REBUILD_MARGIN_MS: i64 = 3_600_000;

/// How far the backfill has come.
pub async fn backfill_status(ctx: &Ctx) -> ServiceResult<Backfill> {
    Ok(db::rollups::backfill(&ctx.db).await?)
}

/// One step of the backfill: rolls up the next few thousand logs written before the rollups
/// existed. Returns the progress after it.
pub async fn backfill_step(ctx: &Ctx) -> ServiceResult<Backfill> {
    Ok(db::rollups::backfill_step(&ctx.db, BACKFILL_ROWS).await?)
}

/// Recomputes the rollups of `[from_ms, to_ms)` from the logs (every log when open), touching
/// only buckets that still have log rows; the last hour is left to the billing writer. The
/// backfill is finished first, so no log is counted twice.
pub async fn rebuild(
    ctx: &Ctx,
    caller: &Caller,
    from_ms: Option<i64>,
    to_ms: Option<i64>,
    now_ms: i64,
) -> ServiceResult<Rebuilt> {
    caller.require_admin()?;
    while !backfill_step(ctx).await?.finished() {}
    let Some((oldest, newest_end)) = db::rollups::log_span(&ctx.db).await? else {
        return Ok(Rebuilt::default());
    };
    let from = bucket_start(from_ms.unwrap_or(oldest).max(oldest));
    let limit = bucket_start(now_ms - REBUILD_MARGIN_MS);
    let to = to_ms
        .unwrap_or(newest_end)
        .min(newest_end + BUCKET_MS)
        .min(limit);
    if to <= from {
        return Ok(Rebuilt::default());
    }
    Ok(db::rollups::rebuild(&ctx.db, from, to).await?)
}

/// [`rebuild`] between bounds as people write them: a day of the site's zone (`from` its start,
/// `to` its end) or an RFC 3339 instant.
pub async fn rebuild_between(
    ctx: &Ctx,
    caller: &Caller,
    from: Option<&str>,
    to: Option<&str>,
    now_ms: i64,
) -> ServiceResult<Rebuilt> {
    caller.require_admin()?;
    let options = super::options::current(&ctx.db).await?;
    let calendar = SiteCalendar::new(&options.timezone);
    let bound = |field: &'static str, text: Option<&str>, end: bool| match text {
        None => Ok(None),
        Some(text) => calendar
            .bound_ms(text, end)
            .map(Some)
            .ok_or_else(|| ServiceError::invalid(field, msg!("rollups-bad-bound", value = text))),
    };
    let from_ms = bound("from", from, false)?;
    let to_ms = bound("to", to, true)?;
    rebuild(ctx, caller, from_ms, to_ms, now_ms).await
}

/// Deletes, in small batches, the logs written more than `days` days before `now_ms` (from the
/// start of that bucket, so no bucket is left half its rows). Returns how many rows went.
pub async fn purge(ctx: &Ctx, days: u64, now_ms: i64) -> ServiceResult<u64> {
    if days == 0 {
        return Ok(0);
    }
    let days = i64::try_from(days).unwrap_or(i64::MAX / 86_400_000);
    let cutoff = bucket_start(now_ms.saturating_sub(days.saturating_mul(86_400_000)));
    let mut deleted = 0;
    loop {
        let batch = db::logs::purge_before(&ctx.db, cutoff, PURGE_ROWS).await?;
        deleted += batch;
        if batch < u64::try_from(PURGE_ROWS).unwrap_or(u64::MAX) {
            return Ok(deleted);
        }
        // Let the billing writer and readers in between batches.
        tokio::task::yield_now().await;
    }
}
