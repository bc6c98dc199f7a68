use super::groups::{self, DEFAULT_GROUP};
use super::{
    Caller, Ctx, Problems, ServiceError, ServiceResult, audit, decimal_err, name_err, usd_to_quota,
};
use crate::domain::kinds::LedgerKind;
use crate::domain::kinds::{Role, Status};
use crate::domain::money::{MicroUsd, Quota};
use crate::domain::password::PasswordError;
use crate::domain::{names, password};
use crate::i18n::Message;
use crate::msg;
use crate::service::db::DbError;
use crate::service::db::ledger::NewEntry;
use crate::service::db::users::{NewUser, UserPatch, UserRow};
use crate::service::db::{self, Db, Tx};
use crate::service::rate_limits::RateLimitInput;

#[derive(Debug, Clone, Default)]
pub struct CreateUser {
    pub username: String,
    pub password: Option<String>,
    pub email: Option<String>,
    pub role: Option<String>,
    pub group: Option<String>,
    /// Starting balance in dollars, e.g. "5".
    pub quota_usd: Option<String>,
    /// Rate limits on all of the account's keys together.
    pub rate_limits: RateLimitInput,
}

#[derive(Debug, Clone, Default)]
pub struct UpdateUser {
    /// A new username (to tell apart accounts whose names differ only in case, say).
    pub username: Option<String>,
    pub password: Option<String>,
    pub email: Option<Option<String>>,
    pub display_name: Option<String>,
    pub role: Option<String>,
    pub status: Option<String>,
    pub group: Option<String>,
    /// A field absent stays, an empty one is cleared.
    pub rate_limits: RateLimitInput,
}

/// The longest idempotency key a caller may give.
const MAX_IDEMPOTENCY_KEY: usize = 120;

/// A balance change: exactly one of the two amounts, why, and (optionally) a key that makes
/// submitting it again harmless.
#[derive(Debug, Clone, Default)]
pub struct QuotaChange {
    pub usd: Option<String>,
    pub units: Option<i64>,
    pub reason: Option<String>,
    /// The same key twice applies the change once. Without one, every call is a new change.
    pub idempotency_key: Option<String>,
}

/// What a balance change did.
#[derive(Debug, Clone)]
pub struct QuotaChanged {
    pub user: UserRow,
    /// False when the idempotency key was used before: nothing changed now.
    pub applied: bool,
}

fn parse_role(text: &str) -> ServiceResult<Role> {
    Role::parse(text).ok_or_else(|| {
        ServiceError::invalid(
            "role",
            msg!("choice-invalid", value = text, choices = Role::choices()),
        )
    })
}

fn parse_status(text: &str) -> ServiceResult<Status> {
    Status::parse(text).ok_or_else(|| {
        ServiceError::invalid(
            "status",
            msg!("choice-invalid", value = text, choices = Status::choices()),
        )
    })
}

/// One address, as [`crate::domain::email::parse`] takes it.
pub(crate) fn check_email(email: &str) -> ServiceResult<String> {
    crate::domain::email::parse(email).map_err(|_| {
        ServiceError::invalid(
            "email",
            msg!(
                "email-invalid",
                value = crate::domain::names::quoted(email.trim())
            ),
        )
    })
}

pub(crate) fn password_problem(error: &PasswordError) -> Message {
    match error {
        PasswordError::TooShort => msg!("password-too-short", min = password::MIN_PASSWORD_CHARS),
        PasswordError::TooLong => msg!("password-too-long", max = password::MAX_PASSWORD_CHARS),
        PasswordError::Common => msg!("password-common"),
        PasswordError::Hashing => msg!("password-hashing-failed"),
    }
}

/// A unique value another user holds: the username or the email, named as the field.
fn user_conflict(error: DbError, username: &str) -> ServiceError {
    match error {
        DbError::Conflict(_) if error.is_conflict_on("email") => {
            ServiceError::conflict("email", msg!("email-taken"))
        }
        DbError::Conflict(_) => {
            ServiceError::conflict("username", msg!("user-exists", name = username))
        }
        other => ServiceError::Db(other),
    }
}

pub(crate) async fn hash_password(plain: String) -> ServiceResult<String> {
    password::validate(&plain)
        .map_err(|e| ServiceError::invalid("password", password_problem(&e)))?;
    tokio::task::spawn_blocking(move || password::hash(&plain))
        .await
        .map_err(|_| ServiceError::invalid("password", msg!("password-hashing-failed")))?
        .map_err(|e| ServiceError::invalid("password", password_problem(&e)))
}

pub async fn create(ctx: &Ctx, caller: &Caller, input: CreateUser) -> ServiceResult<UserRow> {
    create_with(ctx, caller, input, async |_, _| Ok(())).await
}

/// [`create`], with `also` run in the account's transaction once the row is in, given its id:
/// a step that must commit with it or stop it (spending the first-run token, linking the
/// identity it signed up with).
pub(crate) async fn create_with(
    ctx: &Ctx,
    caller: &Caller,
    input: CreateUser,
    also: impl AsyncFnOnce(&mut Tx, i64) -> ServiceResult<()>,
) -> ServiceResult<UserRow> {
    caller.require_admin()?;
    let db = &ctx.db;
    let mut problems = Problems::default();
    let username =
        problems.check(names::username(&input.username).map_err(name_err("username")))?;
    let role = problems
        .check(input.role.as_deref().map(parse_role).transpose())?
        .flatten()
        .unwrap_or(Role::User);
    let group = input.group.unwrap_or_else(|| DEFAULT_GROUP.to_string());
    problems.check(groups::require(db, "group", &group).await)?;
    let email = problems
        .check(input.email.as_deref().map(check_email).transpose())?
        .flatten();
    let quota = match &input.quota_usd {
        Some(text) => {
            let options = super::options::current(db).await?;
            let units = MicroUsd::parse(text)
                .map_err(decimal_err("quota_usd"))
                .and_then(|usd| usd_to_quota("quota_usd", usd, options.quota_per_usd()));
            problems.check(units)?.unwrap_or(Quota::ZERO)
        }
        None => Quota::ZERO,
    };
    let password = match &input.password {
        Some(plain) => problems.check(
            password::validate(plain)
                .map_err(|e| ServiceError::invalid("password", password_problem(&e))),
        )?,
        None => None,
    };
    let rate_limits = problems
        .check(
            input
                .rate_limits
                .applied_to(crate::domain::rate_limits::RateLimits::NONE),
        )?
        .unwrap_or_default();
    let checked = problems.finish();
    let Some(username) = username else {
        return Err(checked
            .err()
            .unwrap_or_else(|| ServiceError::invalid("username", msg!("name-empty"))));
    };
    checked?;
    caller.may_manage_role(role)?;
    let password_hash = match (password, input.password) {
        (Some(()), Some(plain)) => Some(hash_password(plain).await?),
        _ => None,
    };
    let user = NewUser {
        username: username.clone(),
        password_hash,
        email,
        role,
        group,
        quota: quota.0,
        rate_limits,
    };
    let actor = caller.actor();
    let id = ctx
        .write(caller, async |tx| {
            let id = db::users::insert(tx, &user)
                .await
                .map_err(|e| user_conflict(e, &username))?;
            also(tx, id).await?;
            let mut created = audit::change(
                "user.create",
                format!("user:{username}"),
                None,
                Some(serde_json::json!({
                    "username": username,
                    "email": user.email.clone().unwrap_or_default(),
                    "role": user.role.as_str(),
                    "group": user.group,
                    "quota": quota.0,
                })),
                audit::fields::USER_PRIVATE,
            );
            // A starting balance is a grant in the ledger, like every balance that is not
            // relay spend.
            if quota.0 != 0 {
                let key = format!("grant:user:{id}");
                let entry = NewEntry {
                    user_id: id,
                    kind: LedgerKind::Grant,
                    amount: quota.0,
                    actor: &actor,
                    reference: "",
                    reason: "starting balance",
                    idempotency_key: &key,
                };
                let Some(ledger_id) = db::ledger::insert(tx, &entry).await? else {
                    // The id is new: nothing can have used its grant's key.
                    return Err(DbError::Corrupt(format!("ledger key {key} exists")).into());
                };
                created.ledger_id = Some(ledger_id);
            }
            tx.audit(created);
            Ok(id)
        })
        .await?;
    find_id(db, id).await
}

/// A user by id, whoever asks (for the services themselves).
pub(crate) async fn find_id(db: &Db, id: i64) -> ServiceResult<UserRow> {
    db::users::find_by_id(db, id)
        .await?
        .ok_or_else(|| ServiceError::NotFound(msg!("user-id-not-found", id = id)))
}

/// A user by name, whoever asks (for the services themselves).
pub(crate) async fn find(db: &Db, username: &str) -> ServiceResult<UserRow> {
    db::users::find_by_username(db, username)
        .await?
        .ok_or_else(|| ServiceError::NotFound(msg!("user-not-found", name = username)))
}

/// A user by name: any for an administrator, only their own account for a user.
pub async fn get(ctx: &Ctx, caller: &Caller, username: &str) -> ServiceResult<UserRow> {
    let user = find(&ctx.db, username).await?;
    match caller.owner() {
        Some(own) if own != user.id => Err(ServiceError::NotFound(msg!(
            "user-not-found",
            name = username
        ))),
        _ => Ok(user),
    }
}

/// Usernames for the actor labels records keep (`admin:7`, `user:7`), so pages show who
/// rather than a number: a map from each label whose account still exists to its username.
/// `cli`, `system` and labels of accounts that are gone are left out (shown as they are).
pub async fn actor_names<'a>(
    ctx: &Ctx,
    caller: &Caller,
    labels: impl IntoIterator<Item = &'a str>,
) -> ServiceResult<std::collections::HashMap<String, String>> {
    caller.require_admin()?;
    let mut wanted: Vec<(String, i64)> = labels
        .into_iter()
        .filter_map(|label| {
            let (_, id) = label.split_once(':')?;
            Some((label.to_string(), id.parse().ok()?))
        })
        .collect();
    wanted.sort();
    wanted.dedup();
    let mut ids: Vec<i64> = wanted.iter().map(|(_, id)| *id).collect();
    ids.sort_unstable();
    ids.dedup();
    let names: std::collections::HashMap<i64, String> = db::users::by_ids(&ctx.db, &ids)
        .await?
        .into_iter()
        .filter_map(|(id, user)| Some((id, user.ok()?.username)))
        .collect();
    Ok(wanted
        .into_iter()
        .filter_map(|(label, id)| Some((label, names.get(&id)?.clone())))
        .collect())
}

/// A user by id: any for an administrator, only their own account for a user.
pub async fn by_id(ctx: &Ctx, caller: &Caller, id: i64) -> ServiceResult<UserRow> {
    match caller.owner() {
        Some(own) if own != id => Err(ServiceError::NotFound(msg!("user-id-not-found", id = id))),
        _ => find_id(&ctx.db, id).await,
    }
}

pub async fn list(
    ctx: &Ctx,
    caller: &Caller,
    limit: i64,
    offset: i64,
) -> ServiceResult<Vec<UserRow>> {
    caller.require_admin()?;
    Ok(db::users::list(&ctx.db, limit.clamp(1, 1000), offset.max(0)).await?)
}

/// The most accounts one search answers.
pub const SEARCH_LIMIT: i64 = 200;

/// Accounts by id, or whose username, display name or email address holds `text` (case
/// aside); everyone (the first [`SEARCH_LIMIT`]) when `text` is empty.
pub async fn search(ctx: &Ctx, caller: &Caller, text: &str) -> ServiceResult<Vec<UserRow>> {
    caller.require_admin()?;
    if text.trim().is_empty() {
        return Ok(db::users::list(&ctx.db, SEARCH_LIMIT, 0).await?);
    }
    Ok(db::users::search(&ctx.db, text, SEARCH_LIMIT).await?)
}

/// Changes an account. Only root changes administrators, or makes one.
pub async fn update(
    ctx: &Ctx,
    caller: &Caller,
    username: &str,
    input: UpdateUser,
) -> ServiceResult<UserRow> {
    caller.require_admin()?;
    let db = &ctx.db;
    let user = find(db, username).await?;
    caller.may_manage_role(user.role)?;
    let mut patch = UserPatch {
        display_name: input
            .display_name
            .map(|d| names::label("display name", &d).map_err(name_err("display_name")))
            .transpose()?,
        role: input.role.as_deref().map(parse_role).transpose()?,
        status: input.status.as_deref().map(parse_status).transpose()?,
        ..UserPatch::default()
    };
    if let Some(role) = patch.role {
        caller.may_manage_role(role)?;
    }
    if let Some(email) = input.email {
        patch.email = Some(email.as_deref().map(check_email).transpose()?);
    }
    if let Some(new_name) = input.username {
        patch.username = Some(names::username(&new_name).map_err(name_err("username"))?);
    }
    if let Some(group) = input.group {
        groups::require(db, "group", &group).await?;
        patch.group = Some(group);
    }
    if !input.rate_limits.is_empty() {
        patch.rate_limits = Some(input.rate_limits.applied_to(user.rate_limits)?);
    }
    if let Some(plain) = input.password {
        patch.password_hash = Some(hash_password(plain).await?);
    }
    // Disabling an account signs it out everywhere in the same transaction: its sessions'
    // rows go, so no page it has open works again (its keys stop through the relay's
    // directory, which the status change reaches).
    let signs_out = patch.status == Some(Status::Disabled) && user.status != Status::Disabled;
    ctx.write(caller, async |tx| {
        db::users::update(tx, user.id, &patch)
            .await
            .map_err(|e| user_conflict(e, username))?;
        if signs_out {
            db::web_sessions::delete_of_user_in(tx, user.id, None).await?;
        }
        tx.audit(audit::change(
            "user.update",
            format!("user:{}", user.username),
            Some(audit::fields::user(&user)),
            Some(audit::fields::user(&patch.applied_to(&user))),
            audit::fields::USER_PRIVATE,
        ));
        Ok(())
    })
    .await?;
    find_id(db, user.id).await
}

/// Accounts whose usernames or email addresses differ only in case or Unicode normalisation
/// (made before names were compared so), each group as spelled. When there are none, the
/// unique indexes that keep it so are made; the server refuses to start until there are none.
pub async fn settle_identities(ctx: &Ctx) -> ServiceResult<Vec<Vec<String>>> {
    let clashes = db::users::identity_clashes(&ctx.db).await?;
    if clashes.is_empty() {
        db::users::ensure_identity_indexes(&ctx.db).await?;
    }
    Ok(clashes)
}

/// Adds to (or, with a negative amount, deducts from) a user's balance, with a ledger row in
/// the same transaction. The balance changes only through a conditional update whose row
/// count is checked; a key submitted before changes nothing.
pub async fn change_quota(
    ctx: &Ctx,
    caller: &Caller,
    username: &str,
    change: QuotaChange,
) -> ServiceResult<QuotaChanged> {
    caller.require_admin()?;
    let db = &ctx.db;
    let user = find(db, username).await?;
    let units = quota_change_units(db, &change).await?;
    let reason = change.reason.as_deref().unwrap_or("").trim();
    // Every balance change an administrator makes says why (the ledger and the audit log
    // keep it).
    if reason.is_empty() {
        return Err(ServiceError::invalid(
            "reason",
            msg!("balance-reason-needed"),
        ));
    }
    if reason.chars().count() > 500 {
        return Err(ServiceError::invalid(
            "reason",
            msg!("name-too-long", max = 500_usize),
        ));
    }
    // A caller's keys have a namespace of their own, apart from the keys the system makes
    // (`grant:user:7`, `opening:7`), so no caller can block or shadow those.
    let key = match change.idempotency_key.as_deref().map(str::trim) {
        Some(key) if !key.is_empty() => {
            if key.chars().count() > MAX_IDEMPOTENCY_KEY {
                return Err(ServiceError::invalid(
                    "idempotency_key",
                    msg!("name-too-long", max = MAX_IDEMPOTENCY_KEY),
                ));
            }
            format!("client:{key}")
        }
        _ => format!("adjustment:{}", uuid::Uuid::new_v4().simple()),
    };
    let actor = caller.actor();
    let applied = ctx
        .write(caller, async |tx| {
            let entry = NewEntry {
                user_id: user.id,
                kind: LedgerKind::Adjustment,
                amount: units,
                actor: &actor,
                reference: "",
                reason,
                idempotency_key: &key,
            };
            let Some(ledger_id) = db::ledger::insert(tx, &entry).await? else {
                return Ok(false);
            };
            if !db::users::add_quota(tx, user.id, units).await? {
                // The user was just read; the change would carry the balance out of range.
                return Err(ServiceError::invalid(
                    "amount",
                    msg!("balance-out-of-range"),
                ));
            }
            // Read under the row lock the update took: exact however many change it at once.
            let after = db::users::quota_in(tx, user.id).await?;
            let mut changed = audit::change(
                "user.balance",
                format!("user:{}", user.username),
                Some(serde_json::json!({ "quota": after - units })),
                Some(serde_json::json!({ "quota": after, "amount": units, "reason": reason })),
                &[],
            );
            changed.ledger_id = Some(ledger_id);
            tx.audit(changed);
            Ok(true)
        })
        .await?;
    if !applied {
        // The key was used before: for this very change (a retry, answered as the first
        // was), or for another one, which must not pass for done.
        let same = db::ledger::by_key(db, &key).await?.is_some_and(|earlier| {
            earlier.user_id == user.id
                && earlier.kind == LedgerKind::Adjustment
                && earlier.amount == units
        });
        if !same {
            return Err(ServiceError::conflict(
                "idempotency_key",
                msg!("idempotency-key-reused"),
            ));
        }
    }
    Ok(QuotaChanged {
        user: find_id(db, user.id).await?,
        applied,
    })
}

/// Converts a [`QuotaChange`] to units (negative dollar amounts are allowed).
pub(crate) async fn quota_change_units(db: &Db, change: &QuotaChange) -> ServiceResult<i64> {
    match (&change.usd, change.units) {
        (Some(text), None) => {
            let (negative, digits) = match text.trim().strip_prefix('-') {
                Some(rest) => (true, rest),
                None => (false, text.trim()),
            };
            let usd = MicroUsd::parse(digits).map_err(decimal_err("usd"))?;
            let options = super::options::current(db).await?;
            let units = usd_to_quota("usd", usd, options.quota_per_usd())?.0;
            Ok(if negative { -units } else { units })
        }
        (None, Some(units)) => Ok(units),
        _ => Err(ServiceError::invalid("amount", msg!("amount-usd-or-units"))),
    }
}
