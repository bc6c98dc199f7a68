//! The console's users, codes, orders and admin tokens over real HTTP: who may see and change
//! what, forms that come back with their problems, changes made once, and the audit rows they
//! leave.

use serde_json::{Value, json};

use crate::helpers::stripe::{FakeStripe, deliver, event};
use crate::helpers::upstream::FakeUpstream;
use crate::helpers::{Api, Browser, CLI, TestApp, admin_token, chat_body, db_test};
use tollgate::domain::kinds::{OrderStatus, Role, Status};
use tollgate::records::audit::{AuditFilter, AuditRow};
use tollgate::service;

const PASSWORD: &str = "correct horse battery";

async fn audit_rows(app: &TestApp, action: &str) -> Vec<AuditRow> {
    service::audit::list(
        app.ctx(),
        &CLI,
        &AuditFilter {
            action: Some(action.into()),
            limit: 100,
            ..AuditFilter::default()
        },
    )
    .await
    .unwrap()
}

async fn signed_in<'a>(app: &'a TestApp, name: &str) -> Browser<'a> {
    let browser = Browser::new(app);
    let answer = browser.sign_in(name, PASSWORD).await;
    assert_eq!(answer.status, 303, "{name} signs in: {}", answer.body);
    browser
}

/// The ledger rows of an account.
async fn ledger_of(app: &TestApp, username: &str) -> Vec<tollgate::records::ledger::Entry> {
    service::ledger::entries(app.ctx(), &CLI, username, 100)
        .await
        .unwrap()
}

/// The codes of a CSV answer (its first column, past the header).
fn csv_codes(body: &str) -> Vec<String> {
    body.lines()
        .skip(1)
        .filter(|line| !line.is_empty())
        .map(|line| line.split(',').next().unwrap().to_string())
        .collect()
}

db_test! {
    /// Every page of users, codes, orders and admin tokens is a not-found page for a plain user
    /// (nothing of the console in it) and a page for administrators and root; making an
    /// administrator is root's alone, in the console as in `/api`.
    async fn people_pages_are_for_administrators_and_roles_for_root(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let alice = app.create_account("alice", "user", PASSWORD).await;
        app.create_account("ada", "admin", PASSWORD).await;
        app.create_account("ruth", "root", PASSWORD).await;
        let pages = [
            "/admin/users".to_string(),
            format!("/admin/users/{}", alice.id),
            "/admin/users?q=ali".to_string(),
            "/admin/codes".to_string(),
            "/admin/orders".to_string(),
            "/admin/tokens".to_string(),
        ];

        let user = signed_in(&app, "alice").await;
        for path in &pages {
            let refused = user.get(path).await;
            assert_eq!(refused.status, 404, "{path}: {}", refused.body);
            assert!(!refused.body.contains("console-nav"), "{path}: {}", refused.body);
        }
        let posted = user.post(&format!("/admin/users/{}/balance", alice.id), &[("usd", "5"), ("reason", "mine")]).await;
        assert_eq!(posted.status, 404);
        assert_eq!(app.user("alice").await.quota, 0);

        let ada = signed_in(&app, "ada").await;
        let ruth = signed_in(&app, "ruth").await;
        for browser in [&ada, &ruth] {
            for path in &pages {
                let page = browser.get(path).await;
                assert_eq!(page.status, 200, "{path}: {}", page.body);
                assert!(page.body.contains("console-nav"), "{path}");
            }
        }
        let found = ada.get("/admin/users?q=ALI").await;
        assert!(found.contains("/admin/users/") && found.contains(">alice<"), "{}", found.body);
        assert!(!found.contains(">ruth<"), "{}", found.body);
        let by_id = ada.get(&format!("/admin/users?q={}", alice.id)).await;
        assert!(by_id.contains(">alice<"), "{}", by_id.body);

        // The role form is root's: an administrator is refused (403) and nothing changes.
        let role_path = format!("/admin/users/{}/role", alice.id);
        ada.get(&format!("/admin/users/{}", alice.id)).await;
        let refused = ada.post(&role_path, &[("role", "admin")]).await;
        assert_eq!(refused.status, 403, "{}", refused.body);
        assert_eq!(app.user("alice").await.role, Role::User);
        let api = Api { token: admin_token(&app, "ops", "admin").await, app: &app };
        let (status, _) = api.patch("/api/users/alice", json!({"role": "admin"})).await;
        assert_eq!(status, 403);
        // Nor may an administrator hand out a token acting as another administrator.
        ada.get("/admin/tokens").await;
        let refused = ada.post("/admin/tokens", &[("name", "theirs"), ("user", "ruth")]).await;
        assert_eq!(refused.status, 403, "{}", refused.body);

        let root_page = ruth.get(&format!("/admin/users/{}", alice.id)).await;
        assert!(root_page.contains("id=\"role\""), "root sees the role form");
        let made = ruth.post(&role_path, &[("role", "admin")]).await;
        assert_eq!(made.status, 303, "{}", made.body);
        assert_eq!(app.user("alice").await.role, Role::Admin);
        let changed = audit_rows(&app, "user.update").await;
        let row = changed.iter().find(|r| r.target == "user:alice").expect("a user.update row");
        assert_eq!(row.before.as_ref().unwrap()["role"], "user");
        assert_eq!(row.after.as_ref().unwrap()["role"], "admin");
        assert_eq!(row.actor, "ruth");
    }
}

db_test! {
    /// The balance form changes the balance once however often it is sent (its idempotency
    /// key), writes one `adjustment` ledger row and a `user.balance` audit row that names it;
    /// without a reason it comes back 422 with the field marked and what was typed kept, as
    /// `/api` refuses it.
    async fn a_balance_change_happens_once_and_says_why(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let bob = app.create_account("bob", "user", PASSWORD).await;
        app.create_account("ada", "admin", PASSWORD).await;
        let ada = signed_in(&app, "ada").await;
        let path = format!("/admin/users/{}/balance", bob.id);

        let page = ada.get(&format!("/admin/users/{}", bob.id)).await;
        let key = page.input("idempotency_key").expect("the form's one-time key");
        let missing = ada.post(&path, &[("usd", "2.50"), ("reason", " "), ("idempotency_key", &key)]).await;
        assert_eq!(missing.status, 422, "{}", missing.body);
        assert!(missing.field_error("reason").is_some(), "{}", missing.body);
        assert!(missing.contains("id=\"errors\""));
        assert_eq!(missing.input("usd").as_deref(), Some("2.50"));
        assert_eq!(missing.input("idempotency_key").as_deref(), Some(key.as_str()));
        assert_eq!(app.user("bob").await.quota, 0);
        let api = Api { token: admin_token(&app, "ops", "admin").await, app: &app };
        let (status, error) = api.post("/api/users/bob/quota", json!({"usd": "2.50"})).await;
        assert_eq!(status, 400, "{error}");
        assert_eq!(error["error"]["fields"][0]["field"], "reason");

        let fields = [("usd", "2.50"), ("reason", "goodwill"), ("idempotency_key", key.as_str())];
        let first = ada.post(&path, &fields).await;
        assert_eq!(first.status, 303, "{}", first.body);
        assert_eq!(first.location.as_deref(), Some(format!("/admin/users/{}", bob.id).as_str()));
        let again = ada.post(&path, &fields).await;
        assert_eq!(again.status, 303, "{}", again.body);
        let bob_now = app.user("bob").await;
        assert_eq!(bob_now.quota, TestApp::units(2.5));
        let rows = ledger_of(&app, "bob").await;
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(rows[0].kind.as_str(), "adjustment");
        assert_eq!(rows[0].reason, "goodwill");
        let shown = ada.get(&format!("/admin/users/{}", bob.id)).await;
        assert!(shown.contains("$2.50"), "{}", shown.body);
        assert!(shown.contains("goodwill"));
        assert!(shown.contains("<td>ada</td>") && !shown.contains("admin:"), "the entry's author by name: {}", shown.body);

        // A negative amount takes back.
        let page = ada.get(&format!("/admin/users/{}", bob.id)).await;
        let key = page.input("idempotency_key").unwrap();
        let back = ada.post(&path, &[("usd", "-1"), ("reason", "mistake"), ("idempotency_key", &key)]).await;
        assert_eq!(back.status, 303, "{}", back.body);
        assert_eq!(app.user("bob").await.quota, TestApp::units(1.5));

        // A sign-in older than ten minutes proves who it is again before the balance moves.
        app.age_sign_ins_of("ada").await;
        let page = ada.get(&format!("/admin/users/{}", bob.id)).await;
        let key = page.input("idempotency_key").unwrap();
        let stale = ada.post(&path, &[("usd", "9"), ("reason", "stale"), ("idempotency_key", &key)]).await;
        assert_eq!(stale.status, 303, "{}", stale.body);
        let reauth = stale.location.clone().unwrap_or_default();
        assert_eq!(reauth, format!("/reauth?next={path}"));
        assert_eq!(app.user("bob").await.quota, TestApp::units(1.5));
        // The password again: a wrong one is marked; the right one brings the form back with
        // what was typed, to send with one press.
        let asked = ada.get(&reauth).await;
        assert_eq!(asked.status, 200, "{}", asked.body);
        let wrong = ada.post("/reauth", &[("password", "not the password"), ("next", &path)]).await;
        assert_eq!(wrong.status, 422, "{}", wrong.body);
        assert!(wrong.field_error("password").is_some(), "{}", wrong.body);
        let proven = ada.post("/reauth", &[("password", PASSWORD), ("next", &path)]).await;
        assert_eq!(proven.status, 303, "{}", proven.body);
        assert_eq!(proven.location.as_deref(), Some("/reauth/resume"));
        let resumed = ada.get("/reauth/resume").await;
        assert_eq!(resumed.status, 200, "{}", resumed.body);
        assert!(resumed.contains(&format!("action=\"{path}\"")), "{}", resumed.body);
        let kept: Vec<(String, String)> = ["usd", "reason", "idempotency_key"]
            .iter()
            .map(|name| (name.to_string(), resumed.input(name).unwrap_or_default()))
            .collect();
        assert_eq!((kept[0].1.as_str(), kept[1].1.as_str()), ("9", "stale"), "what was typed is kept");
        let fields: Vec<(&str, &str)> = kept.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        let sent = ada.post(&path, &fields).await;
        assert_eq!(sent.status, 303, "{}", sent.body);
        assert_eq!(app.user("bob").await.quota, TestApp::units(10.5));

        let audited = audit_rows(&app, "user.balance").await;
        assert_eq!(audited.len(), 3, "{audited:?}");
        let goodwill = audited.iter().find(|r| r.after.as_ref().unwrap()["reason"] == "goodwill").unwrap();
        assert_eq!(goodwill.target, "user:bob");
        assert_eq!(goodwill.before.as_ref().unwrap()["quota"], 0);
        assert_eq!(goodwill.after.as_ref().unwrap()["quota"], TestApp::units(2.5));
        assert_eq!(goodwill.ledger_id, Some(rows[0].id));
    }
}

db_test! {
    /// Disabling an account stops its keys on /v1 and signs it out at once; an administrator
    /// can end one of a person's sessions, and `/api` lists and ends them too.
    async fn disabling_a_user_stops_keys_and_sessions(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let upstream = FakeUpstream::chat().await;
        app.add_channel("main", &upstream, "gpt-4o-mini").await;
        app.price("gpt-4o-mini", "0.15", "0.6").await;
        let carl = app.create_account("carl", "user", PASSWORD).await;
        service::users::change_quota(app.ctx(), &CLI, "carl", service::users::QuotaChange {
            usd: Some("5".into()), reason: Some("to spend".into()), ..Default::default()
        }).await.unwrap();
        app.create_account("ada", "admin", PASSWORD).await;
        app.reload().await;
        let key = app.key_for("carl").await;
        assert_eq!(app.chat(&key, chat_body("gpt-4o-mini")).await.status(), 200);

        // One of carl's two sessions ended by an administrator: that browser is signed out.
        let laptop = signed_in(&app, "carl").await;
        let phone = signed_in(&app, "carl").await;
        let ada = signed_in(&app, "ada").await;
        app.wait_for_logs(1).await;
        let page = ada.get(&format!("/admin/users/{}", carl.id)).await;
        assert!(page.contains("/sessions/end"), "{}", page.body);
        let request = app.logs().await[0].id;
        assert!(page.contains(&format!("href=\"/admin/logs/{request}\"")), "a request links to its page: {}", page.body);
        assert!(page.contains("href=\"/admin/logs?user=carl\""), "{}", page.body);
        let sessions = service::sessions::list_of(app.ctx(), &CLI, "carl").await.unwrap();
        assert_eq!(sessions.len(), 2);
        let api = Api { token: admin_token(&app, "ops", "admin").await, app: &app };
        let (status, listed) = api.get("/api/users/carl/sessions").await;
        assert_eq!(status, 200);
        assert_eq!(listed["data"].as_array().unwrap().len(), 2);
        let ended = ada.post(&format!("/admin/users/{}/sessions/end", carl.id), &[("id", &sessions[0].id)]).await;
        assert_eq!(ended.status, 303, "{}", ended.body);
        let signed_out = [laptop.get("/dashboard").await.status, phone.get("/dashboard").await.status];
        assert_eq!(signed_out.iter().filter(|s| **s == 303).count(), 1, "{signed_out:?}");
        assert_eq!(service::sessions::list_of(app.ctx(), &CLI, "carl").await.unwrap().len(), 1);
        let (status, _) = api.delete(&format!("/api/users/carl/sessions/{}", sessions[0].id)).await;
        assert_eq!(status, 404, "an ended session is gone");

        // Disabled: the key is refused on the next request, and no session is left.
        let tablet = signed_in(&app, "carl").await;
        ada.get(&format!("/admin/users/{}", carl.id)).await;
        let disabled = ada.post(&format!("/admin/users/{}", carl.id), &[("group", "default"), ("status", "disabled"), ("display_name", "")]).await;
        assert_eq!(disabled.status, 303, "{}", disabled.body);
        assert_eq!(app.user("carl").await.status, Status::Disabled);
        let refused = app.chat(&key, chat_body("gpt-4o-mini")).await;
        assert_eq!(refused.status(), 401);
        assert_eq!(tablet.get("/dashboard").await.status, 303);
        assert!(service::sessions::list_of(app.ctx(), &CLI, "carl").await.unwrap().is_empty());
        let row = audit_rows(&app, "user.update").await.into_iter().find(|r| r.target == "user:carl").unwrap();
        assert_eq!(row.before.as_ref().unwrap()["status"], "active");
        assert_eq!(row.after.as_ref().unwrap()["status"], "disabled");
        assert!(!audit_rows(&app, "user.sessions_end").await.is_empty());

        // A group that does not exist comes back marked, what was typed kept.
        let wrong = ada.post(&format!("/admin/users/{}", carl.id), &[("group", "nope"), ("status", "active"), ("display_name", "Carl C")]).await;
        assert_eq!(wrong.status, 422, "{}", wrong.body);
        assert!(wrong.field_error("group").is_some(), "{}", wrong.body);
        assert_eq!(wrong.input("display_name").as_deref(), Some("Carl C"));

        // `/api` ends every session of an account; only root signs out an administrator.
        let _second = signed_in(&app, "ada").await;
        assert_eq!(api.delete("/api/users/ada/sessions").await.0, 403);
        assert_eq!(ada.get("/admin/users").await.status, 200);
        let root = Api { token: admin_token(&app, "rooty", "root").await, app: &app };
        let (status, answer) = root.delete("/api/users/ada/sessions").await;
        assert_eq!(status, 200, "{answer}");
        assert!(answer["ended"].as_u64().unwrap() >= 2, "{answer}");
        assert_eq!(ada.get("/admin/users").await.status, 303);
    }
}

db_test! {
    /// A batch of codes is shown once: on the page that answers the form, or as a CSV file in
    /// that very answer; no later page shows a code. The list counts each batch's codes by
    /// state with who redeemed each; one code or a whole batch is disabled.
    async fn codes_are_shown_once_and_listed_by_batch(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let dora = app.create_account("dora", "user", PASSWORD).await;
        app.create_account("ada", "admin", PASSWORD).await;
        let ada = signed_in(&app, "ada").await;
        ada.get("/admin/codes").await;

        let wrong = ada.post("/admin/codes", &[("count", "0"), ("usd", "lots"), ("uses", "1"), ("name", "spring"), ("output", "page")]).await;
        assert_eq!(wrong.status, 422, "{}", wrong.body);
        assert!(wrong.field_error("count").is_some() && wrong.field_error("usd").is_some(), "{}", wrong.body);
        assert_eq!(wrong.input("name").as_deref(), Some("spring"));

        let shown = ada.post("/admin/codes", &[("count", "3"), ("usd", "2"), ("uses", "1"), ("expires", ""), ("name", "spring"), ("output", "page")]).await;
        assert_eq!(shown.status, 201, "{}", shown.body);
        let codes: Vec<&str> = shown.body.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .filter(|w| w.starts_with("tgc-") && w.len() > 20).collect();
        assert_eq!(codes.len(), 3, "{}", shown.body);
        let later = ada.get("/admin/codes?batch=spring").await;
        assert_eq!(later.status, 200);
        for code in &codes {
            assert!(!later.contains(code), "a code is shown once");
        }

        let csv = ada.post("/admin/codes", &[("count", "4"), ("usd", "1.5"), ("uses", "1"), ("name", "fair"), ("output", "csv")]).await;
        assert_eq!(csv.status, 200, "{}", csv.body);
        assert!(csv.headers["content-type"].to_str().unwrap().starts_with("text/csv"));
        let disposition = csv.headers["content-disposition"].to_str().unwrap();
        assert!(disposition.starts_with("attachment") && disposition.contains(".csv"), "{disposition}");
        assert!(csv.body.starts_with("code,usd,uses,expires,name"), "{}", csv.body);
        let from_csv = csv_codes(&csv.body);
        assert_eq!(from_csv.len(), 4, "{}", csv.body);
        let credited = service::codes::redeem(app.ctx(), dora.id, &from_csv[0]).await.unwrap();
        assert_eq!(credited, TestApp::units(1.5));
        assert_eq!(app.user("dora").await.quota, TestApp::units(1.5));

        let listed = ada.get("/admin/codes").await;
        assert!(listed.contains("spring") && listed.contains("fair"), "{}", listed.body);
        let batch = ada.get("/admin/codes?batch=fair").await;
        assert!(batch.contains(">dora"), "who redeemed: {}", batch.body);
        for code in &from_csv {
            assert!(!batch.contains(code.as_str()));
        }

        // Disable one code, then the rest of the batch.
        let spring = service::codes::list(app.ctx(), &CLI, Some("spring"), None).await.unwrap();
        let one = spring[0].id.to_string();
        let disabled = ada.post("/admin/codes/disable", &[("id", &one), ("name", "spring")]).await;
        assert_eq!(disabled.status, 303, "{}", disabled.body);
        assert_eq!(disabled.location.as_deref(), Some("/admin/codes?batch=spring"));
        let state = service::codes::list(app.ctx(), &CLI, Some("spring"), Some("disabled")).await.unwrap();
        assert_eq!(state.len(), 1);
        assert!(service::codes::redeem(app.ctx(), dora.id, codes.iter().find(|c| c.starts_with(&spring[0].prefix)).unwrap()).await.is_err());
        ada.post("/admin/codes/disable", &[("name", "spring")]).await;
        let state = service::codes::list(app.ctx(), &CLI, Some("spring"), Some("disabled")).await.unwrap();
        assert_eq!(state.len(), 3);
        let fair = service::codes::list(app.ctx(), &CLI, Some("fair"), Some("unused")).await.unwrap();
        assert_eq!(fair.len(), 3, "another batch is untouched");

        // A code of several uses lists every account that redeemed it, newest first.
        let gift = ada.post("/admin/codes", &[("count", "1"), ("usd", "1"), ("uses", "3"), ("name", "gift"), ("output", "csv")]).await;
        let gift = csv_codes(&gift.body).remove(0);
        for name in ["gus", "hal", "ivy"] {
            let account = app.create_account(name, "user", PASSWORD).await;
            service::codes::redeem(app.ctx(), account.id, &gift).await.unwrap();
        }
        let batch = ada.get("/admin/codes?batch=gift").await;
        assert!(batch.contains(">ivy") && batch.contains("and 2 others"), "{}", batch.body);
        let id = service::codes::list(app.ctx(), &CLI, Some("gift"), None).await.unwrap()[0].id;
        let page = ada.get(&format!("/admin/codes/{id}")).await;
        assert_eq!(page.status, 200, "{}", page.body);
        let order: Vec<usize> = ["ivy", "hal", "gus"].iter().map(|n| page.body.find(&format!(">{n}<")).unwrap()).collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "newest first: {}", page.body);
        assert!(page.contains("0 / 3") && page.contains("$1.00"), "{}", page.body);
        assert!(page.contains("· ada<") && !page.contains("admin:"), "made by: {}", page.body);
        assert!(!page.contains(&gift), "the code itself is never shown again");
        let zh = ada.get(&format!("/admin/codes/{id}?lang=zh-CN")).await;
        assert!(zh.contains("兑换记录"), "{}", zh.body);
        assert_eq!(ada.get("/admin/codes/999999").await.status, 404);
        assert_eq!(ada.get("/admin/codes/abc").await.status, 404);
        // `/api/codes/{id}` gives the same list; `/api/users?q=` finds as the console's search.
        let api = Api { token: admin_token(&app, "ops", "admin").await, app: &app };
        let (status, shown) = api.get(&format!("/api/codes/{id}")).await;
        assert_eq!(status, 200, "{shown}");
        let names: Vec<&str> = shown["redemptions"].as_array().unwrap().iter().map(|r| r["user"].as_str().unwrap()).collect();
        assert_eq!(names, ["ivy", "hal", "gus"], "{shown}");
        assert_eq!((shown["code"]["uses_left"].as_i64(), shown["more"].as_i64()), (Some(0), Some(0)), "{shown}");
        assert!(!shown.to_string().contains(&gift), "the code itself is never shown again");
        assert_eq!(api.get("/api/codes/999999").await.0, 404);
        let (_, found) = api.get("/api/users?q=hal").await;
        let found: Vec<&str> = found["data"].as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap()).collect();
        assert_eq!(found, ["hal"]);
        let dora_page = signed_in(&app, "dora").await.get(&format!("/admin/codes/{id}")).await;
        assert_eq!(dora_page.status, 404);
        assert!(!dora_page.contains("ivy"), "{}", dora_page.body);

        let generated = audit_rows(&app, "code.generate").await;
        assert_eq!(generated.len(), 3);
        assert!(generated.iter().any(|r| r.target == "code_batch:spring" && r.after.as_ref().unwrap()["count"] == 3));
        assert_eq!(audit_rows(&app, "code.disable").await.len(), 2);
    }
}

db_test! {
    /// Orders are found by id, user, Stripe session or payment id and state; a held order is
    /// credited once, with a required reason, and the audit log keeps it.
    async fn held_orders_are_found_and_credited_with_a_reason(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let fake = FakeStripe::start().await;
        fake.configure(&app).await;
        app.create_user("fay", "0").await;
        app.create_account("ada", "admin", PASSWORD).await;
        let fay = app.user("fay").await;
        let order = service::topups::start(app.ctx(), &fay, "10", "test-request-key-00000001", "https://portal.example").await.unwrap();
        let session_id = order.session_id.clone().unwrap();
        let mut session = fake.pay(&session_id);
        session["amount_total"] = json!(100);
        let (_, answer) = deliver(&app, &event("evt_people_1", "checkout.session.completed", session.clone())).await;
        assert_eq!(answer["outcome"], "held");
        let payment = session["payment_intent"].as_str().unwrap().to_string();

        let ada = signed_in(&app, "ada").await;
        let link = format!("/admin/orders/{}", order.id);
        for query in [order.id.to_string(), "fay".into(), session_id.clone(), payment.clone()] {
            let found = ada.get(&format!("/admin/orders?q={query}")).await;
            assert_eq!(found.status, 200, "{}", found.body);
            assert!(found.contains(&link), "{query}: {}", found.body);
        }
        assert!(ada.get("/admin/orders?status=held").await.contains(&link));
        assert!(!ada.get("/admin/orders?status=paid").await.contains(&link));
        assert!(!ada.get("/admin/orders?q=nobody").await.contains(&link));
        assert_eq!(ada.get("/admin/orders?status=lost").await.status, 422);
        // `/api/orders?q=` finds what the page finds.
        let api = Api { token: admin_token(&app, "ops", "admin").await, app: &app };
        for query in [order.id.to_string(), "fay".into(), session_id.clone(), payment.clone()] {
            let (status, found) = api.get(&format!("/api/orders?q={query}")).await;
            assert_eq!(status, 200, "{found}");
            assert_eq!(found["data"][0]["id"], order.id, "{query}: {found}");
        }
        let (_, none) = api.get("/api/orders?q=nobody").await;
        assert_eq!(none["data"].as_array().map(Vec::len), Some(0), "{none}");
        let (_, held) = api.get("/api/orders?q=fay&status=paid").await;
        assert_eq!(held["data"].as_array().map(Vec::len), Some(0), "the status filter applies: {held}");

        let page = ada.get(&link).await;
        assert!(page.contains("evt_people_1"), "its events: {}", page.body);
        assert!(page.contains(&format!("{link}/credit")));
        let missing = ada.post(&format!("{link}/credit"), &[("reason", "")]).await;
        assert_eq!(missing.status, 422, "{}", missing.body);
        assert!(missing.field_error("reason").is_some(), "{}", missing.body);
        assert_eq!(app.user("fay").await.quota, 0);

        let credited = ada.post(&format!("{link}/credit"), &[("reason", "checked on Stripe")]).await;
        assert_eq!(credited.status, 303, "{}", credited.body);
        let now = service::topups::find(app.ctx(), &CLI, order.id).await.unwrap();
        assert_eq!(now.status, OrderStatus::Paid);
        assert_eq!(app.user("fay").await.quota, order.quota);
        let twice = ada.post(&format!("{link}/credit"), &[("reason", "again")]).await;
        assert_eq!(twice.status, 409, "{}", twice.body);
        assert_eq!(app.user("fay").await.quota, order.quota);

        // Paid now: refunded through Stripe, again with a required reason.
        let page = ada.get(&link).await;
        assert!(page.contains(&format!("{link}/refund")), "{}", page.body);
        let missing = ada.post(&format!("{link}/refund"), &[("usd", ""), ("reason", "")]).await;
        assert_eq!(missing.status, 422, "{}", missing.body);
        assert!(missing.field_error("reason").is_some(), "{}", missing.body);
        assert!(!fake.received().iter().any(|r| r.path == "/v1/refunds"));
        let refunded = ada.post(&format!("{link}/refund"), &[("usd", ""), ("reason", "asked by the payer")]).await;
        assert_eq!(refunded.status, 303, "{}", refunded.body);
        let asked: Vec<_> = fake.received().into_iter().filter(|r| r.path == "/v1/refunds").collect();
        assert_eq!(asked.len(), 1);
        assert_eq!(asked[0].field("payment_intent"), Some(payment.as_str()));
        let refund_rows = audit_rows(&app, "order.refund").await;
        assert_eq!(refund_rows.len(), 1);
        assert_eq!(refund_rows[0].after.as_ref().unwrap()["reason"], "asked by the payer");

        let rows = audit_rows(&app, "order.credit").await;
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].target, format!("order:{}", order.id));
        assert_eq!(rows[0].before.as_ref().unwrap()["status"], "held");
        assert_eq!(rows[0].after.as_ref().unwrap()["reason"], "checked on Stripe");
        assert!(rows[0].ledger_id.is_some());
    }
}

db_test! {
    /// An admin token is shown once when made (in the console or `/api`), listed with its last
    /// use, and refused by `/api` as soon as it is revoked.
    async fn admin_tokens_are_shown_once_and_revoked(db: TestDb) {
        let app = TestApp::spawn(db).await;
        app.create_account("ada", "admin", PASSWORD).await;
        let ada = signed_in(&app, "ada").await;
        ada.get("/admin/tokens").await;

        let empty = ada.post("/admin/tokens", &[("name", ""), ("user", "")]).await;
        assert_eq!(empty.status, 422, "{}", empty.body);
        assert!(empty.field_error("name").is_some(), "{}", empty.body);

        let made = ada.post("/admin/tokens", &[("name", "deploy"), ("user", "")]).await;
        assert_eq!(made.status, 201, "{}", made.body);
        let start = made.body.find("id=\"new-token\"").expect("the new token");
        let from = made.body[start..].find('>').unwrap() + start + 1;
        let to = made.body[from..].find('<').unwrap() + from;
        let token = made.body[from..to].to_string();
        assert!(token.starts_with("tga-"), "{token}");
        let listed = ada.get("/admin/tokens").await;
        assert!(listed.contains("deploy") && !listed.contains(&token), "{}", listed.body);

        let api = Api { token: token.clone(), app: &app };
        let (status, tokens) = api.get("/api/admin-tokens").await;
        assert_eq!(status, 200, "{tokens}");
        let entry = tokens["data"].as_array().unwrap().iter().find(|t| t["name"] == "deploy").unwrap().clone();
        assert_eq!(entry["user"], "ada");
        assert!(entry["last_used_at"].is_string(), "its use is recorded: {entry}");
        assert!(!tokens.to_string().contains(&token), "never shown again");
        let listed = ada.get("/admin/tokens").await;
        assert!(!listed.contains("muted\">Never<"), "its last use is shown: {}", listed.body);

        // Made through `/api`: shown in the answer that makes it; revoked there too.
        let (status, created) = api.post("/api/admin-tokens", json!({"name": "ci"})).await;
        assert_eq!(status, 201, "{created}");
        let ci = created["token"].as_str().unwrap().to_string();
        let ci_id = created["admin_token"]["id"].as_i64().unwrap();
        let ci_api = Api { token: ci.clone(), app: &app };
        assert_eq!(ci_api.get("/api/users").await.0, 200);
        assert_eq!(api.delete(&format!("/api/admin-tokens/{ci_id}")).await.0, 204);
        assert_eq!(ci_api.get("/api/users").await.0, 401);

        let id = entry["id"].as_i64().unwrap();
        ada.get("/admin/tokens").await;
        let revoked = ada.post(&format!("/admin/tokens/{id}/revoke"), &[]).await;
        assert_eq!(revoked.status, 303, "{}", revoked.body);
        assert_eq!(api.get("/api/users").await.0, 401);
        assert!(!ada.get("/admin/tokens").await.contains("deploy"));

        let created = audit_rows(&app, "admin_token.create").await;
        assert_eq!(created.len(), 2);
        assert!(created.iter().any(|r| r.after.as_ref().unwrap()["name"] == "deploy"));
        let rows = audit_rows(&app, "admin_token.revoke").await;
        let deploy = rows.iter().find(|r| r.target == format!("admin_token:{id}")).unwrap();
        assert_eq!(deploy.before.as_ref().unwrap()["name"], "deploy");
        assert_eq!(deploy.before.as_ref().unwrap()["user"], "ada");
        let revoked: Vec<Value> = audit_rows(&app, "admin_token.revoke").await.into_iter().map(|r| json!(r.target)).collect();
        assert!(revoked.contains(&json!(format!("admin_token:{id}"))), "{revoked:?}");
        assert!(revoked.contains(&json!(format!("admin_token:{ci_id}"))), "{revoked:?}");
    }
}
