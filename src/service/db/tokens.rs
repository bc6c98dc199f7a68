use sqlx::Row;
use sqlx::any::AnyRow;

use super::{
    Change, Db, DbError, DbResult, Tx, Value, flag, now_ms, rate_limit_values, rate_limits, text,
};
use crate::domain::kinds::{BudgetPeriod, Status};
use crate::domain::rate_limits::RateLimits;
pub use crate::records::tokens::{KeyBalance, KeyBudget, TokenRow};

/// What a key's budget is set to: `None` for no budget.
pub type BudgetSetting = Option<(BudgetPeriod, i64)>;

pub struct NewToken {
    pub user_id: i64,
    pub name: String,
    pub key_hash: String,
    pub key_display: String,
    pub expires_at: Option<i64>,
    pub unlimited: bool,
    pub remaining_quota: i64,
    pub allowed_models: Vec<String>,
    pub allowed_ips: String,
    /// Empty: the owner's group.
    pub group: String,
    pub budget: BudgetSetting,
    /// A team key: the organisation and team whose wallet and budgets it spends (0, 0: a
    /// personal key).
    pub org_id: i64,
    pub team_id: i64,
    pub rate_limits: RateLimits,
    /// The one-time key of the form the key was made with (unique per owner).
    pub form_key: Option<String>,
}

#[derive(Default, Debug, Clone)]
pub struct TokenPatch {
    pub name: Option<String>,
    pub status: Option<Status>,
    pub expires_at: Option<Option<i64>>,
    pub unlimited: Option<bool>,
    pub remaining_quota: Option<i64>,
    pub allowed_models: Option<Vec<String>>,
    pub allowed_ips: Option<String>,
    pub group: Option<String>,
    /// A new period or amount; a new period starts the count afresh.
    pub budget: Option<BudgetSetting>,
    /// The key's own rate limits, all three as they are to be.
    pub rate_limits: Option<RateLimits>,
}

const COLUMNS: &str = "t.id, t.user_id, u.username, t.name, t.key_hash, t.key_display, t.status, \
     t.expires_at, t.unlimited, t.remaining_quota, t.used_quota, t.request_count, t.allowed_models, \
     t.allowed_ips, t.group_name, t.budget_period, t.budget_quota, t.org_id, t.team_id, \
     t.rpm, t.tpm, t.max_concurrent, \
     COALESCE((SELECT b.spent FROM budget_spend b WHERE b.scope_kind = 'key' AND b.scope_id = t.id \
         ORDER BY b.window_start DESC LIMIT 1), 0) AS budget_spent, \
     COALESCE((SELECT b.window_start FROM budget_spend b WHERE b.scope_kind = 'key' \
         AND b.scope_id = t.id ORDER BY b.window_start DESC LIMIT 1), 0) AS budget_window, \
     t.last_used_at, t.created_at";

fn budget_of(row: &AnyRow) -> DbResult<Option<KeyBudget>> {
    let period: String = text(row, "budget_period")?;
    if period.is_empty() {
        return Ok(None);
    }
    let period = BudgetPeriod::parse(&period)
        .ok_or_else(|| DbError::Corrupt(format!("key budget period '{period}'")))?;
    Ok(Some(KeyBudget {
        period,
        quota: row.try_get("budget_quota")?,
        spent: row.try_get("budget_spent")?,
        window: row.try_get("budget_window")?,
        window_end: 0,
    }))
}

fn from_row(row: &AnyRow) -> DbResult<TokenRow> {
    let status: String = text(row, "status")?;
    let models: String = text(row, "allowed_models")?;
    Ok(TokenRow {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        username: text(row, "username")?,
        name: text(row, "name")?,
        key_hash: text(row, "key_hash")?,
        key_display: text(row, "key_display")?,
        status: Status::parse(&status)
            .ok_or_else(|| DbError::Corrupt(format!("token status '{status}'")))?,
        expires_at: row.try_get("expires_at")?,
        unlimited: flag(row.try_get("unlimited")?),
        remaining_quota: row.try_get("remaining_quota")?,
        used_quota: row.try_get("used_quota")?,
        request_count: row.try_get("request_count")?,
        allowed_models: split_list(&models),
        allowed_ips: text(row, "allowed_ips")?,
        group: text(row, "group_name")?,
        budget: budget_of(row)?,
        org_id: row.try_get("org_id")?,
        team_id: row.try_get("team_id")?,
        rate_limits: rate_limits(row)?,
        last_used_at: row.try_get("last_used_at")?,
        created_at: row.try_get("created_at")?,
    })
}

pub(crate) fn split_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

pub async fn insert(tx: &mut Tx, token: &NewToken) -> DbResult<i64> {
    let now = now_ms();
    let [rpm, tpm, max_concurrent] = rate_limit_values(token.rate_limits);
    let id = tx.insert_returning_id("INSERT INTO tokens (user_id, name, key_hash, key_display, status, expires_at, unlimited, \
             remaining_quota, used_quota, request_count, allowed_models, allowed_ips, group_name, \
             budget_period, budget_quota, org_id, team_id, form_key, created_at, updated_at, \
             rpm, tpm, max_concurrent) \
             VALUES (?, ?, ?, ?, 'active', ?, ?, ?, 0, 0, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            &[
                Value::Int(token.user_id),
                Value::Text(token.name.clone()),
                Value::Text(token.key_hash.clone()),
                Value::Text(token.key_display.clone()),
                Value::OptInt(token.expires_at),
                Value::Int(i64::from(token.unlimited)),
                Value::Int(token.remaining_quota),
                Value::Text(token.allowed_models.join(",")),
                Value::Text(token.allowed_ips.clone()),
                Value::Text(token.group.clone()),
                Value::Text(token.budget.map_or("", |(p, _)| p.as_str()).into()),
                Value::Int(token.budget.map_or(0, |(_, quota)| quota)),
                Value::Int(token.org_id),
                Value::Int(token.team_id),
                Value::OptText(token.form_key.clone()),
                Value::Int(now),
                Value::Int(now),
                rpm,
                tpm,
                max_concurrent,
            ],
        )
        .await?;
    tx.changed(Change::Token(id));
    Ok(id)
}

/// `AND t.user_id = ?` when the key must belong to `owner`, with its bind value.
fn owned_by(owner: Option<i64>) -> (&'static str, Option<Value>) {
    match owner {
        Some(user_id) => (" AND t.user_id = ?", Some(Value::Int(user_id))),
        None => ("", None),
    }
}

/// A key by id; with `owner`, only that user's key (another's is not found).
pub async fn find(db: &Db, id: i64, owner: Option<i64>) -> DbResult<Option<TokenRow>> {
    let (scope, owner_value) = owned_by(owner);
    let sql = format!(
        "SELECT {COLUMNS} FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.id = ?{scope}"
    );
    let mut values = vec![Value::Int(id)];
    values.extend(owner_value);
    let rows = db.fetch_all_with(&sql, &values).await?;
    rows.first().map(from_row).transpose()
}

/// A key by id, read inside a writing transaction (what it is after the transaction's own
/// changes).
pub async fn find_in(tx: &mut Tx, id: i64) -> DbResult<Option<TokenRow>> {
    let sql =
        format!("SELECT {COLUMNS} FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.id = ?");
    let rows = tx.fetch_all(&sql, &[Value::Int(id)]).await?;
    rows.first().map(from_row).transpose()
}

pub async fn list_for_user(db: &Db, user_id: i64) -> DbResult<Vec<TokenRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.user_id = ? ORDER BY t.id"
    );
    let rows = sqlx::query(&db.sql(&sql))
        .bind(user_id)
        .fetch_all(db.pool())
        .await?;
    rows.iter().map(from_row).collect()
}

/// The key whose hash is `key_hash`, for the relay's first sight of a key.
pub async fn by_hash(db: &Db, key_hash: &str) -> DbResult<Option<TokenRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.key_hash = ?"
    );
    let rows = db
        .fetch_all_with(&sql, &[Value::Text(key_hash.to_string())])
        .await?;
    rows.first().map(from_row).transpose()
}

/// The keys with these ids (those that exist), for the relay's directory: each decoded on
/// its own, so a row this build cannot read does not hide the others.
pub async fn by_ids(db: &Db, ids: &[i64]) -> DbResult<Vec<(i64, DbResult<TokenRow>)>> {
    let mut tokens = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(super::IDS_PER_QUERY) {
        let sql = format!(
            "SELECT {COLUMNS} FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.id IN ({})",
            super::placeholders(chunk.len())
        );
        let values: Vec<Value> = chunk.iter().map(|&id| Value::Int(id)).collect();
        for row in db.fetch_all_with(&sql, &values).await? {
            let id: i64 = row.try_get("id")?;
            tokens.push((id, from_row(&row)));
        }
    }
    Ok(tokens)
}

/// The balances of these keys.
pub async fn balances_of(db: &Db, ids: &[i64]) -> DbResult<Vec<KeyBalance>> {
    let mut balances = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(super::IDS_PER_QUERY) {
        let sql = format!(
            "SELECT t.id, t.remaining_quota, t.budget_quota, \
             COALESCE((SELECT b.spent FROM budget_spend b WHERE b.scope_kind = 'key' \
                 AND b.scope_id = t.id ORDER BY b.window_start DESC LIMIT 1), 0) AS budget_spent, \
             COALESCE((SELECT b.window_start FROM budget_spend b WHERE b.scope_kind = 'key' \
                 AND b.scope_id = t.id ORDER BY b.window_start DESC LIMIT 1), 0) AS budget_window \
             FROM tokens t WHERE t.id IN ({})",
            super::placeholders(chunk.len())
        );
        let values: Vec<Value> = chunk.iter().map(|&id| Value::Int(id)).collect();
        for row in db.fetch_all_with(&sql, &values).await? {
            balances.push(KeyBalance {
                id: row.try_get("id")?,
                remaining_quota: row.try_get("remaining_quota")?,
                budget_quota: row.try_get("budget_quota")?,
                budget_spent: row.try_get("budget_spent")?,
                budget_window: row.try_get("budget_window")?,
            });
        }
    }
    Ok(balances)
}

/// Deletes every key of a user; returns how many.
pub async fn delete_all_of(tx: &mut Tx, user_id: i64) -> DbResult<usize> {
    let rows = tx
        .fetch_all(
            "SELECT id FROM tokens WHERE user_id = ?",
            &[Value::Int(user_id)],
        )
        .await?;
    for row in &rows {
        let id: i64 = row.try_get("id")?;
        tx.execute("DELETE FROM tokens WHERE id = ?", &[Value::Int(id)])
            .await?;
        tx.changed(Change::Token(id));
    }
    Ok(rows.len())
}

/// Changes a key; with `owner`, only that user's key. False when no such key was changed.
pub async fn update(
    tx: &mut Tx,
    id: i64,
    owner: Option<i64>,
    patch: &TokenPatch,
) -> DbResult<bool> {
    let mut sets: Vec<&str> = Vec::new();
    let mut values: Vec<Value> = Vec::new();
    if let Some(v) = &patch.name {
        sets.push("name = ?");
        values.push(Value::Text(v.clone()));
    }
    if let Some(v) = patch.status {
        sets.push("status = ?");
        values.push(Value::Text(v.as_str().into()));
    }
    if let Some(v) = patch.expires_at {
        sets.push("expires_at = ?");
        values.push(Value::OptInt(v));
    }
    if let Some(v) = patch.unlimited {
        sets.push("unlimited = ?");
        values.push(Value::Int(i64::from(v)));
    }
    if let Some(v) = patch.remaining_quota {
        sets.push("remaining_quota = ?");
        values.push(Value::Int(v));
    }
    if let Some(v) = &patch.allowed_models {
        sets.push("allowed_models = ?");
        values.push(Value::Text(v.join(",")));
    }
    if let Some(v) = &patch.allowed_ips {
        sets.push("allowed_ips = ?");
        values.push(Value::Text(v.clone()));
    }
    if let Some(v) = &patch.group {
        sets.push("group_name = ?");
        values.push(Value::Text(v.clone()));
    }
    // Another period (or none) starts counting afresh; the same one keeps what it spent.
    let mut forget_spend = false;
    if let Some(budget) = patch.budget {
        let period = budget.map_or("", |(p, _)| p.as_str());
        let (scope, owner_value) = owned_by(owner);
        let mut was = vec![Value::Int(id), Value::Text(period.into())];
        was.extend(owner_value);
        forget_spend = tx
            .fetch_optional(
                &format!(
                    "SELECT t.id FROM tokens t WHERE t.id = ? AND t.budget_period <> ?{scope}"
                ),
                &was,
            )
            .await?
            .is_some();
        sets.push("budget_period = ?, budget_quota = ?");
        values.extend([
            Value::Text(period.into()),
            Value::Int(budget.map_or(0, |(_, quota)| quota)),
        ]);
    }
    if let Some(limits) = patch.rate_limits {
        sets.push("rpm = ?, tpm = ?, max_concurrent = ?");
        values.extend(rate_limit_values(limits));
    }
    sets.push("updated_at = ?");
    values.push(Value::Int(now_ms()));
    values.push(Value::Int(id));
    let (scope, owner_value) = owned_by(owner);
    values.extend(owner_value);
    let scope = scope.replace("t.user_id", "user_id");
    let sql = format!("UPDATE tokens SET {} WHERE id = ?{scope}", sets.join(", "));
    let changed = tx.execute(&sql, &values).await? > 0;
    if changed && forget_spend {
        // Only now, with the key's row locked by the update: a billing write of the old
        // period either committed before (and is deleted here) or waits and then sees the
        // new period (see `scopes::add_spend_in`).
        tx.execute(
            "DELETE FROM budget_spend WHERE scope_kind = 'key' AND scope_id = ?",
            &[Value::Int(id)],
        )
        .await?;
    }
    if changed {
        tx.changed(Change::Token(id));
    }
    Ok(changed)
}

/// Deletes a key; with `owner`, only that user's key. False when there was no such key.
pub async fn delete(tx: &mut Tx, id: i64, owner: Option<i64>) -> DbResult<bool> {
    let (scope, owner_value) = owned_by(owner);
    let scope = scope.replace("t.user_id", "user_id");
    let mut values = vec![Value::Int(id)];
    values.extend(owner_value);
    let deleted = tx
        .execute(&format!("DELETE FROM tokens WHERE id = ?{scope}"), &values)
        .await?
        > 0;
    if deleted {
        tx.changed(Change::Token(id));
    }
    Ok(deleted)
}
