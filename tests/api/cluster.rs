//! Several nodes of one deployment on one database and one Redis behave as one: no scope is
//! overspent however requests are spread, a change made on one node is live on the others at
//! once, and losing Redis (or a node) fails safe and recovers.
//!
//! Each test runs the test's own server plus nodes run as separate processes of the real
//! binary. SQLite is a single node's database, so these run on PostgreSQL and MariaDB.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::cluster::{NodeProcess, OwnRedis, shared_database, shared_redis};
use crate::helpers::{Browser, CLI, FakeUpstream, Reply, TestApp, TestDb, chat_body, db_test};
use tollgate::config::RedisConfig;
use tollgate::domain::kinds::Outcome;
use tollgate::service;
use tollgate::service::tokens::CreateToken;

const MODEL: &str = "gpt-4o-mini";
/// What one request costs: $0.0002, 100 units at the default 500,000 units per dollar.
const PER_REQUEST_USD: &str = "0.0002";
const PER_REQUEST_UNITS: i64 = 100;

/// An answer that takes a moment, so many requests are in flight on every node at once.
fn slow_answer(delay_ms: u64) -> Reply {
    let body = json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1_700_000_000, "model": MODEL,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}
    })
    .to_string()
    .into_bytes();
    Reply::Chunked {
        content_type: "application/json",
        split: body.len() / 2 + 1,
        body,
        delay: Duration::from_millis(delay_ms),
        break_at: None,
    }
}

/// The test's own node, sharing `redis`, with a channel and a per-request price; waits until
/// it holds in Redis.
async fn first_node(db: TestDb, redis: RedisConfig, upstream: &FakeUpstream) -> TestApp {
    let app = TestApp::spawn_node(db, redis, |_| {}).await;
    app.add_channel("main", upstream, MODEL).await;
    app.price_per_request(MODEL, PER_REQUEST_USD).await;
    wait_until_ready(&app).await;
    app
}

async fn wait_until_ready(app: &TestApp) {
    let cluster = app.state.cluster.clone().expect("the node shares Redis");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cluster.is_ready() {
        assert!(
            Instant::now() < deadline,
            "the node never got ready in Redis"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Sends one chat request to `url`; its status and error code.
async fn chat(client: &reqwest::Client, url: &str, key: &str) -> (u16, String) {
    let response = client
        .post(url)
        .bearer_auth(key)
        .json(&chat_body(MODEL))
        .send()
        .await
        .expect("the node answers");
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    let code = body["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    (status, code)
}

/// Waits until a node process serves paid requests (its first heartbeat wrote its part in
/// Redis), with a key that has the money for it.
async fn wait_until_serving(client: &reqwest::Client, node: &NodeProcess, key: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, code) = chat(client, &node.url("/v1/chat/completions"), key).await;
        if status == 200 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the node never served: {status} {code}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The test's node and one node process on a Redis of the test's own (which the test may stop
/// and resume), both serving alice's key, which has `dollars`; the upstream answers after
/// `delay_ms`. None, said why, on SQLite or without `redis-server`.
struct TwoNodes {
    redis: OwnRedis,
    upstream: FakeUpstream,
    app: TestApp,
    node: NodeProcess,
    client: reqwest::Client,
    key: String,
    /// The chat address of the test's node, then of the process.
    urls: [String; 2],
}

impl TwoNodes {
    async fn start(
        db: TestDb,
        delay_ms: u64,
        dollars: &str,
        options: &[(&str, &str)],
    ) -> Option<TwoNodes> {
        if !shared_database(&db) {
            return None;
        }
        let redis = OwnRedis::start()?;
        let upstream = FakeUpstream::start(slow_answer(delay_ms)).await;
        let app = first_node(db, redis.config(), &upstream).await;
        for (name, value) in options {
            app.set_option(name, value).await;
        }
        app.create_user("alice", dollars).await;
        let key = app.key_for("alice").await;
        let node = NodeProcess::start(&app.db_url, &redis.config(), &[]);
        let client = reqwest::Client::new();
        wait_until_serving(&client, &node, &key).await;
        let urls = [
            app.url("/v1/chat/completions"),
            node.url("/v1/chat/completions"),
        ];
        Some(TwoNodes {
            redis,
            upstream,
            app,
            node,
            client,
            key,
            urls,
        })
    }
}

/// The test's node and two node processes on one shared Redis, each serving (a warm-up key
/// has been served once by each); the upstream answers after `delay_ms`. None, said why, on
/// SQLite or without Redis.
struct ThreeNodes {
    _upstream: FakeUpstream,
    app: TestApp,
    _nodes: [NodeProcess; 2],
    client: reqwest::Client,
    /// The chat address of the test's node, then of each process.
    urls: Vec<String>,
}

impl ThreeNodes {
    async fn start(db: TestDb, delay_ms: u64) -> Option<ThreeNodes> {
        if !shared_database(&db) {
            return None;
        }
        let redis = shared_redis()?;
        let upstream = FakeUpstream::start(slow_answer(delay_ms)).await;
        let app = first_node(db, redis.clone(), &upstream).await;
        app.create_user("warmup", "1").await;
        let warmup = app.key_for("warmup").await;
        let nodes = [
            NodeProcess::start(&app.db_url, &redis, &[]),
            NodeProcess::start(&app.db_url, &redis, &[]),
        ];
        let client = reqwest::Client::new();
        for node in &nodes {
            wait_until_serving(&client, node, &warmup).await;
        }
        let mut urls = vec![app.url("/v1/chat/completions")];
        urls.extend(nodes.iter().map(|node| node.url("/v1/chat/completions")));
        Some(ThreeNodes {
            _upstream: upstream,
            app,
            _nodes: nodes,
            client,
            urls,
        })
    }
}

/// `count` requests at once, the i-th to node `i % 3` with key `i % keys.len()`: each
/// answer with the node that gave it.
async fn burst(
    client: &reqwest::Client,
    urls: &[String],
    keys: &[&str],
    count: usize,
) -> Vec<(usize, (u16, String))> {
    let sent = (0..count).map(|i| {
        let (node, key) = (i % urls.len(), keys[i % keys.len()]);
        async move { (node, chat(client, &urls[node], key).await) }
    });
    futures::future::join_all(sent).await
}

/// Sends one request with `key` to each of `urls`, once each node knows the key (made after
/// they started): each is served.
async fn serve_once_each(client: &reqwest::Client, urls: &[String], key: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    for url in urls {
        loop {
            let (status, code) = chat(client, url, key).await;
            if status == 200 {
                break;
            }
            assert_eq!(status, 401, "{code}");
            assert!(Instant::now() < deadline, "{url} never knew the key");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The log once every node has written what it served: no new row for a while.
async fn settled_logs(app: &TestApp) -> Vec<tollgate::service::db::logs::RequestLog> {
    let mut logs = app.logs().await;
    loop {
        app.flush().await;
        tokio::time::sleep(Duration::from_millis(400)).await;
        let now = app.logs().await;
        if now.len() == logs.len() {
            return now;
        }
        logs = now;
    }
}

/// A series' value as the node's `/metrics` says it.
async fn metric(client: &reqwest::Client, app: &TestApp, series: &str) -> String {
    let text = client
        .get(app.url("/metrics"))
        .bearer_auth("metrics-secret-0123456789")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {series} in {text}"))
        .to_string()
}

async fn ledger_is_clean(app: &TestApp) {
    let check = service::ledger::check(app.ctx(), &CLI).await.unwrap();
    assert!(check.discrepancies.is_empty(), "{:?}", check.discrepancies);
}

db_test! {
    /// 300 requests at once, spread over three nodes, against one $0.01 balance (and a key
    /// with a $0.005 limit of its own on a rich account): together they never spend past
    /// either, to the unit, and the ledger agrees.
    async fn three_nodes_never_overspend_one_balance(db: TestDb) {
        let Some(ThreeNodes { _upstream, app, _nodes, client, urls }) =
            ThreeNodes::start(db, 150).await
        else {
            return;
        };
        app.create_user("alice", "0.01").await;
        let alice = app.key_for("alice").await;
        app.create_user("bob", "100").await;
        let (bob, _) = app
            .create_key(CreateToken {
                username: "bob".into(),
                name: "limited".into(),
                quota_usd: Some("0.005".into()),
                ..Default::default()
            })
            .await;
        // Each node has seen both keys once before the burst.
        serve_once_each(&client, &urls, &alice).await;
        serve_once_each(&client, &urls, &bob).await;
        let before = settled_logs(&app).await.len();
        let alice_start = app.user("alice").await.quota;
        let bob_key = app.token_ids_of("bob").await[0];
        let bob_start = app.token(bob_key).await.remaining_quota;
        assert_eq!((alice_start, bob_start), (5_000 - 300, 2_500 - 300));

        let answers = burst(&client, &urls, &[&alice, &bob], 300).await;
        for (_, (status, code)) in &answers {
            assert!(
                *status == 200 || (*status == 429 && code == "insufficient_quota"),
                "{status} {code}"
            );
        }
        let served_by_node = |node: usize| {
            answers
                .iter()
                .filter(|(n, (status, _))| *n == node && *status == 200)
                .count()
        };
        for node in 0..3 {
            assert!(served_by_node(node) > 0, "node {node} served nothing");
        }

        let logs = settled_logs(&app).await;
        assert_eq!(logs.len(), before + 300, "every request is logged");
        let logs = &logs[before..];
        let spent_by = |username: &str| -> i64 {
            logs.iter().filter(|l| l.username == username).map(|l| l.cost).sum()
        };
        let alice_row = app.user("alice").await;
        assert!(
            spent_by("alice") <= alice_start,
            "alice spent {} of {alice_start} units",
            spent_by("alice")
        );
        assert_eq!(alice_row.quota, alice_start - spent_by("alice"));
        // Refusals come when the balance is (nearly) gone, not before.
        assert!(spent_by("alice") >= alice_start - 3 * PER_REQUEST_UNITS, "{}", spent_by("alice"));
        let bob_row = app.token(bob_key).await;
        assert!(
            spent_by("bob") <= bob_start,
            "bob's key spent {} of {bob_start} units",
            spent_by("bob")
        );
        assert_eq!(bob_row.remaining_quota, bob_start - spent_by("bob"));
        assert!(spent_by("bob") >= bob_start - 3 * PER_REQUEST_UNITS, "{}", spent_by("bob"));
        for log in logs {
            match log.outcome {
                Outcome::Success => assert_eq!(log.cost, PER_REQUEST_UNITS),
                _ => assert_eq!(log.cost, 0),
            }
        }
        ledger_is_clean(&app).await;
    }
}

db_test! {
    /// A balance large enough that Redis lends each node allowance to hold against in memory:
    /// 600 requests at once over three nodes against room for 397 never spend past it, to the
    /// unit; once the nodes are idle their leases go back, and the last of the balance can be
    /// spent on any node, down to nothing.
    async fn leases_keep_three_nodes_within_a_balance_and_come_back(db: TestDb) {
        let Some(ThreeNodes { _upstream, app, _nodes, client, urls }) =
            ThreeNodes::start(db, 20).await
        else {
            return;
        };
        // 400 requests' worth: a twelfth of it (a quarter of one node's share of three) is
        // well over the sixteen holds a lease needs at the least.
        app.create_user("carol", "0.08").await;
        let carol = app.key_for("carol").await;
        serve_once_each(&client, &urls, &carol).await;
        let before = settled_logs(&app).await.len();
        let start = app.user("carol").await.quota;
        assert_eq!(start, 40_000 - 300);

        for (_, (status, code)) in burst(&client, &urls, &[&carol], 600).await {
            assert!(status == 200 || (status == 429 && code == "insufficient_quota"), "{status} {code}");
        }
        let spent = |logs: &[tollgate::service::db::logs::RequestLog]| -> i64 {
            logs[before..].iter().filter(|l| l.username == "carol").map(|l| l.cost).sum()
        };
        let burst = spent(&settled_logs(&app).await);
        assert!(burst <= start, "carol spent {burst} of {start} units");
        assert_eq!(app.user("carol").await.quota, start - burst);

        // Idle, every node gives its lease back: the rest is spent request by request,
        // whichever node serves it, to the last unit.
        tokio::time::sleep(Duration::from_secs(3)).await;
        for url in &urls {
            while chat(&client, url, &carol).await.0 == 200 {}
        }
        let logs = settled_logs(&app).await;
        assert_eq!(spent(&logs), start);
        assert_eq!(app.user("carol").await.quota, 0);
        for log in &logs[before..] {
            match log.outcome {
                Outcome::Success => assert_eq!(log.cost, PER_REQUEST_UNITS),
                _ => assert_eq!(log.cost, 0),
            }
        }
        ledger_is_clean(&app).await;
    }
}

db_test! {
    /// A key created on one node works on another at once: the write is announced over Redis
    /// rather than found by the other node's poll (set here to once a minute).
    async fn a_key_made_on_one_node_works_on_another_at_once(db: TestDb) {
        if !shared_database(&db) {
            return;
        }
        let Some(redis) = shared_redis() else { return };
        let upstream = FakeUpstream::start(slow_answer(0)).await;
        let app = first_node(db, redis.clone(), &upstream).await;
        app.create_user("alice", "1").await;
        let warmup = app.key_for("alice").await;
        let node = NodeProcess::start(&app.db_url, &redis, &[("TOLLGATE_SYNC_INTERVAL_MS", "60000")]);
        let client = reqwest::Client::new();
        wait_until_serving(&client, &node, &warmup).await;

        let key = app.key_for("alice").await;
        let made = Instant::now();
        works_soon(&client, &node, &key, made).await;
        eprintln!("a new key worked on another node after {:?}", made.elapsed());

        // A command of the command line announces its writes the same way.
        let created = crate::shutdown::tollgate(
            &app.db_url,
            &[
                "--redis-url", redis.url.as_deref().unwrap(),
                "--redis-key-prefix", &redis.key_prefix,
                "token", "create", "--user", "alice", "--name", "from-cli", "--json",
            ],
        )
        .expect("the command runs");
        let made = Instant::now();
        let created: serde_json::Value = serde_json::from_str(&created).unwrap();
        let key = created["key"].as_str().unwrap().to_string();
        works_soon(&client, &node, &key, made).await;
        eprintln!("a key made by the command line worked on a node after {:?}", made.elapsed());
    }
}

/// Polls a node with a new key until it is served: within 5 s, though the node polls the
/// feed only once a minute.
async fn works_soon(client: &reqwest::Client, node: &NodeProcess, key: &str, made: Instant) {
    let deadline = made + Duration::from_secs(5);
    loop {
        let (status, code) = chat(client, &node.url("/v1/chat/completions"), key).await;
        if status == 200 {
            return;
        }
        assert_eq!((status, code.as_str()), (401, "invalid_api_key"));
        assert!(
            Instant::now() < deadline,
            "the key never worked on the other node"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

db_test! {
    /// Redis stopped under load: once a node finds it gone, paid requests are refused with 503
    /// in OpenAI's envelope, never served unbilled; when Redis comes back (empty, as a Redis without persistence
    /// does) the nodes write their part again and serve, and every unit served is billed once.
    async fn losing_redis_fails_closed_and_recovers(db: TestDb) {
        let options = [("metrics_token", "metrics-secret-0123456789")];
        let Some(TwoNodes { mut redis, upstream: _upstream, app, node, client, key, urls }) =
            TwoNodes::start(db, 20, "1", &options).await
        else {
            return;
        };

        let load = |rounds: usize| {
            let (client, urls, key) = (client.clone(), urls.clone(), key.clone());
            async move {
                let mut statuses = Vec::new();
                for i in 0..rounds {
                    statuses.push(chat(&client, &urls[i % 2], &key).await);
                }
                statuses
            }
        };
        let before = load(20).await;
        assert!(before.iter().all(|(status, _)| *status == 200), "{before:?}");

        redis.stop();
        // A node that has not yet found Redis gone may still serve from the allowance Redis
        // lent it (billed, and counted there): at most until its next call to Redis fails
        // (the billing writer's next commit, or its heartbeat). From then on it refuses.
        for url in &urls {
            let deadline = Instant::now() + tollgate::cluster::HEARTBEAT * 2;
            loop {
                let (status, code) = chat(&client, url, &key).await;
                if status == 503 {
                    assert_eq!(code, "tollgate_unavailable");
                    break;
                }
                assert_eq!(status, 200, "{code}");
                assert!(Instant::now() < deadline, "{url} still serves without Redis");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        let during = load(20).await;
        for (status, code) in &during {
            assert_eq!((*status, code.as_str()), (503, "tollgate_unavailable"));
        }
        for ready in [app.url("/readyz"), node.url("/readyz")] {
            let answer = client.get(&ready).send().await.unwrap();
            assert_eq!(answer.status(), 503, "{ready}");
            let body: serde_json::Value = answer.json().await.unwrap();
            assert!(body["failing"]["redis"].is_string(), "{body}");
        }
        assert_eq!(metric(&client, &app, "tollgate_redis_up").await, "0");
        let mode = r#"tollgate_redis_outage_mode{mode="closed"}"#;
        assert_eq!(metric(&client, &app, mode).await, "1");

        redis.resume();
        let deadline = Instant::now() + Duration::from_secs(20);
        for url in &urls {
            loop {
                let (status, _) = chat(&client, url, &key).await;
                if status == 200 {
                    break;
                }
                assert!(Instant::now() < deadline, "{url} never served again");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        let after = load(20).await;
        assert!(after.iter().all(|(status, _)| *status == 200), "{after:?}");
        for ready in [app.url("/readyz"), node.url("/readyz")] {
            assert_eq!(client.get(&ready).send().await.unwrap().status(), 200, "{ready}");
        }
        assert_eq!(metric(&client, &app, "tollgate_redis_up").await, "1");

        // Every answer served is billed once; every refusal is free.
        let logs = settled_logs(&app).await;
        let spent: i64 = logs.iter().map(|l| l.cost).sum();
        let served = logs.iter().filter(|l| l.outcome == Outcome::Success).count() as i64;
        assert!(served >= 41, "{served}");
        assert_eq!(spent, served * PER_REQUEST_UNITS);
        assert!(logs.iter().filter(|l| l.outcome != Outcome::Success).all(|l| l.cost == 0));
        assert!(logs.iter().filter(|l| l.status_code == 503).count() >= 20);
        assert_eq!(app.user("alice").await.quota, 500_000 - spent);
        ledger_is_clean(&app).await;
    }
}

db_test! {
    /// A node killed (SIGKILL) with requests in flight: its holds stop counting once its
    /// lease runs out, so the other nodes can spend the balance again, and what it had not
    /// yet written is all that is lost.
    async fn a_killed_nodes_holds_expire(db: TestDb) {
        if !shared_database(&db) {
            return;
        }
        let Some(redis) = shared_redis() else { return };
        let upstream = FakeUpstream::start(slow_answer(0)).await;
        let app = first_node(db, redis.clone(), &upstream).await;
        // Room for exactly three requests.
        app.create_user("alice", "0.0006").await;
        let key = app.key_for("alice").await;
        let mut node = NodeProcess::start(&app.db_url, &redis, &[]);
        let client = reqwest::Client::new();
        app.create_user("warmup", "1").await;
        let warmup = app.key_for("warmup").await;
        wait_until_serving(&client, &node, &warmup).await;

        // Three slow requests on the node hold the whole balance.
        upstream.set_default(slow_answer(60_000));
        let in_flight: Vec<_> = (0..3)
            .map(|_| {
                let (client, url, key) = (client.clone(), node.url("/v1/chat/completions"), key.clone());
                tokio::spawn(async move { chat(&client, &url, &key).await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(500)).await;
        upstream.set_default(slow_answer(0));
        let (status, code) = chat(&client, &app.url("/v1/chat/completions"), &key).await;
        assert_eq!((status, code.as_str()), (429, "insufficient_quota"), "the holds on the other node count");

        node.kill();
        for request in in_flight {
            let _ = request.await;
        }
        let killed = Instant::now();
        let deadline = killed + tollgate::cluster::LEASE + Duration::from_secs(15);
        loop {
            let (status, _) = chat(&client, &app.url("/v1/chat/completions"), &key).await;
            if status == 200 {
                break;
            }
            assert!(Instant::now() < deadline, "the killed node's holds never expired");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        eprintln!("the killed node's holds stopped counting after {:?}", killed.elapsed());
        app.flush().await;
        let alice = app.user("alice").await;
        assert!(alice.quota >= 0);
        ledger_is_clean(&app).await;
    }
}

db_test! {
    /// With `redis_outage_mode = local_share`, a node spends at most 1/N of what each budget
    /// had left while Redis is away (N = the nodes seen), so together they stay within it; when
    /// Redis returns they hold there again and the ledger adds up.
    async fn local_share_keeps_each_node_within_its_share(db: TestDb) {
        // $0.01: 50 requests.
        let options = [("redis_outage_mode", "local_share")];
        let Some(TwoNodes { mut redis, upstream: _upstream, app, node, client, key, urls }) =
            TwoNodes::start(db, 0, "0.01", &options).await
        else {
            return;
        };
        // Ten more, in turn, the last on the node process: 40 requests' worth left.
        for i in 0..9 {
            assert_eq!(chat(&client, &urls[i % 2], &key).await.0, 200);
        }
        assert_eq!(chat(&client, &urls[1], &key).await.0, 200);
        let left = 5_000 - 11 * PER_REQUEST_UNITS;
        // Bob's key may make 10 requests a minute; one goes through each node first.
        app.create_user("bob", "1").await;
        let (limited, _) = app
            .create_key(CreateToken {
                username: "bob".into(),
                name: "ten a minute".into(),
                rate_limits: tollgate::service::rate_limits::RateLimitInput {
                    rpm: Some("10".into()),
                    ..Default::default()
                },
                ..Default::default()
            })
            .await;
        wait_until_serving(&client, &node, &limited).await;
        assert_eq!(chat(&client, &urls[0], &limited).await.0, 200);
        // The test's node counts the other at its next heartbeat.
        let cluster = app.state.cluster.clone().expect("the node shares Redis");
        let deadline = Instant::now() + Duration::from_secs(15);
        while cluster.nodes_seen() < 2 {
            assert!(Instant::now() < deadline, "the test's node never saw the other");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        redis.stop();
        let mut served = [0_i64; 2];
        for round in 0..60 {
            for (n, url) in urls.iter().enumerate() {
                let (status, code) = chat(&client, url, &key).await;
                match status {
                    200 => served[n] += 1,
                    429 => assert_eq!(code, "insufficient_quota", "round {round}"),
                    other => panic!("round {round}: {other} {code}"),
                }
            }
        }
        // Each node: half of what it last saw left (the test's node saw one request more).
        assert!(served[0] * PER_REQUEST_UNITS <= (left + PER_REQUEST_UNITS) / 2, "{served:?}");
        assert!(served[1] * PER_REQUEST_UNITS <= left / 2, "{served:?}");
        assert!((served[0] + served[1]) * PER_REQUEST_UNITS <= left, "{served:?}");
        assert!(served[0] > 0 && served[1] > 0, "{served:?}");
        // Each node admits its half of the 10 a minute, less what Redis last said the key had
        // used: together never more than the 8 left.
        let mut admitted = [0; 2];
        for round in 0..10 {
            for (n, url) in urls.iter().enumerate() {
                let (status, code) = chat(&client, url, &limited).await;
                match status {
                    200 => admitted[n] += 1,
                    429 => assert_eq!(code, "rate_limit_exceeded", "round {round}"),
                    other => panic!("round {round}: {other} {code}"),
                }
            }
        }
        assert!(admitted[0] + admitted[1] <= 8, "{admitted:?}");
        assert!(admitted[0] > 0 && admitted[1] > 0, "{admitted:?}");

        redis.resume();
        let deadline = Instant::now() + Duration::from_secs(20);
        for cluster in [app.state.cluster.clone().unwrap()] {
            while !cluster.is_ready() {
                assert!(Instant::now() < deadline, "never ready again");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        let logs = settled_logs(&app).await;
        let alice = app.user("alice").await;
        let spent: i64 = logs
            .iter()
            .filter(|log| log.user_id == alice.id)
            .map(|log| log.cost)
            .sum();
        assert_eq!(alice.quota, 5_000 - spent);
        assert!(alice.quota >= 0);
        ledger_is_clean(&app).await;
    }
}

db_test! {
    /// A key limited to 60 requests a minute and one limited to 300 tokens a minute, each
    /// used through three nodes at once: together the nodes admit no more than the limit,
    /// and the refusals are OpenAI's 429 `rate_limit_exceeded` with `retry-after`.
    async fn rate_limits_hold_across_three_nodes(db: TestDb) {
        if !shared_database(&db) {
            return;
        }
        let Some(redis) = shared_redis() else { return };
        let upstream = FakeUpstream::start(slow_answer(20)).await;
        let app = first_node(db, redis.clone(), &upstream).await;
        app.create_user("alice", "100").await;
        let warmup = app.key_for("alice").await;
        let limited = |name: &str, rpm: Option<&str>, tpm: Option<&str>| CreateToken {
            username: "alice".into(),
            name: name.into(),
            rate_limits: tollgate::service::rate_limits::RateLimitInput {
                rpm: rpm.map(str::to_string),
                tpm: tpm.map(str::to_string),
                max_concurrent: None,
            },
            ..Default::default()
        };
        let (per_minute, _) = app.create_key(limited("rpm", Some("60"), None)).await;
        let (tokens, _) = app.create_key(limited("tpm", None, Some("300"))).await;
        let nodes = [
            NodeProcess::start(&app.db_url, &redis, &[]),
            NodeProcess::start(&app.db_url, &redis, &[]),
        ];
        let client = reqwest::Client::new();
        for node in &nodes {
            wait_until_serving(&client, node, &warmup).await;
        }
        let mut urls = vec![app.url("/v1/chat/completions")];
        urls.extend(nodes.iter().map(|node| node.url("/v1/chat/completions")));

        let burst = |key: String, count: usize| {
            let (client, urls) = (client.clone(), urls.clone());
            async move {
                let sent = (0..count).map(|i| {
                    let (client, url, key) = (client.clone(), urls[i % 3].clone(), key.clone());
                    async move {
                        let response = client
                            .post(&url)
                            .bearer_auth(&key)
                            .json(&json!({"model": MODEL, "max_tokens": 10,
                                          "messages": [{"role": "user", "content": "Hi"}]}))
                            .send()
                            .await
                            .expect("the node answers");
                        let status = response.status().as_u16();
                        let retry_after = response.headers().contains_key("retry-after");
                        let body: serde_json::Value = response.json().await.unwrap_or_default();
                        (status, body["error"]["code"].as_str().unwrap_or_default().to_string(), retry_after)
                    }
                });
                futures::future::join_all(sent).await
            }
        };
        let answers = burst(per_minute, 90).await;
        let served = answers.iter().filter(|(status, _, _)| *status == 200).count();
        assert_eq!(served, 60, "60 requests a minute across three nodes");
        for (status, code, retry_after) in answers.iter().filter(|(status, _, _)| *status != 200) {
            assert_eq!((*status, code.as_str(), *retry_after), (429, "rate_limit_exceeded", true));
        }

        let answers = burst(tokens, 90).await;
        let served = answers.iter().filter(|(status, _, _)| *status == 200).count();
        for (status, code, _) in answers.iter().filter(|(status, _, _)| *status != 200) {
            assert_eq!((*status, code.as_str()), (429, "rate_limit_exceeded"));
        }
        let logs = settled_logs(&app).await;
        let used: i64 = logs
            .iter()
            .filter(|l| l.token_name == "tpm" && l.outcome == Outcome::Success)
            .map(|l| l.prompt_tokens + l.completion_tokens)
            .sum();
        assert_eq!(
            logs.iter().filter(|l| l.token_name == "tpm" && l.outcome == Outcome::Success).count(),
            served
        );
        assert!(served > 0);
        assert!(used <= 300, "{used} tokens in a minute against a limit of 300");
        eprintln!("the 300-tpm key was admitted {served} times, {used} tokens");
    }
}

db_test! {
    /// The portal's limits count across nodes: wrong passwords for one account sent to two
    /// nodes in turn are refused (429) after the same ten as on one. With Redis gone each
    /// node counts in its own memory, so the right password still signs in.
    async fn portal_limits_count_across_nodes_and_never_lock_out_without_redis(db: TestDb) {
        if !shared_database(&db) {
            return;
        }
        let Some(mut redis) = OwnRedis::start() else { return };
        let upstream = FakeUpstream::start(slow_answer(0)).await;
        let app = first_node(db, redis.config(), &upstream).await;
        let sibling = app.spawn_sibling().await;
        const PASSWORD: &str = "correct horse battery";
        Browser::new(&app).register("bob", PASSWORD).await;
        let (on_a, on_b) = (Browser::new(&app), Browser::new(&sibling));
        for attempt in 0..10 {
            let browser = if attempt % 2 == 0 { &on_a } else { &on_b };
            let answer = browser.sign_in("bob", "guess guess").await;
            assert_eq!(answer.status, 422, "attempt {attempt}");
        }
        for browser in [&on_a, &on_b] {
            let answer = browser.sign_in("bob", "guess guess").await;
            assert_eq!(answer.status, 429, "the eleventh on either node");
        }

        redis.stop();
        let fresh = Browser::new(&sibling);
        assert_eq!(fresh.sign_in("bob", PASSWORD).await.status, 303);
        assert_eq!(fresh.get("/dashboard").await.status, 200);
    }
}
