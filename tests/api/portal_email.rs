//! The portal's mail, through a real SMTP server on loopback: proving an address with the
//! emailed code or link, being held at /verify-email while the site requires it, guessing
//! bounded, resetting a password with the emailed link, and mail failures said clearly.

use crate::helpers::{Api, Browser, CLI, MailSink, TestApp, admin_token, db_test};
use tollgate::service;

const PASSWORD: &str = "correct horse battery";
const NEW_PASSWORD: &str = "a quite different phrase";

async fn with_mail(db: crate::helpers::TestDb) -> Option<(TestApp, MailSink)> {
    let sink = MailSink::start().await?;
    let app = TestApp::spawn(db).await;
    sink.configure(&app).await;
    Some((app, sink))
}

db_test! {
    /// While the site requires proven addresses, a new account is held at /verify-email: it
    /// is not signed in until the emailed code is entered; a wrong code says how many tries
    /// are left. Signing in later goes straight through.
    async fn a_required_verification_holds_the_account_until_the_code(db: TestDb) {
        let Some((app, sink)) = with_mail(db).await else { return };
        app.set_option("email_verification_required", "true").await;
        app.reload().await;
        let browser = Browser::new(&app);
        let registered = browser.register("alice", PASSWORD).await;
        assert_eq!(registered.status, 303, "{}", registered.body);
        assert_eq!(registered.location.as_deref(), Some("/verify-email"));
        let mail = sink.next_to("alice@example.com").await;
        assert!(mail.subject.contains(&mail.code()), "the subject carries the code: {}", mail.subject);
        let code = mail.code();

        // Held: no dashboard yet.
        let dashboard = browser.get("/dashboard").await;
        assert_eq!(dashboard.status, 303);
        assert!(dashboard.location.unwrap().starts_with("/login"));
        let form = browser.get("/verify-email").await;
        assert_eq!(form.status, 200);
        assert!(form.contains("alice@example.com"), "{}", form.body);
        assert!(form.contains(r#"name="code""#) && form.contains(r#"autocomplete="one-time-code""#));

        let wrong = if code == "000000" { "111111" } else { "000000" };
        let refused = browser.post("/verify-email", &[("code", wrong)]).await;
        assert_eq!(refused.status, 422);
        let error = refused.field_error("code").expect("the code is marked");
        assert!(error.contains("4 tries left"), "{error}");
        assert!(!app.user("alice").await.email_verified);

        let verified = browser.post("/verify-email", &[("code", &code)]).await;
        assert_eq!(verified.status, 303, "{}", verified.body);
        assert_eq!(verified.location.as_deref(), Some("/dashboard"));
        let dashboard = browser.get("/dashboard").await;
        assert_eq!(dashboard.status, 200);
        assert!(dashboard.contains("Your email address is verified"), "{}", dashboard.body);
        assert!(app.user("alice").await.email_verified);

        // Spent: the same code proves nothing again, and signing in needs no code now.
        let other = Browser::new(&app);
        let signed_in = other.sign_in("alice", PASSWORD).await;
        assert_eq!(signed_in.location.as_deref(), Some("/dashboard"));
        assert_eq!(sink.count_to("alice@example.com"), 0, "no further mail");
    }
}

db_test! {
    /// An account made before the requirement, signing in unverified, is sent to
    /// /verify-email with a fresh code; asking again at once is refused with the wait; the
    /// emailed link works in another browser (it only fills the form: nothing changes on
    /// GET) and leads to signing in.
    async fn signing_in_unverified_sends_a_code_and_the_link_works_elsewhere(db: TestDb) {
        let Some((app, sink)) = with_mail(db).await else { return };
        app.create_user_with_email("bob", "Bob@Example.com", PASSWORD).await;
        app.set_option("email_verification_required", "true").await;
        app.reload().await;
        let browser = Browser::new(&app);
        let held = browser.sign_in("bob@example.com", PASSWORD).await;
        assert_eq!(held.location.as_deref(), Some("/verify-email"), "{}", held.body);
        let mail = sink.next_to("Bob@Example.com").await;

        browser.get("/verify-email").await;
        let again = browser.post("/verify-email/resend", &[]).await;
        assert_eq!(again.status, 303);
        let page = browser.get("/verify-email").await;
        assert!(page.contains("A code was sent just now"), "{}", page.body);
        assert_eq!(sink.count_to("Bob@Example.com"), 0);

        let elsewhere = Browser::new(&app);
        let link = mail.link_path(&app);
        assert!(link.starts_with("/verify-email?"), "{link}");
        let form = elsewhere.get(&link).await;
        assert_eq!(form.status, 200, "{}", form.body);
        assert_eq!(form.input("code"), Some(mail.code()), "the link fills in the code");
        assert!(!app.user("bob").await.email_verified, "opening the link changes nothing");
        let email = form.input("email").unwrap();
        let done = elsewhere.post("/verify-email", &[("code", &mail.code()), ("email", &email)]).await;
        assert_eq!(done.location.as_deref(), Some("/login"), "{}", done.body);
        assert!(app.user("bob").await.email_verified);
        let login = elsewhere.get("/login").await;
        assert!(login.contains("verified. Sign in"), "{}", login.body);

        // The first browser, still held, goes through with its password now.
        let through = browser.sign_in("bob", PASSWORD).await;
        assert_eq!(through.location.as_deref(), Some("/dashboard"));
    }
}

db_test! {
    /// A code allows five wrong tries; then even the right code is refused until a new one
    /// is sent. Codes are stored hashed.
    async fn guessing_a_code_is_bounded(db: TestDb) {
        let Some((app, sink)) = with_mail(db).await else { return };
        app.set_option("email_verification_required", "true").await;
        app.reload().await;
        let browser = Browser::new(&app);
        browser.register("carol", PASSWORD).await;
        let code = sink.next_to("carol@example.com").await.code();
        let rows = app
            .db
            .fetch_all_with("SELECT code_hash FROM email_codes", &[])
            .await
            .unwrap();
        assert_eq!(rows.len(), 1);
        browser.get("/verify-email").await;
        let wrong = if code == "123456" { "654321" } else { "123456" };
        for _ in 0..5 {
            let refused = browser.post("/verify-email", &[("code", wrong)]).await;
            assert_eq!(refused.status, 422);
        }
        let locked = browser.post("/verify-email", &[("code", &code)]).await;
        assert_eq!(locked.status, 422);
        assert!(locked.field_error("code").unwrap().contains("too many wrong tries"), "{}", locked.body);
        assert!(!app.user("carol").await.email_verified);
    }
}

db_test! {
    /// Forgot password: the same answer for a known and an unknown address; the emailed link
    /// opens a form (nothing changes on GET), a mismatch comes back marked, the new password
    /// works, the old one and every open session do not, and the link works once.
    async fn a_password_is_reset_with_the_emailed_link(db: TestDb) {
        let Some((app, sink)) = with_mail(db).await else { return };
        app.create_user_with_email("dave", "dave@example.com", PASSWORD).await;
        let signed_in = Browser::new(&app);
        assert_eq!(signed_in.sign_in("dave", PASSWORD).await.location.as_deref(), Some("/dashboard"));

        let visitor = Browser::new(&app);
        visitor.get("/forgot-password").await;
        let unknown = visitor.post("/forgot-password", &[("email", "nobody@example.com")]).await;
        visitor.get("/forgot-password").await;
        let known = visitor.post("/forgot-password", &[("email", "dave@example.com")]).await;
        assert_eq!(unknown.status, 200, "{}", unknown.body);
        assert_eq!(known.status, 200, "{}", known.body);
        assert_eq!(
            unknown.body.replace("nobody@example.com", "X"),
            known.body.replace("dave@example.com", "X"),
            "the answer does not tell which addresses have accounts"
        );
        let mail = sink.next_to("dave@example.com").await;
        assert_eq!(sink.count_to("nobody@example.com"), 0);
        let link = mail.link_path(&app);
        assert!(link.starts_with("/reset-password?token="), "{link}");

        let form = visitor.get(&link).await;
        assert_eq!(form.status, 200, "{}", form.body);
        assert!(form.contains(r#"autocomplete="new-password""#));
        let token = form.input("token").unwrap();
        let mismatch = visitor
            .post("/reset-password", &[("token", &token), ("password", NEW_PASSWORD), ("password_confirm", "something else")])
            .await;
        assert_eq!(mismatch.status, 422);
        assert!(mismatch.field_error("password_confirm").is_some(), "{}", mismatch.body);

        let done = visitor
            .post("/reset-password", &[("token", &token), ("password", NEW_PASSWORD), ("password_confirm", NEW_PASSWORD)])
            .await;
        assert_eq!(done.location.as_deref(), Some("/login"), "{}", done.body);
        let login = visitor.get("/login").await;
        assert!(login.contains("Your password is changed"), "{}", login.body);

        // The session that was open is over; the old password fails; the new one works.
        assert_eq!(signed_in.get("/dashboard").await.status, 303);
        assert_eq!(Browser::new(&app).sign_in("dave", PASSWORD).await.status, 422);
        assert_eq!(
            Browser::new(&app).sign_in("dave", NEW_PASSWORD).await.location.as_deref(),
            Some("/dashboard")
        );
        // Once only.
        assert_eq!(visitor.get(&link).await.status, 404);
        let replay = visitor
            .post("/reset-password", &[("token", &token), ("password", PASSWORD), ("password_confirm", PASSWORD)])
            .await;
        assert_eq!(replay.status, 404);
        assert_eq!(Browser::new(&app).sign_in("dave", PASSWORD).await.status, 422);
    }
}

db_test! {
    /// A mail server that cannot be reached is said in words on the page, and the held
    /// account can ask again once it is fixed; a site without mail says so on the reset page.
    async fn mail_failures_are_said_clearly(db: TestDb) {
        let Some((app, sink)) = with_mail(db).await else { return };
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let closed_port = closed.local_addr().unwrap().port();
        drop(closed);
        app.set_option("smtp_port", &closed_port.to_string()).await;
        app.set_option("email_verification_required", "true").await;
        app.reload().await;
        let browser = Browser::new(&app);
        let registered = browser.register("erin", PASSWORD).await;
        assert_eq!(registered.location.as_deref(), Some("/verify-email"));
        let page = browser.get("/verify-email").await;
        assert!(page.contains("could not be sent"), "{}", page.body);

        // Fixed: asking again sends at once (the failed attempt does not hold it back).
        app.set_option("smtp_port", &sink.port.to_string()).await;
        app.reload().await;
        browser.post("/verify-email/resend", &[]).await;
        let code = sink.next_to("erin@example.com").await.code();
        browser.get("/verify-email").await;
        let done = browser.post("/verify-email", &[("code", &code)]).await;
        assert_eq!(done.location.as_deref(), Some("/dashboard"));

        // Without any mail server the requirement cannot be switched on, and the reset page
        // says the site sends no mail (to everybody alike).
        app.set_option("email_verification_required", "false").await;
        service::options::set(app.ctx(), &CLI, "smtp_host", "").await.unwrap();
        let refused = service::options::set(app.ctx(), &CLI, "email_verification_required", "true").await;
        assert!(refused.unwrap_err().to_string().contains("needs a mail server"));
        app.reload().await;
        let visitor = Browser::new(&app);
        visitor.get("/forgot-password").await;
        let answer = visitor.post("/forgot-password", &[("email", "erin@example.com")]).await;
        assert_eq!(answer.status, 503);
        assert!(answer.contains("does not send email"), "{}", answer.body);
    }
}

db_test! {
    /// Allowed and blocked domains, the daily sign-up limit per address, and the SMTP password
    /// that is listed masked.
    async fn registration_rules_and_write_only_mail_secret(db: TestDb) {
        let app = TestApp::spawn(db).await;
        app.set_option("email_domains_blocked", "tempmail.io").await;
        app.set_option("signups_per_ip_per_day", "2").await;
        app.reload().await;
        let browser = Browser::new(&app);
        browser.get("/register").await;
        let blocked = browser
            .post("/register", &[("username", "spammer"), ("email", "x@mx.tempmail.io"), ("password", PASSWORD)])
            .await;
        assert_eq!(blocked.status, 422);
        assert!(blocked.field_error("email").unwrap().contains("tempmail.io"), "{}", blocked.body);
        assert_eq!(blocked.input("email").as_deref(), Some("x@mx.tempmail.io"), "what was typed is kept");

        for name in ["first", "second"] {
            let visitor = Browser::new(&app);
            assert_eq!(visitor.register(name, PASSWORD).await.status, 303);
        }
        let third = Browser::new(&app).register("third", PASSWORD).await;
        assert_eq!(third.status, 429, "{}", third.body);

        let api = Api { token: admin_token(&app, "root", "root").await, app: &app };
        let (status, _) = api.put("/api/options/smtp_password", serde_json::json!({"value": "hunter2"})).await;
        assert_eq!(status, 200);
        let (_, listed) = api.get("/api/options").await;
        let text = listed.to_string();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("********"), "{text}");
        let stored = tollgate::service::db::options::all(&app.db).await.unwrap();
        assert!(stored.iter().any(|(n, v)| n == "smtp_password" && v == "hunter2"), "the real value is what is stored");
    }
}

db_test! {
    /// The low-balance warning: one email when the balance falls below the line, none again
    /// until it has been back above it, then one for the next crossing; the person's own line
    /// (set on the profile, in their language) or the site's default; none without a proven
    /// address; two rounds at once send one email.
    async fn a_low_balance_is_mailed_once_per_crossing(db: TestDb) {
        use tollgate::service::balance_alerts::warn_low_balances;
        use tollgate::service::users::QuotaChange;
        let Some((app, sink)) = with_mail(db).await else { return };
        app.set_option("low_balance_default_usd", "0.5").await;
        let alice = service::users::create(app.ctx(), &CLI, service::users::CreateUser {
            username: "alice".into(), password: Some(PASSWORD.into()), email: Some("alice@example.com".into()),
            quota_usd: Some("1".into()), ..Default::default()
        }).await.unwrap();
        let listen = app.state.listen_url.clone();
        let change = |usd: &str| QuotaChange { usd: Some(usd.into()), reason: Some("a test".into()), ..Default::default() };
        let round = || warn_low_balances(app.ctx(), &listen);

        // Unproven address: no warning, however low.
        service::users::change_quota(app.ctx(), &CLI, "alice", change("-0.8")).await.unwrap();
        assert_eq!(round().await.unwrap(), 0);
        app.db
            .write(async |tx| tollgate::service::db::users::mark_email_verified(tx, alice.id, "alice@example.com").await.map(|_| ()))
            .await
            .unwrap();

        // $0.20 is below the site's $0.50: one email, and only one, even from two rounds at once.
        let (a, b) = tokio::join!(round(), round());
        assert_eq!(a.unwrap() + b.unwrap(), 1);
        let mail = sink.next_to("alice@example.com").await;
        assert!(mail.subject.contains("$0.20"), "{}", mail.subject);
        assert!(mail.text.contains("$0.50") && mail.text.contains("/wallet"), "{}", mail.text);
        assert_eq!(round().await.unwrap(), 0, "still below: no second email");

        // Back above, then below again: the next crossing sends the next email.
        service::users::change_quota(app.ctx(), &CLI, "alice", change("1")).await.unwrap();
        assert_eq!(round().await.unwrap(), 0);
        service::users::change_quota(app.ctx(), &CLI, "alice", change("-0.9")).await.unwrap();
        assert_eq!(round().await.unwrap(), 1);
        sink.next_to("alice@example.com").await;

        // The person's own line, set on the profile in Chinese; 0 turns warnings off.
        let browser = Browser::new(&app);
        browser.sign_in("alice", PASSWORD).await;
        browser.get("/profile?lang=zh-CN").await;
        let refused = browser.post("/profile/low-balance", &[("low_balance_usd", "a lot")]).await;
        assert_eq!(refused.status, 422);
        assert!(refused.field_error("low_balance_usd").is_some(), "{}", refused.body);
        browser.post("/profile/low-balance", &[("low_balance_usd", "2")]).await;
        let profile = browser.get("/profile").await;
        assert_eq!(profile.input("low_balance_usd").as_deref(), Some("2"));
        service::users::change_quota(app.ctx(), &CLI, "alice", change("1")).await.unwrap();
        assert_eq!(round().await.unwrap(), 1, "$1.30 is below the own line of $2");
        let mail = sink.next_to("alice@example.com").await;
        assert!(mail.subject.contains("余额不足"), "in the person's language: {}", mail.subject);
        browser.post("/profile/low-balance", &[("low_balance_usd", "0")]).await;
        service::users::change_quota(app.ctx(), &CLI, "alice", change("-1.2")).await.unwrap();
        assert_eq!(round().await.unwrap(), 0, "warnings off");
    }
}
