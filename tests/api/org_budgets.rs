//! Team keys on the relay: every budget on a team key's path (member cap, team budget,
//! organisation budget, wallet) held at once from memory, never exceeded under concurrency,
//! named when it binds, started over at midnight in the organisation's time zone, released
//! when a stream is cut, and closed to a member removed from the team.
//!
//! The organisations here are written straight into the database, as another server would,
//! so these tests exercise the relay alone; the management paths have their own tests.

use std::time::Duration;

use futures::StreamExt;
use serde_json::json;

use crate::helpers::upstream::StreamEnd;
use crate::helpers::{FakeUpstream, Reply, TestApp, chat_body, db_test, expect_error};
use tollgate::domain::calendar::SiteCalendar;
use tollgate::domain::kinds::BudgetPeriod;
use tollgate::domain::secret_key;
use tollgate::service::db::{self, Change, Value};

/// $0.01 per request.
const PER_REQUEST: &str = "0.01";

fn per_request() -> i64 {
    TestApp::units(0.01)
}

async fn setup(db: crate::helpers::TestDb) -> (TestApp, FakeUpstream) {
    let app = TestApp::spawn(db).await;
    let upstream = FakeUpstream::start(Reply::chat("ok", 5, 1)).await;
    app.add_channel("main", &upstream, "gpt-4o-mini").await;
    app.price_per_request("gpt-4o-mini", PER_REQUEST).await;
    (app, upstream)
}

/// Runs a write as another process would: the change is only in the feed, so the test reloads.
async fn write(app: &TestApp, sql: &str, values: Vec<Value>, org_id: i64) -> i64 {
    let sql = sql.to_string();
    let (id, _) = app
        .db
        .write(async |tx| {
            let id = if sql.starts_with("INSERT") && !sql.contains("budget_spend") {
                tx.insert_returning_id(&sql, &values).await?
            } else {
                i64::try_from(tx.execute(&sql, &values).await?).unwrap_or(0)
            };
            tx.changed(Change::Org(org_id));
            Ok::<_, db::DbError>(id)
        })
        .await
        .unwrap();
    id
}

/// A budget column pair: (`budget_period`, `budget_quota`).
fn budget(budget: Option<(&str, f64)>) -> [Value; 2] {
    match budget {
        Some((period, usd)) => [Value::Text(period.into()), Value::Int(TestApp::units(usd))],
        None => [Value::Text(String::new()), Value::Int(0)],
    }
}

/// An organisation with `wallet_usd` in its wallet (credited through its ledger, so the
/// ledger check holds) and an optional budget.
async fn org(
    app: &TestApp,
    slug: &str,
    zone: &str,
    wallet_usd: f64,
    overall: Option<(&str, f64)>,
) -> i64 {
    let now = db::now_ms();
    let [period, quota] = budget(overall);
    let id = write(
        app,
        "INSERT INTO orgs (name, slug, group_name, timezone, budget_period, budget_quota, quota, \
         used_quota, request_count, pending_owner, created_at, updated_at) \
         VALUES (?, ?, 'default', ?, ?, ?, ?, 0, 0, 0, ?, ?)",
        vec![
            Value::Text(format!("Org {slug}")),
            Value::Text(slug.into()),
            Value::Text(zone.into()),
            period,
            quota,
            Value::Int(TestApp::units(wallet_usd)),
            Value::Int(now),
            Value::Int(now),
        ],
        0,
    )
    .await;
    write(
        app,
        "INSERT INTO ledger (user_id, org_id, kind, amount, actor, reference, reason, \
         idempotency_key, created_at) VALUES (0, ?, 'adjustment', ?, 'cli', '', 'funding', ?, ?)",
        vec![
            Value::Int(id),
            Value::Int(TestApp::units(wallet_usd)),
            Value::Text(format!("fund-{slug}")),
            Value::Int(now),
        ],
        id,
    )
    .await;
    id
}

async fn team(
    app: &TestApp,
    org_id: i64,
    name: &str,
    team_budget: Option<(&str, f64)>,
    member_cap: Option<f64>,
) -> i64 {
    let now = db::now_ms();
    let [period, quota] = budget(team_budget);
    write(
        app,
        "INSERT INTO teams (org_id, name, budget_period, budget_quota, member_cap_quota, \
         group_names, created_at, updated_at) VALUES (?, ?, ?, ?, ?, '', ?, ?)",
        vec![
            Value::Int(org_id),
            Value::Text(name.into()),
            period,
            quota,
            Value::OptInt(member_cap.map(TestApp::units)),
            Value::Int(now),
            Value::Int(now),
        ],
        org_id,
    )
    .await
}

/// A person who is a member of the organisation and of `team_id`, with a team key.
struct Member {
    username: String,
    user_id: i64,
    membership: i64,
    key: String,
}

async fn member(
    app: &TestApp,
    org_id: i64,
    team_id: i64,
    username: &str,
    cap: Option<f64>,
) -> Member {
    let user = app.create_user(username, "5").await;
    let now = db::now_ms();
    write(
        app,
        "INSERT INTO org_members (org_id, user_id, role, created_at) VALUES (?, ?, 'member', ?)",
        vec![Value::Int(org_id), Value::Int(user.id), Value::Int(now)],
        org_id,
    )
    .await;
    let membership = write(
        app,
        "INSERT INTO team_members (team_id, org_id, user_id, manager, cap_quota, created_at) \
         VALUES (?, ?, ?, 0, ?, ?)",
        vec![
            Value::Int(team_id),
            Value::Int(org_id),
            Value::Int(user.id),
            Value::OptInt(cap.map(TestApp::units)),
            Value::Int(now),
        ],
        org_id,
    )
    .await;
    let secret = secret_key::generate(secret_key::API_KEY_PREFIX);
    let token = db::tokens::NewToken {
        user_id: user.id,
        name: format!("{username} team key"),
        key_hash: secret.hash.clone(),
        key_display: secret.display.clone(),
        expires_at: None,
        unlimited: true,
        remaining_quota: 0,
        allowed_models: Vec::new(),
        allowed_ips: String::new(),
        group: "default".into(),
        budget: None,
        org_id,
        team_id,
        rate_limits: Default::default(),
        form_key: None,
    };
    app.db
        .write(async |tx| db::tokens::insert(tx, &token).await)
        .await
        .unwrap();
    Member {
        username: username.to_string(),
        user_id: user.id,
        membership,
        key: secret.plain,
    }
}

async fn org_row(app: &TestApp, org_id: i64) -> (i64, i64, i64) {
    let rows = app
        .db
        .fetch_all_with(
            "SELECT quota, used_quota, request_count FROM orgs WHERE id = ?",
            &[Value::Int(org_id)],
        )
        .await
        .unwrap();
    use sqlx::Row;
    (
        rows[0].try_get("quota").unwrap(),
        rows[0].try_get("used_quota").unwrap(),
        rows[0].try_get("request_count").unwrap(),
    )
}

async fn spent(
    app: &TestApp,
    kind: &'static str,
    scope_id: i64,
    period: BudgetPeriod,
    zone: &str,
) -> i64 {
    let (start, _) = SiteCalendar::new(zone).budget_window(period, db::now_ms());
    spent_at(app, kind, scope_id, start).await
}

/// What a budget spent in the period that began at `start`, as written.
async fn spent_at(app: &TestApp, kind: &'static str, scope_id: i64, start: i64) -> i64 {
    let window = db::orgs::ScopeWindow {
        kind,
        scope_id,
        window_start: start,
    };
    db::orgs::spent_in(&app.db, &[window])
        .await
        .unwrap()
        .first()
        .map_or(0, |(_, spent)| *spent)
}

async fn status(app: &TestApp, key: &str) -> u16 {
    app.chat(key, chat_body("gpt-4o-mini"))
        .await
        .status()
        .as_u16()
}

/// Twenty members each send two requests at once; returns how many were answered.
async fn race(app: &TestApp, members: &[Member]) -> usize {
    let requests = members
        .iter()
        .flat_map(|m| [m.key.clone(), m.key.clone()])
        .map(|key| {
            let url = app.url("/v1/chat/completions");
            async move {
                reqwest::Client::new()
                    .post(url)
                    .bearer_auth(key)
                    .json(&chat_body("gpt-4o-mini"))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            }
        });
    let statuses = futures::future::join_all(requests).await;
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 429),
        "{statuses:?}"
    );
    statuses.iter().filter(|s| **s == 200).count()
}

/// The organisation's balance is its ledger minus its relay spend, and no person's spend
/// moved.
async fn ledger_is_clean(app: &TestApp, org_id: i64, members: &[Member]) {
    use sqlx::Row;
    let rows = app
        .db
        .fetch_all_with(
            "SELECT amount FROM ledger WHERE org_id = ?",
            &[Value::Int(org_id)],
        )
        .await
        .unwrap();
    let total: i64 = rows
        .iter()
        .map(|r| r.try_get::<i64, _>("amount").unwrap())
        .sum();
    let (quota, used, _) = org_row(app, org_id).await;
    assert_eq!(
        quota,
        total - used,
        "the wallet is its ledger minus its spend"
    );
    for member in members {
        let user = app.user(&member.username).await;
        assert_eq!(
            user.used_quota, 0,
            "team spend never counts as the person's"
        );
        assert_eq!(user.quota, TestApp::units(5.0));
    }
}

db_test! {
    /// Twenty members racing on a team budget of $0.01 a month at $0.001 a request: exactly
    /// ten requests are answered, and the team's spend, the wallet and the ledger agree to the
    /// unit.
    async fn twenty_members_never_overspend_a_team_budget(db: TestDb) {
        let (app, _upstream) = setup(db).await;
        app.price_per_request("gpt-4o-mini", "0.001").await;
        let org_id = org(&app, "acme", "", 10.0, None).await;
        let team_id = team(&app, org_id, "Research", Some(("monthly", 0.01)), None).await;
        let mut members = Vec::new();
        for i in 0..20 {
            members.push(member(&app, org_id, team_id, &format!("m{i}"), None).await);
        }
        app.reload().await;
        assert_eq!(race(&app, &members).await, 10);
        app.flush().await;
        let per = TestApp::units(0.001);
        assert_eq!(spent(&app, "team", team_id, BudgetPeriod::Monthly, "UTC").await, 10 * per);
        let (quota, used, requests) = org_row(&app, org_id).await;
        assert_eq!((used, requests), (10 * per, 10));
        assert_eq!(quota, TestApp::units(10.0) - 10 * per);
        ledger_is_clean(&app, org_id, &members).await;
    }
}

db_test! {
    /// Twenty members racing on an organisation wallet of $0.01: exactly ten requests at
    /// $0.001 are answered and the wallet ends at zero, never below.
    async fn twenty_members_never_overdraw_the_wallet(db: TestDb) {
        let (app, _upstream) = setup(db).await;
        app.price_per_request("gpt-4o-mini", "0.001").await;
        let org_id = org(&app, "acme", "", 0.01, None).await;
        let team_id = team(&app, org_id, "Research", None, None).await;
        let mut members = Vec::new();
        for i in 0..20 {
            members.push(member(&app, org_id, team_id, &format!("m{i}"), None).await);
        }
        app.reload().await;
        assert_eq!(race(&app, &members).await, 10);
        app.flush().await;
        let (quota, used, _) = org_row(&app, org_id).await;
        assert_eq!((quota, used), (0, TestApp::units(0.01)));
        ledger_is_clean(&app, org_id, &members).await;
        // The refusal names the wallet.
        let refused = app.chat(&members[0].key, chat_body("gpt-4o-mini")).await;
        let message = expect_error(refused, 429, "insufficient_quota").await;
        assert!(message.contains("organisation Org acme's wallet has $0.00 left"), "{message}");
    }
}

db_test! {
    /// A member's cap that is lower than the team's budget binds first and is named; with the
    /// figures the other way round, the team's budget binds and is named, with what is left
    /// of what and when it starts over. The refused request never reaches the upstream.
    async fn the_binding_budget_is_named(db: TestDb) {
        let (app, upstream) = setup(db).await;
        let org_id = org(&app, "acme", "Europe/Berlin", 10.0, Some(("monthly", 5.0))).await;
        let capped = team(&app, org_id, "Research", Some(("monthly", 0.05)), Some(0.02)).await;
        let tight = team(&app, org_id, "Support", Some(("monthly", 0.02)), Some(0.05)).await;
        let alice = member(&app, org_id, capped, "alice", None).await;
        let bob = member(&app, org_id, tight, "bob", None).await;
        app.reload().await;
        let berlin = SiteCalendar::new("Europe/Berlin");
        let (_, end) = berlin.budget_window(BudgetPeriod::Monthly, db::now_ms());
        let next = &berlin.local_time(end)[..10];

        assert_eq!(status(&app, &alice.key).await, 200);
        assert_eq!(status(&app, &alice.key).await, 200);
        let message = expect_error(app.chat(&alice.key, chat_body("gpt-4o-mini")).await, 429, "insufficient_quota").await;
        assert!(message.contains("your monthly cap in team Research has $0.00 left of $0.02"), "{message}");
        assert!(message.contains(&format!("it starts over on {next} (Europe/Berlin)")), "{message}");

        assert_eq!(status(&app, &bob.key).await, 200);
        assert_eq!(status(&app, &bob.key).await, 200);
        let message = expect_error(app.chat(&bob.key, chat_body("gpt-4o-mini")).await, 429, "insufficient_quota").await;
        assert!(message.contains("team Support's monthly budget has $0.00 left of $0.02"), "{message}");
        assert_eq!(upstream.request_count(), 4);

        // Anthropic's envelope on /v1/messages: 402 billing_error, naming the same budget.
        let refused = app
            .post(&bob.key, "/v1/messages", json!({
                "model": "gpt-4o-mini", "max_tokens": 10,
                "messages": [{"role": "user", "content": "hi"}]
            }))
            .await;
        assert_eq!(refused.status().as_u16(), 402);
        let body: serde_json::Value = refused.json().await.unwrap();
        assert_eq!(body["error"]["type"], "billing_error");
        assert!(body["error"]["message"].as_str().unwrap().contains("team Support's monthly budget"));

        app.flush().await;
        assert_eq!(spent(&app, "member", alice.membership, BudgetPeriod::Monthly, "Europe/Berlin").await, 2 * per_request());
        assert_eq!(spent(&app, "team", capped, BudgetPeriod::Monthly, "Europe/Berlin").await, 2 * per_request());
        assert_eq!(spent(&app, "org", org_id, BudgetPeriod::Monthly, "Europe/Berlin").await, 4 * per_request());
    }
}

db_test! {
    /// A team's daily budget starts over at midnight in the organisation's zone (Tokyo), not
    /// the site's: yesterday's spending there counts for nothing today, today's counts in the
    /// row of Tokyo's midnight, and the refusal names Tokyo's next day.
    async fn periods_start_over_at_midnight_in_the_organisations_zone(db: TestDb) {
        let (app, _upstream) = setup(db).await;
        app.set_option("timezone", "America/New_York").await;
        let org_id = org(&app, "acme", "Asia/Tokyo", 10.0, None).await;
        let team_id = team(&app, org_id, "Research", Some(("daily", 0.02)), None).await;
        let alice = member(&app, org_id, team_id, "alice", None).await;
        let tokyo = SiteCalendar::new("Asia/Tokyo");
        let (today, tomorrow) = tokyo.budget_window(BudgetPeriod::Daily, db::now_ms());
        let yesterday = tokyo.day_start_ms(db::now_ms(), 1);
        // Yesterday (in Tokyo) spent the whole budget.
        write(
            &app,
            "INSERT INTO budget_spend (scope_kind, scope_id, window_start, spent) VALUES ('team', ?, ?, ?)",
            vec![Value::Int(team_id), Value::Int(yesterday), Value::Int(TestApp::units(0.02))],
            org_id,
        )
        .await;
        app.reload().await;
        assert_eq!(status(&app, &alice.key).await, 200);
        app.flush().await;
        assert_eq!(spent_at(&app, "team", team_id, today).await, per_request());
        assert_eq!(status(&app, &alice.key).await, 200);
        let message = expect_error(app.chat(&alice.key, chat_body("gpt-4o-mini")).await, 429, "insufficient_quota").await;
        let next = &tokyo.local_time(tomorrow)[..10];
        assert!(message.contains(&format!("team Research's daily budget has $0.00 left of $0.02; it starts over on {next} (Asia/Tokyo)")), "{message}");
    }
}

db_test! {
    /// A member removed from the team has their team key refused on the next request, while
    /// their personal key goes on working.
    async fn a_removed_members_team_key_stops_at_once(db: TestDb) {
        let (app, _upstream) = setup(db).await;
        let org_id = org(&app, "acme", "", 10.0, None).await;
        let team_id = team(&app, org_id, "Research", None, None).await;
        let alice = member(&app, org_id, team_id, "alice", None).await;
        let personal = app.key_for("alice").await;
        app.reload().await;
        assert_eq!(status(&app, &alice.key).await, 200);
        write(
            &app,
            "DELETE FROM team_members WHERE id = ?",
            vec![Value::Int(alice.membership)],
            org_id,
        )
        .await;
        app.reload().await;
        let message = expect_error(app.chat(&alice.key, chat_body("gpt-4o-mini")).await, 401, "invalid_api_key").await;
        assert!(message.contains("no longer a member"), "{message}");
        assert_eq!(status(&app, &personal).await, 200);
    }
}

db_test! {
    /// Streams cut by their clients mid-answer release every scope they were held on: once
    /// the costs are written, each scope's live figure is exactly its limit minus what the
    /// database says it spent, and nothing is held.
    async fn cut_streams_release_every_scope(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let pieces: Vec<String> = (0..40).map(|i| format!(" word{i}")).collect();
        let upstream = FakeUpstream::start(Reply::Stream {
            pieces,
            usage: Some((50, 50)),
            delay: Duration::from_millis(50),
            end: StreamEnd::Done,
        })
        .await;
        app.add_channel("main", &upstream, "gpt-4o-mini").await;
        app.price("gpt-4o-mini", "1", "2").await;
        let org_id = org(&app, "acme", "Asia/Shanghai", 10.0, Some(("weekly", 5.0))).await;
        let team_id = team(&app, org_id, "Research", Some(("daily", 2.0)), Some(1.0)).await;
        let mut members = Vec::new();
        for name in ["alice", "bob", "carol"] {
            members.push(member(&app, org_id, team_id, name, None).await);
        }
        app.reload().await;
        let cut = members.iter().map(|m| {
            let url = app.url("/v1/chat/completions");
            let key = m.key.clone();
            async move {
                let response = reqwest::Client::new()
                    .post(url)
                    .bearer_auth(key)
                    .json(&json!({
                        "model": "gpt-4o-mini", "stream": true, "max_tokens": 1000,
                        "messages": [{"role": "user", "content": "count"}]
                    }))
                    .send()
                    .await
                    .unwrap();
                let mut stream = response.bytes_stream();
                let mut received = String::new();
                while !received.contains("word3") {
                    let chunk = stream.next().await.unwrap().unwrap();
                    received.push_str(std::str::from_utf8(&chunk).unwrap());
                }
            }
        });
        futures::future::join_all(cut).await;
        let logs = app.wait_for_logs(3).await;
        assert!(logs.iter().all(|log| log.org_id == org_id && log.team_id == team_id));
        app.flush().await;
        let held = app.state.directory.org(org_id).expect("the organisation is held");
        let (quota, used, _) = org_row(&app, org_id).await;
        assert_eq!(used, logs.iter().map(|l| l.cost).sum::<i64>());
        assert!(held.wallet.is_settled());
        assert_eq!(held.wallet.available(), quota);
        let (_, team_scope) = held.teams[&team_id].budget.as_ref().unwrap();
        assert!(team_scope.is_settled());
        let team_spent = spent(&app, "team", team_id, BudgetPeriod::Daily, "Asia/Shanghai").await;
        assert_eq!(team_spent, used);
        assert_eq!(team_scope.available(), TestApp::units(2.0) - team_spent);
        let (_, org_scope) = held.budget.as_ref().unwrap();
        assert_eq!(org_scope.available(), TestApp::units(5.0) - used);
        for m in &members {
            let (_, cap) = held.members[&m.user_id].teams[&team_id].as_ref().unwrap();
            assert!(cap.is_settled());
            let cap_spent = spent(&app, "member", m.membership, BudgetPeriod::Daily, "Asia/Shanghai").await;
            assert_eq!(cap.available(), TestApp::units(1.0) - cap_spent);
        }
        ledger_is_clean(&app, org_id, &members).await;
    }
}

db_test! {
    /// The chargeback report sums the organisation's log rows per month, team, member and
    /// model: its costs equal the rows' costs to the unit. A member sees only their own lines;
    /// an outsider sees nothing.
    async fn the_chargeback_report_equals_the_log_rows(db: TestDb) {
        use tollgate::service::org_usage::{self, UsageFilter};
        let (app, _upstream) = setup(db).await;
        let org_id = org(&app, "acme", "Asia/Tokyo", 10.0, None).await;
        let research = team(&app, org_id, "Research", None, None).await;
        let support = team(&app, org_id, "Support", None, None).await;
        let alice = member(&app, org_id, research, "alice", None).await;
        let bob = member(&app, org_id, support, "bob", None).await;
        let outsider = app.create_user("eve", "1").await;
        app.reload().await;
        for _ in 0..3 {
            assert_eq!(status(&app, &alice.key).await, 200);
        }
        assert_eq!(status(&app, &bob.key).await, 200);
        app.flush().await;
        let logs = app.logs().await;
        let cli = tollgate::service::Caller::Cli;
        let usage = org_usage::usage(app.ctx(), &cli, "acme", &UsageFilter::default()).await.unwrap();
        assert_eq!(usage.cost_quota, logs.iter().filter(|l| l.org_id == org_id).map(|l| l.cost).sum::<i64>());
        assert_eq!(usage.requests, 4);
        let month = SiteCalendar::new("Asia/Tokyo").local_time(db::now_ms())[..7].to_string();
        let csv = org_usage::chargeback_csv(&usage, 500_000);
        let mut lines = csv.lines();
        assert_eq!(lines.next(), Some("month,team,member,model,requests,prompt_tokens,completion_tokens,cost_usd"));
        assert_eq!(lines.next(), Some(format!("{month},Research,alice,gpt-4o-mini,3,{},{},0.030000", 3 * 5, 3)).as_deref(), "{csv}");
        assert_eq!(lines.next(), Some(format!("{month},Support,bob,gpt-4o-mini,1,5,1,0.010000")).as_deref(), "{csv}");

        let as_bob = tollgate::service::Caller::User(bob.user_id);
        let own = org_usage::usage(app.ctx(), &as_bob, "acme", &UsageFilter::default()).await.unwrap();
        assert_eq!(own.lines.len(), 1);
        assert_eq!(own.lines[0].member, "bob");
        let as_eve = tollgate::service::Caller::User(outsider.id);
        assert!(org_usage::usage(app.ctx(), &as_eve, "acme", &UsageFilter::default()).await.is_err());
        let bad = UsageFilter { from: Some("last tuesday".into()), ..Default::default() };
        let refused = org_usage::usage(app.ctx(), &cli, "acme", &bad).await.unwrap_err();
        assert_eq!(refused.fields()[0].field, "from");
    }
}

db_test! {
    /// A request in flight while its team's budget changes from daily to weekly counts in
    /// neither period, for the team nor for the member's cap, which follows the team's
    /// period: the wallet pays it, the week starts from nothing, and what the week then
    /// spends is what is written.
    async fn spending_in_flight_across_a_team_period_change_counts_in_neither(db: TestDb) {
        let (app, upstream) = setup(db).await;
        let org_id = org(&app, "acme", "UTC", 10.0, None).await;
        let team_id = team(&app, org_id, "Research", Some(("daily", 1.0)), Some(0.5)).await;
        let alice = member(&app, org_id, team_id, "alice", None).await;
        app.reload().await;
        assert_eq!(status(&app, &alice.key).await, 200);
        app.flush().await;
        let daily = |kind, id| spent(&app, kind, id, BudgetPeriod::Daily, "UTC");
        assert_eq!(daily("team", team_id).await, per_request());
        assert_eq!(daily("member", alice.membership).await, per_request());

        upstream.queue(Reply::slow_stream(Duration::from_millis(600)));
        let in_flight = app.chat_streamed(&alice.key, "gpt-4o-mini");
        let change = async {
            while upstream.request_count() < 2 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let settings = db::orgs::TeamSettings {
                name: "Research".into(),
                budget: Some(db::orgs::Budget {
                    period: BudgetPeriod::Weekly,
                    quota: TestApp::units(1.0),
                }),
                member_cap_quota: Some(TestApp::units(0.5)),
                group_names: Vec::new(),
            };
            app.db
                .write(async |tx| db::orgs::update_team(tx, org_id, team_id, &settings).await)
                .await
                .unwrap()
                .0
        };
        let ((answered, text), changed) = tokio::join!(in_flight, change);
        assert_eq!(answered, 200, "{text}");
        assert!(text.contains("[DONE]"), "the stream ran to its end: {text}");
        assert!(changed, "the team was changed");
        app.flush().await;
        let (_, used, requests) = org_row(&app, org_id).await;
        assert_eq!((used, requests), (2 * per_request(), 2), "the wallet paid both");
        let weekly = |kind, id| spent(&app, kind, id, BudgetPeriod::Weekly, "UTC");
        for (kind, id) in [("team", team_id), ("member", alice.membership)] {
            assert_eq!(weekly(kind, id).await, 0, "{kind}: the week starts from nothing");
            assert_eq!(daily(kind, id).await, 0, "{kind}: the day was forgotten");
        }

        app.reload().await;
        for _ in 0..2 {
            assert_eq!(status(&app, &alice.key).await, 200);
        }
        app.flush().await;
        assert_eq!(weekly("team", team_id).await, 2 * per_request());
        assert_eq!(weekly("member", alice.membership).await, 2 * per_request());
        ledger_is_clean(&app, org_id, std::slice::from_ref(&alice)).await;
    }
}
