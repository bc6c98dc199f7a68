//! What signing in shares between its pages (password, emailed code, first run): starting
//! the signed-in session, the token a link carries.

use axum::http::HeaderMap;
use serde::Deserialize;
use tower_sessions::Session;

use super::error::WebError;
use super::page::csrf_token;
use crate::service::sessions::{SignIn, Viewer, keys};

/// Starts a signed-in session: a new session id (what an attacker planted before is
/// worthless), whose it is, since when, from where, and a new form token.
pub async fn start_session(
    session: &Session,
    user: &Viewer,
    ip: &str,
    headers: &HeaderMap,
) -> Result<(), WebError> {
    let sign_in = SignIn::now(user);
    let agent = crate::protocol::client::user_agent(headers).unwrap_or_default();
    session.cycle_id().await.map_err(WebError::session)?;
    for (key, value) in [
        (keys::USER_ID, serde_json::Value::from(sign_in.user_id)),
        (keys::STAMP, serde_json::Value::from(sign_in.stamp)),
        (keys::SIGNED_IN_AT, serde_json::Value::from(sign_in.at_ms)),
        (keys::IP, serde_json::Value::from(ip)),
        (keys::USER_AGENT, serde_json::Value::from(agent)),
    ] {
        session
            .insert(key, value)
            .await
            .map_err(WebError::session)?;
    }
    session
        .remove::<i64>(keys::PENDING_USER_ID)
        .await
        .map_err(WebError::session)?;
    session
        .remove::<String>(keys::CSRF)
        .await
        .map_err(WebError::session)?;
    csrf_token(session).await?;
    Ok(())
}

/// The account's password changed in this session: the session stays signed in under the new
/// one (the account's other sessions no longer match it).
pub async fn restamp(session: &Session, user: &Viewer) -> Result<(), WebError> {
    session
        .insert(keys::STAMP, SignIn::now(user).stamp)
        .await
        .map_err(WebError::session)
}

/// The person proved who they are again in this session (their provider vouched for them):
/// changes that need a recent sign-in are open for a while.
pub async fn renew_sign_in(session: &Session) -> Result<(), WebError> {
    session
        .insert(keys::SIGNED_IN_AT, crate::clock::now_ms())
        .await
        .map_err(WebError::session)
}

/// The token of a link (`/setup?token=…`, `/reset-password?token=…`).
#[derive(Deserialize, Default)]
pub struct TokenQuery {
    #[serde(default)]
    pub token: String,
}
