//! Rate limits on keys, accounts and groups: requests per minute, tokens per minute (held on
//! the estimate, corrected to what was used) and requests in flight. Refusals are 429s in the
//! caller's envelope with `Retry-After`; answers carry OpenAI's `x-ratelimit-*` headers; the
//! limits are set on the keys page, the console, `/api` and the command line, and reach the
//! relay at once.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{
    Api, Browser, CLI, FakeUpstream, Reply, TestApp, TestDb, admin_token, chat_body, db_test,
    expect_error, read_text,
};
use crate::shutdown::tollgate;
use tollgate::domain::kinds::Outcome;
use tollgate::service::groups::GroupInput;
use tollgate::service::rate_limits::RateLimitInput;
use tollgate::service::tokens::CreateToken;
use tollgate::service::users::UpdateUser;

const MODEL: &str = "gpt-4o-mini";
const PASSWORD: &str = "correct horse battery";

/// A server with alice ($10), one priced model and an upstream answering with `reply` (10
/// prompt and 5 completion tokens for a chat).
async fn setup_with(db: TestDb, reply: Reply) -> (TestApp, FakeUpstream) {
    let app = TestApp::spawn(db).await;
    let upstream = FakeUpstream::start(reply).await;
    app.add_channel("main", &upstream, MODEL).await;
    app.price(MODEL, "0.15", "0.60").await;
    app.create_user("alice", "10").await;
    app.reload().await;
    (app, upstream)
}

async fn setup(db: TestDb) -> (TestApp, FakeUpstream) {
    setup_with(db, Reply::chat("Hello!", 10, 5)).await
}

fn limits(rpm: Option<&str>, tpm: Option<&str>, max_concurrent: Option<&str>) -> RateLimitInput {
    RateLimitInput {
        rpm: rpm.map(str::to_string),
        tpm: tpm.map(str::to_string),
        max_concurrent: max_concurrent.map(str::to_string),
    }
}

/// A key of alice's with these limits of its own; its plain key and id.
async fn key_with(app: &TestApp, name: &str, rate_limits: RateLimitInput) -> (String, i64) {
    let (key, row) = app
        .create_key(CreateToken {
            username: "alice".into(),
            name: name.into(),
            rate_limits,
            ..Default::default()
        })
        .await;
    (key, row.id)
}

fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_string())
}

fn number(response: &reqwest::Response, name: &str) -> i64 {
    header(response, name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .parse()
        .unwrap()
}

async fn status_of(app: &TestApp, key: &str) -> u16 {
    app.chat(key, chat_body(MODEL)).await.status().as_u16()
}

/// The message of a 429 in OpenAI's envelope, with its `Retry-After` checked.
async fn rate_limited(response: reqwest::Response) -> String {
    let retry: u64 = header(&response, "retry-after")
        .expect("a 429 says when to retry")
        .parse()
        .unwrap();
    assert!((1..=120).contains(&retry), "retry-after {retry}");
    expect_error(response, 429, "rate_limit_exceeded").await
}

db_test! {
    /// A key allowing 3 requests a minute serves three, each answer saying what is left, and
    /// refuses the fourth before it reaches the upstream: a 429 naming the limit, with
    /// `Retry-After`, logged as refused. A key without limits carries no headers.
    async fn the_fourth_request_of_a_three_rpm_key_is_refused(db: TestDb) {
        let (app, upstream) = setup(db).await;
        let (key, _) = key_with(&app, "three", limits(Some("3"), None, None)).await;
        for left in [2, 1, 0] {
            let response = app.chat(&key, chat_body(MODEL)).await;
            assert_eq!(response.status(), 200);
            assert_eq!(number(&response, "x-ratelimit-limit-requests"), 3);
            assert_eq!(number(&response, "x-ratelimit-remaining-requests"), left);
            let reset = header(&response, "x-ratelimit-reset-requests").unwrap();
            // What was counted now slides out of the window within two minutes.
            assert!(reset.starts_with("1m") || reset == "2m0s", "{reset}");
            assert!(header(&response, "x-ratelimit-limit-tokens").is_none(), "no token limit");
        }
        let refused = app.chat(&key, chat_body(MODEL)).await;
        assert_eq!(number(&refused, "x-ratelimit-remaining-requests"), 0);
        let message = rate_limited(refused).await;
        assert!(message.contains("this API key: 3 requests per minute (rpm)"), "{message}");
        assert!(message.contains("Please try again in"), "{message}");
        assert_eq!(upstream.request_count(), 3, "the refused request never left");
        let logs = app.wait_for_logs(4).await;
        let refused = logs.last().unwrap();
        assert_eq!((refused.status_code, refused.outcome), (429, Outcome::Refused));
        assert!(refused.error_message.contains("requests per minute"));

        // Another key of alice's is not held by this one's limit, and nothing limits it.
        let free = app.key_for("alice").await;
        let response = app.chat(&free, chat_body(MODEL)).await;
        assert_eq!(response.status(), 200);
        assert!(header(&response, "x-ratelimit-limit-requests").is_none());
    }
}

db_test! {
    /// Tokens per minute are held on the request's estimate (its prompt and the output it may
    /// ask for) and corrected to what the answer used: a request whose answer was short frees
    /// the rest at once. A request that cannot fit while another holds tokens is refused with
    /// a wait; one larger than the whole limit is refused for good, without one.
    async fn tokens_are_held_on_the_estimate_and_corrected(db: TestDb) {
        let (app, upstream) = setup(db).await;
        let (key, _) = key_with(&app, "tokens", limits(None, Some("1000"), None)).await;
        let ask = |max_tokens: i64, stream: bool| {
            json!({"model": MODEL, "messages": [{"role": "user", "content": "Say hello."}],
                   "max_tokens": max_tokens, "stream": stream})
        };
        let first = app.chat(&key, ask(400, false)).await;
        assert_eq!(first.status(), 200);
        assert_eq!(number(&first, "x-ratelimit-limit-tokens"), 1000);
        let left_after_first = number(&first, "x-ratelimit-remaining-tokens");
        let estimate = 1000 - left_after_first;
        assert!((400..450).contains(&estimate), "the prompt and max_tokens are held: {estimate}");
        assert!(header(&first, "x-ratelimit-limit-requests").is_none(), "no request limit");
        first.text().await.unwrap();
        // The first answer used 15 tokens: its hold was replaced by them.
        let second = app.chat(&key, ask(400, false)).await;
        assert_eq!(second.status(), 200);
        assert_eq!(number(&second, "x-ratelimit-remaining-tokens"), 1000 - 15 - estimate);
        second.text().await.unwrap();

        // A slow stream holds 600 and more while it runs: 400 more do not fit beside it.
        upstream.queue(Reply::Stream {
            pieces: vec!["Hel".into(), "lo".into(), "!".into()],
            usage: Some((10, 5)),
            delay: Duration::from_millis(400),
            end: crate::helpers::upstream::StreamEnd::Done,
        });
        let streaming = app.chat(&key, ask(600, true)).await;
        assert_eq!(streaming.status(), 200);
        let refused = app.chat(&key, ask(400, false)).await;
        let message = rate_limited(refused).await;
        assert!(message.contains("1000 tokens per minute (tpm)"), "{message}");
        read_text(streaming).await;
        // Its answer was short: what it held is free again.
        let after = app.chat(&key, ask(400, false)).await;
        assert_eq!(after.status(), 200, "the stream's unused tokens were given back");

        // More than the whole limit can never be served: no Retry-After, a clear reason.
        let too_large = app.chat(&key, ask(5_000, false)).await;
        assert!(header(&too_large, "retry-after").is_none());
        let body: Value = {
            assert_eq!(too_large.status(), 429);
            too_large.json().await.unwrap()
        };
        assert_eq!(body["error"]["code"], "rate_limit_exceeded");
        assert_eq!(body["error"]["type"], "tokens");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("more than the 1000 tokens per minute"), "{message}");
        assert!(message.contains("lower max_tokens"), "{message}");
    }
}

db_test! {
    /// One request in flight at a time: a second one while a slow stream runs is refused; once
    /// the stream ends, or its client hangs up mid-stream, the slot is free again.
    async fn one_request_at_a_time_and_the_slot_comes_back(db: TestDb) {
        let (app, upstream) = setup(db).await;
        let (key, _) = key_with(&app, "single", limits(None, None, Some("1"))).await;
        let slow = |pieces: usize| Reply::Stream {
            pieces: (0..pieces).map(|i| format!("piece {i} ")).collect(),
            usage: Some((10, 5)),
            delay: Duration::from_millis(250),
            end: crate::helpers::upstream::StreamEnd::Done,
        };
        let streamed = json!({"model": MODEL, "messages": [{"role": "user", "content": "Hi"}],
                              "max_tokens": 50, "stream": true});

        upstream.queue(slow(4));
        let first = app.chat(&key, streamed.clone()).await;
        assert_eq!(first.status(), 200);
        let refused = app.chat(&key, chat_body(MODEL)).await;
        let message = rate_limited(refused).await;
        assert!(message.contains("at most 1 in flight (max_concurrent)"), "{message}");
        assert!(read_text(first).await.contains("[DONE]"));
        assert_eq!(status_of(&app, &key).await, 200, "the finished stream freed its slot");

        // A client that hangs up mid-stream frees the slot too, long before the stream would
        // have ended (40 pieces, 10 s).
        upstream.queue(slow(40));
        let abandoned = app.chat(&key, streamed.clone()).await;
        assert_eq!(abandoned.status(), 200);
        let hung_up = Instant::now();
        drop(abandoned);
        let freed = loop {
            if status_of(&app, &key).await == 200 {
                break hung_up.elapsed();
            }
            assert!(hung_up.elapsed() < Duration::from_secs(5), "the slot never came back");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert!(freed < Duration::from_secs(5), "{freed:?}");
        app.flush().await;
        let logs = app.logs().await;
        assert!(
            logs.iter().any(|l| l.outcome == Outcome::ClientClosed),
            "the abandoned stream is logged as closed by its client"
        );
    }
}

db_test! {
    /// A group's limits apply to each of its keys that sets none, counted per key; a key's own
    /// limit wins; a change to the group reaches the relay at once.
    async fn group_limits_apply_per_key_and_a_key_overrides_them(db: TestDb) {
        let (app, _upstream) = setup(db).await;
        tollgate::service::groups::update(app.ctx(), &CLI, "default", GroupInput {
            rate_limits: limits(Some("2"), None, None),
            ..Default::default()
        })
        .await
        .unwrap();
        let (plain, _) = key_with(&app, "plain", RateLimitInput::default()).await;
        let (other, _) = key_with(&app, "other", RateLimitInput::default()).await;
        let (own, _) = key_with(&app, "own", limits(Some("3"), None, None)).await;

        assert_eq!(status_of(&app, &plain).await, 200);
        let second = app.chat(&plain, chat_body(MODEL)).await;
        assert_eq!(number(&second, "x-ratelimit-limit-requests"), 2);
        let refused = app.chat(&plain, chat_body(MODEL)).await;
        let message = rate_limited(refused).await;
        assert!(message.contains("the limit group 'default' sets for each of its keys"), "{message}");
        // Each key of the group counts on its own.
        assert_eq!(status_of(&app, &other).await, 200);
        assert_eq!(status_of(&app, &other).await, 200);
        assert_eq!(status_of(&app, &other).await, 429);
        // A key's own limit wins over its group's.
        for _ in 0..3 {
            assert_eq!(status_of(&app, &own).await, 200);
        }
        let refused = app.chat(&own, chat_body(MODEL)).await;
        let message = rate_limited(refused).await;
        assert!(message.contains("this API key: 3 requests per minute"), "{message}");
        assert!(!message.contains("group"), "{message}");

        // The group's limit lifted: the key is free at once.
        tollgate::service::groups::update(app.ctx(), &CLI, "default", GroupInput {
            rate_limits: limits(Some(""), None, None),
            ..Default::default()
        })
        .await
        .unwrap();
        assert_eq!(status_of(&app, &plain).await, 200);
    }
}

db_test! {
    /// An account's limit counts all of the person's keys together, and the answers show the
    /// tighter of the key's and the account's limits. A limit set on a running server applies
    /// to the next request.
    async fn an_account_limit_counts_every_key_together(db: TestDb) {
        let (app, _upstream) = setup(db).await;
        let (first, _) = key_with(&app, "first", limits(Some("10"), None, None)).await;
        let (second, _) = key_with(&app, "second", RateLimitInput::default()).await;
        assert_eq!(status_of(&app, &first).await, 200, "nothing limits the account yet");
        tollgate::service::users::update(app.ctx(), &CLI, "alice", UpdateUser {
            rate_limits: limits(Some("3"), None, None),
            ..Default::default()
        })
        .await
        .unwrap();
        let answer = app.chat(&first, chat_body(MODEL)).await;
        assert_eq!(answer.status(), 200);
        // The account (3, 2 left) binds before the key (10, 8 left).
        assert_eq!(number(&answer, "x-ratelimit-limit-requests"), 3);
        assert_eq!(number(&answer, "x-ratelimit-remaining-requests"), 2);
        assert_eq!(status_of(&app, &second).await, 200);
        assert_eq!(status_of(&app, &second).await, 200);
        let refused = app.chat(&second, chat_body(MODEL)).await;
        let message = rate_limited(refused).await;
        assert!(message.contains("your account (all of its API keys together)"), "{message}");
        assert_eq!(status_of(&app, &first).await, 429);
    }
}

db_test! {
    /// On `/v1/messages` the refusal is in Anthropic's envelope (`rate_limit_error`), with
    /// `Retry-After`, its request id and OpenAI's rate-limit headers.
    async fn anthropic_clients_get_their_own_envelope(db: TestDb) {
        let (app, _upstream) = setup(db).await;
        let (key, _) = key_with(&app, "claude", limits(Some("1"), None, None)).await;
        let send = || {
            app.client
                .post(app.url("/v1/messages"))
                .header("x-api-key", &key)
                .header("anthropic-version", "2023-06-01")
                .json(&json!({"model": MODEL, "max_tokens": 16,
                              "messages": [{"role": "user", "content": "Hi"}]}))
                .send()
        };
        let served = send().await.unwrap();
        assert_eq!(served.status(), 200);
        assert_eq!(number(&served, "x-ratelimit-remaining-requests"), 0);
        let refused = send().await.unwrap();
        assert_eq!(refused.status(), 429);
        assert!(header(&refused, "retry-after").is_some());
        assert!(header(&refused, "request-id").is_some());
        assert_eq!(number(&refused, "x-ratelimit-limit-requests"), 1);
        let body: Value = refused.json().await.unwrap();
        assert_eq!(body["type"], "error");
        assert_eq!(body["error"]["type"], "rate_limit_error");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("1 requests per minute (rpm)"), "{message}");
    }
}

db_test! {
    /// The keys page sets a key's limits: a wrong value comes back marked with what was typed,
    /// a good one shows on the list and in the edit form, and an emptied field removes the
    /// limit. The console sets an account's and a group's.
    async fn limits_are_set_on_the_keys_page_and_in_the_console(db: TestDb) {
        let (app, _upstream) = setup(db).await;
        app.create_user_with_email("bob", "bob@example.com", PASSWORD).await;
        let browser = Browser::new(&app);
        browser.sign_in("bob", PASSWORD).await;
        browser.get("/keys").await;
        let page = browser
            .post("/keys", &[("name", "metered"), ("rpm", "often"), ("tpm", ""), ("max_concurrent", "2")])
            .await;
        assert_eq!(page.status, 422, "{}", page.body);
        assert!(page.field_error("rpm").is_some(), "{}", page.body);
        assert_eq!(page.input("rpm").as_deref(), Some("often"), "what was typed stays");
        assert_eq!(page.input("max_concurrent").as_deref(), Some("2"));
        let page = browser
            .post("/keys", &[("name", "metered"), ("rpm", "5"), ("tpm", ""), ("max_concurrent", "2")])
            .await;
        assert_eq!(page.status, 201, "{}", page.body);
        assert!(page.contains("5 requests/min · 2 at once"), "{}", page.body);
        let id = app.token_ids_of("bob").await[0];
        let row = app.token(id).await;
        assert_eq!((row.rate_limits.rpm, row.rate_limits.tpm, row.rate_limits.max_concurrent), (Some(5), None, Some(2)));
        let edit = browser.get(&format!("/keys/{id}/edit")).await;
        assert_eq!(edit.input("rpm").as_deref(), Some("5"));
        assert_eq!(edit.input("max_concurrent").as_deref(), Some("2"));
        let refused = browser
            .post(&format!("/keys/{id}/edit"), &[("name", "metered"), ("rpm", "5"), ("tpm", "0"), ("max_concurrent", "2")])
            .await;
        assert_eq!(refused.status, 422, "{}", refused.body);
        assert!(refused.field_error("tpm").is_some(), "{}", refused.body);
        let saved = browser
            .post(&format!("/keys/{id}/edit"), &[("name", "metered"), ("rpm", ""), ("tpm", "20000"), ("max_concurrent", "2")])
            .await;
        assert_eq!(saved.status, 303, "{}", saved.body);
        let row = app.token(id).await;
        assert_eq!((row.rate_limits.rpm, row.rate_limits.tpm), (None, Some(20_000)));

        // The console: a group's limits per key and an account's.
        app.create_account("ada", "admin", PASSWORD).await;
        let ada = Browser::new(&app);
        assert_eq!(ada.sign_in("ada", PASSWORD).await.status, 303);
        let form = ada.get("/admin/groups/default").await;
        assert_eq!(form.input("rpm").as_deref(), None, "no limit yet");
        let refused = ada
            .post("/admin/groups/default", &[("ratio", "1"), ("description", ""), ("user_selectable", "false"), ("rpm", "-1"), ("tpm", ""), ("max_concurrent", "")])
            .await;
        assert_eq!(refused.status, 422, "{}", refused.body);
        assert!(refused.field_error("rpm").is_some(), "{}", refused.body);
        let saved = ada
            .post("/admin/groups/default", &[("ratio", "1"), ("description", ""), ("user_selectable", "false"), ("rpm", "30"), ("tpm", ""), ("max_concurrent", "")])
            .await;
        assert_eq!(saved.status, 303, "{}", saved.body);
        let listed = ada.get("/admin/groups").await;
        assert!(listed.contains("30 requests/min"), "{}", listed.body);
        // A row of the table (ratio, description, selectable) leaves the limits alone.
        let row = ada
            .post("/admin/groups/default", &[("ratio", "1.2"), ("description", "Everyone"), ("user_selectable", "false")])
            .await;
        assert_eq!(row.status, 303, "{}", row.body);
        let group = tollgate::service::groups::get(app.ctx(), &CLI, "default").await.unwrap();
        assert_eq!(group.rate_limits.rpm, Some(30));
        assert_eq!(group.ratio.to_string(), "1.2");

        let alice = app.user("alice").await;
        let path = format!("/admin/users/{}", alice.id);
        let page = ada.get(&path).await;
        assert_eq!(page.input("rpm").as_deref(), None);
        let refused = ada
            .post(&path, &[("display_name", "alice"), ("group", "default"), ("status", "active"), ("rpm", ""), ("tpm", "lots"), ("max_concurrent", "")])
            .await;
        assert_eq!(refused.status, 422, "{}", refused.body);
        assert!(refused.field_error("tpm").is_some(), "{}", refused.body);
        assert_eq!(refused.input("tpm").as_deref(), Some("lots"));
        let saved = ada
            .post(&path, &[("display_name", "alice"), ("group", "default"), ("status", "active"), ("rpm", "100"), ("tpm", ""), ("max_concurrent", "4")])
            .await;
        assert_eq!(saved.status, 303, "{}", saved.body);
        let alice = app.user("alice").await;
        assert_eq!((alice.rate_limits.rpm, alice.rate_limits.max_concurrent), (Some(100), Some(4)));
        assert_eq!(ada.get(&path).await.input("rpm").as_deref(), Some("100"));
    }
}

db_test! {
    /// `/api` takes the limits as numbers (null removes one, an absent field keeps it) on
    /// keys, accounts and groups, and shows them; a wrong value is a 400 naming the field.
    async fn the_api_sets_and_shows_limits(db: TestDb) {
        let (app, _upstream) = setup(db).await;
        let admin = Api { token: admin_token(&app, "root", "root").await, app: &app };
        let (status, created) = admin
            .post("/api/users/alice/tokens", json!({"name": "api", "rpm": 60, "tpm": "100000"}))
            .await;
        assert_eq!(status, 201, "{created}");
        let view = &created;
        assert_eq!(view["rate_limits"], json!({"rpm": 60, "tpm": 100000, "max_concurrent": null}));
        let id = view["id"].as_i64().unwrap();
        let (status, changed) = admin
            .patch(&format!("/api/tokens/{id}"), json!({"rpm": null, "max_concurrent": 3}))
            .await;
        assert_eq!(status, 200, "{changed}");
        assert_eq!(changed["rate_limits"], json!({"rpm": null, "tpm": 100000, "max_concurrent": 3}));
        let (status, refused) = admin.patch(&format!("/api/tokens/{id}"), json!({"rpm": 0})).await;
        assert_eq!(status, 400, "{refused}");
        assert!(refused.to_string().contains("rpm"), "{refused}");
        let (status, refused) = admin.patch(&format!("/api/tokens/{id}"), json!({"tpm": 1.5})).await;
        assert_eq!(status, 400, "{refused}");

        let (status, user) = admin.patch("/api/users/alice", json!({"rpm": 1})).await;
        assert_eq!(status, 200, "{user}");
        assert_eq!(user["rate_limits"]["rpm"], 1);
        let (status, shown) = admin.get("/api/users/alice").await;
        assert_eq!(status, 200);
        assert_eq!(shown["rate_limits"]["rpm"], 1);

        let (status, group) = admin
            .post("/api/groups", json!({"name": "metered", "tpm": 5000, "max_concurrent": 2}))
            .await;
        assert_eq!(status, 201, "{group}");
        assert_eq!(group["rate_limits"], json!({"rpm": null, "tpm": 5000, "max_concurrent": 2}));
        let (status, group) = admin
            .patch("/api/groups/metered", json!({"tpm": null, "description": "Metered"}))
            .await;
        assert_eq!(status, 200, "{group}");
        assert_eq!(group["rate_limits"], json!({"rpm": null, "tpm": null, "max_concurrent": 2}));

        // The account's limit of 1 set through the API holds on the running server.
        let (status, created) = admin.post("/api/users/alice/tokens", json!({"name": "plain"})).await;
        assert_eq!(status, 201);
        let key = created["key"].as_str().unwrap().to_string();
        assert_eq!(status_of(&app, &key).await, 200);
        assert_eq!(status_of(&app, &key).await, 429);
    }
}

db_test! {
    /// The command line sets limits with `--rpm`, `--tpm` and `--max-concurrent` on keys,
    /// users and groups, shows them, removes one with `none`, and names the flag of a wrong
    /// value.
    async fn the_command_line_sets_limits(db: TestDb) {
        let (app, _upstream) = setup(db).await;
        let url = app.db_url.clone();
        let run = |args: &[&str]| tollgate(&url, args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        let json = |text: String| -> Value { serde_json::from_str(&text).unwrap() };

        let created = json(run(&["token", "create", "--user", "alice", "--name", "cli", "--rpm", "20",
                                 "--tpm", "50000", "--max-concurrent", "2", "--json"]));
        assert_eq!(created["rate_limits"], json!({"rpm": 20, "tpm": 50000, "max_concurrent": 2}));
        let id = created["id"].as_i64().unwrap().to_string();
        let text = run(&["token", "update", &id, "--rpm", "none"]);
        assert!(text.contains("limits:   50000 tpm, 2 at once"), "{text}");
        let error = tollgate(&url, &["token", "update", &id, "--max-concurrent", "0"]).unwrap_err();
        assert!(error.contains("--max-concurrent"), "{error}");
        let row = app.token(id.parse().unwrap()).await;
        assert_eq!(row.rate_limits.max_concurrent, Some(2), "a refused change changes nothing");

        let user = json(run(&["user", "update", "alice", "--rpm", "600", "--json"]));
        assert_eq!(user["rate_limits"]["rpm"], 600);
        let text = run(&["user", "show", "alice"]);
        assert!(text.contains("limits:   600 rpm (all keys together)"), "{text}");
        let made = json(run(&["group", "create", "metered", "--tpm", "1000", "--json"]));
        assert_eq!(made["rate_limits"]["tpm"], 1000);
        let listed = run(&["group", "list"]);
        assert!(listed.contains("1000 tpm"), "{listed}");
        let changed = json(run(&["group", "update", "metered", "--tpm", "none", "--rpm", "5", "--json"]));
        assert_eq!(changed["rate_limits"], json!({"rpm": 5, "tpm": null, "max_concurrent": null}));
        let user = json(run(&["user", "create", "--username", "carol", "--max-concurrent", "1", "--json"]));
        assert_eq!(user["rate_limits"]["max_concurrent"], 1);
    }
}

db_test! {
    /// A limit set through one server reaches another server of the same database through the
    /// change feed: the key is re-read there and its next requests are counted.
    async fn a_limit_set_on_one_server_reaches_another(db: TestDb) {
        let (app, _upstream) = setup(db).await;
        let sibling = app.spawn_sibling().await;
        let (key, id) = key_with(&app, "shared", RateLimitInput::default()).await;
        assert_eq!(status_of(&sibling, &key).await, 200, "the sibling serves the key, unlimited");
        tollgate::service::tokens::update(app.ctx(), &CLI, id, tollgate::service::tokens::UpdateToken {
            rate_limits: limits(Some("1"), None, None),
            ..Default::default()
        })
        .await
        .unwrap();
        let changed = Instant::now();
        let limited = loop {
            let response = sibling.chat(&key, chat_body(MODEL)).await;
            if header(&response, "x-ratelimit-limit-requests").is_some() {
                break response;
            }
            assert!(changed.elapsed() < Duration::from_secs(3), "the sibling never saw the limit");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(number(&limited, "x-ratelimit-limit-requests"), 1);
        assert_eq!(status_of(&sibling, &key).await, 429);
    }
}
