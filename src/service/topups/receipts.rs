//! The receipt mailed to a payer once their order is credited.

use super::find_any;
use crate::domain::money::Quota;
use crate::domain::topup::{self};
use crate::i18n::Lang;
use crate::mail::{self, Email, SmtpSettings};
use crate::service::Ctx;

/// Mails the payer a receipt for a credited order, in their language, after the credit has
/// committed; a mail failure is logged and changes nothing.
pub(super) async fn mail_receipt(ctx: &Ctx, order_id: i64, listen_url: &str) {
    if let Err(error) = receipt(ctx, order_id, listen_url).await {
        tracing::warn!(order_id, %error, "the top-up receipt could not be mailed");
    }
}

/// [`mail_receipt`] without waiting for it: the webhook answers Stripe at once.
pub(super) fn send_receipt(ctx: &Ctx, order_id: i64, listen_url: &str) {
    let ctx = ctx.clone();
    let listen_url = listen_url.to_string();
    tokio::spawn(async move { mail_receipt(&ctx, order_id, &listen_url).await });
}

async fn receipt(ctx: &Ctx, order_id: i64, listen_url: &str) -> Result<(), String> {
    let options = crate::service::options::current(&ctx.db)
        .await
        .map_err(|e| e.to_string())?;
    let Some(settings) = SmtpSettings::from_options(&options) else {
        return Ok(());
    };
    let order = find_any(ctx, order_id).await.map_err(|e| e.to_string())?;
    let user = crate::service::users::find_id(&ctx.db, order.user_id)
        .await
        .map_err(|e| e.to_string())?;
    let Some(to) = user.email.clone() else {
        return Ok(());
    };
    let lang = Lang::from_tag(&user.locale).unwrap_or(Lang::En);
    let qpu = options.quota_per_usd();
    let paid = topup::display_amount(&order.currency, order.amount);
    let credited = Quota(order.credited).usd_display(qpu);
    let balance = Quota(user.quota).usd_display(qpu);
    let link = format!(
        "{}/wallet/orders/{}",
        options.base_url(listen_url),
        order.id
    );
    let site = options.site_name.as_str();
    let id = order.id.to_string();
    let args: [(&str, &str); 7] = [
        ("site", site),
        ("name", &user.username),
        ("order", &id),
        ("paid", &paid),
        ("credited", &credited),
        ("balance", &balance),
        ("link", &link),
    ];
    let email = Email {
        to,
        subject: crate::i18n::text(lang, "mail-receipt-subject", &args),
        text: crate::i18n::text(lang, "mail-receipt-text", &args),
    };
    mail::send(&settings, email)
        .await
        .map_err(|e| e.to_string())
}
