//! Connections that say nothing are closed: silent ones and ones that sent a byte, within the
//! header-read time; HTTP/2 connections once no request has been open for as long; requests in
//! flight are never cut by it.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::upstream::StreamEnd;
use crate::helpers::{FakeUpstream, Reply, TestApp, chat_body, db_test};

/// Waits until the server closes `stream`; returns how long that took (None: still open after
/// `limit`).
async fn closed_within(mut stream: TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buffer = [0u8; 256];
    loop {
        match tokio::time::timeout_at((started + limit).into(), stream.read(&mut buffer)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => continue,
        }
    }
}

db_test! {
    /// 200 connections that send nothing and 50 that send one byte are all closed once the
    /// header-read time (1 s here) has passed; the server goes on serving.
    async fn silent_connections_are_closed(db: TestDb) {
        let app = TestApp::spawn_with(db, |c| c.header_read_timeout_secs = 1).await;
        let upstream = FakeUpstream::chat().await;
        app.add_channel("main", &upstream, "gpt-4o-mini").await;
        app.price("gpt-4o-mini", "1", "1").await;
        app.create_user("alice", "5").await;
        let key = app.key_for("alice").await;
        app.reload().await;

        let mut waiting = Vec::new();
        for i in 0..250 {
            let mut stream = TcpStream::connect(app.addr).await.unwrap();
            if i % 5 == 0 {
                stream.write_all(b"P").await.unwrap();
            }
            waiting.push(tokio::spawn(closed_within(stream, Duration::from_secs(5))));
        }
        for waiter in waiting {
            let closed = waiter.await.unwrap().expect("closed within 5 s");
            assert!(closed >= Duration::from_millis(900), "not before the limit: {closed:?}");
        }
        assert_eq!(app.chat(&key, chat_body("gpt-4o-mini")).await.status(), 200);
    }
}

db_test! {
    /// An HTTP/2 connection (prior knowledge) is closed once it has had no request open for
    /// the keep-alive time; a stream longer than that on it is never cut.
    async fn idle_http2_connections_are_closed(db: TestDb) {
        let app = TestApp::spawn_with(db, |c| c.header_read_timeout_secs = 1).await;
        let upstream = FakeUpstream::start(Reply::Stream {
            pieces: vec!["slow".into(), " but".into(), " whole".into()],
            usage: Some((3, 3)),
            delay: Duration::from_millis(1000),
            end: StreamEnd::Done,
        })
        .await;
        app.add_channel("main", &upstream, "gpt-4o-mini").await;
        app.price("gpt-4o-mini", "1", "1").await;
        app.create_user("alice", "5").await;
        let key = app.key_for("alice").await;
        app.reload().await;

        let tcp = TcpStream::connect(app.addr).await.unwrap();
        let (mut sender, connection) =
            hyper::client::conn::http2::handshake::<_, _, http_body_util::Full<Bytes>>(TokioExecutor::new(), TokioIo::new(tcp))
                .await
                .expect("an HTTP/2 connection");
        let connection = tokio::spawn(connection);
        // A stream of 3 s, longer than the idle limit, on the connection.
        let mut body = chat_body("gpt-4o-mini");
        body["stream"] = serde_json::json!(true);
        let request = http::Request::post(format!("http://{}/v1/chat/completions", app.addr))
            .header("authorization", format!("Bearer {key}"))
            .header("content-type", "application/json")
            .body(http_body_util::Full::new(Bytes::from(body.to_string())))
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        assert_eq!(response.status(), 200);
        let text = response.into_body().collect().await.expect("the whole stream").to_bytes();
        assert!(String::from_utf8_lossy(&text).contains("whole"));

        // Now idle: closed within about a second.
        let idle = Instant::now();
        tokio::time::timeout(Duration::from_secs(5), connection)
            .await
            .expect("the server closed the idle connection")
            .unwrap()
            .ok();
        let waited = idle.elapsed();
        assert!(waited >= Duration::from_millis(800), "closed too soon: {waited:?}");
    }
}
