use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::Data;
use super::error::{ApiError, ApiErrorBody};
use super::extract::{ApiCaller, ApiJson, List};
use super::quota_per_usd as qpu;
use crate::providers::presets::Preset;
use crate::service::channel_batches::{
    BatchView, BulkInput, ChannelExport, ImportInput, SyncInput,
};
use crate::service::channel_tools::TestOutcome;
use crate::service::channels::ChannelInput;
use crate::service::views::ChannelView;
use crate::service::{self};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(presets))
        .routes(routes!(bulk))
        .routes(routes!(sync))
        .routes(routes!(export))
        .routes(routes!(import))
        .routes(routes!(test_all))
        .routes(routes!(clone))
        .routes(routes!(test))
        .routes(routes!(models))
        .routes(routes!(show, update, remove))
}

#[utoipa::path(get, path = "/channels",
    responses((status = 200, description = "The channels, keys masked", body = Data<ChannelView>)))]
async fn list(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
) -> Result<Json<Data<ChannelView>>, ApiError> {
    let channels = service::channels::list(&state.ctx, &caller).await?;
    let qpu = qpu(&state);
    Ok(Data::of(
        channels.iter().map(|c| ChannelView::new(c, qpu)).collect(),
    ))
}

/// `{"model": "…"}`, or no body at all.
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
struct TestBody {
    /// The model to try (default: the channel's first).
    model: Option<String>,
}

/// One minimal real request through the channel; its latency and outcome are recorded.
#[utoipa::path(post, path = "/channels/{channel}/test",
    params(("channel" = String, Path, description = "The channel's name or id")),
    request_body(content = Option<TestBody>, description = "Optional", content_type = "application/json"),
    responses(
        (status = 200, description = "How the upstream answered", body = TestOutcome),
        (status = 404, description = "No such channel", body = ApiErrorBody),
    ))]
async fn test(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Path(channel): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<TestOutcome>, ApiError> {
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
    Ok(Json(outcome))
}

/// The models the channel's upstream lists.
#[utoipa::path(get, path = "/channels/{channel}/models",
    params(("channel" = String, Path, description = "The channel's name or id")),
    responses(
        (status = 200, description = "The model names", body = Data<String>),
        (status = 404, description = "No such channel", body = ApiErrorBody),
        (status = 502, description = "The upstream could not be asked or refused", body = ApiErrorBody),
    ))]
async fn models(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Path(channel): Path<String>,
) -> Result<Json<Data<String>>, ApiError> {
    let models =
        service::channel_tools::fetch_models(&state.ctx, &caller, &state.http, &channel).await?;
    Ok(Data::of(models))
}

/// A listing of the shipped presets, which live in a static table.
#[derive(serde::Serialize, ToSchema)]
struct Presets {
    #[schema(value_type = Vec<Preset>)]
    data: &'static [Preset],
}

/// The OpenAI-compatible vendor presets a channel's `type` may name.
#[utoipa::path(get, path = "/channel-presets",
    responses((status = 200, description = "The presets", body = Presets)))]
async fn presets(ApiCaller(caller): ApiCaller) -> Result<Json<Presets>, ApiError> {
    caller.require_admin()?;
    Ok(Json(Presets {
        data: crate::providers::presets::all(),
    }))
}

/// A channel's settings; a change leaves absent ones as they are.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ChannelBody {
    name: Option<String>,
    /// `openai`, `azure`, `anthropic`, `gemini`, `ollama`, `cohere`, `vertex`, `bedrock`, or a
    /// preset's name (`GET /api/channel-presets`).
    #[serde(rename = "type")]
    channel_type: Option<String>,
    base_url: Option<String>,
    /// One key, a list, or keys separated by newlines.
    keys: Option<List>,
    /// One key (as `keys`).
    key: Option<String>,
    models: Option<List>,
    groups: Option<List>,
    priority: Option<i64>,
    weight: Option<i64>,
    /// Model names the client asks for → the names the upstream knows.
    model_mapping: Option<BTreeMap<String, String>>,
    timeout_secs: Option<i64>,
    extra_headers: Option<BTreeMap<String, String>>,
    /// `enabled` or `disabled`.
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

/// Creates a channel.
#[utoipa::path(post, path = "/channels", request_body = ChannelBody,
    responses(
        (status = 201, description = "The new channel", body = ChannelView),
        (status = 409, description = "The name is taken", body = ApiErrorBody),
    ))]
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

#[utoipa::path(get, path = "/channels/{channel}",
    params(("channel" = String, Path, description = "The channel's name or id")),
    responses(
        (status = 200, description = "The channel, keys masked", body = ChannelView),
        (status = 404, description = "No such channel", body = ApiErrorBody),
    ))]
async fn show(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Path(channel): Path<String>,
) -> Result<Json<ChannelView>, ApiError> {
    let channel = service::channels::get(&state.ctx, &caller, &channel).await?;
    Ok(Json(ChannelView::new(&channel, qpu(&state))))
}

/// Changes a channel. A new `type`, or a base URL on another scheme, host or port, needs
/// `keys` and `extra_headers` again in the same change.
#[utoipa::path(patch, path = "/channels/{channel}", request_body = ChannelBody,
    params(("channel" = String, Path, description = "The channel's name or id")),
    responses(
        (status = 200, description = "The channel as changed", body = ChannelView),
        (status = 404, description = "No such channel", body = ApiErrorBody),
        (status = 409, description = "The new name is taken", body = ApiErrorBody),
    ))]
async fn update(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Path(channel): Path<String>,
    ApiJson(body): ApiJson<ChannelBody>,
) -> Result<Json<ChannelView>, ApiError> {
    let channel = service::channels::update(&state.ctx, &caller, &channel, body.input()).await?;
    Ok(Json(ChannelView::new(&channel, qpu(&state))))
}

#[utoipa::path(delete, path = "/channels/{channel}",
    params(("channel" = String, Path, description = "The channel's name or id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such channel", body = ApiErrorBody),
    ))]
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
#[utoipa::path(post, path = "/channels/{channel}/clone", request_body = ChannelBody,
    params(("channel" = String, Path, description = "The source channel's name or id")),
    responses(
        (status = 201, description = "The copy", body = ChannelView),
        (status = 404, description = "No such channel", body = ApiErrorBody),
        (status = 409, description = "The name is taken", body = ApiErrorBody),
    ))]
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
#[utoipa::path(post, path = "/channel-tests",
    responses((status = 200, description = "Each channel's outcome", body = Data<TestOutcome>)))]
async fn test_all(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
) -> Result<Json<Data<TestOutcome>>, ApiError> {
    let outcomes = service::channel_tools::test_all(&state.ctx, &caller, &state.http).await?;
    Ok(Data::of(outcomes))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct BulkBody {
    ids: Vec<i64>,
    /// `enable`, `disable`, `delete`, `set_priority` or `set_groups`.
    action: String,
    /// For `set_priority`.
    priority: Option<i64>,
    /// For `set_groups`.
    groups: Option<List>,
    /// Answer what would change and store nothing.
    #[serde(default)]
    dry_run: bool,
}

/// One action on many channels: `enable`, `disable`, `delete`, `set_priority`, `set_groups`.
#[utoipa::path(post, path = "/channels/bulk", request_body = BulkBody,
    responses(
        (status = 200, description = "What changed (or would change)", body = BatchView),
        (status = 404, description = "A channel does not exist", body = ApiErrorBody),
    ))]
async fn bulk(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<BulkBody>,
) -> Result<Json<BatchView>, ApiError> {
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
    Ok(Json(outcome.view()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SyncBody {
    /// The source channel, by name or id.
    from: NameOrId,
    /// The target channels' ids.
    to: Vec<i64>,
    /// The settings to copy: a list, or one comma-separated string.
    fields: List,
    /// What the preview answered: each target's `updated_at`, by id.
    #[serde(default)]
    #[schema(value_type = BTreeMap<String, i64>)]
    updated_at: BTreeMap<i64, i64>,
    #[serde(default)]
    dry_run: bool,
}

/// A channel named by its name or its id.
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
enum NameOrId {
    Name(String),
    Id(i64),
}

/// Copies chosen settings of one channel to others.
#[utoipa::path(post, path = "/channels/sync", request_body = SyncBody,
    responses(
        (status = 200, description = "What changed (or would change)", body = BatchView),
        (status = 404, description = "A channel does not exist", body = ApiErrorBody),
        (status = 409, description = "A target changed since the preview", body = ApiErrorBody),
    ))]
async fn sync(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<SyncBody>,
) -> Result<Json<BatchView>, ApiError> {
    let from = match body.from {
        NameOrId::Name(text) => text,
        NameOrId::Id(id) => id.to_string(),
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
    Ok(Json(outcome.view()))
}

#[derive(serde::Serialize, ToSchema)]
struct Export {
    channels: Vec<ChannelExport>,
}

/// Every channel as JSON, keys masked: the shape `/api/channels/import` takes.
#[utoipa::path(get, path = "/channels/export",
    responses((status = 200, description = "Every channel", body = Export)))]
async fn export(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
) -> Result<Json<Export>, ApiError> {
    let channels = service::channel_batches::export(&state.ctx, &caller).await?;
    Ok(Json(Export { channels }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ImportChannelsBody {
    /// An export's channels.
    channels: Vec<ChannelExport>,
    #[serde(default)]
    dry_run: bool,
}

/// Creates or updates (by name) the channels of an export.
#[utoipa::path(post, path = "/channels/import", request_body = ImportChannelsBody,
    responses((status = 200, description = "What changed (or would change)", body = BatchView)))]
async fn import(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ImportChannelsBody>,
) -> Result<Json<BatchView>, ApiError> {
    let outcome = service::channel_batches::import(
        &state.ctx,
        &caller,
        ImportInput {
            channels: body.channels,
            dry_run: body.dry_run,
        },
    )
    .await?;
    Ok(Json(outcome.view()))
}
