//! Redemption codes: made in batches and shown once, redeemed on the wallet page exactly once
//! per use however many accounts try at the same moment, refused with a reason otherwise, and
//! every credit a ledger row the ledger check accounts for.

use serde_json::json;

use crate::helpers::{Api, Browser, CLI, TestApp, admin_token, db_test};
use tollgate::service::codes::CreateCodes;
use tollgate::service::db::Value;
use tollgate::service::{self, ServiceError};

const PASSWORD: &str = "correct horse battery";

async fn make_codes(app: &TestApp, count: u32, usd: &str, uses: i64) -> Vec<String> {
    service::codes::create(
        app.ctx(),
        &CLI,
        CreateCodes {
            count,
            usd: usd.into(),
            uses: Some(uses),
            ..Default::default()
        },
    )
    .await
    .expect("make codes")
    .into_iter()
    .map(|c| c.code)
    .collect()
}

/// `count` accounts redeem `code` at the same moment; how many were credited.
async fn race(app: &TestApp, prefix: &str, count: usize, code: &str) -> usize {
    let mut ids = Vec::new();
    for n in 0..count {
        ids.push(app.create_user(&format!("{prefix}{n}"), "0").await.id);
    }
    let attempts = ids.iter().map(|&id| {
        let ctx = app.ctx().clone();
        let code = code.to_string();
        tokio::spawn(async move { service::codes::redeem(&ctx, id, &code).await })
    });
    let results = futures::future::join_all(attempts).await;
    let mut credited = 0;
    for result in results {
        match result.expect("the task ran") {
            Ok(units) => {
                assert_eq!(units, 2_500_000);
                credited += 1;
            }
            Err(ServiceError::Invalid(problems)) => assert_eq!(problems[0].field, "code"),
            Err(other) => panic!("an attempt failed otherwise: {other}"),
        }
    }
    credited
}

async fn assert_books_balance(app: &TestApp) {
    let check = service::ledger::check(app.ctx(), &CLI).await.unwrap();
    assert!(check.discrepancies.is_empty(), "{:?}", check.discrepancies);
}

db_test! {
    /// 20 accounts redeem one single-use code at once: exactly one is credited. 20 accounts
    /// redeem a 5-use gift code: exactly five, each once; the same account cannot redeem it
    /// twice. The ledger accounts for every credit.
    async fn concurrent_redemptions_credit_exactly_the_uses(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let single = make_codes(&app, 1, "5", 1).await.remove(0);
        assert!(single.starts_with("tgc-"));
        assert_eq!(race(&app, "single", 20, &single).await, 1);
        let gift = make_codes(&app, 1, "5", 5).await.remove(0);
        assert_eq!(race(&app, "gift", 20, &gift).await, 5);
        let credited: i64 = app
            .db
            .fetch_all_with("SELECT COUNT(*) AS n FROM users WHERE quota = 2500000", &[])
            .await
            .unwrap()
            .first()
            .map(|r| sqlx::Row::try_get(r, "n").unwrap())
            .unwrap();
        assert_eq!(credited, 6, "one account per use, nobody twice");

        // A gift code's second use by the same account is refused, and takes no use.
        let twice = make_codes(&app, 1, "1", 3).await.remove(0);
        let carol = app.create_user("carol", "0").await;
        service::codes::redeem(app.ctx(), carol.id, &twice).await.unwrap();
        let again = service::codes::redeem(app.ctx(), carol.id, &twice).await.unwrap_err();
        assert!(again.to_string().contains("already redeemed"), "{again}");
        let listed = service::codes::list(app.ctx(), &CLI, None, None).await.unwrap();
        let row = listed.iter().find(|c| c.uses == 3).unwrap();
        assert_eq!(row.uses_left, 2);
        assert_eq!(row.last_redeemed_by.as_deref(), Some("carol"));
        assert!(!row.code_hash.contains("tgc-"), "only the hash is stored");
        assert_books_balance(&app).await;
    }
}

db_test! {
    /// The wallet page redeems a code and says what it added; used, disabled, expired and
    /// unknown codes each get their own message next to the field, with what was typed kept;
    /// wrong codes are limited per account.
    async fn the_wallet_redeems_codes_and_explains_refusals(db: TestDb) {
        let app = TestApp::spawn(db).await;
        app.create_user_with_email("dana", "dana@example.com", PASSWORD).await;
        let codes = make_codes(&app, 4, "2.50", 1).await;
        let browser = Browser::new(&app);
        browser.sign_in("dana", PASSWORD).await;
        let wallet = browser.get("/wallet").await;
        assert!(wallet.contains(r#"name="code""#), "{}", wallet.body);

        let redeemed = browser.post("/wallet/redeem", &[("code", &format!("  {}  ", codes[0]))]).await;
        assert_eq!(redeemed.status, 303, "{}", redeemed.body);
        let wallet = browser.get("/wallet").await;
        assert!(wallet.contains("The code added $2.50 to your balance."), "{}", wallet.body);
        assert!(wallet.contains("Redemption code"));
        assert_eq!(app.user("dana").await.quota, 1_250_000);

        let used = browser.post("/wallet/redeem", &[("code", &codes[0])]).await;
        assert_eq!(used.status, 422);
        assert_eq!(used.field_error("code").as_deref(), Some("This code has been used up."));
        assert_eq!(used.input("code").as_deref(), Some(codes[0].as_str()));

        service::codes::disable(app.ctx(), &CLI, None, Some("")).await.unwrap_err();
        let id = service::codes::list(app.ctx(), &CLI, None, Some("unused")).await.unwrap()[0].id;
        service::codes::disable(app.ctx(), &CLI, Some(id), None).await.unwrap();
        let disabled_code = service::codes::list(app.ctx(), &CLI, None, Some("disabled")).await.unwrap();
        assert_eq!(disabled_code.len(), 1);
        let unused = service::codes::list(app.ctx(), &CLI, None, Some("unused")).await.unwrap();
        assert_eq!(unused.len(), 2);
        app.db
            .write(async |tx| {
                tx.execute(
                    "UPDATE redemption_codes SET expires_at = ? WHERE id = ?",
                    &[Value::Int(1), Value::Int(unused[0].id)],
                )
                .await
            })
            .await
            .unwrap();
        // Which plain code is which: try each remaining one and collect the messages.
        let mut messages = Vec::new();
        for code in &codes[1..] {
            let answer = browser.post("/wallet/redeem", &[("code", code)]).await;
            messages.push(answer.field_error("code").unwrap_or_else(|| format!("status {}", answer.status)));
        }
        assert!(messages.contains(&"This code has been disabled by the site.".to_string()), "{messages:?}");
        assert!(messages.contains(&"This code has expired.".to_string()), "{messages:?}");
        assert!(messages.contains(&"status 303".to_string()), "{messages:?}");

        let guess = |n: usize| format!("tgc-{}{}", "A".repeat(47), n % 10);
        let unknown = browser.post("/wallet/redeem", &[("code", &guess(0))]).await;
        assert_eq!(unknown.field_error("code").as_deref(), Some("This code does not exist. Check that it was copied whole."));
        let zh = browser.get("/wallet?lang=zh-CN").await;
        assert!(zh.contains("兑换码"));
        let unknown_zh = browser.post("/wallet/redeem", &[("code", &guess(1))]).await;
        assert_eq!(unknown_zh.field_error("code").as_deref(), Some("该兑换码不存在，请确认已完整复制。"));

        // A typo of the wrong shape is told apart and is no guess: it uses up no try.
        for _ in 0..30 {
            let typo = browser.post("/wallet/redeem", &[("code", "tgc-nothing")]).await;
            assert_eq!(typo.status, 422);
            assert!(typo.field_error("code").unwrap().contains("48"), "{}", typo.body);
        }
        // Wrong codes are counted: the tenth within the hour is the last one looked at.
        let mut last = 0;
        for n in 0..10 {
            last = browser.post("/wallet/redeem", &[("code", &guess(n))]).await.status;
        }
        assert_eq!(last, 429);
        assert_books_balance(&app).await;
    }
}

db_test! {
    /// The CLI prints new codes one per line and into a CSV file, lists them by batch and
    /// state without the codes, and disables a batch; `/api/codes` does the same.
    async fn codes_are_managed_from_the_cli_and_the_api(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let url = app.db_url.clone();
        let run = |args: &[&str]| crate::shutdown::tollgate(&url, args);
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("codes.csv");
        let printed = run(&["code", "create", "--count", "3", "--usd", "10", "--uses", "2", "--expires", "2099-01-31", "--name", "launch", "--csv", csv.to_str().unwrap()]).unwrap();
        let codes: Vec<&str> = printed.lines().collect();
        assert_eq!(codes.len(), 3, "{printed}");
        assert!(codes.iter().all(|c| c.starts_with("tgc-") && c.len() > 40));
        let file = std::fs::read_to_string(&csv).unwrap();
        assert!(file.starts_with("id,code,usd,uses,expires,name\r\n"), "{file}");
        assert!(codes.iter().all(|c| file.contains(c)));
        let listed = run(&["code", "list", "--name", "launch"]).unwrap();
        assert!(!codes.iter().any(|c| listed.contains(c)), "codes are shown once: {listed}");
        assert!(listed.contains(&codes[0][..10]) && listed.contains("2/2") && listed.contains("unused"), "{listed}");
        assert!(run(&["code", "create", "--usd", "0"]).unwrap_err().contains("--usd"));
        assert!(run(&["code", "create", "--usd", "1", "--uses", "0"]).unwrap_err().contains("--uses"));
        assert!(run(&["code", "list", "--state", "nope"]).unwrap_err().contains("--state"));
        assert!(run(&["code", "disable", "--name", "launch"]).unwrap().contains("Disabled 3"));
        let disabled = run(&["code", "list", "--state", "disabled", "--json"]).unwrap();
        assert_eq!(serde_json::from_str::<serde_json::Value>(&disabled).unwrap().as_array().unwrap().len(), 3);

        let api = Api { token: admin_token(&app, "root", "root").await, app: &app };
        let (status, body) = api.post("/api/codes", json!({ "count": 2, "usd": 1.5, "name": "api" })).await;
        assert_eq!(status, 201, "{body}");
        let code = body["data"][0]["code"].as_str().unwrap().to_string();
        let (status, body) = api.get("/api/codes?name=api").await;
        assert_eq!(status, 200);
        assert_eq!(body["data"].as_array().unwrap().len(), 2);
        assert!(!body.to_string().contains(&code));
        assert_eq!(body["data"][0]["usd"], 1.5);
        let (status, body) = api.post("/api/codes/disable", json!({ "name": "api" })).await;
        assert_eq!((status, body["disabled"].as_i64()), (200, Some(2)));
        let (status, _) = api.post("/api/codes", json!({ "usd": "-1" })).await;
        assert_eq!(status, 400);
    }
}
