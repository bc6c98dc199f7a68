//! The organisation pages of the portal over real HTTP: what an outsider, a member, a team's
//! manager, an admin and the owner each see and may send; making an organisation through its
//! form (a mistake comes back marked with what was typed); teams made, edited and deleted;
//! a member's own cap; roles, leaving and handing ownership on; a team key from /keys; and
//! what each member of a team spent this period, with a cap or without.

use crate::helpers::{Browser, CLI, FakeUpstream, Reply, TestApp, chat_body, db_test};
use tollgate::service::db;
use tollgate::service::db::users::UserRow;
use tollgate::service::orgs::{self, AddMember, CreateOrg, TeamInput, TeamMemberInput};
use tollgate::service::tokens::CreateToken;
use tollgate::service::users::QuotaChange;

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

/// The people of `acme`: olivia owns it, adam is an admin, mia manages the team Research,
/// max is in it, and oscar is outside. Returns the team's id.
struct Acme {
    team_id: i64,
    max: UserRow,
    mia: UserRow,
}

async fn acme(app: &TestApp) -> Acme {
    let ctx = app.ctx();
    for name in ["olivia", "adam", "oscar"] {
        person(app, name).await;
    }
    let mia = person(app, "mia").await;
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
        orgs::add_member(
            ctx,
            &CLI,
            "acme",
            AddMember {
                username: name.into(),
                role: Some(role.into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    }
    let team = orgs::create_team(
        ctx,
        &CLI,
        "acme",
        TeamInput {
            name: Some("Research".into()),
            budget_period: Some("monthly".into()),
            budget_usd: Some("100".into()),
            member_cap_usd: Some("20".into()),
            groups: None,
        },
    )
    .await
    .unwrap();
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
    Acme {
        team_id: team.id,
        max,
        mia,
    }
}

async fn signed_in<'a>(app: &'a TestApp, username: &str) -> Browser<'a> {
    let browser = Browser::new(app);
    let answer = browser.sign_in(username, PASSWORD).await;
    assert_eq!(answer.status, 303, "{username} signs in: {}", answer.body);
    browser
}

async fn top_up(app: &TestApp, usd: &str) {
    orgs::adjust_wallet(
        app.ctx(),
        &CLI,
        "acme",
        QuotaChange {
            usd: Some(usd.into()),
            units: None,
            reason: Some("Invoice 42".into()),
            idempotency_key: None,
        },
    )
    .await
    .unwrap();
}

db_test! {
    /// Every page of an organisation is missing for an outsider and there for a member;
    /// settings and the wallet's history are for admins and the owner; the forms for admins
    /// are not shown to a member, and a member's POST to one is refused and changes nothing;
    /// a team's manager sets caps but does not choose managers.
    async fn each_role_sees_what_it_may(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let acme = acme(&app).await;
        top_up(&app, "250").await;
        let team = format!("/orgs/acme/teams/{}", acme.team_id);
        let pages = ["/orgs/acme", "/orgs/acme/teams", team.as_str(), "/orgs/acme/members", "/orgs/acme/wallet"];

        let oscar = signed_in(&app, "oscar").await;
        for path in pages.iter().chain(&["/orgs/acme/settings", "/orgs/nope"]) {
            assert_eq!(oscar.get(path).await.status, 404, "{path} is missing for an outsider");
        }
        let listed = oscar.get("/orgs").await;
        assert_eq!(listed.status, 200);
        assert!(!listed.contains("Acme Research"), "an outsider's list has no acme");
        let refused = oscar.post("/orgs/acme/teams", &[("name", "Intruders")]).await;
        assert_eq!(refused.status, 404);

        let max = signed_in(&app, "max").await;
        for path in pages {
            let page = max.get(path).await;
            assert_eq!(page.status, 200, "{path} for a member: {}", page.body);
            assert!(!page.contains("href=\"/orgs/acme/invitations\""), "{path}: a member invites nobody");
            assert!(page.contains("href=\"/orgs/acme/usage\""), "{path} links the usage");
            assert!(!page.contains("href=\"/orgs/acme/settings\""), "{path} has no settings for a member");
        }
        let overview = max.get("/orgs/acme").await;
        assert!(!overview.contains("$250.00"), "the wallet is for its admins: {}", overview.body);
        assert!(overview.contains("Research"));
        assert!(!overview.contains("Near or over budget"));
        let listed = max.get("/orgs").await;
        assert!(listed.contains("href=\"/orgs/acme\""), "{}", listed.body);
        assert!(listed.contains("Member"));
        assert!(listed.contains("href=\"/orgs\""), "the portal's menu links the organisations");

        let teams = max.get("/orgs/acme/teams").await;
        assert!(!teams.contains("action=\"/orgs/acme/teams#errors\""), "no form to make a team");
        let team_page = max.get(&team).await;
        assert!(!team_page.contains("/cap#errors"), "a member sets no caps");
        assert_eq!(max.get("/orgs/acme/settings").await.status, 403);
        let wallet = max.get("/orgs/acme/wallet").await;
        assert!(wallet.contains("owner and admins."), "{}", wallet.body);
        assert!(!wallet.contains("Invoice 42"));

        max.get("/orgs/acme/teams").await;
        let refused = max
            .post("/orgs/acme/teams", &[("name", "Shadow"), ("budget_usd", ""), ("budget_period", ""), ("member_cap_usd", "")])
            .await;
        assert_eq!(refused.status, 403, "{}", refused.body);
        assert!(refused.contains("Only the organisation"), "the service's words: {}", refused.body);
        let refused = max
            .post("/orgs/acme/settings", &[("name", "Taken over"), ("slug", "acme"), ("timezone", ""), ("budget_usd", ""), ("budget_period", "")])
            .await;
        assert_eq!(refused.status, 403);
        let refused = max.post(&format!("/orgs/acme/members/{}/role", acme.mia.id), &[("role", "admin")]).await;
        assert_eq!(refused.status, 403);
        let view = orgs::show(app.ctx(), &CLI, "acme").await.unwrap();
        assert_eq!(view.name, "Acme Research");
        assert_eq!(view.teams.len(), 1);
        assert!(view.members.iter().all(|m| m.username != "mia" || m.role.as_str() == "member"));

        // Mia manages Research: she sets caps there, but chooses no managers.
        let mia = signed_in(&app, "mia").await;
        let team_page = mia.get(&team).await;
        assert!(team_page.contains("/cap#errors"), "a manager sets caps");
        assert!(!team_page.contains("name=\"manager\""), "only admins choose managers");
        assert!(!team_page.contains("/delete\""), "only admins delete teams");
        let capped = mia.post(&format!("{team}/members/{}/cap", acme.max.id), &[("cap_usd", "5")]).await;
        assert_eq!(capped.status, 303, "{}", capped.body);
        assert_eq!(mia.get(&format!("{team}/delete")).await.status, 403);

        // Adam (admin) has every form, the history and the settings; only the owner deletes.
        let adam = signed_in(&app, "adam").await;
        let teams = adam.get("/orgs/acme/teams").await;
        assert!(teams.contains("action=\"/orgs/acme/teams#errors\""));
        let team_page = adam.get(&team).await;
        assert!(team_page.contains("name=\"manager\""));
        let wallet = adam.get("/orgs/acme/wallet").await;
        assert!(wallet.contains("Invoice 42"), "{}", wallet.body);
        let settings = adam.get("/orgs/acme/settings").await;
        assert_eq!(settings.status, 200);
        assert_eq!(settings.input("slug").as_deref(), Some("acme"));
        assert_eq!(settings.input("budget_usd").as_deref(), Some("500"));
        assert!(!settings.contains("action=\"/orgs/acme/delete\""));
        let olivia = signed_in(&app, "olivia").await;
        let settings = olivia.get("/orgs/acme/settings").await;
        assert!(settings.contains("action=\"/orgs/acme/delete\""));
        assert!(settings.contains("Owner"));
        // The wallet holds money: deleting is refused with the service's words.
        let refused = olivia.post("/orgs/acme/delete", &[]).await;
        assert_eq!(refused.status, 409, "{}", refused.body);
        assert!(refused.contains("still holds $250.00"), "{}", refused.body);
        assert!(orgs::show(app.ctx(), &CLI, "acme").await.is_ok());
    }
}

/// The text of the element with `id` on a page: its first run of text.
fn text_of(page: &crate::helpers::browser::Answer, id: &str) -> String {
    let marker = format!("id=\"{id}\">");
    page.body
        .find(&marker)
        .map(|at| {
            let rest = &page.body[at + marker.len()..];
            rest[..rest.find('<').unwrap_or(rest.len())].to_string()
        })
        .unwrap_or_default()
}

/// Makes `username` a team key of `team` in acme and sends `requests` requests with it.
async fn spend(app: &TestApp, username: &str, team: i64, requests: usize) {
    let (key, _) = app
        .create_key(tollgate::service::tokens::CreateToken {
            username: username.into(),
            name: format!("{username}-{team}"),
            org: Some("acme".into()),
            team: Some(team.to_string()),
            ..Default::default()
        })
        .await;
    app.reload().await;
    for _ in 0..requests {
        let answer = app.chat(&key, chat_body("gpt-4o-mini")).await;
        assert_eq!(
            answer.status(),
            200,
            "{username} spends through team {team}"
        );
    }
}

db_test! {
    /// Each reader of the overview sees the money the rule lets them see, and the service
    /// hands the page nothing more: admins the wallet and everyone's spending; a team's
    /// manager that team's members, and their own line elsewhere; a member their own spending
    /// per team against their cap (and the budget bar of their team) — not the wallet, not
    /// other members, not teams they are not in. Invitations are for those who may invite.
    async fn each_reader_sees_the_money_that_is_theirs_to_see(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let upstream = FakeUpstream::start(Reply::chat("ok", 5, 1)).await;
        app.add_channel("main", &upstream, "gpt-4o-mini").await;
        app.price_per_request("gpt-4o-mini", "0.25").await;
        let acme = acme(&app).await;
        top_up(&app, "250").await;
        // Support: sam, and mia as a plain member (she manages Research).
        let sam = person(&app, "sam").await;
        orgs::add_member(app.ctx(), &CLI, "acme", AddMember { username: "sam".into(), ..Default::default() }).await.unwrap();
        let support = orgs::create_team(
            app.ctx(),
            &CLI,
            "acme",
            TeamInput {
                name: Some("Support".into()),
                budget_period: Some("monthly".into()),
                budget_usd: Some("50".into()),
                member_cap_usd: None,
                groups: None,
            },
        )
        .await
        .unwrap()
        .id;
        for name in ["sam", "mia"] {
            orgs::put_team_member(app.ctx(), &CLI, "acme", "Support", name, TeamMemberInput::default()).await.unwrap();
        }
        // $0.25 a request: max $0.50 and mia $0.25 in Research ($0.75); sam $1.25 and mia
        // $1.00 in Support ($2.25); $3.00 in all, $247.00 left.
        spend(&app, "max", acme.team_id, 2).await;
        spend(&app, "mia", acme.team_id, 1).await;
        spend(&app, "sam", support, 5).await;
        spend(&app, "mia", support, 4).await;
        app.flush().await;

        // The service: the wallet and the spending as each may see them.
        let as_user = |id: i64| tollgate::service::Caller::User(id);
        let of_max = orgs::spending(app.ctx(), &as_user(acme.max.id), "acme", None).await.unwrap();
        assert_eq!(of_max.sight, orgs::Sight::Own);
        assert_eq!(of_max.total, TestApp::units(0.5));
        assert_eq!(of_max.by_member, vec![(acme.max.id, TestApp::units(0.5))], "max's own line alone");
        assert_eq!(of_max.by_team, vec![(acme.team_id, TestApp::units(0.5))], "no other team's total");
        let of_mia = orgs::spending(app.ctx(), &as_user(acme.mia.id), "acme", None).await.unwrap();
        assert_eq!(of_mia.sight, orgs::Sight::Teams);
        assert_eq!(of_mia.of_team(acme.team_id), TestApp::units(0.75), "the team she manages, whole");
        assert_eq!(of_mia.of_team(support), TestApp::units(1.0), "her own line in Support");
        assert_eq!(of_mia.of_member(sam.id), 0, "not sam's");
        let max_view = orgs::show(app.ctx(), &as_user(acme.max.id), "acme").await.unwrap();
        assert_eq!((max_view.quota, max_view.used_quota, max_view.request_count), (None, None, None));
        let olivia_id = orgs::members(app.ctx(), &CLI, "acme").await.unwrap().into_iter().find(|m| m.username == "olivia").unwrap().user_id;
        let owner_view = orgs::show(app.ctx(), &as_user(olivia_id), "acme").await.unwrap();
        assert_eq!(owner_view.quota, Some(TestApp::units(247.0)));
        let listed = orgs::list_mine(app.ctx(), &as_user(acme.max.id)).await.unwrap();
        assert_eq!(listed[0].quota, None, "nor in a member's list");

        // An admin: the wallet, everything spent, every team and member.
        let adam = signed_in(&app, "adam").await;
        let page = adam.get("/orgs/acme").await;
        assert_eq!(text_of(&page, "balance"), "$247.00", "{}", page.body);
        assert_eq!(text_of(&page, "spent"), "$3.00");
        for seen in ["The whole organisation", "Spending per member", "sam", "max", "$2.25", "$0.75", "$1.25"] {
            assert!(page.contains(seen), "an admin sees {seen}: {}", page.body);
        }
        assert!(page.contains("href=\"/orgs/acme/invitations\""));

        // Max, a member: his own $0.50 against his cap, and Research's budget bar.
        let max = signed_in(&app, "max").await;
        let page = max.get("/orgs/acme").await;
        assert_eq!(page.status, 200);
        assert_eq!(text_of(&page, "spent"), "$0.50", "{}", page.body);
        assert!(page.contains("You spent this month"));
        assert!(page.contains("Your spending per team"));
        assert!(page.contains("Your cap: $0.50 of $20.00 this month"), "{}", page.body);
        assert!(page.contains("Your cap in Research"));
        assert!(page.contains("$0.75 of $100.00 this month"), "his team's budget bar");
        assert!(page.contains("id=\"wallet-ask\""), "the wallet: ask an admin");
        for unseen in ["id=\"balance\"", "$247.00", "$250.00", "$3.00", "The whole organisation", "Support", "$2.25", "sam", "members-title", "href=\"/orgs/acme/invitations\""] {
            assert!(!page.contains(unseen), "a member does not see {unseen}: {}", page.body);
        }
        let wallet = max.get("/orgs/acme/wallet").await;
        assert!(!wallet.contains("$247.00") && wallet.contains("id=\"wallet-ask\""), "{}", wallet.body);
        let listed = max.get("/orgs").await;
        assert!(!listed.contains("$247.00") && listed.contains("Admins only"), "{}", listed.body);
        let refused = max.get("/orgs/acme/invitations").await;
        assert_eq!(refused.status, 403, "the page answers as the service decides");
        assert!(refused.contains("Only the organisation"), "{}", refused.body);

        // Sam, in Support only: nothing of Research.
        let sam_page = signed_in(&app, "sam").await.get("/orgs/acme").await;
        assert_eq!(text_of(&sam_page, "spent"), "$1.25", "{}", sam_page.body);
        assert!(sam_page.contains("$2.25 of $50.00 this month"), "his team's budget bar");
        for unseen in ["Research</a>", "$0.75", "$0.50", "$3.00", "max", "mia"] {
            assert!(!sam_page.contains(unseen), "sam does not see {unseen}: {}", sam_page.body);
        }

        // Mia manages Research: its members and total; in Support, her own line alone.
        let mia = signed_in(&app, "mia").await;
        let page = mia.get("/orgs/acme").await;
        assert_eq!(text_of(&page, "spent"), "$0.75", "{}", page.body);
        assert!(page.contains("Your teams spent this month"));
        for seen in ["Spending per member", "max", "$0.50", "$0.25", "Support", "$1.00", "href=\"/orgs/acme/invitations\""] {
            assert!(page.contains(seen), "a manager sees {seen}: {}", page.body);
        }
        for unseen in ["id=\"balance\"", "$247.00", "$3.00", "The whole organisation", "sam", "$1.25"] {
            assert!(!page.contains(unseen), "a manager does not see {unseen}: {}", page.body);
        }
        let invitations = mia.get("/orgs/acme/invitations").await;
        assert_eq!(invitations.status, 200, "{}", invitations.body);
        assert!(invitations.contains(&format!("<option value=\"{}\"", acme.team_id)), "she invites into Research");
        assert!(!invitations.contains(&format!("<option value=\"{support}\"")), "not into Support");
        assert!(!invitations.contains("<option value=\"\">"), "nor outside a team");
    }
}

db_test! {
    /// A budget bar with something spent but under 1 % says "<1 %", not "0 %" (which would
    /// read as nothing spent); a budget nothing was spent from says "0 %". The bar's width
    /// stays the nearest 5 %.
    async fn a_budget_bar_says_under_one_percent(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let upstream = FakeUpstream::start(Reply::chat("ok", 5, 1)).await;
        app.add_channel("main", &upstream, "gpt-4o-mini").await;
        app.price_per_request("gpt-4o-mini", "0.25").await;
        let acme = acme(&app).await;
        top_up(&app, "250").await;
        orgs::create_team(
            app.ctx(),
            &CLI,
            "acme",
            TeamInput {
                name: Some("Support".into()),
                budget_period: Some("monthly".into()),
                budget_usd: Some("50".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        spend(&app, "max", acme.team_id, 1).await;
        app.flush().await;
        let page = signed_in(&app, "olivia").await.get("/orgs/acme").await;
        let text = crate::helpers::browser::html_unescape(&page.body);
        // $0.25 of Research's $100 (0.25 %) and of the organisation's $500 (0.05 %).
        assert!(text.contains("$0.25 of $100.00 this month · <1 %"), "{text}");
        assert!(text.contains("$0.25 of $500.00 this month · <1 %"), "{text}");
        assert!(text.contains("$0.00 of $50.00 this month · 0 %"), "{text}");
        assert_eq!(page.body.matches("bar-fill w-0\"").count(), 3, "every bar is still about empty");
    }
}

db_test! {
    /// A person with a proven address makes an organisation with the form: a bad short name
    /// comes back marked with everything typed kept, then a good one makes it.
    async fn an_organisation_is_made_through_the_form(db: TestDb) {
        let app = TestApp::spawn(db).await;
        person(&app, "olivia").await;
        let olivia = signed_in(&app, "olivia").await;
        let empty = olivia.get("/orgs").await;
        assert_eq!(empty.status, 200);
        assert!(empty.contains("You do not belong to an organisation yet."));
        assert_eq!(olivia.get("/orgs/new").await.status, 200);
        let long_name = "Northwind Traders Applied Machine Learning Research Division";
        assert_eq!(long_name.len(), 60);
        let form = [
            ("name", long_name),
            ("slug", "Bad Slug!"),
            ("timezone", "Asia/Shanghai"),
            ("budget_usd", "500"),
            ("budget_period", "monthly"),
        ];
        let bad = olivia.post("/orgs", &form).await;
        assert_eq!(bad.status, 422, "{}", bad.body);
        assert!(bad.field_error("slug").is_some(), "{}", bad.body);
        assert!(bad.contains("id=\"errors\""), "the summary leads the form");
        assert!(bad.contains("aria-invalid=\"true\""));
        assert_eq!(bad.input("name").as_deref(), Some(long_name));
        assert_eq!(bad.input("slug").as_deref(), Some("Bad Slug!"));
        assert_eq!(bad.input("timezone").as_deref(), Some("Asia/Shanghai"));
        assert_eq!(bad.input("budget_usd").as_deref(), Some("500"));
        assert!(bad.contains("<option value=\"monthly\" selected>"));
        assert!(bad.contains("You do not belong"), "the list comes back with the form");

        let bad = olivia.post("/orgs/new", &[("name", ""), ("slug", "new")]).await;
        assert_eq!(bad.status, 422);
        assert!(bad.field_error("name").is_some());
        assert!(bad.field_error("slug").is_some());
        assert!(!bad.contains("You do not belong"), "/orgs/new is the form alone");

        let made = olivia.post("/orgs/new", &[("name", long_name), ("slug", "northwind"), ("timezone", "Asia/Shanghai"), ("budget_usd", "500"), ("budget_period", "monthly")]).await;
        assert_eq!(made.status, 303, "{}", made.body);
        assert_eq!(made.location.as_deref(), Some("/orgs/northwind"));
        let overview = olivia.get("/orgs/northwind").await;
        assert_eq!(overview.status, 200);
        assert!(overview.contains("Organisation created."));
        assert!(overview.contains(long_name));
        assert!(overview.contains("$0.00 of $500.00 this month"), "{}", overview.body);
        let view = orgs::show(app.ctx(), &CLI, "northwind").await.unwrap();
        assert_eq!(view.owner.as_deref(), Some("olivia"));
        assert_eq!(view.timezone, "Asia/Shanghai");

        // Someone whose address is not proven is told why.
        app.create_user_with_email("una", "una@example.com", PASSWORD).await;
        let una = signed_in(&app, "una").await;
        una.get("/orgs").await;
        let refused = una.post("/orgs", &[("name", "Una's"), ("slug", "unas")]).await;
        assert_eq!(refused.status, 403);
        assert!(refused.contains("Prove your email address"), "{}", refused.body);
    }
}

db_test! {
    /// An admin makes a team (a cap without a budget comes back marked), edits it, adds a
    /// member, gives them a cap of their own and takes it back, and deletes the team after a
    /// page naming the keys that stop.
    async fn teams_are_made_edited_and_deleted(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let acme = acme(&app).await;
        let adam = signed_in(&app, "adam").await;
        adam.get("/orgs/acme/teams").await;
        let bad = adam
            .post("/orgs/acme/teams", &[("name", "Platform"), ("budget_usd", ""), ("budget_period", ""), ("member_cap_usd", "10")])
            .await;
        assert_eq!(bad.status, 422, "{}", bad.body);
        assert!(bad.field_error("member_cap_usd").is_some(), "{}", bad.body);
        assert_eq!(bad.input("name").as_deref(), Some("Platform"));
        let made = adam
            .post("/orgs/acme/teams", &[("name", "Platform"), ("budget_usd", "200"), ("budget_period", "monthly"), ("member_cap_usd", "10")])
            .await;
        assert_eq!(made.status, 303, "{}", made.body);
        let path = made.location.clone().unwrap();
        let id: i64 = path.rsplit('/').next().unwrap().parse().unwrap();
        let page = adam.get(&path).await;
        assert!(page.contains("Team created."));
        assert!(page.contains("$0.00 of $200.00 this month"), "{}", page.body);
        assert!(page.contains("$10.00 a month"));

        let saved = adam
            .post(&path, &[("name", "Platform Engineering"), ("budget_usd", "300"), ("budget_period", "monthly"), ("member_cap_usd", "15")])
            .await;
        assert_eq!(saved.status, 303, "{}", saved.body);
        let bad = adam
            .post(&path, &[("name", "Platform Engineering"), ("budget_usd", "lots"), ("budget_period", "monthly"), ("member_cap_usd", "15")])
            .await;
        assert_eq!(bad.status, 422);
        assert!(bad.field_error("budget_usd").is_some());
        assert_eq!(bad.input("budget_usd").as_deref(), Some("lots"));

        let added = adam.post(&format!("{path}/members"), &[("username", "max"), ("manager", "1")]).await;
        assert_eq!(added.status, 303, "{}", added.body);
        let cap = format!("{path}/members/{}/cap", acme.max.id);
        let capped = adam.post(&cap, &[("cap_usd", "5")]).await;
        assert_eq!(capped.status, 303);
        let team = |teams: Vec<orgs::TeamView>| teams.into_iter().find(|t| t.id == id).unwrap();
        let now = team(orgs::teams(app.ctx(), &CLI, "acme").await.unwrap());
        assert_eq!(now.name, "Platform Engineering");
        let max = now.members.iter().find(|m| m.username == "max").unwrap();
        assert!(max.manager);
        assert_eq!(max.own_cap_quota, Some(TestApp::units(5.0)));
        let page = adam.get(&path).await;
        assert!(page.contains("$0.00 of $5.00 this month"), "{}", page.body);

        let over = adam.post(&cap, &[("cap_usd", "1000")]).await;
        assert_eq!(over.status, 422);
        let field = format!("cap-{}", acme.max.id);
        assert!(over.field_error(&field).is_some(), "{}", over.body);
        assert!(over.contains(&format!("href=\"#{field}\"")), "the summary links the field");
        assert!(over.contains("value=\"1000\""), "what was typed is kept");
        let back = adam.post(&cap, &[("cap_usd", "5"), ("default", "1")]).await;
        assert_eq!(back.status, 303);
        let now = team(orgs::teams(app.ctx(), &CLI, "acme").await.unwrap());
        assert_eq!(now.members.iter().find(|m| m.username == "max").unwrap().own_cap_quota, None);

        // Max makes a key of the team; deleting the team names it, then stops it.
        let (_, key) = app
            .create_key(tollgate::service::tokens::CreateToken {
                username: "max".into(),
                name: "platform-ci".into(),
                org: Some("acme".into()),
                team: Some(id.to_string()),
                ..Default::default()
            })
            .await;
        let confirm = adam.get(&format!("{path}/delete")).await;
        assert_eq!(confirm.status, 200, "{}", confirm.body);
        assert!(confirm.contains("platform-ci"), "{}", confirm.body);
        assert!(confirm.contains("of max"));
        let deleted = adam.post(&format!("{path}/delete"), &[]).await;
        assert_eq!(deleted.status, 303);
        assert_eq!(deleted.location.as_deref(), Some("/orgs/acme/teams"));
        assert!(orgs::teams(app.ctx(), &CLI, "acme").await.unwrap().iter().all(|t| t.id != id));
        assert!(tollgate::service::tokens::get(app.ctx(), &CLI, key.id).await.is_err(), "its key is gone");
        assert_eq!(adam.get(&path).await.status, 404);
    }
}

db_test! {
    /// An admin changes a role and removes a member; a member leaves; the owner offers
    /// ownership, the member accepts it on /orgs; the owner cannot leave.
    async fn roles_change_members_leave_and_ownership_moves(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let acme = acme(&app).await;
        let adam = signed_in(&app, "adam").await;
        let members = adam.get("/orgs/acme/members").await;
        assert!(members.contains(&format!("action=\"/orgs/acme/members/{}/role\"", acme.max.id)));
        let changed = adam.post(&format!("/orgs/acme/members/{}/role", acme.max.id), &[("role", "admin")]).await;
        assert_eq!(changed.status, 303, "{}", changed.body);
        let role_of = async |name: &str| {
            orgs::members(app.ctx(), &CLI, "acme")
                .await
                .unwrap()
                .into_iter()
                .find(|m| m.username == name)
                .map(|m| m.role.as_str().to_string())
        };
        assert_eq!(role_of("max").await.as_deref(), Some("admin"));
        let removed = adam.post(&format!("/orgs/acme/members/{}/remove", acme.mia.id), &[]).await;
        assert_eq!(removed.status, 303);
        assert_eq!(role_of("mia").await, None);

        let max = signed_in(&app, "max").await;
        max.get("/orgs/acme/members").await;
        let left = max.post("/orgs/acme/leave", &[]).await;
        assert_eq!(left.status, 303);
        assert_eq!(left.location.as_deref(), Some("/orgs"));
        assert_eq!(max.get("/orgs/acme").await.status, 404, "gone for one who left");

        let olivia = signed_in(&app, "olivia").await;
        let members = olivia.get("/orgs/acme/members").await;
        assert!(members.contains("name=\"new_owner\""), "the owner hands it on");
        let offered = olivia.post("/orgs/acme/transfer", &[("new_owner", "adam")]).await;
        assert_eq!(offered.status, 303, "{}", offered.body);
        assert!(olivia.get("/orgs/acme/members").await.contains("offered to adam"));
        let list = adam.get("/orgs").await;
        assert!(list.contains("olivia offers you ownership of Acme Research."), "{}", list.body);
        let accepted = adam.post("/orgs/acme/transfer/accept", &[]).await;
        assert_eq!(accepted.status, 303, "{}", accepted.body);
        assert_eq!(role_of("adam").await.as_deref(), Some("owner"));
        assert_eq!(role_of("olivia").await.as_deref(), Some("admin"));
        adam.get("/orgs/acme/members").await;
        let refused = adam.post("/orgs/acme/leave", &[]).await;
        assert_eq!(refused.status, 403, "the owner hands ownership on first");

        // Settings: a bad short name comes back marked; a good one moves the pages.
        adam.get("/orgs/acme/settings").await;
        let bad = adam
            .post("/orgs/acme/settings", &[("name", "Acme Research"), ("slug", "x"), ("timezone", ""), ("budget_usd", "500"), ("budget_period", "monthly")])
            .await;
        assert_eq!(bad.status, 422);
        assert!(bad.field_error("slug").is_some());
        assert_eq!(bad.input("slug").as_deref(), Some("x"));
        let saved = adam
            .post("/orgs/acme/settings", &[("name", "Acme Labs"), ("slug", "acme-labs"), ("timezone", "Europe/Berlin"), ("budget_usd", ""), ("budget_period", "")])
            .await;
        assert_eq!(saved.status, 303, "{}", saved.body);
        assert_eq!(saved.location.as_deref(), Some("/orgs/acme-labs/settings"));
        let view = orgs::show(app.ctx(), &CLI, "acme-labs").await.unwrap();
        assert_eq!(view.name, "Acme Labs");
        assert!(view.budget.is_none());
    }
}

db_test! {
    /// The keys page offers a member's teams besides a personal key, each option short
    /// ("Org — Team") with the team's budget and the member's cap listed under the choice,
    /// and limit and budget hints right for a team key too; it makes a team key, and the list
    /// names its team. Someone in no team sees no choice.
    async fn the_keys_page_makes_a_team_key(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let acme = acme(&app).await;
        orgs::create_team(
            app.ctx(),
            &CLI,
            "acme",
            TeamInput { name: Some("Support".into()), ..Default::default() },
        )
        .await
        .unwrap();
        orgs::put_team_member(app.ctx(), &CLI, "acme", "Support", "max", TeamMemberInput::default()).await.unwrap();
        let max = signed_in(&app, "max").await;
        let keys = max.get("/keys").await;
        let choice = format!("acme/{}", acme.team_id);
        assert!(keys.contains(&format!("<option value=\"{choice}\">Acme Research — Research</option>")), "{}", keys.body);
        assert!(!keys.contains("this month</option>"), "no budget inside an option: {}", keys.body);
        assert!(keys.contains("aria-describedby=\"team-hint team-budgets\""), "the list describes the choice");
        assert!(
            keys.contains("<li><span class=\"team-budget-name\">Acme Research — Research:</span> $0.00 of $100.00 this month · your cap $20.00</li>"),
            "{}",
            keys.body
        );
        assert!(keys.contains("<li><span class=\"team-budget-name\">Acme Research — Support:</span> no budget</li>"), "{}", keys.body);
        let text = crate::helpers::browser::html_unescape(&keys.body);
        assert!(text.contains("up to the balance it draws on: yours, or the organisation's wallet for a team key"), "the limit's hint: {text}");
        assert!(!text.contains("up to your balance"));
        // As the relay counts: a key's own budget in the site's zone, a team's in the organisation's.
        assert!(text.contains("in the site's time zone, for a team key too (the team's budget and your cap start over in the organisation's)"), "{text}");
        let made = max.post("/keys", &[("team", choice.as_str()), ("name", "research-laptop")]).await;
        assert_eq!(made.status, 201, "{}", made.body);
        assert!(made.new_key().is_some());
        assert!(made.contains("Team: Acme Research — Research"), "{}", made.body);
        let ids = app.token_ids_of("max").await;
        let key = app.token(ids[0]).await;
        assert_eq!(key.team_id, acme.team_id);
        assert!(key.org_id > 0);

        let oscar = signed_in(&app, "oscar").await;
        let keys = oscar.get("/keys").await;
        assert!(!keys.contains("name=\"team\""), "no team to choose");
        // A team one is not in is refused next to the field.
        let refused = oscar.post("/keys", &[("team", choice.as_str()), ("name", "sneaky")]).await;
        assert!(refused.status == 422 || refused.status == 404, "{}", refused.status);
        assert!(app.token_ids_of("oscar").await.is_empty());
    }
}

/// The row of `username` in a team page's member list.
fn member_row<'a>(body: &'a str, username: &str) -> &'a str {
    let marker = format!("<th scope=\"row\" class=\"member-name\">{username}");
    let start = body
        .find(&marker)
        .unwrap_or_else(|| panic!("{username} is listed: {body}"));
    let row = &body[start..];
    &row[..row.find("</tr>").unwrap_or(row.len())]
}

db_test! {
    /// A team's page shows what each member spent through the team this period, from the
    /// request log, whether a cap holds them or not: max spends a cent in Support, a team with
    /// no member cap, and in Research, where the team's cap holds him; mia spent nothing.
    async fn members_spend_shows_with_or_without_a_cap(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let acme = acme(&app).await;
        top_up(&app, "10").await;
        let support = orgs::create_team(
            app.ctx(),
            &CLI,
            "acme",
            TeamInput {
                name: Some("Support".into()),
                budget_period: Some("monthly".into()),
                budget_usd: Some("50".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        for name in ["max", "mia"] {
            orgs::put_team_member(app.ctx(), &CLI, "acme", "Support", name, TeamMemberInput::default())
                .await
                .unwrap();
        }
        let upstream = FakeUpstream::start(Reply::chat("ok", 5, 1)).await;
        app.add_channel("main", &upstream, "gpt-4o-mini").await;
        app.price_per_request("gpt-4o-mini", "0.01").await;
        for (team, requests) in [(support.id, 2), (acme.team_id, 1)] {
            let (key, _) = app
                .create_key(CreateToken {
                    username: "max".into(),
                    name: format!("team-{team}"),
                    org: Some("acme".into()),
                    team: Some(team.to_string()),
                    ..Default::default()
                })
                .await;
            for _ in 0..requests {
                assert_eq!(app.chat(&key, chat_body("gpt-4o-mini")).await.status(), 200);
            }
        }
        app.flush().await;
        app.wait_for_logs(3).await;

        let adam = signed_in(&app, "adam").await;
        let page = adam.get(&format!("/orgs/acme/teams/{}", support.id)).await;
        assert_eq!(page.status, 200, "{}", page.body);
        let max = member_row(&page.body, "max");
        assert!(max.contains("No cap"), "no cap holds max in Support: {max}");
        assert!(max.contains("data-label=\"Spent this month\">$0.02</td>"), "{max}");
        let mia = member_row(&page.body, "mia");
        assert!(mia.contains("data-label=\"Spent this month\">$0.00</td>"), "{mia}");
        // In Research the team's cap holds max; the column counts his spend there alone.
        let page = adam.get(&format!("/orgs/acme/teams/{}", acme.team_id)).await;
        let max = member_row(&page.body, "max");
        assert!(max.contains("$0.01 of $20.00 this month"), "{max}");
        assert!(max.contains("data-label=\"Spent this month\">$0.01</td>"), "{max}");
        // A member reads their own team's page alike.
        let max_browser = signed_in(&app, "max").await;
        let own = max_browser.get(&format!("/orgs/acme/teams/{}", support.id)).await;
        assert!(member_row(&own.body, "max").contains(">$0.02</td>"), "{}", own.body);
    }
}

db_test! {
    /// The overview lists this month's spend per model and the latest requests, of what the
    /// reader may see: an admin everyone's, a member their own alone.
    async fn the_overview_shows_models_and_latest_requests(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let acme = acme(&app).await;
        top_up(&app, "10").await;
        let upstream = FakeUpstream::start(Reply::chat("ok", 5, 1)).await;
        app.add_channel("main", &upstream, "gpt-4o-mini, gpt-4o").await;
        app.price_per_request("gpt-4o-mini", "0.01").await;
        app.price_per_request("gpt-4o", "0.05").await;
        for (name, model, requests) in [("max", "gpt-4o-mini", 3), ("mia", "gpt-4o", 1)] {
            let (key, _) = app
                .create_key(CreateToken {
                    username: name.into(),
                    name: format!("{name}-research-key"),
                    org: Some("acme".into()),
                    team: Some(acme.team_id.to_string()),
                    ..Default::default()
                })
                .await;
            for _ in 0..requests {
                assert_eq!(app.chat(&key, chat_body(model)).await.status(), 200);
            }
        }
        app.wait_for_logs(4).await;
        app.flush().await;

        let adam = signed_in(&app, "adam").await;
        let page = adam.get("/orgs/acme").await;
        assert_eq!(page.status, 200, "{}", page.body);
        let models = page.body.split("id=\"models\"").nth(1).unwrap().split("</table>").next().unwrap();
        // Most spent first: gpt-4o's one request at $0.05, then three at $0.01.
        let first = models.find("gpt-4o<").unwrap();
        let second = models.find("gpt-4o-mini").unwrap();
        assert!(first < second, "{models}");
        assert!(models.contains("<td class=\"num\">3</td><td class=\"num\">$0.03</td>"), "{models}");
        assert!(models.contains("<td class=\"num\">1</td><td class=\"num\">$0.05</td>"), "{models}");
        let latest = page.body.split("id=\"latest\"").nth(1).unwrap();
        assert!(latest.contains("max-research-key") && latest.contains("mia-research-key"), "{latest}");

        // Max is a plain member of Research: his own requests and models only.
        let max = signed_in(&app, "max").await;
        let own = max.get("/orgs/acme").await;
        assert_eq!(own.status, 200);
        let latest = own.body.split("id=\"latest\"").nth(1).unwrap();
        assert!(latest.contains("max-research-key"), "{latest}");
        assert!(!own.body.contains("mia-research-key"), "{}", own.body);
        assert!(!own.body.contains("gpt-4o<"), "{}", own.body);
    }
}

db_test! {
    /// On a team's page a plain member sees their teammates and their caps, but what each
    /// teammate spent only as a dash; their own spending in full. The team's manager sees
    /// everyone's.
    async fn a_member_sees_teammates_caps_but_not_their_spending(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let acme = acme(&app).await;
        top_up(&app, "10").await;
        let upstream = FakeUpstream::start(Reply::chat("ok", 5, 1)).await;
        app.add_channel("main", &upstream, "gpt-4o-mini").await;
        app.price_per_request("gpt-4o-mini", "0.01").await;
        for (name, requests) in [("max", 2), ("mia", 3)] {
            let (key, _) = app
                .create_key(CreateToken {
                    username: name.into(),
                    name: format!("{name} key"),
                    org: Some("acme".into()),
                    team: Some(acme.team_id.to_string()),
                    ..Default::default()
                })
                .await;
            for _ in 0..requests {
                assert_eq!(app.chat(&key, chat_body("gpt-4o-mini")).await.status(), 200);
            }
        }
        app.wait_for_logs(5).await;
        app.flush().await;
        let path = format!("/orgs/acme/teams/{}", acme.team_id);

        let max = signed_in(&app, "max").await;
        let page = max.get(&path).await;
        assert_eq!(page.status, 200, "{}", page.body);
        let own = member_row(&page.body, "max");
        assert!(own.contains("$0.02 of $20.00 this month"), "{own}");
        let teammate = member_row(&page.body, "mia");
        assert!(teammate.contains("$20.00"), "the cap is shown: {teammate}");
        assert!(!teammate.contains("$0.03"), "{teammate}");
        assert!(teammate.contains("—"), "{teammate}");
        // Nor through the service as him.
        let seen = orgs::show(app.ctx(), &tollgate::service::Caller::User(acme.max.id), "acme").await.unwrap();
        let team = seen.teams.iter().find(|t| t.id == acme.team_id).unwrap();
        let mia = team.members.iter().find(|m| m.username == "mia").unwrap();
        assert_eq!(mia.cap.as_ref().unwrap().spent_quota, 0);

        let mia = signed_in(&app, "mia").await;
        let page = mia.get(&path).await;
        assert!(member_row(&page.body, "max").contains("$0.02 of $20.00 this month"), "{}", page.body);
        assert!(member_row(&page.body, "mia").contains("$0.03 of $20.00 this month"), "{}", page.body);
    }
}
