//! A new site and its first readers, over real HTTP: the home page of a site nobody has set up,
//! the operator's first steps on the dashboard, a wallet without card payments, examples that
//! name a model the reader can call; error pages inside the normal frame in the reader's
//! language, a bad usage filter marked on its field, who is signed in in the header, and the
//! attributes and hints of username, email and password fields.

use crate::helpers::browser::Answer;
use crate::helpers::{Browser, CLI, FakeUpstream, TestApp, db_test};
use tollgate::service;
use tollgate::service::users::{CreateUser, UpdateUser};

const PASSWORD: &str = "correct horse battery";

/// An account of `role` with a password, made as the command line makes it.
async fn account(app: &TestApp, username: &str, role: &str) {
    service::users::create(
        app.ctx(),
        &CLI,
        CreateUser {
            username: username.into(),
            password: Some(PASSWORD.into()),
            email: None,
            role: Some(role.into()),
            group: None,
            quota_usd: None,
            ..Default::default()
        },
    )
    .await
    .expect("create the account");
}

/// Whether the step with this id is marked done (None: the step is not on the page).
fn step_done(page: &Answer, id: &str) -> Option<bool> {
    let at = page.body.find(&format!("id=\"{id}\""))?;
    let tag = &page.body[page.body[..at].rfind("<li")?..at];
    Some(tag.contains("done"))
}

/// The opening tag of the input named `name`.
fn input_tag<'a>(page: &'a Answer, name: &str) -> &'a str {
    let at = page
        .body
        .find(&format!("name=\"{name}\""))
        .unwrap_or_else(|| panic!("an input named {name}: {}", page.body));
    let start = page.body[..at].rfind('<').unwrap();
    let end = page.body[at..].find('>').unwrap() + at;
    &page.body[start..end]
}

/// The page is inside the normal frame: the header with the site's name and the menu.
fn framed(page: &Answer) -> bool {
    page.contains("<header class=\"top\">")
        && page.contains("class=\"nav-menu\"")
        && page.contains("href=\"/pricing\"")
}

db_test! {
    /// While no administrator exists, the home page says the site needs setting up and that
    /// the link is in the server's output, without the link's token; once root exists, it
    /// says nothing of it.
    async fn the_home_page_says_setup_is_needed_until_an_admin_exists(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let link = app.setup_link.clone().expect("a first-run link");
        let token = link.split_once("token=").unwrap().1.to_string();
        let home = Browser::new(&app).get("/").await;
        assert_eq!(home.status, 200);
        assert!(home.contains("id=\"setup-needed\""), "{}", home.body);
        assert!(home.contains("This site is not set up yet"), "{}", home.body);
        assert!(home.contains("Set up Tollgate: open "), "the line to look for: {}", home.body);
        assert!(!home.contains(&token), "the token is not shown");
        let chinese = Browser::with_headers(&app, &[("accept-language", "zh-CN")]).get("/").await;
        assert!(chinese.contains("本站尚未完成设置"), "{}", chinese.body);

        account(&app, "root", "root").await;
        let home = Browser::new(&app).get("/").await;
        assert!(!home.contains("id=\"setup-needed\""), "{}", home.body);
    }
}

db_test! {
    /// An administrator's dashboard lists the operator's first steps, each with its command
    /// and `/api` call and a link to the guide, marked done as the site gets a channel, a price
    /// (or a channel whose models the shipped list prices), and someone with balance (or a
    /// code); with all done the list goes. A plain user sees none of it, nor the guide.
    async fn the_operators_first_steps_are_marked_as_they_are_done(db: TestDb) {
        let app = TestApp::spawn(db).await;
        account(&app, "root", "root").await;
        let root = Browser::new(&app);
        root.sign_in("root", PASSWORD).await;
        let dashboard = root.get("/dashboard").await;
        assert_eq!(dashboard.status, 200);
        assert!(dashboard.contains("id=\"first-steps\""), "{}", dashboard.body);
        for step in ["step-channel", "step-price", "step-balance"] {
            assert_eq!(step_done(&dashboard, step), Some(false), "{step}: {}", dashboard.body);
        }
        assert!(dashboard.contains("tollgate channel add --name main"), "{}", dashboard.body);
        assert!(dashboard.contains(&format!("http://{}/api/channels", app.addr)), "{}", dashboard.body);
        assert!(dashboard.contains("tollgate admin-token create --user root"), "{}", dashboard.body);
        assert!(dashboard.contains("href=\"/docs/operator#set-up-a-user-a-channel-a-price-and-a-key\""));
        let guide = root.get("/docs/operator").await;
        assert_eq!(guide.status, 200);
        assert!(guide.contains("id=\"set-up-a-user-a-channel-a-price-and-a-key\""), "the anchor the step links to");

        // A channel of a model the shipped list does not price: the channel is done, the price
        // not yet.
        let upstream = FakeUpstream::chat().await;
        app.add_channel("house", &upstream, "house-model").await;
        let dashboard = root.get("/dashboard").await;
        assert_eq!(step_done(&dashboard, "step-channel"), Some(true));
        assert_eq!(step_done(&dashboard, "step-price"), Some(false));
        app.price("house-model", "1", "2").await;
        let dashboard = root.get("/dashboard").await;
        assert_eq!(step_done(&dashboard, "step-price"), Some(true));
        assert_eq!(step_done(&dashboard, "step-balance"), Some(false), "root's own balance does not count");

        // A code to hand out is balance to give.
        service::codes::create(app.ctx(), &CLI, service::codes::CreateCodes { count: 1, usd: "1".into(), ..Default::default() })
            .await
            .expect("a code");
        let dashboard = root.get("/dashboard").await;
        assert!(!dashboard.contains("id=\"first-steps\""), "all done: the list goes: {}", dashboard.body);

        // A plain user has neither the steps nor the guide.
        let person = Browser::new(&app);
        person.register("kim", PASSWORD).await;
        let theirs = person.get("/dashboard").await;
        assert!(!theirs.contains("id=\"first-steps\""));
        assert_eq!(person.get("/docs/operator").await.status, 404);
    }
}

db_test! {
    /// A channel whose models the shipped list prices needs no price of its own, and an account
    /// other than root with balance is balance given.
    async fn list_prices_and_a_funded_account_count_as_done(db: TestDb) {
        let app = TestApp::spawn(db).await;
        account(&app, "boss", "admin").await;
        let upstream = FakeUpstream::chat().await;
        app.add_channel("main", &upstream, "gpt-4o-mini").await;
        let admin = Browser::new(&app);
        admin.sign_in("boss", PASSWORD).await;
        let dashboard = admin.get("/dashboard").await;
        assert_eq!(step_done(&dashboard, "step-price"), Some(true), "{}", dashboard.body);
        assert_eq!(step_done(&dashboard, "step-balance"), Some(false));
        app.set_option("list_prices", "false").await;
        let dashboard = admin.get("/dashboard").await;
        assert_eq!(step_done(&dashboard, "step-price"), Some(false), "list prices off");
        app.price("gpt-4o-mini", "0.15", "0.6").await;
        app.create_user("alice", "5").await;
        let dashboard = admin.get("/dashboard").await;
        assert!(!dashboard.contains("id=\"first-steps\""), "{}", dashboard.body);
    }
}

db_test! {
    /// Without Stripe the wallet has no card form: it says card payments are not available on
    /// the site and how to get balance instead (a code, or the administrator); the code form
    /// stays. With Stripe the card form is back.
    async fn a_wallet_without_card_payments_says_how_to_get_balance(db: TestDb) {
        let app = TestApp::spawn(db).await;
        app.set_option("site_name", "Acme AI").await;
        let person = Browser::new(&app);
        person.register("kim", PASSWORD).await;
        let wallet = person.get("/wallet").await;
        assert_eq!(wallet.status, 200);
        assert!(wallet.contains("id=\"no-card\""), "{}", wallet.body);
        assert!(wallet.contains("Card payments are not available on Acme AI"), "{}", wallet.body);
        assert!(wallet.contains("Ask the administrator of Acme AI"), "{}", wallet.body);
        assert!(wallet.contains("href=\"#code\""), "a link to the code's field");
        assert!(!wallet.contains("name=\"amount_usd\""), "no card form");
        assert!(wallet.contains("action=\"/wallet/redeem#errors\""), "the code form stays");
        let chinese = person.get("/wallet?lang=zh-CN").await;
        assert!(chinese.contains("Acme AI 不支持银行卡付款"), "{}", chinese.body);

        app.set_option("stripe_secret_key", "sk_test_onboarding").await;
        app.set_option("stripe_webhook_secret", "whsec_onboarding").await;
        app.reload().await;
        let wallet = person.get("/wallet?lang=en").await;
        assert!(!wallet.contains("id=\"no-card\""), "{}", wallet.body);
        assert!(wallet.contains("name=\"amount_usd\""), "{}", wallet.body);
    }
}

db_test! {
    /// The docs' examples name a model the reader can call: for a visitor the default group's
    /// cheapest chat model (not an embedding model), for a signed-in person their group's; a
    /// placeholder, said to be one, only when the group has none. The dashboard's example too.
    async fn the_docs_name_a_model_the_reader_can_call(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let visitor = Browser::new(&app);
        let empty = visitor.get("/docs").await;
        assert!(empty.contains("\"model\": \"MODEL_NAME\""), "{}", empty.body);
        assert!(empty.contains("No model is available to you yet"), "{}", empty.body);

        let upstream = FakeUpstream::chat().await;
        app.add_channel("main", &upstream, "gpt-4o,gpt-4o-mini,text-embedding-3-small").await;
        app.create_group("vip", "1").await;
        app.add_channel_with(service::channels::ChannelInput {
            name: Some("vip".into()),
            base_url: Some(upstream.base_url()),
            models: Some("vip-model".into()),
            groups: Some("vip".into()),
            ..Default::default()
        })
        .await;
        app.price("vip-model", "1", "1").await;
        app.reload().await;
        let docs = visitor.get("/docs").await;
        assert!(docs.contains("\"model\": \"gpt-4o-mini\""), "the cheapest chat model: {}", docs.body);
        assert!(docs.contains("model=\"gpt-4o-mini\""), "{}", docs.body);
        assert!(!docs.contains("MODEL_NAME"), "{}", docs.body);
        assert!(!docs.contains("text-embedding-3-small"), "not an embedding model");

        let person = Browser::new(&app);
        person.register("vic", PASSWORD).await;
        service::users::update(app.ctx(), &CLI, "vic", UpdateUser { group: Some("vip".into()), ..Default::default() })
            .await
            .expect("move vic to vip");
        let docs = person.get("/docs").await;
        assert!(docs.contains("\"model\": \"vip-model\""), "{}", docs.body);
        let dashboard = person.get("/dashboard").await;
        assert!(dashboard.contains("&quot;model&quot;: &quot;vip-model&quot;") || dashboard.contains("\"model\": \"vip-model\""), "{}", dashboard.body);
    }
}

db_test! {
    /// A path nobody serves answers "Page not found" inside the normal frame (header, menu, who
    /// is signed in), in the reader's language, with the security headers; `/v1` keeps its own
    /// envelope and none of the portal's layers. Other error pages (a record that is not the
    /// reader's, a method a page does not take, a refused form) are framed too.
    async fn a_missing_page_is_framed_in_the_readers_language(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let visitor = Browser::new(&app);
        let missing = visitor.get("/no-such-page").await;
        assert_eq!(missing.status, 404);
        assert!(framed(&missing), "{}", missing.body);
        assert_eq!(missing.lang(), Some("en"));
        assert!(missing.contains("<h1>Page not found</h1>"), "{}", missing.body);
        assert!(!missing.contains("Something went wrong"));
        for header in ["content-security-policy", "x-frame-options", "x-content-type-options", "referrer-policy", "cache-control"] {
            assert!(missing.headers.get(header).is_some(), "the not-found page lacks {header}");
        }
        let chinese = Browser::with_headers(&app, &[("accept-language", "zh-CN,zh;q=0.9")]).get("/static/nothing.css").await;
        assert_eq!(chinese.status, 404);
        assert!(framed(&chinese), "{}", chinese.body);
        assert_eq!(chinese.lang(), Some("zh-CN"));
        assert!(chinese.contains("<h1>找不到页面</h1>"), "{}", chinese.body);
        assert!(chinese.contains("页面不存在"), "{}", chinese.body);

        // Signed in: the header names the person, on a path nobody serves and on a record
        // that is not theirs.
        let person = Browser::new(&app);
        person.register("kim", PASSWORD).await;
        service::users::update(app.ctx(), &CLI, "kim", UpdateUser { display_name: Some("Kim Lee".into()), ..Default::default() })
            .await
            .expect("a display name");
        let missing = person.get("/nowhere?lang=zh-CN").await;
        assert_eq!(missing.status, 404);
        assert!(missing.contains("已登录：Kim Lee"), "{}", missing.body);
        assert!(missing.contains("action=\"/logout\""), "{}", missing.body);
        let not_theirs = person.get("/keys/999999/edit?lang=en").await;
        assert_eq!(not_theirs.status, 404);
        assert!(framed(&not_theirs) && not_theirs.contains("Signed in as Kim Lee"), "{}", not_theirs.body);
        assert!(not_theirs.contains("<h1>Page not found</h1>"), "{}", not_theirs.body);

        // A page asked for the wrong way, and a refused form, are framed as well.
        let wrong = person.get("/logout").await;
        assert_eq!(wrong.status, 405);
        assert!(framed(&wrong) && wrong.contains("Signed in as Kim Lee"), "{}", wrong.body);
        let forged = person.post_raw("/keys", &[("csrf_token", "forged"), ("name", "x")]).await;
        assert_eq!(forged.status, 403);
        assert!(framed(&forged) && forged.contains("Signed in as Kim Lee"), "{}", forged.body);
        assert!(forged.contains("<h1>Not allowed</h1>"), "{}", forged.body);

        // /v1 answers in OpenAI's terms and carries no portal layer.
        let relay = app.client.get(app.url("/v1/no-such-thing")).send().await.unwrap();
        assert_eq!(relay.status(), 404);
        assert!(relay.headers().get("set-cookie").is_none(), "no visitor cookie or session on /v1");
        assert!(relay.headers().get("content-security-policy").is_none());
        assert!(relay.text().await.unwrap().contains("unknown_url"));
    }
}

db_test! {
    /// A failure inside the server (here the request log's table is gone, so the usage page
    /// cannot be read) is a 500 page inside the normal frame, with who is signed in.
    async fn a_failure_inside_the_server_is_framed(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let person = Browser::new(&app);
        person.register("kim", PASSWORD).await;
        sqlx::query("DROP TABLE request_logs")
            .execute(app.db.pool())
            .await
            .expect("drop the request log");
        let failed = person.get("/logs").await;
        assert_eq!(failed.status, 500);
        assert!(framed(&failed), "{}", failed.body);
        assert!(failed.contains("<h1>Something went wrong</h1>"), "{}", failed.body);
        assert!(failed.contains("Signed in as kim"), "{}", failed.body);
        let chinese = person.get("/logs?lang=zh-CN").await;
        assert_eq!(chinese.status, 500);
        assert!(chinese.contains("<h1>出错了</h1>") && chinese.contains("已登录：kim"), "{}", chinese.body);
    }
}

db_test! {
    /// A usage filter that does not parse comes back marked on its field (422), with the
    /// summary and what was typed, on the page and for the CSV alike; nothing is listed.
    async fn a_bad_usage_filter_is_marked_on_its_field(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let person = Browser::new(&app);
        person.register("kim", PASSWORD).await;
        let bad = person.get("/logs?from=yesterday&outcome=bogus&key=first").await;
        assert_eq!(bad.status, 422, "{}", bad.body);
        assert!(bad.contains("id=\"errors\""), "{}", bad.body);
        assert_eq!(bad.field_error("from").as_deref(), Some("Use a date such as 2027-01-31."));
        assert_eq!(bad.field_error("outcome").as_deref(), Some("Choose one of the listed outcomes."));
        assert_eq!(bad.field_error("key").as_deref(), Some("Choose one of your keys."));
        assert!(bad.field_error("to").is_none());
        assert_eq!(bad.input("from").as_deref(), Some("yesterday"), "what was typed stays");
        assert!(bad.contains("<a href=\"#from\">From: "), "{}", bad.body);
        assert!(!bad.contains("id=\"totals\""), "nothing is listed");

        let csv = person.get("/logs.csv?to=2027-13-45").await;
        assert_eq!(csv.status, 422);
        assert!(csv.headers["content-type"].to_str().unwrap().starts_with("text/html"));
        assert!(csv.field_error("to").is_some(), "{}", csv.body);

        let chinese = person.get("/logs?from=nope&lang=zh-CN").await;
        assert_eq!(chinese.status, 422);
        assert_eq!(chinese.field_error("from").as_deref(), Some("请填写日期，例如 2027-01-31。"));

        let good = person.get("/logs?from=2026-01-01&lang=en").await;
        assert_eq!(good.status, 200);
        assert!(good.contains("id=\"totals\""));
        // A paging cursor that is no id starts at the newest.
        assert_eq!(person.get("/logs?before=abc").await.status, 200);
    }
}

db_test! {
    /// The header names who is signed in — their display name, else their username — on every
    /// page, in the row of links and in the phone's menu alike; a visitor's names nobody.
    async fn the_header_names_who_is_signed_in(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let visitor = Browser::new(&app);
        assert!(!visitor.get("/pricing").await.contains("class=\"signed-in-as\""));
        let person = Browser::new(&app);
        person.register("kim", PASSWORD).await;
        for path in ["/dashboard", "/pricing", "/docs", "/keys", "/wallet", "/profile"] {
            let page = person.get(path).await;
            assert_eq!(
                page.body.matches("<li class=\"signed-in-as\">Signed in as kim</li>").count(),
                2,
                "{path}: in the row and in the menu: {}",
                page.body
            );
        }
        person.post("/profile", &[("display_name", "Kim <Lee>"), ("email", "kim@example.com")]).await;
        let page = person.get("/dashboard").await;
        assert!(page.contains("Signed in as Kim &#60;Lee&#62;") || page.contains("Signed in as Kim &lt;Lee&gt;"), "escaped: {}", page.body);
    }
}

db_test! {
    /// Username and email inputs are typed exactly (no capital, correction or spelling marks
    /// from a phone), and every field choosing a password says the rule.
    async fn account_fields_are_typed_verbatim_and_say_the_password_rule(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let link = app.setup_link.clone().expect("a first-run link");
        let path = link.split_once(&app.addr.to_string()).unwrap().1.to_string();
        let browser = Browser::new(&app);
        let verbatim = |tag: &str| {
            tag.contains("autocapitalize=\"none\"")
                && tag.contains("autocorrect=\"off\"")
                && tag.contains("spellcheck=\"false\"")
        };
        let rule = "At least 10 characters, and not one of the most common passwords.";
        let setup = browser.get(&path).await;
        let register = browser.get("/register").await;
        for (page, fields) in [(&setup, ["username", "email"]), (&register, ["username", "email"])] {
            for field in fields {
                assert!(verbatim(input_tag(page, field)), "{field}: {}", input_tag(page, field));
            }
            assert!(input_tag(page, "password").contains("minlength=\"10\""), "{}", input_tag(page, "password"));
            assert!(page.contains(rule), "{}", page.body);
        }
        let login = browser.get("/login").await;
        assert!(verbatim(input_tag(&login, "login")), "{}", input_tag(&login, "login"));
        let forgot = browser.get("/forgot-password").await;
        assert!(verbatim(input_tag(&forgot, "email")));

        let person = Browser::new(&app);
        person.register("kim", PASSWORD).await;
        let profile = person.get("/profile").await;
        assert!(verbatim(input_tag(&profile, "email")), "{}", input_tag(&profile, "email"));
        assert!(profile.contains(rule), "{}", profile.body);
        let chinese = Browser::new(&app).get("/register?lang=zh-CN").await;
        assert!(chinese.contains("至少 10 个字符，且不能是最常见的密码之一。"), "{}", chinese.body);
    }
}
