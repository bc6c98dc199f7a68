//! What Tollgate ships besides code: OpenAI-compatible vendor presets for channels, and the
//! list-price table that prices the usual models until an admin sets their own.

use serde_json::Value;

use crate::helpers::{CLI, FakeUpstream, Reply, TestApp, chat_body, db_test, expect_error};
use crate::shutdown::tollgate;
use tollgate::domain::money::{MicroUsd, Ratio};
use tollgate::domain::pricing::{self, ModelPrice, Usage};
use tollgate::service::channels::ChannelInput;

db_test! {
    /// A preset is an OpenAI channel with the vendor's base URL and models filled in; anything
    /// given explicitly wins; local servers need no key; a vendor served at its host's root
    /// gets no `/v1`.
    async fn vendor_presets_fill_in_channels(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let create = |input: ChannelInput| {
            let ctx = app.ctx().clone();
            async move { tollgate::service::channels::create(&ctx, &CLI, input).await }
        };
        let deepseek = create(ChannelInput {
            name: Some("ds".into()),
            channel_type: Some("DeepSeek".into()),
            keys: Some(vec!["sk-ds".into()]),
            ..Default::default()
        })
        .await
        .expect("a preset needs only a name and a key");
        assert_eq!(deepseek.spec().channel_type.to_string(), "openai");
        assert_eq!(deepseek.spec().base_url, "https://api.deepseek.com/v1");
        assert!(!deepseek.spec().models.is_empty());

        let perplexity = create(ChannelInput {
            name: Some("pplx".into()),
            channel_type: Some("perplexity".into()),
            keys: Some(vec!["pplx-key".into()]),
            ..Default::default()
        })
        .await
        .unwrap();
        assert_eq!(perplexity.spec().base_url, "https://api.perplexity.ai");

        let local = create(ChannelInput {
            name: Some("gpu-box".into()),
            channel_type: Some("vllm".into()),
            base_url: Some("http://10.0.0.5:8000/v1".into()),
            models: Some("Qwen/Qwen3-8B".into()),
            ..Default::default()
        })
        .await
        .expect("a local server needs no key");
        assert_eq!(local.spec().base_url, "http://10.0.0.5:8000/v1");
        assert_eq!(local.spec().models, ["Qwen/Qwen3-8B"]);

        let error = create(ChannelInput {
            name: Some("no-models".into()),
            channel_type: Some("lmstudio".into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
        assert!(error.to_string().contains("models"), "{error}");
        let error = create(ChannelInput {
            name: Some("typo".into()),
            channel_type: Some("deepsek".into()),
            base_url: Some("https://x.example/v1".into()),
            keys: Some(vec!["k".into()]),
            models: Some("m".into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
        assert!(error.to_string().contains("deepseek"), "the error lists the presets: {error}");

        let presets: Value = serde_json::from_str(&tollgate(&app.db_url, &["channel", "presets", "--json"]).unwrap()).unwrap();
        let names: Vec<&str> = presets.as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
        assert!(names.contains(&"groq") && names.contains(&"ollama-openai"), "{names:?}");
        let text = tollgate(&app.db_url, &["channel", "presets"]).unwrap();
        assert!(text.contains("https://api.groq.com/openai/v1"), "{text}");
    }
}

db_test! {
    /// A model the admin never priced is billed at the shipped list price; the admin's own
    /// price wins; with `list_prices` off it is refused as unpriced again.
    async fn list_prices_bill_until_the_admin_sets_a_price(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let upstream = FakeUpstream::start(Reply::chat("Hello!", 1_000_000, 1_000_000)).await;
        app.add_channel("main", &upstream, "gpt-4o-mini").await;
        app.create_user("alice", "10").await;
        let key = app.key_for("alice").await;
        app.reload().await;
        // A million output tokens: the request must allow them, or they are billed at its limit.
        let chat_body = |model: &str| {
            let mut body = chat_body(model);
            body["max_tokens"] = serde_json::json!(1_000_000);
            body
        };

        let list = ModelPrice::PerToken {
            input: MicroUsd::parse("0.15").unwrap(),
            output: MicroUsd::parse("0.6").unwrap(),
            cached_input: Some(MicroUsd::parse("0.075").unwrap()),
            cache_write: None,
        };
        let usage = Usage { prompt_tokens: 1_000_000, completion_tokens: 1_000_000, units: 0, cache_write_tokens: 0, cached_tokens: 0 };
        let list_cost = pricing::cost(list, usage, Ratio::ONE, 500_000).unwrap().0;
        assert_eq!(app.chat(&key, chat_body("gpt-4o-mini")).await.status(), 200);
        let logs = app.wait_for_logs(1).await;
        assert_eq!(logs[0].cost, list_cost, "$0.75 at list price");

        app.price("gpt-4o-mini", "1", "2").await;
        app.reload().await;
        assert_eq!(app.chat(&key, chat_body("gpt-4o-mini")).await.status(), 200);
        let logs = app.wait_for_logs(2).await;
        let latest = logs.iter().max_by_key(|l| l.id).unwrap();
        assert_eq!(latest.cost, TestApp::units(3.0), "the admin's $1 + $2 wins");

        tollgate::service::prices::delete(app.ctx(), &CLI, "gpt-4o-mini").await.expect("delete price");
        app.set_option("list_prices", "false").await;
        app.reload().await;
        expect_error(app.chat(&key, chat_body("gpt-4o-mini")).await, 403, "model_price_not_set").await;
    }
}
