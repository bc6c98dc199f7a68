//! Typed runtime options: settings an admin changes while the server runs. They live in the
//! `options` table, are declared once in the table below (name, type, default, meaning), and
//! reach the relay through the in-memory snapshot.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::i18n::Message;
use crate::msg;

/// A set of HTTP status codes written like `429,500-599`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusSet(Vec<(u16, u16)>);

impl StatusSet {
    pub fn parse(text: &str) -> Result<StatusSet, Message> {
        let mut ranges = Vec::new();
        for part in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (low, high) = match part.split_once('-') {
                Some((a, b)) => (a.trim(), b.trim()),
                None => (part, part),
            };
            let parse = |s: &str| -> Result<u16, Message> {
                s.parse::<u16>()
                    .ok()
                    .filter(|c| (100..=599).contains(c))
                    .ok_or_else(|| msg!("option-not-a-status", value = s))
            };
            let (low, high) = (parse(low)?, parse(high)?);
            if low > high {
                return Err(msg!("option-range-backwards", value = part));
            }
            ranges.push((low, high));
        }
        Ok(StatusSet(ranges))
    }

    pub fn contains(&self, status: u16) -> bool {
        self.0
            .iter()
            .any(|&(low, high)| (low..=high).contains(&status))
    }
}

impl fmt::Display for StatusSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|&(l, h)| {
                if l == h {
                    l.to_string()
                } else {
                    format!("{l}-{h}")
                }
            })
            .collect();
        f.write_str(&parts.join(","))
    }
}

trait OptionValue: Sized {
    fn parse_option(text: &str) -> Result<Self, Message>;
    fn render(&self) -> String;
}

impl OptionValue for u64 {
    fn parse_option(text: &str) -> Result<Self, Message> {
        text.trim()
            .parse()
            .map_err(|_| msg!("option-not-a-number", value = text))
    }
    fn render(&self) -> String {
        self.to_string()
    }
}

impl OptionValue for bool {
    fn parse_option(text: &str) -> Result<Self, Message> {
        match text.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            _ => Err(msg!("option-not-a-bool", value = text)),
        }
    }
    fn render(&self) -> String {
        self.to_string()
    }
}

impl OptionValue for String {
    fn parse_option(text: &str) -> Result<Self, Message> {
        Ok(text.trim().to_string())
    }
    fn render(&self) -> String {
        self.clone()
    }
}

impl OptionValue for StatusSet {
    fn parse_option(text: &str) -> Result<Self, Message> {
        StatusSet::parse(text)
    }
    fn render(&self) -> String {
        self.to_string()
    }
}

/// Whether only root may change the option: it holds a secret (SMTP password, Stripe keys) or
/// decides where one is sent — the mail server, Stripe's address, and the site's address,
/// which password-reset and verification links are built on. An administrator who could set
/// them could have the next secret, or a reset link, delivered to a host of their own.
pub fn is_root_only(name: &str) -> bool {
    name.starts_with("smtp_")
        || name.starts_with("stripe_")
        || matches!(
            name,
            "public_url" | "metrics_token" | "audit_retention_days" | "log_retention_days"
        )
}

/// One declared option, for listings and validation messages.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct OptionInfo {
    pub name: &'static str,
    pub value: String,
    pub default: &'static str,
    pub description: &'static str,
}

macro_rules! runtime_options {
    ($( $(#[doc = $doc:literal])+ $name:ident : $ty:ty = $default:literal, check $check:expr; )+) => {
        /// The current value of every runtime option.
        #[derive(Clone, Debug, PartialEq)]
        pub struct RuntimeOptions { $( $(#[doc = $doc])+ pub $name: $ty, )+ }

        impl Default for RuntimeOptions {
            fn default() -> Self {
                RuntimeOptions { $( $name: <$ty>::parse_option($default).expect("valid default"), )+ }
            }
        }

        impl RuntimeOptions {
            /// Applies stored values over the defaults. Unknown names and values that no longer
            /// parse are reported (for the log) and skipped, so one bad row never stops the relay.
            pub fn from_stored(stored: &[(String, String)]) -> (RuntimeOptions, Vec<String>) {
                let mut options = RuntimeOptions::default();
                let mut problems = Vec::new();
                for (name, value) in stored {
                    if let Err(e) = options.set(name, value) {
                        problems.push(format!("option {name}: {e}"));
                    }
                }
                (options, problems)
            }

            /// Validates and sets one option by name.
            pub fn set(&mut self, name: &str, value: &str) -> Result<(), Message> {
                match name {
                    $( stringify!($name) => {
                        let parsed = <$ty>::parse_option(value)?;
                        let check: fn(&$ty) -> Result<(), Message> = $check;
                        check(&parsed)?;
                        self.$name = parsed;
                        Ok(())
                    } )+
                    _ => Err(msg!("option-unknown", name = name, known = Self::names().join(", "))),
                }
            }

            pub fn names() -> Vec<&'static str> {
                vec![$( stringify!($name) ),+]
            }

            /// Every option with its value, write-only ones masked.
            pub fn describe(&self) -> Vec<OptionInfo> {
                vec![$( OptionInfo {
                    name: stringify!($name),
                    value: if WRITE_ONLY.contains(&stringify!($name)) {
                        masked(&self.$name.render())
                    } else {
                        self.$name.render()
                    },
                    default: $default,
                    description: concat!($($doc),+).trim(),
                } ),+]
            }

            /// One option's value as stored (write-only ones too: this never leaves the server).
            pub fn stored_value(&self, name: &str) -> Option<String> {
                match name {
                    $( stringify!($name) => Some(self.$name.render()), )+
                    _ => None,
                }
            }

            pub fn as_map(&self) -> BTreeMap<&'static str, String> {
                self.describe().into_iter().map(|o| (o.name, o.value)).collect()
            }
        }
    };
}

fn positive(v: &u64) -> Result<(), Message> {
    if *v == 0 {
        Err(msg!("number-at-least", min = 1_i64))
    } else {
        Ok(())
    }
}

fn any<T>(_: &T) -> Result<(), Message> {
    Ok(())
}

fn at_most_chars(max: usize) -> impl Fn(&String) -> Result<(), Message> {
    move |text| {
        if text.chars().count() > max {
            Err(msg!("name-too-long", max = max))
        } else {
            Ok(())
        }
    }
}

fn site_name(name: &String) -> Result<(), Message> {
    if name.is_empty() {
        return Err(msg!("field-required"));
    }
    at_most_chars(64)(name)
}

/// Empty, or an absolute http(s) URL without a query: the base of links people are sent.
fn public_url(url: &String) -> Result<(), Message> {
    if url.is_empty() {
        return Ok(());
    }
    let parsed = url.parse::<http::Uri>().ok().filter(|uri| {
        matches!(uri.scheme_str(), Some("http" | "https"))
            && uri.host().is_some()
            && uri.query().is_none()
    });
    match parsed {
        Some(_) => Ok(()),
        None => Err(msg!("option-not-a-url", value = url)),
    }
}

/// A comma-separated list of domain names.
fn domain_list(text: &str) -> Result<(), Message> {
    for domain in text.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        host_name(&domain.to_string())?;
    }
    Ok(())
}

/// Empty, or a host name or address without a scheme or port.
fn host_name(host: &String) -> Result<(), Message> {
    let fine = host.is_empty()
        || (host.len() <= 253
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
            && !host.contains("://"));
    if fine {
        Ok(())
    } else {
        Err(msg!("option-not-a-host", value = host))
    }
}

/// Empty, or an address with an optional name: `a@b.example` or `Name <a@b.example>`.
fn sender(text: &String) -> Result<(), Message> {
    if text.is_empty() {
        return Ok(());
    }
    let address = match (text.rfind('<'), text.ends_with('>')) {
        (Some(open), true) => &text[open + 1..text.len() - 1],
        _ => text.as_str(),
    };
    match address.split_once('@') {
        Some((local, domain)) if !local.is_empty() && domain.contains('.') => Ok(()),
        _ => Err(msg!("option-not-a-sender", value = text)),
    }
}

/// Empty, or a key as services issue them: printable ASCII without spaces, at most 255.
fn api_secret(text: &String) -> Result<(), Message> {
    if text.chars().all(|c| c.is_ascii_graphic()) {
        at_most_chars(255)(text)
    } else {
        Err(msg!("option-not-a-secret"))
    }
}

/// An absolute http(s) URL (the base of an API).
fn api_base(url: &String) -> Result<(), Message> {
    if url.is_empty() {
        return Err(msg!("field-required"));
    }
    public_url(url)
}

fn positive_dollars(text: &String) -> Result<(), Message> {
    match crate::domain::money::MicroUsd::parse(text) {
        Ok(usd) if usd.0 > 0 => Ok(()),
        Ok(_) => Err(msg!("amount-positive")),
        Err(_) => Err(msg!("decimal-not-a-number", value = text)),
    }
}

fn dollars(text: &String) -> Result<(), Message> {
    crate::domain::money::MicroUsd::parse(text)
        .map(|_| ())
        .map_err(|_| msg!("decimal-not-a-number", value = text))
}

runtime_options! {
    /// Quota units per US dollar. 500000 matches One API, so its ratios and balances import unchanged.
    quota_per_usd: u64 = "500000", check |v: &u64| if (1..=1_000_000_000_000).contains(v) { Ok(()) } else { Err(msg!("number-between", min = 1_i64, max = 1_000_000_000_000_i64)) };
    /// Further channels tried after a retryable failure (0 = no retries).
    retry_count: u64 = "2", check |v: &u64| if *v <= 20 { Ok(()) } else { Err(msg!("number-at-most", max = 20_i64)) };
    /// Upstream statuses that move a request on to another channel. Connection errors and timeouts always do.
    retry_statuses: StatusSet = "401,403,408,429,500-599", check any;
    /// Consecutive failures after which a channel cools down.
    cooldown_after_failures: u64 = "3", check positive;
    /// Seconds a cooled-down channel is skipped.
    cooldown_secs: u64 = "30", check any;
    /// Consecutive failures after which a channel is auto-disabled (0 = never).
    auto_disable_after_failures: u64 = "10", check any;
    /// Upstream statuses that auto-disable a channel at once (bad or revoked upstream key).
    auto_disable_statuses: StatusSet = "401,403", check any;
    /// Seconds between background probes of auto-disabled channels.
    probe_interval_secs: u64 = "60", check positive;
    /// Seconds to wait for an upstream's response headers (and first stream chunk) unless the channel sets its own.
    first_byte_timeout_secs: u64 = "300", check positive;
    /// Seconds a stream may stay silent between chunks before it is cut.
    stream_idle_timeout_secs: u64 = "300", check positive;
    /// Completion tokens assumed for the hold when a request sets no max_tokens.
    default_max_tokens: u64 = "4096", check any;
    /// The context window of a model whose price sets none and that the shipped list-price table does not know: a request with a file, audio, a stored conversation or a server-side tool holds this many prompt tokens and is billed at most this many.
    default_context_tokens: u64 = "200000", check |v: &u64| if (1..=crate::domain::pricing::MAX_CONTEXT_TOKENS.unsigned_abs()).contains(v) { Ok(()) } else { Err(msg!("number-between", min = 1_i64, max = crate::domain::pricing::MAX_CONTEXT_TOKENS)) };
    /// Price models the admin has not priced from the list-price table Tollgate ships.
    list_prices: bool = "true", check any;
    /// Relay models that have no price, at zero cost, instead of refusing them.
    allow_unpriced_models: bool = "false", check any;
    /// Largest request body accepted on /v1, in KiB.
    max_request_body_kb: u64 = "32768", check positive;
    /// Most tokens (or units) any one figure of an upstream's usage report is billed for; beyond it (or beyond the request's own max_tokens for output) the request is billed at the bound and its log marked.
    usage_ceiling_tokens: u64 = "2000000", check positive;
    /// The portal's name, in page titles and emails.
    site_name: String = "Tollgate", check site_name;
    /// The address people reach the portal at (e.g. https://ai.example.com): the base of links in emails and OAuth callbacks. Empty: the listen address.
    public_url: String = "", check public_url;
    /// A notice on the portal's home page (plain text).
    announcement: String = "", check |text: &String| at_most_chars(2000)(text);
    /// Whether people may create their own accounts on the portal.
    registration_enabled: bool = "true", check any;
    /// Dollars of balance a new self-registered account starts with (a ledger row).
    new_user_quota_usd: String = "0", check dollars;
    /// Dollars an account gets for each account made through its invite link (0 = none).
    invite_reward_inviter_usd: String = "0", check dollars;
    /// Dollars an account made through an invite link gets (0 = none).
    invite_reward_invitee_usd: String = "0", check dollars;
    /// When invite rewards are paid: `first_topup` (the invitee's first paid top-up) or `signup` (as the account is made; easily farmed with mass accounts).
    invite_reward_when: String = "first_topup", check |v: &String| if ["signup", "first_topup"].contains(&v.as_str()) { Ok(()) } else { Err(msg!("option-one-of", value = v, choices = "signup, first_topup")) };
    /// Most API keys one person may hold (0 = no limit).
    max_keys_per_user: u64 = "50", check any;
    /// Most organisations one person may own (0 = no limit). Administrators are not held to it.
    max_orgs_per_user: u64 = "3", check any;
    /// Whether people with a proven email address may create organisations themselves; off: only administrators create them.
    org_creation_enabled: bool = "true", check any;
    /// Below this balance in dollars a person gets one email (they may set their own line on their profile; 0 = no warnings by default).
    low_balance_default_usd: String = "1", check dollars;
    /// Whether a new account must prove its email address with an emailed code before it can sign in (needs smtp_host).
    email_verification_required: bool = "false", check any;
    /// Email domains that may register, comma-separated, subdomains included (empty: any).
    email_domains_allowed: String = "", check |list: &String| domain_list(list);
    /// Email domains that may not register, comma-separated, subdomains included.
    email_domains_blocked: String = "", check |list: &String| domain_list(list);
    /// New accounts one IP address may register per day (0 = no limit).
    signups_per_ip_per_day: u64 = "10", check any;
    /// The SMTP server that sends the portal's mail: codes, reset links (empty: no mail is sent).
    smtp_host: String = "", check host_name;
    /// The SMTP server's port (587 for starttls, 465 for tls, 25 for none).
    smtp_port: u64 = "587", check |v: &u64| if (1..=65535).contains(v) { Ok(()) } else { Err(msg!("number-between", min = 1_i64, max = 65535_i64)) };
    /// How the SMTP connection is protected: none, starttls or tls.
    smtp_security: String = "starttls", check |v: &String| if ["none", "starttls", "tls"].contains(&v.as_str()) { Ok(()) } else { Err(msg!("option-one-of", value = v, choices = "none, starttls, tls")) };
    /// The SMTP user name (empty: no authentication).
    smtp_username: String = "", check |text: &String| at_most_chars(255)(text);
    /// The SMTP password (write-only: listed masked).
    smtp_password: String = "", check |text: &String| at_most_chars(255)(text);
    /// The site's time zone (IANA name, e.g. Asia/Shanghai): where "today" begins on the dashboard.
    timezone: String = "UTC", check |name: &String| if crate::domain::calendar::is_zone(name) { Ok(()) } else { Err(msg!("option-not-a-zone", value = name)) };
    /// The sender of the portal's mail, e.g. "Tollgate <noreply@example.com>".
    smtp_from: String = "", check sender;
    /// The Stripe secret key (sk_live_… or a restricted rk_…) that makes Checkout Sessions and refunds; empty: no card top-ups (write-only: listed masked).
    stripe_secret_key: String = "", check api_secret;
    /// The signing secret (whsec_…) of the Stripe webhook endpoint /stripe/webhook; empty: the webhook refuses everything and top-ups are off (write-only: listed masked).
    stripe_webhook_secret: String = "", check api_secret;
    /// Where Stripe's API is (only tests change it).
    stripe_api_base: String = "https://api.stripe.com", check api_base;
    /// The currency people pay in (ISO code such as usd, eur, cny, jpy).
    topup_currency: String = "usd", check |code: &String| if crate::domain::topup::Currency::parse(code).is_some() { Ok(()) } else { Err(msg!("option-not-a-currency", value = code)) };
    /// What one dollar of balance costs in that currency (e.g. 7.2 for CNY).
    topup_price_per_usd: String = "1", check positive_dollars;
    /// The smallest top-up, in dollars of balance.
    topup_min_usd: String = "1", check positive_dollars;
    /// The largest top-up, in dollars of balance.
    topup_max_usd: String = "1000", check positive_dollars;
    /// The amounts offered as buttons, in dollars, comma-separated (e.g. 5,10,20,50).
    topup_presets_usd: String = "5,10,20,50", check |text: &String| crate::domain::topup::parse_presets(text).map(|_| ()).map_err(|e| msg!("option-bad-list-item", value = e.0));
    /// Bonus balance by amount: `100:10,500:15` gives +10 % from $100 and +15 % from $500 (empty: none).
    topup_bonus_tiers: String = "", check |text: &String| crate::domain::topup::parse_tiers(text).map(|_| ()).map_err(|e| msg!("option-bad-list-item", value = e.0));
    /// Unpaid top-up orders one person may have open at once (0 = no limit).
    topup_max_pending_per_user: u64 = "5", check any;
    /// Dollars of balance one person may buy per day, paid and pending together (0 = no limit).
    topup_daily_cap_usd: String = "0", check dollars;
    /// Minutes a Stripe Checkout page stays payable (Stripe allows 30 to 1440).
    topup_checkout_minutes: u64 = "60", check |v: &u64| if (30..=1440).contains(v) { Ok(()) } else { Err(msg!("number-between", min = 30_i64, max = 1440_i64)) };
    /// Seconds after which an unpaid order is asked about at Stripe by the reconciliation job (a lost webhook is still credited).
    topup_reconcile_after_secs: u64 = "300", check any;
    /// With several nodes sharing Redis: what paid requests do while Redis cannot be reached. `closed` refuses them (503); `local_share` lets each node spend at most its share (1/N of what each budget had left, N the nodes seen in the last minute) until Redis returns.
    redis_outage_mode: String = "closed", check |v: &String| if ["closed", "local_share"].contains(&v.as_str()) { Ok(()) } else { Err(msg!("option-one-of", value = v, choices = "closed, local_share")) };
    /// Days the audit log keeps its rows; older ones are deleted by a background job, which keeps the last deleted row's hash for `tollgate audit verify` (0 = keep forever). Root's alone: it decides how long changes stay on record.
    audit_retention_days: u64 = "365", check any;
    /// Days request logs are kept; older rows are deleted in small batches, their rollups (totals, dashboards, the overview) kept (0 = keep every log).
    log_retention_days: u64 = "0", check any;
    /// The bearer token `/metrics` asks for on the listen address (empty: `/metrics` is not served there; see --metrics-listen). Root's alone (write-only: listed masked).
    metrics_token: String = "", check api_secret;
}

/// Options whose values are secrets: they can be set, but are listed masked and never
/// returned.
pub const WRITE_ONLY: &[&str] = &[
    "smtp_password",
    "stripe_secret_key",
    "stripe_webhook_secret",
    "metrics_token",
];

/// What a write-only option is listed as.
pub fn masked(value: &str) -> String {
    if value.is_empty() {
        String::new()
    } else {
        "********".to_string()
    }
}

impl RuntimeOptions {
    pub fn quota_per_usd(&self) -> i64 {
        i64::try_from(self.quota_per_usd).unwrap_or(i64::MAX)
    }

    /// The base URL of links people are sent: `public_url`, or `fallback` (the listen
    /// address) when it is not set. Never the request's Host header.
    pub fn base_url(&self, fallback: &str) -> String {
        let base = if self.public_url.is_empty() {
            fallback
        } else {
            &self.public_url
        };
        base.trim_end_matches('/').to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse_and_stored_values_override() {
        let (options, problems) = RuntimeOptions::from_stored(&[
            ("retry_count".into(), "5".into()),
            ("retry_statuses".into(), "429, 502-504".into()),
            ("nonsense".into(), "1".into()),
            ("cooldown_secs".into(), "abc".into()),
        ]);
        assert_eq!(options.retry_count, 5);
        assert!(options.retry_statuses.contains(503));
        assert!(!options.retry_statuses.contains(500));
        assert_eq!(options.cooldown_secs, 30);
        assert_eq!(problems.len(), 2);
        assert_eq!(RuntimeOptions::default().quota_per_usd(), 500_000);
    }

    #[test]
    fn rejects_bad_values_with_the_reason() {
        let mut options = RuntimeOptions::default();
        let err = options
            .set("retry_statuses", "429,700")
            .unwrap_err()
            .to_string();
        assert!(err.contains("'700'"), "{err}");
        let err = options
            .set("probe_interval_secs", "0")
            .unwrap_err()
            .to_string();
        assert!(err.contains("at least 1"), "{err}");
        assert!(options.set("allow_unpriced_models", "yes").is_ok());
        assert!(options.set("stripe_secret_key", "sk_live 123").is_err());
        assert!(options.set("stripe_secret_key", "  sk_live_123  ").is_ok());
        assert_eq!(options.stripe_secret_key, "sk_live_123");
        assert!(options.allow_unpriced_models);
    }

    #[test]
    fn describes_every_option() {
        let described = RuntimeOptions::default().describe();
        assert_eq!(described.len(), RuntimeOptions::names().len());
        assert!(described.iter().all(|o| !o.description.is_empty()));
        assert_eq!(
            RuntimeOptions::default().as_map()["retry_statuses"],
            "401,403,408,429,500-599"
        );
    }
}
