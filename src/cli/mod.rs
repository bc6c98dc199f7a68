//! The command line: `tollgate` (or `tollgate serve`) runs the server; the other subcommands
//! manage users, keys, channels, prices, groups and options directly in the database the server
//! uses, also while it runs (the server picks changes up within its sync interval).

mod commands;
pub mod output;

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::config::{DatabaseConfig, RedisConfig, ServerConfig};

#[derive(Parser, Debug)]
#[command(
    name = "tollgate",
    version,
    about = "Self-hosted LLM API gateway: one OpenAI-compatible endpoint in front of many upstreams, with exact billing."
)]
pub struct Cli {
    #[command(flatten)]
    pub database: DatabaseConfig,

    #[command(flatten)]
    pub redis: RedisConfig,

    /// Let a management command create a new SQLite database file (otherwise a missing file
    /// is an error: the command is probably pointed at the wrong place).
    #[arg(long, global = true)]
    pub create_database: bool,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the server (the default when no subcommand is given).
    Serve(ServerConfig),
    /// Manage users and their balances.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage users' API keys.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Manage upstream channels.
    #[command(subcommand)]
    Channel(ChannelCommand),
    /// Model names clients ask for: aliases that stand for another model.
    #[command(subcommand)]
    Model(ModelCommand),
    /// Manage model prices (dollars per 1M tokens, or per request).
    #[command(subcommand)]
    Price(PriceCommand),
    /// Manage user groups and their price ratios.
    #[command(subcommand)]
    Group(GroupCommand),
    /// Organisations: a shared wallet and budget, members with roles, and teams whose keys
    /// spend the wallet.
    #[command(subcommand)]
    Org(OrgCommand),
    /// An organisation's teams: budgets, member caps, the groups their keys use, members.
    #[command(subcommand)]
    Team(TeamCommand),
    /// Show request logs, newest first.
    Logs(LogsArgs),
    /// Show or change runtime options.
    #[command(subcommand)]
    Option(OptionCommand),
    /// The balance ledger: every balance change that is not relay spend.
    #[command(subcommand)]
    Ledger(LedgerCommand),
    /// The audit log: every change by an administrator, root, the command line or an admin
    /// token, hash-chained.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Redemption codes that add balance when a person redeems one on the wallet page.
    #[command(subcommand)]
    Code(CodeCommand),
    /// Stripe top-up orders: list, inspect, credit a held payment, refund, reconcile.
    #[command(subcommand)]
    Order(OrderCommand),
    /// Sign-in through OAuth providers (GitHub, OpenID Connect) on the portal.
    #[command(subcommand)]
    Oauth(OauthCommand),
    /// Manage access tokens for the /api management API.
    #[command(subcommand, name = "admin-token")]
    AdminToken(AdminTokenCommand),
    /// Billing records the server could not write.
    #[command(subcommand)]
    Billing(BillingCommand),
    /// The request logs' rollups per 15 minutes, which totals, dashboards and the overview read.
    #[command(subcommand)]
    Rollups(RollupsCommand),
    /// Ask a running server's `/healthz`: exit 0 when it answers 200, 1 otherwise (for
    /// container images without curl). Opens no database.
    Healthcheck(HealthcheckArgs),
}

#[derive(Args, Debug)]
pub struct HealthcheckArgs {
    /// The server's listen address, as given to `serve`: `/healthz` is asked there (0.0.0.0
    /// and :: are asked at 127.0.0.1 and ::1).
    #[arg(long, env = "TOLLGATE_LISTEN", default_value = "127.0.0.1:3000")]
    pub listen: std::net::SocketAddr,

    /// The URL to ask instead, e.g. http://127.0.0.1:9100/healthz.
    // Its own id: `url` is the global database URL's.
    #[arg(long = "url", value_name = "URL")]
    pub health_url: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum RollupsCommand {
    /// Recompute the rollups from the request logs, touching only the 15-minute buckets that
    /// still have log rows (the rollups of purged logs stay), and the overview's hourly and
    /// daily rollups of those buckets from the 15-minute ones; the last hour is left to the
    /// running servers.
    Rebuild {
        /// From this day of the site's time zone (2026-11-30) or instant (RFC 3339); default:
        /// the oldest log.
        #[arg(long)]
        from: Option<String>,
        /// Up to the end of this day, or this instant; default: an hour ago.
        #[arg(long)]
        to: Option<String>,
        #[command(flatten)]
        json: JsonFlag,
    },
}

#[derive(Subcommand, Debug)]
pub enum ModelCommand {
    /// Aliases: a name clients ask for, routed and priced as another model.
    #[command(subcommand)]
    Alias(AliasCommand),
}

#[derive(Subcommand, Debug)]
pub enum AliasCommand {
    /// Point NAME at a model: requests for NAME are served and billed as that model.
    Add {
        name: String,
        /// The model NAME stands for.
        #[arg(long)]
        to: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// List aliases.
    List {
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Remove an alias.
    Remove { name: String },
}

#[derive(Subcommand, Debug)]
pub enum CodeCommand {
    /// Make codes; they are printed one per line, the only time they are shown.
    Create {
        #[arg(long, default_value_t = 1)]
        count: u32,
        /// What one use adds to a balance, in dollars.
        #[arg(long)]
        usd: String,
        /// How many accounts may each redeem it once (a gift code); default 1.
        #[arg(long)]
        uses: Option<i64>,
        /// Last day it works: 2027-01-31, or an RFC 3339 time.
        #[arg(long)]
        expires: Option<String>,
        /// A label for the batch, to list or disable it by.
        #[arg(long)]
        name: Option<String>,
        /// Also write the codes to this CSV file (id, code, usd, uses, expires, name).
        #[arg(long)]
        csv: Option<std::path::PathBuf>,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// List codes: id, first characters, value, uses left, state, who redeemed it last.
    List {
        #[arg(long)]
        name: Option<String>,
        /// unused, partly_used, used, disabled or expired.
        #[arg(long)]
        state: Option<String>,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Disable a code by id, or a whole batch with --name.
    Disable {
        #[arg(conflicts_with = "name")]
        id: Option<i64>,
        #[arg(long)]
        name: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum OrderCommand {
    /// List orders, newest first.
    List {
        /// Only this user's orders (user name).
        #[arg(long)]
        user: Option<String>,
        /// pending, paid, closed or held.
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: i64,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Show one order: its Checkout Session, payment, amounts, credit and Stripe events.
    Show {
        id: i64,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Credit a held order (paid, but not as quoted) after checking it on Stripe.
    Credit {
        id: i64,
        /// Why: kept on the order.
        #[arg(long)]
        reason: String,
    },
    /// Ask Stripe to refund an order (all of it, or --usd dollars of its balance); the balance
    /// moves when Stripe reports the refund.
    Refund {
        id: i64,
        #[arg(long)]
        usd: Option<String>,
        #[arg(long)]
        reason: String,
    },
    /// Ask Stripe about pending orders now and apply what it says (paid: credit; expired: close).
    Reconcile {
        /// Only orders older than this many seconds.
        #[arg(long, default_value_t = 0)]
        older_than_secs: u64,
        #[command(flatten)]
        json: JsonFlag,
    },
}

#[derive(Subcommand, Debug)]
pub enum OauthCommand {
    /// Add a provider people may sign in with; prints the callback URL to register there.
    Add {
        /// github, or oidc (any OpenID Connect provider, found by discovery from --issuer).
        #[arg(long = "type")]
        kind: String,
        /// Its name in URLs (/oauth/NAME/start) and here.
        #[arg(long)]
        name: String,
        /// What the sign-in button says (default "GitHub", or the name).
        #[arg(long = "display-name")]
        display_name: Option<String>,
        #[arg(long = "client-id")]
        client_id: String,
        #[arg(long = "client-secret")]
        client_secret: String,
        /// OIDC: the issuer, e.g. https://accounts.google.com.
        #[arg(long)]
        issuer: Option<String>,
        /// GitHub Enterprise: the authorize URL (https://HOST/login/oauth/authorize).
        #[arg(long = "auth-url")]
        auth_url: Option<String>,
        /// GitHub Enterprise: the token URL (https://HOST/login/oauth/access_token).
        #[arg(long = "token-url")]
        token_url: Option<String>,
        /// GitHub Enterprise: the REST API's base (https://HOST/api/v3).
        #[arg(long = "api-url")]
        api_url: Option<String>,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// List the providers (client secrets are never shown).
    List {
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Remove a provider and unlink every identity linked through it.
    Remove { name: String },
}

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Rows newest first, narrowed by the filters.
    List {
        /// `cli` or an administrator's username.
        #[arg(long, default_value = "")]
        actor: String,
        /// `channel.update`, `user.balance`, `option.set`, …
        #[arg(long, default_value = "")]
        action: String,
        /// `channel:12`, `user:alice`, `option:site_name`, …
        #[arg(long, default_value = "")]
        target: String,
        /// A date in the site's zone (2026-12-01) or an RFC 3339 instant.
        #[arg(long, default_value = "")]
        from: String,
        /// A date in the site's zone (that whole day) or an RFC 3339 instant.
        #[arg(long, default_value = "")]
        to: String,
        #[arg(long, default_value_t = 50)]
        limit: i64,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Walk the chain from its start (or the last row retention deleted): exits non-zero and
    /// names the first row whose hash or link does not match.
    Verify {
        #[command(flatten)]
        json: JsonFlag,
    },
}

#[derive(Subcommand, Debug)]
pub enum LedgerCommand {
    /// Prove that every balance is its ledger rows minus its relay spend; exits non-zero and
    /// lists the accounts where it is not.
    Check {
        #[command(flatten)]
        json: JsonFlag,
    },
    /// A user's ledger rows, newest first.
    Show {
        username: String,
        #[arg(long, default_value_t = 50)]
        limit: i64,
        #[command(flatten)]
        json: JsonFlag,
    },
}

#[derive(Subcommand, Debug)]
pub enum BillingCommand {
    /// Apply the records of a billing dead-letter file (each at most once, however often the
    /// file is replayed).
    Replay {
        /// The dead-letter file the server named in its log.
        file: std::path::PathBuf,
        #[command(flatten)]
        json: JsonFlag,
    },
}

#[derive(Args, Debug, Clone, Copy, Default)]
pub struct JsonFlag {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Create a user.
    Create {
        #[arg(long)]
        username: String,
        /// At least 8 characters. Omit for an account that only uses API keys.
        #[arg(long)]
        password: Option<String>,
        /// user, admin or root.
        #[arg(long, default_value = "user")]
        role: String,
        #[arg(long, default_value = "default")]
        group: String,
        /// Starting balance in dollars.
        #[arg(long = "quota-usd")]
        quota_usd: Option<String>,
        #[arg(long)]
        email: Option<String>,
        #[command(flatten)]
        limits: RateLimitFlags,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Show a user's balance and usage.
    Show {
        username: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// List users.
    List {
        #[arg(long, default_value_t = 100)]
        limit: i64,
        #[arg(long, default_value_t = 0)]
        offset: i64,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Change a user's name, role, group, status, email, password or rate limits.
    Update {
        username: String,
        /// A new username (to tell apart accounts whose names differ only in case).
        #[arg(long = "username")]
        new_username: Option<String>,
        #[arg(long)]
        role: Option<String>,
        #[arg(long)]
        group: Option<String>,
        /// active or disabled.
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        password: Option<String>,
        #[command(flatten)]
        limits: RateLimitFlags,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Add to a user's balance (a negative amount deducts).
    Topup {
        username: String,
        /// Amount in dollars, e.g. 5 or -0.5.
        #[arg(long, allow_hyphen_values = true, conflicts_with = "units")]
        usd: Option<String>,
        /// Amount in quota units.
        #[arg(long, allow_hyphen_values = true)]
        units: Option<i64>,
        /// Why (required): kept in the balance ledger and the audit log.
        #[arg(long, required = true)]
        reason: Option<String>,
        /// Makes running the same top-up again harmless: a key used before changes nothing.
        #[arg(long = "idempotency-key")]
        idempotency_key: Option<String>,
        #[command(flatten)]
        json: JsonFlag,
    },
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Create an API key; it is printed once and only its hash is stored.
    Create {
        #[arg(long)]
        user: String,
        #[arg(long)]
        name: String,
        /// The key's own limit in dollars. Without it (or with --unlimited) the key is limited
        /// only by its user's balance.
        #[arg(long = "quota-usd", conflicts_with = "unlimited")]
        quota_usd: Option<String>,
        #[arg(long)]
        unlimited: bool,
        /// Expiry: 2027-01-01 or an RFC 3339 time.
        #[arg(long)]
        expires: Option<String>,
        /// Models the key may use (comma-separated); default all of the user's group.
        #[arg(long)]
        models: Option<String>,
        /// Allowed client IPs or CIDR ranges (comma-separated or repeated).
        #[arg(long = "allow-ip")]
        allow_ip: Vec<String>,
        /// The group the key uses instead of the user's (its channels and price ratio).
        #[arg(long)]
        group: Option<String>,
        /// A budget in dollars that starts over every --budget-period, in the site's time
        /// zone (option `timezone`), on top of the key's own limit and the user's balance.
        #[arg(long = "budget-usd", requires = "budget_period")]
        budget_usd: Option<String>,
        /// daily, weekly (from Monday) or monthly.
        #[arg(long = "budget-period", requires = "budget_usd")]
        budget_period: Option<String>,
        /// Make a team key of this organisation (its short name), with --team: it spends the
        /// organisation's wallet, and the user must be in the team.
        #[arg(long, requires = "team")]
        org: Option<String>,
        /// The team (by name) the key belongs to; fixed once the key is made.
        #[arg(long, requires = "org")]
        team: Option<String>,
        #[command(flatten)]
        limits: RateLimitFlags,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// List a user's API keys.
    List {
        #[arg(long)]
        user: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Change an API key.
    Update {
        id: i64,
        #[arg(long)]
        name: Option<String>,
        /// active or disabled.
        #[arg(long)]
        status: Option<String>,
        #[arg(long, conflicts_with = "no_expiry")]
        expires: Option<String>,
        /// Remove the expiry.
        #[arg(long = "no-expiry")]
        no_expiry: bool,
        /// Set the key's own limit in dollars.
        #[arg(long = "quota-usd", conflicts_with = "unlimited")]
        quota_usd: Option<String>,
        #[arg(long)]
        unlimited: bool,
        #[arg(long)]
        models: Option<String>,
        #[arg(long = "allow-ip")]
        allow_ip: Vec<String>,
        /// The group the key uses; "" returns it to the user's group.
        #[arg(long)]
        group: Option<String>,
        /// The budget per period in dollars (keeps the period unless --budget-period is given).
        #[arg(long = "budget-usd", conflicts_with = "no_budget")]
        budget_usd: Option<String>,
        /// daily, weekly or monthly; another period starts counting afresh.
        #[arg(long = "budget-period", conflicts_with = "no_budget")]
        budget_period: Option<String>,
        /// Remove the periodic budget.
        #[arg(long = "no-budget")]
        no_budget: bool,
        #[command(flatten)]
        limits: RateLimitFlags,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Delete an API key.
    Delete { id: i64 },
}

/// Channel settings shared by `add` and `update`.
#[derive(Args, Debug, Clone, Default)]
pub struct ChannelFlags {
    /// Channel type: openai or anthropic, or an OpenAI-compatible vendor preset (deepseek,
    /// groq, vllm, …; see `channel presets`) that fills in base URL and models.
    #[arg(long = "type")]
    pub channel_type: Option<String>,
    /// Upstream base URL, e.g. https://api.openai.com/v1.
    #[arg(long = "base-url")]
    pub base_url: Option<String>,
    /// Upstream API key; repeat for several keys (requests rotate over them). `@path` reads it
    /// from a file, e.g. a Vertex service account's JSON key file.
    #[arg(long = "key")]
    pub keys: Vec<String>,
    /// Models this channel serves (comma-separated).
    #[arg(long)]
    pub models: Option<String>,
    /// Groups whose users may use the channel (comma-separated).
    #[arg(long)]
    pub groups: Option<String>,
    /// Higher tiers are tried first.
    #[arg(long, allow_hyphen_values = true)]
    pub priority: Option<i64>,
    /// Share of traffic within a priority tier (0 = standby).
    #[arg(long)]
    pub weight: Option<i64>,
    /// requested=upstream model renames (comma-separated or repeated).
    #[arg(long = "model-map")]
    pub model_map: Vec<String>,
    /// Seconds to wait for the upstream's first byte (0 = server default).
    #[arg(long = "timeout-secs")]
    pub timeout_secs: Option<i64>,
    /// Extra header sent upstream, 'Name: value' (repeatable).
    #[arg(long = "header")]
    pub headers: Vec<String>,
}

#[derive(Subcommand, Debug)]
pub enum ChannelCommand {
    /// Add an upstream channel.
    Add {
        #[arg(long)]
        name: String,
        #[command(flatten)]
        flags: ChannelFlags,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// List channels (keys masked).
    List {
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Show one channel.
    Show {
        channel: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Change a channel.
    Update {
        channel: String,
        #[arg(long)]
        rename: Option<String>,
        #[command(flatten)]
        flags: ChannelFlags,
        /// Turn the channel on (also after an auto-disable).
        #[arg(long, conflicts_with = "disable")]
        enable: bool,
        /// Turn the channel off; it stays off until enabled again.
        #[arg(long)]
        disable: bool,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Delete a channel.
    Delete { channel: String },
    /// Send one minimal real request through the channel and record its latency and outcome.
    Test {
        channel: String,
        /// The model to ask for (default: the channel's first model).
        #[arg(long)]
        model: Option<String>,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// List the models the channel's upstream offers.
    Models {
        channel: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// List the OpenAI-compatible vendor presets `add --type` takes (deepseek, groq, vllm, …).
    Presets {
        #[command(flatten)]
        json: JsonFlag,
    },
}

#[derive(Subcommand, Debug)]
pub enum PriceCommand {
    /// Set a model's price: --input and --output in dollars per 1M tokens, or --per-request.
    Set {
        model: String,
        #[arg(long)]
        input: Option<String>,
        #[arg(long)]
        output: Option<String>,
        #[arg(long = "cached-input")]
        cached_input: Option<String>,
        /// Dollars per 1M prompt tokens written to the provider's cache.
        #[arg(long = "cache-write")]
        cache_write: Option<String>,
        #[arg(long = "per-request", conflicts_with_all = ["input", "output", "cached_input", "cache_write"])]
        per_request: Option<String>,
        /// The model's context window in tokens: a request with a file, audio, a stored
        /// conversation or a server-side tool holds this many prompt tokens and is billed at
        /// most this many (default: the shipped table's window, else the option
        /// default_context_tokens).
        #[arg(long = "context-tokens")]
        context_tokens: Option<String>,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// List prices.
    List {
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Remove a model's price (the model is then refused unless unpriced models are allowed).
    Delete { model: String },
}

#[derive(Subcommand, Debug)]
pub enum GroupCommand {
    /// Create a group.
    Create {
        name: String,
        /// Price multiplier for the group's users, e.g. 1.5.
        #[arg(long)]
        ratio: Option<String>,
        #[arg(long)]
        description: Option<String>,
        /// Users may pick this group themselves (used by the portal).
        #[arg(long)]
        selectable: bool,
        #[command(flatten)]
        limits: RateLimitFlags,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// List groups.
    List {
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Change a group.
    Update {
        name: String,
        #[arg(long)]
        ratio: Option<String>,
        #[arg(long)]
        description: Option<String>,
        #[arg(long)]
        selectable: Option<bool>,
        #[command(flatten)]
        limits: RateLimitFlags,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Delete an empty group.
    Delete { name: String },
}

/// Rate limits given on the command line: each a whole number, or `none` to remove it. On a
/// key they are the key's own (a limit it does not set is its group's); on a user they count
/// all of the user's keys together; on a group they apply to each of its keys that sets none.
#[derive(Args, Debug, Clone, Default)]
pub struct RateLimitFlags {
    /// Requests per minute; `none` removes the limit.
    #[arg(long, value_name = "N|none")]
    pub rpm: Option<String>,
    /// Tokens per minute, input and output together; `none` removes the limit.
    #[arg(long, value_name = "N|none")]
    pub tpm: Option<String>,
    /// Requests in flight at once; `none` removes the limit.
    #[arg(long = "max-concurrent", value_name = "N|none")]
    pub max_concurrent: Option<String>,
}

impl RateLimitFlags {
    pub fn input(self) -> crate::service::rate_limits::RateLimitInput {
        crate::service::rate_limits::RateLimitInput {
            rpm: self.rpm,
            tpm: self.tpm,
            max_concurrent: self.max_concurrent,
        }
    }
}

/// A budget given on the command line: an amount per period.
#[derive(Args, Debug, Clone, Default)]
pub struct BudgetFlags {
    /// What may be spent per --budget-period, in dollars.
    #[arg(long = "budget-usd", requires = "budget_period")]
    pub budget_usd: Option<String>,
    /// daily, weekly (from Monday), monthly or quarterly, in the organisation's time zone.
    #[arg(long = "budget-period", requires = "budget_usd")]
    pub budget_period: Option<String>,
}

/// A budget changed on the command line: a new amount or period, or none.
#[derive(Args, Debug, Clone, Default)]
pub struct BudgetChangeFlags {
    /// What may be spent per period, in dollars (keeps the period unless --budget-period is
    /// given).
    #[arg(long = "budget-usd", conflicts_with = "no_budget")]
    pub budget_usd: Option<String>,
    /// daily, weekly, monthly or quarterly; another period starts counting afresh.
    #[arg(long = "budget-period", conflicts_with = "no_budget")]
    pub budget_period: Option<String>,
    /// Remove the budget.
    #[arg(long = "no-budget")]
    pub no_budget: bool,
}

#[derive(Subcommand, Debug)]
pub enum OrgCommand {
    /// Create an organisation owned by a user; its wallet starts empty.
    Create {
        #[arg(long)]
        name: String,
        /// The short name in addresses: 2 to 32 lowercase letters, digits and '-'.
        #[arg(long)]
        slug: String,
        /// The owner's username.
        #[arg(long)]
        owner: String,
        /// The zone its budgets start over in (IANA name); default: the site's.
        #[arg(long)]
        timezone: Option<String>,
        #[command(flatten)]
        budget: BudgetFlags,
        /// The group its team keys use unless their team allows another (default: default).
        #[arg(long)]
        group: Option<String>,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// List every organisation.
    List {
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Show an organisation: its wallet, budgets with their period, next start and spending
    /// this period, members and teams.
    Show {
        slug: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Change an organisation's name, short name, time zone, budget or group.
    Update {
        slug: String,
        #[arg(long)]
        name: Option<String>,
        /// A new short name.
        #[arg(long = "slug")]
        new_slug: Option<String>,
        /// An IANA zone; "" for the site's.
        #[arg(long)]
        timezone: Option<String>,
        #[command(flatten)]
        budget: BudgetChangeFlags,
        #[arg(long)]
        group: Option<String>,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Delete an organisation with its teams, memberships and team keys. Refused while its
    /// wallet holds money, unless --force with a --reason (the balance is written off).
    Delete {
        slug: String,
        #[arg(long, requires = "reason")]
        force: bool,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Make another member the owner at once (the old owner becomes an admin).
    Transfer { slug: String, username: String },
    /// Add to an organisation's wallet (a negative amount takes from it).
    Topup {
        slug: String,
        /// Amount in dollars, e.g. 50 or -0.5.
        #[arg(long, allow_hyphen_values = true, conflicts_with = "units")]
        usd: Option<String>,
        /// Amount in quota units.
        #[arg(long, allow_hyphen_values = true)]
        units: Option<i64>,
        /// Why (required): kept in the ledger and the audit log.
        #[arg(long, required = true)]
        reason: Option<String>,
        /// Makes running the same top-up again harmless: a key used before changes nothing.
        #[arg(long = "idempotency-key")]
        idempotency_key: Option<String>,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// The wallet's ledger rows, newest first.
    Ledger {
        slug: String,
        #[arg(long, default_value_t = 50)]
        limit: i64,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Members: add, change their role, remove, set their cap in a team.
    #[command(subcommand)]
    Member(OrgMemberCommand),
}

#[derive(Subcommand, Debug)]
pub enum OrgMemberCommand {
    /// Put a user into the organisation (and a team).
    Add {
        slug: String,
        username: String,
        /// admin or member.
        #[arg(long, default_value = "member")]
        role: String,
        /// A team (by name) to put them in as well.
        #[arg(long)]
        team: Option<String>,
        /// They manage that team.
        #[arg(long, requires = "team")]
        manager: bool,
    },
    /// Change a member's role: admin or member.
    Update {
        slug: String,
        username: String,
        #[arg(long)]
        role: String,
    },
    /// Take a member out of the organisation, with their team memberships and team keys.
    Remove { slug: String, username: String },
    /// Set what a member may spend per the team's period (--default: the team's cap).
    Cap {
        slug: String,
        team: String,
        username: String,
        #[arg(
            long = "cap-usd",
            conflicts_with = "default",
            required_unless_present = "default"
        )]
        cap_usd: Option<String>,
        #[arg(long)]
        default: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum TeamCommand {
    /// Create a team in an organisation.
    Create {
        slug: String,
        name: String,
        #[command(flatten)]
        budget: BudgetFlags,
        /// What each member may spend per the team's budget period, in dollars.
        #[arg(long = "member-cap-usd")]
        member_cap_usd: Option<String>,
        /// The groups its keys may use (comma-separated): the organisation's and the ones
        /// people may choose. Default: the organisation's.
        #[arg(long)]
        groups: Option<String>,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Change a team.
    Update {
        slug: String,
        team: String,
        /// A new name.
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        budget: BudgetChangeFlags,
        #[arg(long = "member-cap-usd", conflicts_with = "no_member_cap")]
        member_cap_usd: Option<String>,
        /// Remove the default member cap.
        #[arg(long = "no-member-cap")]
        no_member_cap: bool,
        /// "" for the organisation's group alone.
        #[arg(long)]
        groups: Option<String>,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Delete a team with its memberships and its keys.
    Delete { slug: String, team: String },
    /// Team members: add (or make a manager), remove.
    #[command(subcommand)]
    Member(TeamMemberCommand),
}

#[derive(Subcommand, Debug)]
pub enum TeamMemberCommand {
    /// Put a member of the organisation into the team (or change whether they manage it).
    Add {
        slug: String,
        team: String,
        username: String,
        #[arg(long)]
        manager: bool,
    },
    /// Take a member out of the team, with their keys of the team.
    Remove {
        slug: String,
        team: String,
        username: String,
    },
}

#[derive(Args, Debug)]
pub struct LogsArgs {
    #[arg(long)]
    pub user: Option<String>,
    #[arg(long)]
    pub model: Option<String>,
    #[arg(long = "request-id")]
    pub request_id: Option<String>,
    #[arg(long, default_value_t = 20)]
    pub limit: i64,
    #[command(flatten)]
    pub json: JsonFlag,
}

#[derive(Subcommand, Debug)]
pub enum OptionCommand {
    /// List every option with its value, default and meaning.
    List {
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Set an option.
    Set { name: String, value: String },
    /// Return an option to its default.
    Reset { name: String },
}

#[derive(Subcommand, Debug)]
pub enum AdminTokenCommand {
    /// Create a management-API token for an admin or root user; printed once.
    Create {
        #[arg(long)]
        user: String,
        #[arg(long, default_value = "cli")]
        name: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// List admin tokens.
    List {
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Revoke an admin token.
    Delete { id: i64 },
}

/// Runs a management subcommand against the database and reports the outcome.
pub async fn run_command(
    database: &DatabaseConfig,
    redis: &RedisConfig,
    create: bool,
    command: Command,
) -> ExitCode {
    if let Command::Healthcheck(args) = command {
        return healthcheck(args).await;
    }
    match commands::run(database, redis, create, command).await {
        Ok(()) | Err(commands::CommandError::OutputClosed) => ExitCode::SUCCESS,
        Err(commands::CommandError::Failed(message)) => {
            eprintln!(
                "error: {}",
                crate::domain::names::terminal_safe(&message, true)
            );
            ExitCode::FAILURE
        }
    }
}

/// How long `tollgate healthcheck` waits for an answer.
const HEALTHCHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Where a server listening on `listen` is asked: a wildcard address is reached on the
/// loopback of its family.
fn healthz_url(listen: std::net::SocketAddr) -> String {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    let mut address = listen;
    match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => address.set_ip(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        IpAddr::V6(ip) if ip.is_unspecified() => address.set_ip(IpAddr::V6(Ipv6Addr::LOCALHOST)),
        _ => {}
    }
    format!("http://{address}/healthz")
}

/// `tollgate healthcheck`: one GET, one line saying what came of it.
async fn healthcheck(args: HealthcheckArgs) -> ExitCode {
    let url = args.health_url.unwrap_or_else(|| healthz_url(args.listen));
    let client = match reqwest::Client::builder()
        .timeout(HEALTHCHECK_TIMEOUT)
        .build()
    {
        Ok(client) => client,
        Err(e) => {
            eprintln!("unhealthy: cannot start an HTTP client: {e}");
            return ExitCode::FAILURE;
        }
    };
    match client.get(&url).send().await {
        Ok(response) if response.status() == reqwest::StatusCode::OK => {
            println!("healthy: {url} answered 200");
            ExitCode::SUCCESS
        }
        Ok(response) => {
            eprintln!("unhealthy: {url} answered {}", response.status());
            ExitCode::FAILURE
        }
        Err(e) => {
            let reason = if e.is_timeout() {
                format!("no answer within {} s", HEALTHCHECK_TIMEOUT.as_secs())
            } else {
                crate::upstream::describe(&e)
            };
            eprintln!("unhealthy: {url}: {reason}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wildcard_listen_address_is_asked_on_the_loopback() {
        let url = |listen: &str| healthz_url(listen.parse().unwrap());
        assert_eq!(url("0.0.0.0:3000"), "http://127.0.0.1:3000/healthz");
        assert_eq!(url("[::]:8080"), "http://[::1]:8080/healthz");
        assert_eq!(url("10.1.2.3:3000"), "http://10.1.2.3:3000/healthz");
    }

    /// Flags shared by every command (database, Redis) must not clash with a command's own:
    /// clap checks the whole tree only when asked, and would otherwise panic at run time.
    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
