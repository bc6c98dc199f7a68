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
use crate::service::views::AliasView;
use crate::service::{self};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, add))
        // Model names may contain slashes: a catch-all segment.
        .routes(routes!(remove))
}

#[utoipa::path(get, path = "/model-aliases",
    responses((status = 200, description = "The aliases", body = Data<AliasView>)))]
async fn list(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
) -> Result<Json<Data<AliasView>>, ApiError> {
    let aliases = service::model_aliases::list(&state.ctx, &caller).await?;
    Ok(Data::of(aliases.iter().map(AliasView::new).collect()))
}

/// `{"name": "fast", "to": "gpt-4o-mini"}`
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct AliasBody {
    name: String,
    to: String,
}

/// Adds an alias: requests for `name` go to the channels of `to`.
#[utoipa::path(post, path = "/model-aliases", request_body = AliasBody,
    responses(
        (status = 201, description = "The new alias", body = AliasView),
        (status = 409, description = "The name is taken", body = ApiErrorBody),
    ))]
async fn add(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<AliasBody>,
) -> Result<(StatusCode, Json<AliasView>), ApiError> {
    let alias = service::model_aliases::add(&state.ctx, &caller, &body.name, &body.to).await?;
    Ok((StatusCode::CREATED, Json(AliasView::new(&alias))))
}

#[utoipa::path(delete, path = "/model-aliases/{*name}",
    params(("name" = String, Path, description = "The alias; it may hold slashes")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such alias", body = ApiErrorBody),
    ))]
async fn remove(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    service::model_aliases::remove(&state.ctx, &caller, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
