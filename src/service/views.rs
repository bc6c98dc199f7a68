//! What people see of each record: JSON for scripts and the API, in quota units and dollars.
//! Secrets never appear: API keys by their display form, upstream keys masked.

use std::collections::BTreeMap;

use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::domain::kinds::{
    BudgetPeriod, ChannelStatus, ChannelType, OAuthKind, Outcome, Role, Status,
};
use crate::domain::money::{MicroUsd, Quota};
use crate::domain::pricing::ModelPrice;
use crate::domain::rate_limits::RateLimits;
use crate::domain::secret_key::{mask_upstream_key, upstream_key_fingerprint};
use crate::service::db::admin_tokens::AdminTokenRow;
use crate::service::db::channels::ChannelRow;
use crate::service::db::groups::GroupRow;
use crate::service::db::logs::{FailedAttempt, RequestLog};
use crate::service::db::model_aliases::AliasRow;
use crate::service::db::oauth::ProviderRow;
use crate::service::db::prices::PriceRow;
use crate::service::db::tokens::TokenRow;
use crate::service::db::users::UserRow;

/// RFC 3339 in UTC, e.g. `2026-11-21T18:02:03.123Z`.
pub fn timestamp(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| ms.to_string())
}

fn usd(units: i64, quota_per_usd: i64) -> f64 {
    Quota(units).usd_f64(quota_per_usd)
}

fn micro_usd(value: MicroUsd) -> f64 {
    value.0 as f64 / 1_000_000.0
}

#[derive(Serialize, utoipa::ToSchema, Debug, Clone)]
pub struct UserView {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub email: Option<String>,
    pub role: Role,
    pub status: Status,
    pub group: String,
    /// Remaining balance in quota units.
    pub quota: i64,
    pub quota_usd: f64,
    pub used_quota: i64,
    pub used_usd: f64,
    pub request_count: i64,
    /// Rate limits on all of the account's keys together (null: none).
    pub rate_limits: RateLimitsView,
    pub created_at: String,
}

/// Rate limits as the API shows them; null: no limit.
#[derive(Serialize, utoipa::ToSchema, Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitsView {
    /// Requests per minute.
    pub rpm: Option<u64>,
    /// Tokens per minute, input and output together.
    pub tpm: Option<u64>,
    /// Requests in flight at once.
    pub max_concurrent: Option<u64>,
}

impl From<RateLimits> for RateLimitsView {
    fn from(limits: RateLimits) -> Self {
        RateLimitsView {
            rpm: limits.rpm,
            tpm: limits.tpm,
            max_concurrent: limits.max_concurrent,
        }
    }
}

impl UserView {
    pub fn new(u: &UserRow, quota_per_usd: i64) -> UserView {
        UserView {
            id: u.id,
            username: u.username.clone(),
            display_name: u.display_name.clone(),
            email: u.email.clone(),
            role: u.role,
            status: u.status,
            group: u.group.clone(),
            quota: u.quota,
            quota_usd: usd(u.quota, quota_per_usd),
            used_quota: u.used_quota,
            used_usd: usd(u.used_quota, quota_per_usd),
            request_count: u.request_count,
            rate_limits: u.rate_limits.into(),
            created_at: timestamp(u.created_at),
        }
    }
}

#[derive(Serialize, utoipa::ToSchema, Debug, Clone)]
pub struct TokenView {
    pub id: i64,
    pub user: String,
    pub name: String,
    /// `sk-AbCd…wxyz`: enough to recognise the key, never enough to use it.
    pub key_display: String,
    pub status: Status,
    pub expires_at: Option<String>,
    pub unlimited: bool,
    /// Remaining quota of the key itself (meaningless when unlimited).
    pub remaining_quota: i64,
    pub remaining_usd: f64,
    pub used_quota: i64,
    pub used_usd: f64,
    pub request_count: i64,
    pub allowed_models: Vec<String>,
    pub allowed_ips: Vec<String>,
    /// The group the key uses instead of its owner's (absent: the owner's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The budget that starts over every period (absent: none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget: Option<BudgetView>,
    /// A team key's organisation (its slug); null for a personal key.
    pub org: Option<String>,
    /// A team key's team (its id); null for a personal key.
    pub team: Option<i64>,
    pub team_name: Option<String>,
    /// The key's own rate limits (null: its group's applies, if it has one).
    pub rate_limits: RateLimitsView,
    pub last_used_at: Option<String>,
    pub created_at: String,
}

/// A key's periodic budget and how much of the current period is spent.
#[derive(Serialize, utoipa::ToSchema, Debug, Clone)]
pub struct BudgetView {
    pub period: BudgetPeriod,
    pub quota: i64,
    pub usd: f64,
    pub spent_quota: i64,
    pub spent_usd: f64,
    /// When the current period began and when it starts over (RFC 3339).
    pub period_start: String,
    pub resets_at: String,
}

impl TokenView {
    pub fn new(t: &TokenRow, quota_per_usd: i64) -> TokenView {
        TokenView {
            id: t.id,
            user: t.username.clone(),
            name: t.name.clone(),
            key_display: t.key_display.clone(),
            status: t.status,
            expires_at: t.expires_at.map(timestamp),
            unlimited: t.unlimited,
            remaining_quota: t.remaining_quota,
            remaining_usd: usd(t.remaining_quota, quota_per_usd),
            used_quota: t.used_quota,
            used_usd: usd(t.used_quota, quota_per_usd),
            request_count: t.request_count,
            allowed_models: t.allowed_models.clone(),
            allowed_ips: t
                .allowed_ips
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            group: (!t.group.is_empty()).then(|| t.group.clone()),
            budget: t.budget.map(|b| BudgetView {
                period: b.period,
                quota: b.quota,
                usd: usd(b.quota, quota_per_usd),
                spent_quota: b.spent,
                spent_usd: usd(b.spent, quota_per_usd),
                period_start: timestamp(b.window),
                resets_at: timestamp(b.window_end),
            }),
            // The names come from the organisation (see `in_team`; `service::tokens::views`
            // fills them in).
            org: None,
            team: (t.team_id != 0).then_some(t.team_id),
            team_name: None,
            rate_limits: t.rate_limits.into(),
            last_used_at: t.last_used_at.map(timestamp),
            created_at: timestamp(t.created_at),
        }
    }

    /// The view of a team key, with its organisation's slug and its team's name.
    pub fn in_team(self, org_slug: &str, team_name: &str) -> TokenView {
        TokenView {
            org: Some(org_slug.to_string()),
            team_name: Some(team_name.to_string()),
            ..self
        }
    }
}

/// A redemption code as administrators see it: never the code itself.
#[derive(Serialize, utoipa::ToSchema, Debug, Clone)]
pub struct CodeView {
    pub id: i64,
    /// The code's first characters.
    pub prefix: String,
    pub name: String,
    pub amount: i64,
    pub usd: f64,
    pub uses: i64,
    pub uses_left: i64,
    pub state: crate::service::codes::CodeState,
    pub expires_at: Option<String>,
    pub last_redeemed_by: Option<String>,
    pub last_redeemed_at: Option<String>,
    pub created_by: String,
    pub created_at: String,
}

impl CodeView {
    pub fn new(
        c: &crate::service::db::codes::CodeRow,
        quota_per_usd: i64,
        now_ms: i64,
    ) -> CodeView {
        CodeView {
            id: c.id,
            prefix: format!("{}…", c.prefix),
            name: c.name.clone(),
            amount: c.amount,
            usd: usd(c.amount, quota_per_usd),
            uses: c.uses,
            uses_left: c.uses_left,
            state: crate::service::codes::CodeState::of(c, now_ms),
            expires_at: c.expires_at.map(timestamp),
            last_redeemed_by: c.last_redeemed_by.clone(),
            last_redeemed_at: c.last_redeemed_at.map(timestamp),
            created_by: c.created_by.clone(),
            created_at: timestamp(c.created_at),
        }
    }
}

/// One redemption of a code: who redeemed it, what it added and when.
#[derive(Serialize, Debug, Clone, utoipa::ToSchema)]
pub struct RedemptionView {
    pub user_id: i64,
    /// `None` once the account is gone.
    pub user: Option<String>,
    pub amount: i64,
    pub usd: f64,
    pub at: String,
}

impl RedemptionView {
    pub fn new(r: &crate::service::db::codes::RedemptionRow, quota_per_usd: i64) -> Self {
        RedemptionView {
            user_id: r.user_id,
            user: r.username.clone(),
            amount: r.amount,
            usd: usd(r.amount, quota_per_usd),
            at: timestamp(r.created_at),
        }
    }
}

/// A top-up order as its owner and administrators see it.
#[derive(Serialize, utoipa::ToSchema, Debug, Clone)]
pub struct OrderView {
    pub id: i64,
    pub user: String,
    pub status: crate::domain::kinds::OrderStatus,
    /// The dollars of balance asked for.
    pub usd: String,
    /// Quota units the payment credits (bonus included), and the bonus.
    pub quota: i64,
    pub bonus: i64,
    /// The price, in the currency's smallest unit, and as people read it.
    pub amount: i64,
    pub currency: String,
    pub price: String,
    pub session_id: Option<String>,
    pub payment_intent: Option<String>,
    pub credited: i64,
    pub credited_usd: f64,
    pub refunded: i64,
    pub disputed: i64,
    pub refund_taken: i64,
    pub dispute_taken: i64,
    pub note: String,
    pub expires_at: Option<String>,
    pub created_at: String,
    pub paid_at: Option<String>,
}

impl OrderView {
    pub fn new(o: &crate::service::db::orders::OrderRow, quota_per_usd: i64) -> OrderView {
        OrderView {
            id: o.id,
            user: o.username.clone(),
            status: o.status,
            usd: crate::domain::money::MicroUsd(o.usd_micros).to_string(),
            quota: o.quota,
            bonus: o.bonus,
            amount: o.amount,
            currency: o.currency.clone(),
            price: crate::domain::topup::display_amount(&o.currency, o.amount),
            session_id: o.session_id.clone(),
            payment_intent: o.payment_intent.clone(),
            credited: o.credited,
            credited_usd: usd(o.credited, quota_per_usd),
            refunded: o.refunded,
            disputed: o.disputed,
            refund_taken: o.refund_taken,
            dispute_taken: o.dispute_taken,
            note: o.note.clone(),
            expires_at: o.expires_at.map(timestamp),
            created_at: timestamp(o.created_at),
            paid_at: o.paid_at.map(timestamp),
        }
    }
}

/// A Stripe event applied to an order.
#[derive(Serialize, utoipa::ToSchema, Debug, Clone)]
pub struct EventView {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub outcome: String,
    pub received_at: String,
}

impl EventView {
    pub fn new(e: &crate::service::db::orders::EventRow) -> EventView {
        EventView {
            id: e.id.clone(),
            kind: e.kind.clone(),
            outcome: e.outcome.clone(),
            received_at: timestamp(e.created_at),
        }
    }
}

/// A sign-in provider as administrators see it: the client secret only masked.
#[derive(Serialize, utoipa::ToSchema, Debug, Clone)]
pub struct OAuthProviderView {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: OAuthKind,
    pub display_name: String,
    pub client_id: String,
    pub client_secret: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub issuer: String,
    pub auth_url: String,
    pub token_url: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub userinfo_url: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub jwks_url: String,
    /// Where the provider sends people back: register it there.
    pub callback_url: String,
    pub created_at: String,
}

impl OAuthProviderView {
    pub fn new(p: &ProviderRow, base_url: &str) -> OAuthProviderView {
        OAuthProviderView {
            name: p.name.clone(),
            kind: p.kind,
            display_name: p.display_name.clone(),
            client_id: p.client_id.clone(),
            client_secret: crate::options::masked(&p.client_secret),
            issuer: p.issuer.clone(),
            auth_url: p.auth_url.clone(),
            token_url: p.token_url.clone(),
            userinfo_url: p.userinfo_url.clone(),
            jwks_url: p.jwks_url.clone(),
            callback_url: format!(
                "{}/oauth/{}/callback",
                base_url.trim_end_matches('/'),
                p.name
            ),
            created_at: timestamp(p.created_at),
        }
    }
}

/// A newly created key: the only time the full key is shown.
#[derive(Serialize, utoipa::ToSchema, Debug, Clone)]
pub struct NewTokenView {
    pub key: String,
    #[serde(flatten)]
    pub token: TokenView,
}

#[derive(Serialize, utoipa::ToSchema, Debug, Clone)]
pub struct ChannelView {
    pub id: i64,
    pub name: String,
    #[serde(rename = "type")]
    pub channel_type: ChannelType,
    pub base_url: String,
    /// Masked: `sk-****abcd`.
    pub keys: Vec<String>,
    /// Keys taken out of rotation after the upstream refused them (masked like `keys`); a
    /// background probe puts each back once it passes.
    pub disabled_keys: Vec<DisabledKeyView>,
    pub models: Vec<String>,
    pub model_mapping: BTreeMap<String, String>,
    pub groups: Vec<String>,
    pub priority: i64,
    pub weight: i64,
    pub status: ChannelStatus,
    pub status_reason: String,
    pub status_changed_at: String,
    pub timeout_secs: i64,
    /// Header names only; values may hold secrets.
    pub extra_headers: Vec<String>,
    pub used_quota: i64,
    pub used_usd: f64,
    pub request_count: i64,
    pub created_at: String,
    /// The last `channel test`: null when never tested.
    pub last_test: Option<ChannelTestView>,
}

#[derive(Serialize, utoipa::ToSchema, Debug, Clone, PartialEq, Eq)]
pub struct DisabledKeyView {
    /// Where the key is in `keys` (masked keys may look alike).
    pub index: usize,
    pub key: String,
    pub reason: String,
    pub at: String,
}

#[derive(Serialize, utoipa::ToSchema, Debug, Clone, PartialEq, Eq)]
pub struct ChannelTestView {
    pub at: String,
    pub latency_ms: i64,
    /// `ok`, or what went wrong.
    pub result: String,
}

impl ChannelView {
    pub fn new(c: &ChannelRow, quota_per_usd: i64) -> ChannelView {
        ChannelView {
            id: c.id,
            name: c.name.clone(),
            channel_type: c.channel_type,
            base_url: c.base_url.clone(),
            keys: c.secret_keys.iter().map(|k| mask_upstream_key(k)).collect(),
            disabled_keys: c
                .secret_keys
                .iter()
                .enumerate()
                .filter_map(|(index, key)| {
                    let fingerprint = upstream_key_fingerprint(key);
                    let disabled = c
                        .disabled_keys
                        .iter()
                        .find(|d| d.fingerprint == fingerprint)?;
                    Some(DisabledKeyView {
                        index,
                        key: mask_upstream_key(key),
                        reason: disabled.reason.clone(),
                        at: timestamp(disabled.at),
                    })
                })
                .collect(),
            models: c.models.clone(),
            model_mapping: c.model_mapping.clone(),
            groups: c.groups.clone(),
            priority: c.priority,
            weight: c.weight,
            status: c.status,
            status_reason: c.status_reason.clone(),
            status_changed_at: timestamp(c.status_changed_at),
            timeout_secs: c.timeout_secs,
            extra_headers: c.extra_headers.keys().cloned().collect(),
            used_quota: c.used_quota,
            used_usd: usd(c.used_quota, quota_per_usd),
            request_count: c.request_count,
            created_at: timestamp(c.created_at),
            last_test: (c.tested_at > 0).then(|| ChannelTestView {
                at: timestamp(c.tested_at),
                latency_ms: c.test_latency_ms,
                result: c.test_result.clone(),
            }),
        }
    }
}

#[derive(Serialize, utoipa::ToSchema, Debug, Clone)]
pub struct GroupView {
    pub name: String,
    /// Price multiplier, e.g. 1.5.
    pub ratio: f64,
    pub description: String,
    pub user_selectable: bool,
    /// Rate limits of each key of the group that sets none of its own (null: none).
    pub rate_limits: RateLimitsView,
}

impl GroupView {
    pub fn new(g: &GroupRow) -> GroupView {
        GroupView {
            name: g.name.clone(),
            ratio: g.ratio.ppm() as f64 / 1_000_000.0,
            description: g.description.clone(),
            user_selectable: g.user_selectable,
            rate_limits: g.rate_limits.into(),
        }
    }
}

#[derive(Serialize, utoipa::ToSchema, Debug, Clone)]
pub struct PriceView {
    pub model: String,
    /// `per_token` (dollars per 1M tokens) or `per_request`.
    pub mode: &'static str,
    pub input_usd_per_mtok: Option<f64>,
    pub output_usd_per_mtok: Option<f64>,
    pub cached_input_usd_per_mtok: Option<f64>,
    pub cache_write_usd_per_mtok: Option<f64>,
    pub per_request_usd: Option<f64>,
    /// The context window the admin set (null: the shipped table's, else the option
    /// `default_context_tokens`).
    pub context_tokens: Option<i64>,
    pub updated_at: String,
}

impl PriceView {
    pub fn new(p: &PriceRow) -> PriceView {
        let (mode, input, output, cached, cache_write, per_request) = match p.price {
            ModelPrice::PerToken {
                input,
                output,
                cached_input,
                cache_write,
            } => (
                "per_token",
                Some(micro_usd(input)),
                Some(micro_usd(output)),
                cached_input.map(micro_usd),
                cache_write.map(micro_usd),
                None,
            ),
            ModelPrice::PerRequest(price) => (
                "per_request",
                None,
                None,
                None,
                None,
                Some(micro_usd(price)),
            ),
        };
        PriceView {
            model: p.model.clone(),
            mode,
            input_usd_per_mtok: input,
            output_usd_per_mtok: output,
            cached_input_usd_per_mtok: cached,
            cache_write_usd_per_mtok: cache_write,
            per_request_usd: per_request,
            context_tokens: p.context_tokens,
            updated_at: timestamp(p.updated_at),
        }
    }

    /// `$0.15 in / $0.6 out per 1M tokens` or `$0.01 per request`.
    pub fn describe(price: &ModelPrice) -> String {
        match price {
            ModelPrice::PerToken {
                input,
                output,
                cached_input,
                cache_write,
            } => {
                let cached = cached_input
                    .map(|c| format!(", ${c} cached input"))
                    .unwrap_or_default();
                let write = cache_write
                    .map(|c| format!(", ${c} cache write"))
                    .unwrap_or_default();
                format!("${input} input / ${output} output per 1M tokens{cached}{write}")
            }
            ModelPrice::PerRequest(price) => format!("${price} per request"),
        }
    }
}

#[derive(Serialize, utoipa::ToSchema, Debug, Clone)]
pub struct LogView {
    pub id: i64,
    pub time: String,
    pub request_id: String,
    pub user: String,
    pub token_name: String,
    pub group: String,
    pub endpoint: String,
    pub model: String,
    /// The client's own name when an alias or a dated name resolved it to `model`.
    pub requested_model: Option<String>,
    pub upstream_model: String,
    /// The upstream's own id for the request.
    pub upstream_request_id: Option<String>,
    pub channel_id: Option<i64>,
    pub channel: String,
    pub attempts: i64,
    /// The attempts before the last, oldest first (empty when the first was the only one).
    pub failed_attempts: Vec<FailedAttempt>,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cached_tokens: i64,
    pub cache_write_tokens: i64,
    pub usage_estimated: bool,
    /// What the upstream reported beyond the request's bounds, when it did (billed at the
    /// bound).
    pub implausible_usage: Option<String>,
    /// Cost in quota units.
    pub cost: i64,
    pub cost_usd: f64,
    pub latency_ms: i64,
    pub ttft_ms: Option<i64>,
    pub stream: bool,
    pub outcome: Outcome,
    pub status_code: i64,
    pub error: String,
    pub client_ip: String,
}

impl LogView {
    pub fn new(l: &RequestLog, quota_per_usd: i64) -> LogView {
        LogView {
            id: l.id,
            time: timestamp(l.created_at),
            request_id: l.request_id.clone(),
            user: l.username.clone(),
            token_name: l.token_name.clone(),
            group: l.group.clone(),
            endpoint: l.endpoint.clone(),
            model: l.model.clone(),
            requested_model: non_empty(&l.requested_model),
            upstream_model: l.upstream_model.clone(),
            upstream_request_id: non_empty(&l.upstream_request_id),
            channel_id: l.channel_id,
            channel: l.channel_name.clone(),
            attempts: l.attempts,
            failed_attempts: l.failed_attempts.clone(),
            prompt_tokens: l.prompt_tokens,
            completion_tokens: l.completion_tokens,
            cached_tokens: l.cached_tokens,
            cache_write_tokens: l.cache_write_tokens,
            usage_estimated: l.usage_estimated,
            implausible_usage: non_empty(&l.implausible_usage),
            cost: l.cost,
            cost_usd: usd(l.cost, quota_per_usd),
            latency_ms: l.latency_ms,
            ttft_ms: l.ttft_ms,
            stream: l.is_stream,
            outcome: l.outcome,
            status_code: l.status_code,
            error: l.error_message.clone(),
            client_ip: l.client_ip.clone(),
        }
    }
}

#[derive(Serialize, utoipa::ToSchema, Debug, Clone)]
pub struct AliasView {
    pub name: String,
    /// The model the alias stands for.
    pub to: String,
    pub created_at: String,
}

impl AliasView {
    pub fn new(alias: &AliasRow) -> AliasView {
        AliasView {
            name: alias.name.clone(),
            to: alias.target.clone(),
            created_at: timestamp(alias.created_at),
        }
    }
}

fn non_empty(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_string())
}

#[derive(Serialize, utoipa::ToSchema, Debug, Clone)]
pub struct AdminTokenView {
    pub id: i64,
    pub user: String,
    pub name: String,
    pub token_display: String,
    pub last_used_at: Option<String>,
    pub created_at: String,
}

impl AdminTokenView {
    pub fn new(a: &AdminTokenRow) -> AdminTokenView {
        AdminTokenView {
            id: a.id,
            user: a.username.clone(),
            name: a.name.clone(),
            token_display: a.token_display.clone(),
            last_used_at: a.last_used_at.map(timestamp),
            created_at: timestamp(a.created_at),
        }
    }
}

/// One batch of redemption codes (those made under one name) and where its codes stand.
#[derive(Serialize, utoipa::ToSchema, Debug, Clone, Default, PartialEq)]
pub struct CodeBatchView {
    pub name: String,
    pub codes: i64,
    pub unused: i64,
    pub partly_used: i64,
    pub used: i64,
    pub disabled: i64,
    pub expired: i64,
    /// What one use of its newest code credits.
    pub usd: f64,
    /// When its newest code was made.
    pub created_at: String,
}

impl CodeBatchView {
    /// The batches of `codes` (newest first, as listed), newest batch first.
    pub fn batches(codes: &[CodeView]) -> Vec<CodeBatchView> {
        use crate::service::codes::CodeState;
        let mut batches: Vec<CodeBatchView> = Vec::new();
        for code in codes {
            let at = match batches.iter().position(|b| b.name == code.name) {
                Some(at) => at,
                None => {
                    batches.push(CodeBatchView {
                        name: code.name.clone(),
                        usd: code.usd,
                        created_at: code.created_at.clone(),
                        ..CodeBatchView::default()
                    });
                    batches.len() - 1
                }
            };
            let batch = &mut batches[at];
            batch.codes += 1;
            match code.state {
                CodeState::Unused => batch.unused += 1,
                CodeState::PartlyUsed => batch.partly_used += 1,
                CodeState::Used => batch.used += 1,
                CodeState::Disabled => batch.disabled += 1,
                CodeState::Expired => batch.expired += 1,
            }
        }
        batches
    }
}

/// A balance ledger row: what changed a balance besides relay spend.
#[derive(Serialize, utoipa::ToSchema, Debug, Clone)]
pub struct LedgerEntryView {
    pub id: i64,
    pub kind: crate::domain::kinds::LedgerKind,
    pub amount: i64,
    pub usd: f64,
    pub actor: String,
    pub reference: String,
    pub reason: String,
    pub created_at: String,
}

impl LedgerEntryView {
    pub fn new(e: &crate::records::ledger::Entry, quota_per_usd: i64) -> LedgerEntryView {
        LedgerEntryView {
            id: e.id,
            kind: e.kind,
            amount: e.amount,
            usd: usd(e.amount, quota_per_usd),
            actor: e.actor.clone(),
            reference: e.reference.clone(),
            reason: e.reason.clone(),
            created_at: timestamp(e.created_at),
        }
    }
}

/// A sign-in session of an account, as administrators and `/api` see it (never its cookie).
#[derive(Serialize, utoipa::ToSchema, Debug, Clone)]
pub struct SessionView {
    /// The row's id (a digest of the cookie's), to end it by.
    pub id: String,
    pub ip: String,
    pub user_agent: String,
    pub created_at: String,
    pub last_seen_at: String,
}

impl SessionView {
    pub fn new(s: &crate::service::sessions::SessionView) -> SessionView {
        SessionView {
            id: s.id.clone(),
            ip: s.ip.clone(),
            user_agent: s.user_agent.clone(),
            created_at: timestamp(s.created_at),
            last_seen_at: timestamp(s.last_seen_at),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::codes::CodeState;

    fn code(id: i64, name: &str, state: CodeState) -> CodeView {
        CodeView {
            id,
            prefix: "tgc-abcdef…".into(),
            name: name.into(),
            amount: 500_000,
            usd: 1.0,
            uses: 1,
            uses_left: 1,
            state,
            expires_at: None,
            last_redeemed_by: None,
            last_redeemed_at: None,
            created_by: "cli".into(),
            created_at: format!("2026-12-0{id}T00:00:00Z"),
        }
    }

    #[test]
    fn batches_count_their_codes_by_state_newest_batch_first() {
        let codes = [
            code(4, "fair", CodeState::Used),
            code(3, "spring", CodeState::Disabled),
            code(2, "fair", CodeState::Unused),
            code(1, "spring", CodeState::Expired),
        ];
        let batches = CodeBatchView::batches(&codes);
        assert_eq!(batches.len(), 2);
        assert_eq!(batches[0].name, "fair");
        assert_eq!(
            (batches[0].codes, batches[0].used, batches[0].unused),
            (2, 1, 1)
        );
        assert_eq!(batches[0].created_at, "2026-12-04T00:00:00Z");
        assert_eq!(batches[1].name, "spring");
        assert_eq!(
            (batches[1].disabled, batches[1].expired, batches[1].unused),
            (1, 1, 0)
        );
    }
}
/// A price's figures without its record: dollars per 1M tokens, or per request.
#[derive(Serialize, utoipa::ToSchema, Debug, Clone, PartialEq)]
pub struct PriceFigures {
    /// `per_token` or `per_request`.
    pub mode: &'static str,
    pub input_usd_per_mtok: Option<f64>,
    pub output_usd_per_mtok: Option<f64>,
    pub cached_input_usd_per_mtok: Option<f64>,
    pub cache_write_usd_per_mtok: Option<f64>,
    pub per_request_usd: Option<f64>,
    pub context_tokens: Option<i64>,
}

impl PriceFigures {
    pub fn new(price: &ModelPrice, context_tokens: Option<i64>) -> PriceFigures {
        let row = PriceRow {
            model: String::new(),
            price: *price,
            context_tokens,
            updated_at: 0,
        };
        let view = PriceView::new(&row);
        PriceFigures {
            mode: view.mode,
            input_usd_per_mtok: view.input_usd_per_mtok,
            output_usd_per_mtok: view.output_usd_per_mtok,
            cached_input_usd_per_mtok: view.cached_input_usd_per_mtok,
            cache_write_usd_per_mtok: view.cache_write_usd_per_mtok,
            per_request_usd: view.per_request_usd,
            context_tokens,
        }
    }
}

/// One model of a price import: `new`, `changed` or `unchanged`, its price now and the
/// table's.
#[derive(Serialize, utoipa::ToSchema, Debug, Clone)]
pub struct ImportedPriceView {
    pub model: String,
    pub change: &'static str,
    pub before: Option<PriceFigures>,
    pub after: PriceFigures,
}

/// An entry of the table left out: `reason` is `mode`, `no_price`, `bad_number`,
/// `not_an_entry` or `bad_name`, and `detail` what it is about (the mode, the number).
#[derive(Serialize, utoipa::ToSchema, Debug, Clone)]
pub struct SkippedPriceView {
    pub model: String,
    pub reason: &'static str,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// What a price import did or, as a dry run, would do.
#[derive(Serialize, utoipa::ToSchema, Debug, Clone)]
pub struct PriceImportView {
    pub format: &'static str,
    pub dry_run: bool,
    /// How many prices are (or would be) new or changed.
    pub changes: usize,
    pub models: Vec<ImportedPriceView>,
    pub skipped: Vec<SkippedPriceView>,
}

impl PriceImportView {
    pub fn new(import: &crate::service::prices::PriceImport) -> PriceImportView {
        let models: Vec<ImportedPriceView> = import
            .models
            .iter()
            .map(|m| ImportedPriceView {
                model: m.model.clone(),
                change: m.change().as_str(),
                before: m
                    .before
                    .as_ref()
                    .map(|b| PriceFigures::new(&b.price, b.context_tokens)),
                after: PriceFigures::new(&m.price, m.context_tokens),
            })
            .collect();
        PriceImportView {
            format: import.format.as_str(),
            dry_run: !import.applied,
            changes: models.iter().filter(|m| m.change != "unchanged").count(),
            models,
            skipped: import
                .skipped
                .iter()
                .map(|(model, reason)| {
                    let (code, detail) = reason.code();
                    SkippedPriceView {
                        model: model.clone(),
                        reason: code,
                        detail: detail.to_string(),
                    }
                })
                .collect(),
        }
    }
}
