//! Money into an organisation's wallet without a site administrator: its owner and admins pay
//! by card (Stripe Checkout, the person's own flow aimed at the organisation) or redeem a code.
//! The credit lands in the wallet — live for the relay at once — never in the purchaser's
//! balance; refunds take it back from the wallet; a gift code credits each person once,
//! whichever wallet receives it; members and outsiders cannot; an organisation with an open
//! payment is not deleted; and the ledger check stays clean.

use crate::helpers::stripe::{FakeStripe, charge, deliver, event};
use crate::helpers::upstream::{FakeUpstream, Reply};
use crate::helpers::{Browser, CLI, TestApp, chat_body, db_test, expect_error};
use tollgate::domain::kinds::{LedgerKind, OrderStatus};
use tollgate::records::audit::AuditFilter;
use tollgate::service::codes::CreateCodes;
use tollgate::service::db;
use tollgate::service::db::users::UserRow;
use tollgate::service::orgs::{self, AddMember, CreateOrg, DeleteOrg, TeamInput};
use tollgate::service::tokens::CreateToken;
use tollgate::service::{self, Caller, ServiceError};

const PASSWORD: &str = "correct horse battery";

/// An account with a proven email address and a password.
async fn person(app: &TestApp, username: &str) -> UserRow {
    let email = format!("{username}@example.com");
    let user = app.create_user_with_email(username, &email, PASSWORD).await;
    app.db
        .write(async |tx| db::users::mark_email_verified(tx, user.id, &email).await)
        .await
        .unwrap();
    user
}

/// `acme`, owned by olivia, with adam as an admin, max as a member of the team Research, and
/// oscar outside. Its wallet starts at $0.
struct Acme {
    olivia: UserRow,
    adam: UserRow,
    max: UserRow,
    oscar: UserRow,
}

async fn acme(app: &TestApp) -> Acme {
    let ctx = app.ctx();
    let olivia = person(app, "olivia").await;
    let adam = person(app, "adam").await;
    let max = person(app, "max").await;
    let oscar = person(app, "oscar").await;
    orgs::create(
        ctx,
        &CLI,
        CreateOrg {
            name: "Acme Research".into(),
            slug: "acme".into(),
            owner: Some("olivia".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    for (name, role) in [("adam", "admin"), ("max", "member")] {
        let member = AddMember {
            username: name.into(),
            role: Some(role.into()),
            ..Default::default()
        };
        orgs::add_member(ctx, &CLI, "acme", member).await.unwrap();
    }
    orgs::create_team(
        ctx,
        &CLI,
        "acme",
        TeamInput {
            name: Some("Research".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let joined = orgs::TeamMemberInput::default();
    orgs::put_team_member(ctx, &CLI, "acme", "Research", "max", joined)
        .await
        .unwrap();
    Acme {
        olivia,
        adam,
        max,
        oscar,
    }
}

async fn wallet(app: &TestApp) -> i64 {
    orgs::show(app.ctx(), &CLI, "acme")
        .await
        .unwrap()
        .quota
        .expect("the command line sees the wallet")
}

async fn assert_books_balance(app: &TestApp) {
    let check = service::ledger::check(app.ctx(), &CLI).await.unwrap();
    assert!(check.discrepancies.is_empty(), "{:?}", check.discrepancies);
}

async fn one_code(app: &TestApp, usd: &str, uses: i64) -> String {
    let made = service::codes::create(
        app.ctx(),
        &CLI,
        CreateCodes {
            count: 1,
            usd: usd.into(),
            uses: Some(uses),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    made[0].code.clone()
}

fn request_key(n: u32) -> String {
    format!("org-request-key-{n:08}")
}

db_test! {
    /// An admin pays by card for the organisation: the order is theirs (its page, their
    /// receipt), the Checkout Session says whose wallet, Stripe's event credits the wallet
    /// once and not the purchaser, pays no invite reward, and is live for the relay at once.
    /// A refund takes its share back from the wallet. Members and outsiders cannot start one,
    /// and the organisation is not deleted while a payment is open.
    async fn card_top_ups_credit_the_organisations_wallet(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let fake = FakeStripe::start().await;
        fake.configure(&app).await;
        app.set_option("invite_reward_inviter_usd", "1").await;
        app.set_option("invite_reward_invitee_usd", "2").await;
        let upstream = FakeUpstream::start(Reply::chat("ok", 5, 1)).await;
        app.add_channel("main", &upstream, "gpt-4o-mini").await;
        app.price_per_request("gpt-4o-mini", "0.01").await;
        let people = acme(&app).await;
        let ctx = app.ctx();
        // Adam was invited to the site by oscar: paying for the organisation is not his first
        // top-up, so it pays neither of them.
        app.db.write(async |tx| tx.execute("UPDATE users SET inviter_id = ? WHERE id = ?", &[db::Value::Int(people.oscar.id), db::Value::Int(people.adam.id)]).await).await.unwrap();
        let (_, team_key) = service::tokens::create(ctx, &CLI, CreateToken {
            username: "max".into(),
            name: "team key".into(),
            org: Some("acme".into()),
            team: Some(orgs::show(ctx, &CLI, "acme").await.unwrap().teams[0].id.to_string()),
            ..Default::default()
        })
        .await
        .unwrap();
        let refused = app.chat(&team_key, chat_body("gpt-4o-mini")).await;
        expect_error(refused, 429, "insufficient_quota").await;

        // A member and an outsider cannot pay into it.
        let as_max = Caller::User(people.max.id);
        let member_try = service::topups::start_for_org(ctx, &as_max, "acme", "10", &request_key(1), "https://p.example").await;
        assert!(matches!(member_try, Err(ServiceError::Forbidden(_))), "{member_try:?}");
        let as_oscar = Caller::User(people.oscar.id);
        let outsider_try = service::topups::start_for_org(ctx, &as_oscar, "acme", "10", &request_key(2), "https://p.example").await;
        assert!(matches!(outsider_try, Err(ServiceError::NotFound(_))), "{outsider_try:?}");
        assert!(fake.received().is_empty());

        let as_adam = Caller::User(people.adam.id);
        let order = service::topups::start_for_org(ctx, &as_adam, "acme", "10", &request_key(3), "https://p.example").await.unwrap();
        assert_eq!((order.user_id, order.org_slug.as_deref()), (people.adam.id, Some("acme")));
        let sent = fake.received().pop().unwrap();
        assert_eq!(sent.field("line_items[0][price_data][product_data][name]"), Some("$10.00 balance for organisation acme"));
        assert_eq!(sent.field("customer_email"), Some("adam@example.com"));
        // The same form twice is one order.
        let again = service::topups::start_for_org(ctx, &as_adam, "acme", "10", &request_key(3), "https://p.example").await.unwrap();
        assert_eq!(again.id, order.id);

        // Open: the owner cannot delete the organisation (its wallet is empty).
        let as_olivia = Caller::User(people.olivia.id);
        let open = orgs::delete(ctx, &as_olivia, "acme", DeleteOrg::default()).await;
        assert!(matches!(open, Err(ServiceError::Conflict { .. })), "{open:?}");

        let session = fake.pay(order.session_id.as_deref().unwrap());
        let completed = event("evt_org_1", "checkout.session.completed", session.clone());
        let (status, _) = deliver(&app, &completed).await;
        assert_eq!(status, 200);
        // Delivered again: nothing more.
        deliver(&app, &completed).await;
        assert_eq!(wallet(&app).await, TestApp::units(10.0));
        assert_eq!(app.user("adam").await.quota, 0, "the purchaser's balance is untouched");
        assert_eq!(app.user("oscar").await.quota, 0, "no invite reward");
        let paid = service::topups::find(ctx, &as_adam, order.id).await.unwrap();
        assert_eq!(paid.status, OrderStatus::Paid);
        let history = orgs::ledger(ctx, &as_olivia, "acme", 10).await.unwrap();
        assert_eq!((history[0].kind, history[0].amount), (LedgerKind::TopUp, TestApp::units(10.0)));
        assert!(service::ledger::entries(ctx, &as_adam, "adam", 10).await.unwrap().is_empty());
        // The organisation's history says who paid, written by the server that took the event.
        let audit = service::audit::list(ctx, &CLI, &AuditFilter { action: Some("org.wallet.topup".into()), limit: 10, ..Default::default() }).await.unwrap();
        assert_eq!(audit.len(), 1, "{audit:?}");
        assert_eq!(audit[0].actor, "system");
        assert!(audit[0].before.is_none() && audit[0].after.as_ref().unwrap()["amount"] == TestApp::units(10.0), "{audit:?}");
        let history = Browser::new(&app);
        assert_eq!(history.sign_in("olivia", PASSWORD).await.status, 303);
        let page = history.get("/orgs/acme/audit").await;
        assert!(page.contains("adam paid by card into the wallet"), "{}", page.body);
        // The org's admins list the order; a member may not.
        let listed = service::topups::list_for_org(ctx, &as_olivia, "acme", 10).await.unwrap();
        assert_eq!(listed.iter().map(|o| o.id).collect::<Vec<_>>(), vec![order.id]);
        assert!(matches!(service::topups::list_for_org(ctx, &as_max, "acme", 10).await, Err(ServiceError::Forbidden(_))));

        // Live for the relay without waiting for a sync.
        let answered = app.chat(&team_key, chat_body("gpt-4o-mini")).await;
        assert_eq!(answered.status(), 200);
        app.wait_for_logs(1).await;
        app.flush().await;

        // A refund of $4 of the $10 takes 40 % of the credit back from the wallet.
        let intent = session["payment_intent"].as_str().unwrap().to_string();
        deliver(&app, &event("evt_org_2", "charge.refunded", charge(&intent, 1000, 400))).await;
        assert_eq!(wallet(&app).await, TestApp::units(10.0 - 4.0 - 0.01));
        assert_eq!(app.user("adam").await.quota, 0);
        assert_books_balance(&app).await;
    }
}

db_test! {
    /// A code redeemed for the organisation credits its wallet; each person redeems a code
    /// once whichever wallet receives it, so an admin who redeemed it for the organisation
    /// cannot again for themselves (nor the other way round), while another admin can. A
    /// member cannot, an outsider is told nothing exists. Racing admins take exactly the
    /// code's uses, to the unit.
    async fn codes_credit_the_wallet_once_per_person(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let people = acme(&app).await;
        let ctx = app.ctx();
        let as_adam = Caller::User(people.adam.id);
        let as_olivia = Caller::User(people.olivia.id);
        let code = one_code(&app, "3", 5).await;

        let credited = service::codes::redeem_for_org(ctx, &as_adam, "acme", &code).await.unwrap();
        assert_eq!(credited, TestApp::units(3.0));
        assert_eq!(wallet(&app).await, TestApp::units(3.0));
        let again = service::codes::redeem_for_org(ctx, &as_adam, "acme", &code).await;
        assert!(matches!(again, Err(ServiceError::Invalid(_))), "{again:?}");
        let for_himself = service::codes::redeem(ctx, people.adam.id, &code).await;
        assert!(matches!(for_himself, Err(ServiceError::Invalid(_))), "{for_himself:?}");
        assert_eq!(app.user("adam").await.quota, 0);

        // Olivia redeemed it for herself first: not again for the organisation.
        service::codes::redeem(ctx, people.olivia.id, &code).await.unwrap();
        let owner_again = service::codes::redeem_for_org(ctx, &as_olivia, "acme", &code).await;
        assert!(matches!(owner_again, Err(ServiceError::Invalid(_))), "{owner_again:?}");

        let as_max = Caller::User(people.max.id);
        let member = service::codes::redeem_for_org(ctx, &as_max, "acme", &code).await;
        assert!(matches!(member, Err(ServiceError::Forbidden(_))), "{member:?}");
        let as_oscar = Caller::User(people.oscar.id);
        let outsider = service::codes::redeem_for_org(ctx, &as_oscar, "acme", &code).await;
        assert!(matches!(outsider, Err(ServiceError::NotFound(_))), "{outsider:?}");
        assert_eq!(wallet(&app).await, TestApp::units(3.0));

        // The organisation's history says who redeemed it.
        let audit = service::audit::list(ctx, &CLI, &AuditFilter { limit: 50, ..Default::default() }).await.unwrap();
        assert!(audit.iter().any(|e| e.action == "org.wallet.redeem" && e.actor == "adam"), "{audit:?}");

        // Twelve admins race on a fresh code of five uses: five are credited, to the unit.
        let race = one_code(&app, "1", 5).await;
        let mut admins = Vec::new();
        for n in 0..12 {
            let name = format!("admin{n}");
            let user = person(&app, &name).await;
            orgs::add_member(ctx, &CLI, "acme", AddMember { username: name, role: Some("admin".into()), ..Default::default() }).await.unwrap();
            admins.push(user.id);
        }
        let tries = admins.iter().map(|&id| {
            let ctx = ctx.clone();
            let race = race.clone();
            tokio::spawn(async move { service::codes::redeem_for_org(&ctx, &Caller::User(id), "acme", &race).await })
        });
        let outcomes = futures::future::join_all(tries).await;
        let won = outcomes.into_iter().filter(|o| matches!(o, Ok(Ok(_)))).count();
        assert_eq!(won, 5);
        assert_eq!(wallet(&app).await, TestApp::units(3.0 + 5.0));
        assert_books_balance(&app).await;
    }
}

db_test! {
    /// The wallet page for the organisation's admins: the card offer and the code form; a
    /// wrong code comes back marked with what was typed; a good one credits the wallet with a
    /// notice; the quote page pays into the organisation; the pay button goes to Stripe and
    /// the order page names the wallet. A member is shown who adds money and cannot post.
    async fn the_wallet_page_takes_cards_and_codes(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let fake = FakeStripe::start().await;
        fake.configure(&app).await;
        let people = acme(&app).await;
        let _ = people.olivia;
        let browser = Browser::new(&app);
        assert_eq!(browser.sign_in("adam", PASSWORD).await.status, 303);
        let page = browser.get("/orgs/acme/wallet").await;
        assert_eq!(page.status, 200);
        assert!(page.contains("/orgs/acme/wallet/topup?amount_usd="), "{}", page.body);
        assert!(page.contains("action=\"/orgs/acme/wallet/redeem#errors\""), "{}", page.body);

        let wrong = browser.post("/orgs/acme/wallet/redeem", &[("code", "tgc-nothing-like-a-code")]).await;
        assert_eq!(wrong.status, 422, "{}", wrong.body);
        assert!(wrong.field_error("code").is_some(), "{}", wrong.body);
        assert_eq!(wrong.input("code").as_deref(), Some("tgc-nothing-like-a-code"));

        let code = one_code(&app, "2", 1).await;
        let good = browser.post("/orgs/acme/wallet/redeem", &[("code", code.as_str())]).await;
        assert_eq!(good.status, 303, "{}", good.body);
        let after = browser.get("/orgs/acme/wallet").await;
        assert!(after.contains("The code added $2.00 to the organisation"), "{}", after.body);
        assert_eq!(wallet(&app).await, TestApp::units(2.0));

        // A wrong amount is marked on the wallet; a right one is quoted for the organisation.
        let bad = browser.get("/orgs/acme/wallet/topup?amount_usd=abc").await;
        assert_eq!(bad.status, 422);
        assert!(bad.field_error("amount_usd").is_some(), "{}", bad.body);
        let quote = browser.get("/orgs/acme/wallet/topup?amount_usd=10").await;
        assert_eq!(quote.status, 200, "{}", quote.body);
        assert!(quote.contains("For the wallet of Acme Research"), "{}", quote.body);
        assert!(quote.contains("action=\"/orgs/acme/wallet/topup#errors\""), "{}", quote.body);
        let key = quote.input("request_key").unwrap();
        let paid = browser.post("/orgs/acme/wallet/topup", &[("amount_usd", "10"), ("request_key", key.as_str())]).await;
        assert_eq!(paid.status, 303, "{}", paid.body);
        let order = service::topups::list_for_org(app.ctx(), &CLI, "acme", 1).await.unwrap().remove(0);
        let location = paid.headers.get("location").unwrap().to_str().unwrap();
        assert!(location.contains(order.session_id.as_deref().unwrap()), "{location}");
        let shown = browser.get(&format!("/wallet/orders/{}", order.id)).await;
        assert!(shown.contains("href=\"/orgs/acme/wallet\""), "{}", shown.body);
        let listed = browser.get("/orgs/acme/wallet").await;
        assert!(listed.contains(&format!("/wallet/orders/{}", order.id)), "{}", listed.body);

        // A member sees who adds money; their posts are refused and change nothing.
        let member = Browser::new(&app);
        assert_eq!(member.sign_in("max", PASSWORD).await.status, 303);
        let seen = member.get("/orgs/acme/wallet").await;
        assert!(seen.contains("owner and admins add money to the wallet"), "{}", seen.body);
        assert!(!seen.contains("/orgs/acme/wallet/redeem"), "{}", seen.body);
        let code = one_code(&app, "2", 1).await;
        let posted = member.post("/orgs/acme/wallet/redeem", &[("code", code.as_str())]).await;
        assert_eq!(posted.status, 403, "{}", posted.body);
        assert_eq!(member.get("/orgs/acme/wallet/topup?amount_usd=10").await.status, 403);
        let outsider = Browser::new(&app);
        assert_eq!(outsider.sign_in("oscar", PASSWORD).await.status, 303);
        assert_eq!(outsider.get("/orgs/acme/wallet").await.status, 404);
        assert_eq!(outsider.post("/orgs/acme/wallet/redeem", &[("code", code.as_str())]).await.status, 404);
        assert_eq!(wallet(&app).await, TestApp::units(2.0));
        // The member's code is still whole: redeemed for himself it works.
        service::codes::redeem(app.ctx(), people.max.id, &code).await.unwrap();
    }
}

db_test! {
    /// What a team key spends shows on the organisation's budgets: the team's, the member's
    /// cap and the organisation's, in the organisation's zone, once the spend is written.
    async fn team_key_spend_shows_on_the_budgets(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let upstream = FakeUpstream::start(Reply::chat("ok", 5, 1)).await;
        app.add_channel("main", &upstream, "gpt-4o-mini").await;
        app.price_per_request("gpt-4o-mini", "0.25").await;
        let ctx = app.ctx();
        person(&app, "olivia").await;
        person(&app, "max").await;
        orgs::create(ctx, &CLI, CreateOrg {
            name: "Acme".into(),
            slug: "acme".into(),
            owner: Some("olivia".into()),
            timezone: Some("Asia/Shanghai".into()),
            budget_usd: Some("500".into()),
            budget_period: Some("monthly".into()),
            ..Default::default()
        }).await.unwrap();
        orgs::add_member(ctx, &CLI, "acme", AddMember { username: "max".into(), role: Some("member".into()), ..Default::default() }).await.unwrap();
        let team = orgs::create_team(ctx, &CLI, "acme", TeamInput {
            name: Some("Research".into()),
            budget_usd: Some("200".into()),
            budget_period: Some("monthly".into()),
            member_cap_usd: Some("25".into()),
            groups: None,
        }).await.unwrap();
        orgs::put_team_member(ctx, &CLI, "acme", "Research", "max", orgs::TeamMemberInput::default()).await.unwrap();
        orgs::adjust_wallet(ctx, &CLI, "acme", service::users::QuotaChange { usd: Some("100".into()), reason: Some("test".into()), ..Default::default() }).await.unwrap();
        let (_, key) = service::tokens::create(ctx, &CLI, CreateToken {
            username: "max".into(),
            name: "team key".into(),
            org: Some("acme".into()),
            team: Some(team.id.to_string()),
            ..Default::default()
        }).await.unwrap();
        for _ in 0..3 {
            assert_eq!(app.chat(&key, chat_body("gpt-4o-mini")).await.status(), 200);
        }
        app.wait_for_logs(3).await;
        app.flush().await;
        let shown = orgs::show(ctx, &CLI, "acme").await.unwrap();
        let spent = TestApp::units(0.75);
        assert_eq!(shown.budget.as_ref().unwrap().spent_quota, spent, "{shown:?}");
        let team = &shown.teams[0];
        assert_eq!(team.budget.as_ref().unwrap().spent_quota, spent, "{team:?}");
        assert_eq!(team.members[0].cap.as_ref().unwrap().spent_quota, spent, "{team:?}");
    }
}
