//! The portal: server-rendered pages where people sign up, sign in, make their keys and
//! watch their spend, in English or Chinese. Pages call the same services as the command line
//! and `/api`, as the signed-in person (`Caller::User`), so they can reach only their own
//! records. Sessions live in our own table (`session`), every POST carries the session's
//! form token, and nothing changes on GET but the language. `/v1` carries none of this.

mod admin;
mod auth;
mod chart;
mod email;
mod error;
mod form;
mod format;
mod guide;
mod invitations;
mod keys;
mod logs;
mod models;
mod oauth;
mod org_usage;
mod orgs;
mod page;
mod pages;
mod playground;
mod profile;
mod signing;
mod wallet;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};

pub use error::WebError;
use page::Page;

use crate::state::AppState;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "tollgate_session";

const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; \
    object-src 'none'";

pub fn router(state: &AppState) -> Router<AppState> {
    let pages = Router::new()
        .route("/", get(pages::home))
        .route("/pricing", get(pages::pricing))
        .route("/docs", get(pages::docs))
        .route("/docs/operator", get(pages::operator_guide))
        .route("/setup", get(auth::setup_form).post(auth::setup))
        .route("/login", get(auth::login_form).post(auth::login))
        .route("/logout", post(auth::logout))
        .route("/register", get(auth::register_form).post(auth::register))
        .route("/verify-email", get(email::verify_form).post(email::verify))
        .route("/verify-email/resend", post(email::resend))
        .route(
            "/forgot-password",
            get(email::forgot_form).post(email::forgot),
        )
        .route("/reset-password", get(email::reset_form).post(email::reset))
        .route("/oauth/{provider}/start", get(oauth::start))
        .route("/oauth/{provider}/callback", get(oauth::callback))
        .route("/profile/identities/{id}/unlink", post(oauth::unlink))
        .route("/dashboard", get(pages::dashboard))
        .route("/keys", get(keys::list).post(keys::create))
        .route("/keys/{id}/edit", get(keys::edit_form).post(keys::edit))
        .route("/keys/{id}/status", post(keys::set_status))
        .route("/keys/{id}/delete", post(keys::delete))
        .route("/logs", get(logs::page))
        .route("/logs.csv", get(logs::csv))
        .route("/wallet", get(wallet::show))
        .route("/wallet/redeem", post(wallet::redeem))
        .route("/wallet/invite", post(wallet::make_invite))
        .route("/wallet/topup", get(wallet::quote).post(wallet::pay))
        .route("/wallet/orders/{id}", get(wallet::order))
        .route("/playground", get(playground::show).post(playground::send))
        .route("/playground/stream", post(playground::stream))
        .route("/profile", get(profile::show).post(profile::details))
        .route("/profile/password", post(profile::password))
        .route("/profile/language", post(profile::language))
        .route("/profile/low-balance", post(profile::low_balance))
        .route(
            "/profile/sessions/end-others",
            post(profile::end_other_sessions),
        )
        .route("/profile/sessions/{id}/end", post(profile::end_session))
        .route("/profile/export", get(profile::export))
        .route("/profile/delete", post(profile::delete))
        .merge(orgs::router())
        .merge(invitations::router())
        .merge(org_usage::router())
        .merge(admin::router(state))
        .method_not_allowed_fallback(wrong_method);
    with_page_layers(state, pages)
        .route("/static/portal.css", get(stylesheet))
        .route("/static/playground.js", get(playground_script))
        .route("/static/copy.js", get(copy_script))
        .route("/static/forms.js", get(forms_script))
        .layer(middleware::from_fn(security_headers))
}

/// What answers a path no router knows (outside `/v1`, which answers in OpenAI's terms): the
/// not-found page, through the same layers as every page, so it has the header, the menu, who
/// is signed in and the security headers.
pub fn not_found_router(state: &AppState) -> Router<AppState> {
    with_page_layers(state, Router::new().fallback(not_found))
        .layer(middleware::from_fn(security_headers))
}

async fn not_found(page: Page) -> WebError {
    WebError::not_found(page.lang)
}

/// A page asked for with a method it does not take (a GET of a form's address, a POST to a
/// page): said on a page like every error.
async fn wrong_method(page: Page) -> WebError {
    page.error(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        crate::msg!("web-wrong-method"),
    )
}

/// The layers every page runs in, innermost first: the language choice kept, a NUL in the
/// address refused, error pages put inside the frame (which needs the session), the session,
/// the visitor's cookie, and no shared caching.
fn with_page_layers(state: &AppState, pages: Router<AppState>) -> Router<AppState> {
    // Secure cookies when people reach the site over HTTPS (a restart applies a change).
    let secure = state
        .snapshot
        .load()
        .options
        .public_url
        .starts_with("https://");
    let sessions = SessionManagerLayer::new(crate::service::sessions::SessionRows::new(&state.ctx))
        .with_name(SESSION_COOKIE)
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(secure)
        .with_path("/")
        // A visitor's row is kept for a shorter while (see `service::sessions`).
        .with_expiry(Expiry::OnInactivity(
            time::Duration::try_from(crate::service::sessions::SIGNED_IN_IDLE)
                .unwrap_or(time::Duration::WEEK),
        ));
    pages
        .layer(middleware::from_fn_with_state(
            state.clone(),
            page::remember_language,
        ))
        .layer(middleware::from_fn(refuse_nul_in_uri))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            error::frame_errors,
        ))
        .layer(sessions)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            page::remember_visitor,
        ))
        .layer(middleware::from_fn(page_headers))
        .layer(middleware::from_fn(audit_origin))
}

/// What the audit log says of the changes a page's request makes: a session, from the
/// client's address, with its user agent.
async fn audit_origin(request: Request, next: Next) -> Response {
    let origin = crate::service::audit::Origin {
        auth: crate::service::audit::Auth::Session,
        ip: Some(crate::protocol::client::ClientAddress::of(request.extensions()).0),
        user_agent: crate::protocol::client::user_agent(request.headers()),
    };
    crate::service::audit::within(origin, next.run(request)).await
}

/// The language of a request that reached no page: its browser's first choice.
fn browser_lang(request: &Request) -> crate::i18n::Lang {
    request
        .headers()
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| crate::i18n::Lang::from_tag(v.split([',', ';']).next().unwrap_or("")))
        .unwrap_or(crate::i18n::Lang::En)
}

/// A NUL in the path or the query is refused before any page reads it (see `domain::nul`).
async fn refuse_nul_in_uri(request: Request, next: Next) -> Response {
    if crate::domain::nul::in_uri(&request.uri().to_string()) {
        let lang = browser_lang(&request);
        return WebError::page(
            axum::http::StatusCode::BAD_REQUEST,
            lang,
            crate::msg!("web-nul-refused"),
        )
        .into_response();
    }
    next.run(request).await
}

async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    add_security_headers(&mut response);
    response
}

fn add_security_headers(response: &mut Response) {
    let headers = response.headers_mut();
    // A page may widen its own policy (the wallet's forms lead on to Stripe); others get this.
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        );
    }
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "same-origin"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
}

/// Pages hold a person's data: never kept by a shared cache.
async fn page_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// One of the portal's scripts, embedded in the binary.
fn script(source: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        source,
    )
        .into_response()
}

async fn playground_script() -> Response {
    script(include_str!("../../static/playground.js"))
}

async fn copy_script() -> Response {
    script(include_str!("../../static/copy.js"))
}

async fn forms_script() -> Response {
    script(include_str!("../../static/forms.js"))
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../static/portal.css"),
    )
        .into_response()
}
