//! Key budgets that start over every day, week or month: enforced by the relay from memory
//! like a key's own limit, written by the billing writer, shown in the API and on the keys
//! page, and counted afresh in a new period.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{Api, Browser, FakeUpstream, Reply, TestApp, admin_token, chat_body, db_test};
use tollgate::domain::calendar::SiteCalendar;
use tollgate::domain::kinds::BudgetPeriod;
use tollgate::service::db::Value;
use tollgate::service::tokens::CreateToken;

/// $0.02 per request.
const PER_REQUEST: i64 = 10_000;

async fn setup(db: crate::helpers::TestDb) -> (TestApp, FakeUpstream) {
    let app = TestApp::spawn(db).await;
    let upstream = FakeUpstream::start(Reply::chat("ok", 5, 1)).await;
    app.add_channel("main", &upstream, "gpt-4o-mini").await;
    app.price_per_request("gpt-4o-mini", "0.02").await;
    app.create_user("alice", "10.00").await;
    (app, upstream)
}

async fn budget_key(app: &TestApp, usd: &str, period: &str) -> (String, i64) {
    let (key, row) = app
        .create_key(CreateToken {
            username: "alice".into(),
            name: "capped".into(),
            budget_usd: Some(usd.into()),
            budget_period: Some(period.into()),
            ..Default::default()
        })
        .await;
    (key, row.id)
}

async fn status_of(app: &TestApp, key: &str) -> u16 {
    app.chat(key, chat_body("gpt-4o-mini"))
        .await
        .status()
        .as_u16()
}

db_test! {
    /// A $0.05 daily budget covers two $0.02 requests; the third is refused in OpenAI's
    /// envelope, saying which budget and when it starts over. The spending is written for the
    /// period that began today in the site's time zone.
    async fn a_daily_budget_stops_the_key_until_it_starts_over(db: TestDb) {
        let (app, upstream) = setup(db).await;
        app.set_option("timezone", "Asia/Shanghai").await;
        let (key, id) = budget_key(&app, "0.05", "daily").await;
        app.reload().await;
        assert_eq!(status_of(&app, &key).await, 200);
        assert_eq!(status_of(&app, &key).await, 200);
        let refused = app.chat(&key, chat_body("gpt-4o-mini")).await;
        let message = crate::helpers::expect_error(refused, 429, "insufficient_quota").await;
        let calendar = SiteCalendar::new("Asia/Shanghai");
        let now = tollgate::service::db::now_ms();
        let (start, end) = calendar.budget_window(BudgetPeriod::Daily, now);
        let resets = jiff::Timestamp::from_millisecond(end).unwrap().to_string();
        assert!(message.contains("daily budget is used up"), "{message}");
        assert!(message.contains("$0.01"), "what is left: {message}");
        assert!(message.contains(&resets), "when it starts over: {message}");
        assert_eq!(upstream.request_count(), 2, "the refused request never left");

        app.flush().await;
        let row = app.token(id).await;
        let budget = row.budget.expect("the key has a budget");
        assert_eq!((budget.spent, budget.window), (2 * PER_REQUEST, start));
        // The user's balance paid for both, and the key's own count moved too.
        assert_eq!(app.user("alice").await.quota, 5_000_000 - 2 * PER_REQUEST);
        assert_eq!(row.used_quota, 2 * PER_REQUEST);

        // The API shows what this period spent and when it starts over.
        let admin = Api {
            token: admin_token(&app, "root", "root").await,
            app: &app,
        };
        let (status, view) = admin.get(&format!("/api/tokens/{id}")).await;
        assert_eq!(status, 200, "{view}");
        assert_eq!(view["budget"]["period"], "daily");
        assert_eq!(view["budget"]["spent_quota"], 2 * PER_REQUEST);
        assert_eq!(view["budget"]["usd"], 0.05);
        assert_eq!(
            view["budget"]["resets_at"].as_str().unwrap().parse::<jiff::Timestamp>().unwrap(),
            jiff::Timestamp::from_millisecond(end).unwrap()
        );

        // Raising the amount keeps what the day spent: one more request fits, not three.
        let (status, view) = admin
            .patch(&format!("/api/tokens/{id}"), json!({ "budget_usd": "0.07" }))
            .await;
        assert_eq!(status, 200, "{view}");
        assert_eq!(view["budget"]["spent_quota"], 2 * PER_REQUEST);
        assert_eq!(status_of(&app, &key).await, 200);
        assert_eq!(status_of(&app, &key).await, 429);

        // Another period counts afresh; removing the budget leaves the key to its balance.
        let (status, view) = admin
            .patch(&format!("/api/tokens/{id}"), json!({ "budget_period": "weekly" }))
            .await;
        assert_eq!(status, 200, "{view}");
        assert_eq!(view["budget"]["spent_quota"], 0);
        assert_eq!(status_of(&app, &key).await, 200);
        let (status, view) = admin
            .patch(&format!("/api/tokens/{id}"), json!({ "budget_period": null }))
            .await;
        assert_eq!(status, 200, "{view}");
        assert!(view.get("budget").is_none(), "{view}");
        for _ in 0..5 {
            assert_eq!(status_of(&app, &key).await, 200);
        }
    }
}

db_test! {
    /// 30 requests at once against a budget that covers 7: exactly 7 reach the upstream and
    /// are billed; the written count and the logs agree to the unit.
    async fn concurrent_requests_never_overspend_a_budget(db: TestDb) {
        let (app, upstream) = setup(db).await;
        let (key, id) = budget_key(&app, "0.14", "monthly").await;
        app.reload().await;
        let requests = (0..30).map(|_| status_of(&app, &key));
        let statuses = futures::future::join_all(requests).await;
        assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 7, "{statuses:?}");
        assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 23);
        assert_eq!(upstream.request_count(), 7);
        app.flush().await;
        let logs = app.wait_for_logs(30).await;
        assert_eq!(logs.iter().map(|l| l.cost).sum::<i64>(), 7 * PER_REQUEST);
        assert_eq!(app.token(id).await.budget.unwrap().spent, 7 * PER_REQUEST);
    }
}

db_test! {
    /// Spending recorded for an earlier period (yesterday's, as another server or an earlier
    /// run left it) is not spending of today: the key starts the day with its whole budget,
    /// and the first write starts the new period's count.
    async fn an_earlier_period_in_the_database_counts_as_nothing(db: TestDb) {
        let (app, _upstream) = setup(db).await;
        let (key, id) = budget_key(&app, "0.03", "daily").await;
        let (today, _) = SiteCalendar::new("UTC").budget_window(BudgetPeriod::Daily, tollgate::service::db::now_ms());
        let yesterday = today - 86_400_000;
        app.db
            .write(async |tx| {
                tx.execute(
                    "INSERT INTO budget_spend (scope_kind, scope_id, window_start, spent) \
                     VALUES ('key', ?, ?, ?)",
                    &[Value::Int(id), Value::Int(yesterday), Value::Int(1_000_000)],
                )
                .await
            })
            .await
            .unwrap();
        app.reload().await;
        assert_eq!(status_of(&app, &key).await, 200);
        assert_eq!(status_of(&app, &key).await, 429, "0.01 left of 0.03");
        app.flush().await;
        let budget = app.token(id).await.budget.unwrap();
        assert_eq!((budget.spent, budget.window), (PER_REQUEST, today));
    }
}

db_test! {
    /// Wrong budgets are refused with the field named, in the API and on the keys page (the
    /// form comes back with what was typed); a good one shows on the list and the edit form.
    async fn budgets_are_checked_and_shown_on_the_keys_page(db: TestDb) {
        let (app, _upstream) = setup(db).await;
        let admin = Api {
            token: admin_token(&app, "root", "root").await,
            app: &app,
        };
        let (status, body) = admin
            .post("/api/users/alice/tokens", json!({ "name": "k", "budget_usd": 5 }))
            .await;
        assert_eq!(status, 400, "{body}");
        assert!(body.to_string().contains("budget_period"), "{body}");
        let (status, body) = admin
            .post(
                "/api/users/alice/tokens",
                json!({ "name": "k", "budget_usd": "0", "budget_period": "daily" }),
            )
            .await;
        assert_eq!(status, 400, "{body}");
        assert!(body.to_string().contains("budget_usd"), "{body}");
        let (status, body) = admin
            .post(
                "/api/users/alice/tokens",
                json!({ "name": "k", "budget_usd": "1", "budget_period": "hourly" }),
            )
            .await;
        assert_eq!(status, 400, "{body}");

        app.create_user_with_email("bob", "bob@example.com", "correct horse battery").await;
        let browser = Browser::new(&app);
        browser.sign_in("bob", "correct horse battery").await;
        browser.get("/keys").await;
        let page = browser
            .post(
                "/keys",
                &[("name", "nightly"), ("budget_usd", "2.5"), ("budget_period", "")],
            )
            .await;
        assert_eq!(page.status, 422);
        assert!(page.field_error("budget_period").is_some(), "{}", page.body);
        assert_eq!(page.input("budget_usd").as_deref(), Some("2.5"), "what was typed stays");
        let page = browser
            .post(
                "/keys",
                &[("name", "nightly"), ("budget_usd", "2.5"), ("budget_period", "weekly")],
            )
            .await;
        assert_eq!(page.status, 201, "{}", page.body);
        assert!(page.contains("$0.00 of $2.50 this week"), "{}", page.body);
        let id = app.token_ids_of("bob").await[0];
        let edit = browser.get(&format!("/keys/{id}/edit")).await;
        assert_eq!(edit.input("budget_usd").as_deref(), Some("2.5"));
        assert!(edit.contains(r#"<option value="weekly" selected>"#), "{}", edit.body);
        // Clearing both fields removes the budget.
        let saved = browser
            .post(
                &format!("/keys/{id}/edit"),
                &[("name", "nightly"), ("budget_usd", ""), ("budget_period", "")],
            )
            .await;
        assert_eq!(saved.status, 303, "{}", saved.body);
        assert!(app.token(id).await.budget.is_none());
    }
}

db_test! {
    /// A request in flight while its key's budget changes from daily to weekly is billed to
    /// the balance but counts in neither period: the day's spending was forgotten, and the
    /// week starts from nothing, even on a Monday, when both began at the same midnight.
    /// What the week then spends is what the API shows and the relay enforces, also after a
    /// fresh read of the database.
    async fn spending_in_flight_across_a_change_of_period_counts_in_neither(db: TestDb) {
        let (app, upstream) = setup(db).await;
        let (key, id) = budget_key(&app, "0.07", "daily").await;
        app.reload().await;
        let admin = Api {
            token: admin_token(&app, "root", "root").await,
            app: &app,
        };
        upstream.queue(Reply::slow_stream(Duration::from_millis(600)));
        let in_flight = app.chat_streamed(&key, "gpt-4o-mini");
        let change = async {
            while upstream.request_count() == 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            admin
                .patch(&format!("/api/tokens/{id}"), json!({ "budget_period": "weekly" }))
                .await
        };
        let ((status, text), (changed, view)) = tokio::join!(in_flight, change);
        assert_eq!(status, 200, "{text}");
        assert!(text.contains("[DONE]"), "the stream ran to its end: {text}");
        assert_eq!(changed, 200, "{view}");
        app.flush().await;
        assert_eq!(app.user("alice").await.quota, 5_000_000 - PER_REQUEST);
        let spent = async || {
            let (status, view) = admin.get(&format!("/api/tokens/{id}")).await;
            assert_eq!(status, 200, "{view}");
            assert_eq!(view["budget"]["period"], "weekly");
            view["budget"]["spent_quota"].as_i64().unwrap()
        };
        assert_eq!(spent().await, 0);

        for _ in 0..3 {
            assert_eq!(status_of(&app, &key).await, 200);
        }
        assert_eq!(status_of(&app, &key).await, 429, "$0.06 of $0.07 is spent");
        app.flush().await;
        assert_eq!(spent().await, 3 * PER_REQUEST);
        app.reload().await;
        assert_eq!(status_of(&app, &key).await, 429, "after a fresh read too");
        assert_eq!(spent().await, 3 * PER_REQUEST);
    }
}
