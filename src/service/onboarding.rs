//! What a new site still lacks: whether it needs setting up (no administrator yet), and which
//! of the operator's first steps are done — a channel to serve models, prices to bill them, and
//! someone with balance to spend.

use super::{Caller, Ctx, ServiceResult};
use crate::domain::list_prices;
use crate::service::db;

/// The operator's first steps, each done or not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FirstSteps {
    /// A channel exists.
    pub channel: bool,
    /// A price exists, or the shipped list prices (when on) price a model a channel lists.
    pub price: bool,
    /// An account other than root has balance, or a redemption code exists to give some.
    pub balance: bool,
}

impl FirstSteps {
    pub fn all_done(&self) -> bool {
        self.channel && self.price && self.balance
    }
}

/// Whether no administrator exists yet: the site is set up through the first-run link the
/// server prints at start (`service::accounts::setup_token`).
pub async fn setup_needed(ctx: &Ctx) -> ServiceResult<bool> {
    Ok(!db::users::has_admin(&ctx.db).await?)
}

/// Which of the operator's first steps are done (administrators only).
pub async fn first_steps(ctx: &Ctx, caller: &Caller) -> ServiceResult<FirstSteps> {
    caller.require_admin()?;
    let channels = db::channels::list(&ctx.db).await?;
    let options = super::options::current(&ctx.db).await?;
    let price = !db::prices::list(&ctx.db).await?.is_empty()
        || (options.list_prices
            && channels.iter().any(|channel| {
                channel
                    .models
                    .iter()
                    .any(|model| list_prices::shipped().covers(model))
            }));
    let balance = db::users::someone_besides_root_has_balance(&ctx.db).await?
        || !db::codes::list(&ctx.db, None, 1).await?.is_empty();
    Ok(FirstSteps {
        channel: !channels.is_empty(),
        price,
        balance,
    })
}
