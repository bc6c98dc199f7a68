use std::collections::BTreeMap;

use super::{Caller, Ctx, FieldProblem, ServiceError, ServiceResult, audit, conflict, name_err};
use crate::domain::kinds::{ChannelStatus, ChannelType};
use crate::domain::names;
use crate::msg;
use crate::providers::{self, presets};
use crate::service::db::channels::{ChannelRow, ChannelSpec};
use crate::service::db::{self, Db};

/// A channel as typed by an admin. On create, name, type, base URL, keys and models are
/// required; on update every field is optional.
#[derive(Debug, Clone, Default)]
pub struct ChannelInput {
    pub name: Option<String>,
    pub channel_type: Option<String>,
    pub base_url: Option<String>,
    pub keys: Option<Vec<String>>,
    /// Comma-separated.
    pub models: Option<String>,
    /// Comma-separated; defaults to `default`.
    pub groups: Option<String>,
    pub priority: Option<i64>,
    pub weight: Option<i64>,
    pub model_mapping: Option<BTreeMap<String, String>>,
    pub timeout_secs: Option<i64>,
    pub extra_headers: Option<BTreeMap<String, String>>,
    /// `enabled` or `disabled`.
    pub status: Option<String>,
}

/// Largest weight accepted; weights are relative, so this is plenty.
const MAX_WEIGHT: i64 = 10_000;

/// A channel type, or a vendor preset (an OpenAI-compatible channel).
pub(super) fn parse_type(text: &str) -> ServiceResult<ChannelType> {
    if let Some(channel_type) = ChannelType::parse(text) {
        return Ok(channel_type);
    }
    if presets::find(text).is_some() {
        return Ok(ChannelType::OpenAi);
    }
    Err(ServiceError::invalid(
        "type",
        msg!(
            "channel-type-unknown",
            value = text,
            types = ChannelType::choices(),
            presets = presets::names()
        ),
    ))
}

/// Fills in what a vendor preset provides and the admin left out: base URL, models, and for
/// local servers that take no key a placeholder key (they ignore it).
fn apply_preset(preset: &presets::Preset, input: &mut ChannelInput) {
    if input.base_url.is_none() {
        input.base_url = Some(preset.base_url.clone());
    }
    if input.models.is_none() && input.model_mapping.is_none() && !preset.models.is_empty() {
        input.models = Some(preset.models.join(","));
    }
    if input.keys.is_none() && !preset.needs_key {
        input.keys = Some(vec![preset.name.clone()]);
    }
}

/// Checks the URL and, given a bare host, adds the version prefix the API needs (`/v1`).
fn normalise_base_url(text: &str, channel_type: ChannelType) -> ServiceResult<String> {
    let text = text.trim().trim_end_matches('/');
    let url = reqwest::Url::parse(text)
        .map_err(|_| ServiceError::invalid("base_url", msg!("url-invalid", value = text)))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(ServiceError::invalid(
            "base_url",
            msg!("url-not-http", value = text),
        ));
    }
    // Azure's API version may ride on the resource URL (`?api-version=2025-04-01-preview`).
    let azure_version_only = channel_type == ChannelType::Azure
        && url
            .query_pairs()
            .all(|(name, value)| name == "api-version" && !value.is_empty());
    if (url.query().is_some() && !azure_version_only) || url.fragment().is_some() {
        return Err(ServiceError::invalid(
            "base_url",
            if channel_type == ChannelType::Azure {
                msg!("url-azure-query")
            } else {
                msg!("url-has-query")
            },
        ));
    }
    let bare = matches!(url.path(), "" | "/");
    Ok(if bare {
        format!("{text}{}", providers::default_path_prefix(channel_type))
    } else {
        text.to_string()
    })
}

fn parse_keys(keys: &[String], channel_type: ChannelType) -> ServiceResult<Vec<String>> {
    let keys: Vec<String> = keys
        .iter()
        .flat_map(|k| k.lines())
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(str::to_string)
        .collect();
    if keys.is_empty() && providers::needs_key(channel_type) {
        return Err(ServiceError::invalid("keys", msg!("channel-key-missing")));
    }
    // A service account's JSON (Vertex) has spaces inside its values; a token never does.
    let spaces_allowed = channel_type == ChannelType::Vertex;
    if keys.iter().any(|k| {
        k.chars()
            .any(|c| c.is_control() || (c == ' ' && !spaces_allowed))
    }) {
        return Err(ServiceError::invalid("keys", msg!("channel-key-spaces")));
    }
    Ok(keys)
}

fn check_mapping(mapping: &BTreeMap<String, String>) -> ServiceResult<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for (from, to) in mapping {
        let from = names::model_name(from).map_err(name_err("model_mapping"))?;
        let to = names::model_name(to).map_err(name_err("model_mapping"))?;
        out.insert(from, to);
    }
    Ok(out)
}

fn check_headers(headers: &BTreeMap<String, String>) -> ServiceResult<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for (name, value) in headers {
        let name = name.trim();
        if http::HeaderName::try_from(name).is_err() {
            return Err(ServiceError::invalid(
                "extra_headers",
                msg!("header-name-invalid", name = name),
            ));
        }
        if matches!(
            name.to_ascii_lowercase().as_str(),
            "authorization" | "x-api-key" | "content-type" | "content-length" | "host"
        ) {
            return Err(ServiceError::invalid(
                "extra_headers",
                msg!("header-reserved", name = name),
            ));
        }
        if http::HeaderValue::try_from(value.trim()).is_err() {
            return Err(ServiceError::invalid(
                "extra_headers",
                msg!("header-value-invalid", name = name),
            ));
        }
        out.insert(name.to_string(), value.trim().to_string());
    }
    Ok(out)
}

fn parse_status(text: &str) -> ServiceResult<ChannelStatus> {
    match ChannelStatus::parse(text) {
        Some(ChannelStatus::AutoDisabled) | None => Err(ServiceError::invalid(
            "status",
            msg!("channel-status-invalid", value = text),
        )),
        Some(status) => Ok(status),
    }
}

/// Applies `input` over `spec` (a blank spec on create), validating every field given.
pub(super) async fn apply(
    db: &Db,
    spec: &mut ChannelSpec,
    input: ChannelInput,
) -> ServiceResult<()> {
    if let Some(name) = input.name {
        spec.name = names::channel_name(&name).map_err(name_err("name"))?;
    }
    if let Some(channel_type) = input.channel_type {
        spec.channel_type = parse_type(&channel_type)?;
    }
    if let Some(base_url) = input.base_url {
        spec.base_url = normalise_base_url(&base_url, spec.channel_type)?;
    }
    if let Some(keys) = input.keys {
        spec.secret_keys = parse_keys(&keys, spec.channel_type)?;
    }
    if let Some(models) = input.models {
        spec.models = names::list(&models, names::model_pattern).map_err(name_err("models"))?;
    }
    if let Some(mapping) = input.model_mapping {
        spec.model_mapping = check_mapping(&mapping)?;
    }
    // A mapped name is a model clients ask for, so it belongs to the channel's model list
    // (One API makes admins list both, a frequent source of "no channel" errors).
    for from in spec.model_mapping.keys() {
        if !spec.models.contains(from) {
            spec.models.push(from.clone());
        }
    }
    if spec.models.is_empty() {
        return Err(ServiceError::invalid(
            "models",
            msg!("channel-models-empty"),
        ));
    }
    if let Some(groups) = input.groups {
        spec.groups = names::list(&groups, names::group_name).map_err(name_err("groups"))?;
    }
    if spec.groups.is_empty() {
        return Err(ServiceError::invalid(
            "groups",
            msg!("channel-groups-empty"),
        ));
    }
    for group in &spec.groups {
        super::groups::require(db, "groups", group).await?;
    }
    if let Some(priority) = input.priority {
        spec.priority = priority;
    }
    if let Some(weight) = input.weight {
        if !(0..=MAX_WEIGHT).contains(&weight) {
            return Err(ServiceError::invalid(
                "weight",
                msg!("number-between", min = 0_i64, max = MAX_WEIGHT),
            ));
        }
        spec.weight = weight;
    }
    if let Some(timeout) = input.timeout_secs {
        if !(0..=3600).contains(&timeout) {
            return Err(ServiceError::invalid(
                "timeout_secs",
                msg!("channel-timeout-range"),
            ));
        }
        spec.timeout_secs = timeout;
    }
    if let Some(headers) = input.extra_headers {
        spec.extra_headers = check_headers(&headers)?;
    }
    if spec.channel_type == ChannelType::Bedrock {
        for key in &spec.secret_keys {
            providers::bedrock::BedrockKey::parse(key).map_err(|reason| {
                ServiceError::invalid("keys", msg!("channel-key-unusable", reason = reason))
            })?;
        }
    }
    if spec.channel_type == ChannelType::Vertex {
        providers::vertex::check_base_url(&spec.base_url).map_err(|reason| {
            ServiceError::invalid("base_url", msg!("url-vertex-invalid", reason = reason))
        })?;
        for key in &spec.secret_keys {
            providers::vertex::TokenSource::check_key(key).map_err(|reason| {
                ServiceError::invalid("keys", msg!("channel-key-unusable", reason = reason))
            })?;
        }
    }
    if let Some(status) = input.status {
        spec.status = parse_status(&status)?;
        spec.status_reason = match spec.status {
            ChannelStatus::Disabled => DISABLED_BY_ADMIN.into(),
            _ => String::new(),
        };
    }
    // A channel kept without keys (imported so) waits disabled until it gets them.
    if spec.status == ChannelStatus::Enabled
        && spec.secret_keys.is_empty()
        && providers::needs_key(spec.channel_type)
    {
        return Err(ServiceError::invalid(
            "status",
            msg!("admin-channels-enable-needs-keys"),
        ));
    }
    Ok(())
}

/// Why a channel an admin turned off is off (shown as it is stored).
pub const DISABLED_BY_ADMIN: &str = "disabled by an admin";
/// Why a channel imported without its secrets is off until it gets them.
pub const KEYS_NEEDED: &str = "keys needed";

pub async fn create(ctx: &Ctx, caller: &Caller, input: ChannelInput) -> ServiceResult<ChannelRow> {
    caller.require_admin()?;
    let db = &ctx.db;
    let spec = prepare_create(db, input, false).await?;
    let id = insert(ctx, caller, &spec, "channel.create").await?;
    find_id(db, id).await
}

/// Inserts a checked channel, described in the audit log as `action`.
pub(super) async fn insert(
    ctx: &Ctx,
    caller: &Caller,
    spec: &ChannelSpec,
    action: &'static str,
) -> ServiceResult<i64> {
    ctx.write(caller, async |tx| {
        let id = insert_in(tx, spec).await?;
        tx.audit(audit::change(
            action,
            format!("channel:{id}"),
            None,
            Some(audit::fields::channel(spec)),
            audit::fields::CHANNEL_SECRETS,
        ));
        Ok(id)
    })
    .await
}

/// Inserts a checked channel inside a transaction; its name may be taken.
pub(super) async fn insert_in(tx: &mut db::Tx, spec: &ChannelSpec) -> ServiceResult<i64> {
    db::channels::insert(tx, spec).await.map_err(conflict(
        "name",
        msg!("channel-exists", name = spec.name.as_str()),
    ))
}

/// Checks a new channel's settings. With `keys_optional`, a channel given no keys is made
/// disabled, waiting for them (an import of an export, whose keys are masked).
pub(super) async fn prepare_create(
    db: &Db,
    mut input: ChannelInput,
    keys_optional: bool,
) -> ServiceResult<ChannelSpec> {
    let preset = input.channel_type.as_deref().and_then(presets::find);
    // A vendor served at the root of its host keeps its base URL as it is.
    let keep_preset_url = preset.is_some_and(|p| !p.path_prefix_ok) && input.base_url.is_none();
    if let Some(preset) = preset {
        apply_preset(preset, &mut input);
    }
    let required = [
        ("name", input.name.is_none()),
        ("type", input.channel_type.is_none()),
        ("base_url", input.base_url.is_none()),
        (
            "keys",
            !keys_optional
                && input.keys.is_none()
                && input
                    .channel_type
                    .as_deref()
                    .and_then(ChannelType::parse)
                    .is_none_or(providers::needs_key),
        ),
        (
            "models",
            input.models.is_none() && input.model_mapping.is_none(),
        ),
    ];
    let missing: Vec<FieldProblem> = required
        .iter()
        .filter(|(_, missing)| *missing)
        .map(|(field, _)| FieldProblem {
            field,
            message: msg!("field-required"),
        })
        .collect();
    if !missing.is_empty() {
        return Err(ServiceError::Invalid(missing));
    }
    let mut spec = ChannelSpec {
        name: String::new(),
        channel_type: ChannelType::OpenAi,
        base_url: String::new(),
        secret_keys: Vec::new(),
        models: Vec::new(),
        model_mapping: BTreeMap::new(),
        groups: vec![super::groups::DEFAULT_GROUP.to_string()],
        priority: 0,
        weight: 1,
        status: ChannelStatus::Enabled,
        status_reason: String::new(),
        timeout_secs: 0,
        extra_headers: BTreeMap::new(),
    };
    // The type decides how the base URL is read, so it is applied first.
    if let Some(channel_type) = input.channel_type.take() {
        spec.channel_type = parse_type(&channel_type)?;
    }
    if keys_optional && input.keys.is_none() && providers::needs_key(spec.channel_type) {
        input.status = None;
        spec.status = ChannelStatus::Disabled;
        spec.status_reason = KEYS_NEEDED.into();
    }
    apply(db, &mut spec, input).await?;
    if let (Some(preset), true) = (preset, keep_preset_url) {
        spec.base_url = preset.base_url.clone();
    }
    Ok(spec)
}

pub async fn by_id(ctx: &Ctx, caller: &Caller, id: i64) -> ServiceResult<ChannelRow> {
    caller.require_admin()?;
    find_id(&ctx.db, id).await
}

async fn find_id(db: &Db, id: i64) -> ServiceResult<ChannelRow> {
    db::channels::find_by_id(db, id)
        .await?
        .ok_or_else(|| ServiceError::NotFound(msg!("channel-id-not-found", id = id)))
}

/// Finds a channel by name, or by id when given digits.
pub async fn get(ctx: &Ctx, caller: &Caller, name_or_id: &str) -> ServiceResult<ChannelRow> {
    caller.require_admin()?;
    find(&ctx.db, name_or_id).await
}

pub(crate) async fn find(db: &Db, name_or_id: &str) -> ServiceResult<ChannelRow> {
    if let Some(channel) = db::channels::find_by_name(db, name_or_id).await? {
        return Ok(channel);
    }
    if let Ok(id) = name_or_id.parse::<i64>() {
        return find_id(db, id).await;
    }
    Err(ServiceError::NotFound(msg!(
        "channel-not-found",
        name = name_or_id
    )))
}

pub async fn list(ctx: &Ctx, caller: &Caller) -> ServiceResult<Vec<ChannelRow>> {
    caller.require_admin()?;
    Ok(db::channels::list(&ctx.db).await?)
}

pub async fn update(
    ctx: &Ctx,
    caller: &Caller,
    name_or_id: &str,
    input: ChannelInput,
) -> ServiceResult<ChannelRow> {
    caller.require_admin()?;
    let db = &ctx.db;
    let channel = find(db, name_or_id).await?;
    let mut spec = channel.spec();
    let mut input = input;
    if let Some(channel_type) = input.channel_type.take() {
        spec.channel_type = parse_type(&channel_type)?;
    }
    let restates_keys = input.keys.is_some();
    let restates_headers = input.extra_headers.is_some();
    apply(db, &mut spec, input).await?;
    let problems = moved_needs_secrets(&channel, &spec, restates_keys, restates_headers);
    if !problems.is_empty() {
        return Err(ServiceError::Invalid(problems));
    }
    let name = spec.name.clone();
    ctx.write(caller, async |tx| {
        db::channels::update(tx, channel.id, &spec)
            .await
            .map_err(conflict(
                "name",
                msg!("channel-exists", name = name.as_str()),
            ))?;
        tx.audit(audit::change(
            "channel.update",
            format!("channel:{}", channel.id),
            Some(audit::fields::channel(&channel.spec())),
            Some(audit::fields::channel(&spec)),
            audit::fields::CHANNEL_SECRETS,
        ));
        Ok(())
    })
    .await?;
    find_id(db, channel.id).await
}

/// The channel's secrets go wherever it points: pointing it at another host (or making it
/// speak another protocol) is a change an admin makes together with the secrets for that
/// place, so nobody can send the stored ones to a host of their own. The problems when
/// `after` moves `before` without restating its keys or header values.
pub(crate) fn moved_needs_secrets(
    before: &ChannelRow,
    after: &ChannelSpec,
    restates_keys: bool,
    restates_headers: bool,
) -> Vec<FieldProblem> {
    let moved = after.channel_type != before.channel_type
        || origin(&after.base_url) != origin(&before.base_url);
    let mut problems = Vec::new();
    if !moved {
        return problems;
    }
    if !before.secret_keys.is_empty() && !restates_keys {
        problems.push(FieldProblem {
            field: "keys",
            message: msg!("channel-moved-needs-keys"),
        });
    }
    if !before.extra_headers.is_empty() && !restates_headers {
        problems.push(FieldProblem {
            field: "extra_headers",
            message: msg!("channel-moved-needs-headers"),
        });
    }
    problems
}

/// Applies `input` to a copy of channel `from`'s settings. Given no keys (or no headers), the
/// copy keeps the source's, as long as it goes where the source goes (same type and origin):
/// a copy pointed elsewhere needs its own.
pub async fn clone(
    ctx: &Ctx,
    caller: &Caller,
    from: &str,
    mut input: ChannelInput,
) -> ServiceResult<ChannelRow> {
    caller.require_admin()?;
    let source = find(&ctx.db, from).await?;
    let mut spec = source.spec();
    if let Some(channel_type) = input.channel_type.as_deref() {
        spec.channel_type = parse_type(channel_type)?;
    }
    if let Some(base_url) = input.base_url.as_deref() {
        spec.base_url = normalise_base_url(base_url, spec.channel_type)?;
    }
    let problems = moved_needs_secrets(
        &source,
        &spec,
        input.keys.is_some(),
        input.extra_headers.is_some(),
    );
    if !problems.is_empty() {
        return Err(ServiceError::Invalid(problems));
    }
    if input.keys.is_none() {
        input.keys = Some(source.secret_keys.clone());
    }
    if input.extra_headers.is_none() {
        input.extra_headers = Some(source.extra_headers.clone());
    }
    input.channel_type = Some(
        input
            .channel_type
            .unwrap_or_else(|| source.channel_type.as_str().to_string()),
    );
    input.base_url.get_or_insert(source.base_url.clone());
    input.models.get_or_insert(source.models.join(","));
    input
        .model_mapping
        .get_or_insert(source.model_mapping.clone());
    input.groups.get_or_insert(source.groups.join(","));
    input.priority.get_or_insert(source.priority);
    input.weight.get_or_insert(source.weight);
    input.timeout_secs.get_or_insert(source.timeout_secs);
    create(ctx, caller, input).await
}

/// A status change the server makes itself (an auto-disable decided on the hot path, a
/// re-enable after a passing probe), only when the channel is still `expected`; false when it
/// was changed meanwhile. The caller makes the change live (the sync job's reload).
pub async fn change_health(
    ctx: &Ctx,
    channel_id: i64,
    expected: ChannelStatus,
    status: ChannelStatus,
    reason: &str,
) -> ServiceResult<bool> {
    // Straight to the database: the caller makes the change live itself (the sync job's
    // reload), and the server's own changes are not audited.
    let (changed, _) = ctx
        .db
        .write(async |tx| {
            db::channels::set_status_if(tx, channel_id, expected, status, reason).await
        })
        .await?;
    Ok(changed)
}

/// Takes one of a channel's keys out of rotation (`reason`), or puts it back (`None`); the
/// channel as it is now, None when it was deleted meanwhile.
pub async fn set_key_health(
    ctx: &Ctx,
    channel_id: i64,
    fingerprint: &str,
    reason: Option<&str>,
) -> ServiceResult<Option<ChannelRow>> {
    Ok(db::channels::set_key_disabled(&ctx.db, channel_id, fingerprint, reason).await?)
}

/// Where a base URL sends requests: its scheme, host and port (the default port spelled
/// out); path and query are not part of it.
fn origin(base_url: &str) -> Option<(String, String, u16)> {
    let uri = base_url.parse::<http::Uri>().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let port = uri
        .port_u16()
        .unwrap_or(if scheme == "https" { 443 } else { 80 });
    Some((scheme, uri.host()?.to_ascii_lowercase(), port))
}

pub async fn delete(ctx: &Ctx, caller: &Caller, name_or_id: &str) -> ServiceResult<()> {
    caller.require_admin()?;
    let channel = find(&ctx.db, name_or_id).await?;
    ctx.write(caller, async |tx| {
        db::channels::delete(tx, channel.id).await?;
        tx.audit(audit::change(
            "channel.delete",
            format!("channel:{}", channel.id),
            Some(audit::fields::channel(&channel.spec())),
            None,
            audit::fields::CHANNEL_SECRETS,
        ));
        Ok(())
    })
    .await?;
    Ok(())
}

/// Parses `requested=upstream` pairs (comma-separated or repeated).
pub fn parse_mapping_pairs(pairs: &[String]) -> ServiceResult<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for pair in pairs
        .iter()
        .flat_map(|p| p.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let (from, to) = pair.split_once('=').ok_or_else(|| {
            ServiceError::invalid(
                "model_mapping",
                msg!("model-map-pair-invalid", value = pair),
            )
        })?;
        out.insert(from.trim().to_string(), to.trim().to_string());
    }
    Ok(out)
}

/// Parses `Name: value` header lines.
pub fn parse_header_lines(lines: &[String]) -> ServiceResult<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for line in lines {
        let (name, value) = line.split_once(':').ok_or_else(|| {
            ServiceError::invalid(
                "extra_headers",
                msg!("header-line-invalid", value = line.as_str()),
            )
        })?;
        out.insert(name.trim().to_string(), value.trim().to_string());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_checked_and_completed() {
        assert_eq!(
            normalise_base_url("https://api.openai.com", ChannelType::OpenAi).unwrap(),
            "https://api.openai.com/v1"
        );
        assert_eq!(
            normalise_base_url("http://127.0.0.1:18080/v1/", ChannelType::OpenAi).unwrap(),
            "http://127.0.0.1:18080/v1"
        );
        assert_eq!(
            normalise_base_url(
                "https://res.openai.azure.com?api-version=2025-04-01-preview",
                ChannelType::Azure
            )
            .unwrap(),
            "https://res.openai.azure.com?api-version=2025-04-01-preview"
        );
        assert!(
            normalise_base_url("https://res.openai.azure.com?x=1", ChannelType::Azure).is_err()
        );
        assert!(
            normalise_base_url(
                "https://api.openai.com/v1?api-version=1",
                ChannelType::OpenAi
            )
            .is_err()
        );
        assert!(normalise_base_url("ftp://x", ChannelType::OpenAi).is_err());
        assert!(normalise_base_url("not a url", ChannelType::OpenAi).is_err());
    }

    #[test]
    fn parses_mapping_pairs_and_headers() {
        let map = parse_mapping_pairs(&["gpt-4o=gpt-4o-2024-08-06,a=b".into()]).unwrap();
        assert_eq!(map["gpt-4o"], "gpt-4o-2024-08-06");
        assert_eq!(map["a"], "b");
        assert!(parse_mapping_pairs(&["nope".into()]).is_err());
        let headers = parse_header_lines(&["X-Org: acme".into()]).unwrap();
        assert_eq!(headers["X-Org"], "acme");
        assert!(check_headers(&BTreeMap::from([("Authorization".into(), "x".into())])).is_err());
    }
}
