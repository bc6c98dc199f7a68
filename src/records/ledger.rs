//! Balance ledger rows as stored.

use crate::domain::kinds::LedgerKind;

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Entry {
    pub id: i64,
    pub user_id: i64,
    pub kind: LedgerKind,
    pub amount: i64,
    pub actor: String,
    pub reference: String,
    pub reason: String,
    pub idempotency_key: String,
    pub created_at: i64,
}
