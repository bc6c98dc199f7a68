//! Anthropic's Messages API in front of the gateway (`/v1/messages`): passed through to an
//! Anthropic channel byte for byte, translated for an OpenAI channel (whole and streamed, with
//! tools), refusals and upstream errors in Anthropic's envelope, token counting, billing, and
//! the official `anthropic` Python SDK end to end.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{CLI, FakeUpstream, Reply, TestApp, TestDb, db_test, read_text};
use tollgate::domain::kinds::Outcome;
use tollgate::domain::money::{MicroUsd, Ratio};
use tollgate::domain::pricing::{self, ModelPrice, Usage};
use tollgate::service::channels::ChannelInput;
use tollgate::service::prices::PriceInput;

const MODEL: &str = "claude-sonnet-4-5";

fn cost(usage: Usage) -> i64 {
    let price = ModelPrice::PerToken {
        input: MicroUsd::parse("3").unwrap(),
        output: MicroUsd::parse("15").unwrap(),
        cached_input: Some(MicroUsd::parse("0.3").unwrap()),
        cache_write: None,
    };
    pricing::cost(price, usage, Ratio::ONE, 500_000).unwrap().0
}

/// A server with alice ($10), the model priced, and one channel of `channel_type` in front of
/// `upstream`.
async fn setup(db: TestDb, upstream: &FakeUpstream, channel_type: &str) -> (TestApp, String) {
    let app = TestApp::spawn(db).await;
    let base_url = if channel_type == "anthropic" {
        upstream.origin()
    } else {
        upstream.base_url()
    };
    app.add_channel_with(ChannelInput {
        name: Some(format!("{channel_type}-channel")),
        channel_type: Some(channel_type.into()),
        base_url: Some(base_url),
        keys: Some(vec!["sk-upstream".into()]),
        models: Some(MODEL.into()),
        ..Default::default()
    })
    .await;
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
    app.create_user("alice", "10").await;
    let key = app.key_for("alice").await;
    app.reload().await;
    (app, key)
}

/// Posts to `path` the way Anthropic clients authenticate: `x-api-key`.
async fn post_messages(app: &TestApp, key: &str, path: &str, body: Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(app.url(path))
        .header("x-api-key", key)
        .header("anthropic-version", "2023-06-01")
        .header("anthropic-beta", "interleaved-thinking-2025-05-14")
        .json(&body)
        .send()
        .await
        .expect("request reaches the server")
}

fn messages_request(stream: bool) -> Value {
    json!({
        "model": MODEL,
        "max_tokens": 300,
        "system": "You are terse.",
        "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny, 21°C"},
                {"type": "text", "text": "And tomorrow?", "cache_control": {"type": "ephemeral"}}
            ]}
        ],
        "tools": [{"name": "get_weather", "description": "Current weather",
                   "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}],
        "stream": stream,
        "x_future_field": {"kept": [1.50]}
    })
}

fn anthropic_message() -> Value {
    json!({
        "id": "msg_01ABC", "type": "message", "role": "assistant", "model": MODEL,
        "content": [{"type": "text", "text": "Rain tomorrow."}],
        "stop_reason": "end_turn", "stop_sequence": null,
        "usage": {"input_tokens": 40, "cache_creation_input_tokens": 0,
                  "cache_read_input_tokens": 100, "output_tokens": 5}
    })
}

pub(crate) fn anthropic_events() -> String {
    [
        json!({"type": "message_start", "message": {"id": "msg_01ABC", "type": "message",
            "role": "assistant", "model": MODEL, "content": [], "stop_reason": null,
            "stop_sequence": null, "usage": {"input_tokens": 40, "cache_read_input_tokens": 100,
            "cache_creation_input_tokens": 0, "output_tokens": 1}}}),
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        json!({"type": "ping"}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Rain "}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "tomorrow — ☔."}}),
        json!({"type": "content_block_stop", "index": 0}),
        json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null},
               "usage": {"output_tokens": 5}}),
        json!({"type": "message_stop"}),
    ]
    .iter()
    .map(|event| format!("event: {}\ndata: {event}\n\n", event["type"].as_str().unwrap()))
    .collect()
}

/// An OpenAI stream with text, then a tool call in pieces, then usage.
fn openai_tool_stream() -> String {
    let chunk = |delta: Value, finish: Value| {
        json!({"id": "chatcmpl-77", "object": "chat.completion.chunk", "created": 1, "model": "gpt",
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    };
    let events = [
        chunk(json!({"role": "assistant", "content": ""}), Value::Null),
        chunk(json!({"content": "Checking "}), Value::Null),
        chunk(json!({"content": "— ☀️"}), Value::Null),
        chunk(
            json!({"tool_calls": [{"index": 0, "id": "call_5", "type": "function",
                                   "function": {"name": "get_weather", "arguments": ""}}]}),
            Value::Null,
        ),
        chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\":"}}]}),
            Value::Null,
        ),
        chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "\"Oslo\"}"}}]}),
            Value::Null,
        ),
        chunk(json!({}), json!("tool_calls")),
        json!({"id": "chatcmpl-77", "object": "chat.completion.chunk", "created": 1, "model": "gpt",
               "choices": [], "usage": {"prompt_tokens": 50, "completion_tokens": 12, "total_tokens": 62,
               "prompt_tokens_details": {"cached_tokens": 20}}}),
    ];
    let mut body: String = events.iter().map(|e| format!("data: {e}\n\n")).collect();
    body.push_str("data: [DONE]\n\n");
    body
}

/// `(event name, data)` of each Anthropic event, checking that the two agree.
fn parse_events(wire: &str) -> Vec<Value> {
    wire.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|event| {
            let name = event
                .lines()
                .find_map(|l| l.strip_prefix("event: "))
                .expect("event line");
            let data = event
                .lines()
                .find_map(|l| l.strip_prefix("data: "))
                .expect("data line");
            let data: Value = serde_json::from_str(data).expect("JSON data");
            assert_eq!(data["type"], name, "event name and type agree");
            data
        })
        .collect()
}

async fn expect_anthropic_error(response: reqwest::Response, status: u16, kind: &str) -> String {
    assert_eq!(response.status().as_u16(), status, "unexpected status");
    assert!(response.headers().contains_key("x-request-id"));
    let body: Value = response.json().await.expect("JSON error");
    assert_eq!(body["type"], "error", "{body}");
    assert_eq!(body["error"]["type"], kind, "{body}");
    body["error"]["message"]
        .as_str()
        .expect("message")
        .to_string()
}

db_test! {
    /// To an Anthropic channel the request goes unchanged (unknown fields, cache_control and the
    /// beta header included) and the answer comes back unchanged; the bill counts cache reads
    /// at the cached price.
    async fn passes_messages_through_to_anthropic_channels(db: TestDb) {
        let upstream = FakeUpstream::start(Reply::Json(200, anthropic_message())).await;
        let (app, key) = setup(db, &upstream, "anthropic").await;
        let request = messages_request(false);
        let response = post_messages(&app, &key, "/v1/messages", request.clone()).await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body, anthropic_message());

        let sent = &upstream.requests()[0];
        assert_eq!(sent.path, "/v1/messages");
        assert_eq!(sent.json(), request);
        assert_eq!(sent.body, serde_json::to_vec(&request).unwrap(), "the client's bytes, unchanged");
        assert_eq!(sent.headers["x-api-key"], "sk-upstream");
        assert_eq!(sent.headers["anthropic-version"], "2023-06-01");
        assert_eq!(sent.headers["anthropic-beta"], "interleaved-thinking-2025-05-14");

        let usage = Usage { prompt_tokens: 140, completion_tokens: 5, units: 0, cache_write_tokens: 0, cached_tokens: 100 };
        let logs = app.wait_for_logs(1).await;
        assert_eq!(logs[0].endpoint, "messages");
        assert_eq!(logs[0].outcome, Outcome::Success);
        assert_eq!((logs[0].prompt_tokens, logs[0].cached_tokens), (140, 100));
        assert_eq!(logs[0].cost, cost(usage));
        assert_eq!(app.user("alice").await.used_quota, cost(usage));
    }
}

db_test! {
    /// A streamed answer from an Anthropic channel reaches the client byte for byte, however
    /// the upstream cuts it, and is billed from its usage events.
    async fn streams_anthropic_events_through_unchanged(db: TestDb) {
        let upstream = FakeUpstream::start(Reply::Sse {
            body: anthropic_events(),
            split: 11,
            delay: Duration::ZERO,
        })
        .await;
        let (app, key) = setup(db, &upstream, "anthropic").await;
        let response = post_messages(&app, &key, "/v1/messages", messages_request(true)).await;
        assert_eq!(response.status(), 200);
        assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
        assert_eq!(read_text(response).await, anthropic_events());
        let usage = Usage { prompt_tokens: 140, completion_tokens: 5, units: 0, cache_write_tokens: 0, cached_tokens: 100 };
        let logs = app.wait_for_logs(1).await;
        assert_eq!(logs[0].outcome, Outcome::Success);
        assert!(logs[0].is_stream && !logs[0].usage_estimated);
        assert_eq!(logs[0].cost, cost(usage));
        assert_eq!(app.user("alice").await.used_quota, cost(usage));
    }
}

db_test! {
    /// To an OpenAI channel the request is translated to chat completions (system message,
    /// tool call and tool result, usage requested for streams) and the answer back to a
    /// Messages answer with Anthropic's usage split.
    async fn translates_messages_for_openai_channels(db: TestDb) {
        let upstream = FakeUpstream::start(Reply::Json(200, json!({
            "id": "chatcmpl-42", "object": "chat.completion", "created": 1, "model": "gpt",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": "Let me check.",
                "tool_calls": [{"id": "call_1", "type": "function",
                                "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\",\"day\":1}"}}]}}],
            "usage": {"prompt_tokens": 60, "completion_tokens": 9, "total_tokens": 69,
                      "prompt_tokens_details": {"cached_tokens": 10}}
        })))
        .await;
        let (app, key) = setup(db, &upstream, "openai").await;
        let response = post_messages(&app, &key, "/v1/messages", messages_request(false)).await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();

        let sent = &upstream.requests()[0];
        assert_eq!(sent.path, "/v1/chat/completions");
        assert_eq!(sent.headers["authorization"], "Bearer sk-upstream");
        assert!(!sent.headers.contains_key("anthropic-beta"));
        assert_eq!(
            sent.json(),
            json!({
                "model": MODEL,
                "messages": [
                    {"role": "system", "content": "You are terse."},
                    {"role": "user", "content": "Weather in Paris?"},
                    {"role": "assistant", "content": null, "tool_calls": [{"id": "toolu_1", "type": "function",
                        "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
                    {"role": "tool", "tool_call_id": "toolu_1", "content": "sunny, 21°C"},
                    {"role": "user", "content": [{"type": "text", "text": "And tomorrow?"}]}
                ],
                "max_tokens": 300,
                "tools": [{"type": "function", "function": {"name": "get_weather",
                    "description": "Current weather",
                    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]
            })
        );
        assert_eq!(
            body,
            json!({
                "id": "msg_42", "type": "message", "role": "assistant", "model": MODEL,
                "content": [
                    {"type": "text", "text": "Let me check."},
                    {"type": "tool_use", "id": "call_1", "name": "get_weather",
                     "input": {"city": "Paris", "day": 1}}
                ],
                "stop_reason": "tool_use", "stop_sequence": null,
                "usage": {"input_tokens": 50, "output_tokens": 9,
                          "cache_creation_input_tokens": 0, "cache_read_input_tokens": 10}
            })
        );
        let usage = Usage { prompt_tokens: 60, completion_tokens: 9, units: 0, cache_write_tokens: 0, cached_tokens: 10 };
        let logs = app.wait_for_logs(1).await;
        assert_eq!(logs[0].cost, cost(usage));
        assert_eq!(app.user("alice").await.used_quota, cost(usage));
    }
}

db_test! {
    /// An OpenAI stream becomes Anthropic's event sequence: a text block, then a tool-use block
    /// with its input in pieces, then the stop reason and the real usage; split at awkward
    /// places on the way in.
    async fn streams_openai_chunks_as_anthropic_events(db: TestDb) {
        let upstream = FakeUpstream::start(Reply::Sse {
            body: openai_tool_stream(),
            split: 13,
            delay: Duration::ZERO,
        })
        .await;
        let (app, key) = setup(db, &upstream, "openai").await;
        let response = post_messages(&app, &key, "/v1/messages", messages_request(true)).await;
        assert_eq!(response.status(), 200);
        let events = parse_events(&read_text(response).await);
        let sent = upstream.requests()[0].json();
        assert_eq!(sent["stream"], true);
        assert_eq!(sent["stream_options"], json!({"include_usage": true}));

        let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(kinds, [
            "message_start", "content_block_start", "content_block_delta", "content_block_delta",
            "content_block_stop", "content_block_start", "content_block_delta", "content_block_delta",
            "content_block_stop", "message_delta", "message_stop",
        ]);
        assert_eq!(events[0]["message"]["model"], MODEL);
        let text: String = events.iter()
            .filter_map(|e| e.pointer("/delta/text").and_then(Value::as_str))
            .collect();
        assert_eq!(text, "Checking — ☀️");
        assert_eq!(events[5]["content_block"],
                   json!({"type": "tool_use", "id": "call_5", "name": "get_weather", "input": {}}));
        let input: String = events.iter()
            .filter_map(|e| e.pointer("/delta/partial_json").and_then(Value::as_str))
            .collect();
        assert_eq!(serde_json::from_str::<Value>(&input).unwrap(), json!({"city": "Oslo"}));
        assert_eq!(events[9]["delta"]["stop_reason"], "tool_use");
        assert_eq!(events[9]["usage"]["input_tokens"], 30);
        assert_eq!(events[9]["usage"]["cache_read_input_tokens"], 20);
        assert_eq!(events[9]["usage"]["output_tokens"], 12);

        let usage = Usage { prompt_tokens: 50, completion_tokens: 12, units: 0, cache_write_tokens: 0, cached_tokens: 20 };
        let logs = app.wait_for_logs(1).await;
        assert_eq!(logs[0].outcome, Outcome::Success);
        assert_eq!(logs[0].cost, cost(usage));
        assert_eq!(app.user("alice").await.used_quota, cost(usage));
    }
}

db_test! {
    /// Refusals speak Anthropic's envelope: a missing max_tokens, a bad key, an unknown model,
    /// a spent balance (402, which Anthropic's SDKs do not retry), an upstream's own refusal
    /// from an OpenAI channel, and a stream cut short.
    async fn answers_errors_in_anthropic_shape(db: TestDb) {
        let upstream = FakeUpstream::start(Reply::error(400, "Invalid 'messages[1].content': too long.")).await;
        let (app, key) = setup(db, &upstream, "openai").await;

        let mut no_max = messages_request(false);
        no_max.as_object_mut().unwrap().remove("max_tokens");
        let message = expect_anthropic_error(
            post_messages(&app, &key, "/v1/messages", no_max).await, 400, "invalid_request_error").await;
        assert!(message.contains("max_tokens"), "{message}");
        expect_anthropic_error(
            post_messages(&app, "sk-wrong", "/v1/messages", messages_request(false)).await,
            401, "authentication_error").await;
        let mut unknown = messages_request(false);
        unknown["model"] = json!("claude-nope");
        expect_anthropic_error(
            post_messages(&app, &key, "/v1/messages", unknown).await, 404, "not_found_error").await;
        let mut huge = messages_request(false);
        huge["max_tokens"] = json!(100_000_000);
        let message = expect_anthropic_error(
            post_messages(&app, &key, "/v1/messages", huge).await, 402, "billing_error").await;
        assert!(message.contains("balance"), "{message}");

        let message = expect_anthropic_error(
            post_messages(&app, &key, "/v1/messages", messages_request(false)).await,
            400, "invalid_request_error").await;
        assert!(message.contains("too long"), "{message}");

        let cut: String = openai_tool_stream().split_inclusive("\n\n").take(3).collect();
        upstream.queue(Reply::Sse { body: cut, split: 50, delay: Duration::ZERO });
        let response = post_messages(&app, &key, "/v1/messages", messages_request(true)).await;
        let events = parse_events(&read_text(response).await);
        assert_eq!(events.last().unwrap()["type"], "error");
        assert!(events.iter().all(|e| e["type"] != "message_stop"));

        app.flush().await;
        let alice = app.user("alice").await;
        let logs = app.wait_for_logs(5).await;
        let charged: i64 = logs.iter().map(|l| l.cost).sum();
        assert_eq!(alice.used_quota, charged, "only the cut stream was charged");
        assert_eq!(logs.iter().filter(|l| l.cost > 0).count(), 1);
    }
}

db_test! {
    /// count_tokens in front of an OpenAI-type channel answers from the gateway's own
    /// tokenizer: no upstream call, no charge, and the same key and model checks as a real
    /// request.
    async fn counts_message_tokens_locally(db: TestDb) {
        let upstream = FakeUpstream::chat().await;
        let (app, key) = setup(db, &upstream, "openai").await;
        let mut request = messages_request(false);
        request.as_object_mut().unwrap().remove("max_tokens");
        let response = post_messages(&app, &key, "/v1/messages/count_tokens", request.clone()).await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        let tokens = body["input_tokens"].as_i64().unwrap();
        assert!((30..200).contains(&tokens), "{body}");
        let mut longer = request.clone();
        longer["system"] = json!("You are terse. ".repeat(50));
        let body: Value = post_messages(&app, &key, "/v1/messages/count_tokens", longer).await.json().await.unwrap();
        assert!(body["input_tokens"].as_i64().unwrap() >= tokens + 150, "{body}");
        expect_anthropic_error(
            post_messages(&app, "sk-wrong", "/v1/messages/count_tokens", request).await,
            401, "authentication_error").await;
        assert_eq!(upstream.request_count(), 0);
        app.flush().await;
        assert_eq!(app.user("alice").await.used_quota, 0);
    }
}

db_test! {
    /// count_tokens in front of an Anthropic channel asks Anthropic's own count_tokens (with
    /// the channel's key, version header and the mapped model) and answers its figure; when
    /// that call fails, the local count answers instead. Never charged.
    async fn forwards_count_tokens_to_anthropic_channels(db: TestDb) {
        let upstream = FakeUpstream::start(Reply::Json(200, json!({"input_tokens": 4242}))).await;
        let (app, key) = setup(db, &upstream, "anthropic").await;
        let mut request = messages_request(false);
        request.as_object_mut().unwrap().remove("max_tokens");
        let response = post_messages(&app, &key, "/v1/messages/count_tokens", request.clone()).await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body, json!({"input_tokens": 4242}));
        let sent = upstream.requests();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].path, "/v1/messages/count_tokens");
        assert_eq!(sent[0].headers["x-api-key"], "sk-upstream");
        assert!(sent[0].headers.contains_key("anthropic-version"));
        let mut expected = request.clone();
        expected["model"] = json!(MODEL);
        assert_eq!(sent[0].json(), expected);

        upstream.set_default(Reply::error(500, "overloaded"));
        let body: Value = post_messages(&app, &key, "/v1/messages/count_tokens", request).await.json().await.unwrap();
        let local = body["input_tokens"].as_i64().unwrap();
        assert!((30..200).contains(&local), "the local count answers: {body}");
        app.flush().await;
        assert_eq!(app.user("alice").await.used_quota, 0);
        assert!(app.logs().await.is_empty(), "a count is not a billed request");
    }
}

const ANTHROPIC_SDK_SCRIPT: &str = r#"
import json, sys
import anthropic

client = anthropic.Anthropic(base_url=sys.argv[1], api_key=sys.argv[2], max_retries=0)
tools = [{"name": "get_weather", "description": "Current weather",
          "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]
out = {}
with client.messages.stream(model=sys.argv[3], max_tokens=200, tools=tools,
                            messages=[{"role": "user", "content": "Weather in Oslo?"}]) as stream:
    out["stream_text"] = "".join(stream.text_stream)
    final = stream.get_final_message()
out["stream_tool"] = [b.input for b in final.content if b.type == "tool_use"]
out["stream_stop"] = final.stop_reason
out["stream_usage"] = final.usage.model_dump()
reply = client.messages.create(model=sys.argv[3], max_tokens=200, tools=tools,
                               messages=[{"role": "user", "content": "Weather in Oslo?"}])
out["reply"] = [b.model_dump() for b in reply.content]
out["reply_stop"] = reply.stop_reason
out["reply_request_id"] = reply._request_id
out["count"] = client.messages.count_tokens(
    model=sys.argv[3], messages=[{"role": "user", "content": "Weather in Oslo?"}]).input_tokens
try:
    anthropic.Anthropic(base_url=sys.argv[1], api_key="sk-wrong", max_retries=0).messages.create(
        model=sys.argv[3], max_tokens=10, messages=[{"role": "user", "content": "x"}])
except anthropic.AuthenticationError as e:
    out["auth_error"] = e.status_code
    out["auth_error_request_id"] = e.request_id
print(json.dumps(out))
"#;

/// The SDK read Tollgate's id for the request on a success and on an error, and each log row
/// keeps the upstream's own id.
fn assert_request_ids(out: &Value, logs: &[tollgate::service::db::logs::RequestLog]) {
    let reply_id = out["reply_request_id"]
        .as_str()
        .expect("the SDK's request_id on a success");
    assert!(
        logs.iter().any(|l| l.request_id == reply_id),
        "{reply_id} is a logged request"
    );
    let error_id = out["auth_error_request_id"]
        .as_str()
        .expect("the SDK's request_id on an error");
    assert_eq!(error_id.len(), 32);
    for log in logs {
        assert!(
            log.upstream_request_id.starts_with("upstream-req-"),
            "{log:?}"
        );
    }
}

pub(crate) async fn run_anthropic_sdk(
    python: String,
    app: &TestApp,
    key: &str,
    model: &str,
) -> Value {
    let base = app.url("");
    let key = key.to_string();
    let model = model.to_string();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python)
            .args(["-c", ANTHROPIC_SDK_SCRIPT, &base, &key, &model])
            .output()
            .expect("run python")
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("JSON from the script")
}

db_test! {
    /// The official anthropic SDK streams and reads a tool call from a model served by an
    /// OpenAI channel, counts tokens, and gets its own exception for a bad key.
    async fn anthropic_sdk_talks_to_an_openai_channel(db: TestDb) {
        let Some(python) = crate::sdk::python() else { return };
        let upstream = FakeUpstream::start(Reply::Sse {
            body: openai_tool_stream(),
            split: 17,
            delay: Duration::from_millis(1),
        })
        .await;
        upstream.queue(Reply::Sse { body: openai_tool_stream(), split: 17, delay: Duration::from_millis(1) });
        upstream.queue(Reply::Json(200, json!({
            "id": "chatcmpl-9", "object": "chat.completion", "created": 1, "model": "gpt",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant",
                "content": null, "tool_calls": [{"id": "call_2", "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}}]}}],
            "usage": {"prompt_tokens": 50, "completion_tokens": 12, "total_tokens": 62}
        })));
        let (app, key) = setup(db, &upstream, "openai").await;
        let out = run_anthropic_sdk(python, &app, &key, MODEL).await;
        assert_eq!(out["stream_text"], "Checking — ☀️");
        assert_eq!(out["stream_tool"], json!([{"city": "Oslo"}]));
        assert_eq!(out["stream_stop"], "tool_use");
        assert_eq!(out["stream_usage"]["input_tokens"], 30);
        assert_eq!(out["stream_usage"]["output_tokens"], 12);
        let block = &out["reply"][0];
        assert_eq!((&block["type"], &block["id"], &block["name"]), (&json!("tool_use"), &json!("call_2"), &json!("get_weather")));
        assert_eq!(block["input"], json!({"city": "Oslo"}));
        assert_eq!(out["reply_stop"], "tool_use");
        assert!(out["count"].as_i64().unwrap() > 0);
        assert_eq!(out["auth_error"], 401);
        let logs = app.wait_for_logs(2).await;
        assert_request_ids(&out, &logs);
        let charged: i64 = logs.iter().map(|l| l.cost).sum();
        assert_eq!(app.user("alice").await.used_quota, charged);
    }
}

db_test! {
    /// The anthropic SDK through to an Anthropic channel: streamed and whole answers as
    /// Anthropic sent them.
    async fn anthropic_sdk_talks_to_an_anthropic_channel(db: TestDb) {
        let Some(python) = crate::sdk::python() else { return };
        let upstream = FakeUpstream::start(Reply::Sse {
            body: anthropic_events(),
            split: 9,
            delay: Duration::from_millis(1),
        })
        .await;
        upstream.queue(Reply::Sse { body: anthropic_events(), split: 9, delay: Duration::from_millis(1) });
        upstream.queue(Reply::Json(200, anthropic_message()));
        let (app, key) = setup(db, &upstream, "anthropic").await;
        let out = run_anthropic_sdk(python, &app, &key, MODEL).await;
        assert_eq!(out["stream_text"], "Rain tomorrow — ☔.");
        assert_eq!(out["stream_stop"], "end_turn");
        assert_eq!(out["stream_usage"]["cache_read_input_tokens"], 100);
        assert_eq!(out["reply"][0]["text"], "Rain tomorrow.");
        assert_eq!(out["auth_error"], 401);
        let usage = Usage { prompt_tokens: 140, completion_tokens: 5, units: 0, cache_write_tokens: 0, cached_tokens: 100 };
        let logs = app.wait_for_logs(2).await;
        assert_request_ids(&out, &logs);
        assert!(logs.iter().all(|l| l.cost == cost(usage)), "{logs:#?}");
    }
}
