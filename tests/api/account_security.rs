//! What an attacker tries on the portal's accounts: redirects off the site after signing in,
//! limits raced with concurrent requests, guesses spread over spellings of one account, a
//! stolen session changing the email or password, and what a deleted account leaves behind.

use futures::future::join_all;
use tollgate::service;

use crate::helpers::{Browser, MailSink, TestApp, db_test};

const PASSWORD: &str = "correct horse battery";

db_test! {
    /// `next` only ever leads somewhere on this site: tabs, newlines, backslashes and other
    /// hosts go to the dashboard, and nothing in `next` answers 500.
    async fn next_never_leaves_the_site(db: TestDb) {
        let app = TestApp::spawn(db).await;
        app.create_user_with_email("ann", "ann@example.com", PASSWORD).await;
        for (next, expected) in [
            ("/keys?lang=zh-CN", "/keys?lang=zh-CN"),
            ("/%09/evil.example", "/dashboard"),
            ("/%0a/evil.example", "/dashboard"),
            ("/%0d%0aSet-Cookie:x=1", "/dashboard"),
            ("//evil.example", "/dashboard"),
            ("/%5Cevil.example", "/dashboard"),
            ("https://evil.example/", "/dashboard"),
        ] {
            let browser = Browser::new(&app);
            let form = browser.get(&format!("/login?next={next}")).await;
            assert_eq!(form.status, 200, "{next}: {}", form.body);
            let answer = browser.post("/login", &[("login", "ann"), ("password", PASSWORD), ("next", form.input("next").unwrap().as_str())]).await;
            assert_eq!(answer.status, 303, "{next}: {}", answer.body);
            assert_eq!(answer.location.as_deref(), Some(expected), "{next}");
            // Posted straight, not through the page's hidden field.
            let raw_next = next.replace("%09", "\t").replace("%0a", "\n").replace("%0d", "\r").replace("%5C", "\\");
            let signed_in = Browser::new(&app);
            signed_in.get("/login").await;
            let answer = signed_in.post("/login", &[("login", "ann"), ("password", PASSWORD), ("next", raw_next.as_str())]).await;
            assert_eq!(answer.status, 303, "{next:?}: {}", answer.body);
            assert_eq!(answer.location.as_deref(), Some(expected), "{raw_next:?}");
            // Already signed in, the form page itself redirects.
            let again = signed_in.get(&format!("/login?next={next}")).await;
            assert_eq!(again.location.as_deref(), Some(expected), "{next}");
        }
    }
}

db_test! {
    /// Eight registrations from one address at once against `signups_per_ip_per_day = 2`:
    /// two accounts, six refusals — the limit is taken before an account is made.
    async fn concurrent_registrations_keep_the_daily_limit(db: TestDb) {
        let app = TestApp::spawn(db).await;
        app.set_option("signups_per_ip_per_day", "2").await;
        let browsers: Vec<Browser> = (0..8).map(|_| Browser::new(&app)).collect();
        for browser in &browsers {
            browser.get("/register").await;
        }
        let answers = join_all(browsers.iter().enumerate().map(|(n, browser)| async move {
            let name = format!("racer{n}");
            let email = format!("{name}@example.com");
            browser
                .post("/register", &[("username", name.as_str()), ("email", email.as_str()), ("password", PASSWORD), ("password_confirm", PASSWORD)])
                .await
                .status
        }))
        .await;
        assert_eq!(answers.iter().filter(|s| **s == 303).count(), 2, "{answers:?}");
        assert_eq!(answers.iter().filter(|s| **s == 429).count(), 6, "{answers:?}");
        let made = service::users::list(app.ctx(), &crate::helpers::CLI, 100, 0).await.unwrap();
        assert_eq!(made.iter().filter(|u| u.username.starts_with("racer")).count(), 2);

        // A registration refused for its values gives its place back: one place is left,
        // a refused form leaves it, the next good one takes it.
        app.set_option("signups_per_ip_per_day", "3").await;
        let browser = Browser::new(&app);
        browser.get("/register").await;
        let bad = browser.post("/register", &[("username", "x"), ("email", "not an address"), ("password", PASSWORD), ("password_confirm", PASSWORD)]).await;
        assert_eq!(bad.status, 422, "{}", bad.body);
        assert_eq!(browser.register("fine", PASSWORD).await.status, 303);
        assert_eq!(Browser::new(&app).register("toomany", PASSWORD).await.status, 429);
    }
}

db_test! {
    /// Sixty wrong redemption codes at once from one account: ten are looked at (the
    /// account's limit), the rest are refused before any lookup.
    async fn concurrent_wrong_codes_are_counted_before_they_are_tried(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let browser = Browser::new(&app);
        browser.register("guesser", PASSWORD).await;
        browser.get("/wallet").await;
        let guesses: Vec<String> = (0..60).map(|n| format!("tgc-{:0>48}", n)).collect();
        let browser = &browser;
        let answers = join_all(guesses.iter().map(|guess| async move { browser.post("/wallet/redeem", &[("code", guess.as_str())]).await })).await;
        let looked_at = answers.iter().filter(|a| a.status == 422).count();
        let refused = answers.iter().filter(|a| a.status == 429).count();
        assert_eq!((looked_at, refused), (10, 50), "{:?}", answers.iter().map(|a| a.status).collect::<Vec<_>>());
    }
}

db_test! {
    /// Failed sign-ins count against the account however it is named: five tries by
    /// username and five by email in any case lock out the sixth of either.
    async fn sign_in_failures_count_per_account_not_per_spelling(db: TestDb) {
        let app = TestApp::spawn(db).await;
        app.create_user_with_email("carol", "Carol@Example.com", PASSWORD).await;
        let logins = ["carol", "carol@example.com", "CAROL@EXAMPLE.COM", "Carol@Example.com", "carol@EXAMPLE.com"];
        let mut statuses = Vec::new();
        for n in 0..10 {
            // A new browser (and address-wide limits far away) each time.
            let browser = Browser::new(&app);
            statuses.push(browser.sign_in(logins[n % logins.len()], "wrong password!").await.status);
        }
        assert!(statuses.iter().all(|s| *s == 422), "{statuses:?}");
        for login in logins {
            let locked = Browser::new(&app).sign_in(login, "wrong password!").await;
            assert_eq!(locked.status, 429, "{login}");
        }
    }
}

db_test! {
    /// A session that signed in long ago (a stolen cookie) cannot change the email or the
    /// password without the current password, and guessing that password is limited like
    /// signing in. A fresh sign-in may.
    async fn a_stolen_session_cannot_take_the_account(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let owner = Browser::new(&app);
        owner.register("dana", PASSWORD).await;
        app.age_sign_ins_of("dana").await;
        owner.get("/profile").await;

        let email = owner.post("/profile", &[("display_name", "Dana"), ("email", "thief@evil.example")]).await;
        assert_eq!(email.status, 422, "{}", email.body);
        assert!(email.field_error("details_current_password").is_some(), "{}", email.body);
        assert_eq!(app.user("dana").await.email.as_deref(), Some("dana@example.com"));
        // The name alone needs no password.
        assert_eq!(owner.post("/profile", &[("display_name", "Dana D."), ("email", "dana@example.com")]).await.status, 303);
        assert_eq!(app.user("dana").await.display_name, "Dana D.");

        let mut last = 0;
        for n in 0..11 {
            let guess = format!("guess number {n}");
            last = owner
                .post("/profile/password", &[("current_password", guess.as_str()), ("password", "a brand new password"), ("password_confirm", "a brand new password")])
                .await
                .status;
        }
        assert_eq!(last, 429, "the eleventh guess is not tried");
        let right = owner
            .post("/profile/password", &[("current_password", PASSWORD), ("password", "a brand new password"), ("password_confirm", "a brand new password")])
            .await;
        assert_eq!(right.status, 429, "even the right one waits");

        // A fresh sign-in elsewhere changes the email without the password.
        let fresh = Browser::new(&app);
        assert_eq!(fresh.sign_in("dana", PASSWORD).await.status, 303);
        fresh.get("/profile").await;
        let changed = fresh.post("/profile", &[("display_name", "Dana D."), ("email", "dana@new.example")]).await;
        assert_eq!(changed.status, 303, "{}", changed.body);
        assert_eq!(app.user("dana").await.email.as_deref(), Some("dana@new.example"));
    }
}

db_test! {
    /// A deleted account leaves no emailed codes with its address, its invite link brings
    /// nobody in, and its sessions are gone.
    async fn a_deleted_account_leaves_no_address_and_no_live_link(db: TestDb) {
        let Some(sink) = MailSink::start().await else { return };
        let app = TestApp::spawn(db).await;
        sink.configure(&app).await;
        let erin = Browser::new(&app);
        erin.register("erin", PASSWORD).await;
        sink.next_to("erin@example.com").await;
        let id = app.user("erin").await.id;
        let code = service::invites::ensure_code(app.ctx(), id).await.unwrap();
        // A reset link on its way to her address.
        service::email_codes::request_reset(app.ctx(), "erin@example.com", tollgate::i18n::Lang::En, "http://x").await.unwrap();
        sink.next_to("erin@example.com").await;
        assert!(tollgate::service::db::email_codes::latest(&app.db, id, "reset").await.unwrap().is_some());

        erin.get("/profile").await;
        let deleted = erin.post("/profile/delete", &[("confirm_username", "erin")]).await;
        assert_eq!(deleted.status, 303, "{}", deleted.body);

        let codes = tollgate::service::db::email_codes::latest(&app.db, id, "reset").await.unwrap();
        assert!(codes.is_none(), "emailed codes keep no address");
        assert!(tollgate::service::db::web_sessions::for_user(&app.db, id, tollgate::service::db::now_ms()).await.unwrap().is_empty());
        assert_eq!(app.user("deleted-{id}".replace("{id}", &id.to_string()).as_str()).await.invite_code, None);

        let newcomer = Browser::new(&app);
        newcomer.get(&format!("/register?invite={code}")).await;
        let email = "late@example.com";
        let made = newcomer
            .post("/register", &[("username", "late"), ("email", email), ("password", PASSWORD), ("password_confirm", PASSWORD), ("invite", code.as_str())])
            .await;
        assert_eq!(made.status, 303, "{}", made.body);
        assert_eq!(app.user("late").await.inviter_id, None, "the dead link attributes nobody");
    }
}

db_test! {
    /// Reading the sign-in and registration pages writes nothing: visitors get a cookie with
    /// their own random id and a form token bound to it, and no session row until a form
    /// needs one; a token made for another visitor is refused.
    async fn visitors_leave_no_session_rows(db: TestDb) {
        let app = TestApp::spawn(db).await;
        app.create_user_with_email("gus", "gus@example.com", PASSWORD).await;
        for _ in 0..20 {
            for path in ["/login", "/register", "/forgot-password", "/"] {
                let page = app.client.get(app.url(path)).send().await.unwrap();
                assert_eq!(page.status(), 200, "{path}");
            }
        }
        assert_eq!(session_rows(&app).await, 0, "page views made session rows");

        // A visitor's form works with the token bound to their cookie.
        let visitor = Browser::new(&app);
        let form = visitor.get("/login").await;
        assert!(visitor.cookie("tollgate_visitor").is_some());
        let wrong = visitor.post("/login", &[("login", "gus"), ("password", "not his password")]).await;
        assert_eq!(wrong.status, 422, "{}", wrong.body);
        assert_eq!(session_rows(&app).await, 0, "a refused sign-in made a session row");
        // Another visitor's token (a forged form from elsewhere) is refused.
        let other = Browser::new(&app);
        other.get("/login").await;
        let forged = other.post_raw("/login", &[("csrf_token", form.input("csrf_token").unwrap().as_str()), ("login", "gus"), ("password", PASSWORD)]).await;
        assert_eq!(forged.status, 403, "{}", forged.body);
        let signed_in = visitor.post("/login", &[("login", "gus"), ("password", PASSWORD)]).await;
        assert_eq!(signed_in.status, 303, "{}", signed_in.body);
        assert_eq!(session_rows(&app).await, 1);
        assert_eq!(visitor.get("/dashboard").await.status, 200);
    }
}

async fn session_rows(app: &TestApp) -> usize {
    let user = app.user("gus").await;
    let now = tollgate::service::db::now_ms();
    let signed_in = tollgate::service::db::web_sessions::for_user(&app.db, user.id, now)
        .await
        .unwrap()
        .len();
    let rows = app
        .db
        .fetch_all_with("SELECT id FROM web_sessions", &[])
        .await
        .unwrap();
    assert!(rows.len() >= signed_in);
    rows.len()
}

db_test! {
    /// Failures from other browsers lock the account out for them, not for a browser its
    /// owner signed in from before (a device cookie, signed by the site); a forged or another
    /// account's device cookie counts for nothing.
    async fn the_owners_browser_passes_others_lockout(db: TestDb) {
        let app = TestApp::spawn(db).await;
        app.create_user_with_email("hal", "hal@example.com", PASSWORD).await;
        app.create_user_with_email("ivy", "ivy@example.com", PASSWORD).await;
        let owner = Browser::new(&app);
        assert_eq!(owner.sign_in("hal", PASSWORD).await.status, 303);
        let device = owner.cookie("tollgate_device").expect("a device cookie");
        owner.get("/dashboard").await;
        owner.post("/logout", &[]).await;

        for _ in 0..10 {
            assert_eq!(Browser::new(&app).sign_in("hal", "a wrong guess!").await.status, 422);
        }
        assert_eq!(Browser::new(&app).sign_in("hal", PASSWORD).await.status, 429, "others are locked out");
        let back = owner.sign_in("hal", PASSWORD).await;
        assert_eq!(back.status, 303, "the owner's browser passes: {}", back.body);

        // Ivy's device cookie is no pass for Hal's account, nor is a tampered one.
        let ivy = Browser::new(&app);
        assert_eq!(ivy.sign_in("ivy", PASSWORD).await.status, 303);
        let ivys = ivy.cookie("tollgate_device").unwrap();
        for cookie in [ivys, device.replace(".", "x."), format!("{device}x")] {
            let stranger = Browser::new(&app);
            stranger.set_cookie("tollgate_device", &cookie);
            assert_eq!(stranger.sign_in("hal", PASSWORD).await.status, 429, "{cookie}");
        }
    }
}

db_test! {
    /// A username or an address is one person's whatever its case (and, for an address, its
    /// Unicode normalisation): `Alice` cannot register beside `alice`, nor `ALICE@X` beside
    /// `alice@x`, and signing in takes any case.
    async fn names_and_addresses_are_one_person_whatever_the_case(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let alice = Browser::new(&app);
        alice.get("/register").await;
        let made = alice
            .post("/register", &[("username", "Alice"), ("email", "jose\u{301}@Example.com"), ("password", PASSWORD), ("password_confirm", PASSWORD)])
            .await;
        assert_eq!(made.status, 303, "{}", made.body);
        for (username, email, field) in [
            ("alice", "other@example.com", "username"),
            ("ALICE", "other@example.com", "username"),
            ("someone", "JOS\u{c9}@EXAMPLE.COM", "email"),
        ] {
            let other = Browser::new(&app);
            other.get("/register").await;
            let refused = other
                .post("/register", &[("username", username), ("email", email), ("password", PASSWORD), ("password_confirm", PASSWORD)])
                .await;
            assert_eq!(refused.status, 422, "{username} {email}: {}", refused.body);
            assert!(refused.field_error(field).is_some(), "{field}: {}", refused.body);
        }
        for login in ["alice", "ALICE", "jos\u{e9}@example.com", "JOSE\u{301}@EXAMPLE.COM"] {
            assert_eq!(Browser::new(&app).sign_in(login, PASSWORD).await.status, 303, "{login}");
        }
        // The API and the CLI's service keep the same rule.
        let clash = service::users::create(app.ctx(), &crate::helpers::CLI, service::users::CreateUser {
            username: "aLiCe".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
        assert_eq!(clash.fields().first().map(|p| p.field).or(match &clash {
            service::ServiceError::Conflict { field, .. } => *field,
            _ => None,
        }), Some("username"), "{clash:?}");
    }
}

db_test! {
    /// Accounts made before names were compared whatever their case, that now clash, stop
    /// the server from starting, named; renaming one with the CLI lets it start.
    async fn clashing_accounts_are_named_until_told_apart(db: TestDb) {
        let url = db.url.clone();
        let raw = tollgate::service::db::Db::connect(&url, 2).await.unwrap();
        for (name, email) in [("bob", "bob@example.com"), ("Bob", "other@example.com"), ("carl", "CARL@example.com"), ("carl2", "carl@example.com")] {
            raw.execute_with(
                raw.pool(),
                "INSERT INTO users (username, display_name, email, email_verified, role, status, group_name, \
                 quota, used_quota, request_count, created_at, updated_at) VALUES (?, ?, ?, 0, 'user', 'active', 'default', 0, 0, 0, 0, 0)",
                &[
                    tollgate::service::db::Value::Text(name.into()),
                    tollgate::service::db::Value::Text(name.into()),
                    tollgate::service::db::Value::Text(email.into()),
                ],
            )
            .await
            .unwrap();
        }
        raw.close().await;
        let config = || tollgate::Config {
            database: tollgate::config::DatabaseConfig { url: url.clone(), max_connections: 2 },
            server: crate::helpers::test_server_config(),
            redis: Default::default(),
        };
        let refused = match tollgate::App::build(config()).await {
            Ok(_) => panic!("the server started with clashing accounts"),
            Err(e) => format!("{e:#}"),
        };
        for name in ["bob / Bob", "CARL@example.com / carl@example.com", "tollgate user update"] {
            assert!(refused.contains(name), "{name}: {refused}");
        }
        crate::shutdown::tollgate(&url, &["user", "update", "Bob", "--username", "robert"]).unwrap();
        crate::shutdown::tollgate(&url, &["user", "update", "carl2", "--email", "carl.two@example.com"]).unwrap();
        let app = TestApp::spawn(db).await;
        assert_eq!(app.user("robert").await.email.as_deref(), Some("other@example.com"));
        // Now the indexes hold the rule in the database itself.
        let duplicate = service::users::create(app.ctx(), &crate::helpers::CLI, service::users::CreateUser {
            username: "ROBERT".into(),
            ..Default::default()
        })
        .await;
        assert!(duplicate.is_err());
    }
}

db_test! {
    /// A key form sent twice at once (a double click) makes one key; the second answer says
    /// the key was made by the first. A new form makes a new key.
    async fn a_double_submitted_key_form_makes_one_key(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let browser = Browser::new(&app);
        browser.register("kim", PASSWORD).await;
        let page = browser.get("/keys").await;
        let form_key = page.input("form_key").expect("the form's one-time key");
        let fields = [("name", "laptop"), ("form_key", form_key.as_str())];
        let (first, second) = futures::join!(browser.post("/keys", &fields), browser.post("/keys", &fields));
        let (made, told) = if first.status == 201 { (first, second) } else { (second, first) };
        assert_eq!((made.status, told.status), (201, 409), "{} / {}", made.body, told.body);
        assert!(made.new_key().is_some());
        assert_eq!(app.token_ids_of("kim").await.len(), 1);
        assert!(told.contains("sent twice"), "{}", told.body);
        let fresh = told.input("form_key").unwrap();
        assert_ne!(fresh, form_key);
        assert_eq!(browser.post("/keys", &[("name", "phone"), ("form_key", fresh.as_str())]).await.status, 201);
        assert_eq!(app.token_ids_of("kim").await.len(), 2);
    }
}

db_test! {
    /// NUL characters are refused where the portal and `/api` take input (400, never a 500
    /// from the database), but a prompt on `/v1` may hold one; one address per email field,
    /// never a list or a display name; display names without control characters; the CLI
    /// never prints a control character a client chose.
    async fn input_is_refused_clearly_at_the_edge(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let upstream = crate::helpers::FakeUpstream::chat().await;
        app.add_channel("main", &upstream, "gpt-4o-mini").await;
        app.price("gpt-4o-mini", "1", "1").await;
        let browser = Browser::new(&app);
        browser.register("nul", PASSWORD).await;
        for path in ["/logs?model=a%00b", "/logs.csv?model=%00", "/login?next=/%00", "/keys%00"] {
            let answer = browser.get(path).await;
            assert_eq!(answer.status, 400, "{path}: {}", answer.body);
        }
        browser.get("/profile").await;
        let nul_form = browser.post("/profile", &[("display_name", "a\0b"), ("email", "nul@example.com")]).await;
        assert_eq!(nul_form.status, 400, "{}", nul_form.body);
        let control = browser.post("/profile", &[("display_name", "bell\u{7}"), ("email", "nul@example.com")]).await;
        assert_eq!(control.status, 422);
        assert!(control.field_error("display_name").is_some(), "{}", control.body);

        let api = crate::helpers::Api { app: &app, token: crate::helpers::admin_token(&app, "root", "root").await };
        let (status, body) = api.put("/api/options/site_name", serde_json::json!({"value": "a\u{0}b"})).await;
        assert_eq!(status, 400, "{body}");
        let (status, body) = api.get("/api/users/nul%00").await;
        assert_eq!(status, 400, "{body}");
        let (status, _) = api.put("/api/options/site_name", serde_json::json!({"value": "back\\u0000slash"})).await;
        assert_eq!(status, 200, "an escaped backslash is no NUL");

        for email in ["a@x.test,b@evil.test", "<a@evil.test>", "Ann <ann@example.com>", "ann@example.com\r\nBcc: x@evil.test"] {
            let other = Browser::new(&app);
            other.get("/register").await;
            let refused = other.post("/register", &[("username", "listy"), ("email", email), ("password", PASSWORD), ("password_confirm", PASSWORD)]).await;
            assert_eq!(refused.status, 422, "{email:?}");
            assert!(refused.field_error("email").is_some(), "{email:?}: {}", refused.body);
        }

        service::users::change_quota(app.ctx(), &crate::helpers::CLI, "nul", service::users::QuotaChange {
            usd: Some("5".into()),
            reason: Some("test".into()),
            ..Default::default()
        })
        .await
        .unwrap();
        app.reload().await;
        let key = app.key_for("nul").await;
        let prompt = serde_json::json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "a\u{0}b"}]});
        assert_eq!(app.chat(&key, prompt).await.status(), 200, "a prompt may hold a NUL");
        let escape = serde_json::json!({"model": "evil\u{1b}[2Jred", "messages": [{"role": "user", "content": "hi"}]});
        assert_eq!(app.chat(&key, escape).await.status(), 400);
        app.wait_for_logs(2).await;
        let printed = crate::shutdown::tollgate(&app.db_url, &["logs", "--limit", "10"]).unwrap();
        assert!(!printed.contains('\u{1b}'), "a raw escape reached the terminal: {printed:?}");
        assert!(printed.contains("\\u{1b}"), "{printed}");
    }
}
