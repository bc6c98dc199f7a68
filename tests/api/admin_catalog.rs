//! The console's groups, prices, aliases and settings over real HTTP: who sees what, tables
//! edited in place, models requested without a price first, price imports previewed before
//! they apply, settings with write-only secrets, the typed confirmation of money features,
//! the test email, the Stripe key check and sign-in providers — each against `/api` too.

use serde_json::{Value, json};
use tollgate::records::audit::{AuditFilter, AuditRow};
use tollgate::service;

use crate::helpers::stripe::FakeStripe;
use crate::helpers::{
    Api, Browser, CLI, FakeUpstream, MailSink, TestApp, admin_token, chat_body, db_test,
};

const PASSWORD: &str = "correct horse battery";

async fn signed_in<'a>(app: &'a TestApp, username: &str) -> Browser<'a> {
    let browser = Browser::new(app);
    let answer = browser.sign_in(username, PASSWORD).await;
    assert_eq!(answer.status, 303, "{username} signs in: {}", answer.body);
    browser
}

/// The audit rows of `action`, newest first.
async fn audited(app: &TestApp, action: &str) -> Vec<AuditRow> {
    service::audit::list(
        app.ctx(),
        &CLI,
        &AuditFilter {
            action: Some(action.into()),
            limit: 100,
            ..Default::default()
        },
    )
    .await
    .unwrap()
}

async fn option(app: &TestApp, name: &str) -> String {
    service::options::stored(app.ctx())
        .await
        .unwrap()
        .stored_value(name)
        .unwrap()
}

/// A LiteLLM table: a chat model, an embedding model, and entries Tollgate leaves out.
fn litellm_table() -> Value {
    json!({
        "sample_spec": {"mode": "chat", "input_cost_per_token": 0},
        "imported-chat": {
            "mode": "chat", "max_input_tokens": 128000,
            "input_cost_per_token": 2.5e-06, "output_cost_per_token": 1e-05,
            "cache_read_input_token_cost": 1.25e-06
        },
        "imported-embed": {"mode": "embedding", "input_cost_per_token": 2e-08},
        "imported-image": {"mode": "image_generation", "output_cost_per_image": 0.04},
        "imported-free": {"mode": "chat"}
    })
}

db_test! {
    /// A person who is not an administrator gets the portal's not-found page on every page;
    /// administrators get them, but not the root-only parts of the settings, which root gets.
    async fn pages_by_role(db: TestDb) {
        let app = TestApp::spawn(db).await;
        app.create_account("alice", "user", PASSWORD).await;
        app.create_account("ada", "admin", PASSWORD).await;
        app.create_account("ruth", "root", PASSWORD).await;
        let pages = ["/admin/groups", "/admin/prices", "/admin/aliases", "/admin/settings"];

        let alice = signed_in(&app, "alice").await;
        for path in pages {
            let refused = alice.get(path).await;
            assert_eq!(refused.status, 404, "{path}: {}", refused.body);
            assert!(!refused.contains("console-nav"), "{path}");
        }
        let refused = alice.post("/admin/groups", &[("name", "sneaky"), ("ratio", "0")]).await;
        assert_eq!(refused.status, 404);
        assert!(service::groups::get(app.ctx(), &CLI, "sneaky").await.is_err());

        let ada = signed_in(&app, "ada").await;
        for path in pages {
            let shown = ada.get(path).await;
            assert_eq!(shown.status, 200, "{path}: {}", shown.body);
            assert!(shown.contains("console-nav"), "{path}");
        }
        let settings = ada.get("/admin/settings").await;
        assert!(settings.contains("name=\"retry_count\""));
        assert!(settings.contains("name=\"new_user_quota_usd\""));
        assert!(settings.contains("name=\"topup_min_usd\""));
        for root_only in ["smtp_host", "smtp_password", "stripe_secret_key", "public_url", "client_secret"] {
            assert!(!settings.contains(&format!("name=\"{root_only}\"")), "{root_only} is root's");
        }
        assert!(!settings.contains("id=\"providers\""));

        let ruth = signed_in(&app, "ruth").await;
        let settings = ruth.get("/admin/settings").await;
        for name in ["smtp_host", "smtp_password", "stripe_secret_key", "public_url", "client_secret"] {
            assert!(settings.contains(&format!("name=\"{name}\"")), "root sees {name}");
        }
        assert!(settings.contains("id=\"providers\""));
        assert!(settings.contains("/admin/settings/mail/test"));
        assert!(settings.contains("/admin/settings/stripe/check"));
    }
}

db_test! {
    /// Groups, prices and aliases change in place; a refused change comes back with the field
    /// marked and what was typed kept, and the API refuses the same; each change is audited.
    async fn tables_edit_in_place(db: TestDb) {
        let app = TestApp::spawn(db).await;
        app.create_account("ada", "admin", PASSWORD).await;
        let ada = signed_in(&app, "ada").await;
        let api = Api { app: &app, token: admin_token(&app, "ops", "admin").await };

        // Groups.
        ada.get("/admin/groups").await;
        let made = ada.post("/admin/groups", &[("name", "gold"), ("ratio", "1.5"), ("description", "Paying"), ("user_selectable", "false")]).await;
        assert_eq!(made.status, 303, "{}", made.body);
        let listed = ada.get("/admin/groups").await;
        assert!(listed.contains("Group gold created."), "{}", listed.body);
        assert!(listed.contains("form=\"group-"), "rows are edited in place");
        let refused = ada.post("/admin/groups/gold", &[("ratio", "lots"), ("description", "Paying"), ("user_selectable", "false"), ("user_selectable", "true")]).await;
        assert_eq!(refused.status, 422, "{}", refused.body);
        assert!(refused.field_error("ratio").is_some(), "{}", refused.body);
        assert_eq!(refused.input("ratio").as_deref(), Some("lots"));
        assert!(refused.contains("id=\"errors\""));
        let (status, body) = api.patch("/api/groups/gold", json!({"ratio": "lots"})).await;
        assert_eq!(status, 400, "{body}");
        let saved = ada.post("/admin/groups/gold", &[("ratio", "0.8"), ("description", "Paying"), ("user_selectable", "false"), ("user_selectable", "true")]).await;
        assert_eq!(saved.status, 303, "{}", saved.body);
        let gold = service::groups::get(app.ctx(), &CLI, "gold").await.unwrap();
        assert_eq!(gold.ratio.to_string(), "0.8");
        assert!(gold.user_selectable);
        let update = &audited(&app, "group.update").await[0];
        assert_eq!(update.target, "group:gold");
        assert_eq!(update.actor, "ada");
        let refused = ada.post("/admin/groups", &[("name", "gold"), ("ratio", "1")]).await;
        assert_eq!(refused.status, 409, "a taken name: {}", refused.body);
        assert!(refused.field_error("name").is_some());

        // Prices.
        ada.get("/admin/prices").await;
        let refused = ada.post("/admin/prices", &[("model", "gpt-4o-mini"), ("input", "abc"), ("output", "0.6")]).await;
        assert_eq!(refused.status, 422, "{}", refused.body);
        assert!(refused.field_error("input").is_some(), "{}", refused.body);
        assert_eq!(refused.input("input").as_deref(), Some("abc"));
        assert_eq!(refused.input("model").as_deref(), Some("gpt-4o-mini"));
        let (status, _) = api.put("/api/prices/gpt-4o-mini", json!({"input": "abc", "output": "0.6"})).await;
        assert_eq!(status, 400);
        let set = ada.post("/admin/prices", &[("model", "gpt-4o-mini"), ("input", "0.15"), ("output", "0.6"), ("cached_input", ""), ("cache_write", ""), ("per_request", ""), ("context_tokens", "")]).await;
        assert_eq!(set.status, 303, "{}", set.body);
        let listed = ada.get("/admin/prices").await;
        assert!(listed.contains("form=\"price-gpt-4o-mini\""), "{}", listed.body);
        assert!(listed.contains("value=\"0.15\""));
        // The row's own fields, edited in place.
        let set = ada.post("/admin/prices", &[("model", "gpt-4o-mini"), ("input", "0.2"), ("output", "0.8"), ("cached_input", "0.1"), ("cache_write", ""), ("per_request", ""), ("context_tokens", "128000")]).await;
        assert_eq!(set.status, 303, "{}", set.body);
        let (_, price) = api.get("/api/prices/gpt-4o-mini").await;
        assert_eq!(price["input_usd_per_mtok"], 0.2);
        assert_eq!(price["cached_input_usd_per_mtok"], 0.1);
        assert_eq!(price["context_tokens"], 128000);
        let priced = audited(&app, "price.set").await;
        assert_eq!(priced.len(), 2);
        assert_eq!(priced[0].target, "price:gpt-4o-mini");

        // Aliases.
        ada.get("/admin/aliases").await;
        let refused = ada.post("/admin/aliases", &[("name", "fast"), ("to", "fast")]).await;
        assert_eq!(refused.status, 422, "{}", refused.body);
        assert!(refused.field_error("to").is_some());
        assert_eq!(refused.input("name").as_deref(), Some("fast"));
        let (status, _) = api.post("/api/model-aliases", json!({"name": "fast", "to": "fast"})).await;
        assert_eq!(status, 400);
        let added = ada.post("/admin/aliases", &[("name", "fast"), ("to", "gpt-4o-mini")]).await;
        assert_eq!(added.status, 303, "{}", added.body);
        let listed = ada.get("/admin/aliases").await;
        assert!(listed.contains("fast now stands for gpt-4o-mini."), "{}", listed.body);
        let again = ada.post("/admin/aliases", &[("name", "fast"), ("to", "gpt-4o")]).await;
        assert_eq!(again.status, 409, "{}", again.body);
        // A row points elsewhere in place.
        let moved = ada.post("/admin/aliases", &[("name", "fast"), ("replace", "true"), ("to", "gpt-4o")]).await;
        assert_eq!(moved.status, 303, "{}", moved.body);
        let (_, aliases) = api.get("/api/model-aliases").await;
        assert_eq!(aliases["data"][0]["to"], "gpt-4o");
        assert_eq!(audited(&app, "alias.create").await[0].target, "alias:fast");
        let update = &audited(&app, "alias.update").await[0];
        assert_eq!(update.before, Some(json!({"target": "gpt-4o-mini"})));
        let removed = ada.post("/admin/aliases/delete", &[("name", "fast")]).await;
        assert_eq!(removed.status, 303);
        assert!(service::model_aliases::list(app.ctx(), &CLI).await.unwrap().is_empty());
    }
}

db_test! {
    /// A model requests named that has no price is listed first, with fields to price it;
    /// priced, it leaves the list.
    async fn unpriced_models_come_first(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let upstream = FakeUpstream::chat().await;
        app.add_channel("main", &upstream, "mystery-model,gpt-4o-mini").await;
        app.price("gpt-4o-mini", "0.15", "0.6").await;
        app.create_user("bob", "5").await;
        let key = app.key_for("bob").await;
        app.reload().await;
        let refused = app.chat(&key, chat_body("mystery-model")).await;
        assert_eq!(refused.status().as_u16(), 403, "an unpriced model is refused");
        assert_eq!(app.chat(&key, chat_body("gpt-4o-mini")).await.status().as_u16(), 200);
        app.wait_for_logs(2).await;

        app.create_account("ada", "admin", PASSWORD).await;
        let ada = signed_in(&app, "ada").await;
        let page = ada.get("/admin/prices").await;
        let unpriced = page.body.find("class=\"unpriced\"").expect("an unpriced section");
        let mystery = page.body.find("<code>mystery-model</code>").expect("the model is listed");
        let form = page.body.find("id=\"price-form-title\"").unwrap();
        assert!(unpriced < mystery && mystery < form, "listed first");
        assert!(!page.body[unpriced..form].contains("gpt-4o-mini"), "priced models are not");

        let priced = ada.post("/admin/prices", &[("model", "mystery-model"), ("input", "1"), ("output", "2")]).await;
        assert_eq!(priced.status, 303, "{}", priced.body);
        let page = ada.get("/admin/prices").await;
        assert!(!page.contains("class=\"unpriced\""), "{}", page.body);
        assert!(page.contains("form=\"price-mystery-model\""));
    }
}

db_test! {
    /// An import is previewed (nothing changes) and then applied, from a LiteLLM table and a
    /// One API ratio table, through the page and through the API.
    async fn price_import_previews_then_applies(db: TestDb) {
        let app = TestApp::spawn(db).await;
        app.price("imported-chat", "9", "9").await;
        let api = Api { app: &app, token: admin_token(&app, "ops", "admin").await };

        let (status, preview) = api.post("/api/prices/import", json!({"format": "litellm", "data": litellm_table(), "dry_run": true})).await;
        assert_eq!(status, 200, "{preview}");
        assert_eq!(preview["dry_run"], true);
        assert_eq!(preview["changes"], 2);
        let chat = preview["models"].as_array().unwrap().iter().find(|m| m["model"] == "imported-chat").unwrap();
        assert_eq!(chat["change"], "changed");
        assert_eq!(chat["before"]["input_usd_per_mtok"], 9.0);
        assert_eq!(chat["after"]["input_usd_per_mtok"], 2.5);
        assert_eq!(chat["after"]["output_usd_per_mtok"], 10.0);
        assert_eq!(chat["after"]["cached_input_usd_per_mtok"], 1.25);
        assert_eq!(chat["after"]["context_tokens"], 128000);
        let skipped = &preview["skipped"];
        assert!(skipped.as_array().unwrap().iter().any(|s| s["model"] == "imported-image" && s["reason"] == "mode" && s["detail"] == "image_generation"), "{skipped}");
        assert!(skipped.as_array().unwrap().iter().any(|s| s["model"] == "imported-free" && s["reason"] == "no_price"), "{skipped}");
        let (_, price) = api.get("/api/prices/imported-chat").await;
        assert_eq!(price["input_usd_per_mtok"], 9.0, "a dry run changes nothing");
        assert_eq!(api.get("/api/prices/imported-embed").await.0, 404);
        let audited_before = audited(&app, "price.set").await.len();
        assert_eq!(audited_before, 1, "the seeded price alone");

        let (status, applied) = api.post("/api/prices/import", json!({"format": "litellm", "data": litellm_table().to_string()})).await;
        assert_eq!(status, 200, "{applied}");
        assert_eq!(applied["dry_run"], false);
        let (_, price) = api.get("/api/prices/imported-chat").await;
        assert_eq!(price["input_usd_per_mtok"], 2.5);
        let (_, price) = api.get("/api/prices/imported-embed").await;
        assert_eq!(price["input_usd_per_mtok"], 0.02);
        assert_eq!(price["output_usd_per_mtok"], 0.0);
        assert_eq!(audited(&app, "price.set").await.len(), audited_before + 2);
        let (status, body) = api.post("/api/prices/import", json!({"format": "csv", "data": {}})).await;
        assert_eq!(status, 400, "{body}");

        // The page: a One API table.
        app.create_account("ada", "admin", PASSWORD).await;
        let ada = signed_in(&app, "ada").await;
        ada.get("/admin/prices").await;
        let table = json!({"model_ratio": {"ratio-model": 0.25}, "completion_ratio": {"ratio-model": 4}}).to_string();
        let refused = ada.post("/admin/prices/import", &[("format", "oneapi"), ("data", "{not json"), ("dry_run", "true")]).await;
        assert_eq!(refused.status, 422, "{}", refused.body);
        assert!(refused.field_error("data").is_some(), "{}", refused.body);
        let preview = ada.post("/admin/prices/import", &[("format", "oneapi"), ("data", &table), ("dry_run", "true")]).await;
        assert_eq!(preview.status, 200, "{}", preview.body);
        assert!(preview.contains("1 price would change"), "{}", preview.body);
        assert!(preview.contains("$0.5 in / $2 out per 1M tokens"), "{}", preview.body);
        assert!(preview.contains("name=\"dry_run\" value=\"false\""));
        assert_eq!(api.get("/api/prices/ratio-model").await.0, 404, "a preview stores nothing");
        let applied = ada.post("/admin/prices/import", &[("format", "oneapi"), ("data", &table), ("dry_run", "false")]).await;
        assert_eq!(applied.status, 303, "{}", applied.body);
        let (_, price) = api.get("/api/prices/ratio-model").await;
        assert_eq!(price["input_usd_per_mtok"], 0.5);
        assert_eq!(price["output_usd_per_mtok"], 2.0);
        assert!(ada.get("/admin/prices").await.contains("1 price imported."));

        // And LiteLLM through the page: what is left out is said in the preview.
        let preview = ada.post("/admin/prices/import", &[("format", "litellm"), ("data", &litellm_table().to_string()), ("dry_run", "true")]).await;
        assert_eq!(preview.status, 200);
        assert!(preview.contains("not priced per token (mode image_generation)"), "{}", preview.body);
        assert!(preview.contains("0 prices would change"), "already applied: {}", preview.body);

        // A table the size of LiteLLM's whole file goes through the page and the API.
        let mut big = serde_json::Map::new();
        for n in 0..6000 {
            big.insert(format!("bulk-model-{n:05}"), json!({
                "mode": "chat", "max_input_tokens": 128000, "max_output_tokens": 16384,
                "input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06,
                "litellm_provider": "openai", "supports_function_calling": true
            }));
        }
        let big = Value::Object(big).to_string();
        assert!(big.len() > 1_000_000, "{}", big.len());
        let preview = ada.post("/admin/prices/import", &[("format", "litellm"), ("data", &big), ("dry_run", "true")]).await;
        assert_eq!(preview.status, 200, "{}", &preview.body[..preview.body.len().min(500)]);
        assert!(preview.contains("6000 prices would change"));
        let (status, body) = api.post("/api/prices/import", json!({"format": "litellm", "data": big, "dry_run": true})).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["changes"], 6000);
    }
}

db_test! {
    /// An administrator sets the options left to them, and gets 403 on root's; secrets are
    /// never shown back, an empty field keeps one and its box clears it; a refused value comes
    /// back marked.
    async fn settings_by_role_with_secrets_write_only(db: TestDb) {
        let app = TestApp::spawn(db).await;
        app.create_account("ada", "admin", PASSWORD).await;
        app.create_account("ruth", "root", PASSWORD).await;
        let ada = signed_in(&app, "ada").await;
        ada.get("/admin/settings").await;
        let saved = ada.post("/admin/settings", &[("section", "routing"), ("retry_count", "5"), ("retry_statuses", "429,500-599")]).await;
        assert_eq!(saved.status, 303, "{}", saved.body);
        assert_eq!(option(&app, "retry_count").await, "5");
        assert!(ada.get("/admin/settings").await.contains("Saved: retry_count, retry_statuses."));
        let refused = ada.post("/admin/settings", &[("section", "routing"), ("retry_count", "lots")]).await;
        assert_eq!(refused.status, 422, "{}", refused.body);
        assert!(refused.field_error("retry_count").is_some(), "{}", refused.body);
        assert_eq!(refused.input("retry_count").as_deref(), Some("lots"));
        for (name, value) in [("smtp_host", "smtp.evil.example"), ("stripe_api_base", "https://evil.example"), ("public_url", "https://evil.example")] {
            let refused = ada.post("/admin/settings", &[(name, value)]).await;
            assert_eq!(refused.status, 403, "{name}: {}", refused.body);
        }
        let refused = ada.post("/admin/settings/providers", &[("type", "github"), ("name", "gh"), ("client_id", "id"), ("client_secret", "s")]).await;
        assert_eq!(refused.status, 403);
        assert_eq!(ada.post("/admin/settings/mail/test", &[("to", "a@example.com")]).await.status, 403);
        assert_eq!(ada.post("/admin/settings/stripe/check", &[]).await.status, 403);
        assert_eq!(option(&app, "smtp_host").await, "");

        let ruth = signed_in(&app, "ruth").await;
        ruth.get("/admin/settings").await;
        let secret = "hunter2-smtp-secret";
        let saved = ruth.post("/admin/settings", &[("section", "mail"), ("smtp_host", "mail.example.com"), ("smtp_password", secret)]).await;
        assert_eq!(saved.status, 303, "{}", saved.body);
        assert_eq!(option(&app, "smtp_password").await, secret);
        let page = ruth.get("/admin/settings").await;
        assert!(!page.contains(secret), "a secret is never shown");
        assert!(page.contains("set (not shown)"));
        let (_, listed) = Api { app: &app, token: admin_token(&app, "rooty", "root").await }.get("/api/options").await;
        assert!(!listed.to_string().contains(secret));
        // Sent empty, it stays; the box removes it.
        let kept = ruth.post("/admin/settings", &[("section", "mail"), ("smtp_host", "mail.example.com"), ("smtp_password", ""), ("clear_smtp_password", "false")]).await;
        assert_eq!(kept.status, 303);
        assert_eq!(option(&app, "smtp_password").await, secret);
        let cleared = ruth.post("/admin/settings", &[("section", "mail"), ("smtp_password", ""), ("clear_smtp_password", "false"), ("clear_smtp_password", "true")]).await;
        assert_eq!(cleared.status, 303);
        assert_eq!(option(&app, "smtp_password").await, "");

        let rows = audited(&app, "option.set").await;
        let secret_rows: Vec<&AuditRow> = rows.iter().filter(|r| r.target == "option:smtp_password").collect();
        assert_eq!(secret_rows.len(), 2, "set and cleared");
        assert_eq!(secret_rows[1].after, Some(json!({"value": "changed"})));
        assert!(!serde_json::to_string(&rows.iter().map(|r| (&r.before, &r.after)).collect::<Vec<_>>()).unwrap().contains(secret));
        assert!(rows.iter().any(|r| r.target == "option:retry_count" && r.actor == "ada"));
    }
}

db_test! {
    /// Switching on a feature that moves money needs the typed confirmation, on the page and
    /// in the API; a feature already on changes without it.
    async fn money_features_need_a_typed_confirmation(db: TestDb) {
        let app = TestApp::spawn(db).await;
        app.create_account("ada", "admin", PASSWORD).await;
        let ada = signed_in(&app, "ada").await;
        ada.get("/admin/settings").await;
        let refused = ada.post("/admin/settings", &[("section", "signup"), ("new_user_quota_usd", "5"), ("confirm", "")]).await;
        assert_eq!(refused.status, 422, "{}", refused.body);
        assert!(refused.field_error("confirm").is_some(), "{}", refused.body);
        assert_eq!(refused.input("new_user_quota_usd").as_deref(), Some("5"), "what was typed is kept");
        assert_eq!(option(&app, "new_user_quota_usd").await, "0");
        let refused = ada.post("/admin/settings", &[("section", "signup"), ("new_user_quota_usd", "5"), ("confirm", "yes please")]).await;
        assert_eq!(refused.status, 422);
        let saved = ada.post("/admin/settings", &[("section", "signup"), ("new_user_quota_usd", "5"), ("confirm", "confirm")]).await;
        assert_eq!(saved.status, 303, "{}", saved.body);
        assert_eq!(option(&app, "new_user_quota_usd").await, "5");
        let raised = ada.post("/admin/settings", &[("section", "signup"), ("new_user_quota_usd", "6")]).await;
        assert_eq!(raised.status, 303, "already on: {}", raised.body);

        let api = Api { app: &app, token: admin_token(&app, "ops", "admin").await };
        let (status, body) = api.put("/api/options/invite_reward_inviter_usd", json!({"value": "1"})).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"]["fields"][0]["field"], "confirm", "{body}");
        assert_eq!(option(&app, "invite_reward_inviter_usd").await, "0");
        let (status, body) = api.put("/api/options/invite_reward_inviter_usd", json!({"value": "1", "confirm": true})).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(option(&app, "invite_reward_inviter_usd").await, "1");

        // Payments: both Stripe keys set.
        let root = Api { app: &app, token: admin_token(&app, "rooty", "root").await };
        let (status, _) = root.put("/api/options/stripe_secret_key", json!({"value": "sk_test_x"})).await;
        assert_eq!(status, 200, "one key alone switches nothing on");
        let (status, _) = root.put("/api/options/stripe_webhook_secret", json!({"value": "whsec_x"})).await;
        assert_eq!(status, 400);
        let (status, _) = root.put("/api/options/stripe_webhook_secret", json!({"value": "whsec_x", "confirm": true})).await;
        assert_eq!(status, 200);
    }
}

db_test! {
    /// Root sends a test email through the mail settings and checks the Stripe key; the page
    /// and the API say the same.
    async fn test_email_and_stripe_check(db: TestDb) {
        let app = TestApp::spawn(db).await;
        app.create_account("ruth", "root", PASSWORD).await;
        let ruth = signed_in(&app, "ruth").await;
        let api = Api { app: &app, token: admin_token(&app, "rooty", "root").await };
        let admin = Api { app: &app, token: admin_token(&app, "ops", "admin").await };

        let stripe = FakeStripe::start().await;
        let page = ruth.get("/admin/settings").await;
        assert!(!page.contains("sk_test_"), "no key shown");
        app.set_option("stripe_api_base", &stripe.base).await;
        ruth.get("/admin/settings").await;
        let refused = ruth.post("/admin/settings/stripe/check", &[]).await;
        assert_eq!(refused.status, 422, "no key yet: {}", refused.body);
        assert!(refused.contains("No Stripe secret key is set."));
        app.set_option("stripe_secret_key", "sk_test_wrong").await;
        let refused = ruth.post("/admin/settings/stripe/check", &[]).await;
        assert_eq!(refused.status, 502, "{}", refused.body);
        assert!(refused.contains("Invalid API Key provided"), "{}", refused.body);
        let (status, body) = api.post("/api/stripe/check", json!({})).await;
        assert_eq!(status, 502, "{body}");
        stripe.configure(&app).await;
        let ok = ruth.post("/admin/settings/stripe/check", &[]).await;
        assert_eq!(ok.status, 303, "{}", ok.body);
        let page = ruth.get("/admin/settings").await;
        assert!(page.contains("Stripe accepted the key."));
        assert!(!page.contains(crate::helpers::stripe::SECRET_KEY) && !page.contains(crate::helpers::stripe::WEBHOOK_SECRET), "secrets are never shown");
        let (status, body) = api.post("/api/stripe/check", json!({})).await;
        assert_eq!((status, body), (200, json!({"ok": true})));
        assert_eq!(admin.post("/api/stripe/check", json!({})).await.0, 403);
        assert!(stripe.received().iter().all(|r| r.path.starts_with("/v1/checkout/sessions?")), "read-only calls");

        let Some(sink) = MailSink::start().await else { return };
        let refused = ruth.post("/admin/settings/mail/test", &[("to", "ops@example.com")]).await;
        assert_eq!(refused.status, 422, "no mail server yet: {}", refused.body);
        assert!(refused.field_error("to").is_some());
        sink.configure(&app).await;
        let refused = ruth.post("/admin/settings/mail/test", &[("to", "not an address")]).await;
        assert_eq!(refused.status, 422);
        assert_eq!(refused.input("to").as_deref(), Some("not an address"));
        let sent = ruth.post("/admin/settings/mail/test", &[("to", "ops@example.com")]).await;
        assert_eq!(sent.status, 303, "{}", sent.body);
        let mail = sink.next_to("ops@example.com").await;
        assert!(mail.subject.contains("test email"), "{mail:?}");
        let (status, body) = api.post("/api/mail/test", json!({"to": "api@example.com"})).await;
        assert_eq!(status, 200, "{body}");
        sink.next_to("api@example.com").await;
        assert_eq!(admin.post("/api/mail/test", json!({"to": "x@example.com"})).await.0, 403);
    }
}

db_test! {
    /// Root adds a GitHub provider from the settings, is shown the callback URL to register,
    /// never the secret, and removes it; both are audited.
    async fn sign_in_providers(db: TestDb) {
        let app = TestApp::spawn(db).await;
        app.create_account("ruth", "root", PASSWORD).await;
        let ruth = signed_in(&app, "ruth").await;
        ruth.get("/admin/settings").await;
        let refused = ruth.post("/admin/settings/providers", &[("type", "github"), ("name", "gh"), ("client_id", "cid"), ("client_secret", "")]).await;
        assert_eq!(refused.status, 422, "{}", refused.body);
        assert!(refused.field_error("client_secret").is_some());
        assert_eq!(refused.input("client_id").as_deref(), Some("cid"));
        let secret = "github-client-secret-value";
        let added = ruth.post("/admin/settings/providers", &[("type", "github"), ("name", "gh"), ("display_name", "GitHub"), ("client_id", "cid"), ("client_secret", secret)]).await;
        assert_eq!(added.status, 303, "{}", added.body);
        let page = ruth.get("/admin/settings").await;
        let callback = format!("{}/oauth/gh/callback", app.url("").trim_end_matches('/'));
        assert!(page.contains(&callback), "{}", page.body);
        assert!(page.contains("Register this callback URL"));
        assert!(!page.contains(secret));
        let created = &audited(&app, "oauth_provider.create").await[0];
        assert_eq!(created.target, "oauth_provider:gh");
        assert_eq!(created.after.as_ref().unwrap()["client_secret"], "changed");
        let removed = ruth.post("/admin/settings/providers/gh/delete", &[]).await;
        assert_eq!(removed.status, 303);
        assert!(service::oauth::list_providers(app.ctx(), &CLI).await.unwrap().is_empty());
    }
}
