use sqlx::Row;
use sqlx::any::AnyRow;

use super::{
    Change, Db, DbError, DbResult, Tx, Value, flag, now_ms, opt_text, rate_limit_values,
    rate_limits, text,
};
use crate::domain::kinds::{Role, Status};
use crate::domain::rate_limits::RateLimits;
pub use crate::records::users::UserRow;

pub struct NewUser {
    pub username: String,
    pub password_hash: Option<String>,
    pub email: Option<String>,
    pub role: Role,
    pub group: String,
    pub quota: i64,
    pub rate_limits: RateLimits,
}

/// Fields an admin may change; `None` leaves a field as it is.
#[derive(Default, Debug, Clone)]
pub struct UserPatch {
    pub username: Option<String>,
    pub display_name: Option<String>,
    pub email: Option<Option<String>>,
    pub password_hash: Option<String>,
    pub role: Option<Role>,
    pub status: Option<Status>,
    pub group: Option<String>,
    pub email_verified: Option<bool>,
    /// All three rate limits as they are to be.
    pub rate_limits: Option<RateLimits>,
}

impl UserPatch {
    /// `user` as it is once this patch is applied.
    pub fn applied_to(&self, user: &UserRow) -> UserRow {
        let mut user = user.clone();
        if let Some(username) = &self.username {
            user.username = username.clone();
        }
        if let Some(display_name) = &self.display_name {
            user.display_name = display_name.clone();
        }
        if let Some(email) = &self.email {
            user.email = email.clone();
        }
        if let Some(hash) = &self.password_hash {
            user.password_hash = Some(hash.clone());
        }
        if let Some(role) = self.role {
            user.role = role;
        }
        if let Some(status) = self.status {
            user.status = status;
        }
        if let Some(group) = &self.group {
            user.group = group.clone();
        }
        if let Some(verified) = self.email_verified {
            user.email_verified = verified;
        }
        if let Some(limits) = self.rate_limits {
            user.rate_limits = limits;
        }
        user
    }
}

const COLUMNS: &str = "id, username, display_name, email, email_verified, password_hash, role, status, \
     group_name, quota, used_quota, request_count, invite_code, inviter_id, created_at, updated_at, locale, \
     low_balance_threshold, rpm, tpm, max_concurrent";

/// What a username is compared by: usernames are ASCII, so lower case.
fn username_key(username: &str) -> String {
    username.to_ascii_lowercase()
}

/// What an address is compared by (see `domain::email::comparison_key`).
fn email_key(email: Option<&str>) -> Option<String> {
    email.map(crate::domain::email::comparison_key)
}

fn from_row(row: &AnyRow) -> DbResult<UserRow> {
    let role: String = text(row, "role")?;
    let status: String = text(row, "status")?;
    Ok(UserRow {
        id: row.try_get("id")?,
        username: text(row, "username")?,
        display_name: text(row, "display_name")?,
        email: opt_text(row, "email")?,
        email_verified: flag(row.try_get("email_verified")?),
        password_hash: opt_text(row, "password_hash")?,
        role: Role::parse(&role).ok_or_else(|| DbError::Corrupt(format!("user role '{role}'")))?,
        status: Status::parse(&status)
            .ok_or_else(|| DbError::Corrupt(format!("user status '{status}'")))?,
        group: text(row, "group_name")?,
        quota: row.try_get("quota")?,
        used_quota: row.try_get("used_quota")?,
        request_count: row.try_get("request_count")?,
        invite_code: opt_text(row, "invite_code")?,
        inviter_id: row.try_get("inviter_id")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        locale: text(row, "locale")?,
        low_balance_threshold: row.try_get("low_balance_threshold")?,
        rate_limits: rate_limits(row)?,
    })
}

pub async fn insert(tx: &mut Tx, user: &NewUser) -> DbResult<i64> {
    let now = now_ms();
    let [rpm, tpm, max_concurrent] = rate_limit_values(user.rate_limits);
    let id = tx.insert_returning_id("INSERT INTO users (username, username_key, display_name, email, email_key, email_verified, \
             password_hash, role, status, group_name, quota, used_quota, request_count, created_at, updated_at, \
             rpm, tpm, max_concurrent) \
             VALUES (?, ?, ?, ?, ?, 0, ?, ?, 'active', ?, ?, 0, 0, ?, ?, ?, ?, ?)",
            &[
                Value::Text(user.username.clone()),
                Value::Text(username_key(&user.username)),
                Value::Text(user.username.clone()),
                Value::OptText(user.email.clone()),
                Value::OptText(email_key(user.email.as_deref())),
                Value::OptText(user.password_hash.clone()),
                Value::Text(user.role.as_str().to_string()),
                Value::Text(user.group.clone()),
                Value::Int(user.quota),
                Value::Int(now),
                Value::Int(now),
                rpm,
                tpm,
                max_concurrent,
            ],
        )
        .await?;
    tx.changed(Change::User(id));
    Ok(id)
}

/// The account with this username, in any case (`Alice` is `alice`). While two accounts made
/// before usernames were compared this way still share a name in another case, the exact
/// spelling wins.
pub async fn find_by_username(db: &Db, username: &str) -> DbResult<Option<UserRow>> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE username_key = ?");
    let rows = db
        .fetch_all_with(&sql, &[Value::Text(username_key(username))])
        .await?;
    let mut users: Vec<UserRow> = rows.iter().map(from_row).collect::<DbResult<_>>()?;
    users.sort_by_key(|u| u.username != username);
    Ok(users.into_iter().next())
}

pub async fn find_by_id(db: &Db, id: i64) -> DbResult<Option<UserRow>> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE id = ?");
    let row = sqlx::query(&db.sql(&sql))
        .bind(id)
        .fetch_optional(db.pool())
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// The account a person signs in as: by username or by email, in any case (and for an
/// address, any Unicode normalisation).
pub async fn find_by_login(db: &Db, login: &str) -> DbResult<Option<UserRow>> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE username_key = ? OR email_key = ?");
    let rows = db
        .fetch_all_with(
            &sql,
            &[
                Value::Text(username_key(login)),
                Value::OptText(email_key(Some(login))),
            ],
        )
        .await?;
    // A username that is someone else's email address loses to the username.
    let mut users: Vec<UserRow> = rows.iter().map(from_row).collect::<DbResult<_>>()?;
    users.sort_by_key(|u| u.username != login);
    Ok(users.into_iter().next())
}

/// Whether any administrator (admin or root) exists.
pub async fn has_admin(db: &Db) -> DbResult<bool> {
    let rows = db
        .fetch_all_with(
            "SELECT id FROM users WHERE role IN ('admin', 'root') LIMIT 1",
            &[],
        )
        .await?;
    Ok(!rows.is_empty())
}

/// The portal language a person chose; not a change the relay holds.
pub async fn set_locale(db: &Db, id: i64, locale: &str) -> DbResult<()> {
    db.execute_with(
        db.pool(),
        "UPDATE users SET locale = ? WHERE id = ?",
        &[Value::Text(locale.to_string()), Value::Int(id)],
    )
    .await?;
    Ok(())
}

/// Users ordered by id, a page at a time.
pub async fn list(db: &Db, limit: i64, offset: i64) -> DbResult<Vec<UserRow>> {
    let sql = format!("SELECT {COLUMNS} FROM users ORDER BY id LIMIT ? OFFSET ?");
    let rows = sqlx::query(&db.sql(&sql))
        .bind(limit)
        .bind(offset)
        .fetch_all(db.pool())
        .await?;
    rows.iter().map(from_row).collect()
}

/// The users with these ids (those that exist), for the relay's directory: each decoded on
/// its own (see `tokens::by_ids`).
pub async fn by_ids(db: &Db, ids: &[i64]) -> DbResult<Vec<(i64, DbResult<UserRow>)>> {
    let mut users = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(super::IDS_PER_QUERY) {
        let sql = format!(
            "SELECT {COLUMNS} FROM users WHERE id IN ({})",
            super::placeholders(chunk.len())
        );
        let values: Vec<Value> = chunk.iter().map(|&id| Value::Int(id)).collect();
        for row in db.fetch_all_with(&sql, &values).await? {
            let id: i64 = row.try_get("id")?;
            users.push((id, from_row(&row)));
        }
    }
    Ok(users)
}

/// The balances of these users, as (id, quota): what the relay re-reads of the accounts it
/// holds, to follow changes made by other servers' billing.
pub async fn balances_of(db: &Db, ids: &[i64]) -> DbResult<Vec<(i64, i64)>> {
    let mut balances = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(super::IDS_PER_QUERY) {
        let sql = format!(
            "SELECT id, quota FROM users WHERE id IN ({})",
            super::placeholders(chunk.len())
        );
        let values: Vec<Value> = chunk.iter().map(|&id| Value::Int(id)).collect();
        for row in db.fetch_all_with(&sql, &values).await? {
            balances.push((row.try_get("id")?, row.try_get("quota")?));
        }
    }
    Ok(balances)
}

pub async fn update(tx: &mut Tx, id: i64, patch: &UserPatch) -> DbResult<bool> {
    let mut sets: Vec<&str> = Vec::new();
    let mut values: Vec<Value> = Vec::new();
    if let Some(v) = &patch.username {
        sets.push("username = ?");
        values.push(Value::Text(v.clone()));
        sets.push("username_key = ?");
        values.push(Value::Text(username_key(v)));
    }
    if let Some(v) = &patch.display_name {
        sets.push("display_name = ?");
        values.push(Value::Text(v.clone()));
    }
    if let Some(v) = &patch.email {
        sets.push("email = ?");
        values.push(Value::OptText(v.clone()));
        sets.push("email_key = ?");
        values.push(Value::OptText(email_key(v.as_deref())));
    }
    if let Some(v) = &patch.password_hash {
        sets.push("password_hash = ?");
        values.push(Value::Text(v.clone()));
    }
    if let Some(v) = patch.role {
        sets.push("role = ?");
        values.push(Value::Text(v.as_str().into()));
    }
    if let Some(v) = patch.status {
        sets.push("status = ?");
        values.push(Value::Text(v.as_str().into()));
    }
    if let Some(v) = &patch.group {
        sets.push("group_name = ?");
        values.push(Value::Text(v.clone()));
    }
    if let Some(v) = patch.email_verified {
        sets.push("email_verified = ?");
        values.push(Value::Int(i64::from(v)));
    }
    if let Some(limits) = patch.rate_limits {
        sets.push("rpm = ?, tpm = ?, max_concurrent = ?");
        values.extend(rate_limit_values(limits));
    }
    sets.push("updated_at = ?");
    values.push(Value::Int(now_ms()));
    values.push(Value::Int(id));
    let sql = format!("UPDATE users SET {} WHERE id = ?", sets.join(", "));
    let changed = tx.execute(&sql, &values).await?;
    // The relay reads a user's name, role, status, group and rate limits; an email, a
    // display name or a password changes nothing it holds.
    if changed > 0
        && (patch.username.is_some()
            || patch.role.is_some()
            || patch.status.is_some()
            || patch.group.is_some()
            || patch.rate_limits.is_some())
    {
        tx.changed(Change::User(id));
    }
    Ok(changed > 0)
}

/// Sets the person's low-balance line (quota units; -1 the site's default, 0 never) and
/// re-arms the warning.
pub async fn set_low_balance_threshold(tx: &mut Tx, id: i64, threshold: i64) -> DbResult<()> {
    tx.execute(
        "UPDATE users SET low_balance_threshold = ?, low_balance_warned = 0 WHERE id = ?",
        &[Value::Int(threshold), Value::Int(id)],
    )
    .await?;
    Ok(())
}

/// Active accounts with a proven email whose balance is below their line and not yet
/// warned, as (id): `default_threshold` stands in for -1.
pub async fn below_low_balance(db: &Db, default_threshold: i64) -> DbResult<Vec<i64>> {
    let rows = db
        .fetch_all_with(
            "SELECT id FROM users WHERE low_balance_warned = 0 AND status = 'active' \
             AND email IS NOT NULL AND email_verified = 1 AND low_balance_threshold <> 0 \
             AND quota < (CASE WHEN low_balance_threshold < 0 THEN ? ELSE low_balance_threshold END)",
            &[Value::Int(default_threshold)],
        )
        .await?;
    rows.iter().map(|r| Ok(r.try_get("id")?)).collect()
}

/// Claims the warning for an account: true once per crossing, on whichever server asks first.
pub async fn claim_low_balance_warning(tx: &mut Tx, id: i64) -> DbResult<bool> {
    let changed = tx
        .execute(
            "UPDATE users SET low_balance_warned = 1 WHERE id = ? AND low_balance_warned = 0",
            &[Value::Int(id)],
        )
        .await?;
    Ok(changed == 1)
}

/// Re-arms the warning of accounts back at or above their line (a top-up, a changed line).
pub async fn rearm_low_balance(db: &Db, default_threshold: i64) -> DbResult<u64> {
    db.execute_with(
        db.pool(),
        "UPDATE users SET low_balance_warned = 0 WHERE low_balance_warned = 1 \
         AND quota >= (CASE WHEN low_balance_threshold < 0 THEN ? ELSE low_balance_threshold END)",
        &[Value::Int(default_threshold)],
    )
    .await
}

/// Marks the address as proven, if it is still the account's address.
pub async fn mark_email_verified(tx: &mut Tx, id: i64, email: &str) -> DbResult<bool> {
    let changed = tx
        .execute(
            "UPDATE users SET email_verified = 1 WHERE id = ? AND email = ?",
            &[Value::Int(id), Value::Text(email.to_string())],
        )
        .await?;
    Ok(changed == 1)
}

/// Wipes an account's personal data for good: the username becomes `name` (freeing the old
/// one), the email, display name, password and invite code go (a link with that code brings
/// nobody in any more), and the account is disabled. Its id stays, so the ledger and the logs
/// still add up.
pub async fn anonymize(tx: &mut Tx, id: i64, name: &str) -> DbResult<bool> {
    let changed = tx
        .execute(
            "UPDATE users SET username = ?, username_key = ?, display_name = ?, email = NULL, \
             email_key = NULL, email_verified = 0, password_hash = NULL, invite_code = NULL, \
             status = 'disabled', locale = '', deleted_at = ?, updated_at = ? WHERE id = ?",
            &[
                Value::Text(name.to_string()),
                Value::Text(username_key(name)),
                Value::Text(name.to_string()),
                Value::Int(now_ms()),
                Value::Int(now_ms()),
                Value::Int(id),
            ],
        )
        .await?;
    if changed > 0 {
        tx.changed(Change::User(id));
    }
    Ok(changed > 0)
}

/// Adds `delta` (negative to deduct) to the user's balance in one atomic statement.
///
/// Checked, never wrapped: a change that would carry the balance past the 64-bit range is not
/// made, and the answer is false as for a missing row.
pub async fn add_quota(tx: &mut Tx, id: i64, delta: i64) -> DbResult<bool> {
    let (low, high) = super::addable_range(delta);
    let changed = tx.execute("UPDATE users SET quota = quota + ?, updated_at = ? WHERE id = ? AND quota >= ? AND quota <= ?",
            &[
                Value::Int(delta),
                Value::Int(now_ms()),
                Value::Int(id),
                Value::Int(low),
                Value::Int(high),
            ],
        )
        .await?;
    tx.changed(Change::User(id));
    Ok(changed > 0)
}

pub async fn count(db: &Db) -> DbResult<i64> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(db.pool())
        .await?;
    Ok(n)
}

/// Locks the account's row for the rest of the transaction (without changing it), so work
/// that reads and then writes on its behalf runs one at a time.
pub async fn lock(tx: &mut Tx, id: i64) -> DbResult<()> {
    tx.execute(
        "UPDATE users SET updated_at = updated_at WHERE id = ?",
        &[Value::Int(id)],
    )
    .await?;
    Ok(())
}

/// An account's balance as this transaction sees it (after its own changes).
pub async fn quota_in(tx: &mut Tx, id: i64) -> DbResult<i64> {
    let row = tx
        .fetch_optional("SELECT quota FROM users WHERE id = ?", &[Value::Int(id)])
        .await?
        .ok_or_else(|| DbError::Corrupt(format!("user {id} vanished inside a transaction")))?;
    Ok(row.try_get("quota")?)
}

/// Whether the account was deleted, read in a transaction.
pub async fn is_deleted_in(tx: &mut Tx, id: i64) -> DbResult<bool> {
    let rows = tx
        .fetch_all(
            "SELECT id FROM users WHERE id = ? AND deleted_at IS NOT NULL",
            &[Value::Int(id)],
        )
        .await?;
    Ok(!rows.is_empty())
}

/// Who invited the account, read in a transaction.
pub async fn inviter_in(tx: &mut Tx, id: i64) -> DbResult<Option<i64>> {
    let rows = tx
        .fetch_all(
            "SELECT inviter_id FROM users WHERE id = ?",
            &[Value::Int(id)],
        )
        .await?;
    Ok(match rows.first() {
        Some(row) => sqlx::Row::try_get(row, "inviter_id")?,
        None => None,
    })
}

/// Gives the account its invite code, unless it has one. False when it had one already (or
/// the code is another account's: the unique index refuses it).
pub async fn set_invite_code(tx: &mut Tx, id: i64, code: &str) -> DbResult<bool> {
    Ok(tx
        .execute(
            "UPDATE users SET invite_code = ? WHERE id = ? AND invite_code IS NULL",
            &[Value::Text(code.to_string()), Value::Int(id)],
        )
        .await?
        == 1)
}

/// The account whose invite code this is.
pub async fn find_by_invite_code(db: &Db, code: &str) -> DbResult<Option<UserRow>> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE invite_code = ?");
    db.fetch_all_with(&sql, &[Value::Text(code.to_string())])
        .await?
        .first()
        .map(from_row)
        .transpose()
}

/// Records who invited the account, once.
pub async fn set_inviter(tx: &mut Tx, id: i64, inviter_id: i64) -> DbResult<bool> {
    Ok(tx
        .execute(
            "UPDATE users SET inviter_id = ? WHERE id = ? AND inviter_id IS NULL AND id <> ?",
            &[
                Value::Int(inviter_id),
                Value::Int(id),
                Value::Int(inviter_id),
            ],
        )
        .await?
        == 1)
}

/// Fills in the comparison keys of accounts made before they were kept (see migration 0015).
/// Cheap once done: it reads only the accounts without keys.
pub async fn fill_identity_keys(db: &Db) -> DbResult<u64> {
    let rows = db
        .fetch_all_with(
            "SELECT id, username, email FROM users \
             WHERE username_key IS NULL OR (email IS NOT NULL AND email_key IS NULL)",
            &[],
        )
        .await?;
    let mut filled = 0;
    for row in &rows {
        let id: i64 = row.try_get("id")?;
        let username: String = text(row, "username")?;
        let email: Option<String> = opt_text(row, "email")?;
        filled += db
            .execute_with(
                db.pool(),
                "UPDATE users SET username_key = ?, email_key = ? WHERE id = ?",
                &[
                    Value::Text(username_key(&username)),
                    Value::OptText(email_key(email.as_deref())),
                    Value::Int(id),
                ],
            )
            .await?;
    }
    Ok(filled)
}

/// Accounts that share a username or an address once case (and Unicode normalisation) is set
/// aside: each group of names, as spelled, that must be told apart.
pub async fn identity_clashes(db: &Db) -> DbResult<Vec<Vec<String>>> {
    let mut clashes = Vec::new();
    for (key, shown) in [("username_key", "username"), ("email_key", "email")] {
        let sql = format!(
            "SELECT {key} AS k, {shown} AS v FROM users WHERE {key} IN \
             (SELECT {key} FROM users WHERE {key} IS NOT NULL GROUP BY {key} HAVING COUNT(*) > 1) \
             ORDER BY {key}, id"
        );
        let rows = db.fetch_all_with(&sql, &[]).await?;
        let mut current: Option<String> = None;
        for row in &rows {
            let k: String = text(row, "k")?;
            let v: String = text(row, "v")?;
            if current.as_deref() != Some(k.as_str()) {
                clashes.push(Vec::new());
                current = Some(k);
            }
            if let Some(group) = clashes.last_mut() {
                group.push(v);
            }
        }
    }
    Ok(clashes)
}

/// Makes the unique indexes on the comparison keys, unless they exist.
pub async fn ensure_identity_indexes(db: &Db) -> DbResult<()> {
    for (index, column) in [
        ("users_username_folded", "username_key"),
        ("users_email_folded", "email_key"),
    ] {
        if db.has_index("users", index).await? {
            continue;
        }
        let made = db
            .execute_with(
                db.pool(),
                &format!("CREATE UNIQUE INDEX {index} ON users ({column})"),
                &[],
            )
            .await;
        // Another server starting at the same moment may have made it first.
        if let Err(e) = made
            && !db.has_index("users", index).await?
        {
            return Err(e);
        }
    }
    Ok(())
}

/// Whether an account other than root has balance to spend (the operator has given someone
/// balance).
pub async fn someone_besides_root_has_balance(db: &Db) -> DbResult<bool> {
    let rows = db
        .fetch_all_with(
            "SELECT id FROM users WHERE role <> 'root' AND quota > 0 LIMIT 1",
            &[],
        )
        .await?;
    Ok(!rows.is_empty())
}

/// Accounts whose id is `text`, or whose username, display name or address holds it (case
/// aside), by id; at most `limit`.
pub async fn search(db: &Db, text: &str, limit: i64) -> DbResult<Vec<UserRow>> {
    let text = text.trim();
    // `!` escapes LIKE's wildcards the same way on every backend (a backslash does not).
    let escaped = text
        .to_lowercase()
        .replace('!', "!!")
        .replace('%', "!%")
        .replace('_', "!_");
    let pattern = format!("%{escaped}%");
    let id = text.parse::<i64>().unwrap_or(-1);
    let sql = format!(
        "SELECT {COLUMNS} FROM users WHERE id = ? OR username_key LIKE ? ESCAPE '!' \
         OR LOWER(display_name) LIKE ? ESCAPE '!' OR email_key LIKE ? ESCAPE '!' \
         ORDER BY id LIMIT ?"
    );
    db.fetch_all_with(
        &sql,
        &[
            Value::Int(id),
            Value::Text(pattern.clone()),
            Value::Text(pattern.clone()),
            Value::Text(pattern),
            Value::Int(limit),
        ],
    )
    .await?
    .iter()
    .map(from_row)
    .collect()
}
