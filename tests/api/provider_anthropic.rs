//! An Anthropic channel behind `/v1/chat/completions`: the request Tollgate sends, the answer
//! the OpenAI client gets back (whole and streamed, split at awkward places), errors in the
//! client's protocol, failover, and billing from Anthropic's usage including cache reads.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{CLI, FakeUpstream, Reply, TestApp, db_test, expect_error, read_chunks};
use tollgate::domain::kinds::Outcome;
use tollgate::domain::money::{MicroUsd, Ratio};
use tollgate::domain::pricing::{self, ModelPrice, Usage};
use tollgate::service::channels::ChannelInput;
use tollgate::service::prices::PriceInput;

const MODEL: &str = "claude-sonnet";
const UPSTREAM_MODEL: &str = "claude-sonnet-4-5-20250929";

async fn setup(db: crate::helpers::TestDb, upstream: &FakeUpstream) -> (TestApp, String) {
    let app = TestApp::spawn(db).await;
    app.add_channel_with(ChannelInput {
        name: Some("claude".into()),
        channel_type: Some("anthropic".into()),
        // A bare origin, as an admin pastes https://api.anthropic.com: Tollgate adds /v1.
        base_url: Some(upstream.origin()),
        keys: Some(vec!["sk-ant-test".into()]),
        models: Some(MODEL.into()),
        model_mapping: Some([(MODEL.to_string(), UPSTREAM_MODEL.to_string())].into()),
        ..Default::default()
    })
    .await;
    service_price(&app).await;
    app.create_user("alice", "10").await;
    let key = app.key_for("alice").await;
    app.reload().await;
    (app, key)
}

async fn service_price(app: &TestApp) {
    tollgate::service::prices::set(
        app.ctx(),
        &CLI,
        MODEL,
        &PriceInput {
            input: Some("3".into()),
            output: Some("15".into()),
            cached_input: Some("0.3".into()),
            cache_write: None,
            per_request: None,
            context_tokens: None,
        },
    )
    .await
    .expect("set price");
}

fn cost(usage: Usage) -> i64 {
    let price = ModelPrice::PerToken {
        input: MicroUsd::parse("3").unwrap(),
        output: MicroUsd::parse("15").unwrap(),
        cached_input: Some(MicroUsd::parse("0.3").unwrap()),
        cache_write: None,
    };
    pricing::cost(price, usage, Ratio::ONE, 500_000).unwrap().0
}

pub(crate) fn message_answer() -> Value {
    json!({
        "id": "msg_01XYZ",
        "type": "message",
        "role": "assistant",
        "model": UPSTREAM_MODEL,
        "content": [
            {"type": "text", "text": "Let me check the weather."},
            {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}}
        ],
        "stop_reason": "tool_use",
        "stop_sequence": null,
        "usage": {"input_tokens": 30, "cache_creation_input_tokens": 0,
                  "cache_read_input_tokens": 200, "output_tokens": 25}
    })
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
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                           "required": ["city"]}
        }}],
        "max_tokens": 200,
        "stream": stream,
        "stream_options": {"include_usage": true}
    })
}

/// The SSE body Anthropic sends for the same answer, streamed.
pub(crate) fn message_events() -> String {
    let events = [
        (
            "message_start",
            json!({"type": "message_start", "message": {
            "id": "msg_01XYZ", "type": "message", "role": "assistant", "content": [],
            "model": UPSTREAM_MODEL, "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 30, "cache_creation_input_tokens": 0,
                      "cache_read_input_tokens": 200, "output_tokens": 1}}}),
        ),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 0,
            "content_block": {"type": "text", "text": ""}}),
        ),
        ("ping", json!({"type": "ping"})),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0,
            "delta": {"type": "text_delta", "text": "Let me check "}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0,
            "delta": {"type": "text_delta", "text": "the weather — ☀️?"}}),
        ),
        (
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 0}),
        ),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 1,
            "content_block": {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {}}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 1,
            "delta": {"type": "input_json_delta", "partial_json": "{\"city\": "}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 1,
            "delta": {"type": "input_json_delta", "partial_json": "\"Paris\"}"}}),
        ),
        (
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 1}),
        ),
        (
            "message_delta",
            json!({"type": "message_delta",
            "delta": {"stop_reason": "tool_use", "stop_sequence": null},
            "usage": {"output_tokens": 25}}),
        ),
        ("message_stop", json!({"type": "message_stop"})),
    ];
    events
        .iter()
        .map(|(name, data)| format!("event: {name}\ndata: {data}\n\n"))
        .collect()
}

db_test! {
    /// A non-streamed chat request is sent as a Messages request and answered as a chat
    /// completion; the bill uses Anthropic's usage with cache reads at the cached price.
    async fn answers_chat_completions_from_an_anthropic_channel(db: TestDb) {
        let upstream = FakeUpstream::start(Reply::Json(200, message_answer())).await;
        let (app, key) = setup(db, &upstream).await;
        let response = app.chat(&key, tool_request(false)).await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();

        let sent = &upstream.requests()[0];
        assert_eq!(sent.path, "/v1/messages");
        assert_eq!(sent.headers["x-api-key"], "sk-ant-test");
        assert_eq!(sent.headers["anthropic-version"], "2023-06-01");
        assert!(!sent.headers.contains_key("authorization"), "the key goes in x-api-key only");
        assert_eq!(
            sent.json(),
            json!({
                "model": UPSTREAM_MODEL,
                "max_tokens": 200,
                "system": [{"type": "text", "text": "You are terse."}],
                "messages": [{"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]}],
                "tools": [{"name": "get_weather", "description": "Current weather",
                           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                                            "required": ["city"]}}]
            })
        );

        assert_eq!(body["object"], "chat.completion");
        assert_eq!(body["model"], MODEL);
        let choice = &body["choices"][0];
        assert_eq!(choice["finish_reason"], "tool_calls");
        assert_eq!(choice["message"]["content"], "Let me check the weather.");
        assert_eq!(choice["message"]["tool_calls"][0]["id"], "toolu_01");
        assert_eq!(choice["message"]["tool_calls"][0]["function"]["name"], "get_weather");
        let arguments: Value = serde_json::from_str(
            choice["message"]["tool_calls"][0]["function"]["arguments"].as_str().unwrap(),
        )
        .unwrap();
        assert_eq!(arguments, json!({"city": "Paris"}));
        assert_eq!(body["usage"]["prompt_tokens"], 230);
        assert_eq!(body["usage"]["prompt_tokens_details"]["cached_tokens"], 200);

        let usage = Usage { prompt_tokens: 230, completion_tokens: 25, units: 0, cache_write_tokens: 0, cached_tokens: 200 };
        let logs = app.wait_for_logs(1).await;
        assert_eq!(logs[0].outcome, Outcome::Success);
        assert_eq!(logs[0].upstream_model, UPSTREAM_MODEL);
        assert_eq!((logs[0].prompt_tokens, logs[0].completion_tokens, logs[0].cached_tokens), (230, 25, 200));
        assert!(!logs[0].usage_estimated);
        assert_eq!(logs[0].cost, cost(usage));
        let alice = app.user("alice").await;
        assert_eq!(alice.used_quota, cost(usage));
        assert_eq!(alice.quota, TestApp::units(10.0) - cost(usage));
    }
}

db_test! {
    /// A streamed answer arrives as OpenAI chunks (text, then the tool call's name and
    /// arguments in pieces, the finish reason, the usage chunk, `[DONE]`), even when the
    /// upstream's bytes are cut inside events and inside multi-byte characters.
    async fn streams_anthropic_events_as_chat_chunks(db: TestDb) {
        let upstream = FakeUpstream::start(Reply::Sse {
            body: message_events(),
            split: 7,
            delay: Duration::ZERO,
        })
        .await;
        let (app, key) = setup(db, &upstream).await;
        let response = app.chat(&key, tool_request(true)).await;
        assert_eq!(response.status(), 200);
        assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
        let chunks = read_chunks(response).await;
        assert_eq!(upstream.requests()[0].json()["stream"], true);

        let text: String = chunks
            .iter()
            .filter_map(|c| c.pointer("/choices/0/delta/content").and_then(Value::as_str))
            .collect();
        assert_eq!(text, "Let me check the weather — ☀️?");
        let arguments: String = chunks
            .iter()
            .filter_map(|c| c.pointer("/choices/0/delta/tool_calls/0/function/arguments").and_then(Value::as_str))
            .collect();
        assert_eq!(serde_json::from_str::<Value>(&arguments).unwrap(), json!({"city": "Paris"}));
        let names: Vec<&str> = chunks
            .iter()
            .filter_map(|c| c.pointer("/choices/0/delta/tool_calls/0/function/name").and_then(Value::as_str))
            .collect();
        assert_eq!(names, ["get_weather"]);
        let finishes: Vec<&str> = chunks
            .iter()
            .filter_map(|c| c.pointer("/choices/0/finish_reason").and_then(Value::as_str))
            .collect();
        assert_eq!(finishes, ["tool_calls"]);
        let usage_chunk = &chunks[chunks.len() - 2];
        assert_eq!(usage_chunk["choices"], json!([]));
        assert_eq!(usage_chunk["usage"]["prompt_tokens"], 230);
        assert_eq!(usage_chunk["usage"]["completion_tokens"], 25);
        assert_eq!(chunks.last().unwrap(), &json!("[DONE]"));
        assert!(chunks[..chunks.len() - 1].iter().all(|c| c["object"] == "chat.completion.chunk"));

        let usage = Usage { prompt_tokens: 230, completion_tokens: 25, units: 0, cache_write_tokens: 0, cached_tokens: 200 };
        let logs = app.wait_for_logs(1).await;
        assert_eq!(logs[0].outcome, Outcome::Success);
        assert!(logs[0].is_stream);
        assert!(logs[0].ttft_ms.is_some());
        assert_eq!(logs[0].cost, cost(usage));
        assert_eq!(app.user("alice").await.used_quota, cost(usage));
    }
}

db_test! {
    /// Prompt-cache writes reported by Anthropic are billed at the model's cache-write price
    /// (reads at the cached price, the rest at the input price), logged apart, and shown to an
    /// OpenAI client as `cache_creation_input_tokens`, whole and streamed.
    async fn bills_cache_writes_at_the_cache_write_price(db: TestDb) {
        let mut answer = message_answer();
        answer["usage"]["cache_creation_input_tokens"] = json!(1000);
        let upstream = FakeUpstream::start(Reply::Json(200, answer)).await;
        let (app, key) = setup(db, &upstream).await;
        let price = PriceInput {
            input: Some("3".into()),
            output: Some("15".into()),
            cached_input: Some("0.3".into()),
            cache_write: Some("3.75".into()),
            per_request: None,
            context_tokens: None,
        };
        tollgate::service::prices::set(app.ctx(), &CLI, MODEL, &price).await.unwrap();
        app.reload().await;

        let body: Value = app.chat(&key, tool_request(false)).await.json().await.unwrap();
        assert_eq!(body["usage"]["prompt_tokens"], 1230);
        assert_eq!(body["usage"]["prompt_tokens_details"]["cached_tokens"], 200);
        assert_eq!(body["usage"]["cache_creation_input_tokens"], 1000);

        upstream.queue(Reply::Sse {
            body: message_events().replace(
                "\"cache_creation_input_tokens\":0",
                "\"cache_creation_input_tokens\":1000",
            ),
            split: 7,
            delay: Duration::ZERO,
        });
        let chunks = read_chunks(app.chat(&key, tool_request(true)).await).await;
        let usage_chunk = &chunks[chunks.len() - 2];
        assert_eq!(usage_chunk["usage"]["cache_creation_input_tokens"], 1000);

        let used = Usage {
            prompt_tokens: 1230,
            completion_tokens: 25,
            cached_tokens: 200,
            cache_write_tokens: 1000,
            units: 0,
        };
        let with_write_price = ModelPrice::PerToken {
            input: MicroUsd::parse("3").unwrap(),
            output: MicroUsd::parse("15").unwrap(),
            cached_input: Some(MicroUsd::parse("0.3").unwrap()),
            cache_write: Some(MicroUsd::parse("3.75").unwrap()),
        };
        let expected = pricing::cost(with_write_price, used, Ratio::ONE, 500_000).unwrap().0;
        // 30 × $3 + 200 × $0.30 + 1000 × $3.75 + 25 × $15 per 1M = $0.004275 = 2137.5 → 2138.
        assert_eq!(expected, 2138);
        assert!(expected > cost(used), "writes cost more than plain input");
        let logs = app.wait_for_logs(2).await;
        for log in &logs {
            assert_eq!((log.cached_tokens, log.cache_write_tokens), (200, 1000));
            assert_eq!(log.cost, expected);
        }
        assert_eq!(app.user("alice").await.used_quota, 2 * expected);
    }
}

db_test! {
    /// Anthropic's own refusal reaches the OpenAI client as an OpenAI error with Anthropic's
    /// message, and nothing is charged.
    async fn reports_anthropic_errors_in_openai_shape(db: TestDb) {
        let upstream = FakeUpstream::start(Reply::Json(
            400,
            json!({"type": "error", "error": {"type": "invalid_request_error",
                   "message": "messages.0.content: text content blocks must be non-empty"}}),
        ))
        .await;
        let (app, key) = setup(db, &upstream).await;
        let response = app.chat(&key, tool_request(false)).await;
        let message = expect_error(response, 400, "invalid_request_error").await;
        assert!(message.contains("text content blocks must be non-empty"), "{message}");
        let logs = app.wait_for_logs(1).await;
        assert_eq!(logs[0].cost, 0);
        assert_eq!(app.user("alice").await.used_quota, 0);
    }
}

db_test! {
    /// An overloaded Anthropic channel (529) fails over to an OpenAI channel for the same
    /// model, and an endpoint Anthropic lacks goes to the OpenAI channel.
    async fn fails_over_from_anthropic_to_openai(db: TestDb) {
        let anthropic = FakeUpstream::start(Reply::Json(
            529,
            json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
        ))
        .await;
        let openai = FakeUpstream::start(Reply::chat("From OpenAI", 12, 3)).await;
        let (app, key) = setup(db, &anthropic).await;
        app.add_channel_with(ChannelInput {
            name: Some("backup".into()),
            base_url: Some(openai.base_url()),
            models: Some(MODEL.into()),
            priority: Some(-1),
            ..Default::default()
        })
        .await;
        app.reload().await;
        let response = app.chat(&key, tool_request(false)).await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["choices"][0]["message"]["content"], "From OpenAI");
        assert_eq!(anthropic.request_count(), 1);
        let logs = app.wait_for_logs(1).await;
        assert_eq!(logs[0].attempts, 2);
        assert_eq!(logs[0].channel_name, "backup");

        let response = app
            .post(&key, "/v1/embeddings", json!({"model": MODEL, "input": "hello"}))
            .await;
        // The backup OpenAI channel serves embeddings; the Anthropic one is skipped without
        // being blamed.
        assert_eq!(response.status(), 200);
    }
}

db_test! {
    /// With only an Anthropic channel, requests it cannot express get a clear 400 naming the
    /// parameter, and embeddings say that the channel cannot serve them.
    async fn refuses_requests_an_anthropic_channel_cannot_serve(db: TestDb) {
        let upstream = FakeUpstream::start(Reply::Json(200, message_answer())).await;
        let (app, key) = setup(db, &upstream).await;
        let mut two_choices = tool_request(false);
        two_choices["n"] = json!(2);
        let response = app.chat(&key, two_choices).await;
        assert_eq!(response.status(), 400);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["param"], "n");
        let response = app
            .post(&key, "/v1/embeddings", json!({"model": MODEL, "input": "hello"}))
            .await;
        assert_eq!(response.status(), 400);
        let body: Value = response.json().await.unwrap();
        assert!(body["error"]["message"].as_str().unwrap().contains("embeddings"), "{body}");
        assert_eq!(upstream.request_count(), 0);
        let alice = app.user("alice").await;
        assert_eq!(alice.used_quota, 0);
        assert_eq!(alice.quota, TestApp::units(10.0));
    }
}

db_test! {
    /// A stream that breaks off before Anthropic's final event tells the client so, and is
    /// billed for what was generated until then.
    async fn bills_a_truncated_anthropic_stream_for_what_arrived(db: TestDb) {
        let full = message_events();
        let cut = full.find("event: content_block_stop").unwrap();
        let upstream = FakeUpstream::start(Reply::Sse {
            body: full[..cut].to_string(),
            split: 64,
            delay: Duration::ZERO,
        })
        .await;
        let (app, key) = setup(db, &upstream).await;
        let response = app.chat(&key, tool_request(true)).await;
        assert_eq!(response.status(), 200);
        let chunks = read_chunks(response).await;
        let last = chunks.last().unwrap();
        assert_eq!(last["error"]["code"], "upstream_stream_error", "{last}");
        assert!(!chunks.iter().any(|c| c == &json!("[DONE]")));
        let logs = app.wait_for_logs(1).await;
        assert_eq!(logs[0].outcome, Outcome::StreamError);
        assert!(logs[0].usage_estimated);
        assert!(logs[0].completion_tokens > 0);
        assert!(logs[0].cost > 0);
        let alice = app.user("alice").await;
        assert_eq!(alice.used_quota, logs[0].cost);
        assert_eq!(alice.quota, TestApp::units(10.0) - logs[0].cost);
    }
}

const SDK_SCRIPT: &str = r#"
import json, sys
from openai import OpenAI

client = OpenAI(base_url=sys.argv[1], api_key=sys.argv[2], max_retries=0)
tools = [{"type": "function", "function": {"name": "get_weather", "description": "Current weather",
          "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]
stream = client.chat.completions.create(
    model="claude-sonnet", messages=[{"role": "user", "content": "Weather in Paris?"}],
    tools=tools, stream=True, stream_options={"include_usage": True})
text, calls, finish, usage = [], {}, None, None
for chunk in stream:
    if chunk.usage:
        usage = chunk.usage.model_dump()
    for choice in chunk.choices:
        if choice.delta.content:
            text.append(choice.delta.content)
        for call in choice.delta.tool_calls or []:
            entry = calls.setdefault(call.index, {"id": None, "name": "", "arguments": ""})
            if call.id:
                entry["id"] = call.id
            if call.function and call.function.name:
                entry["name"] += call.function.name
            if call.function and call.function.arguments:
                entry["arguments"] += call.function.arguments
        if choice.finish_reason:
            finish = choice.finish_reason
reply = client.chat.completions.create(
    model="claude-sonnet", messages=[{"role": "user", "content": "Weather in Paris?"}], tools=tools)
print(json.dumps({"text": "".join(text), "calls": calls, "finish": finish, "usage": usage,
                  "plain_call": reply.choices[0].message.tool_calls[0].function.arguments,
                  "plain_finish": reply.choices[0].finish_reason}))
"#;

db_test! {
    /// The official OpenAI Python SDK streams a tool call from a Claude model through an
    /// Anthropic channel, and reads the non-streamed answer.
    async fn openai_sdk_talks_to_an_anthropic_channel(db: TestDb) {
        let Some(python) = crate::sdk::python() else { return };
        let upstream = FakeUpstream::start(Reply::Json(200, message_answer())).await;
        upstream.queue(Reply::Sse { body: message_events(), split: 13, delay: Duration::from_millis(1) });
        let (app, key) = setup(db, &upstream).await;
        let base = app.url("/v1");
        let output = tokio::task::spawn_blocking(move || {
            std::process::Command::new(python)
                .args(["-c", SDK_SCRIPT, &base, &key])
                .output()
                .expect("run python")
        })
        .await
        .unwrap();
        assert!(output.status.success(), "python failed: {}", String::from_utf8_lossy(&output.stderr));
        let out: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(out["text"], "Let me check the weather — ☀️?");
        assert_eq!(out["calls"]["0"]["id"], "toolu_01");
        assert_eq!(out["calls"]["0"]["name"], "get_weather");
        let arguments: Value = serde_json::from_str(out["calls"]["0"]["arguments"].as_str().unwrap()).unwrap();
        assert_eq!(arguments, json!({"city": "Paris"}));
        assert_eq!(out["finish"], "tool_calls");
        assert_eq!(out["usage"]["prompt_tokens"], 230);
        assert_eq!(out["plain_finish"], "tool_calls");
        let usage = Usage { prompt_tokens: 230, completion_tokens: 25, units: 0, cache_write_tokens: 0, cached_tokens: 200 };
        let logs = app.wait_for_logs(2).await;
        assert!(logs.iter().all(|l| l.cost == cost(usage)));
        assert_eq!(app.user("alice").await.used_quota, 2 * cost(usage));
    }
}
