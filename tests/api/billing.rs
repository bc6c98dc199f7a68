//! Money under concurrency: holds never let a balance be overspent, settlement and refunds
//! happen exactly once, and the database, the logs and the live balance agree to the unit.

use std::time::Duration;

use futures::StreamExt;
use serde_json::json;

use crate::helpers::upstream::StreamEnd;
use crate::helpers::{CLI, FakeUpstream, Reply, TestApp, chat_body, db_test};
use tollgate::domain::kinds::Outcome;
use tollgate::service::tokens::CreateToken;
use tollgate::service::users::QuotaChange;

/// $0.10 per request = 50,000 units.
const PER_REQUEST_UNITS: i64 = 50_000;

async fn setup(db: crate::helpers::TestDb, reply: Reply) -> (TestApp, FakeUpstream) {
    let app = TestApp::spawn(db).await;
    let upstream = FakeUpstream::start(reply).await;
    app.add_channel("main", &upstream, "gpt-4o-mini").await;
    app.price_per_request("gpt-4o-mini", "0.10").await;
    (app, upstream)
}

/// Fires `count` requests at once; returns their statuses.
async fn fire(app: &TestApp, key: &str, count: usize, stream: bool) -> Vec<u16> {
    let mut body = chat_body("gpt-4o-mini");
    body["stream"] = json!(stream);
    let requests = (0..count).map(|_| {
        let request = app
            .client
            .post(app.url("/v1/chat/completions"))
            .bearer_auth(key)
            .json(&body);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            // Read streams to the end so they settle normally.
            let mut bytes = response.bytes_stream();
            while bytes.next().await.is_some() {}
            status
        }
    });
    futures::future::join_all(requests).await
}

/// The final balance, the log rows and the starting balance add up exactly.
async fn assert_books_balance(app: &TestApp, username: &str, start: i64, successes: usize) {
    let logs = app.wait_for_logs(50).await;
    let spent: i64 = logs.iter().map(|l| l.cost).sum();
    assert_eq!(spent, successes as i64 * PER_REQUEST_UNITS);
    let user = app.user(username).await;
    assert_eq!(
        user.quota,
        start - spent,
        "balance + spending = starting balance"
    );
    assert_eq!(user.used_quota, spent);
    assert_eq!(user.request_count, successes as i64);
    assert_eq!(
        logs.iter()
            .filter(|l| l.outcome == Outcome::Success)
            .count(),
        successes
    );
    assert!(
        logs.iter()
            .filter(|l| l.outcome != Outcome::Success)
            .all(|l| l.outcome == Outcome::Refused && l.cost == 0)
    );
}

db_test! {
    /// 50 concurrent requests against a user balance that covers 10: exactly 10 succeed.
    async fn concurrent_requests_never_overspend_the_user(db: TestDb) {
        let (app, upstream) = setup(db, Reply::chat("ok", 10, 1)).await;
        app.create_user("alice", "1.00").await;
        let key = app.key_for("alice").await;
        app.reload().await;
        let start = app.user("alice").await.quota;

        let statuses = fire(&app, &key, 50, false).await;
        let ok = statuses.iter().filter(|&&s| s == 200).count();
        assert_eq!(ok, 10, "{statuses:?}");
        assert_eq!(statuses.iter().filter(|&&s| s == 429).count(), 40);
        assert_eq!(upstream.request_count(), 10);
        assert_books_balance(&app, "alice", start, 10).await;
        assert_eq!(app.user("alice").await.quota, 0);
    }
}

db_test! {
    /// The same with streams and a key whose own quota covers 10 of the user's 100.
    async fn concurrent_streams_never_overspend_the_key(db: TestDb) {
        let (app, _upstream) = setup(
            db,
            Reply::Stream {
                pieces: vec!["ok".into()],
                usage: Some((10, 1)),
                delay: Duration::from_millis(50),
                end: StreamEnd::Done,
            },
        )
        .await;
        app.create_user("alice", "10.00").await;
        let (key, token) = app
            .create_key(CreateToken {
                username: "alice".into(),
                name: "capped".into(),
                quota_usd: Some("1.00".into()),
                ..Default::default()
            })
            .await;
        app.reload().await;
        let start = app.user("alice").await.quota;

        let statuses = fire(&app, &key, 50, true).await;
        assert_eq!(statuses.iter().filter(|&&s| s == 200).count(), 10, "{statuses:?}");
        assert_books_balance(&app, "alice", start, 10).await;
        let token = app.token(token.id).await;
        assert_eq!(token.remaining_quota, 0);
        assert_eq!(token.used_quota, 10 * PER_REQUEST_UNITS);
    }
}

db_test! {
    /// Top-ups made through the management layer while requests run are never lost or
    /// double-counted: the final balance is exactly start + top-ups − spending.
    async fn top_ups_during_traffic_add_up(db: TestDb) {
        let (app, _upstream) = setup(db, Reply::chat("ok", 10, 1)).await;
        app.create_user("alice", "0.50").await;
        let key = app.key_for("alice").await;
        app.reload().await;
        let start = app.user("alice").await.quota;

        let traffic = async {
            let mut ok = 0;
            for _ in 0..10 {
                ok += fire(&app, &key, 3, false).await.iter().filter(|&&s| s == 200).count();
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
            ok
        };
        let top_ups = async {
            for _ in 0..10 {
                tollgate::service::users::change_quota(app.ctx(), &CLI, "alice", QuotaChange {
                    usd: Some("0.10".into()),
                    reason: Some("top-up during traffic".into()),
                    ..Default::default()
                })
                .await
                .unwrap();
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        };
        let (ok, ()) = tokio::join!(traffic, top_ups);
        assert!(ok >= 5, "at least the starting balance was spent: {ok}");
        app.flush().await;
        let logs = app.logs().await;
        let spent: i64 = logs.iter().map(|l| l.cost).sum();
        assert_eq!(spent, ok as i64 * PER_REQUEST_UNITS);
        let user = app.user("alice").await;
        assert_eq!(user.quota, start + 10 * PER_REQUEST_UNITS - spent);
        assert!(user.quota >= 0);
        // The live balance the relay admits against agrees with the database.
        app.reload().await;
        let live = app.state.directory.user(user.id).unwrap().balance.available();
        assert_eq!(live, user.quota);
    }
}

db_test! {
    /// A request that fails on every channel is refunded in full, once: the hold is released
    /// and nothing reaches the balance or the counters.
    async fn failed_requests_are_refunded_exactly_once(db: TestDb) {
        let (app, upstream) = setup(db, Reply::error(500, "down")).await;
        app.set_option("retry_count", "0").await;
        app.set_option("cooldown_after_failures", "1000").await;
        app.create_user("alice", "0.10").await; // exactly one hold
        let key = app.key_for("alice").await;
        app.reload().await;
        let start = app.user("alice").await.quota;
        // If a refund were lost, the second request would find the balance held.
        for _ in 0..5 {
            assert_eq!(app.chat(&key, chat_body("gpt-4o-mini")).await.status(), 502);
        }
        assert_eq!(upstream.request_count(), 5);
        let logs = app.wait_for_logs(5).await;
        assert!(logs.iter().all(|l| l.outcome == Outcome::UpstreamError && l.cost == 0));
        let user = app.user("alice").await;
        assert_eq!(user.quota, start);
        assert_eq!(user.used_quota, 0);
        assert_eq!(user.request_count, 0);
        upstream.set_default(Reply::chat("ok", 1, 1));
        assert_eq!(app.chat(&key, chat_body("gpt-4o-mini")).await.status(), 200);
        app.wait_for_logs(6).await;
        assert_eq!(app.user("alice").await.quota, 0);
    }
}

db_test! {
    /// Group ratios multiply the price of everyone in the group.
    async fn group_ratio_applies(db: TestDb) {
        let (app, _upstream) = setup(db, Reply::chat("ok", 10, 1)).await;
        app.create_group("vip", "0.5").await;
        tollgate::service::channels::update(app.ctx(), &CLI, "main", tollgate::service::channels::ChannelInput {
            groups: Some("default,vip".into()),
            ..Default::default()
        })
        .await
        .unwrap();
        app.create_user_in("vera", "1", "vip").await;
        let key = app.key_for("vera").await;
        app.reload().await;
        assert_eq!(app.chat(&key, chat_body("gpt-4o-mini")).await.status(), 200);
        let log = &app.wait_for_logs(1).await[0];
        assert_eq!(log.cost, PER_REQUEST_UNITS / 2);
        assert_eq!(log.group, "vip");
    }
}

db_test! {
    /// With a zero flush interval every request is written before its answer returns.
    async fn zero_flush_interval_writes_each_request_synchronously(db: TestDb) {
        let app = TestApp::spawn_with(db, |c| c.billing_flush_ms = 0).await;
        let upstream = FakeUpstream::start(Reply::chat("ok", 10, 1)).await;
        app.add_channel("main", &upstream, "gpt-4o-mini").await;
        app.price_per_request("gpt-4o-mini", "0.10").await;
        app.create_user("alice", "1").await;
        let key = app.key_for("alice").await;
        app.reload().await;
        for expected in 1..=3 {
            assert_eq!(app.chat(&key, chat_body("gpt-4o-mini")).await.status(), 200);
            // No flush, no waiting: the row and the balance are already in the database.
            assert_eq!(app.logs().await.len(), expected);
            assert_eq!(app.user("alice").await.used_quota, expected as i64 * PER_REQUEST_UNITS);
        }
    }
}
