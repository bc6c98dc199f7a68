//! The portal's errors: an HTML page in the reader's language with what went wrong, inside the
//! normal frame (the header, the menu, who is signed in), never a bare status or a JSON body.

use askama::Template;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};

use super::page::Page;
use crate::i18n::{Lang, Message};
use crate::msg;
use crate::service::ServiceError;
use crate::state::AppState;

#[derive(Debug)]
pub struct WebError {
    pub status: StatusCode,
    pub lang: Lang,
    pub message: Message,
}

/// The page of an error that happened where no page around it can be built.
#[derive(Template)]
#[template(path = "error_bare.html")]
struct BareErrorPage<'a> {
    lang: Lang,
    title: String,
    message: String,
    home: String,
    status: u16,
    _marker: std::marker::PhantomData<&'a ()>,
}

/// An error page inside the normal frame: the header, the menu, who is signed in.
#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    page: Page,
    title: String,
    message: String,
    status: u16,
}

/// What an error answer carries for [`frame_errors`]: the status and the message, rendered
/// there in the reader's language inside the page's frame.
#[derive(Clone, Debug)]
struct FailedPage {
    status: StatusCode,
    message: Message,
}

/// The heading of an error page: what kind of failure it is.
fn title_key(status: StatusCode) -> &'static str {
    match status {
        StatusCode::NOT_FOUND => "web-error-title-not-found",
        StatusCode::FORBIDDEN => "web-error-title-forbidden",
        StatusCode::TOO_MANY_REQUESTS => "web-error-title-too-many",
        _ => "web-error-title",
    }
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
    /// The error page without its frame (what is left when no page can be built around it),
    /// marked for [`frame_errors`], which puts it inside the normal frame.
    fn into_response(self) -> Response {
        let page = BareErrorPage {
            lang: self.lang,
            title: crate::i18n::text(self.lang, title_key(self.status), &[]),
            message: self.message.render(self.lang),
            home: crate::i18n::text(self.lang, "web-error-home", &[]),
            status: self.status.as_u16(),
            _marker: std::marker::PhantomData,
        };
        let mut response = match page.render() {
            Ok(html) => (self.status, Html(html)).into_response(),
            Err(_) => (self.status, self.message.render(self.lang)).into_response(),
        };
        response.extensions_mut().insert(FailedPage {
            status: self.status,
            message: self.message,
        });
        response
    }
}

/// Renders every error page of the portal inside the normal frame — the header, the menu, who
/// is signed in — in the reader's language, with the error's status. Runs inside the session
/// layer, so the page knows the session; when the page cannot be built (the session store or
/// the database failed), the error keeps its page without the frame.
pub async fn frame_errors(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let mut kept = parts.clone();
    let response = next.run(Request::from_parts(parts, body)).await;
    let Some(failed) = response.extensions().get::<FailedPage>().cloned() else {
        return response;
    };
    let page = match Page::build(&mut kept, &state).await {
        Ok(page) => page,
        Err(error) => {
            tracing::warn!(status = %error.status, "an error page is shown without its frame");
            return response;
        }
    };
    let framed = ErrorPage {
        title: page.t(title_key(failed.status)),
        message: page.say(&failed.message),
        status: failed.status.as_u16(),
        page,
    };
    match framed.render() {
        Ok(html) => {
            let (mut head, _) = response.into_parts();
            head.headers.remove(header::CONTENT_LENGTH);
            head.headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            Response::from_parts(head, Body::from(html))
        }
        Err(error) => {
            tracing::error!(%error, "an error page could not be rendered");
            response
        }
    }
}
