//! What a first user trips over in the portal, over real HTTP: a form that comes back starts
//! with its summary and opens there; the language link keeps the address; the usage log's
//! times, latency, reasons and models; one rule for money on every page; the playground's
//! conversation without JavaScript.

use crate::helpers::{Browser, CLI, FakeUpstream, Reply, TestApp, chat_body, db_test};
use tollgate::domain::calendar::SiteCalendar;

const PASSWORD: &str = "correct horse battery";

async fn serving(db: crate::helpers::TestDb) -> (TestApp, FakeUpstream) {
    let app = TestApp::spawn(db).await;
    let upstream = FakeUpstream::chat().await;
    app.add_channel("main", &upstream, "gpt-4o-mini").await;
    app.price("gpt-4o-mini", "1", "1").await;
    (app, upstream)
}

/// The `href` of the link to the page in `lang` (the header's language link), unescaped.
fn language_link(page: &crate::helpers::browser::Answer, lang: &str) -> String {
    let marker = format!("\" lang=\"{lang}\" hreflang=\"{lang}\"");
    let end = page.body.find(&marker).expect("a language link");
    let start = page.body[..end].rfind("href=\"").expect("its href") + 6;
    crate::helpers::browser::html_unescape(&page.body[start..end])
}

/// The text of the element with this id (up to its first inner tag).
fn text_of(page: &crate::helpers::browser::Answer, id: &str) -> Option<String> {
    let marker = format!("id=\"{id}\">");
    let start = page.body.find(&marker)? + marker.len();
    let end = page.body[start..].find('<')? + start;
    Some(page.body[start..end].to_string())
}

db_test! {
    /// A form that comes back with problems starts with a summary (`id="errors"`) linking to
    /// each bad field, led by its label, in the form's order; the form posts to `…#errors`, so
    /// the browser opens the page there; each field carries its problem next to it; the script
    /// that puts the first bad field in focus is served under the page's policy.
    async fn a_form_that_comes_back_starts_with_its_summary(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let browser = Browser::new(&app);
        let form = browser.get("/register").await;
        assert!(form.contains("action=\"/register#errors\""), "{}", form.body);
        assert!(!form.contains("id=\"errors\""), "no summary before anything went wrong");
        let wrong = browser
            .post("/register", &[("username", "bad name"), ("email", "nope"), ("password", "short"), ("password_confirm", "other")])
            .await;
        assert_eq!(wrong.status, 422);
        let summary = wrong.body.find("id=\"errors\"").expect("a summary");
        let first_field = wrong.body.find("id=\"username\"").expect("the username field");
        assert!(summary < first_field, "the summary comes first");
        let links: Vec<usize> = ["#username", "#email", "#password", "#password_confirm"]
            .iter()
            .map(|anchor| {
                wrong.body.find(&format!("<a href=\"{anchor}\">")).unwrap_or_else(|| panic!("{anchor} is linked: {}", wrong.body))
            })
            .collect();
        assert!(links.windows(2).all(|w| w[0] < w[1]), "in the form's order: {links:?}");
        assert!(wrong.contains("<a href=\"#username\">Username: "), "led by the label: {}", wrong.body);
        for field in ["username", "email", "password", "password_confirm"] {
            assert!(wrong.field_error(field).is_some(), "{field} is marked beside it");
            let input = &wrong.body[wrong.body.find(&format!("id=\"{field}\" name=\"{field}\"")).unwrap()..];
            let tag = &input[..input.find('>').unwrap()];
            assert!(tag.contains("aria-invalid=\"true\""), "{tag}");
            assert!(tag.contains(&format!("{field}-error")), "described by its problem: {tag}");
        }
        assert!(wrong.contains("<script src=\"/static/forms.js\" defer></script>"));
        let script = app.client.get(app.url("/static/forms.js")).send().await.unwrap();
        assert_eq!(script.status(), 200);
        assert!(script.headers()["content-type"].to_str().unwrap().starts_with("text/javascript"));
        assert!(script.text().await.unwrap().contains("aria-invalid"));

        // The same for every form: a key's, in Chinese.
        let person = Browser::new(&app);
        person.register("kim", PASSWORD).await;
        let keys = person.get("/keys?lang=zh-CN").await;
        assert!(keys.contains("action=\"/keys#errors\""), "{}", keys.body);
        let bad = person.post("/keys", &[("name", ""), ("quota_usd", "lots")]).await;
        assert_eq!(bad.status, 422);
        assert!(bad.contains("id=\"errors\""), "{}", bad.body);
        assert!(bad.contains("请更正以下问题"), "{}", bad.body);
        assert!(bad.contains("<a href=\"#name\">名称："), "{}", bad.body);
        assert!(bad.contains("<a href=\"#quota_usd\">"), "{}", bad.body);
        assert_eq!(bad.input("quota_usd").as_deref(), Some("lots"));

        // A sign-in that fails opens at its summary too.
        let login = Browser::new(&app);
        login.get("/login").await;
        let refused = login.post("/login", &[("login", "kim"), ("password", "wrong password!")]).await;
        assert_eq!(refused.status, 422);
        assert!(refused.contains("action=\"/login#errors\"") && refused.contains("id=\"errors\""), "{}", refused.body);
    }
}

db_test! {
    /// The 中文/English link is this page's address with only `lang` replaced: the setup
    /// link's token, an invite and the usage filters survive the switch.
    async fn the_language_link_keeps_the_address(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let link = app.setup_link.clone().expect("a first-run link");
        let path = link.split_once(&app.addr.to_string()).unwrap().1.to_string();
        let browser = Browser::new(&app);
        let setup = browser.get(&path).await;
        assert_eq!(setup.status, 200);
        let switched = language_link(&setup, "zh-CN");
        assert_eq!(switched, format!("{path}&lang=zh-CN"));
        let chinese = browser.get(&switched).await;
        assert_eq!(chinese.status, 200, "the setup link still works: {}", chinese.body);
        assert_eq!(chinese.lang(), Some("zh-CN"));
        assert!(chinese.input("token").is_some_and(|t| path.contains(&t)));
        // Back: `lang` is replaced, not repeated.
        assert_eq!(language_link(&chinese, "en"), format!("{path}&lang=en"));

        let made = browser
            .post("/setup", &[("token", &chinese.input("token").unwrap()), ("username", "root"), ("password", PASSWORD), ("password_confirm", PASSWORD)])
            .await;
        assert_eq!(made.status, 303, "{}", made.body);
        let inviter = Browser::new(&app);
        inviter.register("ivy", PASSWORD).await;
        inviter.get("/wallet").await;
        inviter.post("/wallet/invite", &[]).await;
        let code = app.user("ivy").await.invite_code.expect("an invite code");
        let invited = Browser::new(&app);
        let register = invited.get(&format!("/register?invite={code}")).await;
        let switched = language_link(&register, "zh-CN");
        assert_eq!(switched, format!("/register?invite={code}&lang=zh-CN"));
        let chinese = invited.get(&switched).await;
        assert_eq!(chinese.input("invite").as_deref(), Some(code.as_str()), "the invite is kept");

        let filtered = inviter.get("/logs?model=gpt-4o-mini&outcome=success&lang=en").await;
        assert_eq!(
            language_link(&filtered, "zh-CN"),
            "/logs?model=gpt-4o-mini&outcome=success&lang=zh-CN"
        );
        let plain = inviter.get("/keys").await;
        assert_eq!(language_link(&plain, "zh-CN"), "/keys?lang=zh-CN");
    }
}

db_test! {
    /// The usage log: times to the second in the site's zone, named; latency, time to first
    /// token and whether it streamed; why a refused request was refused; a model filter that
    /// lists the models one's own requests named. The CSV has RFC 3339 times with the zone's
    /// offset and the same figures.
    async fn usage_shows_times_latency_reasons_and_models_seen(db: TestDb) {
        let (app, upstream) = serving(db).await;
        app.set_option("new_user_quota_usd", "5").await;
        app.set_option("timezone", "Asia/Shanghai").await;
        app.reload().await;
        let person = Browser::new(&app);
        person.register("lena", PASSWORD).await;
        person.get("/keys").await;
        let key = person.post("/keys", &[("name", "laptop")]).await.new_key().unwrap();
        assert_eq!(app.chat(&key, chat_body("gpt-4o-mini")).await.status(), 200);
        upstream.queue(Reply::stream(&["Hel", "lo"], Some((7, 3))));
        let mut streamed = chat_body("gpt-4o-mini");
        streamed["stream"] = serde_json::json!(true);
        let answer = app.chat(&key, streamed).await;
        assert_eq!(answer.status(), 200);
        answer.text().await.unwrap();
        assert_eq!(app.chat(&key, chat_body("no-such-model")).await.status(), 404);
        // Another person's model names are not offered.
        let (other_key, _) = app.create_key(tollgate::service::tokens::CreateToken {
            username: app.create_user("otto", "5").await.username,
            name: "otto".into(),
            ..Default::default()
        }).await;
        assert_eq!(app.chat(&other_key, chat_body("ottos-secret-model")).await.status(), 404);
        app.flush().await;
        let logs: Vec<_> = app.logs().await.into_iter().filter(|l| l.username == "lena").collect();
        assert_eq!(logs.len(), 3);
        let refused = logs.iter().find(|l| l.model == "no-such-model").unwrap();
        let streamed = logs.iter().find(|l| l.is_stream).unwrap();
        let shanghai = SiteCalendar::new("Asia/Shanghai");

        let mut page = person.get("/logs").await;
        assert_eq!(page.status, 200);
        page.body = crate::helpers::browser::html_unescape(&page.body);
        assert!(page.contains("Time (Asia/Shanghai)"), "the zone is named: {}", page.body);
        let shown = shanghai.local_time(refused.created_at);
        assert_eq!(shown.len(), 19, "to the second: {shown}");
        assert!(page.contains(&format!("<time datetime=\"{}\">{shown}</time>", shanghai.rfc3339(refused.created_at))), "{}", page.body);
        assert!(page.contains(&refused.error_message), "the reason shows: {}", page.body);
        assert!(!refused.error_message.is_empty());
        assert!(page.contains("streamed · first token ") || streamed.ttft_ms.is_none(), "{}", page.body);
        assert!(page.contains("whole answer"), "{}", page.body);
        assert!(page.contains(" ms<") || page.contains(" s<"), "latency shows: {}", page.body);
        for model in ["gpt-4o-mini", "no-such-model"] {
            assert!(page.contains(&format!("<option value=\"{model}\">{model}</option>")), "{model} is offered: {}", page.body);
        }
        assert!(!page.contains("ottos-secret-model"), "only one's own models");
        let chosen = person.get("/logs?model=no-such-model").await;
        assert!(chosen.contains("<option value=\"no-such-model\" selected>"), "{}", chosen.body);
        assert!(chosen.body.contains("<strong>1</strong>"), "{}", chosen.body);
        assert!(chosen.contains("<details class=\"filters\" open>"), "set filters stay unfolded");
        assert!(person.get("/logs").await.contains("<details class=\"filters\">"), "the filters fold away");

        // Days typed in the filter are the site's days.
        let today = shanghai.local_time(tollgate::service::db::now_ms())[..10].to_string();
        let by_day = person.get(&format!("/logs?from={today}&to={today}")).await;
        assert!(by_day.body.contains("<strong>3</strong>"), "{}", by_day.body);

        let csv = person.get("/logs.csv").await;
        assert_eq!(csv.status, 200);
        let lines: Vec<&str> = csv.body.lines().collect();
        assert_eq!(lines[0], "time,request_id,key,model,prompt_tokens,completion_tokens,cached_tokens,cost_usd,cost_units,latency_ms,ttft_ms,stream,outcome,status,error");
        let row_of = |log: &tollgate::service::db::logs::RequestLog| {
            lines.iter().find(|l| l.contains(&log.request_id)).map(|l| l.to_string()).unwrap()
        };
        let refused_row = row_of(refused);
        let time = refused_row.split(',').next().unwrap();
        assert_eq!(time, shanghai.rfc3339(refused.created_at));
        assert!(time.ends_with("+08:00") && time.len() == 25, "{time}");
        assert!(refused_row.contains(",refused,404,"), "{refused_row}");
        assert!(refused_row.contains(&refused.error_message.replace('"', "\"\"")) || refused_row.contains("no-such-model"), "{refused_row}");
        let streamed_row = row_of(streamed);
        let cells: Vec<&str> = streamed_row.split(',').collect();
        assert_eq!(cells[9], streamed.latency_ms.to_string());
        assert_eq!(cells[10], streamed.ttft_ms.map(|t| t.to_string()).unwrap_or_default());
        assert_eq!(cells[11], "true");
        assert!(lines.last().unwrap().starts_with("total,") && lines.last().unwrap().contains("3 requests"));
    }
}

db_test! {
    /// One rule for money on every page: from $1 cents rounded half up, below $1 up to six
    /// decimals rounded up, so a cost of a cent and a half reads $0.015, not $0.01, and a
    /// balance of $1.005 reads $1.01.
    async fn money_reads_by_one_rule_on_every_page(db: TestDb) {
        let (app, _upstream) = serving(db).await;
        // 10 prompt and 5 completion tokens at $1,000 per 1M: $0.015, exactly 7,500 units.
        app.price("gpt-4o-mini", "1000", "1000").await;
        app.set_option("new_user_quota_usd", "1.005").await;
        app.reload().await;
        let person = Browser::new(&app);
        person.register("mona", PASSWORD).await;
        let wallet = person.get("/wallet").await;
        assert_eq!(text_of(&wallet, "balance").as_deref(), Some("$1.01"), "{}", wallet.body);
        let dashboard = person.get("/dashboard").await;
        assert_eq!(text_of(&dashboard, "balance").as_deref(), Some("$1.01"));

        person.get("/keys").await;
        let key = person.post("/keys", &[("name", "laptop")]).await.new_key().unwrap();
        assert_eq!(app.chat(&key, chat_body("gpt-4o-mini")).await.status(), 200);
        app.flush().await;
        let log = app.logs().await.into_iter().find(|l| l.username == "mona").unwrap();
        assert_eq!(log.cost, 7_500);

        let dashboard = person.get("/dashboard").await;
        assert_eq!(text_of(&dashboard, "spend-today").as_deref(), Some("$0.015"), "{}", dashboard.body);
        assert_eq!(text_of(&dashboard, "balance").as_deref(), Some("$0.99"));
        assert!(dashboard.contains("<td class=\"num\">$0.015</td>"), "spend per model: {}", dashboard.body);
        // The chart's axis goes to a round amount above the costliest day, and its figures
        // are a table for screen readers.
        assert!(dashboard.contains("<span class=\"tick-top\">$0.02</span>"), "{}", dashboard.body);
        assert!(dashboard.contains("<span class=\"tick-middle\">$0.01</span>"));
        assert!(dashboard.contains("<table class=\"visually-hidden\">"));
        assert!(dashboard.contains("</th><td>$0.015</td><td>1</td></tr>"), "today's row: {}", dashboard.body);
        assert_eq!(dashboard.body.matches("<td>$0.00</td><td>0</td>").count(), 29, "the other days");
        let logs = person.get("/logs").await;
        assert!(logs.contains("data-label=\"Cost\">$0.015</td>"), "{}", logs.body);
        assert!(logs.contains("<strong>$0.015</strong>"), "the totals: {}", logs.body);
        let keys = person.get("/keys").await;
        assert!(keys.contains("data-label=\"Spent\">$0.015</td>"), "{}", keys.body);
        assert!(!keys.contains(">$0.01<") && !logs.contains(">$0.01<"));
        let pricing = person.get("/pricing").await;
        assert!(pricing.contains("$1,000.00"), "{}", pricing.body);
        // A cost of one unit never reads $0.00.
        tollgate::service::users::change_quota(app.ctx(), &CLI, "mona", tollgate::service::users::QuotaChange {
            units: Some(-494_999),
            reason: Some("down to one unit".into()),
            ..Default::default()
        })
        .await
        .unwrap();
        let wallet = person.get("/wallet").await;
        assert_eq!(text_of(&wallet, "balance").as_deref(), Some("$0.000002"), "{}", wallet.body);
        assert!(wallet.contains(">-$0.989998<"), "a negative change reads by the same rule: {}", wallet.body);
    }
}

db_test! {
    /// The playground is a conversation without JavaScript: the form carries what was said, so
    /// the second message goes out with the first exchange, the system message, temperature
    /// and most tokens; each answer shows its tokens and cost as logged; the cheapest model is
    /// listed first; an empty message is marked next to its field and the conversation kept.
    async fn the_playground_holds_a_conversation_without_javascript(db: TestDb) {
        let (app, upstream) = serving(db).await;
        app.add_channel("dear", &upstream, "gpt-4o").await;
        app.price("gpt-4o", "2.5", "10").await;
        app.price("gpt-4o-mini", "0.15", "0.6").await;
        app.set_option("new_user_quota_usd", "5").await;
        app.reload().await;
        let browser = Browser::new(&app);
        browser.register("pia", PASSWORD).await;
        browser.get("/keys").await;
        browser.post("/keys", &[("name", "laptop")]).await;
        let key = app.token_ids_of("pia").await[0].to_string();
        let page = browser.get("/playground").await;
        let cheap = page.body.find("<option value=\"gpt-4o-mini\"").expect("the cheap model");
        let dear = page.body.find("<option value=\"gpt-4o\"").expect("the dear model");
        assert!(cheap < dear, "the cheapest first: {}", page.body);
        assert!(page.contains("<option value=\"gpt-4o-mini\" selected>"), "and chosen: {}", page.body);
        assert!(page.contains("$0.15 in / $0.60 out"), "{}", page.body);

        let first = browser
            .post("/playground", &[("key_id", &key), ("model", "gpt-4o-mini"), ("message", "Say hello"), ("history", "")])
            .await;
        assert_eq!(first.status, 200, "{}", first.body);
        let history = first.input("history").expect("the conversation in the form");
        let turns: serde_json::Value = serde_json::from_str(&history).unwrap();
        assert_eq!(turns.as_array().unwrap().len(), 2, "{history}");
        assert_eq!(turns[0]["content"], "Say hello");
        assert_eq!(turns[1]["content"], "Hello!");
        app.flush().await;
        let logged = app.logs().await.into_iter().find(|l| l.username == "pia").unwrap();
        assert_eq!(turns[1]["usage"]["cost"], logged.cost, "the cost as logged");
        let cost = tollgate::domain::money::Quota(logged.cost).usd_display(500_000);
        assert!(first.contains(&format!("10 input and 5 output tokens, {cost}.")), "{}", first.body);
        assert!(first.contains("name=\"message\" rows=\"4\" required></textarea>"), "the message box is empty again: {}", first.body);

        let second = browser
            .post("/playground", &[
                ("key_id", &key), ("model", "gpt-4o-mini"), ("message", "And again"), ("history", &history),
                ("system", "Be brief"), ("temperature", "0.5"), ("max_tokens", "50"),
            ])
            .await;
        assert_eq!(second.status, 200, "{}", second.body);
        let sent = upstream.requests().last().unwrap().json();
        let messages: Vec<(String, String)> = sent["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["role"].as_str().unwrap().to_string(), m["content"].as_str().unwrap().to_string()))
            .collect();
        let expected = [("system", "Be brief"), ("user", "Say hello"), ("assistant", "Hello!"), ("user", "And again")];
        assert_eq!(messages, expected.map(|(r, c)| (r.to_string(), c.to_string())).to_vec());
        assert_eq!(sent["temperature"], 0.5);
        assert_eq!(sent["max_tokens"], 50);
        assert_eq!(second.body.matches("class=\"turn person\"").count(), 2);
        assert_eq!(second.body.matches("10 input and 5 output tokens").count(), 2, "each answer's usage");
        let history = second.input("history").unwrap();
        assert_eq!(serde_json::from_str::<serde_json::Value>(&history).unwrap().as_array().unwrap().len(), 4);

        // An empty message: marked beside its field, the summary first, the conversation kept.
        let count = upstream.requests().len();
        let blank = browser
            .post("/playground", &[("key_id", &key), ("model", "gpt-4o-mini"), ("message", "  "), ("history", &history)])
            .await;
        assert_eq!(blank.status, 422);
        assert_eq!(blank.field_error("message").as_deref(), Some("Write a message to send."));
        assert!(blank.contains("id=\"errors\"") && blank.contains("<a href=\"#message\">"), "{}", blank.body);
        assert_eq!(blank.input("history").as_deref(), Some(history.as_str()));
        let wild = browser
            .post("/playground", &[("key_id", &key), ("model", "gpt-4o-mini"), ("message", "hi"), ("temperature", "3"), ("max_tokens", "lots")])
            .await;
        assert_eq!(wild.status, 422);
        assert!(wild.field_error("temperature").is_some() && wild.field_error("max_tokens").is_some(), "{}", wild.body);
        assert_eq!(upstream.requests().len(), count, "nothing refused reached the upstream");

        // A conversation beyond its bound keeps its newest exchanges.
        let long = "words ".repeat(3_000);
        let heavy = serde_json::json!([
            {"role": "user", "content": long}, {"role": "assistant", "content": long},
            {"role": "user", "content": long}, {"role": "assistant", "content": long},
            {"role": "user", "content": "recent"}, {"role": "assistant", "content": "kept"},
        ]).to_string();
        let trimmed = browser
            .post("/playground", &[("key_id", &key), ("model", "gpt-4o-mini"), ("message", "next"), ("history", &heavy)])
            .await;
        assert_eq!(trimmed.status, 200);
        assert!(trimmed.contains("The oldest messages were left out"), "{}", trimmed.body);
        let sent = upstream.requests().last().unwrap().json();
        assert!(sent.to_string().len() < 40_000, "the bound holds");
        assert!(sent.to_string().contains("recent"));

        // With JavaScript the answer streams, then its usage as logged.
        upstream.queue(Reply::stream(&["Hel", "lo"], Some((7, 3))));
        let streamed = browser
            .post("/playground/stream", &[("key_id", &key), ("model", "gpt-4o-mini"), ("message", "Stream it"), ("history", &history)])
            .await;
        assert_eq!(streamed.status, 200, "{}", streamed.body);
        let usage = streamed.body.split("event: usage\ndata: ").nth(1).expect("a usage event");
        let usage: serde_json::Value = serde_json::from_str(usage.lines().next().unwrap()).unwrap();
        assert_eq!(usage["prompt_tokens"], 7);
        assert!(usage["cost"].as_i64().unwrap() > 0);
        assert!(usage["meta"].as_str().unwrap().starts_with("7 input and 3 output tokens, $"));
        let sent = upstream.requests().last().unwrap().json();
        assert_eq!(sent["messages"].as_array().unwrap().len(), 5, "the conversation went along");
        let empty = browser
            .post("/playground/stream", &[("key_id", &key), ("model", "gpt-4o-mini"), ("message", "")])
            .await;
        assert_eq!(empty.status, 422);
        let problem: serde_json::Value = serde_json::from_str(&empty.body).unwrap();
        assert_eq!(problem["error"]["field"], "message");
    }
}

db_test! {
    /// The keys list: every key a row with its name, masked key, spend, limit, status and
    /// actions, each cell labelled for the card it becomes on a phone; a long name is kept
    /// whole.
    async fn the_keys_list_labels_every_cell(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let browser = Browser::new(&app);
        browser.register("nia", PASSWORD).await;
        let long = "analytics-backend-production-eu-west-1-nightly-batch-exports";
        assert_eq!(long.len(), 60);
        browser.get("/keys").await;
        for name in ["one", "two", "three", "four", "five", long] {
            assert_eq!(browser.post("/keys", &[("name", name), ("quota_usd", "2")]).await.status, 201);
        }
        let keys = browser.get("/keys").await;
        assert!(keys.contains("<table class=\"cards keys\">"), "{}", keys.body);
        assert_eq!(keys.body.matches("<th scope=\"row\" class=\"key-name\">").count(), 6);
        assert!(keys.contains(&format!("<span class=\"name\">{long}</span>")));
        for label in ["Spent", "Limit left", "Last used", "Status"] {
            assert_eq!(keys.body.matches(&format!("data-label=\"{label}\"")).count(), 6, "{label}");
        }
        assert_eq!(keys.body.matches("class=\"row-actions\"").count(), 6);
        assert!(keys.contains("Not used yet"));
    }
}
