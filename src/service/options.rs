use super::{Caller, Ctx, FieldProblem, ServiceError, ServiceResult, audit};
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

/// Validates and stores one option. A person (an administrator) switching on a feature that
/// gives money away or takes it is refused without [`set_confirmed`]'s confirmation; the
/// command line's typed command is its own.
pub async fn set(ctx: &Ctx, caller: &Caller, name: &str, value: &str) -> ServiceResult<OptionInfo> {
    set_confirmed(ctx, caller, name, value, caller.account_id().is_none()).await
}

/// [`set`] with the caller's confirmation that a money feature may be switched on
/// (`confirm=true` in `/api`, the typed confirmation on the console).
pub async fn set_confirmed(
    ctx: &Ctx,
    caller: &Caller,
    name: &str,
    value: &str,
    confirmed: bool,
) -> ServiceResult<OptionInfo> {
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
    let name = RuntimeOptions::names()
        .into_iter()
        .find(|known| *known == name)
        .ok_or_else(|| ServiceError::NotFound(unknown(name)))?;
    store(ctx, caller, &[name], options, confirmed).await?;
    current(&ctx.db)
        .await?
        .describe()
        .into_iter()
        .find(|o| o.name == name)
        .ok_or_else(|| ServiceError::NotFound(unknown(name)))
}

/// Sets several options at once (a section of the console's settings), each problem on the
/// option's own field: all are stored in one transaction, or none. Options given their
/// current value are left alone. Returns the names changed.
pub async fn set_many(
    ctx: &Ctx,
    caller: &Caller,
    values: &[(String, String)],
    confirmed: bool,
) -> ServiceResult<Vec<&'static str>> {
    caller.require_admin()?;
    let known = RuntimeOptions::names();
    let before = current(&ctx.db).await?;
    let mut options = before.clone();
    let mut problems = Vec::new();
    let mut changed: Vec<&'static str> = Vec::new();
    for (name, value) in values {
        let Some(&name) = known.iter().find(|known| *known == name) else {
            return Err(ServiceError::NotFound(unknown(name)));
        };
        if crate::options::is_root_only(name) {
            caller.require_root()?;
        }
        match options.set(name, value) {
            Ok(()) => {
                if options.stored_value(name) != before.stored_value(name)
                    && !changed.contains(&name)
                {
                    changed.push(name);
                }
            }
            Err(message) => problems.push(FieldProblem {
                field: name,
                message,
            }),
        }
    }
    if !problems.is_empty() {
        return Err(ServiceError::Invalid(problems));
    }
    if !changed.is_empty() {
        store(ctx, caller, &changed, options, confirmed).await?;
    }
    Ok(changed)
}

/// The money features, by the options that switch them on: each is off or on.
fn money_features(options: &RuntimeOptions) -> [(&'static str, bool); 3] {
    let above_zero =
        |text: &str| crate::domain::money::MicroUsd::parse(text).is_ok_and(|usd| usd.0 > 0);
    [
        (
            "payments",
            !options.stripe_secret_key.is_empty() && !options.stripe_webhook_secret.is_empty(),
        ),
        (
            "invite_rewards",
            above_zero(&options.invite_reward_inviter_usd)
                || above_zero(&options.invite_reward_invitee_usd),
        ),
        ("new_user_balance", above_zero(&options.new_user_quota_usd)),
    ]
}

/// The money features `after` switches on that were off `before`.
pub fn money_switched_on(before: &RuntimeOptions, after: &RuntimeOptions) -> Vec<&'static str> {
    money_features(before)
        .into_iter()
        .zip(money_features(after))
        .filter(|((_, was), (_, is))| !was && *is)
        .map(|(_, (feature, _))| feature)
        .collect()
}

/// Checks `options` (the stored ones with `names` changed) and writes those names, each
/// audited as `option.set` (write-only values as "changed").
async fn store(
    ctx: &Ctx,
    caller: &Caller,
    names: &[&'static str],
    options: RuntimeOptions,
    confirmed: bool,
) -> ServiceResult<()> {
    agree(&options)?;
    let before = current(&ctx.db).await?;
    let switched_on = money_switched_on(&before, &options);
    if !switched_on.is_empty() && !confirmed {
        return Err(ServiceError::invalid(
            "confirm",
            msg!(
                "option-money-needs-confirm",
                features = switched_on.join(", ")
            ),
        ));
    }
    let mut writes = Vec::with_capacity(names.len());
    for &name in names {
        // Store the canonical spelling, so what is listed is what was set (write-only values
        // are listed masked, so the stored one is taken from the options themselves).
        let stored = options
            .stored_value(name)
            .ok_or_else(|| ServiceError::NotFound(unknown(name)))?;
        writes.push((name, before.stored_value(name), stored));
    }
    ctx.write(caller, async |tx| {
        for (name, before, stored) in &writes {
            let hidden: &[&str] = if crate::options::WRITE_ONLY.contains(name) {
                &["value"]
            } else {
                &[]
            };
            db::options::set(tx, name, stored).await?;
            tx.audit(audit::change(
                "option.set",
                format!("option:{name}"),
                Some(serde_json::json!({ "value": before })),
                Some(serde_json::json!({ "value": stored })),
                hidden,
            ));
        }
        Ok(())
    })
    .await
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

#[cfg(test)]
mod tests {
    use super::*;

    fn with(pairs: &[(&str, &str)]) -> RuntimeOptions {
        let mut options = RuntimeOptions::default();
        for (name, value) in pairs {
            options.set(name, value).unwrap();
        }
        options
    }

    #[test]
    fn money_features_count_as_switched_on_only_from_off() {
        let off = RuntimeOptions::default();
        assert!(money_switched_on(&off, &off).is_empty());
        assert_eq!(
            money_switched_on(&off, &with(&[("new_user_quota_usd", "0.01")])),
            ["new_user_balance"]
        );
        assert_eq!(
            money_switched_on(&off, &with(&[("invite_reward_invitee_usd", "1")])),
            ["invite_rewards"]
        );
        let one_key = with(&[("stripe_secret_key", "sk_test_a")]);
        assert!(
            money_switched_on(&off, &one_key).is_empty(),
            "one key is not payments"
        );
        let both = with(&[
            ("stripe_secret_key", "sk_test_a"),
            ("stripe_webhook_secret", "whsec_a"),
        ]);
        assert_eq!(money_switched_on(&one_key, &both), ["payments"]);
        let raised = with(&[("new_user_quota_usd", "1")]);
        assert!(
            money_switched_on(&raised, &with(&[("new_user_quota_usd", "5")])).is_empty(),
            "already on"
        );
        assert!(
            money_switched_on(&raised, &off).is_empty(),
            "switching off is free"
        );
    }
}
