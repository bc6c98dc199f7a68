//! A Cohere channel (v2 API) behind the OpenAI and Anthropic endpoints, and `/v1/rerank` in
//! front of Cohere and of OpenAI-compatible rerankers: the exact upstream requests, answers and
//! streams (split at awkward places) translated back, errors in the client's envelope, and
//! billing from Cohere's billed units, per search unit for reranking.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{FakeUpstream, Reply, TestApp, TestDb, db_test, expect_error, read_chunks};
use tollgate::domain::kinds::Outcome;
use tollgate::domain::money::{MicroUsd, Ratio};
use tollgate::domain::pricing::{self, ModelPrice, Usage};
use tollgate::service::channels::ChannelInput;

const MODEL: &str = "command-a";
const UPSTREAM_MODEL: &str = "command-a-03-2025";
const EMBED_MODEL: &str = "embed-v4.0";
const RERANK_MODEL: &str = "rerank-v3.5";

async fn setup(db: TestDb, upstream: &FakeUpstream) -> (TestApp, String) {
    let app = TestApp::spawn(db).await;
    app.add_channel_with(ChannelInput {
        name: Some("cohere".into()),
        channel_type: Some("cohere".into()),
        // The bare origin, as an admin pastes https://api.cohere.com: Tollgate adds /v2.
        base_url: Some(upstream.origin()),
        keys: Some(vec!["co-test-key".into()]),
        models: Some(format!("{MODEL},{EMBED_MODEL},{RERANK_MODEL}")),
        model_mapping: Some([(MODEL.to_string(), UPSTREAM_MODEL.to_string())].into()),
        ..Default::default()
    })
    .await;
    app.price(MODEL, "2.5", "10").await;
    app.price(EMBED_MODEL, "0.12", "0").await;
    app.price_per_request(RERANK_MODEL, "0.002").await;
    app.create_user("alice", "10").await;
    let key = app.key_for("alice").await;
    app.reload().await;
    (app, key)
}

fn cost(prompt_tokens: i64, completion_tokens: i64) -> i64 {
    let price = ModelPrice::PerToken {
        input: MicroUsd::parse("2.5").unwrap(),
        output: MicroUsd::parse("10").unwrap(),
        cached_input: None,
        cache_write: None,
    };
    let usage = Usage {
        prompt_tokens,
        completion_tokens,
        ..Usage::default()
    };
    pricing::cost(price, usage, Ratio::ONE, 500_000).unwrap().0
}

fn tool_request(stream: bool) -> Value {
    json!({
        "model": MODEL,
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Weather in Paris?"}
        ],
        "tools": [{"type": "function", "function": {
            "name": "get_weather",
            "description": "Current weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}
        }}],
        "max_tokens": 200,
        "top_p": 0.8,
        "stream": stream,
        "stream_options": {"include_usage": true}
    })
}

fn cohere_answer() -> Value {
    json!({
        "id": "c0ffee",
        "finish_reason": "TOOL_CALL",
        "message": {
            "role": "assistant",
            "tool_plan": "I will look up the weather in Paris.",
            "tool_calls": [{"id": "get_weather_x1", "type": "function",
                            "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]
        },
        "usage": {"billed_units": {"input_tokens": 36, "output_tokens": 21},
                  "tokens": {"input_tokens": 1204, "output_tokens": 60}}
    })
}

/// Cohere's stream for a text answer followed by a tool call.
fn cohere_events() -> String {
    let events = [
        json!({"type": "message-start", "id": "c0ffee", "delta": {"message": {"role": "assistant",
               "content": [], "tool_plan": "", "tool_calls": [], "citations": []}}}),
        json!({"type": "tool-plan-delta", "delta": {"message": {"tool_plan": "I will look it up."}}}),
        json!({"type": "content-start", "index": 0, "delta": {"message": {"content": {"type": "text", "text": ""}}}}),
        json!({"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": "Let me check "}}}}),
        json!({"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": "the weather — ☀️?"}}}}),
        json!({"type": "content-end", "index": 0}),
        json!({"type": "tool-call-start", "index": 0, "delta": {"message": {"tool_calls":
               {"id": "get_weather_x1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}}}}),
        json!({"type": "tool-call-delta", "index": 0, "delta": {"message": {"tool_calls": {"function": {"arguments": "{\"city\":"}}}}}),
        json!({"type": "tool-call-delta", "index": 0, "delta": {"message": {"tool_calls": {"function": {"arguments": "\"Paris\"}"}}}}}),
        json!({"type": "tool-call-end", "index": 0}),
        json!({"type": "message-end", "delta": {"finish_reason": "TOOL_CALL",
               "usage": {"billed_units": {"input_tokens": 36, "output_tokens": 21},
                         "tokens": {"input_tokens": 1204, "output_tokens": 60}}}}),
    ];
    events
        .iter()
        .map(|event| {
            format!(
                "event: {}\ndata: {event}\n\n",
                event["type"].as_str().unwrap()
            )
        })
        .collect()
}

db_test! {
    /// A chat request with tools becomes Cohere's `/v2/chat` request (model mapped, `top_p` as
    /// `p`, the key as a bearer token); the answer comes back with the tool plan as reasoning
    /// and Cohere's tool call, billed from Cohere's billed units.
    async fn answers_chat_completions_from_a_cohere_channel(db: TestDb) {
        let upstream = FakeUpstream::start(Reply::Json(200, cohere_answer())).await;
        let (app, key) = setup(db, &upstream).await;
        let body: Value = app.chat(&key, tool_request(false)).await.json().await.unwrap();
        let sent = upstream.requests();
        assert_eq!(sent[0].path, "/v2/chat");
        assert_eq!(sent[0].headers["authorization"], "Bearer co-test-key");
        assert_eq!(
            sent[0].json(),
            json!({
                "model": UPSTREAM_MODEL,
                "messages": [
                    {"role": "system", "content": "You are terse."},
                    {"role": "user", "content": "Weather in Paris?"}
                ],
                "stream": false,
                "tools": [{"type": "function", "function": {
                    "name": "get_weather",
                    "description": "Current weather",
                    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}
                }}],
                "p": 0.8,
                "max_tokens": 200
            })
        );
        let choice = &body["choices"][0];
        assert_eq!(choice["finish_reason"], "tool_calls");
        assert_eq!(choice["message"]["reasoning_content"], "I will look up the weather in Paris.");
        assert_eq!(choice["message"]["tool_calls"][0]["id"], "get_weather_x1");
        assert_eq!(choice["message"]["tool_calls"][0]["function"]["arguments"], "{\"city\":\"Paris\"}");
        assert_eq!(body["usage"]["prompt_tokens"], 36);
        let logs = app.wait_for_logs(1).await;
        assert_eq!(logs[0].cost, cost(36, 21));

        // The plan and the call go back as Cohere expects them, with the result after.
        let mut follow_up = tool_request(false);
        let messages = follow_up["messages"].as_array_mut().unwrap();
        messages.push(choice["message"].clone());
        messages.push(json!({"role": "tool", "tool_call_id": "get_weather_x1", "content": "18 °C"}));
        assert_eq!(app.chat(&key, follow_up).await.status(), 200);
        let sent = upstream.requests();
        assert_eq!(
            sent[1].json()["messages"].as_array().unwrap()[2..],
            [
                json!({"role": "assistant", "tool_plan": "I will look up the weather in Paris.",
                       "tool_calls": [{"id": "get_weather_x1", "type": "function",
                                       "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]}),
                json!({"role": "tool", "tool_call_id": "get_weather_x1", "content": "18 °C"})
            ]
        );
    }
}

db_test! {
    /// Cohere's typed events, cut every 7 bytes, become chat chunks: the plan as reasoning,
    /// the text, the tool call with its streamed arguments, the finish reason, the usage chunk
    /// and `[DONE]`.
    async fn streams_cohere_events_as_chat_chunks(db: TestDb) {
        let upstream = FakeUpstream::start(Reply::Sse {
            body: cohere_events(),
            split: 7,
            delay: Duration::from_millis(1),
        })
        .await;
        let (app, key) = setup(db, &upstream).await;
        let chunks = read_chunks(app.chat(&key, tool_request(true)).await).await;
        assert_eq!(upstream.requests()[0].json()["stream"], true);
        let field = |pointer: &str| -> String {
            chunks.iter().filter_map(|c| c.pointer(pointer).and_then(Value::as_str)).collect()
        };
        assert_eq!(field("/choices/0/delta/reasoning_content"), "I will look it up.");
        assert_eq!(field("/choices/0/delta/content"), "Let me check the weather — ☀️?");
        assert_eq!(field("/choices/0/delta/tool_calls/0/id"), "get_weather_x1");
        assert_eq!(field("/choices/0/delta/tool_calls/0/function/arguments"), "{\"city\":\"Paris\"}");
        assert_eq!(field("/choices/0/finish_reason"), "tool_calls");
        let usage_chunk = &chunks[chunks.len() - 2];
        assert_eq!(usage_chunk["usage"]["prompt_tokens"], 36);
        assert_eq!(usage_chunk["usage"]["completion_tokens"], 21);
        assert_eq!(chunks.last().unwrap(), &json!("[DONE]"));
        let logs = app.wait_for_logs(1).await;
        assert_eq!(logs[0].outcome, Outcome::Success);
        assert_eq!(logs[0].cost, cost(36, 21));
    }
}

db_test! {
    /// Embeddings go to `/v2/embed` as documents with float vectors, billed from Cohere's
    /// billed input tokens; Cohere's errors keep their status and message.
    async fn embeds_and_reports_errors_through_a_cohere_channel(db: TestDb) {
        let upstream = FakeUpstream::start(Reply::Json(200, json!({
            "id": "e1",
            "embeddings": {"float": [[0.5, 0.25], [0.125, -1.0]]},
            "texts": ["red", "green"],
            "meta": {"api_version": {"version": "2"}, "billed_units": {"input_tokens": 4}}
        })))
        .await;
        let (app, key) = setup(db, &upstream).await;
        let body: Value = app
            .post(&key, "/v1/embeddings", json!({"model": EMBED_MODEL, "input": ["red", "green"]}))
            .await
            .json()
            .await
            .unwrap();
        let sent = upstream.requests();
        assert_eq!(sent[0].path, "/v2/embed");
        assert_eq!(
            sent[0].json(),
            json!({"model": EMBED_MODEL, "texts": ["red", "green"],
                   "input_type": "search_document", "embedding_types": ["float"]})
        );
        assert_eq!(body["data"][1]["embedding"], json!([0.125, -1.0]));
        assert_eq!(body["usage"]["prompt_tokens"], 4);
        let logs = app.wait_for_logs(1).await;
        assert_eq!(logs[0].prompt_tokens, 4);

        upstream.queue(Reply::Json(400, json!({"id": "e2", "message": "invalid request: max_tokens must be positive"})));
        let message = expect_error(app.chat(&key, tool_request(false)).await, 400, "upstream_error").await;
        assert!(message.contains("max_tokens must be positive"), "{message}");
    }
}

db_test! {
    /// `/v1/rerank` (and Cohere's own `/v2/rerank`) to a Cohere channel: documents as strings
    /// upstream, the documents added back when asked for, and a per-request price charged per
    /// search unit Cohere billed.
    async fn reranks_through_a_cohere_channel_per_search_unit(db: TestDb) {
        let upstream = FakeUpstream::start(Reply::Json(200, json!({
            "id": "r1",
            "results": [{"index": 2, "relevance_score": 0.91}, {"index": 0, "relevance_score": 0.12}],
            "meta": {"api_version": {"version": "2"}, "billed_units": {"search_units": 2}}
        })))
        .await;
        let (app, key) = setup(db, &upstream).await;
        let request = json!({
            "model": RERANK_MODEL,
            "query": "What is the capital of France?",
            "documents": ["Berlin is in Germany.", {"text": "Madrid is in Spain."}, "Paris is the capital of France."],
            "top_n": 2,
            "return_documents": true
        });
        let response = app.post(&key, "/v1/rerank", request.clone()).await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        let sent = upstream.requests();
        assert_eq!(sent[0].path, "/v2/rerank");
        assert_eq!(
            sent[0].json(),
            json!({"model": RERANK_MODEL, "query": "What is the capital of France?",
                   "documents": ["Berlin is in Germany.", "Madrid is in Spain.", "Paris is the capital of France."],
                   "top_n": 2})
        );
        assert_eq!(body["results"][0]["index"], 2);
        assert_eq!(body["results"][0]["document"], json!({"text": "Paris is the capital of France."}));
        assert_eq!(body["results"][1]["document"], json!({"text": "Berlin is in Germany."}));

        // Cohere's SDK posts to /v2/rerank.
        assert_eq!(app.post(&key, "/v2/rerank", request).await.status(), 200);
        let logs = app.wait_for_logs(2).await;
        // $0.002 per search unit × 2 units = $0.004 = 2,000 units, each time.
        assert!(logs.iter().all(|l| l.endpoint == "rerank" && l.cost == 2_000), "{logs:#?}");
        assert_eq!(app.user("alice").await.used_quota, 4_000);

        let missing_query = json!({"model": RERANK_MODEL, "documents": ["a"]});
        expect_error(app.post(&key, "/v1/rerank", missing_query).await, 400, "missing_required_parameter").await;
        let streamed = json!({"model": RERANK_MODEL, "query": "q", "documents": ["a"], "stream": true});
        assert_eq!(app.post(&key, "/v1/rerank", streamed).await.status(), 400);
    }
}

db_test! {
    /// `/v1/rerank` to an OpenAI-type channel (Jina, SiliconFlow, vLLM): the request passes
    /// through byte for byte and the answer comes back as sent, billed from its token usage.
    async fn passes_rerank_through_to_openai_compatible_rerankers(db: TestDb) {
        let upstream = FakeUpstream::start(Reply::Json(200, json!({
            "model": "jina-reranker-v2-base-multilingual",
            "usage": {"total_tokens": 815},
            "results": [{"index": 1, "relevance_score": 0.8, "document": {"text": "b"}}]
        })))
        .await;
        let app = TestApp::spawn(db).await;
        app.add_channel_with(ChannelInput {
            name: Some("jina".into()),
            base_url: Some(upstream.base_url()),
            models: Some("jina-reranker-v2-base-multilingual".into()),
            ..Default::default()
        })
        .await;
        app.price("jina-reranker-v2-base-multilingual", "0.02", "0").await;
        app.create_user("alice", "10").await;
        let key = app.key_for("alice").await;
        app.reload().await;
        let raw = r#"{"model":"jina-reranker-v2-base-multilingual","query":"q","documents":["a","b"],"top_n":1,"return_documents":true}"#;
        let response = reqwest::Client::new()
            .post(app.url("/v1/rerank"))
            .bearer_auth(&key)
            .header("content-type", "application/json")
            .body(raw)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["results"][0]["document"]["text"], "b");
        let sent = upstream.requests();
        assert_eq!(sent[0].path, "/v1/rerank");
        assert_eq!(&sent[0].body[..], raw.as_bytes(), "passed through byte for byte");
        let logs = app.wait_for_logs(1).await;
        assert_eq!(logs[0].prompt_tokens, 815);
        assert!(!logs[0].usage_estimated);
        // 815 tokens × $0.02 per 1M = $0.0000163 = 8.15 → 9 units.
        assert_eq!(logs[0].cost, 9);

        // A model whose channels cannot rerank says so.
        app.add_channel_with(ChannelInput {
            name: Some("claude".into()),
            channel_type: Some("anthropic".into()),
            base_url: Some(upstream.origin()),
            models: Some("claude-haiku-4-5".into()),
            ..Default::default()
        })
        .await;
        app.reload().await;
        let response = app
            .post(&key, "/v1/rerank", json!({"model": "claude-haiku-4-5", "query": "q", "documents": ["a"]}))
            .await;
        assert_eq!(response.status(), 400);
        let body: Value = response.json().await.unwrap();
        assert!(body["error"]["message"].as_str().unwrap().contains("cannot answer rerank"), "{body}");
    }
}

db_test! {
    /// The official anthropic SDK against a Cohere channel: a streamed tool call and a whole
    /// answer, counted tokens, and its own exception for a bad key.
    async fn anthropic_sdk_talks_to_a_cohere_channel(db: TestDb) {
        let Some(python) = crate::sdk::python() else { return };
        let upstream = FakeUpstream::start(Reply::Json(200, cohere_answer())).await;
        upstream.queue(Reply::Sse { body: cohere_events(), split: 9, delay: Duration::from_millis(1) });
        upstream.queue(Reply::Json(200, cohere_answer()));
        let (app, key) = setup(db, &upstream).await;
        let out = crate::inbound_messages::run_anthropic_sdk(python, &app, &key, MODEL).await;
        assert_eq!(out["stream_text"], "Let me check the weather — ☀️?");
        assert_eq!(out["stream_tool"], json!([{"city": "Paris"}]));
        assert_eq!(out["stream_stop"], "tool_use");
        assert_eq!(out["stream_usage"]["output_tokens"], 21);
        let tool_use = out["reply"].as_array().unwrap().iter().find(|b| b["type"] == "tool_use").unwrap();
        assert_eq!(tool_use["input"], json!({"city": "Paris"}));
        assert_eq!(out["reply_stop"], "tool_use");
        assert_eq!(out["auth_error"], 401);
        let logs = app.wait_for_logs(2).await;
        assert!(logs.iter().all(|l| l.cost == cost(36, 21)), "{logs:#?}");
    }
}
