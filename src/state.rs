//! The shared application state: cheap to clone, no globals.

use std::ops::Deref;
use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::sync::{Notify, mpsc};

use crate::billing::Billing;
use crate::config::Config;
use crate::db::Db;
use crate::domain::tokenizer::Tokenizer;
use crate::snapshot::Snapshot;

/// Something the relay noticed about a channel that must reach the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelEvent {
    AutoDisable { channel_id: i64, reason: String },
}

pub struct AppInner {
    pub config: Config,
    pub db: Db,
    /// The current in-memory view; replaced whole by the sync job.
    pub snapshot: ArcSwap<Snapshot>,
    pub billing: Billing,
    /// One pooled client for every upstream: keep-alive connections are shared across requests.
    pub http: reqwest::Client,
    pub tokenizer: &'static Tokenizer,
    pub channel_events: mpsc::UnboundedSender<ChannelEvent>,
    /// Wakes the sync job to reload the snapshot now (after a write made by this process).
    pub reload: Notify,
}

#[derive(Clone)]
pub struct AppState(pub Arc<AppInner>);

impl Deref for AppState {
    type Target = AppInner;

    fn deref(&self) -> &AppInner {
        &self.0
    }
}
