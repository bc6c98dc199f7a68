//! Invite links: an account made through one remembers its inviter; the site's rewards are
//! ledger rows paid once per invitee, also when many register at the same moment, and never
//! on a GET.

use crate::helpers::{Browser, CLI, TestApp, db_test};
use tollgate::domain::kinds::LedgerKind;
use tollgate::service::accounts::{self, Registration};
use tollgate::service::db::ledger;
use tollgate::service::{self};

const PASSWORD: &str = "correct horse battery";

fn registration(name: &str, invite: Option<&str>) -> Registration {
    Registration {
        username: name.into(),
        email: format!("{name}@example.com"),
        password: PASSWORD.into(),
        password_confirm: None,
        invite: invite.map(str::to_string),
    }
}

db_test! {
    /// With rewards at sign-up, ten accounts registering at once through one link pay the
    /// inviter ten times and each invitee once; the ledger accounts for all of it.
    async fn signup_rewards_are_paid_once_per_invitee(db: TestDb) {
        let app = TestApp::spawn(db).await;
        app.set_option("invite_reward_inviter_usd", "1").await;
        app.set_option("invite_reward_invitee_usd", "0.5").await;
        app.set_option("invite_reward_when", "signup").await;
        let ivy = app.create_user_with_email("ivy", "ivy@example.com", PASSWORD).await;
        let code = service::invites::ensure_code(app.ctx(), ivy.id).await.unwrap();
        assert_eq!(service::invites::ensure_code(app.ctx(), ivy.id).await.unwrap(), code, "one code per account");

        let signups = (0..10).map(|n| {
            let ctx = app.ctx().clone();
            let code = code.clone();
            tokio::spawn(async move { accounts::register(&ctx, registration(&format!("guest{n}"), Some(&code))).await })
        });
        for result in futures::future::join_all(signups).await {
            result.unwrap().expect("registered");
        }
        assert_eq!(app.user("ivy").await.quota, 10 * 500_000);
        for n in 0..10 {
            let guest = app.user(&format!("guest{n}")).await;
            assert_eq!(guest.inviter_id, Some(ivy.id));
            assert_eq!(guest.quota, 250_000);
        }
        let rows = ledger::for_user(&app.db, ivy.id, 100).await.unwrap();
        assert_eq!(rows.iter().filter(|r| r.kind == LedgerKind::InviteReward).count(), 10);
        let check = service::ledger::check(app.ctx(), &CLI).await.unwrap();
        assert!(check.discrepancies.is_empty(), "{:?}", check.discrepancies);
    }
}

db_test! {
    /// By default rewards wait for the invitee's first paid top-up: signing up records the
    /// inviter and pays nothing. An unknown code does not stop anyone registering.
    async fn by_default_signing_up_pays_nothing(db: TestDb) {
        let app = TestApp::spawn(db).await;
        app.set_option("invite_reward_inviter_usd", "1").await;
        let ivy = app.create_user_with_email("ivy", "ivy@example.com", PASSWORD).await;
        let code = service::invites::ensure_code(app.ctx(), ivy.id).await.unwrap();
        accounts::register(app.ctx(), registration("guest", Some(&code))).await.unwrap();
        assert_eq!(app.user("guest").await.inviter_id, Some(ivy.id));
        assert_eq!(app.user("ivy").await.quota, 0);
        accounts::register(app.ctx(), registration("stray", Some("no-such-code"))).await.unwrap();
        assert_eq!(app.user("stray").await.inviter_id, None);
    }
}

db_test! {
    /// The wallet makes the link on a POST (a GET makes nothing), shows it with what it
    /// earns, and the register page carries the code it came with.
    async fn the_wallet_makes_and_shows_the_invite_link(db: TestDb) {
        let app = TestApp::spawn(db).await;
        app.set_option("invite_reward_inviter_usd", "2").await;
        app.set_option("invite_reward_invitee_usd", "1").await;
        app.create_user_with_email("ivy", "ivy@example.com", PASSWORD).await;
        let browser = Browser::new(&app);
        browser.sign_in("ivy", PASSWORD).await;
        let wallet = browser.get("/wallet").await;
        assert!(wallet.contains("you get $2.00 and it gets $1.00"), "{}", wallet.body);
        assert!(app.user("ivy").await.invite_code.is_none(), "a GET makes nothing");
        let made = browser.post("/wallet/invite", &[]).await;
        assert_eq!(made.status, 303, "{}", made.body);
        let code = app.user("ivy").await.invite_code.expect("the code was made");
        let link = format!("{}/register?invite={code}", app.url(""));
        assert!(browser.get("/wallet").await.contains(&link));
        assert!(browser.get("/profile").await.contains(&link));

        let visitor = Browser::new(&app);
        let form = visitor.get(&format!("/register?invite={code}")).await;
        assert_eq!(form.input("invite").as_deref(), Some(code.as_str()));
        let page = visitor
            .post("/register", &[("username", "newbie"), ("email", "newbie@example.com"), ("password", PASSWORD), ("invite", &code)])
            .await;
        assert_eq!(page.status, 303, "{}", page.body);
        assert_eq!(app.user("newbie").await.inviter_id, Some(app.user("ivy").await.id));
    }
}
