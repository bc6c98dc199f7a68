//! Forms posted to the portal: the session's anti-forgery token and the request's origin are
//! checked before anything is read, and a form that fails comes back with what was typed and
//! each problem next to its field.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;
use tower_sessions::Session;

use super::error::WebError;
use super::session::keys;
use crate::app::BodyDeadlinePassed;
use crate::i18n::Lang;
use crate::msg;
use crate::service::ServiceError;
use crate::state::AppState;

/// The largest form body read.
const MAX_FORM_BYTES: usize = 64 * 1024;

/// A posted form whose token and origin passed.
pub struct Posted<T>(pub T);

/// Whether the request came from this site's own pages: a browser names the page's origin
/// (`Origin`), or says whether it was cross-site (`Sec-Fetch-Site`); either must agree.
fn same_origin(headers: &HeaderMap, state: &AppState) -> bool {
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok())
        && origin != "null"
    {
        let authority = origin.split_once("://").map_or(origin, |(_, rest)| rest);
        let public = state.snapshot.load().options.public_url.clone();
        let public_authority = public
            .split_once("://")
            .map(|(_, rest)| rest.split('/').next().unwrap_or(rest).to_string());
        return Some(authority) == host || Some(authority.to_string()) == public_authority;
    }
    !matches!(
        headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()),
        Some("cross-site")
    )
}

/// Constant-time comparison of two tokens.
fn tokens_match(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0_u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

impl<T: DeserializeOwned> FromRequest<AppState> for Posted<T> {
    type Rejection = WebError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, WebError> {
        let (mut parts, body) = request.into_parts();
        let refused = || WebError::page(StatusCode::FORBIDDEN, Lang::En, msg!("web-form-expired"));
        if !same_origin(&parts.headers, state) {
            return Err(refused());
        }
        let session = Session::from_request_parts(&mut parts, state)
            .await
            .map_err(|_| WebError::internal(Lang::En, &"no session layer"))?;
        let bytes = Bytes::from_request(
            Request::from_parts(
                parts,
                axum::body::Body::new(http_body_util::Limited::new(body, MAX_FORM_BYTES)),
            ),
            state,
        )
        .await
        .map_err(|rejection| {
            if BodyDeadlinePassed::caused(&rejection) {
                // The connection closes after this answer.
                WebError::page(
                    StatusCode::REQUEST_TIMEOUT,
                    Lang::En,
                    msg!("web-form-too-slow"),
                )
            } else {
                WebError::page(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    Lang::En,
                    msg!("web-form-too-large"),
                )
            }
        })?;
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes).map_err(|_| {
            WebError::page(
                StatusCode::BAD_REQUEST,
                Lang::En,
                msg!("web-form-unreadable"),
            )
        })?;
        let sent = pairs
            .iter()
            .find(|(name, _)| name == "csrf_token")
            .map(|(_, value)| value.as_str());
        let expected = session
            .get::<String>(keys::CSRF)
            .await
            .map_err(WebError::session)?;
        match (sent, expected) {
            (Some(sent), Some(expected)) if tokens_match(sent, &expected) => {}
            _ => return Err(refused()),
        }
        serde_urlencoded::from_bytes(&bytes)
            .map(Posted)
            .map_err(|_| {
                WebError::page(
                    StatusCode::BAD_REQUEST,
                    Lang::En,
                    msg!("web-form-unreadable"),
                )
            })
    }
}

/// Problems to show next to a form's fields, in the reader's language, by field name.
#[derive(Clone, Debug, Default)]
pub struct FieldErrors {
    fields: BTreeMap<String, String>,
    /// A problem that is not one field's (shown above the form).
    pub general: Option<String>,
}

impl FieldErrors {
    /// A service's refusal, sorted onto the form's fields (`aliases` maps a service field to
    /// the form's input where they differ).
    pub fn from_service(error: &ServiceError, lang: Lang, aliases: &[(&str, &str)]) -> FieldErrors {
        let mut errors = FieldErrors::default();
        let problems = error.fields();
        if problems.is_empty() {
            match error.message() {
                Some(message) => errors.general = Some(message.render(lang)),
                None => {
                    tracing::error!(error = %error, "a form's request failed inside the server");
                    errors.general = Some(crate::i18n::text(lang, "web-internal-error", &[]));
                }
            }
            if let ServiceError::Conflict {
                field: Some(field),
                message,
            } = error
            {
                errors.general = None;
                errors.add(field, message.render(lang));
            }
            return errors;
        }
        for problem in problems {
            let field = aliases
                .iter()
                .find(|(from, _)| *from == problem.field)
                .map_or(problem.field, |(_, to)| to);
            errors.add(field, problem.message.render(lang));
        }
        errors
    }

    /// Only a problem above the form: too many attempts, for a 429.
    pub fn too_many_attempts(lang: Lang) -> FieldErrors {
        FieldErrors {
            general: Some(crate::i18n::text(lang, "web-too-many-attempts", &[])),
            ..FieldErrors::default()
        }
    }

    pub fn add(&mut self, field: &str, message: String) {
        self.fields.entry(field.to_string()).or_insert(message);
    }

    /// The problem with `field`, if any.
    pub fn get(&self, field: &str) -> Option<&str> {
        self.fields.get(field).map(String::as_str)
    }

    pub fn has(&self, field: &str) -> bool {
        self.fields.contains_key(field)
    }
}
