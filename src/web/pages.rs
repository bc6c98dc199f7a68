//! The public pages and the dashboard.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::response::{IntoResponse, Response};

use super::error::WebError;
use super::page::{Page, SignedIn};
use crate::db::logs::RequestLog;
use crate::service::logs::LogQuery;
use crate::service::{self, Caller};
use crate::state::AppState;

/// The address clients call: the site's public URL, or the listen address.
pub fn base_url(state: &AppState) -> String {
    let listen = format!("http://{}", state.config.server.listen);
    state.snapshot.load().options.base_url(&listen)
}

#[derive(Template, WebTemplate)]
#[template(path = "home.html")]
pub struct HomePage {
    page: Page,
    announcement: String,
    registration_open: bool,
}

pub async fn home(State(state): State<AppState>, page: Page) -> HomePage {
    let options = &state.snapshot.load().options;
    HomePage {
        page,
        announcement: options.announcement.clone(),
        registration_open: options.registration_enabled,
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "dashboard.html")]
pub struct DashboardPage {
    page: Page,
    balance: i64,
    spent: i64,
    requests: i64,
    recent: Vec<RequestLog>,
    base_url: String,
    has_keys: bool,
}

impl DashboardPage {
    fn when(&self, log: &RequestLog) -> String {
        super::format::minute(log.created_at)
    }

    fn outcome(&self, log: &RequestLog) -> String {
        self.page.t(super::format::outcome_key(log.outcome))
    }
}

pub async fn dashboard(
    State(state): State<AppState>,
    SignedIn { page, user }: SignedIn,
) -> Result<Response, WebError> {
    let caller = Caller::User(user.id);
    let fail = |e: service::ServiceError| WebError::internal(page.lang, &e);
    let (recent, _) = service::logs::query(
        &state.ctx,
        &caller,
        LogQuery {
            limit: Some(10),
            ..Default::default()
        },
    )
    .await
    .map_err(fail)?;
    let has_keys = !service::tokens::list_for_user(&state.ctx, &caller, &user.username)
        .await
        .map_err(fail)?
        .is_empty();
    Ok(DashboardPage {
        balance: user.quota,
        spent: user.used_quota,
        requests: user.request_count,
        recent,
        base_url: base_url(&state),
        has_keys,
        page,
    }
    .into_response())
}
