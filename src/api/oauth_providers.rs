//! `/api/oauth-providers`: the portal's sign-in providers. Client secrets go in and are never
//! returned.

use axum::extract::{Path, State};
use axum::routing::{delete, get};
use axum::{Json, Router};
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::ApiError;
use super::extract::{ApiCaller, ApiJson};
use crate::service::oauth::NewProvider;
use crate::service::views::OAuthProviderView;
use crate::service::{self};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/oauth-providers", get(list).post(create))
        .route("/oauth-providers/{name}", delete(remove))
}

fn base_url(state: &AppState) -> String {
    state.snapshot.load().options.base_url(&state.listen_url)
}

async fn list(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
) -> Result<Json<Value>, ApiError> {
    let providers = service::oauth::list_providers(&state.ctx, &caller).await?;
    let base = base_url(&state);
    let data: Vec<OAuthProviderView> = providers
        .iter()
        .map(|p| OAuthProviderView::new(p, &base))
        .collect();
    Ok(Json(json!({ "data": data })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProviderBody {
    #[serde(rename = "type")]
    kind: String,
    name: String,
    display_name: Option<String>,
    client_id: String,
    client_secret: String,
    issuer: Option<String>,
    auth_url: Option<String>,
    token_url: Option<String>,
    api_url: Option<String>,
}

async fn create(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ProviderBody>,
) -> Result<(StatusCode, Json<OAuthProviderView>), ApiError> {
    let input = NewProvider {
        kind: body.kind,
        name: body.name,
        display_name: body.display_name,
        client_id: body.client_id,
        client_secret: body.client_secret,
        issuer: body.issuer,
        auth_url: body.auth_url,
        token_url: body.token_url,
        api_url: body.api_url,
    };
    let provider = service::oauth::add_provider(&state.ctx, &caller, &state.oauth, input).await?;
    Ok((
        StatusCode::CREATED,
        Json(OAuthProviderView::new(&provider, &base_url(&state))),
    ))
}

async fn remove(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    service::oauth::remove_provider(&state.ctx, &caller, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
