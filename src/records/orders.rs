//! Top-up orders as stored.

use crate::domain::kinds::OrderStatus;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderRow {
    pub id: i64,
    pub user_id: i64,
    /// The owner's name, for lists.
    pub username: String,
    pub status: OrderStatus,
    /// The dollars of balance asked for, in millionths.
    pub usd_micros: i64,
    /// Quota units the payment credits, bonus included.
    pub quota: i64,
    pub bonus: i64,
    /// The price, in the currency's smallest unit.
    pub amount: i64,
    pub currency: String,
    pub session_id: Option<String>,
    pub checkout_url: Option<String>,
    pub payment_intent: Option<String>,
    /// When the Checkout Session stops taking payment (ms).
    pub expires_at: Option<i64>,
    /// Quota credited (0 until paid).
    pub credited: i64,
    /// What Stripe reported refunded, cumulative, in smallest units.
    pub refunded: i64,
    /// What is disputed now, in smallest units.
    pub disputed: i64,
    pub refund_taken: i64,
    pub dispute_taken: i64,
    /// Why it is held or closed, or what an administrator said.
    pub note: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub paid_at: Option<i64>,
    /// The organisation whose wallet it credits (0: the purchaser's own balance), and its
    /// slug while it exists.
    pub org_id: i64,
    pub org_slug: Option<String>,
}
