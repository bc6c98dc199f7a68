//! Model prices as stored.

use crate::domain::pricing::ModelPrice;

#[derive(Clone, Debug, PartialEq)]
pub struct PriceRow {
    pub model: String,
    pub price: ModelPrice,
    /// The model's context window in tokens, when the admin set one.
    pub context_tokens: Option<i64>,
    pub updated_at: i64,
}
