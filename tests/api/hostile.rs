//! Hostile input: NUL bytes, oversized and wrongly typed fields on every `/v1` endpoint are
//! refused in the caller's protocol before any upstream is called, their log rows are stored,
//! and billing goes on for everyone; absurd usage reported by an upstream cannot move a
//! balance past the request's bounds.

use serde_json::{Value, json};

use crate::helpers::{Api, FakeUpstream, Reply, TestApp, admin_token, chat_body, db_test};
use tollgate::domain::kinds::Outcome;

/// Each JSON endpoint with its input field and a well-formed request to it.
fn endpoints() -> Vec<(&'static str, &'static str, Value)> {
    vec![
        ("/v1/chat/completions", "messages", chat_body("gpt-4o-mini")),
        (
            "/v1/completions",
            "prompt",
            json!({"model": "gpt-4o-mini", "prompt": "Say hello.", "max_tokens": 16}),
        ),
        (
            "/v1/embeddings",
            "input",
            json!({"model": "gpt-4o-mini", "input": "hello"}),
        ),
        (
            "/v1/messages",
            "messages",
            json!({"model": "gpt-4o-mini", "max_tokens": 16,
                   "messages": [{"role": "user", "content": "Say hello."}]}),
        ),
        (
            "/v1/responses",
            "input",
            json!({"model": "gpt-4o-mini", "input": "Say hello.", "max_output_tokens": 16}),
        ),
        (
            "/v1/rerank",
            "documents",
            json!({"model": "gpt-4o-mini", "query": "q", "documents": ["a", "b"]}),
        ),
        (
            "/v1/images/generations",
            "prompt",
            json!({"model": "gpt-4o-mini", "prompt": "a cat"}),
        ),
        (
            "/v1/moderations",
            "input",
            json!({"model": "gpt-4o-mini", "input": "hello"}),
        ),
        (
            "/v1/audio/speech",
            "input",
            json!({"model": "gpt-4o-mini", "input": "hello", "voice": "alloy"}),
        ),
        (
            "/v1/messages/count_tokens",
            "messages",
            json!({"model": "gpt-4o-mini",
                   "messages": [{"role": "user", "content": "Say hello."}]}),
        ),
    ]
}

/// The refusal's message, checked to be in the endpoint's protocol with status 400.
async fn refused(response: reqwest::Response, path: &str) -> String {
    assert_eq!(response.status(), 400, "{path} refuses with 400");
    assert!(response.headers().contains_key("x-request-id"));
    let text = response.text().await.unwrap();
    assert!(
        text.len() < 2048,
        "{path} answers briefly: {} bytes",
        text.len()
    );
    let body: Value = serde_json::from_str(&text).expect("a JSON error");
    if path.starts_with("/v1/messages") {
        assert_eq!(
            body["type"], "error",
            "Anthropic's envelope on {path}: {body}"
        );
        assert_eq!(body["error"]["type"], "invalid_request_error", "{body}");
    } else {
        assert_eq!(
            body["error"]["type"], "invalid_request_error",
            "{path}: {body}"
        );
        assert!(body["error"]["code"].is_string(), "{body}");
    }
    body["error"]["message"].as_str().unwrap().to_string()
}

db_test! {
    /// NUL bytes, a 1 MB model name and wrongly typed inputs on every endpoint: each is a 400
    /// in the caller's envelope quoting at most 64 characters, no upstream hears of it, every
    /// refusal is logged, and a normal request afterwards is billed and logged.
    async fn hostile_bodies_are_refused_and_billing_goes_on(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let upstream = FakeUpstream::start(Reply::chat("Hello!", 10, 5)).await;
        app.add_channel("main", &upstream, "gpt-4o-mini").await;
        app.price("gpt-4o-mini", "1", "2").await;
        app.create_user("alice", "5").await;
        let key = app.key_for("alice").await;
        app.reload().await;

        let huge_name = "x".repeat(1 << 20);
        let mut logged = 0;
        for (path, input, good) in endpoints() {
            let mut bodies = Vec::new();
            for model in ["a\u{0}b", huge_name.as_str(), "tab\there", " gpt-4o-mini"] {
                let mut body = good.clone();
                body["model"] = json!(model);
                bodies.push(body);
            }
            for wrong in [json!(12345), json!({}), json!(null), json!([1, {"role": 5}])] {
                let mut body = good.clone();
                body[input] = wrong;
                bodies.push(body);
            }
            for body in bodies {
                let message = refused(app.post(&key, path, body).await, path).await;
                assert!(!message.contains(&"x".repeat(65)), "{path} quotes at most 64 characters");
                assert!(!message.contains('\u{0}'), "{path} escapes control characters: {message}");
                if path != "/v1/messages/count_tokens" {
                    logged += 1;
                }
            }
        }
        // Uploads whose model holds a NUL, or is a megabyte long.
        for path in ["/v1/audio/transcriptions", "/v1/audio/translations", "/v1/images/edits"] {
            for model in ["whisper\u{0}1", huge_name.as_str()] {
                let (upload, boundary) = if path == "/v1/images/edits" {
                    (crate::images_and_moderations::edit_form(model, &[("prompt", "a hat")]),
                     crate::images_and_moderations::BOUNDARY)
                } else {
                    (crate::audio::upload(model, 64, &[]), crate::audio::BOUNDARY)
                };
                let response = app
                    .client
                    .post(app.url(path))
                    .bearer_auth(&key)
                    .header("content-type", format!("multipart/form-data; boundary={boundary}"))
                    .body(upload)
                    .send()
                    .await
                    .unwrap();
                let message = refused(response, path).await;
                assert!(!message.contains(&"x".repeat(65)), "{path} quotes at most 64 characters");
                logged += 1;
            }
        }
        // A long model id asked of /v1/models (as long as a URL may be).
        let response = app
            .client
            .get(app.url(&format!("/v1/models/{}", &huge_name[..10_000])))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404);
        let text = response.text().await.unwrap();
        assert!(text.len() < 2048 && !text.contains(&"x".repeat(65)), "{} bytes", text.len());
        assert_eq!(upstream.request_count(), 0, "no hostile body reached the upstream");

        // A normal request is still billed and logged, after every refusal was stored.
        let response = app.chat(&key, chat_body("gpt-4o-mini")).await;
        assert_eq!(response.status(), 200);
        let logs = app.wait_for_logs(logged + 1).await;
        assert_eq!(logs.len(), logged + 1);
        for log in &logs[..logged] {
            assert_eq!(log.outcome, Outcome::Refused, "{log:?}");
            assert_eq!(log.status_code, 400);
            assert_eq!(log.cost, 0);
            assert!(log.model.chars().count() <= 128 && !log.model.contains('\u{0}'), "{:?}", log.model);
            assert!(log.error_message.chars().count() <= 2000);
        }
        let last = logs.last().unwrap();
        assert_eq!(last.outcome, Outcome::Success);
        // 10 × $1/M + 5 × $2/M = 20 units at 500,000 a dollar → 10 units.
        assert_eq!(last.cost, 10);
        assert_eq!(app.user("alice").await.quota, TestApp::units(5.0) - 10);
        assert_eq!(app.state.billing.stats().failed_writes.load(std::sync::atomic::Ordering::Relaxed), 0);
    }
}

db_test! {
    /// An upstream reporting 9e18 completion tokens for max_tokens 10, twice in one flush, in
    /// a whole answer and in a stream: each is billed for 10, the log keeps what was reported,
    /// balances and totals stay sane, and /api/logs answers.
    async fn absurd_usage_is_billed_at_the_request_bound(db: TestDb) {
        let app = TestApp::spawn_with(db, |c| c.billing_flush_ms = 60_000).await;
        let upstream = FakeUpstream::chat().await;
        app.add_channel("main", &upstream, "gpt-4o-mini").await;
        app.price("gpt-4o-mini", "1", "2").await;
        let alice = app.create_user("alice", "5").await;
        let key = app.key_for("alice").await;
        app.reload().await;
        let absurd = 9_000_000_000_000_000_000_i64;
        let mut body = chat_body("gpt-4o-mini");
        body["max_tokens"] = json!(10);

        upstream.queue(Reply::chat("Hi", 100, absurd));
        upstream.queue(Reply::chat("Hi", 100, absurd));
        upstream.queue(Reply::stream(&["Hi"], Some((100, absurd))));
        assert_eq!(app.chat(&key, body.clone()).await.status(), 200);
        assert_eq!(app.chat(&key, body.clone()).await.status(), 200);
        let mut stream = body.clone();
        stream["stream"] = json!(true);
        let streamed = app.chat(&key, stream).await;
        assert_eq!(streamed.status(), 200);
        crate::helpers::read_text(streamed).await;
        // Negative figures count as nothing; they never credit anyone.
        upstream.queue(Reply::chat("Hi", -1_000_000, -1_000_000));
        assert_eq!(app.chat(&key, body.clone()).await.status(), 200);
        // Anthropic's protocol bounds output by max_tokens alone: another field sent beside
        // it (which the translation does not forward) cannot lower the bound.
        upstream.queue(Reply::chat("Hi", 100, 5_000));
        let messages = json!({"model": "gpt-4o-mini", "max_tokens": 64_000, "max_completion_tokens": 1,
                              "messages": [{"role": "user", "content": "Hi"}]});
        assert_eq!(app.post(&key, "/v1/messages", messages).await.status(), 200);
        // A prompt figure beyond the ceiling is billed at the ceiling.
        app.set_option("usage_ceiling_tokens", "1000").await;
        app.reload().await;
        upstream.queue(Reply::chat("Hi", 5_000, 1));
        assert_eq!(app.chat(&key, body.clone()).await.status(), 200);
        app.flush().await;

        let logs = app.logs().await;
        assert_eq!(logs.len(), 6);
        // 100 × $1/M + 5,000 × $2/M = $0.0101 = 5,050 units, nothing marked.
        assert_eq!((logs[4].completion_tokens, logs[4].cost), (5_000, 5_050));
        assert_eq!(logs[4].implausible_usage, "");
        let logs: Vec<_> = logs.into_iter().enumerate().filter(|(i, _)| *i != 4).map(|(_, l)| l).collect();
        // 100 × $1/M + 10 × $2/M = $0.00012 = 60 units.
        for log in &logs[..3] {
            assert_eq!(log.completion_tokens, 10, "{log:?}");
            assert_eq!(log.cost, 60);
            assert!(log.implausible_usage.contains("completion_tokens 9000000000000000000 (billed 10)"), "{:?}", log.implausible_usage);
        }
        assert_eq!((logs[3].prompt_tokens, logs[3].completion_tokens, logs[3].cost), (0, 0, 0));
        assert_eq!(logs[3].implausible_usage, "");
        // 1000 × $1/M + 1 × $2/M = $0.001002 → 501 units.
        assert_eq!((logs[4].prompt_tokens, logs[4].cost), (1000, 501));
        assert!(logs[4].implausible_usage.contains("prompt_tokens 5000 (billed 1000)"));
        let spent = 3 * 60 + 501 + 5_050;
        let alice_now = app.user("alice").await;
        assert_eq!(alice_now.quota, alice.quota - spent);
        assert_eq!(alice_now.used_quota, spent);

        let api = Api { token: admin_token(&app, "root", "root").await, app: &app };
        let (status, page) = api.get("/api/logs?user=alice").await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(page["totals"]["cost"], spent);
        assert!(page["data"][5]["implausible_usage"].as_str().unwrap().contains("9000000000000000000"));
    }
}

db_test! {
    /// A request that no channel can take (a hosted tool only OpenAI has, sent to an Anthropic
    /// channel) is refused before any upstream is contacted, and logged as refused.
    async fn a_body_no_channel_can_take_is_logged_as_refused(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let upstream = FakeUpstream::chat().await;
        app.add_channel_with(tollgate::service::channels::ChannelInput {
            name: Some("claude".into()),
            channel_type: Some("anthropic".into()),
            base_url: Some(upstream.base_url()),
            models: Some("claude-sonnet-4-5".into()),
            ..Default::default()
        })
        .await;
        app.price("claude-sonnet-4-5", "3", "15").await;
        app.create_user("alice", "5").await;
        let key = app.key_for("alice").await;
        app.reload().await;
        let response = app
            .post(&key, "/v1/responses", json!({
                "model": "claude-sonnet-4-5",
                "input": "What is new today?",
                "tools": [{"type": "web_search"}]
            }))
            .await;
        assert_eq!(response.status(), 400);
        assert_eq!(upstream.request_count(), 0);
        let logs = app.wait_for_logs(1).await;
        assert_eq!(logs[0].outcome, Outcome::Refused, "{:?}", logs[0]);
        assert_eq!(logs[0].attempts, 0);
        assert_eq!(logs[0].status_code, 400);
    }
}

db_test! {
    /// The biggest numbers the relay accepts (max_tokens, n, best_of, image counts, a long
    /// speech input) and negative ones: each request is refused or held within the balance,
    /// none costs less than nothing, and no balance ever rises.
    async fn no_input_makes_a_charge_negative(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let upstream = FakeUpstream::chat().await;
        app.add_channel("main", &upstream, "gpt-4o-mini").await;
        app.price("gpt-4o-mini", "1", "2").await;
        app.price_per_request("dall-e-3", "0.04").await;
        app.add_channel("images", &upstream, "dall-e-3").await;
        let alice = app.create_user("alice", "5").await;
        let key = app.key_for("alice").await;
        app.reload().await;
        let start = app.user("alice").await.quota;
        let max = i64::MAX;
        let huge = json!(u64::MAX);
        let bodies: Vec<(&str, Value)> = vec![
            ("/v1/chat/completions", json!({"model": "gpt-4o-mini", "max_tokens": max, "n": max,
                "messages": [{"role": "user", "content": "Hi"}]})),
            ("/v1/chat/completions", json!({"model": "gpt-4o-mini", "max_completion_tokens": huge, "n": huge,
                "messages": [{"role": "user", "content": "Hi"}]})),
            ("/v1/chat/completions", json!({"model": "gpt-4o-mini", "max_tokens": -1, "n": -5,
                "messages": [{"role": "user", "content": "Hi"}]})),
            ("/v1/chat/completions", json!({"model": "gpt-4o-mini", "max_tokens": 1e300,
                "messages": [{"role": "user", "content": "Hi"}]})),
            ("/v1/completions", json!({"model": "gpt-4o-mini", "prompt": "Hi", "max_tokens": max, "best_of": max, "n": max})),
            ("/v1/responses", json!({"model": "gpt-4o-mini", "input": "Hi", "max_output_tokens": max})),
            ("/v1/messages", json!({"model": "gpt-4o-mini", "max_tokens": max,
                "messages": [{"role": "user", "content": "Hi"}]})),
            ("/v1/images/generations", json!({"model": "dall-e-3", "prompt": "a cat", "n": max})),
            ("/v1/images/generations", json!({"model": "dall-e-3", "prompt": "a cat", "n": -3})),
            ("/v1/audio/speech", json!({"model": "gpt-4o-mini", "input": "a".repeat(200_000), "voice": "alloy"})),
        ];
        for (path, body) in bodies {
            let response = app.post(&key, path, body.clone()).await;
            let status = response.status().as_u16();
            let text = response.text().await.unwrap_or_default();
            assert!(
                [200, 400, 403, 404, 429].contains(&status),
                "{path} {body}: {status} {text}"
            );
            if status != 200 {
                assert!(text.contains("\"error\""), "{path}: an error in the caller's protocol: {text}");
            }
            app.flush().await;
            let now = app.user("alice").await.quota;
            assert!(now <= start, "{path} {body}: the balance rose to {now}");
        }
        let logs = app.logs().await;
        assert!(logs.iter().all(|l| l.cost >= 0), "{logs:?}");
        let spent: i64 = logs.iter().map(|l| l.cost).sum();
        let user = app.user("alice").await;
        assert_eq!(user.quota, start - spent, "the balance moved by exactly the logged costs");
        assert_eq!(user.id, alice.id);
        let check = tollgate::service::ledger::check(app.ctx(), &crate::helpers::CLI).await.unwrap();
        assert!(check.discrepancies.is_empty(), "{:?}", check.discrepancies);
    }
}
