//! The names clients ask for: Anthropic's and Vertex's dated names fold to the undated model,
//! admin aliases resolve before routing and pricing, and channels may list patterns (`gpt-*`,
//! `*`) that serve names no channel lists exactly.

use serde_json::{Value, json};

use crate::helpers::{
    Api, FakeUpstream, Reply, TestApp, admin_token, chat_body, db_test, expect_error,
};
use crate::shutdown::tollgate;
use tollgate::service::channels::ChannelInput;
use tollgate::service::tokens::CreateToken;

/// The ids `/v1/models` lists for `key`.
async fn listed(app: &TestApp, key: &str) -> Vec<String> {
    let body: Value = app
        .client
        .get(app.url("/v1/models"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect()
}

db_test! {
    /// `claude-sonnet-4-5-20250929` and `…@20250929` reach the channel listing
    /// `claude-sonnet-4-5`, billed at its price; OpenAI's `-2024-08-06` snapshots are not folded;
    /// a dated name a channel lists itself is sent as it is.
    async fn dated_names_resolve_to_the_undated_model(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let upstream = FakeUpstream::start(Reply::chat("Hi", 100, 10)).await;
        app.add_channel("main", &upstream, "claude-sonnet-4-5,gpt-4o,claude-haiku-4-5-20251001").await;
        app.price("claude-sonnet-4-5", "3", "15").await;
        app.price("gpt-4o", "2.5", "10").await;
        app.price("claude-haiku-4-5-20251001", "1", "5").await;
        app.create_user("alice", "5").await;
        let key = app.key_for("alice").await;
        app.reload().await;

        for dated in ["claude-sonnet-4-5-20250929", "claude-sonnet-4-5@20250929"] {
            assert_eq!(app.chat(&key, chat_body(dated)).await.status(), 200, "{dated}");
        }
        let sent = upstream.requests();
        assert_eq!(sent[0].json()["model"], "claude-sonnet-4-5");
        assert_eq!(sent[1].json()["model"], "claude-sonnet-4-5");
        expect_error(app.chat(&key, chat_body("gpt-4o-2024-08-06")).await, 404, "model_not_found").await;
        assert_eq!(app.chat(&key, chat_body("claude-haiku-4-5-20251001")).await.status(), 200);
        assert_eq!(upstream.requests()[2].json()["model"], "claude-haiku-4-5-20251001");

        let logs = app.wait_for_logs(4).await;
        // 100 × $3/M + 10 × $15/M = $0.00045 = 225 units.
        for log in &logs[..2] {
            assert_eq!(log.model, "claude-sonnet-4-5");
            assert_eq!(log.cost, 225);
        }
        assert_eq!(logs[0].requested_model, "claude-sonnet-4-5-20250929");
        assert_eq!(logs[1].requested_model, "claude-sonnet-4-5@20250929");
        assert_eq!(logs[2].model, "gpt-4o-2024-08-06");
        assert_eq!(logs[3].requested_model, "", "a listed name resolves to itself");
    }
}

db_test! {
    /// An alias set from the CLI and the API routes to its target's channels and bills at the
    /// target's price, the log keeping both names; the key's model list may name either; the
    /// API refuses chains, duplicates and bad names with the field to fix.
    async fn aliases_resolve_before_routing_and_pricing(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let upstream = FakeUpstream::start(Reply::chat("Hi", 100, 10)).await;
        app.add_channel("main", &upstream, "claude-opus-4-5,gpt-4o-mini").await;
        app.price("claude-opus-4-5", "5", "25").await;
        app.price("gpt-4o-mini", "0.15", "0.60").await;
        app.create_user("alice", "5").await;
        let key = app.key_for("alice").await;
        // A key may allow a name only once the group can use it.
        let early = tollgate::service::tokens::create(app.ctx(), &crate::helpers::CLI, CreateToken {
            username: "alice".into(),
            name: "fast only".into(),
            models: Some("fast".into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
        assert_eq!(early.fields()[0].field, "models");
        let url = app.db_url.clone();
        let out = tollgate(&url, &["model", "alias", "add", "claude-opus-4-8", "--to", "claude-opus-4-5"]).unwrap();
        assert!(out.contains("claude-opus-4-8 → claude-opus-4-5"), "{out}");
        let api = Api { token: admin_token(&app, "root", "root").await, app: &app };
        let (status, created) = api.post("/api/model-aliases", json!({"name": "fast", "to": "gpt-4o-mini"})).await;
        assert_eq!(status, 201, "{created}");
        assert_eq!(created["to"], "gpt-4o-mini");
        app.reload().await;
        let (narrow, _) = app
            .create_key(CreateToken {
                username: "alice".into(),
                name: "fast only".into(),
                models: Some("fast".into()),
                ..Default::default()
            })
            .await;

        assert_eq!(app.chat(&key, chat_body("claude-opus-4-8")).await.status(), 200);
        assert_eq!(upstream.requests()[0].json()["model"], "claude-opus-4-5");
        assert_eq!(app.chat(&narrow, chat_body("fast")).await.status(), 200, "a key limited to the alias");
        expect_error(app.chat(&narrow, chat_body("claude-opus-4-8")).await, 403, "model_not_allowed").await;
        let logs = app.wait_for_logs(3).await;
        assert_eq!((logs[0].model.as_str(), logs[0].requested_model.as_str()), ("claude-opus-4-5", "claude-opus-4-8"));
        // 100 × $5/M + 10 × $25/M = $0.00075 = 375 units.
        assert_eq!(logs[0].cost, 375);
        assert_eq!((logs[1].model.as_str(), logs[1].requested_model.as_str()), ("gpt-4o-mini", "fast"));
        let listing = listed(&app, &key).await;
        assert!(listing.contains(&"fast".to_string()) && listing.contains(&"claude-opus-4-8".to_string()), "{listing:?}");

        let (status, error) = api.post("/api/model-aliases", json!({"name": "quick", "to": "fast"})).await;
        assert_eq!((status, error["error"]["field"].as_str()), (400, Some("to")), "{error}");
        assert!(error["error"]["message"].as_str().unwrap().contains("chain"), "{error}");
        let (status, _) = api.post("/api/model-aliases", json!({"name": "fast", "to": "claude-opus-4-5"})).await;
        assert_eq!(status, 409);
        let (status, error) = api.post("/api/model-aliases", json!({"name": "bad name", "to": "gpt-4o-mini"})).await;
        assert_eq!((status, error["error"]["field"].as_str()), (400, Some("name")), "{error}");
        let (status, all) = api.get("/api/model-aliases").await;
        assert_eq!(status, 200);
        assert_eq!(all["data"].as_array().unwrap().len(), 2);
        let listing = tollgate(&url, &["model", "alias", "list"]).unwrap();
        assert!(listing.contains("fast") && listing.contains("claude-opus-4-8"), "{listing}");

        assert_eq!(api.delete("/api/model-aliases/fast").await.0, 204);
        tollgate(&url, &["model", "alias", "remove", "claude-opus-4-8"]).unwrap();
        assert!(tollgate(&url, &["model", "alias", "remove", "claude-opus-4-8"]).unwrap_err().contains("no model alias"));
        app.reload().await;
        expect_error(app.chat(&key, chat_body("claude-opus-4-8")).await, 404, "model_not_found").await;
    }
}

db_test! {
    /// Channels listing `gpt-*` and `*`: an exact listing wins; a name only a pattern serves is
    /// sent as asked (the channel's model map still applies), billed at its own price, refused
    /// as unpriced without one; failover runs through every pattern that matches; `/v1/models`
    /// lists the priced names the patterns serve.
    async fn channel_patterns_serve_names_no_channel_lists(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let openai = FakeUpstream::start(Reply::chat("from gpt-*", 100, 10)).await;
        let catch_all = FakeUpstream::start(Reply::chat("from *", 100, 10)).await;
        let exact = FakeUpstream::start(Reply::chat("from exact", 100, 10)).await;
        app.add_channel_with(ChannelInput {
            name: Some("openai-any".into()),
            base_url: Some(openai.base_url()),
            models: Some("gpt-*".into()),
            model_mapping: Some([("gpt-5-nano".to_string(), "gpt-5-nano-2025-08-07".to_string())].into()),
            priority: Some(0),
            ..Default::default()
        })
        .await;
        app.add_channel_with(ChannelInput {
            name: Some("catch-all".into()),
            base_url: Some(catch_all.base_url()),
            models: Some("*".into()),
            priority: Some(-1),
            ..Default::default()
        })
        .await;
        app.add_channel("exact", &exact, "gpt-4o-mini").await;
        for model in ["gpt-4o-mini", "gpt-5-nano", "gpt-5-mini", "mistral-large-latest"] {
            app.price(model, "1", "2").await;
        }
        app.set_option("list_prices", "false").await;
        app.create_user("alice", "5").await;
        let key = app.key_for("alice").await;
        app.reload().await;

        let answer = |response: reqwest::Response| async move {
            assert_eq!(response.status(), 200);
            let body: Value = response.json().await.unwrap();
            body["choices"][0]["message"]["content"].as_str().unwrap().to_string()
        };
        assert_eq!(answer(app.chat(&key, chat_body("gpt-4o-mini")).await).await, "from exact");
        assert_eq!(answer(app.chat(&key, chat_body("gpt-5-mini")).await).await, "from gpt-*");
        assert_eq!(openai.requests()[0].json()["model"], "gpt-5-mini", "sent as asked");
        assert_eq!(answer(app.chat(&key, chat_body("gpt-5-nano")).await).await, "from gpt-*");
        assert_eq!(openai.requests()[1].json()["model"], "gpt-5-nano-2025-08-07", "the channel's map applies");
        assert_eq!(answer(app.chat(&key, chat_body("mistral-large-latest")).await).await, "from *");
        expect_error(app.chat(&key, chat_body("gpt-unpriced")).await, 403, "model_price_not_set").await;
        // The gpt-* channel fails: the catch-all behind it serves.
        openai.queue(Reply::error(500, "down"));
        assert_eq!(answer(app.chat(&key, chat_body("gpt-5-mini")).await).await, "from *");

        let logs = app.wait_for_logs(6).await;
        assert_eq!(logs[1].model, "gpt-5-mini");
        assert_eq!(logs[1].cost, 60, "100 × $1/M + 10 × $2/M at gpt-5-mini's own price");
        assert_eq!(logs[2].upstream_model, "gpt-5-nano-2025-08-07");

        let listing = listed(&app, &key).await;
        for name in ["gpt-4o-mini", "gpt-5-nano", "gpt-5-mini", "mistral-large-latest"] {
            assert!(listing.contains(&name.to_string()), "{name} in {listing:?}");
        }
        assert!(!listing.iter().any(|m| m.contains('*')), "{listing:?}");
    }
}
