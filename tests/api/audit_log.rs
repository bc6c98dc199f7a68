//! The audit log over real HTTP and the real binary: what each kind of caller's changes leave,
//! secrets recorded as changed, the chain that `tollgate audit verify` walks (and that an edit
//! behind its back breaks), retention, and the console's page and export.

use serde_json::{Value, json};
use tollgate::records::audit::AuditFilter;
use tollgate::service;
use tollgate::service::db::{Db, Value as Bind};

use crate::helpers::{Api, Browser, CLI, FakeUpstream, TestApp, admin_token, db_test};
use crate::shutdown::tollgate;

const PASSWORD: &str = "correct horse battery";

async fn rows(app: &TestApp) -> Vec<tollgate::records::audit::AuditRow> {
    service::audit::list(
        app.ctx(),
        &CLI,
        &AuditFilter {
            limit: 1_000,
            ..Default::default()
        },
    )
    .await
    .unwrap()
}

async fn raw(app: &TestApp) -> Db {
    Db::connect(&app.db_url, 1).await.unwrap()
}

db_test! {
    /// Changes through `/api` name the token's owner, the token and the address; the command
    /// line's name `cli`; a secret is recorded as changed, never its value (in the rows, in
    /// `/api/audit` and on the page); a balance change points at its ledger row; a person's
    /// own key is not audited, an administrator's key for someone else is.
    async fn every_administrative_change_leaves_one_row(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let upstream = FakeUpstream::chat().await;
        let api = Api { token: admin_token(&app, "ada", "root").await, app: &app };
        let (status, body) = api.post("/api/channels", json!({
            "name": "main", "type": "openai", "base_url": upstream.base_url(),
            "keys": ["sk-first-secret-1111"], "models": ["gpt-4o-mini"]
        })).await;
        assert_eq!(status, 201, "{body}");
        let (status, body) = api.patch("/api/channels/main", json!({"keys": ["sk-second-secret-2222"], "weight": 3})).await;
        assert_eq!(status, 200, "{body}");
        tollgate(&app.db_url, &["option", "set", "site_name", "Audited"]).unwrap();
        let (status, body) = api.post("/api/users", json!({"username": "alice", "email": "alice@example.test"})).await;
        assert_eq!(status, 201, "{body}");
        let (status, body) = api.post("/api/users/alice/quota", json!({"usd": "2.50", "reason": "welcome"})).await;
        assert_eq!(status, 200, "{body}");
        let (status, body) = api.post("/api/users/alice/quota", json!({"usd": "1"})).await;
        assert_eq!(status, 400, "a balance change says why: {body}");
        assert_eq!(body["error"]["field"], "reason");

        let all = rows(&app).await;
        let actions: Vec<&str> = all.iter().rev().map(|r| r.action.as_str()).collect();
        assert_eq!(
            actions,
            ["user.create", "admin_token.create", "channel.create", "channel.update", "option.set", "user.create", "user.balance"],
            "{all:#?}"
        );
        let update = all.iter().find(|r| r.action == "channel.update").unwrap();
        assert_eq!(update.actor, "ada");
        assert!(update.auth.starts_with("admin_token:"), "{}", update.auth);
        assert_eq!(update.ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(update.before.as_ref().unwrap()["keys"], "changed");
        assert_eq!(update.after.as_ref().unwrap()["keys"], "changed");
        assert_eq!(update.before.as_ref().unwrap()["weight"], 1);
        assert_eq!(update.after.as_ref().unwrap()["weight"], 3);
        assert!(update.after.as_ref().unwrap().get("name").is_none(), "only what changed");
        let option = all.iter().find(|r| r.action == "option.set").unwrap();
        assert_eq!((option.actor.as_str(), option.auth.as_str(), option.target.as_str()), ("cli", "cli", "option:site_name"));
        assert_eq!(option.after.as_ref().unwrap()["value"], "Audited");
        let created = all.iter().find(|r| r.target == "user:alice" && r.action == "user.create").unwrap();
        assert_eq!(created.after.as_ref().unwrap()["email"], "changed", "personal data is not copied");
        let balance = all.iter().find(|r| r.action == "user.balance").unwrap();
        let ledger = service::ledger::entries(app.ctx(), &CLI, "alice", 10).await.unwrap();
        assert_eq!(balance.ledger_id, Some(ledger[0].id));
        assert_eq!(balance.after.as_ref().unwrap()["reason"], "welcome");

        let (status, listed) = api.get("/api/audit?action=channel.update").await;
        assert_eq!(status, 200, "{listed}");
        assert_eq!(listed["data"].as_array().unwrap().len(), 1);
        let everything = api.get("/api/audit").await.1.to_string();
        for secret in ["sk-first-secret-1111", "sk-second-secret-2222", "alice@example.test"] {
            assert!(!everything.contains(secret), "{secret} leaked: {everything}");
        }

        // Keys: a person's own are theirs, even an administrator's; an administrator's change
        // of someone else's is audited.
        let bob = app.create_account("bob", "user", PASSWORD).await;
        let ada = app.user("ada").await;
        let own = tollgate::service::tokens::CreateToken {
            username: "ada".into(),
            name: "laptop".into(),
            ..Default::default()
        };
        tollgate::service::tokens::create(app.ctx(), &tollgate::service::Caller::for_account(ada.id, ada.role), own)
            .await
            .unwrap();
        assert_eq!(rows(&app).await.len(), all.len() + 1, "only bob's account was audited");
        assert_eq!(bob.username, "bob");
        let (status, body) = api.post("/api/users/bob/tokens", json!({"name": "given"})).await;
        assert_eq!(status, 201, "{body}");
        let latest = rows(&app).await.remove(0);
        assert_eq!((latest.action.as_str(), latest.actor.as_str()), ("key.create", "ada"));
    }

}

db_test! {
    /// `tollgate audit verify` passes an untouched chain and names the first row edited or
    /// deleted behind its back; retention deletes the oldest rows and keeps the chain
    /// verifiable from the last one it deleted.
    async fn the_chain_catches_an_edit_and_survives_retention(db: TestDb) {
        let app = TestApp::spawn(db).await;
        for n in 0..5 {
            app.set_option("announcement", &format!("news {n}")).await;
        }
        let verified = tollgate(&app.db_url, &["audit", "verify"]).unwrap();
        assert!(verified.contains("intact") && verified.contains("5 row"), "{verified}");
        let listed = tollgate(&app.db_url, &["audit", "list", "--action", "option.set", "--json"]).unwrap();
        let listed: Value = serde_json::from_str(&listed).unwrap();
        assert_eq!(listed.as_array().unwrap().len(), 5);

        let db = raw(&app).await;
        let third = rows(&app).await.iter().find(|r| r.after.as_ref().unwrap()["value"] == "news 2").unwrap().id;
        db.execute_with(
            db.pool(),
            "UPDATE audit_log SET after_json = ? WHERE id = ?",
            &[Bind::Text(r#"{"value":"nothing to see"}"#.into()), Bind::Int(third)],
        )
        .await
        .unwrap();
        let refused = tollgate(&app.db_url, &["audit", "verify"]).unwrap_err();
        assert!(refused.contains(&format!("row {third}")), "{refused}");
        db.execute_with(
            db.pool(),
            "UPDATE audit_log SET after_json = ? WHERE id = ?",
            &[Bind::Text(r#"{"value":"news 2"}"#.into()), Bind::Int(third)],
        )
        .await
        .unwrap();
        tollgate(&app.db_url, &["audit", "verify"]).unwrap();
        db.execute_with(db.pool(), "DELETE FROM audit_log WHERE id = ?", &[Bind::Int(third)])
            .await
            .unwrap();
        let refused = tollgate(&app.db_url, &["audit", "verify"]).unwrap_err();
        assert!(refused.contains(&format!("row {}", third + 1)), "{refused}");

        // Retention: the two oldest rows are past it; what is left still verifies.
        let fresh = TestApp::spawn(crate::helpers::TestDb::sqlite().await).await;
        for n in 0..4 {
            fresh.set_option("announcement", &format!("old {n}")).await;
        }
        let db = raw(&fresh).await;
        let oldest: Vec<i64> = rows(&fresh).await.iter().rev().take(2).map(|r| r.id).collect();
        for id in &oldest {
            db.execute_with(db.pool(), "UPDATE audit_log SET at = 0 WHERE id = ?", &[Bind::Int(*id)])
                .await
                .unwrap();
        }
        // Moving `at` changed those rows; retention deletes them before anyone checks.
        let deleted = service::audit::purge_older_than(fresh.ctx(), 1).await.unwrap();
        assert_eq!(deleted, 2);
        assert_eq!(rows(&fresh).await.len(), 2);
        let verified = tollgate(&fresh.db_url, &["audit", "verify"]).unwrap();
        assert!(verified.contains("2 row"), "{verified}");
    }

}

db_test! {
    /// The console's audit page: administrators see the rows with their filters, a bad time
    /// marks its field, the export holds every matching row as JSON lines; others get 404.
    async fn the_console_shows_and_exports_the_log(db: TestDb) {
        let app = TestApp::spawn(db).await;
        app.create_account("ada", "admin", PASSWORD).await;
        app.create_account("alice", "user", PASSWORD).await;
        app.create_group("gold", "1.5").await;
        app.set_option("announcement", "hello").await;
        let admin = Browser::new(&app);
        admin.sign_in("ada", PASSWORD).await;
        let page = admin.get("/admin/audit").await;
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(page.contains("group.create") && page.contains("option.set"), "{}", page.body);
        let filtered = admin.get("/admin/audit?action=group.create").await;
        assert!(filtered.contains("group:gold") && !filtered.contains("option:announcement"), "{}", filtered.body);
        let wrong = admin.get("/admin/audit?from=last+week").await;
        assert_eq!(wrong.status, 422);
        assert!(wrong.field_error("from").is_some(), "{}", wrong.body);
        assert_eq!(wrong.input("from").as_deref(), Some("last week"));
        let export = admin.get("/admin/audit.jsonl?actor=cli").await;
        assert_eq!(export.status, 200);
        let lines: Vec<Value> = export.body.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert!(lines.len() >= 2 && lines.iter().all(|l| l["actor"] == "cli"), "{lines:?}");
        assert!(lines.iter().all(|l| l["hash"].as_str().is_some_and(|h| h.len() == 64)));

        let alice = Browser::new(&app);
        alice.sign_in("alice", PASSWORD).await;
        for path in ["/admin/audit", "/admin/audit.jsonl"] {
            let refused = alice.get(path).await;
            assert_eq!(refused.status, 404, "{path}");
            assert!(!refused.contains("group:gold"));
        }
    }
}

db_test! {
    /// The one write path refuses an administrator's change that describes nothing for the
    /// log, and nothing of it stays; the same change made by the server itself passes.
    async fn a_change_without_its_audit_row_is_not_made(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let refused = app
            .ctx()
            .write(&CLI, async |tx| {
                Ok(tollgate::service::db::options::set(tx, "announcement", "unlogged").await?)
            })
            .await;
        assert!(refused.is_err(), "{refused:?}");
        let options = service::options::list(app.ctx(), &CLI).await.unwrap();
        let announcement = options.iter().find(|o| o.name == "announcement").unwrap();
        assert_eq!(announcement.value, "", "rolled back");
        app.ctx()
            .write(&tollgate::service::Caller::System, async |tx| {
                Ok(tollgate::service::db::options::set(tx, "announcement", "the server's").await?)
            })
            .await
            .unwrap();
        assert!(rows(&app).await.is_empty(), "the server's own changes are not audited");
    }
}
