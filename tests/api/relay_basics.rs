//! The happy paths: every endpoint answers through the relay, bills exactly and logs.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{FakeUpstream, Reply, TestApp, chat_body, db_test};
use tollgate::domain::kinds::Outcome;

db_test! {
    /// A chat completion is relayed unchanged and both balances move by exactly its cost.
    async fn chat_completion_bills_user_and_key(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let upstream = FakeUpstream::chat().await;
        app.add_channel("main", &upstream, "gpt-4o-mini").await;
        app.price("gpt-4o-mini", "0.15", "0.60").await;
        let user = app.create_user("alice", "5").await;
        let (key, token) = app
            .create_key(tollgate::service::tokens::CreateToken {
                username: "alice".into(),
                name: "laptop".into(),
                quota_usd: Some("1".into()),
                ..Default::default()
            })
            .await;
        app.reload().await;
        upstream.queue(Reply::chat("Hi there", 1000, 500));

        let mut body = chat_body("gpt-4o-mini");
        body["max_tokens"] = serde_json::json!(500);
        let response = app.chat(&key, body).await;
        assert_eq!(response.status(), 200);
        let request_id = response.headers()["x-request-id"].to_str().unwrap().to_string();
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["choices"][0]["message"]["content"], "Hi there");

        let logs = app.wait_for_logs(1).await;
        let log = &logs[0];
        // 1000 × $0.15/M + 500 × $0.60/M = $0.00045 = 225 units.
        assert_eq!(log.cost, 225);
        assert_eq!(log.request_id, request_id);
        assert_eq!(log.prompt_tokens, 1000);
        assert_eq!(log.completion_tokens, 500);
        assert_eq!(log.outcome, Outcome::Success);
        assert_eq!(log.username, "alice");
        assert_eq!(log.token_name, "laptop");
        assert_eq!(log.channel_name, "main");
        assert_eq!(log.model, "gpt-4o-mini");
        assert_eq!(log.upstream_model, "gpt-4o-mini");
        assert!(!log.is_stream);
        assert!(!log.usage_estimated);

        let after = app.user("alice").await;
        assert_eq!(after.quota, user.quota - 225);
        assert_eq!(after.used_quota, 225);
        assert_eq!(after.request_count, 1);
        let token_after = app.token(token.id).await;
        assert_eq!(token_after.remaining_quota, token.remaining_quota - 225);
        assert_eq!(token_after.used_quota, 225);
        assert_eq!(token_after.request_count, 1);
    }
}

db_test! {
    /// Completions and embeddings go to their upstream paths and are billed from their usage.
    async fn completions_and_embeddings(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let upstream = FakeUpstream::chat().await;
        app.add_channel("main", &upstream, "gpt-3.5-turbo-instruct,text-embedding-3-small").await;
        app.price("gpt-3.5-turbo-instruct", "1.5", "2").await;
        app.price("text-embedding-3-small", "0.02", "0").await;
        app.create_user("alice", "5").await;
        let key = app.key_for("alice").await;
        app.reload().await;

        upstream.queue(Reply::Json(200, json!({
            "id": "cmpl-1", "object": "text_completion",
            "choices": [{"text": "world", "index": 0, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 4, "completion_tokens": 1, "total_tokens": 5}
        })));
        let response = app
            .post(&key, "/v1/completions", json!({"model": "gpt-3.5-turbo-instruct", "prompt": "hello"}))
            .await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.json::<Value>().await.unwrap()["choices"][0]["text"], "world");

        upstream.queue(Reply::Json(200, json!({
            "object": "list",
            "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2]}],
            "model": "text-embedding-3-small",
            "usage": {"prompt_tokens": 1000000, "total_tokens": 1000000}
        })));
        let response = app
            .post(&key, "/v1/embeddings", json!({"model": "text-embedding-3-small", "input": "hello"}))
            .await;
        assert_eq!(response.status(), 200);

        let requests = upstream.requests();
        assert_eq!(requests[0].path, "/v1/completions");
        assert_eq!(requests[1].path, "/v1/embeddings");
        let logs = app.wait_for_logs(2).await;
        // 4 × $1.5/M + 1 × $2/M = $0.000008 = 4 units.
        assert_eq!(logs[0].cost, 4);
        assert_eq!(logs[0].endpoint, "completions");
        // 1M tokens × $0.02/M = $0.02 = 10,000 units.
        assert_eq!(logs[1].cost, 10_000);
        assert_eq!(logs[1].endpoint, "embeddings");
    }
}

db_test! {
    /// Fields Tollgate does not know reach the upstream byte for byte; a mapped model is the
    /// only change, and billing uses the requested name.
    async fn passes_unknown_fields_through_and_maps_models(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let upstream = FakeUpstream::chat().await;
        app.add_channel_with(tollgate::service::channels::ChannelInput {
            name: Some("main".into()),
            base_url: Some(upstream.base_url()),
            models: Some("gpt-4o-mini".into()),
            model_mapping: Some([("gpt-4o".to_string(), "gpt-4o-2024-08-06".to_string())].into()),
            ..Default::default()
        })
        .await;
        app.price("gpt-4o-mini", "1", "1").await;
        app.price("gpt-4o", "2.5", "10").await;
        app.create_user("alice", "5").await;
        let key = app.key_for("alice").await;
        app.reload().await;

        let raw = r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"x_vendor_flag":{"deep":[1.50,2e3,12345678901234567890]},"temperature":0.70}"#;
        let response = app
            .client
            .post(app.url("/v1/chat/completions"))
            .bearer_auth(&key)
            .header("content-type", "application/json")
            .body(raw)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let sent = &upstream.requests()[0];
        assert_eq!(sent.body, raw.as_bytes(), "unchanged body is forwarded byte for byte");
        assert_eq!(sent.headers["authorization"], "Bearer sk-upstream-test-key");

        let response = app.chat(&key, json!({
            "model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}],
            "x_vendor_flag": {"keep": true}
        })).await;
        assert_eq!(response.status(), 200);
        let sent = upstream.requests()[1].json();
        assert_eq!(sent["model"], "gpt-4o-2024-08-06");
        assert_eq!(sent["x_vendor_flag"], json!({"keep": true}));

        let logs = app.wait_for_logs(2).await;
        assert_eq!(logs[1].model, "gpt-4o");
        assert_eq!(logs[1].upstream_model, "gpt-4o-2024-08-06");
        // Billed at gpt-4o's price: 10 × $2.5/M + 5 × $10/M = $0.000075 = 37.5 → 38 units.
        assert_eq!(logs[1].cost, 38);
    }
}

db_test! {
    /// `/v1/models` lists what the key's group may use and some enabled channel serves,
    /// narrowed by the key's own list.
    async fn lists_models_for_the_key(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let upstream = FakeUpstream::chat().await;
        app.create_group("vip", "1").await;
        app.add_channel_with(tollgate::service::channels::ChannelInput {
            name: Some("everyone".into()),
            base_url: Some(upstream.base_url()),
            models: Some("gpt-4o-mini,gpt-4o".into()),
            groups: Some("default,vip".into()),
            ..Default::default()
        })
        .await;
        app.add_channel_with(tollgate::service::channels::ChannelInput {
            name: Some("vip-only".into()),
            base_url: Some(upstream.base_url()),
            models: Some("o3".into()),
            groups: Some("vip".into()),
            ..Default::default()
        })
        .await;
        app.add_channel_with(tollgate::service::channels::ChannelInput {
            name: Some("off".into()),
            base_url: Some(upstream.base_url()),
            models: Some("retired-model".into()),
            status: Some("disabled".into()),
            ..Default::default()
        })
        .await;
        app.create_user("alice", "1").await;
        app.create_user_in("vera", "1", "vip").await;
        let alice = app.key_for("alice").await;
        let vera = app.key_for("vera").await;
        let (narrow, _) = app
            .create_key(tollgate::service::tokens::CreateToken {
                username: "vera".into(),
                name: "narrow".into(),
                models: Some("o3".into()),
                ..Default::default()
            })
            .await;
        app.reload().await;

        let ids = |body: Value| -> Vec<String> {
            body["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap().to_string()).collect()
        };
        let get = |key: String| {
            let client = app.client.clone();
            let url = app.url("/v1/models");
            async move { client.get(url).bearer_auth(key).send().await.unwrap() }
        };
        let body: Value = get(alice.clone()).await.json().await.unwrap();
        assert_eq!(body["object"], "list");
        assert_eq!(ids(body), ["gpt-4o", "gpt-4o-mini"]);
        assert_eq!(ids(get(vera).await.json().await.unwrap()), ["gpt-4o", "gpt-4o-mini", "o3"]);
        assert_eq!(ids(get(narrow).await.json().await.unwrap()), ["o3"]);

        let one = app.client.get(app.url("/v1/models/gpt-4o")).bearer_auth(&alice).send().await.unwrap();
        assert_eq!(one.status(), 200);
        assert_eq!(one.json::<Value>().await.unwrap()["id"], "gpt-4o");
        let hidden = app.client.get(app.url("/v1/models/o3")).bearer_auth(&alice).send().await.unwrap();
        crate::helpers::expect_error(hidden, 404, "model_not_found").await;
        let unauthenticated = app.client.get(app.url("/v1/models")).send().await.unwrap();
        crate::helpers::expect_error(unauthenticated, 401, "missing_api_key").await;
    }
}

db_test! {
    /// `x-api-key` and `api-key` headers authenticate like a bearer token.
    async fn accepts_keys_in_alternative_headers(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let upstream = FakeUpstream::chat().await;
        app.add_channel("main", &upstream, "gpt-4o-mini").await;
        app.price("gpt-4o-mini", "1", "1").await;
        app.create_user("alice", "1").await;
        let key = app.key_for("alice").await;
        app.reload().await;
        for header in ["x-api-key", "api-key"] {
            let response = app
                .client
                .post(app.url("/v1/chat/completions"))
                .header(header, &key)
                .json(&chat_body("gpt-4o-mini"))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "{header}");
        }
    }
}

/// A chat completion of about `bytes` bytes, its usage at the end.
fn long_answer(bytes: usize, prompt: i64, completion: i64) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "id": "chatcmpl-long", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": "x".repeat(bytes)}}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                  "total_tokens": prompt + completion}
    }))
    .unwrap()
}

db_test! {
    /// A 4 MB whole answer reaches the client as it arrives (its first bytes before the
    /// upstream has sent the rest), byte for byte, billed from the usage at its end; a long
    /// answer that does not start as JSON fails over like a short one.
    async fn a_long_answer_is_relayed_as_it_arrives(db: TestDb) {
        let body = long_answer(4 << 20, 1000, 900_000);
        let upstream = FakeUpstream::start(Reply::Chunked {
            content_type: "application/json",
            body: body.clone(),
            split: 64 * 1024,
            delay: Duration::from_millis(1500),
            break_at: None,
        })
        .await;
        let html = FakeUpstream::start(Reply::Chunked {
            content_type: "text/html",
            body: format!("<html>{}</html>", "y".repeat(1 << 20)).into_bytes(),
            split: 64 * 1024,
            delay: Duration::ZERO,
            break_at: None,
        })
        .await;
        let app = TestApp::spawn(db).await;
        app.add_channel_with(tollgate::service::channels::ChannelInput {
            name: Some("html".into()),
            base_url: Some(html.base_url()),
            models: Some("gpt-4o-mini".into()),
            priority: Some(10),
            ..Default::default()
        })
        .await;
        app.add_channel("main", &upstream, "gpt-4o-mini").await;
        app.price("gpt-4o-mini", "0.15", "0.60").await;
        app.create_user("alice", "10").await;
        let key = app.key_for("alice").await;
        app.reload().await;

        let mut request = chat_body("gpt-4o-mini");
        request["max_tokens"] = serde_json::json!(1_000_000);
        let started = std::time::Instant::now();
        let response = app.chat(&key, request).await;
        assert_eq!(response.status(), 200);
        let mut stream = response.bytes_stream();
        let mut received = Vec::new();
        let mut first_at = None;
        while let Some(chunk) = futures::StreamExt::next(&mut stream).await {
            first_at.get_or_insert_with(|| started.elapsed());
            received.extend_from_slice(&chunk.unwrap());
        }
        let first_at = first_at.unwrap();
        assert!(first_at < Duration::from_millis(1200), "the first bytes came after {first_at:?}");
        assert!(started.elapsed() >= Duration::from_millis(1500));
        assert_eq!(received, body, "byte for byte");
        let log = &app.wait_for_logs(1).await[0];
        assert_eq!(log.outcome, Outcome::Success);
        assert_eq!(log.attempts, 2, "the HTML answer failed over");
        assert_eq!((log.prompt_tokens, log.completion_tokens), (1000, 900_000));
        assert!(!log.usage_estimated);
        // 1000 × $0.15/M + 900,000 × $0.60/M = $0.54015 = 270,075 units.
        assert_eq!(log.cost, 270_075);
    }
}

db_test! {
    /// A long answer that breaks off after its start reached the client ends the response
    /// early; it is logged as the upstream's error and billed for the prompt only.
    async fn a_long_answer_that_breaks_off_is_billed_for_the_prompt(db: TestDb) {
        let upstream = FakeUpstream::start(Reply::Chunked {
            content_type: "application/json",
            body: long_answer(2 << 20, 1000, 500_000),
            split: 64 * 1024,
            delay: Duration::ZERO,
            break_at: Some(1 << 20),
        })
        .await;
        let app = TestApp::spawn(db).await;
        app.add_channel("main", &upstream, "gpt-4o-mini").await;
        app.price("gpt-4o-mini", "0.15", "0.60").await;
        app.create_user("alice", "10").await;
        let key = app.key_for("alice").await;
        app.reload().await;
        let request = chat_body("gpt-4o-mini");
        let response = app.chat(&key, request.clone()).await;
        assert_eq!(response.status(), 200);
        assert!(response.bytes().await.is_err(), "the client sees the answer is incomplete");
        let log = &app.wait_for_logs(1).await[0];
        assert_eq!(log.outcome, Outcome::UpstreamError);
        assert_eq!(log.completion_tokens, 0);
        assert!(log.prompt_tokens > 0 && log.cost > 0, "{log:?}");
        assert!(log.error_message.contains("broke off"), "{}", log.error_message);
        assert_eq!(app.user("alice").await.used_quota, log.cost);
        assert_eq!(upstream.request_count(), 1, "nothing is retried once bytes were sent");
    }
}
