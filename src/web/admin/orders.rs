//! The console's top-up orders: find one by order id, user, Stripe session or payment id and
//! state; see its Stripe events; credit a held one or refund one through Stripe, each with a
//! reason.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use tower_sessions::Session;

use super::AdminPage;
use super::users::local_time;
use crate::domain::kinds::OrderStatus;
use crate::service::views::{EventView, OrderView};
use crate::service::{self, Caller, ServiceError};
use crate::state::AppState;
use crate::web::error::WebError;
use crate::web::form::{FieldErrors, Posted};
use crate::web::page::{Page, flash};

/// Pages and forms that need only an administrator.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/orders", get(list))
        .route("/admin/orders/{id}", get(show))
}

/// Forms that need a sign-in within the last minutes too (see `reauth`).
pub fn sensitive_routes() -> Router<AppState> {
    Router::new()
        .route("/admin/orders/{id}/credit", post(credit))
        .route("/admin/orders/{id}/refund", post(refund))
}

/// An order's state in the reader's words (the wallet's).
pub(super) fn status_key(status: OrderStatus) -> &'static str {
    match status {
        OrderStatus::Pending => "web-order-pending",
        OrderStatus::Paid => "web-order-paid",
        OrderStatus::Closed => "web-order-closed",
        OrderStatus::Held => "web-order-held",
    }
}

/// The states to filter by: (value, text key).
const STATES: [(&str, &str); 5] = [
    ("", "admin-orders-any-state"),
    ("pending", "web-order-pending"),
    ("paid", "web-order-paid"),
    ("held", "web-order-held"),
    ("closed", "web-order-closed"),
];

#[derive(Template, WebTemplate)]
#[template(path = "admin/orders.html")]
pub struct OrdersPage {
    page: Page,
    q: String,
    status: String,
    states: &'static [(&'static str, &'static str)],
    orders: Vec<OrderView>,
    errors: FieldErrors,
}

impl OrdersPage {
    fn at(&self, text: &str) -> String {
        local_time(&self.page, text)
    }

    fn state(&self, order: &OrderView) -> String {
        self.page.t(status_key(order.status))
    }
}

#[derive(Deserialize, Default)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    status: String,
}

/// Orders shown at most.
const LIMIT: i64 = 200;

async fn list(
    State(state): State<AppState>,
    admin: AdminPage,
    Query(query): Query<SearchQuery>,
) -> Result<Response, WebError> {
    let caller = admin.caller();
    let page = admin.page;
    let status = Some(query.status.trim()).filter(|s| !s.is_empty());
    let found = service::topups::search(&state.ctx, &caller, &query.q, status, LIMIT).await;
    let (orders, errors, code) = match found {
        Ok(orders) => (orders, FieldErrors::default(), StatusCode::OK),
        Err(error @ ServiceError::Invalid(_)) => (
            Vec::new(),
            FieldErrors::from_service(&error, page.lang, &[]),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        Err(error) => return Err(page.failed(error)),
    };
    let qpu = page.quota_per_usd;
    Ok((
        code,
        OrdersPage {
            q: query.q.trim().to_string(),
            status: query.status.trim().to_string(),
            states: &STATES,
            orders: orders.iter().map(|o| OrderView::new(o, qpu)).collect(),
            errors,
            page,
        },
    )
        .into_response())
}

/// The credit and refund forms: the field names of `POST /api/orders/{id}/credit|refund`.
#[derive(Deserialize, Default, Clone)]
pub struct ReasonForm {
    #[serde(default)]
    reason: String,
    /// Refunds only: dollars of balance to refund; empty refunds what is left.
    #[serde(default)]
    usd: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/order.html")]
pub struct OrderPage {
    page: Page,
    order: OrderView,
    events: Vec<EventView>,
    user_id: Option<i64>,
    credit: ReasonForm,
    refund: ReasonForm,
    errors: FieldErrors,
    /// Which form came back with problems: `credit` or `refund`.
    failed: &'static str,
}

impl OrderPage {
    fn at(&self, text: &str) -> String {
        local_time(&self.page, text)
    }

    fn state(&self) -> String {
        self.page.t(status_key(self.order.status))
    }

    fn usd(&self, units: &i64) -> String {
        self.page.usd(units)
    }

    fn held(&self) -> bool {
        self.order.status == OrderStatus::Held
    }

    /// Whether the problems go above the forms: the form they belong to is not shown (the
    /// order moved on meanwhile).
    fn summary_above(&self) -> bool {
        let shown = match self.failed {
            "credit" => self.held(),
            "refund" => !self.held() && self.refundable(),
            _ => false,
        };
        !self.errors.is_empty() && !shown
    }

    /// Whether money was taken that a refund can give back.
    fn refundable(&self) -> bool {
        self.order.credited > 0 && self.order.payment_intent.is_some()
    }
}

async fn order_page(
    state: &AppState,
    page: Page,
    caller: &Caller,
    id: i64,
) -> Result<OrderPage, WebError> {
    let (order, events) = service::topups::show(&state.ctx, caller, id)
        .await
        .map_err(|e| page.failed(e))?;
    // The account's page, when the account is still there.
    let user_id = service::users::get(&state.ctx, caller, &order.username)
        .await
        .ok()
        .map(|u| u.id);
    Ok(OrderPage {
        order: OrderView::new(&order, page.quota_per_usd),
        events: events.iter().map(EventView::new).collect(),
        user_id,
        credit: ReasonForm::default(),
        refund: ReasonForm::default(),
        errors: FieldErrors::default(),
        failed: "",
        page,
    })
}

async fn show(
    State(state): State<AppState>,
    admin: AdminPage,
    Path(id): Path<i64>,
) -> Result<OrderPage, WebError> {
    let caller = admin.caller();
    order_page(&state, admin.page, &caller, id).await
}

/// The order's page again with a form's problems (422 for wrong values, 409 when the order
/// is not in a state for it); other refusals are the error page.
async fn again(
    state: &AppState,
    admin: AdminPage,
    id: i64,
    error: ServiceError,
    fill: impl FnOnce(&mut OrderPage),
) -> Result<Response, WebError> {
    let code = match &error {
        ServiceError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
        ServiceError::Conflict { .. } => StatusCode::CONFLICT,
        ServiceError::Upstream(_) => StatusCode::BAD_GATEWAY,
        _ => return Err(admin.page.failed(error)),
    };
    let caller = admin.caller();
    let lang = admin.page.lang;
    let mut page = order_page(state, admin.page, &caller, id).await?;
    page.errors = FieldErrors::from_service(&error, lang, &[]);
    fill(&mut page);
    Ok((code, page).into_response())
}

async fn credit(
    State(state): State<AppState>,
    session: Session,
    admin: AdminPage,
    Path(id): Path<i64>,
    Posted(form): Posted<ReasonForm>,
) -> Result<Response, WebError> {
    let caller = admin.caller();
    let credited =
        service::topups::credit(&state.ctx, &caller, id, &form.reason, &state.listen_url).await;
    match credited {
        Ok(_) => {
            flash(&session, admin.page.t("admin-order-credited")).await?;
            Ok(Redirect::to(&format!("/admin/orders/{id}")).into_response())
        }
        Err(error) => {
            again(&state, admin, id, error, |page| {
                page.credit = form;
                page.failed = "credit";
            })
            .await
        }
    }
}

async fn refund(
    State(state): State<AppState>,
    session: Session,
    admin: AdminPage,
    Path(id): Path<i64>,
    Posted(form): Posted<ReasonForm>,
) -> Result<Response, WebError> {
    let caller = admin.caller();
    let usd = Some(form.usd.trim()).filter(|u| !u.is_empty());
    match service::topups::refund(&state.ctx, &caller, id, usd, &form.reason).await {
        Ok(refund_id) => {
            let text = admin
                .page
                .t1("admin-order-refund-asked", "refund", &refund_id);
            flash(&session, text).await?;
            Ok(Redirect::to(&format!("/admin/orders/{id}")).into_response())
        }
        Err(error) => {
            again(&state, admin, id, error, |page| {
                page.refund = form;
                page.failed = "refund";
            })
            .await
        }
    }
}
