//! Forms posted to the portal: the session's anti-forgery token and the request's origin are
//! checked before anything is read, and a form that fails comes back with what was typed and
//! each problem next to its field.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;
use tower_sessions::Session;

use super::error::WebError;
use crate::i18n::Lang;
use crate::msg;
use crate::protocol::client::BodyDeadlinePassed;
use crate::service::ServiceError;
use crate::service::sessions::keys;
use crate::state::AppState;

/// The largest form body read.
/// (The playground's form carries its conversation: a few tens of kilobytes, percent-encoded.)
pub const MAX_FORM_BYTES: usize = 256 * 1024;

/// A posted form whose token and origin passed, of at most `MAX_BYTES` (a form carrying a
/// pasted file, such as a price table, takes more; its route lifts axum's body limit too).
pub struct Posted<T, const MAX_BYTES: usize = MAX_FORM_BYTES>(pub T);

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

impl<T: DeserializeOwned, const MAX_BYTES: usize> FromRequest<AppState> for Posted<T, MAX_BYTES> {
    type Rejection = WebError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, WebError> {
        let (mut parts, body) = request.into_parts();
        let refused = || WebError::page(StatusCode::FORBIDDEN, Lang::En, msg!("web-form-expired"));
        if !same_origin(&parts.headers, state) {
            return Err(refused());
        }
        let headers = parts.headers.clone();
        let session = Session::from_request_parts(&mut parts, state)
            .await
            .map_err(|_| WebError::internal(Lang::En, &"no session layer"))?;
        let bytes = Bytes::from_request(
            Request::from_parts(
                parts,
                axum::body::Body::new(http_body_util::Limited::new(body, MAX_BYTES)),
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
        if pairs
            .iter()
            .any(|(name, value)| name.contains('\0') || value.contains('\0'))
        {
            return Err(WebError::page(
                StatusCode::BAD_REQUEST,
                Lang::En,
                msg!("web-nul-refused"),
            ));
        }
        let sent = pairs
            .iter()
            .find(|(name, _)| name == "csrf_token")
            .map(|(_, value)| value.as_str())
            .unwrap_or_default();
        // A signed-in session's forms carry its token; a visitor's carry the token bound to
        // their visitor cookie, so visitors need no session row.
        let signed_in = session
            .get::<i64>(keys::USER_ID)
            .await
            .map_err(WebError::session)?
            .is_some();
        let genuine = if signed_in {
            let expected = session
                .get::<String>(keys::CSRF)
                .await
                .map_err(WebError::session)?
                .unwrap_or_default();
            !expected.is_empty()
                && crate::domain::secret_key::constant_time_eq(sent.as_bytes(), expected.as_bytes())
        } else {
            match super::page::cookie(&headers, super::page::VISITOR_COOKIE) {
                Some(visitor) => {
                    crate::service::sessions::visitor_form_token_matches(&state.ctx, &visitor, sent)
                        .await
                        .map_err(|e| WebError::service(Lang::En, e))?
                }
                None => false,
            }
        };
        if !genuine {
            return Err(refused());
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

/// The portal's standard field names (the same in every form, and in `/api`) and the text
/// key of each one's label, for the summary of a form's problems.
const FIELD_LABELS: &[(&str, &str)] = &[
    ("login", "web-field-login"),
    ("username", "web-field-username"),
    ("email", "web-field-email"),
    ("password", "web-field-password"),
    ("password_confirm", "web-field-password-confirm"),
    ("current_password", "web-field-current-password"),
    ("details_current_password", "web-field-current-password"),
    ("display_name", "web-field-display-name"),
    ("code", "web-field-code"),
    ("name", "web-field-key-name"),
    ("quota_usd", "web-field-key-limit"),
    ("budget_usd", "web-field-key-budget-amount"),
    ("budget_period", "web-field-key-budget-period"),
    ("expires", "web-field-key-expires"),
    ("models", "web-field-key-models"),
    ("allow_ips", "web-field-key-ips"),
    ("group", "web-field-key-group"),
    ("amount_usd", "web-topup-amount"),
    ("low_balance_usd", "web-field-low-balance"),
    ("key_id", "web-playground-key"),
    ("model", "web-col-model"),
    ("system", "web-playground-system"),
    ("message", "web-playground-message"),
    ("temperature", "web-playground-temperature"),
    ("max_tokens", "web-playground-max-tokens"),
    ("from", "web-logs-from"),
    ("to", "web-logs-to"),
    ("key", "web-col-key"),
    ("outcome", "web-col-outcome"),
    ("slug", "web-org-field-slug"),
    ("timezone", "web-org-field-timezone"),
    ("member_cap_usd", "web-org-field-member-cap"),
    ("team", "web-org-field-team"),
    ("new_owner", "web-org-field-new-owner"),
    ("role", "web-invitation-role"),
    ("member", "web-usage-member"),
];

/// Problems to show next to a form's fields, in the reader's language, by field name, in the
/// order they were found (the form's order, as the services check fields): the summary at the
/// top of a form that comes back lists them so (`templates/form.html`).
#[derive(Clone, Debug, Default)]
pub struct FieldErrors {
    fields: Vec<(String, String)>,
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

    /// Adds the problem with `field`; its first problem is the one shown.
    pub fn add(&mut self, field: &str, message: String) {
        if !self.has(field) {
            self.fields.push((field.to_string(), message));
        }
    }

    /// The problem with `field`, if any.
    pub fn get(&self, field: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(name, _)| name == field)
            .map(|(_, message)| message.as_str())
    }

    pub fn has(&self, field: &str) -> bool {
        self.get(field).is_some()
    }

    /// Whether the form came back with nothing to say.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty() && self.general.is_none()
    }

    /// Every field's problem, in the order found: (field, message).
    pub fn list(&self) -> &[(String, String)] {
        &self.fields
    }

    /// Every field's problem as the summary above the form says it, led by the field's label
    /// (a message leaves its field to be shown beside it): (field, text).
    pub fn summary_lines(&self, lang: &Lang) -> Vec<(String, String)> {
        let lang = *lang;
        self.fields
            .iter()
            .map(|(field, message)| {
                let text = match FIELD_LABELS.iter().find(|(name, _)| name == field) {
                    Some((_, label)) => crate::i18n::text(
                        lang,
                        "web-errors-line",
                        &[
                            ("label", &crate::i18n::text(lang, label, &[])),
                            ("message", message),
                        ],
                    ),
                    None => message.clone(),
                };
                (field.clone(), text)
            })
            .collect()
    }

    /// The ids that describe `field`'s input: its hint, when it has one, and its problem.
    pub fn described_by(&self, field: &str, has_hint: bool) -> String {
        let mut ids = Vec::new();
        if has_hint {
            ids.push(format!("{field}-hint"));
        }
        if self.has(field) {
            ids.push(format!("{field}-error"));
        }
        ids.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_names_each_field_in_the_order_found() {
        let mut errors = FieldErrors::default();
        assert!(errors.is_empty());
        errors.add("quota_usd", "'lots' is not a number".into());
        errors.add("name", "is required".into());
        errors.add("name", "a second problem is not shown".into());
        errors.add("nonstandard", "said alone".into());
        assert!(!errors.is_empty());
        assert_eq!(errors.get("name"), Some("is required"));
        let lines = errors.summary_lines(&Lang::En);
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0].0, "quota_usd");
        assert!(
            lines[0].1.ends_with(": 'lots' is not a number"),
            "{}",
            lines[0].1
        );
        assert_eq!(lines[1], ("name".into(), "Name: is required".into()));
        assert_eq!(lines[2].1, "said alone");
        assert_eq!(errors.described_by("name", true), "name-hint name-error");
        assert_eq!(errors.described_by("models", true), "models-hint");
        assert_eq!(errors.described_by("models", false), "");
    }
}
