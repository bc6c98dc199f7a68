//! Logs at scale: the rollups the billing writer keeps beside the logs, the console's logs and
//! overview, `/api/logs`' filters and paging, the One API balance routes, rebuild and purge.

use std::collections::BTreeMap;

use futures::StreamExt;
use serde_json::json;
use sqlx::Row;

use crate::helpers::browser::html_unescape;
use crate::helpers::{Api, Browser, FakeUpstream, Reply, TestApp, admin_token, chat_body, db_test};
use tollgate::domain::kinds::Outcome;
use tollgate::domain::rollup::BUCKET_MS;
use tollgate::service::db::Db;
use tollgate::service::db::logs::{BillingBatch, RequestLog};
use tollgate::service::db::rollups::{
    Coarse, CoarseKey, RollupKey, RollupSums, coarse_of, rollup_of,
};

const PASSWORD: &str = "correct horse battery";
const DAY_MS: i64 = 86_400_000;

/// The ids of the requests a console page lists, in order.
fn listed_ids(body: &str) -> Vec<i64> {
    body.split("href=\"/admin/logs/")
        .skip(1)
        .filter_map(|rest| rest.split('"').next()?.parse().ok())
        .collect()
}

/// The link to the next page of a console page, if any.
fn older_link(body: &str) -> Option<String> {
    let (before, _) = body.split_once("rel=\"next\"")?;
    let start = before.rfind("href=\"")? + 6;
    Some(html_unescape(before[start..].split('"').next()?))
}

/// The CSV's data rows (header and totals row aside) as cells, and its totals row.
fn csv_rows(text: &str) -> (Vec<Vec<String>>, Vec<String>) {
    let mut lines: Vec<Vec<String>> = text
        .lines()
        .map(|line| {
            line.split(',')
                .map(|c| c.trim_matches('"').to_string())
                .collect()
        })
        .collect();
    assert_eq!(lines[0][0], "time", "{text}");
    let totals = lines.pop().expect("a totals row");
    assert_eq!(totals[0], "total", "{text}");
    (lines.split_off(1), totals)
}

/// Newest first, as every listing orders.
fn newest_first(mut rows: Vec<&RequestLog>) -> Vec<i64> {
    rows.sort_by_key(|l| std::cmp::Reverse((l.created_at, l.id)));
    rows.iter().map(|l| l.id).collect()
}

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

/// Every row of the overview's coarser rollups as stored.
async fn stored_coarse(db: &Db) -> BTreeMap<(Coarse, CoarseKey), RollupSums> {
    let mut stored = BTreeMap::new();
    for (table, name) in [
        (Coarse::Usage, "usage_rollups"),
        (Coarse::Users, "user_usage_rollups"),
        (Coarse::Totals, "total_usage_rollups"),
    ] {
        let rows = db
            .fetch_all_with(&format!("SELECT * FROM {name}"), &[])
            .await
            .expect("coarse rollups");
        for row in rows {
            let mut key = CoarseKey {
                grain_ms: row.get("grain_ms"),
                bucket_start: row.get("bucket_start"),
                ..Default::default()
            };
            let mut sums = RollupSums {
                requests: row.get("requests"),
                prompt_tokens: row.get("prompt_tokens"),
                completion_tokens: row.get("completion_tokens"),
                cost: row.get("cost"),
                ..Default::default()
            };
            match table {
                Coarse::Usage => {
                    key.model = row.get("model");
                    key.channel_id = row.get("channel_id");
                    key.group = row.get("group_name");
                    key.outcome = row.get("outcome");
                    for i in 0..16 {
                        sums.latency[i] = row.get(format!("lat_{i}").as_str());
                        sums.ttft[i] = row.get(format!("ttft_{i}").as_str());
                    }
                }
                Coarse::Users => key.user_id = row.get("user_id"),
                Coarse::Totals => {}
            }
            stored.insert((table, key), sums);
        }
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
        failed_attempts: Vec::new(),
        org_id: 0,
        team_id: 0,
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
        let coarse = stored_coarse(&app.db).await;
        assert_eq!(coarse, coarse_of(&rollup_of(logs.iter())), "so are the overview's coarser rollups");
        assert!(coarse.keys().any(|(t, k)| *t == Coarse::Usage && k.grain_ms == DAY_MS));
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

/// 60 requests over three days from two users, three keys, two models and two channels, a
/// fifth of them refused before any channel; returns them as written (with their ids).
async fn seed(app: &TestApp) -> Vec<RequestLog> {
    let alice = app.create_user("alice", "1").await;
    let bob = app.create_user("bob", "1").await;
    let now = tollgate::service::db::now_ms();
    let mut logs = Vec::new();
    for i in 0..60_i64 {
        let user = if i % 2 == 0 {
            (alice.id, "alice")
        } else {
            (bob.id, "bob")
        };
        let token = if i % 2 == 0 { 11 + (i / 2) % 2 } else { 21 };
        let model = if i % 3 == 0 { "m2" } else { "m1" };
        let channel = match i % 5 {
            0 => None,
            1 | 2 => Some(1),
            _ => Some(2),
        };
        let mut row = log_row(now - 60_000 - i * 71 * 60_000, user, token, model, channel);
        row.cost = 100 + i;
        row.request_id = format!("req-{i}");
        logs.push(row);
    }
    write_logs(&app.db, &logs).await;
    app.logs().await
}

db_test! {
    /// Each filter (user, key, model, channel, outcome, time range as days or instants) gives
    /// the same rows and totals on the console's page, in its CSV and from `/api/logs`.
    async fn filters_agree_on_the_page_the_csv_and_the_api(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let logs = seed(&app).await;
        assert_eq!(logs.len(), 60);
        app.create_account("ada", "admin", PASSWORD).await;
        let browser = Browser::new(&app);
        browser.sign_in("ada", PASSWORD).await;
        let token = admin_token(&app, "root-api", "admin").await;
        let api = Api { app: &app, token };
        let alice = app.user("alice").await;
        let now = tollgate::service::db::now_ms();
        let calendar = tollgate::domain::calendar::SiteCalendar::new("UTC");
        let yesterday = tollgate::domain::calendar::SiteCalendar::day_label(calendar.day_number(now) - 1);
        let day_start = calendar.date_start_ms(&yesterday).unwrap();
        let from_instant = now - DAY_MS;
        let to_instant = now - DAY_MS / 3;
        let rfc = |ms: i64| calendar.rfc3339(ms);
        type Pick = Box<dyn Fn(&RequestLog) -> bool>;
        let alice_id = alice.id;
        let cases: Vec<(String, Pick)> = vec![
            ("user=alice".into(), Box::new(move |l| l.user_id == alice_id)),
            ("key=12".into(), Box::new(|l| l.token_id == 12)),
            ("model=m2".into(), Box::new(|l| l.model == "m2")),
            ("channel=2".into(), Box::new(|l| l.channel_id == Some(2))),
            ("channel=0".into(), Box::new(|l| l.channel_id.is_none())),
            ("outcome=refused".into(), Box::new(|l| l.outcome == Outcome::Refused)),
            (format!("from={yesterday}&to={yesterday}"), Box::new(move |l| l.created_at >= day_start && l.created_at < day_start + DAY_MS)),
            (
                format!("from={}&to={}", rfc(from_instant), rfc(to_instant)),
                Box::new(move |l| l.created_at >= from_instant / 1000 * 1000 && l.created_at < to_instant / 1000 * 1000),
            ),
            ("user=alice&model=m1&channel=1".into(), Box::new(move |l| l.user_id == alice_id && l.model == "m1" && l.channel_id == Some(1))),
        ];
        for (query, pick) in cases {
            let query = query.replace('+', "%2B");
            let rows: Vec<&RequestLog> = logs.iter().filter(|l| pick(l)).collect();
            assert!(!rows.is_empty(), "{query} matches something");
            let expected = newest_first(rows.clone());
            let cost: i64 = rows.iter().map(|l| l.cost).sum();

            let page = browser.get(&format!("/admin/logs?{query}")).await;
            assert_eq!(page.status, 200, "{query}: {}", page.body);
            assert_eq!(listed_ids(&page.body), expected, "{query}");
            assert!(
                page.body.contains(&format!("<strong>{}</strong>", rows.len())),
                "{query}: the totals count {} requests", rows.len()
            );

            let csv = browser.get(&format!("/admin/logs.csv?{query}")).await;
            assert_eq!(csv.status, 200);
            assert!(csv.headers["content-type"].to_str().unwrap().starts_with("text/csv"));
            let (cells, totals) = csv_rows(&csv.body);
            let ids: Vec<i64> = cells.iter().map(|c| c[1].parse().unwrap()).collect();
            assert_eq!(ids, expected, "{query}: CSV");
            assert_eq!(totals[14], cost.to_string(), "{query}: CSV totals");

            let (status, body) = api.get(&format!("/api/logs?{query}&limit=100")).await;
            assert_eq!(status, 200, "{query}: {body}");
            let ids: Vec<i64> = body["data"].as_array().unwrap().iter().map(|r| r["id"].as_i64().unwrap()).collect();
            assert_eq!(ids, expected, "{query}: API");
            assert_eq!(body["totals"]["requests"], rows.len() as i64);
            assert_eq!(body["totals"]["cost"], cost);
        }
        // The model filter offers every model the logs name.
        let unfiltered = browser.get("/admin/logs").await;
        for model in ["m1", "m2"] {
            assert!(unfiltered.body.contains(&format!("<option value=\"{model}\"")), "{model}");
        }
        // `token_id` is the key filter's other name on the API.
        let (_, body) = api.get("/api/logs?token_id=21&limit=100").await;
        assert_eq!(body["totals"]["requests"], logs.iter().filter(|l| l.token_id == 21).count() as i64);

        // Values that do not parse are named, on the page (422) and on the API (400).
        let bad = browser.get("/admin/logs?from=someday&key=x&outcome=meh").await;
        assert_eq!(bad.status, 422);
        for field in ["from", "key", "outcome"] {
            assert!(bad.field_error(field).is_some(), "{field}: {}", bad.body);
        }
        assert!(listed_ids(&bad.body).is_empty());
        let (status, body) = api.get("/api/logs?from=someday").await;
        assert_eq!(status, 400, "{body}");
        let unknown = browser.get("/admin/logs?user=nobody").await;
        assert_eq!(unknown.status, 422);
        assert!(unknown.field_error("user").is_some());
    }
}

db_test! {
    /// Paging by cursor walks every row once, rows sharing a millisecond included, on the page
    /// and on the API; `before_id` still pages the API.
    async fn keyset_pagination_walks_every_row_once(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let alice = app.create_user("alice", "1").await;
        let now = tollgate::service::db::now_ms();
        let rows: Vec<RequestLog> = (0..130_i64)
            .map(|i| {
                // Three rows per millisecond.
                let mut row = log_row(now - 1_000 - (i / 3) * 997, (alice.id, "alice"), 1, "m", Some(1));
                row.request_id = format!("req-{i}");
                row
            })
            .collect();
        write_logs(&app.db, &rows).await;
        let logs = app.logs().await;
        let expected = newest_first(logs.iter().collect());
        assert_eq!(expected.len(), 130);

        let token = admin_token(&app, "ada-api", "admin").await;
        let api = Api { app: &app, token };
        let mut seen = Vec::new();
        let mut path = "/api/logs?limit=20".to_string();
        loop {
            let (status, body) = api.get(&path).await;
            assert_eq!(status, 200, "{body}");
            seen.extend(body["data"].as_array().unwrap().iter().map(|r| r["id"].as_i64().unwrap()));
            assert_eq!(body["totals"]["requests"], 130, "totals ignore paging");
            match body["next"].as_str() {
                Some(cursor) => path = format!("/api/logs?limit=20&before={cursor}"),
                None => break,
            }
        }
        assert_eq!(seen, expected, "the API walks every row once, newest first");

        let mut seen = Vec::new();
        let mut before_id: Option<i64> = None;
        loop {
            let path = match before_id {
                Some(id) => format!("/api/logs?limit=25&before_id={id}"),
                None => "/api/logs?limit=25".to_string(),
            };
            let (_, body) = api.get(&path).await;
            let ids: Vec<i64> = body["data"].as_array().unwrap().iter().map(|r| r["id"].as_i64().unwrap()).collect();
            if ids.is_empty() {
                break;
            }
            before_id = ids.last().copied();
            seen.extend(ids);
        }
        assert_eq!(seen, expected, "before_id pages the same rows");

        app.create_account("ada", "admin", PASSWORD).await;
        let browser = Browser::new(&app);
        browser.sign_in("ada", PASSWORD).await;
        let mut seen = Vec::new();
        let mut path = "/admin/logs?model=m".to_string();
        let mut pages = 0;
        loop {
            let page = browser.get(&path).await;
            assert_eq!(page.status, 200, "{}", page.body);
            seen.extend(listed_ids(&page.body));
            pages += 1;
            match older_link(&page.body) {
                Some(link) => {
                    assert!(link.starts_with("/admin/logs?model=m&before="), "{link}");
                    path = link;
                }
                None => break,
            }
        }
        assert_eq!(pages, 3);
        assert_eq!(seen, expected, "the console walks every row once");
        let (status, _) = api.get("/api/logs?before=not-a-cursor").await;
        assert_eq!(status, 400);
    }
}

db_test! {
    /// A request's page has everything about it: the model asked for and the one served, the
    /// channel and how many were tried, tokens, cost, latency, time to first token, the
    /// upstream's request id and why it ended so. Someone who is not an administrator gets the
    /// not-found page for the logs, their CSV and a request.
    async fn a_request_has_its_whole_record_and_only_administrators_see_it(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let alice = app.create_account("alice", "user", PASSWORD).await;
        app.create_account("ada", "admin", PASSWORD).await;
        let now = tollgate::service::db::now_ms();
        let mut row = log_row(now - 5_000, (alice.id, "alice"), 7, "gpt-4o-mini", Some(3));
        row.requested_model = "fast".into();
        row.upstream_model = "gpt-4o-mini-2024-07-18".into();
        row.channel_name = "primary".into();
        row.attempts = 2;
        row.prompt_tokens = 1234;
        row.completion_tokens = 56;
        row.cost = 500_000;
        row.latency_ms = 2_340;
        row.ttft_ms = Some(310);
        row.upstream_request_id = "up-req-98765".into();
        row.outcome = Outcome::StreamError;
        row.error_message = "the upstream closed the stream".into();
        write_logs(&app.db, &[row]).await;
        let id = app.logs().await[0].id;

        let ada = Browser::new(&app);
        ada.sign_in("ada", PASSWORD).await;
        let page = ada.get(&format!("/admin/logs/{id}")).await;
        assert_eq!(page.status, 200, "{}", page.body);
        for text in ["fast", "gpt-4o-mini", "gpt-4o-mini-2024-07-18", "primary", "1234 / 56", "$1.00",
                     "2.34 s", "310 ms", "up-req-98765", "the upstream closed the stream", "alice"] {
            assert!(page.contains(text), "{text}: {}", page.body);
        }
        assert!(page.body.contains("<dd>2</dd>"), "channels tried: {}", page.body);
        assert_eq!(ada.get("/admin/logs/999999").await.status, 404);
        assert_eq!(ada.get("/admin/logs/abc").await.status, 404);
        let zh = ada.get(&format!("/admin/logs/{id}?lang=zh-CN")).await;
        assert!(zh.contains("首个 token 用时"), "{}", zh.body);

        let user = Browser::new(&app);
        user.sign_in("alice", PASSWORD).await;
        for path in ["/admin/logs".to_string(), "/admin/logs.csv".to_string(), format!("/admin/logs/{id}")] {
            let refused = user.get(&path).await;
            assert_eq!(refused.status, 404, "{path}");
            assert!(!refused.body.contains("up-req-98765"));
        }
    }
}

/// Writes a ledger row now, as a top-up, a redemption or a refund does.
async fn ledger_row(
    app: &TestApp,
    user_id: i64,
    kind: tollgate::domain::kinds::LedgerKind,
    amount: i64,
    key: &str,
) {
    use tollgate::service::db::ledger::{NewEntry, insert};
    let entry = NewEntry {
        user_id,
        kind,
        amount,
        actor: "system",
        reference: "",
        reason: "test",
        idempotency_key: key,
    };
    app.db
        .write(async |tx| insert(tx, &entry).await)
        .await
        .expect("ledger row");
}

db_test! {
    /// The overview's figures, from the rollups and the ledger, over 24 hours, 7 and 30 days:
    /// requests, tokens, spend, top-ups, codes and refunds; the top models, users and
    /// channels; each channel's error rate and percentiles; the auto-disabled channel and why.
    async fn the_overview_adds_up_over_each_range(db: TestDb) {
        use tollgate::domain::kinds::{ChannelStatus, LedgerKind};
        let app = TestApp::spawn(db).await;
        let upstream = FakeUpstream::chat().await;
        let first = app.add_channel("first", &upstream, "m1").await;
        let second = app.add_channel("second", &upstream, "m2").await;
        let alice = app.create_user("alice", "1").await;
        let bob = app.create_user("bob", "1").await;
        let now = tollgate::service::db::now_ms();
        let hour = 3_600_000;
        let mut logs = Vec::new();
        // (age, user, model, channel, cost, failed)
        type Plan<'a> = (i64, (i64, &'a str), &'a str, i64, i64, bool);
        let plan: Vec<Plan> = vec![
            (hour, (alice.id, "alice"), "m1", first, 300, false),
            (2 * hour, (alice.id, "alice"), "m1", first, 300, false),
            (5 * hour, (bob.id, "bob"), "m2", second, 200, false),
            (6 * hour, (bob.id, "bob"), "m2", second, 0, true),
            (3 * DAY_MS, (bob.id, "bob"), "m2", second, 1000, false),
            (20 * DAY_MS, (alice.id, "alice"), "m2", second, 5000, false),
            (40 * DAY_MS, (alice.id, "alice"), "m1", first, 9000, false),
        ];
        for (i, (age, user, model, channel, cost, failed)) in plan.iter().enumerate() {
            let mut row = log_row(now - age, *user, 1, model, Some(*channel));
            row.request_id = format!("req-{i}");
            row.cost = *cost;
            if *failed {
                row.outcome = Outcome::UpstreamError;
                row.status_code = 502;
            }
            logs.push(row);
        }
        write_logs(&app.db, &logs).await;
        ledger_row(&app, alice.id, LedgerKind::TopUp, 5_000_000, "t1").await;
        ledger_row(&app, bob.id, LedgerKind::Redemption, 1_000_000, "r1").await;
        ledger_row(&app, alice.id, LedgerKind::Refund, -500_000, "f1").await;
        ledger_row(&app, alice.id, LedgerKind::Adjustment, 777, "a1").await;
        tollgate::service::channels::change_health(
            app.ctx(), second, ChannelStatus::Enabled, ChannelStatus::AutoDisabled, "upstream said 401: bad key",
        )
        .await
        .unwrap();

        let token = admin_token(&app, "ada-api", "admin").await;
        let api = Api { app: &app, token };
        for (range, count, cost) in [("24h", 4, 800), ("7d", 5, 1800), ("30d", 6, 6800)] {
            let (status, body) = api.get(&format!("/api/overview?range={range}")).await;
            assert_eq!(status, 200, "{body}");
            let totals = &body["totals"];
            assert_eq!(totals["requests"], count, "{range}: {body}");
            assert_eq!(totals["cost"], cost, "{range}");
            assert_eq!(totals["prompt_tokens"], count * 10);
            assert_eq!(totals["topups"], 5_000_000);
            assert_eq!(totals["redeemed"], 1_000_000);
            assert_eq!(totals["refunds"], 500_000);
            let periods = body["periods"].as_array().unwrap();
            let summed: i64 = periods.iter().map(|p| p["figures"]["requests"].as_i64().unwrap()).sum();
            assert_eq!(summed, count, "{range}: the periods add up to the totals");
            assert_eq!(body["rebuilding"], false);
        }
        let (_, day) = api.get("/api/overview?range=24h").await;
        assert_eq!(day["top_models"][0]["name"], "m1");
        assert_eq!(day["top_models"][0]["cost"], 600);
        assert_eq!(day["top_users"][0]["name"], "alice");
        assert_eq!(day["top_channels"][0]["name"], "first");
        let second_service = day["channels"].as_array().unwrap().iter().find(|c| c["name"] == "second").unwrap().clone();
        assert_eq!(second_service["requests"], 2);
        assert_eq!(second_service["errors"], 1);
        assert_eq!(second_service["error_permille"], 500);
        // 420 ms falls in the 300–500 ms bucket, 90 ms in 50–100 ms.
        assert_eq!(second_service["latency_p50_ms"], 500);
        assert_eq!(second_service["latency_p95_ms"], 500);
        assert_eq!(second_service["ttft_p95_ms"], 100);
        let resting = day["resting"].as_array().unwrap();
        assert_eq!(resting.len(), 1, "{day}");
        assert_eq!(resting[0]["name"], "second");
        assert_eq!(resting[0]["state"], "auto_disabled");
        assert_eq!(resting[0]["reason"], "upstream said 401: bad key");
        let (status, _) = api.get("/api/overview?range=1y").await;
        assert_eq!(status, 400);

        app.create_account("ada", "admin", PASSWORD).await;
        let browser = Browser::new(&app);
        browser.sign_in("ada", PASSWORD).await;
        let page = browser.get("/admin?range=30d").await;
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(page.body.contains("id=\"total-requests\">6<"), "{}", page.body);
        assert!(page.body.contains("id=\"total-topups\">$10.00<"), "{}", page.body);
        assert!(page.contains("upstream said 401: bad key"));
        assert!(page.body.contains("href=\"/admin?range=30d\" aria-current=\"page\""));
        assert!(!page.body.contains("id=\"rebuilding\""));
        let zh = browser.get("/admin?range=24h&lang=zh-CN").await;
        assert!(zh.contains("热门模型"), "{}", zh.body);
        assert!(zh.contains("已自动停用"));
        app.create_account("carol", "user", PASSWORD).await;
        let carol = Browser::new(&app);
        carol.sign_in("carol", PASSWORD).await;
        assert_eq!(carol.get("/admin?range=24h").await.status, 404);
    }
}

db_test! {
    /// The overview reads the coarser rollups (hours and days without accounts and keys, per
    /// account, per quarter hour): over ranges with ragged edges (inside hours and quarter
    /// hours, across UTC midnights) each grouping it asks for equals the 15-minute path's and
    /// the logs' own sums, histograms included; in a zone half an hour off UTC each day of the
    /// chart holds exactly that local day's requests.
    async fn the_coarser_rollups_answer_as_the_logs_do(db: TestDb) {
        use tollgate::service::db::logs::LogFilter;
        use tollgate::service::db::rollups::{Dimension, overview_aggregate, overview_sums, sums};
        let app = TestApp::spawn(db).await;
        let alice = app.create_user("alice", "1").await;
        let bob = app.create_user("bob", "1").await;
        let now = tollgate::service::db::now_ms();
        let hour = 3_600_000;
        // Every 37 minutes and 13 seconds over the last 9 days.
        let mut logs = Vec::new();
        let mut at = now - 9 * DAY_MS;
        let mut i = 0_i64;
        while at < now - 1_000 {
            let user = if i % 3 == 0 { (bob.id, "bob") } else { (alice.id, "alice") };
            let channel = match i % 7 {
                0 => None,
                1 | 2 => Some(2),
                _ => Some(1),
            };
            let mut row = log_row(at, user, 1 + i % 2, if i % 2 == 0 { "m1" } else { "m2" }, channel);
            row.request_id = format!("req-{i}");
            row.cost = 10 + i % 13;
            row.latency_ms = 40 + (i * 97) % 3_000;
            row.ttft_ms = if i % 4 == 0 { None } else { Some(20 + (i * 31) % 900) };
            if i % 11 == 5 && channel.is_some() {
                row.outcome = Outcome::UpstreamError;
                row.status_code = 502;
            }
            logs.push(row);
            at += 37 * 60_000 + 13_000;
            i += 1;
        }
        write_logs(&app.db, &logs).await;
        for (from, to) in [
            (now - 7 * DAY_MS - 5 * hour - hour / 2 + 7, now + 1),
            (now - 30 * DAY_MS, now + 1),
            (now - 24 * hour, now + 1),
            (now - 3 * DAY_MS + 13, now - DAY_MS - 17),
            (now - 2 * hour - 3, now - hour + 5),
            (now - 100, now + 1),
        ] {
            let filter = LogFilter { from_ms: Some(from), to_ms: Some(to), ..LogFilter::default() };
            for by in [Dimension::Total, Dimension::Bucket, Dimension::Model, Dimension::User, Dimension::Channel, Dimension::Outcome] {
                let fine = sums(&app.db, &filter, by).await.unwrap();
                let coarse = overview_sums(&app.db, &filter, by).await.unwrap();
                assert_eq!(coarse, fine, "{by:?} over {from}..{to}");
            }
            for outcome in [None, Some(Outcome::Success)] {
                let filter = LogFilter { outcome, ..filter.clone() };
                let got: BTreeMap<i64, RollupSums> = overview_aggregate(&app.db, &filter, Dimension::Channel)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|a| (a.id, a.sums))
                    .collect();
                let mut expected: BTreeMap<i64, RollupSums> = BTreeMap::new();
                for log in &logs {
                    if log.created_at >= from && log.created_at < to && outcome.is_none_or(|o| log.outcome == o) {
                        expected.entry(log.channel_id.unwrap_or(0)).or_default().add_log(log);
                    }
                }
                assert_eq!(got, expected, "{outcome:?} over {from}..{to}");
            }
        }

        app.set_option("timezone", "Asia/Kolkata").await;
        let calendar = tollgate::domain::calendar::SiteCalendar::new("Asia/Kolkata");
        let token = admin_token(&app, "ada-api", "admin").await;
        let api = Api { app: &app, token };
        for range in ["7d", "30d"] {
            let (status, body) = api.get(&format!("/api/overview?range={range}")).await;
            assert_eq!(status, 200, "{body}");
            let from_ms = body["from_ms"].as_i64().unwrap();
            let mut expected: BTreeMap<String, (i64, i64)> = BTreeMap::new();
            for log in logs.iter().filter(|l| l.created_at >= from_ms) {
                let day = tollgate::domain::calendar::SiteCalendar::day_label(calendar.day_number(log.created_at));
                let entry = expected.entry(day).or_default();
                entry.0 += 1;
                entry.1 += log.cost;
            }
            for period in body["periods"].as_array().unwrap() {
                let label = period["label"].as_str().unwrap().to_string();
                let (requests, cost) = expected.get(&label).copied().unwrap_or_default();
                assert_eq!(period["figures"]["requests"], requests, "{range} {label}");
                assert_eq!(period["figures"]["cost"], cost, "{range} {label}");
            }
            let total: i64 = expected.values().map(|e| e.0).sum();
            assert_eq!(body["totals"]["requests"], total, "{range}");
        }
    }
}

db_test! {
    /// One API's balance routes answer for the calling key: the limit is spent plus remaining
    /// (the key's, or its owner's for a key without a limit), the usage what the key spent
    /// over the days asked, in cents; an unknown key is refused in OpenAI's shape.
    async fn one_api_balance_routes_answer_for_the_key(db: TestDb) {
        use tollgate::service::tokens::CreateToken;
        let app = TestApp::spawn(db).await;
        let alice = app.create_user("alice", "10").await;
        let (limited, limited_row) = app
            .create_key(CreateToken {
                username: "alice".into(),
                name: "limited".into(),
                quota_usd: Some("2".into()),
                expires: Some("2099-01-01".into()),
                ..Default::default()
            })
            .await;
        let (open, open_row) = app
            .create_key(CreateToken { username: "alice".into(), name: "open".into(), ..Default::default() })
            .await;
        let now = tollgate::service::db::now_ms();
        let calendar = tollgate::domain::calendar::SiteCalendar::new("UTC");
        let today = tollgate::domain::calendar::SiteCalendar::day_label(calendar.day_number(now));
        let tomorrow = tollgate::domain::calendar::SiteCalendar::day_label(calendar.day_number(now) + 1);
        let long_ago = tollgate::domain::calendar::SiteCalendar::day_label(calendar.day_number(now) - 60);
        let mut rows = Vec::new();
        for (i, (age, token, cost)) in [(1_000, limited_row.id, 250_000), (2_000, limited_row.id, 50_000), (3_000, open_row.id, 5_000), (40 * DAY_MS, limited_row.id, 100_000)].iter().enumerate() {
            let mut row = log_row(now - age, (alice.id, "alice"), *token, "m", Some(1));
            row.cost = *cost;
            row.request_id = format!("req-{i}");
            rows.push(row);
        }
        write_logs(&app.db, &rows).await;

        let get = |key: String, path: &str| {
            let request = app.client.get(app.url(path)).bearer_auth(key);
            async move {
                let response = request.send().await.unwrap();
                (response.status().as_u16(), response.json::<serde_json::Value>().await.unwrap())
            }
        };
        let (status, sub) = get(limited.clone(), "/v1/dashboard/billing/subscription").await;
        assert_eq!(status, 200, "{sub}");
        assert_eq!(sub["object"], "billing_subscription");
        assert_eq!(sub["hard_limit_usd"], 2.0, "the key's own limit: {sub}");
        assert_eq!(sub["soft_limit_usd"], sub["hard_limit_usd"]);
        assert_eq!(sub["system_hard_limit_usd"], sub["hard_limit_usd"]);
        assert_eq!(sub["access_until"], 4_070_908_800_i64);
        let (_, sub) = get(open.clone(), "/v1/dashboard/billing/subscription").await;
        assert_eq!(sub["hard_limit_usd"], 10.0, "the owner's balance: {sub}");
        assert_eq!(sub["access_until"], 0);

        let (status, usage) = get(limited.clone(), &format!("/v1/dashboard/billing/usage?start_date={today}&end_date={tomorrow}")).await;
        assert_eq!(status, 200, "{usage}");
        assert_eq!(usage["object"], "list");
        // 300,000 units at 500,000 a dollar: 60 cents.
        assert_eq!(usage["total_usage"], 60.0, "{usage}");
        let (_, usage) = get(limited.clone(), &format!("/v1/dashboard/billing/usage?start_date={long_ago}&end_date={tomorrow}")).await;
        assert_eq!(usage["total_usage"], 80.0);
        let (_, usage) = get(open.clone(), &format!("/v1/dashboard/billing/usage?start_date={today}&end_date={tomorrow}")).await;
        assert_eq!(usage["total_usage"], 1.0);
        let (status, _) = get(limited.clone(), "/v1/dashboard/billing/usage?start_date=soon").await;
        assert_eq!(status, 400);

        let (status, refused) = get("sk-not-a-real-key".into(), "/v1/dashboard/billing/subscription").await;
        assert_eq!(status, 401);
        assert_eq!(refused["error"]["code"], "invalid_api_key");
        let anonymous = app.client.get(app.url("/v1/dashboard/billing/usage")).send().await.unwrap();
        assert_eq!(anonymous.status().as_u16(), 401);
    }
}

db_test! {
    /// `tollgate rollups rebuild` recomputes the rollups from the logs, touching only buckets
    /// that still have log rows, within `--from`/`--to` when given; the purge deletes logs past
    /// `log_retention_days` and keeps their rollups; after an upgrade the rollups of older
    /// logs are made in the background while the overview says it is rebuilding.
    async fn rebuild_purge_and_backfill_keep_the_rollups_true(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let alice = app.create_user("alice", "1").await;
        let now = tollgate::service::db::now_ms();
        let mut logs = Vec::new();
        for i in 0..40_i64 {
            let age = if i < 20 { 3 * DAY_MS + i * 600_000 } else { DAY_MS / 2 + i * 600_000 };
            let mut row = log_row(now - age, (alice.id, "alice"), 1 + i % 2, "m", Some(1));
            row.request_id = format!("req-{i}");
            row.cost = 10 + i;
            logs.push(row);
        }
        write_logs(&app.db, &logs).await;
        let logs = app.logs().await;
        let exact = rollup_of(logs.iter());
        assert_eq!(stored_rollups(&app.db).await, exact);
        let exact_coarse = coarse_of(&exact);
        assert_eq!(stored_coarse(&app.db).await, exact_coarse);

        // A bucket whose logs were purged keeps its rollup; the others are spoiled.
        let orphan = tollgate::domain::rollup::bucket_start(now - 10 * DAY_MS);
        let spoil = async || {
            for table in ["log_rollups", "usage_rollups", "user_usage_rollups", "total_usage_rollups"] {
                let sql = format!("UPDATE {table} SET requests = requests + 100, cost = 0");
                app.db.execute_with(app.db.pool(), &sql, &[]).await.unwrap();
            }
        };
        spoil().await;
        app.db
            .execute_with(
                app.db.pool(),
                "INSERT INTO log_rollups (bucket_start, user_id, token_id, model, channel_id, group_name, outcome, requests, prompt_tokens, completion_tokens, cost) VALUES (?, ?, 1, 'm', 1, 'default', 'success', 7, 70, 35, 700)",
                &[tollgate::service::db::Value::Int(orphan), tollgate::service::db::Value::Int(alice.id)],
            )
            .await
            .unwrap();
        let orphan_key = RollupKey {
            bucket_start: orphan,
            user_id: alice.id,
            token_id: 1,
            model: "m".into(),
            channel_id: 1,
            group: "default".into(),
            outcome: "success".into(),
        };

        // Only the older days: the recent rows stay spoiled. The older rows go back three
        // hours from three days ago, so from the day of the oldest (another day just after
        // midnight).
        let three_days_ago = tollgate::domain::calendar::SiteCalendar::day_label(
            tollgate::domain::calendar::SiteCalendar::new("UTC").day_number(now - 3 * DAY_MS - 4 * 3_600_000),
        );
        let day_after = tollgate::domain::calendar::SiteCalendar::day_label(
            tollgate::domain::calendar::SiteCalendar::new("UTC").day_number(now - 2 * DAY_MS),
        );
        let out = crate::shutdown::tollgate(&app.db_url, &["rollups", "rebuild", "--from", &three_days_ago, "--to", &day_after, "--json"]).unwrap();
        let report: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(report["rows"], 20, "{out}");
        let stored = stored_rollups(&app.db).await;
        for (key, sums) in &exact {
            if key.bucket_start < now - 2 * DAY_MS {
                assert_eq!(stored.get(key), Some(sums), "rebuilt");
            } else {
                assert_eq!(stored[key].requests, sums.requests + 100, "outside --from/--to: untouched");
            }
        }
        // The hours and days of the rebuilt buckets are summed again from the 15-minute rows.
        let coarse = stored_coarse(&app.db).await;
        for ((table, key), sums) in &exact_coarse {
            if key.bucket_start + key.grain_ms <= now - 2 * DAY_MS {
                assert_eq!(coarse.get(&(*table, key.clone())), Some(sums), "rebuilt: {table:?} {key:?}");
            } else if key.bucket_start >= now - 2 * DAY_MS + DAY_MS {
                assert_eq!(coarse[&(*table, key.clone())].requests, sums.requests + 100, "untouched");
            }
        }
        let out = crate::shutdown::tollgate(&app.db_url, &["rollups", "rebuild"]).unwrap();
        assert!(out.starts_with("Rebuilt "), "{out}");
        let mut stored = stored_rollups(&app.db).await;
        let kept = stored.remove(&orphan_key).expect("the orphan bucket is untouched");
        assert_eq!(kept.requests, 7);
        assert_eq!(stored, exact, "every bucket with logs is exact again");
        // The orphan bucket's rows were never written to the coarser rollups, nor rebuilt.
        assert_eq!(stored_coarse(&app.db).await, exact_coarse, "and so is every hour and day");
        let refused = crate::shutdown::tollgate(&app.db_url, &["rollups", "rebuild", "--from", "someday"]).unwrap_err();
        assert!(refused.contains("someday"), "{refused}");

        // Purge: logs older than two days go, their rollups stay, totals still count them.
        let token = admin_token(&app, "ada-api", "admin").await;
        let api = Api { app: &app, token };
        let (_, before) = api.get("/api/logs?limit=1").await;
        let (_, overview_before) = api.get("/api/overview?range=30d").await;
        app.set_option("log_retention_days", "2").await;
        let deleted = tollgate::service::rollups::purge(app.ctx(), 2, now).await.unwrap();
        assert_eq!(deleted, 20);
        let left = app.logs().await;
        assert_eq!(left.len(), 20);
        assert!(left.iter().all(|l| l.created_at >= now - 2 * DAY_MS - BUCKET_MS));
        let (_, after) = api.get("/api/logs?limit=1").await;
        assert_eq!(after["totals"], before["totals"], "the rollups of purged logs are kept");
        let (_, overview_after) = api.get("/api/overview?range=30d").await;
        assert_eq!(overview_after["totals"], overview_before["totals"], "the overview still counts them");
        assert_eq!(overview_after["top_users"], overview_before["top_users"]);
        assert_eq!(overview_after["channels"], overview_before["channels"]);
        assert_eq!(stored_coarse(&app.db).await, exact_coarse, "the coarser rollups are kept too");
        assert_eq!(tollgate::service::rollups::purge(app.ctx(), 0, now).await.unwrap(), 0, "0 keeps every log");

        // An upgrade: the rollups start empty and the logs before are rolled up in the
        // background, the overview saying so meanwhile.
        for table in ["log_rollups", "usage_rollups", "user_usage_rollups", "total_usage_rollups"] {
            app.db.execute_with(app.db.pool(), &format!("DELETE FROM {table}"), &[]).await.unwrap();
        }
        app.db
            .execute_with(app.db.pool(), "UPDATE rollup_backfill SET through_id = (SELECT MAX(id) FROM request_logs), done_id = 0", &[])
            .await
            .unwrap();
        let (_, overview) = api.get("/api/overview?range=24h").await;
        assert_eq!(overview["rebuilding"], true);
        let app = app.killed_and_restarted(|_| {}).await;
        let token = admin_token(&app, "ada-api-2", "admin").await;
        let api = Api { app: &app, token };
        let left = rollup_of(app.logs().await.iter());
        let mut done = false;
        for _ in 0..100 {
            let (_, overview) = api.get("/api/overview?range=24h").await;
            if overview["rebuilding"] == false {
                done = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(done, "the backfill finished");
        assert_eq!(stored_rollups(&app.db).await, left, "backfilled once");
        assert_eq!(stored_coarse(&app.db).await, coarse_of(&left), "into the coarser rollups too");
    }
}
