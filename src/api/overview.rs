//! `GET /api/overview?range=24h|7d|30d`: the console's overview as JSON (from the rollups).

use axum::Json;
use axum::extract::{Query, State};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ApiError;
use super::extract::ApiCaller;
use crate::clock::now_ms;
use crate::service::overview::{Overview, Range};
use crate::service::{self};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(overview))
}

#[derive(Deserialize, Default, IntoParams)]
#[serde(deny_unknown_fields, default)]
#[into_params(parameter_in = Query)]
struct OverviewParams {
    /// `24h` (default), `7d` or `30d`.
    range: Option<String>,
}

/// Money is in quota units (see `quota_per_usd` in `/api/options` for dollars).
#[utoipa::path(get, path = "/overview", params(OverviewParams),
    responses((status = 200, description = "The console's overview", body = Overview)))]
async fn overview(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Query(params): Query<OverviewParams>,
) -> Result<Json<Overview>, ApiError> {
    let range = match params.range.as_deref() {
        None => Range::Day,
        Some(text) => Range::parse(text)
            .ok_or_else(|| ApiError::bad_request("`range` must be one of 24h, 7d, 30d"))?,
    };
    let now = now_ms();
    let cooling = state.snapshot.load().cooling_channels(now);
    let overview = service::overview::build(&state.ctx, &caller, range, now, &cooling).await?;
    Ok(Json(overview))
}
