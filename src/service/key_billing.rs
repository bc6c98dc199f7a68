//! What a key's holder may ask about its own money, for third-party balance checkers that
//! expect One API's routes: the limit (spent plus remaining) and the spend over a range.

use super::{ServiceError, ServiceResult};
use crate::domain::kinds::Status;
use crate::domain::secret_key;
use crate::msg;
use crate::records::tokens::TokenRow;
use crate::service::Ctx;
use crate::service::db;
use crate::service::db::logs::LogFilter;
use crate::service::db::rollups::Dimension;

/// A key's limit as a balance checker reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyLimit {
    /// Spent plus remaining, in quota units: the key's own when it has a limit, its owner's
    /// otherwise.
    pub total: i64,
    /// When the key stops working (ms), if ever.
    pub expires_at: Option<i64>,
}

/// The key `plain` stands for, if it is live: known, active, not expired, its owner active.
async fn live_key(ctx: &Ctx, plain: &str, now_ms: i64) -> ServiceResult<TokenRow> {
    let refused = || ServiceError::Forbidden(msg!("key-not-valid"));
    let token = db::tokens::by_hash(&ctx.db, &secret_key::hash(plain))
        .await?
        .ok_or_else(refused)?;
    if token.status != Status::Active || token.expires_at.is_some_and(|at| at <= now_ms) {
        return Err(refused());
    }
    let owner = super::users::find_id(&ctx.db, token.user_id).await?;
    if owner.status != Status::Active {
        return Err(refused());
    }
    Ok(token)
}

/// The limit of the key `plain` as of `now_ms`.
pub async fn limit(ctx: &Ctx, plain: &str, now_ms: i64) -> ServiceResult<KeyLimit> {
    let token = live_key(ctx, plain, now_ms).await?;
    let total = if token.unlimited {
        let owner = super::users::find_id(&ctx.db, token.user_id).await?;
        owner.quota.max(0).saturating_add(owner.used_quota)
    } else {
        token
            .remaining_quota
            .max(0)
            .saturating_add(token.used_quota)
    };
    Ok(KeyLimit {
        total,
        expires_at: token.expires_at,
    })
}

/// What the key `plain` spent in `[from_ms, to_ms)` (quota units), from the rollups.
pub async fn spent(
    ctx: &Ctx,
    plain: &str,
    from_ms: Option<i64>,
    to_ms: Option<i64>,
    now_ms: i64,
) -> ServiceResult<i64> {
    let token = live_key(ctx, plain, now_ms).await?;
    let filter = LogFilter {
        token_id: Some(token.id),
        from_ms,
        to_ms,
        ..LogFilter::default()
    };
    let total = db::rollups::sums(&ctx.db, &filter, Dimension::Total).await?;
    Ok(total.first().map_or(0, |t| t.sums.cost))
}
