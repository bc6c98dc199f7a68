//! `/metrics`: who may read it (a root-set bearer token on the listen address, anyone on the
//! `--metrics-listen` address), and what it says, read back with Prometheus' own Python
//! client's parser: every family in its declared type, and counters that move by exactly the
//! requests made.

use std::collections::{BTreeMap, HashMap};
use std::process::{Command, Stdio};

use futures::StreamExt;
use serde_json::{Value, json};

use crate::helpers::{Api, FakeUpstream, Reply, TestApp, admin_token, chat_body, db_test};
use tollgate::service::tokens::CreateToken;

/// Parses an exposition with `prometheus_client.parser` and prints its families' types and
/// every sample as JSON.
const PARSER: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families

families, samples = {}, []
for family in text_string_to_metric_families(sys.stdin.read()):
    families[family.name] = family.type
    for sample in family.samples:
        samples.append([sample.name, sample.labels, sample.value])
print(json.dumps({"families": families, "samples": samples}))
"#;

/// Every family `/metrics` declares, as the parser names it (counters without `_total`),
/// with its type.
const FAMILIES: &[(&str, &str)] = &[
    ("tollgate_requests", "counter"),
    ("tollgate_request_duration_seconds", "histogram"),
    ("tollgate_overhead_seconds", "histogram"),
    ("tollgate_time_to_first_token_seconds", "histogram"),
    ("tollgate_upstream_requests", "counter"),
    ("tollgate_upstream_duration_seconds", "histogram"),
    ("tollgate_tokens", "counter"),
    ("tollgate_spend_units", "counter"),
    ("tollgate_holds_in_flight", "gauge"),
    ("tollgate_billing_queue_depth", "gauge"),
    ("tollgate_billing_flush_seconds", "histogram"),
    ("tollgate_dead_letter_records", "gauge"),
    ("tollgate_channel_state", "gauge"),
    ("tollgate_rate_limited", "counter"),
    ("tollgate_budget_refused", "counter"),
    ("tollgate_redis_duration_seconds", "histogram"),
    ("tollgate_feed_lag_versions", "gauge"),
];

/// One scrape, parsed.
pub struct Scrape {
    families: HashMap<String, String>,
    samples: Vec<(String, BTreeMap<String, String>, f64)>,
}

impl Scrape {
    /// The value of the sample named `name` with exactly these labels.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.samples
            .iter()
            .find(|(sample, set, _)| {
                sample == name
                    && set.len() == labels.len()
                    && labels
                        .iter()
                        .all(|(k, v)| set.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|(_, _, value)| *value)
    }

    /// [`Scrape::value`], which must exist.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.value(name, labels)
            .unwrap_or_else(|| panic!("no sample {name} {labels:?}"))
    }

    pub fn has_family(&self, name: &str) -> bool {
        self.families.contains_key(name)
    }
}

/// Parses an exposition; None (with the reason printed) when no Python is configured.
pub fn parse(text: &str) -> Option<Scrape> {
    let python = crate::sdk::python()?;
    let mut child = Command::new(python)
        .args(["-c", PARSER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start python");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(text.as_bytes())
            .expect("write the exposition");
    }
    let output = child.wait_with_output().expect("python ends");
    assert!(
        output.status.success(),
        "the Prometheus parser refused the exposition: {}\n{text}",
        String::from_utf8_lossy(&output.stderr)
    );
    let parsed: Value = serde_json::from_slice(&output.stdout).expect("the parser's JSON");
    let families = parsed["families"]
        .as_object()
        .expect("families")
        .iter()
        .map(|(name, kind)| (name.clone(), kind.as_str().unwrap_or_default().to_string()))
        .collect();
    let samples = parsed["samples"]
        .as_array()
        .expect("samples")
        .iter()
        .map(|sample| {
            let labels = sample[1]
                .as_object()
                .expect("labels")
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect();
            (
                sample[0].as_str().expect("name").to_string(),
                labels,
                sample[2].as_f64().expect("value"),
            )
        })
        .collect();
    Some(Scrape { families, samples })
}

const TOKEN: &str = "metrics-secret-4f1c";

/// `/metrics` on the listen address, with the token; must answer 200.
async fn scrape_text(app: &TestApp) -> String {
    let response = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("scrape");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    response.text().await.expect("body")
}

db_test! {
    /// Two whole answers and a stream, a stranger's key, a request over its key's limit and
    /// an upstream's 500: each is counted once under its route and outcome, the upstream
    /// calls under the channel, and the tokens and units charged are the logs' to the unit.
    async fn counters_move_by_exactly_the_requests_made(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let upstream = FakeUpstream::start(Reply::chat("Hello!", 12, 5)).await;
        app.add_channel("main", &upstream, "gpt-4o-mini").await;
        app.price_per_request("gpt-4o-mini", "0.02").await;
        app.create_user("alice", "10").await;
        let key = app.key_for("alice").await;
        let (small_key, _) = app
            .create_key(CreateToken {
                username: "alice".into(),
                name: "small".into(),
                quota_usd: Some("0.01".into()),
                ..Default::default()
            })
            .await;
        app.set_option("metrics_token", TOKEN).await;
        app.reload().await;
        let Some(before) = parse(&scrape_text(&app).await) else { return };
        for (family, kind) in FAMILIES {
            assert_eq!(before.families.get(*family).map(String::as_str), Some(*kind), "{family}");
        }
        assert!(!before.has_family("tollgate_redis_up"), "no Redis configured, no series");
        let ok = [("endpoint", "/v1/chat/completions"), ("outcome", "ok")];
        assert_eq!(before.get("tollgate_requests_total", &ok), 0.0, "every series starts at 0");
        assert_eq!(before.get("tollgate_channel_state", &[("channel", "main")]), 0.0);

        for _ in 0..2 {
            assert_eq!(app.chat(&key, chat_body("gpt-4o-mini")).await.status(), 200);
        }
        upstream.queue(Reply::stream(&["Hel", "lo"], Some((12, 2))));
        let mut stream_body = chat_body("gpt-4o-mini");
        stream_body["stream"] = json!(true);
        let streamed = app.chat(&key, stream_body).await;
        assert_eq!(streamed.status(), 200);
        let mut chunks = streamed.bytes_stream();
        while let Some(chunk) = chunks.next().await {
            chunk.expect("the stream's bytes");
        }
        let stranger = app.chat("sk-not-a-key-of-anyone", chat_body("gpt-4o-mini")).await;
        assert_eq!(stranger.status(), 401);
        let over = app.chat(&small_key, chat_body("gpt-4o-mini")).await;
        crate::helpers::expect_error(over, 429, "insufficient_quota").await;
        upstream.queue(Reply::error(500, "the upstream broke"));
        let failed = app.chat(&key, chat_body("gpt-4o-mini")).await;
        assert_eq!(failed.status(), 502);
        app.flush().await;

        let after = parse(&scrape_text(&app).await).expect("parsed");
        let count = |outcome: &str| {
            after.get(
                "tollgate_requests_total",
                &[("endpoint", "/v1/chat/completions"), ("outcome", outcome)],
            )
        };
        assert_eq!(count("ok"), 3.0);
        assert_eq!(count("caller_unauthorized"), 1.0);
        assert_eq!(count("policy_budget"), 1.0);
        assert_eq!(count("provider_error"), 1.0);
        let counted: f64 = after
            .samples
            .iter()
            .filter(|(name, _, _)| name == "tollgate_requests_total")
            .map(|(_, _, value)| value)
            .sum();
        assert_eq!(counted, 6.0, "nothing else was counted");
        assert_eq!(after.get("tollgate_request_duration_seconds_count", &[]), 6.0);
        assert_eq!(after.get("tollgate_overhead_seconds_count", &[]), 6.0);
        assert!(
            after.get("tollgate_overhead_seconds_sum", &[])
                <= after.get("tollgate_request_duration_seconds_sum", &[])
        );
        assert_eq!(after.get("tollgate_time_to_first_token_seconds_count", &[]), 1.0, "the stream");
        assert_eq!(after.get("tollgate_budget_refused_total", &[("scope", "key_limit")]), 1.0);
        assert_eq!(after.get("tollgate_budget_refused_total", &[("scope", "balance")]), 0.0);
        assert_eq!(after.get("tollgate_rate_limited_total", &[("scope", "key")]), 0.0);

        let upstream_calls = |class: &str| {
            after.get(
                "tollgate_upstream_requests_total",
                &[("channel", "main"), ("status_class", class)],
            )
        };
        assert_eq!(upstream_calls("2xx"), 3.0);
        assert_eq!(upstream_calls("5xx"), 1.0);
        assert_eq!(upstream_calls("timeout") + upstream_calls("connect") + upstream_calls("4xx"), 0.0);
        assert_eq!(upstream.request_count(), 4);
        assert_eq!(
            after.get("tollgate_upstream_duration_seconds_count", &[("channel", "main")]),
            4.0
        );

        // What was charged, as the logs have it.
        let logs = app.logs().await;
        let sum = |field: fn(&tollgate::service::db::logs::RequestLog) -> i64| {
            logs.iter().map(field).sum::<i64>() as f64
        };
        assert_eq!(after.get("tollgate_tokens_total", &[("direction", "input")]), sum(|l| l.prompt_tokens));
        assert_eq!(after.get("tollgate_tokens_total", &[("direction", "output")]), sum(|l| l.completion_tokens));
        assert_eq!(after.get("tollgate_tokens_total", &[("direction", "cached")]), sum(|l| l.cached_tokens));
        assert_eq!(sum(|l| l.prompt_tokens), 36.0, "three answers of 12 prompt tokens");
        assert_eq!(after.get("tollgate_spend_units_total", &[]), sum(|l| l.cost));
        assert_eq!(sum(|l| l.cost), 30_000.0, "three requests at $0.02");

        assert_eq!(after.get("tollgate_holds_in_flight", &[]), 0.0);
        assert_eq!(after.get("tollgate_billing_queue_depth", &[]), 0.0);
        assert_eq!(after.get("tollgate_dead_letter_records", &[]), 0.0);
        assert_eq!(after.get("tollgate_feed_lag_versions", &[]), 0.0);
        assert!(after.get("tollgate_billing_flush_seconds_count", &[]) >= 1.0);
    }
}

db_test! {
    /// A channel cooling down reads 1, a disabled one 2; a request in flight holds budget
    /// until it ends.
    async fn channel_states_and_holds_in_flight(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let upstream = FakeUpstream::start(Reply::chat("Hello!", 12, 5)).await;
        let dead = crate::helpers::upstream::dead_address().await;
        app.add_channel("main", &upstream, "gpt-4o-mini").await;
        app.add_channel_with(tollgate::service::channels::ChannelInput {
            name: Some("flaky".into()),
            base_url: Some(dead),
            models: Some("flaky-model".into()),
            ..Default::default()
        })
        .await;
        app.add_channel_with(tollgate::service::channels::ChannelInput {
            name: Some("off".into()),
            base_url: Some(upstream.base_url()),
            models: Some("gpt-4o-mini".into()),
            status: Some("disabled".into()),
            ..Default::default()
        })
        .await;
        app.price_per_request("gpt-4o-mini", "0.02").await;
        app.price_per_request("flaky-model", "0.02").await;
        app.set_option("cooldown_after_failures", "1").await;
        app.set_option("retry_count", "0").await;
        app.set_option("metrics_token", TOKEN).await;
        app.create_user("alice", "10").await;
        let key = app.key_for("alice").await;
        app.reload().await;

        let failed = app.chat(&key, chat_body("flaky-model")).await;
        assert_eq!(failed.status(), 502);
        upstream.queue(Reply::Stream {
            pieces: vec!["slow".into(); 20],
            usage: Some((12, 20)),
            delay: std::time::Duration::from_millis(100),
            end: crate::helpers::upstream::StreamEnd::Done,
        });
        let mut stream_body = chat_body("gpt-4o-mini");
        stream_body["stream"] = json!(true);
        let streamed = app.chat(&key, stream_body).await;
        assert_eq!(streamed.status(), 200);
        let mut chunks = streamed.bytes_stream();
        chunks.next().await.expect("a first chunk").expect("bytes");

        let Some(during) = parse(&scrape_text(&app).await) else { return };
        assert_eq!(during.get("tollgate_channel_state", &[("channel", "main")]), 0.0);
        assert_eq!(during.get("tollgate_channel_state", &[("channel", "flaky")]), 1.0);
        assert_eq!(during.get("tollgate_channel_state", &[("channel", "off")]), 2.0);
        assert_eq!(during.get("tollgate_holds_in_flight", &[]), 1.0, "the stream holds its budget");
        assert_eq!(
            during.get("tollgate_upstream_requests_total", &[("channel", "flaky"), ("status_class", "connect")]),
            1.0
        );
        assert_eq!(
            during.get("tollgate_requests_total", &[("endpoint", "/v1/chat/completions"), ("outcome", "ok")]),
            0.0,
            "a stream is counted when it ends"
        );

        while let Some(chunk) = chunks.next().await {
            chunk.expect("the stream's bytes");
        }
        let after = parse(&scrape_text(&app).await).expect("parsed");
        assert_eq!(after.get("tollgate_holds_in_flight", &[]), 0.0);
        assert_eq!(
            after.get("tollgate_requests_total", &[("endpoint", "/v1/chat/completions"), ("outcome", "ok")]),
            1.0
        );
    }
}

db_test! {
    /// Without a token `/metrics` does not exist on the listen address; with one it asks for
    /// it; only root sets it, and it is listed masked. `--metrics-listen` serves it to anyone,
    /// beside the health checks.
    async fn metrics_are_served_to_the_token_or_on_their_own_address(db: TestDb) {
        let app = TestApp::spawn_with(db, |c| {
            c.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
        })
        .await;
        let metrics = app.url("/metrics");
        let status = app.client.get(&metrics).bearer_auth(TOKEN).send().await.unwrap().status();
        assert_eq!(status, 404, "no token set: no /metrics on the listen address");

        let admin = Api { app: &app, token: admin_token(&app, "ada", "admin").await };
        let root = Api { app: &app, token: admin_token(&app, "rooty", "root").await };
        let (status, body) = admin.put("/api/options/metrics_token", json!({"value": TOKEN})).await;
        assert_eq!(status, 403, "an administrator may not set it: {body}");
        let (status, body) = root.put("/api/options/metrics_token", json!({"value": TOKEN})).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["value"], "********", "write-only");
        let (_, listed) = root.get("/api/options").await;
        let listed = listed["data"].as_array().unwrap().iter().find(|o| o["name"] == "metrics_token").cloned().unwrap();
        assert_eq!(listed["value"], "********");

        let status = app.client.get(&metrics).send().await.unwrap().status();
        assert_eq!(status, 401, "no bearer token");
        let refused = app.client.get(&metrics).bearer_auth("metrics-secret-4f1d").send().await.unwrap();
        assert_eq!(refused.status(), 401, "a wrong one");
        assert!(refused.headers().contains_key("www-authenticate"));
        let text = scrape_text(&app).await;
        assert!(text.contains("tollgate_requests_total"), "{text}");

        let address = app.state.metrics_addr.expect("the metrics address");
        let open = app.client.get(format!("http://{address}/metrics")).send().await.unwrap();
        assert_eq!(open.status(), 200, "no token on the metrics address");
        let text = open.text().await.unwrap();
        let Some(parsed) = parse(&text) else { return };
        assert!(parsed.has_family("tollgate_requests"));
        let health = app.client.get(format!("http://{address}/healthz")).send().await.unwrap();
        assert_eq!(health.status(), 200);
        let ready = app.client.get(format!("http://{address}/readyz")).send().await.unwrap();
        assert_eq!(ready.status(), 200);
    }
}
