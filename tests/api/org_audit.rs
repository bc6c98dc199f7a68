//! An organisation's audit page (`/orgs/{slug}/audit`) over real HTTP: changes made by the
//! owner, an admin, a site administrator and an admin token show up in words, newest first,
//! with who made them and when in the organisation's zone; renaming the organisation keeps
//! its history (the rows name it by id) and an organisation that takes the old slug starts
//! with none of it; only admins and the owner see the page; kinds filter and pages follow.

use crate::helpers::browser::Answer;
use crate::helpers::browser::html_unescape;
use crate::helpers::{Api, Browser, CLI, TestApp, admin_token, db_test};
use serde_json::json;
use tollgate::service::codes::CreateCodes;
use tollgate::service::db;
use tollgate::service::db::users::UserRow;
use tollgate::service::orgs::{
    self, AddMember, CreateOrg, HistoryQuery, TeamInput, TeamMemberInput,
};
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

/// `acme`: olivia owns it, adam is an admin, mia manages the team Research, max is in it;
/// oscar is outside. Returns Research's id and max.
async fn acme(app: &TestApp) -> (i64, UserRow) {
    let ctx = app.ctx();
    for name in ["olivia", "adam", "mia", "oscar"] {
        person(app, name).await;
    }
    let max = person(app, "max").await;
    orgs::create(
        ctx,
        &CLI,
        CreateOrg {
            name: "Acme Research".into(),
            slug: "acme".into(),
            owner: Some("olivia".into()),
            budget_period: Some("monthly".into()),
            budget_usd: Some("500".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    for (name, role) in [("adam", "admin"), ("mia", "member"), ("max", "member")] {
        let member = AddMember {
            username: name.into(),
            role: Some(role.into()),
            ..Default::default()
        };
        orgs::add_member(ctx, &CLI, "acme", member).await.unwrap();
    }
    let team = TeamInput {
        name: Some("Research".into()),
        budget_period: Some("monthly".into()),
        budget_usd: Some("100".into()),
        member_cap_usd: Some("20".into()),
        groups: None,
    };
    let team = orgs::create_team(ctx, &CLI, "acme", team).await.unwrap();
    let manager = TeamMemberInput {
        manager: Some(true),
        cap_usd: None,
    };
    orgs::put_team_member(ctx, &CLI, "acme", "Research", "mia", manager)
        .await
        .unwrap();
    orgs::put_team_member(
        ctx,
        &CLI,
        "acme",
        "Research",
        "max",
        TeamMemberInput::default(),
    )
    .await
    .unwrap();
    (team.id, max)
}

async fn signed_in<'a>(app: &'a TestApp, username: &str) -> Browser<'a> {
    let browser = Browser::new(app);
    let answer = browser.sign_in(username, PASSWORD).await;
    assert_eq!(answer.status, 303, "{username} signs in: {}", answer.body);
    browser
}

/// The page's text without its tags, spaces run together.
fn words(html: &str) -> String {
    let mut text = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                text.push(' ');
            }
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    html_unescape(&text.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// Each change the page lists, as text, newest first.
fn changes(page: &Answer) -> Vec<String> {
    page.body
        .split("<tr id=\"change-")
        .skip(1)
        .map(|row| words(&row[..row.find("</tr>").unwrap_or(row.len())]))
        .collect()
}

/// The first change whose text holds `what`.
fn change<'a>(list: &'a [String], what: &str) -> &'a str {
    list.iter()
        .find(|line| line.contains(what))
        .unwrap_or_else(|| panic!("no change says {what:?} in {list:#?}"))
}

fn settings_form<'a>(
    slug: &'a str,
    zone: &'a str,
    budget: &'a str,
) -> [(&'static str, &'a str); 5] {
    [
        ("name", "Acme Research"),
        ("slug", slug),
        ("timezone", zone),
        ("budget_usd", budget),
        ("budget_period", "monthly"),
    ]
}

db_test! {
    /// The owner's budget and zone, an admin's cap for a member, a site administrator's
    /// renaming of a team and an admin token's top-up each show, newest first, in words with
    /// who made them and times in the organisation's zone. Renaming the organisation keeps
    /// all of it; an organisation that takes the old slug starts with none of it, and
    /// neither organisation shows the other's changes.
    async fn changes_show_in_words_and_outlive_a_rename(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let (team, max) = acme(&app).await;
        app.create_account("ada", "admin", PASSWORD).await;

        let olivia = signed_in(&app, "olivia").await;
        olivia.get("/orgs/acme/settings").await;
        let saved = olivia.post("/orgs/acme/settings", &settings_form("acme", "Europe/Berlin", "800")).await;
        assert_eq!(saved.status, 303, "{}", saved.body);

        let adam = signed_in(&app, "adam").await;
        let team_path = format!("/orgs/acme/teams/{team}");
        adam.get(&team_path).await;
        let capped = adam.post(&format!("{team_path}/members/{}/cap", max.id), &[("cap_usd", "5")]).await;
        assert_eq!(capped.status, 303, "{}", capped.body);

        // A site administrator from outside the organisation renames the team.
        let ada = signed_in(&app, "ada").await;
        ada.get(&team_path).await;
        let renamed = ada
            .post(&team_path, &[("name", "Research Lab"), ("budget_usd", "100"), ("budget_period", "monthly"), ("member_cap_usd", "20")])
            .await;
        assert_eq!(renamed.status, 303, "{}", renamed.body);

        let api = Api { token: admin_token(&app, "ops", "admin").await, app: &app };
        let (status, body) = api.post("/api/orgs/acme/quota", json!({"usd": "25", "reason": "Invoice 7"})).await;
        assert_eq!(status, 200, "{body}");

        // An admin redeems a code into the wallet from its page.
        let code = service::codes::create(
            app.ctx(),
            &CLI,
            CreateCodes { count: 1, usd: "3".into(), ..Default::default() },
        )
        .await
        .unwrap()[0]
            .code
            .clone();
        adam.get("/orgs/acme/wallet").await;
        let redeemed = adam.post("/orgs/acme/wallet/redeem", &[("code", code.as_str())]).await;
        assert_eq!(redeemed.status, 303, "{}", redeemed.body);

        let page = olivia.get("/orgs/acme/audit").await;
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(words(&page.body).contains("When (Europe/Berlin)"), "times are in the organisation's zone");
        let list = changes(&page);
        let code_row = change(&list, "Redeemed a code into the wallet");
        assert!(code_row.contains("adam") && code_row.contains("Amount: $3.00"), "{code_row}");
        assert!(code_row.contains(&format!("Code: {}", &code[..4])) && !code_row.contains(&code), "only the code's first characters: {code_row}");
        let wallet = change(&list, "Adjusted the wallet");
        assert!(wallet.contains("ops"), "{wallet}");
        assert!(wallet.contains("Balance: $0.00 → $25.00") && wallet.contains("Amount: $25.00"), "{wallet}");
        assert!(wallet.contains("Reason: Invoice 7"), "{wallet}");
        let rename = change(&list, "Changed the team Research");
        assert!(rename.contains("ada") && rename.contains("Name: Research → Research Lab"), "{rename}");
        let cap = change(&list, "Changed the cap of max in Research");
        assert!(cap.contains("adam") && cap.contains("Cap: The team's cap → $5.00"), "{cap}");
        let budget = change(&list, "Changed the organisation's budget");
        assert!(budget.contains("olivia") && budget.contains("Budget: $500.00 a month → $800.00 a month"), "{budget}");
        let zone = change(&list, "Changed the organisation's settings");
        assert!(zone.contains("Time zone: The site's (UTC) → Europe/Berlin"), "{zone}");
        let made = change(&list, "Made the team Research");
        assert!(made.contains("The command line") && made.contains("Budget: $100.00 a month"), "{made}");
        change(&list, "Created the organisation");
        change(&list, "Added max to Research");
        // Newest first.
        let at = |what: &str| list.iter().position(|l| l.contains(what)).unwrap();
        assert!(at("Redeemed a code") < at("Adjusted the wallet"));
        assert!(at("Adjusted the wallet") < at("Changed the team Research"));
        assert!(at("Changed the team Research") < at("Changed the cap of max"));
        assert!(at("Changed the cap of max") < at("Changed the organisation's budget"));
        assert!(at("Changed the organisation's budget") < at("Created the organisation"));
        // Every change of the team is there under its new name too.
        assert!(change(&list, "Added max to").contains("Research"));

        // The console's log finds the organisation's rows and its teams' by its id, with the
        // names they had.
        let id = orgs::show(app.ctx(), &CLI, "acme").await.unwrap().id;
        let console = ada.get(&format!("/admin/audit?target=org:{id}")).await;
        assert_eq!(console.status, 200, "{}", console.body);
        for action in ["org.wallet.adjust", "team.member.cap", "org.budget", "team.update"] {
            assert!(console.body.contains(&format!("<code>{action}</code>")), "{action}: {}", console.body);
        }
        assert!(words(&console.body).contains(&format!("org:{id}/team:{team} acme · Research")), "{}", console.body);

        // The organisation takes a new address: its history goes with it.
        olivia.get("/orgs/acme/settings").await;
        let moved = olivia.post("/orgs/acme/settings", &settings_form("acme-labs", "Europe/Berlin", "800")).await;
        assert_eq!(moved.status, 303, "{}", moved.body);
        assert_eq!(olivia.get("/orgs/acme/audit").await.status, 404);
        let page = olivia.get("/orgs/acme-labs/audit").await;
        assert_eq!(page.status, 200, "{}", page.body);
        let after = changes(&page);
        assert_eq!(after.len(), list.len() + 1, "{after:#?}");
        let address = change(&after, "Changed the organisation's settings");
        assert!(address.contains("Address: acme → acme-labs"), "{address}");
        for what in ["Adjusted the wallet", "Changed the cap of max in Research", "Created the organisation"] {
            change(&after, what);
        }

        // Another organisation takes the old slug: none of the history is its.
        orgs::create(
            app.ctx(),
            &CLI,
            CreateOrg { name: "Acme Again".into(), slug: "acme".into(), owner: Some("oscar".into()), ..Default::default() },
        )
        .await
        .unwrap();
        let shadow = TeamInput { name: Some("Shadow".into()), ..Default::default() };
        orgs::create_team(app.ctx(), &CLI, "acme", shadow).await.unwrap();
        let oscar = signed_in(&app, "oscar").await;
        let theirs = oscar.get("/orgs/acme/audit").await;
        assert_eq!(theirs.status, 200, "{}", theirs.body);
        let their_list = changes(&theirs);
        assert_eq!(their_list.len(), 2, "{their_list:#?}");
        change(&their_list, "Made the team Shadow");
        assert!(!theirs.body.contains("Invoice 7") && !theirs.body.contains("Research"), "{}", theirs.body);
        let ours = olivia.get("/orgs/acme-labs/audit").await;
        assert!(!ours.body.contains("Shadow"), "{}", ours.body);
        assert_eq!(changes(&ours).len(), after.len());
        // Nor can oscar reach the first one's history by its new slug.
        assert_eq!(oscar.get("/orgs/acme-labs/audit").await.status, 404);
    }
}

db_test! {
    /// The page and its link are for the organisation's admins and owner: an outsider, a
    /// member and a team's manager are told the page does not exist, whatever they ask.
    async fn only_admins_and_the_owner_see_the_audit(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let (_, max) = acme(&app).await;
        for name in ["oscar", "max", "mia"] {
            let browser = signed_in(&app, name).await;
            for path in ["/orgs/acme/audit", "/orgs/acme/audit?kind=wallet", "/orgs/acme/audit?kind=nonsense&before=9"] {
                let refused = browser.get(path).await;
                assert_eq!(refused.status, 404, "{name} {path}: {}", refused.body);
                assert!(!refused.body.contains("Created the organisation"), "{name} {path}");
            }
            let overview = browser.get("/orgs/acme").await;
            assert!(!overview.body.contains("/orgs/acme/audit"), "{name} sees no link to it");
        }
        let refused = orgs::history(app.ctx(), &Caller::User(max.id), "acme", &HistoryQuery::default()).await;
        assert!(matches!(refused, Err(ServiceError::NotFound(_))), "{refused:?}");
        for name in ["adam", "olivia"] {
            let browser = signed_in(&app, name).await;
            let overview = browser.get("/orgs/acme").await;
            assert!(overview.body.contains("href=\"/orgs/acme/audit\""), "{name} has the link");
            let page = browser.get("/orgs/acme/audit").await;
            assert_eq!(page.status, 200, "{name}: {}", page.body);
            assert!(!changes(&page).is_empty());
        }
    }
}

db_test! {
    /// A kind narrows the list to its changes; an unknown kind comes back marked; sixty
    /// changes fill a page of fifty with a link to the ten older ones, and back.
    async fn kinds_filter_and_pages_follow(db: TestDb) {
        let app = TestApp::spawn(db).await;
        acme(&app).await;
        let olivia = signed_in(&app, "olivia").await;

        let budgets = olivia.get("/orgs/acme/audit?kind=budgets").await;
        assert_eq!(budgets.status, 200, "{}", budgets.body);
        let list = changes(&budgets);
        change(&list, "Made the team Research");
        change(&list, "Created the organisation");
        assert!(list.iter().all(|l| !l.contains("Added")), "{list:#?}");
        let members = changes(&olivia.get("/orgs/acme/audit?kind=members").await);
        change(&members, "Added adam to the organisation");
        change(&members, "Added max to Research");
        assert!(members.iter().all(|l| !l.contains("Made the team")), "{members:#?}");
        let roles = changes(&olivia.get("/orgs/acme/audit?kind=roles").await);
        assert!(roles.is_empty(), "{roles:#?}");
        let wrong = olivia.get("/orgs/acme/audit?kind=nonsense").await;
        assert_eq!(wrong.status, 422, "{}", wrong.body);
        assert!(wrong.field_error("kind").is_some(), "{}", wrong.body);

        for round in 0..30 {
            for role in ["admin", "member"] {
                orgs::update_member(app.ctx(), &CLI, "acme", "max", role).await.unwrap_or_else(|e| panic!("{round}: {e}"));
            }
        }
        let roles = olivia.get("/orgs/acme/audit?kind=roles").await;
        let first = changes(&roles);
        assert_eq!(first.len(), 50);
        assert!(first[0].contains("Changed the role of max") && first[0].contains("Role: Admin → Member"), "{}", first[0]);
        let older = roles.body.split("rel=\"next\"").next().unwrap();
        let link = html_unescape(older[older.rfind("href=\"").unwrap() + 6..].split('"').next().unwrap());
        assert!(link.starts_with("/orgs/acme/audit?kind=roles&before="), "{link}");
        let next = olivia.get(&link).await;
        let rest = changes(&next);
        assert_eq!(rest.len(), 10, "{rest:#?}");
        assert!(!next.body.contains("rel=\"next\""), "the last page");
        assert!(next.body.contains("href=\"/orgs/acme/audit?kind=roles\""), "back to the newest");
        let all = changes(&olivia.get("/orgs/acme/audit").await);
        assert_eq!(all.len(), 50);

        // In the reader's language.
        let chinese = olivia.get("/orgs/acme/audit?kind=budgets&lang=zh-CN").await;
        assert_eq!(chinese.lang(), Some("zh-CN"));
        let list = changes(&chinese);
        change(&list, "创建了团队 Research");
        let made = change(&list, "命令行");
        assert!(made.contains("预算： 每月 $100.00"), "{made}");
    }
}
