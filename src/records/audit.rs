//! Audit log rows: what an operation says it changed, and the row as stored.

use serde_json::Value;

/// What one audited change did, as the operation that made it describes it. The write path
/// adds who, how and from where, and chains the row (see `service::audit`).
#[derive(Clone, Debug, PartialEq)]
pub struct AuditEntry {
    /// What was done: `channel.update`, `user.balance`, `code.generate`, `option.set`, …
    pub action: &'static str,
    /// What it was done to: `channel:12`, `user:alice`, `option:site_name`, …
    pub target: String,
    /// The record's fields before the change (None for a creation), after redaction.
    pub before: Option<Value>,
    /// The record's fields after the change (None for a deletion), after redaction.
    pub after: Option<Value>,
    /// The balance ledger row a money change wrote.
    pub ledger_id: Option<i64>,
}

/// One stored row of the chain.
#[derive(Clone, Debug, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct AuditRow {
    pub id: i64,
    /// Unix milliseconds.
    pub at: i64,
    /// `cli`, or the administrator's username.
    pub actor: String,
    /// How the actor was signed in: `session`, `admin_token:ID`, `cli`.
    pub auth: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub action: String,
    pub target: String,
    /// The fields that changed, as they were (secrets as `changed`).
    #[schema(value_type = Option<Object>)]
    pub before: Option<Value>,
    /// The fields that changed, as they became.
    #[schema(value_type = Option<Object>)]
    pub after: Option<Value>,
    pub ledger_id: Option<i64>,
    pub prev_hash: String,
    pub hash: String,
}

/// Which rows a listing wants; every field narrows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub target: Option<String>,
    /// From this instant (Unix ms, inclusive).
    pub from_ms: Option<i64>,
    /// Before this instant (Unix ms, exclusive).
    pub to_ms: Option<i64>,
    /// Rows older than this id (the next page).
    pub before_id: Option<i64>,
    pub limit: i64,
}
