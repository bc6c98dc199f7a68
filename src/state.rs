//! The shared application state: cheap to clone, no globals.

use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwap;
use tokio::sync::{Notify, mpsc};

use crate::billing::Billing;
use crate::config::Config;
use crate::domain::tokenizer::Tokenizer;
use crate::service::Ctx;
use crate::snapshot::{Directory, Snapshot};
use crate::upstream::UpstreamClient;

/// Something the relay noticed about a channel that must reach the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelEvent {
    AutoDisable {
        channel_id: i64,
        reason: String,
    },
    /// One key of a multi-key channel was refused (401/403): take it out of rotation.
    DisableKey {
        channel_id: i64,
        fingerprint: String,
        reason: String,
    },
}

/// Request ids: a random per-process prefix and a counter, 32 hex digits like a UUID. Unique
/// across restarts and nodes without a random draw per request.
pub struct RequestIds {
    prefix: u64,
    counter: AtomicU64,
}

impl RequestIds {
    pub fn new() -> RequestIds {
        RequestIds {
            prefix: rand::random(),
            counter: AtomicU64::new(0),
        }
    }

    pub fn next(&self) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let mut id = String::with_capacity(32);
        for word in [self.prefix, n] {
            for shift in (0..16).rev() {
                id.push(char::from(HEX[((word >> (shift * 4)) & 0xf) as usize]));
            }
        }
        id
    }
}

impl Default for RequestIds {
    fn default() -> Self {
        RequestIds::new()
    }
}

pub struct AppInner {
    pub config: Config,
    /// `http://` and the address the server listens on (the port it was given when 0 was
    /// asked for): the base of links when the option `public_url` is not set.
    pub listen_url: String,
    /// The routing view; replaced whole when a channel, group, price, alias or option changes.
    pub snapshot: ArcSwap<Snapshot>,
    /// The keys and accounts seen, updated one at a time.
    pub directory: Directory,
    /// The data version whose changes are applied to `snapshot` and `directory`; its lock
    /// makes one sync at a time.
    pub applied_version: tokio::sync::Mutex<i64>,
    pub billing: Billing,
    /// The relay's pooled upstream client: keep-alive connections shared by every request.
    pub upstream: UpstreamClient,
    /// For other outbound calls (channel probes).
    pub http: reqwest::Client,
    /// Sign-in through OAuth providers, with their keys cached.
    pub oauth: crate::oauth::OAuthClient,
    pub tokenizer: &'static Tokenizer,
    pub request_ids: RequestIds,
    pub channel_events: mpsc::UnboundedSender<ChannelEvent>,
    /// Wakes the sync job to catch up now (after applying a write of this process failed).
    pub reload: Notify,
    /// What management operations run with: this server's database, and a snapshot update
    /// after every write, so a change is live before the operation answers.
    pub ctx: Ctx,
    /// The rate limits of sign-in, registration, codes and resets.
    pub limits: crate::service::limits::Limits,
    /// The deployment's shared Redis, when there is one (`--redis-url`).
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
    /// What `/metrics` reports; the relay counts into it.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// What `/readyz` checks, and whether the server is draining.
    pub health: crate::health::Health,
    /// Where `/metrics`, `/healthz` and `/readyz` are served without a token
    /// (`--metrics-listen`, with the port it was given when 0 was asked for).
    pub metrics_addr: Option<std::net::SocketAddr>,
}

#[derive(Clone)]
pub struct AppState(pub Arc<AppInner>);

impl Deref for AppState {
    type Target = AppInner;

    fn deref(&self) -> &AppInner {
        &self.0
    }
}
