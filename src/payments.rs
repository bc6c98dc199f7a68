//! Tollgate's calls to Stripe's API (async-stripe): making a Checkout Session for an order,
//! reading one back for reconciliation, and asking for a refund. A client is built per call
//! from the current options, so a changed key applies at once; payments are rare enough that
//! the connection set-up does not matter.

use std::collections::HashMap;
use std::time::Duration;

use stripe::{Client, ClientBuilder, IdempotencyKey, RequestStrategy, StripeError};
use stripe_checkout::checkout_session::{
    CreateCheckoutSession, CreateCheckoutSessionLineItems, CreateCheckoutSessionLineItemsPriceData,
    CreateCheckoutSessionPaymentIntentData, ListCheckoutSession, ProductData,
    RetrieveCheckoutSession,
};
use stripe_core::refund::CreateRefund;

/// How long one call to Stripe may take.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Why a call to Stripe did not succeed, in words an administrator (or the payer) can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaymentError {
    /// Stripe answered with an error; its own message (e.g. "Invalid API Key provided").
    #[error("Stripe refused the request ({status}): {message}")]
    Refused { status: u16, message: String },
    /// Stripe could not be reached, or its answer was not understood.
    #[error("Stripe could not be reached: {0}")]
    Unreachable(String),
}

impl From<StripeError> for PaymentError {
    fn from(error: StripeError) -> PaymentError {
        match error {
            StripeError::Stripe(errors, status) => PaymentError::Refused {
                status,
                message: errors
                    .message
                    .clone()
                    .unwrap_or_else(|| format!("{:?}", errors.type_)),
            },
            other => PaymentError::Unreachable(other.to_string()),
        }
    }
}

/// Where Stripe is and the key to call it with.
#[derive(Clone, Debug)]
pub struct StripeAccess {
    pub secret_key: String,
    /// `https://api.stripe.com/` unless a test points elsewhere.
    pub api_base: String,
}

impl StripeAccess {
    fn client(&self, strategy: RequestStrategy) -> Result<Client, PaymentError> {
        let mut base = self.api_base.trim().to_string();
        if !base.ends_with('/') {
            base.push('/');
        }
        ClientBuilder::new(self.secret_key.clone())
            .url(base)
            .timeout(TIMEOUT)
            .request_strategy(strategy)
            .app_info(
                "Tollgate",
                Some(env!("CARGO_PKG_VERSION").to_string()),
                None,
            )
            .build()
            .map_err(|e| PaymentError::Unreachable(e.to_string()))
    }
}

/// A Checkout Session to make for an order.
#[derive(Clone, Debug)]
pub struct CheckoutRequest<'a> {
    /// The site's id (the same on every node): order ids repeat from site to site, so the
    /// idempotency key and the metadata name both.
    pub site_id: &'a str,
    pub order_id: i64,
    /// The price in the currency's smallest unit.
    pub amount: i64,
    pub currency: &'a str,
    /// What the payer sees on Stripe's page.
    pub description: &'a str,
    pub success_url: &'a str,
    pub cancel_url: &'a str,
    /// Unix seconds after which the session takes no payment.
    pub expires_at: i64,
    pub customer_email: Option<&'a str>,
    /// Stripe's page in the payer's language (`en`, `zh`).
    pub locale: &'a str,
}

/// A Checkout Session as Tollgate needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionState {
    pub id: String,
    /// `open`, `complete` or `expired`.
    pub status: String,
    /// `paid`, `unpaid` or `no_payment_required`.
    pub payment_status: String,
    pub amount_total: Option<i64>,
    pub currency: Option<String>,
    pub payment_intent: Option<String>,
    pub client_reference_id: Option<String>,
    pub metadata_order_id: Option<String>,
    /// The site that made the session (none on sessions made before sites had ids).
    pub metadata_site_id: Option<String>,
    pub url: Option<String>,
    /// Unix seconds.
    pub expires_at: i64,
}

fn session_state(session: stripe_shared::CheckoutSession) -> SessionState {
    SessionState {
        id: session.id.as_str().to_string(),
        status: session
            .status
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        payment_status: session.payment_status.as_str().to_string(),
        amount_total: session.amount_total,
        currency: session.currency.map(|c| c.to_string()),
        payment_intent: session.payment_intent.map(|p| p.id().as_str().to_string()),
        client_reference_id: session.client_reference_id,
        metadata_order_id: session
            .metadata
            .as_ref()
            .and_then(|m| m.get("order_id").cloned()),
        metadata_site_id: session
            .metadata
            .as_ref()
            .and_then(|m| m.get("site_id").cloned()),
        url: session.url,
        expires_at: session.expires_at,
    }
}

/// The idempotency key of an order's Checkout Session: `tollgate-SITE-order-ID`.
pub fn checkout_key(site_id: &str, order_id: i64) -> String {
    format!("tollgate-{site_id}-order-{order_id}")
}

/// Makes the order's Checkout Session. The idempotency key names the site and the order, so
/// a retry (a double click, a lost answer) gets the same session back instead of a second
/// one, and another site's order of the same number never does.
pub async fn create_checkout(
    access: &StripeAccess,
    request: &CheckoutRequest<'_>,
) -> Result<SessionState, PaymentError> {
    let key = IdempotencyKey::new(checkout_key(request.site_id, request.order_id))
        .map_err(|e| PaymentError::Unreachable(e.to_string()))?;
    let client = access.client(RequestStrategy::Idempotent(key))?;
    let currency: stripe_types::Currency = request
        .currency
        .parse()
        .map_err(|_| PaymentError::Unreachable(format!("currency {}", request.currency)))?;
    let mut price = CreateCheckoutSessionLineItemsPriceData::new(currency);
    price.unit_amount = Some(request.amount);
    price.product_data = Some(ProductData::new(request.description));
    let mut item = CreateCheckoutSessionLineItems::new();
    item.price_data = Some(price);
    item.quantity = Some(1);
    let order_id = request.order_id.to_string();
    let metadata = HashMap::from([
        ("order_id".to_string(), order_id.clone()),
        ("site_id".to_string(), request.site_id.to_string()),
    ]);
    let mut create = CreateCheckoutSession::new()
        .mode(stripe_shared::CheckoutSessionMode::Payment)
        .line_items(vec![item])
        .client_reference_id(order_id)
        .metadata(metadata.clone())
        .payment_intent_data(CreateCheckoutSessionPaymentIntentData {
            metadata: Some(metadata),
            ..Default::default()
        })
        .success_url(request.success_url)
        .cancel_url(request.cancel_url)
        .expires_at(request.expires_at)
        .locale(locale(request.locale));
    if let Some(email) = request.customer_email {
        create = create.customer_email(email);
    }
    let session = create.send(&client).await?;
    Ok(session_state(session))
}

fn locale(tag: &str) -> stripe_shared::CheckoutSessionLocale {
    use stripe_shared::CheckoutSessionLocale as L;
    if tag.starts_with("zh") { L::Zh } else { L::En }
}

/// Reads a Checkout Session back (for reconciliation).
pub async fn session(access: &StripeAccess, id: &str) -> Result<SessionState, PaymentError> {
    let client = access.client(RequestStrategy::Once)?;
    let session = RetrieveCheckoutSession::new(id).send(&client).await?;
    Ok(session_state(session))
}

/// The Checkout Session a payment was made through, if any (a charge of another product on
/// the same Stripe account has none).
pub async fn session_of_payment(
    access: &StripeAccess,
    payment_intent: &str,
) -> Result<Option<SessionState>, PaymentError> {
    let client = access.client(RequestStrategy::Once)?;
    let list = ListCheckoutSession::new()
        .payment_intent(payment_intent)
        .limit(1)
        .send(&client)
        .await?;
    Ok(list.data.into_iter().next().map(session_state))
}

/// Asks Stripe to refund `amount` (smallest units; all of it when None) of a payment. The
/// balance moves when Stripe's `charge.refunded` event arrives, through the same path as a
/// refund made on Stripe's dashboard. Returns the refund's id.
pub async fn refund(
    access: &StripeAccess,
    payment_intent: &str,
    amount: Option<i64>,
    idempotency_key: &str,
) -> Result<String, PaymentError> {
    let key = IdempotencyKey::new(idempotency_key)
        .map_err(|e| PaymentError::Unreachable(e.to_string()))?;
    let client = access.client(RequestStrategy::Idempotent(key))?;
    let mut create = CreateRefund::new().payment_intent(payment_intent);
    if let Some(amount) = amount {
        create = create.amount(amount);
    }
    let refund = create.send(&client).await?;
    Ok(refund.id.as_str().to_string())
}

/// Whether Stripe accepts the key: lists one Checkout Session, a read needing the permission
/// Tollgate's own calls need (a restricted key without it is refused here, not at the first
/// payment).
pub async fn check_key(access: &StripeAccess) -> Result<(), PaymentError> {
    let client = access.client(RequestStrategy::Once)?;
    ListCheckoutSession::new().limit(1).send(&client).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The TLS client for Stripe's real address builds with the tree's one crypto provider
    /// and the compiled-in roots (no network needed, no CA files on the machine).
    #[tokio::test]
    async fn builds_a_client_for_stripe() {
        let access = StripeAccess {
            secret_key: "sk_test_x".into(),
            api_base: "https://api.stripe.com".into(),
        };
        assert!(access.client(RequestStrategy::Once).is_ok());
        let key = IdempotencyKey::new(checkout_key("0123456789abcdef", 1)).unwrap();
        assert!(access.client(RequestStrategy::Idempotent(key)).is_ok());
        let bad = StripeAccess {
            secret_key: "sk\nbad".into(),
            api_base: "https://api.stripe.com".into(),
        };
        assert!(matches!(
            bad.client(RequestStrategy::Once),
            Err(PaymentError::Unreachable(_))
        ));
    }
}
