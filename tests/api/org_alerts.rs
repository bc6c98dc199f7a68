//! Budget alerts by email, through a real SMTP server on loopback: team keys spend over /v1
//! until a team's budget and the organisation's pass 80 % and 100 %, and a member reaches
//! their cap. The owner, the admins and the team's managers get one email per threshold per
//! period, each in their own language; plain members get none of those; the member at their
//! cap gets theirs. A new period alerts again; nothing is sent or claimed while the site
//! sends no mail, and a mail that fails is sent by the next round.

use sqlx::Row;

use crate::helpers::mail::Mail;
use crate::helpers::{CLI, FakeUpstream, MailSink, Reply, TestApp, db_test};
use tollgate::domain::calendar::SiteCalendar;
use tollgate::domain::kinds::BudgetPeriod;
use tollgate::service::budget_alerts::alert_budgets;
use tollgate::service::db::{self, Value};
use tollgate::service::orgs::{self, AddMember, CreateOrg, TeamInput, TeamMemberInput};
use tollgate::service::tokens::CreateToken;
use tollgate::service::users::QuotaChange;
use tollgate::service::{self, Caller};

const PASSWORD: &str = "correct horse battery";
const ZONE: &str = "Asia/Tokyo";

fn address(username: &str) -> String {
    format!("{username}@example.com")
}

/// An account with an email address, proven unless `proven` is false.
async fn person(app: &TestApp, username: &str, proven: bool) -> i64 {
    let user = app
        .create_user_with_email(username, &address(username), PASSWORD)
        .await;
    if proven {
        let email = address(username);
        app.db
            .write(async |tx| db::users::mark_email_verified(tx, user.id, &email).await)
            .await
            .unwrap();
    }
    user.id
}

/// `acme`, in Tokyo while the site is in New York, with a monthly budget of $0.10 and a
/// wallet of $10. olivia owns it and manages the team Research too; adam is an admin who
/// reads Chinese; quinn is an admin without a proven address; mia manages Research; pete is
/// in Research with his own cap of $0.02; sam is in Support, which has no budget. Research
/// may spend $0.05 per `team_period`. Requests cost $0.01 each.
struct Acme {
    app: TestApp,
    _upstream: FakeUpstream,
    research: i64,
    pete: String,
    mia: String,
    sam: String,
}

async fn acme(db: crate::helpers::TestDb, team_period: &str) -> Acme {
    let app = TestApp::spawn(db).await;
    let upstream = FakeUpstream::start(Reply::chat("ok", 5, 1)).await;
    app.add_channel("main", &upstream, "gpt-4o-mini").await;
    app.price_per_request("gpt-4o-mini", "0.01").await;
    app.set_option("timezone", "America/New_York").await;
    let ctx = app.ctx();
    for (name, proven) in [
        ("olivia", true),
        ("adam", true),
        ("quinn", false),
        ("mia", true),
        ("pete", true),
        ("sam", true),
    ] {
        person(&app, name, proven).await;
    }
    let adam = app.user("adam").await;
    db::users::set_locale(&app.db, adam.id, "zh-CN")
        .await
        .unwrap();
    orgs::create(
        ctx,
        &CLI,
        CreateOrg {
            name: "Acme".into(),
            slug: "acme".into(),
            owner: Some("olivia".into()),
            timezone: Some(ZONE.into()),
            budget_period: Some("monthly".into()),
            budget_usd: Some("0.10".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    for (name, role) in [
        ("adam", "admin"),
        ("quinn", "admin"),
        ("mia", "member"),
        ("pete", "member"),
        ("sam", "member"),
    ] {
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
    let research = orgs::create_team(
        ctx,
        &CLI,
        "acme",
        TeamInput {
            name: Some("Research".into()),
            budget_period: Some(team_period.into()),
            budget_usd: Some("0.05".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap()
    .id;
    let support = orgs::create_team(
        ctx,
        &CLI,
        "acme",
        TeamInput {
            name: Some("Support".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap()
    .id;
    let manager = || TeamMemberInput {
        manager: Some(true),
        cap_usd: None,
    };
    for (name, team, input) in [
        ("olivia", "Research", manager()),
        ("mia", "Research", manager()),
        (
            "pete",
            "Research",
            TeamMemberInput {
                manager: None,
                cap_usd: Some(Some("0.02".into())),
            },
        ),
        ("sam", "Support", TeamMemberInput::default()),
    ] {
        orgs::put_team_member(ctx, &CLI, "acme", team, name, input)
            .await
            .unwrap();
    }
    orgs::adjust_wallet(
        ctx,
        &CLI,
        "acme",
        QuotaChange {
            usd: Some("10".into()),
            reason: Some("funding".into()),
            idempotency_key: Some("fund-acme".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let key = async |username: &str, team: i64| {
        let user = app.user(username).await;
        service::tokens::create(
            ctx,
            &Caller::User(user.id),
            CreateToken {
                username: username.into(),
                name: "team key".into(),
                org: Some("acme".into()),
                team: Some(team.to_string()),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .1
    };
    let (pete, mia, sam) = (
        key("pete", research).await,
        key("mia", research).await,
        key("sam", support).await,
    );
    app.reload().await;
    Acme {
        app,
        _upstream: upstream,
        research,
        pete,
        mia,
        sam,
    }
}

impl Acme {
    /// `count` answered requests with `key`, written to the budgets' rows.
    async fn spend(&self, key: &str, count: usize) {
        for _ in 0..count {
            let answer = self
                .app
                .chat(key, crate::helpers::chat_body("gpt-4o-mini"))
                .await;
            assert_eq!(
                answer.status(),
                200,
                "{}",
                answer.text().await.unwrap_or_default()
            );
        }
        self.app.flush().await;
    }

    /// One round of alerts at `now`; how many emails went out.
    async fn round_at(&self, now: i64) -> usize {
        alert_budgets(self.app.ctx(), &self.app.state.listen_url, now)
            .await
            .unwrap()
    }

    async fn round(&self) -> usize {
        self.round_at(db::now_ms()).await
    }

    async fn claims(&self) -> i64 {
        let rows = self
            .app
            .db
            .fetch_all_with("SELECT COUNT(*) AS n FROM budget_alerts", &[])
            .await
            .unwrap();
        rows[0].try_get("n").unwrap()
    }
}

/// Nobody has mail waiting.
fn quiet(sink: &MailSink) {
    for name in ["olivia", "adam", "quinn", "mia", "pete", "sam"] {
        assert_eq!(
            sink.count_to(&address(name)),
            0,
            "no further mail to {name}"
        );
    }
}

/// The day the current `period` in Tokyo starts over on, as the alerts write it.
fn next_start(period: BudgetPeriod, now: i64) -> String {
    let tokyo = SiteCalendar::new(ZONE);
    let end = tokyo.budget_window(period, now).1;
    format!("{} ({ZONE})", &tokyo.local_time(end)[..10])
}

fn mentions(mail: &Mail, words: &[&str]) {
    for word in words {
        assert!(
            mail.subject.contains(word) || mail.text.contains(word),
            "{word:?} in {mail:?}"
        );
    }
}

db_test! {
    /// The whole story on one organisation: pete reaches his cap (his email alone); Research
    /// passes 80 % then 100 % of its budget (the owner, who also manages it, once each; the
    /// admin in Chinese; the manager; not the admin without a proven address, nor pete or
    /// sam); then the organisation's budget passes 80 % and 100 % (the owner and admin only).
    /// Two rounds at once send each email once, and later rounds send nothing more.
    async fn budgets_alert_their_readers_once_per_threshold(db: TestDb) {
        let Some(sink) = MailSink::start().await else { return };
        let acme = acme(db, "monthly").await;
        let app = &acme.app;
        sink.configure(app).await;
        let now = db::now_ms();
        let month = next_start(BudgetPeriod::Monthly, now);
        let team_page = format!("/orgs/acme/teams/{}", acme.research);

        // pete's cap of $0.02 is spent: he alone is told, and his team page linked.
        acme.spend(&acme.pete, 2).await;
        assert_eq!(acme.round().await, 1);
        let mail = sink.next_to(&address("pete")).await;
        assert_eq!(mail.subject, "Acme: you have spent your monthly cap in team Research");
        mentions(&mail, &["Hello pete", "$0.02 of your monthly cap of $0.02", &month]);
        assert_eq!(mail.link_path(app), team_page);
        quiet(&sink);

        // Research at $0.04 of $0.05: 80 %, to the owner (once, though she manages it too), the
        // admin who reads Chinese and the manager, even from two rounds at once.
        acme.spend(&acme.mia, 2).await;
        let (a, b) = tokio::join!(acme.round(), acme.round());
        assert_eq!(a + b, 3);
        for name in ["olivia", "mia"] {
            let mail = sink.next_to(&address(name)).await;
            assert_eq!(mail.subject, "Acme: team Research has used 80% of its monthly budget");
            mentions(&mail, &[&format!("Hello {name}"), "$0.04 of its monthly budget of $0.05", &month]);
            assert_eq!(mail.link_path(app), team_page);
        }
        let chinese = sink.next_to(&address("adam")).await;
        assert_eq!(chinese.subject, "Acme：团队 Research 的每月预算已用 80%");
        mentions(&chinese, &["adam，你好", "$0.04", "$0.05", &format!("{}（{ZONE}）", &month[..10])]);
        assert_eq!(chinese.link_path(app), team_page);
        quiet(&sink);
        assert_eq!(acme.round().await, 0, "each alert once");

        // Research's budget spent: 100 %, to the same three.
        acme.spend(&acme.mia, 1).await;
        assert_eq!(acme.round().await, 3);
        for name in ["olivia", "mia"] {
            let mail = sink.next_to(&address(name)).await;
            assert_eq!(mail.subject, "Acme: team Research has used 100% of its monthly budget");
            mentions(&mail, &["$0.05 of its monthly budget of $0.05", "team keys are refused"]);
        }
        let chinese = sink.next_to(&address("adam")).await;
        assert_eq!(chinese.subject, "Acme：团队 Research 的每月预算已用 100%");
        quiet(&sink);

        // The organisation at $0.08 of $0.10 (sam spends in Support): its owner and admin only.
        acme.spend(&acme.sam, 3).await;
        assert_eq!(acme.round().await, 2);
        let mail = sink.next_to(&address("olivia")).await;
        assert_eq!(mail.subject, "Acme: 80% of the organisation's monthly budget is used");
        mentions(&mail, &["$0.08 of the organisation's monthly budget of $0.10", &month]);
        assert_eq!(mail.link_path(app), "/orgs/acme");
        let chinese = sink.next_to(&address("adam")).await;
        assert_eq!(chinese.subject, "Acme：组织的每月预算已用 80%");
        quiet(&sink);

        acme.spend(&acme.sam, 2).await;
        assert_eq!(acme.round().await, 2);
        let mail = sink.next_to(&address("olivia")).await;
        assert_eq!(mail.subject, "Acme: 100% of the organisation's monthly budget is used");
        assert_eq!(sink.next_to(&address("adam")).await.subject, "Acme：组织的每月预算已用 100%");
        assert_eq!(acme.round().await, 0);
        quiet(&sink);
        // One claim per email sent: pete's, 3 + 3 for Research, 2 + 2 for the organisation.
        assert_eq!(acme.claims().await, 11);
    }
}

db_test! {
    /// A period that starts over alerts again. Research's budget is daily in Tokyo: yesterday
    /// (there) spent all of it and was alerted at the time; today that spending counts for
    /// nothing, and today's own 80 % is alerted anew, naming Tokyo's next day.
    async fn a_new_period_alerts_again(db: TestDb) {
        let Some(sink) = MailSink::start().await else { return };
        let acme = acme(db, "daily").await;
        let app = &acme.app;
        sink.configure(app).await;
        let now = db::now_ms();
        let tokyo = SiteCalendar::new(ZONE);
        let yesterday = tokyo.day_start_ms(now, 1);
        let research = acme.research;
        app.db
            .write(async |tx| {
                tx.execute(
                    "INSERT INTO budget_spend (scope_kind, scope_id, window_start, spent) VALUES ('team', ?, ?, ?)",
                    &[Value::Int(research), Value::Int(yesterday), Value::Int(TestApp::units(0.05))],
                )
                .await
            })
            .await
            .unwrap();

        // Now, yesterday's spending is over: nothing to say.
        assert_eq!(acme.round().await, 0);
        assert_eq!(acme.claims().await, 0);
        // A round during yesterday sent its 100 % (only: not 80 % as well).
        assert_eq!(acme.round_at(yesterday + 3_600_000).await, 3);
        for name in ["olivia", "mia"] {
            let mail = sink.next_to(&address(name)).await;
            assert_eq!(mail.subject, "Acme: team Research has used 100% of its daily budget");
            mentions(&mail, &[&next_start(BudgetPeriod::Daily, yesterday)]);
        }
        assert_eq!(sink.next_to(&address("adam")).await.subject, "Acme：团队 Research 的每日预算已用 100%");
        assert_eq!(acme.round_at(yesterday + 7_200_000).await, 0);
        quiet(&sink);

        // Today is a new period: its 80 % is mailed again.
        acme.spend(&acme.mia, 4).await;
        assert_eq!(acme.round().await, 3);
        for name in ["olivia", "mia"] {
            let mail = sink.next_to(&address(name)).await;
            assert_eq!(mail.subject, "Acme: team Research has used 80% of its daily budget");
            mentions(&mail, &["$0.04 of its daily budget of $0.05", &next_start(BudgetPeriod::Daily, now)]);
        }
        assert_eq!(sink.next_to(&address("adam")).await.subject, "Acme：团队 Research 的每日预算已用 80%");
        assert_eq!(acme.round().await, 0);
        quiet(&sink);
    }
}

db_test! {
    /// While no SMTP server is set nothing is sent and nothing is claimed, so the alerts are
    /// still due once mail is set up. A server that refuses the connection sends nothing
    /// either, and gives each claim up: the next round, with a working server, sends them.
    async fn alerts_wait_for_mail_that_works(db: TestDb) {
        let Some(sink) = MailSink::start().await else { return };
        let acme = acme(db, "monthly").await;
        let app = &acme.app;
        acme.spend(&acme.pete, 2).await;
        acme.spend(&acme.mia, 2).await;

        assert_eq!(acme.round().await, 0, "no SMTP server set");
        assert_eq!(acme.claims().await, 0, "nothing claimed while mail is off");

        // A port nobody listens on: every mail fails, and every claim is given up.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        app.set_option("smtp_host", "127.0.0.1").await;
        app.set_option("smtp_port", &closed.to_string()).await;
        app.set_option("smtp_security", "none").await;
        app.reload().await;
        assert_eq!(acme.round().await, 0, "nothing could be sent");
        assert_eq!(acme.claims().await, 0, "the failed alerts are given up for the next round");

        sink.configure(app).await;
        assert_eq!(acme.round().await, 4, "pete's cap, and Research's 80 % to three");
        assert_eq!(sink.next_to(&address("pete")).await.subject, "Acme: you have spent your monthly cap in team Research");
        for name in ["olivia", "adam", "mia"] {
            sink.next_to(&address(name)).await;
        }
        assert_eq!(acme.claims().await, 4);
        assert_eq!(acme.round().await, 0);
        quiet(&sink);
    }
}
