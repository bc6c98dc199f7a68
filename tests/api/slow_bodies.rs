//! Request bodies have deadlines: a body trickled a byte at a time closes its connection
//! (portal, `/api` and webhook bodies within `--body-timeout-secs`; `/v1` bodies once they
//! fall below `--min-body-bytes-per-sec` after that), while a large `/v1` upload that keeps the
//! rate takes as long as it needs. And the real binary, at 256 open files, keeps answering
//! through 300 slow bodies: they miss their deadlines, and near the limit the longest-waiting
//! are closed first.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::stripe::{SECRET_KEY, WEBHOOK_SECRET};
use crate::helpers::{FakeUpstream, TestApp, admin_token, chat_body, db_test};
use crate::shutdown::tollgate;
use tollgate::domain::kinds::Outcome;

/// A request's line and headers, announcing a body of `length` bytes.
fn head(path: &str, headers: &[(&str, &str)], length: usize) -> String {
    let mut text =
        format!("POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: {length}\r\n");
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    text
}

/// What the server did with a request whose body was sent slowly.
#[derive(Debug)]
struct Sent {
    /// The answer's status, if one came.
    status: Option<u16>,
    answer: String,
    /// When the server closed the connection (None: still open at the limit).
    closed_after: Option<Duration>,
}

/// Sends `head`, then `body` in pieces of `piece` bytes every `every`, and reads what comes
/// back until the server closes the connection or `limit` passes.
async fn send_slowly(
    addr: SocketAddr,
    head: String,
    body: Vec<u8>,
    piece: usize,
    every: Duration,
    limit: Duration,
) -> Sent {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let started = Instant::now();
    writer.write_all(head.as_bytes()).await.unwrap();
    let writing = tokio::spawn(async move {
        for chunk in body.chunks(piece.max(1)) {
            if writer.write_all(chunk).await.is_err() {
                break;
            }
            tokio::time::sleep(every).await;
        }
        // Held open (not shut down) until the test is done with the connection.
        std::future::pending::<()>().await;
    });
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    let closed_after = loop {
        match tokio::time::timeout_at((started + limit).into(), reader.read(&mut buffer)).await {
            Err(_) => break None,
            Ok(Ok(0)) | Ok(Err(_)) => break Some(started.elapsed()),
            Ok(Ok(n)) => received.extend_from_slice(&buffer[..n]),
        }
    };
    writing.abort();
    let answer = String::from_utf8_lossy(&received).into_owned();
    let status = answer
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok());
    Sent {
        status,
        answer,
        closed_after,
    }
}

/// A server with Stripe configured (so the webhook reads its body), an admin token and a
/// key; the key's own model is served by a fake upstream.
async fn slow_body_site(app: &TestApp) -> (String, String, FakeUpstream) {
    let upstream = FakeUpstream::chat().await;
    app.add_channel("main", &upstream, "gpt-4o-mini").await;
    app.price("gpt-4o-mini", "0.15", "0.60").await;
    app.set_option("stripe_secret_key", SECRET_KEY).await;
    app.set_option("stripe_webhook_secret", WEBHOOK_SECRET)
        .await;
    app.create_user("alice", "5").await;
    let key = app.key_for("alice").await;
    let admin = admin_token(app, "root", "root").await;
    app.reload().await;
    (key, admin, upstream)
}

db_test! {
    /// A body trickled a byte at a time is answered 408 in its caller's terms and its
    /// connection closed once the body time (1 s here) has passed: on the portal, `/api`, the
    /// webhook and `/v1`. A `/v1` body that started well is closed when its average falls
    /// below the rate: 3,000 bytes at 1,000 B/s buy it 3 s.
    async fn slow_bodies_are_answered_and_their_connections_closed(db: TestDb) {
        let app = TestApp::spawn_with(db, |c| {
            c.body_timeout_secs = 1;
            c.min_body_bytes_per_sec = 1000;
        })
        .await;
        let (key, admin, upstream) = slow_body_site(&app).await;
        let bearer = format!("Bearer {key}");
        let admin = format!("Bearer {admin}");
        let form = ("content-type", "application/x-www-form-urlencoded");
        let json_body = ("content-type", "application/json");
        let cases: Vec<(&str, String)> = vec![
            ("portal", head("/login", &[form], 100_000)),
            ("api", head("/api/users", &[("authorization", &admin), json_body], 100_000)),
            ("webhook", head("/stripe/webhook", &[("stripe-signature", "t=1,v1=00"), json_body], 100_000)),
            ("v1", head("/v1/chat/completions", &[("authorization", &bearer), json_body], 100_000)),
        ];
        let mut sending = Vec::new();
        for (name, head) in cases {
            let addr = app.addr;
            sending.push((name, tokio::spawn(async move {
                send_slowly(addr, head, vec![b' '; 100], 1, Duration::from_millis(300), Duration::from_secs(8)).await
            })));
        }
        // A /v1 body that sends 3,000 bytes at once, then stalls.
        let stalled = {
            let head = head("/v1/chat/completions", &[("authorization", &bearer), json_body], 100_000);
            let addr = app.addr;
            tokio::spawn(async move {
                send_slowly(addr, head, vec![b' '; 3000], 3000, Duration::from_secs(60), Duration::from_secs(10)).await
            })
        };
        for (name, sending) in sending {
            let sent = sending.await.unwrap();
            let closed = sent.closed_after.unwrap_or_else(|| panic!("{name}: the connection was kept open: {sent:?}"));
            assert!(closed >= Duration::from_millis(900), "{name}: not before the deadline: {closed:?}");
            assert!(closed < Duration::from_secs(4), "{name}: closed late: {closed:?}");
            assert_eq!(sent.status, Some(408), "{name}: {}", sent.answer);
            if name == "v1" {
                assert!(sent.answer.contains("\"code\":\"request_timeout\""), "{}", sent.answer);
                assert!(sent.answer.to_ascii_lowercase().contains("x-request-id"), "{}", sent.answer);
            }
        }
        let sent = stalled.await.unwrap();
        let closed = sent.closed_after.unwrap_or_else(|| panic!("the stalled body was kept open: {sent:?}"));
        assert!(closed >= Duration::from_millis(2800) && closed < Duration::from_secs(6), "{closed:?}");
        assert_eq!(sent.status, Some(408), "{}", sent.answer);
        assert_eq!(upstream.request_count(), 0);

        // The server goes on answering; the two late `/v1` bodies were logged as refusals,
        // free of charge.
        assert_eq!(app.chat(&key, chat_body("gpt-4o-mini")).await.status(), 200);
        assert_eq!(app.client.get(app.url("/login")).send().await.unwrap().status(), 200);
        let logs = app.wait_for_logs(3).await;
        let refused: Vec<_> = logs.iter().filter(|l| l.outcome == Outcome::Refused).collect();
        assert_eq!(refused.len(), 2, "{logs:#?}");
        assert!(refused.iter().all(|l| l.status_code == 408 && l.cost == 0), "{refused:#?}");
    }
}

db_test! {
    /// A `/v1` upload that keeps the minimum rate succeeds though it takes three times the body
    /// time; the same pace on a portal form is cut at the body time.
    async fn a_v1_upload_that_keeps_the_rate_takes_as_long_as_it_needs(db: TestDb) {
        let app = TestApp::spawn_with(db, |c| {
            c.body_timeout_secs = 1;
            c.min_body_bytes_per_sec = 2000;
        })
        .await;
        let (key, _, upstream) = slow_body_site(&app).await;
        let mut request = chat_body("gpt-4o-mini");
        request["messages"][0]["content"] = Value::String("a".repeat(12_000));
        let body = request.to_string().into_bytes();
        let bearer = format!("Bearer {key}");
        let started = Instant::now();
        // 1,000 bytes every 250 ms: 4,000 B/s, twice the minimum, for about 3 s.
        let sent = send_slowly(
            app.addr,
            head("/v1/chat/completions", &[("authorization", &bearer), ("content-type", "application/json"), ("connection", "close")], body.len()),
            body.clone(),
            1000,
            Duration::from_millis(250),
            Duration::from_secs(15),
        )
        .await;
        assert!(started.elapsed() >= Duration::from_millis(2500), "the upload took its time");
        assert_eq!(sent.status, Some(200), "{}", sent.answer);
        assert!(sent.answer.contains("chat.completion"), "{}", sent.answer);
        assert_eq!(upstream.request_count(), 1);

        let form = format!("login=alice&password={}", "x".repeat(body.len()));
        let sent = send_slowly(
            app.addr,
            head("/login", &[("content-type", "application/x-www-form-urlencoded")], form.len()),
            form.into_bytes(),
            1000,
            Duration::from_millis(250),
            Duration::from_secs(15),
        )
        .await;
        let closed = sent.closed_after.expect("closed");
        assert!(closed < Duration::from_secs(3), "{closed:?}");
        assert_eq!(sent.status, Some(408), "{}", sent.answer);
    }
}

/// The real binary, serving with at most 256 open files.
struct LimitedServer {
    process: std::process::Child,
    address: String,
    /// What it logged so far.
    log: Arc<Mutex<Vec<String>>>,
}

impl LimitedServer {
    fn start(database_url: &str, args: &[&str]) -> LimitedServer {
        let mut process = Command::new("sh")
            .arg("-c")
            .arg("ulimit -n 256 && exec \"$0\" \"$@\"")
            .arg(env!("CARGO_BIN_EXE_tollgate"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .env("DATABASE_URL", database_url)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the server");
        let stderr = process.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let lines = log.clone();
        let (address_tx, address_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(at) = line.find("listening on http://") {
                    let address = line[at + "listening on http://".len()..].trim().to_string();
                    let _ = address_tx.send(address);
                }
                lines.lock().unwrap().push(line);
            }
        });
        let address = address_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the server starts");
        LimitedServer {
            process,
            address,
            log,
        }
    }

    fn logged(&self, text: &str) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|line| line.contains(text))
            .count()
    }

    fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

impl Drop for LimitedServer {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// Sets a site up through the CLI, as an operator would: Stripe configured and a key.
fn set_up_with_cli(url: &str) -> String {
    let run = |args: &[&str]| tollgate(url, args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
    run(&[
        "--create-database",
        "user",
        "create",
        "--username",
        "alice",
        "--quota-usd",
        "1",
    ]);
    run(&["option", "set", "stripe_secret_key", SECRET_KEY]);
    run(&["option", "set", "stripe_webhook_secret", WEBHOOK_SECRET]);
    let created: Value = serde_json::from_str(&run(&[
        "token", "create", "--user", "alice", "--name", "t", "--json",
    ]))
    .unwrap();
    created["key"].as_str().unwrap().to_string()
}

/// One attacker's connection: a request's headers announcing a large body, then a byte every
/// 10 s. When `again`, a closed connection is opened again at once (the attacker keeps up the
/// pressure). Ends when the server closes it and not `again`.
async fn slow_attacker(address: String, head: String, again: bool) {
    loop {
        let connected =
            tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(&address)).await;
        if let Ok(Ok(mut stream)) = connected
            && stream.write_all(head.as_bytes()).await.is_ok()
        {
            loop {
                let mut buffer = [0u8; 1024];
                // Read what the server says (an answer, or the close) while waiting 10 s.
                match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buffer)).await
                {
                    Ok(Ok(0)) | Ok(Err(_)) => break,
                    Ok(Ok(_)) => continue,
                    Err(_) => {
                        if stream.write_all(b" ").await.is_err() {
                            break;
                        }
                    }
                }
            }
        }
        if !again {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// 300 slow-body connections: most to the webhook, some to `/v1` and to the portal's sign-in.
/// Each announces 400 kB: a body the webhook reads (it refuses more than 512 KiB unread).
fn attack(address: &str, key: &str, again: bool) -> Vec<tokio::task::JoinHandle<()>> {
    let bearer = format!("Bearer {key}");
    let json_body = ("content-type", "application/json");
    let length = 400_000;
    let webhook = head(
        "/stripe/webhook",
        &[("stripe-signature", "t=1,v1=00"), json_body],
        length,
    );
    let relay = head(
        "/v1/chat/completions",
        &[("authorization", &bearer), json_body],
        length,
    );
    let portal = head(
        "/login",
        &[("content-type", "application/x-www-form-urlencoded")],
        length,
    );
    (0..300)
        .map(|i| {
            let head = match i % 10 {
                0 => relay.clone(),
                1 => portal.clone(),
                _ => webhook.clone(),
            };
            tokio::spawn(slow_attacker(address.to_string(), head, again))
        })
        .collect()
}

/// Probes `/login` and `/v1/models` on new connections for `duration`; returns every probe
/// that did not answer 200 within 5 s.
async fn probe(address: &str, key: &str, duration: Duration) -> (usize, Vec<String>) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let started = Instant::now();
    let mut probes = 0;
    let mut failures = Vec::new();
    while started.elapsed() < duration {
        for path in ["/login", "/v1/models"] {
            probes += 1;
            let sent = Instant::now();
            let answer = client
                .get(format!("http://{address}{path}"))
                .bearer_auth(key)
                .send()
                .await;
            match answer {
                Ok(response) if response.status() == 200 => {}
                Ok(response) => failures.push(format!(
                    "{path}: {} after {:?}",
                    response.status(),
                    sent.elapsed()
                )),
                Err(e) => failures.push(format!("{path}: {e} after {:?}", sent.elapsed())),
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    (probes, failures)
}

db_test! {
    /// The attack as it was seen: 300 connections whose bodies come a byte every 10 s (to the
    /// webhook, `/v1` and the sign-in form) against the real server limited to 256 open
    /// files. From 30 s after they open, every probe of `/login` and `/v1/models` answers
    /// within 5 s. The server was short of descriptors meanwhile, said so once, and got over it.
    async fn slow_bodies_cannot_exhaust_the_open_files(db: TestDb) {
        let url = db.url.clone();
        let key = set_up_with_cli(&url);
        let server = LimitedServer::start(&url, &[]);
        let attackers = attack(&server.address, &key, false);
        let opened = Instant::now();
        tokio::time::sleep(Duration::from_secs(30)).await;
        let (probes, failures) = probe(&server.address, &key, Duration::from_secs(20)).await;
        assert!(failures.is_empty(), "{} of {probes} probes failed: {failures:#?}\n{}", failures.len(), server.log_text());
        assert!(opened.elapsed() >= Duration::from_secs(50));
        let warned = server.logged("short of file descriptors:");
        assert!(warned >= 1, "the shortage was logged: {}", server.log_text());
        assert!(
            warned <= server.logged("no longer short of file descriptors") + 1,
            "once per shortage: {}",
            server.log_text()
        );
        for attacker in attackers {
            attacker.abort();
        }
    }
}

db_test! {
    /// An attacker who opens a new slow body as soon as one is closed, against a body time of
    /// an hour, so only shedding helps: near the limit the longest-waiting bodies are closed,
    /// and every probe still answers within 5 s. The shortage is logged once, not at every
    /// connection closed.
    async fn near_the_limit_the_longest_waiting_bodies_make_room(db: TestDb) {
        let url = db.url.clone();
        let key = set_up_with_cli(&url);
        let server = LimitedServer::start(&url, &["--body-timeout-secs", "3600"]);
        let attackers = attack(&server.address, &key, true);
        tokio::time::sleep(Duration::from_secs(5)).await;
        let (probes, failures) = probe(&server.address, &key, Duration::from_secs(15)).await;
        assert!(failures.is_empty(), "{} of {probes} probes failed: {failures:#?}\n{}", failures.len(), server.log_text());
        let warned = server.logged("short of file descriptors:");
        assert_eq!(warned, 1, "{}", server.log_text());
        for attacker in attackers {
            attacker.abort();
        }
        // The attack is over: the server has room again and says so.
        let over = Instant::now();
        while server.logged("no longer short of file descriptors") == 0 && over.elapsed() < Duration::from_secs(30) {
            let _ = reqwest::get(format!("http://{}/login", server.address)).await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!(server.logged("no longer short of file descriptors") >= 1, "{}", server.log_text());
    }
}
