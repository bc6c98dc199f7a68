//! The service door and the balance ledger: a user reaches only their own records, an
//! operation's writes commit together or not at all, and every balance is its ledger rows
//! minus its relay spend, under concurrent top-ups, repeated submissions and traffic.

use std::collections::HashSet;
use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::helpers::{Api, CLI, FakeUpstream, Reply, TestApp, admin_token, chat_body, db_test};
use tollgate::domain::kinds::{LedgerKind, Role};
use tollgate::service::db::ledger::NewEntry;
use tollgate::service::db::tokens::NewToken;
use tollgate::service::db::users::NewUser;
use tollgate::service::db::{self, DbError};
use tollgate::service::logs::LogQuery;
use tollgate::service::tokens::{CreateToken, UpdateToken};
use tollgate::service::users::QuotaChange;
use tollgate::service::{self, Caller, ServiceError};

fn is_not_found<T: std::fmt::Debug>(result: Result<T, ServiceError>) -> bool {
    matches!(result, Err(ServiceError::NotFound(_)))
}

db_test! {
    /// A user caller is scoped to their own account: another user's key, balance, logs and
    /// ledger answer "not found" (never "forbidden", which would confirm they exist), and
    /// nothing of theirs changes; administration is refused outright.
    async fn a_user_reaches_only_their_own_records(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let upstream = FakeUpstream::chat().await;
        app.add_channel("main", &upstream, "gpt-4o-mini").await;
        app.price("gpt-4o-mini", "1", "1").await;
        let alice = app.create_user("alice", "1").await;
        app.create_user("bob", "1").await;
        let (bob_key, bob_row) = app
            .create_key(CreateToken { username: "bob".into(), name: "bobs".into(), ..Default::default() })
            .await;
        assert_eq!(app.chat(&bob_key, chat_body("gpt-4o-mini")).await.status(), 200);
        app.flush().await;

        let ctx = app.ctx();
        let as_alice = Caller::User(alice.id);
        assert!(is_not_found(service::tokens::get(ctx, &as_alice, bob_row.id).await));
        let disable = UpdateToken { status: Some("disabled".into()), ..Default::default() };
        assert!(is_not_found(service::tokens::update(ctx, &as_alice, bob_row.id, disable).await));
        assert!(is_not_found(service::tokens::delete(ctx, &as_alice, bob_row.id).await));
        assert!(is_not_found(service::tokens::list_for_user(ctx, &as_alice, "bob").await));
        let for_bob = CreateToken { username: "bob".into(), name: "planted".into(), ..Default::default() };
        assert!(service::tokens::create(ctx, &as_alice, for_bob).await.is_err());
        assert!(is_not_found(service::users::get(ctx, &as_alice, "bob").await));
        assert!(is_not_found(service::ledger::entries(ctx, &as_alice, "bob", 10).await));
        let (logs, totals) = service::logs::query(ctx, &as_alice, LogQuery {
            username: Some("bob".into()),
            token_id: Some(bob_row.id),
            ..Default::default()
        })
        .await
        .unwrap();
        assert!(logs.is_empty(), "alice sees none of bob's requests: {logs:?}");
        assert_eq!(totals.requests, 0);
        let refused = service::users::change_quota(ctx, &as_alice, "alice", QuotaChange {
            usd: Some("100".into()),
            ..Default::default()
        })
        .await;
        assert!(matches!(refused, Err(ServiceError::Forbidden(_))), "{refused:?}");
        assert!(matches!(service::ledger::check(ctx, &as_alice).await, Err(ServiceError::Forbidden(_))));

        // Bob's key is untouched and still works; bob's token list has only his key.
        let row = app.token(bob_row.id).await;
        assert_eq!(row.status.as_str(), "active");
        assert_eq!(app.chat(&bob_key, chat_body("gpt-4o-mini")).await.status(), 200);
        assert_eq!(service::tokens::list_for_user(ctx, &CLI, "bob").await.unwrap().len(), 1);

        // Her own records she manages.
        let (own, _) = service::tokens::create(ctx, &as_alice, CreateToken {
            username: "alice".into(),
            name: "mine".into(),
            ..Default::default()
        })
        .await
        .unwrap();
        assert_eq!(own.user_id, alice.id);
        let renamed = UpdateToken { name: Some("still mine".into()), ..Default::default() };
        assert_eq!(service::tokens::update(ctx, &as_alice, own.id, renamed).await.unwrap().name, "still mine");
        assert_eq!(service::tokens::list_for_user(ctx, &as_alice, "alice").await.unwrap().len(), 1);
        service::tokens::delete(ctx, &as_alice, own.id).await.unwrap();
        assert!(is_not_found(service::tokens::get(ctx, &as_alice, own.id).await));
    }
}

db_test! {
    /// When one step of a transaction fails, none of its earlier writes remain: not the
    /// balance change, not the ledger row, not the new key, and the running server is not
    /// told of a change that never happened.
    async fn a_failed_step_rolls_back_every_write(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let alice = app.create_user("alice", "1").await;
        let version = db::meta::data_version(&app.db).await.unwrap();
        let before = app.user("alice").await;
        let result = app
            .db
            .write(async |tx| {
                assert!(db::users::add_quota(tx, alice.id, 1_000).await?);
                db::ledger::insert(tx, &NewEntry {
                    user_id: alice.id,
                    kind: LedgerKind::Adjustment,
                    amount: 1_000,
                    actor: "cli",
                    reference: "",
                    reason: "rolled back",
                    idempotency_key: "rollback-test",
                })
                .await?;
                db::tokens::insert(tx, &NewToken {
                    user_id: alice.id,
                    name: "never".into(),
                    key_hash: "f".repeat(64),
                    key_display: "sk-…never".into(),
                    expires_at: None,
                    unlimited: true,
                    remaining_quota: 0,
                    allowed_models: Vec::new(),
                    allowed_ips: String::new(),
                    group: String::new(),
                    budget: None,
                    org_id: 0,
                    team_id: 0,
                    rate_limits: Default::default(),
                    form_key: None,
                })
                .await?;
                // The last step collides with an existing username.
                db::users::insert(tx, &NewUser {
                    username: "alice".into(),
                    password_hash: None,
                    email: None,
                    role: Role::User,
                    group: "default".into(),
                    quota: 0,
                    rate_limits: Default::default(),
                })
                .await
            })
            .await;
        let error = result.expect_err("the duplicate username fails the transaction");
        assert!(matches!(&error, DbError::Conflict(_)), "{error:?}");
        assert!(error.is_conflict_on("username"), "{error:?}");

        let after = app.user("alice").await;
        assert_eq!(after.quota, before.quota, "the balance change was rolled back");
        let entries = service::ledger::entries(app.ctx(), &CLI, "alice", 100).await.unwrap();
        assert!(entries.iter().all(|e| e.idempotency_key != "rollback-test"), "{entries:?}");
        assert!(service::tokens::list_for_user(app.ctx(), &CLI, "alice").await.unwrap().is_empty());
        assert_eq!(db::meta::data_version(&app.db).await.unwrap(), version);
        let check = service::ledger::check(app.ctx(), &CLI).await.unwrap();
        assert!(check.discrepancies.is_empty(), "{:?}", check.discrepancies);

        // The key that was rolled back is free for a real change.
        let change = service::users::change_quota(app.ctx(), &CLI, "alice", QuotaChange {
            units: Some(1_000),
            idempotency_key: Some("rollback-test".into()),
            reason: Some("after the rollback".into()),
            ..Default::default()
        })
        .await
        .unwrap();
        assert!(change.applied);
        assert_eq!(change.user.quota, before.quota + 1_000);
    }
}

/// $0.10 per request = 50,000 units.
const PER_REQUEST_UNITS: i64 = 50_000;

db_test! {
    /// Top-ups from many tasks at once, each idempotency key submitted twice concurrently,
    /// deductions among them, through the services and the API, while requests spend: every
    /// key applies once, the balance is exact to the unit, and `ledger check` agrees.
    async fn concurrent_top_ups_and_the_ledger_agree(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let upstream = FakeUpstream::start(Reply::chat("ok", 10, 1)).await;
        app.add_channel("main", &upstream, "gpt-4o-mini").await;
        app.price_per_request("gpt-4o-mini", "0.10").await;
        app.create_user("alice", "0.50").await;
        let key = app.key_for("alice").await;
        let start = app.user("alice").await.quota;
        let api = Api { token: admin_token(&app, "ops", "admin").await, app: &app };

        // Key k-N adds N × 1000 units, or takes N × 10 away when N is divisible by 5.
        let amount = |n: i64| if n % 5 == 0 { -n * 10 } else { n * 1_000 };
        let submissions: Vec<i64> = (1..=24).chain(1..=24).collect();
        let service_calls = submissions.iter().map(|&n| {
            let ctx = app.ctx().clone();
            async move {
                let change = service::users::change_quota(&ctx, &CLI, "alice", QuotaChange {
                    units: Some(amount(n)),
                    reason: Some(format!("top-up {n}")),
                    idempotency_key: Some(format!("k-{n}")),
                    ..Default::default()
                })
                .await
                .unwrap();
                change.applied.then_some(n)
            }
        });
        let api_calls = (0..4).map(|_| {
            let api = &api;
            async move {
                let response = api
                    .request(reqwest::Method::POST, "/api/users/alice/quota")
                    .header("Idempotency-Key", "api-once")
                    .json(&json!({"usd": "0.02", "reason": "over the API"}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200);
                response.headers().get("idempotent-replayed").is_none()
            }
        });
        let traffic = async {
            let mut ok = 0;
            for _ in 0..8 {
                for _ in 0..3 {
                    if app.chat(&key, chat_body("gpt-4o-mini")).await.status() == 200 {
                        ok += 1;
                    }
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            ok
        };
        let (applied, api_applied, ok) = tokio::join!(
            futures::future::join_all(service_calls),
            futures::future::join_all(api_calls),
            traffic
        );
        let applied: Vec<i64> = applied.into_iter().flatten().collect();
        let distinct: HashSet<i64> = applied.iter().copied().collect();
        assert_eq!(applied.len(), 24, "each key applied exactly once: {applied:?}");
        assert_eq!(distinct.len(), 24);
        assert_eq!(api_applied.iter().filter(|&&a| a).count(), 1, "the API key applied once");
        assert!(ok >= 5, "requests ran meanwhile: {ok}");

        app.flush().await;
        let spent: i64 = app.logs().await.iter().map(|l| l.cost).sum();
        assert_eq!(spent, ok as i64 * PER_REQUEST_UNITS);
        let added: i64 = (1..=24).map(amount).sum::<i64>() + TestApp::units(0.02);
        let user = app.user("alice").await;
        assert_eq!(user.quota, start + added - spent);
        assert_eq!(user.used_quota, spent);
        let check = service::ledger::check(app.ctx(), &CLI).await.unwrap();
        assert!(check.discrepancies.is_empty(), "{:?}", check.discrepancies);
        let entries = service::ledger::entries(app.ctx(), &CLI, "alice", 1000).await.unwrap();
        assert_eq!(entries.len(), 1 + 24 + 1, "the grant, each key once, the API's once");
        assert_eq!(entries.iter().map(|e| e.amount).sum::<i64>(), start + added);
        let over_api = entries.iter().find(|e| e.idempotency_key == "client:api-once").unwrap();
        assert_eq!(over_api.reason, "over the API");
        assert!(over_api.actor.starts_with("admin:"), "{}", over_api.actor);
        // A key used again for a different change is refused, not taken for done.
        let (status, error) = api.post("/api/users/alice/quota", json!({"usd": "5", "idempotency_key": "api-once", "reason": "again"})).await;
        assert_eq!(status, 409, "{error}");
        assert_eq!(error["error"]["field"], "idempotency_key");
        let other_user = service::users::change_quota(app.ctx(), &CLI, "ops", QuotaChange {
            units: Some(amount(1)),
            idempotency_key: Some("k-1".into()),
            reason: Some("a test".into()),
            ..Default::default()
        })
        .await;
        assert!(matches!(other_user, Err(ServiceError::Conflict { .. })), "{other_user:?}");
        // A caller's key cannot take the place of one the system makes.
        service::users::change_quota(app.ctx(), &CLI, "alice", QuotaChange {
            units: Some(1),
            idempotency_key: Some("grant:user:999".into()),
            reason: Some("a test".into()),
            ..Default::default()
        })
        .await
        .unwrap();
        let keys: Vec<String> = service::ledger::entries(app.ctx(), &CLI, "alice", 1000)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.idempotency_key)
            .collect();
        assert!(keys.contains(&"client:grant:user:999".to_string()), "{keys:?}");
        assert!(!keys.contains(&"grant:user:999".to_string()));
        let user = app.user("alice").await;
        // The relay admits against the same balance.
        app.reload().await;
        assert_eq!(app.state.directory.user(user.id).unwrap().balance.available(), user.quota);
    }
}

/// Runs `tollgate ledger check`; returns whether it exited 0 and what it printed.
fn ledger_check(database_url: &str) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["ledger", "check"])
        .env("DATABASE_URL", database_url)
        .env_remove("RUST_LOG")
        .output()
        .expect("run tollgate");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

db_test! {
    /// An account changed behind the ledger's back is found: `ledger check` names it with
    /// what its balance should be and exits non-zero, and passes again once it is put right.
    async fn ledger_check_finds_a_balance_changed_behind_its_back(db: TestDb) {
        let app = TestApp::spawn(db).await;
        app.create_user("alice", "1").await;
        app.create_user("bob", "2").await;
        let (ok, text) = ledger_check(&app.db_url);
        assert!(ok, "{text}");
        assert!(text.contains("Checked 2 account(s)"), "{text}");

        sqlx::query(&app.db.sql("UPDATE users SET quota = quota + 7 WHERE username = ?"))
            .bind("bob")
            .execute(app.db.pool())
            .await
            .unwrap();
        let (ok, text) = ledger_check(&app.db_url);
        assert!(!ok, "a discrepancy fails the check: {text}");
        assert!(text.contains("bob"), "{text}");
        assert!(!text.contains("alice"), "{text}");
        assert!(text.contains("1000007") && text.contains("1000000"), "{text}");

        sqlx::query(&app.db.sql("UPDATE users SET quota = quota - 7 WHERE username = ?"))
            .bind("bob")
            .execute(app.db.pool())
            .await
            .unwrap();
        assert!(ledger_check(&app.db_url).0);
    }
}

db_test! {
    /// The migration that starts the ledger opens each existing account at its balance plus
    /// its spend, so the check holds from the first day; it is run here as written, against
    /// accounts that have balances and spend.
    async fn the_ledger_opens_at_balance_plus_spend(db: TestDb) {
        let kind = db.kind;
        let app = TestApp::spawn(db).await;
        app.create_user("alice", "1").await;
        app.create_user("bob", "0").await;
        let pool = app.db.pool();
        sqlx::query("UPDATE users SET quota = 123456, used_quota = 7890")
            .execute(pool)
            .await
            .unwrap();
        sqlx::query("DELETE FROM ledger").execute(pool).await.unwrap();
        let backend = match kind {
            crate::helpers::db::Kind::Sqlite => "sqlite",
            crate::helpers::db::Kind::Postgres => "postgres",
            crate::helpers::db::Kind::MySql => "mysql",
        };
        let migration = std::fs::read_to_string(format!(
            "{}/migrations/{backend}/0005_balance_ledger.sql",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let (_, opening) = migration.split_once("-- One opening row").expect("the opening step");
        let opening = opening.split_once('\n').unwrap().1;
        sqlx::raw_sql(opening).execute(pool).await.unwrap();

        for name in ["alice", "bob"] {
            let entries = service::ledger::entries(app.ctx(), &CLI, name, 10).await.unwrap();
            assert_eq!(entries.len(), 1, "{entries:?}");
            assert_eq!(entries[0].kind, LedgerKind::Opening);
            assert_eq!(entries[0].amount, 123456 + 7890);
        }
        let check = service::ledger::check(app.ctx(), &CLI).await.unwrap();
        assert_eq!(check.accounts, 2);
        assert!(check.discrepancies.is_empty(), "{:?}", check.discrepancies);
    }
}
