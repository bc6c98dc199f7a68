//! An organisation's whole life through the pages, in headless Chromium against the real
//! `tollgate` binary on SQLite, a fake OpenAI upstream and a real SMTP server on loopback:
//! an owner registers (proving the address with the mailed code), creates an organisation
//! with a monthly budget, an operator tops up its wallet from the command line, the owner makes
//! a team with a budget and a cap per member and invites a person into it by email; the person
//! opens the mailed link, registers through it, proves the address, accepts, makes a team key
//! on the keys page and calls `/v1` with it; the owner then sees the spend in dollars on the
//! team's page, the overview and the usage page.
//!
//! The flow runs four times, each with new people and a new organisation: in English and in
//! Chinese (each person switching with the link in the page's header, as a reader would), at
//! 1280 px and at 390 px; every page is checked for its language and, on a phone, for
//! horizontal overflow. Screenshots go to `E2E_SCREENSHOTS` (default
//! `target/e2e-screenshots`), under `org-flow-*`.
//!
//! Needs Debian's `chromium` and `chromium-driver`, and `TOLLGATE_TEST_PYTHON` (a python with
//! aiosmtpd) for the mail; without them the test says why and passes, unless
//! `TOLLGATE_REQUIRE_ALL=1`.

use std::time::Duration;

use e2e::{
    Browser, MailSink, PASSWORD, call_v1, check_page, cli, code_in, fake_upstream, link_in,
    no_browser, require_all, screenshots_dir, serve, set_up_site, string, visit,
};

/// Each request costs this much (a price per request, so the spend reads in whole cents).
const PER_REQUEST_USD: &str = "0.25";
/// The requests the invited person makes with their team key.
const REQUESTS: usize = 3;

/// What one run's organisation and team are called, and where it keeps its days: as people
/// writing in that language name them.
struct Names {
    org: &'static str,
    team: &'static str,
    zone: &'static str,
}

fn names(lang: &str) -> Names {
    if lang == "en" {
        Names {
            org: "Acme Research Labs",
            team: "Research",
            zone: "Europe/Berlin",
        }
    } else {
        Names {
            org: "星海科技研究院",
            team: "研究部",
            zone: "Asia/Shanghai",
        }
    }
}

/// One person's run through the pages: their browser, and what they are called.
struct Person {
    browser: Browser,
    username: String,
    email: String,
}

/// A run's people, organisation and language.
struct Run<'a> {
    base: &'a str,
    lang: &'a str,
    phone: bool,
    slug: String,
    names: Names,
}

impl Run<'_> {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The text a page shows in this run's language.
    fn say<'t>(&self, english: &'t str, chinese: &'t str) -> &'t str {
        if self.lang == "en" { english } else { chinese }
    }
}

/// Registers `person` through the register form they are on, proves the address with the
/// mailed code, and waits for where the site sends them next (`then`).
async fn register(run: &Run<'_>, person: &mut Person, sink: &mut MailSink, then: &str) {
    let browser = &mut person.browser;
    browser.arrive("/register").await;
    check_page(browser, "register", run.lang, run.phone).await;
    browser.fill("username", &person.username).await;
    browser.fill("email", &person.email).await;
    browser.fill("password", PASSWORD).await;
    browser.fill("password_confirm", PASSWORD).await;
    browser.shot("register-filled").await;
    browser.submit("/register").await;
    let path = browser.arrive("/verify-email").await;
    browser.shot("verify-email").await;
    browser
        .check(
            path == "/verify-email",
            "registering asks for the mailed code",
        )
        .await;
    check_page(browser, "verify-email", run.lang, run.phone).await;
    let code = code_in(&sink.next_to(&person.email).await);
    browser
        .check(code.len() == 6, "the mail carries a 6-digit code")
        .await;
    browser.fill("code", &code).await;
    browser.submit("/verify-email").await;
    let path = browser.arrive(then).await;
    browser
        .check(
            path == then,
            &format!("a proven address leads on to {then}"),
        )
        .await;
}

/// Opens `url` again until `ready` holds for its text (the billing writer flushes every 50 ms;
/// pages read what it wrote); the page's text.
async fn until(
    browser: &mut Browser,
    url: &str,
    name: &str,
    ready: impl Fn(&str) -> bool,
) -> String {
    let mut text = String::new();
    for _ in 0..50 {
        browser.open(url, name).await;
        text = browser.text().await;
        if ready(&text) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    text
}

/// The text of the element `css` (empty when there is none).
async fn text_of(browser: &Browser, css: &str) -> String {
    let script = format!(
        "const e = document.querySelector({}); return e ? e.textContent.trim() : '';",
        serde_json::json!(css)
    );
    string(browser, &script).await
}

/// The whole flow in one language at one width; `n` tells its people and organisation apart
/// from the other runs'.
async fn flow(
    base: &str,
    database_url: &str,
    sink: &mut MailSink,
    n: usize,
    lang: &str,
    width: u32,
) {
    let phone = width < 500;
    let height = if phone { 844 } else { 900 };
    let run = Run {
        base,
        lang,
        phone,
        slug: format!("acme-{n}"),
        names: names(lang),
    };
    let label = format!("org-flow-{lang}-{width}");
    let start = async |who: &str| {
        Browser::start(screenshots_dir(&format!("{label}-{who}")), width, height)
            .await
            .expect("chromium starts")
    };

    // The owner arrives, reads the site in their language and registers.
    let mut owner = Person {
        browser: start("owner").await,
        username: format!("olivia{n}"),
        email: format!("olivia{n}@example.com"),
    };
    owner.browser.open(&run.url("/"), "home").await;
    if lang != "en" {
        owner.browser.switch_language(lang, phone).await;
    }
    owner.browser.open(&run.url("/register"), "register").await;
    register(&run, &mut owner, sink, "/dashboard").await;

    // An organisation with a monthly budget, in its own time zone.
    let boss = &mut owner.browser;
    visit(boss, &run.url("/orgs"), "orgs", lang, phone).await;
    boss.fill("name", run.names.org).await;
    boss.fill("slug", &run.slug).await;
    boss.fill("timezone", run.names.zone).await;
    boss.fill("budget_usd", "500").await;
    boss.choose("budget_period", "monthly").await;
    boss.shot("org-form").await;
    boss.submit("/orgs").await;
    let overview = format!("/orgs/{}", run.slug);
    let path = boss.arrive(&overview).await;
    boss.shot("org-created").await;
    boss.check(path == overview, "creating the organisation opens it")
        .await;
    check_page(boss, "org-created", lang, phone).await;
    let text = boss.text().await;
    boss.check(
        text.contains(run.names.org) && text.contains("$500.00"),
        "the new organisation shows its name and budget",
    )
    .await;

    // The operator funds its wallet, as for an invoice paid.
    cli(
        database_url,
        &[
            "org",
            "topup",
            &run.slug,
            "--usd",
            "100",
            "--reason",
            "Purchase order 4711",
        ],
    )
    .await;
    let wallet = run.url(&format!("{overview}/wallet"));
    let text = until(boss, &wallet, "org-wallet", |t| {
        t.contains("Purchase order 4711")
    })
    .await;
    check_page(boss, "org-wallet", lang, phone).await;
    let balance = text_of(boss, "#balance").await;
    boss.check(
        balance == "$100.00" && text.contains("Purchase order 4711"),
        &format!("the wallet holds the top-up with its reason ({balance})"),
    )
    .await;

    // A team with a monthly budget and a cap per member.
    let teams = format!("{overview}/teams");
    visit(boss, &run.url(&teams), "org-teams", lang, phone).await;
    boss.fill("name", run.names.team).await;
    boss.fill("budget_usd", "200").await;
    boss.choose("budget_period", "monthly").await;
    boss.fill("member_cap_usd", "25").await;
    boss.shot("team-form").await;
    boss.submit(&teams).await;
    let mut team_page = String::new();
    for _ in 0..200 {
        team_page = boss.path().await;
        if team_page.starts_with(&format!("{teams}/")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let team_id = team_page.rsplit('/').next().unwrap_or_default().to_string();
    boss.arrive(&team_page).await;
    boss.shot("team-created").await;
    boss.check(
        team_id.parse::<i64>().is_ok(),
        &format!("making the team opens its page ({team_page})"),
    )
    .await;
    check_page(boss, "team-created", lang, phone).await;
    let text = boss.text().await;
    boss.check(
        text.contains(run.names.team) && text.contains("$200.00") && text.contains("$25.00"),
        "the team's page shows its budget and cap",
    )
    .await;

    // An invitation by email into the team.
    let invitee_email = format!("ivy{n}@example.com");
    let invitations = format!("{overview}/invitations");
    visit(boss, &run.url(&invitations), "invitations", lang, phone).await;
    boss.fill("email", &invitee_email).await;
    boss.choose("role", "member").await;
    boss.choose("team", &team_id).await;
    boss.shot("invitation-form").await;
    boss.submit(&invitations).await;
    boss.arrive(&invitations).await;
    boss.shot("invited").await;
    check_page(boss, "invited", lang, phone).await;
    let text = boss.text().await;
    boss.check(
        text.contains(&invitee_email)
            && text.contains(run.say("on its way", "已发送"))
            && text.contains(run.say("Waiting", "等待")),
        "the invitation is mailed and waits for an answer",
    )
    .await;

    // The mail, in the inviter's language, carries the link.
    let mail = sink.next_to(&invitee_email).await;
    let subject = mail["subject"].as_str().unwrap_or_default().to_string();
    assert!(
        subject.contains(run.names.org) && subject.contains(run.say("invited", "邀请")),
        "the mail, in the inviter's language, names the organisation: {subject}"
    );
    let link = link_in(&mail, base).expect("a link to the site in the mail");
    assert!(link.starts_with("/invitations/"), "the mail's link: {link}");

    // The invited person opens it in their own browser, reads it in their language, and
    // registers through it.
    let mut invitee = Person {
        browser: start("invitee").await,
        username: format!("ivy{n}"),
        email: invitee_email,
    };
    let ivy = &mut invitee.browser;
    ivy.open(&run.url(&link), "invitation").await;
    if lang != "en" {
        ivy.switch_language(lang, phone).await;
    }
    ivy.shot(&format!("invitation-{lang}")).await;
    check_page(ivy, "invitation", lang, phone).await;
    let text = ivy.text().await;
    ivy.check(
        text.contains(run.names.org) && text.contains(run.names.team),
        "the invitation names the organisation and the team",
    )
    .await;
    ivy.click("#invitation a[href^='/register?next=']").await;
    register(&run, &mut invitee, sink, &link).await;
    let ivy = &mut invitee.browser;
    ivy.shot("invitation-again").await;
    check_page(ivy, "invitation-again", lang, phone).await;
    ivy.submit(&format!("{link}/accept")).await;
    let path = ivy.arrive(&overview).await;
    ivy.shot("accepted").await;
    ivy.check(path == overview, "accepting opens the organisation")
        .await;
    check_page(ivy, "accepted", lang, phone).await;

    // A team key, chosen on the keys page with the team's budget shown.
    visit(ivy, &run.url("/keys"), "keys", lang, phone).await;
    let choice = format!("{}/{team_id}", run.slug);
    ivy.choose("team", &choice).await;
    ivy.fill("name", "research-laptop").await;
    ivy.scroll_to("select[name='team']").await;
    ivy.shot(&format!("keys-team-choice-{lang}")).await;
    let chosen = text_of(ivy, "select[name='team'] option:checked").await;
    let budgets = text_of(ivy, "#team-budgets").await;
    ivy.check(
        chosen == format!("{} — {}", run.names.org, run.names.team)
            && budgets.contains(run.names.team)
            && budgets.contains("$200.00")
            && budgets.contains("$25.00"),
        &format!(
            "the team is offered by name, its budget and cap under the choice ({chosen}; {budgets})"
        ),
    )
    .await;
    let key = ivy.make_key().await;
    ivy.shot("key-made").await;
    ivy.check(key.starts_with("sk-"), "the new key is shown once")
        .await;
    check_page(ivy, "key-made", lang, phone).await;
    let listed = text_of(ivy, "table.keys tbody").await;
    ivy.check(
        listed.contains("research-laptop") && listed.contains(run.names.team),
        "the key is listed with its team",
    )
    .await;

    // The key works on /v1, paid from the organisation's wallet.
    for _ in 0..REQUESTS {
        assert_eq!(call_v1(base, &key).await, 200, "the team key works on /v1");
    }

    // The owner sees the spend: on the team's page by member, the overview, the usage page.
    let spent = "$0.75";
    let boss = &mut owner.browser;
    until(boss, &run.url(&team_page), "team-spend", |t| {
        t.contains(spent)
    })
    .await;
    boss.shot(&format!("team-spend-{lang}")).await;
    check_page(boss, "team-spend", lang, phone).await;
    // On a phone the column heads give way to labels beside each value.
    let heads = text_of(boss, "table.team-members thead").await;
    let row = string(
        boss,
        &format!(
            "const r = Array.from(document.querySelectorAll('table.team-members tbody tr')).find(r => r.querySelector('th').textContent.includes({})); return r ? r.textContent : '';",
            serde_json::json!(invitee.username)
        ),
    )
    .await;
    boss.check(
        row.contains(spent) && heads.contains(run.say("Spent this month", "本月花费")),
        &format!("the invited member's spend is on the team's page ({row})"),
    )
    .await;
    visit(boss, &run.url(&overview), "overview-spend", lang, phone).await;
    let (spent_shown, balance) = (
        text_of(boss, "#spent").await,
        text_of(boss, "#balance").await,
    );
    let teams_table = text_of(boss, "section[aria-labelledby='teams-title']").await;
    boss.check(
        spent_shown == spent && balance == "$99.25" && teams_table.contains(spent),
        &format!(
            "the overview shows the spend and what is left ({spent_shown}, {balance}, {teams_table})"
        ),
    )
    .await;
    visit(
        boss,
        &run.url(&format!("{overview}/usage")),
        "usage-spend",
        lang,
        phone,
    )
    .await;
    let (requests, cost) = (
        text_of(boss, "#usage-requests").await,
        text_of(boss, "#usage-cost").await,
    );
    boss.check(
        requests == REQUESTS.to_string() && cost == spent,
        &format!("the usage page totals the requests ({requests}, {cost})"),
    )
    .await;

    // The rest of what each of them reads, checked in their language and on a phone's width.
    for (path, name) in [
        (format!("{overview}/members"), "members"),
        (wallet.trim_start_matches(base).to_string(), "wallet-after"),
        (invitations.clone(), "invitations-after"),
        ("/orgs".to_string(), "orgs-after"),
    ] {
        visit(boss, &run.url(&path), name, lang, phone).await;
    }
    let text = text_of(boss, "main").await;
    boss.check(
        text.contains(run.names.org),
        "the owner's list has the organisation",
    )
    .await;
    for (path, name) in [
        ("/orgs".to_string(), "orgs-member"),
        (overview.clone(), "overview-member"),
        (format!("{overview}/usage"), "usage-member"),
        ("/dashboard".to_string(), "dashboard-member"),
    ] {
        visit(&mut invitee.browser, &run.url(&path), name, lang, phone).await;
    }
    owner.browser.close().await;
    invitee.browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_invites_a_person_who_spends_through_a_team_key() {
    if no_browser() {
        return;
    }
    let Some(mut sink) = MailSink::start().await else {
        let reason = "TOLLGATE_TEST_PYTHON (a python with aiosmtpd) is not set";
        assert!(
            !require_all(),
            "{reason}, and TOLLGATE_REQUIRE_ALL=1 requires it"
        );
        eprintln!("skipped: {reason}; the invitation needs mail");
        return;
    };
    let dir = tempfile::tempdir().expect("a scratch directory");
    let upstream = fake_upstream().await;
    let database_url = set_up_site(dir.path(), upstream, Some(sink.port)).await;
    cli(
        &database_url,
        &[
            "price",
            "set",
            "gpt-4o-mini",
            "--per-request",
            PER_REQUEST_USD,
        ],
    )
    .await;
    let server = serve(database_url.clone()).await;
    for (n, (lang, width)) in [("en", 1280), ("en", 390), ("zh-CN", 1280), ("zh-CN", 390)]
        .into_iter()
        .enumerate()
    {
        flow(&server.base, &database_url, &mut sink, n + 1, lang, width).await;
    }
}
