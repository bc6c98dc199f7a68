use std::collections::BTreeMap;

use sqlx::Row;
use sqlx::any::AnyRow;

use super::tokens::split_list;
use super::{Change, Db, DbError, DbResult, Tx, Value, now_ms, text};
use crate::domain::kinds::{ChannelStatus, ChannelType};
use crate::domain::secret_key::upstream_key_fingerprint;
pub use crate::records::channels::{ChannelRow, DisabledKey, RouteRow};

/// The writable part of a channel: everything except id, counters and timestamps.
#[derive(Clone, Debug, PartialEq)]
pub struct ChannelSpec {
    pub name: String,
    pub channel_type: ChannelType,
    pub base_url: String,
    pub secret_keys: Vec<String>,
    pub models: Vec<String>,
    pub model_mapping: BTreeMap<String, String>,
    pub groups: Vec<String>,
    pub priority: i64,
    pub weight: i64,
    pub status: ChannelStatus,
    pub status_reason: String,
    pub timeout_secs: i64,
    pub extra_headers: BTreeMap<String, String>,
}

impl ChannelRow {
    pub fn spec(&self) -> ChannelSpec {
        ChannelSpec {
            name: self.name.clone(),
            channel_type: self.channel_type,
            base_url: self.base_url.clone(),
            secret_keys: self.secret_keys.clone(),
            models: self.models.clone(),
            model_mapping: self.model_mapping.clone(),
            groups: self.groups.clone(),
            priority: self.priority,
            weight: self.weight,
            status: self.status,
            status_reason: self.status_reason.clone(),
            timeout_secs: self.timeout_secs,
            extra_headers: self.extra_headers.clone(),
        }
    }
}

const COLUMNS: &str = "id, name, channel_type, base_url, secret_keys, models, model_mapping, group_names, \
     priority, weight, status, status_reason, status_changed_at, timeout_secs, extra_headers, used_quota, \
     request_count, created_at, updated_at, tested_at, test_latency_ms, test_result, disabled_keys";

fn json_map(text: &str, what: &str) -> DbResult<BTreeMap<String, String>> {
    if text.trim().is_empty() {
        return Ok(BTreeMap::new());
    }
    serde_json::from_str(text).map_err(|e| DbError::Corrupt(format!("channel {what}: {e}")))
}

fn from_row(row: &AnyRow) -> DbResult<ChannelRow> {
    let channel_type: String = text(row, "channel_type")?;
    let status: String = text(row, "status")?;
    let keys: String = text(row, "secret_keys")?;
    let models: String = text(row, "models")?;
    let groups: String = text(row, "group_names")?;
    let mapping: String = text(row, "model_mapping")?;
    let headers: String = text(row, "extra_headers")?;
    let disabled_keys =
        parse_disabled_keys(&super::opt_text(row, "disabled_keys")?.unwrap_or_default())?;
    Ok(ChannelRow {
        id: row.try_get("id")?,
        name: text(row, "name")?,
        channel_type: ChannelType::parse(&channel_type)
            .ok_or_else(|| DbError::Corrupt(format!("channel type '{channel_type}'")))?,
        base_url: text(row, "base_url")?,
        secret_keys: keys
            .lines()
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(str::to_string)
            .collect(),
        models: split_list(&models),
        model_mapping: json_map(&mapping, "model mapping")?,
        groups: split_list(&groups),
        priority: row.try_get("priority")?,
        weight: row.try_get("weight")?,
        status: ChannelStatus::parse(&status)
            .ok_or_else(|| DbError::Corrupt(format!("channel status '{status}'")))?,
        status_reason: text(row, "status_reason")?,
        status_changed_at: row.try_get("status_changed_at")?,
        timeout_secs: row.try_get("timeout_secs")?,
        extra_headers: json_map(&headers, "extra headers")?,
        used_quota: row.try_get("used_quota")?,
        request_count: row.try_get("request_count")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        tested_at: row.try_get("tested_at")?,
        test_latency_ms: row.try_get("test_latency_ms")?,
        test_result: text(row, "test_result")?,
        disabled_keys,
    })
}

fn spec_values(spec: &ChannelSpec) -> Vec<Value> {
    vec![
        Value::Text(spec.name.clone()),
        Value::Text(spec.channel_type.as_str().to_string()),
        Value::Text(spec.base_url.clone()),
        Value::Text(spec.secret_keys.join("\n")),
        Value::Text(spec.models.join(",")),
        Value::Text(serde_json::to_string(&spec.model_mapping).unwrap_or_else(|_| "{}".into())),
        Value::Text(spec.groups.join(",")),
        Value::Int(spec.priority),
        Value::Int(spec.weight),
        Value::Text(spec.status.as_str().to_string()),
        Value::Text(spec.status_reason.clone()),
        Value::Int(spec.timeout_secs),
        Value::Text(serde_json::to_string(&spec.extra_headers).unwrap_or_else(|_| "{}".into())),
    ]
}

/// Rebuilds the channel's rows in the (group, model) lookup inside the caller's transaction.
async fn write_routes(tx: &mut Tx, channel_id: i64, spec: &ChannelSpec) -> DbResult<()> {
    tx.execute(
        "DELETE FROM channel_routes WHERE channel_id = ?",
        &[Value::Int(channel_id)],
    )
    .await?;
    for group in &spec.groups {
        for model in &spec.models {
            tx.execute(
                "INSERT INTO channel_routes (group_name, model, channel_id) VALUES (?, ?, ?)",
                &[
                    Value::Text(group.clone()),
                    Value::Text(model.clone()),
                    Value::Int(channel_id),
                ],
            )
            .await?;
        }
    }
    Ok(())
}

pub async fn insert(tx: &mut Tx, spec: &ChannelSpec) -> DbResult<i64> {
    let now = now_ms();
    let mut values = spec_values(spec);
    values.extend([Value::Int(now), Value::Int(now), Value::Int(now)]);
    let id = tx
        .insert_returning_id(
            "INSERT INTO channels (name, channel_type, base_url, secret_keys, models, model_mapping, \
             group_names, priority, weight, status, status_reason, timeout_secs, extra_headers, \
             status_changed_at, used_quota, request_count, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, ?, ?)",
            &values,
        )
        .await?;
    write_routes(tx, id, spec).await?;
    tx.changed(Change::Channel(id));
    Ok(id)
}

/// Replaces a channel's settings (and its routes). The status-changed time moves only when the
/// status does.
pub async fn update(tx: &mut Tx, id: i64, spec: &ChannelSpec) -> DbResult<bool> {
    update_if_unchanged(tx, id, spec, None).await
}

/// [`update`], only when the channel's `updated_at` is still `seen` (when given): false when
/// it changed since it was read.
pub async fn update_if_unchanged(
    tx: &mut Tx,
    id: i64,
    spec: &ChannelSpec,
    seen: Option<i64>,
) -> DbResult<bool> {
    let now = now_ms();
    // Keys no longer on the channel leave its disabled list (unless a key was disabled
    // meanwhile: the list is only replaced if it is still the one read here).
    let stored = tx
        .fetch_optional(
            "SELECT disabled_keys FROM channels WHERE id = ?",
            &[Value::Int(id)],
        )
        .await?
        .map(|row| super::opt_text(&row, "disabled_keys"))
        .transpose()?
        .flatten()
        .unwrap_or_default();
    let fingerprints: Vec<String> = spec
        .secret_keys
        .iter()
        .map(|key| upstream_key_fingerprint(key))
        .collect();
    let kept: Vec<DisabledKey> = parse_disabled_keys(&stored)?
        .into_iter()
        .filter(|d| fingerprints.contains(&d.fingerprint))
        .collect();
    let kept = (!kept.is_empty()).then(|| serde_json::to_string(&kept).unwrap_or_default());
    // status_changed_at and disabled_keys are assigned first: MySQL evaluates SET left to
    // right, so a later assignment would already see the new status. An admin who enables a
    // channel puts every one of its keys back into rotation too.
    let mut values = vec![
        Value::Text(spec.status.as_str().to_string()),
        Value::Int(now),
        Value::Text(ChannelStatus::Enabled.as_str().to_string()),
        Value::Text(spec.status.as_str().to_string()),
        Value::Text(stored),
        Value::OptText(kept),
    ];
    values.extend(spec_values(spec));
    values.extend([Value::Int(now), Value::Int(id)]);
    let unchanged_since = if let Some(seen) = seen {
        values.push(Value::Int(seen));
        " AND updated_at = ?"
    } else {
        ""
    };
    let changed = tx
        .execute(
            &format!("UPDATE channels SET status_changed_at = CASE WHEN status = ? THEN status_changed_at ELSE ? END, \
             disabled_keys = CASE WHEN status <> ? AND ? = 'enabled' THEN NULL \
                 WHEN COALESCE(disabled_keys, '') = ? THEN ? ELSE disabled_keys END, \
             name = ?, channel_type = ?, base_url = ?, secret_keys = ?, models = ?, \
             model_mapping = ?, group_names = ?, priority = ?, weight = ?, status = ?, status_reason = ?, \
             timeout_secs = ?, extra_headers = ?, updated_at = ? \
             WHERE id = ?{unchanged_since}"),
            &values,
        )
        .await?;
    if changed > 0 {
        write_routes(tx, id, spec).await?;
        tx.changed(Change::Channel(id));
    }
    Ok(changed > 0)
}

/// Records the outcome of a `channel test`. Not a routing change, so the data version stays.
pub async fn record_test(db: &Db, id: i64, latency_ms: i64, result: &str) -> DbResult<()> {
    let result: String = result.chars().take(500).collect();
    db.execute_with(
        db.pool(),
        "UPDATE channels SET tested_at = ?, test_latency_ms = ?, test_result = ? WHERE id = ?",
        &[
            Value::Int(now_ms()),
            Value::Int(latency_ms),
            Value::Text(result),
            Value::Int(id),
        ],
    )
    .await?;
    Ok(())
}

/// Records a status change made by Tollgate itself (auto-disable, probe re-enable). Only moves
/// from `expected` so it never overrides an admin who changed the channel meanwhile.
pub async fn set_status_if(
    tx: &mut Tx,
    id: i64,
    expected: ChannelStatus,
    status: ChannelStatus,
    reason: &str,
) -> DbResult<bool> {
    let now = now_ms();
    let changed = tx
        .execute(
            "UPDATE channels SET status = ?, status_reason = ?, status_changed_at = ?, updated_at = ? \
             WHERE id = ? AND status = ?",
            &[
                Value::Text(status.as_str().into()),
                Value::Text(reason.to_string()),
                Value::Int(now),
                Value::Int(now),
                Value::Int(id),
                Value::Text(expected.as_str().into()),
            ],
        )
        .await?;
    if changed > 0 {
        tx.changed(Change::Channel(id));
    }
    Ok(changed > 0)
}

/// Takes one key of a channel out of rotation, or puts it back (`disabled` None). A
/// compare-and-swap on the stored list, retried, so two nodes changing two keys at once both
/// land. Returns the channel as stored afterwards (None when it no longer exists).
pub async fn set_key_disabled(
    db: &Db,
    id: i64,
    fingerprint: &str,
    disabled: Option<&str>,
) -> DbResult<Option<ChannelRow>> {
    for _ in 0..8 {
        let row = sqlx::query(&db.sql("SELECT disabled_keys FROM channels WHERE id = ?"))
            .bind(id)
            .fetch_optional(db.pool())
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let stored = super::opt_text(&row, "disabled_keys")?.unwrap_or_default();
        let mut keys = parse_disabled_keys(&stored)?;
        let present = keys.iter().any(|d| d.fingerprint == fingerprint);
        match disabled {
            Some(_) if present => return find_by_id(db, id).await,
            None if !present => return find_by_id(db, id).await,
            Some(reason) => keys.push(DisabledKey {
                fingerprint: fingerprint.to_string(),
                reason: reason.chars().take(500).collect(),
                at: now_ms(),
            }),
            None => keys.retain(|d| d.fingerprint != fingerprint),
        }
        let new = (!keys.is_empty()).then(|| serde_json::to_string(&keys).unwrap_or_default());
        let (swapped, _) = db
            .write(async |tx| -> DbResult<bool> {
                let swapped = tx
                    .execute(
                        "UPDATE channels SET disabled_keys = ?, updated_at = ? \
                         WHERE id = ? AND COALESCE(disabled_keys, '') = ?",
                        &[
                            Value::OptText(new),
                            Value::Int(now_ms()),
                            Value::Int(id),
                            Value::Text(stored),
                        ],
                    )
                    .await?
                    > 0;
                if swapped {
                    tx.changed(Change::Channel(id));
                }
                Ok(swapped)
            })
            .await?;
        if swapped {
            return find_by_id(db, id).await;
        }
    }
    Err(DbError::Corrupt(format!(
        "channel {id}: its disabled keys kept changing underneath"
    )))
}

fn parse_disabled_keys(stored: &str) -> DbResult<Vec<DisabledKey>> {
    if stored.trim().is_empty() {
        return Ok(Vec::new());
    }
    serde_json::from_str(stored)
        .map_err(|e| DbError::Corrupt(format!("channel disabled keys: {e}")))
}

pub async fn delete(tx: &mut Tx, id: i64) -> DbResult<bool> {
    tx.execute(
        "DELETE FROM channel_routes WHERE channel_id = ?",
        &[Value::Int(id)],
    )
    .await?;
    let deleted = tx
        .execute("DELETE FROM channels WHERE id = ?", &[Value::Int(id)])
        .await?
        > 0;
    if deleted {
        tx.changed(Change::Channel(id));
    }
    Ok(deleted)
}

pub async fn find_by_name(db: &Db, name: &str) -> DbResult<Option<ChannelRow>> {
    let sql = format!("SELECT {COLUMNS} FROM channels WHERE name = ?");
    let row = sqlx::query(&db.sql(&sql))
        .bind(name)
        .fetch_optional(db.pool())
        .await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn find_by_id(db: &Db, id: i64) -> DbResult<Option<ChannelRow>> {
    let sql = format!("SELECT {COLUMNS} FROM channels WHERE id = ?");
    let row = sqlx::query(&db.sql(&sql))
        .bind(id)
        .fetch_optional(db.pool())
        .await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn list(db: &Db) -> DbResult<Vec<ChannelRow>> {
    let sql = format!("SELECT {COLUMNS} FROM channels ORDER BY id");
    let rows = sqlx::query(&sql).fetch_all(db.pool()).await?;
    rows.iter().map(from_row).collect()
}

pub async fn routes(db: &Db) -> DbResult<Vec<RouteRow>> {
    let rows = sqlx::query("SELECT group_name, model, channel_id FROM channel_routes")
        .fetch_all(db.pool())
        .await?;
    rows.iter()
        .map(|r| {
            Ok(RouteRow {
                group: text(r, "group_name")?,
                model: text(r, "model")?,
                channel_id: r.try_get("channel_id")?,
            })
        })
        .collect()
}
