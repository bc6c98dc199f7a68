//! The console's organisations over real HTTP: the list (found by name or slug, a page at a
//! time, with owner, sizes, wallet and this period's spend from the request log) and an
//! organisation's page with its teams, members and ledger; the wallet adjustment, which
//! needs a reason (the form comes back with its fields marked), writes one ledger row and one
//! audit row, applies once however often it is sent, and asks a stale sign-in to prove
//! itself; nobody but administrators sees any of it.

use crate::helpers::{Browser, CLI, FakeUpstream, Reply, TestApp, chat_body, db_test};
use tollgate::records::audit::AuditFilter;
use tollgate::service;
use tollgate::service::orgs::{self, CreateOrg, TeamInput, TeamMemberInput};
use tollgate::service::tokens::CreateToken;
use tollgate::service::users::QuotaChange;

const PASSWORD: &str = "correct horse battery";

async fn signed_in<'a>(app: &'a TestApp, name: &str) -> Browser<'a> {
    let browser = Browser::new(app);
    let answer = browser.sign_in(name, PASSWORD).await;
    assert_eq!(answer.status, 303, "{name} signs in: {}", answer.body);
    browser
}

async fn create_org(app: &TestApp, name: &str, slug: &str, owner: &str) {
    let org = CreateOrg {
        name: name.into(),
        slug: slug.into(),
        owner: Some(owner.into()),
        ..Default::default()
    };
    orgs::create(app.ctx(), &CLI, org).await.unwrap();
}

/// `acme` (owned by alice) with a team Research she is in.
async fn acme(app: &TestApp) -> i64 {
    create_org(app, "Acme Research", "acme", "alice").await;
    let team = TeamInput {
        name: Some("Research".into()),
        budget_period: Some("monthly".into()),
        budget_usd: Some("100".into()),
        ..Default::default()
    };
    let team = orgs::create_team(app.ctx(), &CLI, "acme", team)
        .await
        .unwrap();
    orgs::put_team_member(
        app.ctx(),
        &CLI,
        "acme",
        "Research",
        "alice",
        TeamMemberInput::default(),
    )
    .await
    .unwrap();
    team.id
}

/// The rows of the console's list: each organisation's slug as its link names it.
fn listed(body: &str) -> Vec<String> {
    body.split("<th scope=\"row\"><a href=\"/admin/orgs/")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap().to_string())
        .collect()
}

/// The list's row of `slug`, as text.
fn row_of(body: &str, slug: &str) -> String {
    let start = body
        .find(&format!("<a href=\"/admin/orgs/{slug}\""))
        .unwrap_or_else(|| panic!("{slug} is listed: {body}"));
    let row = &body[start..];
    let row = &row[..row.find("</tr>").unwrap()];
    let mut text = String::new();
    let mut in_tag = false;
    for c in row.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                text.push(' ');
            }
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

db_test! {
    /// The list finds organisations by name or slug (case aside) a page of fifty at a time,
    /// each with its owner, members, teams, wallet and what its team keys spent this month;
    /// an organisation's page has its teams and members with their spend. Anyone but an
    /// administrator gets the not-found page for every path, posts included.
    async fn organisations_are_listed_found_and_paged_for_administrators(db: TestDb) {
        let app = TestApp::spawn(db).await;
        app.create_account("ada", "admin", PASSWORD).await;
        app.create_account("alice", "user", PASSWORD).await;
        app.create_account("bob", "user", PASSWORD).await;
        let team = acme(&app).await;
        create_org(&app, "Globex Corp", "globex", "bob").await;
        for i in 0..50 {
            create_org(&app, &format!("Filler {i:02}"), &format!("filler-{i:02}"), "ada").await;
        }
        // Alice's team key spends a cent of the wallet.
        let topup = QuotaChange { usd: Some("10".into()), reason: Some("Invoice 1".into()), ..Default::default() };
        orgs::adjust_wallet(app.ctx(), &CLI, "acme", topup).await.unwrap();
        let upstream = FakeUpstream::start(Reply::chat("ok", 5, 1)).await;
        app.add_channel("main", &upstream, "gpt-4o-mini").await;
        app.price_per_request("gpt-4o-mini", "0.01").await;
        let (key, _) = app
            .create_key(CreateToken {
                username: "alice".into(),
                name: "research".into(),
                org: Some("acme".into()),
                team: Some(team.to_string()),
                ..Default::default()
            })
            .await;
        let answer = app.chat(&key, chat_body("gpt-4o-mini")).await;
        assert_eq!(answer.status(), 200);
        app.flush().await;
        app.wait_for_logs(1).await;

        let ada = signed_in(&app, "ada").await;
        let first = ada.get("/admin/orgs").await;
        assert_eq!(first.status, 200, "{}", first.body);
        assert!(first.contains("href=\"/admin/orgs\" aria-current=\"page\""), "the console's navigation has it");
        let slugs = listed(&first.body);
        assert_eq!(slugs.len(), 50, "{slugs:?}");
        assert_eq!(slugs[0], "acme");
        assert_eq!(slugs[49], "filler-48");
        let acme_row = row_of(&first.body, "acme");
        assert!(acme_row.starts_with("Acme Research acme alice 1 1 $9.99 $0.01 this month "), "{acme_row}");
        assert!(first.contains("href=\"/admin/orgs?page=2\""), "{}", first.body);
        let second = ada.get("/admin/orgs?page=2").await;
        assert_eq!(listed(&second.body), ["filler-49", "globex"]);
        assert!(second.contains("href=\"/admin/orgs\" rel=\"prev\""), "{}", second.body);
        assert!(!second.contains("rel=\"next\""));
        assert!(row_of(&second.body, "globex").contains("Globex Corp globex bob 1 0 $0.00 $0.00 this month"));

        assert_eq!(listed(&ada.get("/admin/orgs?q=GLOB").await.body), ["globex"]);
        assert_eq!(listed(&ada.get("/admin/orgs?q=research").await.body), ["acme"]);
        let fillers = ada.get("/admin/orgs?q=filler").await;
        assert_eq!(listed(&fillers.body).len(), 50);
        assert!(!fillers.contains("rel=\"next\""), "fifty fill one page");
        assert!(ada.get("/admin/orgs?q=nothing-like-it").await.contains("No organisations found."));
        let wrong = ada.get("/admin/orgs?page=0").await;
        assert_eq!(wrong.status, 422, "{}", wrong.body);

        let page = ada.get("/admin/orgs/acme").await;
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(page.contains("<p class=\"value\" id=\"wallet\">$9.99</p>"), "{}", page.body);
        assert!(page.contains("<p class=\"value\" id=\"spent\">$0.01</p>"), "{}", page.body);
        assert!(page.contains("href=\"/orgs/acme/audit\""), "a link to the organisation's audit");
        let research = &page.body[page.body.find(">Research</th>").unwrap()..];
        let research = &research[..research.find("</tr>").unwrap()];
        assert!(research.contains("$0.01 of $100.00 this month") && research.contains(">$0.01</td>"), "{research}");
        let alice = &page.body[page.body.find(">alice</a></th>").unwrap()..];
        let alice = &alice[..alice.find("</tr>").unwrap()];
        assert!(alice.contains("Owner") && alice.contains("Research") && alice.contains(">$0.01</td>"), "{alice}");
        assert!(page.contains("Invoice 1"), "the ledger");
        assert_eq!(ada.get("/admin/orgs/no-such-org").await.status, 404);

        // Alice owns acme but runs no site: nothing of the console, posts included.
        let alice = signed_in(&app, "alice").await;
        for path in ["/admin/orgs", "/admin/orgs?q=acme", "/admin/orgs/acme"] {
            let refused = alice.get(path).await;
            assert_eq!(refused.status, 404, "{path}: {}", refused.body);
            assert!(!refused.contains("console-nav"), "{path}");
        }
        alice.get("/orgs/acme").await;
        let posted = alice.post("/admin/orgs/acme/wallet", &[("usd", "100"), ("reason", "mine"), ("idempotency_key", "k1")]).await;
        assert_eq!(posted.status, 404, "{}", posted.body);
        assert_eq!(orgs::show(app.ctx(), &CLI, "acme").await.unwrap().quota.unwrap(), TestApp::units(9.99));
        let visitor = Browser::new(&app).get("/admin/orgs").await;
        assert_eq!(visitor.status, 303, "a visitor is sent to sign in");
    }
}

db_test! {
    /// The wallet form needs an amount and a reason (both marked when missing, what was typed
    /// kept); sent twice with its one-time key it changes the wallet once, with one ledger row
    /// and one audit row that names it; a negative amount takes back; a stale sign-in proves
    /// itself before the wallet moves.
    async fn a_wallet_adjustment_needs_a_reason_and_applies_once(db: TestDb) {
        let app = TestApp::spawn(db).await;
        app.create_account("ada", "admin", PASSWORD).await;
        app.create_account("alice", "user", PASSWORD).await;
        acme(&app).await;
        let id = orgs::show(app.ctx(), &CLI, "acme").await.unwrap().id;
        let wallet = async || orgs::show(app.ctx(), &CLI, "acme").await.unwrap().quota.unwrap();
        let ada = signed_in(&app, "ada").await;
        let path = "/admin/orgs/acme/wallet";

        let page = ada.get("/admin/orgs/acme").await;
        let key = page.input("idempotency_key").expect("the form's one-time key");
        let missing = ada.post(path, &[("usd", "12.50"), ("reason", " "), ("idempotency_key", &key)]).await;
        assert_eq!(missing.status, 422, "{}", missing.body);
        assert!(missing.contains("id=\"errors\""), "the summary at the top");
        assert!(missing.field_error("reason").is_some(), "{}", missing.body);
        assert!(missing.field_error("usd").is_none());
        assert_eq!(missing.input("usd").as_deref(), Some("12.50"));
        assert_eq!(missing.input("idempotency_key").as_deref(), Some(key.as_str()));
        let empty = ada.post(path, &[("usd", ""), ("reason", ""), ("idempotency_key", &key)]).await;
        assert_eq!(empty.status, 422, "{}", empty.body);
        assert!(empty.field_error("usd").is_some() && empty.field_error("reason").is_some(), "{}", empty.body);
        let zero = ada.post(path, &[("usd", "0"), ("reason", "nothing"), ("idempotency_key", &key)]).await;
        assert_eq!(zero.status, 422, "{}", zero.body);
        assert!(zero.field_error("usd").is_some(), "{}", zero.body);
        assert_eq!(wallet().await, 0);

        let fields = [("usd", "12.50"), ("reason", "Invoice 42"), ("idempotency_key", key.as_str())];
        let first = ada.post(path, &fields).await;
        assert_eq!(first.status, 303, "{}", first.body);
        assert_eq!(first.location.as_deref(), Some("/admin/orgs/acme"));
        assert!(ada.get("/admin/orgs/acme").await.contains("Wallet adjusted: its balance is $12.50."));
        let again = ada.post(path, &fields).await;
        assert_eq!(again.status, 303, "{}", again.body);
        let shown = ada.get("/admin/orgs/acme").await;
        assert!(shown.contains("That adjustment was made already; the balance is $12.50."), "{}", shown.body);
        assert_eq!(wallet().await, TestApp::units(12.5));
        let ledger = orgs::ledger(app.ctx(), &CLI, "acme", 100).await.unwrap();
        assert_eq!(ledger.len(), 1, "{ledger:?}");
        assert_eq!(ledger[0].kind.as_str(), "adjustment");
        assert_eq!(ledger[0].amount, TestApp::units(12.5));
        assert_eq!(ledger[0].reason, "Invoice 42");
        assert!(shown.contains("<td>Invoice 42</td>") && shown.contains("<td>ada</td>"), "the ledger names its author: {}", shown.body);

        let audited = service::audit::list(
            app.ctx(),
            &CLI,
            &AuditFilter { action: Some("org.wallet.adjust".into()), limit: 10, ..AuditFilter::default() },
        )
        .await
        .unwrap();
        assert_eq!(audited.len(), 1, "{audited:?}");
        let row = &audited[0];
        assert_eq!(row.target, format!("org:{id}"));
        assert_eq!(row.actor, "ada");
        assert_eq!(row.ledger_id, Some(ledger[0].id));
        assert_eq!(row.before.as_ref().unwrap()["quota"], 0);
        assert_eq!(row.after.as_ref().unwrap()["quota"], TestApp::units(12.5));
        assert_eq!(row.after.as_ref().unwrap()["reason"], "Invoice 42");
        // The organisation's own audit says it in words.
        let audit = ada.get("/orgs/acme/audit?kind=wallet").await;
        assert_eq!(audit.status, 200, "{}", audit.body);
        assert!(audit.contains("Adjusted the wallet") && audit.contains("Invoice 42"), "{}", audit.body);

        // A negative amount takes back.
        let key = ada.get("/admin/orgs/acme").await.input("idempotency_key").unwrap();
        let back = ada.post(path, &[("usd", "-2.50"), ("reason", "Refund"), ("idempotency_key", &key)]).await;
        assert_eq!(back.status, 303, "{}", back.body);
        assert_eq!(wallet().await, TestApp::units(10.0));

        // A sign-in older than ten minutes proves itself before the wallet moves.
        app.age_sign_ins_of("ada").await;
        let key = ada.get("/admin/orgs/acme").await.input("idempotency_key").unwrap();
        let stale = ada.post(path, &[("usd", "5"), ("reason", "Stale"), ("idempotency_key", &key)]).await;
        assert_eq!(stale.status, 303, "{}", stale.body);
        assert_eq!(stale.location.as_deref(), Some("/reauth?next=/admin/orgs/acme/wallet"));
        assert_eq!(wallet().await, TestApp::units(10.0));
        ada.get("/reauth?next=/admin/orgs/acme/wallet").await;
        let proven = ada.post("/reauth", &[("password", PASSWORD), ("next", path)]).await;
        assert_eq!(proven.status, 303, "{}", proven.body);
        let resumed = ada.get("/reauth/resume").await;
        assert_eq!(resumed.input("reason").as_deref(), Some("Stale"));
        let sent = ada.post(path, &[("usd", "5"), ("reason", "Stale"), ("idempotency_key", &key)]).await;
        assert_eq!(sent.status, 303, "{}", sent.body);
        assert_eq!(wallet().await, TestApp::units(15.0));
        assert_eq!(orgs::ledger(app.ctx(), &CLI, "acme", 100).await.unwrap().len(), 3);
    }
}
