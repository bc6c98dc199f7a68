//! `/healthz`, `/readyz` and `tollgate healthcheck`: a process that serves is healthy; one
//! whose database does not answer, or that is stopping, is not ready; the command exits 0 or
//! 1 without opening any database.

use std::process::Command;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Value, json};

use crate::helpers::upstream::StreamEnd;
use crate::helpers::{FakeUpstream, Reply, TestApp, chat_body, db_test};

async fn get(app: &TestApp, url: &str) -> (u16, String) {
    let response = app.client.get(url).send().await.expect("an answer");
    let status = response.status().as_u16();
    (status, response.text().await.expect("a body"))
}

db_test! {
    /// Both answer 200 on a running server, outside any session and any request log; with
    /// its database gone the server is still healthy but not ready, and says why.
    async fn ready_until_the_database_is_gone(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let (status, body) = get(&app, &app.url("/healthz")).await;
        assert_eq!((status, body.as_str()), (200, "ok"));
        let (status, body) = get(&app, &app.url("/readyz")).await;
        assert_eq!(status, 200, "{body}");
        let ready: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(ready, json!({"ready": true}));
        let response = app.client.get(app.url("/readyz")).send().await.unwrap();
        assert!(response.headers().get("set-cookie").is_none(), "no portal session");
        app.flush().await;
        assert!(app.logs().await.is_empty(), "not logged as relay requests");

        // The server's connections to the database are gone.
        app.ctx().close().await;
        let (status, body) = get(&app, &app.url("/readyz")).await;
        assert_eq!(status, 503, "{body}");
        let not_ready: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(not_ready["ready"], false);
        assert!(not_ready["failing"]["database"].is_string(), "{not_ready}");
        assert_eq!(not_ready["failing"].as_object().unwrap().len(), 1, "{not_ready}");
        let (status, _) = get(&app, &app.url("/healthz")).await;
        assert_eq!(status, 200, "the process still serves");
    }
}

db_test! {
    /// From the stop signal until the last stream has finished, `/readyz` on the metrics
    /// address answers 503 naming the drain, so a load balancer takes the node out while its
    /// requests in flight finish.
    async fn not_ready_while_draining(db: TestDb) {
        let upstream = FakeUpstream::start(Reply::Stream {
            pieces: (0..15).map(|i| format!(" w{i}")).collect(),
            usage: Some((10, 15)),
            delay: Duration::from_millis(100),
            end: StreamEnd::Done,
        })
        .await;
        let mut app = TestApp::spawn_with(db, |c| {
            c.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
        })
        .await;
        app.add_channel("main", &upstream, "gpt-4o-mini").await;
        app.price("gpt-4o-mini", "1", "1").await;
        app.create_user("alice", "1").await;
        let key = app.key_for("alice").await;
        app.reload().await;
        let readyz = format!("http://{}/readyz", app.state.metrics_addr.expect("metrics address"));
        assert_eq!(get(&app, &readyz).await.0, 200);

        let mut body = chat_body("gpt-4o-mini");
        body["stream"] = json!(true);
        let response = app.chat(&key, body).await;
        assert_eq!(response.status(), 200);
        let mut stream = response.bytes_stream();
        stream.next().await.expect("a first chunk").expect("bytes");
        let reader = tokio::spawn(async move {
            let mut rest = Vec::new();
            while let Some(Ok(chunk)) = stream.next().await {
                rest.extend_from_slice(&chunk);
            }
            String::from_utf8_lossy(&rest).into_owned()
        });
        let client = app.client.clone();
        let stopping = tokio::spawn(async move {
            app.stop().await;
        });

        let asked = Instant::now();
        let draining = loop {
            let response = client.get(&readyz).send().await.expect("the metrics address serves");
            if response.status() == 503 {
                break response.json::<Value>().await.unwrap();
            }
            assert!(asked.elapsed() < Duration::from_secs(1), "503 soon after the stop signal");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(draining["ready"], false);
        assert!(draining["failing"]["draining"].is_string(), "{draining}");
        assert!(!reader.is_finished(), "the stream was still in flight");

        let rest = reader.await.unwrap();
        assert!(rest.contains("[DONE]"), "the stream finished: {rest}");
        stopping.await.unwrap();
        assert!(client.get(&readyz).send().await.is_err(), "closed once stopped");
    }
}

/// Runs `tollgate healthcheck` with `args` (and `TOLLGATE_LISTEN` when given), pointed at a
/// database that does not exist: it must not open one. Returns the exit code and the output.
fn healthcheck(args: &[&str], listen_env: Option<&str>) -> (i32, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tollgate"));
    command
        .arg("healthcheck")
        .args(args)
        .env("DATABASE_URL", "sqlite:///nonexistent-dir/never.db")
        .env_remove("TOLLGATE_LISTEN");
    if let Some(listen) = listen_env {
        command.env("TOLLGATE_LISTEN", listen);
    }
    let output = command.output().expect("run tollgate healthcheck");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code().unwrap_or(-1), text)
}

db_test! {
    /// Exit 0 against a running server (by its listen address, the wildcard read as the
    /// loopback, or a URL), 1 with a one-line reason against a closed port or a path that
    /// is not healthy.
    async fn healthcheck_exits_by_what_the_server_answers(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let listen = app.addr.to_string();
        let port = app.addr.port().to_string();
        let wildcard = format!("0.0.0.0:{port}");
        let url = app.url("/healthz");
        let missing = app.url("/no-such-page");
        let dead = crate::helpers::upstream::dead_address().await;
        let dead = dead.trim_start_matches("http://").trim_end_matches("/v1").to_string();
        let results = tokio::task::spawn_blocking(move || {
            [
                healthcheck(&["--listen", &listen], None),
                healthcheck(&[], Some(&wildcard)),
                healthcheck(&["--url", &url], None),
                healthcheck(&["--listen", &dead], None),
                healthcheck(&["--url", &missing], None),
            ]
        })
        .await
        .unwrap();
        let [by_listen, by_env, by_url, closed, not_found] = results;
        for (code, text) in [&by_listen, &by_env, &by_url] {
            assert_eq!(*code, 0, "{text}");
            assert!(text.starts_with("healthy: "), "{text}");
            assert_eq!(text.trim_end().lines().count(), 1, "{text}");
        }
        assert!(by_env.1.contains(&format!("http://127.0.0.1:{port}/healthz")), "{}", by_env.1);
        let (code, text) = closed;
        assert_eq!(code, 1, "{text}");
        assert!(text.starts_with("unhealthy: "), "{text}");
        assert_eq!(text.trim_end().lines().count(), 1, "{text}");
        let (code, text) = not_found;
        assert_eq!(code, 1, "{text}");
        assert!(text.contains("404"), "{text}");
    }
}
