//! A non-root administrator trying to have a write-only secret sent to a host of their own:
//! mail and payment settings, the site's address, sign-in providers, and a channel pointed
//! elsewhere without its keys.

use serde_json::json;

use crate::helpers::{Api, FakeUpstream, TestApp, admin_token, db_test};

db_test! {
    /// Options that hold a secret or decide where one (or a reset link) is sent, and sign-in
    /// providers, are root's alone; an admin keeps every other option.
    async fn secret_bearing_settings_are_roots_alone(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let admin = Api { app: &app, token: admin_token(&app, "ada", "admin").await };
        let root = Api { app: &app, token: admin_token(&app, "rooty", "root").await };
        for (name, value) in [
            ("stripe_api_base", "https://stripe.evil.example"),
            ("stripe_secret_key", "sk_test_mine"),
            ("stripe_webhook_secret", "whsec_mine"),
            ("smtp_host", "smtp.evil.example"),
            ("smtp_port", "2525"),
            ("smtp_username", "me"),
            ("smtp_password", "mine"),
            ("smtp_from", "me@evil.example"),
            ("smtp_security", "none"),
            ("public_url", "https://evil.example"),
        ] {
            let (status, body) = admin.put(&format!("/api/options/{name}"), json!({"value": value})).await;
            assert_eq!(status, 403, "{name}: {body}");
            let (status, body) = admin.delete(&format!("/api/options/{name}")).await;
            assert_eq!(status, 403, "{name} reset: {body}");
            // (The second Stripe key switches payments on: a money feature, confirmed.)
            let (status, body) = root.put(&format!("/api/options/{name}"), json!({"value": value, "confirm": true})).await;
            assert_eq!(status, 200, "root sets {name}: {body}");
        }
        let (status, _) = admin.put("/api/options/retry_count", json!({"value": 3})).await;
        assert_eq!(status, 200, "an admin keeps the other options");

        let provider = json!({
            "type": "github", "name": "gh", "display_name": "GitHub",
            "client_id": "id", "client_secret": "secret",
        });
        let (status, body) = admin.post("/api/oauth-providers", provider).await;
        assert_eq!(status, 403, "{body}");
        let (status, body) = admin.delete("/api/oauth-providers/gh").await;
        assert_eq!(status, 403, "{body}");
    }
}

db_test! {
    /// Moving a channel to another origin or type needs its keys and header values in the
    /// same change; a new path or query (Azure's api-version) does not.
    async fn a_moved_channel_needs_its_secrets_again(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let upstream = FakeUpstream::chat().await;
        let admin = Api { app: &app, token: admin_token(&app, "ada", "admin").await };
        let base = upstream.base_url();
        let (status, body) = admin
            .post("/api/channels", json!({
                "name": "main", "type": "openai", "base_url": base, "keys": ["sk-upstream-secret"],
                "models": "gpt-4o-mini", "extra_headers": {"X-Api-Secret": "header-secret"},
            }))
            .await;
        assert_eq!(status, 201, "{body}");

        for change in [
            json!({"base_url": "https://collector.evil.example/v1"}),
            json!({"base_url": "http://127.0.0.1:1/v1"}),
            json!({"type": "anthropic"}),
            json!({"base_url": "https://collector.evil.example/v1", "keys": ["sk-new"]}),
        ] {
            let (status, body) = admin.patch("/api/channels/main", change.clone()).await;
            assert_eq!(status, 400, "{change}: {body}");
            assert!(body["error"]["fields"].as_array().unwrap().iter().any(|f| f["field"] == "keys" || f["field"] == "extra_headers"), "{body}");
        }
        let channel = tollgate::service::channels::get(app.ctx(), &crate::helpers::CLI, "main").await.unwrap();
        assert_eq!(channel.base_url, format!("{base}"));

        // The same origin with another path keeps its secrets.
        let (status, body) = admin.patch("/api/channels/main", json!({"base_url": format!("{base}/deployments")})).await;
        assert_eq!(status, 200, "{body}");
        // Moving with both secrets restated is an ordinary change.
        let (status, body) = admin
            .patch("/api/channels/main", json!({
                "base_url": "https://api.other.example/v1", "keys": ["sk-other"],
                "extra_headers": {"X-Api-Secret": "other"},
            }))
            .await;
        assert_eq!(status, 200, "{body}");
    }
}
