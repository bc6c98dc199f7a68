//! An organisation's usage page (`/orgs/{slug}/usage`): who spent what per month, team,
//! member and model, with filters named as the admin console's, and the same figures as a
//! chargeback CSV (`/orgs/{slug}/usage.csv`).

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use super::error::WebError;
use super::form::FieldErrors;
use super::orgs::{OrgFrame, load};
use super::page::{Page, SignedIn};
use crate::service::org_usage::{self, ChargebackLine, OrgUsage, UsageFilter};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/orgs/{slug}/usage", get(page))
        .route("/orgs/{slug}/usage.csv", get(csv))
}

/// The filters as the address carries them.
#[derive(Debug, Default, Deserialize)]
pub struct Filters {
    #[serde(default)]
    team: String,
    #[serde(default)]
    member: String,
    #[serde(default)]
    key: String,
    #[serde(default)]
    model: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

impl Filters {
    fn filter(&self) -> UsageFilter {
        let some = |text: &String| Some(text.clone());
        UsageFilter {
            team: some(&self.team),
            member: some(&self.member),
            key: some(&self.key),
            model: some(&self.model),
            from: some(&self.from),
            to: some(&self.to),
        }
    }

    /// The address's query, for the CSV link.
    fn query(&self) -> String {
        serde_urlencoded::to_string([
            ("team", &self.team),
            ("member", &self.member),
            ("key", &self.key),
            ("model", &self.model),
            ("from", &self.from),
            ("to", &self.to),
        ])
        .unwrap_or_default()
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "orgs/usage.html")]
pub struct UsagePage {
    page: Page,
    frame: OrgFrame,
    filters: Filters,
    /// (id, name) of the organisation's teams.
    teams: Vec<(String, String)>,
    usage: Option<OrgUsage>,
    errors: FieldErrors,
}

impl UsagePage {
    fn cost(&self, line: &ChargebackLine) -> String {
        self.page.usd(&line.cost_quota)
    }

    fn csv_href(&self) -> String {
        format!(
            "/orgs/{}/usage.csv?{}",
            self.frame.slug,
            self.filters.query()
        )
    }
}

pub async fn page(
    State(state): State<AppState>,
    SignedIn { page, user }: SignedIn,
    Path(slug): Path<String>,
    Query(filters): Query<Filters>,
) -> Result<Response, WebError> {
    let (view, frame) = load(&state, &page, &user, &slug, "usage").await?;
    let teams = view
        .teams
        .iter()
        .map(|team| (team.id.to_string(), team.name.clone()))
        .collect();
    let (usage, errors, status) =
        match org_usage::usage(&state.ctx, &user.caller(), &view.slug, &filters.filter()).await {
            Ok(usage) => (Some(usage), FieldErrors::default(), StatusCode::OK),
            Err(error @ crate::service::ServiceError::Invalid(_)) => (
                None,
                FieldErrors::from_service(&error, page.lang, &[]),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            Err(error) => return Err(page.failed(error)),
        };
    let rendered = UsagePage {
        page,
        frame,
        filters,
        teams,
        usage,
        errors,
    };
    Ok((status, rendered).into_response())
}

pub async fn csv(
    State(state): State<AppState>,
    SignedIn { page, user }: SignedIn,
    Path(slug): Path<String>,
    Query(filters): Query<Filters>,
) -> Result<Response, WebError> {
    let usage = org_usage::usage(&state.ctx, &user.caller(), &slug, &filters.filter())
        .await
        .map_err(|e| page.failed(e))?;
    let text = org_usage::chargeback_csv(&usage, page.quota_per_usd);
    let name = format!(
        "attachment; filename=\"{}-usage.csv\"",
        slug.replace('"', "")
    );
    let mut response = text.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(value) = HeaderValue::from_str(&name) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}
