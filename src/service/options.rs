use super::{Caller, Ctx, ServiceError, ServiceResult, audit};
use crate::i18n::Message;
use crate::msg;
use crate::options::{OptionInfo, RuntimeOptions};
use crate::service::db::{self, Db};

/// The runtime options as stored now (read by other operations for the dollar rate).
pub(crate) async fn current(db: &Db) -> ServiceResult<RuntimeOptions> {
    let stored = db::options::all(db).await?;
    Ok(RuntimeOptions::from_stored(&stored).0)
}

/// The runtime options as stored now.
pub async fn stored(ctx: &Ctx) -> ServiceResult<RuntimeOptions> {
    current(&ctx.db).await
}

/// The dollar rate now, for views that show dollars.
pub async fn quota_per_usd(ctx: &Ctx) -> ServiceResult<i64> {
    Ok(current(&ctx.db).await?.quota_per_usd())
}

pub async fn list(ctx: &Ctx, caller: &Caller) -> ServiceResult<Vec<OptionInfo>> {
    caller.require_admin()?;
    Ok(current(&ctx.db).await?.describe())
}

/// Validates and stores one option.
pub async fn set(ctx: &Ctx, caller: &Caller, name: &str, value: &str) -> ServiceResult<OptionInfo> {
    caller.require_admin()?;
    if crate::options::is_root_only(name) {
        caller.require_root()?;
    }
    let mut options = current(&ctx.db).await?;
    options.set(name, value).map_err(|message| {
        if RuntimeOptions::names().contains(&name) {
            ServiceError::invalid("value", message)
        } else {
            ServiceError::NotFound(message)
        }
    })?;
    agree(&options)?;
    let info = options
        .describe()
        .into_iter()
        .find(|o| o.name == name)
        .ok_or_else(|| ServiceError::NotFound(unknown(name)))?;
    // Store the canonical spelling, so what is listed is what was set (write-only values are
    // listed masked, so the stored one is taken from the options themselves).
    let stored = options
        .stored_value(name)
        .ok_or_else(|| ServiceError::NotFound(unknown(name)))?;
    let before = current(&ctx.db).await?.stored_value(name);
    let hidden: &[&str] = if crate::options::WRITE_ONLY.contains(&name) {
        &["value"]
    } else {
        &[]
    };
    ctx.write(caller, async |tx| {
        db::options::set(tx, name, &stored).await?;
        tx.audit(audit::change(
            "option.set",
            format!("option:{name}"),
            Some(serde_json::json!({ "value": before })),
            Some(serde_json::json!({ "value": stored })),
            hidden,
        ));
        Ok(())
    })
    .await?;
    Ok(info)
}

/// Rules between options: a setting that would lock people out is refused with the reason.
fn agree(options: &RuntimeOptions) -> ServiceResult<()> {
    if options.email_verification_required && options.smtp_host.is_empty() {
        return Err(ServiceError::invalid(
            "value",
            msg!("option-verification-needs-smtp"),
        ));
    }
    let dollars = |text: &str| crate::domain::money::MicroUsd::parse(text).map(|d| d.0);
    if let (Ok(min), Ok(max)) = (
        dollars(&options.topup_min_usd),
        dollars(&options.topup_max_usd),
    ) && min > max
    {
        return Err(ServiceError::invalid(
            "value",
            msg!("option-topup-bounds-backwards"),
        ));
    }
    Ok(())
}

pub async fn reset(ctx: &Ctx, caller: &Caller, name: &str) -> ServiceResult<OptionInfo> {
    caller.require_admin()?;
    if crate::options::is_root_only(name) {
        caller.require_root()?;
    }
    if !RuntimeOptions::names().contains(&name) {
        return Err(ServiceError::NotFound(unknown(name)));
    }
    let mut options = current(&ctx.db).await?;
    if let Some(default) = RuntimeOptions::default().stored_value(name) {
        options
            .set(name, &default)
            .map_err(|m| ServiceError::invalid("value", m))?;
    }
    agree(&options)?;
    let before = current(&ctx.db).await?.stored_value(name);
    let hidden: &[&str] = if crate::options::WRITE_ONLY.contains(&name) {
        &["value"]
    } else {
        &[]
    };
    ctx.write(caller, async |tx| {
        db::options::reset(tx, name).await?;
        tx.audit(audit::change(
            "option.reset",
            format!("option:{name}"),
            Some(serde_json::json!({ "value": before })),
            Some(serde_json::json!({ "value": RuntimeOptions::default().stored_value(name) })),
            hidden,
        ));
        Ok(())
    })
    .await?;
    RuntimeOptions::default()
        .describe()
        .into_iter()
        .find(|o| o.name == name)
        .ok_or_else(|| ServiceError::NotFound(unknown(name)))
}

fn unknown(name: &str) -> Message {
    msg!(
        "option-unknown",
        name = name,
        known = RuntimeOptions::names().join(", ")
    )
}
