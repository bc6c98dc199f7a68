//! Request logs and the billing batches that write them.

use crate::domain::kinds::Outcome;

/// One row per relayed request.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RequestLog {
    /// Assigned by the database; ignored on insert.
    pub id: i64,
    pub created_at: i64,
    pub request_id: String,
    pub user_id: i64,
    pub username: String,
    pub token_id: i64,
    pub token_name: String,
    pub group: String,
    /// `chat.completions`, `completions`, `embeddings`.
    pub endpoint: String,
    /// The model routed and priced: the client's name, or what an alias or a dated name
    /// resolved to.
    pub model: String,
    /// The client's own name for the model when it resolved to another (empty otherwise).
    pub requested_model: String,
    /// The name sent upstream (after the channel's model map).
    pub upstream_model: String,
    pub channel_id: Option<i64>,
    pub channel_name: String,
    pub attempts: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cached_tokens: i64,
    pub cache_write_tokens: i64,
    /// True when the upstream reported no usage and the tokens were counted locally.
    pub usage_estimated: bool,
    pub cost: i64,
    pub latency_ms: i64,
    pub ttft_ms: Option<i64>,
    pub is_stream: bool,
    pub outcome: Outcome,
    pub status_code: i64,
    pub error_message: String,
    pub client_ip: String,
    /// The upstream's own id for the request (its `request-id` or `x-request-id` header).
    pub upstream_request_id: String,
    /// Empty unless the upstream reported usage beyond the request's bounds: then the figures
    /// it reported, which were billed at the bound instead.
    pub implausible_usage: String,
    /// The attempts before the last, oldest first, when a failure moved the request on to
    /// another channel or key; the row's own channel, status and error are the last attempt's.
    /// Empty for nearly every request, so it costs nothing on the relay's path.
    #[serde(default)]
    pub failed_attempts: Vec<FailedAttempt>,
    /// The organisation and team a team key's request was billed to (0: a personal key).
    #[serde(default)]
    pub org_id: i64,
    #[serde(default)]
    pub team_id: i64,
}

/// An attempt on a channel that failed and was followed by another.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct FailedAttempt {
    pub channel_id: i64,
    pub channel: String,
    /// The upstream's status, or the one its failure maps to (502 unreachable, 504 no answer
    /// in time, 429 every key resting).
    pub status: u16,
    /// From the attempt's start to its failure.
    pub latency_ms: i64,
    pub error: String,
}

/// How many characters each text column holds; text is cut to fit before a row is queued.
/// `error_message` is TEXT, whose MySQL limit is 65,535 bytes: a few thousand characters of
/// an upstream's error are plenty.
const TEXT_LIMITS: TextLimits = TextLimits {
    request_id: 64,
    name: 32,
    label: 64,
    model: 128,
    error_message: 2000,
    client_ip: 64,
    upstream_request_id: 128,
    implausible_usage: 255,
    attempt_error: 200,
};

struct TextLimits {
    request_id: usize,
    /// Usernames, group names, endpoints.
    name: usize,
    /// Key and channel names.
    label: usize,
    model: usize,
    error_message: usize,
    client_ip: usize,
    upstream_request_id: usize,
    implausible_usage: usize,
    /// Each earlier attempt's error: with at most 21 attempts (`retry_count` ≤ 20) the JSON
    /// list stays well inside MySQL's TEXT.
    attempt_error: usize,
}

/// Makes `text` storable on every backend: NUL (which PostgreSQL refuses in text) becomes
/// U+FFFD, and the text is cut to `max_chars` characters (VARCHAR limits count characters on
/// PostgreSQL and MySQL), with an ellipsis where it was cut.
pub fn fit_text(text: &mut String, max_chars: usize) {
    // Byte length bounds the character count, so short clean text (nearly all of it) is
    // left alone without counting.
    let has_nul = memchr::memchr(0, text.as_bytes()).is_some();
    if text.len() <= max_chars && !has_nul {
        return;
    }
    if has_nul {
        *text = text.replace('\0', "\u{fffd}");
    }
    if let Some((cut, _)) = text.char_indices().nth(max_chars) {
        let keep = text[..cut]
            .char_indices()
            .nth(max_chars.saturating_sub(1))
            .map_or(cut, |(at, _)| at);
        text.truncate(keep);
        text.push('…');
    }
}

impl RequestLog {
    /// Fits every text field to its column, so no value a client or an upstream sent can make
    /// the database refuse the row.
    pub fn make_storable(&mut self) {
        let limits = &TEXT_LIMITS;
        fit_text(&mut self.request_id, limits.request_id);
        fit_text(&mut self.username, limits.name);
        fit_text(&mut self.token_name, limits.label);
        fit_text(&mut self.group, limits.name);
        fit_text(&mut self.endpoint, limits.name);
        fit_text(&mut self.model, limits.model);
        fit_text(&mut self.requested_model, limits.model);
        fit_text(&mut self.upstream_model, limits.model);
        fit_text(&mut self.channel_name, limits.label);
        fit_text(&mut self.error_message, limits.error_message);
        fit_text(&mut self.client_ip, limits.client_ip);
        fit_text(&mut self.upstream_request_id, limits.upstream_request_id);
        fit_text(&mut self.implausible_usage, limits.implausible_usage);
        for attempt in &mut self.failed_attempts {
            fit_text(&mut attempt.channel, limits.label);
            fit_text(&mut attempt.error, limits.attempt_error);
        }
    }

    /// Replaces every free-text field with plain ASCII saying why: for a row the database
    /// refused although it fitted its columns. The ids, figures and money stay.
    pub fn replace_text(&mut self, reason: &str) {
        let reason: String = reason
            .chars()
            .map(|c| if c.is_ascii_graphic() { c } else { ' ' })
            .take(300)
            .collect();
        for text in [
            &mut self.username,
            &mut self.token_name,
            &mut self.group,
            &mut self.model,
            &mut self.requested_model,
            &mut self.upstream_model,
            &mut self.channel_name,
            &mut self.client_ip,
            &mut self.upstream_request_id,
            &mut self.implausible_usage,
        ] {
            text.clear();
        }
        self.failed_attempts.clear();
        self.error_message =
            format!("The database refused this row's text, which was replaced: {reason}");
    }
}

/// A change to one balance row, summed over a batch of requests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BalanceDelta {
    pub id: i64,
    /// Added to the remaining balance (negative when spending).
    pub quota: i64,
    pub used: i64,
    pub requests: i64,
    /// Latest use, for keys.
    pub last_used_at: i64,
}

/// What a batch spent on one budget in one period: added to its `budget_spend` row while
/// the budget is still set to `period`. Spending held before the period was changed (a
/// request in flight, a batch not yet written) counts in neither the old period, which was
/// forgotten, nor the new one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct SpendDelta {
    /// `key`, `member`, `team` or `org`.
    pub kind: &'static str,
    pub scope_id: i64,
    pub window_start: i64,
    /// The period the spending was held in, as the budget's owner stores it.
    pub period: &'static str,
    pub spent: i64,
}

/// Everything a billing flush writes, applied in one transaction so balances and logs never
/// disagree.
#[derive(Debug, Default)]
pub struct BillingBatch<'a> {
    pub users: Vec<BalanceDelta>,
    pub tokens: Vec<BalanceDelta>,
    pub channels: Vec<BalanceDelta>,
    /// Organisations' wallets, which their team keys spend.
    pub orgs: Vec<BalanceDelta>,
    /// Budgets' spending per period, in key order (so two writers lock rows in one order).
    pub spend: Vec<SpendDelta>,
    pub logs: Vec<&'a RequestLog>,
}

impl BillingBatch<'_> {
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
            && self.tokens.is_empty()
            && self.channels.is_empty()
            && self.logs.is_empty()
    }
}

/// What replaying one set-aside billing record did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Replayed {
    Applied,
    /// Its request is logged already, or it was replayed before: nothing was written.
    AlreadyApplied,
}

/// Totals over the rows a filter matches (its limit and paging are ignored).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogTotals {
    pub requests: i64,
    pub cost: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
}
