//! Checks root runs from the settings before relying on them: a test email through the
//! configured SMTP server, and a read-only call to Stripe with the configured key. Neither
//! changes anything, so neither is audited.

use super::{Caller, Ctx, ServiceError, ServiceResult};
use crate::mail::{self, Email, SmtpSettings};
use crate::msg;
use crate::payments::{self, StripeAccess};

/// Sends a short message to `to` through the mail settings as stored now.
pub async fn send_test_email(ctx: &Ctx, caller: &Caller, to: &str) -> ServiceResult<()> {
    // The mail settings are root's; so is sending with them.
    caller.require_root()?;
    let to = to.trim();
    if to.is_empty() {
        return Err(ServiceError::invalid("to", msg!("field-required")));
    }
    let address = crate::domain::email::parse(to)
        .map_err(|_| ServiceError::invalid("to", msg!("mail-test-bad-address", value = to)))?;
    let options = super::options::current(&ctx.db).await?;
    let Some(settings) = SmtpSettings::from_options(&options) else {
        return Err(ServiceError::invalid("to", msg!("mail-test-no-server")));
    };
    let site = options.site_name.as_str();
    let lang = crate::i18n::Lang::En;
    let message = Email {
        to: address,
        subject: crate::i18n::text(lang, "mail-test-subject", &[("site", site)]),
        text: crate::i18n::text(
            lang,
            "mail-test-text",
            &[("site", site), ("host", &settings.host)],
        ),
    };
    mail::send(&settings, message)
        .await
        .map_err(|e| ServiceError::Upstream(msg!("mail-failed", reason = e.to_string())))
}

/// Asks Stripe, with the secret key stored now, for one Checkout Session (a read that needs
/// the same permission as making them). Ok when Stripe accepts the key; its refusal otherwise.
pub async fn check_stripe(ctx: &Ctx, caller: &Caller) -> ServiceResult<()> {
    caller.require_root()?;
    let options = super::options::current(&ctx.db).await?;
    if options.stripe_secret_key.is_empty() {
        return Err(ServiceError::invalid(
            "stripe_secret_key",
            msg!("stripe-check-no-key"),
        ));
    }
    let access = StripeAccess {
        secret_key: options.stripe_secret_key.clone(),
        api_base: options.stripe_api_base.clone(),
    };
    payments::check_key(&access)
        .await
        .map_err(|e| ServiceError::Upstream(msg!("stripe-check-refused", reason = e.to_string())))
}
