//! Background tasks owned by the app and stopped with it.

pub mod audit_retention;
pub mod budget_alerts;
pub mod channel_health;
pub mod cluster_lease;
pub mod log_upkeep;
pub mod low_balance;
pub mod reconcile_orders;
pub mod snapshot_sync;
