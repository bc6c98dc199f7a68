//! An Ollama channel (native API) behind the OpenAI and Anthropic endpoints: the exact
//! `/api/chat` and `/api/embed` requests Tollgate sends, answers and newline-delimited JSON
//! streams (split at awkward places) translated back, errors in the client's envelope, billing
//! from Ollama's token counts, the channel tools, and the anthropic SDK as a client.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{
    CLI, FakeUpstream, Reply, TestApp, TestDb, db_test, expect_error, read_chunks,
};
use tollgate::domain::kinds::Outcome;
use tollgate::domain::money::{MicroUsd, Ratio};
use tollgate::domain::pricing::{self, ModelPrice, Usage};
use tollgate::service::channels::ChannelInput;

const MODEL: &str = "llama";
const UPSTREAM_MODEL: &str = "llama3.2:3b";
const EMBED_MODEL: &str = "nomic-embed-text";

/// A local Ollama: a bare origin and no key.
async fn setup(db: TestDb, upstream: &FakeUpstream) -> (TestApp, String) {
    let app = TestApp::spawn(db).await;
    // No key given: an Ollama channel needs none.
    tollgate::service::channels::create(
        app.ctx(),
        &CLI,
        ChannelInput {
            name: Some("ollama".into()),
            channel_type: Some("ollama".into()),
            base_url: Some(upstream.origin()),
            models: Some(format!("{MODEL},{EMBED_MODEL}")),
            model_mapping: Some([(MODEL.to_string(), UPSTREAM_MODEL.to_string())].into()),
            ..Default::default()
        },
    )
    .await
    .expect("a keyless Ollama channel");
    app.price(MODEL, "0.1", "0.4").await;
    app.price(EMBED_MODEL, "0.02", "0").await;
    app.create_user("alice", "10").await;
    let key = app.key_for("alice").await;
    app.reload().await;
    (app, key)
}

fn cost(prompt_tokens: i64, completion_tokens: i64) -> i64 {
    let price = ModelPrice::PerToken {
        input: MicroUsd::parse("0.1").unwrap(),
        output: MicroUsd::parse("0.4").unwrap(),
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
        "temperature": 0.3,
        "stream": stream,
        "stream_options": {"include_usage": true}
    })
}

/// What Ollama sends for the request above, whole.
pub(crate) fn ollama_answer() -> Value {
    json!({
        "model": UPSTREAM_MODEL,
        "created_at": "2026-11-21T10:00:00.000000Z",
        "message": {
            "role": "assistant",
            "content": "Let me check the weather.",
            "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]
        },
        "done": true,
        "done_reason": "stop",
        "total_duration": 912_345_678,
        "prompt_eval_count": 42,
        "eval_count": 17
    })
}

/// The same answer as Ollama streams it: one JSON object per line.
pub(crate) fn ollama_lines() -> String {
    let line = |message: Value, done: bool| {
        let mut line = json!({"model": UPSTREAM_MODEL, "created_at": "2026-11-21T10:00:00Z",
                              "message": message, "done": done});
        if done {
            line["done_reason"] = json!("stop");
            line["prompt_eval_count"] = json!(42);
            line["eval_count"] = json!(17);
        }
        format!("{line}\n")
    };
    [
        line(json!({"role": "assistant", "content": "", "thinking": "Weather needs a tool."}), false),
        line(json!({"role": "assistant", "content": "Let me check "}), false),
        line(json!({"role": "assistant", "content": "the weather — ☀️?"}), false),
        line(
            json!({"role": "assistant", "content": "",
                   "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]}),
            false,
        ),
        line(json!({"role": "assistant", "content": ""}), true),
    ]
    .concat()
}

db_test! {
    /// A chat request with tools becomes Ollama's `/api/chat` request (model mapped, options,
    /// no key header for a keyless channel); the answer comes back as a chat completion with a
    /// tool call, billed from `prompt_eval_count` and `eval_count`.
    async fn answers_chat_completions_from_an_ollama_channel(db: TestDb) {
        let upstream = FakeUpstream::start(Reply::Json(200, ollama_answer())).await;
        let (app, key) = setup(db, &upstream).await;
        let response = app.chat(&key, tool_request(false)).await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();

        let sent = upstream.requests();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].path, "/api/chat");
        assert!(!sent[0].headers.contains_key("authorization"), "a keyless channel sends no key");
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
                "options": {"temperature": 0.3, "num_predict": 200}
            })
        );

        assert_eq!(body["object"], "chat.completion");
        assert_eq!(body["model"], MODEL);
        let choice = &body["choices"][0];
        assert_eq!(choice["message"]["content"], "Let me check the weather.");
        assert_eq!(choice["finish_reason"], "tool_calls");
        let call = &choice["message"]["tool_calls"][0];
        assert_eq!(call["function"]["name"], "get_weather");
        assert_eq!(serde_json::from_str::<Value>(call["function"]["arguments"].as_str().unwrap()).unwrap(), json!({"city": "Paris"}));
        assert!(call["id"].as_str().unwrap().starts_with("call_"));
        assert_eq!(body["usage"]["prompt_tokens"], 42);
        assert_eq!(body["usage"]["completion_tokens"], 17);

        let logs = app.wait_for_logs(1).await;
        assert_eq!(logs[0].outcome, Outcome::Success);
        assert_eq!((logs[0].prompt_tokens, logs[0].completion_tokens), (42, 17));
        assert!(!logs[0].usage_estimated);
        assert_eq!(logs[0].cost, cost(42, 17));
        assert_eq!(app.user("alice").await.used_quota, cost(42, 17));

        // The tool result goes back with the function's name, found through the call's id.
        let mut follow_up = tool_request(false);
        let messages = follow_up["messages"].as_array_mut().unwrap();
        messages.push(json!({"role": "assistant", "content": null, "tool_calls": [call]}));
        messages.push(json!({"role": "tool", "tool_call_id": call["id"], "content": "18 °C"}));
        assert_eq!(app.chat(&key, follow_up).await.status(), 200);
        let sent = upstream.requests();
        assert_eq!(
            sent[1].json()["messages"].as_array().unwrap()[2..],
            [
                json!({"role": "assistant", "content": "",
                       "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]}),
                json!({"role": "tool", "content": "18 °C", "tool_name": "get_weather"})
            ]
        );
    }
}

db_test! {
    /// Ollama's newline-delimited stream, cut every 7 bytes (inside lines and inside UTF-8
    /// characters), becomes server-sent chat chunks: thinking as `reasoning_content`, text,
    /// the whole tool call, the finish reason, the usage chunk and `[DONE]`.
    async fn streams_ollama_lines_as_chat_chunks(db: TestDb) {
        let upstream = FakeUpstream::start(Reply::JsonLines {
            body: ollama_lines(),
            split: 7,
            delay: Duration::from_millis(1),
        })
        .await;
        let (app, key) = setup(db, &upstream).await;
        let response = app.chat(&key, tool_request(true)).await;
        assert_eq!(response.status(), 200);
        assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
        let chunks = read_chunks(response).await;
        assert_eq!(upstream.requests()[0].json()["stream"], true);

        let field = |pointer: &str| -> String {
            chunks.iter().filter_map(|c| c.pointer(pointer).and_then(Value::as_str)).collect()
        };
        assert_eq!(field("/choices/0/delta/reasoning_content"), "Weather needs a tool.");
        assert_eq!(field("/choices/0/delta/content"), "Let me check the weather — ☀️?");
        assert_eq!(field("/choices/0/delta/tool_calls/0/function/name"), "get_weather");
        assert_eq!(
            serde_json::from_str::<Value>(&field("/choices/0/delta/tool_calls/0/function/arguments")).unwrap(),
            json!({"city": "Paris"})
        );
        assert_eq!(field("/choices/0/finish_reason"), "tool_calls");
        let usage_chunk = &chunks[chunks.len() - 2];
        assert_eq!(usage_chunk["choices"], json!([]));
        assert_eq!(usage_chunk["usage"]["prompt_tokens"], 42);
        assert_eq!(usage_chunk["usage"]["completion_tokens"], 17);
        assert_eq!(chunks.last().unwrap(), &json!("[DONE]"));

        let logs = app.wait_for_logs(1).await;
        assert_eq!(logs[0].outcome, Outcome::Success);
        assert!(logs[0].is_stream);
        assert_eq!(logs[0].cost, cost(42, 17));
    }
}

db_test! {
    /// Ollama's errors reach the client in OpenAI's envelope with Ollama's status and words;
    /// what Ollama cannot take is refused with a 400 naming the parameter before any call; a
    /// stream that breaks off is billed for what arrived and ends with an error event.
    async fn reports_ollama_errors_and_refusals(db: TestDb) {
        let upstream = FakeUpstream::start(Reply::Json(
            404,
            json!({"error": "model \"llama3.2:3b\" not found, try pulling it first"}),
        ))
        .await;
        let (app, key) = setup(db, &upstream).await;
        let message = expect_error(app.chat(&key, tool_request(false)).await, 404, "upstream_error").await;
        assert!(message.contains("try pulling it first"), "{message}");

        let mut linked = tool_request(false);
        linked["messages"][1]["content"] = json!([
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
        ]);
        let response = app.chat(&key, linked).await;
        assert_eq!(response.status(), 400);
        let body: Value = response.json().await.unwrap();
        assert!(body["error"]["message"].as_str().unwrap().contains("data URLs"), "{body}");
        let mut forced = tool_request(false);
        forced["tool_choice"] = json!("required");
        let body: Value = app.chat(&key, forced).await.json().await.unwrap();
        assert_eq!(body["error"]["param"], "tool_choice");
        assert_eq!(upstream.request_count(), 1, "refused requests never reach Ollama");

        let cut: String = ollama_lines().lines().take(3).map(|l| format!("{l}\n")).collect();
        upstream.queue(Reply::JsonLines { body: cut, split: 11, delay: Duration::ZERO });
        let chunks = read_chunks(app.chat(&key, tool_request(true)).await).await;
        let last = chunks.last().unwrap();
        assert!(last["error"]["message"].as_str().unwrap().contains("ended before"), "{last}");
        let logs = app.wait_for_logs(4).await;
        let broken = logs.iter().find(|l| l.is_stream).unwrap();
        assert_eq!(broken.outcome, Outcome::StreamError);
        assert!(broken.usage_estimated && broken.completion_tokens > 0 && broken.cost > 0);
    }
}

db_test! {
    /// Embeddings go to `/api/embed` and come back as OpenAI's list (floats or base64), billed
    /// from Ollama's own token count.
    async fn embeds_through_an_ollama_channel(db: TestDb) {
        let upstream = FakeUpstream::start(Reply::Json(200, json!({
            "model": EMBED_MODEL,
            "embeddings": [[0.5, -0.25], [1.0, 0.125]],
            "total_duration": 14_000_000,
            "prompt_eval_count": 6
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
        assert_eq!(sent[0].path, "/api/embed");
        assert_eq!(sent[0].json(), json!({"model": EMBED_MODEL, "input": ["red", "green"]}));
        assert_eq!(body["object"], "list");
        assert_eq!(body["data"][1]["embedding"], json!([1.0, 0.125]));
        assert_eq!(body["usage"]["prompt_tokens"], 6);
        let logs = app.wait_for_logs(1).await;
        assert_eq!(logs[0].prompt_tokens, 6);
        assert!(!logs[0].usage_estimated);
        assert!(logs[0].cost > 0);
    }
}

db_test! {
    /// The channel tools speak Ollama's API: the test is a one-token `/api/chat` call, the
    /// model list comes from `/api/tags`.
    async fn channel_tools_test_and_list_ollama_models(db: TestDb) {
        let upstream = FakeUpstream::start(Reply::Json(200, ollama_answer())).await;
        let (app, _key) = setup(db, &upstream).await;
        let http = reqwest::Client::new();
        let outcome = tollgate::service::channel_tools::test(app.ctx(), &CLI, &http, "ollama", None).await.unwrap();
        assert!(outcome.ok, "{outcome:?}");
        let sent = upstream.requests();
        assert_eq!(sent[0].path, "/api/chat");
        assert_eq!(sent[0].json()["options"], json!({"num_predict": 1}));
        assert_eq!(sent[0].json()["stream"], false);

        upstream.queue(Reply::Json(200, json!({"models": [
            {"name": "llama3.2:3b", "model": "llama3.2:3b", "size": 2_019_393_189},
            {"name": "nomic-embed-text:latest", "model": "nomic-embed-text:latest"}
        ]})));
        let models = tollgate::service::channel_tools::fetch_models(app.ctx(), &CLI, &http, "ollama").await.unwrap();
        assert_eq!(models, ["llama3.2:3b", "nomic-embed-text:latest"]);
        assert_eq!(upstream.requests().last().unwrap().path, "/api/tags");
    }
}

db_test! {
    /// The official anthropic SDK against an Ollama channel: a streamed tool call and a whole
    /// answer, counted tokens, and its own exception for a bad key.
    async fn anthropic_sdk_talks_to_an_ollama_channel(db: TestDb) {
        let Some(python) = crate::sdk::python() else { return };
        let upstream = FakeUpstream::start(Reply::Json(200, ollama_answer())).await;
        upstream.queue(Reply::JsonLines { body: ollama_lines(), split: 9, delay: Duration::from_millis(1) });
        upstream.queue(Reply::Json(200, ollama_answer()));
        let (app, key) = setup(db, &upstream).await;
        let out = crate::inbound_messages::run_anthropic_sdk(python, &app, &key, MODEL).await;
        assert_eq!(out["stream_text"], "Let me check the weather — ☀️?");
        assert_eq!(out["stream_tool"], json!([{"city": "Paris"}]));
        assert_eq!(out["stream_stop"], "tool_use");
        assert_eq!(out["stream_usage"]["output_tokens"], 17);
        assert_eq!(out["reply"][1]["type"], "tool_use");
        assert_eq!(out["reply"][1]["input"], json!({"city": "Paris"}));
        assert_eq!(out["reply_stop"], "tool_use");
        assert!(out["count"].as_i64().unwrap() > 0);
        assert_eq!(out["auth_error"], 401);
        let logs = app.wait_for_logs(2).await;
        assert!(logs.iter().all(|l| l.cost == cost(42, 17)), "{logs:#?}");
    }
}
