//! Whether the database answers, for `/readyz`.

use super::Ctx;
use super::db::{self, DbResult};

/// One trivial query through the server's pool.
pub async fn database_answers(ctx: &Ctx) -> DbResult<()> {
    db::meta::ping(&ctx.db).await
}
