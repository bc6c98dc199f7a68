//! A stand-in for Stripe on port 0: the Checkout Session and refund endpoints Tollgate calls
//! (form-encoded requests, bearer key, idempotency keys, Stripe's JSON objects and error
//! envelope), a checkout page to be redirected to, and signed webhook events shaped like
//! Stripe's, delivered to a Tollgate server.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::TestApp;

pub const SECRET_KEY: &str = "sk_test_tollgate";
pub const WEBHOOK_SECRET: &str = "whsec_tollgate_test";

/// A request Tollgate made, as Stripe received it.
#[derive(Clone, Debug)]
pub struct Received {
    pub path: String,
    pub form: Vec<(String, String)>,
    pub idempotency_key: Option<String>,
    pub authorization: Option<String>,
}

impl Received {
    /// The value of one form field (`line_items[0][price_data][unit_amount]`).
    pub fn field(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct Inner {
    sessions: HashMap<String, Value>,
    /// Idempotency key → the session it made.
    by_key: HashMap<String, String>,
    received: Vec<Received>,
    /// The next request is answered with this status and message.
    fail_next: Option<(u16, String)>,
    counter: u64,
}

#[derive(Clone)]
pub struct FakeStripe {
    pub base: String,
    inner: Arc<Mutex<Inner>>,
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

impl FakeStripe {
    pub async fn start() -> FakeStripe {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let fake = FakeStripe { base, inner };
        let router = Router::new()
            .route(
                "/v1/checkout/sessions",
                post(create_session).get(list_sessions),
            )
            .route("/v1/checkout/sessions/{id}", get(get_session))
            .route("/v1/refunds", post(create_refund))
            .route("/pay/{id}", get(pay_page))
            .with_state(fake.clone());
        tokio::spawn(async move {
            axum::serve(listener, router).await.ok();
        });
        fake
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap()
    }

    /// Points a Tollgate server at this stand-in, with both keys set.
    pub async fn configure(&self, app: &TestApp) {
        app.set_option("stripe_api_base", &self.base).await;
        app.set_option("stripe_secret_key", SECRET_KEY).await;
        app.set_option("stripe_webhook_secret", WEBHOOK_SECRET)
            .await;
    }

    /// Every request received, oldest first.
    pub fn received(&self) -> Vec<Received> {
        self.lock().received.clone()
    }

    pub fn fail_next(&self, status: u16, message: &str) {
        self.lock().fail_next = Some((status, message.to_string()));
    }

    pub fn session(&self, id: &str) -> Value {
        self.lock().sessions[id].clone()
    }

    /// The payer paid: the session completes, with a payment intent.
    pub fn pay(&self, id: &str) -> Value {
        let mut inner = self.lock();
        let session = inner.sessions.get_mut(id).expect("known session");
        session["status"] = json!("complete");
        session["payment_status"] = json!("paid");
        session["payment_intent"] = json!(format!("pi_{}", &id[3..]));
        session.clone()
    }

    /// The session ran out without payment.
    pub fn expire(&self, id: &str) -> Value {
        let mut inner = self.lock();
        let session = inner.sessions.get_mut(id).expect("known session");
        session["status"] = json!("expired");
        session["expires_at"] = json!(now_secs() - 120);
        session.clone()
    }
}

fn stripe_error(status: u16, message: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap();
    (
        status,
        axum::Json(json!({
            "error": { "type": "invalid_request_error", "message": message }
        })),
    )
        .into_response()
}

/// Keeps the request and answers Stripe's refusal when the key is wrong or a failure was
/// queued; otherwise hands back what was kept, so a handler reads its own request even when
/// others arrive at the same moment. The refusal is boxed: a response is large beside what is
/// kept.
fn record(
    fake: &FakeStripe,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Received, Box<Response>> {
    let form: Vec<(String, String)> = serde_urlencoded::from_bytes(body).unwrap_or_default();
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let received = Received {
        path: path.to_string(),
        form,
        idempotency_key: header("idempotency-key"),
        authorization: header("authorization"),
    };
    let mut inner = fake.lock();
    inner.received.push(received.clone());
    if header("authorization").as_deref() != Some(&format!("Bearer {SECRET_KEY}")) {
        return Err(Box::new(stripe_error(
            401,
            "Invalid API Key provided: sk_test_****",
        )));
    }
    match inner.fail_next.take() {
        Some((status, message)) => Err(Box::new(stripe_error(status, &message))),
        None => Ok(received),
    }
}

async fn create_session(
    State(fake): State<FakeStripe>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let received = match record(&fake, "/v1/checkout/sessions", &headers, &body) {
        Ok(received) => received,
        Err(refused) => return *refused,
    };
    let field = |name: &str| received.field(name).map(str::to_string);
    // One lock from the key's lookup to the new session's entry: the same key sent twice at
    // once makes one session, as at Stripe.
    let mut inner = fake.lock();
    if let Some(id) = received
        .idempotency_key
        .as_ref()
        .and_then(|k| inner.by_key.get(k))
    {
        return axum::Json(inner.sessions[id].clone()).into_response();
    }
    inner.counter += 1;
    let id = format!("cs_test_{:04}{}", inner.counter, now_secs());
    let amount: i64 = field("line_items[0][price_data][unit_amount]")
        .and_then(|a| a.parse().ok())
        .unwrap_or(0);
    let session = json!({
        "id": id,
        "object": "checkout.session",
        "amount_subtotal": amount,
        "amount_total": amount,
        "automatic_tax": { "enabled": false, "liability": null, "status": null },
        "cancel_url": field("cancel_url"),
        "client_reference_id": field("client_reference_id"),
        "created": now_secs(),
        "currency": field("line_items[0][price_data][currency]"),
        "custom_fields": [],
        "custom_text": {
            "after_submit": null, "shipping_address": null, "submit": null,
            "terms_of_service_acceptance": null
        },
        "customer_email": field("customer_email"),
        "expires_at": field("expires_at").and_then(|e| e.parse::<i64>().ok()),
        "livemode": false,
        "locale": field("locale"),
        "metadata": { "order_id": field("metadata[order_id]"), "site_id": field("metadata[site_id]") },
        "mode": "payment",
        "payment_intent": null,
        "payment_method_types": ["card"],
        "payment_status": "unpaid",
        "shipping_options": [],
        "status": "open",
        "success_url": field("success_url"),
        "url": format!("{}/pay/{id}", fake.base),
    });
    inner.sessions.insert(id.clone(), session.clone());
    if let Some(key) = received.idempotency_key {
        inner.by_key.insert(key, id);
    }
    axum::Json(session).into_response()
}

async fn get_session(
    State(fake): State<FakeStripe>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let path = format!("/v1/checkout/sessions/{id}");
    if let Err(refused) = record(&fake, &path, &headers, b"") {
        return *refused;
    }
    match fake.lock().sessions.get(&id) {
        Some(session) => axum::Json(session.clone()).into_response(),
        None => stripe_error(404, &format!("No such checkout.session: '{id}'")),
    }
}

/// `GET /v1/checkout/sessions?payment_intent=…`: the sessions paid by that payment.
async fn list_sessions(
    State(fake): State<FakeStripe>,
    headers: HeaderMap,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Response {
    if let Err(refused) = record(&fake, "/v1/checkout/sessions?list", &headers, b"") {
        return *refused;
    }
    let wanted: Vec<(String, String)> =
        serde_urlencoded::from_str(query.as_deref().unwrap_or("")).unwrap_or_default();
    let intent = wanted
        .iter()
        .find(|(n, _)| n == "payment_intent")
        .map(|(_, v)| v.clone());
    let data: Vec<Value> = fake
        .lock()
        .sessions
        .values()
        .filter(|s| intent.is_some() && s["payment_intent"].as_str() == intent.as_deref())
        .cloned()
        .collect();
    axum::Json(json!({
        "object": "list", "data": data, "has_more": false, "url": "/v1/checkout/sessions"
    }))
    .into_response()
}

async fn create_refund(
    State(fake): State<FakeStripe>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let received = match record(&fake, "/v1/refunds", &headers, &body) {
        Ok(received) => received,
        Err(refused) => return *refused,
    };
    let amount: i64 = received
        .field("amount")
        .and_then(|a| a.parse().ok())
        .unwrap_or(0);
    axum::Json(json!({
        "id": format!("re_test_{}", received.idempotency_key.clone().unwrap_or_default().len()),
        "object": "refund",
        "amount": amount,
        "created": now_secs(),
        "currency": "usd",
        "payment_intent": received.field("payment_intent"),
        "status": "succeeded",
    }))
    .into_response()
}

async fn pay_page(Path(id): Path<String>) -> Html<String> {
    Html(format!(
        "<!DOCTYPE html><html><head><title>Fake Stripe Checkout</title></head>\
         <body><h1 id=\"fake-checkout\">Fake Stripe Checkout</h1><p>{id}</p></body></html>"
    ))
}

/// An event shaped like Stripe's: `evt_…` id, type, `data.object`, and fields Tollgate does
/// not read (which it must not trip over).
pub fn event(id: &str, kind: &str, object: Value) -> String {
    json!({
        "id": id,
        "object": "event",
        "api_version": "2025-09-30.clover",
        "created": now_secs(),
        "data": { "object": object, "previous_attributes": {} },
        "livemode": false,
        "pending_webhooks": 1,
        "request": { "id": null, "idempotency_key": null },
        "type": kind,
        "some_field_added_next_year": { "nested": [1, 2, 3] }
    })
    .to_string()
}

/// A charge as `charge.refunded` carries it.
pub fn charge(payment_intent: &str, amount: i64, amount_refunded: i64) -> Value {
    json!({
        "id": format!("ch_{}", &payment_intent[3..]),
        "object": "charge",
        "amount": amount,
        "amount_refunded": amount_refunded,
        "currency": "usd",
        "payment_intent": payment_intent,
        "refunded": amount_refunded >= amount,
        "status": "succeeded",
    })
}

/// A dispute as `charge.dispute.*` carries it.
pub fn dispute(id: &str, payment_intent: &str, amount: i64, status: &str) -> Value {
    json!({
        "id": id,
        "object": "dispute",
        "amount": amount,
        "charge": format!("ch_{}", &payment_intent[3..]),
        "currency": "usd",
        "payment_intent": payment_intent,
        "reason": "fraudulent",
        "status": status,
    })
}

/// Signs `body` as Stripe does, `age_secs` ago.
pub fn signature(body: &str, secret: &str, age_secs: i64) -> String {
    tollgate::domain::stripe_signature::sign(body.as_bytes(), secret, now_secs() - age_secs)
}

/// Delivers an event to Tollgate's webhook with a good signature; the status and JSON answer.
pub async fn deliver(app: &TestApp, body: &str) -> (u16, Value) {
    deliver_signed(app, body, &signature(body, WEBHOOK_SECRET, 0)).await
}

pub async fn deliver_signed(app: &TestApp, body: &str, signature: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(app.url("/stripe/webhook"))
        .header("content-type", "application/json")
        .header("stripe-signature", signature)
        .body(body.to_string())
        .send()
        .await
        .expect("webhook reachable");
    let status = response.status().as_u16();
    let json = response.json().await.unwrap_or(Value::Null);
    (status, json)
}
