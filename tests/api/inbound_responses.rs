//! OpenAI's Responses API in front of the gateway (`/v1/responses`): passed through to OpenAI
//! channels byte for byte (whole and streamed) and billed from the response's usage; translated
//! for Anthropic and Gemini channels into Responses' objects and stream events; what only OpenAI
//! can do refused with a 400 naming the parameter; the official `openai` SDK end to end.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{FakeUpstream, Reply, TestApp, TestDb, db_test, read_text};
use tollgate::domain::kinds::Outcome;
use tollgate::service::channels::ChannelInput;

const MODEL: &str = "any-model";

/// A server with alice ($10), the model priced, and one channel of `channel_type` in front of
/// `upstream`.
async fn setup(db: TestDb, upstream: &FakeUpstream, channel_type: &str) -> (TestApp, String) {
    let app = TestApp::spawn(db).await;
    let base_url = if channel_type == "openai" {
        upstream.base_url()
    } else {
        upstream.origin()
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
    app.price(MODEL, "1", "4").await;
    app.create_user("alice", "10").await;
    let key = app.key_for("alice").await;
    app.reload().await;
    (app, key)
}

fn openai_response() -> Value {
    json!({
        "id": "resp_up", "object": "response", "created_at": 1_700_000_000, "status": "completed",
        "model": MODEL,
        "output": [{"type": "message", "id": "msg_up", "status": "completed", "role": "assistant",
                    "content": [{"type": "output_text", "text": "Hello there", "annotations": []}]}],
        "usage": {"input_tokens": 40, "input_tokens_details": {"cached_tokens": 8},
                  "output_tokens": 6, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 46},
        "store": false, "x_new_field": {"kept": true}
    })
}

/// Responses' own stream, as OpenAI sends it.
fn openai_response_events() -> String {
    let item = json!({"type": "message", "id": "msg_up", "status": "in_progress", "role": "assistant", "content": []});
    let part = json!({"type": "output_text", "text": "", "annotations": []});
    let done_part = json!({"type": "output_text", "text": "Hello — there ☀️", "annotations": []});
    let done_item = json!({"type": "message", "id": "msg_up", "status": "completed", "role": "assistant", "content": [done_part]});
    let mut done = openai_response();
    done["output"] = json!([done_item]);
    let start = json!({"id": "resp_up", "object": "response", "created_at": 1_700_000_000, "status": "in_progress", "model": MODEL, "output": []});
    let events = [
        ("response.created", json!({"response": start})),
        (
            "response.output_item.added",
            json!({"output_index": 0, "item": item}),
        ),
        (
            "response.content_part.added",
            json!({"item_id": "msg_up", "output_index": 0, "content_index": 0, "part": part}),
        ),
        (
            "response.output_text.delta",
            json!({"item_id": "msg_up", "output_index": 0, "content_index": 0, "delta": "Hello — "}),
        ),
        (
            "response.output_text.delta",
            json!({"item_id": "msg_up", "output_index": 0, "content_index": 0, "delta": "there ☀️"}),
        ),
        (
            "response.output_text.done",
            json!({"item_id": "msg_up", "output_index": 0, "content_index": 0, "text": "Hello — there ☀️"}),
        ),
        (
            "response.content_part.done",
            json!({"item_id": "msg_up", "output_index": 0, "content_index": 0, "part": done_part}),
        ),
        (
            "response.output_item.done",
            json!({"output_index": 0, "item": done_item}),
        ),
        ("response.completed", json!({"response": done})),
    ];
    events
        .iter()
        .enumerate()
        .map(|(sequence, (name, data))| {
            let mut data = data.clone();
            data["type"] = json!(name);
            data["sequence_number"] = json!(sequence);
            format!("event: {name}\ndata: {data}\n\n")
        })
        .collect()
}

fn responses_request(stream: bool) -> Value {
    json!({
        "model": MODEL,
        "instructions": "You are terse.",
        "input": [{"role": "user", "content": [{"type": "input_text", "text": "Weather in Paris?"}]}],
        "tools": [{"type": "function", "name": "get_weather", "description": "Current weather",
                   "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}],
        "max_output_tokens": 300,
        "stream": stream
    })
}

/// The events of a Responses stream, checking that each event's name matches its type.
fn events(wire: &str) -> Vec<Value> {
    wire.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|event| {
            let name = event
                .lines()
                .find_map(|l| l.strip_prefix("event: "))
                .expect("event line");
            let data: Value = serde_json::from_str(
                event
                    .lines()
                    .find_map(|l| l.strip_prefix("data: "))
                    .expect("data line"),
            )
            .unwrap();
            assert_eq!(data["type"], name);
            data
        })
        .collect()
}

db_test! {
    /// To an OpenAI channel the request and the answer pass through unchanged (fields Tollgate
    /// does not know included), and the bill comes from the response's usage.
    async fn passes_responses_through_to_openai_channels(db: TestDb) {
        let upstream = FakeUpstream::start(Reply::Json(200, openai_response())).await;
        upstream.queue(Reply::Json(200, openai_response()));
        upstream.queue(Reply::Sse { body: openai_response_events(), split: 11, delay: Duration::ZERO });
        let (app, key) = setup(db, &upstream, "openai").await;
        let mut request = responses_request(false);
        request["store"] = json!(false);
        request["include"] = json!(["reasoning.encrypted_content"]);
        let response = app.post(&key, "/v1/responses", request.clone()).await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body, openai_response());
        let sent = &upstream.requests()[0];
        assert_eq!(sent.path, "/v1/responses");
        assert_eq!(sent.json(), request);

        let response = app.post(&key, "/v1/responses", responses_request(true)).await;
        assert_eq!(response.status(), 200);
        let wire = read_text(response).await;
        assert_eq!(wire, openai_response_events(), "the stream passes byte for byte");
        assert!(upstream.requests()[1].json().get("stream_options").is_none(), "Responses streams need no usage option");

        let logs = app.wait_for_logs(2).await;
        for log in &logs {
            assert_eq!(log.outcome, Outcome::Success);
            assert_eq!((log.prompt_tokens, log.completion_tokens, log.cached_tokens), (40, 6, 8));
            assert!(!log.usage_estimated);
            assert_eq!(log.endpoint, "responses");
        }
        let charged: i64 = logs.iter().map(|l| l.cost).sum();
        assert_eq!(app.user("alice").await.used_quota, charged);
    }
}

db_test! {
    /// To an Anthropic channel a Responses request is translated (instructions, input items,
    /// tools, max_output_tokens), and the answer comes back as a response with a message and a
    /// function_call item; streamed, as Responses' event sequence.
    async fn translates_responses_for_anthropic_channels(db: TestDb) {
        let upstream = FakeUpstream::start(Reply::Json(200, crate::provider_anthropic::message_answer())).await;
        upstream.queue(Reply::Json(200, crate::provider_anthropic::message_answer()));
        upstream.queue(Reply::Sse { body: crate::provider_anthropic::message_events(), split: 7, delay: Duration::ZERO });
        let (app, key) = setup(db, &upstream, "anthropic").await;

        let response = app.post(&key, "/v1/responses", responses_request(false)).await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        let sent = upstream.requests()[0].json();
        assert_eq!(sent["system"], json!([{"type": "text", "text": "You are terse."}]));
        assert_eq!(sent["max_tokens"], 300);
        assert_eq!(sent["messages"], json!([{"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]}]));
        assert_eq!(sent["tools"][0]["name"], "get_weather");
        assert_eq!(body["object"], "response");
        assert_eq!(body["status"], "completed");
        assert_eq!(body["model"], MODEL);
        assert_eq!(body["output"][0]["content"][0]["text"], "Let me check the weather.");
        assert_eq!(body["output"][1]["type"], "function_call");
        assert_eq!(body["output"][1]["call_id"], "toolu_01");
        assert_eq!(serde_json::from_str::<Value>(body["output"][1]["arguments"].as_str().unwrap()).unwrap(), json!({"city": "Paris"}));
        assert_eq!(body["usage"]["input_tokens"], 230);
        assert_eq!(body["usage"]["input_tokens_details"]["cached_tokens"], 200);
        assert_eq!(body["usage"]["output_tokens"], 25);

        let response = app.post(&key, "/v1/responses", responses_request(true)).await;
        assert_eq!(response.status(), 200);
        let events = events(&read_text(response).await);
        assert_eq!(events[0]["type"], "response.created");
        let text: String = events
            .iter()
            .filter(|e| e["type"] == "response.output_text.delta")
            .filter_map(|e| e["delta"].as_str())
            .collect();
        assert_eq!(text, "Let me check the weather — ☀️?");
        let arguments: String = events
            .iter()
            .filter(|e| e["type"] == "response.function_call_arguments.delta")
            .filter_map(|e| e["delta"].as_str())
            .collect();
        assert_eq!(serde_json::from_str::<Value>(&arguments).unwrap(), json!({"city": "Paris"}));
        let done = events.last().unwrap();
        assert_eq!(done["type"], "response.completed");
        assert_eq!(done["response"]["usage"]["output_tokens"], 25);
        assert_eq!(done["response"]["output"][1]["name"], "get_weather");
        let numbers: Vec<u64> = events.iter().map(|e| e["sequence_number"].as_u64().unwrap()).collect();
        assert_eq!(numbers, (0..events.len() as u64).collect::<Vec<_>>());

        let logs = app.wait_for_logs(2).await;
        assert!(logs.iter().all(|l| l.outcome == Outcome::Success && (l.prompt_tokens, l.completion_tokens) == (230, 25)), "{logs:#?}");
        let charged: i64 = logs.iter().map(|l| l.cost).sum();
        assert_eq!(app.user("alice").await.used_quota, charged);
    }
}

db_test! {
    /// What only OpenAI can do (hosted tools, stored conversations) is refused with a 400
    /// naming the parameter when the model's channels are not OpenAI; nothing is charged.
    async fn refuses_openai_only_features_elsewhere(db: TestDb) {
        let upstream = FakeUpstream::start(Reply::Json(200, crate::provider_gemini::gemini_answer())).await;
        let (app, key) = setup(db, &upstream, "gemini").await;
        let mut hosted = responses_request(false);
        hosted["tools"] = json!([{"type": "web_search"}]);
        let response = app.post(&key, "/v1/responses", hosted).await;
        assert_eq!(response.status(), 400);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["param"], "tools");
        let mut stored = responses_request(false);
        stored["previous_response_id"] = json!("resp_123");
        let response = app.post(&key, "/v1/responses", stored).await;
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["param"], "previous_response_id");
        let response = app.post(&key, "/v1/responses", json!({"model": MODEL})).await;
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["param"], "input", "{body}");
        assert_eq!(upstream.request_count(), 0);
        assert_eq!(app.user("alice").await.used_quota, 0);
    }
}

const SDK_SCRIPT: &str = r#"
import json, sys
from openai import OpenAI

client = OpenAI(base_url=sys.argv[1], api_key=sys.argv[2], max_retries=0)
tools = [{"type": "function", "name": "get_weather", "description": "Current weather",
          "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]
out = {}
with client.responses.stream(model=sys.argv[3], input="Weather in Paris?", tools=tools) as stream:
    deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
    final = stream.get_final_response()
out["stream_text"] = "".join(deltas)
out["stream_calls"] = [{"name": i.name, "arguments": json.loads(i.arguments)} for i in final.output if i.type == "function_call"]
out["stream_usage"] = final.usage.model_dump() if final.usage else None
reply = client.responses.create(model=sys.argv[3], input="Weather in Paris?", tools=tools)
out["text"] = reply.output_text
out["status"] = reply.status
calls = [i for i in reply.output if i.type == "function_call"]
out["calls"] = [{"name": i.name, "arguments": json.loads(i.arguments)} for i in calls]
if calls:
    follow = client.responses.create(model=sys.argv[3], tools=tools, input=[
        {"role": "user", "content": "Weather in Paris?"},
        {"type": "function_call", "call_id": calls[0].call_id, "name": calls[0].name, "arguments": calls[0].arguments},
        {"type": "function_call_output", "call_id": calls[0].call_id, "output": "sunny"}])
    out["follow"] = follow.output_text
print(json.dumps(out))
"#;

async fn run_sdk(python: String, app: &TestApp, key: &str) -> Value {
    let base = app.url("/v1");
    let key = key.to_string();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python)
            .args(["-c", SDK_SCRIPT, &base, &key, MODEL])
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
    /// The official OpenAI SDK's Responses client against an OpenAI channel (passed through),
    /// an Anthropic channel and a Gemini channel (translated): streamed and whole, with tools.
    async fn openai_sdk_responses_against_every_channel_type(db: TestDb) {
        let Some(python) = crate::sdk::python() else { return };
        let openai = FakeUpstream::start(Reply::Json(200, openai_response())).await;
        openai.queue(Reply::Sse { body: openai_response_events(), split: 13, delay: Duration::from_millis(1) });
        let anthropic = FakeUpstream::start(Reply::Json(200, json!({
            "id": "msg_2", "type": "message", "role": "assistant", "model": "m",
            "content": [{"type": "text", "text": "It is sunny."}], "stop_reason": "end_turn",
            "usage": {"input_tokens": 50, "output_tokens": 4}})))
        .await;
        anthropic.queue(Reply::Sse { body: crate::provider_anthropic::message_events(), split: 9, delay: Duration::from_millis(1) });
        anthropic.queue(Reply::Json(200, crate::provider_anthropic::message_answer()));
        let gemini = FakeUpstream::start(Reply::Json(200, json!({
            "candidates": [{"content": {"role": "model", "parts": [{"text": "It is sunny."}]}, "finishReason": "STOP"}],
            "usageMetadata": {"promptTokenCount": 40, "candidatesTokenCount": 4}})))
        .await;
        gemini.queue(Reply::Sse { body: crate::provider_gemini::gemini_events(), split: 9, delay: Duration::from_millis(1) });
        gemini.queue(Reply::Json(200, crate::provider_gemini::gemini_answer()));

        let (app, key) = setup(db, &openai, "openai").await;
        let out = run_sdk(python.clone(), &app, &key).await;
        assert_eq!(out["stream_text"], "Hello — there ☀️");
        assert_eq!(out["stream_usage"]["input_tokens"], 40);
        assert_eq!(out["text"], "Hello there");

        for (name, upstream) in [("anthropic", &anthropic), ("gemini", &gemini)] {
            app.add_channel_with(ChannelInput {
                name: Some(name.into()),
                channel_type: Some(name.into()),
                base_url: Some(upstream.origin()),
                keys: Some(vec!["k".into()]),
                models: Some(MODEL.into()),
                // Each channel added outranks the ones before it.
                priority: Some(if name == "anthropic" { 10 } else { 20 }),
                ..Default::default()
            })
            .await;
            app.reload().await;
            let out = run_sdk(python.clone(), &app, &key).await;
            assert_eq!(out["stream_text"], "Let me check the weather — ☀️?", "{name}");
            assert_eq!(out["stream_calls"], json!([{"name": "get_weather", "arguments": {"city": "Paris"}}]), "{name}");
            assert_eq!(out["stream_usage"]["output_tokens"], 25, "{name}");
            assert_eq!(out["text"], "Let me check the weather.", "{name}");
            assert_eq!(out["status"], "completed");
            assert_eq!(out["calls"], json!([{"name": "get_weather", "arguments": {"city": "Paris"}}]), "{name}");
            assert_eq!(out["follow"], "It is sunny.", "{name}");
        }
        let follow_up = gemini.requests()[2].json();
        assert_eq!(follow_up["contents"][2]["parts"][0]["functionResponse"]["name"], "get_weather");
        let logs = app.wait_for_logs(8).await;
        let charged: i64 = logs.iter().map(|l| l.cost).sum();
        assert_eq!(app.user("alice").await.used_quota, charged);
    }
}

db_test! {
    /// The Responses client against channels whose streams are not server-sent events: an
    /// Ollama channel (newline-delimited JSON) and a Bedrock channel (AWS's binary event
    /// stream, signed requests), streamed and whole, with a tool round trip.
    async fn openai_sdk_responses_against_ollama_and_bedrock(db: TestDb) {
        let Some(python) = crate::sdk::python() else { return };
        let ollama = FakeUpstream::start(Reply::Json(200, json!({
            "model": "m", "message": {"role": "assistant", "content": "It is sunny."},
            "done": true, "done_reason": "stop", "prompt_eval_count": 50, "eval_count": 4})))
        .await;
        ollama.queue(Reply::JsonLines { body: crate::provider_ollama::ollama_lines(), split: 9, delay: Duration::from_millis(1) });
        ollama.queue(Reply::Json(200, crate::provider_ollama::ollama_answer()));
        let bedrock = FakeUpstream::start(Reply::Json(200, json!({
            "output": {"message": {"role": "assistant", "content": [{"text": "It is sunny."}]}},
            "stopReason": "end_turn", "usage": {"inputTokens": 50, "outputTokens": 4, "totalTokens": 54}})))
        .await;
        bedrock.queue(Reply::EventStream { body: crate::provider_bedrock::converse_stream(), split: 9, delay: Duration::from_millis(1) });
        bedrock.queue(Reply::Json(200, crate::provider_bedrock::converse_answer()));

        let (app, key) = setup(db, &ollama, "openai").await;
        for (name, upstream, key_text, output_tokens) in [
            ("ollama", &ollama, None, 17),
            ("bedrock", &bedrock, Some("AKIDEXAMPLE|secret|us-east-1"), 25),
        ] {
            app.add_channel_with(ChannelInput {
                name: Some(name.into()),
                channel_type: Some(name.into()),
                base_url: Some(upstream.origin()),
                keys: Some(key_text.map(|k| vec![k.to_string()]).unwrap_or_default()),
                models: Some(MODEL.into()),
                // Each channel added outranks the ones before it.
                priority: Some(if name == "ollama" { 10 } else { 20 }),
                ..Default::default()
            })
            .await;
            app.reload().await;
            let out = run_sdk(python.clone(), &app, &key).await;
            assert_eq!(out["stream_text"], "Let me check the weather — ☀️?", "{name}");
            assert_eq!(out["stream_calls"], json!([{"name": "get_weather", "arguments": {"city": "Paris"}}]), "{name}");
            assert_eq!(out["stream_usage"]["output_tokens"], output_tokens, "{name}");
            assert_eq!(out["text"], "Let me check the weather.", "{name}");
            assert_eq!(out["calls"], json!([{"name": "get_weather", "arguments": {"city": "Paris"}}]), "{name}");
            assert_eq!(out["follow"], "It is sunny.", "{name}");
        }
        let follow_up = bedrock.requests()[2].json();
        assert_eq!(follow_up["messages"][2]["content"][0]["toolResult"]["content"][0]["text"], "sunny");
        let logs = app.wait_for_logs(6).await;
        let charged: i64 = logs.iter().map(|l| l.cost).sum();
        assert_eq!(app.user("alice").await.used_quota, charged);
    }
}
