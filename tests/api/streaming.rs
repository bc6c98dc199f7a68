//! Streaming: events pass through as they arrive, usage is read (or counted) on the way, and
//! every way a stream can end is billed once.

use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Value, json};

use crate::helpers::upstream::StreamEnd;
use crate::helpers::{FakeUpstream, Reply, TestApp, db_test};
use tollgate::domain::kinds::Outcome;
use tollgate::domain::money::{MicroUsd, Ratio};
use tollgate::domain::pricing::{self, ModelPrice, Usage};
use tollgate::domain::tokenizer;
use tollgate::protocol::Endpoint;
use tollgate::relay::request::ClientRequest;

const PRICE_IN: &str = "2";
const PRICE_OUT: &str = "8";

fn price() -> ModelPrice {
    ModelPrice::PerToken {
        input: MicroUsd::parse(PRICE_IN).unwrap(),
        output: MicroUsd::parse(PRICE_OUT).unwrap(),
        cached_input: None,
        cache_write: None,
    }
}

fn cost(prompt: i64, completion: i64) -> i64 {
    pricing::cost(
        price(),
        Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            cached_tokens: 0,
            cache_write_tokens: 0,
            units: 0,
        },
        Ratio::ONE,
        500_000,
    )
    .unwrap()
    .0
}

fn stream_body(extra: Value) -> Value {
    let mut body = json!({
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Tell me a story."}],
        "stream": true
    });
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    body
}

/// Prompt tokens the gateway estimates for `body` (what it bills when the upstream reports
/// no usage).
fn prompt_estimate(body: &Value) -> i64 {
    let raw = serde_json::to_vec(body).unwrap();
    ClientRequest::parse(Endpoint::ChatCompletions, &raw)
        .unwrap()
        .estimate_prompt_tokens(tokenizer::shared())
}

async fn setup(db: crate::helpers::TestDb, upstream: &FakeUpstream) -> (TestApp, String) {
    let app = TestApp::spawn(db).await;
    app.add_channel("main", upstream, "gpt-4o-mini").await;
    app.price("gpt-4o-mini", PRICE_IN, PRICE_OUT).await;
    app.create_user("alice", "10").await;
    let key = app.key_for("alice").await;
    app.reload().await;
    (app, key)
}

/// One received SSE event and when it arrived.
struct Event {
    data: String,
    at: Instant,
}

/// Reads the whole stream, splitting it into events.
async fn read_events(response: reqwest::Response) -> Vec<Event> {
    let mut events = Vec::new();
    let mut buffer = String::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let Ok(chunk) = chunk else { break };
        buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            if let Some(data) = event.trim().strip_prefix("data: ") {
                events.push(Event {
                    data: data.to_string(),
                    at: Instant::now(),
                });
            }
        }
    }
    events
}

fn content(events: &[Event]) -> String {
    events
        .iter()
        .filter_map(|e| serde_json::from_str::<Value>(&e.data).ok())
        .filter_map(|v| {
            v["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_string)
        })
        .collect()
}

db_test! {
    /// Each event reaches the client when the upstream sends it, not when the stream ends.
    async fn streams_event_by_event(db: TestDb) {
        let upstream = FakeUpstream::start(Reply::Stream {
            pieces: vec!["one".into(), "two".into(), "three".into()],
            usage: Some((20, 3)),
            delay: Duration::from_millis(300),
            end: StreamEnd::Done,
        })
        .await;
        let (app, key) = setup(db, &upstream).await;
        let started = Instant::now();
        let response = app.chat(&key, stream_body(json!({}))).await;
        assert_eq!(response.status(), 200);
        assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
        assert!(response.headers().contains_key("x-request-id"));
        let events = read_events(response).await;
        let first_content = events
            .iter()
            .find(|e| e.data.contains("\"one\""))
            .expect("the first piece arrives");
        let last = events.last().unwrap();
        assert_eq!(last.data, "[DONE]");
        // Pieces are 300 ms apart: the first one must arrive long before the end.
        assert!(
            last.at.duration_since(first_content.at) >= Duration::from_millis(700),
            "the stream was buffered: first piece at {:?}, end at {:?}",
            first_content.at.duration_since(started),
            last.at.duration_since(started)
        );
        assert_eq!(content(&events), "onetwothree");
        let log = &app.wait_for_logs(1).await[0];
        assert!(log.is_stream);
        let ttft = log.ttft_ms.expect("time to first token is logged");
        assert!(ttft < 300, "ttft {ttft} ms");
        assert!(log.latency_ms >= 900, "latency {} ms", log.latency_ms);
    }
}

db_test! {
    /// Tollgate asks for usage, bills it exactly, and hides the usage chunk from a client that
    /// did not ask for it; a client that asked gets it.
    async fn bills_streams_from_upstream_usage(db: TestDb) {
        let upstream = FakeUpstream::start(Reply::stream(&["Hello", " world"], Some((1000, 200)))).await;
        let (app, key) = setup(db, &upstream).await;
        let before = app.user("alice").await.quota;

        let events = read_events(app.chat(&key, stream_body(json!({}))).await).await;
        assert_eq!(content(&events), "Hello world");
        assert!(!events.iter().any(|e| e.data.contains("\"usage\":{")), "usage chunk leaked");
        assert_eq!(events.last().unwrap().data, "[DONE]");
        let sent = upstream.requests()[0].json();
        assert_eq!(sent["stream_options"]["include_usage"], true);

        let body = stream_body(json!({"stream_options": {"include_usage": true}}));
        let events = read_events(app.chat(&key, body).await).await;
        let usage_event = events.iter().find(|e| e.data.contains("\"usage\":{")).expect("usage chunk forwarded");
        let usage: Value = serde_json::from_str(&usage_event.data).unwrap();
        assert_eq!(usage["usage"]["prompt_tokens"], 1000);

        let logs = app.wait_for_logs(2).await;
        for log in &logs {
            assert_eq!(log.outcome, Outcome::Success);
            assert_eq!((log.prompt_tokens, log.completion_tokens), (1000, 200));
            assert!(!log.usage_estimated);
            // 1000 × $2/M + 200 × $8/M = $0.0036 = 1800 units.
            assert_eq!(log.cost, 1800);
        }
        assert_eq!(app.user("alice").await.quota, before - 3600);
    }
}

db_test! {
    /// An upstream that sends no usage is billed for the prompt estimate and the text it
    /// actually streamed, counted as it passed.
    async fn counts_streamed_text_when_usage_is_missing(db: TestDb) {
        let upstream = FakeUpstream::start(Reply::stream(&["Hello", " world", ", how are you?"], None)).await;
        let (app, key) = setup(db, &upstream).await;
        let body = stream_body(json!({}));
        let events = read_events(app.chat(&key, body.clone()).await).await;
        assert_eq!(content(&events), "Hello world, how are you?");
        let log = &app.wait_for_logs(1).await[0];
        assert!(log.usage_estimated);
        let completion = tokenizer::shared().count("Hello world, how are you?") as i64;
        assert_eq!(log.completion_tokens, completion);
        assert_eq!(log.prompt_tokens, prompt_estimate(&body));
        assert_eq!(log.cost, cost(log.prompt_tokens, completion));
        assert_eq!(log.outcome, Outcome::Success);
    }
}

db_test! {
    /// A client that hangs up mid-stream pays for what was generated until then, and the
    /// user's balance moves by exactly the logged cost.
    async fn bills_a_client_that_disconnects_mid_stream(db: TestDb) {
        let pieces: Vec<String> = (0..20).map(|i| format!(" word{i}")).collect();
        let upstream = FakeUpstream::start(Reply::Stream {
            pieces,
            usage: Some((5000, 5000)),
            delay: Duration::from_millis(150),
            end: StreamEnd::Done,
        })
        .await;
        let (app, key) = setup(db, &upstream).await;
        let before = app.user("alice").await.quota;
        let body = stream_body(json!({}));
        let response = app.chat(&key, body.clone()).await;
        let mut stream = response.bytes_stream();
        let mut received = String::new();
        while !received.contains("word2") {
            let chunk = stream.next().await.unwrap().unwrap();
            received.push_str(std::str::from_utf8(&chunk).unwrap());
        }
        drop(stream); // hang up after three words of twenty

        let log = &app.wait_for_logs(1).await[0];
        assert_eq!(log.outcome, Outcome::ClientClosed);
        assert!(log.usage_estimated, "no usage arrived, so tokens were counted");
        assert_eq!(log.prompt_tokens, prompt_estimate(&body));
        // At least the three words received; far fewer than the twenty the upstream would
        // have produced.
        let three = tokenizer::shared().count(" word0 word1 word2") as i64;
        assert!(log.completion_tokens >= three && log.completion_tokens < 3 * three, "{}", log.completion_tokens);
        assert_eq!(log.cost, cost(log.prompt_tokens, log.completion_tokens));
        assert!(log.cost > 0);
        assert_eq!(app.user("alice").await.quota, before - log.cost);
    }
}

db_test! {
    /// An upstream that goes silent past the idle timeout, or breaks mid-stream, ends the
    /// client's stream with an error event; what was generated is billed, and no other channel
    /// is tried once bytes have gone out.
    async fn ends_broken_and_silent_streams_with_an_error_event(db: TestDb) {
        let upstream = FakeUpstream::start(Reply::Stream {
            pieces: vec!["partial".into()],
            usage: None,
            delay: Duration::from_millis(10),
            end: StreamEnd::Silent,
        })
        .await;
        let backup = FakeUpstream::start(Reply::stream(&["backup"], Some((1, 1)))).await;
        let app = TestApp::spawn(db).await;
        app.add_channel_with(tollgate::service::channels::ChannelInput {
            name: Some("main".into()),
            base_url: Some(upstream.base_url()),
            models: Some("gpt-4o-mini".into()),
            priority: Some(10),
            ..Default::default()
        }).await;
        app.add_channel("backup", &backup, "gpt-4o-mini").await;
        app.price("gpt-4o-mini", PRICE_IN, PRICE_OUT).await;
        app.set_option("stream_idle_timeout_secs", "1").await;
        app.create_user("alice", "10").await;
        let key = app.key_for("alice").await;
        app.reload().await;

        let started = Instant::now();
        let events = read_events(app.chat(&key, stream_body(json!({}))).await).await;
        assert!(started.elapsed() >= Duration::from_secs(1));
        assert_eq!(content(&events), "partial");
        let last: Value = serde_json::from_str(&events.last().unwrap().data).unwrap();
        assert_eq!(last["error"]["code"], "upstream_stream_error");
        assert!(last["error"]["message"].as_str().unwrap().contains("nothing for 1 s"));

        upstream.set_default(Reply::Stream {
            pieces: vec!["cut".into()],
            usage: None,
            delay: Duration::from_millis(10),
            end: StreamEnd::Error,
        });
        let events = read_events(app.chat(&key, stream_body(json!({}))).await).await;
        assert_eq!(content(&events), "cut");
        let last: Value = serde_json::from_str(&events.last().unwrap().data).unwrap();
        assert_eq!(last["error"]["code"], "upstream_stream_error");
        assert_eq!(backup.request_count(), 0, "no retry after bytes reached the client");

        let logs = app.wait_for_logs(2).await;
        for log in &logs {
            assert_eq!(log.outcome, Outcome::StreamError);
            assert!(log.completion_tokens >= 1);
            assert_eq!(log.cost, cost(log.prompt_tokens, log.completion_tokens));
        }
    }
}

db_test! {
    /// A stream that fails before its first event can still move to another channel.
    async fn fails_over_before_the_first_event(db: TestDb) {
        let broken = FakeUpstream::start(Reply::BrokenStream).await;
        let good = FakeUpstream::start(Reply::stream(&["fine"], Some((3, 1)))).await;
        let app = TestApp::spawn(db).await;
        app.add_channel_with(tollgate::service::channels::ChannelInput {
            name: Some("broken".into()),
            base_url: Some(broken.base_url()),
            models: Some("gpt-4o-mini".into()),
            priority: Some(10),
            ..Default::default()
        }).await;
        app.add_channel("good", &good, "gpt-4o-mini").await;
        app.price("gpt-4o-mini", PRICE_IN, PRICE_OUT).await;
        app.create_user("alice", "10").await;
        let key = app.key_for("alice").await;
        app.reload().await;
        let events = read_events(app.chat(&key, stream_body(json!({}))).await).await;
        assert_eq!(content(&events), "fine");
        assert_eq!(broken.request_count(), 1);
        let log = &app.wait_for_logs(1).await[0];
        assert_eq!(log.attempts, 2);
        assert_eq!(log.channel_name, "good");
        assert_eq!(log.cost, cost(3, 1));
    }
}

db_test! {
    /// A 200 "stream" that is not JSON events (an HTML error page, data that is not JSON)
    /// fails over to the next channel before anything reaches the client, and is not billed.
    async fn a_stream_that_is_not_json_events_fails_over(db: TestDb) {
        let html = FakeUpstream::start(Reply::Sse {
            body: "<html><body><h1>502 Bad Gateway</h1></body></html>".into(),
            split: 7,
            delay: Duration::ZERO,
        })
        .await;
        let not_json = FakeUpstream::start(Reply::Sse {
            body: ": warming up\n\ndata: upstream overloaded, try later\n\n".into(),
            split: 5,
            delay: Duration::ZERO,
        })
        .await;
        let good = FakeUpstream::start(Reply::stream(&["fine"], Some((3, 1)))).await;
        let app = TestApp::spawn(db).await;
        for (name, upstream, priority) in [("html", &html, 20), ("not-json", &not_json, 10)] {
            app.add_channel_with(tollgate::service::channels::ChannelInput {
                name: Some(name.into()),
                base_url: Some(upstream.base_url()),
                models: Some("gpt-4o-mini".into()),
                priority: Some(priority),
                ..Default::default()
            })
            .await;
        }
        app.add_channel("good", &good, "gpt-4o-mini").await;
        app.price("gpt-4o-mini", PRICE_IN, PRICE_OUT).await;
        app.create_user("alice", "10").await;
        let key = app.key_for("alice").await;
        app.reload().await;
        let response = app.chat(&key, stream_body(json!({}))).await;
        assert_eq!(response.status(), 200);
        let events = read_events(response).await;
        assert_eq!(content(&events), "fine");
        assert!(events.iter().all(|e| !e.data.contains("html") && !e.data.contains("overloaded")));
        assert_eq!((html.request_count(), not_json.request_count()), (1, 1));
        let log = &app.wait_for_logs(1).await[0];
        assert_eq!(log.attempts, 3);
        assert_eq!(log.channel_name, "good");
        assert_eq!(log.outcome, Outcome::Success);
        assert_eq!(log.cost, cost(3, 1));
    }
}

db_test! {
    /// A stream that turns into something else after its first events: the client gets what
    /// came before and an error event; the request is logged as the upstream's error and
    /// billed for what was streamed.
    async fn a_stream_turning_to_garbage_ends_with_an_error_event(db: TestDb) {
        let chunk = |text: &str| {
            json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                   "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": null}]})
        };
        let body = format!(
            "data: {}\n\ndata: {}\n\ndata: <html>proxy error</html>\n\ndata: {}\n\n",
            chunk("Once upon"),
            chunk(" a time"),
            chunk(" never sent")
        );
        let upstream = FakeUpstream::start(Reply::Sse { body, split: 9, delay: Duration::ZERO }).await;
        let (app, key) = setup(db, &upstream).await;
        let request = stream_body(json!({}));
        let response = app.chat(&key, request.clone()).await;
        assert_eq!(response.status(), 200);
        let events = read_events(response).await;
        assert_eq!(content(&events), "Once upon a time");
        let last: Value = serde_json::from_str(&events.last().unwrap().data).unwrap();
        assert_eq!(last["error"]["code"], "upstream_stream_error", "{last}");
        assert!(events.iter().all(|e| !e.data.contains("never sent")));
        let log = &app.wait_for_logs(1).await[0];
        assert_eq!(log.outcome, Outcome::UpstreamError);
        assert!(log.usage_estimated);
        let streamed = tokenizer::shared().count("Once upon a time") as i64;
        assert_eq!(log.cost, cost(prompt_estimate(&request), streamed));
        assert_eq!(app.user("alice").await.used_quota, log.cost);
    }
}
