//! What every page knows about its request: the reader's language, who is signed in, the
//! session's form token, the site's name, and a one-time notice from the page before.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use tower_sessions::Session;

use super::error::WebError;
use crate::domain::calendar::SiteCalendar;
use crate::domain::money::Quota;
use crate::domain::secret_key;
use crate::i18n::{Lang, Message};
use crate::service::sessions::{self, SignIn, Viewer, keys};
use crate::service::{Caller, ServiceError};
use crate::state::AppState;

/// The cookie that remembers a visitor's language choice.
const LANG_COOKIE: &str = "lang";

/// What a template needs of the request. Every page has one, as `page`.
#[derive(Clone, Debug)]
pub struct Page {
    pub lang: Lang,
    pub site_name: String,
    /// The session's anti-forgery token, for every POST form.
    pub csrf: String,
    pub viewer: Option<Viewer>,
    /// The signed-in session's sign-in (when the person last proved who they are).
    pub sign_in: Option<SignIn>,
    pub quota_per_usd: i64,
    /// The path of this page, for the language links.
    pub path: String,
    /// The query of this page's address, as sent (without `?`): the language link keeps it.
    pub query: String,
    /// The site's time zone (option `timezone`), in which times are shown.
    pub calendar: SiteCalendar,
    pub flash: Option<String>,
    /// Whether the site sends mail (codes, reset links).
    pub mail_enabled: bool,
}

impl Page {
    /// The text of `key` in the reader's language.
    pub fn t(&self, key: &str) -> String {
        crate::i18n::text(self.lang, key, &[])
    }

    /// The text of `key` with one argument.
    pub fn t1(&self, key: &str, name: &str, value: &str) -> String {
        crate::i18n::text(self.lang, key, &[(name, value)])
    }

    /// The text of `key` with a number `count`, so the language's plural forms apply ("1
    /// request", "2 requests").
    pub fn tn(&self, key: &'static str, count: impl std::borrow::Borrow<i64>) -> String {
        self.say(&crate::i18n::Message::new(key).with("count", *count.borrow()))
    }

    /// A service's message in the reader's language.
    pub fn say(&self, message: &Message) -> String {
        message.render(self.lang)
    }

    /// Quota units as dollars a person reads.
    pub fn usd(&self, units: &i64) -> String {
        Quota(*units).usd_display(self.quota_per_usd)
    }

    /// This page's address in the other language: the same path and query, with only `lang`
    /// replaced, so setup, reset, verification and invite links and filters keep working.
    pub fn other_lang_href(&self) -> String {
        let mut pairs: Vec<&str> = self
            .query
            .split('&')
            .filter(|pair| !pair.is_empty() && pair.split('=').next() != Some("lang"))
            .collect();
        let lang = format!("lang={}", self.other_lang().tag());
        pairs.push(&lang);
        format!("{}?{}", self.path, pairs.join("&"))
    }

    /// A moment (ms since the epoch) on the site's clock, to the second.
    pub fn time(&self, at_ms: &i64) -> String {
        self.calendar.local_time(*at_ms)
    }

    /// A moment as RFC 3339 with the site zone's offset, for `<time datetime>`.
    pub fn datetime(&self, at_ms: &i64) -> String {
        self.calendar.rfc3339(*at_ms)
    }

    /// The other language.
    pub fn other_lang(&self) -> Lang {
        match self.lang {
            Lang::En => Lang::ZhCn,
            Lang::ZhCn => Lang::En,
        }
    }

    /// The attributes of an input holding a username or an email address, typed exactly as
    /// it is: no capital letter, correction or spelling marks added by a phone's keyboard.
    pub fn verbatim(&self) -> &'static str {
        " autocapitalize=\"none\" autocorrect=\"off\" spellcheck=\"false\""
    }

    /// The attributes of an input choosing a new password: the rule's length, checked by the
    /// browser before the server checks the whole rule.
    pub fn new_password_attrs(&self) -> String {
        format!(
            " minlength=\"{}\"",
            crate::domain::password::MIN_PASSWORD_CHARS
        )
    }

    /// The password rule, as the hint of every field that chooses one.
    pub fn password_hint(&self) -> String {
        self.t1(
            "web-field-password-hint",
            "min",
            &crate::domain::password::MIN_PASSWORD_CHARS.to_string(),
        )
    }

    /// Whether an administrator is signed in (the header links to the console).
    pub fn is_admin(&self) -> bool {
        self.viewer.as_ref().is_some_and(|v| v.is_admin())
    }

    pub fn signed_in(&self) -> bool {
        self.viewer.is_some()
    }

    /// Whether to remind the signed-in person that their address is not proven yet.
    pub fn remind_to_verify(&self) -> bool {
        self.mail_enabled
            && self.path != "/verify-email"
            && self
                .viewer
                .as_ref()
                .is_some_and(|v| v.email.is_some() && !v.email_verified)
    }

    /// A page failed: an error page in the reader's language.
    pub fn error(&self, status: axum::http::StatusCode, message: Message) -> WebError {
        WebError::page(status, self.lang, message)
    }

    /// A service refused or failed: the error page that says why, with the status that fits.
    pub fn failed(&self, error: ServiceError) -> WebError {
        WebError::service(self.lang, error)
    }

    /// Whether the person signed in (or proved who they are again) within
    /// [`sessions::RECENT_SIGN_IN`].
    pub fn recent_sign_in(&self) -> bool {
        self.sign_in
            .as_ref()
            .is_some_and(|sign_in| sign_in.is_recent(crate::clock::now_ms()))
    }
}

/// The language a request asked for with `?lang=`.
fn asked_lang(parts: &Parts) -> Option<Lang> {
    parts.uri.query().and_then(|query| {
        query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(name, _)| *name == "lang")
            .and_then(|(_, value)| Lang::from_tag(value))
    })
}

/// The cookie of a browser an account signed in from (see `service::sessions::device_cookie`).
pub const DEVICE_COOKIE: &str = "tollgate_device";
pub const DEVICE_COOKIE_DAYS: u32 = 365;

/// The cookie holding a visitor's own random id, which their form token is bound to.
pub const VISITOR_COOKIE: &str = "tollgate_visitor";

/// Adds a cookie to a response: HttpOnly, SameSite=Lax, for the whole site, Secure when people
/// reach the site over HTTPS; kept for `days` (0: until the browser closes).
pub fn set_cookie(state: &AppState, response: &mut Response, name: &str, value: &str, days: u32) {
    let secure = state
        .snapshot
        .load()
        .options
        .public_url
        .starts_with("https://");
    let mut cookie = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
    if days > 0 {
        cookie.push_str(&format!("; Max-Age={}", u64::from(days) * 86_400));
    }
    if secure {
        cookie.push_str("; Secure");
    }
    if let Ok(value) = HeaderValue::try_from(cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.to_string())
}

/// The first language of `Accept-Language` Tollgate speaks.
fn accepted_lang(headers: &HeaderMap) -> Option<Lang> {
    let accepted = headers.get(header::ACCEPT_LANGUAGE)?.to_str().ok()?;
    let mut ranked: Vec<(f32, Lang)> = accepted
        .split(',')
        .filter_map(|item| {
            let mut pieces = item.split(';');
            let lang = Lang::from_tag(pieces.next()?)?;
            let quality = pieces
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            Some((quality, lang))
        })
        .collect();
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
    ranked.first().map(|(_, lang)| *lang)
}

/// The reader's language: what they just asked for, their account's setting, their cookie,
/// their browser's, English.
fn language(parts: &Parts, viewer: Option<&Viewer>) -> Lang {
    asked_lang(parts)
        .or_else(|| viewer.and_then(|v| Lang::from_tag(&v.locale)))
        .or_else(|| cookie(&parts.headers, LANG_COOKIE).and_then(|c| Lang::from_tag(&c)))
        .or_else(|| accepted_lang(&parts.headers))
        .unwrap_or(Lang::En)
}

/// What the session remembers of its sign-in, if it is signed in.
async fn sign_in_of(session: &Session) -> Result<Option<SignIn>, WebError> {
    let user_id = session
        .get::<i64>(keys::USER_ID)
        .await
        .map_err(WebError::session)?;
    let Some(user_id) = user_id else {
        return Ok(None);
    };
    let stamp = session
        .get::<String>(keys::STAMP)
        .await
        .map_err(WebError::session)?
        .unwrap_or_default();
    // Sessions from before sign-in times were kept count as signed in when they began.
    let at_ms = match session
        .get::<i64>(keys::SIGNED_IN_AT)
        .await
        .map_err(WebError::session)?
    {
        Some(at) => at,
        None => session
            .get::<i64>(keys::CREATED)
            .await
            .map_err(WebError::session)?
            .unwrap_or(0),
    };
    Ok(Some(SignIn {
        user_id,
        stamp,
        at_ms,
    }))
}

/// The signed-in account, re-read on every request: a disabled or deleted account, or one
/// whose password changed since this session signed in, is signed out at once.
async fn viewer(state: &AppState, session: &Session) -> Result<Option<(Viewer, SignIn)>, WebError> {
    let Some(sign_in) = sign_in_of(session).await? else {
        return Ok(None);
    };
    match sessions::resume(&state.ctx, &sign_in)
        .await
        .map_err(|e| WebError::service(Lang::En, e))?
    {
        Some(viewer) => {
            // Keep `last_seen_at` to the minute without a write on every request.
            let minute = crate::clock::now_ms() / 60_000;
            if session.get::<i64>(keys::SEEN).await.ok().flatten() != Some(minute) {
                let _ = session.insert(keys::SEEN, minute).await;
            }
            Ok(Some((viewer, sign_in)))
        }
        None => {
            session.flush().await.map_err(WebError::session)?;
            Ok(None)
        }
    }
}

/// Leaves a one-time notice for the next page.
pub async fn flash(session: &Session, text: String) -> Result<(), WebError> {
    session
        .insert(keys::FLASH, text)
        .await
        .map_err(WebError::session)
}

/// The session's form token, made on first use.
pub async fn csrf_token(session: &Session) -> Result<String, WebError> {
    if let Some(token) = session
        .get::<String>(keys::CSRF)
        .await
        .map_err(WebError::session)?
    {
        return Ok(token);
    }
    let token = secret_key::generate("").plain;
    session
        .insert(keys::CSRF, &token)
        .await
        .map_err(WebError::session)?;
    Ok(token)
}

/// A visitor's own random id, from their cookie or made for this answer (see
/// [`remember_visitor`]).
#[derive(Clone, Debug)]
pub struct Visitor(pub String);

/// Gives a browser that has none a visitor id (a cookie, no database row): the form token of
/// someone not signed in is bound to it (see `service::sessions::visitor_form_token`).
pub async fn remember_visitor(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let known = cookie(request.headers(), VISITOR_COOKIE);
    let visitor = known.clone().unwrap_or_else(sessions::new_browser_id);
    request.extensions_mut().insert(Visitor(visitor.clone()));
    let mut response = next.run(request).await;
    if known.is_none() {
        set_cookie(&state, &mut response, VISITOR_COOKIE, &visitor, 0);
    }
    response
}

impl Page {
    /// The page of a request: who is signed in, in what language, and the form token — the
    /// session's for a signed-in person, else one bound to the visitor's cookie, so visitors
    /// get no session row until they send a form that needs one.
    pub(super) async fn build(parts: &mut Parts, state: &AppState) -> Result<Page, WebError> {
        let session = Session::from_request_parts(parts, state)
            .await
            .map_err(|_| WebError::internal(Lang::En, &"no session layer"))?;
        let (viewer, sign_in) = viewer(state, &session).await?.unzip();
        let lang = language(parts, viewer.as_ref());
        let csrf = match (&viewer, parts.extensions.get::<Visitor>()) {
            (Some(_), _) => csrf_token(&session).await?,
            (None, Some(Visitor(visitor))) => sessions::visitor_form_token(&state.ctx, visitor)
                .await
                .map_err(|e| WebError::service(lang, e))?,
            (None, None) => String::new(),
        };
        let flash = session
            .remove::<String>(keys::FLASH)
            .await
            .map_err(WebError::session)?;
        let snapshot = state.snapshot.load();
        Ok(Page {
            lang,
            site_name: snapshot.options.site_name.clone(),
            csrf,
            viewer,
            sign_in,
            quota_per_usd: snapshot.options.quota_per_usd(),
            path: parts.uri.path().to_string(),
            query: parts.uri.query().unwrap_or_default().to_string(),
            calendar: SiteCalendar::new(&snapshot.options.timezone),
            flash,
            mail_enabled: !snapshot.options.smtp_host.is_empty(),
        })
    }
}

impl FromRequestParts<AppState> for Page {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, WebError> {
        Page::build(parts, state).await
    }
}

/// A page for signed-in people only: the others are sent to sign in, and back here after.
pub struct SignedIn {
    pub page: Page,
    pub user: Viewer,
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let page = Page::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        match page.viewer.clone() {
            Some(user) => Ok(SignedIn { page, user }),
            None => {
                let next = parts
                    .uri
                    .path_and_query()
                    .map(|p| p.as_str())
                    .unwrap_or("/dashboard");
                let target = format!("/login?next={}", urlencode(next));
                Err(Redirect::to(&target).into_response())
            }
        }
    }
}

pub fn urlencode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(char::from(byte));
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// Where to go after signing in: a path of this site only (see
/// [`crate::domain::redirect::local_target`]), else the dashboard.
pub fn local_path(next: Option<&str>) -> String {
    next.and_then(crate::domain::redirect::local_target)
        .unwrap_or("/dashboard")
        .to_string()
}

/// `?lang=` on any page: remembered in a cookie, and as the account's setting when signed in.
pub async fn remember_language(
    State(state): State<AppState>,
    session: Session,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let asked = asked_lang(&parts);
    let mut response = next.run(Request::from_parts(parts, body)).await;
    if let Some(lang) = asked {
        let cookie = format!(
            "{LANG_COOKIE}={}; Path=/; Max-Age=31536000; SameSite=Lax",
            lang.tag()
        );
        if let Ok(value) = HeaderValue::try_from(cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
        // The person acting on their own account, whatever their role.
        if let Ok(Some(id)) = session.get::<i64>(keys::USER_ID).await
            && let Err(e) = sessions::set_language(&state.ctx, &Caller::User(id), lang.tag()).await
        {
            tracing::warn!(error = %e, "could not keep a language choice");
        }
    }
    response
}
