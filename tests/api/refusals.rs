//! Every refusal answers in OpenAI's envelope with the right status and costs nothing.

use serde_json::json;

use crate::helpers::{CLI, FakeUpstream, TestApp, chat_body, db_test, expect_error};
use tollgate::domain::kinds::Outcome;
use tollgate::service::tokens::{CreateToken, UpdateToken};
use tollgate::service::users::UpdateUser;

/// An app with one channel serving `gpt-4o-mini` (priced) and `unpriced-model` (not priced),
/// and user alice with $1.
async fn setup(db: crate::helpers::TestDb) -> (TestApp, FakeUpstream) {
    let app = TestApp::spawn(db).await;
    let upstream = FakeUpstream::chat().await;
    app.add_channel("main", &upstream, "gpt-4o-mini,unpriced-model")
        .await;
    app.price("gpt-4o-mini", "0.15", "0.60").await;
    app.create_user("alice", "1").await;
    (app, upstream)
}

db_test! {
    async fn refuses_missing_unknown_disabled_and_expired_keys(db: TestDb) {
        let (app, upstream) = setup(db).await;
        let key = app.key_for("alice").await;
        let (expiring, expiring_row) = app
            .create_key(CreateToken {
                username: "alice".into(),
                name: "expiring".into(),
                expires: Some("2099-01-01".into()),
                ..Default::default()
            })
            .await;
        let (disabled, disabled_row) = app
            .create_key(CreateToken { username: "alice".into(), name: "off".into(), ..Default::default() })
            .await;
        tollgate::service::tokens::update(app.ctx(), &CLI, disabled_row.id, UpdateToken {
            status: Some("disabled".into()),
            ..Default::default()
        }).await.unwrap();
        // Expire the key by moving its expiry into the past directly in the database.
        let expired = tollgate::service::db::tokens::TokenPatch {
            expires_at: Some(Some(tollgate::service::db::now_ms() - 1000)),
            ..Default::default()
        };
        app.db.write(async |tx| tollgate::service::db::tokens::update(tx, expiring_row.id, None, &expired).await).await.unwrap();
        app.reload().await;

        let no_key = app.client.post(app.url("/v1/chat/completions")).json(&chat_body("gpt-4o-mini")).send().await.unwrap();
        expect_error(no_key, 401, "missing_api_key").await;
        expect_error(app.chat("sk-not-a-real-key", chat_body("gpt-4o-mini")).await, 401, "invalid_api_key").await;
        let message = expect_error(app.chat(&disabled, chat_body("gpt-4o-mini")).await, 401, "invalid_api_key").await;
        assert!(message.contains("disabled"), "{message}");
        let message = expect_error(app.chat(&expiring, chat_body("gpt-4o-mini")).await, 401, "invalid_api_key").await;
        assert!(message.contains("expired"), "{message}");

        tollgate::service::users::update(app.ctx(), &CLI, "alice", UpdateUser {
            status: Some("disabled".into()),
            ..Default::default()
        }).await.unwrap();
        app.reload().await;
        let message = expect_error(app.chat(&key, chat_body("gpt-4o-mini")).await, 401, "invalid_api_key").await;
        assert!(message.contains("account"), "{message}");
        assert_eq!(upstream.request_count(), 0);
    }
}

db_test! {
    async fn refuses_models_outside_the_key_or_group_and_unknown_models(db: TestDb) {
        let (app, upstream) = setup(db).await;
        app.create_group("vip", "1").await;
        app.add_channel_with(tollgate::service::channels::ChannelInput {
            name: Some("vip".into()),
            base_url: Some(upstream.base_url()),
            models: Some("vip-model".into()),
            groups: Some("vip".into()),
            ..Default::default()
        }).await;
        app.price("vip-model", "1", "1").await;
        let (narrow, _) = app
            .create_key(CreateToken {
                username: "alice".into(),
                name: "narrow".into(),
                models: Some("unpriced-model".into()),
                ..Default::default()
            })
            .await;
        let key = app.key_for("alice").await;
        app.reload().await;

        let message = expect_error(app.chat(&narrow, chat_body("gpt-4o-mini")).await, 403, "model_not_allowed").await;
        assert!(message.contains("API key"), "{message}");
        let message = expect_error(app.chat(&key, chat_body("vip-model")).await, 403, "model_not_allowed").await;
        assert!(message.contains("group"), "{message}");
        expect_error(app.chat(&key, chat_body("no-such-model")).await, 404, "model_not_found").await;
        let message = expect_error(app.chat(&key, chat_body("unpriced-model")).await, 403, "model_price_not_set").await;
        assert!(message.contains("price"), "{message}");
        assert_eq!(upstream.request_count(), 0);

        // Refusals after authentication are logged, at no cost.
        let logs = app.wait_for_logs(4).await;
        assert!(logs.iter().all(|l| l.outcome == Outcome::Refused && l.cost == 0));
        assert_eq!(app.user("alice").await.quota, TestApp::units(1.0));
    }
}

db_test! {
    async fn relays_unpriced_models_for_free_when_allowed(db: TestDb) {
        let (app, upstream) = setup(db).await;
        app.set_option("allow_unpriced_models", "true").await;
        let key = app.key_for("alice").await;
        app.reload().await;
        let response = app.chat(&key, chat_body("unpriced-model")).await;
        assert_eq!(response.status(), 200);
        assert_eq!(upstream.request_count(), 1);
        let logs = app.wait_for_logs(1).await;
        assert_eq!(logs[0].cost, 0);
        assert_eq!(logs[0].outcome, Outcome::Success);
    }
}

db_test! {
    async fn refuses_clients_outside_the_allowed_ip_ranges(db: TestDb) {
        let (app, upstream) = setup(db).await;
        let (outside, _) = app
            .create_key(CreateToken {
                username: "alice".into(),
                name: "office".into(),
                allow_ips: Some("10.0.0.0/8".into()),
                ..Default::default()
            })
            .await;
        let (inside, _) = app
            .create_key(CreateToken {
                username: "alice".into(),
                name: "local".into(),
                allow_ips: Some("127.0.0.0/8".into()),
                ..Default::default()
            })
            .await;
        app.reload().await;
        let message = expect_error(app.chat(&outside, chat_body("gpt-4o-mini")).await, 403, "ip_not_allowed").await;
        assert!(message.contains("127.0.0.1"), "{message}");
        assert_eq!(app.chat(&inside, chat_body("gpt-4o-mini")).await.status(), 200);
        assert_eq!(upstream.request_count(), 1);
    }
}

db_test! {
    async fn refuses_malformed_bodies(db: TestDb) {
        let (app, upstream) = setup(db).await;
        let key = app.key_for("alice").await;
        app.reload().await;
        let raw = |body: &'static str| {
            let request = app
                .client
                .post(app.url("/v1/chat/completions"))
                .bearer_auth(&key)
                .header("content-type", "application/json")
                .body(body);
            async move { request.send().await.unwrap() }
        };
        let message = expect_error(raw("{\"model\": ").await, 400, "invalid_request").await;
        assert!(message.contains("JSON"), "{message}");
        expect_error(raw("[1, 2]").await, 400, "invalid_request").await;
        expect_error(raw("").await, 400, "invalid_request").await;
        expect_error(raw(r#"{"messages": []}"#).await, 400, "missing_required_parameter").await;
        expect_error(raw(r#"{"model": "gpt-4o-mini"}"#).await, 400, "missing_required_parameter").await;
        expect_error(raw(r#"{"model": 5, "messages": []}"#).await, 400, "invalid_request").await;
        expect_error(raw(r#"{"model": "gpt-4o-mini", "messages": [], "stream": "yes"}"#).await, 400, "invalid_request").await;
        let embeddings = app.post(&key, "/v1/embeddings", json!({"model": "gpt-4o-mini"})).await;
        expect_error(embeddings, 400, "missing_required_parameter").await;
        assert_eq!(upstream.request_count(), 0);
    }
}

db_test! {
    async fn refuses_bodies_over_the_limit(db: TestDb) {
        let (app, upstream) = setup(db).await;
        app.set_option("max_request_body_kb", "1").await;
        let key = app.key_for("alice").await;
        app.reload().await;
        let big = json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x".repeat(4096)}]});
        let message = expect_error(app.chat(&key, big).await, 413, "request_too_large").await;
        assert!(message.contains("1 KiB"), "{message}");
        assert_eq!(upstream.request_count(), 0);
    }
}

db_test! {
    /// Both the user's balance and the key's own quota are enforced, with 429
    /// `insufficient_quota` as OpenAI answers.
    async fn refuses_when_the_balance_cannot_cover_the_hold(db: TestDb) {
        let (app, upstream) = setup(db).await;
        app.create_user("bob", "0.000002").await; // one unit
        let bob = app.key_for("bob").await;
        let (small_key, _) = app
            .create_key(CreateToken {
                username: "alice".into(),
                name: "small".into(),
                quota_usd: Some("0.000002".into()),
                ..Default::default()
            })
            .await;
        app.reload().await;
        let message = expect_error(app.chat(&bob, chat_body("gpt-4o-mini")).await, 429, "insufficient_quota").await;
        assert!(message.contains("balance"), "{message}");
        let message = expect_error(app.chat(&small_key, chat_body("gpt-4o-mini")).await, 429, "insufficient_quota").await;
        assert!(message.contains("key"), "{message}");
        assert_eq!(upstream.request_count(), 0);
    }
}

db_test! {
    /// A model whose channels are all off answers 503; unknown routes and methods answer in
    /// the envelope too.
    async fn answers_503_when_no_channel_is_up(db: TestDb) {
        let (app, upstream) = setup(db).await;
        let key = app.key_for("alice").await;
        tollgate::service::channels::update(app.ctx(), &CLI, "main", tollgate::service::channels::ChannelInput {
            status: Some("disabled".into()),
            ..Default::default()
        }).await.unwrap();
        app.reload().await;
        expect_error(app.chat(&key, chat_body("gpt-4o-mini")).await, 503, "no_available_channel").await;
        assert_eq!(upstream.request_count(), 0);

        let response = app.client.get(app.url("/v1/no/such/route")).send().await.unwrap();
        let message = expect_error(response, 404, "unknown_url").await;
        assert!(message.contains("/v1/no/such/route"), "{message}");
        let response = app.client.get(app.url("/v1/chat/completions")).send().await.unwrap();
        expect_error(response, 405, "method_not_supported").await;
    }
}
