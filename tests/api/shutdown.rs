//! Stopping: new connections are refused, streams in flight finish (within the grace period),
//! and every billing record is written before the process ends.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};

use crate::helpers::upstream::StreamEnd;
use crate::helpers::{FakeUpstream, Reply, TestApp, db_test};
use tollgate::domain::kinds::Outcome;

fn slow_stream(pieces: usize, delay_ms: u64) -> Reply {
    Reply::Stream {
        pieces: (0..pieces).map(|i| format!(" w{i}")).collect(),
        usage: Some((100, pieces as i64)),
        delay: Duration::from_millis(delay_ms),
        end: StreamEnd::Done,
    }
}

fn stream_request() -> Value {
    json!({"model": "gpt-4o-mini", "stream": true, "messages": [{"role": "user", "content": "hi"}]})
}

/// Starts a stream and returns once its first bytes arrived, with a task reading the rest.
async fn start_stream(app: &TestApp, key: &str) -> tokio::task::JoinHandle<String> {
    let response = app.chat(key, stream_request()).await;
    assert_eq!(response.status(), 200);
    let mut stream = response.bytes_stream();
    let first = stream.next().await.unwrap().unwrap();
    tokio::spawn(async move {
        let mut text = String::from_utf8_lossy(&first).into_owned();
        while let Some(Ok(chunk)) = stream.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
        text
    })
}

db_test! {
    /// A graceful stop lets the stream in flight finish and writes its billing, even though
    /// the periodic flush never ran.
    async fn graceful_stop_finishes_streams_and_flushes_billing(db: TestDb) {
        let upstream = FakeUpstream::start(slow_stream(10, 100)).await;
        let mut app = TestApp::spawn_with(db, |c| c.billing_flush_ms = 600_000).await;
        app.add_channel("main", &upstream, "gpt-4o-mini").await;
        app.price("gpt-4o-mini", "1", "1").await;
        app.create_user("alice", "1").await;
        let key = app.key_for("alice").await;
        app.reload().await;

        let reader = start_stream(&app, &key).await;
        app.stop().await;
        let text = reader.await.unwrap();
        assert!(text.contains(" w9"), "the stream finished: {text}");
        assert!(text.trim_end().ends_with("data: [DONE]"));
        // New connections are refused once stopping.
        assert!(app.client.get(app.url("/v1/models")).send().await.is_err());

        let logs = app.logs().await;
        assert_eq!(logs.len(), 1, "billing was flushed at shutdown");
        assert_eq!(logs[0].outcome, Outcome::Success);
        assert_eq!(logs[0].cost, 55); // (100 + 10) tokens × $1/M = $0.00011 = 55 units
        assert_eq!(app.user("alice").await.quota, TestApp::units(1.0) - 55);
    }
}

db_test! {
    /// A stream still running when the grace period ends is cut and billed for what it used.
    async fn streams_past_the_grace_period_are_cut_and_billed(db: TestDb) {
        let upstream = FakeUpstream::start(slow_stream(100, 100)).await;
        let mut app = TestApp::spawn_with(db, |c| {
            c.billing_flush_ms = 600_000;
            c.shutdown_grace_secs = 1;
        })
        .await;
        app.add_channel("main", &upstream, "gpt-4o-mini").await;
        app.price("gpt-4o-mini", "1", "1").await;
        app.create_user("alice", "1").await;
        let key = app.key_for("alice").await;
        app.reload().await;

        let reader = start_stream(&app, &key).await;
        let stopping = std::time::Instant::now();
        app.stop().await;
        assert!(stopping.elapsed() < Duration::from_secs(4));
        let text = reader.await.unwrap();
        assert!(!text.contains("[DONE]"));
        let logs = app.logs().await;
        assert_eq!(logs.len(), 1);
        assert_eq!(logs[0].outcome, Outcome::ClientClosed);
        assert!(logs[0].completion_tokens > 0 && logs[0].cost > 0);
        assert_eq!(app.user("alice").await.quota, TestApp::units(1.0) - logs[0].cost);
    }
}

/// Runs the real binary with `args` against `database_url`; returns stdout on success.
pub fn tollgate(database_url: &str, args: &[&str]) -> Result<String, String> {
    let output = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(args)
        .env("DATABASE_URL", database_url)
        .env_remove("RUST_LOG")
        .output()
        .expect("run tollgate");
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

db_test! {
    /// The real binary: set up with its CLI, serve, receive SIGTERM mid-stream, finish the
    /// stream, write the billing and exit 0.
    async fn sigterm_drains_and_flushes(db: TestDb) {
        let url = db.url.clone();
        let upstream = FakeUpstream::start(slow_stream(8, 100)).await;
        let base = upstream.base_url();
        let run = |args: &[&str]| tollgate(&url, args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        // The first command makes the database file, and says so.
        run(&["--create-database", "user", "create", "--username", "alice", "--quota-usd", "1"]);
        run(&["channel", "add", "--name", "main", "--type", "openai", "--base-url", &base,
              "--key", "sk-up", "--models", "gpt-4o-mini"]);
        run(&["price", "set", "gpt-4o-mini", "--input", "1", "--output", "1"]);
        let created: Value = serde_json::from_str(&run(&["token", "create", "--user", "alice", "--name", "t", "--json"])).unwrap();
        let key = created["key"].as_str().unwrap().to_string();

        let mut server = Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("DATABASE_URL", &url)
            .env("TOLLGATE_BILLING_FLUSH_MS", "600000")
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the server");
        let stderr = server.stderr.take().unwrap();
        let (address_tx, address_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(at) = line.find("listening on http://") {
                    let address = line[at + "listening on http://".len()..].trim().to_string();
                    let _ = address_tx.send(address);
                }
            }
        });
        let address = address_rx.recv_timeout(Duration::from_secs(20)).expect("the server starts");

        let client = reqwest::Client::new();
        let response = client
            .post(format!("http://{address}/v1/chat/completions"))
            .bearer_auth(&key)
            .json(&stream_request())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let mut stream = response.bytes_stream();
        let mut text = String::from_utf8_lossy(&stream.next().await.unwrap().unwrap()).into_owned();
        let status = Command::new("kill").args(["-TERM", &server.id().to_string()]).status().unwrap();
        assert!(status.success());
        while let Some(Ok(chunk)) = stream.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
        assert!(text.contains(" w7") && text.contains("[DONE]"), "{text}");
        let exit = tokio::task::spawn_blocking(move || server.wait()).await.unwrap().unwrap();
        assert!(exit.success(), "exit status {exit:?}");

        let logs: Value = serde_json::from_str(&run(&["logs", "--user", "alice", "--json"])).unwrap();
        let logs = logs["data"].as_array().unwrap();
        assert_eq!(logs.len(), 1);
        assert_eq!(logs[0]["outcome"], "success");
        assert_eq!(logs[0]["cost"], 54); // (100 + 8) × $1/M = $0.000108 = 54 units
        let user: Value = serde_json::from_str(&run(&["user", "show", "alice", "--json"])).unwrap();
        assert_eq!(user["quota"], 500_000 - 54);
        assert_eq!(user["used_quota"], 54);
        assert_eq!(user["request_count"], 1);
    }
}
