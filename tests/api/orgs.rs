//! Organisations through the management door: who may create them, validation, roles (an
//! outsider is told nothing exists), teams with budgets, caps and groups, the wallet's ledger
//! under concurrent top-ups, deletion, team keys, and the command line.

use serde_json::Value;

use crate::helpers::{CLI, TestApp, db_test};
use crate::shutdown::tollgate;
use tollgate::domain::kinds::OrgRole;
use tollgate::service::db::users::UserRow;
use tollgate::service::orgs::{
    self, AddMember, CreateOrg, DeleteOrg, TeamInput, TeamMemberInput, Transfer, UpdateOrg,
};
use tollgate::service::tokens::{CreateToken, UpdateToken};
use tollgate::service::users::QuotaChange;
use tollgate::service::{self, Caller, ServiceError, db};

fn field_of<T: std::fmt::Debug>(result: Result<T, ServiceError>) -> &'static str {
    match result {
        Err(ServiceError::Invalid(problems)) => problems[0].field,
        Err(ServiceError::Conflict {
            field: Some(field), ..
        }) => field,
        other => panic!("expected a refused value, got {other:?}"),
    }
}

fn is_not_found<T: std::fmt::Debug>(result: Result<T, ServiceError>) -> bool {
    matches!(result, Err(ServiceError::NotFound(_)))
}

fn is_forbidden<T: std::fmt::Debug>(result: Result<T, ServiceError>) -> bool {
    matches!(result, Err(ServiceError::Forbidden(_)))
}

/// An account whose email address is proven, as after the emailed code.
async fn verified(app: &TestApp, username: &str) -> UserRow {
    let email = format!("{username}@example.com");
    let user = app
        .create_user_with_email(username, &email, "correct horse battery")
        .await;
    app.db
        .write(async |tx| db::users::mark_email_verified(tx, user.id, &email).await)
        .await
        .unwrap();
    user
}

fn new_org(slug: &str, owner: &str) -> CreateOrg {
    CreateOrg {
        name: format!("The {slug}"),
        slug: slug.into(),
        owner: Some(owner.into()),
        ..Default::default()
    }
}

fn member(username: &str, role: &str) -> AddMember {
    AddMember {
        username: username.into(),
        role: Some(role.into()),
        ..Default::default()
    }
}

fn team(name: &str, budget_usd: Option<&str>, cap_usd: Option<&str>) -> TeamInput {
    TeamInput {
        name: Some(name.into()),
        budget_period: budget_usd.map(|_| "monthly".into()),
        budget_usd: budget_usd.map(str::to_string),
        member_cap_usd: cap_usd.map(str::to_string),
        groups: None,
    }
}

db_test! {
    /// Names, slugs and zones are checked (every wrong value at once); a slug is unique and
    /// `new` is nobody's; the budget shows its period, when it starts over and what it spent.
    async fn organisations_are_validated_updated_and_deleted(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let ctx = app.ctx();
        app.create_user("alice", "0").await;

        let bad = orgs::create(ctx, &CLI, CreateOrg {
            name: " ".into(),
            slug: "Acme".into(),
            owner: Some("alice".into()),
            timezone: Some("Mars/Olympus".into()),
            ..Default::default()
        })
        .await;
        let Err(ServiceError::Invalid(problems)) = bad else { panic!("{bad:?}") };
        let fields: Vec<&str> = problems.iter().map(|p| p.field).collect();
        assert_eq!(fields, ["name", "slug", "timezone"]);
        assert_eq!(field_of(orgs::create(ctx, &CLI, new_org("new", "alice")).await), "slug");
        assert_eq!(field_of(orgs::create(ctx, &CLI, new_org("a", "alice")).await), "slug");
        assert_eq!(field_of(orgs::create(ctx, &CLI, new_org("acme", "nobody")).await), "owner");
        let budget_without_period = CreateOrg { budget_usd: Some("10".into()), ..new_org("acme", "alice") };
        assert_eq!(field_of(orgs::create(ctx, &CLI, budget_without_period).await), "budget_period");

        let org = orgs::create(ctx, &CLI, CreateOrg {
            timezone: Some("Asia/Shanghai".into()),
            budget_period: Some("quarterly".into()),
            budget_usd: Some("100".into()),
            ..new_org("acme", "alice")
        })
        .await
        .unwrap();
        assert_eq!((org.slug.as_str(), org.group.as_str(), org.quota), ("acme", "default", Some(0)));
        assert_eq!(org.owner.as_deref(), Some("alice"));
        let budget = org.budget.expect("a budget");
        assert_eq!((budget.period.as_str(), budget.quota, budget.spent_quota), ("quarterly", TestApp::units(100.0), 0));
        // Quarters start at midnight in Shanghai: 16:00 UTC the day before.
        assert!(budget.period_start.ends_with("T16:00:00Z"), "{}", budget.period_start);
        assert!(budget.next_start > budget.period_start);
        assert_eq!(field_of(orgs::create(ctx, &CLI, new_org("acme", "alice")).await), "slug");

        let updated = orgs::update(ctx, &CLI, "acme", UpdateOrg {
            name: Some("Acme Inc.".into()),
            slug: Some("acme-inc".into()),
            timezone: Some(String::new()),
            budget_period: Some(String::new()),
            ..Default::default()
        })
        .await
        .unwrap();
        assert_eq!((updated.name.as_str(), updated.slug.as_str(), updated.timezone.as_str()), ("Acme Inc.", "acme-inc", ""));
        assert_eq!(updated.effective_timezone, "UTC");
        assert!(updated.budget.is_none());
        assert!(is_not_found(orgs::show(ctx, &CLI, "acme").await));
        let unknown_group = UpdateOrg { group: Some("gold".into()), ..Default::default() };
        assert_eq!(field_of(orgs::update(ctx, &CLI, "acme-inc", unknown_group).await), "group");

        orgs::delete(ctx, &CLI, "acme-inc", DeleteOrg::default()).await.unwrap();
        assert!(is_not_found(orgs::show(ctx, &CLI, "acme-inc").await));
        assert!(orgs::list(ctx, &CLI).await.unwrap().is_empty());
    }
}

db_test! {
    /// People create organisations they own when the site lets them: a proven email
    /// address, `org_creation_enabled`, at most `max_orgs_per_user`; the group is the site's
    /// to choose.
    async fn people_create_organisations_within_the_site_rules(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let ctx = app.ctx();
        let carol = app.create_user_with_email("carol", "carol@example.com", "correct horse battery").await;
        let bob = verified(&app, "bob").await;
        let as_bob = Caller::User(bob.id);
        let mine = |slug: &str| CreateOrg { name: slug.into(), slug: slug.into(), ..Default::default() };

        assert!(is_forbidden(orgs::create(ctx, &Caller::User(carol.id), mine("carols")).await), "an unproven address");
        app.set_option("org_creation_enabled", "false").await;
        assert!(is_forbidden(orgs::create(ctx, &as_bob, mine("bobs")).await));
        app.set_option("org_creation_enabled", "true").await;
        let for_carol = CreateOrg { owner: Some("carol".into()), ..mine("bobs") };
        assert!(is_forbidden(orgs::create(ctx, &as_bob, for_carol).await));
        let with_group = CreateOrg { group: Some("default".into()), ..mine("bobs") };
        assert!(is_forbidden(orgs::create(ctx, &as_bob, with_group).await));

        app.set_option("max_orgs_per_user", "2").await;
        let first = orgs::create(ctx, &as_bob, mine("bobs")).await.unwrap();
        assert_eq!(first.role, Some(OrgRole::Owner));
        orgs::create(ctx, &as_bob, mine("bobs-2")).await.unwrap();
        assert!(is_forbidden(orgs::create(ctx, &as_bob, mine("bobs-3")).await));
        // The cap is the site's on people; an administrator is not held to it.
        orgs::create(ctx, &CLI, CreateOrg { owner: Some("bob".into()), ..mine("bobs-3") }).await.unwrap();
        let listed: Vec<String> = orgs::list(ctx, &as_bob).await.unwrap().into_iter().map(|o| o.slug).collect();
        assert_eq!(listed, ["bobs", "bobs-2", "bobs-3"]);
        assert!(orgs::list(ctx, &Caller::User(carol.id)).await.unwrap().is_empty());
    }
}

db_test! {
    /// An outsider is told the organisation does not exist; a member reads it and manages
    /// nothing; a team's manager sets caps in that team alone; admins manage; the owner
    /// cannot leave or be removed, and hands ownership on by an offer the member accepts.
    async fn roles_decide_who_manages_what(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let ctx = app.ctx();
        let owner = app.create_user("olivia", "0").await;
        let admin = app.create_user("adam", "0").await;
        let manager = app.create_user("mona", "0").await;
        let plain = app.create_user("pete", "0").await;
        let outsider = app.create_user("otto", "0").await;
        orgs::create(ctx, &CLI, new_org("acme", "olivia")).await.unwrap();
        orgs::add_member(ctx, &CLI, "acme", member("adam", "admin")).await.unwrap();
        orgs::add_member(ctx, &CLI, "acme", AddMember { team: None, ..member("mona", "member") }).await.unwrap();
        orgs::add_member(ctx, &CLI, "acme", member("pete", "member")).await.unwrap();
        let as_owner = Caller::User(owner.id);
        let as_admin = Caller::User(admin.id);
        let as_manager = Caller::User(manager.id);
        let as_plain = Caller::User(plain.id);
        let as_outsider = Caller::User(outsider.id);

        // Outsiders learn nothing; people cannot add members directly (invitations do).
        assert!(is_not_found(orgs::show(ctx, &as_outsider, "acme").await));
        assert!(is_not_found(orgs::update(ctx, &as_outsider, "acme", UpdateOrg::default()).await));
        assert!(is_not_found(orgs::leave(ctx, &as_outsider, "acme").await));
        assert!(is_forbidden(orgs::add_member(ctx, &as_owner, "acme", member("otto", "member")).await));

        // Admins make teams; a plain member reads but manages nothing.
        orgs::create_team(ctx, &as_admin, "acme", team("red", Some("50"), Some("10"))).await.unwrap();
        orgs::create_team(ctx, &as_owner, "acme", team("blue", Some("50"), None)).await.unwrap();
        let seen = orgs::show(ctx, &as_plain, "acme").await.unwrap();
        assert_eq!(seen.role, Some(OrgRole::Member));
        assert_eq!(seen.teams.len(), 2);
        assert!(is_forbidden(orgs::update(ctx, &as_plain, "acme", UpdateOrg { name: Some("x".into()), ..Default::default() }).await));
        assert!(is_forbidden(orgs::create_team(ctx, &as_plain, "acme", team("green", None, None)).await));
        assert!(is_forbidden(orgs::update_member(ctx, &as_plain, "acme", "adam", "member").await));

        // Mona manages red: she adds pete there and caps him, but not in blue, and makes no managers.
        let make_manager = TeamMemberInput { manager: Some(true), cap_usd: None };
        orgs::put_team_member(ctx, &as_admin, "acme", "red", "mona", make_manager.clone()).await.unwrap();
        orgs::put_team_member(ctx, &as_manager, "acme", "red", "pete", TeamMemberInput::default()).await.unwrap();
        let red = orgs::set_member_cap(ctx, &as_manager, "acme", "red", "pete", Some("5".into())).await.unwrap();
        let pete = red.members.iter().find(|m| m.username == "pete").unwrap();
        assert_eq!(pete.own_cap_quota, Some(TestApp::units(5.0)));
        assert_eq!(pete.cap.as_ref().unwrap().spent_quota, 0);
        assert!(is_forbidden(orgs::put_team_member(ctx, &as_manager, "acme", "red", "pete", make_manager.clone()).await));
        assert!(is_forbidden(orgs::put_team_member(ctx, &as_manager, "acme", "blue", "pete", TeamMemberInput::default()).await));
        assert!(is_forbidden(orgs::set_member_cap(ctx, &as_plain, "acme", "red", "pete", None).await));
        let over = orgs::set_member_cap(ctx, &as_manager, "acme", "red", "pete", Some("60".into())).await;
        assert_eq!(field_of(over), "cap_usd");
        let back = orgs::set_member_cap(ctx, &as_manager, "acme", "red", "pete", None).await.unwrap();
        let pete = back.members.iter().find(|m| m.username == "pete").unwrap();
        assert_eq!((pete.own_cap_quota, pete.cap.as_ref().map(|c| c.quota)), (None, Some(TestApp::units(10.0))));

        // The owner stays until they hand the organisation on.
        assert!(is_forbidden(orgs::leave(ctx, &as_owner, "acme").await));
        assert!(is_forbidden(orgs::remove_member(ctx, &as_admin, "acme", "olivia").await));
        assert!(is_forbidden(orgs::update_member(ctx, &as_admin, "acme", "olivia", "member").await));
        assert_eq!(field_of(orgs::update_member(ctx, &as_admin, "acme", "pete", "owner").await), "role");
        assert!(is_forbidden(orgs::transfer(ctx, &as_admin, "acme", "pete").await));
        assert_eq!(field_of(orgs::transfer(ctx, &as_owner, "acme", "otto").await), "username");
        assert_eq!(orgs::transfer(ctx, &as_owner, "acme", "adam").await.unwrap(), Transfer::Offered);
        assert_eq!(orgs::show(ctx, &as_plain, "acme").await.unwrap().pending_owner.as_deref(), Some("adam"));
        assert!(matches!(orgs::accept_transfer(ctx, &as_plain, "acme").await, Err(ServiceError::Conflict { .. })));
        let accepted = orgs::accept_transfer(ctx, &as_admin, "acme").await.unwrap();
        assert_eq!((accepted.owner.as_deref(), accepted.pending_owner.as_deref()), (Some("adam"), None));
        let roles: Vec<(String, OrgRole)> = accepted.members.iter().map(|m| (m.username.clone(), m.role)).collect();
        assert!(roles.contains(&("olivia".into(), OrgRole::Admin)), "{roles:?}");

        // Any other member leaves by themselves; leaving takes them out of their teams.
        orgs::leave(ctx, &as_plain, "acme").await.unwrap();
        assert!(is_not_found(orgs::show(ctx, &as_plain, "acme").await));
        let red = orgs::show(ctx, &as_owner, "acme").await.unwrap().teams.into_iter().find(|t| t.name == "red").unwrap();
        assert!(red.members.iter().all(|m| m.username != "pete"));
    }
}

db_test! {
    /// Teams: a unique name, a budget, a default member cap within it (and only with one),
    /// groups among those the organisation may use; deleting one deletes its keys.
    async fn teams_hold_budgets_caps_and_groups(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let ctx = app.ctx();
        app.create_user("olivia", "0").await;
        app.create_group("gold", "2").await;
        app.create_group("silver", "1").await;
        service::groups::update(ctx, &CLI, "silver", service::groups::GroupInput {
            user_selectable: Some(true),
            ..Default::default()
        })
        .await
        .unwrap();
        orgs::create(ctx, &CLI, new_org("acme", "olivia")).await.unwrap();

        assert_eq!(field_of(orgs::create_team(ctx, &CLI, "acme", team("red", None, Some("5"))).await), "member_cap_usd");
        assert_eq!(field_of(orgs::create_team(ctx, &CLI, "acme", team("red", Some("10"), Some("20"))).await), "member_cap_usd");
        let gold = TeamInput { groups: Some("default,gold".into()), ..team("red", None, None) };
        assert_eq!(field_of(orgs::create_team(ctx, &CLI, "acme", gold).await), "groups");
        let nameless = TeamInput { name: None, ..team("x", None, None) };
        assert_eq!(field_of(orgs::create_team(ctx, &CLI, "acme", nameless).await), "name");

        let silver = TeamInput { groups: Some("silver, default".into()), ..team("red", Some("10"), Some("2")) };
        let red = orgs::create_team(ctx, &CLI, "acme", silver).await.unwrap();
        assert_eq!(red.groups, ["silver", "default"]);
        assert_eq!(red.member_cap_quota, Some(TestApp::units(2.0)));
        let budget = red.budget.unwrap();
        assert_eq!((budget.period.as_str(), budget.quota), ("monthly", TestApp::units(10.0)));
        assert_eq!(field_of(orgs::create_team(ctx, &CLI, "acme", team("red", None, None)).await), "name");
        let blue = orgs::create_team(ctx, &CLI, "acme", team("blue", None, None)).await.unwrap();
        assert_eq!(blue.groups, ["default"]);

        // The budget cannot go while caps count in its period.
        let no_budget = TeamInput { name: None, budget_period: Some(String::new()), ..Default::default() };
        assert_eq!(field_of(orgs::update_team(ctx, &CLI, "acme", "red", no_budget.clone()).await), "member_cap_usd");
        let no_caps = TeamInput { member_cap_usd: Some(String::new()), ..no_budget };
        let red = orgs::update_team(ctx, &CLI, "acme", "red", TeamInput { name: Some("crimson".into()), ..no_caps }).await.unwrap();
        assert_eq!((red.name.as_str(), red.budget.is_none(), red.member_cap_quota), ("crimson", true, None));
        let only_org_group = TeamInput { groups: Some("default".into()), ..Default::default() };
        assert_eq!(orgs::update_team(ctx, &CLI, "acme", "crimson", only_org_group).await.unwrap().groups, ["default"]);

        // Deleting a team takes its memberships and keys with it.
        orgs::add_member(ctx, &CLI, "acme", AddMember { team: Some("blue".into()), ..member("olivia-2", "member") })
            .await
            .expect_err("no such user");
        app.create_user("pete", "0").await;
        orgs::add_member(ctx, &CLI, "acme", AddMember { team: Some("blue".into()), ..member("pete", "member") }).await.unwrap();
        let (key, _) = service::tokens::create(ctx, &CLI, CreateToken {
            username: "pete".into(),
            name: "blue key".into(),
            org: Some("acme".into()),
            team: Some(blue.id.to_string()),
            ..Default::default()
        })
        .await
        .unwrap();
        orgs::delete_team(ctx, &CLI, "acme", "blue").await.unwrap();
        assert!(is_not_found(service::tokens::get(ctx, &CLI, key.id).await));
        let left = orgs::show(ctx, &CLI, "acme").await.unwrap();
        assert_eq!(left.teams.len(), 1);
        assert!(left.members.iter().find(|m| m.username == "pete").unwrap().teams.is_empty());
    }
}

db_test! {
    /// The wallet changes through ledger rows: the same top-up sent at once many times
    /// applies once, `ledger check` proves every wallet, and deleting an organisation with
    /// money is refused unless forced with a reason (the balance is written off).
    async fn wallet_top_ups_apply_once_and_deletion_guards_money(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let ctx = app.ctx();
        let owner = app.create_user("olivia", "0").await;
        orgs::create(ctx, &CLI, new_org("acme", "olivia")).await.unwrap();
        let top_up = |key: &str, usd: &str| QuotaChange {
            usd: Some(usd.into()),
            reason: Some("invoice 42".into()),
            idempotency_key: Some(key.into()),
            ..Default::default()
        };

        assert!(is_forbidden(orgs::adjust_wallet(ctx, &Caller::User(owner.id), "acme", top_up("k0", "5")).await));
        assert_eq!(field_of(orgs::adjust_wallet(ctx, &CLI, "acme", QuotaChange { reason: None, ..top_up("k0", "5") }).await), "reason");
        let sends = (0..6).map(|_| {
            let ctx = ctx.clone();
            let change = top_up("inv-42", "25");
            async move { orgs::adjust_wallet(&ctx, &CLI, "acme", change).await.unwrap().applied }
        });
        let applied = futures::future::join_all(sends).await;
        assert_eq!(applied.iter().filter(|a| **a).count(), 1, "{applied:?}");
        let org = orgs::show(ctx, &CLI, "acme").await.unwrap();
        assert_eq!(org.quota, Some(TestApp::units(25.0)));
        // The key with another amount is another change, which must not pass for done.
        assert_eq!(field_of(orgs::adjust_wallet(ctx, &CLI, "acme", top_up("inv-42", "30")).await), "idempotency_key");
        let ledger = orgs::ledger(ctx, &CLI, "acme", 10).await.unwrap();
        assert_eq!(ledger.len(), 1);
        assert_eq!((ledger[0].user_id, ledger[0].amount), (0, TestApp::units(25.0)));
        assert!(service::ledger::entries(ctx, &CLI, "olivia", 10).await.unwrap().is_empty());
        let check = service::ledger::check(ctx, &CLI).await.unwrap();
        assert!(check.is_clean(), "{check:?}");
        assert_eq!(check.orgs, 1);

        // A wallet that does not match its ledger is found.
        app.db.write(async |tx| db::orgs::add_quota(tx, org.id, 7).await).await.unwrap();
        let check = service::ledger::check(ctx, &CLI).await.unwrap();
        assert_eq!(check.org_discrepancies.len(), 1);
        assert!(check.discrepancies.is_empty());
        app.db.write(async |tx| db::orgs::add_quota(tx, org.id, -7).await).await.unwrap();

        let as_owner = Caller::User(owner.id);
        assert!(matches!(orgs::delete(ctx, &as_owner, "acme", DeleteOrg::default()).await, Err(ServiceError::Conflict { .. })));
        assert!(is_forbidden(orgs::delete(ctx, &as_owner, "acme", DeleteOrg { force: true, reason: Some("closing".into()) }).await));
        assert_eq!(field_of(orgs::delete(ctx, &CLI, "acme", DeleteOrg { force: true, reason: None }).await), "reason");
        orgs::delete(ctx, &CLI, "acme", DeleteOrg { force: true, reason: Some("customer left".into()) }).await.unwrap();
        assert!(is_not_found(orgs::show(ctx, &CLI, "acme").await));
        let written_off = db::ledger::for_org(&app.db, org.id, 10).await.unwrap();
        assert_eq!(written_off.iter().map(|e| e.amount).sum::<i64>(), 0, "{written_off:?}");
        assert!(service::ledger::check(ctx, &CLI).await.unwrap().is_clean());
    }
}

db_test! {
    /// A team key: its owner is in the team, its group one of the team's (stored by name, the
    /// organisation's by default), its view names the organisation and team, and it goes
    /// when its owner leaves the team. An outsider's request finds no organisation.
    async fn team_keys_follow_their_team(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let ctx = app.ctx();
        let owner = app.create_user("olivia", "0").await;
        let pete = app.create_user("pete", "0").await;
        let outsider = app.create_user("otto", "0").await;
        app.create_group("silver", "1").await;
        service::groups::update(ctx, &CLI, "silver", service::groups::GroupInput {
            user_selectable: Some(true),
            ..Default::default()
        })
        .await
        .unwrap();
        let acme = orgs::create(ctx, &CLI, new_org("acme", "olivia")).await.unwrap();
        let red = orgs::create_team(ctx, &CLI, "acme", team("red", None, None)).await.unwrap();
        orgs::add_member(ctx, &CLI, "acme", member("pete", "member")).await.unwrap();
        let team_key = |user: &str, group: Option<&str>| CreateToken {
            username: user.into(),
            name: "team key".into(),
            org: Some("acme".into()),
            team: Some(red.id.to_string()),
            group: group.map(str::to_string),
            ..Default::default()
        };

        // Pete is in the organisation but not the team; otto is in neither.
        assert_eq!(field_of(service::tokens::create(ctx, &Caller::User(pete.id), team_key("pete", None)).await), "team");
        assert!(is_not_found(service::tokens::create(ctx, &Caller::User(outsider.id), team_key("otto", None)).await));
        let only_org = CreateToken { team: None, ..team_key("pete", None) };
        assert_eq!(field_of(service::tokens::create(ctx, &CLI, only_org).await), "team");

        orgs::put_team_member(ctx, &Caller::User(owner.id), "acme", "red", "pete", TeamMemberInput::default()).await.unwrap();
        assert_eq!(field_of(service::tokens::create(ctx, &Caller::User(pete.id), team_key("pete", Some("silver"))).await), "group");
        let (row, _) = service::tokens::create(ctx, &Caller::User(pete.id), team_key("pete", None)).await.unwrap();
        assert_eq!((row.org_id, row.team_id, row.group.as_str()), (acme.id, red.id, "default"));
        let view = serde_json::to_value(service::tokens::view(ctx, &row).await.unwrap()).unwrap();
        assert_eq!((&view["org"], &view["team"], &view["team_name"]), (&Value::from("acme"), &Value::from(red.id), &Value::from("red")));
        let personal = service::tokens::create(ctx, &CLI, CreateToken { username: "pete".into(), name: "mine".into(), ..Default::default() })
            .await
            .unwrap()
            .0;
        let view = serde_json::to_value(service::tokens::view(ctx, &personal).await.unwrap()).unwrap();
        assert!(view["org"].is_null() && view["team"].is_null() && view["team_name"].is_null(), "{view}");

        // Its group moves only among the team's.
        let silver = UpdateToken { group: Some("silver".into()), ..Default::default() };
        assert_eq!(field_of(service::tokens::update(ctx, &CLI, row.id, silver.clone()).await), "group");
        orgs::update_team(ctx, &CLI, "acme", "red", TeamInput { groups: Some("default,silver".into()), ..Default::default() }).await.unwrap();
        assert_eq!(service::tokens::update(ctx, &CLI, row.id, silver).await.unwrap().group, "silver");
        let back = UpdateToken { group: Some(String::new()), ..Default::default() };
        assert_eq!(service::tokens::update(ctx, &CLI, row.id, back).await.unwrap().group, "default");

        orgs::remove_team_member(ctx, &Caller::User(pete.id), "acme", "red", "pete").await.unwrap();
        assert!(is_not_found(service::tokens::get(ctx, &CLI, row.id).await));
        service::tokens::get(ctx, &CLI, personal.id).await.expect("the personal key stays");
    }
}

db_test! {
    /// An owner cannot delete their account; a member's deletion takes them out of the
    /// organisation.
    async fn account_deletion_spares_no_organisation_without_its_owner(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let ctx = app.ctx();
        let owner = app.create_user("olivia", "0").await;
        let pete = app.create_user("pete", "0").await;
        orgs::create(ctx, &CLI, new_org("acme", "olivia")).await.unwrap();
        orgs::create_team(ctx, &CLI, "acme", team("red", None, None)).await.unwrap();
        orgs::add_member(ctx, &CLI, "acme", AddMember { team: Some("red".into()), ..member("pete", "member") }).await.unwrap();

        let refused = service::accounts::delete_account(ctx, &Caller::User(owner.id), "olivia").await;
        assert!(is_forbidden(refused));
        service::accounts::delete_account(ctx, &Caller::User(pete.id), "pete").await.unwrap();
        let org = orgs::show(ctx, &CLI, "acme").await.unwrap();
        assert_eq!(org.members.len(), 1);
        assert!(org.teams[0].members.is_empty());
    }
}

db_test! {
    /// The command line: create, fund, staff and show an organisation, make a team key for a
    /// team named on the command line, and prove the books.
    async fn the_command_line_runs_organisations(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let url = app.db_url.clone();
        let run = |args: &[&str]| tollgate(&url, args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        let json = |text: String| -> Value { serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}")) };
        app.create_user("alice", "0").await;
        app.create_user("bob", "0").await;

        let org = json(run(&["org", "create", "--name", "Acme", "--slug", "acme", "--owner", "alice",
                             "--budget-usd", "100", "--budget-period", "monthly", "--json"]));
        assert_eq!(org["slug"], "acme");
        let topped = json(run(&["org", "topup", "acme", "--usd", "50", "--reason", "invoice 1", "--json"]));
        assert_eq!(topped["quota"], TestApp::units(50.0));
        run(&["team", "create", "acme", "research", "--budget-usd", "20", "--budget-period", "weekly", "--member-cap-usd", "5"]);
        run(&["org", "member", "add", "acme", "bob", "--team", "research", "--manager"]);
        run(&["org", "member", "cap", "acme", "research", "bob", "--cap-usd", "3"]);
        let key = json(run(&["token", "create", "--user", "bob", "--name", "lab", "--org", "acme", "--team", "research", "--json"]));
        assert_eq!((&key["org"], &key["team_name"], &key["group"]), (&Value::from("acme"), &Value::from("research"), &Value::from("default")));

        let shown = json(run(&["org", "show", "acme", "--json"]));
        assert_eq!(shown["quota"], TestApp::units(50.0));
        assert_eq!(shown["budget"]["period"], "monthly");
        assert!(shown["budget"]["next_start"].as_str().is_some());
        let research = &shown["teams"][0];
        assert_eq!(research["budget"]["period"], "weekly");
        assert_eq!(research["members"][0]["cap"]["quota"], TestApp::units(3.0));
        assert_eq!(research["members"][0]["cap"]["spent_quota"], 0);
        let text = run(&["org", "show", "acme"]);
        assert!(text.contains("research") && text.contains("bob"), "{text}");

        let refused = tollgate(&url, &["org", "delete", "acme"]).expect_err("money in the wallet");
        assert!(refused.contains("wallet"), "{refused}");
        assert!(run(&["ledger", "check"]).contains("1 organisation(s)"));
        run(&["org", "transfer", "acme", "bob"]);
        assert_eq!(json(run(&["org", "show", "acme", "--json"]))["owner"], "bob");
        run(&["org", "delete", "acme", "--force", "--reason", "test over"]);
        assert!(json(run(&["org", "list", "--json"])).as_array().unwrap().is_empty());
    }
}
