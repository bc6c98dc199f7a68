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
use crate::service::channels::ChannelInput;
use crate::service::views::ChannelView;
use crate::service::{self};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/channels", get(list).post(create))
        .route("/channel-presets", get(presets))
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
