//! A Gemini channel (Google AI Studio) behind `/v1/chat/completions`, `/v1/embeddings` and
//! `/v1/messages`: the request Tollgate sends (URL with model and method, key header, body),
//! the answer each client gets back whole and streamed (split at awkward places), thought
//! signatures carried through tool-call ids, errors and safety blocks in the client's protocol,
//! a bad key taking the channel out, billing from Gemini's usage, and both official SDKs.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{CLI, FakeUpstream, Reply, TestApp, TestDb, db_test, expect_error, read_text};
use tollgate::domain::kinds::{ChannelStatus, Outcome};
use tollgate::domain::money::{MicroUsd, Ratio};
use tollgate::domain::pricing::{self, ModelPrice, Usage};
use tollgate::service::channels::ChannelInput;
use tollgate::service::prices::PriceInput;

const MODEL: &str = "gemini-2.5-flash";
const SIGNATURE: &str = "CiQBdGVzdC1zaWduYXR1cmUrLz0=";

fn cost(usage: Usage) -> i64 {
    let price = ModelPrice::PerToken {
        input: MicroUsd::parse("0.3").unwrap(),
        output: MicroUsd::parse("2.5").unwrap(),
        cached_input: Some(MicroUsd::parse("0.075").unwrap()),
        cache_write: None,
    };
    pricing::cost(price, usage, Ratio::ONE, 500_000).unwrap().0
}

/// A server with alice ($10), the model priced, and a Gemini channel given as a bare origin
/// (as an admin pastes https://generativelanguage.googleapis.com).
async fn setup(db: TestDb, upstream: &FakeUpstream) -> (TestApp, String) {
    let app = TestApp::spawn(db).await;
    app.add_channel_with(ChannelInput {
        name: Some("gemini".into()),
        channel_type: Some("gemini".into()),
        base_url: Some(upstream.origin()),
        keys: Some(vec!["AIza-test".into()]),
        models: Some(format!("{MODEL},text-embedding-004")),
        ..Default::default()
    })
    .await;
    tollgate::service::prices::set(
        app.ctx(),
        &CLI,
        MODEL,
        &PriceInput {
            input: Some("0.3".into()),
            output: Some("2.5".into()),
            cached_input: Some("0.075".into()),
            cache_write: None,
            per_request: None,
            context_tokens: None,
        },
    )
    .await
    .expect("set price");
    app.price("text-embedding-004", "0.15", "0").await;
    app.create_user("alice", "10").await;
    let key = app.key_for("alice").await;
    app.reload().await;
    (app, key)
}

pub(crate) fn gemini_answer() -> Value {
    json!({
        "candidates": [{
            "content": {"role": "model", "parts": [
                {"text": "Let me check the weather."},
                {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": SIGNATURE}
            ]},
            "finishReason": "STOP",
            "index": 0
        }],
        "usageMetadata": {"promptTokenCount": 230, "candidatesTokenCount": 20, "thoughtsTokenCount": 5,
                          "cachedContentTokenCount": 200, "totalTokenCount": 255},
        "modelVersion": MODEL,
        "responseId": "resp-1"
    })
}

fn answer_usage() -> Usage {
    Usage {
        prompt_tokens: 230,
        completion_tokens: 25,
        cached_tokens: 200,
        cache_write_tokens: 0,
        units: 0,
    }
}

fn tool_request(stream: bool) -> Value {
    json!({
        "model": MODEL,
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": [
                {"type": "text", "text": "Weather in Paris?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
            ]}
        ],
        "tools": [{"type": "function", "function": {
            "name": "get_weather",
            "description": "Current weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                           "required": ["city"], "additionalProperties": false}
        }}],
        "max_tokens": 200,
        "temperature": 0.3,
        "stream": stream,
        "stream_options": {"include_usage": true}
    })
}

/// Gemini's SSE stream for the same answer: fragments separated by CRLF blank lines, usage in
/// the fragments, the finish reason in the last one, and no end marker.
pub(crate) fn gemini_events() -> String {
    let fragments = [
        json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "Let me check "}]}, "index": 0}],
               "usageMetadata": {"promptTokenCount": 230, "totalTokenCount": 230}, "responseId": "resp-2"}),
        json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "the weather — ☀️?"}]}, "index": 0}],
               "usageMetadata": {"promptTokenCount": 230, "candidatesTokenCount": 9, "totalTokenCount": 239}}),
        json!({"candidates": [{"content": {"role": "model", "parts": [
                   {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": SIGNATURE}
               ]}, "finishReason": "STOP", "index": 0}],
               "usageMetadata": {"promptTokenCount": 230, "candidatesTokenCount": 20, "thoughtsTokenCount": 5,
                                 "cachedContentTokenCount": 200, "totalTokenCount": 255}}),
    ];
    fragments
        .iter()
        .map(|fragment| format!("data: {fragment}\r\n\r\n"))
        .collect()
}

fn data_events(wire: &str) -> Vec<Value> {
    wire.split("\n\n")
        .filter_map(|event| event.lines().find_map(|l| l.strip_prefix("data: ")))
        .map(|data| serde_json::from_str(data).unwrap_or_else(|_| json!(data)))
        .collect()
}

db_test! {
    /// A chat request becomes a generateContent call for the model, with the key in
    /// `x-goog-api-key`; the answer comes back as a chat completion whose tool call carries
    /// Gemini's thought signature, which returns to Gemini when the client continues the
    /// conversation. Thoughts are billed as output, cached tokens at the cached price.
    async fn answers_chat_completions_from_a_gemini_channel(db: TestDb) {
        let upstream = FakeUpstream::start(Reply::Json(200, gemini_answer())).await;
        let (app, key) = setup(db, &upstream).await;
        let response = app.chat(&key, tool_request(false)).await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();

        let sent = &upstream.requests()[0];
        assert_eq!(sent.path, format!("/v1beta/models/{MODEL}:generateContent"));
        assert_eq!(sent.headers["x-goog-api-key"], "AIza-test");
        assert!(!sent.headers.contains_key("authorization"), "the key goes in x-goog-api-key only");
        assert_eq!(
            sent.json(),
            json!({
                "contents": [{"role": "user", "parts": [
                    {"text": "Weather in Paris?"},
                    {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}}
                ]}],
                "systemInstruction": {"parts": [{"text": "You are terse."}]},
                "tools": [{"functionDeclarations": [{
                    "name": "get_weather", "description": "Current weather",
                    "parametersJsonSchema": {"type": "object", "properties": {"city": {"type": "string"}},
                                             "required": ["city"], "additionalProperties": false}
                }]}],
                "generationConfig": {"temperature": 0.3, "maxOutputTokens": 200}
            })
        );

        assert_eq!(body["object"], "chat.completion");
        assert_eq!(body["model"], MODEL);
        let choice = &body["choices"][0];
        assert_eq!(choice["finish_reason"], "tool_calls");
        assert_eq!(choice["message"]["content"], "Let me check the weather.");
        let call = &choice["message"]["tool_calls"][0];
        assert_eq!(call["function"]["name"], "get_weather");
        assert_eq!(serde_json::from_str::<Value>(call["function"]["arguments"].as_str().unwrap()).unwrap(), json!({"city": "Paris"}));
        assert_eq!(body["usage"]["prompt_tokens"], 230);
        assert_eq!(body["usage"]["completion_tokens"], 25);
        assert_eq!(body["usage"]["prompt_tokens_details"]["cached_tokens"], 200);

        let logs = app.wait_for_logs(1).await;
        assert_eq!(logs[0].outcome, Outcome::Success);
        assert_eq!((logs[0].prompt_tokens, logs[0].completion_tokens, logs[0].cached_tokens), (230, 25, 200));
        assert!(!logs[0].usage_estimated);
        assert_eq!(logs[0].cost, cost(answer_usage()));
        let alice = app.user("alice").await;
        assert_eq!(alice.used_quota, cost(answer_usage()));
        assert_eq!(alice.quota, TestApp::units(10.0) - cost(answer_usage()));

        // The client runs the tool and continues: the call goes back signed, the result as a
        // functionResponse named after it.
        let mut next = tool_request(false);
        let messages = next["messages"].as_array_mut().unwrap();
        messages.push(choice["message"].clone());
        messages.push(json!({"role": "tool", "tool_call_id": call["id"], "content": "{\"celsius\": 21}"}));
        let response = app.chat(&key, next).await;
        assert_eq!(response.status(), 200);
        let contents = upstream.requests()[1].json()["contents"].clone();
        assert_eq!(contents[1]["role"], "model");
        assert_eq!(contents[1]["parts"][0], json!({"text": "Let me check the weather."}));
        assert_eq!(contents[1]["parts"][1]["thoughtSignature"], SIGNATURE);
        assert_eq!(contents[1]["parts"][1]["functionCall"], json!({"name": "get_weather", "args": {"city": "Paris"}}));
        assert_eq!(contents[2], json!({"role": "user", "parts": [
            {"functionResponse": {"name": "get_weather", "response": {"celsius": 21}}}
        ]}));
    }
}

db_test! {
    /// A streamed answer (streamGenerateContent with alt=sse) arrives as OpenAI chunks, even
    /// when Gemini's bytes are cut inside fragments and inside multi-byte characters; the
    /// stream ends with the finish reason, the usage chunk and `[DONE]`.
    async fn streams_gemini_fragments_as_chat_chunks(db: TestDb) {
        let upstream = FakeUpstream::start(Reply::Sse {
            body: gemini_events(),
            split: 7,
            delay: Duration::ZERO,
        })
        .await;
        let (app, key) = setup(db, &upstream).await;
        let response = app.chat(&key, tool_request(true)).await;
        assert_eq!(response.status(), 200);
        assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
        let chunks = data_events(&read_text(response).await);
        let sent = &upstream.requests()[0];
        assert_eq!(sent.path, format!("/v1beta/models/{MODEL}:streamGenerateContent"));
        assert_eq!(sent.query, "alt=sse");

        let text: String = chunks
            .iter()
            .filter_map(|c| c.pointer("/choices/0/delta/content").and_then(Value::as_str))
            .collect();
        assert_eq!(text, "Let me check the weather — ☀️?");
        let call = chunks
            .iter()
            .find_map(|c| c.pointer("/choices/0/delta/tool_calls/0"))
            .expect("a tool-call chunk");
        assert_eq!(call["index"], 0);
        assert_eq!(call["function"]["name"], "get_weather");
        assert!(call["id"].as_str().unwrap().starts_with("gts_"), "{call}");
        let finishes: Vec<&str> = chunks
            .iter()
            .filter_map(|c| c.pointer("/choices/0/finish_reason").and_then(Value::as_str))
            .collect();
        assert_eq!(finishes, ["tool_calls"]);
        let usage_chunk = &chunks[chunks.len() - 2];
        assert_eq!(usage_chunk["choices"], json!([]));
        assert_eq!(usage_chunk["usage"]["completion_tokens"], 25);
        assert_eq!(chunks.last().unwrap(), &json!("[DONE]"));
        assert!(chunks.iter().filter(|c| c.is_object()).all(|c| c["id"] == "chatcmpl-resp-2"));

        let logs = app.wait_for_logs(1).await;
        assert_eq!(logs[0].outcome, Outcome::Success);
        assert!(logs[0].is_stream);
        assert_eq!(logs[0].cost, cost(answer_usage()));
        assert_eq!(app.user("alice").await.used_quota, cost(answer_usage()));
    }
}

db_test! {
    /// Gemini's refusals reach the client in its own protocol with Gemini's status and words;
    /// a prompt Gemini blocks is a 400 `content_filter`, not an empty answer; nothing is
    /// charged for either.
    async fn reports_gemini_errors_and_safety_blocks(db: TestDb) {
        let upstream = FakeUpstream::start(Reply::Json(
            400,
            json!({"error": {"code": 400, "message": "Request contains an invalid argument.", "status": "INVALID_ARGUMENT"}}),
        ))
        .await;
        let (app, key) = setup(db, &upstream).await;
        let response = app.chat(&key, tool_request(false)).await;
        let message = expect_error(response, 400, "invalid_argument").await;
        assert_eq!(message, "Request contains an invalid argument.");

        upstream.set_default(Reply::Json(200, json!({
            "promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
            "usageMetadata": {"promptTokenCount": 12, "totalTokenCount": 12}
        })));
        let response = app.chat(&key, tool_request(false)).await;
        let message = expect_error(response, 400, "content_filter").await;
        assert!(message.contains("PROHIBITED_CONTENT"), "{message}");
        let response = app
            .post(&key, "/v1/messages", json!({"model": MODEL, "max_tokens": 10,
                "messages": [{"role": "user", "content": "x"}]}))
            .await;
        assert_eq!(response.status(), 400);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["type"], "error");
        assert_eq!(body["error"]["type"], "invalid_request_error");

        let logs = app.wait_for_logs(3).await;
        assert!(logs.iter().all(|l| l.cost == 0), "{logs:#?}");
        let alice = app.user("alice").await;
        assert_eq!((alice.used_quota, alice.quota), (0, TestApp::units(10.0)));
        // The channel did nothing wrong.
        let channel = tollgate::service::db::channels::find_by_name(&app.db, "gemini").await.unwrap().unwrap();
        assert_eq!(channel.status, ChannelStatus::Enabled);
    }
}

db_test! {
    /// Gemini answers a bad key with 400 API_KEY_INVALID: the channel is disabled as for a 401
    /// and the request fails over to the next channel instead of reaching the client as its
    /// own mistake.
    async fn a_bad_gemini_key_disables_the_channel_and_fails_over(db: TestDb) {
        let gemini = FakeUpstream::start(Reply::Json(400, json!({"error": {
            "code": 400, "message": "API key not valid. Please pass a valid API key.", "status": "INVALID_ARGUMENT",
            "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}]
        }})))
        .await;
        let openai = FakeUpstream::start(Reply::chat("From OpenAI", 12, 3)).await;
        let (app, key) = setup(db, &gemini).await;
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
        let logs = app.wait_for_logs(1).await;
        assert_eq!((logs[0].attempts, logs[0].channel_name.as_str()), (2, "backup"));
        let mut status = ChannelStatus::Enabled;
        for _ in 0..50 {
            let channel = tollgate::service::db::channels::find_by_name(&app.db, "gemini").await.unwrap().unwrap();
            status = channel.status;
            if status == ChannelStatus::AutoDisabled {
                assert!(channel.status_reason.contains("API key not valid"), "{}", channel.status_reason);
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(status, ChannelStatus::AutoDisabled);
    }
}

db_test! {
    /// Embeddings go to batchEmbedContents, one request per input, and come back as OpenAI's
    /// list: floats, or base64 little-endian floats when asked (the SDKs' default). Gemini
    /// reports no tokens, so the prompt estimate is billed.
    async fn embeds_text_through_a_gemini_channel(db: TestDb) {
        let upstream = FakeUpstream::start(Reply::Json(200, json!({
            "embeddings": [{"values": [0.5, -1.0, 0.25]}, {"values": [2.0, 0.0, -0.5]}]
        })))
        .await;
        let (app, key) = setup(db, &upstream).await;
        let response = app
            .post(&key, "/v1/embeddings", json!({"model": "text-embedding-004", "input": ["first", "second"], "dimensions": 3}))
            .await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        let sent = &upstream.requests()[0];
        assert_eq!(sent.path, "/v1beta/models/text-embedding-004:batchEmbedContents");
        assert_eq!(sent.json()["requests"][1], json!({
            "model": "models/text-embedding-004", "content": {"parts": [{"text": "second"}]}, "outputDimensionality": 3
        }));
        assert_eq!(body["object"], "list");
        assert_eq!(body["data"][1]["embedding"], json!([2.0, 0.0, -0.5]));
        assert_eq!(body["data"][1]["index"], 1);
        let prompt = body["usage"]["prompt_tokens"].as_i64().unwrap();
        assert!(prompt > 0);

        let response = app
            .post(&key, "/v1/embeddings", json!({"model": "text-embedding-004", "input": "first", "encoding_format": "base64"}))
            .await;
        let body: Value = response.json().await.unwrap();
        use base64::Engine;
        let packed = base64::engine::general_purpose::STANDARD
            .decode(body["data"][0]["embedding"].as_str().unwrap())
            .unwrap();
        let floats: Vec<f32> = packed.chunks(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
        assert_eq!(floats, [0.5, -1.0, 0.25]);

        let logs = app.wait_for_logs(2).await;
        assert!(logs.iter().all(|l| l.usage_estimated && l.prompt_tokens > 0 && l.cost > 0), "{logs:#?}");
        let charged: i64 = logs.iter().map(|l| l.cost).sum();
        assert_eq!(app.user("alice").await.used_quota, charged);
    }
}

fn messages_request(stream: bool) -> Value {
    json!({
        "model": MODEL,
        "max_tokens": 300,
        "system": "You are terse.",
        "messages": [{"role": "user", "content": "Weather in Paris?"}],
        "tools": [{"name": "get_weather", "description": "Current weather",
                   "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}],
        "stream": stream
    })
}

async fn post_messages(app: &TestApp, key: &str, body: Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(app.url("/v1/messages"))
        .header("x-api-key", key)
        .header("anthropic-version", "2023-06-01")
        .json(&body)
        .send()
        .await
        .expect("request reaches the server")
}

db_test! {
    /// Anthropic clients reach a Gemini channel through two translations (Messages → chat →
    /// Gemini and back): a whole message with text and tool_use, and a stream of Anthropic
    /// events built from Gemini's fragments.
    async fn messages_clients_reach_gemini_channels(db: TestDb) {
        let upstream = FakeUpstream::start(Reply::Json(200, gemini_answer())).await;
        upstream.queue(Reply::Json(200, gemini_answer()));
        upstream.queue(Reply::Sse { body: gemini_events(), split: 11, delay: Duration::ZERO });
        let (app, key) = setup(db, &upstream).await;

        let response = post_messages(&app, &key, messages_request(false)).await;
        assert_eq!(response.status(), 200);
        let message: Value = response.json().await.unwrap();
        let sent = upstream.requests()[0].json();
        assert_eq!(sent["systemInstruction"], json!({"parts": [{"text": "You are terse."}]}));
        assert_eq!(sent["generationConfig"]["maxOutputTokens"], 300);
        assert_eq!(sent["tools"][0]["functionDeclarations"][0]["name"], "get_weather");
        assert_eq!(message["type"], "message");
        assert_eq!(message["model"], MODEL);
        assert_eq!(message["content"][0], json!({"type": "text", "text": "Let me check the weather."}));
        assert_eq!(message["content"][1]["type"], "tool_use");
        assert_eq!(message["content"][1]["input"], json!({"city": "Paris"}));
        assert_eq!(message["stop_reason"], "tool_use");
        assert_eq!(message["usage"]["input_tokens"], 30);
        assert_eq!(message["usage"]["cache_read_input_tokens"], 200);
        assert_eq!(message["usage"]["output_tokens"], 25);

        let response = post_messages(&app, &key, messages_request(true)).await;
        assert_eq!(response.status(), 200);
        let wire = read_text(response).await;
        let events: Vec<Value> = data_events(&wire);
        let kinds: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
        assert_eq!(kinds.first(), Some(&"message_start"));
        assert_eq!(kinds.last(), Some(&"message_stop"));
        let text: String = events
            .iter()
            .filter_map(|e| e.pointer("/delta/text").and_then(Value::as_str))
            .collect();
        assert_eq!(text, "Let me check the weather — ☀️?");
        let tool = events
            .iter()
            .find(|e| e.pointer("/content_block/type") == Some(&json!("tool_use")))
            .expect("a tool_use block");
        assert_eq!(tool["content_block"]["name"], "get_weather");
        let delta = events.iter().find(|e| e["type"] == "message_delta").unwrap();
        assert_eq!(delta["delta"]["stop_reason"], "tool_use");
        assert_eq!(delta["usage"]["output_tokens"], 25);

        let logs = app.wait_for_logs(2).await;
        assert!(logs.iter().all(|l| l.outcome == Outcome::Success && l.cost == cost(answer_usage())), "{logs:#?}");
        assert_eq!(app.user("alice").await.used_quota, 2 * cost(answer_usage()));
    }
}

const OPENAI_SDK_SCRIPT: &str = r#"
import json, sys
from openai import OpenAI

client = OpenAI(base_url=sys.argv[1], api_key=sys.argv[2], max_retries=0)
tools = [{"type": "function", "function": {"name": "get_weather", "description": "Current weather",
          "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]
messages = [{"role": "user", "content": "Weather in Paris?"}]
stream = client.chat.completions.create(model=sys.argv[3], messages=messages, tools=tools,
                                        stream=True, stream_options={"include_usage": True})
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
reply = client.chat.completions.create(model=sys.argv[3], messages=messages, tools=tools)
call = reply.choices[0].message.tool_calls[0]
follow = client.chat.completions.create(model=sys.argv[3], tools=tools, messages=messages + [
    reply.choices[0].message.model_dump(exclude_none=True),
    {"role": "tool", "tool_call_id": call.id, "content": "sunny"}])
emb = client.embeddings.create(model="text-embedding-004", input="hello")
print(json.dumps({"text": "".join(text), "calls": calls, "finish": finish, "usage": usage,
                  "plain_call": call.function.arguments, "plain_finish": reply.choices[0].finish_reason,
                  "follow": follow.choices[0].message.content, "embedding": emb.data[0].embedding}))
"#;

db_test! {
    /// The official OpenAI SDK against a Gemini channel: a streamed tool call, a whole one,
    /// the conversation continued with the tool's result, and embeddings (which the SDK asks
    /// for in base64).
    async fn openai_sdk_talks_to_a_gemini_channel(db: TestDb) {
        let Some(python) = crate::sdk::python() else { return };
        let upstream = FakeUpstream::start(Reply::Json(200, gemini_answer())).await;
        upstream.queue(Reply::Sse { body: gemini_events(), split: 13, delay: Duration::from_millis(1) });
        upstream.queue(Reply::Json(200, gemini_answer()));
        upstream.queue(Reply::Json(200, json!({
            "candidates": [{"content": {"role": "model", "parts": [{"text": "It is sunny."}]}, "finishReason": "STOP"}],
            "usageMetadata": {"promptTokenCount": 40, "candidatesTokenCount": 4}
        })));
        upstream.queue(Reply::Json(200, json!({"embeddings": [{"values": [0.5, -1.0, 0.25]}]})));
        let (app, key) = setup(db, &upstream).await;
        let base = app.url("/v1");
        let output = tokio::task::spawn_blocking(move || {
            std::process::Command::new(python)
                .args(["-c", OPENAI_SDK_SCRIPT, &base, &key, MODEL])
                .output()
                .expect("run python")
        })
        .await
        .unwrap();
        assert!(output.status.success(), "python failed: {}", String::from_utf8_lossy(&output.stderr));
        let out: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(out["text"], "Let me check the weather — ☀️?");
        assert_eq!(out["calls"]["0"]["name"], "get_weather");
        assert_eq!(serde_json::from_str::<Value>(out["calls"]["0"]["arguments"].as_str().unwrap()).unwrap(), json!({"city": "Paris"}));
        assert_eq!(out["finish"], "tool_calls");
        assert_eq!(out["usage"]["completion_tokens"], 25);
        assert_eq!(out["plain_finish"], "tool_calls");
        assert_eq!(out["follow"], "It is sunny.");
        assert_eq!(out["embedding"], json!([0.5, -1.0, 0.25]));
        let follow_up = upstream.requests()[2].json();
        assert_eq!(follow_up["contents"][1]["parts"][1]["thoughtSignature"], SIGNATURE);
        assert_eq!(follow_up["contents"][2]["parts"][0]["functionResponse"]["name"], "get_weather");
        let logs = app.wait_for_logs(4).await;
        let charged: i64 = logs.iter().map(|l| l.cost).sum();
        assert_eq!(app.user("alice").await.used_quota, charged);
    }
}

db_test! {
    /// The official anthropic SDK against a Gemini channel: a streamed tool call and a whole
    /// answer, counted tokens, and its own exception for a bad key.
    async fn anthropic_sdk_talks_to_a_gemini_channel(db: TestDb) {
        let Some(python) = crate::sdk::python() else { return };
        let upstream = FakeUpstream::start(Reply::Json(200, gemini_answer())).await;
        upstream.queue(Reply::Sse { body: gemini_events(), split: 9, delay: Duration::from_millis(1) });
        upstream.queue(Reply::Json(200, gemini_answer()));
        let (app, key) = setup(db, &upstream).await;
        let out = crate::inbound_messages::run_anthropic_sdk(python, &app, &key, MODEL).await;
        assert_eq!(out["stream_text"], "Let me check the weather — ☀️?");
        assert_eq!(out["stream_tool"], json!([{"city": "Paris"}]));
        assert_eq!(out["stream_stop"], "tool_use");
        assert_eq!(out["stream_usage"]["output_tokens"], 25);
        assert_eq!(out["reply"][1]["type"], "tool_use");
        assert_eq!(out["reply"][1]["input"], json!({"city": "Paris"}));
        assert_eq!(out["reply_stop"], "tool_use");
        assert_eq!(out["auth_error"], 401);
        let logs = app.wait_for_logs(2).await;
        assert!(logs.iter().all(|l| l.cost == cost(answer_usage())), "{logs:#?}");
    }
}
