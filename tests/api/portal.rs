//! The portal over real HTTP: first run, registering, signing in and out, keys made and used
//! on /v1, what another person cannot reach, forms that come back marked, the language.

use crate::helpers::{Browser, CLI, FakeUpstream, TestApp, chat_body, db_test};
use tollgate::service;
use tollgate::service::users::UpdateUser;

const PASSWORD: &str = "correct horse battery";

async fn serving(db: crate::helpers::TestDb) -> (TestApp, FakeUpstream) {
    let app = TestApp::spawn(db).await;
    let upstream = FakeUpstream::chat().await;
    app.add_channel("main", &upstream, "gpt-4o-mini").await;
    app.price("gpt-4o-mini", "1", "1").await;
    (app, upstream)
}

db_test! {
    /// With no administrator, the printed link makes the root account once: a wrong token
    /// or a second use is refused, a form with mistakes comes back with them marked.
    async fn the_first_run_link_makes_the_root_account_once(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let link = app.setup_link.clone().expect("a first-run link while no admin exists");
        let path = link.split_once(&app.addr.to_string()).unwrap().1.to_string();
        assert!(path.starts_with("/setup?token=setup-"), "{path}");
        let browser = Browser::new(&app);
        assert_eq!(browser.get("/setup?token=setup-wrong").await.status, 404);
        let form = browser.get(&path).await;
        assert_eq!(form.status, 200, "{}", form.body);
        let token = form.input("token").unwrap();

        let wrong = browser
            .post("/setup", &[("token", &token), ("username", "boss"), ("password", PASSWORD), ("password_confirm", "different words")])
            .await;
        assert_eq!(wrong.status, 422);
        assert!(wrong.field_error("password_confirm").is_some(), "{}", wrong.body);
        assert_eq!(wrong.input("username").as_deref(), Some("boss"), "what was typed is kept");

        let made = browser
            .post("/setup", &[("token", &token), ("username", "boss"), ("password", PASSWORD), ("password_confirm", PASSWORD)])
            .await;
        assert_eq!(made.status, 303, "{}", made.body);
        assert_eq!(made.location.as_deref(), Some("/admin"), "root runs the site from the console");
        let dashboard = browser.get("/dashboard").await;
        assert_eq!(dashboard.status, 200);
        let boss = app.user("boss").await;
        assert_eq!(boss.role.as_str(), "root");

        // Spent: the link and the page are gone, for this person and anyone else.
        assert_eq!(Browser::new(&app).get(&path).await.status, 404);
        let again = Browser::new(&app);
        again.get("/login").await;
        let replay = again
            .post("/setup", &[("token", &token), ("username", "second"), ("password", PASSWORD), ("password_confirm", PASSWORD)])
            .await;
        assert_eq!(replay.status, 404);
        assert!(tollgate::service::users::get(app.ctx(), &CLI, "second").await.is_err());
    }
}

db_test! {
    /// A person registers, makes a key, calls /v1 with it, sees the request and the balance
    /// drop on the dashboard, disables and deletes the key, and signs out.
    async fn a_person_registers_makes_a_key_and_uses_it(db: TestDb) {
        let (app, _upstream) = serving(db).await;
        app.set_option("new_user_quota_usd", "1").await;
        let browser = Browser::new(&app);
        let registered = browser.register("alice", PASSWORD).await;
        assert_eq!(registered.status, 303, "{}", registered.body);
        assert_eq!(registered.location.as_deref(), Some("/dashboard"));
        let dashboard = browser.get("/dashboard").await;
        assert!(dashboard.contains("Welcome, alice"), "{}", dashboard.body);
        assert!(dashboard.contains("$1.00"), "the starting balance shows: {}", dashboard.body);
        let alice = app.user("alice").await;
        let ledger = service::ledger::entries(app.ctx(), &CLI, "alice", 10).await.unwrap();
        assert_eq!(ledger.len(), 1, "the starting balance is a ledger row");

        browser.get("/keys").await;
        let made = browser.post("/keys", &[("name", "laptop"), ("quota_usd", "0.50")]).await;
        assert_eq!(made.status, 201, "{}", made.body);
        let key = made.new_key().expect("the new key, shown once");
        assert!(key.starts_with("sk-"));
        let listed = browser.get("/keys").await;
        assert!(!listed.contains(&key), "the key is shown only once");
        assert!(listed.contains("laptop"));

        assert_eq!(app.chat(&key, chat_body("gpt-4o-mini")).await.status(), 200);
        app.flush().await;
        let dashboard = browser.get("/dashboard").await;
        assert!(dashboard.contains("gpt-4o-mini"), "{}", dashboard.body);
        let after = app.user("alice").await;
        assert!(after.quota < alice.quota);
        assert!(dashboard.contains(&format!("id=\"balance\">{}<", tollgate::domain::money::Quota(after.quota).usd_display(500_000))), "{}", dashboard.body);

        let id = app.token_ids_of("alice").await[0];
        let disabled = browser.post(&format!("/keys/{id}/status"), &[("status", "disabled")]).await;
        assert_eq!(disabled.status, 303);
        assert_eq!(app.chat(&key, chat_body("gpt-4o-mini")).await.status(), 401);
        let listed = browser.get("/keys").await;
        assert!(listed.contains("The key is disabled."), "{}", listed.body);
        browser.post(&format!("/keys/{id}/delete"), &[]).await;
        assert!(app.token_ids_of("alice").await.is_empty());

        let out = browser.post("/logout", &[]).await;
        assert_eq!(out.status, 303);
        let gone = browser.get("/dashboard").await;
        assert_eq!(gone.status, 303);
        assert_eq!(gone.location.as_deref(), Some("/login?next=/dashboard"));
    }
}

db_test! {
    /// Forms come back with what was typed and every problem next to its field; a taken
    /// username or email names itself.
    async fn forms_come_back_marked(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let browser = Browser::new(&app);
        browser.get("/register").await;
        let wrong = browser
            .post("/register", &[("username", "bad name"), ("email", "nope"), ("password", "short"), ("password_confirm", "other")])
            .await;
        assert_eq!(wrong.status, 422);
        for field in ["username", "email", "password", "password_confirm"] {
            assert!(wrong.field_error(field).is_some(), "{field} is marked: {}", wrong.body);
        }
        assert_eq!(wrong.input("username").as_deref(), Some("bad name"));
        assert_eq!(wrong.input("email").as_deref(), Some("nope"));
        assert!(wrong.contains("aria-invalid=\"true\""));

        Browser::new(&app).register("taken", PASSWORD).await;
        let other = Browser::new(&app);
        other.get("/register").await;
        let clash = other
            .post("/register", &[("username", "taken"), ("email", "new@example.com"), ("password", PASSWORD)])
            .await;
        assert_eq!(clash.status, 422);
        assert!(clash.field_error("username").is_some(), "{}", clash.body);
        let clash = other
            .post("/register", &[("username", "fresh"), ("email", "taken@example.com"), ("password", PASSWORD)])
            .await;
        assert!(clash.field_error("email").is_some(), "{}", clash.body);

        let keys = Browser::new(&app);
        keys.sign_in("taken", PASSWORD).await;
        keys.get("/keys").await;
        let bad = keys.post("/keys", &[("name", ""), ("quota_usd", "lots"), ("expires", "2001-01-01")]).await;
        assert_eq!(bad.status, 422);
        for field in ["name", "quota_usd"] {
            assert!(bad.field_error(field).is_some(), "{field}: {}", bad.body);
        }
        assert_eq!(bad.input("quota_usd").as_deref(), Some("lots"));
    }
}

db_test! {
    /// Signing in by username or by email; a wrong password and an unknown account get the
    /// same answer; repeated failures are slowed down with a 429 page.
    async fn sign_in_answers_the_same_and_is_rate_limited(db: TestDb) {
        let app = TestApp::spawn(db).await;
        Browser::new(&app).register("bob", PASSWORD).await;
        let by_email = Browser::new(&app);
        assert_eq!(by_email.sign_in("bob@example.com", PASSWORD).await.status, 303);
        assert_eq!(by_email.get("/dashboard").await.status, 200);

        let browser = Browser::new(&app);
        let wrong = browser.sign_in("bob", "wrong password!").await;
        let unknown = browser.sign_in("nobody", "wrong password!").await;
        assert_eq!(wrong.status, 422);
        assert_eq!(wrong.field_error("login"), unknown.field_error("login"));
        assert_eq!(wrong.input("login").as_deref(), Some("bob"));
        assert!(wrong.input("password").is_none_or(|p| p.is_empty()), "the password is not sent back");

        let mut last = 0;
        for _ in 0..12 {
            last = browser.post("/login", &[("login", "bob"), ("password", "guess guess")]).await.status;
        }
        assert_eq!(last, 429);
        let limited = browser.post("/login", &[("login", "bob"), ("password", PASSWORD)]).await;
        assert_eq!(limited.status, 429, "even the right password waits");
        assert!(limited.contains("Too many attempts"));
    }
}

db_test! {
    /// What forgery and other people cannot do: a cross-site post or one without the form
    /// token changes nothing; another person's key ids answer 404 and stay as they were; a
    /// disabled account's or a changed password's open session ends at once.
    async fn the_portal_refuses_what_is_not_yours(db: TestDb) {
        let (app, _upstream) = serving(db).await;
        app.set_option("new_user_quota_usd", "1").await;
        let alice = Browser::new(&app);
        alice.register("alice", PASSWORD).await;
        let bob = Browser::new(&app);
        bob.register("bob", PASSWORD).await;
        bob.get("/keys").await;
        let bob_key = bob.post("/keys", &[("name", "bobs")]).await.new_key().unwrap();
        let bob_key_id = app.token_ids_of("bob").await[0];

        alice.get("/keys").await;
        for path in [format!("/keys/{bob_key_id}/status"), format!("/keys/{bob_key_id}/delete")] {
            let answer = alice.post(&path, &[("status", "disabled")]).await;
            assert_eq!(answer.status, 404, "{path}: {}", answer.body);
        }
        assert_eq!(app.token_ids_of("bob").await, vec![bob_key_id]);
        app.flush().await;
        assert_eq!(app.chat(&bob_key, chat_body("gpt-4o-mini")).await.status(), 200);

        // Forgery: a post from another site, and one without the token.
        let forged = Browser::with_headers(&app, &[("origin", "https://evil.example")]);
        forged.set_cookie(tollgate::web::SESSION_COOKIE, &alice.cookie(tollgate::web::SESSION_COOKIE).unwrap());
        let answer = forged.post_raw("/keys", &[("csrf_token", &alice.token()), ("name", "planted")]).await;
        assert_eq!(answer.status, 403, "{}", answer.body);
        let answer = alice.post_raw("/keys", &[("name", "planted")]).await;
        assert_eq!(answer.status, 403);
        assert!(app.token_ids_of("alice").await.is_empty());

        // An administrator disables alice: her open session ends at the next request.
        assert_eq!(alice.get("/dashboard").await.status, 200);
        service::users::update(app.ctx(), &CLI, "alice", UpdateUser { status: Some("disabled".into()), ..Default::default() }).await.unwrap();
        assert_eq!(alice.get("/dashboard").await.status, 303);
        // A new password ends bob's sessions.
        assert_eq!(bob.get("/dashboard").await.status, 200);
        service::users::update(app.ctx(), &CLI, "bob", UpdateUser { password: Some("a brand new password".into()), ..Default::default() }).await.unwrap();
        assert_eq!(bob.get("/dashboard").await.status, 303);
        // And a disabled account cannot sign in again.
        let again = Browser::new(&app).sign_in("alice", PASSWORD).await;
        assert_eq!(again.status, 422);
        assert!(again.contains("This account is disabled."), "{}", again.body);
    }
}

db_test! {
    /// The language: the browser's first, then the cookie `?lang=` sets, then the account's
    /// own setting, which `?lang=` also sets when signed in; `<html lang>` says which.
    async fn pages_speak_the_readers_language(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let chinese = Browser::with_headers(&app, &[("accept-language", "zh-CN,zh;q=0.9,en;q=0.5")]);
        let home = chinese.get("/").await;
        assert_eq!(home.lang(), Some("zh-CN"));
        assert!(home.contains("注册账户"), "{}", home.body);

        let english = chinese.get("/?lang=en").await;
        assert_eq!(english.lang(), Some("en"));
        assert_eq!(chinese.cookie("lang").as_deref(), Some("en"));
        assert_eq!(chinese.get("/login").await.lang(), Some("en"), "the cookie wins over the browser");

        let person = Browser::new(&app);
        person.register("carol", PASSWORD).await;
        assert_eq!(person.get("/dashboard?lang=zh-CN").await.lang(), Some("zh-CN"));
        assert_eq!(app.user("carol").await.locale, "zh-CN");
        // Another browser, signed in as carol, follows her setting.
        let elsewhere = Browser::new(&app);
        elsewhere.sign_in("carol", PASSWORD).await;
        let keys = elsewhere.get("/keys").await;
        assert_eq!(keys.lang(), Some("zh-CN"));
        assert!(keys.contains("你还没有 API 密钥"), "{}", keys.body);
        // Errors too.
        let missing = Browser::with_headers(&app, &[("accept-language", "zh")]).get("/no-such-page").await;
        assert_eq!(missing.status, 404);
        assert!(missing.contains("页面不存在"), "{}", missing.body);
        // And /v1 keeps its own envelope for unknown paths.
        let relay = app.client.get(app.url("/v1/no-such-thing")).send().await.unwrap();
        assert_eq!(relay.status(), 404);
        assert!(relay.text().await.unwrap().contains("unknown_url"));
    }
}

db_test! {
    /// Every page carries the security headers, the not-found page too, and an anonymous
    /// visitor gets no session, only a cookie with their own random id (crawlers make no
    /// rows).
    async fn pages_carry_security_headers(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let browser = Browser::new(&app);
        let home = browser.get("/").await;
        let visitor = home.headers.get("set-cookie").unwrap().to_str().unwrap();
        assert!(visitor.starts_with("tollgate_visitor=") && visitor.contains("HttpOnly") && visitor.contains("SameSite=Lax"), "{visitor}");
        let csp = home.headers.get("content-security-policy").unwrap().to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"), "{csp}");
        assert_eq!(home.headers.get("x-frame-options").unwrap(), "DENY");
        assert_eq!(home.headers.get("cache-control").unwrap(), "no-store");
        assert!(browser.cookie(tollgate::web::SESSION_COOKIE).is_none(), "no session for a visitor");
        let login = browser.get("/login").await;
        assert!(login.headers.get("set-cookie").is_none(), "the visitor keeps their id");
        assert!(browser.cookie(tollgate::web::SESSION_COOKIE).is_none(), "no session for a form either");
        let missing = browser.get("/no-such-page").await;
        assert_eq!(missing.status, 404);
        for header in ["content-security-policy", "x-frame-options", "x-content-type-options", "referrer-policy"] {
            assert!(missing.headers.get(header).is_some(), "the not-found page lacks {header}");
        }
        let css = app.client.get(app.url("/static/portal.css")).send().await.unwrap();
        assert_eq!(css.status(), 200);
        assert!(css.headers()["content-type"].to_str().unwrap().starts_with("text/css"));
    }
}

db_test! {
    /// Prices: a visitor sees the default group's, a signed-in person their group's with its
    /// ratio applied; the docs carry the base URL for every client.
    async fn pricing_and_docs_show_what_a_client_needs(db: TestDb) {
        let (app, _upstream) = serving(db).await;
        app.price("gpt-4o-mini", "0.15", "0.60").await;
        let visitor = Browser::new(&app).get("/pricing").await;
        assert_eq!(visitor.status, 200);
        assert!(visitor.contains("<code>gpt-4o-mini</code>"), "{}", visitor.body);
        assert!(visitor.contains("$0.15") && visitor.contains("$0.60"), "{}", visitor.body);

        app.create_group("vip", "0.5").await;
        let vip = FakeUpstream::chat().await;
        app.add_channel_with(tollgate::service::channels::ChannelInput {
            name: Some("vip-main".into()),
            channel_type: Some("openai".into()),
            base_url: Some(vip.base_url()),
            keys: Some(vec!["sk-vip".into()]),
            models: Some("gpt-4o-mini".into()),
            groups: Some("vip".into()),
            ..Default::default()
        })
        .await;
        let person = Browser::new(&app);
        person.register("vera", PASSWORD).await;
        service::users::update(app.ctx(), &CLI, "vera", UpdateUser { group: Some("vip".into()), ..Default::default() }).await.unwrap();
        let priced = person.get("/pricing").await;
        assert!(priced.contains("× 0.5"), "{}", priced.body);
        assert!(priced.contains("$0.075") && priced.contains("$0.30"), "{}", priced.body);
        drop(vip);

        let docs = Browser::new(&app).get("/docs").await;
        assert!(docs.contains(&format!("http://{}/v1", app.addr)), "{}", docs.body);
        assert!(docs.contains("ANTHROPIC_BASE_URL"));
    }
}

db_test! {
    /// Usage: filters by key and outcome, totals over the filter, another person's key id
    /// shows nothing; the CSV carries the same rows and totals, with cells that cannot run
    /// as formulas.
    async fn usage_logs_filter_and_export(db: TestDb) {
        let (app, _upstream) = serving(db).await;
        app.set_option("new_user_quota_usd", "1").await;
        let person = Browser::new(&app);
        person.register("dora", PASSWORD).await;
        person.get("/keys").await;
        let first = person.post("/keys", &[("name", "=HYPERLINK(1)")]).await.new_key().unwrap();
        person.get("/keys").await;
        let second = person.post("/keys", &[("name", "second")]).await.new_key().unwrap();
        for key in [&first, &first, &second] {
            assert_eq!(app.chat(key, chat_body("gpt-4o-mini")).await.status(), 200);
        }
        assert_eq!(app.chat(&second, chat_body("no-such-model")).await.status(), 404);
        app.flush().await;
        let ids = app.token_ids_of("dora").await;

        let all = person.get("/logs").await;
        assert!(all.contains("id=\"totals\""), "{}", all.body);
        assert!(all.body.contains("<strong>4</strong>"), "{}", all.body);
        let first_only = person.get(&format!("/logs?key={}", ids[0])).await;
        assert!(first_only.body.contains("<strong>2</strong>"), "{}", first_only.body);
        let refused = person.get("/logs?outcome=refused").await;
        assert!(refused.body.contains("<strong>1</strong>"), "{}", refused.body);
        assert!(refused.contains("no-such-model"));

        let other = Browser::new(&app);
        other.register("eve", PASSWORD).await;
        let snooping = other.get(&format!("/logs?key={}", ids[0])).await;
        assert!(snooping.body.contains("<strong>0</strong>"), "{}", snooping.body);
        assert!(!snooping.contains("gpt-4o-mini"));

        let csv = person.get(&format!("/logs.csv?key={}", ids[0])).await;
        assert_eq!(csv.status, 200);
        assert!(csv.headers["content-type"].to_str().unwrap().starts_with("text/csv"));
        let lines: Vec<&str> = csv.body.lines().collect();
        assert_eq!(lines.len(), 1 + 2 + 1, "{}", csv.body);
        assert!(lines[1].contains(",'=HYPERLINK(1),"), "{}", lines[1]);
        assert!(lines[3].starts_with("total,") && lines[3].contains("2 requests"), "{}", lines[3]);
        let bad = person.get("/logs?from=yesterday").await;
        assert_eq!(bad.status, 422, "a bad filter is marked on its field");
        assert!(bad.field_error("from").is_some(), "{}", bad.body);
    }
}

db_test! {
    /// The wallet shows the balance and every change to it besides spending.
    async fn the_wallet_shows_the_ledger(db: TestDb) {
        let app = TestApp::spawn(db).await;
        app.set_option("new_user_quota_usd", "2").await;
        let person = Browser::new(&app);
        person.register("walt", PASSWORD).await;
        service::users::change_quota(app.ctx(), &CLI, "walt", tollgate::service::users::QuotaChange {
            usd: Some("3".into()),
            reason: Some("thank you for the bug report".into()),
            ..Default::default()
        })
        .await
        .unwrap();
        let wallet = person.get("/wallet").await;
        assert_eq!(wallet.status, 200);
        assert!(wallet.contains("id=\"balance\">$5.00<"), "{}", wallet.body);
        assert!(wallet.contains("Starting balance") && wallet.contains("$2.00"), "{}", wallet.body);
        assert!(wallet.contains("thank you for the bug report") && wallet.contains("$3.00"));
        assert_eq!(Browser::new(&app).get("/wallet").await.status, 303, "signed-in people only");
    }
}

db_test! {
    /// The profile: details with a taken email marked, a new password that ends the other
    /// sessions, sessions listed and ended (only one's own), a copy of one's data, and
    /// deleting the account, which frees the name and keeps the books.
    async fn the_profile_manages_the_account(db: TestDb) {
        let (app, _upstream) = serving(db).await;
        app.set_option("new_user_quota_usd", "1").await;
        Browser::new(&app).register("taken", PASSWORD).await;
        let laptop = Browser::with_headers(&app, &[("user-agent", "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0")]);
        laptop.register("fay", PASSWORD).await;
        let phone = Browser::with_headers(&app, &[("user-agent", "Mozilla/5.0 (iPhone) Safari/604.1")]);
        assert_eq!(phone.sign_in("fay", PASSWORD).await.status, 303);

        laptop.get("/profile").await;
        let clash = laptop.post("/profile", &[("display_name", "Fay"), ("email", "taken@example.com")]).await;
        assert_eq!(clash.status, 422);
        assert!(clash.field_error("email").is_some(), "{}", clash.body);
        assert_eq!(clash.input("display_name").as_deref(), Some("Fay"));
        // Just signed in: the email changes without the password again.
        let saved = laptop.post("/profile", &[("display_name", "Fay F."), ("email", "fay@new.example")]).await;
        assert_eq!(saved.status, 303);
        let fay = app.user("fay").await;
        assert_eq!(fay.display_name, "Fay F.");
        assert_eq!(fay.email.as_deref(), Some("fay@new.example"));
        assert!(!fay.email_verified);

        let profile = laptop.get("/profile").await;
        assert!(profile.contains("Firefox · Linux") && profile.contains("Safari · iOS"), "{}", profile.body);
        // Signed in long ago: changing the password needs the current one.
        app.age_sign_ins_of("fay").await;
        let missing = laptop.post("/profile/password", &[("password", "a newer password"), ("password_confirm", "a newer password")]).await;
        assert_eq!(missing.status, 422);
        assert!(missing.field_error("current_password").is_some(), "{}", missing.body);
        let wrong = laptop.post("/profile/password", &[("current_password", "not it at all"), ("password", "a newer password"), ("password_confirm", "a newer password")]).await;
        assert_eq!(wrong.status, 422);
        assert!(wrong.field_error("current_password").is_some());
        let changed = laptop.post("/profile/password", &[("current_password", PASSWORD), ("password", "a newer password"), ("password_confirm", "a newer password")]).await;
        assert_eq!(changed.status, 303);
        assert_eq!(laptop.get("/dashboard").await.status, 200, "this session stays");
        assert_eq!(phone.get("/dashboard").await.status, 303, "the other one ended");
        assert_eq!(Browser::new(&app).sign_in("fay", "a newer password").await.status, 303);

        // Ending another person's session is not possible; one's own others, yes.
        let other = Browser::new(&app);
        other.sign_in("taken", PASSWORD).await;
        let taken_sessions = app.user("taken").await;
        let rows = tollgate::service::db::web_sessions::for_user(&app.db, taken_sessions.id, tollgate::service::db::now_ms()).await.unwrap();
        laptop.get("/profile").await;
        let refused = laptop.post(&format!("/profile/sessions/{}/end", rows[0].id), &[]).await;
        assert_eq!(refused.status, 404);
        assert_eq!(other.get("/dashboard").await.status, 200);
        laptop.post("/profile/sessions/end-others", &[]).await;
        assert_eq!(tollgate::service::db::web_sessions::for_user(&app.db, fay.id, tollgate::service::db::now_ms()).await.unwrap().len(), 1);

        laptop.get("/keys").await;
        let key = laptop.post("/keys", &[("name", "soon gone")]).await.new_key().unwrap();
        assert_eq!(app.chat(&key, chat_body("gpt-4o-mini")).await.status(), 200);
        app.flush().await;
        let export = laptop.get("/profile/export").await;
        let data: serde_json::Value = serde_json::from_str(&export.body).unwrap();
        assert_eq!(data["account"]["username"], "fay");
        assert_eq!(data["keys"][0]["name"], "soon gone");
        assert!(!export.body.contains(&key), "keys are never exported whole");
        assert_eq!(data["requests"].as_array().unwrap().len(), 1);

        laptop.get("/profile").await;
        let mistyped = laptop.post("/profile/delete", &[("confirm_username", "fa")]).await;
        assert_eq!(mistyped.status, 422);
        let deleted = laptop.post("/profile/delete", &[("confirm_username", "fay")]).await;
        assert_eq!(deleted.status, 303);
        assert_eq!(laptop.get("/dashboard").await.status, 303);
        assert_eq!(app.chat(&key, chat_body("gpt-4o-mini")).await.status(), 401);
        let gone = tollgate::service::db::users::find_by_id(&app.db, fay.id).await.unwrap().unwrap();
        assert_eq!(gone.username, format!("deleted-{}", fay.id));
        assert!(gone.email.is_none() && gone.password_hash.is_none());
        let logs = app.logs().await;
        assert!(logs.iter().any(|l| l.user_id == fay.id && l.username == gone.username && l.client_ip.is_empty()));
        let check = service::ledger::check(app.ctx(), &CLI).await.unwrap();
        assert!(check.discrepancies.is_empty());
        assert_eq!(Browser::new(&app).register("fay", PASSWORD).await.status, 303, "the name is free again");
    }
}

db_test! {
    /// The dashboard sums today's, the week's and the month's spend from the logs, draws a
    /// bar per day, lists the models, and says how long the balance lasts; the summary is
    /// the owner's alone. Days follow the site's time zone, which must be a real one.
    async fn the_dashboard_shows_spend_by_period_model_and_runway(db: TestDb) {
        let (app, _upstream) = serving(db).await;
        app.set_option("new_user_quota_usd", "10").await;
        let browser = Browser::new(&app);
        browser.register("alice", PASSWORD).await;
        let fresh = browser.get("/dashboard").await;
        assert!(fresh.contains("No spending in the last 7 days."), "{}", fresh.body);
        assert!(!fresh.contains("<svg"), "no chart before any request");

        browser.get("/keys").await;
        let key = browser.post("/keys", &[("name", "laptop")]).await.new_key().unwrap();
        for _ in 0..3 {
            assert_eq!(app.chat(&key, chat_body("gpt-4o-mini")).await.status(), 200);
        }
        app.flush().await;
        let alice = app.user("alice").await;
        let spent = tollgate::domain::money::Quota(alice.used_quota).usd_display(500_000);
        let dashboard = browser.get("/dashboard").await;
        for id in ["spend-today", "spend-week", "spend-month"] {
            assert!(dashboard.contains(&format!("id=\"{id}\">{spent}<")), "{id} shows {spent}: {}", dashboard.body);
        }
        assert!(dashboard.contains("3 requests"), "{}", dashboard.body);
        assert!(dashboard.contains("More than a year at your last 7 days"), "{}", dashboard.body);
        assert_eq!(dashboard.body.matches("<rect ").count(), 30, "a bar per day");
        assert!(dashboard.contains("<td>gpt-4o-mini</td><td class=\"num\">3</td>"), "{}", dashboard.body);

        let zh = browser.get("/dashboard?lang=zh-CN").await;
        assert!(zh.contains("今日消费") && zh.contains("3 次请求"), "{}", zh.body);

        // Someone else's summary is not found; an administrator's view is allowed.
        let bob = app.create_user("bob", "1").await;
        let other = service::usage::summary(app.ctx(), &service::Caller::User(bob.id), alice.id, tollgate::service::db::now_ms()).await;
        assert!(other.is_err());
        let admin = service::usage::summary(app.ctx(), &CLI, alice.id, tollgate::service::db::now_ms()).await.unwrap();
        assert_eq!(admin.today.requests, 3);

        // Another zone moves "today" but keeps the month.
        assert!(service::options::set(app.ctx(), &CLI, "timezone", "Mars/Olympus").await.is_err());
        app.set_option("timezone", "Asia/Shanghai").await;
        let shanghai = service::usage::summary(app.ctx(), &CLI, alice.id, tollgate::service::db::now_ms()).await.unwrap();
        assert_eq!(shanghai.month.requests, 3);
    }
}

db_test! {
    /// The playground sends a chat through the relay in-process as the signed-in person,
    /// billed to the key they pick (logged like /v1, the balance drops); streamed or whole;
    /// another person's key, a disabled key, an empty message and a missing form token are
    /// refused.
    async fn the_playground_chats_through_the_relay_billed_to_ones_own_key(db: TestDb) {
        let (app, upstream) = serving(db).await;
        app.set_option("new_user_quota_usd", "5").await;
        let bob = Browser::new(&app);
        bob.register("bob", PASSWORD).await;
        bob.get("/keys").await;
        bob.post("/keys", &[("name", "bobs")]).await;
        let bobs_key = app.token_ids_of("bob").await[0];

        let browser = Browser::new(&app);
        browser.register("alice", PASSWORD).await;
        let empty = browser.get("/playground").await;
        assert!(empty.contains("you have none that is active yet"), "{}", empty.body);
        browser.get("/keys").await;
        browser.post("/keys", &[("name", "laptop")]).await;
        let key = app.token_ids_of("alice").await[0].to_string();
        let page = browser.get("/playground").await;
        assert_eq!(page.status, 200);
        assert!(page.contains("laptop") && page.contains("<option value=\"gpt-4o-mini\""), "{}", page.body);
        assert!(page.contains("/static/playground.js"));
        let before = app.user("alice").await;

        let answered = browser
            .post("/playground", &[("key_id", &key), ("model", "gpt-4o-mini"), ("message", "Say hello")])
            .await;
        assert_eq!(answered.status, 200, "{}", answered.body);
        assert!(answered.contains("Hello!"), "{}", answered.body);
        assert!(answered.contains("10 input and 5 output tokens"), "{}", answered.body);
        assert_eq!(answered.input("key_id"), None, "no key in the page");
        let sent = upstream.requests();
        assert_eq!(sent.last().unwrap().json()["messages"][0]["content"], "Say hello");

        upstream.queue(crate::helpers::Reply::stream(&["Hel", "lo ", "there"], Some((7, 3))));
        browser.get("/playground").await;
        let streamed = browser
            .post("/playground/stream", &[("key_id", &key), ("model", "gpt-4o-mini"), ("message", "Stream it"), ("system", "Be brief")])
            .await;
        assert_eq!(streamed.status, 200, "{}", streamed.body);
        assert!(streamed.headers["content-type"].to_str().unwrap().starts_with("text/event-stream"));
        assert!(streamed.contains("\"Hel\"") && streamed.contains("[DONE]"), "{}", streamed.body);
        assert_eq!(upstream.requests().last().unwrap().json()["messages"][0]["role"], "system");

        app.flush().await;
        let logs: Vec<_> = app.logs().await.into_iter().filter(|l| l.username == "alice").collect();
        assert_eq!(logs.len(), 2, "both chats are logged");
        assert!(logs.iter().all(|l| l.token_name == "laptop" && l.cost > 0));
        assert!(app.user("alice").await.quota < before.quota, "billed");

        // Bob's key is not Alice's to bill; nothing reaches the upstream for it.
        let count = upstream.requests().len();
        browser.get("/playground").await;
        let theirs = browser
            .post("/playground", &[("key_id", &bobs_key.to_string()), ("model", "gpt-4o-mini"), ("message", "hi")])
            .await;
        assert_eq!(theirs.status, 422);
        assert!(theirs.field_error("key_id").is_some(), "{}", theirs.body);
        let theirs = browser
            .post("/playground/stream", &[("key_id", &bobs_key.to_string()), ("model", "gpt-4o-mini"), ("message", "hi")])
            .await;
        assert_eq!(theirs.status, 422);
        let blank = browser.post("/playground", &[("key_id", &key), ("model", "gpt-4o-mini"), ("message", " ")]).await;
        assert_eq!(blank.status, 422);
        assert!(blank.field_error("message").is_some());
        let forged = browser
            .post_raw("/playground", &[("key_id", &key), ("model", "gpt-4o-mini"), ("message", "hi")])
            .await;
        assert_eq!(forged.status, 403);
        browser.post(&format!("/keys/{key}/status"), &[("status", "disabled")]).await;
        browser.get("/playground").await;
        let disabled = browser.post("/playground", &[("key_id", &key), ("model", "gpt-4o-mini"), ("message", "hi")]).await;
        assert_eq!(disabled.status, 422);
        assert_eq!(upstream.requests().len(), count, "no refused chat reached the upstream");
    }
}

db_test! {
    /// A key's edit page comes filled with the key as it is; saving changes its name, limit,
    /// expiry, models and addresses at once, and the relay follows; mistakes come back marked;
    /// another person's key is not found.
    async fn a_key_is_edited_and_the_relay_follows(db: TestDb) {
        let (app, _upstream) = serving(db).await;
        app.set_option("new_user_quota_usd", "5").await;
        let browser = Browser::new(&app);
        browser.register("alice", PASSWORD).await;
        browser.get("/keys").await;
        let key = browser.post("/keys", &[("name", "laptop"), ("quota_usd", "2"), ("models", "gpt-4o-mini")]).await.new_key().unwrap();
        let id = app.token_ids_of("alice").await[0];
        let listed = browser.get("/keys").await;
        assert!(listed.contains(&format!("href=\"/keys/{id}/edit\"")), "{}", listed.body);

        let form = browser.get(&format!("/keys/{id}/edit")).await;
        assert_eq!(form.status, 200, "{}", form.body);
        assert_eq!(form.input("name").as_deref(), Some("laptop"));
        assert_eq!(form.input("quota_usd").as_deref(), Some("2"));
        assert_eq!(form.input("models").as_deref(), Some("gpt-4o-mini"));

        let wrong = browser
            .post(&format!("/keys/{id}/edit"), &[("name", "laptop"), ("quota_usd", "lots"), ("expires", ""), ("models", ""), ("allow_ips", "not-an-ip")])
            .await;
        assert_eq!(wrong.status, 422, "{}", wrong.body);
        assert!(wrong.field_error("quota_usd").is_some() || wrong.field_error("allow_ips").is_some(), "{}", wrong.body);
        assert_eq!(wrong.input("quota_usd").as_deref(), Some("lots"), "what was typed is kept");

        let saved = browser
            .post(&format!("/keys/{id}/edit"), &[("name", "office"), ("quota_usd", ""), ("expires", ""), ("models", ""), ("allow_ips", "10.9.9.9")])
            .await;
        assert_eq!(saved.status, 303, "{}", saved.body);
        let keys = service::tokens::get(app.ctx(), &CLI, id).await.unwrap();
        assert_eq!(keys.name, "office");
        assert!(keys.unlimited, "an empty limit leaves only the balance");
        assert!(keys.allowed_models.is_empty());
        assert_eq!(keys.allowed_ips, "10.9.9.9");
        // The relay follows at once: this address is no longer allowed.
        let refused = app.chat(&key, chat_body("gpt-4o-mini")).await;
        assert_eq!(refused.status(), 403);

        // Bob cannot open or save Alice's key.
        let bob = Browser::new(&app);
        bob.register("bob", PASSWORD).await;
        assert_eq!(bob.get(&format!("/keys/{id}/edit")).await.status, 404);
        bob.get("/keys").await;
        let theirs = bob.post(&format!("/keys/{id}/edit"), &[("name", "mine now")]).await;
        assert_eq!(theirs.status, 404);
        assert_eq!(service::tokens::get(app.ctx(), &CLI, id).await.unwrap().name, "office");
    }
}

db_test! {
    /// A key may use a group the admin made user-selectable: its requests go to that group's
    /// channels at that group's ratio, while the owner's other keys stay in the owner's group.
    /// A group that is not selectable is refused on the page, the API and the CLI's service.
    async fn a_key_uses_a_selectable_group_for_channels_and_price(db: TestDb) {
        let (app, upstream) = serving(db).await;
        let vip_upstream = FakeUpstream::chat().await;
        service::groups::create(app.ctx(), &CLI, "vip", service::groups::GroupInput {
            ratio: Some("0.5".into()),
            description: Some("half price".into()),
            user_selectable: Some(true),
            ..Default::default()
        }).await.unwrap();
        app.create_group("internal", "0.1").await;
        app.add_channel_with(tollgate::service::channels::ChannelInput {
            name: Some("vip-main".into()),
            base_url: Some(vip_upstream.base_url()),
            models: Some("gpt-4o-mini".into()),
            groups: Some("vip".into()),
            ..Default::default()
        }).await;
        app.set_option("new_user_quota_usd", "5").await;
        app.reload().await;

        let browser = Browser::new(&app);
        browser.register("alice", PASSWORD).await;
        let keys = browser.get("/keys").await;
        assert!(keys.contains("<option value=\"vip\""), "the selectable group is offered: {}", keys.body);
        assert!(!keys.contains("<option value=\"internal\""), "others are not");
        let plain = browser.post("/keys", &[("name", "plain")]).await.new_key().unwrap();
        let cheap = browser.post("/keys", &[("name", "cheap"), ("group", "vip")]).await.new_key().unwrap();
        let refused = browser.post("/keys", &[("name", "sneaky"), ("group", "internal")]).await;
        assert_eq!(refused.status, 422);
        assert!(refused.field_error("group").is_some(), "{}", refused.body);

        assert_eq!(app.chat(&plain, chat_body("gpt-4o-mini")).await.status(), 200);
        assert_eq!(app.chat(&cheap, chat_body("gpt-4o-mini")).await.status(), 200);
        assert_eq!(upstream.requests().len(), 1, "the plain key stays on the owner's group's channel");
        assert_eq!(vip_upstream.requests().len(), 1, "the vip key goes to the vip channel");
        app.flush().await;
        let logs: Vec<_> = app.logs().await.into_iter().filter(|l| l.username == "alice").collect();
        let plain_log = logs.iter().find(|l| l.token_name == "plain").unwrap();
        let cheap_log = logs.iter().find(|l| l.token_name == "cheap").unwrap();
        assert_eq!(cheap_log.group, "vip");
        assert_eq!(plain_log.group, "default");
        assert_eq!(cheap_log.cost * 2, plain_log.cost, "half the price: {} vs {}", cheap_log.cost, plain_log.cost);

        // Editing moves a key back to the owner's group; the relay follows.
        let id = app.token_ids_of("alice").await[1];
        let form = browser.get(&format!("/keys/{id}/edit")).await;
        assert!(form.contains("<option value=\"vip\" selected"), "{}", form.body);
        let saved = browser.post(&format!("/keys/{id}/edit"), &[("name", "cheap"), ("group", "")]).await;
        assert_eq!(saved.status, 303, "{}", saved.body);
        assert_eq!(app.chat(&cheap, chat_body("gpt-4o-mini")).await.status(), 200);
        assert_eq!(upstream.requests().len(), 2);

        let alice = app.user("alice").await;
        let by_service = service::tokens::create(app.ctx(), &service::Caller::User(alice.id), service::tokens::CreateToken {
            name: "again".into(), group: Some("internal".into()), ..Default::default()
        }).await;
        assert!(by_service.is_err());
        let by_admin = service::tokens::create(app.ctx(), &CLI, service::tokens::CreateToken {
            username: "alice".into(), name: "staff".into(), group: Some("internal".into()), ..Default::default()
        }).await.unwrap();
        assert_eq!(by_admin.0.group, "internal", "an administrator may give any group");
    }
}

db_test! {
    /// People hold at most `max_keys_per_user` keys of their own making: the next one is
    /// refused with the reason and the form kept; an administrator may go past it.
    async fn the_per_person_key_cap_holds(db: TestDb) {
        let app = TestApp::spawn(db).await;
        app.set_option("max_keys_per_user", "2").await;
        app.reload().await;
        let browser = Browser::new(&app);
        browser.register("alice", PASSWORD).await;
        browser.get("/keys").await;
        for name in ["one", "two"] {
            assert_eq!(browser.post("/keys", &[("name", name)]).await.status, 201);
        }
        let third = browser.post("/keys", &[("name", "three"), ("quota_usd", "1")]).await;
        assert_eq!(third.status, 422);
        assert!(third.contains("the most keys allowed (2)"), "{}", third.body);
        assert_eq!(third.input("quota_usd").as_deref(), Some("1"));
        let alice = app.user("alice").await;
        let own = service::tokens::create(app.ctx(), &service::Caller::User(alice.id), service::tokens::CreateToken {
            name: "four".into(), ..Default::default()
        }).await;
        assert!(own.is_err());
        service::tokens::create(app.ctx(), &CLI, service::tokens::CreateToken {
            username: "alice".into(), name: "from the admin".into(), ..Default::default()
        }).await.unwrap();
        assert_eq!(app.token_ids_of("alice").await.len(), 3);
    }
}
