//! Stripe top-ups end to end against a stand-in for Stripe: the Checkout Session Tollgate asks
//! for, Stripe's signed events applied exactly once whatever order, repetition or concurrency
//! they come in, refunds and disputes taking back their share, reconciliation finding what a
//! lost webhook did not say, and the ledger accounting for every change.

use serde_json::{Value, json};

use crate::helpers::stripe::{
    self, FakeStripe, WEBHOOK_SECRET, charge, deliver, deliver_signed, dispute, event, signature,
};
use crate::helpers::{Api, Browser, CLI, TestApp, admin_token, db_test};
use tollgate::domain::kinds::OrderStatus;
use tollgate::service::db::Value as DbValue;
use tollgate::service::db::orders::OrderRow;
use tollgate::service::{self, ServiceError};

const PASSWORD: &str = "correct horse battery";

async fn app_with_stripe(db: crate::helpers::TestDb) -> (TestApp, FakeStripe) {
    let app = TestApp::spawn(db).await;
    let fake = FakeStripe::start().await;
    fake.configure(&app).await;
    (app, fake)
}

fn key(n: u32) -> String {
    format!("test-request-key-{n:08}")
}

/// Starts a top-up of `usd` for `username`, as the wallet's pay button does.
async fn start(app: &TestApp, username: &str, usd: &str, n: u32) -> OrderRow {
    let user = app.user(username).await;
    service::topups::start(app.ctx(), &user, usd, &key(n), "https://portal.example")
        .await
        .expect("the top-up starts")
}

async fn order(app: &TestApp, id: i64) -> OrderRow {
    service::topups::find(app.ctx(), &CLI, id).await.unwrap()
}

async fn assert_books_balance(app: &TestApp) {
    let check = service::ledger::check(app.ctx(), &CLI).await.unwrap();
    assert!(check.discrepancies.is_empty(), "{:?}", check.discrepancies);
}

fn completed(event_id: &str, session: &Value) -> String {
    event(event_id, "checkout.session.completed", session.clone())
}

db_test! {
    /// The Checkout Session carries the quote: one line of the exact price in the site's
    /// currency, the order id as client_reference_id and metadata (with the site's id), return
    /// addresses under the public URL, an expiry, and an idempotency key naming the site and
    /// the order; the same form sent twice makes one order and one session. Zero-decimal
    /// currencies are sent in whole units.
    async fn checkout_sessions_carry_the_quote(db: TestDb) {
        let (app, fake) = app_with_stripe(db).await;
        app.create_user_with_email("ana", "ana@example.com", PASSWORD).await;
        let before = tollgate::service::db::now_ms() / 1000;
        let first = start(&app, "ana", "10", 1).await;
        assert_eq!(first.status, OrderStatus::Pending);
        assert_eq!((first.amount, first.currency.as_str(), first.quota), (1000, "usd", 5_000_000));
        let session_id = first.session_id.clone().expect("a session");
        assert!(first.checkout_url.as_deref().unwrap().ends_with(&format!("/pay/{session_id}")));
        let sent = fake.received();
        assert_eq!(sent.len(), 1);
        let sent = &sent[0];
        let id = first.id.to_string();
        assert_eq!(sent.authorization.as_deref(), Some(format!("Bearer {}", stripe::SECRET_KEY).as_str()));
        assert_eq!(sent.field("mode"), Some("payment"));
        assert_eq!(sent.field("client_reference_id"), Some(id.as_str()));
        assert_eq!(sent.field("metadata[order_id]"), Some(id.as_str()));
        // On the payment too, so its charges (refunds) name the order.
        assert_eq!(sent.field("payment_intent_data[metadata][order_id]"), Some(id.as_str()));
        let site = service::site_values::site_id(app.ctx()).await.unwrap();
        assert_eq!(site.len(), 16, "{site}");
        assert!(site.bytes().all(|b| b.is_ascii_hexdigit()), "{site}");
        assert_eq!(sent.field("metadata[site_id]"), Some(site.as_str()));
        assert_eq!(sent.field("payment_intent_data[metadata][site_id]"), Some(site.as_str()));
        assert_eq!(sent.field("locale"), Some("en"));
        assert_eq!(sent.field("line_items[0][price_data][unit_amount]"), Some("1000"));
        assert_eq!(sent.field("line_items[0][price_data][currency]"), Some("usd"));
        assert_eq!(sent.field("line_items[0][quantity]"), Some("1"));
        assert_eq!(sent.field("customer_email"), Some("ana@example.com"));
        assert_eq!(
            sent.field("success_url"),
            Some(format!("https://portal.example/wallet/orders/{id}").as_str())
        );
        assert!(sent.field("cancel_url").unwrap().starts_with("https://portal.example/wallet/orders/"));
        let expires: i64 = sent.field("expires_at").unwrap().parse().unwrap();
        assert!((before + 3590..=before + 3700).contains(&expires), "{expires}");
        assert_eq!(sent.idempotency_key.as_deref(), Some(format!("tollgate-{site}-order-{id}").as_str()));

        // A double click: the same order and session, no second call to Stripe.
        let again = start(&app, "ana", "10", 1).await;
        assert_eq!((again.id, again.session_id.clone()), (first.id, Some(session_id)));
        assert_eq!(fake.received().len(), 1);

        // Yen have no minor unit: $3 at 150.5 yen is 451.5, rounded to 452, sent as 452.
        app.set_option("topup_currency", "jpy").await;
        app.set_option("topup_price_per_usd", "150.5").await;
        let yen = start(&app, "ana", "3", 2).await;
        assert_eq!((yen.amount, yen.currency.as_str()), (452, "jpy"));
        let sent = fake.received().pop().unwrap();
        assert_eq!(sent.field("line_items[0][price_data][unit_amount]"), Some("452"));
        assert_eq!(sent.field("line_items[0][price_data][currency]"), Some("jpy"));

        // Bonus tiers add to the balance, not the price.
        app.set_option("topup_currency", "usd").await;
        app.set_option("topup_price_per_usd", "1").await;
        app.set_option("topup_bonus_tiers", "100:10").await;
        let big = start(&app, "ana", "100", 3).await;
        assert_eq!((big.amount, big.quota, big.bonus), (10_000, 55_000_000, 5_000_000));
    }
}

db_test! {
    /// Stripe's refusals reach the person as a clear message and close the order; amounts out
    /// of bounds, too many open orders, a daily cap, a balance that would overflow and a site
    /// without Stripe are refused before any payment is asked for.
    async fn checkout_refusals_say_why(db: TestDb) {
        let (app, fake) = app_with_stripe(db).await;
        app.create_user("bo", "0").await;
        fake.fail_next(400, "Your account cannot currently make live charges.");
        let user = app.user("bo").await;
        let refused = service::topups::start(app.ctx(), &user, "10", &key(1), "https://p.example")
            .await
            .unwrap_err();
        let text = refused.message().unwrap().render(tollgate::i18n::Lang::En);
        assert!(text.contains("Stripe refused the payment (Your account cannot currently make live charges.)."), "{text}");
        let orders = service::topups::list(app.ctx(), &CLI, Some("bo"), None, 10).await.unwrap();
        assert_eq!(orders[0].status, OrderStatus::Closed);
        assert!(orders[0].note.contains("live charges"), "{}", orders[0].note);

        let field_of = |e: ServiceError| e.fields()[0].field;
        for amount in ["0.5", "1000.01", "abc", ""] {
            let e = service::topups::start(app.ctx(), &user, amount, &key(2), "https://p.example").await.unwrap_err();
            assert_eq!(field_of(e), "amount_usd", "{amount}");
        }
        app.set_option("topup_max_pending_per_user", "2").await;
        start(&app, "bo", "5", 3).await;
        start(&app, "bo", "5", 4).await;
        let e = service::topups::start(app.ctx(), &user, "5", &key(5), "https://p.example").await.unwrap_err();
        assert!(e.to_string().contains("unpaid"), "{e}");
        app.set_option("topup_max_pending_per_user", "0").await;
        app.set_option("topup_daily_cap_usd", "15").await;
        let e = service::topups::start(app.ctx(), &user, "6", &key(6), "https://p.example").await.unwrap_err();
        assert!(e.to_string().contains("$5"), "{e}");
        app.set_option("topup_daily_cap_usd", "0").await;

        app.db.write(async |tx| tx.execute("UPDATE users SET quota = ? WHERE username = 'bo'", &[DbValue::Int(i64::MAX - 10)]).await).await.unwrap();
        let user = app.user("bo").await;
        let e = service::topups::start(app.ctx(), &user, "5", &key(7), "https://p.example").await.unwrap_err();
        assert_eq!(field_of(e), "amount_usd");
        app.db.write(async |tx| tx.execute("UPDATE users SET quota = 0 WHERE username = 'bo'", &[]).await).await.unwrap();
        let user = app.user("bo").await;

        app.set_option("stripe_secret_key", "sk_test_wrong").await;
        let e = service::topups::start(app.ctx(), &user, "5", &key(8), "https://p.example").await.unwrap_err();
        assert!(e.to_string().contains("Invalid API Key"), "{e}");
        app.set_option("stripe_secret_key", "").await;
        let e = service::topups::start(app.ctx(), &user, "5", &key(9), "https://p.example").await.unwrap_err();
        assert!(matches!(e, ServiceError::Forbidden(_)), "{e}");
        assert_eq!(app.user("bo").await.quota, 0);
        assert_books_balance(&app).await;
    }
}

db_test! {
    /// Only deliveries signed with the endpoint's secret, recently, are applied: unsigned,
    /// badly signed, stale, malformed and oversized ones get 400 (413) and change nothing; a
    /// site without the secret refuses everything. A good one credits, and its answer says so.
    async fn the_webhook_believes_only_good_signatures(db: TestDb) {
        let (app, fake) = app_with_stripe(db).await;
        app.create_user("cy", "0").await;
        let order = start(&app, "cy", "10", 1).await;
        let session = fake.pay(order.session_id.as_deref().unwrap());
        let body = completed("evt_sig_1", &session);

        let unsigned = reqwest::Client::new().post(app.url("/stripe/webhook")).body(body.clone()).send().await.unwrap();
        assert_eq!(unsigned.status().as_u16(), 400);
        let (status, answer) = deliver_signed(&app, &body, &signature(&body, "whsec_other", 0)).await;
        assert_eq!(status, 400, "{answer}");
        assert!(answer["error"]["message"].as_str().unwrap().contains("no signature matches"));
        let (status, _) = deliver_signed(&app, &body, &signature(&body, WEBHOOK_SECRET, 600)).await;
        assert_eq!(status, 400);
        let tampered = body.replace("\"paid\"", "\"paid\" ");
        let (status, _) = deliver_signed(&app, &tampered, &signature(&body, WEBHOOK_SECRET, 0)).await;
        assert_eq!(status, 400);
        let (status, _) = deliver(&app, "not json").await;
        assert_eq!(status, 400);
        let huge = "x".repeat(600 * 1024);
        let (status, _) = deliver(&app, &huge).await;
        assert_eq!(status, 413);
        assert_eq!(app.user("cy").await.quota, 0);

        app.set_option("stripe_webhook_secret", "").await;
        let (status, answer) = deliver_signed(&app, &body, &signature(&body, "", 0)).await;
        assert_eq!(status, 400, "{answer}");
        assert_eq!(app.user("cy").await.quota, 0);
        app.set_option("stripe_webhook_secret", WEBHOOK_SECRET).await;

        let (status, answer) = deliver(&app, &body).await;
        assert_eq!((status, answer["outcome"].as_str()), (200, Some("credited")), "{answer}");
        assert_eq!(app.user("cy").await.quota, 5_000_000);
        let paid = self::order(&app, order.id).await;
        assert_eq!(paid.status, OrderStatus::Paid);
        assert_eq!(paid.payment_intent.as_deref(), session["payment_intent"].as_str());
        // A type Tollgate does not use: 200, ignored.
        let other = event("evt_sig_2", "customer.created", json!({ "id": "cus_1" }));
        let (status, answer) = deliver(&app, &other).await;
        assert_eq!((status, answer["outcome"].as_str()), (200, Some("ignored")));
        assert_books_balance(&app).await;
    }
}

db_test! {
    /// One paid event delivered twice, then ten times at once, and the same payment reported
    /// by a second event type, credit the order once: one ledger row, one balance change.
    async fn a_payment_is_credited_once_however_often_it_is_reported(db: TestDb) {
        let (app, fake) = app_with_stripe(db).await;
        app.create_user("dee", "0").await;
        let order = start(&app, "dee", "10", 1).await;
        let session = fake.pay(order.session_id.as_deref().unwrap());
        let body = completed("evt_once_1", &session);
        let (_, first) = deliver(&app, &body).await;
        let (_, second) = deliver(&app, &body).await;
        assert_eq!(first["outcome"], "credited");
        assert_eq!(second["outcome"], "duplicate");

        let other = start(&app, "dee", "20", 2).await;
        let session = fake.pay(other.session_id.as_deref().unwrap());
        let body = completed("evt_once_2", &session);
        let deliveries = (0..10).map(|_| {
            let body = body.clone();
            let app = &app;
            async move { deliver(app, &body).await }
        });
        let answers = futures::future::join_all(deliveries).await;
        let credited = answers.iter().filter(|(s, a)| *s == 200 && a["outcome"] == "credited").count();
        let repeats = answers.iter().filter(|(s, a)| *s == 200 && a["outcome"] == "duplicate").count();
        assert_eq!((credited, repeats), (1, 9), "{answers:?}");
        let late = event("evt_once_3", "checkout.session.async_payment_succeeded", session);
        let (_, answer) = deliver(&app, &late).await;
        assert_eq!(answer["outcome"], "already_paid");
        assert_eq!(app.user("dee").await.quota, 15_000_000);
        let rows: i64 = app.db.fetch_all_with("SELECT COUNT(*) AS n FROM ledger WHERE kind = 'topup'", &[]).await.unwrap()
            .first().map(|r| sqlx::Row::try_get(r, "n").unwrap()).unwrap();
        assert_eq!(rows, 2);
        assert_books_balance(&app).await;
    }
}

db_test! {
    /// Events out of order: an expiry after the payment leaves the order paid; a payment after
    /// the order was closed still credits it; a failed delayed payment closes a pending one.
    async fn events_out_of_order_settle_right(db: TestDb) {
        let (app, fake) = app_with_stripe(db).await;
        app.create_user("eli", "0").await;
        let paid = start(&app, "eli", "10", 1).await;
        let session = fake.pay(paid.session_id.as_deref().unwrap());
        deliver(&app, &completed("evt_ooo_1", &session)).await;
        let expired = event("evt_ooo_2", "checkout.session.expired", session);
        let (_, answer) = deliver(&app, &expired).await;
        assert_eq!(answer["outcome"], "not_pending");
        assert_eq!(order(&app, paid.id).await.status, OrderStatus::Paid);

        let late = start(&app, "eli", "5", 2).await;
        let id = late.session_id.clone().unwrap();
        let (_, answer) = deliver(&app, &event("evt_ooo_3", "checkout.session.expired", fake.expire(&id))).await;
        assert_eq!(answer["outcome"], "closed");
        assert_eq!(order(&app, late.id).await.status, OrderStatus::Closed);
        let (_, answer) = deliver(&app, &completed("evt_ooo_4", &fake.pay(&id))).await;
        assert_eq!(answer["outcome"], "credited");
        assert_eq!(order(&app, late.id).await.status, OrderStatus::Paid);

        let failing = start(&app, "eli", "5", 3).await;
        let session = fake.session(failing.session_id.as_deref().unwrap());
        let (_, answer) = deliver(&app, &completed("evt_ooo_5", &session)).await;
        assert_eq!(answer["outcome"], "awaiting_payment");
        let (_, answer) = deliver(&app, &event("evt_ooo_6", "checkout.session.async_payment_failed", session)).await;
        assert_eq!(answer["outcome"], "closed");
        assert_eq!(app.user("eli").await.quota, 7_500_000);

        // A refund reported before the payment was applied waits (5xx) and applies after it.
        let quick = start(&app, "eli", "10", 4).await;
        let session = fake.pay(quick.session_id.as_deref().unwrap());
        let mut refunded = charge(session["payment_intent"].as_str().unwrap(), 1000, 1000);
        let site = service::site_values::site_id(app.ctx()).await.unwrap();
        refunded["metadata"] = json!({ "order_id": quick.id.to_string(), "site_id": site });
        let refund = event("evt_ooo_7", "charge.refunded", refunded);
        assert_eq!(deliver(&app, &refund).await.0, 500);
        deliver(&app, &completed("evt_ooo_8", &session)).await;
        let (status, answer) = deliver(&app, &refund).await;
        assert_eq!((status, answer["outcome"].as_str()), (200, Some("refunded")));
        assert_eq!(app.user("eli").await.quota, 7_500_000);
        // Without the order id on the charge, Stripe is asked which session the payment was
        // made through: ours and not applied yet, so it waits too.
        let unnamed = start(&app, "eli", "10", 5).await;
        let session = fake.pay(unnamed.session_id.as_deref().unwrap());
        let refund = event("evt_ooo_10", "charge.refunded", charge(session["payment_intent"].as_str().unwrap(), 1000, 400));
        assert_eq!(deliver(&app, &refund).await.0, 500);
        assert!(fake.received().iter().any(|r| r.path == "/v1/checkout/sessions?list"));
        deliver(&app, &completed("evt_ooo_11", &session)).await;
        let (status, answer) = deliver(&app, &refund).await;
        assert_eq!((status, answer["outcome"].as_str()), (200, Some("refunded")));
        assert_eq!(app.user("eli").await.quota, 7_500_000 + 3_000_000);
        // A charge of another product on the same Stripe account is not ours: 200, ignored.
        let foreign = event("evt_ooo_9", "charge.refunded", charge("pi_someone_else", 500, 500));
        let (status, answer) = deliver(&app, &foreign).await;
        assert_eq!((status, answer["outcome"].as_str()), (200, Some("no_order")));
        assert_books_balance(&app).await;
    }
}

db_test! {
    /// A payment that does not match its quote (amount or currency) is held, not credited;
    /// an administrator credits it once after checking, through the CLI or the API.
    async fn a_mismatched_payment_is_held_for_an_administrator(db: TestDb) {
        let (app, fake) = app_with_stripe(db).await;
        app.create_user("fay", "0").await;
        let first = start(&app, "fay", "10", 1).await;
        let mut session = fake.pay(first.session_id.as_deref().unwrap());
        session["amount_total"] = json!(100);
        let (_, answer) = deliver(&app, &completed("evt_mm_1", &session)).await;
        assert_eq!(answer["outcome"], "held");
        let held = order(&app, first.id).await;
        assert_eq!(held.status, OrderStatus::Held);
        assert!(held.note.contains("paid 100 usd, quoted 1000 usd"), "{}", held.note);
        assert_eq!(app.user("fay").await.quota, 0);

        let second = start(&app, "fay", "10", 2).await;
        let mut session = fake.pay(second.session_id.as_deref().unwrap());
        session["currency"] = json!("eur");
        let (_, answer) = deliver(&app, &completed("evt_mm_2", &session)).await;
        assert_eq!(answer["outcome"], "held");

        let e = service::topups::credit(app.ctx(), &CLI, first.id, " ", "http://x").await.unwrap_err();
        assert_eq!(e.fields()[0].field, "reason");
        let credited = service::topups::credit(app.ctx(), &CLI, first.id, "checked on Stripe", "http://x").await.unwrap();
        assert_eq!((credited.status, credited.credited), (OrderStatus::Paid, 5_000_000));
        assert!(service::topups::credit(app.ctx(), &CLI, first.id, "again", "http://x").await.is_err());

        let api = Api { token: admin_token(&app, "root", "root").await, app: &app };
        let (status, body) = api.post(&format!("/api/orders/{}/credit", second.id), json!({ "reason": "eur is fine" })).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["order"]["status"], "paid");
        let (status, _) = api.post(&format!("/api/orders/{}/credit", second.id), json!({ "reason": "x" })).await;
        assert_eq!(status, 409);
        assert_eq!(app.user("fay").await.quota, 10_000_000);

        // A held payment refunded on Stripe's side is not credited afterwards.
        let third = start(&app, "fay", "10", 3).await;
        let mut session = fake.pay(third.session_id.as_deref().unwrap());
        session["amount_total"] = json!(1);
        deliver(&app, &completed("evt_mm_3", &session)).await;
        let intent = session["payment_intent"].as_str().unwrap();
        deliver(&app, &event("evt_mm_4", "charge.refunded", charge(intent, 1, 1))).await;
        let (status, body) = api.post(&format!("/api/orders/{}/credit", third.id), json!({ "reason": "x" })).await;
        assert_eq!(status, 409, "{body}");
        assert!(body["error"]["message"].as_str().unwrap().contains("refunded"), "{body}");
        assert_eq!(app.user("fay").await.quota, 10_000_000);
        assert_books_balance(&app).await;
    }
}

db_test! {
    /// Refunds report a cumulative amount: two partial refunds then the rest take back exactly
    /// the credit, an older report changes nothing, and the balance may go below zero, which
    /// stops the account until it is topped up. Partial refunds reported at once, in any
    /// order, take back exactly the same.
    async fn refunds_take_back_their_share_once(db: TestDb) {
        let (app, fake) = app_with_stripe(db).await;
        app.create_user("gus", "0").await;
        let order = start(&app, "gus", "10", 1).await;
        let session = fake.pay(order.session_id.as_deref().unwrap());
        let intent = session["payment_intent"].as_str().unwrap().to_string();
        deliver(&app, &completed("evt_rf_0", &session)).await;
        service::users::change_quota(app.ctx(), &CLI, "gus", service::users::QuotaChange {
            usd: Some("-8".into()), reason: Some("spent elsewhere".into()), ..Default::default()
        }).await.unwrap();
        assert_eq!(app.user("gus").await.quota, 1_000_000);

        let refund = |id: &str, cumulative: i64| event(id, "charge.refunded", charge(&intent, 1000, cumulative));
        let (_, a) = deliver(&app, &refund("evt_rf_1", 300)).await;
        assert_eq!(a["outcome"], "refunded");
        assert_eq!(app.user("gus").await.quota, 1_000_000 - 1_500_000);
        let (_, a) = deliver(&app, &refund("evt_rf_2", 600)).await;
        assert_eq!(a["outcome"], "refunded");
        let (_, a) = deliver(&app, &refund("evt_rf_3", 300)).await;
        assert_eq!(a["outcome"], "already_refunded");
        let (_, a) = deliver(&app, &refund("evt_rf_4", 1000)).await;
        assert_eq!(a["outcome"], "refunded");
        let gus = app.user("gus").await;
        assert_eq!(gus.quota, 1_000_000 - 5_000_000);
        let done = self::order(&app, order.id).await;
        assert_eq!((done.refunded, done.refund_taken), (1000, 5_000_000));

        // A negative balance refuses relay requests.
        let upstream = crate::helpers::upstream::FakeUpstream::chat().await;
        app.add_channel("main", &upstream, "gpt-4o-mini").await;
        app.price("gpt-4o-mini", "0.15", "0.60").await;
        let key = app.key_for("gus").await;
        app.reload().await;
        let refused = app.chat(&key, crate::helpers::chat_body("gpt-4o-mini")).await;
        crate::helpers::expect_error(refused, 429, "insufficient_quota").await;
        assert_eq!(upstream.request_count(), 0);

        // Three partial refunds reported at the same moment, newest first or not.
        let other = start(&app, "gus", "10", 2).await;
        let session = fake.pay(other.session_id.as_deref().unwrap());
        let intent2 = session["payment_intent"].as_str().unwrap().to_string();
        deliver(&app, &completed("evt_rf_5", &session)).await;
        let bodies = [(700, "evt_rf_6"), (250, "evt_rf_7"), (1000, "evt_rf_8"), (250, "evt_rf_9")]
            .map(|(amount, id)| event(id, "charge.refunded", charge(&intent2, 1000, amount)));
        let answers = futures::future::join_all(bodies.iter().map(|b| deliver(&app, b))).await;
        assert!(answers.iter().all(|(s, _)| *s == 200), "{answers:?}");
        let done = self::order(&app, other.id).await;
        assert_eq!((done.refunded, done.refund_taken), (1000, 5_000_000));
        assert_eq!(app.user("gus").await.quota, 1_000_000 - 5_000_000);
        assert_books_balance(&app).await;
    }
}

db_test! {
    /// A dispute takes the disputed share back while it is open; a won dispute gives it back
    /// once, a lost one keeps it taken.
    async fn disputes_take_back_and_give_back(db: TestDb) {
        let (app, fake) = app_with_stripe(db).await;
        app.create_user("hal", "0").await;
        let won = start(&app, "hal", "10", 1).await;
        let session = fake.pay(won.session_id.as_deref().unwrap());
        let intent = session["payment_intent"].as_str().unwrap().to_string();
        deliver(&app, &completed("evt_dp_0", &session)).await;
        let (_, a) = deliver(&app, &event("evt_dp_1", "charge.dispute.created", dispute("dp_1", &intent, 1000, "needs_response"))).await;
        assert_eq!(a["outcome"], "disputed");
        assert_eq!(app.user("hal").await.quota, 0);
        let (_, a) = deliver(&app, &event("evt_dp_1b", "charge.dispute.created", dispute("dp_1", &intent, 1000, "needs_response"))).await;
        assert_eq!(a["outcome"], "already_disputed");
        let (_, a) = deliver(&app, &event("evt_dp_2", "charge.dispute.closed", dispute("dp_1", &intent, 1000, "won"))).await;
        assert_eq!(a["outcome"], "dispute_won");
        let (_, a) = deliver(&app, &event("evt_dp_3", "charge.dispute.closed", dispute("dp_1", &intent, 1000, "won"))).await;
        assert_eq!(a["outcome"], "already_won");
        assert_eq!(app.user("hal").await.quota, 5_000_000);

        let lost = start(&app, "hal", "10", 2).await;
        let session = fake.pay(lost.session_id.as_deref().unwrap());
        let intent = session["payment_intent"].as_str().unwrap().to_string();
        deliver(&app, &completed("evt_dp_4", &session)).await;
        deliver(&app, &event("evt_dp_5", "charge.dispute.created", dispute("dp_2", &intent, 400, "needs_response"))).await;
        let (_, a) = deliver(&app, &event("evt_dp_6", "charge.dispute.closed", dispute("dp_2", &intent, 400, "lost"))).await;
        assert_eq!(a["outcome"], "dispute_lost");
        assert_eq!(app.user("hal").await.quota, 5_000_000 + 5_000_000 - 2_000_000);
        let shown = order(&app, lost.id).await;
        assert_eq!((shown.disputed, shown.dispute_taken), (400, 2_000_000));

        // An inquiry takes the credit back; refunding the payment meanwhile takes nothing
        // more; the inquiry closing without a chargeback gives nothing back (it was refunded).
        let inquired = start(&app, "hal", "10", 3).await;
        let session = fake.pay(inquired.session_id.as_deref().unwrap());
        let intent = session["payment_intent"].as_str().unwrap().to_string();
        deliver(&app, &completed("evt_dp_7", &session)).await;
        let before = app.user("hal").await.quota;
        deliver(&app, &event("evt_dp_8", "charge.dispute.created", dispute("dp_3", &intent, 1000, "warning_needs_response"))).await;
        assert_eq!(app.user("hal").await.quota, before - 5_000_000);
        let (_, a) = deliver(&app, &event("evt_dp_9", "charge.refunded", charge(&intent, 1000, 1000))).await;
        assert_eq!(a["outcome"], "refunded");
        assert_eq!(app.user("hal").await.quota, before - 5_000_000);
        let (_, a) = deliver(&app, &event("evt_dp_10", "charge.dispute.closed", dispute("dp_3", &intent, 1000, "warning_closed"))).await;
        assert_eq!(a["outcome"], "dispute_won");
        assert_eq!(app.user("hal").await.quota, before - 5_000_000);

        // Closed before Stripe's `created` was applied: 5xx until it has been.
        let early = start(&app, "hal", "10", 4).await;
        let session = fake.pay(early.session_id.as_deref().unwrap());
        let intent = session["payment_intent"].as_str().unwrap().to_string();
        deliver(&app, &completed("evt_dp_11", &session)).await;
        let closed = event("evt_dp_12", "charge.dispute.closed", dispute("dp_4", &intent, 1000, "won"));
        assert_eq!(deliver(&app, &closed).await.0, 500);
        deliver(&app, &event("evt_dp_13", "charge.dispute.created", dispute("dp_4", &intent, 1000, "needs_response"))).await;
        let (status, a) = deliver(&app, &closed).await;
        assert_eq!((status, a["outcome"].as_str()), (200, Some("dispute_won")));
        assert_eq!(app.user("hal").await.quota, before);
        assert_books_balance(&app).await;
    }
}

db_test! {
    /// A closed dispute gives back exactly what it took when it opened, whatever amount the
    /// closing event carries: more, or less.
    async fn a_won_dispute_gives_back_what_it_took(db: TestDb) {
        let (app, fake) = app_with_stripe(db).await;
        app.create_user("ida", "0").await;
        let mut before = 0;
        for (n, opened, closing) in [(1, 1000, 400), (2, 600, 1000)] {
            let paid = start(&app, "ida", "10", n).await;
            let session = fake.pay(paid.session_id.as_deref().unwrap());
            let intent = session["payment_intent"].as_str().unwrap().to_string();
            deliver(&app, &completed(&format!("evt_back_{n}"), &session)).await;
            before += 5_000_000;
            assert_eq!(app.user("ida").await.quota, before);
            let id = format!("dp_back_{n}");
            let (_, a) = deliver(&app, &event(&format!("evt_back_{n}a"), "charge.dispute.created", dispute(&id, &intent, opened, "needs_response"))).await;
            assert_eq!(a["outcome"], "disputed");
            // $10 paid 1000 cents for 5,000,000 units: the disputed share is taken back.
            let taken = 5_000 * opened;
            assert_eq!(app.user("ida").await.quota, before - taken);
            let (_, a) = deliver(&app, &event(&format!("evt_back_{n}b"), "charge.dispute.closed", dispute(&id, &intent, closing, "won"))).await;
            assert_eq!(a["outcome"], "dispute_won");
            assert_eq!(app.user("ida").await.quota, before, "the balance is back where it was");
            let shown = order(&app, paid.id).await;
            assert_eq!((shown.disputed, shown.dispute_taken), (0, 0));
            let entries = service::ledger::entries(app.ctx(), &CLI, "ida", 100).await.unwrap();
            let moved = |key: &str| entries.iter().find(|e| e.idempotency_key == key).unwrap().amount;
            assert_eq!(moved(&format!("dispute:{id}")), -taken);
            assert_eq!(moved(&format!("dispute-won:{id}")), taken);
        }
        assert_books_balance(&app).await;
    }
}

db_test! {
    /// The site's id is made once and kept in the database: two servers on one database
    /// (racing to make it) read the same, and both name it in the idempotency keys they send
    /// Stripe (`tollgate-SITE-order-ID`).
    async fn every_node_names_the_same_site(db: TestDb) {
        let (app, fake) = app_with_stripe(db).await;
        let other = app.spawn_sibling().await;
        let (mine, theirs) = futures::future::join(
            service::site_values::site_id(app.ctx()),
            service::site_values::site_id(other.ctx()),
        )
        .await;
        let site = mine.unwrap();
        assert_eq!(theirs.unwrap(), site);
        // Any number of writers racing on a new name store one value.
        let racers = (0..8).map(|n| {
            let db = if n % 2 == 0 { app.db.clone() } else { other.db.clone() };
            async move { tollgate::service::db::site_values::get_or_create(&db, "race-test", &format!("value-{n}")).await }
        });
        let values: Vec<String> = futures::future::join_all(racers).await.into_iter().map(Result::unwrap).collect();
        assert!(values.iter().all(|v| *v == values[0]), "{values:?}");

        app.create_user("jo", "0").await;
        let first = start(&app, "jo", "10", 1).await;
        let user = app.user("jo").await;
        let second = service::topups::start(other.ctx(), &user, "5", &key(2), "https://portal.example").await.unwrap();
        let keys: Vec<String> = fake.received().into_iter().filter_map(|r| r.idempotency_key).collect();
        assert_eq!(keys, [format!("tollgate-{site}-order-{}", first.id), format!("tollgate-{site}-order-{}", second.id)]);
        // A third server started later reads the stored id.
        let third = app.spawn_sibling().await;
        assert_eq!(service::site_values::site_id(third.ctx()).await.unwrap(), site);
    }
}

db_test! {
    /// Orders made before sites had ids (their sessions' metadata names no site) are still
    /// credited, refunded and disputed by their session and payment; an event naming another
    /// site, or no site, is not taken for this site's order of the same number.
    async fn orders_from_before_site_ids_still_match(db: TestDb) {
        let (app, fake) = app_with_stripe(db).await;
        app.create_user("kim", "0").await;
        let old = start(&app, "kim", "10", 1).await;
        // As Stripe holds a session made by an earlier version: no site in its metadata, and
        // none on its payment.
        let mut session = fake.pay(old.session_id.as_deref().unwrap());
        session["metadata"] = json!({ "order_id": old.id.to_string() });
        let (_, a) = deliver(&app, &completed("evt_old_1", &session)).await;
        assert_eq!(a["outcome"], "credited");
        assert_eq!(app.user("kim").await.quota, 5_000_000);
        let intent = session["payment_intent"].as_str().unwrap().to_string();
        let mut refunded = charge(&intent, 1000, 500);
        refunded["metadata"] = json!({ "order_id": old.id.to_string() });
        let (_, a) = deliver(&app, &event("evt_old_2", "charge.refunded", refunded)).await;
        assert_eq!(a["outcome"], "refunded");
        assert_eq!(app.user("kim").await.quota, 2_500_000);

        // A session of another site with the same order number, or of a site without ids,
        // whose id this site does not know: not this site's order.
        let pending = start(&app, "kim", "10", 2).await;
        for (n, metadata) in [
            (3, json!({ "order_id": pending.id.to_string(), "site_id": "0000000000000000" })),
            (4, json!({ "order_id": pending.id.to_string() })),
        ] {
            let mut foreign = fake.session(pending.session_id.as_deref().unwrap());
            foreign["id"] = json!(format!("cs_test_elsewhere_{n}"));
            foreign["status"] = json!("complete");
            foreign["payment_status"] = json!("paid");
            foreign["payment_intent"] = json!(format!("pi_elsewhere_{n}"));
            foreign["client_reference_id"] = json!(pending.id.to_string());
            foreign["metadata"] = metadata;
            let (status, a) = deliver(&app, &completed(&format!("evt_old_{n}"), &foreign)).await;
            assert_eq!((status, a["outcome"].as_str()), (200, Some("no_order")), "{a}");
            // Nor a charge of theirs naming the same order.
            let mut theirs = charge(&format!("pi_elsewhere_{n}"), 1000, 1000);
            theirs["metadata"] = foreign["metadata"].clone();
            let (status, a) = deliver(&app, &event(&format!("evt_old_{n}r"), "charge.refunded", theirs)).await;
            assert_eq!((status, a["outcome"].as_str()), (200, Some("no_order")), "{a}");
        }
        assert_eq!(order(&app, pending.id).await.status, OrderStatus::Pending);
        // This site's own session for it names the site, and credits it.
        let session = fake.pay(pending.session_id.as_deref().unwrap());
        assert_eq!(session["metadata"]["site_id"], json!(service::site_values::site_id(app.ctx()).await.unwrap()));
        let (_, a) = deliver(&app, &completed("evt_old_5", &session)).await;
        assert_eq!(a["outcome"], "credited");
        assert_eq!(app.user("kim").await.quota, 7_500_000);
        assert_books_balance(&app).await;
    }
}

db_test! {
    /// A failure inside Tollgate answers 5xx and records nothing, so Stripe's retry of the same
    /// event credits it then.
    async fn an_internal_failure_is_retried_to_success(db: TestDb) {
        let (app, fake) = app_with_stripe(db).await;
        app.create_user("ivy", "0").await;
        let order = start(&app, "ivy", "10", 1).await;
        let body = completed("evt_fail_1", &fake.pay(order.session_id.as_deref().unwrap()));
        app.db.write(async |tx| tx.execute("ALTER TABLE ledger RENAME TO ledger_away", &[]).await).await.unwrap();
        let (status, answer) = deliver(&app, &body).await;
        app.db.write(async |tx| tx.execute("ALTER TABLE ledger_away RENAME TO ledger", &[]).await).await.unwrap();
        assert_eq!(status, 500, "{answer}");
        assert_eq!(app.user("ivy").await.quota, 0);
        assert_eq!(self::order(&app, order.id).await.status, OrderStatus::Pending);
        let (status, answer) = deliver(&app, &body).await;
        assert_eq!((status, answer["outcome"].as_str()), (200, Some("credited")), "{answer}");
        assert_eq!(app.user("ivy").await.quota, 5_000_000);
        assert_books_balance(&app).await;
    }
}

db_test! {
    /// Reconciliation asks Stripe about pending orders: a paid one whose webhook was lost is
    /// credited (and the late webhook then changes nothing), an expired one is closed, an open
    /// one stays. An order whose session was made but never stored (the server stopped in
    /// between) is found by the order id in the session, by the webhook or by reconciliation.
    async fn reconciliation_finds_what_webhooks_missed(db: TestDb) {
        let (app, fake) = app_with_stripe(db).await;
        app.create_user("jo", "0").await;
        let lost = start(&app, "jo", "10", 1).await;
        let expired = start(&app, "jo", "5", 2).await;
        let open = start(&app, "jo", "5", 3).await;
        let paid_session = fake.pay(lost.session_id.as_deref().unwrap());
        fake.expire(expired.session_id.as_deref().unwrap());
        let report = service::topups::reconcile(app.ctx(), &CLI, 0, "http://x").await.unwrap();
        assert_eq!((report.checked, report.credited, report.closed), (3, 1, 1), "{report:?}");
        assert_eq!(order(&app, lost.id).await.status, OrderStatus::Paid);
        assert_eq!(order(&app, expired.id).await.status, OrderStatus::Closed);
        assert_eq!(order(&app, open.id).await.status, OrderStatus::Pending);
        let (_, a) = deliver(&app, &completed("evt_rc_1", &paid_session)).await;
        assert_eq!(a["outcome"], "already_paid");
        assert_eq!(app.user("jo").await.quota, 5_000_000);

        // Stopped between Stripe making the session and Tollgate storing it.
        let cut = start(&app, "jo", "5", 4).await;
        let session_id = cut.session_id.clone().unwrap();
        app.db.write(async |tx| tx.execute("UPDATE topup_orders SET session_id = NULL, checkout_url = NULL WHERE id = ?", &[DbValue::Int(cut.id)]).await).await.unwrap();
        let (_, a) = deliver(&app, &completed("evt_rc_2", &fake.pay(&session_id))).await;
        assert_eq!(a["outcome"], "credited");
        assert_eq!(order(&app, cut.id).await.session_id.as_deref(), Some(session_id.as_str()));
        assert_eq!(app.user("jo").await.quota, 7_500_000);

        // Through the API, with what Stripe answered recorded on the order.
        let api = Api { token: admin_token(&app, "root", "root").await, app: &app };
        let (status, body) = api.post("/api/orders/reconcile", json!({})).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["checked"], 1);
        let (status, body) = api.get(&format!("/api/orders/{}", cut.id)).await;
        assert_eq!(status, 200);
        assert_eq!(body["order"]["session_id"], session_id.as_str());
        assert_eq!(body["events"][0]["type"], "checkout.session.completed");
        assert_eq!(body["events"][0]["outcome"], "credited");
        let (_, body) = api.get("/api/orders?status=paid&user=jo").await;
        assert_eq!(body["data"].as_array().unwrap().len(), 2);
        let (status, _) = api.get("/api/orders?status=bogus").await;
        assert_eq!(status, 400);
        assert_books_balance(&app).await;
    }
}

db_test! {
    /// An administrator's refund asks Stripe (the payment intent, the share of the price, an
    /// idempotency key); the balance moves only when Stripe reports it.
    async fn admin_refunds_go_through_stripe(db: TestDb) {
        let (app, fake) = app_with_stripe(db).await;
        app.create_user("kim", "0").await;
        let order = start(&app, "kim", "10", 1).await;
        let session = fake.pay(order.session_id.as_deref().unwrap());
        let api = Api { token: admin_token(&app, "root", "root").await, app: &app };
        let (status, _) = api.post(&format!("/api/orders/{}/refund", order.id), json!({ "reason": "asked" })).await;
        assert_eq!(status, 409, "not paid yet");
        deliver(&app, &completed("evt_ar_1", &session)).await;
        let (status, body) = api.post(&format!("/api/orders/{}/refund", order.id), json!({ "usd": "2.5", "reason": "asked" })).await;
        assert_eq!(status, 200, "{body}");
        let sent = fake.received().pop().unwrap();
        assert_eq!(sent.path, "/v1/refunds");
        assert_eq!(sent.field("payment_intent"), session["payment_intent"].as_str());
        assert_eq!(sent.field("amount"), Some("250"));
        assert!(sent.idempotency_key.unwrap().starts_with(&format!("tollgate-refund-{}-", order.id)));
        assert_eq!(app.user("kim").await.quota, 5_000_000);
        let intent = session["payment_intent"].as_str().unwrap();
        deliver(&app, &event("evt_ar_2", "charge.refunded", charge(intent, 1000, 250))).await;
        assert_eq!(app.user("kim").await.quota, 3_750_000);
        let (status, _) = api.post(&format!("/api/orders/{}/refund", order.id), json!({ "usd": "20", "reason": "x" })).await;
        assert_eq!(status, 400);
        assert_books_balance(&app).await;
    }
}

db_test! {
    /// With invite rewards paid at the first top-up, a redeemed code pays nothing, the first
    /// paid top-up pays inviter and invitee once, and later top-ups pay no more.
    async fn invite_rewards_come_with_the_first_top_up(db: TestDb) {
        let (app, fake) = app_with_stripe(db).await;
        app.set_option("invite_reward_inviter_usd", "1").await;
        app.set_option("invite_reward_invitee_usd", "2").await;
        let inviter = app.create_user("lee", "0").await;
        let invitee = app.create_user("max", "0").await;
        app.db.write(async |tx| tx.execute("UPDATE users SET inviter_id = ? WHERE id = ?", &[DbValue::Int(inviter.id), DbValue::Int(invitee.id)]).await).await.unwrap();
        let code = service::codes::create(app.ctx(), &CLI, service::codes::CreateCodes { count: 1, usd: "1".into(), ..Default::default() }).await.unwrap().remove(0).code;
        service::codes::redeem(app.ctx(), invitee.id, &code).await.unwrap();
        assert_eq!(app.user("lee").await.quota, 0);
        for n in 1..=2 {
            let order = start(&app, "max", "10", n).await;
            let session = fake.pay(order.session_id.as_deref().unwrap());
            deliver(&app, &completed(&format!("evt_inv_{n}"), &session)).await;
        }
        assert_eq!(app.user("lee").await.quota, 500_000);
        assert_eq!(app.user("max").await.quota, 500_000 + 10_000_000 + 1_000_000);

        // Refunding both top-ups in full takes the rewards back too, once; one alone does not.
        let orders = service::topups::list(app.ctx(), &CLI, Some("max"), Some("paid"), 5).await.unwrap();
        for (n, order) in orders.iter().enumerate() {
            let intent = order.payment_intent.clone().unwrap();
            deliver(&app, &event(&format!("evt_inv_rf_{n}"), "charge.refunded", charge(&intent, 1000, 1000))).await;
            let expected = if n == 0 { 500_000 } else { 0 };
            assert_eq!(app.user("lee").await.quota, expected);
        }
        assert_eq!(app.user("max").await.quota, 500_000);
        assert_books_balance(&app).await;
    }
}

db_test! {
    /// The wallet offers the presets with their prices, quotes a typed amount before paying
    /// (the field marked when it is wrong), and its pay button sends the person to Stripe with
    /// a 303; the order page shows where the order stands and is the owner's alone. A receipt
    /// is mailed in the person's language once the payment is credited.
    async fn the_wallet_quotes_redirects_and_shows_orders(db: TestDb) {
        let Some(mail) = crate::helpers::mail::MailSink::start().await else { return };
        let (app, fake) = app_with_stripe(db).await;
        mail.configure(&app).await;
        app.set_option("topup_bonus_tiers", "20:10").await;
        app.create_user_with_email("nia", "nia@example.com", PASSWORD).await;
        app.create_user_with_email("oz", "oz@example.com", PASSWORD).await;
        let browser = Browser::new(&app);
        browser.sign_in("nia", PASSWORD).await;
        let wallet = browser.get("/wallet").await;
        assert!(wallet.contains("/wallet/topup?amount_usd=20"), "{}", wallet.body);
        assert!(wallet.contains("20.00 USD") && wallet.contains("+10 %"), "{}", wallet.body);
        let csp = wallet.headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("form-action 'self' https://checkout.stripe.com"), "{csp}");

        let wrong = browser.get("/wallet/topup?amount_usd=0.10").await;
        assert_eq!(wrong.status, 422);
        assert!(wrong.field_error("amount_usd").unwrap().contains("between $1 and $1000"), "{}", wrong.body);
        assert_eq!(wrong.input("amount_usd").as_deref(), Some("0.10"));

        let quote = browser.get("/wallet/topup?amount_usd=12.5").await;
        assert_eq!(quote.status, 200, "{}", quote.body);
        assert!(quote.contains("Pay 12.50 USD with Stripe"), "{}", quote.body);
        let request_key = quote.input("request_key").unwrap();
        let paid = browser.post("/wallet/topup", &[("amount_usd", "12.5"), ("request_key", &request_key)]).await;
        assert_eq!(paid.status, 303, "{}", paid.body);
        let location = paid.location.clone().unwrap();
        assert!(location.starts_with(&format!("{}/pay/cs_test_", fake.base)), "{location}");
        let again = browser.post("/wallet/topup", &[("amount_usd", "12.5"), ("request_key", &request_key)]).await;
        assert_eq!(again.location.as_deref(), Some(location.as_str()));
        // Stripe's refusal, in words, on the quote again.
        fake.fail_next(400, "This account cannot currently make live charges.");
        let quote = browser.get("/wallet/topup?amount_usd=7").await;
        let refused = browser.post("/wallet/topup", &[("amount_usd", "7"), ("request_key", &quote.input("request_key").unwrap())]).await;
        assert_eq!(refused.status, 502);
        assert!(refused.contains("Stripe refused the payment (This account cannot currently make live charges.)."), "{}", refused.body);
        assert!(refused.contains("Pay 7.00 USD with Stripe"));

        let order = service::topups::list(app.ctx(), &CLI, Some("nia"), Some("pending"), 5).await.unwrap().remove(0);
        let page = browser.get(&format!("/wallet/orders/{}", order.id)).await;
        assert!(page.contains("Waiting for payment") && page.contains(r#"http-equiv="refresh""#), "{}", page.body);
        let session = fake.pay(order.session_id.as_deref().unwrap());
        deliver(&app, &completed("evt_web_1", &session)).await;
        let page = browser.get(&format!("/wallet/orders/{}", order.id)).await;
        assert!(page.contains("Paid and credited") && !page.contains("http-equiv"), "{}", page.body);
        let wallet = browser.get("/wallet").await;
        assert!(wallet.contains("$12.50") && wallet.contains("Card top-up"), "{}", wallet.body);
        let receipt = mail.next_to("nia@example.com").await;
        assert!(receipt.subject.contains("$12.50"), "{}", receipt.subject);
        assert!(receipt.text.contains("12.50 USD"), "{}", receipt.text);

        let other = Browser::new(&app);
        other.sign_in("oz", PASSWORD).await;
        assert_eq!(other.get(&format!("/wallet/orders/{}", order.id)).await.status, 404);
        let chinese = Browser::with_headers(&app, &[("accept-language", "zh-CN")]);
        chinese.sign_in("oz", PASSWORD).await;
        assert!(chinese.get("/wallet").await.contains("充值"));
    }
}

db_test! {
    /// Without both Stripe keys the wallet offers no card top-up and the webhook refuses
    /// everything.
    async fn without_stripe_there_is_no_top_up(db: TestDb) {
        let app = TestApp::spawn(db).await;
        app.create_user_with_email("pat", "pat@example.com", PASSWORD).await;
        app.set_option("stripe_secret_key", stripe::SECRET_KEY).await;
        let browser = Browser::new(&app);
        browser.sign_in("pat", PASSWORD).await;
        let wallet = browser.get("/wallet").await;
        assert!(!wallet.contains("amount_usd"), "{}", wallet.body);
        let refused = browser.get("/wallet/topup?amount_usd=10").await;
        assert_eq!(refused.status, 422);
        let body = event("evt_none", "checkout.session.completed", json!({}));
        let (status, _) = deliver_signed(&app, &body, &signature(&body, "", 0)).await;
        assert_eq!(status, 400);
    }
}

db_test! {
    /// The command line, as the real binary: list held orders, show one with its events,
    /// credit it, refund part of it through Stripe, reconcile; refusals say why.
    async fn the_cli_manages_orders(db: TestDb) {
        let (app, fake) = app_with_stripe(db).await;
        app.create_user("quinn", "0").await;
        let held = start(&app, "quinn", "10", 1).await;
        let mut session = fake.pay(held.session_id.as_deref().unwrap());
        session["amount_total"] = json!(999);
        deliver(&app, &completed("evt_cli_1", &session)).await;
        let url = app.db_url.clone();
        let run = |args: &[&str]| crate::shutdown::tollgate(&url, args);

        let listed: Value = serde_json::from_str(&run(&["order", "list", "--status", "held", "--json"]).unwrap()).unwrap();
        assert_eq!(listed[0]["id"], held.id);
        assert_eq!(listed[0]["user"], "quinn");
        assert_eq!(listed[0]["price"], "10.00 USD");
        let id = held.id.to_string();
        let shown = run(&["order", "show", &id]).unwrap();
        assert!(shown.contains(held.session_id.as_deref().unwrap()), "{shown}");
        assert!(shown.contains("checkout.session.completed  held  evt_cli_1"), "{shown}");
        assert!(shown.contains("paid 999 usd, quoted 1000 usd"), "{shown}");
        let refused = run(&["order", "credit", &id, "--reason", ""]).unwrap_err();
        assert!(refused.contains("reason"), "{refused}");
        let credited = run(&["order", "credit", &id, "--reason", "999 is close enough"]).unwrap();
        assert!(credited.contains("5000000 units added to quinn"), "{credited}");
        assert!(run(&["order", "credit", &id, "--reason", "again"]).unwrap_err().contains("Only a held order"));

        let refunded = run(&["order", "refund", &id, "--usd", "1", "--reason", "asked"]).unwrap();
        assert!(refunded.contains("charge.refunded"), "{refunded}");
        let sent = fake.received().pop().unwrap();
        assert_eq!((sent.path.as_str(), sent.field("amount")), ("/v1/refunds", Some("100")));
        let report: Value = serde_json::from_str(&run(&["order", "reconcile", "--json"]).unwrap()).unwrap();
        assert_eq!(report["checked"], 0);
        assert!(run(&["order", "list", "--status", "lost"]).unwrap_err().contains("pending, paid, closed, held"));
        assert!(run(&["order", "show", "99999"]).unwrap_err().contains("no such order"));
        assert_eq!(app.user("quinn").await.quota, 5_000_000);
        assert_books_balance(&app).await;
    }
}

db_test! {
    /// Every path that pays one order, at the same moment: the webhook, a second event type,
    /// reconciliation, twice each; one credit. Duplicate dispute events at once take back once.
    async fn racing_paths_credit_and_take_back_once(db: TestDb) {
        let (app, fake) = app_with_stripe(db).await;
        app.create_user("ray", "0").await;
        let order = start(&app, "ray", "10", 1).await;
        let session = fake.pay(order.session_id.as_deref().unwrap());
        let intent = session["payment_intent"].as_str().unwrap().to_string();
        let bodies = [
            completed("evt_race_1", &session),
            completed("evt_race_1", &session),
            event("evt_race_2", "checkout.session.async_payment_succeeded", session.clone()),
            event("evt_race_3", "checkout.session.async_payment_succeeded", session.clone()),
        ];
        let deliveries = futures::future::join_all(bodies.iter().map(|b| deliver(&app, b)));
        let reconciles = futures::future::join(
            service::topups::reconcile(app.ctx(), &CLI, 0, "http://x"),
            service::topups::reconcile(app.ctx(), &CLI, 0, "http://x"),
        );
        let (answers, (first, second)) = futures::future::join(deliveries, reconciles).await;
        assert!(answers.iter().all(|(s, _)| *s == 200), "{answers:?}");
        let credits = answers.iter().filter(|(_, a)| a["outcome"] == "credited").count()
            + first.unwrap().credited
            + second.unwrap().credited;
        assert_eq!(credits, 1, "{answers:?}");
        assert_eq!(app.user("ray").await.quota, 5_000_000);

        // Six forms submitted at once against a limit of two open orders: two are made.
        app.set_option("topup_max_pending_per_user", "2").await;
        let user = app.user("ray").await;
        let attempts = (10..16).map(|n| {
            let (ctx, user, key) = (app.ctx().clone(), user.clone(), key(n));
            tokio::spawn(async move { service::topups::start(&ctx, &user, "5", &key, "https://p.example").await })
        });
        let results = futures::future::join_all(attempts).await.into_iter().map(Result::unwrap).collect::<Vec<_>>();
        let made = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(made, 2, "{results:?}");
        assert_eq!(service::topups::list(app.ctx(), &CLI, Some("ray"), Some("pending"), 10).await.unwrap().len(), 2);

        let disputes = (0..6).map(|n| {
            event(&format!("evt_race_dp_{n}"), "charge.dispute.created", dispute("dp_race", &intent, 1000, "needs_response"))
        }).collect::<Vec<_>>();
        let answers = futures::future::join_all(disputes.iter().map(|b| deliver(&app, b))).await;
        let taken = answers.iter().filter(|(_, a)| a["outcome"] == "disputed").count();
        assert_eq!(taken, 1, "{answers:?}");
        assert_eq!(app.user("ray").await.quota, 0);
        assert_books_balance(&app).await;
    }
}

db_test! {
    /// The server's own reconciliation job: a payment whose webhook never came is credited
    /// within a round, and an administrator crediting a held order twice at once credits once.
    async fn the_reconciliation_job_credits_lost_payments(db: TestDb) {
        let app = TestApp::spawn_with(db, |c| c.reconcile_interval_ms = 100).await;
        let fake = FakeStripe::start().await;
        fake.configure(&app).await;
        app.set_option("topup_reconcile_after_secs", "0").await;
        app.create_user("sam", "0").await;
        let order = start(&app, "sam", "10", 1).await;
        fake.pay(order.session_id.as_deref().unwrap());
        let mut credited = false;
        for _ in 0..100 {
            if self::order(&app, order.id).await.status == OrderStatus::Paid {
                credited = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(credited, "the job credited the order");
        assert_eq!(app.user("sam").await.quota, 5_000_000);
        // The job leaves new orders alone from here on.
        app.set_option("topup_reconcile_after_secs", "3600").await;

        let held = start(&app, "sam", "10", 2).await;
        let mut session = fake.pay(held.session_id.as_deref().unwrap());
        session["amount_total"] = json!(5);
        deliver(&app, &completed("evt_job_1", &session)).await;
        let credits = (0..4).map(|_| service::topups::credit(app.ctx(), &CLI, held.id, "checked", "http://x"));
        let results = futures::future::join_all(credits).await;
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "{results:?}");
        assert_eq!(app.user("sam").await.quota, 10_000_000);
        assert_books_balance(&app).await;
    }
}

db_test! {
    /// A server killed after writing orders and making their sessions, before any webhook:
    /// the next server credits one order by its late webhook and the other by reconciliation,
    /// each once.
    async fn orders_survive_a_killed_server(db: TestDb) {
        let (app, fake) = app_with_stripe(db).await;
        app.create_user("tia", "0").await;
        let by_webhook = start(&app, "tia", "10", 1).await;
        let by_job = start(&app, "tia", "5", 2).await;
        let session = fake.pay(by_webhook.session_id.as_deref().unwrap());
        fake.pay(by_job.session_id.as_deref().unwrap());
        let app = app.killed_and_restarted(|c| c.reconcile_interval_ms = 100).await;
        let (status, answer) = deliver(&app, &completed("evt_kill_1", &session)).await;
        assert_eq!((status, answer["outcome"].as_str()), (200, Some("credited")), "{answer}");
        app.set_option("topup_reconcile_after_secs", "0").await;
        for _ in 0..100 {
            if order(&app, by_job.id).await.status == OrderStatus::Paid {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert_eq!(order(&app, by_job.id).await.status, OrderStatus::Paid);
        let (_, answer) = deliver(&app, &completed("evt_kill_1", &session)).await;
        assert_eq!(answer["outcome"], "duplicate");
        assert_eq!(app.user("tia").await.quota, 7_500_000);
        assert_books_balance(&app).await;
    }
}

db_test! {
    /// A Checkout opened before the account was deleted and paid after is not credited to the
    /// closed account: the order is held and the payment refunded through Stripe (once, also
    /// when the event comes again or reconciliation asks); the books still balance.
    async fn a_payment_for_a_deleted_account_is_refunded(db: TestDb) {
        let (app, fake) = app_with_stripe(db).await;
        app.create_user_with_email("zed", "zed@example.com", PASSWORD).await;
        let zed = app.user("zed").await;
        let pending = start(&app, "zed", "10", 1).await;
        service::accounts::delete_account(app.ctx(), &service::Caller::User(zed.id), "zed").await.unwrap();
        let session = fake.pay(pending.session_id.as_deref().unwrap());
        let before = fake.received().len();
        let (status, answer) = deliver(&app, &completed("evt_deleted_1", &session)).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["outcome"], "refund_deleted_account");
        let held = order(&app, pending.id).await;
        assert_eq!((held.status, held.credited), (OrderStatus::Held, 0));
        let refunds: Vec<_> = fake.received().into_iter().skip(before).filter(|r| r.path == "/v1/refunds").collect();
        assert_eq!(refunds.len(), 1);
        let intent = session["payment_intent"].as_str().unwrap();
        assert_eq!(refunds[0].field("payment_intent"), Some(intent));
        assert!(refunds[0].idempotency_key.as_deref().unwrap().ends_with(&format!("-refund-deleted-{}", pending.id)));
        let user = tollgate::service::db::users::find_by_id(&app.db, zed.id).await.unwrap().unwrap();
        assert_eq!(user.quota, 0, "nothing credited to the deleted account");
        // Again: a duplicate event changes nothing; reconciliation asks Stripe again with the
        // same key (one refund), until Stripe's refund event records it.
        let (_, again) = deliver(&app, &completed("evt_deleted_1", &session)).await;
        assert_eq!(again["outcome"], "duplicate");
        service::topups::reconcile(app.ctx(), &CLI, 0, "http://x").await.unwrap();
        let asked: Vec<_> = fake.received().into_iter().skip(before).filter(|r| r.path == "/v1/refunds").collect();
        assert!(asked.iter().all(|r| r.idempotency_key == refunds[0].idempotency_key), "one refund, asked again");
        let (_, refunded) = deliver(&app, &event("evt_deleted_2", "charge.refunded", charge(intent, 1000, 1000))).await;
        assert!(refunded["outcome"].as_str().is_some(), "{refunded}");
        assert_eq!(order(&app, pending.id).await.refunded, 1000);
        let asked_before = fake.received().len();
        service::topups::reconcile(app.ctx(), &CLI, 0, "http://x").await.unwrap();
        assert!(fake.received().into_iter().skip(asked_before).all(|r| r.path != "/v1/refunds"), "refunded orders are not asked again");
        assert_books_balance(&app).await;
    }
}
