//! Changes reach the relay one by one: through the change feed for other processes, at once
//! for the server's own writes, without reloading everything, and without ever refusing a key
//! that exists or serving one that was revoked.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use crate::helpers::{CLI, FakeUpstream, TestApp, chat_body, db_test};
use tollgate::domain::secret_key;
use tollgate::jobs::snapshot_sync::{self, Synced};
use tollgate::service::db::{self, Change};
use tollgate::service::tokens::{CreateToken, UpdateToken};
use tollgate::service::users::{CreateUser, QuotaChange, UpdateUser};
use tollgate::service::{self, Ctx};

async fn serving(db: crate::helpers::TestDb, sync_interval_ms: u64) -> (TestApp, FakeUpstream) {
    let app = TestApp::spawn_with(db, |c| c.sync_interval_ms = sync_interval_ms).await;
    let upstream = FakeUpstream::chat().await;
    app.add_channel("main", &upstream, "gpt-4o-mini").await;
    app.price("gpt-4o-mini", "1", "1").await;
    (app, upstream)
}

async fn status(app: &TestApp, key: &str) -> u16 {
    app.chat(key, chat_body("gpt-4o-mini"))
        .await
        .status()
        .as_u16()
}

/// Polls until `key` answers `wanted`; returns how long that took.
async fn time_until(app: &TestApp, key: &str, wanted: u16, limit: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let got = status(app, key).await;
        if got == wanted {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "still {got} after {limit:?}, wanted {wanted}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

db_test! {
    /// The server's own management writes are live when the call returns: a key created,
    /// disabled, enabled and deleted, an account disabled and topped up.
    async fn own_writes_take_effect_before_the_call_returns(db: TestDb) {
        let (app, _upstream) = serving(db, 60_000).await;
        let ctx = app.ctx();
        app.create_user("alice", "1").await;
        let (created, key) = service::tokens::create(ctx, &CLI, CreateToken {
            username: "alice".into(),
            name: "k".into(),
            ..Default::default()
        })
        .await
        .unwrap();
        assert_eq!(status(&app, &key).await, 200);
        let set_status = |status: &str| UpdateToken { status: Some(status.into()), ..Default::default() };
        service::tokens::update(ctx, &CLI, created.id, set_status("disabled")).await.unwrap();
        assert_eq!(status(&app, &key).await, 401);
        service::tokens::update(ctx, &CLI, created.id, set_status("active")).await.unwrap();
        assert_eq!(status(&app, &key).await, 200);

        // The balance taken away, then topped up: both count at once.
        app.flush().await;
        let balance = app.user("alice").await.quota;
        service::users::change_quota(ctx, &CLI, "alice", QuotaChange {
            units: Some(-balance),
            reason: Some("spent elsewhere".into()),
            ..Default::default()
        })
        .await
        .unwrap();
        assert_eq!(status(&app, &key).await, 429);
        service::users::change_quota(ctx, &CLI, "alice", QuotaChange {
            usd: Some("1".into()),
            reason: Some("a test".into()),
            ..Default::default()
        })
        .await
        .unwrap();
        assert_eq!(status(&app, &key).await, 200);

        let disable = UpdateUser { status: Some("disabled".into()), ..Default::default() };
        service::users::update(ctx, &CLI, "alice", disable).await.unwrap();
        assert_eq!(status(&app, &key).await, 401);
        let enable = UpdateUser { status: Some("active".into()), ..Default::default() };
        service::users::update(ctx, &CLI, "alice", enable).await.unwrap();
        assert_eq!(status(&app, &key).await, 200);

        service::tokens::delete(ctx, &CLI, created.id).await.unwrap();
        assert_eq!(status(&app, &key).await, 401);
    }
}

db_test! {
    /// Writes by another process (the CLI, another node) reach a server at the default sync
    /// interval within a second: a key created, disabled and deleted; an account disabled.
    async fn another_process_writes_arrive_within_a_second(db: TestDb) {
        let (app, _upstream) = serving(db, 500).await;
        app.create_user("alice", "1").await;
        // What the CLI does: the same services, with no server to tell.
        let cli = Ctx::new(app.db.clone());
        let (created, key) = service::tokens::create(&cli, &CLI, CreateToken {
            username: "alice".into(),
            name: "k".into(),
            ..Default::default()
        })
        .await
        .unwrap();
        let second = Duration::from_secs(1);
        time_until(&app, &key, 200, second).await;
        let disable = UpdateToken { status: Some("disabled".into()), ..Default::default() };
        service::tokens::update(&cli, &CLI, created.id, disable).await.unwrap();
        time_until(&app, &key, 401, second).await;
        let enable = UpdateToken { status: Some("active".into()), ..Default::default() };
        service::tokens::update(&cli, &CLI, created.id, enable).await.unwrap();
        time_until(&app, &key, 200, second).await;
        let disable = UpdateUser { status: Some("disabled".into()), ..Default::default() };
        service::users::update(&cli, &CLI, "alice", disable).await.unwrap();
        time_until(&app, &key, 401, second).await;
        let enable = UpdateUser { status: Some("active".into()), ..Default::default() };
        service::users::update(&cli, &CLI, "alice", enable).await.unwrap();
        time_until(&app, &key, 200, second).await;
        service::tokens::delete(&cli, &CLI, created.id).await.unwrap();
        time_until(&app, &key, 401, second).await;
    }
}

db_test! {
    /// A key presented before it exists is remembered as unknown, so retrying it costs the
    /// database nothing; once the key is created the change feed makes the server forget
    /// that, and the key works.
    async fn an_unknown_key_is_forgotten_once_it_is_created(db: TestDb) {
        let (app, _upstream) = serving(db, 100).await;
        let alice = app.create_user("alice", "1").await;
        let key = "sk-chosen-ahead-of-time-000000000000000000000000000";
        assert_eq!(status(&app, key).await, 401);
        assert_eq!(status(&app, key).await, 401);
        let before = app.state.directory.held();
        assert_eq!(before.tokens, 0);

        // Written the way another process would: a feed entry and nothing else.
        app.db
            .write(async |tx| {
                db::tokens::insert(tx, &db::tokens::NewToken {
                    user_id: alice.id,
                    name: "chosen".into(),
                    key_hash: secret_key::hash(key),
                    key_display: "sk-cho…0000".into(),
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
                .await
            })
            .await
            .unwrap();
        time_until(&app, key, 200, Duration::from_secs(1)).await;
    }
}

db_test! {
    /// What the relay does not hold (an email, a display name, a password) records no change:
    /// no other server does any work for it.
    async fn profile_edits_do_not_touch_the_relay(db: TestDb) {
        let app = TestApp::spawn(db).await;
        app.create_user("alice", "1").await;
        let version = db::meta::data_version(&app.db).await.unwrap();
        service::users::update(app.ctx(), &CLI, "alice", UpdateUser {
            email: Some(Some("alice@example.com".into())),
            display_name: Some("Alice".into()),
            password: Some("correct horse battery".into()),
            ..Default::default()
        })
        .await
        .unwrap();
        assert_eq!(db::meta::data_version(&app.db).await.unwrap(), version);
        service::users::update(app.ctx(), &CLI, "alice", UpdateUser {
            group: Some("default".into()),
            status: Some("active".into()),
            ..Default::default()
        })
        .await
        .unwrap();
        let now = db::meta::data_version(&app.db).await.unwrap();
        assert_eq!(now, version + 1);
        let read = db::feed::read(&app.db, version, now).await.unwrap();
        let user = app.user("alice").await;
        assert_eq!(read.changes, vec![Change::User(user.id)]);
    }
}

db_test! {
    /// Writers committing concurrently never leave a reader with a gap: every poll sees each
    /// version up to the current one, and every change is seen.
    async fn the_feed_has_no_gaps_under_concurrent_writers(db: TestDb) {
        let app = TestApp::spawn(db).await;
        for n in 0..4 {
            app.create_user(&format!("writer{n}"), "1").await;
        }
        let start = db::meta::data_version(&app.db).await.unwrap();
        let writers = (0..4).map(|n| {
            let ctx = Ctx::new(app.db.clone());
            async move {
                let mut ids = Vec::new();
                for k in 0..15 {
                    let (row, _) = service::tokens::create(&ctx, &CLI, CreateToken {
                        username: format!("writer{n}"),
                        name: format!("k{k}"),
                        ..Default::default()
                    })
                    .await
                    .unwrap();
                    ids.push(row.id);
                }
                ids
            }
        });
        let done = std::sync::atomic::AtomicBool::new(false);
        let reader = async {
            let mut applied = start;
            let mut seen = HashSet::new();
            let mut polls = 0;
            loop {
                let finished = done.load(std::sync::atomic::Ordering::SeqCst);
                let current = db::meta::data_version(&app.db).await.unwrap();
                let read = db::feed::read(&app.db, applied, current).await.unwrap();
                assert!(read.is_complete(applied, current), "a gap between {applied} and {current}: {:?}", read.versions);
                for change in read.changes {
                    if let Change::Token(id) = change {
                        seen.insert(id);
                    }
                }
                applied = current;
                polls += 1;
                if finished {
                    return (seen, polls);
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        };
        let writing = async {
            let ids: Vec<i64> = futures::future::join_all(writers).await.into_iter().flatten().collect();
            done.store(true, std::sync::atomic::Ordering::SeqCst);
            ids
        };
        let (ids, (seen, polls)) = tokio::join!(writing, reader);
        assert_eq!(ids.len(), 60);
        assert!(polls > 1);
        let missing: Vec<&i64> = ids.iter().filter(|id| !seen.contains(id)).collect();
        assert!(missing.is_empty(), "changes never seen: {missing:?}");
        assert_eq!(db::meta::data_version(&app.db).await.unwrap(), start + 60);
    }
}

db_test! {
    /// A server whose position fell behind the pruned edge of the feed reloads once, and then
    /// holds what the database says, even what was written around the feed.
    async fn a_server_behind_the_pruned_feed_reloads(db: TestDb) {
        let (app, _upstream) = serving(db, 60_000).await;
        app.create_user("alice", "1").await;
        let key = app.key_for("alice").await;
        assert_eq!(status(&app, &key).await, 200);
        // A change the feed does not carry, then every feed row pruned, and the server's
        // position put back before them.
        sqlx::query("UPDATE tokens SET status = 'disabled'")
            .execute(app.db.pool())
            .await
            .unwrap();
        db::feed::prune(&app.db, i64::MAX).await.unwrap();
        *app.state.applied_version.lock().await = 0;
        assert_eq!(status(&app, &key).await, 200, "still held as it was");
        assert_eq!(snapshot_sync::catch_up(&app.state).await.unwrap(), Synced::Reloaded);
        assert_eq!(status(&app, &key).await, 401);
        assert_eq!(snapshot_sync::catch_up(&app.state).await.unwrap(), Synced::Current);
    }
}

db_test! {
    /// Idle keys and accounts leave memory only when nothing is in flight on them, and come
    /// back on their next use with the balance the database has.
    async fn idle_entries_are_dropped_and_read_again(db: TestDb) {
        let app = TestApp::spawn_with(db, |c| c.billing_flush_ms = 60_000).await;
        let upstream = FakeUpstream::chat().await;
        app.add_channel("main", &upstream, "gpt-4o-mini").await;
        app.price("gpt-4o-mini", "1", "1").await;
        service::users::create(app.ctx(), &CLI, CreateUser {
            username: "alice".into(),
            quota_usd: Some("1".into()),
            ..Default::default()
        })
        .await
        .unwrap();
        // A key with its own balance: spending is in flight on both accounts.
        let (key, _) = app
            .create_key(CreateToken {
                username: "alice".into(),
                name: "limited".into(),
                quota_usd: Some("0.5".into()),
                ..Default::default()
            })
            .await;
        assert_eq!(status(&app, &key).await, 200);
        let later = db::now_ms() + 3_600_000;
        let idle = Duration::from_secs(600);

        // Its spending is not written yet: the entries stay.
        let dropped = app.state.directory.drop_idle(later, idle).await;
        assert_eq!((dropped.tokens, dropped.users), (0, 0));
        app.flush().await;
        let dropped = app.state.directory.drop_idle(later, idle).await;
        assert_eq!((dropped.tokens, dropped.users), (1, 1));
        assert_eq!(app.state.directory.held().tokens, 0);

        // Read again on the next use, with the balance as written.
        assert_eq!(status(&app, &key).await, 200);
        app.flush().await;
        let user = app.user("alice").await;
        let held = app.state.directory.user(user.id).unwrap();
        assert_eq!(held.balance.available(), user.quota);
        let token = app.state.directory.token(app.logs().await[0].token_id).unwrap();
        assert_eq!(token.limit.available(), app.token(token.id).await.remaining_quota);
        assert_eq!(user.used_quota, 2 * app.logs().await[0].cost);
        // A recent entry is not idle.
        let dropped = app.state.directory.drop_idle(db::now_ms(), idle).await;
        assert_eq!((dropped.tokens, dropped.users), (0, 0));
    }
}

db_test! {
    /// A key whose row this build cannot read (a status written by a newer version, say) is
    /// not served from what was held before, and does not stop the changes after it.
    async fn an_unreadable_row_fails_closed_and_the_feed_goes_on(db: TestDb) {
        let (app, _upstream) = serving(db, 100).await;
        app.create_user("alice", "1").await;
        let (key, row) = app
            .create_key(CreateToken { username: "alice".into(), name: "odd".into(), ..Default::default() })
            .await;
        assert_eq!(status(&app, &key).await, 200);
        sqlx::query(&app.db.sql("UPDATE tokens SET status = 'suspended' WHERE id = ?"))
            .bind(row.id)
            .execute(app.db.pool())
            .await
            .unwrap();
        app.db
            .write(async |tx| {
                tx.changed(Change::Token(row.id));
                Ok::<_, db::DbError>(())
            })
            .await
            .unwrap();
        time_until(&app, &key, 503, Duration::from_secs(1)).await;
        // Later changes still arrive.
        let cli = Ctx::new(app.db.clone());
        let (_, other) = service::tokens::create(&cli, &CLI, CreateToken {
            username: "alice".into(),
            name: "next".into(),
            ..Default::default()
        })
        .await
        .unwrap();
        time_until(&app, &other, 200, Duration::from_secs(1)).await;
        let disable = UpdateUser { status: Some("disabled".into()), ..Default::default() };
        service::users::update(&cli, &CLI, "alice", disable).await.unwrap();
        time_until(&app, &other, 401, Duration::from_secs(1)).await;
    }
}
