//! `/api/orgs/{slug}/teams`: an organisation's teams, named by id here (the services name
//! them by name: the id is looked up among the organisation's teams, which the caller must be
//! allowed to see), and their members with their caps.

use axum::Json;
use axum::extract::{Path, State};
use http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::Data;
use super::error::{ApiError, ApiErrorBody};
use super::extract::{ApiCaller, ApiJson, Decimal, List, nullable};
use crate::service::orgs::{TeamInput, TeamMemberInput, TeamView};
use crate::service::{self, Caller, ServiceError, ServiceResult};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, update, remove))
        .routes(routes!(put_member, remove_member))
}

fn team_not_found(id: i64) -> ServiceError {
    ServiceError::NotFound(crate::msg!("team-not-found", name = id.to_string()))
}

/// The team `id` of the organisation, as the caller may see it.
async fn team(state: &AppState, caller: &Caller, slug: &str, id: i64) -> ServiceResult<TeamView> {
    service::orgs::teams(&state.ctx, caller, slug)
        .await?
        .into_iter()
        .find(|t| t.id == id)
        .ok_or_else(|| team_not_found(id))
}

/// The name of the organisation's team `id`, for the services that take names.
pub(super) async fn team_name(
    state: &AppState,
    caller: &Caller,
    slug: &str,
    id: i64,
) -> ServiceResult<String> {
    Ok(team(state, caller, slug, id).await?.name)
}

/// A decimal as the services take it: its exact spelling.
pub(super) fn decimal_text(value: Decimal) -> String {
    match value {
        Decimal::Number(n) => n.to_string(),
        Decimal::Text(t) => t,
    }
}

/// A nullable decimal as the services take it: null is empty (none).
fn nullable_decimal(value: Option<Option<Decimal>>) -> Option<String> {
    value.map(|v| v.map(decimal_text).unwrap_or_default())
}

/// The teams with their budgets (and what this period spent), members and caps.
#[utoipa::path(get, path = "/orgs/{slug}/teams",
    responses(
        (status = 200, description = "Its teams", body = Data<TeamView>),
        (status = 404, description = "No such organisation", body = ApiErrorBody),
    ))]
async fn list(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Path(slug): Path<String>,
) -> Result<Json<Data<TeamView>>, ApiError> {
    Ok(Data::of(
        service::orgs::teams(&state.ctx, &caller, &slug).await?,
    ))
}

/// A team's settings; on a change, absent fields stay as they are.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct TeamBody {
    /// Required to create.
    name: Option<String>,
    /// Dollars per `budget_period`; null removes the budget.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Decimal>)]
    budget_usd: Option<Option<Decimal>>,
    /// `daily`, `weekly`, `monthly` or `quarterly`; null or empty removes the budget.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    budget_period: Option<Option<String>>,
    /// What each member may spend per the team's period unless their own cap says (needs a
    /// budget); null: no cap.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Decimal>)]
    member_cap_usd: Option<Option<Decimal>>,
    /// The groups its keys may use: the organisation's and the ones people may pick (a list
    /// or one comma-separated string); empty: the organisation's alone.
    groups: Option<List>,
}

impl TeamBody {
    fn input(self) -> TeamInput {
        let removed =
            matches!(self.budget_usd, Some(None)) || matches!(self.budget_period, Some(None));
        let (budget_period, budget_usd) = if removed {
            (Some(String::new()), None)
        } else {
            (
                self.budget_period.flatten(),
                self.budget_usd.flatten().map(decimal_text),
            )
        };
        TeamInput {
            name: self.name,
            budget_period,
            budget_usd,
            member_cap_usd: nullable_decimal(self.member_cap_usd),
            groups: self.groups.map(List::joined),
        }
    }
}

/// Makes a team.
#[utoipa::path(post, path = "/orgs/{slug}/teams", request_body = TeamBody,
    responses(
        (status = 201, description = "The new team", body = TeamView),
        (status = 403, description = "Only its admins and owner", body = ApiErrorBody),
        (status = 404, description = "No such organisation", body = ApiErrorBody),
        (status = 409, description = "A team has that name", body = ApiErrorBody),
    ))]
async fn create(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Path(slug): Path<String>,
    ApiJson(body): ApiJson<TeamBody>,
) -> Result<(StatusCode, Json<TeamView>), ApiError> {
    let team = service::orgs::create_team(&state.ctx, &caller, &slug, body.input()).await?;
    Ok((StatusCode::CREATED, Json(team)))
}

#[utoipa::path(get, path = "/orgs/{slug}/teams/{id}",
    responses(
        (status = 200, description = "The team", body = TeamView),
        (status = 404, description = "No such organisation or team", body = ApiErrorBody),
    ))]
async fn show(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Path((slug, id)): Path<(String, i64)>,
) -> Result<Json<TeamView>, ApiError> {
    Ok(Json(team(&state, &caller, &slug, id).await?))
}

/// Changes a team's settings.
#[utoipa::path(patch, path = "/orgs/{slug}/teams/{id}", request_body = TeamBody,
    responses(
        (status = 200, description = "The team as changed", body = TeamView),
        (status = 403, description = "Only its admins and owner", body = ApiErrorBody),
        (status = 404, description = "No such organisation or team", body = ApiErrorBody),
        (status = 409, description = "Another team has that name", body = ApiErrorBody),
    ))]
async fn update(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Path((slug, id)): Path<(String, i64)>,
    ApiJson(body): ApiJson<TeamBody>,
) -> Result<Json<TeamView>, ApiError> {
    let name = team_name(&state, &caller, &slug, id).await?;
    let team = service::orgs::update_team(&state.ctx, &caller, &slug, &name, body.input()).await?;
    Ok(Json(team))
}

/// Deletes a team with its memberships and its keys.
#[utoipa::path(delete, path = "/orgs/{slug}/teams/{id}",
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Only its admins and owner", body = ApiErrorBody),
        (status = 404, description = "No such organisation or team", body = ApiErrorBody),
    ))]
async fn remove(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Path((slug, id)): Path<(String, i64)>,
) -> Result<StatusCode, ApiError> {
    let name = team_name(&state, &caller, &slug, id).await?;
    service::orgs::delete_team(&state.ctx, &caller, &slug, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A member's place in the team; absent fields stay as they are (a new member: not a
/// manager, the team's cap).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct TeamMemberBody {
    /// Whether they manage the team (only the organisation's admins change it).
    manager: Option<bool>,
    /// Their own cap in dollars per the team's period (within its budget); null: the team's
    /// default.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Decimal>)]
    cap_usd: Option<Option<Decimal>>,
}

/// Puts a member of the organisation into the team, or changes their place in it.
#[utoipa::path(put, path = "/orgs/{slug}/teams/{id}/members/{username}", request_body = TeamMemberBody,
    responses(
        (status = 200, description = "The team with the member", body = TeamView),
        (status = 403, description = "Only its admins and the team's managers", body = ApiErrorBody),
        (status = 404, description = "No such organisation or team", body = ApiErrorBody),
    ))]
async fn put_member(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Path((slug, id, username)): Path<(String, i64, String)>,
    ApiJson(body): ApiJson<TeamMemberBody>,
) -> Result<Json<TeamView>, ApiError> {
    let name = team_name(&state, &caller, &slug, id).await?;
    let input = TeamMemberInput {
        manager: body.manager,
        cap_usd: body.cap_usd.map(|cap| cap.map(decimal_text)),
    };
    let team =
        service::orgs::put_team_member(&state.ctx, &caller, &slug, &name, &username, input).await?;
    Ok(Json(team))
}

/// Takes a member out of the team, with their keys of the team.
#[utoipa::path(delete, path = "/orgs/{slug}/teams/{id}/members/{username}",
    responses(
        (status = 204, description = "Removed"),
        (status = 403, description = "Only its admins and the team's managers", body = ApiErrorBody),
        (status = 404, description = "No such organisation, team or team member", body = ApiErrorBody),
    ))]
async fn remove_member(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Path((slug, id, username)): Path<(String, i64, String)>,
) -> Result<StatusCode, ApiError> {
    let name = team_name(&state, &caller, &slug, id).await?;
    service::orgs::remove_team_member(&state.ctx, &caller, &slug, &name, &username).await?;
    Ok(StatusCode::NO_CONTENT)
}
