//! The audit log: one row for every change an administrator, root, the command line or an
//! admin token makes, written by the one write path ([`Ctx::write`]) in the change's own
//! transaction. Each operation describes what it changed (`Tx::audit`); the write path adds
//! who, how and from where, and chains the row to the one before it. A write by an audited
//! caller that changed rows but described nothing fails (and rolls back): no change can forget
//! its row. Changes the server makes itself and people's changes to their own records are not
//! audited.
//!
//! The chain: `hash` = SHA-256 over `prev_hash` followed by the row (without `hash`) as RFC
//! 8785 canonical JSON; the first row's `prev_hash` is 64 zeros, or after retention the hash
//! of the last row it deleted. `tollgate audit verify` walks it.

use std::future::Future;
use std::net::IpAddr;

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::{Caller, Ctx, FieldProblem, ServiceError, ServiceResult};
use crate::domain::calendar::SiteCalendar;
use crate::domain::canonical_json;
use crate::msg;
use crate::records::audit::{AuditEntry, AuditFilter, AuditRow};
use crate::service::db::{self, DbError, Tx};

/// How the caller of a request was signed in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Auth {
    Session,
    AdminToken(i64),
}

/// Where a request came from: what its audit rows say besides the caller. Set around each
/// portal and `/api` request ([`within`]), so the one write path finds it without every
/// operation's signature carrying it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    pub auth: Auth,
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
}

tokio::task_local! {
    static ORIGIN: Origin;
}

/// Runs `work` (a request's handling) with `origin` as where its changes came from.
pub async fn within<F: Future>(origin: Origin, work: F) -> F::Output {
    ORIGIN.scope(origin, work).await
}

/// The longest user agent kept.
const USER_AGENT_CHARS: usize = 512;

/// An entry for `action` on `target`, without fields yet.
pub fn entry(action: &'static str, target: impl Into<String>) -> AuditEntry {
    AuditEntry {
        action,
        target: target.into(),
        before: None,
        after: None,
        ledger_id: None,
    }
}

/// An entry for `action` on `target` with the fields that changed between `before` and
/// `after` (objects; None for a creation or a deletion). Fields named in `hidden` — secrets
/// and personal data — are recorded as `"changed"` when they changed, never their values.
pub fn change(
    action: &'static str,
    target: impl Into<String>,
    before: Option<Value>,
    after: Option<Value>,
    hidden: &[&str],
) -> AuditEntry {
    let (before, after) = redacted_diff(before, after, hidden);
    AuditEntry {
        before,
        after,
        ..entry(action, target)
    }
}

/// For an update, only the fields that differ (both sides); hidden fields as `"changed"`.
fn redacted_diff(
    before: Option<Value>,
    after: Option<Value>,
    hidden: &[&str],
) -> (Option<Value>, Option<Value>) {
    let hide = |side: Option<Value>, other: Option<&Value>| -> Option<Value> {
        let Value::Object(fields) = side? else {
            return None;
        };
        let mut kept = Map::new();
        for (name, value) in fields {
            let other_value = other.and_then(|o| o.get(&name));
            if other.is_some() && other_value == Some(&value) {
                continue;
            }
            if hidden.contains(&name.as_str()) {
                let empty = value.is_null() || value.as_str().is_some_and(str::is_empty);
                kept.insert(name, json!(if empty { "" } else { "changed" }));
            } else {
                kept.insert(name, value);
            }
        }
        Some(Value::Object(kept))
    };
    let new_before = hide(before.clone(), after.as_ref());
    let new_after = hide(after, before.as_ref());
    (new_before, new_after)
}

/// Whose changes the log keeps: administrators' (by session or admin token) and the command
/// line's.
fn audited(caller: &Caller) -> bool {
    matches!(caller, Caller::Cli | Caller::Admin { .. })
}

/// The target of a change to an organisation: its id, which stays when its slug changes, so
/// its history stays whole.
pub fn org_target(org_id: i64) -> String {
    format!("org:{org_id}")
}

/// The target of a change to a team (or its members): the organisation's and the team's ids,
/// which stay when either is renamed.
pub fn team_target(org_id: i64, team_id: i64) -> String {
    format!("{}/team:{team_id}", org_target(org_id))
}

/// The organisation an entry's target is in (`org:ID` or `org:ID/team:ID`), if any.
pub fn org_of_target(target: &str) -> Option<i64> {
    let rest = target.strip_prefix("org:")?;
    let (org, inner) = match rest.split_once('/') {
        Some((org, inner)) => (org, Some(inner)),
        None => (rest, None),
    };
    let id = |text: &str| {
        (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
            .then(|| text.parse::<i64>().ok())
            .flatten()
    };
    if let Some(inner) = inner {
        id(inner.strip_prefix("team:")?)?;
    }
    id(org)
}

/// Whether an entry describes a change inside an organisation (its target is `org:ID…`).
pub fn is_organisation_change(target: &str) -> bool {
    org_of_target(target).is_some()
}

/// `entry` with `context` — what a reader needs besides the ids of the target to know what
/// the change was about: the organisation's slug, the team's or the member's name, as they
/// were — on each side the entry has (the fields that changed stay as they are).
pub fn with_context(mut entry: AuditEntry, context: Value) -> AuditEntry {
    let Value::Object(context) = context else {
        return entry;
    };
    if entry.before.is_none() && entry.after.is_none() {
        entry.after = Some(Value::Object(Map::new()));
    }
    for side in [&mut entry.before, &mut entry.after].into_iter().flatten() {
        if let Value::Object(fields) = side {
            for (name, value) in &context {
                fields.entry(name.clone()).or_insert_with(|| value.clone());
            }
        }
    }
    entry
}

/// Called by the write path inside the transaction, after the work: stores what the work
/// described, chained, when the caller is audited.
pub(super) async fn record(tx: &mut Tx, caller: &Caller) -> ServiceResult<()> {
    let mut entries = tx.take_audits();
    if !audited(caller) {
        // An organisation's admins are ordinary accounts, and what they change in it (budgets,
        // caps, roles, members, invitations) is kept for the organisation to see as an
        // administrator's change is kept for the site.
        // So are the server's own changes to an organisation's wallet (a card payment that
        // Stripe confirmed).
        entries.retain(|entry| is_organisation_change(&entry.target));
        if entries.is_empty() || !matches!(caller, Caller::User(_) | Caller::System) {
            return Ok(());
        }
    }
    if entries.is_empty() {
        if tx.rows_written() > 0 && !tx.is_own_records() {
            // A bug: an operation an administrator can run changed rows without describing
            // them. Refusing it (the transaction rolls back) keeps the log whole.
            return Err(DbError::Corrupt(
                "an administrator's change described no audit entry; it was not made".into(),
            )
            .into());
        }
        return Ok(());
    }
    let (actor, auth, ip, user_agent) = who(tx, caller).await?;
    let (mut last_id, mut last_hash) = db::audit::lock_head(tx).await?;
    let at = db::now_ms();
    for entry in entries {
        let mut row = AuditRow {
            id: last_id + 1,
            at,
            actor: actor.clone(),
            auth: auth.clone(),
            ip: ip.clone(),
            user_agent: user_agent.clone(),
            action: entry.action.to_string(),
            target: entry.target,
            before: entry.before,
            after: entry.after,
            ledger_id: entry.ledger_id,
            prev_hash: last_hash,
            hash: String::new(),
        };
        row.hash = hash_of(&row);
        db::audit::append(tx, &row).await?;
        last_id = row.id;
        last_hash = row.hash;
    }
    Ok(())
}

/// The actor, how they were signed in, their address and user agent.
async fn who(
    tx: &mut Tx,
    caller: &Caller,
) -> ServiceResult<(String, String, Option<String>, Option<String>)> {
    let origin = ORIGIN.try_with(Clone::clone).ok();
    let actor = match caller {
        Caller::Admin { user_id, .. } | Caller::User(user_id) => db::audit::username(tx, *user_id)
            .await?
            .unwrap_or_else(|| format!("user:{user_id}")),
        Caller::System => "system".to_string(),
        Caller::Cli => "cli".to_string(),
    };
    let auth = match (caller, &origin) {
        (Caller::Cli, _) => "cli".to_string(),
        (Caller::System, _) => "system".to_string(),
        (
            _,
            Some(Origin {
                auth: Auth::AdminToken(id),
                ..
            }),
        ) => format!("admin_token:{id}"),
        _ => "session".to_string(),
    };
    let ip = origin.as_ref().and_then(|o| o.ip).map(|ip| ip.to_string());
    let user_agent = origin.and_then(|o| o.user_agent).map(|ua| {
        crate::domain::names::terminal_safe(&ua, false)
            .chars()
            .take(USER_AGENT_CHARS)
            .collect()
    });
    Ok((actor, auth, ip, user_agent))
}

/// The row's hash: SHA-256 over the previous hash and the row (all but `hash`) as canonical
/// JSON, in lowercase hex.
pub fn hash_of(row: &AuditRow) -> String {
    let mut value = serde_json::to_value(row).unwrap_or(Value::Null);
    if let Value::Object(fields) = &mut value {
        fields.remove("hash");
    }
    let mut digest = Sha256::new();
    digest.update(row.prev_hash.as_bytes());
    digest.update(canonical_json::to_string(&value).as_bytes());
    crate::domain::secret_key::hex(&digest.finalize().into())
}

/// Rows newest first, narrowed by `filter`. Administrators only.
pub async fn list(
    ctx: &Ctx,
    caller: &Caller,
    filter: &AuditFilter,
) -> ServiceResult<Vec<AuditRow>> {
    caller.require_admin()?;
    Ok(db::audit::list(&ctx.db, filter).await?)
}

/// The audit log's filters as a person gives them (a page's query, `/api/audit`, the command
/// line): every field narrows; empty ones do not.
#[derive(Clone, Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// `cli` or an administrator's username.
    pub actor: String,
    /// `channel.update`, `user.balance`, …
    pub action: String,
    /// `channel:12`, `user:alice`, … An organisation's, `org:3`, finds its teams' rows too.
    pub target: String,
    /// A date in the site's zone or an RFC 3339 instant.
    pub from: String,
    /// A date in the site's zone (the whole day) or an RFC 3339 instant.
    pub to: String,
    /// Rows older than this id (the next page).
    pub before: Option<i64>,
    pub limit: Option<i64>,
}

/// The most rows one listing answers.
pub const MAX_LIMIT: i64 = 1_000;

impl AuditQuery {
    /// The filter it stands for, with every wrong value named.
    pub fn filter(&self, calendar: &SiteCalendar) -> ServiceResult<AuditFilter> {
        let mut problems = Vec::new();
        let text = |value: &str| Some(value.trim().to_string()).filter(|v| !v.is_empty());
        let mut bound = |field: &'static str, value: &str, end: bool| {
            let value = value.trim();
            if value.is_empty() {
                return None;
            }
            let parsed = calendar.bound_ms(value, end);
            if parsed.is_none() {
                problems.push(FieldProblem {
                    field,
                    message: msg!("filter-time-invalid", value = value),
                });
            }
            parsed
        };
        let from_ms = bound("from", &self.from, false);
        let to_ms = bound("to", &self.to, true);
        let limit = self.limit.unwrap_or(100);
        if !(1..=MAX_LIMIT).contains(&limit) {
            problems.push(FieldProblem {
                field: "limit",
                message: msg!("filter-limit-range", max = MAX_LIMIT),
            });
        }
        if !problems.is_empty() {
            return Err(ServiceError::Invalid(problems));
        }
        Ok(AuditFilter {
            actor: text(&self.actor),
            action: text(&self.action),
            target: text(&self.target),
            from_ms,
            to_ms,
            before_id: self.before,
            limit,
        })
    }
}

/// Rows newest first for a query as a person gave it, read in the site's zone.
pub async fn query(ctx: &Ctx, caller: &Caller, query: &AuditQuery) -> ServiceResult<Vec<AuditRow>> {
    caller.require_admin()?;
    let zone = super::options::current(&ctx.db).await?.timezone;
    let filter = query.filter(&SiteCalendar::new(&zone))?;
    Ok(db::audit::list(&ctx.db, &filter).await?)
}

/// What `verify` found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every row matches; how many were checked.
    Intact { rows: u64 },
    /// The first row that does not match its predecessor or its own hash.
    Broken { id: i64, reason: &'static str },
}

/// Rows read per step of [`verify`].
const VERIFY_BATCH: i64 = 1_000;

/// Walks the chain from the anchor: each row's `prev_hash` must be the hash before it, its
/// ids consecutive, and its `hash` recomputed from its fields.
pub async fn verify(ctx: &Ctx, caller: &Caller) -> ServiceResult<Verdict> {
    caller.require_admin()?;
    let mut expected_prev = db::audit::anchor(&ctx.db).await?;
    let mut last_id: Option<i64> = None;
    let mut rows_checked = 0u64;
    loop {
        let rows = db::audit::chain_after(&ctx.db, last_id.unwrap_or(0), VERIFY_BATCH).await?;
        if rows.is_empty() {
            return Ok(Verdict::Intact { rows: rows_checked });
        }
        for row in rows {
            if last_id.is_some_and(|last| row.id != last + 1) {
                return Ok(Verdict::Broken {
                    id: row.id,
                    reason: "a row before it is missing",
                });
            }
            if row.prev_hash != expected_prev {
                return Ok(Verdict::Broken {
                    id: row.id,
                    reason: "its prev_hash is not the hash of the row before it",
                });
            }
            if hash_of(&row) != row.hash {
                return Ok(Verdict::Broken {
                    id: row.id,
                    reason: "its fields do not match its hash",
                });
            }
            expected_prev = row.hash;
            last_id = Some(row.id);
            rows_checked += 1;
        }
    }
}

/// Rows retention deletes per transaction.
const PURGE_BATCH: i64 = 500;

/// Deletes rows older than `days` (none when 0), oldest first, in small batches, keeping the
/// last deleted hash as the anchor `verify` starts from. The server's own work: not audited.
pub async fn purge_older_than(ctx: &Ctx, days: i64) -> ServiceResult<u64> {
    if days <= 0 {
        return Ok(0);
    }
    let cutoff = db::now_ms() - days.saturating_mul(86_400_000);
    let mut total = 0;
    loop {
        let deleted = ctx
            .write(&Caller::System, async |tx| {
                Ok(db::audit::delete_oldest_before(tx, cutoff, PURGE_BATCH).await?)
            })
            .await?;
        total += deleted;
        if deleted == 0 {
            return Ok(total);
        }
    }
}

/// What each record's audit rows show: its settings in plain values (money in quota units,
/// ratios and prices as decimal text), secrets as a digest that [`change`] turns into
/// `"changed"` (list their names in its `hidden`).
pub mod fields {
    use serde_json::{Value, json};

    use crate::domain::secret_key;
    use crate::records::groups::GroupRow;
    use crate::records::prices::PriceRow;
    use crate::records::tokens::TokenRow;
    use crate::records::users::UserRow;
    use crate::service::db::channels::ChannelSpec;

    /// The fields of a channel that hold secrets.
    pub const CHANNEL_SECRETS: &[&str] = &["keys", "header_values"];
    /// The fields of an account that are personal or secret.
    pub const USER_PRIVATE: &[&str] = &["email", "password"];

    fn digest(text: &str) -> String {
        if text.is_empty() {
            String::new()
        } else {
            secret_key::hash(text)
        }
    }

    pub fn channel(c: &ChannelSpec) -> Value {
        let header_values: Vec<&str> = c.extra_headers.values().map(String::as_str).collect();
        json!({
            "name": c.name,
            "type": c.channel_type.as_str(),
            "base_url": c.base_url,
            "keys": digest(&c.secret_keys.join("\n")),
            "models": c.models,
            "model_mapping": c.model_mapping,
            "groups": c.groups,
            "priority": c.priority,
            "weight": c.weight,
            "status": c.status.as_str(),
            "timeout_secs": c.timeout_secs,
            "headers": c.extra_headers.keys().collect::<Vec<_>>(),
            "header_values": digest(&header_values.join("\n")),
        })
    }

    pub fn user(u: &UserRow) -> Value {
        json!({
            "username": u.username,
            "display_name": u.display_name,
            "email": u.email.clone().unwrap_or_default(),
            "email_verified": u.email_verified,
            "password": digest(u.password_hash.as_deref().unwrap_or("")),
            "role": u.role.as_str(),
            "status": u.status.as_str(),
            "group": u.group,
            "rpm": u.rate_limits.rpm,
            "tpm": u.rate_limits.tpm,
            "max_concurrent": u.rate_limits.max_concurrent,
        })
    }

    pub fn token(t: &TokenRow) -> Value {
        json!({
            "user": t.username,
            "name": t.name,
            "status": t.status.as_str(),
            "expires_at": t.expires_at,
            "unlimited": t.unlimited,
            "remaining_quota": t.remaining_quota,
            "models": t.allowed_models,
            "allowed_ips": t.allowed_ips,
            "group": t.group,
            "budget_period": t.budget.map(|b| b.period.as_str()),
            "budget_quota": t.budget.map(|b| b.quota),
            "rpm": t.rate_limits.rpm,
            "tpm": t.rate_limits.tpm,
            "max_concurrent": t.rate_limits.max_concurrent,
        })
    }

    pub fn group(g: &GroupRow) -> Value {
        json!({
            "ratio": g.ratio.to_string(),
            "description": g.description,
            "user_selectable": g.user_selectable,
            "rpm": g.rate_limits.rpm,
            "tpm": g.rate_limits.tpm,
            "max_concurrent": g.rate_limits.max_concurrent,
        })
    }

    pub fn price(p: &PriceRow) -> Value {
        json!({
            "price": crate::service::views::PriceView::describe(&p.price),
            "context_tokens": p.context_tokens,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_update_keeps_what_changed_and_hides_secrets() {
        let (before, after) = redacted_diff(
            Some(json!({"name": "a", "weight": 1, "keys": "sk-old", "email": "x@y"})),
            Some(json!({"name": "a", "weight": 2, "keys": "sk-new", "email": "x@y"})),
            &["keys", "email"],
        );
        assert_eq!(before, Some(json!({"weight": 1, "keys": "changed"})));
        assert_eq!(after, Some(json!({"weight": 2, "keys": "changed"})));
    }

    #[test]
    fn a_creation_keeps_every_field_with_secrets_hidden() {
        let (before, after) =
            redacted_diff(None, Some(json!({"name": "a", "keys": "sk"})), &["keys"]);
        assert_eq!(before, None);
        assert_eq!(after, Some(json!({"name": "a", "keys": "changed"})));
    }

    #[test]
    fn organisation_targets_are_ids() {
        assert_eq!(org_target(12), "org:12");
        assert_eq!(team_target(12, 3), "org:12/team:3");
        assert_eq!(org_of_target("org:12"), Some(12));
        assert_eq!(org_of_target("org:12/team:3"), Some(12));
        for other in [
            "org:acme",
            "org:12/key:4",
            "org:",
            "org:12/team:",
            "user:org:1",
            "key:1",
        ] {
            assert_eq!(org_of_target(other), None, "{other}");
            assert!(!is_organisation_change(other), "{other}");
        }
    }

    #[test]
    fn context_is_on_every_side_an_entry_has() {
        let entry = with_context(
            change(
                "org.member.update",
                "org:1",
                Some(json!({"username": "bob", "role": "member"})),
                Some(json!({"username": "bob", "role": "admin"})),
                &[],
            ),
            json!({"org": "acme", "username": "bob"}),
        );
        assert_eq!(
            entry.before,
            Some(json!({"org": "acme", "username": "bob", "role": "member"}))
        );
        assert_eq!(
            entry.after,
            Some(json!({"org": "acme", "username": "bob", "role": "admin"}))
        );
        let removed = with_context(
            change(
                "team.delete",
                "org:1/team:2",
                Some(json!({"x": 1})),
                None,
                &[],
            ),
            json!({"team": "Research"}),
        );
        assert_eq!(removed.before, Some(json!({"x": 1, "team": "Research"})));
        assert_eq!(removed.after, None);
    }

    #[test]
    fn the_hash_covers_every_field_but_itself() {
        let mut row = AuditRow {
            id: 1,
            at: 5,
            actor: "cli".into(),
            auth: "cli".into(),
            ip: None,
            user_agent: None,
            action: "option.set".into(),
            target: "option:site_name".into(),
            before: Some(json!({"value": "A"})),
            after: Some(json!({"value": "B"})),
            ledger_id: None,
            prev_hash: "0".repeat(64),
            hash: String::new(),
        };
        let first = hash_of(&row);
        row.hash = first.clone();
        assert_eq!(
            hash_of(&row),
            first,
            "the stored hash is not part of what it covers"
        );
        row.after = Some(json!({"value": "C"}));
        assert_ne!(hash_of(&row), first);
    }
}
