//! AWS Bedrock channels: Converse requests signed with SigV4 (the signature recomputed here
//! from what arrived on the wire) or sent with a Bedrock API key, answers translated back,
//! ConverseStream's binary event-stream frames cut at awkward places, errors and refused
//! credentials, and billing from Bedrock's usage including cache reads.

use std::time::{Duration, SystemTime};

use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use serde_json::{Value, json};

use crate::helpers::{
    CLI, FakeUpstream, Reply, TestApp, TestDb, db_test, expect_error, read_chunks,
};
use tollgate::domain::kinds::{ChannelStatus, Outcome};
use tollgate::domain::money::{MicroUsd, Ratio};
use tollgate::domain::pricing::{self, ModelPrice, Usage};
use tollgate::providers::bedrock::encode_frame;
use tollgate::service::channels::ChannelInput;

const MODEL: &str = "claude-sonnet-4-5";
const UPSTREAM_MODEL: &str = "us.anthropic.claude-sonnet-4-5-20250929-v1:0";
const ESCAPED_MODEL: &str = "us.anthropic.claude-sonnet-4-5-20250929-v1%3A0";
const ACCESS_KEY: &str = "AKIDEXAMPLE";
const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

async fn setup(db: TestDb, upstream: &FakeUpstream, key: &str) -> (TestApp, String, i64) {
    let app = TestApp::spawn(db).await;
    let id = app
        .add_channel_with(ChannelInput {
            name: Some("bedrock".into()),
            channel_type: Some("bedrock".into()),
            base_url: Some(upstream.origin()),
            keys: Some(vec![key.into()]),
            models: Some(MODEL.into()),
            model_mapping: Some([(MODEL.to_string(), UPSTREAM_MODEL.to_string())].into()),
            ..Default::default()
        })
        .await;
    tollgate::service::prices::set(
        app.ctx(),
        &CLI,
        MODEL,
        &tollgate::service::prices::PriceInput {
            input: Some("3".into()),
            output: Some("15".into()),
            cached_input: Some("0.3".into()),
            cache_write: Some("3.75".into()),
            per_request: None,
            context_tokens: None,
        },
    )
    .await
    .unwrap();
    app.create_user("alice", "10").await;
    let user_key = app.key_for("alice").await;
    app.reload().await;
    (app, user_key, id)
}

fn cost(usage: Usage) -> i64 {
    let price = ModelPrice::PerToken {
        input: MicroUsd::parse("3").unwrap(),
        output: MicroUsd::parse("15").unwrap(),
        cached_input: Some(MicroUsd::parse("0.3").unwrap()),
        cache_write: Some(MicroUsd::parse("3.75").unwrap()),
    };
    pricing::cost(price, usage, Ratio::ONE, 500_000).unwrap().0
}

fn answer_usage() -> Usage {
    Usage {
        prompt_tokens: 30 + 200,
        completion_tokens: 25,
        cached_tokens: 200,
        ..Usage::default()
    }
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
        "stream": stream,
        "stream_options": {"include_usage": true}
    })
}

pub(crate) fn converse_answer() -> Value {
    json!({
        "output": {"message": {"role": "assistant", "content": [
            {"text": "Let me check the weather."},
            {"toolUse": {"toolUseId": "tooluse_abc", "name": "get_weather", "input": {"city": "Paris"}}}
        ]}},
        "stopReason": "tool_use",
        "usage": {"inputTokens": 30, "outputTokens": 25, "totalTokens": 255, "cacheReadInputTokens": 200},
        "metrics": {"latencyMs": 812}
    })
}

/// The same answer as ConverseStream sends it: binary event-stream frames.
pub(crate) fn converse_stream() -> Vec<u8> {
    let events = [
        ("messageStart", json!({"role": "assistant"})),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": "Let me check "}}),
        ),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": "the weather — ☀️?"}}),
        ),
        ("contentBlockStop", json!({"contentBlockIndex": 0})),
        (
            "contentBlockStart",
            json!({"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "tooluse_abc", "name": "get_weather"}}}),
        ),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 1, "delta": {"toolUse": {"input": "{\"city\":"}}}),
        ),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 1, "delta": {"toolUse": {"input": "\"Paris\"}"}}}),
        ),
        ("contentBlockStop", json!({"contentBlockIndex": 1})),
        ("messageStop", json!({"stopReason": "tool_use"})),
        (
            "metadata",
            json!({"usage": {"inputTokens": 30, "outputTokens": 25, "totalTokens": 255,
                                      "cacheReadInputTokens": 200}, "metrics": {"latencyMs": 640}}),
        ),
    ];
    events
        .iter()
        .flat_map(|(kind, payload)| {
            encode_frame(
                &[
                    (":event-type", kind),
                    (":content-type", "application/json"),
                    (":message-type", "event"),
                ],
                payload.to_string().as_bytes(),
            )
        })
        .collect()
}

/// Recomputes the SigV4 signature of a request as it arrived and compares it with the one
/// it carries: the path, headers and body that reached the upstream are the ones signed.
fn check_signature(upstream: &FakeUpstream, recorded: &crate::helpers::upstream::Recorded) {
    let authorization = recorded.headers["authorization"].to_str().unwrap();
    assert!(
        authorization.starts_with(&format!("AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/")),
        "{authorization}"
    );
    assert!(
        authorization.contains("/us-west-2/bedrock/aws4_request"),
        "{authorization}"
    );
    let signed: Vec<&str> = authorization
        .split("SignedHeaders=")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .split(';')
        .collect();
    assert!(
        signed.contains(&"host")
            && signed.contains(&"x-amz-date")
            && signed.contains(&"content-type"),
        "{signed:?}"
    );
    let amz_date = recorded.headers["x-amz-date"].to_str().unwrap();
    let number = |range: std::ops::Range<usize>| amz_date[range].parse::<u8>().unwrap();
    let date = time::Date::from_calendar_date(
        amz_date[0..4].parse().unwrap(),
        time::Month::try_from(number(4..6)).unwrap(),
        number(6..8),
    )
    .unwrap();
    let signed_at = date
        .with_hms(number(9..11), number(11..13), number(13..15))
        .unwrap()
        .assume_utc();
    let at = SystemTime::UNIX_EPOCH
        + Duration::from_secs(u64::try_from(signed_at.unix_timestamp()).unwrap());
    let identity =
        aws_credential_types::Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "test").into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region("us-west-2")
        .name("bedrock")
        .time(at)
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let uri = format!("{}{}", upstream.origin(), recorded.path);
    let headers: Vec<(String, String)> = recorded
        .headers
        .iter()
        .filter(|(name, _)| {
            signed.contains(&name.as_str())
                && name.as_str() != "host"
                && name.as_str() != "x-amz-date"
        })
        .map(|(name, value)| {
            (
                name.as_str().to_string(),
                value.to_str().unwrap().to_string(),
            )
        })
        .collect();
    let signable = SignableRequest::new(
        "POST",
        &uri,
        headers.iter().map(|(n, v)| (n.as_str(), v.as_str())),
        SignableBody::Bytes(&recorded.body),
    )
    .unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    let mut expected = http::Request::new(());
    instructions.apply_to_request_http1x(&mut expected);
    assert_eq!(
        expected.headers()["authorization"],
        authorization,
        "the signature matches the request as sent"
    );
}

db_test! {
    /// A chat request with tools becomes a Converse request on the model's escaped path,
    /// signed with SigV4 for the key's region; the answer comes back as a chat completion
    /// billed from Bedrock's usage (cache reads at the cached price).
    async fn converses_with_bedrock_signed_with_sigv4(db: TestDb) {
        let upstream = FakeUpstream::start(Reply::Json(200, converse_answer())).await;
        let key = format!("{ACCESS_KEY}|{SECRET_KEY}|us-west-2");
        let (app, user_key, _) = setup(db, &upstream, &key).await;
        let body: Value = app.chat(&user_key, tool_request(false)).await.json().await.unwrap();
        let sent = upstream.requests();
        assert_eq!(sent[0].path, format!("/model/{ESCAPED_MODEL}/converse"));
        assert_eq!(
            sent[0].json(),
            json!({
                "messages": [{"role": "user", "content": [{"text": "Weather in Paris?"}]}],
                "system": [{"text": "You are terse."}],
                "inferenceConfig": {"maxTokens": 200},
                "toolConfig": {"tools": [{"toolSpec": {
                    "name": "get_weather",
                    "description": "Current weather",
                    "inputSchema": {"json": {"type": "object", "properties": {"city": {"type": "string"}}}}
                }}]}
            })
        );
        check_signature(&upstream, &sent[0]);

        let choice = &body["choices"][0];
        assert_eq!(choice["finish_reason"], "tool_calls");
        assert_eq!(choice["message"]["content"], "Let me check the weather.");
        assert_eq!(choice["message"]["tool_calls"][0]["id"], "tooluse_abc");
        assert_eq!(choice["message"]["tool_calls"][0]["function"]["arguments"], "{\"city\":\"Paris\"}");
        assert_eq!(body["usage"]["prompt_tokens"], 230);
        assert_eq!(body["usage"]["prompt_tokens_details"]["cached_tokens"], 200);
        let logs = app.wait_for_logs(1).await;
        assert_eq!(logs[0].cost, cost(answer_usage()));

        // The tool result goes back as a toolResult block in the user's turn.
        let mut follow_up = tool_request(false);
        let messages = follow_up["messages"].as_array_mut().unwrap();
        messages.push(choice["message"].clone());
        messages.push(json!({"role": "tool", "tool_call_id": "tooluse_abc", "content": "18 °C"}));
        assert_eq!(app.chat(&user_key, follow_up).await.status(), 200);
        let turns = upstream.requests()[1].json()["messages"].clone();
        assert_eq!(turns[1]["content"][1]["toolUse"], json!({"toolUseId": "tooluse_abc", "name": "get_weather", "input": {"city": "Paris"}}));
        assert_eq!(turns[2], json!({"role": "user", "content": [{"toolResult": {"toolUseId": "tooluse_abc", "content": [{"text": "18 °C"}]}}]}));
    }
}

db_test! {
    /// ConverseStream's binary frames, cut every 7 bytes (inside preludes, headers and UTF-8
    /// characters), become chat chunks with the text, the streamed tool call, the finish
    /// reason and the usage chunk; a Bedrock API key goes as a bearer token, unsigned.
    async fn streams_converse_events_as_chat_chunks(db: TestDb) {
        let upstream = FakeUpstream::start(Reply::EventStream {
            body: converse_stream(),
            split: 7,
            delay: Duration::from_millis(1),
        })
        .await;
        let (app, user_key, _) = setup(db, &upstream, "ABSKQmVkcm9ja0FQSUtleS1leGFtcGxl").await;
        let response = app.chat(&user_key, tool_request(true)).await;
        assert_eq!(response.status(), 200);
        assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
        let chunks = read_chunks(response).await;
        let sent = upstream.requests();
        assert_eq!(sent[0].path, format!("/model/{ESCAPED_MODEL}/converse-stream"));
        assert_eq!(sent[0].headers["authorization"], "Bearer ABSKQmVkcm9ja0FQSUtleS1leGFtcGxl");
        assert!(!sent[0].headers.contains_key("x-amz-date"));

        let field = |pointer: &str| -> String {
            chunks.iter().filter_map(|c| c.pointer(pointer).and_then(Value::as_str)).collect()
        };
        assert_eq!(field("/choices/0/delta/content"), "Let me check the weather — ☀️?");
        assert_eq!(field("/choices/0/delta/tool_calls/0/id"), "tooluse_abc");
        assert_eq!(field("/choices/0/delta/tool_calls/0/function/arguments"), "{\"city\":\"Paris\"}");
        assert_eq!(field("/choices/0/finish_reason"), "tool_calls");
        let usage_chunk = &chunks[chunks.len() - 2];
        assert_eq!(usage_chunk["usage"]["prompt_tokens"], 230);
        assert_eq!(usage_chunk["usage"]["completion_tokens"], 25);
        assert_eq!(chunks.last().unwrap(), &json!("[DONE]"));
        let logs = app.wait_for_logs(1).await;
        assert_eq!(logs[0].outcome, Outcome::Success);
        assert_eq!(logs[0].cost, cost(answer_usage()));
    }
}

db_test! {
    /// Bedrock's refusals keep their status and message; credentials it rejects (403)
    /// disable the channel; an exception frame inside a stream ends it with an error event
    /// and bills what arrived; malformed keys are refused when the channel is added.
    async fn reports_bedrock_errors(db: TestDb) {
        let upstream = FakeUpstream::start(Reply::Json(400, json!({
            "message": "Malformed input request: #: extraneous key [foo] is not permitted"
        })))
        .await;
        let key = format!("{ACCESS_KEY}|{SECRET_KEY}|us-west-2");
        let (app, user_key, id) = setup(db, &upstream, &key).await;
        let message = expect_error(app.chat(&user_key, tool_request(false)).await, 400, "upstream_error").await;
        assert!(message.contains("extraneous key"), "{message}");

        let mut frames = converse_stream();
        frames.truncate(frames.len() / 2);
        let cut = frames.len() - bedrock_frame_tail(&frames);
        frames.truncate(cut);
        frames.extend(encode_frame(
            &[(":exception-type", "throttlingException"), (":content-type", "application/json"), (":message-type", "exception")],
            br#"{"message":"Too many tokens, please wait before trying again."}"#,
        ));
        upstream.queue(Reply::EventStream { body: frames, split: 5, delay: Duration::ZERO });
        let chunks = read_chunks(app.chat(&user_key, tool_request(true)).await).await;
        let last = chunks.iter().rev().find(|c| c.get("error").is_some()).unwrap();
        assert!(last["error"]["message"].as_str().unwrap().contains("Too many tokens"), "{last}");

        upstream.set_default(Reply::Json(403, json!({"message": "The security token included in the request is invalid."})));
        let response = app.chat(&user_key, tool_request(false)).await;
        assert_eq!(response.status(), 503);
        let mut status = ChannelStatus::Enabled;
        for _ in 0..50 {
            status = tollgate::service::channels::by_id(app.ctx(), &CLI, id).await.unwrap().status;
            if status == ChannelStatus::AutoDisabled {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(status, ChannelStatus::AutoDisabled);
        // The probe sends a one-token Converse request with the key and re-enables the channel
        // once Bedrock accepts it.
        app.set_option("probe_interval_secs", "1").await;
        upstream.set_default(Reply::Json(200, converse_answer()));
        for _ in 0..60 {
            status = tollgate::service::channels::by_id(app.ctx(), &CLI, id).await.unwrap().status;
            if status == ChannelStatus::Enabled {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(status, ChannelStatus::Enabled, "the probe re-enabled the channel");
        let probe = upstream.requests().into_iter().last().unwrap();
        assert_eq!(probe.json()["inferenceConfig"]["maxTokens"], 1);
        check_signature(&upstream, &probe);
        let logs = app.wait_for_logs(3).await;
        let streamed = logs.iter().find(|l| l.is_stream).unwrap();
        assert_eq!(streamed.outcome, Outcome::StreamError);
        assert!(streamed.cost > 0, "what arrived is billed");

        let refused = tollgate::service::channels::create(app.ctx(), &CLI, ChannelInput {
            name: Some("bad".into()),
            channel_type: Some("bedrock".into()),
            base_url: Some(upstream.origin()),
            keys: Some(vec!["AKIA|".into()]),
            models: Some(MODEL.into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
        assert!(refused.to_string().contains("ACCESS_KEY_ID|SECRET_ACCESS_KEY"), "{refused}");
    }
}

/// How many bytes at the end of `frames` belong to an incomplete frame.
fn bedrock_frame_tail(frames: &[u8]) -> usize {
    let mut at = 0;
    while let Some(end) = tollgate::providers::bedrock::frame_end(&frames[at..]) {
        at += end;
    }
    frames.len() - at
}

db_test! {
    /// The official anthropic SDK against a Bedrock channel: a streamed tool call and a whole
    /// answer, counted tokens, and its own exception for a bad key.
    async fn anthropic_sdk_talks_to_a_bedrock_channel(db: TestDb) {
        let Some(python) = crate::sdk::python() else { return };
        let upstream = FakeUpstream::start(Reply::Json(200, converse_answer())).await;
        upstream.queue(Reply::EventStream { body: converse_stream(), split: 9, delay: Duration::from_millis(1) });
        upstream.queue(Reply::Json(200, converse_answer()));
        let key = format!("{ACCESS_KEY}|{SECRET_KEY}|us-west-2");
        let (app, user_key, _) = setup(db, &upstream, &key).await;
        let out = crate::inbound_messages::run_anthropic_sdk(python, &app, &user_key, MODEL).await;
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
