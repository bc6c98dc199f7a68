//! Invitations into an organisation, through the pages: by email (mailed over real SMTP, or
//! shown to the inviter when the site sends no mail) and by username; accepted by the invited
//! account only — after registering through the link and proving the address — declined,
//! revoked, expired and reused; who may invite whom; and every answer in the organisation's
//! audit trail.

use sqlx::Row;

use crate::helpers::{Browser, CLI, MailSink, TestApp, db_test};
use tollgate::domain::kinds::OrgRole;
use tollgate::service::Caller;
use tollgate::service::db::{self, Value};
use tollgate::service::orgs::{self, CreateOrg, TeamInput};

const PASSWORD: &str = "correct horse battery";

/// Alice owns `acme`, with the teams Research and Support; her address is proven.
async fn acme(app: &TestApp) -> (i64, i64) {
    app.create_user_with_email("alice", "alice@example.com", PASSWORD)
        .await;
    verify(app, "alice").await;
    orgs::create(
        app.ctx(),
        &CLI,
        CreateOrg {
            name: "Acme Research Labs".into(),
            slug: "acme".into(),
            owner: Some("alice".into()),
            ..Default::default()
        },
    )
    .await
    .expect("create the organisation");
    let research = orgs::create_team(app.ctx(), &CLI, "acme", team("Research"))
        .await
        .expect("a team")
        .id;
    let support = orgs::create_team(app.ctx(), &CLI, "acme", team("Support"))
        .await
        .expect("a team")
        .id;
    (research, support)
}

fn team(name: &str) -> TeamInput {
    TeamInput {
        name: Some(name.into()),
        ..Default::default()
    }
}

async fn verify(app: &TestApp, username: &str) {
    app.db
        .write(async |tx| {
            tx.execute(
                "UPDATE users SET email_verified = 1 WHERE username = ?",
                &[Value::Text(username.into())],
            )
            .await
        })
        .await
        .unwrap();
}

async fn signed_in<'a>(app: &'a TestApp, username: &str) -> Browser<'a> {
    let browser = Browser::new(app);
    let answer = browser.sign_in(username, PASSWORD).await;
    assert_eq!(answer.status, 303, "{} signs in: {}", username, answer.body);
    browser
}

async fn role_of(app: &TestApp, username: &str) -> Option<OrgRole> {
    let user = app.user(username).await;
    orgs::show(app.ctx(), &Caller::User(user.id), "acme")
        .await
        .ok()
        .and_then(|view| view.role)
}

/// The path of the link the page shows once, when the site sends no mail.
fn shown_link(body: &str) -> String {
    let marker = r#"id="invite-link" data-copy>"#;
    let start = body.find(marker).expect("the link is shown") + marker.len();
    let link = &body[start..];
    let link = &link[..link.find('<').unwrap()];
    let path = link.find("/invitations/").expect("a link to an invitation");
    link[path..].to_string()
}

/// Who did what to `acme`, whose audit rows name it by its id.
async fn audit_actions(app: &TestApp) -> Vec<(String, String)> {
    let acme = orgs::show(app.ctx(), &CLI, "acme").await.unwrap();
    app.db
        .fetch_all_with(
            &format!(
                "SELECT actor, action FROM audit_log WHERE target = 'org:{}' ORDER BY id",
                acme.id
            ),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| {
            (
                row.try_get::<String, _>("actor").unwrap(),
                row.try_get::<String, _>("action").unwrap(),
            )
        })
        .collect()
}

db_test! {
    /// An owner invites an address into a team as its manager; the mail's link leads a
    /// newcomer to register, prove the address and come back to the invitation, and accepting
    /// makes them a member and the team's manager. The link works once.
    async fn a_newcomer_registers_through_the_mailed_link(db: TestDb) {
        let Some(sink) = MailSink::start().await else { return };
        let app = TestApp::spawn(db).await;
        sink.configure(&app).await;
        app.set_option("email_verification_required", "true").await;
        let (research, _) = acme(&app).await;
        app.reload().await;
        let alice = signed_in(&app, "alice").await;
        alice.get("/orgs/acme/invitations").await;
        let research_id = research.to_string();
        let sent = alice
            .post(
                "/orgs/acme/invitations",
                &[("email", "ivy@example.com"), ("role", "member"), ("team", research_id.as_str()), ("manager", "1")],
            )
            .await;
        assert_eq!(sent.status, 303, "{}", sent.body);
        let page = alice.get("/orgs/acme/invitations").await;
        assert!(page.contains("The invitation is on its way to ivy@example.com"), "{}", page.body);
        assert!(page.contains("ivy@example.com") && page.contains("Waiting"), "{}", page.body);
        assert!(!page.contains("/invitations/") || !page.contains("Pass this link on"), "a mailed link is not shown");

        let mail = sink.next_to("ivy@example.com").await;
        assert!(mail.subject.contains("Acme Research Labs"), "{}", mail.subject);
        let link = mail.link_path(&app);
        assert!(link.starts_with("/invitations/"), "{link}");

        let ivy = Browser::new(&app);
        let opened = ivy.get(&link).await;
        assert_eq!(opened.status, 200);
        assert!(opened.contains("You are invited to join Acme Research Labs"), "{}", opened.body);
        assert!(opened.contains(&format!("/register?next={link}")), "{}", opened.body);

        ivy.get(&format!("/register?next={link}")).await;
        let registered = ivy
            .post(
                "/register",
                &[
                    ("username", "ivy"),
                    ("email", "ivy@example.com"),
                    ("password", PASSWORD),
                    ("password_confirm", PASSWORD),
                    ("next", link.as_str()),
                ],
            )
            .await;
        assert_eq!(registered.location.as_deref(), Some("/verify-email"), "{}", registered.body);
        // Not accepted before the address is proven: the invitation needs the proven address.
        let code = sink.next_to("ivy@example.com").await.code();
        let verified = ivy.post("/verify-email", &[("code", &code)]).await;
        assert_eq!(verified.location.as_deref(), Some(link.as_str()), "back to the invitation");
        let back = ivy.get(&link).await;
        assert!(back.contains("Accept"), "{}", back.body);

        let accepted = ivy.post(&format!("{link}/accept"), &[]).await;
        assert_eq!(accepted.status, 303, "{}", accepted.body);
        assert_eq!(accepted.location.as_deref(), Some("/orgs/acme"));
        assert_eq!(role_of(&app, "ivy").await, Some(OrgRole::Member));
        let teams = orgs::teams(app.ctx(), &CLI, "acme").await.unwrap();
        let research_team = teams.iter().find(|t| t.id == research).unwrap();
        assert!(
            research_team.members.iter().any(|m| m.username == "ivy" && m.manager),
            "ivy manages Research"
        );

        // The link worked once.
        assert_eq!(ivy.post(&format!("{link}/accept"), &[]).await.status, 404);
        assert_eq!(Browser::new(&app).get(&link).await.status, 404);

        let actions = audit_actions(&app).await;
        assert!(actions.contains(&("alice".into(), "org.invitation.create".into())), "{actions:?}");
        assert!(actions.contains(&("ivy".into(), "org.invitation.accept".into())), "{actions:?}");
    }
}

db_test! {
    /// Without mail the link is shown to the inviter once. Only the account whose proven
    /// address was invited may accept: another account, or the right address unproven, is
    /// told why. Declined, revoked and expired invitations cannot be accepted.
    async fn only_the_invited_proven_address_accepts(db: TestDb) {
        let app = TestApp::spawn(db).await;
        acme(&app).await;
        app.create_user_with_email("bob", "bob@example.com", PASSWORD).await;
        verify(&app, "bob").await;
        app.create_user_with_email("ivy", "ivy@example.com", PASSWORD).await;
        app.reload().await;
        let alice = signed_in(&app, "alice").await;
        alice.get("/orgs/acme/invitations").await;
        let invite = async |address: &str| {
            let page = alice
                .post("/orgs/acme/invitations", &[("email", address), ("role", "member")])
                .await;
            assert_eq!(page.status, 201, "{}", page.body);
            assert!(page.contains("Pass this link on"), "{}", page.body);
            shown_link(&page.body)
        };
        let link = invite("ivy@example.com").await;

        let bob = signed_in(&app, "bob").await;
        bob.get(&link).await;
        let refused = bob.post(&format!("{link}/accept"), &[]).await;
        assert_eq!(refused.status, 403);
        assert!(refused.contains("This invitation is for ivy@example.com"), "{}", refused.body);

        let ivy = signed_in(&app, "ivy").await;
        ivy.get(&link).await;
        let unproven = ivy.post(&format!("{link}/accept"), &[]).await;
        assert_eq!(unproven.status, 403);
        assert!(unproven.contains("Verify that address"), "{}", unproven.body);
        assert_eq!(role_of(&app, "ivy").await, None);

        // Declined (by the invited account, its address proven now): gone for good.
        verify(&app, "ivy").await;
        let declined = ivy.post(&format!("{link}/decline"), &[]).await;
        assert_eq!(declined.status, 303, "{}", declined.body);
        assert_eq!(ivy.post(&format!("{link}/accept"), &[]).await.status, 404);

        // Revoked by the inviter: its link stops working.
        let link = invite("ivy@example.com").await;
        let id = app
            .db
            .fetch_all_with("SELECT MAX(id) AS id FROM org_invitations", &[])
            .await
            .unwrap()[0]
            .try_get::<i64, _>("id")
            .unwrap();
        let revoked = alice.post(&format!("/orgs/acme/invitations/{id}/revoke"), &[]).await;
        assert_eq!(revoked.status, 303, "{}", revoked.body);
        assert_eq!(ivy.post(&format!("{link}/accept"), &[]).await.status, 404);

        // Expired: the page says so and accepting is refused.
        let link = invite("ivy@example.com").await;
        app.db
            .write(async |tx| {
                tx.execute(
                    "UPDATE org_invitations SET expires_at = ? WHERE state = 'pending'",
                    &[Value::Int(db::now_ms() - 1)],
                )
                .await
            })
            .await
            .unwrap();
        let page = ivy.get(&link).await;
        assert!(page.contains("no longer open"), "{}", page.body);
        assert_eq!(ivy.post(&format!("{link}/accept"), &[]).await.status, 409);

        // Sent again: a new link with seven more days, the old one dead.
        let listed = alice.get("/orgs/acme/invitations").await;
        assert!(listed.contains("Expired"), "{}", listed.body);
        let id = id + 1;
        let resent = alice.post(&format!("/orgs/acme/invitations/{id}/resend"), &[]).await;
        assert_eq!(resent.status, 200, "{}", resent.body);
        let fresh = shown_link(&resent.body);
        assert_ne!(fresh, link);
        assert_eq!(ivy.post(&format!("{link}/accept"), &[]).await.status, 404);
        assert_eq!(ivy.post(&format!("{fresh}/accept"), &[]).await.status, 303);
        assert_eq!(role_of(&app, "ivy").await, Some(OrgRole::Member));
    }
}

db_test! {
    /// Inviting a username answers the same whether the account exists or not; the person
    /// answers on their Invitations page. A team's manager invites members into their own team
    /// only; a plain member invites nobody; an outsider does not see the page at all.
    async fn usernames_and_who_may_invite(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let (research, support) = acme(&app).await;
        for name in ["carol", "mallory", "max"] {
            app.create_user_with_email(name, &format!("{name}@example.com"), PASSWORD).await;
        }
        orgs::add_member(app.ctx(), &CLI, "acme", orgs::AddMember {
            username: "max".into(),
            role: Some("member".into()),
            team: Some("Research".into()),
            manager: true,
        })
        .await
        .unwrap();
        app.reload().await;
        let alice = signed_in(&app, "alice").await;
        alice.get("/orgs/acme/invitations").await;
        let known = alice.post("/orgs/acme/invitations", &[("username", "carol"), ("role", "admin")]).await;
        let unknown = alice.post("/orgs/acme/invitations", &[("username", "nobody-here"), ("role", "admin")]).await;
        assert_eq!((known.status, unknown.status), (303, 303));
        let page = alice.get("/orgs/acme/invitations").await;
        assert!(page.contains("carol") && page.contains("nobody-here"), "{}", page.body);

        let carol = signed_in(&app, "carol").await;
        let mine = carol.get("/invitations").await;
        assert!(mine.contains("Acme Research Labs"), "{}", mine.body);
        let id = app
            .db
            .fetch_all_with("SELECT id FROM org_invitations WHERE username = 'carol'", &[])
            .await
            .unwrap()[0]
            .try_get::<i64, _>("id")
            .unwrap();
        // Someone else cannot answer carol's invitation.
        let mallory = signed_in(&app, "mallory").await;
        mallory.get("/invitations").await;
        assert_eq!(mallory.post(&format!("/invitations/by-name/{id}/accept"), &[]).await.status, 404);
        assert_eq!(carol.post(&format!("/invitations/by-name/{id}/accept"), &[]).await.status, 303);
        assert_eq!(role_of(&app, "carol").await, Some(OrgRole::Admin));

        // Max manages Research: he invites members into it, not elsewhere, not as admins.
        let max = signed_in(&app, "max").await;
        let page = max.get("/orgs/acme/invitations").await;
        assert_eq!(page.status, 200, "{}", page.body);
        let (r, s) = (research.to_string(), support.to_string());
        let into_research = max.post("/orgs/acme/invitations", &[("email", "new@example.com"), ("role", "member"), ("team", r.as_str())]).await;
        assert_eq!(into_research.status, 201, "{}", into_research.body);
        let into_support = max.post("/orgs/acme/invitations", &[("email", "new@example.com"), ("role", "member"), ("team", s.as_str())]).await;
        assert_eq!(into_support.status, 403, "{}", into_support.body);
        let as_admin = max.post("/orgs/acme/invitations", &[("email", "new@example.com"), ("role", "admin"), ("team", r.as_str())]).await;
        assert_eq!(as_admin.status, 403);

        // Both or neither of email and username: the form again, the field marked.
        let both = alice.post("/orgs/acme/invitations", &[("email", "x@example.com"), ("username", "carol")]).await;
        assert_eq!(both.status, 422);
        assert!(both.field_error("email").is_some(), "{}", both.body);
        assert_eq!(both.input("email").as_deref(), Some("x@example.com"));

        // A plain member, and an outsider.
        orgs::update_member(app.ctx(), &CLI, "acme", "carol", "member").await.unwrap();
        let member = carol.get("/orgs/acme/invitations").await;
        assert_eq!(member.status, 403, "{}", member.body);
        assert_eq!(mallory.get("/orgs/acme/invitations").await.status, 404);
    }
}

db_test! {
    /// The page a link opens says plainly what the invited person would join as — a member or
    /// an admin, in a team or managing it — and to a visitor not signed in offers registering
    /// first (the invited address is usually new here), signing in second.
    async fn the_invitation_page_says_what_one_joins_as(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let research = acme(&app).await.0.to_string();
        app.reload().await;
        let alice = signed_in(&app, "alice").await;
        alice.get("/orgs/acme/invitations").await;
        let invite = async |address: &str, fields: &[(&str, &str)]| {
            let mut form = vec![("email", address)];
            form.extend_from_slice(fields);
            let page = alice.post("/orgs/acme/invitations", &form).await;
            assert_eq!(page.status, 201, "{}", page.body);
            shown_link(&page.body)
        };
        let in_team = invite("ivy@example.com", &[("role", "member"), ("team", research.as_str())]).await;
        let managing = invite("mo@example.com", &[("role", "member"), ("team", research.as_str()), ("manager", "1")]).await;
        let admin = invite("ada@example.com", &[("role", "admin")]).await;

        let visitor = Browser::new(&app);
        let page = visitor.get(&in_team).await;
        assert_eq!(page.status, 200);
        assert!(page.contains("You would join as a member, in the team Research."), "{}", page.body);
        let register = page.body.find(&format!("<a class=\"button\" href=\"/register?next={in_team}\">Register</a>"));
        let sign_in = page.body.find(&format!("<a class=\"button secondary\" href=\"/login?next={in_team}\">Sign in</a>"));
        assert!(register.is_some() && sign_in.is_some(), "register leads, signing in follows: {}", page.body);
        assert!(register < sign_in, "register comes first");
        assert!(page.contains("New here? Register with the invited address."));
        let page = visitor.get(&managing).await;
        assert!(page.contains("You would join as a member, managing the team Research."), "{}", page.body);
        let page = visitor.get(&admin).await;
        assert!(page.contains("You would join as an admin."), "{}", page.body);

        // Signed in, the answers are the buttons; no registering.
        app.create_user_with_email("ivy", "ivy@example.com", PASSWORD).await;
        let ivy = signed_in(&app, "ivy").await;
        let page = ivy.get(&in_team).await;
        assert!(page.contains(&format!("action=\"{in_team}/accept\"")), "{}", page.body);
        assert!(!page.contains("/register?next="));
    }
}

db_test! {
    /// In Chinese an invitation speaks as the rest of the site does, with 你 (never 您): its
    /// page, and the mail it sends in the inviter's language.
    async fn a_chinese_invitation_says_ni_as_the_site_does(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let research = acme(&app).await.0.to_string();
        app.reload().await;
        let chinese = [("accept-language", "zh-CN,zh;q=0.9")];
        let alice = Browser::with_headers(&app, &chinese);
        assert_eq!(alice.sign_in("alice", PASSWORD).await.status, 303);
        alice.get("/orgs/acme/invitations").await;
        let sent = alice
            .post("/orgs/acme/invitations", &[("email", "ivy@example.com"), ("role", "member"), ("team", research.as_str())])
            .await;
        assert_eq!(sent.status, 201, "{}", sent.body);
        let link = shown_link(&sent.body);
        let page = Browser::with_headers(&app, &chinese).get(&link).await;
        assert_eq!(page.lang(), Some("zh-CN"));
        assert!(page.contains("邀请你加入 Acme Research Labs"), "{}", page.body);
        assert!(page.contains("你将以成员身份加入，并加入团队 Research。"), "{}", page.body);
        assert!(!page.contains("您"), "{}", page.body);

        // The mail, in the inviter's language.
        let Some(sink) = MailSink::start().await else { return };
        sink.configure(&app).await;
        app.reload().await;
        alice.get("/orgs/acme/invitations").await;
        let mailed = alice.post("/orgs/acme/invitations", &[("email", "bo@example.com"), ("role", "member")]).await;
        assert_eq!(mailed.status, 303, "{}", mailed.body);
        let mail = sink.next_to("bo@example.com").await;
        assert!(mail.subject.contains("邀请你"), "{}", mail.subject);
        assert!(mail.text.contains("你好") && mail.text.contains("你被邀请"), "{}", mail.text);
        assert!(!mail.subject.contains('您') && !mail.text.contains('您'), "{}", mail.text);
    }
}
