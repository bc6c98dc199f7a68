//! Changes to many channels at once: bulk actions on a selection, copying chosen settings from
//! one channel to others, and moving every channel between sites as JSON (export, import).
//! Each answers what it would change, channel by channel, before it changes anything (a dry
//! run), and applies everything in one transaction or nothing. Secrets stay on the server:
//! previews and exports show keys masked and header names only, and a copy or an import never
//! sends a channel's stored secrets to another place (see `channels::moved_needs_secrets`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::channels::{self, ChannelInput, DISABLED_BY_ADMIN, KEYS_NEEDED};
use super::{Caller, Ctx, FieldProblem, ServiceError, ServiceResult, audit};
use crate::domain::kinds::ChannelStatus;
use crate::domain::secret_key::mask_upstream_key;
use crate::i18n::Lang;
use crate::msg;
use crate::service::db::channels::{ChannelRow, ChannelSpec};
use crate::service::db::{self, Tx};

/// What a batch does to one channel.
#[derive(Serialize, utoipa::ToSchema, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Create,
    Update,
    Delete,
    /// Nothing to change: left alone.
    Unchanged,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Create => "create",
            ChangeKind::Update => "update",
            ChangeKind::Delete => "delete",
            ChangeKind::Unchanged => "unchanged",
        }
    }
}

/// One setting that changes: as shown (keys masked, header names only).
#[derive(Serialize, utoipa::ToSchema, Debug, Clone, PartialEq)]
pub struct FieldChange {
    pub field: &'static str,
    #[schema(value_type = Object)]
    pub before: Value,
    #[schema(value_type = Object)]
    pub after: Value,
}

/// What a batch does to one channel, and what stops it.
#[derive(Debug, Clone)]
pub struct ChannelChange {
    /// None for a channel an import creates.
    pub id: Option<i64>,
    pub name: String,
    pub kind: ChangeKind,
    /// When the channel was last changed (ms since the epoch), as this preview read it: a sync
    /// applied later refuses a channel changed since.
    pub updated_at: Option<i64>,
    pub fields: Vec<FieldChange>,
    /// Why this channel cannot take the change; any problem stops the whole batch.
    pub problems: Vec<FieldProblem>,
    before: Option<ChannelSpec>,
    after: Option<ChannelSpec>,
}

impl ChannelChange {
    fn new(row: Option<&ChannelRow>, name: &str, after: Option<ChannelSpec>) -> ChannelChange {
        let before = row.map(ChannelRow::spec);
        let fields = diff(before.as_ref(), after.as_ref());
        let kind = match (&before, &after) {
            (None, _) => ChangeKind::Create,
            (Some(_), None) => ChangeKind::Delete,
            _ if fields.is_empty() => ChangeKind::Unchanged,
            _ => ChangeKind::Update,
        };
        ChannelChange {
            id: row.map(|r| r.id),
            name: name.to_string(),
            kind,
            updated_at: row.map(|r| r.updated_at),
            fields,
            problems: Vec::new(),
            before,
            after,
        }
    }

    fn refused(row: &ChannelRow, problems: Vec<FieldProblem>) -> ChannelChange {
        ChannelChange {
            problems,
            ..ChannelChange::new(Some(row), &row.name, Some(row.spec()))
        }
    }

    /// The problems in `lang`.
    pub fn problem_texts(&self, lang: Lang) -> Vec<String> {
        self.problems
            .iter()
            .map(|p| p.message.render(lang))
            .collect()
    }

    fn view(&self) -> ChangeView {
        ChangeView {
            id: self.id,
            name: self.name.clone(),
            change: self.kind,
            updated_at: self.updated_at,
            fields: self.fields.clone(),
            problems: self
                .problems
                .iter()
                .map(|p| ProblemView {
                    field: p.field,
                    message: p.message.render(Lang::En),
                })
                .collect(),
        }
    }
}

/// What a batch changes (a dry run) or changed.
#[derive(Debug, Clone)]
pub struct BatchOutcome {
    pub applied: bool,
    pub changes: Vec<ChannelChange>,
}

impl BatchOutcome {
    /// Whether any channel cannot take the change.
    pub fn has_problems(&self) -> bool {
        self.changes.iter().any(|c| !c.problems.is_empty())
    }

    /// How many channels change.
    pub fn changed(&self) -> usize {
        self.changes
            .iter()
            .filter(|c| c.kind != ChangeKind::Unchanged)
            .count()
    }

    /// The answer `/api` gives: `dry_run`, each channel's change, and the `updated_at` of
    /// each channel as read (what a sync sends back when it applies its preview).
    pub fn view(&self) -> BatchView {
        BatchView {
            dry_run: !self.applied,
            changed: self.changed(),
            updated_at: self
                .changes
                .iter()
                .filter_map(|c| Some((c.id?.to_string(), c.updated_at?)))
                .collect(),
            changes: self.changes.iter().map(ChannelChange::view).collect(),
        }
    }

    /// The whole batch refused: the channels that cannot take it, each named, then why.
    fn refusal(&self) -> ServiceError {
        let mut problems = Vec::new();
        for change in self.changes.iter().filter(|c| !c.problems.is_empty()) {
            problems.push(FieldProblem {
                field: "channels",
                message: msg!("admin-channels-batch-refused", name = change.name.as_str()),
            });
            problems.extend(change.problems.iter().cloned());
        }
        ServiceError::Invalid(problems)
    }
}

/// The answer `/api` gives for a batch (see [`BatchOutcome::view`]).
#[derive(Serialize, utoipa::ToSchema, Debug, Clone)]
pub struct BatchView {
    /// True when nothing was stored: a preview.
    pub dry_run: bool,
    /// How many channels change.
    pub changed: usize,
    /// Each channel's `updated_at` (ms) as read, by id: what a sync sends back to apply its
    /// preview.
    pub updated_at: BTreeMap<String, i64>,
    pub changes: Vec<ChangeView>,
}

/// What a batch does to one channel, as `/api` shows it.
#[derive(Serialize, utoipa::ToSchema, Debug, Clone)]
pub struct ChangeView {
    /// Null for a channel an import creates.
    pub id: Option<i64>,
    pub name: String,
    pub change: ChangeKind,
    pub updated_at: Option<i64>,
    pub fields: Vec<FieldChange>,
    /// Why this channel cannot take the change; any problem stops the whole batch.
    pub problems: Vec<ProblemView>,
}

/// One reason a channel cannot take a batch's change.
#[derive(Serialize, utoipa::ToSchema, Debug, Clone)]
pub struct ProblemView {
    pub field: &'static str,
    pub message: String,
}

/// A channel's settings as a preview shows them: keys masked, header names only.
fn shown(spec: &ChannelSpec) -> Vec<(&'static str, Value)> {
    let keys: Vec<String> = spec
        .secret_keys
        .iter()
        .map(|k| mask_upstream_key(k))
        .collect();
    vec![
        ("name", json!(spec.name)),
        ("type", json!(spec.channel_type.as_str())),
        ("base_url", json!(spec.base_url)),
        ("keys", json!(keys)),
        ("models", json!(spec.models)),
        ("model_mapping", json!(spec.model_mapping)),
        ("groups", json!(spec.groups)),
        ("priority", json!(spec.priority)),
        ("weight", json!(spec.weight)),
        ("timeout_secs", json!(spec.timeout_secs)),
        (
            "extra_headers",
            json!(spec.extra_headers.keys().collect::<Vec<_>>()),
        ),
        ("status", json!(spec.status.as_str())),
    ]
}

/// The settings that differ. Keys and header values are compared as stored, so a changed
/// secret shows even when its mask looks the same.
fn diff(before: Option<&ChannelSpec>, after: Option<&ChannelSpec>) -> Vec<FieldChange> {
    let before_fields = before.map(shown).unwrap_or_default();
    let after_fields = after.map(shown).unwrap_or_default();
    let names: Vec<&'static str> = if before.is_some() {
        before_fields.iter().map(|(n, _)| *n).collect()
    } else {
        after_fields.iter().map(|(n, _)| *n).collect()
    };
    let value = |fields: &[(&'static str, Value)], name: &str| {
        fields
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(Value::Null, |(_, v)| v.clone())
    };
    let secrets_differ = |name: &str| match (before, after) {
        (Some(b), Some(a)) => match name {
            "keys" => b.secret_keys != a.secret_keys,
            "extra_headers" => b.extra_headers != a.extra_headers,
            _ => false,
        },
        _ => false,
    };
    names
        .into_iter()
        .filter_map(|name| {
            let (old, new) = (value(&before_fields, name), value(&after_fields, name));
            (old != new || secrets_differ(name)).then_some(FieldChange {
                field: name,
                before: old,
                after: new,
            })
        })
        .collect()
}

fn audit_entry(
    action: &'static str,
    change: &ChannelChange,
    id: i64,
) -> crate::records::audit::AuditEntry {
    audit::change(
        action,
        format!("channel:{id}"),
        change.before.as_ref().map(audit::fields::channel),
        change.after.as_ref().map(audit::fields::channel),
        audit::fields::CHANNEL_SECRETS,
    )
}

/// Writes a channel's new settings, refusing it when it changed since `seen`.
async fn write_update(
    tx: &mut Tx,
    id: i64,
    spec: &ChannelSpec,
    seen: i64,
    name: &str,
) -> ServiceResult<()> {
    let written = db::channels::update_if_unchanged(tx, id, spec, Some(seen))
        .await
        .map_err(super::conflict(
            "name",
            msg!("channel-exists", name = spec.name.as_str()),
        ))?;
    if !written {
        return Err(ServiceError::Conflict {
            field: Some("to"),
            message: msg!("admin-channels-changed-since", name = name),
        });
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Bulk actions

/// The bulk actions, by the name `/api` and the console's form give them.
pub const BULK_ACTIONS: [&str; 5] = ["enable", "disable", "delete", "set_priority", "set_groups"];

/// A bulk action on selected channels.
#[derive(Debug, Clone, Default)]
pub struct BulkInput {
    pub ids: Vec<i64>,
    /// One of [`BULK_ACTIONS`].
    pub action: String,
    /// For `set_priority`.
    pub priority: Option<i64>,
    /// For `set_groups`: comma-separated.
    pub groups: Option<String>,
    pub dry_run: bool,
}

/// Enables, disables, deletes, reprioritises or regroups the channels `ids`: all of them or,
/// when one cannot take it, none.
pub async fn bulk(ctx: &Ctx, caller: &Caller, input: BulkInput) -> ServiceResult<BatchOutcome> {
    caller.require_admin()?;
    let mut problems = Vec::new();
    if input.ids.is_empty() {
        problems.push(FieldProblem {
            field: "ids",
            message: msg!("admin-channels-none-selected"),
        });
    }
    let change = match input.action.as_str() {
        "enable" => Some(ChannelInput {
            status: Some(ChannelStatus::Enabled.as_str().into()),
            ..ChannelInput::default()
        }),
        "disable" => Some(ChannelInput {
            status: Some(ChannelStatus::Disabled.as_str().into()),
            ..ChannelInput::default()
        }),
        "delete" => None,
        "set_priority" => {
            if input.priority.is_none() {
                problems.push(FieldProblem {
                    field: "priority",
                    message: msg!("field-required"),
                });
            }
            Some(ChannelInput {
                priority: input.priority,
                ..ChannelInput::default()
            })
        }
        "set_groups" => {
            if input.groups.as_deref().is_none_or(|g| g.trim().is_empty()) {
                problems.push(FieldProblem {
                    field: "groups",
                    message: msg!("field-required"),
                });
            }
            Some(ChannelInput {
                groups: input.groups.clone(),
                ..ChannelInput::default()
            })
        }
        other => {
            problems.push(FieldProblem {
                field: "action",
                message: msg!(
                    "admin-channels-action-unknown",
                    value = other,
                    actions = BULK_ACTIONS.join(", ")
                ),
            });
            None
        }
    };
    // Groups are the request's, not one channel's: checked once, on the request's field.
    if input.action == "set_groups"
        && let Some(groups) = input.groups.as_deref().filter(|g| !g.trim().is_empty())
    {
        match crate::domain::names::list(groups, crate::domain::names::group_name) {
            Ok(names) => {
                for name in names {
                    match super::groups::require(&ctx.db, "groups", &name).await {
                        Ok(()) => {}
                        Err(ServiceError::Invalid(found)) => {
                            problems.extend(found);
                            break;
                        }
                        Err(other) => return Err(other),
                    }
                }
            }
            Err(error) => {
                if let ServiceError::Invalid(found) = super::name_err("groups")(error) {
                    problems.extend(found);
                }
            }
        }
    }
    if !problems.is_empty() {
        return Err(ServiceError::Invalid(problems));
    }
    let mut ids = input.ids.clone();
    ids.sort_unstable();
    ids.dedup();
    let mut changes = Vec::new();
    for id in ids {
        let row = channels::by_id(ctx, caller, id).await?;
        let Some(change) = change.clone() else {
            changes.push(ChannelChange::new(Some(&row), &row.name, None));
            continue;
        };
        let mut spec = row.spec();
        let already = change.status.as_deref() == Some(spec.status.as_str());
        match channels::apply(&ctx.db, &mut spec, change).await {
            // Disabling a disabled channel keeps why it was disabled (its failures, say).
            Ok(()) if already => {
                changes.push(ChannelChange::new(Some(&row), &row.name, Some(row.spec())))
            }
            Ok(()) => changes.push(ChannelChange::new(Some(&row), &row.name, Some(spec))),
            Err(ServiceError::Invalid(problems)) => {
                changes.push(ChannelChange::refused(&row, problems))
            }
            Err(other) => return Err(other),
        }
    }
    let mut outcome = BatchOutcome {
        applied: false,
        changes,
    };
    if input.dry_run {
        return Ok(outcome);
    }
    if outcome.has_problems() {
        return Err(outcome.refusal());
    }
    ctx.write(caller, async |tx| {
        for change in outcome
            .changes
            .iter()
            .filter(|c| c.kind != ChangeKind::Unchanged)
        {
            let (Some(id), Some(seen)) = (change.id, change.updated_at) else {
                continue;
            };
            match &change.after {
                None => {
                    db::channels::delete(tx, id).await?;
                    tx.audit(audit_entry("channel.bulk_delete", change, id));
                }
                Some(spec) => {
                    write_update(tx, id, spec, seen, &change.name).await?;
                    tx.audit(audit_entry("channel.bulk_update", change, id));
                }
            }
        }
        Ok(())
    })
    .await?;
    outcome.applied = true;
    Ok(outcome)
}

// ---------------------------------------------------------------------------------------
// Sync

/// The settings a sync may copy, by their `/api` names.
pub const SYNC_FIELDS: [&str; 10] = [
    "type",
    "base_url",
    "keys",
    "models",
    "model_mapping",
    "groups",
    "priority",
    "weight",
    "timeout_secs",
    "extra_headers",
];

/// Copying `fields` of channel `from` to the channels `to`.
#[derive(Debug, Clone, Default)]
pub struct SyncInput {
    /// The source, by name or id.
    pub from: String,
    pub to: Vec<i64>,
    pub fields: Vec<String>,
    /// Each target's `updated_at` as the preview read it (id → ms): a target changed since is
    /// refused. Targets not named here are taken as they are.
    pub updated_at: BTreeMap<i64, i64>,
    pub dry_run: bool,
}

fn copy_field(field: &str, from: &ChannelSpec, to: &mut ChannelSpec) {
    match field {
        "type" => to.channel_type = from.channel_type,
        "base_url" => to.base_url = from.base_url.clone(),
        "keys" => to.secret_keys = from.secret_keys.clone(),
        "models" => to.models = from.models.clone(),
        "model_mapping" => to.model_mapping = from.model_mapping.clone(),
        "groups" => to.groups = from.groups.clone(),
        "priority" => to.priority = from.priority,
        "weight" => to.weight = from.weight,
        "timeout_secs" => to.timeout_secs = from.timeout_secs,
        "extra_headers" => to.extra_headers = from.extra_headers.clone(),
        _ => {}
    }
}

/// Copies chosen settings of one channel to others. A target whose type or origin would
/// change keeps its stored secrets only by taking the source's (`keys`, `extra_headers` among
/// the fields); applying refuses a target changed since its preview.
pub async fn sync(ctx: &Ctx, caller: &Caller, input: SyncInput) -> ServiceResult<BatchOutcome> {
    caller.require_admin()?;
    let mut problems = Vec::new();
    let source = channels::get(ctx, caller, &input.from)
        .await
        .map_err(|e| match e {
            ServiceError::NotFound(message) => ServiceError::invalid("from", message),
            other => other,
        })?;
    let mut fields: Vec<&'static str> = Vec::new();
    for field in &input.fields {
        match SYNC_FIELDS.iter().find(|f| **f == field.trim()) {
            Some(known) if !fields.contains(known) => fields.push(known),
            Some(_) => {}
            None => problems.push(FieldProblem {
                field: "fields",
                message: msg!(
                    "admin-channels-sync-field-unknown",
                    value = field.as_str(),
                    fields = SYNC_FIELDS.join(", ")
                ),
            }),
        }
    }
    if fields.is_empty() && problems.is_empty() {
        problems.push(FieldProblem {
            field: "fields",
            message: msg!("admin-channels-sync-no-fields"),
        });
    }
    let mut targets = input.to.clone();
    targets.sort_unstable();
    targets.dedup();
    if targets.is_empty() {
        problems.push(FieldProblem {
            field: "to",
            message: msg!("admin-channels-none-selected"),
        });
    }
    if targets.contains(&source.id) {
        problems.push(FieldProblem {
            field: "to",
            message: msg!("admin-channels-sync-to-itself"),
        });
    }
    if !problems.is_empty() {
        return Err(ServiceError::Invalid(problems));
    }
    let from_spec = source.spec();
    let mut changes = Vec::new();
    for id in targets {
        let row = channels::by_id(ctx, caller, id).await?;
        if let Some(seen) = input.updated_at.get(&id)
            && *seen != row.updated_at
            && !input.dry_run
        {
            return Err(ServiceError::Conflict {
                field: Some("to"),
                message: msg!("admin-channels-changed-since", name = row.name.as_str()),
            });
        }
        let mut spec = row.spec();
        for field in &fields {
            copy_field(field, &from_spec, &mut spec);
        }
        let mut refused = channels::moved_needs_secrets(
            &row,
            &spec,
            fields.contains(&"keys"),
            fields.contains(&"extra_headers"),
        );
        // The copy's other checks: a type whose URL or keys must look a certain way, the
        // groups still existing.
        if refused.is_empty()
            && let Err(error) = channels::apply(&ctx.db, &mut spec, ChannelInput::default()).await
        {
            match error {
                ServiceError::Invalid(problems) => refused = problems,
                other => return Err(other),
            }
        }
        changes.push(if refused.is_empty() {
            ChannelChange::new(Some(&row), &row.name, Some(spec))
        } else {
            ChannelChange::refused(&row, refused)
        });
    }
    let mut outcome = BatchOutcome {
        applied: false,
        changes,
    };
    if input.dry_run {
        return Ok(outcome);
    }
    if outcome.has_problems() {
        return Err(outcome.refusal());
    }
    ctx.write(caller, async |tx| {
        for change in outcome
            .changes
            .iter()
            .filter(|c| c.kind != ChangeKind::Unchanged)
        {
            let (Some(id), Some(seen), Some(spec)) = (change.id, change.updated_at, &change.after)
            else {
                continue;
            };
            write_update(tx, id, spec, seen, &change.name).await?;
            tx.audit(audit_entry("channel.sync", change, id));
        }
        Ok(())
    })
    .await?;
    outcome.applied = true;
    Ok(outcome)
}

// ---------------------------------------------------------------------------------------
// Export and import

/// What a masked secret looks like in an export.
pub const MASKED_HEADER_VALUE: &str = "****";

/// One channel as exported and imported: the settings of `/api/channels`, keys masked and
/// header values replaced by `****`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelExport {
    pub name: String,
    #[serde(rename = "type")]
    pub channel_type: String,
    pub base_url: String,
    #[serde(default)]
    pub keys: Vec<String>,
    #[serde(default)]
    pub models: Vec<String>,
    #[serde(default)]
    pub model_mapping: BTreeMap<String, String>,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub priority: Option<i64>,
    #[serde(default)]
    pub weight: Option<i64>,
    #[serde(default)]
    pub timeout_secs: Option<i64>,
    #[serde(default)]
    pub extra_headers: BTreeMap<String, String>,
    /// `enabled` or `disabled` (a channel Tollgate disabled itself exports as `enabled`: the
    /// site it goes to judges its health again).
    #[serde(default)]
    pub status: Option<String>,
}

/// Whether an exported key is a mask rather than a key.
fn is_masked_key(key: &str) -> bool {
    key.contains("****") || key.starts_with("service account ")
}

/// Every channel, its secrets masked.
pub async fn export(ctx: &Ctx, caller: &Caller) -> ServiceResult<Vec<ChannelExport>> {
    let rows = channels::list(ctx, caller).await?;
    Ok(rows
        .iter()
        .map(|row| ChannelExport {
            name: row.name.clone(),
            channel_type: row.channel_type.as_str().to_string(),
            base_url: row.base_url.clone(),
            keys: row
                .secret_keys
                .iter()
                .map(|k| mask_upstream_key(k))
                .collect(),
            models: row.models.clone(),
            model_mapping: row.model_mapping.clone(),
            groups: row.groups.clone(),
            priority: Some(row.priority),
            weight: Some(row.weight),
            timeout_secs: Some(row.timeout_secs),
            extra_headers: row
                .extra_headers
                .keys()
                .map(|name| (name.clone(), MASKED_HEADER_VALUE.to_string()))
                .collect(),
            status: Some(
                match row.status {
                    ChannelStatus::Disabled => ChannelStatus::Disabled,
                    _ => ChannelStatus::Enabled,
                }
                .as_str()
                .to_string(),
            ),
        })
        .collect())
}

/// Importing channels in the shape [`export`] gives.
#[derive(Debug, Clone, Default)]
pub struct ImportInput {
    pub channels: Vec<ChannelExport>,
    pub dry_run: bool,
}

/// What one exported channel says, as a change: its real keys (masks left out), its header
/// values when all are real.
fn import_input(item: &ChannelExport) -> (ChannelInput, bool) {
    let keys: Vec<String> = item
        .keys
        .iter()
        .filter(|k| !is_masked_key(k))
        .cloned()
        .collect();
    let headers_real = item
        .extra_headers
        .values()
        .all(|v| v != MASKED_HEADER_VALUE);
    let status = item.status.as_deref().map(|s| match s {
        "auto_disabled" => ChannelStatus::Enabled.as_str().to_string(),
        other => other.to_string(),
    });
    let input = ChannelInput {
        name: Some(item.name.clone()),
        channel_type: Some(item.channel_type.clone()),
        base_url: Some(item.base_url.clone()),
        keys: (!keys.is_empty()).then_some(keys),
        models: Some(item.models.join(",")),
        groups: (!item.groups.is_empty()).then(|| item.groups.join(",")),
        priority: item.priority,
        weight: item.weight,
        model_mapping: Some(item.model_mapping.clone()),
        timeout_secs: item.timeout_secs,
        extra_headers: headers_real.then(|| item.extra_headers.clone()),
        status,
    };
    (input, headers_real)
}

/// Creates the channels an export names that do not exist here, and updates those that do
/// (by name). Masked keys are no keys: a new channel without any is created disabled, "keys
/// needed"; an existing one keeps its own, unless the import moves it elsewhere.
pub async fn import(ctx: &Ctx, caller: &Caller, input: ImportInput) -> ServiceResult<BatchOutcome> {
    caller.require_admin()?;
    if input.channels.is_empty() {
        return Err(ServiceError::invalid(
            "channels",
            msg!("admin-channels-import-empty"),
        ));
    }
    let mut seen_names = Vec::new();
    let mut changes = Vec::new();
    for item in &input.channels {
        if seen_names.contains(&item.name) {
            return Err(ServiceError::invalid(
                "channels",
                msg!("admin-channels-import-twice", name = item.name.as_str()),
            ));
        }
        seen_names.push(item.name.clone());
        let (mut change_input, headers_real) = import_input(item);
        let existing = match channels::get(ctx, caller, &item.name).await {
            Ok(row) if row.name == item.name => Some(row),
            Ok(_) | Err(ServiceError::NotFound(_)) => None,
            Err(other) => return Err(other),
        };
        let change = match existing {
            None => {
                if !headers_real {
                    change_input.extra_headers = Some(
                        item.extra_headers
                            .iter()
                            .filter(|(_, v)| *v != MASKED_HEADER_VALUE)
                            .map(|(n, v)| (n.clone(), v.clone()))
                            .collect(),
                    );
                }
                match channels::prepare_create(&ctx.db, change_input, true).await {
                    Ok(mut spec) => {
                        let keys_missing = spec.secret_keys.is_empty()
                            && crate::providers::needs_key(spec.channel_type);
                        if keys_missing || !headers_real {
                            spec.status = ChannelStatus::Disabled;
                            spec.status_reason = KEYS_NEEDED.into();
                        }
                        ChannelChange::new(None, &item.name, Some(spec))
                    }
                    Err(ServiceError::Invalid(problems)) => ChannelChange {
                        problems,
                        ..ChannelChange::new(None, &item.name, None)
                    },
                    Err(other) => return Err(other),
                }
            }
            Some(row) => {
                let mut spec = row.spec();
                let restates_keys = change_input.keys.is_some();
                let restates_headers = change_input.extra_headers.is_some();
                let prepared = match change_input.channel_type.take() {
                    Some(text) => match channels::parse_type(&text) {
                        Ok(channel_type) => {
                            spec.channel_type = channel_type;
                            channels::apply(&ctx.db, &mut spec, change_input).await
                        }
                        Err(error) => Err(error),
                    },
                    None => channels::apply(&ctx.db, &mut spec, change_input).await,
                };
                let mut refused = match prepared {
                    Ok(()) => Vec::new(),
                    Err(ServiceError::Invalid(problems)) => problems,
                    Err(other) => return Err(other),
                };
                if refused.is_empty() {
                    refused =
                        channels::moved_needs_secrets(&row, &spec, restates_keys, restates_headers);
                }
                if refused.is_empty() {
                    ChannelChange::new(Some(&row), &row.name, Some(spec))
                } else {
                    ChannelChange::refused(&row, refused)
                }
            }
        };
        changes.push(change);
    }
    let mut outcome = BatchOutcome {
        applied: false,
        changes,
    };
    if input.dry_run {
        return Ok(outcome);
    }
    if outcome.has_problems() {
        return Err(outcome.refusal());
    }
    ctx.write(caller, async |tx| {
        for change in outcome.changes.iter_mut() {
            match (change.kind, change.id, change.updated_at, &change.after) {
                (ChangeKind::Create, _, _, Some(spec)) => {
                    let id = channels::insert_in(tx, spec).await?;
                    tx.audit(audit_entry("channel.import", change, id));
                    change.id = Some(id);
                }
                (ChangeKind::Update, Some(id), Some(seen), Some(spec)) => {
                    write_update(tx, id, spec, seen, &change.name).await?;
                    tx.audit(audit_entry("channel.import", change, id));
                }
                _ => {}
            }
        }
        Ok(())
    })
    .await?;
    outcome.applied = true;
    Ok(outcome)
}

/// Why a channel is off, in the reader's words when an admin or an import turned it off.
pub fn reason_key(reason: &str) -> Option<&'static str> {
    match reason {
        DISABLED_BY_ADMIN => Some("admin-channels-reason-admin"),
        KEYS_NEEDED => Some("admin-channels-reason-keys-needed"),
        _ => None,
    }
}
