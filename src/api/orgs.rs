//! `/api/orgs`: organisations, their wallet, members, invitations and ownership. Teams are in
//! `org_teams.rs`. Who may do what is the service's to decide (`service::orgs`); an
//! organisation the caller may not see answers 404.

use axum::Json;
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::response::IntoResponse;
use http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::Data;
use super::error::{ApiError, ApiErrorBody};
use super::extract::{ApiCaller, ApiJson, Decimal, decimal, nullable};
use super::org_teams::{decimal_text, team_name};
use super::users::{QuotaBody, replayed};
use crate::i18n::Lang;
use crate::service::org_invitations::{InvitationView, Invite, Invited};
use crate::service::orgs::{
    AddMember, CreateOrg, DeleteOrg, MemberView, OrgSummary, OrgView, Transfer, UpdateOrg,
};
use crate::service::{self, ServiceError};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, update, remove))
        .routes(routes!(adjust_wallet))
        .routes(routes!(members, add_member))
        .routes(routes!(update_member, remove_member))
        .routes(routes!(invitations, invite))
        .routes(routes!(revoke_invitation))
        .routes(routes!(resend_invitation))
        .routes(routes!(transfer))
}

/// The organisations: every one for a platform administrator, with the caller's role where
/// they belong.
#[utoipa::path(get, path = "/orgs",
    responses((status = 200, description = "The organisations", body = Data<OrgSummary>)))]
async fn list(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
) -> Result<Json<Data<OrgSummary>>, ApiError> {
    Ok(Data::of(service::orgs::list(&state.ctx, &caller).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateOrgBody {
    name: String,
    /// 2 to 32 lowercase letters, digits and `-`: the organisation's address.
    slug: String,
    /// The owner's username (default: the token's administrator).
    owner: Option<String>,
    /// An IANA zone its budgets start over in; empty or absent: the site's.
    timezone: Option<String>,
    /// Dollars per `budget_period`; absent: no budget.
    #[serde(default, deserialize_with = "decimal")]
    #[schema(value_type = Option<Decimal>)]
    budget_usd: Option<String>,
    /// `daily`, `weekly`, `monthly` or `quarterly`, with `budget_usd`.
    budget_period: Option<String>,
    /// The group its team keys use (default `default`).
    group: Option<String>,
}

/// Creates an organisation; its wallet starts empty.
#[utoipa::path(post, path = "/orgs", request_body = CreateOrgBody,
    responses(
        (status = 201, description = "The new organisation", body = OrgView),
        (status = 409, description = "The slug is taken", body = ApiErrorBody),
    ))]
async fn create(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateOrgBody>,
) -> Result<(StatusCode, Json<OrgView>), ApiError> {
    let org = service::orgs::create(
        &state.ctx,
        &caller,
        CreateOrg {
            name: body.name,
            slug: body.slug,
            owner: body.owner,
            timezone: body.timezone,
            budget_period: body.budget_period,
            budget_usd: body.budget_usd,
            group: body.group,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(org)))
}

/// An organisation with its wallet, budget (and what this period spent), members and teams.
#[utoipa::path(get, path = "/orgs/{slug}",
    responses(
        (status = 200, description = "The organisation", body = OrgView),
        (status = 404, description = "No such organisation", body = ApiErrorBody),
    ))]
async fn show(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Path(slug): Path<String>,
) -> Result<Json<OrgView>, ApiError> {
    Ok(Json(service::orgs::show(&state.ctx, &caller, &slug).await?))
}

/// The fields to change; absent ones stay as they are.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct UpdateOrgBody {
    name: Option<String>,
    /// A new slug: the organisation's address changes.
    slug: Option<String>,
    /// Empty: the site's zone.
    timezone: Option<String>,
    /// Dollars per period; null removes the budget.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Decimal>)]
    budget_usd: Option<Option<Decimal>>,
    /// A new period (counting starts afresh); null or empty removes the budget.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    budget_period: Option<Option<String>>,
    group: Option<String>,
}

/// Changes an organisation's settings.
#[utoipa::path(patch, path = "/orgs/{slug}", request_body = UpdateOrgBody,
    responses(
        (status = 200, description = "The organisation as changed", body = OrgView),
        (status = 403, description = "Only its admins and owner change it; only platform \
            administrators its group", body = ApiErrorBody),
        (status = 404, description = "No such organisation", body = ApiErrorBody),
        (status = 409, description = "The new slug is taken", body = ApiErrorBody),
    ))]
async fn update(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Path(slug): Path<String>,
    ApiJson(body): ApiJson<UpdateOrgBody>,
) -> Result<Json<OrgView>, ApiError> {
    // A null amount or period removes the budget: an empty period is none.
    let removed = matches!(body.budget_usd, Some(None)) || matches!(body.budget_period, Some(None));
    let (budget_period, budget_usd) = if removed {
        (Some(String::new()), None)
    } else {
        (
            body.budget_period.flatten(),
            body.budget_usd.flatten().map(decimal_text),
        )
    };
    let org = service::orgs::update(
        &state.ctx,
        &caller,
        &slug,
        UpdateOrg {
            name: body.name,
            slug: body.slug,
            timezone: body.timezone,
            budget_period,
            budget_usd,
            group: body.group,
        },
    )
    .await?;
    Ok(Json(org))
}

/// How an organisation is deleted, in the query or a JSON body.
#[derive(Deserialize, Default, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct DeleteParams {
    /// Delete it although its wallet holds money (platform administrators, with `reason`):
    /// the balance is written off in the ledger.
    force: Option<bool>,
    /// Why, for the ledger and the audit log.
    reason: Option<String>,
}

/// A JSON body that may be left out: no `Content-Type` and no length is none.
struct OptionalJson<T>(Option<T>);

impl<T: serde::de::DeserializeOwned> FromRequest<AppState> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
        let headers = request.headers();
        let length = headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let chunked = headers.contains_key(http::header::TRANSFER_ENCODING);
        let typed = headers.contains_key(http::header::CONTENT_TYPE);
        if !typed && !chunked && length.unwrap_or(0) == 0 {
            return Ok(OptionalJson(None));
        }
        let ApiJson(value) = ApiJson::<T>::from_request(request, state).await?;
        Ok(OptionalJson(Some(value)))
    }
}

/// Deletes an organisation with its teams, memberships, invitations and team keys. While its
/// wallet holds money it is refused (409) unless a platform administrator sends `force` with a
/// `reason` (in the query or as a JSON body `{"force": true, "reason": "…"}`).
#[utoipa::path(delete, path = "/orgs/{slug}", params(DeleteParams),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Only its owner or a platform administrator", body = ApiErrorBody),
        (status = 404, description = "No such organisation", body = ApiErrorBody),
        (status = 409, description = "The wallet holds money: send `force` and `reason`", body = ApiErrorBody),
    ))]
async fn remove(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Path(slug): Path<String>,
    Query(query): Query<DeleteParams>,
    OptionalJson(body): OptionalJson<DeleteParams>,
) -> Result<StatusCode, ApiError> {
    let body = body.unwrap_or_default();
    let input = DeleteOrg {
        force: body.force.or(query.force).unwrap_or(false),
        reason: body.reason.or(query.reason),
    };
    service::orgs::delete(&state.ctx, &caller, &slug, input).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Adds to the organisation's wallet (a negative amount deducts), with a ledger row:
/// platform administrators only. A key sent before changes nothing and answers with the
/// wallet as it is.
#[utoipa::path(post, path = "/orgs/{slug}/quota", request_body = QuotaBody,
    params(("Idempotency-Key" = Option<String>, Header,
        description = "The same key twice changes the wallet once")),
    responses(
        (status = 200, description = "The organisation with its new balance", body = OrgView,
            headers(("Idempotent-Replayed" = String,
                description = "`true` when the key was seen before: this is the first answer's balance"))),
        (status = 403, description = "Platform administrators only", body = ApiErrorBody),
        (status = 404, description = "No such organisation", body = ApiErrorBody),
        (status = 409, description = "The key was used for another change", body = ApiErrorBody),
    ))]
async fn adjust_wallet(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Path(slug): Path<String>,
    headers: http::HeaderMap,
    ApiJson(body): ApiJson<QuotaBody>,
) -> Result<impl IntoResponse, ApiError> {
    let change = body.into_change(&headers);
    let changed = service::orgs::adjust_wallet(&state.ctx, &caller, &slug, change).await?;
    Ok((replayed(changed.applied), Json(changed.org)))
}

/// The members with their roles and teams.
#[utoipa::path(get, path = "/orgs/{slug}/members",
    responses(
        (status = 200, description = "Its members", body = Data<MemberView>),
        (status = 404, description = "No such organisation", body = ApiErrorBody),
    ))]
async fn members(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Path(slug): Path<String>,
) -> Result<Json<Data<MemberView>>, ApiError> {
    Ok(Data::of(
        service::orgs::members(&state.ctx, &caller, &slug).await?,
    ))
}

/// The member named `username` in an organisation just changed.
fn member_in(org: OrgView, username: &str) -> Result<MemberView, ApiError> {
    org.members
        .into_iter()
        .find(|m| m.username.eq_ignore_ascii_case(username.trim()))
        .ok_or_else(|| {
            ServiceError::NotFound(crate::msg!("org-member-not-found", name = username.trim()))
                .into()
        })
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct AddMemberBody {
    username: String,
    /// `admin` or `member` (default).
    role: Option<String>,
    /// A team (by id) to put them in as well.
    team: Option<i64>,
    /// Whether they manage that team.
    #[serde(default)]
    manager: bool,
}

/// Puts an account into the organisation (and a team) directly, without an invitation:
/// platform administrators only.
#[utoipa::path(post, path = "/orgs/{slug}/members", request_body = AddMemberBody,
    responses(
        (status = 201, description = "The new member", body = MemberView),
        (status = 403, description = "Platform administrators only", body = ApiErrorBody),
        (status = 404, description = "No such organisation", body = ApiErrorBody),
        (status = 409, description = "Already a member", body = ApiErrorBody),
    ))]
async fn add_member(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Path(slug): Path<String>,
    ApiJson(body): ApiJson<AddMemberBody>,
) -> Result<(StatusCode, Json<MemberView>), ApiError> {
    let team = match body.team {
        Some(id) => Some(
            team_name(&state, &caller, &slug, id)
                .await
                .map_err(|e| match e {
                    ServiceError::NotFound(message) => ServiceError::invalid("team", message),
                    other => other,
                })?,
        ),
        None => None,
    };
    let org = service::orgs::add_member(
        &state.ctx,
        &caller,
        &slug,
        AddMember {
            username: body.username.clone(),
            role: body.role,
            team,
            manager: body.manager,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(member_in(org, &body.username)?)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct UpdateMemberBody {
    /// `admin` or `member`; the owner changes only by a transfer.
    role: String,
}

/// Changes a member's role.
#[utoipa::path(patch, path = "/orgs/{slug}/members/{username}", request_body = UpdateMemberBody,
    responses(
        (status = 200, description = "The member as changed", body = MemberView),
        (status = 403, description = "Only its admins and owner; never the owner's role", body = ApiErrorBody),
        (status = 404, description = "No such organisation or member", body = ApiErrorBody),
    ))]
async fn update_member(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Path((slug, username)): Path<(String, String)>,
    ApiJson(body): ApiJson<UpdateMemberBody>,
) -> Result<Json<MemberView>, ApiError> {
    let org =
        service::orgs::update_member(&state.ctx, &caller, &slug, &username, &body.role).await?;
    Ok(Json(member_in(org, &username)?))
}

/// Takes a member out of the organisation, with their team memberships and team keys. The
/// owner hands the organisation on first.
#[utoipa::path(delete, path = "/orgs/{slug}/members/{username}",
    responses(
        (status = 204, description = "Removed"),
        (status = 403, description = "Only its admins and owner; never the owner", body = ApiErrorBody),
        (status = 404, description = "No such organisation or member", body = ApiErrorBody),
    ))]
async fn remove_member(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Path((slug, username)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    service::orgs::remove_member(&state.ctx, &caller, &slug, &username).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The organisation's invitations, newest first (a team's manager sees those into their
/// teams).
#[utoipa::path(get, path = "/orgs/{slug}/invitations",
    responses(
        (status = 200, description = "Its invitations", body = Data<InvitationView>),
        (status = 403, description = "Only those who may invite", body = ApiErrorBody),
        (status = 404, description = "No such organisation", body = ApiErrorBody),
    ))]
async fn invitations(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Path(slug): Path<String>,
) -> Result<Json<Data<InvitationView>>, ApiError> {
    Ok(Data::of(
        service::org_invitations::list(&state.ctx, &caller, &slug).await?,
    ))
}

/// `email` or `username`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct InviteBody {
    /// Invites an address: a single-use link, mailed (or in the answer when the site sends
    /// no mail).
    email: Option<String>,
    /// Invites an account by name; it accepts on its own pages.
    username: Option<String>,
    /// `admin` or `member` (default).
    role: Option<String>,
    /// A team (by id) the invitee joins too.
    team: Option<i64>,
    /// Whether they manage that team.
    #[serde(default)]
    manager: bool,
}

/// Invites a person by email or username; nobody becomes a member without accepting. The
/// mail is in English.
#[utoipa::path(post, path = "/orgs/{slug}/invitations", request_body = InviteBody,
    responses(
        (status = 201, description = "The invitation, with `link` when it was not mailed", body = Invited),
        (status = 403, description = "Only those who may invite", body = ApiErrorBody),
        (status = 404, description = "No such organisation", body = ApiErrorBody),
        (status = 409, description = "Already a member", body = ApiErrorBody),
        (status = 502, description = "The mail could not be sent", body = ApiErrorBody),
    ))]
async fn invite(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Path(slug): Path<String>,
    ApiJson(body): ApiJson<InviteBody>,
) -> Result<(StatusCode, Json<Invited>), ApiError> {
    let invited = service::org_invitations::invite(
        &state.ctx,
        &caller,
        &slug,
        Invite {
            email: body.email,
            username: body.username,
            role: body.role,
            team: body.team.map(|id| id.to_string()),
            manager: body.manager,
        },
        Lang::En,
        &state.listen_url,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(invited)))
}

/// Withdraws a pending invitation: its link stops working.
#[utoipa::path(delete, path = "/orgs/{slug}/invitations/{id}",
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, description = "No such organisation or invitation", body = ApiErrorBody),
        (status = 409, description = "It was answered already", body = ApiErrorBody),
    ))]
async fn revoke_invitation(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Path((slug, id)): Path<(String, i64)>,
) -> Result<StatusCode, ApiError> {
    service::org_invitations::revoke(&state.ctx, &caller, &slug, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sends an email invitation again with a new link and seven more days (the old link stops
/// working). Takes no body.
#[utoipa::path(post, path = "/orgs/{slug}/invitations/{id}/resend",
    responses(
        (status = 200, description = "The invitation, with `link` when it was not mailed", body = Invited),
        (status = 404, description = "No such organisation or invitation", body = ApiErrorBody),
        (status = 409, description = "It was answered already", body = ApiErrorBody),
        (status = 502, description = "The mail could not be sent", body = ApiErrorBody),
    ))]
async fn resend_invitation(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Path((slug, id)): Path<(String, i64)>,
) -> Result<Json<Invited>, ApiError> {
    let invited = service::org_invitations::resend(
        &state.ctx,
        &caller,
        &slug,
        id,
        Lang::En,
        &state.listen_url,
    )
    .await?;
    Ok(Json(invited))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct TransferBody {
    /// The member who becomes the owner.
    username: String,
}

/// What a transfer did, and the organisation after it.
#[derive(Serialize, ToSchema)]
struct Transferred {
    /// `done` (a platform administrator's transfer: the old owner is an admin now) or
    /// `offered` (the member accepts on their own pages).
    transfer: Transfer,
    org: OrgView,
}

/// Hands the organisation to another member. Through this API (a platform administrator)
/// ownership moves at once.
#[utoipa::path(post, path = "/orgs/{slug}/transfer", request_body = TransferBody,
    responses(
        (status = 200, description = "Ownership moved (or was offered)", body = Transferred),
        (status = 403, description = "Only its owner or a platform administrator", body = ApiErrorBody),
        (status = 404, description = "No such organisation", body = ApiErrorBody),
    ))]
async fn transfer(
    ApiCaller(caller): ApiCaller,
    State(state): State<AppState>,
    Path(slug): Path<String>,
    ApiJson(body): ApiJson<TransferBody>,
) -> Result<Json<Transferred>, ApiError> {
    let transfer = service::orgs::transfer(&state.ctx, &caller, &slug, &body.username).await?;
    let org = service::orgs::show(&state.ctx, &caller, &slug).await?;
    Ok(Json(Transferred { transfer, org }))
}
