//! The command line, run as the real binary against the database a running server uses.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::{FakeUpstream, TestApp, chat_body, db_test};
use crate::shutdown::tollgate;

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

db_test! {
    /// Everything set up from the CLI while the server runs is live within a second, and the
    /// reports show balances and usage in dollars and units.
    async fn cli_changes_reach_the_running_server(db: TestDb) {
        // The default one-second pickup: the server checks for changes every 500 ms.
        let app = TestApp::spawn_with(db, |c| c.sync_interval_ms = 500).await;
        let upstream = FakeUpstream::chat().await;
        let url = app.db_url.clone();
        let run = |args: &[&str]| tollgate(&url, args).unwrap_or_else(|e| panic!("{args:?}: {e}"));

        let user = json(&run(&["user", "create", "--username", "alice", "--password", "correct horse", "--quota-usd", "5", "--json"]));
        assert_eq!(user["username"], "alice");
        assert_eq!(user["group"], "default");
        assert_eq!(user["quota"], 2_500_000);
        assert_eq!(user["used_quota"], 0);
        assert_eq!(user["request_count"], 0);
        run(&["channel", "add", "--name", "main", "--type", "openai", "--base-url", &upstream.base_url(),
              "--key", "sk-upstream-secret-9999", "--models", "gpt-4o-mini,text-embedding-3-small",
              "--groups", "default", "--priority", "0", "--weight", "1", "--model-map", "gpt-4o=gpt-4o-mini"]);
        run(&["price", "set", "gpt-4o-mini", "--input", "0.15", "--output", "0.60", "--cached-input", "0.075"]);
        let created = json(&run(&["token", "create", "--user", "alice", "--name", "laptop", "--quota-usd", "1",
                                  "--expires", "2099-01-01", "--models", "gpt-4o-mini", "--allow-ip", "127.0.0.0/8", "--json"]));
        let key = created["key"].as_str().unwrap().to_string();
        assert!(key.starts_with("sk-"));
        let token_id = created["id"].as_i64().unwrap();

        // Live within a second.
        let written = Instant::now();
        let status = loop {
            let status = app.chat(&key, chat_body("gpt-4o-mini")).await.status().as_u16();
            if status == 200 || written.elapsed() > Duration::from_secs(1) {
                break status;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(status, 200, "the server picked the CLI's changes up within a second");
        app.flush().await;

        let user = json(&run(&["user", "show", "alice", "--json"]));
        // Reply::chat("Hello!", 10, 5): 10 × $0.15/M + 5 × $0.60/M = 2.25 → 3 units.
        assert_eq!(user["quota"], 2_500_000 - 3);
        assert_eq!(user["used_quota"], 3);
        assert_eq!(user["request_count"], 1);
        let text = run(&["user", "show", "alice"]);
        assert!(text.contains("$4.999994 (2499997 units)"), "{text}");

        let tokens = json(&run(&["token", "list", "--user", "alice", "--json"]));
        let token = &tokens.as_array().unwrap()[0];
        assert_eq!(token["id"], token_id);
        assert_eq!(token["remaining_quota"], 500_000 - 3);
        assert_eq!(token["allowed_ips"][0], "127.0.0.0/8");
        let listing = run(&["token", "list", "--user", "alice"]);
        assert!(!listing.contains(&key), "the key is shown only once");
        assert!(listing.contains(token["key_display"].as_str().unwrap()));

        let logs = json(&run(&["logs", "--user", "alice", "--json"]));
        assert_eq!(logs["data"][0]["cost"], 3);
        assert_eq!(logs["data"][0]["token_name"], "laptop");
        // The key works as soon as it is committed; requests sent before the channel and the
        // price reached the server were refused (logged, free).
        let rows = logs["data"].as_array().unwrap();
        let successes = rows.iter().filter(|r| r["outcome"] == "success").count();
        assert_eq!(successes, 1, "{rows:?}");
        assert_eq!(logs["totals"]["requests"], rows.len());
        assert_eq!(logs["totals"]["cost"], 3);
        let text = run(&["logs", "--user", "alice"]);
        assert!(text.contains("gpt-4o-mini") && text.contains("success"), "{text}");

        let channels = run(&["channel", "list", "--json"]);
        assert!(!channels.contains("sk-upstream-secret-9999"), "upstream keys are masked");
        assert!(channels.contains("9999"));

        // A weekly budget from the CLI, shown with what the week spent.
        let budgeted = json(&run(&["token", "update", &token_id.to_string(), "--budget-usd", "2", "--budget-period", "weekly", "--json"]));
        assert_eq!(budgeted["budget"]["period"], "weekly");
        assert_eq!(budgeted["budget"]["quota"], 1_000_000);
        let text = run(&["token", "list", "--user", "alice"]);
        assert!(!text.is_empty());
        let shown = run(&["token", "update", &token_id.to_string(), "--no-budget"]);
        assert!(shown.contains("budget:   none"), "{shown}");

        // Disabling the key from the CLI stops it within a second.
        run(&["token", "update", &token_id.to_string(), "--status", "disabled"]);
        tokio::time::sleep(Duration::from_millis(1000)).await;
        assert_eq!(app.chat(&key, chat_body("gpt-4o-mini")).await.status(), 401);
    }
}

db_test! {
    /// Mistakes get a message naming the flag and a failing exit status; nothing is written.
    async fn cli_reports_mistakes(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let url = app.db_url.clone();
        let fail = |args: &[&str]| tollgate(&url, args).expect_err("the command fails");
        assert!(fail(&["user", "create", "--username", "bad name"]).contains("--username"));
        assert!(fail(&["user", "create", "--username", "bob", "--password", "short"]).contains("--password"));
        assert!(fail(&["user", "create", "--username", "bob", "--group", "nope"]).contains("no group named 'nope'"));
        assert!(fail(&["user", "create", "--username", "bob", "--quota-usd", "lots"]).contains("--quota-usd"));
        tollgate(&url, &["user", "create", "--username", "bob"]).unwrap();
        assert!(fail(&["user", "create", "--username", "bob"]).contains("already exists"));
        assert!(fail(&["user", "show", "nobody"]).contains("no user named 'nobody'"));
        assert!(fail(&["price", "set", "m", "--input", "1"]).contains("--output"));
        assert!(fail(&["price", "set", "m", "--input", "0.0000001", "--output", "1"]).contains("decimal places"));
        assert!(fail(&["channel", "add", "--name", "c", "--type", "nope", "--base-url", "http://x", "--key", "k", "--models", "m"]).contains("--type"));
        assert!(fail(&["channel", "add", "--name", "c", "--type", "openai", "--base-url", "not a url", "--key", "k", "--models", "m"]).contains("--base-url"));
        assert!(fail(&["token", "create", "--user", "bob", "--name", "k", "--expires", "2001-01-01"]).contains("--expires"));
        assert!(fail(&["token", "create", "--user", "bob", "--name", "k", "--allow-ip", "10.0.0.0/33"]).contains("--allow-ip"));
        assert!(fail(&["token", "create", "--user", "bob", "--name", "k", "--budget-usd", "1", "--budget-period", "hourly"]).contains("--budget-period"));
        assert!(fail(&["option", "set", "retry_count", "many"]).contains("retry_count"));
        assert!(fail(&["admin-token", "create", "--user", "bob"]).contains("only admin and root"));
        assert_eq!(app.user("bob").await.quota, 0);
    }
}

db_test! {
    /// Output to a reader that has gone (`tollgate logs --json | head`) ends the command
    /// quietly: no panic, no error message, a successful exit.
    async fn cli_output_to_a_closed_pipe_ends_quietly(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let upstream = FakeUpstream::chat().await;
        app.create_user("alice", "5").await;
        app.add_channel("main", &upstream, "gpt-4o-mini").await;
        app.price("gpt-4o-mini", "1", "1").await;
        let key = app.key_for("alice").await;
        app.reload().await;
        for _ in 0..3 {
            assert_eq!(app.chat(&key, chat_body("gpt-4o-mini")).await.status(), 200);
        }
        app.wait_for_logs(3).await;
        for args in [&["logs", "--json"][..], &["logs"], &["user", "list"], &["option", "list"]] {
            // The reading end is closed before the command starts, so its first write fails.
            let (reader, writer) = std::io::pipe().expect("a pipe");
            drop(reader);
            let output = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"))
                .args(args)
                .env("DATABASE_URL", &app.db_url)
                .env_remove("RUST_LOG")
                .stdout(writer)
                .output()
                .expect("run tollgate");
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(output.status.success(), "{args:?} exits 0 on a closed pipe: {stderr}");
            assert!(stderr.is_empty(), "{args:?} says nothing: {stderr}");
        }
    }
}

/// A management command pointed at a SQLite file that does not exist (a typo, another
/// directory) refuses and makes nothing; `--create-database` makes it.
#[test]
fn a_missing_sqlite_file_is_not_made_silently() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("typo.db");
    let url = format!("sqlite://{}", file.display());
    let refused = tollgate(&url, &["user", "list"]).unwrap_err();
    assert!(
        refused.contains("no database at") && refused.contains("--database-url"),
        "{refused}"
    );
    assert!(!file.exists());
    tollgate(&url, &["--create-database", "user", "list"]).unwrap();
    assert!(file.exists());
}
