//! What signing in shares between its pages (password, emailed code, first run): starting
//! the signed-in session, the token a link carries.

use axum::http::{HeaderMap, header};
use serde::Deserialize;
use tower_sessions::Session;

use super::error::WebError;
use super::page::{csrf_token, password_stamp};
use super::session::keys;
use crate::db::users::UserRow;

/// Starts a signed-in session: a new session id (what an attacker planted before is
/// worthless), whose it is, from where, and a new form token.
pub async fn start_session(
    session: &Session,
    user: &UserRow,
    ip: &str,
    headers: &HeaderMap,
) -> Result<(), WebError> {
    let agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    session.cycle_id().await.map_err(WebError::session)?;
    for (key, value) in [
        (keys::USER_ID, serde_json::Value::from(user.id)),
        (keys::STAMP, serde_json::Value::from(password_stamp(user))),
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

/// The token of a link (`/setup?token=…`, `/reset-password?token=…`).
#[derive(Deserialize, Default)]
pub struct TokenQuery {
    #[serde(default)]
    pub token: String,
}
