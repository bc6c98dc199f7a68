//! Each management subcommand: call the service, print text or JSON.

use serde::Serialize;

use super::output;
use super::{
    AdminTokenCommand, AliasCommand, AuditCommand, BillingCommand, BudgetChangeFlags,
    ChannelCommand, ChannelFlags, CodeCommand, Command, GroupCommand, JsonFlag, LedgerCommand,
    LogsArgs, ModelCommand, OauthCommand, OptionCommand, OrderCommand, OrgCommand,
    OrgMemberCommand, PriceCommand, RollupsCommand, TeamCommand, TeamMemberCommand, TokenCommand,
    UserCommand,
};
use std::sync::Arc;

use crate::config::{DatabaseConfig, RedisConfig};
use crate::providers::presets;
use crate::service::channels::{ChannelInput, parse_header_lines, parse_mapping_pairs};
use crate::service::groups::GroupInput;
use crate::service::logs::LogQuery;
use crate::service::orgs::{
    AddMember, CreateOrg, DeleteOrg, TeamInput, TeamMemberInput, Transfer, UpdateOrg,
};
use crate::service::prices::PriceInput;
use crate::service::tokens::{CreateToken, UpdateToken};
use crate::service::users::{CreateUser, QuotaChange, UpdateUser};
use crate::service::views::{
    AdminTokenView, AliasView, ChannelView, CodeView, EventView, GroupView, LogView, NewTokenView,
    OAuthProviderView, OrderView, PriceView, UserView,
};
use crate::service::{self, Caller, Ctx, ServiceError};

/// Whoever runs the command line holds the database: it acts as root.
const CLI: Caller = Caller::Cli;

/// Why a command stopped early.
#[derive(Debug)]
pub enum CommandError {
    /// Told to the person on standard error.
    Failed(String),
    /// Whoever read the output has gone (`tollgate logs | head`): nothing more to say.
    OutputClosed,
}

impl From<String> for CommandError {
    fn from(message: String) -> Self {
        CommandError::Failed(message)
    }
}

impl From<&str> for CommandError {
    fn from(message: &str) -> Self {
        CommandError::Failed(message.to_string())
    }
}

type CommandResult = Result<(), CommandError>;

/// Writes `text` and a newline to standard output. A reader that closed the pipe ends the
/// command quietly instead of with a panic (Rust ignores SIGPIPE, so the write fails).
fn print(text: impl std::fmt::Display) -> CommandResult {
    use std::io::Write;
    // Names and messages may come from anyone (a client's model name in the logs): no control
    // character reaches the terminal but line breaks.
    let text = text.to_string();
    let text = crate::domain::names::terminal_safe(&text, true);
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(CommandError::OutputClosed),
        Err(e) => Err(CommandError::Failed(format!(
            "cannot write to standard output: {e}"
        ))),
    }
}

/// The HTTP client the channel tools use from the command line.
fn tool_client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(10))
        .build()
        .map_err(|e| format!("cannot start an HTTP client: {e}"))
}

/// A service's error for the command line: each wrong value under the flag that sets it.
fn describe(error: ServiceError) -> String {
    match &error {
        ServiceError::Invalid(problems) => problems
            .iter()
            .map(|p| format!("--{}: {}", flag(p.field), p.message))
            .collect::<Vec<_>>()
            .join("\n       "),
        ServiceError::Conflict {
            field: Some(field),
            message,
        } => format!("--{}: {message}", flag(field)),
        _ => error.to_string(),
    }
}

/// The flag that sets a field (fields are spelled as in JSON).
fn flag(field: &str) -> String {
    match field {
        "keys" => "key".into(),
        "model_mapping" => "model-map".into(),
        "extra_headers" => "header".into(),
        "allow_ips" => "allow-ip".into(),
        "user_selectable" => "selectable".into(),
        "amount" => "usd".into(),
        other => other.replace('_', "-"),
    }
}

fn print_json<T: Serialize>(value: &T) -> CommandResult {
    let text = serde_json::to_string_pretty(value).map_err(|e| e.to_string())?;
    print(text)
}

/// Prints `value` as JSON or with the text formatter.
fn show<T: Serialize>(json: JsonFlag, value: &T, text: impl FnOnce(&T) -> String) -> CommandResult {
    if json.json {
        print_json(value)
    } else {
        print(text(value))
    }
}

pub async fn run(
    database: &DatabaseConfig,
    redis: &RedisConfig,
    create: bool,
    command: Command,
) -> CommandResult {
    // A management command pointed at the wrong place would otherwise make an empty database
    // there and report (or change) nothing the server sees.
    if !create
        && let Some(file) = crate::config::sqlite_file(&database.url)
        && !file.exists()
    {
        return Err(format!(
            "no database at {}; pass --database-url like the server's (or --create-database to make a new one)",
            file.display()
        )
        .into());
    }
    let ctx = Ctx::connect(&database.url, database.max_connections.min(4))
        .await
        .map_err(|e| {
            format!(
                "cannot open the database at {}: {e}",
                crate::config::redact_url(&database.url)
            )
        })?;
    // With a shared Redis, every write is announced, so the nodes apply it at once rather
    // than at their next poll.
    let cluster = crate::cluster::Cluster::open(redis).map_err(|e| format!("{e:#}"))?;
    let ctx = match cluster {
        Some(cluster) => ctx.with_after_write(Arc::new(crate::cluster::feed::Announce(cluster))),
        None => ctx,
    };
    let result = dispatch(&ctx, command).await;
    ctx.close().await;
    result
}

async fn quota_per_usd(ctx: &Ctx) -> Result<i64, String> {
    service::options::quota_per_usd(ctx).await.map_err(describe)
}

async fn dispatch(ctx: &Ctx, command: Command) -> CommandResult {
    match command {
        Command::Serve(_) => Err("`serve` is not a management command".into()),
        Command::Healthcheck(_) => Err("`healthcheck` is not a management command".into()),
        Command::User(c) => user(ctx, c).await,
        Command::Token(c) => token(ctx, c).await,
        Command::Channel(c) => channel(ctx, c).await,
        Command::Price(c) => price(ctx, c).await,
        Command::Group(c) => group(ctx, c).await,
        Command::Org(c) => org(ctx, c).await,
        Command::Team(c) => team(ctx, c).await,
        Command::Logs(args) => logs(ctx, args).await,
        Command::Option(c) => option(ctx, c).await,
        Command::AdminToken(c) => admin_token(ctx, c).await,
        Command::Oauth(c) => oauth(ctx, c).await,
        Command::Code(c) => code(ctx, c).await,
        Command::Order(c) => order(ctx, c).await,
        Command::Billing(c) => billing(ctx, c).await,
        Command::Ledger(c) => ledger(ctx, c).await,
        Command::Audit(c) => audit(ctx, c).await,
        Command::Rollups(c) => rollups(ctx, c).await,
        Command::Model(ModelCommand::Alias(c)) => model_alias(ctx, c).await,
    }
}

async fn user(ctx: &Ctx, command: UserCommand) -> CommandResult {
    let qpu = quota_per_usd(ctx).await?;
    match command {
        UserCommand::Create {
            username,
            password,
            role,
            group,
            quota_usd,
            email,
            limits,
            json,
        } => {
            let user = service::users::create(
                ctx,
                &CLI,
                CreateUser {
                    username,
                    password,
                    email,
                    role: Some(role),
                    group: Some(group),
                    quota_usd,
                    rate_limits: limits.input(),
                },
            )
            .await
            .map_err(describe)?;
            show(json, &UserView::new(&user, qpu), |u| {
                format!("Created user.\n{}", output::user(u))
            })
        }
        UserCommand::Show { username, json } => {
            let user = service::users::get(ctx, &CLI, &username)
                .await
                .map_err(describe)?;
            show(json, &UserView::new(&user, qpu), output::user)
        }
        UserCommand::List {
            limit,
            offset,
            json,
        } => {
            let users = service::users::list(ctx, &CLI, limit, offset)
                .await
                .map_err(describe)?;
            let views: Vec<UserView> = users.iter().map(|u| UserView::new(u, qpu)).collect();
            show(json, &views, |v| output::users(v))
        }
        UserCommand::Update {
            username,
            new_username,
            role,
            group,
            status,
            email,
            password,
            limits,
            json,
        } => {
            let user = service::users::update(
                ctx,
                &CLI,
                &username,
                UpdateUser {
                    username: new_username,
                    password,
                    email: email.map(Some),
                    display_name: None,
                    role,
                    status,
                    group,
                    rate_limits: limits.input(),
                },
            )
            .await
            .map_err(describe)?;
            show(json, &UserView::new(&user, qpu), |u| {
                format!("Updated user.\n{}", output::user(u))
            })
        }
        UserCommand::Topup {
            username,
            usd,
            units,
            reason,
            idempotency_key,
            json,
        } => {
            let change = QuotaChange {
                usd,
                units,
                reason,
                idempotency_key,
            };
            let changed = service::users::change_quota(ctx, &CLI, &username, change)
                .await
                .map_err(describe)?;
            let applied = changed.applied;
            show(json, &UserView::new(&changed.user, qpu), |u| {
                if applied {
                    format!("Balance changed.\n{}", output::user(u))
                } else {
                    format!(
                        "Already applied: that idempotency key was used before; the balance is unchanged.\n{}",
                        output::user(u)
                    )
                }
            })
        }
    }
}

fn join_ips(list: Vec<String>) -> Option<String> {
    (!list.is_empty()).then(|| list.join(","))
}

async fn token(ctx: &Ctx, command: TokenCommand) -> CommandResult {
    match command {
        TokenCommand::Create {
            user,
            name,
            quota_usd,
            unlimited: _,
            expires,
            models,
            allow_ip,
            group,
            budget_usd,
            budget_period,
            org,
            team,
            limits,
            json,
        } => {
            // The command line names a team; the service takes its id.
            let team = match (&org, &team) {
                (Some(org), Some(team)) => Some(
                    service::orgs::team_id(ctx, &CLI, org, team)
                        .await
                        .map_err(describe)?
                        .to_string(),
                ),
                _ => None,
            };
            let (token, key) = service::tokens::create(
                ctx,
                &CLI,
                CreateToken {
                    username: user,
                    name,
                    quota_usd,
                    expires,
                    models,
                    allow_ips: join_ips(allow_ip),
                    group,
                    budget_period,
                    budget_usd,
                    form_key: None,
                    org,
                    team,
                    rate_limits: limits.input(),
                },
            )
            .await
            .map_err(describe)?;
            let view = NewTokenView {
                key,
                token: service::tokens::view(ctx, &token).await.map_err(describe)?,
            };
            show(json, &view, |v| {
                format!(
                    "Created API key '{}' for {} (id {}).\n\n    {}\n\nThis is the only time the key is shown: store it now.\n{}",
                    v.token.name,
                    v.token.user,
                    v.token.id,
                    v.key,
                    output::token(&v.token)
                )
            })
        }
        TokenCommand::List { user, json } => {
            let tokens = service::tokens::list_for_user(ctx, &CLI, &user)
                .await
                .map_err(describe)?;
            let views = service::tokens::views(ctx, &tokens)
                .await
                .map_err(describe)?;
            show(json, &views, |v| output::tokens(v))
        }
        TokenCommand::Update {
            id,
            name,
            status,
            expires,
            no_expiry,
            quota_usd,
            unlimited,
            models,
            allow_ip,
            group,
            budget_usd,
            budget_period,
            no_budget,
            limits,
            json,
        } => {
            let budget_period = if no_budget {
                Some(String::new())
            } else {
                budget_period
            };
            let expires = if no_expiry {
                Some(None)
            } else {
                expires.map(Some)
            };
            let token = service::tokens::update(
                ctx,
                &CLI,
                id,
                UpdateToken {
                    name,
                    status,
                    expires,
                    quota_usd,
                    unlimited: unlimited.then_some(true),
                    models,
                    allow_ips: join_ips(allow_ip),
                    group,
                    budget_period,
                    budget_usd,
                    rate_limits: limits.input(),
                },
            )
            .await
            .map_err(describe)?;
            let view = service::tokens::view(ctx, &token).await.map_err(describe)?;
            show(json, &view, |t| {
                format!("Updated API key.\n{}", output::token(t))
            })
        }
        TokenCommand::Delete { id } => {
            service::tokens::delete(ctx, &CLI, id)
                .await
                .map_err(describe)?;
            print(format_args!("Deleted API key {id}."))
        }
    }
}

/// `--key @path` reads the key from a file: a service account's JSON key file (Vertex) is
/// put on one line, anything else is taken as written.
fn read_key(key: String) -> Result<String, String> {
    let Some(path) = key.strip_prefix('@') else {
        return Ok(key);
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the key file {path}: {e}"))?;
    Ok(match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(json) if json.is_object() => json.to_string(),
        _ => text.trim().to_string(),
    })
}

fn channel_input(flags: ChannelFlags) -> Result<ChannelInput, String> {
    let keys = flags
        .keys
        .into_iter()
        .map(read_key)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ChannelInput {
        name: None,
        channel_type: flags.channel_type,
        base_url: flags.base_url,
        keys: (!keys.is_empty()).then_some(keys),
        models: flags.models,
        groups: flags.groups,
        priority: flags.priority,
        weight: flags.weight,
        model_mapping: if flags.model_map.is_empty() {
            None
        } else {
            Some(parse_mapping_pairs(&flags.model_map).map_err(describe)?)
        },
        timeout_secs: flags.timeout_secs,
        extra_headers: if flags.headers.is_empty() {
            None
        } else {
            Some(parse_header_lines(&flags.headers).map_err(describe)?)
        },
        status: None,
    })
}

async fn channel(ctx: &Ctx, command: ChannelCommand) -> CommandResult {
    let qpu = quota_per_usd(ctx).await?;
    match command {
        ChannelCommand::Add { name, flags, json } => {
            let mut input = channel_input(flags)?;
            input.name = Some(name);
            let channel = service::channels::create(ctx, &CLI, input)
                .await
                .map_err(describe)?;
            show(json, &ChannelView::new(&channel, qpu), |c| {
                format!("Added channel.\n{}", output::channel(c))
            })
        }
        ChannelCommand::List { json } => {
            let channels = service::channels::list(ctx, &CLI).await.map_err(describe)?;
            let views: Vec<ChannelView> =
                channels.iter().map(|c| ChannelView::new(c, qpu)).collect();
            show(json, &views, |v| output::channels(v))
        }
        ChannelCommand::Test {
            channel,
            model,
            json,
        } => {
            let outcome = service::channel_tools::test(
                ctx,
                &CLI,
                &tool_client()?,
                &channel,
                model.as_deref(),
            )
            .await
            .map_err(describe)?;
            let ok = outcome.ok;
            show(json, &outcome, |o| {
                format!(
                    "{} {} ({}) in {} ms: {}",
                    if o.ok { "PASS" } else { "FAIL" },
                    o.channel,
                    o.model,
                    o.latency_ms,
                    o.message
                )
            })?;
            if ok {
                Ok(())
            } else {
                Err("the channel test failed".into())
            }
        }
        ChannelCommand::Models { channel, json } => {
            let models = service::channel_tools::fetch_models(ctx, &CLI, &tool_client()?, &channel)
                .await
                .map_err(describe)?;
            show(json, &models, |m| m.join("\n"))
        }
        ChannelCommand::Presets { json } => show(json, &presets::all(), |p| output::presets(p)),
        ChannelCommand::Show { channel, json } => {
            let channel = service::channels::get(ctx, &CLI, &channel)
                .await
                .map_err(describe)?;
            show(json, &ChannelView::new(&channel, qpu), output::channel)
        }
        ChannelCommand::Update {
            channel,
            rename,
            flags,
            enable,
            disable,
            json,
        } => {
            let mut input = channel_input(flags)?;
            input.name = rename;
            input.status = if enable {
                Some("enabled".into())
            } else if disable {
                Some("disabled".into())
            } else {
                None
            };
            let channel = service::channels::update(ctx, &CLI, &channel, input)
                .await
                .map_err(describe)?;
            show(json, &ChannelView::new(&channel, qpu), |c| {
                format!("Updated channel.\n{}", output::channel(c))
            })
        }
        ChannelCommand::Delete { channel } => {
            service::channels::delete(ctx, &CLI, &channel)
                .await
                .map_err(describe)?;
            print(format_args!("Deleted channel {channel}."))
        }
    }
}

async fn price(ctx: &Ctx, command: PriceCommand) -> CommandResult {
    match command {
        PriceCommand::Set {
            model,
            input,
            output: output_price,
            cached_input,
            cache_write,
            per_request,
            context_tokens,
            json,
        } => {
            let price = service::prices::set(
                ctx,
                &CLI,
                &model,
                &PriceInput {
                    input,
                    output: output_price,
                    cached_input,
                    cache_write,
                    per_request,
                    context_tokens,
                },
            )
            .await
            .map_err(describe)?;
            let mut description = PriceView::describe(&price.price);
            if let Some(tokens) = price.context_tokens {
                description.push_str(&format!(", a context window of {tokens} tokens"));
            }
            show(json, &PriceView::new(&price), |p| {
                format!("Price of {} set: {description}.", p.model)
            })
        }
        PriceCommand::List { json } => {
            let prices = service::prices::list(ctx, &CLI).await.map_err(describe)?;
            if json.json {
                let views: Vec<PriceView> = prices.iter().map(PriceView::new).collect();
                return print_json(&views);
            }
            print(output::prices(&prices))
        }
        PriceCommand::Delete { model } => {
            service::prices::delete(ctx, &CLI, &model)
                .await
                .map_err(describe)?;
            print(format_args!("Removed the price of {model}."))
        }
    }
}

async fn group(ctx: &Ctx, command: GroupCommand) -> CommandResult {
    match command {
        GroupCommand::Create {
            name,
            ratio,
            description,
            selectable,
            limits,
            json,
        } => {
            let group = service::groups::create(
                ctx,
                &CLI,
                &name,
                GroupInput {
                    ratio,
                    description,
                    user_selectable: Some(selectable),
                    rate_limits: limits.input(),
                },
            )
            .await
            .map_err(describe)?;
            show(json, &GroupView::new(&group), |g| {
                format!(
                    "Created group.\n{}",
                    output::groups(std::slice::from_ref(g))
                )
            })
        }
        GroupCommand::List { json } => {
            let groups = service::groups::list(ctx, &CLI).await.map_err(describe)?;
            let views: Vec<GroupView> = groups.iter().map(GroupView::new).collect();
            show(json, &views, |v| output::groups(v))
        }
        GroupCommand::Update {
            name,
            ratio,
            description,
            selectable,
            limits,
            json,
        } => {
            let group = service::groups::update(
                ctx,
                &CLI,
                &name,
                GroupInput {
                    ratio,
                    description,
                    user_selectable: selectable,
                    rate_limits: limits.input(),
                },
            )
            .await
            .map_err(describe)?;
            show(json, &GroupView::new(&group), |g| {
                format!(
                    "Updated group.\n{}",
                    output::groups(std::slice::from_ref(g))
                )
            })
        }
        GroupCommand::Delete { name } => {
            service::groups::delete(ctx, &CLI, &name)
                .await
                .map_err(describe)?;
            print(format_args!("Deleted group {name}."))
        }
    }
}

async fn logs(ctx: &Ctx, args: LogsArgs) -> CommandResult {
    let qpu = quota_per_usd(ctx).await?;
    let (rows, totals) = service::logs::query(
        ctx,
        &CLI,
        LogQuery {
            username: args.user,
            model: args.model,
            request_id: args.request_id,
            limit: Some(args.limit),
            ..LogQuery::default()
        },
    )
    .await
    .map_err(describe)?;
    let views: Vec<LogView> = rows.iter().map(|l| LogView::new(l, qpu)).collect();
    if args.json.json {
        return print_json(&serde_json::json!({
            "data": views,
            "totals": {
                "requests": totals.requests,
                "cost": totals.cost,
                "cost_usd": crate::domain::money::Quota(totals.cost).usd_f64(qpu),
                "prompt_tokens": totals.prompt_tokens,
                "completion_tokens": totals.completion_tokens,
            }
        }));
    }
    print(output::logs(&views, &totals, qpu))
}

async fn option(ctx: &Ctx, command: OptionCommand) -> CommandResult {
    match command {
        OptionCommand::List { json } => {
            let options = service::options::list(ctx, &CLI).await.map_err(describe)?;
            show(json, &options, |o| output::options(o))
        }
        OptionCommand::Set { name, value } => {
            let info = service::options::set(ctx, &CLI, &name, &value)
                .await
                .map_err(|error| match error.fields() {
                    // The value is positional: name the option it was meant for.
                    [problem] => format!("{name}: {}", problem.message),
                    _ => describe(error),
                })?;
            print(format_args!("{} = {}", info.name, info.value))
        }
        OptionCommand::Reset { name } => {
            let info = service::options::reset(ctx, &CLI, &name)
                .await
                .map_err(describe)?;
            print(format_args!("{} = {} (default)", info.name, info.value))
        }
    }
}

async fn code(ctx: &Ctx, command: CodeCommand) -> CommandResult {
    let qpu = quota_per_usd(ctx).await?;
    match command {
        CodeCommand::Create {
            count,
            usd,
            uses,
            expires,
            name,
            csv,
            json,
        } => {
            let input = service::codes::CreateCodes {
                count,
                usd: usd.clone(),
                uses,
                expires: expires.clone(),
                name: name.clone(),
            };
            let codes = service::codes::create(ctx, &CLI, input)
                .await
                .map_err(describe)?;
            if let Some(path) = csv {
                let mut text =
                    crate::domain::csv::row(&["id", "code", "usd", "uses", "expires", "name"]);
                for c in &codes {
                    text.push_str(&crate::domain::csv::row(&[
                        c.id.to_string().as_str(),
                        c.code.as_str(),
                        usd.trim(),
                        uses.unwrap_or(1).to_string().as_str(),
                        expires.as_deref().unwrap_or(""),
                        name.as_deref().unwrap_or(""),
                    ]));
                }
                std::fs::write(&path, text)
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            }
            if json.json {
                let list: Vec<serde_json::Value> = codes
                    .iter()
                    .map(|c| serde_json::json!({ "id": c.id, "code": c.code }))
                    .collect();
                return print_json(&list);
            }
            let lines: Vec<&str> = codes.iter().map(|c| c.code.as_str()).collect();
            print(lines.join("\n"))
        }
        CodeCommand::List { name, state, json } => {
            let now = crate::clock::now_ms();
            let views: Vec<CodeView> =
                service::codes::list(ctx, &CLI, name.as_deref(), state.as_deref())
                    .await
                    .map_err(describe)?
                    .iter()
                    .map(|c| CodeView::new(c, qpu, now))
                    .collect();
            show(json, &views, |list| output::codes(list))
        }
        CodeCommand::Disable { id, name } => {
            let disabled = service::codes::disable(ctx, &CLI, id, name.as_deref())
                .await
                .map_err(describe)?;
            print(format_args!("Disabled {disabled} code(s)."))
        }
    }
}

async fn order(ctx: &Ctx, command: OrderCommand) -> CommandResult {
    let qpu = quota_per_usd(ctx).await?;
    // The receipt's link: public_url, or the default listen address.
    let base = portal_base(ctx).await?;
    let listen_url = base.as_str();
    match command {
        OrderCommand::List {
            user,
            status,
            limit,
            json,
        } => {
            let views: Vec<OrderView> =
                service::topups::list(ctx, &CLI, user.as_deref(), status.as_deref(), limit)
                    .await
                    .map_err(describe)?
                    .iter()
                    .map(|o| OrderView::new(o, qpu))
                    .collect();
            show(json, &views, |list| output::orders(list))
        }
        OrderCommand::Show { id, json } => {
            let (order, events) = service::topups::show(ctx, &CLI, id)
                .await
                .map_err(describe)?;
            let view = OrderView::new(&order, qpu);
            let events: Vec<EventView> = events.iter().map(EventView::new).collect();
            if json.json {
                return print_json(&serde_json::json!({ "order": view, "events": events }));
            }
            print(output::order(&view, &events))
        }
        OrderCommand::Credit { id, reason } => {
            let order = service::topups::credit(ctx, &CLI, id, &reason, listen_url)
                .await
                .map_err(describe)?;
            print(format_args!(
                "Order {} credited: {} units added to {}.",
                order.id, order.credited, order.username
            ))
        }
        OrderCommand::Refund { id, usd, reason } => {
            let refund = service::topups::refund(ctx, &CLI, id, usd.as_deref(), &reason)
                .await
                .map_err(describe)?;
            print(format_args!(
                "Stripe accepted refund {refund}; the balance moves when Stripe reports it (charge.refunded)."
            ))
        }
        OrderCommand::Reconcile {
            older_than_secs,
            json,
        } => {
            let report = service::topups::reconcile(ctx, &CLI, older_than_secs, listen_url)
                .await
                .map_err(describe)?;
            if json.json {
                return print_json(&report);
            }
            print(format_args!(
                "Checked {} pending order(s): {} credited, {} closed, {} held, {} could not be checked.",
                report.checked, report.credited, report.closed, report.held, report.failed
            ))
        }
    }
}

/// Where people are sent back to: the site's `public_url`, or the default listen address
/// (said, because a provider needs the address people really use).
async fn portal_base(ctx: &Ctx) -> Result<String, String> {
    let options = service::options::stored(ctx).await.map_err(describe)?;
    Ok(options.base_url(&format!(
        "http://{}",
        crate::config::ServerConfig::default().listen
    )))
}

async fn oauth(ctx: &Ctx, command: OauthCommand) -> CommandResult {
    match command {
        OauthCommand::Add {
            kind,
            name,
            display_name,
            client_id,
            client_secret,
            issuer,
            auth_url,
            token_url,
            api_url,
            json,
        } => {
            let client = crate::oauth::OAuthClient::new().map_err(|e| e.to_string())?;
            let input = service::oauth::NewProvider {
                kind,
                name,
                display_name,
                client_id,
                client_secret,
                issuer,
                auth_url,
                token_url,
                api_url,
            };
            let provider = service::oauth::add_provider(ctx, &CLI, &client, input)
                .await
                .map_err(describe)?;
            let view = OAuthProviderView::new(&provider, &portal_base(ctx).await?);
            show(json, &view, |v| {
                format!(
                    "Added the sign-in provider '{}' ({}).\n\nRegister this callback URL with the provider:\n\n    {}\n\nIt is built from the option public_url; set that to the address people use first.",
                    v.name, v.kind, v.callback_url
                )
            })
        }
        OauthCommand::List { json } => {
            let base = portal_base(ctx).await?;
            let views: Vec<OAuthProviderView> = service::oauth::list_providers(ctx, &CLI)
                .await
                .map_err(describe)?
                .iter()
                .map(|p| OAuthProviderView::new(p, &base))
                .collect();
            show(json, &views, |list| output::oauth_providers(list))
        }
        OauthCommand::Remove { name } => {
            service::oauth::remove_provider(ctx, &CLI, &name)
                .await
                .map_err(describe)?;
            print(format_args!(
                "Removed the sign-in provider '{name}' and the identities linked through it."
            ))
        }
    }
}

async fn admin_token(ctx: &Ctx, command: AdminTokenCommand) -> CommandResult {
    match command {
        AdminTokenCommand::Create { user, name, json } => {
            let (row, plain) = service::admin_tokens::create(ctx, &CLI, &user, &name)
                .await
                .map_err(describe)?;
            #[derive(Serialize)]
            struct Created {
                token: String,
                #[serde(flatten)]
                info: AdminTokenView,
            }
            let created = Created {
                token: plain,
                info: AdminTokenView::new(&row),
            };
            show(json, &created, |c| {
                format!(
                    "Created admin token '{}' for {} (id {}).\n\n    {}\n\nUse it as 'Authorization: Bearer <token>' on /api. It is shown only now.",
                    c.info.name, c.info.user, c.info.id, c.token
                )
            })
        }
        AdminTokenCommand::List { json } => {
            let rows = service::admin_tokens::list(ctx, &CLI)
                .await
                .map_err(describe)?;
            let views: Vec<AdminTokenView> = rows.iter().map(AdminTokenView::new).collect();
            show(json, &views, |v| output::admin_tokens(v))
        }
        AdminTokenCommand::Delete { id } => {
            service::admin_tokens::delete(ctx, &CLI, id)
                .await
                .map_err(describe)?;
            print(format_args!("Revoked admin token {id}."))
        }
    }
}

async fn billing(ctx: &Ctx, command: BillingCommand) -> CommandResult {
    match command {
        BillingCommand::Replay { file, json } => {
            let qpu = quota_per_usd(ctx).await?;
            let report = service::billing::replay(ctx, &CLI, &file)
                .await
                .map_err(describe)?;
            let failed = report.failed.len();
            show(json, &report, |r| {
                let mut text = format!(
                    "Applied {} record(s), charging {} ({} units); {} already applied; {} failed.",
                    r.applied.len(),
                    crate::domain::money::Quota(r.charged).usd_string(qpu),
                    r.charged,
                    r.already_applied.len(),
                    r.failed.len()
                );
                for failure in &r.failed {
                    text.push_str(&format!(
                        "\n  line {} ({}): {}",
                        failure.line,
                        failure.request_id.as_deref().unwrap_or("unreadable"),
                        failure.error
                    ));
                }
                if !r.failed.is_empty() {
                    text.push_str("\nFix what the errors say and replay the file again; applied records are skipped.");
                }
                text
            })?;
            if failed > 0 {
                Err(format!("{failed} record(s) could not be applied").into())
            } else {
                Ok(())
            }
        }
    }
}

async fn model_alias(ctx: &Ctx, command: AliasCommand) -> CommandResult {
    match command {
        AliasCommand::Add { name, to, json } => {
            let alias = service::model_aliases::add(ctx, &CLI, &name, &to)
                .await
                .map_err(describe)?;
            show(json, &AliasView::new(&alias), |a| {
                format!(
                    "Added alias {} → {}: requests for {} are routed and billed as {}.",
                    a.name, a.to, a.name, a.to
                )
            })
        }
        AliasCommand::List { json } => {
            let aliases = service::model_aliases::list(ctx, &CLI)
                .await
                .map_err(describe)?;
            let views: Vec<AliasView> = aliases.iter().map(AliasView::new).collect();
            show(json, &views, |v| output::aliases(v))
        }
        AliasCommand::Remove { name } => {
            service::model_aliases::remove(ctx, &CLI, &name)
                .await
                .map_err(describe)?;
            print(format_args!("Removed the alias {name}."))
        }
    }
}

async fn audit(ctx: &Ctx, command: AuditCommand) -> CommandResult {
    match command {
        AuditCommand::List {
            actor,
            action,
            target,
            from,
            to,
            limit,
            json,
        } => {
            let query = service::audit::AuditQuery {
                actor,
                action,
                target,
                from,
                to,
                before: None,
                limit: Some(limit),
            };
            let rows = service::audit::query(ctx, &CLI, &query)
                .await
                .map_err(describe)?;
            show(json, &rows, |r| output::audit_rows(r))
        }
        AuditCommand::Verify { json } => {
            let verdict = service::audit::verify(ctx, &CLI).await.map_err(describe)?;
            match verdict {
                service::audit::Verdict::Intact { rows } => {
                    let answer = serde_json::json!({ "intact": true, "rows": rows });
                    show(json, &answer, |_| {
                        format!("The audit log is intact: {rows} row(s) checked.")
                    })
                }
                service::audit::Verdict::Broken { id, reason } => {
                    if json.json {
                        print_json(&serde_json::json!({
                            "intact": false, "first_bad_id": id, "reason": reason
                        }))?;
                    }
                    Err(format!("the audit log does not verify at row {id}: {reason}").into())
                }
            }
        }
    }
}

async fn rollups(ctx: &Ctx, command: RollupsCommand) -> CommandResult {
    match command {
        RollupsCommand::Rebuild { from, to, json } => {
            let rebuilt = service::rollups::rebuild_between(
                ctx,
                &CLI,
                from.as_deref(),
                to.as_deref(),
                crate::clock::now_ms(),
            )
            .await
            .map_err(describe)?;
            show(json, &rebuilt, |r| {
                format!(
                    "Rebuilt {} bucket(s) of 15 minutes from {} log row(s).",
                    r.buckets, r.rows
                )
            })
        }
    }
}

async fn ledger(ctx: &Ctx, command: LedgerCommand) -> CommandResult {
    let qpu = quota_per_usd(ctx).await?;
    match command {
        LedgerCommand::Check { json } => {
            let check = service::ledger::check(ctx, &CLI).await.map_err(describe)?;
            let bad = check.discrepancies.len();
            let bad_orgs = check.org_discrepancies.len();
            show(json, &check, |c| output::ledger_check(c, qpu))?;
            if bad > 0 || bad_orgs > 0 {
                Err(format!(
                    "{bad} account(s) and {bad_orgs} organisation(s) do not match their ledger"
                )
                .into())
            } else {
                Ok(())
            }
        }
        LedgerCommand::Show {
            username,
            limit,
            json,
        } => {
            let entries = service::ledger::entries(ctx, &CLI, &username, limit)
                .await
                .map_err(describe)?;
            show(json, &entries, |e| output::ledger_entries(e, qpu))
        }
    }
}

/// `--no-budget` is an empty period; otherwise the flags as given.
fn budget_change(flags: BudgetChangeFlags) -> (Option<String>, Option<String>) {
    if flags.no_budget {
        (Some(String::new()), None)
    } else {
        (flags.budget_period, flags.budget_usd)
    }
}

async fn org(ctx: &Ctx, command: OrgCommand) -> CommandResult {
    let qpu = quota_per_usd(ctx).await?;
    match command {
        OrgCommand::Create {
            name,
            slug,
            owner,
            timezone,
            budget,
            group,
            json,
        } => {
            let org = service::orgs::create(
                ctx,
                &CLI,
                CreateOrg {
                    name,
                    slug,
                    owner: Some(owner),
                    timezone,
                    budget_period: budget.budget_period,
                    budget_usd: budget.budget_usd,
                    group,
                },
            )
            .await
            .map_err(describe)?;
            show(json, &org, |o| {
                format!("Created organisation.\n{}", output::org(o))
            })
        }
        OrgCommand::List { json } => {
            let orgs = service::orgs::list(ctx, &CLI).await.map_err(describe)?;
            show(json, &orgs, |list| output::orgs(list))
        }
        OrgCommand::Show { slug, json } => {
            let org = service::orgs::show(ctx, &CLI, &slug)
                .await
                .map_err(describe)?;
            show(json, &org, output::org)
        }
        OrgCommand::Update {
            slug,
            name,
            new_slug,
            timezone,
            budget,
            group,
            json,
        } => {
            let (budget_period, budget_usd) = budget_change(budget);
            let org = service::orgs::update(
                ctx,
                &CLI,
                &slug,
                UpdateOrg {
                    name,
                    slug: new_slug,
                    timezone,
                    budget_period,
                    budget_usd,
                    group,
                },
            )
            .await
            .map_err(describe)?;
            show(json, &org, |o| {
                format!("Updated organisation.\n{}", output::org(o))
            })
        }
        OrgCommand::Delete {
            slug,
            force,
            reason,
        } => {
            service::orgs::delete(ctx, &CLI, &slug, DeleteOrg { force, reason })
                .await
                .map_err(describe)?;
            print(format_args!("Deleted organisation {slug}."))
        }
        OrgCommand::Transfer { slug, username } => {
            let outcome = service::orgs::transfer(ctx, &CLI, &slug, &username)
                .await
                .map_err(describe)?;
            match outcome {
                Transfer::Done => print(format_args!(
                    "{username} owns {slug} now; the previous owner is an admin."
                )),
                Transfer::Offered => print(format_args!(
                    "Ownership of {slug} is offered to {username}, who must accept it."
                )),
            }
        }
        OrgCommand::Topup {
            slug,
            usd,
            units,
            reason,
            idempotency_key,
            json,
        } => {
            let change = QuotaChange {
                usd,
                units,
                reason,
                idempotency_key,
            };
            let changed = service::orgs::adjust_wallet(ctx, &CLI, &slug, change)
                .await
                .map_err(describe)?;
            let applied = changed.applied;
            show(json, &changed.org, |o| {
                if applied {
                    format!("Wallet changed.\n{}", output::org(o))
                } else {
                    format!(
                        "Already applied: that idempotency key was used before; the wallet is unchanged.\n{}",
                        output::org(o)
                    )
                }
            })
        }
        OrgCommand::Ledger { slug, limit, json } => {
            let entries = service::orgs::ledger(ctx, &CLI, &slug, limit)
                .await
                .map_err(describe)?;
            show(json, &entries, |e| output::ledger_entries(e, qpu))
        }
        OrgCommand::Member(command) => org_member(ctx, command).await,
    }
}

async fn org_member(ctx: &Ctx, command: OrgMemberCommand) -> CommandResult {
    match command {
        OrgMemberCommand::Add {
            slug,
            username,
            role,
            team,
            manager,
        } => {
            service::orgs::add_member(
                ctx,
                &CLI,
                &slug,
                AddMember {
                    username: username.clone(),
                    role: Some(role),
                    team,
                    manager,
                },
            )
            .await
            .map_err(describe)?;
            print(format_args!("Added {username} to {slug}."))
        }
        OrgMemberCommand::Update {
            slug,
            username,
            role,
        } => {
            service::orgs::update_member(ctx, &CLI, &slug, &username, &role)
                .await
                .map_err(describe)?;
            print(format_args!("{username} is {} of {slug} now.", role.trim()))
        }
        OrgMemberCommand::Remove { slug, username } => {
            service::orgs::remove_member(ctx, &CLI, &slug, &username)
                .await
                .map_err(describe)?;
            print(format_args!("Removed {username} from {slug}."))
        }
        OrgMemberCommand::Cap {
            slug,
            team,
            username,
            cap_usd,
            default: _,
        } => {
            let team = service::orgs::set_member_cap(ctx, &CLI, &slug, &team, &username, cap_usd)
                .await
                .map_err(describe)?;
            print(output::team(&team))
        }
    }
}

async fn team(ctx: &Ctx, command: TeamCommand) -> CommandResult {
    match command {
        TeamCommand::Create {
            slug,
            name,
            budget,
            member_cap_usd,
            groups,
            json,
        } => {
            let team = service::orgs::create_team(
                ctx,
                &CLI,
                &slug,
                TeamInput {
                    name: Some(name),
                    budget_period: budget.budget_period,
                    budget_usd: budget.budget_usd,
                    member_cap_usd,
                    groups,
                },
            )
            .await
            .map_err(describe)?;
            show(json, &team, |t| {
                format!("Created team.\n{}", output::team(t))
            })
        }
        TeamCommand::Update {
            slug,
            team,
            name,
            budget,
            member_cap_usd,
            no_member_cap,
            groups,
            json,
        } => {
            let (budget_period, budget_usd) = budget_change(budget);
            let member_cap_usd = if no_member_cap {
                Some(String::new())
            } else {
                member_cap_usd
            };
            let team = service::orgs::update_team(
                ctx,
                &CLI,
                &slug,
                &team,
                TeamInput {
                    name,
                    budget_period,
                    budget_usd,
                    member_cap_usd,
                    groups,
                },
            )
            .await
            .map_err(describe)?;
            show(json, &team, |t| {
                format!("Updated team.\n{}", output::team(t))
            })
        }
        TeamCommand::Delete { slug, team } => {
            service::orgs::delete_team(ctx, &CLI, &slug, &team)
                .await
                .map_err(describe)?;
            print(format_args!("Deleted team {team} of {slug}."))
        }
        TeamCommand::Member(TeamMemberCommand::Add {
            slug,
            team,
            username,
            manager,
        }) => {
            let input = TeamMemberInput {
                manager: Some(manager),
                cap_usd: None,
            };
            let team = service::orgs::put_team_member(ctx, &CLI, &slug, &team, &username, input)
                .await
                .map_err(describe)?;
            print(output::team(&team))
        }
        TeamCommand::Member(TeamMemberCommand::Remove {
            slug,
            team,
            username,
        }) => {
            service::orgs::remove_team_member(ctx, &CLI, &slug, &team, &username)
                .await
                .map_err(describe)?;
            print(format_args!(
                "Removed {username} from team {team} of {slug}."
            ))
        }
    }
}
