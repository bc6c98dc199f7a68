//! Signing in, signing up and linking an identity through an OAuth provider.
//!
//! `/oauth/{provider}/start` keeps the attempt's secrets (state, nonce, PKCE verifier) in the
//! visitor's server-side session and sends them to the provider; `/oauth/{provider}/callback`
//! accepts the way back only with the state of that same session, once, within ten minutes.
//! Starting is a link (GET) on purpose: the redirect to another site that follows must not
//! come from a form, which the CSP's `form-action 'self'` would stop. Starting changes nothing
//! but the visitor's own session; the callback is protected by the state.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};
use tower_sessions::Session;

use super::email::{Arrival, after_password};
use super::error::WebError;
use super::page::{Page, flash};
use super::pages::base_url;
use super::signing::renew_sign_in;
use crate::msg;
use crate::oauth::FlowSecrets;
use crate::protocol::client::ClientAddress;
use crate::service::limits;
use crate::service::oauth::{self, Completion};
use crate::service::sessions::keys;
use crate::state::AppState;

/// How long a visitor may take at the provider.
const FLOW_LIFETIME_MS: i64 = 10 * 60 * 1000;

/// An attempt on its way, as kept in the session.
#[derive(Serialize, Deserialize, Debug, Clone)]
struct Flow {
    provider: String,
    state: String,
    nonce: String,
    verifier: String,
    /// The signed-in account the identity is to be linked to; none for signing in.
    link_to: Option<i64>,
    /// The signed-in account proving it is them again (before changing its email or
    /// password); none otherwise.
    #[serde(default)]
    reauth_of: Option<i64>,
    /// The invite code of the link a newcomer came by, for the account a sign-up makes.
    #[serde(default)]
    invite: Option<String>,
    started_ms: i64,
}

#[derive(Deserialize, Default)]
pub struct StartQuery {
    /// `link` on the profile: link the identity to the signed-in account; `reauth`: the
    /// signed-in person proves it is them again.
    #[serde(default)]
    intent: String,
    /// The invite code a newcomer came with (from `/register?invite=…`).
    #[serde(default)]
    invite: String,
}

fn callback_url(state: &AppState, provider: &str) -> String {
    format!("{}/oauth/{provider}/callback", base_url(state))
}

pub async fn start(
    State(state): State<AppState>,
    session: Session,
    page: Page,
    Path(name): Path<String>,
    Query(query): Query<StartQuery>,
) -> Result<Response, WebError> {
    let (link_to, reauth_of) = match (&page.viewer, query.intent.as_str()) {
        (Some(user), "link") => (Some(user.id), None),
        (Some(user), "reauth") => (None, Some(user.id)),
        (None, "link" | "reauth") => {
            return Ok(Redirect::to("/login?next=/profile").into_response());
        }
        (Some(_), _) => return Ok(Redirect::to("/dashboard").into_response()),
        (None, _) => (None, None),
    };
    let authorization = oauth::authorize(&state.ctx, &name, &callback_url(&state, &name))
        .await
        .map_err(|e| page.failed(e))?;
    let secrets = authorization.secrets;
    let flow = Flow {
        provider: authorization.provider,
        state: secrets.state,
        nonce: secrets.nonce,
        verifier: secrets.verifier,
        link_to,
        reauth_of,
        invite: Some(
            query
                .invite
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .take(32)
                .collect::<String>(),
        )
        .filter(|c| !c.is_empty()),
        started_ms: crate::clock::now_ms(),
    };
    session
        .insert(keys::OAUTH_FLOW, flow)
        .await
        .map_err(WebError::session)?;
    Ok(Redirect::to(&authorization.url).into_response())
}

#[derive(Deserialize, Default)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

#[allow(clippy::too_many_arguments)]
pub async fn callback(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    session: Session,
    headers: HeaderMap,
    page: Page,
    Path(name): Path<String>,
    Query(query): Query<CallbackQuery>,
) -> Result<Response, WebError> {
    // The attempt is spent whatever happens next: a second use of the same answer finds none.
    let flow = session
        .remove::<Flow>(keys::OAUTH_FLOW)
        .await
        .map_err(WebError::session)?;
    let stale = || page.error(StatusCode::BAD_REQUEST, msg!("web-oauth-stale"));
    let Some(flow) = flow else {
        return Err(stale());
    };
    let fresh = crate::clock::now_ms() - flow.started_ms < FLOW_LIFETIME_MS;
    let state_matches = query.state.as_deref().is_some_and(|given| {
        crate::domain::secret_key::constant_time_eq(given.as_bytes(), flow.state.as_bytes())
    });
    if flow.provider != name || !state_matches || !fresh {
        tracing::warn!(provider = %name, "an OAuth answer without this session's state was refused");
        return Err(stale());
    }
    if let Some(error) = query.error {
        return Err(page.error(
            StatusCode::BAD_REQUEST,
            msg!("web-oauth-declined", reason = error),
        ));
    }
    let Some(code) = query.code.filter(|c| !c.is_empty()) else {
        return Err(stale());
    };
    let secrets = FlowSecrets {
        state: flow.state,
        nonce: flow.nonce,
        verifier: flow.verifier,
    };
    let identity = oauth::identify(
        &state.ctx,
        &state.oauth,
        &name,
        &code,
        &callback_url(&state, &name),
        &secrets,
    )
    .await
    .map_err(|e| page.failed(e))?;
    let provider_label = oauth::sign_in_choices(&state.ctx)
        .await
        .map_err(|e| page.failed(e))?
        .into_iter()
        .find(|(n, _)| *n == name)
        .map_or_else(|| name.clone(), |(_, label)| label);

    if let Some(user_id) = flow.reauth_of {
        // Proving it is them again needs the same person still signed in, and an identity of
        // their own account.
        let viewer = page.viewer.as_ref().filter(|v| v.id == user_id);
        let Some(viewer) = viewer else {
            return Err(stale());
        };
        let own = oauth::is_own(&state.ctx, &viewer.caller(), &name, &identity.subject)
            .await
            .map_err(|e| page.failed(e))?;
        if !own {
            return Err(page.error(
                StatusCode::FORBIDDEN,
                msg!("web-oauth-not-yours", provider = provider_label.as_str()),
            ));
        }
        renew_sign_in(&session).await?;
        flash(&session, page.t("web-reauth-done")).await?;
        // Back to a console form kept while they proved it, else to the profile.
        let back = crate::web::admin::reauth::after_reauth(&session, "/profile").await?;
        return Ok(Redirect::to(&back).into_response());
    }

    if let Some(user_id) = flow.link_to {
        // Linking needs the same person still signed in.
        if page.viewer.as_ref().map(|v| v.id) != Some(user_id) {
            return Err(stale());
        }
        oauth::complete(&state.ctx, &name, identity, Some(user_id), None)
            .await
            .map_err(|e| page.failed(e))?;
        flash(
            &session,
            page.t1("web-oauth-linked", "provider", &provider_label),
        )
        .await?;
        return Ok(Redirect::to("/profile").into_response());
    }

    let ip = client.to_string();
    // Signing in stays open; a new account takes one of the day's new accounts from this
    // address before it is made (given back if none is made).
    let per_day = limits::signups_per_day(state.snapshot.load().options.signups_per_ip_per_day);
    let known = oauth::is_linked(&state.ctx, &name, &identity.subject)
        .await
        .map_err(|e| page.failed(e))?;
    let takes_signup = !known && per_day.max > 0;
    if takes_signup && !state.limits.hit(per_day, &ip).await {
        return Err(page.error(StatusCode::TOO_MANY_REQUESTS, msg!("web-too-many-attempts")));
    }
    let completion =
        oauth::complete(&state.ctx, &name, identity, None, flow.invite.as_deref()).await;
    if takes_signup && !matches!(completion, Ok(Completion::Registered(_))) {
        state.limits.give_back(per_day, &ip).await;
    }
    let (user, welcome) = match completion.map_err(|e| page.failed(e))? {
        Completion::SignedIn(user) => (user, None),
        Completion::Registered(user) => {
            let welcome = page.t1("web-welcome", "name", &user.username);
            (user, Some(welcome))
        }
        Completion::Linked => return Ok(Redirect::to("/profile").into_response()),
    };
    let arrival = Arrival {
        ip: &ip,
        headers: &headers,
        next: "/dashboard",
        welcome,
    };
    after_password(&state, &session, page.lang, &user, arrival).await
}

#[derive(Deserialize)]
pub struct UnlinkForm {}

pub async fn unlink(
    State(state): State<AppState>,
    session: Session,
    super::page::SignedIn { page, user }: super::page::SignedIn,
    Path(id): Path<i64>,
    super::form::Posted(_): super::form::Posted<UnlinkForm>,
) -> Result<Response, WebError> {
    oauth::unlink(&state.ctx, &user.caller(), id)
        .await
        .map_err(|e| page.failed(e))?;
    flash(&session, page.t("web-oauth-unlinked")).await?;
    Ok(Redirect::to("/profile").into_response())
}
