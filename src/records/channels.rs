//! Upstream channels and their routes as stored.

use std::collections::BTreeMap;

use crate::domain::kinds::{ChannelStatus, ChannelType};
use crate::domain::secret_key::upstream_key_fingerprint;

#[derive(Clone, Debug, PartialEq)]
pub struct ChannelRow {
    pub id: i64,
    pub name: String,
    pub channel_type: ChannelType,
    pub base_url: String,
    /// Upstream credentials; never shown back in full.
    pub secret_keys: Vec<String>,
    pub models: Vec<String>,
    /// Requested model → upstream model name.
    pub model_mapping: BTreeMap<String, String>,
    pub groups: Vec<String>,
    pub priority: i64,
    pub weight: i64,
    pub status: ChannelStatus,
    pub status_reason: String,
    pub status_changed_at: i64,
    /// 0 uses the server-wide default.
    pub timeout_secs: i64,
    pub extra_headers: BTreeMap<String, String>,
    pub used_quota: i64,
    pub request_count: i64,
    pub created_at: i64,
    pub updated_at: i64,
    /// The last `channel test` (0 = never), its latency and its outcome (`ok` or the error).
    pub tested_at: i64,
    pub test_latency_ms: i64,
    pub test_result: String,
    /// Keys taken out of rotation one by one (see [`disable_key`]).
    pub disabled_keys: Vec<DisabledKey>,
}

/// One key of a multi-key channel that Tollgate took out of rotation.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DisabledKey {
    /// `secret_key::upstream_key_fingerprint` of the key.
    pub fingerprint: String,
    pub reason: String,
    /// When, in ms since the epoch.
    pub at: i64,
}

impl ChannelRow {
    /// The keys still in rotation.
    pub fn enabled_keys(&self) -> impl Iterator<Item = &String> {
        self.secret_keys
            .iter()
            .filter(|key| !self.is_key_disabled(key))
    }

    pub fn is_key_disabled(&self, key: &str) -> bool {
        if self.disabled_keys.is_empty() {
            return false;
        }
        let fingerprint = upstream_key_fingerprint(key);
        self.disabled_keys
            .iter()
            .any(|d| d.fingerprint == fingerprint)
    }
}

/// A row of the (group, model) → channel lookup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteRow {
    pub group: String,
    pub model: String,
    pub channel_id: i64,
}
