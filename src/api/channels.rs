use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::ApiError;
use super::extract::{ApiCaller, ApiJson, List};
use super::quota_per_usd as qpu;
use crate::service::channel_batches::{BulkInput, ChannelExport, ImportInput, SyncInput};
use crate::service::channels::ChannelInput;
use crate::service::views::ChannelView;
use crate::service::{self};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/channels", get(list).post(create))
        .route("/channel-presets", get(presets))
        .route("/channels/bulk", axum::routing::post(bulk))
        .route("/channels/sync", axum::routing::post(sync))
        .route("/channels/export", get(export))
        .route("/channels/import", axum::routing::post(import))
        .route("/channel-tests", axum::routing::post(test_all))
        .route("/channels/{channel}/clone", axum::routing::post(clone))
        .route("/channels/{channel}/test", axum::routing::post(test))
        .route("/channels/{channel}/models", get(models))
        .route(
            "/channels/{channel}",
            get(show).patch(update).delete(remove),
        )
}

async fn list(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
) -> Result<Json<Value>, ApiError> {
    let channels = service::channels::list(&state.ctx, &caller).await?;
    let qpu = qpu(&state);
    let data: Vec<ChannelView> = channels.iter().map(|c| ChannelView::new(c, qpu)).collect();
    Ok(Json(json!({ "data": data })))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct TestBody {
    model: Option<String>,
}

/// One minimal real request through the channel; its latency and outcome are recorded.
async fn test(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Path(channel): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    // The body is optional: `{"model": "…"}` picks the model to try.
    let body: TestBody = if body.iter().all(u8::is_ascii_whitespace) {
        TestBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::bad_request(format!("the body must be {{\"model\": \"…\"}}: {e}"))
        })?
    };
    let model = body.model;
    let outcome =
        service::channel_tools::test(&state.ctx, &caller, &state.http, &channel, model.as_deref())
            .await?;
    Ok(Json(json!(outcome)))
}

/// The models the channel's upstream lists.
async fn models(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Path(channel): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let models =
        service::channel_tools::fetch_models(&state.ctx, &caller, &state.http, &channel).await?;
    Ok(Json(json!({ "data": models })))
}

/// The OpenAI-compatible vendor presets a channel's `type` may name.
async fn presets(ApiCaller(caller): ApiCaller) -> Result<Json<Value>, ApiError> {
    caller.require_admin()?;
    Ok(Json(json!({ "data": crate::providers::presets::all() })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChannelBody {
    name: Option<String>,
    #[serde(rename = "type")]
    channel_type: Option<String>,
    base_url: Option<String>,
    /// One key, a list, or keys separated by newlines.
    keys: Option<List>,
    key: Option<String>,
    models: Option<List>,
    groups: Option<List>,
    priority: Option<i64>,
    weight: Option<i64>,
    model_mapping: Option<BTreeMap<String, String>>,
    timeout_secs: Option<i64>,
    extra_headers: Option<BTreeMap<String, String>>,
    status: Option<String>,
}

impl ChannelBody {
    fn input(self) -> ChannelInput {
        let keys = match (self.keys, self.key) {
            (Some(keys), _) => Some(keys.items()),
            (None, Some(key)) => Some(vec![key]),
            (None, None) => None,
        };
        ChannelInput {
            name: self.name,
            channel_type: self.channel_type,
            base_url: self.base_url,
            keys,
            models: self.models.map(List::joined),
            groups: self.groups.map(List::joined),
            priority: self.priority,
            weight: self.weight,
            model_mapping: self.model_mapping,
            timeout_secs: self.timeout_secs,
            extra_headers: self.extra_headers,
            status: self.status,
        }
    }
}

async fn create(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ChannelBody>,
) -> Result<(StatusCode, Json<ChannelView>), ApiError> {
    let channel = service::channels::create(&state.ctx, &caller, body.input()).await?;
    Ok((
        StatusCode::CREATED,
        Json(ChannelView::new(&channel, qpu(&state))),
    ))
}

async fn show(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Path(channel): Path<String>,
) -> Result<Json<ChannelView>, ApiError> {
    let channel = service::channels::get(&state.ctx, &caller, &channel).await?;
    Ok(Json(ChannelView::new(&channel, qpu(&state))))
}

async fn update(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Path(channel): Path<String>,
    ApiJson(body): ApiJson<ChannelBody>,
) -> Result<Json<ChannelView>, ApiError> {
    let channel = service::channels::update(&state.ctx, &caller, &channel, body.input()).await?;
    Ok(Json(ChannelView::new(&channel, qpu(&state))))
}

async fn remove(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Path(channel): Path<String>,
) -> Result<StatusCode, ApiError> {
    service::channels::delete(&state.ctx, &caller, &channel).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A copy of a channel with the given changes; without keys (or headers) of its own it keeps
/// the source's, as long as it points where the source does.
async fn clone(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Path(channel): Path<String>,
    ApiJson(body): ApiJson<ChannelBody>,
) -> Result<(StatusCode, Json<ChannelView>), ApiError> {
    let channel = service::channels::clone(&state.ctx, &caller, &channel, body.input()).await?;
    Ok((
        StatusCode::CREATED,
        Json(ChannelView::new(&channel, qpu(&state))),
    ))
}

/// Tests every channel, eight at a time, each within 30 s.
async fn test_all(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
) -> Result<Json<Value>, ApiError> {
    let outcomes = service::channel_tools::test_all(&state.ctx, &caller, &state.http).await?;
    Ok(Json(json!({ "data": outcomes })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BulkBody {
    ids: Vec<i64>,
    action: String,
    priority: Option<i64>,
    groups: Option<List>,
    #[serde(default)]
    dry_run: bool,
}

/// One action on many channels: `enable`, `disable`, `delete`, `set_priority`, `set_groups`.
async fn bulk(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<BulkBody>,
) -> Result<Json<Value>, ApiError> {
    let outcome = service::channel_batches::bulk(
        &state.ctx,
        &caller,
        BulkInput {
            ids: body.ids,
            action: body.action,
            priority: body.priority,
            groups: body.groups.map(List::joined),
            dry_run: body.dry_run,
        },
    )
    .await?;
    Ok(Json(outcome.to_json()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SyncBody {
    /// The source channel, by name or id.
    from: Value,
    to: Vec<i64>,
    fields: List,
    /// What the preview answered: each target's `updated_at`.
    #[serde(default)]
    updated_at: BTreeMap<i64, i64>,
    #[serde(default)]
    dry_run: bool,
}

/// Copies chosen settings of one channel to others.
async fn sync(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<SyncBody>,
) -> Result<Json<Value>, ApiError> {
    let from = match body.from {
        Value::String(text) => text,
        other => other.to_string(),
    };
    let outcome = service::channel_batches::sync(
        &state.ctx,
        &caller,
        SyncInput {
            from,
            to: body.to,
            fields: body
                .fields
                .joined()
                .split(',')
                .map(str::trim)
                .filter(|f| !f.is_empty())
                .map(str::to_string)
                .collect(),
            updated_at: body.updated_at,
            dry_run: body.dry_run,
        },
    )
    .await?;
    Ok(Json(outcome.to_json()))
}

/// Every channel as JSON, keys masked: the shape `/api/channels/import` takes.
async fn export(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
) -> Result<Json<Value>, ApiError> {
    let channels = service::channel_batches::export(&state.ctx, &caller).await?;
    Ok(Json(json!({ "channels": channels })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportBody {
    channels: Vec<ChannelExport>,
    #[serde(default)]
    dry_run: bool,
}

/// Creates or updates (by name) the channels of an export.
async fn import(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ImportBody>,
) -> Result<Json<Value>, ApiError> {
    let outcome = service::channel_batches::import(
        &state.ctx,
        &caller,
        ImportInput {
            channels: body.channels,
            dry_run: body.dry_run,
        },
    )
    .await?;
    Ok(Json(outcome.to_json()))
}
