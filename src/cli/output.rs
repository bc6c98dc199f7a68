//! Text output of the command line: amounts in dollars with the exact quota units beside them.

use std::fmt::Write;

use crate::domain::money::Quota;
use crate::options::OptionInfo;
use crate::providers::presets::Preset;
use crate::records::ledger::Entry;
use crate::records::logs::LogTotals;
use crate::records::prices::PriceRow;
use crate::service::ledger::LedgerCheck;
use crate::service::views::{
    AdminTokenView, AliasView, ChannelView, GroupView, LogView, PriceView, RateLimitsView,
    TokenView, UserView,
};

fn money(usd: f64, units: i64) -> String {
    format!("${usd:.6} ({units} units)")
}

/// A wallet's figure, which the command line (an administrator) always sees; "-" otherwise.
fn wallet_money(usd: Option<f64>, units: Option<i64>) -> String {
    match (usd, units) {
        (Some(usd), Some(units)) => money(usd, units),
        _ => "-".into(),
    }
}

/// Left-aligned columns sized to their widest cell; a cell is one line, whatever it holds.
fn table(headers: &[&str], rows: Vec<Vec<String>>) -> String {
    let rows: Vec<Vec<String>> = rows
        .into_iter()
        .map(|row| {
            row.into_iter()
                .map(|cell| crate::domain::names::terminal_safe(&cell, false).into_owned())
                .collect()
        })
        .collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let line = |cells: Vec<String>, out: &mut String| {
        let padded: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<width$}", width = widths[i]))
            .collect();
        let _ = writeln!(out, "{}", padded.join("  ").trim_end());
    };
    line(headers.iter().map(|h| h.to_string()).collect(), &mut out);
    if rows.is_empty() {
        out.push_str("(none)\n");
    }
    for row in rows {
        line(row, &mut out);
    }
    out.trim_end().to_string()
}

/// Rate limits as a line reads them: `60 rpm, 100000 tpm, 2 at once`; `none` when none is set.
fn rate_limits(limits: &RateLimitsView) -> String {
    let parts: Vec<String> = [
        limits.rpm.map(|n| format!("{n} rpm")),
        limits.tpm.map(|n| format!("{n} tpm")),
        limits.max_concurrent.map(|n| format!("{n} at once")),
    ]
    .into_iter()
    .flatten()
    .collect();
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(", ")
    }
}

pub fn user(u: &UserView) -> String {
    format!(
        "{} (id {}, {}, {})\n  group:    {}\n  balance:  {}\n  used:     {}\n  requests: {}\n  limits:   {} (all keys together)",
        u.username,
        u.id,
        u.role,
        u.status,
        u.group,
        money(u.quota_usd, u.quota),
        money(u.used_usd, u.used_quota),
        u.request_count,
        rate_limits(&u.rate_limits),
    )
}

pub fn users(list: &[UserView]) -> String {
    table(
        &[
            "ID", "USERNAME", "ROLE", "STATUS", "GROUP", "BALANCE", "USED", "REQUESTS",
        ],
        list.iter()
            .map(|u| {
                vec![
                    u.id.to_string(),
                    u.username.clone(),
                    u.role.to_string(),
                    u.status.to_string(),
                    u.group.clone(),
                    format!("${:.6}", u.quota_usd),
                    format!("${:.6}", u.used_usd),
                    u.request_count.to_string(),
                ]
            })
            .collect(),
    )
}

fn token_limit(t: &TokenView) -> String {
    if t.unlimited {
        "limited by the user's balance".to_string()
    } else {
        money(t.remaining_usd, t.remaining_quota)
    }
}

pub fn token(t: &TokenView) -> String {
    let team = match (&t.org, &t.team_name) {
        (Some(org), Some(team)) => format!("  team:     {team} of {org}\n"),
        _ => String::new(),
    };
    team + &format!(
        "  key:      {}\n  status:   {}\n  left:     {}\n  budget:   {}\n  used:     {}\n  requests: {}\n  expires:  {}\n  models:   {}\n  IPs:      {}\n  limits:   {}",
        t.key_display,
        t.status,
        token_limit(t),
        match &t.budget {
            Some(b) => format!(
                "${:.2} {}, ${:.6} spent, starts over at {}",
                b.usd, b.period, b.spent_usd, b.resets_at
            ),
            None => "none".into(),
        },
        money(t.used_usd, t.used_quota),
        t.request_count,
        t.expires_at.as_deref().unwrap_or("never"),
        if t.allowed_models.is_empty() {
            "all of the group's".to_string()
        } else {
            t.allowed_models.join(", ")
        },
        if t.allowed_ips.is_empty() {
            "any".to_string()
        } else {
            t.allowed_ips.join(", ")
        },
        match rate_limits(&t.rate_limits).as_str() {
            "none" => "none of its own (its group's apply)".to_string(),
            own => own.to_string(),
        },
    )
}

pub fn tokens(list: &[TokenView]) -> String {
    table(
        &[
            "ID", "NAME", "KEY", "STATUS", "LEFT", "USED", "REQUESTS", "EXPIRES",
        ],
        list.iter()
            .map(|t| {
                vec![
                    t.id.to_string(),
                    t.name.clone(),
                    t.key_display.clone(),
                    t.status.to_string(),
                    if t.unlimited {
                        "unlimited".into()
                    } else {
                        format!("${:.6}", t.remaining_usd)
                    },
                    format!("${:.6}", t.used_usd),
                    t.request_count.to_string(),
                    t.expires_at.clone().unwrap_or_else(|| "never".into()),
                ]
            })
            .collect(),
    )
}

pub fn channel(c: &ChannelView) -> String {
    let mapping: Vec<String> = c
        .model_mapping
        .iter()
        .map(|(from, to)| format!("{from}→{to}"))
        .collect();
    let reason = if c.status_reason.is_empty() {
        String::new()
    } else {
        format!(" ({})", c.status_reason)
    };
    format!(
        "{} (id {}, {}, {}{reason})\n  base URL: {}\n  keys:     {}\n  models:   {}\n  mapping:  {}\n  groups:   {}\n  priority: {}  weight: {}\n  used:     {}  requests: {}",
        c.name,
        c.id,
        c.channel_type,
        c.status,
        c.base_url,
        keys_line(c),
        c.models.join(", "),
        if mapping.is_empty() {
            "none".to_string()
        } else {
            mapping.join(", ")
        },
        c.groups.join(", "),
        c.priority,
        c.weight,
        money(c.used_usd, c.used_quota),
        c.request_count,
    )
}

/// The masked keys, each disabled one followed by why.
fn keys_line(c: &ChannelView) -> String {
    c.keys
        .iter()
        .enumerate()
        .map(
            |(index, key)| match c.disabled_keys.iter().find(|d| d.index == index) {
                Some(disabled) => format!("{key} [disabled {}: {}]", disabled.at, disabled.reason),
                None => key.clone(),
            },
        )
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn channels(list: &[ChannelView]) -> String {
    table(
        &[
            "ID", "NAME", "TYPE", "STATUS", "PRIORITY", "WEIGHT", "GROUPS", "MODELS", "BASE URL",
        ],
        list.iter()
            .map(|c| {
                vec![
                    c.id.to_string(),
                    c.name.clone(),
                    c.channel_type.to_string(),
                    c.status.to_string(),
                    c.priority.to_string(),
                    c.weight.to_string(),
                    c.groups.join(","),
                    c.models.join(","),
                    c.base_url.clone(),
                ]
            })
            .collect(),
    )
}

pub fn presets(list: &[Preset]) -> String {
    table(
        &["PRESET", "VENDOR", "BASE URL", "MODELS"],
        list.iter()
            .map(|p| {
                let models = if p.models.is_empty() {
                    "(give --models)".to_string()
                } else {
                    p.models.join(",")
                };
                vec![
                    p.name.clone(),
                    p.display_name.clone(),
                    p.base_url.clone(),
                    models,
                ]
            })
            .collect(),
    )
}

pub fn prices(list: &[PriceRow]) -> String {
    table(
        &["MODEL", "PRICE", "CONTEXT"],
        list.iter()
            .map(|p| {
                vec![
                    p.model.clone(),
                    PriceView::describe(&p.price),
                    p.context_tokens
                        .map_or_else(|| "-".to_string(), |tokens| tokens.to_string()),
                ]
            })
            .collect(),
    )
}

pub fn groups(list: &[GroupView]) -> String {
    table(
        &[
            "NAME",
            "RATIO",
            "SELECTABLE",
            "LIMITS PER KEY",
            "DESCRIPTION",
        ],
        list.iter()
            .map(|g| {
                vec![
                    g.name.clone(),
                    format!("×{}", g.ratio),
                    if g.user_selectable { "yes" } else { "no" }.to_string(),
                    rate_limits(&g.rate_limits),
                    g.description.clone(),
                ]
            })
            .collect(),
    )
}

pub fn logs(list: &[LogView], totals: &LogTotals, quota_per_usd: i64) -> String {
    let rows = list
        .iter()
        .map(|l| {
            vec![
                l.time
                    .chars()
                    .take(19)
                    .collect::<String>()
                    .replace('T', " "),
                l.user.clone(),
                l.token_name.clone(),
                match &l.requested_model {
                    Some(requested) => format!("{requested} → {}", l.model),
                    None => l.model.clone(),
                },
                l.channel.clone(),
                format!(
                    "{}+{}{}",
                    l.prompt_tokens,
                    l.completion_tokens,
                    if l.usage_estimated { "~" } else { "" }
                ),
                format!("${:.6}", l.cost_usd),
                format!("{} ms", l.latency_ms),
                l.outcome.to_string(),
                l.upstream_request_id.clone().unwrap_or_default(),
            ]
        })
        .collect();
    let marked: String = list
        .iter()
        .filter_map(|l| {
            let note = l.implausible_usage.as_ref()?;
            Some(format!(
                "\n! {} {}: the upstream {note}; billed at the request's bounds.",
                l.time
                    .chars()
                    .take(19)
                    .collect::<String>()
                    .replace('T', " "),
                l.request_id
            ))
        })
        .collect();
    format!(
        "{}{marked}\n\nMatching requests: {}, total cost {} ({} units), {} prompt + {} completion tokens. (~ = counted locally)",
        table(
            &[
                "TIME (UTC)",
                "USER",
                "KEY",
                "MODEL",
                "CHANNEL",
                "TOKENS",
                "COST",
                "LATENCY",
                "OUTCOME",
                "UPSTREAM REQUEST ID"
            ],
            rows
        ),
        totals.requests,
        Quota(totals.cost).usd_string(quota_per_usd),
        totals.cost,
        totals.prompt_tokens,
        totals.completion_tokens,
    )
}

pub fn aliases(list: &[AliasView]) -> String {
    if list.is_empty() {
        return "No model aliases. Add one with `tollgate model alias add NAME --to MODEL`.".into();
    }
    let rows = list
        .iter()
        .map(|a| {
            vec![
                a.name.clone(),
                a.to.clone(),
                a.created_at.chars().take(10).collect(),
            ]
        })
        .collect();
    table(&["ALIAS", "MODEL", "ADDED"], rows)
}

pub fn ledger_check(check: &LedgerCheck, quota_per_usd: i64) -> String {
    let people = people_check(check, quota_per_usd);
    let orgs = org_check(check, quota_per_usd);
    format!("{people}\n{orgs}")
}

fn org_check(check: &LedgerCheck, quota_per_usd: i64) -> String {
    if check.org_discrepancies.is_empty() {
        return format!(
            "Checked {} organisation(s): every wallet is its ledger minus its team keys' spend.",
            check.orgs
        );
    }
    let amount = |units: i64| format!("{} ({units})", Quota(units).usd_string(quota_per_usd));
    let rows = check
        .org_discrepancies
        .iter()
        .map(|d| {
            let expected = d.ledger_total.saturating_sub(d.used_quota);
            vec![
                d.slug.clone(),
                amount(d.quota),
                amount(expected),
                amount(d.quota.saturating_sub(expected)),
            ]
        })
        .collect();
    format!(
        "Checked {} organisation(s); {} do not match their ledger:\n{}",
        check.orgs,
        check.org_discrepancies.len(),
        table(
            &[
                "ORGANISATION",
                "WALLET (UNITS)",
                "LEDGER SAYS",
                "DIFFERENCE"
            ],
            rows
        )
    )
}

fn people_check(check: &LedgerCheck, quota_per_usd: i64) -> String {
    if check.discrepancies.is_empty() {
        return format!(
            "Checked {} account(s): every balance is its ledger minus its relay spend.",
            check.accounts
        );
    }
    let rows = check
        .discrepancies
        .iter()
        .map(|d| {
            let expected = d.ledger_total.saturating_sub(d.used_quota);
            // Units too: a difference below a millionth of a dollar must still show.
            let amount =
                |units: i64| format!("{} ({units})", Quota(units).usd_string(quota_per_usd));
            vec![
                d.username.clone(),
                amount(d.quota),
                amount(expected),
                amount(d.quota.saturating_sub(expected)),
            ]
        })
        .collect();
    format!(
        "Checked {} account(s); {} do not match their ledger:\n{}",
        check.accounts,
        check.discrepancies.len(),
        table(
            &["USER", "BALANCE (UNITS)", "LEDGER SAYS", "DIFFERENCE"],
            rows
        )
    )
}

pub fn audit_rows(rows: &[crate::records::audit::AuditRow]) -> String {
    if rows.is_empty() {
        return "No audit rows.".into();
    }
    let change = |value: &Option<serde_json::Value>| {
        value
            .as_ref()
            .map(crate::domain::canonical_json::to_string)
            .unwrap_or_default()
    };
    let rows = rows
        .iter()
        .map(|r| {
            vec![
                r.id.to_string(),
                crate::service::views::timestamp(r.at)
                    .chars()
                    .take(19)
                    .collect::<String>()
                    .replace('T', " "),
                r.actor.clone(),
                r.auth.clone(),
                r.action.clone(),
                r.target.clone(),
                change(&r.before),
                change(&r.after),
            ]
        })
        .collect();
    table(
        &[
            "ID",
            "TIME (UTC)",
            "ACTOR",
            "AUTH",
            "ACTION",
            "TARGET",
            "BEFORE",
            "AFTER",
        ],
        rows,
    )
}

pub fn ledger_entries(entries: &[Entry], quota_per_usd: i64) -> String {
    if entries.is_empty() {
        return "No ledger rows.".into();
    }
    let rows = entries
        .iter()
        .map(|e| {
            vec![
                crate::service::views::timestamp(e.created_at)
                    .chars()
                    .take(19)
                    .collect::<String>()
                    .replace('T', " "),
                e.kind.to_string(),
                Quota(e.amount).usd_string(quota_per_usd),
                e.actor.clone(),
                e.reason.clone(),
            ]
        })
        .collect();
    table(&["TIME (UTC)", "KIND", "AMOUNT", "BY", "REASON"], rows)
}

pub fn options(list: &[OptionInfo]) -> String {
    table(
        &["OPTION", "VALUE", "DEFAULT", "MEANING"],
        list.iter()
            .map(|o| {
                vec![
                    o.name.to_string(),
                    o.value.clone(),
                    o.default.to_string(),
                    o.description.to_string(),
                ]
            })
            .collect(),
    )
}

pub fn admin_tokens(list: &[AdminTokenView]) -> String {
    table(
        &["ID", "USER", "NAME", "TOKEN", "LAST USED", "CREATED"],
        list.iter()
            .map(|a| {
                vec![
                    a.id.to_string(),
                    a.user.clone(),
                    a.name.clone(),
                    a.token_display.clone(),
                    a.last_used_at.clone().unwrap_or_else(|| "never".into()),
                    a.created_at.clone(),
                ]
            })
            .collect(),
    )
}

pub fn oauth_providers(list: &[crate::service::views::OAuthProviderView]) -> String {
    if list.is_empty() {
        return "No sign-in providers. Add one with `tollgate oauth add`.".into();
    }
    table(
        &["NAME", "TYPE", "BUTTON", "CLIENT ID", "CALLBACK URL"],
        list.iter()
            .map(|p| {
                vec![
                    p.name.clone(),
                    p.kind.to_string(),
                    p.display_name.clone(),
                    p.client_id.clone(),
                    p.callback_url.clone(),
                ]
            })
            .collect(),
    )
}

pub fn codes(list: &[crate::service::views::CodeView]) -> String {
    if list.is_empty() {
        return "No codes.".into();
    }
    table(
        &[
            "ID",
            "CODE",
            "NAME",
            "VALUE",
            "USES LEFT",
            "STATE",
            "LAST REDEEMED",
            "EXPIRES",
        ],
        list.iter()
            .map(|c| {
                vec![
                    c.id.to_string(),
                    c.prefix.clone(),
                    c.name.clone(),
                    format!("${:.2}", c.usd),
                    format!("{}/{}", c.uses_left, c.uses),
                    serde_json::to_value(c.state)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default(),
                    match (&c.last_redeemed_by, &c.last_redeemed_at) {
                        (Some(who), Some(when)) => format!("{who} at {when}"),
                        _ => String::new(),
                    },
                    c.expires_at.clone().unwrap_or_else(|| "never".into()),
                ]
            })
            .collect(),
    )
}

pub fn orders(list: &[crate::service::views::OrderView]) -> String {
    if list.is_empty() {
        return "No orders.".into();
    }
    table(
        &[
            "ID", "USER", "STATUS", "BALANCE", "PRICE", "CREDITED", "CREATED", "NOTE",
        ],
        list.iter()
            .map(|o| {
                vec![
                    o.id.to_string(),
                    o.user.clone(),
                    o.status.to_string(),
                    format!("${}", o.usd),
                    o.price.clone(),
                    format!("${:.2}", o.credited_usd),
                    o.created_at.clone(),
                    o.note.clone(),
                ]
            })
            .collect(),
    )
}

/// One order in full, with the Stripe events applied to it.
pub fn order(
    o: &crate::service::views::OrderView,
    events: &[crate::service::views::EventView],
) -> String {
    let mut lines = vec![
        format!("Order {} ({})", o.id, o.status),
        format!("  user            {}", o.user),
        format!(
            "  balance bought  ${} ({} units, bonus {})",
            o.usd, o.quota, o.bonus
        ),
        format!("  price           {}", o.price),
        format!(
            "  checkout        {}",
            o.session_id.as_deref().unwrap_or("-")
        ),
        format!(
            "  payment intent  {}",
            o.payment_intent.as_deref().unwrap_or("-")
        ),
        format!(
            "  credited        {} units (${:.2})",
            o.credited, o.credited_usd
        ),
        format!(
            "  refunded        {} (took back {} units)",
            o.refunded, o.refund_taken
        ),
        format!(
            "  disputed        {} (took back {} units)",
            o.disputed, o.dispute_taken
        ),
        format!("  created         {}", o.created_at),
        format!("  paid            {}", o.paid_at.as_deref().unwrap_or("-")),
        format!(
            "  expires         {}",
            o.expires_at.as_deref().unwrap_or("-")
        ),
    ];
    if !o.note.is_empty() {
        lines.push(format!("  note            {}", o.note));
    }
    if events.is_empty() {
        lines.push("  no Stripe events yet".into());
    } else {
        lines.push("  events:".into());
        for e in events {
            lines.push(format!(
                "    {}  {}  {}  {}",
                e.received_at, e.kind, e.outcome, e.id
            ));
        }
    }
    lines.join("\n")
}

fn budget_line(budget: Option<&crate::service::orgs::BudgetUse>) -> String {
    match budget {
        Some(b) => format!(
            "${:.2} {}, {} spent since {}, starts over at {}",
            b.usd,
            b.period,
            money(b.spent_usd, b.spent_quota),
            b.period_start,
            b.next_start
        ),
        None => "none".into(),
    }
}

pub fn org(o: &crate::service::orgs::OrgView) -> String {
    let mut out = format!(
        "{} ({}, id {})\n  owner:    {}{}\n  group:    {}\n  zone:     {}\n  wallet:   {}\n  used:     {}\n  requests: {}\n  budget:   {}",
        o.name,
        o.slug,
        o.id,
        o.owner.as_deref().unwrap_or("(none)"),
        o.pending_owner
            .as_deref()
            .map(|p| format!(" (offered to {p})"))
            .unwrap_or_default(),
        o.group,
        o.effective_timezone,
        wallet_money(o.quota_usd, o.quota),
        wallet_money(o.used_usd, o.used_quota),
        o.request_count
            .map_or_else(|| "-".into(), |n| n.to_string()),
        budget_line(o.budget.as_ref()),
    );
    let members = table(
        &["MEMBER", "ROLE", "TEAMS"],
        o.members
            .iter()
            .map(|m| vec![m.username.clone(), m.role.to_string(), m.teams.join(", ")])
            .collect(),
    );
    let _ = write!(out, "\n\n{members}");
    for t in &o.teams {
        let _ = write!(out, "\n\n{}", team(t));
    }
    out
}

pub fn orgs(list: &[crate::service::orgs::OrgSummary]) -> String {
    table(
        &["ID", "SLUG", "NAME", "GROUP", "WALLET", "MEMBERS", "TEAMS"],
        list.iter()
            .map(|o| {
                vec![
                    o.id.to_string(),
                    o.slug.clone(),
                    o.name.clone(),
                    o.group.clone(),
                    wallet_money(o.quota_usd, o.quota),
                    o.members.to_string(),
                    o.teams.to_string(),
                ]
            })
            .collect(),
    )
}

pub fn team(t: &crate::service::orgs::TeamView) -> String {
    let members = table(
        &["MEMBER", "MANAGER", "CAP", "SPENT"],
        t.members
            .iter()
            .map(|m| {
                let (cap, spent) = match &m.cap {
                    Some(cap) => (
                        format!(
                            "${:.2}{}",
                            cap.usd,
                            if m.own_cap_quota.is_some() {
                                ""
                            } else {
                                " (team's)"
                            }
                        ),
                        money(cap.spent_usd, cap.spent_quota),
                    ),
                    None => ("none".into(), String::new()),
                };
                vec![
                    m.username.clone(),
                    if m.manager { "yes" } else { "" }.into(),
                    cap,
                    spent,
                ]
            })
            .collect(),
    );
    format!(
        "team {} (id {})\n  groups:     {}\n  budget:     {}\n  member cap: {}\n{members}",
        t.name,
        t.id,
        t.groups.join(", "),
        budget_line(t.budget.as_ref()),
        t.member_cap_usd
            .map_or_else(|| "none".to_string(), |usd| format!("${usd:.2} per period")),
    )
}
