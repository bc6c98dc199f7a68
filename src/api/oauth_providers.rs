//! `/api/oauth-providers`: the portal's sign-in providers. Client secrets go in and are never
//! returned.

use axum::Json;
use axum::extract::{Path, State};
use http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::Data;
use super::error::{ApiError, ApiErrorBody};
use super::extract::{ApiCaller, ApiJson};
use crate::service::oauth::NewProvider;
use crate::service::views::OAuthProviderView;
use crate::service::{self};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(remove))
}

fn base_url(state: &AppState) -> String {
    state.snapshot.load().options.base_url(&state.listen_url)
}

/// The sign-in providers, secrets as `********` (root's alone).
#[utoipa::path(get, path = "/oauth-providers",
    responses(
        (status = 200, description = "The providers", body = Data<OAuthProviderView>),
        (status = 403, description = "Root's alone", body = ApiErrorBody),
    ))]
async fn list(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
) -> Result<Json<Data<OAuthProviderView>>, ApiError> {
    let providers = service::oauth::list_providers(&state.ctx, &caller).await?;
    let base = base_url(&state);
    Ok(Data::of(
        providers
            .iter()
            .map(|p| OAuthProviderView::new(p, &base))
            .collect(),
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ProviderBody {
    /// `github` or `oidc`.
    #[serde(rename = "type")]
    kind: String,
    name: String,
    display_name: Option<String>,
    client_id: String,
    client_secret: String,
    /// For OIDC: the issuer whose discovery document is read.
    issuer: Option<String>,
    /// For GitHub Enterprise, with `token_url` and `api_url`.
    auth_url: Option<String>,
    token_url: Option<String>,
    api_url: Option<String>,
}

/// Adds a sign-in provider (root's alone); the answer's `callback_url` is what to register
/// with the provider.
#[utoipa::path(post, path = "/oauth-providers", request_body = ProviderBody,
    responses(
        (status = 201, description = "The new provider", body = OAuthProviderView),
        (status = 403, description = "Root's alone", body = ApiErrorBody),
        (status = 409, description = "The name is taken", body = ApiErrorBody),
        (status = 502, description = "The OIDC discovery document could not be read", body = ApiErrorBody),
    ))]
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

#[utoipa::path(delete, path = "/oauth-providers/{name}",
    responses(
        (status = 204, description = "Removed"),
        (status = 403, description = "Root's alone", body = ApiErrorBody),
        (status = 404, description = "No such provider", body = ApiErrorBody),
    ))]
async fn remove(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    service::oauth::remove_provider(&state.ctx, &caller, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
