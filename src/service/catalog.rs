//! What the relay's routing view is built from: options, groups, channels and their routes,
//! prices and aliases, read together (by every server at start and after changes).

use super::Ctx;
use super::db::{self, DbResult};
use crate::records::catalog::CatalogRows;

pub async fn rows(ctx: &Ctx) -> DbResult<CatalogRows> {
    Ok(CatalogRows {
        options: db::options::all(&ctx.db).await?,
        groups: db::groups::list(&ctx.db).await?,
        channels: db::channels::list(&ctx.db).await?,
        routes: db::channels::routes(&ctx.db).await?,
        prices: db::prices::list(&ctx.db).await?,
        aliases: db::model_aliases::list(&ctx.db).await?,
    })
}
