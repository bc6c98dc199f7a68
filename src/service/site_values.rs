//! Values made once for the whole site and kept in the database, the same on every node (the
//! site id Stripe idempotency keys and metadata carry; other site-wide secrets alike). Each
//! is read from the database once per process and then answered from memory.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use super::{Ctx, ServiceResult};
use crate::service::db::{self, DbError};

/// The values read so far, shared by every clone of a [`Ctx`].
#[derive(Clone, Debug, Default)]
pub struct SiteValueCache(Arc<RwLock<HashMap<&'static str, String>>>);

impl SiteValueCache {
    fn get(&self, name: &str) -> Option<String> {
        self.0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
    }

    fn keep(&self, name: &'static str, value: &str) {
        self.0
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name, value.to_string());
    }
}

/// The value stored under `name`, made with `make` and stored when there is none yet. Every
/// node gets the same value: when two make one at once, the first stored wins and the other
/// reads it back.
pub async fn get_or_create(
    ctx: &Ctx,
    name: &'static str,
    make: impl FnOnce() -> String,
) -> ServiceResult<String> {
    if let Some(value) = ctx.site_values().get(name) {
        return Ok(value);
    }
    let candidate = make();
    if name.len() > db::site_values::MAX_NAME || candidate.len() > db::site_values::MAX_VALUE {
        return Err(
            DbError::Corrupt(format!("site value '{name}' does not fit its column")).into(),
        );
    }
    let value = db::site_values::get_or_create(&ctx.db, name, &candidate).await?;
    ctx.site_values().keep(name, &value);
    Ok(value)
}

/// The site's id: 16 lowercase hexadecimal digits, made once. Stripe idempotency keys and
/// metadata carry it, so two sites on one Stripe account never take each other's orders.
pub async fn site_id(ctx: &Ctx) -> ServiceResult<String> {
    get_or_create(ctx, "site_id", || {
        let bytes: [u8; 8] = rand::random();
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    })
    .await
}
