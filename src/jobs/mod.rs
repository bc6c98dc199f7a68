//! Background tasks owned by the app and stopped with it.

pub mod channel_health;
pub mod snapshot_sync;
