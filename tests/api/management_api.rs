//! The `/api` management API: admin-token authentication, the same operations as the CLI,
//! errors that name the field, and secrets that never come back.

use serde_json::{Value, json};

use crate::helpers::{Api, CLI, FakeUpstream, TestApp, admin_token, chat_body, db_test};
use tollgate::service::users::CreateUser;

db_test! {
    /// An admin sets up a user, a channel, a price and a key over the API; the key works at
    /// once and the logs and balances come back through the API.
    async fn admin_sets_up_and_reads_back(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let upstream = FakeUpstream::chat().await;
        let api = Api { token: admin_token(&app, "root", "root").await, app: &app };

        let (status, user) = api.post("/api/users", json!({"username": "alice", "quota_usd": 5})).await;
        assert_eq!(status, 201, "{user}");
        assert_eq!(user["quota"], 2_500_000);
        let (status, channel) = api.post("/api/channels", json!({
            "name": "main", "type": "openai", "base_url": upstream.base_url(),
            "keys": ["sk-upstream-secret-1234"], "models": ["gpt-4o-mini"], "groups": "default",
            "priority": 0, "weight": 1, "model_mapping": {"gpt-4o": "gpt-4o-mini"}
        })).await;
        assert_eq!(status, 201, "{channel}");
        assert_eq!(channel["keys"][0], "sk-****1234");
        assert_eq!(channel["models"], json!(["gpt-4o-mini", "gpt-4o"]));
        let (status, price) = api.put("/api/prices/gpt-4o-mini", json!({"input": "0.15", "output": 0.6})).await;
        assert_eq!(status, 200, "{price}");
        assert_eq!(price["input_usd_per_mtok"], 0.15);
        let (status, created) = api.post("/api/users/alice/tokens", json!({"name": "laptop", "quota_usd": "1"})).await;
        assert_eq!(status, 201, "{created}");
        let key = created["key"].as_str().unwrap().to_string();

        assert_eq!(app.chat(&key, chat_body("gpt-4o-mini")).await.status(), 200, "changes are live at once");
        app.flush().await;

        let (_, logs) = api.get("/api/logs?user=alice").await;
        assert_eq!(logs["data"][0]["cost"], 3);
        assert_eq!(logs["totals"]["requests"], 1);
        assert_eq!(logs["totals"]["cost"], 3);
        let (_, user) = api.get("/api/users/alice").await;
        assert_eq!(user["quota"], 2_500_000 - 3);
        assert_eq!(user["used_quota"], 3);
        let (_, tokens) = api.get("/api/users/alice/tokens").await;
        let listed = tokens["data"][0].to_string();
        assert!(!listed.contains(&key), "the key is shown only at creation");
        let (_, channels) = api.get("/api/channels").await;
        assert!(!channels.to_string().contains("sk-upstream-secret-1234"));

        let (status, user) = api.post("/api/users/alice/quota", json!({"usd": "-0.5", "reason": "a refund by hand"})).await;
        assert_eq!(status, 200, "{user}");
        assert_eq!(user["quota"], 2_500_000 - 3 - 250_000);
        let token_id = created["id"].as_i64().unwrap();
        let (status, token) = api.patch(&format!("/api/tokens/{token_id}"), json!({"status": "disabled"})).await;
        assert_eq!((status, token["status"].as_str()), (200, Some("disabled")));
        assert_eq!(app.chat(&key, chat_body("gpt-4o-mini")).await.status(), 401);
        let (status, _) = api.delete(&format!("/api/tokens/{token_id}")).await;
        assert_eq!(status, 204);

        let (status, group) = api.post("/api/groups", json!({"name": "vip", "ratio": 1.5})).await;
        assert_eq!((status, group["ratio"].as_f64()), (201, Some(1.5)));
        let (status, _) = api.patch("/api/users/alice", json!({"group": "vip"})).await;
        assert_eq!(status, 200);
        let (status, error) = api.delete("/api/groups/vip").await;
        assert_eq!(status, 409, "{error}");
        let (status, option) = api.put("/api/options/retry_count", json!({"value": 4})).await;
        assert_eq!((status, option["value"].as_str()), (200, Some("4")));
        let (_, options) = api.get("/api/options").await;
        assert!(options["data"].as_array().unwrap().iter().any(|o| o["name"] == "retry_count" && o["value"] == "4"));
        let (status, _) = api.delete("/api/channels/main").await;
        assert_eq!(status, 204);
    }
}

db_test! {
    /// Without a valid admin token nothing is served; admins cannot touch admin or root
    /// accounts; bad input names the field.
    async fn guards_and_validation(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let root = Api { token: admin_token(&app, "root", "root").await, app: &app };
        let admin = Api { token: admin_token(&app, "admin", "admin").await, app: &app };

        let response = app.client.get(app.url("/api/users")).send().await.unwrap();
        assert_eq!(response.status(), 401);
        let body: Value = response.json().await.unwrap();
        assert!(body["error"]["message"].as_str().unwrap().contains("admin-token"));
        let nobody = Api { token: "tga-not-a-token".into(), app: &app };
        assert_eq!(nobody.get("/api/users").await.0, 401);
        // A user's API key is not an admin token.
        app.create_user("alice", "1").await;
        let api_key = app.key_for("alice").await;
        let as_user = Api { token: api_key, app: &app };
        assert_eq!(as_user.get("/api/users").await.0, 401);
        // A demoted admin's token stops working.
        tollgate::service::users::create(app.ctx(), &CLI, CreateUser { username: "former".into(), role: Some("admin".into()), ..Default::default() }).await.unwrap();
        let former = Api { token: tollgate::service::admin_tokens::create(app.ctx(), &CLI, "former", "t").await.unwrap().1, app: &app };
        assert_eq!(former.get("/api/users").await.0, 200);
        root.patch("/api/users/former", json!({"role": "user"})).await;
        assert_eq!(former.get("/api/users").await.0, 401);

        let (status, error) = admin.post("/api/users", json!({"username": "boss", "role": "root"})).await;
        assert_eq!(status, 403, "{error}");
        let (status, _) = admin.patch("/api/users/root", json!({"status": "disabled"})).await;
        assert_eq!(status, 403);
        let (status, _) = root.post("/api/users", json!({"username": "boss", "role": "admin"})).await;
        assert_eq!(status, 201);

        let (status, error) = admin.post("/api/users", json!({"username": "bad name"})).await;
        assert_eq!(status, 400);
        assert_eq!(error["error"]["field"], "username");
        let (status, error) = admin.post("/api/users", json!({"username": "x", "quota": 5})).await;
        assert_eq!(status, 400, "unknown fields are refused: {error}");
        assert!(error["error"]["message"].as_str().unwrap().contains("quota"));
        let (status, _) = admin.post("/api/users", json!({"username": "alice"})).await;
        assert_eq!(status, 409);
        let (status, error) = admin.put("/api/prices/m", json!({"input": "-1", "output": "1"})).await;
        assert_eq!((status, error["error"]["field"].as_str()), (400, Some("input")));
        let (status, error) = admin.put("/api/options/retry_statuses", json!({"value": "700"})).await;
        assert_eq!(status, 400, "{error}");
        let (status, _) = admin.get("/api/users/nobody").await;
        assert_eq!(status, 404);
        let (status, error) = admin.get("/api/nothing-here").await;
        assert_eq!((status, error["error"]["code"].as_str()), (404, Some("not_found")));
        let response = app
            .client
            .post(app.url("/api/users"))
            .bearer_auth(&admin.token)
            .body("{not json")
            .header("content-type", "application/json")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400);
    }
}

db_test! {
    /// Channel tools: a test call sends one minimal real request with the channel's key (for
    /// each channel type), records latency and outcome on the channel, and says why it failed;
    /// fetching models lists the upstream's own. Over the API and from the CLI.
    async fn channel_test_and_model_listing(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let api = Api { token: admin_token(&app, "root", "root").await, app: &app };
        let openai = FakeUpstream::chat().await;
        let anthropic = FakeUpstream::start(crate::helpers::Reply::Json(200, json!({
            "id": "msg_1", "type": "message", "role": "assistant", "content": [],
            "stop_reason": "max_tokens", "usage": {"input_tokens": 8, "output_tokens": 1}}))).await;
        let (status, body) = api.post("/api/channels", json!({
            "name": "main", "type": "openai", "base_url": openai.base_url(), "key": "sk-up-1",
            "models": ["gpt-4o", "o4-mini"], "model_mapping": {"gpt-4o": "gpt-4o-2024-08-06"}})).await;
        assert_eq!(status, 201, "{body}");
        let (status, _) = api.post("/api/channels", json!({
            "name": "claude", "type": "anthropic", "base_url": anthropic.origin(), "key": "sk-ant-1",
            "models": "claude-haiku-4-5"})).await;
        assert_eq!(status, 201);

        let (status, outcome) = api.post("/api/channels/main/test", json!({})).await;
        assert_eq!(status, 200, "{outcome}");
        assert_eq!(outcome["ok"], true);
        assert_eq!(outcome["model"], "gpt-4o-2024-08-06", "the mapping applies");
        let sent = openai.requests().pop().unwrap();
        assert_eq!(sent.path, "/v1/chat/completions");
        assert_eq!(sent.headers["authorization"], "Bearer sk-up-1");
        assert_eq!(sent.json()["max_tokens"], 1);
        let (_, outcome) = api.post("/api/channels/main/test", json!({"model": "o4-mini"})).await;
        assert_eq!(outcome["ok"], true);
        let sent = openai.requests().pop().unwrap().json();
        assert_eq!(sent["max_completion_tokens"], 1, "reasoning models take max_completion_tokens: {sent}");

        let (_, outcome) = api.post("/api/channels/claude/test", json!({})).await;
        assert_eq!(outcome["ok"], true, "{outcome}");
        let sent = anthropic.requests().pop().unwrap();
        assert_eq!(sent.path, "/v1/messages");
        assert_eq!(sent.headers["x-api-key"], "sk-ant-1");
        assert_eq!(sent.json()["max_tokens"], 1);

        openai.queue(crate::helpers::Reply::error(401, "Incorrect API key provided"));
        let (status, outcome) = api.post("/api/channels/main/test", json!({})).await;
        assert_eq!(status, 200);
        assert_eq!(outcome["ok"], false);
        assert_eq!(outcome["status"], 401);
        assert!(outcome["message"].as_str().unwrap().contains("Incorrect API key"), "{outcome}");
        let (_, channel) = api.get("/api/channels/main").await;
        assert!(channel["last_test"]["result"].as_str().unwrap().contains("HTTP 401"), "{channel}");
        assert!(channel["last_test"]["latency_ms"].as_i64().unwrap() >= 0);

        let (status, models) = api.get("/api/channels/main/models").await;
        assert_eq!(status, 200, "{models}");
        assert_eq!(models["data"], json!(["fake-model"]));
        openai.set_models_status(403);
        let (status, error) = api.get("/api/channels/main/models").await;
        assert_eq!(status, 502, "{error}");
        assert!(error["error"]["message"].as_str().unwrap().contains("403"), "{error}");
        let (status, _) = api.post("/api/channels/nope/test", json!({})).await;
        assert_eq!(status, 404);

        // The CLI calls the fake upstreams, which run on this test's runtime: off the runtime.
        let cli = |args: &'static [&'static str]| {
            let url = app.db_url.clone();
            async move {
                tokio::task::spawn_blocking(move || crate::shutdown::tollgate(&url, args))
                    .await
                    .unwrap()
            }
        };
        let out = cli(&["channel", "test", "claude"]).await.unwrap();
        assert!(out.starts_with("PASS claude (claude-haiku-4-5)"), "{out}");
        openai.queue(crate::helpers::Reply::error(500, "boom"));
        let failed = cli(&["channel", "test", "main"]).await;
        assert!(failed.is_err(), "a failed test exits non-zero");
        let out = cli(&["channel", "models", "claude", "--json"]).await.unwrap();
        assert_eq!(serde_json::from_str::<Value>(&out).unwrap(), json!(["fake-model"]));
    }
}

db_test! {
    /// Errors are typed: a stable message key as the code, every wrong field at once (spelled
    /// as in JSON, each with its own code and message), and a collision named by the field
    /// that collided.
    async fn errors_name_every_field_with_a_stable_code(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let api = Api { token: admin_token(&app, "root", "root").await, app: &app };
        let (status, error) = api
            .post("/api/users", json!({"username": "bad name", "email": "nope", "quota_usd": "lots", "password": "short"}))
            .await;
        assert_eq!(status, 400, "{error}");
        let fields: Vec<(&str, &str)> = error["error"]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| (f["field"].as_str().unwrap(), f["code"].as_str().unwrap()))
            .collect();
        assert_eq!(
            fields,
            [
                ("username", "name-bad-character"),
                ("email", "email-invalid"),
                ("quota_usd", "decimal-not-a-number"),
                ("password", "password-too-short"),
            ]
        );
        assert_eq!(error["error"]["field"], "username");
        assert_eq!(error["error"]["code"], "name-bad-character");
        assert!(error["error"]["fields"][2]["message"].as_str().unwrap().contains("'lots' is not a number"));

        let (status, error) = api.post("/api/channels", json!({"groups": "default"})).await;
        assert_eq!(status, 400, "{error}");
        let missing: Vec<&str> = error["error"]["fields"].as_array().unwrap().iter()
            .map(|f| f["field"].as_str().unwrap()).collect();
        assert_eq!(missing, ["name", "type", "base_url", "keys", "models"]);
        assert!(error["error"]["fields"].as_array().unwrap().iter().all(|f| f["code"] == "field-required"));

        assert_eq!(api.post("/api/users", json!({"username": "alice", "email": "a@example.com"})).await.0, 201);
        let (status, error) = api.post("/api/users", json!({"username": "alice"})).await;
        assert_eq!((status, error["error"]["field"].as_str(), error["error"]["code"].as_str()), (409, Some("username"), Some("user-exists")), "{error}");
        let (status, error) = api.post("/api/users", json!({"username": "alice2", "email": "a@example.com"})).await;
        assert_eq!((status, error["error"]["field"].as_str(), error["error"]["code"].as_str()), (409, Some("email"), Some("email-taken")), "{error}");
        let (status, error) = api.get("/api/users/nobody").await;
        assert_eq!((status, error["error"]["code"].as_str()), (404, Some("user-not-found")));
        assert_eq!(error["error"]["message"], "There is no user named 'nobody'.");
        let (status, error) = api.put("/api/prices/m", json!({"input": "1", "output": "1", "cached_input": "x"})).await;
        assert_eq!((status, error["error"]["field"].as_str()), (400, Some("cached_input")), "{error}");
    }
}
