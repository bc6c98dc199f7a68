//! Logs at scale: the rollups the billing writer keeps beside the logs, the console's logs and
//! overview, `/api/logs`' filters and paging, the One API balance routes, rebuild and purge.

use std::collections::BTreeMap;

use futures::StreamExt;
use serde_json::json;
use sqlx::Row;

use crate::helpers::{Api, FakeUpstream, Reply, TestApp, admin_token, chat_body, db_test};
use tollgate::domain::kinds::Outcome;
use tollgate::domain::rollup::BUCKET_MS;
use tollgate::service::db::Db;
use tollgate::service::db::logs::{BillingBatch, RequestLog};
use tollgate::service::db::rollups::{RollupKey, RollupSums, rollup_of};

/// Every rollup row as stored.
async fn stored_rollups(db: &Db) -> BTreeMap<RollupKey, RollupSums> {
    let rows = db
        .fetch_all_with("SELECT * FROM log_rollups", &[])
        .await
        .expect("rollups");
    let mut stored = BTreeMap::new();
    for row in rows {
        let key = RollupKey {
            bucket_start: row.get("bucket_start"),
            user_id: row.get("user_id"),
            token_id: row.get("token_id"),
            model: row.get("model"),
            channel_id: row.get("channel_id"),
            group: row.get("group_name"),
            outcome: row.get("outcome"),
        };
        let mut sums = RollupSums {
            requests: row.get("requests"),
            prompt_tokens: row.get("prompt_tokens"),
            completion_tokens: row.get("completion_tokens"),
            cost: row.get("cost"),
            ..Default::default()
        };
        for i in 0..16 {
            sums.latency[i] = row.get(format!("lat_{i}").as_str());
            sums.ttft[i] = row.get(format!("ttft_{i}").as_str());
        }
        stored.insert(key, sums);
    }
    stored
}

/// A log row as the relay would write it.
pub fn log_row(
    at: i64,
    user: (i64, &str),
    token_id: i64,
    model: &str,
    channel: Option<i64>,
) -> RequestLog {
    RequestLog {
        id: 0,
        created_at: at,
        request_id: format!("req-{at}-{user:?}-{model}-{token_id}"),
        user_id: user.0,
        username: user.1.into(),
        token_id,
        token_name: format!("key-{token_id}"),
        group: "default".into(),
        endpoint: "chat.completions".into(),
        model: model.into(),
        requested_model: String::new(),
        upstream_model: model.into(),
        channel_id: channel,
        channel_name: channel.map(|c| format!("ch-{c}")).unwrap_or_default(),
        attempts: i64::from(channel.is_some()),
        prompt_tokens: 10,
        completion_tokens: 5,
        cached_tokens: 0,
        cache_write_tokens: 0,
        usage_estimated: false,
        cost: 100,
        latency_ms: 420,
        ttft_ms: Some(90),
        is_stream: true,
        outcome: if channel.is_some() {
            Outcome::Success
        } else {
            Outcome::Refused
        },
        status_code: if channel.is_some() { 200 } else { 429 },
        error_message: if channel.is_some() {
            String::new()
        } else {
            "insufficient quota".into()
        },
        client_ip: "127.0.0.1".into(),
        upstream_request_id: String::new(),
        implausible_usage: String::new(),
    }
}

/// Writes log rows the way the billing writer does (with their rollups, in one transaction).
pub async fn write_logs(db: &Db, logs: &[RequestLog]) {
    for chunk in logs.chunks(200) {
        let batch = BillingBatch {
            logs: chunk.iter().collect(),
            ..Default::default()
        };
        tollgate::service::db::logs::apply_billing(db, &batch)
            .await
            .expect("billing batch");
    }
}

db_test! {
    /// 44 requests at once from three users over two models and channels, some refused: every
    /// rollup row equals the sums of the raw log rows of its bucket and group, and the totals
    /// `/api/logs` gives (from the rollups) equal the rows' sums, filtered and not.
    async fn rollups_equal_the_raw_logs_after_concurrent_traffic(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let fast = FakeUpstream::start(Reply::chat("ok", 12, 7)).await;
        let slow = FakeUpstream::start(Reply::stream(&["a", "b", "c"], Some((30, 3)))).await;
        app.add_channel("fast", &fast, "model-a").await;
        app.add_channel("slow", &slow, "model-b").await;
        app.price("model-a", "1", "2").await;
        app.price("model-b", "3", "4").await;
        app.create_user("alice", "10").await;
        app.create_user("bob", "10").await;
        app.create_user("carol", "0").await;
        let keys = [app.key_for("alice").await, app.key_for("bob").await];
        let carol = app.key_for("carol").await;
        app.reload().await;

        let mut requests = Vec::new();
        for i in 0..40 {
            let key = keys[i % 2].clone();
            let mut body = chat_body(if i % 4 < 2 { "model-a" } else { "model-b" });
            body["stream"] = json!(i % 4 >= 2);
            requests.push((key, body));
        }
        for _ in 0..4 {
            requests.push((carol.clone(), chat_body("model-a")));
        }
        let statuses = futures::future::join_all(requests.into_iter().map(|(key, body)| {
            let request = app.client.post(app.url("/v1/chat/completions")).bearer_auth(key).json(&body);
            async move {
                let response = request.send().await.unwrap();
                let status = response.status().as_u16();
                let mut bytes = response.bytes_stream();
                while bytes.next().await.is_some() {}
                status
            }
        }))
        .await;
        assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 40, "{statuses:?}");

        let logs = app.wait_for_logs(44).await;
        assert_eq!(logs.len(), 44);
        let stored = stored_rollups(&app.db).await;
        assert_eq!(stored, rollup_of(logs.iter()), "the rollups are the logs' sums");
        assert!(stored.keys().any(|k| k.outcome == "refused" && k.channel_id == 0));
        let streamed: i64 = stored.values().map(|s| s.ttft.iter().sum::<i64>()).sum();
        assert_eq!(streamed, 20, "time to first token is counted for the streamed requests");

        let token = admin_token(&app, "ada", "admin").await;
        let api = Api { app: &app, token };
        let alice = app.user("alice").await;
        for (query, rows) in [
            ("", logs.iter().collect::<Vec<_>>()),
            ("?user=alice", logs.iter().filter(|l| l.user_id == alice.id).collect()),
            ("?model=model-b", logs.iter().filter(|l| l.model == "model-b").collect()),
            ("?outcome=refused", logs.iter().filter(|l| l.outcome == Outcome::Refused).collect()),
        ] {
            let (status, body) = api.get(&format!("/api/logs{query}")).await;
            assert_eq!(status, 200, "{body}");
            let totals = &body["totals"];
            assert_eq!(totals["requests"], rows.len() as i64, "{query}");
            assert_eq!(totals["cost"], rows.iter().map(|l| l.cost).sum::<i64>(), "{query}");
            assert_eq!(totals["prompt_tokens"], rows.iter().map(|l| l.prompt_tokens).sum::<i64>());
            assert_eq!(totals["completion_tokens"], rows.iter().map(|l| l.completion_tokens).sum::<i64>());
        }
    }
}

db_test! {
    /// Totals over a time range whose edges fall inside buckets read those edges from the raw
    /// rows: rows just inside and just outside each edge count exactly as the range says.
    async fn totals_over_ranges_with_ragged_edges_are_exact(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let alice = app.create_user("alice", "1").await;
        let base = tollgate::domain::rollup::bucket_start(tollgate::service::db::now_ms()) - 20 * BUCKET_MS;
        let mut logs = Vec::new();
        for i in 0..80 {
            let mut row = log_row(base + i * (BUCKET_MS / 4) + 7, (alice.id, "alice"), 1, "m", Some(1));
            row.cost = i + 1;
            logs.push(row);
        }
        write_logs(&app.db, &logs).await;
        let token = admin_token(&app, "ada", "admin").await;
        let api = Api { app: &app, token };
        for (from, to) in [
            (base + 8, base + 13 * BUCKET_MS + 7),
            (base + 7, base + 13 * BUCKET_MS + 8),
            (base + BUCKET_MS / 2, base + BUCKET_MS / 2 + 100),
            (base + 3 * BUCKET_MS, base + 6 * BUCKET_MS),
            (base - 1, base + 40 * BUCKET_MS),
        ] {
            let expected: Vec<&RequestLog> =
                logs.iter().filter(|l| l.created_at >= from && l.created_at < to).collect();
            let (status, body) = api.get(&format!("/api/logs?from={from}&to={to}&limit=1000")).await;
            assert_eq!(status, 200, "{body}");
            assert_eq!(body["totals"]["requests"], expected.len() as i64, "{from}..{to}");
            assert_eq!(body["totals"]["cost"], expected.iter().map(|l| l.cost).sum::<i64>(), "{from}..{to}");
            assert_eq!(body["data"].as_array().unwrap().len(), expected.len());
        }
    }
}
