//! The billing writer when the database refuses: a refused record is found by splitting the
//! batch and written with its text replaced; one the database cannot take at all goes to the
//! dead-letter file and `tollgate billing replay` applies it exactly once; the CLI and the
//! server writing at once never fail.

use std::sync::atomic::Ordering;

use serde_json::Value;

use crate::helpers::{FakeUpstream, Reply, TestApp, chat_body, db_test};
use crate::shutdown::tollgate;
use tollgate::domain::kinds::Outcome;
use tollgate::service::db::Backend;
use tollgate::service::tokens::CreateToken;

/// Makes the database refuse every log row matching `condition` (SQL over `NEW.`), the way a
/// constraint the gateway does not know about would.
async fn refuse_log_rows_where(app: &TestApp, condition: &str) {
    let statements = match app.db.backend() {
        Backend::Sqlite => vec![format!(
            "CREATE TRIGGER refuse_rows BEFORE INSERT ON request_logs WHEN {condition} \
             BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
        )],
        Backend::Postgres => vec![
            "CREATE FUNCTION refuse_row() RETURNS trigger AS $$ BEGIN \
             RAISE EXCEPTION 'refused by the test'; END $$ LANGUAGE plpgsql"
                .to_string(),
            format!(
                "CREATE TRIGGER refuse_rows BEFORE INSERT ON request_logs FOR EACH ROW \
                 WHEN ({condition}) EXECUTE FUNCTION refuse_row()"
            ),
        ],
        Backend::MySql => vec![format!(
            "CREATE TRIGGER refuse_rows BEFORE INSERT ON request_logs FOR EACH ROW BEGIN \
             IF {condition} THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'refused by the test'; \
             END IF; END"
        )],
    };
    for statement in statements {
        sqlx::raw_sql(&statement)
            .execute(app.db.pool())
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
    }
}

async fn stop_refusing(app: &TestApp) {
    let statement = match app.db.backend() {
        Backend::Postgres => "DROP TRIGGER refuse_rows ON request_logs",
        Backend::Sqlite | Backend::MySql => "DROP TRIGGER refuse_rows",
    };
    sqlx::raw_sql(statement)
        .execute(app.db.pool())
        .await
        .unwrap();
}

fn stat(
    app: &TestApp,
    which: fn(&tollgate::billing::writer::WriterStats) -> &std::sync::atomic::AtomicU64,
) -> u64 {
    which(app.state.billing.stats()).load(Ordering::Relaxed)
}

db_test! {
    /// One log row in a batch of five is refused: the other four are written as they are, the
    /// refused one with its text replaced and its charge applied, and nothing is set aside.
    async fn a_refused_row_is_written_with_its_text_replaced(db: TestDb) {
        // One flush for the whole batch.
        let app = TestApp::spawn_with(db, |c| c.billing_flush_ms = 60_000).await;
        let upstream = FakeUpstream::start(Reply::chat("Hello!", 10, 5)).await;
        app.add_channel("main", &upstream, "gpt-4o-mini,poison-model").await;
        app.price("gpt-4o-mini", "1", "2").await;
        app.price("poison-model", "1", "2").await;
        let alice = app.create_user("alice", "5").await;
        let key = app.key_for("alice").await;
        app.reload().await;
        refuse_log_rows_where(&app, "NEW.model = 'poison-model'").await;

        for model in ["gpt-4o-mini", "gpt-4o-mini", "poison-model", "gpt-4o-mini", "gpt-4o-mini"] {
            assert_eq!(app.chat(&key, chat_body(model)).await.status(), 200);
        }
        app.flush().await;

        let logs = app.logs().await;
        assert_eq!(logs.len(), 5, "every request is logged");
        let replaced: Vec<_> = logs.iter().filter(|l| l.model.is_empty()).collect();
        assert_eq!(replaced.len(), 1);
        assert!(replaced[0].error_message.contains("replaced"), "{:?}", replaced[0].error_message);
        assert_eq!(replaced[0].cost, 10);
        assert_eq!(replaced[0].outcome, Outcome::Success);
        assert_eq!(logs.iter().filter(|l| l.model == "gpt-4o-mini").count(), 4);
        let alice_now = app.user("alice").await;
        assert_eq!(alice_now.quota, alice.quota - 50, "every charge applied");
        assert_eq!(alice_now.used_quota, 50);
        assert_eq!(alice_now.request_count, 5);
        assert_eq!(stat(&app, |s| &s.text_replaced), 1);
        assert_eq!(stat(&app, |s| &s.dead_lettered), 0);
        assert!(!app.dead_letter_path().exists());
    }
}

db_test! {
    /// Rows the database cannot take at all (whatever their text) go to the dead-letter file
    /// while everyone else's are written; replayed four times at once, each record is applied
    /// exactly once.
    async fn an_unwritable_record_is_set_aside_and_replayed_exactly_once(db: TestDb) {
        let app = TestApp::spawn_with(db, |c| c.billing_flush_ms = 60_000).await;
        let upstream = FakeUpstream::start(Reply::chat("Hello!", 10, 5)).await;
        app.add_channel("main", &upstream, "gpt-4o-mini").await;
        app.price("gpt-4o-mini", "1", "2").await;
        let alice = app.create_user("alice", "5").await;
        let bob = app.create_user("bob", "5").await;
        let alice_key = app.key_for("alice").await;
        let (bob_key, bob_token) = app
            .create_key(CreateToken {
                username: "bob".into(),
                name: "limited".into(),
                quota_usd: Some("1".into()),
                ..Default::default()
            })
            .await;
        app.reload().await;
        refuse_log_rows_where(&app, &format!("NEW.user_id = {}", bob.id)).await;

        for _ in 0..3 {
            assert_eq!(app.chat(&alice_key, chat_body("gpt-4o-mini")).await.status(), 200);
        }
        let bobs = app.chat(&bob_key, chat_body("gpt-4o-mini")).await;
        assert_eq!(bobs.status(), 200);
        let bob_request = bobs.headers()["x-request-id"].to_str().unwrap().to_string();
        app.flush().await;

        // Everyone else's records are in; bob's waits in the file.
        assert_eq!(app.logs().await.len(), 3);
        assert_eq!(app.user("alice").await.quota, alice.quota - 30);
        assert_eq!(app.user("bob").await.quota, bob.quota);
        let file = app.dead_letter_path();
        let text = std::fs::read_to_string(&file).expect("the dead-letter file");
        let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0]["log"]["request_id"], bob_request.as_str());
        assert_eq!(lines[0]["log"]["cost"], 10);
        assert_eq!(lines[0]["key_limited"], true);
        assert!(lines[0]["error"].as_str().unwrap().contains("refused by the test"), "{}", lines[0]);
        assert_eq!(stat(&app, |s| &s.dead_lettered), 1);

        // The writer goes on writing.
        assert_eq!(app.chat(&alice_key, chat_body("gpt-4o-mini")).await.status(), 200);
        app.flush().await;
        assert_eq!(app.logs().await.len(), 4);

        stop_refusing(&app).await;
        let url = app.db_url.clone();
        let path = file.display().to_string();
        let replays: Vec<_> = (0..4)
            .map(|_| {
                let (url, path) = (url.clone(), path.clone());
                std::thread::spawn(move || tollgate(&url, &["billing", "replay", &path, "--json"]))
            })
            .collect();
        let mut applied = 0;
        for replay in replays {
            let report: Value = serde_json::from_str(&replay.join().unwrap().expect("replay succeeds")).unwrap();
            applied += report["applied"].as_array().unwrap().len();
            assert!(report["failed"].as_array().unwrap().is_empty(), "{report}");
        }
        assert_eq!(applied, 1, "applied exactly once");
        let bob_now = app.user("bob").await;
        assert_eq!(bob_now.quota, bob.quota - 10);
        assert_eq!(bob_now.used_quota, 10);
        assert_eq!(app.token(bob_token.id).await.remaining_quota, TestApp::units(1.0) - 10);
        let logs = app.logs().await;
        assert_eq!(logs.len(), 5);
        assert!(logs.iter().any(|l| l.request_id == bob_request && l.cost == 10));

        // Again, as text: nothing more is charged.
        let text = tollgate(&url, &["billing", "replay", &path]).unwrap();
        assert!(text.contains("Applied 0 record(s)") && text.contains("1 already applied"), "{text}");
        assert_eq!(app.user("bob").await.quota, bob.quota - 10);
    }
}

db_test! {
    /// The CLI changing keys, channels, users and options while the server bills every request
    /// as it finishes: no command and no billing write ever fails (SQLite takes its write lock
    /// up front instead of failing with SQLITE_BUSY_SNAPSHOT).
    async fn cli_and_server_write_at_once_without_failing(db: TestDb) {
        let app = TestApp::spawn_with(db, |c| c.billing_flush_ms = 0).await;
        let upstream = FakeUpstream::start(Reply::chat("Hello!", 10, 5)).await;
        app.add_channel("main", &upstream, "gpt-4o-mini").await;
        app.price("gpt-4o-mini", "1", "2").await;
        app.create_user("alice", "50").await;
        let (key, token) = app
            .create_key(CreateToken {
                username: "alice".into(),
                name: "busy".into(),
                ..Default::default()
            })
            .await;
        app.reload().await;

        let url = app.db_url.clone();
        let token_id = token.id.to_string();
        let cli = std::thread::spawn(move || {
            for round in 0..8 {
                let commands: [Vec<String>; 5] = [
                    vec!["token".into(), "update".into(), token_id.clone(), "--name".into(), format!("busy-{round}")],
                    vec!["channel".into(), "update".into(), "main".into(), "--weight".into(), (round + 1).to_string()],
                    vec!["user".into(), "topup".into(), "alice".into(), "--usd".into(), "0.01".into(), "--reason".into(), "a test".into()],
                    vec!["option".into(), "set".into(), "retry_count".into(), (round % 3).to_string()],
                    vec!["user".into(), "update".into(), "alice".into(), "--email".into(), format!("alice{round}@example.com")],
                ];
                for command in commands {
                    let args: Vec<&str> = command.iter().map(String::as_str).collect();
                    tollgate(&url, &args).unwrap_or_else(|e| panic!("{args:?} failed: {e}"));
                }
            }
        });
        let mut requests = Vec::new();
        for _ in 0..4 {
            let (client, url, key) = (app.client.clone(), app.url("/v1/chat/completions"), key.clone());
            requests.push(tokio::spawn(async move {
                let mut sent = 0;
                for _ in 0..25 {
                    let response = client.post(&url).bearer_auth(&key).json(&chat_body("gpt-4o-mini")).send().await.unwrap();
                    assert_eq!(response.status(), 200);
                    sent += 1;
                }
                sent
            }));
        }
        let mut sent = 0;
        for request in requests {
            sent += request.await.unwrap();
        }
        tokio::task::spawn_blocking(move || cli.join().expect("every CLI command succeeded"))
            .await
            .unwrap();
        app.flush().await;
        assert_eq!(stat(&app, |s| &s.failed_writes), 0, "no billing write failed");
        let logs = app.logs().await;
        assert_eq!(logs.len(), sent);
        assert_eq!(app.user("alice").await.used_quota, 10 * sent as i64);
    }
}
