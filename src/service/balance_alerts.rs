//! The low-balance warning: one email when an account's balance falls below its line, and no
//! more until it has been back above it. The line is the person's own (set on their profile)
//! or the site's default (option `low_balance_default_usd`). A background round finds the
//! accounts below their line; claiming each warning is a conditional update, so with several
//! servers each crossing still sends one email.

use super::sessions::Viewer;
use super::{Caller, Ctx, ServiceResult, decimal_err, usd_to_quota};
use crate::domain::money::{MicroUsd, Quota};
use crate::i18n::Lang;
use crate::mail::{self, Email, SmtpSettings};
use crate::options::RuntimeOptions;
use crate::service::db;
use crate::service::db::users::UserRow;

/// Stored for "the site's default".
const SITE_DEFAULT: i64 = -1;

/// Sets one's own line from what the profile form holds: empty for the site's default, `0`
/// for no warnings, else dollars.
pub async fn set_threshold(ctx: &Ctx, caller: &Caller, text: &str) -> ServiceResult<()> {
    let user_id = caller.own_account()?;
    let text = text.trim();
    let threshold = if text.is_empty() {
        SITE_DEFAULT
    } else {
        let usd = MicroUsd::parse(text).map_err(decimal_err("low_balance_usd"))?;
        let qpu = super::options::current(&ctx.db).await?.quota_per_usd();
        usd_to_quota("low_balance_usd", usd, qpu)?.0
    };
    ctx.write_own(caller, async |tx| {
        Ok(db::users::set_low_balance_threshold(tx, user_id, threshold).await?)
    })
    .await
}

/// What the profile form shows for one's line: empty for the site's default.
pub fn threshold_text(user: &Viewer, quota_per_usd: i64) -> String {
    if user.low_balance_threshold == SITE_DEFAULT {
        return String::new();
    }
    Quota(user.low_balance_threshold).usd_editable(quota_per_usd)
}

/// The site's default line in quota units; None when it is off.
fn site_line(options: &RuntimeOptions) -> Option<i64> {
    let usd = MicroUsd::parse(&options.low_balance_default_usd).ok()?;
    let units = Quota::from_usd(usd, options.quota_per_usd())?.0;
    (units > 0).then_some(units)
}

/// One round: re-arms the accounts back above their line, then warns those below it that
/// were not warned yet. Returns how many emails went out. Does nothing while the site sends
/// no mail.
pub async fn warn_low_balances(ctx: &Ctx, listen_url: &str) -> ServiceResult<usize> {
    let options = super::options::current(&ctx.db).await?;
    let Some(settings) = SmtpSettings::from_options(&options) else {
        return Ok(0);
    };
    // An account on the site's default is never below a line that is off.
    let default = site_line(&options).unwrap_or(i64::MIN);
    db::users::rearm_low_balance(&ctx.db, default).await?;
    let mut sent = 0;
    for id in db::users::below_low_balance(&ctx.db, default).await? {
        let claimed = ctx
            .write(&Caller::System, async |tx| {
                Ok(db::users::claim_low_balance_warning(tx, id).await?)
            })
            .await?;
        if !claimed {
            continue;
        }
        let user = super::users::find_id(&ctx.db, id).await?;
        let message = warning(&options, &user, default, listen_url);
        if let Err(error) = mail::send(&settings, message).await {
            tracing::warn!(error = %error, user_id = id, "a low-balance warning could not be mailed; it is tried again next round");
            ctx.write(&Caller::System, async |tx| {
                Ok(
                    db::users::set_low_balance_threshold(tx, id, user.low_balance_threshold)
                        .await?,
                )
            })
            .await?;
            continue;
        }
        sent += 1;
    }
    Ok(sent)
}

fn warning(options: &RuntimeOptions, user: &UserRow, default: i64, listen_url: &str) -> Email {
    let lang = Lang::from_tag(&user.locale).unwrap_or(Lang::En);
    let qpu = options.quota_per_usd();
    let line = if user.low_balance_threshold < 0 {
        default
    } else {
        user.low_balance_threshold
    };
    let balance = Quota(user.quota).usd_display(qpu);
    let line = Quota(line).usd_display(qpu);
    let link = format!("{}/wallet", options.base_url(listen_url));
    let site = options.site_name.as_str();
    Email {
        to: user.email.clone().unwrap_or_default(),
        subject: crate::i18n::text(
            lang,
            "mail-low-balance-subject",
            &[("site", site), ("balance", &balance)],
        ),
        text: crate::i18n::text(
            lang,
            "mail-low-balance-text",
            &[
                ("site", site),
                ("name", &user.username),
                ("balance", &balance),
                ("line", &line),
                ("link", &link),
            ],
        ),
    }
}
