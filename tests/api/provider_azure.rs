//! Azure OpenAI channels: deployment URLs with `api-version` (the default, or the one on the
//! base URL), the key in `api-key`, the model mapped to the deployment, streams with usage, the
//! v1 style, Anthropic clients translated, and the channel tools on the same URLs.

use serde_json::{Value, json};

use crate::helpers::upstream::StreamEnd;
use crate::helpers::{CLI, FakeUpstream, Reply, TestApp, TestDb, db_test};
use tollgate::domain::kinds::Outcome;
use tollgate::service::channels::ChannelInput;

async fn setup(db: TestDb, base_url: String) -> (TestApp, String) {
    let app = TestApp::spawn(db).await;
    app.add_channel_with(ChannelInput {
        name: Some("azure".into()),
        channel_type: Some("azure".into()),
        base_url: Some(base_url),
        keys: Some(vec!["azure-key-1".into()]),
        models: Some("gpt-4o".into()),
        model_mapping: Some([("gpt-4o".to_string(), "prod-4o".to_string())].into()),
        ..Default::default()
    })
    .await;
    app.price("gpt-4o", "2.5", "10").await;
    app.create_user("alice", "10").await;
    let key = app.key_for("alice").await;
    app.reload().await;
    (app, key)
}

db_test! {
    /// The request goes to the deployment the model maps to, with the default API version and
    /// the key in `api-key`; the client's body passes through with only the model changed, and
    /// streams ask for usage, which is billed.
    async fn relays_to_azure_deployments(db: TestDb) {
        let upstream = FakeUpstream::start(Reply::chat("Hi from Azure", 11, 4)).await;
        let (app, key) = setup(db, upstream.origin()).await;
        let request = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}],
                             "x_vendor_field": [1.5]});
        let response = app.chat(&key, request).await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["choices"][0]["message"]["content"], "Hi from Azure");
        let sent = &upstream.requests()[0];
        assert_eq!(sent.path, "/openai/deployments/prod-4o/chat/completions");
        assert_eq!(sent.query, "api-version=2024-10-21");
        assert_eq!(sent.headers["api-key"], "azure-key-1");
        assert!(!sent.headers.contains_key("authorization"));
        assert_eq!(sent.json()["model"], "prod-4o");
        assert_eq!(sent.json()["x_vendor_field"], json!([1.5]), "unknown fields pass through");

        upstream.queue(Reply::Stream {
            pieces: vec!["Hel".into(), "lo".into()],
            usage: Some((9, 2)),
            delay: std::time::Duration::ZERO,
            end: StreamEnd::Done,
        });
        let response = app
            .chat(&key, json!({"model": "gpt-4o", "stream": true, "messages": [{"role": "user", "content": "hi"}]}))
            .await;
        assert_eq!(response.status(), 200);
        let text = response.text().await.unwrap();
        assert!(text.contains("Hel") && text.ends_with("data: [DONE]\n\n"), "{text}");
        assert!(!text.contains("\"usage\""), "the usage chunk the client did not ask for is dropped");
        assert_eq!(upstream.requests()[1].json()["stream_options"]["include_usage"], true);

        let logs = app.wait_for_logs(2).await;
        assert!(logs.iter().all(|l| l.outcome == Outcome::Success && !l.usage_estimated), "{logs:#?}");
        let tokens: Vec<(i64, i64)> = logs.iter().map(|l| (l.prompt_tokens, l.completion_tokens)).collect();
        assert!(tokens.contains(&(11, 4)) && tokens.contains(&(9, 2)), "{tokens:?}");
        let charged: i64 = logs.iter().map(|l| l.cost).sum();
        assert_eq!(app.user("alice").await.used_quota, charged);
    }
}

db_test! {
    /// An API version on the base URL is used for every call, the channel tools included;
    /// Anthropic clients are translated to chat for the deployment.
    async fn uses_the_api_version_of_the_base_url(db: TestDb) {
        let upstream = FakeUpstream::start(Reply::chat("Pinned", 5, 1)).await;
        let base = format!("{}?api-version=2025-04-01-preview", upstream.origin());
        let (app, key) = setup(db, base).await;
        let response = app
            .post(&key, "/v1/messages", json!({"model": "gpt-4o", "max_tokens": 20,
                "messages": [{"role": "user", "content": "hi"}]}))
            .await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["type"], "message");
        assert_eq!(body["content"][0]["text"], "Pinned");
        let sent = &upstream.requests()[0];
        assert_eq!(sent.path, "/openai/deployments/prod-4o/chat/completions");
        assert_eq!(sent.query, "api-version=2025-04-01-preview");
        assert_eq!(sent.json()["messages"], json!([{"role": "user", "content": "hi"}]));

        let outcome = tollgate::service::channel_tools::test(app.ctx(), &CLI, &app.state.http, "azure", None)
            .await
            .unwrap();
        assert!(outcome.ok, "{outcome:?}");
        let sent = upstream.requests().pop().unwrap();
        assert_eq!((sent.path.as_str(), sent.query.as_str()), ("/openai/deployments/prod-4o/chat/completions", "api-version=2025-04-01-preview"));
        assert_eq!(sent.headers["api-key"], "azure-key-1");
        let models = tollgate::service::channel_tools::fetch_models(app.ctx(), &CLI, &app.state.http, "azure")
            .await
            .unwrap();
        assert_eq!(models, ["fake-model"]);
    }
}

db_test! {
    /// A base URL ending in `/openai/v1` is Azure's OpenAI-compatible API: OpenAI's paths, the
    /// deployment in the body, no api-version.
    async fn speaks_the_azure_v1_api(db: TestDb) {
        let upstream = FakeUpstream::start(Reply::chat("v1", 5, 1)).await;
        let (app, key) = setup(db, format!("{}/openai/v1", upstream.origin())).await;
        let response = app
            .chat(&key, json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}))
            .await;
        assert_eq!(response.status(), 200);
        let sent = &upstream.requests()[0];
        assert_eq!((sent.path.as_str(), sent.query.as_str()), ("/openai/v1/chat/completions", ""));
        assert_eq!(sent.json()["model"], "prod-4o");
        assert_eq!(sent.headers["api-key"], "azure-key-1");
    }
}
