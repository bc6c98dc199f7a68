//! Invitations in the portal: an organisation's page of them (`/orgs/{slug}/invitations`:
//! invite by email or username, send a link again, revoke), the page an invitation's link opens
//! (`/invitations/{token}`: accept or decline, after signing in or registering with the
//! invited address), and the invitations by username waiting for the signed-in person
//! (`/invitations`). Every decision is `service::org_invitations`'.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use tower_sessions::Session;

use super::error::WebError;
use super::form::{FieldErrors, Posted};
use super::orgs::{OrgFrame, load};
use super::page::{Page, SignedIn, flash};
use crate::service::org_invitations::{self, Answering, InvitationView, Invite};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/invitations", get(mine))
        .route("/invitations/{token}", get(open))
        .route("/invitations/{token}/accept", post(accept_link))
        .route("/invitations/{token}/decline", post(decline_link))
        .route("/invitations/by-name/{id}/accept", post(accept_named))
        .route("/invitations/by-name/{id}/decline", post(decline_named))
        .route("/orgs/{slug}/invitations", get(list).post(invite))
        .route("/orgs/{slug}/invitations/{id}/resend", post(resend))
        .route("/orgs/{slug}/invitations/{id}/revoke", post(revoke))
}

/// What the inviter typed, to show again with its errors.
#[derive(Debug, Default, Deserialize)]
pub struct InviteForm {
    #[serde(default)]
    email: String,
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
#[template(path = "orgs/invitations.html")]
pub struct InvitationsPage {
    page: Page,
    frame: OrgFrame,
    invitations: Vec<InvitationView>,
    /// The teams the reader may invite into: (id, name).
    teams: Vec<(String, String)>,
    form: InviteForm,
    errors: FieldErrors,
    /// A link the site could not mail, for the inviter to pass on.
    link: Option<String>,
}

impl InvitationsPage {
    fn state_text(&self, invitation: &InvitationView) -> String {
        self.page
            .t(&format!("web-invitation-state-{}", invitation.state))
    }

    fn role_text(&self, role: &str) -> String {
        self.page.t(&format!("web-org-role-{role}"))
    }

    fn is_manager(&self) -> bool {
        self.form.manager.is_some()
    }
}

async fn render(
    state: &AppState,
    page: Page,
    user: &crate::service::sessions::Viewer,
    slug: &str,
    form: InviteForm,
    errors: FieldErrors,
    link: Option<String>,
) -> Result<InvitationsPage, WebError> {
    let (view, frame) = load(state, &page, user, slug, "invitations").await?;
    let invitations = org_invitations::list(&state.ctx, &user.caller(), &view.slug)
        .await
        .map_err(|e| page.failed(e))?;
    // A team's manager invites into the teams they manage; admins into any.
    let teams = view
        .teams
        .iter()
        .filter(|team| view.managed_teams.contains(&team.id))
        .map(|team| (team.id.to_string(), team.name.clone()))
        .collect();
    Ok(InvitationsPage {
        page,
        frame,
        invitations,
        teams,
        form,
        errors,
        link,
    })
}

pub async fn list(
    State(state): State<AppState>,
    SignedIn { page, user }: SignedIn,
    Path(slug): Path<String>,
) -> Result<Response, WebError> {
    let form = InviteForm {
        role: "member".into(),
        ..InviteForm::default()
    };
    Ok(render(
        &state,
        page,
        &user,
        &slug,
        form,
        FieldErrors::default(),
        None,
    )
    .await?
    .into_response())
}

pub async fn invite(
    State(state): State<AppState>,
    session: Session,
    SignedIn { page, user }: SignedIn,
    Path(slug): Path<String>,
    Posted(form): Posted<InviteForm>,
) -> Result<Response, WebError> {
    let input = Invite {
        email: Some(form.email.clone()),
        username: Some(form.username.clone()),
        role: Some(form.role.clone()),
        team: Some(form.team.clone()),
        manager: form.manager.is_some(),
    };
    match org_invitations::invite(
        &state.ctx,
        &user.caller(),
        &slug,
        input,
        page.lang,
        &state.listen_url,
    )
    .await
    {
        Ok(invited) => {
            let who = if invited.invitation.email.is_empty() {
                invited.invitation.username.clone()
            } else {
                invited.invitation.email.clone()
            };
            if invited.link.is_some() {
                // No mail: the inviter passes the link on, so it is shown here once.
                let again = render(
                    &state,
                    page,
                    &user,
                    &slug,
                    InviteForm {
                        role: "member".into(),
                        ..InviteForm::default()
                    },
                    FieldErrors::default(),
                    invited.link,
                )
                .await?;
                return Ok((StatusCode::CREATED, again).into_response());
            }
            let key = if invited.mailed {
                "web-invitation-mailed"
            } else {
                "web-invitation-made"
            };
            flash(&session, page.t1(key, "who", &who)).await?;
            Ok(Redirect::to(&format!("/orgs/{slug}/invitations")).into_response())
        }
        Err(error) => {
            let status = match &error {
                crate::service::ServiceError::Forbidden(_) => StatusCode::FORBIDDEN,
                _ => StatusCode::UNPROCESSABLE_ENTITY,
            };
            let errors = FieldErrors::from_service(&error, page.lang, &[]);
            let again = render(&state, page, &user, &slug, form, errors, None).await?;
            Ok((status, again).into_response())
        }
    }
}

pub async fn resend(
    State(state): State<AppState>,
    session: Session,
    SignedIn { page, user }: SignedIn,
    Path((slug, id)): Path<(String, i64)>,
    Posted(_): Posted<Empty>,
) -> Result<Response, WebError> {
    let invited = org_invitations::resend(
        &state.ctx,
        &user.caller(),
        &slug,
        id,
        page.lang,
        &state.listen_url,
    )
    .await
    .map_err(|e| page.failed(e))?;
    if invited.link.is_some() {
        let again = render(
            &state,
            page,
            &user,
            &slug,
            InviteForm::default(),
            FieldErrors::default(),
            invited.link,
        )
        .await?;
        return Ok(again.into_response());
    }
    flash(
        &session,
        page.t1("web-invitation-mailed", "who", &invited.invitation.email),
    )
    .await?;
    Ok(Redirect::to(&format!("/orgs/{slug}/invitations")).into_response())
}

pub async fn revoke(
    State(state): State<AppState>,
    session: Session,
    SignedIn { page, user }: SignedIn,
    Path((slug, id)): Path<(String, i64)>,
    Posted(_): Posted<Empty>,
) -> Result<Response, WebError> {
    org_invitations::revoke(&state.ctx, &user.caller(), &slug, id)
        .await
        .map_err(|e| page.failed(e))?;
    flash(&session, page.t("web-invitation-revoked")).await?;
    Ok(Redirect::to(&format!("/orgs/{slug}/invitations")).into_response())
}

/// A form with nothing but its CSRF token.
#[derive(Deserialize)]
pub struct Empty {}

#[derive(Template, WebTemplate)]
#[template(path = "invitation.html")]
pub struct InvitationPage {
    page: Page,
    invitation: InvitationView,
    token: String,
    /// Why the signed-in person cannot accept it, when they cannot.
    problem: Option<String>,
}

impl InvitationPage {
    /// "You would join as a member, in the team Research."
    fn joining(&self) -> String {
        let role = ("role", self.invitation.role.as_str());
        match &self.invitation.team_name {
            None => self.page.t1("web-invitation-join", role.0, role.1),
            Some(team) => {
                let key = if self.invitation.manager {
                    "web-invitation-join-manager"
                } else {
                    "web-invitation-join-team"
                };
                crate::i18n::text(self.page.lang, key, &[role, ("team", team)])
            }
        }
    }

    fn next(&self) -> String {
        format!("/invitations/{}", self.token)
    }
}

/// The page a link opens: which organisation invites, as what, and the answer buttons (or
/// how to sign in or register first).
pub async fn open(
    State(state): State<AppState>,
    page: Page,
    Path(token): Path<String>,
) -> Result<Response, WebError> {
    let invitation = org_invitations::by_link(&state.ctx, &token)
        .await
        .map_err(|e| page.failed(e))?;
    let problem = match (&page.viewer, invitation.state.as_str()) {
        (_, "pending") => None,
        _ => Some(page.t("web-invitation-closed")),
    };
    Ok(InvitationPage {
        page,
        invitation,
        token,
        problem,
    }
    .into_response())
}

async fn answered(
    state: &AppState,
    session: &Session,
    page: Page,
    token: &str,
    result: Result<Option<String>, crate::service::ServiceError>,
) -> Result<Response, WebError> {
    match result {
        Ok(Some(slug)) => {
            flash(session, page.t("web-invitation-accepted")).await?;
            Ok(Redirect::to(&format!("/orgs/{slug}")).into_response())
        }
        Ok(None) => {
            flash(session, page.t("web-invitation-declined")).await?;
            Ok(Redirect::to("/orgs").into_response())
        }
        Err(error) => {
            // The page again, saying why (another account, an address not verified yet).
            let message = error
                .message()
                .map(|m| m.render(page.lang))
                .unwrap_or_default();
            let status = match &error {
                crate::service::ServiceError::NotFound(_) => return Err(page.failed(error)),
                crate::service::ServiceError::Conflict { .. } => StatusCode::CONFLICT,
                _ => StatusCode::FORBIDDEN,
            };
            let invitation = org_invitations::by_link(&state.ctx, token)
                .await
                .map_err(|e| page.failed(e))?;
            let again = InvitationPage {
                page,
                invitation,
                token: token.to_string(),
                problem: Some(message),
            };
            Ok((status, again).into_response())
        }
    }
}

pub async fn accept_link(
    State(state): State<AppState>,
    session: Session,
    SignedIn { page, user }: SignedIn,
    Path(token): Path<String>,
    Posted(_): Posted<Empty>,
) -> Result<Response, WebError> {
    let result = org_invitations::accept(&state.ctx, &user.caller(), Answering::Link(&token)).await;
    answered(&state, &session, page, &token, result.map(Some)).await
}

pub async fn decline_link(
    State(state): State<AppState>,
    session: Session,
    SignedIn { page, user }: SignedIn,
    Path(token): Path<String>,
    Posted(_): Posted<Empty>,
) -> Result<Response, WebError> {
    let result =
        org_invitations::decline(&state.ctx, &user.caller(), Answering::Link(&token)).await;
    answered(&state, &session, page, &token, result.map(|()| None)).await
}

#[derive(Template, WebTemplate)]
#[template(path = "invitations_mine.html")]
pub struct MinePage {
    page: Page,
    invitations: Vec<InvitationView>,
}

impl MinePage {
    fn role_text(&self, role: &str) -> String {
        self.page.t(&format!("web-org-role-{role}"))
    }
}

/// Invitations by username waiting for the signed-in person.
pub async fn mine(
    State(state): State<AppState>,
    SignedIn { page, user }: SignedIn,
) -> Result<Response, WebError> {
    let invitations = org_invitations::mine(&state.ctx, &user.caller())
        .await
        .map_err(|e| page.failed(e))?;
    Ok(MinePage { page, invitations }.into_response())
}

pub async fn accept_named(
    State(state): State<AppState>,
    session: Session,
    SignedIn { page, user }: SignedIn,
    Path(id): Path<i64>,
    Posted(_): Posted<Empty>,
) -> Result<Response, WebError> {
    let slug = org_invitations::accept(&state.ctx, &user.caller(), Answering::Id(id))
        .await
        .map_err(|e| page.failed(e))?;
    flash(&session, page.t("web-invitation-accepted")).await?;
    Ok(Redirect::to(&format!("/orgs/{slug}")).into_response())
}

pub async fn decline_named(
    State(state): State<AppState>,
    session: Session,
    SignedIn { page, user }: SignedIn,
    Path(id): Path<i64>,
    Posted(_): Posted<Empty>,
) -> Result<Response, WebError> {
    org_invitations::decline(&state.ctx, &user.caller(), Answering::Id(id))
        .await
        .map_err(|e| page.failed(e))?;
    flash(&session, page.t("web-invitation-declined")).await?;
    Ok(Redirect::to("/invitations").into_response())
}
