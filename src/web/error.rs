//! The portal's errors: an HTML page in the reader's language with what went wrong, never a
//! bare status or a JSON body.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use crate::i18n::{Lang, Message};
use crate::msg;
use crate::service::ServiceError;

#[derive(Debug)]
pub struct WebError {
    pub status: StatusCode,
    pub lang: Lang,
    pub message: Message,
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    lang: Lang,
    title: String,
    message: String,
    home: String,
    status: u16,
    _marker: std::marker::PhantomData<&'a ()>,
}

impl WebError {
    pub fn page(status: StatusCode, lang: Lang, message: Message) -> WebError {
        WebError {
            status,
            lang,
            message,
        }
    }

    pub fn not_found(lang: Lang) -> WebError {
        WebError::page(StatusCode::NOT_FOUND, lang, msg!("web-not-found"))
    }

    /// Something failed that the reader cannot fix: logged whole, told briefly.
    pub fn internal(lang: Lang, error: &dyn std::fmt::Display) -> WebError {
        tracing::error!(%error, "a portal page failed");
        WebError::page(
            StatusCode::INTERNAL_SERVER_ERROR,
            lang,
            msg!("web-internal-error"),
        )
    }

    /// A service's refusal as a page with the status that fits it (the one mapping of
    /// service errors to pages); a failure inside the server is logged and told briefly.
    pub fn service(lang: Lang, error: ServiceError) -> WebError {
        let status = match &error {
            ServiceError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ServiceError::NotFound(_) => StatusCode::NOT_FOUND,
            ServiceError::Conflict { .. } => StatusCode::CONFLICT,
            ServiceError::Forbidden(_) => StatusCode::FORBIDDEN,
            ServiceError::Upstream(_) => StatusCode::BAD_GATEWAY,
            ServiceError::Db(_) => return WebError::internal(lang, &error),
        };
        match error.message() {
            Some(message) => WebError::page(status, lang, message.clone()),
            None => WebError::internal(lang, &error),
        }
    }

    pub fn session(error: tower_sessions::session::Error) -> WebError {
        WebError::internal(Lang::En, &error)
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let page = ErrorPage {
            lang: self.lang,
            title: crate::i18n::text(self.lang, "web-error-title", &[]),
            message: self.message.render(self.lang),
            home: crate::i18n::text(self.lang, "web-error-home", &[]),
            status: self.status.as_u16(),
            _marker: std::marker::PhantomData,
        };
        match page.render() {
            Ok(html) => (self.status, Html(html)).into_response(),
            Err(_) => (self.status, self.message.render(self.lang)).into_response(),
        }
    }
}
