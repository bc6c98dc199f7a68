//! Channel choice and failover: tiers, weights, retries that never repeat a channel, timeouts,
//! cooldowns, auto-disable and background re-enable.

use std::time::Duration;

use serde_json::Value;

use crate::helpers::upstream::dead_address;
use crate::helpers::{
    Api, Browser, CLI, FakeUpstream, Reply, TestApp, admin_token, chat_body, db_test, expect_error,
};

const PASSWORD: &str = "correct horse battery";
use tollgate::domain::kinds::{ChannelStatus, Outcome};
use tollgate::service::channels::ChannelInput;

fn channel(name: &str, base_url: String, priority: i64, weight: i64) -> ChannelInput {
    ChannelInput {
        name: Some(name.into()),
        base_url: Some(base_url),
        models: Some("gpt-4o-mini".into()),
        priority: Some(priority),
        weight: Some(weight),
        ..Default::default()
    }
}

async fn app_with_user(db: crate::helpers::TestDb) -> (TestApp, String) {
    let app = TestApp::spawn(db).await;
    app.price("gpt-4o-mini", "0.15", "0.60").await;
    app.create_user("alice", "10").await;
    let key = app.key_for("alice").await;
    (app, key)
}

db_test! {
    /// A failing channel is left for another in the same tier, then for lower tiers; no
    /// channel is tried twice, and the log shows the attempts.
    async fn fails_over_within_and_across_tiers(db: TestDb) {
        let (app, key) = app_with_user(db).await;
        let top_a = FakeUpstream::start(Reply::error(500, "boom")).await;
        let top_b = FakeUpstream::start(Reply::error(502, "bad gateway")).await;
        let lower = FakeUpstream::start(Reply::chat("from the lower tier", 10, 5)).await;
        let lowest = FakeUpstream::chat().await;
        app.add_channel_with(channel("top-a", top_a.base_url(), 10, 1)).await;
        app.add_channel_with(channel("top-b", top_b.base_url(), 10, 1)).await;
        app.add_channel_with(channel("lower", lower.base_url(), 5, 1)).await;
        app.add_channel_with(channel("lowest", lowest.base_url(), 0, 1)).await;
        app.reload().await;

        let response = app.chat(&key, chat_body("gpt-4o-mini")).await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["choices"][0]["message"]["content"], "from the lower tier");
        assert_eq!(top_a.request_count(), 1);
        assert_eq!(top_b.request_count(), 1);
        assert_eq!(lower.request_count(), 1);
        assert_eq!(lowest.request_count(), 0);

        let log = &app.wait_for_logs(1).await[0];
        assert_eq!(log.attempts, 3);
        assert_eq!(log.channel_name, "lower");
        assert_eq!(log.outcome, Outcome::Success);
        // 10 × $0.15/M + 5 × $0.60/M = $0.0000045 = 2.25 units, rounded up.
        assert_eq!(log.cost, 3);
        // Each earlier attempt is kept with its channel, status and error, in the order tried.
        let earlier: Vec<(&str, u16)> =
            log.failed_attempts.iter().map(|a| (a.channel.as_str(), a.status)).collect();
        assert_eq!(earlier.len(), 2, "{:?}", log.failed_attempts);
        let mut statuses: Vec<u16> = earlier.iter().map(|(_, status)| *status).collect();
        statuses.sort_unstable();
        assert!(earlier.iter().all(|(name, _)| name.starts_with("top-")), "{earlier:?}");
        assert_eq!(statuses, [502, 502], "both upstream failures answer as 502: {earlier:?}");
        assert!(log.failed_attempts.iter().any(|a| a.error.contains("500")), "{:?}", log.failed_attempts);

        // The console's request page lists every attempt; `/api/logs` gives the same list.
        app.create_account("ada", "admin", PASSWORD).await;
        let ada = Browser::new(&app);
        ada.sign_in("ada", PASSWORD).await;
        let page = ada.get(&format!("/admin/logs/{}", log.id)).await;
        assert_eq!(page.status, 200, "{}", page.body);
        for text in ["Attempts", "top-a", "top-b", "lower", "final"] {
            assert!(page.contains(text), "{text}: {}", page.body);
        }
        let listed = ada.get("/admin/logs").await;
        assert!(listed.contains("<strong>1</strong> request,"), "one request is counted in the singular: {}", listed.body);
        let zh = ada.get(&format!("/admin/logs/{}?lang=zh-CN", log.id)).await;
        assert!(zh.contains("各次尝试"), "{}", zh.body);
        let api = Api { app: &app, token: admin_token(&app, "ops", "admin").await };
        let (status, body) = api.get("/api/logs").await;
        assert_eq!(status, 200, "{body}");
        let listed = &body["data"][0]["failed_attempts"];
        assert_eq!(listed.as_array().map(Vec::len), Some(2), "{body}");
        assert!(listed[0]["channel"].as_str().unwrap().starts_with("top-"), "{body}");
        assert!(listed[0]["latency_ms"].is_i64(), "{body}");
    }
}

db_test! {
    /// With every channel failing, the request is refused after 1 + retry_count attempts,
    /// each on a different channel, and nothing is charged.
    async fn stops_after_the_retry_budget_and_refunds(db: TestDb) {
        let (app, key) = app_with_user(db).await;
        app.set_option("retry_count", "1").await;
        let upstreams = [
            FakeUpstream::start(Reply::error(503, "overloaded")).await,
            FakeUpstream::start(Reply::error(503, "overloaded")).await,
            FakeUpstream::start(Reply::error(503, "overloaded")).await,
        ];
        for (i, upstream) in upstreams.iter().enumerate() {
            app.add_channel_with(channel(&format!("c{i}"), upstream.base_url(), 0, 1)).await;
        }
        app.reload().await;
        let before = app.user("alice").await.quota;

        let message = expect_error(app.chat(&key, chat_body("gpt-4o-mini")).await, 502, "upstream_error").await;
        assert!(message.contains("503"), "{message}");
        let tried: Vec<usize> = upstreams.iter().map(FakeUpstream::request_count).collect();
        assert_eq!(tried.iter().sum::<usize>(), 2, "{tried:?}");
        assert!(tried.iter().all(|&n| n <= 1), "a channel was tried twice: {tried:?}");

        let log = &app.wait_for_logs(1).await[0];
        assert_eq!(log.outcome, Outcome::UpstreamError);
        assert_eq!(log.cost, 0);
        assert_eq!(log.attempts, 2);
        assert_eq!(app.user("alice").await.quota, before);
    }
}

db_test! {
    /// An upstream's own refusal of the request (400) is handed to the client unchanged and
    /// not retried elsewhere.
    async fn passes_client_errors_through_without_retrying(db: TestDb) {
        let (app, key) = app_with_user(db).await;
        let first = FakeUpstream::start(Reply::error(400, "Invalid value for 'temperature'.")).await;
        let second = FakeUpstream::chat().await;
        app.add_channel_with(channel("first", first.base_url(), 10, 1)).await;
        app.add_channel_with(channel("second", second.base_url(), 0, 1)).await;
        app.reload().await;
        let response = app.chat(&key, chat_body("gpt-4o-mini")).await;
        assert_eq!(response.status(), 400);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["message"], "Invalid value for 'temperature'.");
        assert_eq!(second.request_count(), 0);
        let log = &app.wait_for_logs(1).await[0];
        assert_eq!(log.outcome, Outcome::UpstreamError);
        assert_eq!(log.status_code, 400);
        assert_eq!(log.cost, 0);
    }
}

db_test! {
    /// Connection failures, upstreams that never answer, and answers cut off before the end
    /// all move on to the next channel.
    async fn fails_over_on_connect_errors_timeouts_and_broken_answers(db: TestDb) {
        let (app, key) = app_with_user(db).await;
        let hanging = FakeUpstream::start(Reply::Hang).await;
        let broken = FakeUpstream::start(Reply::Broken).await;
        let html = FakeUpstream::start(Reply::Raw(200, "text/html", "<html>Bad gateway</html>")).await;
        let good = FakeUpstream::chat().await;
        app.set_option("retry_count", "4").await;
        app.add_channel_with(channel("dead", dead_address().await, 30, 1)).await;
        let mut slow = channel("hanging", hanging.base_url(), 20, 1);
        slow.timeout_secs = Some(1);
        app.add_channel_with(slow).await;
        app.add_channel_with(channel("broken", broken.base_url(), 10, 1)).await;
        app.add_channel_with(channel("html", html.base_url(), 5, 1)).await;
        app.add_channel_with(channel("good", good.base_url(), 0, 1)).await;
        app.reload().await;

        let response = app.chat(&key, chat_body("gpt-4o-mini")).await;
        assert_eq!(response.status(), 200);
        assert_eq!(hanging.request_count(), 1);
        assert_eq!(broken.request_count(), 1);
        assert_eq!(html.request_count(), 1);
        assert_eq!(good.request_count(), 1);
        let log = &app.wait_for_logs(1).await[0];
        assert_eq!(log.attempts, 5);
        assert_eq!(log.channel_name, "good");
    }
}

db_test! {
    /// Weights hold within a tier: 1:3 gives a quarter and three quarters of the traffic.
    async fn splits_traffic_by_weight(db: TestDb) {
        let (app, key) = app_with_user(db).await;
        let light = FakeUpstream::chat().await;
        let heavy = FakeUpstream::chat().await;
        let standby = FakeUpstream::chat().await;
        app.add_channel_with(channel("light", light.base_url(), 0, 1)).await;
        app.add_channel_with(channel("heavy", heavy.base_url(), 0, 3)).await;
        app.add_channel_with(channel("standby", standby.base_url(), 0, 0)).await;
        app.reload().await;

        let total = 200;
        let mut handles = Vec::new();
        for _ in 0..total {
            let client = app.client.clone();
            let url = app.url("/v1/chat/completions");
            let key = key.clone();
            handles.push(tokio::spawn(async move {
                client.post(url).bearer_auth(key).json(&chat_body("gpt-4o-mini")).send().await.unwrap().status()
            }));
            if handles.len() == 8 {
                for h in handles.drain(..) {
                    assert_eq!(h.await.unwrap(), 200);
                }
            }
        }
        for h in handles {
            assert_eq!(h.await.unwrap(), 200);
        }
        let (l, h) = (light.request_count() as f64, heavy.request_count() as f64);
        assert_eq!(l + h, total as f64);
        // Smooth weighted round-robin is exact over whole periods; allow a little for
        // concurrency interleaving.
        let share = h / (l + h);
        assert!((share - 0.75).abs() < 0.05, "heavy share {share}");
        assert_eq!(standby.request_count(), 0, "a weight-0 channel is only a standby");
    }
}

db_test! {
    /// A weight-0 channel takes over when every weighted channel of its tier is down.
    async fn uses_standby_channels_last(db: TestDb) {
        let (app, key) = app_with_user(db).await;
        let main = FakeUpstream::start(Reply::error(500, "down")).await;
        let standby = FakeUpstream::chat().await;
        app.add_channel_with(channel("main", main.base_url(), 0, 5)).await;
        app.add_channel_with(channel("standby", standby.base_url(), 0, 0)).await;
        app.reload().await;
        assert_eq!(app.chat(&key, chat_body("gpt-4o-mini")).await.status(), 200);
        assert_eq!(main.request_count(), 1);
        assert_eq!(standby.request_count(), 1);
    }
}

db_test! {
    /// After `cooldown_after_failures` failures a channel is skipped for `cooldown_secs`, then
    /// tried again. With every channel cooling the answer is 503 with Retry-After.
    async fn cools_failing_channels_down(db: TestDb) {
        let (app, key) = app_with_user(db).await;
        app.set_option("cooldown_after_failures", "2").await;
        app.set_option("cooldown_secs", "1").await;
        app.set_option("retry_count", "0").await;
        let flaky = FakeUpstream::start(Reply::error(500, "flaky")).await;
        let steady = FakeUpstream::chat().await;
        app.add_channel_with(channel("flaky", flaky.base_url(), 10, 1)).await;
        app.add_channel_with(channel("steady", steady.base_url(), 0, 1)).await;
        app.reload().await;

        // Two failures (no retries) start the cooldown.
        for _ in 0..2 {
            assert_eq!(app.chat(&key, chat_body("gpt-4o-mini")).await.status(), 502);
        }
        assert_eq!(flaky.request_count(), 2);
        for _ in 0..3 {
            assert_eq!(app.chat(&key, chat_body("gpt-4o-mini")).await.status(), 200);
        }
        assert_eq!(flaky.request_count(), 2, "a cooling channel gets no traffic");
        assert_eq!(steady.request_count(), 3);

        tokio::time::sleep(Duration::from_millis(1100)).await;
        flaky.set_default(Reply::chat("back", 1, 1));
        let body: Value = app.chat(&key, chat_body("gpt-4o-mini")).await.json().await.unwrap();
        assert_eq!(body["choices"][0]["message"]["content"], "back");

        // A lone channel that cools down answers 503 with a hint when to retry.
        flaky.set_default(Reply::error(500, "flaky"));
        tollgate::service::channels::delete(app.ctx(), &CLI, "steady").await.unwrap();
        app.reload().await;
        for _ in 0..2 {
            app.chat(&key, chat_body("gpt-4o-mini")).await;
        }
        let response = app.chat(&key, chat_body("gpt-4o-mini")).await;
        assert!(response.headers().contains_key("retry-after"));
        let message = expect_error(response, 503, "no_available_channel").await;
        assert!(message.contains("cooling"), "{message}");
        let logs = app.wait_for_logs(9).await;
        let last = logs.last().unwrap();
        assert_eq!((last.outcome, last.attempts, last.cost), (Outcome::Refused, 0, 0));
    }
}

db_test! {
    /// An upstream that answers 401 is auto-disabled at once with the reason recorded, the
    /// request moves on, a background probe re-enables the channel once the upstream accepts
    /// the key again, and a channel an admin disabled is never probed back on.
    async fn auto_disables_on_bad_keys_and_reenables_after_a_probe(db: TestDb) {
        let (app, key) = app_with_user(db).await;
        app.set_option("probe_interval_secs", "1").await;
        let revoked = FakeUpstream::start(Reply::error(401, "Incorrect API key provided")).await;
        revoked.set_models_status(401);
        let fallback = FakeUpstream::chat().await;
        let admin_off = FakeUpstream::chat().await;
        let revoked_id = app.add_channel_with(channel("revoked", revoked.base_url(), 10, 1)).await;
        app.add_channel_with(channel("fallback", fallback.base_url(), 0, 1)).await;
        let mut off = channel("admin-off", admin_off.base_url(), 0, 1);
        off.status = Some("disabled".into());
        app.add_channel_with(off).await;
        app.reload().await;

        assert_eq!(app.chat(&key, chat_body("gpt-4o-mini")).await.status(), 200);
        assert_eq!(revoked.request_count(), 1);
        // The disable is persisted with its reason.
        let mut status = ChannelStatus::Enabled;
        for _ in 0..50 {
            let row = tollgate::service::channels::by_id(app.ctx(), &CLI, revoked_id).await.unwrap();
            status = row.status;
            if status == ChannelStatus::AutoDisabled {
                assert!(row.status_reason.contains("401"), "{}", row.status_reason);
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(status, ChannelStatus::AutoDisabled);
        for _ in 0..3 {
            assert_eq!(app.chat(&key, chat_body("gpt-4o-mini")).await.status(), 200);
        }
        assert_eq!(revoked.request_count(), 1, "a disabled channel gets no traffic");

        // Probes keep failing while the upstream refuses the key...
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(revoked.probe_count() >= 1);
        let row = tollgate::service::channels::by_id(app.ctx(), &CLI, revoked_id).await.unwrap();
        assert_eq!(row.status, ChannelStatus::AutoDisabled);
        // ...and re-enable the channel once it accepts it.
        revoked.set_models_status(200);
        revoked.set_default(Reply::chat("revived", 1, 1));
        let mut revived = false;
        for _ in 0..60 {
            let row = tollgate::service::channels::by_id(app.ctx(), &CLI, revoked_id).await.unwrap();
            if row.status == ChannelStatus::Enabled {
                revived = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(revived, "the probe re-enabled the channel");
        tokio::time::sleep(Duration::from_millis(300)).await;
        let body: Value = app.chat(&key, chat_body("gpt-4o-mini")).await.json().await.unwrap();
        assert_eq!(body["choices"][0]["message"]["content"], "revived");
        assert_eq!(admin_off.request_count() + admin_off.probe_count(), 0);
    }
}

db_test! {
    /// A channel that keeps failing with retryable errors is auto-disabled after
    /// `auto_disable_after_failures` in a row.
    async fn auto_disables_after_repeated_failures(db: TestDb) {
        let (app, key) = app_with_user(db).await;
        app.set_option("auto_disable_after_failures", "3").await;
        app.set_option("cooldown_after_failures", "100").await;
        app.set_option("retry_count", "0").await;
        let failing = FakeUpstream::start(Reply::error(500, "down")).await;
        let id = app.add_channel_with(channel("failing", failing.base_url(), 0, 1)).await;
        app.reload().await;
        for _ in 0..3 {
            assert_eq!(app.chat(&key, chat_body("gpt-4o-mini")).await.status(), 502);
        }
        let mut disabled = false;
        for _ in 0..50 {
            let row = tollgate::service::channels::by_id(app.ctx(), &CLI, id).await.unwrap();
            if row.status == ChannelStatus::AutoDisabled {
                assert!(row.status_reason.contains("3 consecutive failures"), "{}", row.status_reason);
                disabled = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(disabled);
        expect_error(app.chat(&key, chat_body("gpt-4o-mini")).await, 503, "no_available_channel").await;
        assert_eq!(failing.request_count(), 3);
    }
}

/// Requests the upstream received with this key.
fn sent_with(upstream: &FakeUpstream, key: &str) -> usize {
    let bearer = format!("Bearer {key}");
    upstream
        .requests()
        .iter()
        .filter(|r| {
            r.headers
                .get("authorization")
                .is_some_and(|v| v == bearer.as_str())
        })
        .count()
}

/// Polls the stored channel until `done` holds (5 s at most).
async fn wait_for_channel(
    app: &TestApp,
    id: i64,
    done: impl Fn(&tollgate::service::db::channels::ChannelRow) -> bool,
) -> tollgate::service::db::channels::ChannelRow {
    for _ in 0..100 {
        let row = tollgate::service::channels::by_id(app.ctx(), &CLI, id)
            .await
            .unwrap();
        if done(&row) {
            return row;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("channel {id} never reached the expected state");
}

db_test! {
    /// On a channel with several keys, a key the upstream refuses (401) leaves the rotation
    /// alone, with the reason stored, and a rate-limited key (429) cools down alone; the same
    /// request is served by another key of the same channel and charged once, and the channel
    /// stays enabled. A background probe puts the refused key back once the upstream accepts
    /// it. When every key of a channel is refused, the channel itself is disabled.
    async fn rests_failing_keys_of_a_multi_key_channel_alone(db: TestDb) {
        let (app, key) = app_with_user(db).await;
        app.set_option("probe_interval_secs", "1").await;
        app.set_option("cooldown_secs", "60").await;
        app.set_option("retry_count", "3").await;
        let upstream = FakeUpstream::chat().await;
        upstream.set_key_status("sk-revoked-1111", Some(401));
        upstream.set_key_status("sk-limited-2222", Some(429));
        let mut pool = channel("pool", upstream.base_url(), 0, 1);
        pool.keys = Some(vec![
            "sk-good-0000".into(),
            "sk-revoked-1111".into(),
            "sk-limited-2222".into(),
        ]);
        let id = app.add_channel_with(pool).await;
        app.reload().await;

        for _ in 0..6 {
            assert_eq!(app.chat(&key, chat_body("gpt-4o-mini")).await.status(), 200);
        }
        assert_eq!(sent_with(&upstream, "sk-revoked-1111"), 1, "a refused key is not tried again");
        assert_eq!(sent_with(&upstream, "sk-limited-2222"), 1, "a rate-limited key cools down");
        assert_eq!(sent_with(&upstream, "sk-good-0000"), 6);
        let logs = app.wait_for_logs(6).await;
        assert!(logs.iter().all(|l| l.outcome == Outcome::Success));
        assert_eq!(logs.iter().map(|l| l.attempts).max(), Some(3));
        let charged: i64 = logs.iter().map(|l| l.cost).sum();
        assert_eq!(charged, logs[0].cost * 6, "a retried request is charged once");

        let row = wait_for_channel(&app, id, |c| !c.disabled_keys.is_empty()).await;
        assert_eq!(row.status, ChannelStatus::Enabled, "one bad key does not disable the channel");
        assert_eq!(row.disabled_keys.len(), 1, "only the refused key is stored as disabled");
        let view = tollgate::service::views::ChannelView::new(&row, 500_000);
        assert_eq!(view.disabled_keys.len(), 1);
        assert_eq!(view.disabled_keys[0].key, "sk-****1111");
        assert_eq!(view.disabled_keys[0].index, 1);
        let listed = tollgate::cli::output::channel(&view);
        assert!(listed.contains("sk-****1111 [disabled"), "{listed}");
        assert!(view.disabled_keys[0].reason.contains("401"), "{}", view.disabled_keys[0].reason);
        let shown = serde_json::to_string(&view).unwrap();
        assert!(!shown.contains("sk-revoked-1111"), "keys are never shown in full: {shown}");

        // The probe keeps the refused key out while the upstream refuses it...
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(upstream.probe_count() >= 1);
        let row = tollgate::service::channels::by_id(app.ctx(), &CLI, id).await.unwrap();
        assert_eq!(row.disabled_keys.len(), 1);
        // ...and puts it back once the upstream accepts it.
        upstream.set_key_status("sk-revoked-1111", None);
        wait_for_channel(&app, id, |c| c.disabled_keys.is_empty()).await;
        app.reload().await;
        for _ in 0..4 {
            assert_eq!(app.chat(&key, chat_body("gpt-4o-mini")).await.status(), 200);
        }
        assert!(sent_with(&upstream, "sk-revoked-1111") >= 2, "the key is back in rotation");

        // Every key refused: the channel is disabled as a whole, and says why.
        tollgate::service::channels::delete(app.ctx(), &CLI, "pool").await.unwrap();
        let doomed_upstream = FakeUpstream::chat().await;
        doomed_upstream.set_key_status("sk-first-3333", Some(401));
        doomed_upstream.set_key_status("sk-second-4444", Some(403));
        let mut doomed = channel("doomed", doomed_upstream.base_url(), 0, 1);
        doomed.keys = Some(vec!["sk-first-3333".into(), "sk-second-4444".into()]);
        let doomed_id = app.add_channel_with(doomed).await;
        app.reload().await;
        let response = app.chat(&key, chat_body("gpt-4o-mini")).await;
        assert!(response.status().is_client_error() || response.status().is_server_error());
        assert_eq!(doomed_upstream.request_count(), 2, "each key is tried once");
        let row = wait_for_channel(&app, doomed_id, |c| c.status == ChannelStatus::AutoDisabled).await;
        assert!(row.status_reason.contains("every key"), "{}", row.status_reason);
        assert_eq!(row.disabled_keys.len(), 2);
        app.reload().await;
        expect_error(app.chat(&key, chat_body("gpt-4o-mini")).await, 503, "no_available_channel").await;
        assert_eq!(doomed_upstream.request_count(), 2);

        // An admin who removes a key from the channel removes it from the disabled list too.
        tollgate::service::channels::update(app.ctx(), &CLI, "doomed", ChannelInput {
            keys: Some(vec!["sk-first-3333".into()]),
            ..Default::default()
        })
        .await
        .unwrap();
        let row = tollgate::service::channels::by_id(app.ctx(), &CLI, doomed_id).await.unwrap();
        assert_eq!(row.disabled_keys.len(), 1);
        assert!(row.is_key_disabled("sk-first-3333"));
    }
}
