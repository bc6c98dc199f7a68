//! Signing in to the portal through OAuth providers, over real HTTP against the fake GitHub and
//! OpenID Connect providers: the whole redirect flow with PKCE, state and nonce; sign-up under
//! the registration rules; linking and unlinking on the profile; and every way an answer can be
//! forged or spoiled.

use serde_json::json;

use crate::helpers::browser::Answer;
use crate::helpers::oauth_provider::{FakeProvider, FakeUser, Flavour, Tamper};
use crate::helpers::{Api, Browser, CLI, TestApp, admin_token, db_test};
use tollgate::service::db;
use tollgate::service::oauth::NewProvider;

const PASSWORD: &str = "correct horse battery";

/// Adds the fake provider to the app as `idp` (OIDC, by discovery) or `github`.
async fn add_provider(app: &TestApp, fake: &FakeProvider, flavour: Flavour) -> String {
    let input = match flavour {
        Flavour::Oidc => NewProvider {
            kind: "oidc".into(),
            name: "idp".into(),
            display_name: Some("Company SSO".into()),
            client_id: fake.client_id.clone(),
            client_secret: fake.client_secret.clone(),
            issuer: Some(fake.issuer().to_string()),
            ..Default::default()
        },
        Flavour::GitHub => NewProvider {
            kind: "github".into(),
            name: "github".into(),
            client_id: fake.client_id.clone(),
            client_secret: fake.client_secret.clone(),
            auth_url: Some(fake.url("/login/oauth/authorize")),
            token_url: Some(fake.url("/login/oauth/access_token")),
            api_url: Some(fake.url("/api")),
            ..Default::default()
        },
    };
    tollgate::service::oauth::add_provider(app.ctx(), &CLI, &app.state.oauth, input)
        .await
        .expect("add the provider")
        .name
}

/// The path and query of a URL on the app.
fn local(app: &TestApp, url: &str) -> String {
    url.strip_prefix(&app.url(""))
        .unwrap_or_else(|| panic!("{url} is not on the app"))
        .to_string()
}

/// The provider approves at once: the authorization URL answers with a redirect back to the
/// app, whose path and query this returns.
async fn approve(app: &TestApp, authorize_url: &str) -> String {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let answer = client.get(authorize_url).send().await.unwrap();
    assert_eq!(answer.status().as_u16(), 302, "{:?}", answer.text().await);
    let back = answer.headers()["location"].to_str().unwrap().to_string();
    local(app, &back)
}

/// Starts at the app, goes through the provider, and comes back: the callback's answer.
async fn through(browser: &Browser<'_>, provider: &str, query: &str) -> Answer {
    let start = browser
        .get(&format!("/oauth/{provider}/start{query}"))
        .await;
    assert_eq!(start.status, 303, "{}", start.body);
    let authorize = start.location.expect("sent to the provider");
    let callback = approve(browser.app, &authorize).await;
    browser.get(&callback).await
}

async fn user_count(app: &TestApp) -> i64 {
    db::users::count(&app.db).await.unwrap()
}

db_test! {
    /// A first OIDC sign-in makes an account (a free username from the provider's, the
    /// verified address, no password) and signs it in; the next one signs the same account in.
    async fn an_oidc_sign_in_makes_the_account_once(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let fake = FakeProvider::start(Flavour::Oidc).await;
        add_provider(&app, &fake, Flavour::Oidc).await;
        // Someone already has the provider's username: the new one gets a number.
        app.create_user("octocat", "0").await;
        fake.set_user(FakeUser { subject: "idp-user-1".into(), ..FakeUser::default() });

        let browser = Browser::new(&app);
        let login = browser.get("/login").await;
        assert!(login.contains(r#"href="/oauth/idp/start""#), "{}", login.body);
        assert!(login.contains("Continue with Company SSO"));
        let start = browser.get("/oauth/idp/start").await;
        let authorize = start.location.clone().unwrap();
        assert!(authorize.starts_with(&fake.url("/authorize?")), "{authorize}");
        assert!(authorize.contains("code_challenge_method=S256") && authorize.contains("nonce="));
        let callback = approve(&app, &authorize).await;
        let arrived = browser.get(&callback).await;
        assert_eq!(arrived.status, 303, "{}", arrived.body);
        assert_eq!(arrived.location.as_deref(), Some("/dashboard"));
        let dashboard = browser.get("/dashboard").await;
        assert_eq!(dashboard.status, 200);
        assert!(dashboard.contains("octocat1"), "{}", dashboard.body);

        let user = app.user("octocat1").await;
        assert_eq!(user.email.as_deref(), Some("octocat@example.com"));
        assert!(user.email_verified, "the provider verified the address");
        assert!(user.password_hash.is_none());
        let before = user_count(&app).await;

        // Signing in again, from another browser, finds the same account.
        let other = Browser::new(&app);
        let again = through(&other, "idp", "").await;
        assert_eq!(again.location.as_deref(), Some("/dashboard"));
        assert!(other.get("/profile").await.contains(r#"value="octocat1""#));
        assert_eq!(user_count(&app).await, before);
        assert_eq!(fake.token_exchanges(), 2);

        // The profile lists the identity, and the account sets its first password there
        // without a current one.
        let profile = other.get("/profile").await;
        assert!(profile.contains("Company SSO · octocat"), "{}", profile.body);
        assert!(!profile.contains(r#"name="current_password""#));
        let set = other
            .post("/profile/password", &[("password", PASSWORD), ("password_confirm", PASSWORD)])
            .await;
        assert_eq!(set.status, 303, "{}", set.body);
        assert!(Browser::new(&app).sign_in("octocat1", PASSWORD).await.status == 303);
    }
}

db_test! {
    /// An answer that is not this session's own attempt is refused and makes nothing: another
    /// browser's, a forged state, a replay, a provider's refusal; so is an ID token with the
    /// wrong nonce, a bad signature, another audience, another issuer or past its expiry.
    async fn forged_and_spoiled_answers_are_refused(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let fake = FakeProvider::start(Flavour::Oidc).await;
        add_provider(&app, &fake, Flavour::Oidc).await;
        let users = user_count(&app).await;

        // The answer to A's attempt, brought by B (login CSRF): B has no attempt.
        let victim = Browser::new(&app);
        let attacker = Browser::new(&app);
        let start = attacker.get("/oauth/idp/start").await;
        let callback = approve(&app, &start.location.unwrap()).await;
        let refused = victim.get(&callback).await;
        assert_eq!(refused.status, 400, "{}", refused.body);
        assert!(refused.contains("not valid any more"), "{}", refused.body);

        // A forged state in the attempt's own session.
        let start = victim.get("/oauth/idp/start").await;
        let callback = approve(&app, &start.location.unwrap()).await;
        let forged = callback.replace("state=", "state=x");
        assert_eq!(victim.get(&forged).await.status, 400);
        // The attempt is spent by that try: the real answer after it is refused too.
        assert_eq!(victim.get(&callback).await.status, 400);

        // A replay of an answer that already signed in.
        let browser = Browser::new(&app);
        let start = browser.get("/oauth/idp/start").await;
        let callback = approve(&app, &start.location.unwrap()).await;
        assert_eq!(browser.get(&callback).await.status, 303);
        assert_eq!(browser.get(&callback).await.status, 400, "an answer works once");
        let users = users + 1;
        assert_eq!(user_count(&app).await, users);

        // The provider says no.
        let start = Browser::new(&app);
        start.get("/oauth/idp/start").await;
        let state = start_state(&start, &app).await;
        let declined = start
            .get(&format!("/oauth/idp/callback?error=access_denied&state={state}"))
            .await;
        assert_eq!(declined.status, 400);
        assert!(declined.contains("access_denied"), "{}", declined.body);

        // Spoiled ID tokens: each refused, none signs in, none makes an account.
        fake.set_user(FakeUser { subject: "spoiled".into(), login: "spoiled".into(), email: Some("spoiled@example.com".into()), ..FakeUser::default() });
        for tamper in [Tamper::WrongNonce, Tamper::BadSignature, Tamper::WrongAudience, Tamper::WrongIssuer, Tamper::Expired] {
            fake.set_tamper(tamper);
            let browser = Browser::new(&app);
            let answer = through(&browser, "idp", "").await;
            assert_eq!(answer.status, 502, "{tamper:?}: {}", answer.body);
            assert!(answer.contains("could not be checked"), "{tamper:?}");
            assert_eq!(browser.get("/dashboard").await.status, 303, "{tamper:?} signed nobody in");
        }
        assert_eq!(user_count(&app).await, users);
        // The same person with an honest token is fine.
        let browser = Browser::new(&app);
        assert_eq!(through(&browser, "idp", "").await.location.as_deref(), Some("/dashboard"));

        // A provider that rotated its key: the new key is fetched once and the token passes.
        fake.rotate_key();
        let browser = Browser::new(&app);
        assert_eq!(through(&browser, "idp", "").await.location.as_deref(), Some("/dashboard"));

        // An unknown provider is a 404 page.
        assert_eq!(Browser::new(&app).get("/oauth/nobody/start").await.status, 404);
    }
}

/// The state of the attempt the browser just started (read back from its redirect).
async fn start_state(browser: &Browser<'_>, _app: &TestApp) -> String {
    let start = browser.get("/oauth/idp/start").await;
    let url = start.location.unwrap();
    let query = url.split_once('?').unwrap().1;
    serde_urlencoded::from_str::<Vec<(String, String)>>(query)
        .unwrap()
        .into_iter()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
}

db_test! {
    /// GitHub: the numeric id is the identity, the primary verified address from
    /// `/user/emails` the account's email; the flow carries PKCE and no nonce.
    async fn a_github_sign_in_uses_the_verified_primary_address(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let fake = FakeProvider::start(Flavour::GitHub).await;
        add_provider(&app, &fake, Flavour::GitHub).await;
        fake.set_user(FakeUser { subject: "4242".into(), login: "mona".into(), name: "Mona Lisa".into(), email: Some("mona@example.com".into()), email_verified: true });
        let browser = Browser::new(&app);
        let register = browser.get("/register").await;
        assert!(register.contains("Continue with GitHub"), "{}", register.body);
        let answer = through(&browser, "github", "").await;
        assert_eq!(answer.location.as_deref(), Some("/dashboard"), "{}", answer.body);
        let mona = app.user("mona").await;
        assert_eq!(mona.email.as_deref(), Some("mona@example.com"));
        assert!(mona.email_verified);
        let identity = db::oauth::identity(&app.db, "github", "4242").await.unwrap().unwrap();
        assert_eq!(identity.user_id, mona.id);

        // A newcomer who came by an invite link keeps it through the provider.
        let ivy = app.create_user_with_email("ivy", "ivy@example.com", PASSWORD).await;
        let code = tollgate::service::invites::ensure_code(app.ctx(), ivy.id).await.unwrap();
        fake.set_user(FakeUser { subject: "4444".into(), login: "invited".into(), name: String::new(), email: None, email_verified: false });
        let invited = Browser::new(&app);
        let register = invited.get(&format!("/register?invite={code}")).await;
        assert!(register.contains(&format!("/oauth/github/start?invite={code}")), "{}", register.body);
        assert_eq!(through(&invited, "github", &format!("?invite={code}")).await.status, 303);
        assert_eq!(app.user("invited").await.inviter_id, Some(ivy.id));

        // Unverified: the account is made without the address.
        fake.set_user(FakeUser { subject: "4343".into(), login: "unproven".into(), name: String::new(), email: Some("someone@example.com".into()), email_verified: false });
        let browser = Browser::new(&app);
        assert_eq!(through(&browser, "github", "").await.status, 303);
        assert_eq!(app.user("unproven").await.email, None);
    }
}

db_test! {
    /// Accounts are never merged on an address: an unverified one makes a separate account
    /// without it; a verified one that an account already has is refused with what to do.
    /// With sign-ups closed, only existing identities sign in.
    async fn accounts_are_never_merged_on_an_email(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let fake = FakeProvider::start(Flavour::Oidc).await;
        add_provider(&app, &fake, Flavour::Oidc).await;
        let dave = app.create_user_with_email("dave", "dave@example.com", PASSWORD).await;

        fake.set_user(FakeUser { subject: "claims-dave".into(), login: "dave".into(), name: "Dave?".into(), email: Some("dave@example.com".into()), email_verified: false });
        let browser = Browser::new(&app);
        assert_eq!(through(&browser, "idp", "").await.status, 303);
        let separate = app.user("dave1").await;
        assert_ne!(separate.id, dave.id);
        assert_eq!(separate.email, None);
        assert!(db::oauth::identities_of(&app.db, dave.id).await.unwrap().is_empty());

        fake.set_user(FakeUser { subject: "verified-dave".into(), login: "dave-two".into(), name: String::new(), email: Some("dave@example.com".into()), email_verified: true });
        let browser = Browser::new(&app);
        let refused = through(&browser, "idp", "").await;
        assert_eq!(refused.status, 409, "{}", refused.body);
        assert!(refused.contains("link Company SSO on your profile"), "{}", refused.body);
        assert!(db::oauth::identity(&app.db, "idp", "verified-dave").await.unwrap().is_none());

        app.set_option("registration_enabled", "false").await;
        fake.set_user(FakeUser { subject: "newcomer".into(), login: "newcomer".into(), ..FakeUser::default() });
        let closed = through(&Browser::new(&app), "idp", "").await;
        assert_eq!(closed.status, 403, "{}", closed.body);
        fake.set_user(FakeUser { subject: "claims-dave".into(), login: "dave".into(), name: String::new(), email: None, email_verified: false });
        let known = through(&Browser::new(&app), "idp", "").await;
        assert_eq!(known.location.as_deref(), Some("/dashboard"), "an existing identity still signs in");
    }
}

db_test! {
    /// A signed-in person links an identity on the profile, then signs in with it; the same
    /// identity cannot be linked to a second account; unlinking works on one's own only, and
    /// never removes the last way into an account without a password.
    async fn identities_are_linked_and_unlinked_on_the_profile(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let fake = FakeProvider::start(Flavour::Oidc).await;
        add_provider(&app, &fake, Flavour::Oidc).await;
        let carol = app.create_user_with_email("carol", "carol@example.com", PASSWORD).await;
        fake.set_user(FakeUser { subject: "carol-at-idp".into(), login: "carol.idp".into(), email: Some("carol@corp.example".into()), ..FakeUser::default() });

        let browser = Browser::new(&app);
        browser.sign_in("carol", PASSWORD).await;
        let profile = browser.get("/profile").await;
        assert!(profile.contains(r#"href="/oauth/idp/start?intent=link""#), "{}", profile.body);
        let linked = through(&browser, "idp", "?intent=link").await;
        assert_eq!(linked.location.as_deref(), Some("/profile"), "{}", linked.body);
        let profile = browser.get("/profile").await;
        assert!(profile.contains("Company SSO is now linked"), "{}", profile.body);
        assert!(profile.contains("Company SSO · carol.idp"));
        let identity = db::oauth::identity(&app.db, "idp", "carol-at-idp").await.unwrap().unwrap();
        assert_eq!(identity.user_id, carol.id);

        // Signing in with it is signing in as carol.
        let elsewhere = Browser::new(&app);
        assert_eq!(through(&elsewhere, "idp", "").await.location.as_deref(), Some("/dashboard"));
        assert!(elsewhere.get("/profile").await.contains(r#"value="carol""#));

        // Erin cannot take it, nor unlink it.
        app.create_user_with_email("erin", "erin@example.com", PASSWORD).await;
        let erin = Browser::new(&app);
        erin.sign_in("erin", PASSWORD).await;
        let taken = through(&erin, "idp", "?intent=link").await;
        assert_eq!(taken.status, 409, "{}", taken.body);
        erin.get("/profile").await;
        let not_hers = erin.post(&format!("/profile/identities/{}/unlink", identity.id), &[]).await;
        assert_eq!(not_hers.status, 404, "{}", not_hers.body);
        assert!(db::oauth::identity(&app.db, "idp", "carol-at-idp").await.unwrap().is_some());

        // Carol unlinks it (she has a password).
        browser.get("/profile").await;
        let unlinked = browser.post(&format!("/profile/identities/{}/unlink", identity.id), &[]).await;
        assert_eq!(unlinked.status, 303, "{}", unlinked.body);
        assert!(db::oauth::identities_of(&app.db, carol.id).await.unwrap().is_empty());

        // An account made by the provider keeps its only way in.
        fake.set_user(FakeUser { subject: "only-way".into(), login: "frank".into(), email: None, email_verified: false, name: String::new() });
        let frank = Browser::new(&app);
        assert_eq!(through(&frank, "idp", "").await.status, 303);
        let id = db::oauth::identity(&app.db, "idp", "only-way").await.unwrap().unwrap().id;
        frank.get("/profile").await;
        let kept = frank.post(&format!("/profile/identities/{id}/unlink"), &[]).await;
        assert_eq!(kept.status, 403, "{}", kept.body);
        assert!(kept.contains("only way to sign in"), "{}", kept.body);

        // Deleting the account frees the identity.
        let frank_user = app.user("frank").await;
        tollgate::service::accounts::delete_account(app.ctx(), &tollgate::service::Caller::User(frank_user.id), "frank").await.unwrap();
        assert!(db::oauth::identity(&app.db, "idp", "only-way").await.unwrap().is_none());
    }
}

db_test! {
    /// Providers are managed in `/api/oauth-providers` and the CLI; the client secret goes
    /// in and never comes back; an OIDC issuer that does not answer discovery is refused.
    async fn providers_are_managed_by_administrators(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let fake = FakeProvider::start(Flavour::Oidc).await;
        let api = Api { token: admin_token(&app, "root", "root").await, app: &app };
        let (status, body) = api
            .post("/api/oauth-providers", json!({
                "type": "oidc", "name": "Corp", "client_id": fake.client_id, "client_secret": "s3cret-value",
                "issuer": fake.issuer(), "display_name": "Corp login"
            }))
            .await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["name"], "corp");
        assert_eq!(body["client_secret"], "********");
        assert_eq!(body["callback_url"], app.url("/oauth/corp/callback"));
        assert_eq!(body["token_url"], fake.url("/token"));
        let (status, body) = api.get("/api/oauth-providers").await;
        assert_eq!(status, 200);
        assert!(!body.to_string().contains("s3cret-value"), "{body}");
        let (status, body) = api
            .post("/api/oauth-providers", json!({
                "type": "oidc", "name": "broken", "client_id": "c", "client_secret": "s",
                "issuer": format!("{}/nowhere", fake.issuer())
            }))
            .await;
        assert_eq!(status, 400, "{body}");
        assert!(body.to_string().contains("issuer"), "{body}");
        let (status, _) = api
            .post("/api/oauth-providers", json!({"type": "saml", "name": "x", "client_id": "c", "client_secret": "s"}))
            .await;
        assert_eq!(status, 400);
        let (status, _) = api.delete("/api/oauth-providers/corp").await;
        assert_eq!(status, 204);
        let (status, _) = api.delete("/api/oauth-providers/corp").await;
        assert_eq!(status, 404);

        // A person is not an administrator.
        app.create_user("plain", "0").await;
        let url = app.db_url.clone();
        let run = |args: &[&str]| crate::shutdown::tollgate(&url, args);
        let added = run(&["oauth", "add", "--type", "github", "--name", "github", "--client-id", "gh-client", "--client-secret", "gh-secret"]).unwrap();
        assert!(added.contains("/oauth/github/callback"), "{added}");
        let listed = run(&["oauth", "list"]).unwrap();
        assert!(listed.contains("github") && listed.contains("gh-client"), "{listed}");
        assert!(!listed.contains("gh-secret"));
        let json_list = run(&["oauth", "list", "--json"]).unwrap();
        assert!(json_list.contains("https://github.com/login/oauth/authorize"), "{json_list}");
        assert!(!json_list.contains("gh-secret"));
        assert!(run(&["oauth", "add", "--type", "oidc", "--name", "x", "--client-id", "c", "--client-secret", "s"]).unwrap_err().contains("--issuer"));
        run(&["oauth", "remove", "github"]).unwrap();
        assert!(run(&["oauth", "remove", "github"]).unwrap_err().contains("no sign-in provider"));
    }
}

db_test! {
    /// An account with no password, signed in long ago (a stolen session), cannot set a
    /// password or change its email until it signs in again through its provider, as the
    /// same identity; then it may, for a while. Another identity at the provider is refused.
    async fn a_provider_account_proves_itself_again_before_changing_secrets(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let fake = FakeProvider::start(Flavour::Oidc).await;
        add_provider(&app, &fake, Flavour::Oidc).await;
        fake.set_user(FakeUser { subject: "idp-owner".into(), ..FakeUser::default() });
        let browser = Browser::new(&app);
        assert_eq!(through(&browser, "idp", "").await.status, 303);
        app.age_sign_ins_of("octocat").await;

        let profile = browser.get("/profile").await;
        assert!(profile.contains("/oauth/idp/start?intent=reauth"), "{}", profile.body);
        let set = browser.post("/profile/password", &[("password", PASSWORD), ("password_confirm", PASSWORD)]).await;
        assert_eq!(set.status, 422, "{}", set.body);
        assert!(set.contains("sign in again"), "{}", set.body);
        let email = browser.post("/profile", &[("display_name", "Octo"), ("email", "thief@evil.example")]).await;
        assert_eq!(email.status, 422, "{}", email.body);
        assert!(app.user("octocat").await.password_hash.is_none());

        // Someone else's identity at the same provider proves nothing.
        fake.set_user(FakeUser { subject: "idp-stranger".into(), login: "stranger".into(), ..FakeUser::default() });
        let stranger = through(&browser, "idp", "?intent=reauth").await;
        assert_eq!(stranger.status, 403, "{}", stranger.body);

        fake.set_user(FakeUser { subject: "idp-owner".into(), ..FakeUser::default() });
        let proved = through(&browser, "idp", "?intent=reauth").await;
        assert_eq!(proved.location.as_deref(), Some("/profile"), "{}", proved.body);
        let set = browser.post("/profile/password", &[("password", PASSWORD), ("password_confirm", PASSWORD)]).await;
        assert_eq!(set.status, 303, "{}", set.body);
        assert_eq!(Browser::new(&app).sign_in("octocat", PASSWORD).await.status, 303);
    }
}
