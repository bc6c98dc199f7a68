//! An organisation's members: their roles and teams; an admin changes a role or takes a
//! member out; anyone but the owner leaves; the owner offers ownership to a member, who
//! accepts it (here, on `/orgs` or on the overview); site administrators add people directly
//! (everyone else invites them, at `/orgs/{slug}/invitations`).

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tower_sessions::Session;

use super::teams::Nothing;
use super::{OrgFrame, done, given, load, role_key};
use crate::domain::kinds::OrgRole;
use crate::service::ServiceError;
use crate::service::orgs::{self, AddMember, OrgView, Transfer};
use crate::service::sessions::Viewer;
use crate::state::AppState;
use crate::web::error::WebError;
use crate::web::form::{FieldErrors, Posted};
use crate::web::page::{Page, SignedIn};

/// A member as the list shows them.
pub struct MemberLine {
    user_id: i64,
    username: String,
    role: String,
    /// `owner`, `admin` or `member`.
    role_value: &'static str,
    teams: String,
    joined: String,
    is_me: bool,
}

#[derive(Deserialize, Default, Clone)]
pub struct AddForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    team: String,
    #[serde(default)]
    manager: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "orgs/members.html")]
pub struct MembersPage {
    page: Page,
    frame: OrgFrame,
    members: Vec<MemberLine>,
    /// The reader owns the organisation.
    owner: bool,
    /// The reader is a member who may leave (not the owner).
    may_leave: bool,
    /// The member ownership was offered to, until they accept.
    pending_owner: Option<String>,
    offered_to_me: bool,
    /// Members the owner may hand the organisation to.
    heirs: Vec<String>,
    /// The heir chosen in a form that came back.
    heir: String,
    /// Site administrators add people directly.
    may_add: bool,
    add: AddForm,
    teams: Vec<String>,
    errors: FieldErrors,
}

async fn render(
    state: &AppState,
    page: Page,
    user: &Viewer,
    slug: &str,
    add: AddForm,
    heir: String,
    errors: FieldErrors,
) -> Result<MembersPage, WebError> {
    let (view, frame) = load(state, &page, user, slug, "members").await?;
    Ok(page_of(page, user, view, frame, add, heir, errors))
}

fn page_of(
    page: Page,
    user: &Viewer,
    view: OrgView,
    frame: OrgFrame,
    add: AddForm,
    heir: String,
    errors: FieldErrors,
) -> MembersPage {
    let me = view.members.iter().find(|m| m.user_id == user.id);
    let owner = me.is_some_and(|m| m.role == OrgRole::Owner);
    let may_leave = me.is_some_and(|m| m.role != OrgRole::Owner);
    let members = view
        .members
        .iter()
        .map(|m| MemberLine {
            user_id: m.user_id,
            username: m.username.clone(),
            role: page.t(role_key(m.role)),
            role_value: m.role.as_str(),
            teams: m.teams.join(", "),
            joined: m.joined_at.chars().take(10).collect(),
            is_me: m.user_id == user.id,
        })
        .collect();
    let heirs = view
        .members
        .iter()
        .filter(|m| m.role != OrgRole::Owner)
        .map(|m| m.username.clone())
        .collect();
    MembersPage {
        members,
        owner,
        may_leave,
        offered_to_me: view.pending_owner.as_deref() == Some(user.username.as_str()),
        pending_owner: view.pending_owner.clone(),
        heirs,
        heir,
        may_add: user.is_admin(),
        add,
        teams: view.teams.iter().map(|t| t.name.clone()).collect(),
        errors,
        frame,
        page,
    }
}

pub async fn list(
    State(state): State<AppState>,
    SignedIn { page, user }: SignedIn,
    Path(slug): Path<String>,
) -> Result<Response, WebError> {
    let shown = render(
        &state,
        page,
        &user,
        &slug,
        AddForm::default(),
        String::new(),
        FieldErrors::default(),
    )
    .await?;
    Ok(shown.into_response())
}

/// A refusal or a missing record is an error page; anything else comes back on the form.
fn form_error(page: &Page, error: ServiceError) -> Result<ServiceError, WebError> {
    match error {
        ServiceError::Forbidden(_) | ServiceError::NotFound(_) | ServiceError::Db(_) => {
            Err(page.failed(error))
        }
        other => Ok(other),
    }
}

/// Puts a person into the organisation at once (site administrators).
pub async fn add(
    State(state): State<AppState>,
    session: Session,
    SignedIn { page, user }: SignedIn,
    Path(slug): Path<String>,
    Posted(form): Posted<AddForm>,
) -> Result<Response, WebError> {
    let input = AddMember {
        username: form.username.trim().to_string(),
        role: given(&form.role),
        team: given(&form.team),
        manager: form.manager.is_some(),
    };
    match orgs::add_member(&state.ctx, &user.caller(), &slug, input).await {
        Ok(view) => {
            done(
                &session,
                &page,
                "web-org-member-added",
                &format!("/orgs/{}/members", view.slug),
            )
            .await
        }
        Err(error) => {
            let error = form_error(&page, error)?;
            let errors = FieldErrors::from_service(&error, page.lang, &[]);
            let shown = render(&state, page, &user, &slug, form, String::new(), errors).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, shown).into_response())
        }
    }
}

/// The username of the organisation's member with this id.
async fn member_name(
    state: &AppState,
    page: &Page,
    user: &Viewer,
    slug: &str,
    user_id: i64,
) -> Result<(OrgView, String), WebError> {
    let view = orgs::show(&state.ctx, &user.caller(), slug)
        .await
        .map_err(|e| page.failed(e))?;
    let name = view
        .members
        .iter()
        .find(|m| m.user_id == user_id)
        .map(|m| m.username.clone())
        .ok_or_else(|| WebError::not_found(page.lang))?;
    Ok((view, name))
}

#[derive(Deserialize)]
pub struct RoleForm {
    #[serde(default)]
    role: String,
}

pub async fn set_role(
    State(state): State<AppState>,
    session: Session,
    SignedIn { page, user }: SignedIn,
    Path((slug, member)): Path<(String, i64)>,
    Posted(form): Posted<RoleForm>,
) -> Result<Response, WebError> {
    let (view, name) = member_name(&state, &page, &user, &slug, member).await?;
    orgs::update_member(&state.ctx, &user.caller(), &view.slug, &name, &form.role)
        .await
        .map_err(|e| page.failed(e))?;
    done(
        &session,
        &page,
        "web-org-role-saved",
        &format!("/orgs/{}/members", view.slug),
    )
    .await
}

pub async fn remove(
    State(state): State<AppState>,
    session: Session,
    SignedIn { page, user }: SignedIn,
    Path((slug, member)): Path<(String, i64)>,
    Posted(_): Posted<Nothing>,
) -> Result<Response, WebError> {
    let (view, name) = member_name(&state, &page, &user, &slug, member).await?;
    orgs::remove_member(&state.ctx, &user.caller(), &view.slug, &name)
        .await
        .map_err(|e| page.failed(e))?;
    done(
        &session,
        &page,
        "web-org-member-removed",
        &format!("/orgs/{}/members", view.slug),
    )
    .await
}

pub async fn leave(
    State(state): State<AppState>,
    session: Session,
    SignedIn { page, user }: SignedIn,
    Path(slug): Path<String>,
    Posted(_): Posted<Nothing>,
) -> Result<Response, WebError> {
    orgs::leave(&state.ctx, &user.caller(), &slug)
        .await
        .map_err(|e| page.failed(e))?;
    done(&session, &page, "web-org-left", "/orgs").await
}

#[derive(Deserialize)]
pub struct TransferForm {
    #[serde(default)]
    new_owner: String,
}

/// The owner offers the organisation to a member (a site administrator hands it on at once).
pub async fn transfer(
    State(state): State<AppState>,
    session: Session,
    SignedIn { page, user }: SignedIn,
    Path(slug): Path<String>,
    Posted(form): Posted<TransferForm>,
) -> Result<Response, WebError> {
    match orgs::transfer(&state.ctx, &user.caller(), &slug, &form.new_owner).await {
        Ok(done_how) => {
            let key = match done_how {
                Transfer::Offered => "web-org-transfer-offered",
                Transfer::Done => "web-org-transfer-done",
            };
            done(&session, &page, key, &format!("/orgs/{slug}/members")).await
        }
        Err(error) => {
            let error = form_error(&page, error)?;
            let errors = FieldErrors::from_service(&error, page.lang, &[("username", "new_owner")]);
            let shown = render(
                &state,
                page,
                &user,
                &slug,
                AddForm::default(),
                form.new_owner,
                errors,
            )
            .await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, shown).into_response())
        }
    }
}

/// The member ownership was offered to takes it.
pub async fn accept(
    State(state): State<AppState>,
    session: Session,
    SignedIn { page, user }: SignedIn,
    Path(slug): Path<String>,
    Posted(_): Posted<Nothing>,
) -> Result<Response, WebError> {
    let view = orgs::accept_transfer(&state.ctx, &user.caller(), &slug)
        .await
        .map_err(|e| page.failed(e))?;
    done(
        &session,
        &page,
        "web-org-transfer-accepted",
        &format!("/orgs/{}", view.slug),
    )
    .await
}

/// The owner withdraws the offer, or the member it was offered to declines it.
pub async fn cancel(
    State(state): State<AppState>,
    session: Session,
    SignedIn { page, user }: SignedIn,
    Path(slug): Path<String>,
    Posted(_): Posted<Nothing>,
) -> Result<Response, WebError> {
    let view = orgs::show(&state.ctx, &user.caller(), &slug)
        .await
        .map_err(|e| page.failed(e))?;
    orgs::cancel_transfer(&state.ctx, &user.caller(), &view.slug)
        .await
        .map_err(|e| page.failed(e))?;
    let declined = view.pending_owner.as_deref() == Some(user.username.as_str());
    if declined {
        done(&session, &page, "web-org-transfer-declined", "/orgs").await
    } else {
        done(
            &session,
            &page,
            "web-org-transfer-cancelled",
            &format!("/orgs/{}/members", view.slug),
        )
        .await
    }
}
