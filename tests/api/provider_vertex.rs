//! Vertex AI channels: a service account's JSON key traded for an OAuth access token (a JWT
//! signed with its RSA key, checked here against the public key), the token cached across
//! requests, Gemini models on `publishers/google` and Claude models on `publishers/anthropic`
//! with Vertex's Messages bodies, and a refused account disabling the channel.

use std::time::Duration;

use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};

use crate::helpers::{CLI, FakeUpstream, Reply, TestApp, TestDb, db_test};
use tollgate::domain::kinds::{ChannelStatus, Outcome};
use tollgate::service::channels::ChannelInput;

/// A throwaway RSA key made for these tests (`openssl genpkey -algorithm RSA`), and its public
/// half (PKCS#1 DER, base64) to check the signatures Tollgate makes with it.
const TEST_PRIVATE_KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIIEvAIBADANBgkqhkiG9w0BAQEFAASCBKYwggSiAgEAAoIBAQDCUfVtqMKBrO4s\nEXEwoyqkRPRpSEMYTqyHLK7MPVmBCowjeObi9yQa1HA/x7/yQIDGPVoEMN8BkJxe\nIq3XgYB2mYNC8gFs5kiz2ebtH2pqfm8dEuDLhq5ZBjvLEbQhxUEKNf4CF1R8Fol7\n1fmmQKZb74d+0AFtPS+rh+3te60oOiit+gIMzOUOS7DmaDnoOfiANryNjQLN8zct\n98ZTw7JORZ9t28N/eb4n5lkqm5cFMo9TQ2MBZkln2BYqToePzvRVGQdSx6WHaz+H\nQfouhKI5PasCVT/bb4QYvLdmS9VPCoPlk7Cuqwwfi2Snm0T0AwJcsRj8ttaYIRwd\n0aacgfuzAgMBAAECggEACvpjYbcbigTxjbbMjMFjGtW0czA8biafs6FQHMTIhjRI\n14YwkRkCRqvCza+kxfRj8g8sQzlZl/aKBv1xkc/EqK6ijkkq0HKwH80LMVFJi0uq\nTluvLIBm4CusfBv7b777ni6Ps6GKydniGYdsq7pSS7ZcEsuAkSHYTBoJVJXcof2R\n6h3HAcBcQK2s7KFjKvZFzL7va/uU/xI/3xbbbxOjlwU9Vx+L9p51c7u29rp/hXUe\nE36uZGwozhT7bdY03F9jOSIxdK+bVAjqLTgfEDnRNSBm3g4fXrfvxC6IAv6803eA\nVNsP8AsWvDhzVgHnltOmUHhi0jz1jk5pvtEK+dVnOQKBgQDr4NtIdKdDKp5MSuVd\nGCOc8Hwx4ApIL3CP2MJeGnbDwqVgyTSNelqjz0xcPs2uye83Yx6h3lb9hfS4O8WC\n1y3qjnG8d4fApxf3GMEJTi/+vkfHah3qJm5XOSxqobuVyatX/uozJc+GiObthY8z\nimlysa+32THCbVISNQVw1twoSwKBgQDS5YxyEH+n1TtEKJMo2GxRdyHdERNXhwT9\nvM2E2ndxYvKIq2/bQlFmLp7ZURDsau1czgndpqs7RYCqT+m8L27nPOSUvlf9PTxq\nrrdn2LLZjbmhvUb3VqxNz755QlnYallXyCSc4ic2rO2UYhdMB4E2mqyFf8VlQMN9\nBAUYFXspOQKBgAEiPIuVm/QzsT0WoxGWex1W/pHSzNnZ+IWIei6vm+CG//p+HRWN\nAACHj4tl9eEgMVknzc7jXbGsQifcia9+T0cwVhWc0Xc4lmHmqY7c5FgqG/g2Z1xn\nwOIEcVU138vxgzRSElgal2vDHrEHkk+iG62kcv7EOXwAwIM75AHN1pMPAoGAFbiq\n1Hy6iTC/H/AF6CkSTvm0NS6zDUrMys2NZWeS8cy9KjJuHOkhtSKMHdnpolAJDovy\nHDA0ZrBr5h7A9i70f0CYUnGgYmbSODKylTGOijW8rtnt2z/EE2eYOKkK0+1wMkhc\n7QOmAk2hUq0ftSb4ugUIS9+zFxCqkc++LpLX0pECgYA+TUeJLd5RXSXg+X2En+7L\nMisj+5FYaoBoKCRw6srdHipb8xnW5O9I3P4TF7yznEKDjvwMP235Y2D/FrbkkduW\n/MCP72fCJIXcBr5NvIrbPVWh9dZDTUaXvc5BEWbxEiShta8ib/6WTG4yzPv+aN2d\nIIRqqn8/z5CU3FBxeTupfw==\n-----END PRIVATE KEY-----\n";
const TEST_PUBLIC_KEY: &str = "MIIBCgKCAQEAwlH1bajCgazuLBFxMKMqpET0aUhDGE6shyyuzD1ZgQqMI3jm4vckGtRwP8e/8kCAxj1aBDDfAZCcXiKt14GAdpmDQvIBbOZIs9nm7R9qan5vHRLgy4auWQY7yxG0IcVBCjX+AhdUfBaJe9X5pkCmW++HftABbT0vq4ft7XutKDoorfoCDMzlDkuw5mg56Dn4gDa8jY0CzfM3LffGU8OyTkWfbdvDf3m+J+ZZKpuXBTKPU0NjAWZJZ9gWKk6Hj870VRkHUselh2s/h0H6LoSiOT2rAlU/22+EGLy3ZkvVTwqD5ZOwrqsMH4tkp5tE9AMCXLEY/LbWmCEcHdGmnIH7swIDAQAB";
const CLIENT_EMAIL: &str = "relay@tollgate-test.iam.gserviceaccount.com";
const GEMINI: &str = "gemini-2.5-flash";
const CLAUDE: &str = "claude-sonnet-4-5@20250929";
const LOCATION_PATH: &str = "/v1/projects/tollgate-test/locations/us-east5";

/// The service account's JSON key file, on one line as a channel key.
fn service_account(token_uri: &str) -> String {
    json!({
        "type": "service_account",
        "project_id": "tollgate-test",
        "private_key_id": "0123abcd",
        "private_key": TEST_PRIVATE_KEY,
        "client_email": CLIENT_EMAIL,
        "client_id": "1234567890",
        "token_uri": token_uri,
    })
    .to_string()
}

fn token_answer() -> Reply {
    Reply::Json(
        200,
        json!({"access_token": "ya29.vertex-test", "expires_in": 3599, "token_type": "Bearer"}),
    )
}

async fn setup(db: TestDb, vertex: &FakeUpstream, tokens: &FakeUpstream) -> (TestApp, String, i64) {
    let app = TestApp::spawn(db).await;
    let id = app
        .add_channel_with(ChannelInput {
            name: Some("vertex".into()),
            channel_type: Some("vertex".into()),
            base_url: Some(format!("{}{LOCATION_PATH}", vertex.origin())),
            keys: Some(vec![service_account(&format!("{}/token", tokens.origin()))]),
            models: Some(format!("{GEMINI},{CLAUDE}")),
            ..Default::default()
        })
        .await;
    app.price(GEMINI, "0.3", "2.5").await;
    app.price(CLAUDE, "3", "15").await;
    app.create_user("alice", "10").await;
    let key = app.key_for("alice").await;
    app.reload().await;
    (app, key, id)
}

/// Checks the token request: a JWT bearer grant whose assertion names the account, Google's
/// token endpoint and the cloud-platform scope, signed with the account's key.
fn check_assertion(form: &[u8], token_uri: &str) {
    let form = std::str::from_utf8(form).unwrap();
    assert!(
        form.starts_with(
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion="
        ),
        "{form}"
    );
    let jwt = form.rsplit_once("assertion=").unwrap().1;
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3);
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    assert_eq!(header, json!({"alg": "RS256", "typ": "JWT"}));
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    assert_eq!(claims["iss"], CLIENT_EMAIL);
    assert_eq!(claims["aud"], token_uri);
    assert_eq!(
        claims["scope"],
        "https://www.googleapis.com/auth/cloud-platform"
    );
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        3600
    );
    let public_key = STANDARD.decode(TEST_PUBLIC_KEY).unwrap();
    let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &public_key)
        .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &signature)
        .expect("the assertion is signed with the service account's key");
}

db_test! {
    /// A chat request for a Gemini model goes to `publishers/google/models/…:generateContent`
    /// with a bearer token obtained from the service account; the token is reused by later
    /// requests rather than fetched again.
    async fn calls_gemini_on_vertex_with_a_service_account_token(db: TestDb) {
        let vertex = FakeUpstream::start(Reply::Json(200, crate::provider_gemini::gemini_answer())).await;
        let tokens = FakeUpstream::start(token_answer()).await;
        let (app, key, _) = setup(db, &vertex, &tokens).await;
        let request = json!({"model": GEMINI, "messages": [{"role": "user", "content": "Weather in Paris?"}]});
        for _ in 0..3 {
            let response = app.chat(&key, request.clone()).await;
            assert_eq!(response.status(), 200);
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["object"], "chat.completion");
        }
        let sent = vertex.requests();
        assert_eq!(sent.len(), 3);
        assert_eq!(sent[0].path, format!("{LOCATION_PATH}/publishers/google/models/{GEMINI}:generateContent"));
        assert_eq!(sent[0].headers["authorization"], "Bearer ya29.vertex-test");
        assert_eq!(sent[0].json()["contents"][0]["parts"][0]["text"], "Weather in Paris?");
        let token_requests = tokens.requests();
        assert_eq!(token_requests.len(), 1, "the access token is cached");
        assert_eq!(token_requests[0].path, "/token");
        check_assertion(&token_requests[0].body, &format!("{}/token", tokens.origin()));
        let logs = app.wait_for_logs(3).await;
        assert!(logs.iter().all(|l| l.outcome == Outcome::Success && l.cost > 0));
    }
}

db_test! {
    /// A Claude model on Vertex: Anthropic clients stream through `:streamRawPredict` with
    /// Vertex's Messages body (the API version in the body, the model only in the URL), and
    /// OpenAI clients are translated through `:rawPredict`.
    async fn calls_claude_on_vertex_with_vertex_message_bodies(db: TestDb) {
        let vertex = FakeUpstream::start(Reply::Sse {
            body: crate::provider_anthropic::message_events(),
            split: 7,
            delay: Duration::ZERO,
        })
        .await;
        let tokens = FakeUpstream::start(token_answer()).await;
        let (app, key, _) = setup(db, &vertex, &tokens).await;
        let response = reqwest::Client::new()
            .post(app.url("/v1/messages"))
            .header("x-api-key", &key)
            .header("anthropic-version", "2023-06-01")
            .header("anthropic-beta", "interleaved-thinking-2025-05-14")
            .json(&json!({"model": CLAUDE, "max_tokens": 300, "stream": true,
                          "messages": [{"role": "user", "content": "Weather in Paris?"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let text = response.text().await.unwrap();
        assert!(text.contains("event: message_stop"), "{text}");
        let sent = vertex.requests();
        assert_eq!(sent[0].path, format!("{LOCATION_PATH}/publishers/anthropic/models/{CLAUDE}:streamRawPredict"));
        assert_eq!(sent[0].headers["authorization"], "Bearer ya29.vertex-test");
        assert_eq!(sent[0].headers["anthropic-beta"], "interleaved-thinking-2025-05-14");
        let body = sent[0].json();
        assert!(body.get("model").is_none(), "the model is in the URL: {body}");
        assert_eq!(body["anthropic_version"], "vertex-2023-10-16");
        assert_eq!(body["max_tokens"], 300);
        assert_eq!(body["stream"], true);

        vertex.queue(Reply::Json(200, crate::provider_anthropic::message_answer()));
        let chat = json!({"model": CLAUDE, "max_tokens": 100,
                          "messages": [{"role": "user", "content": "Weather in Paris?"}]});
        let answer: Value = app.chat(&key, chat).await.json().await.unwrap();
        assert_eq!(answer["choices"][0]["finish_reason"], "tool_calls");
        let sent = vertex.requests();
        assert_eq!(sent[1].path, format!("{LOCATION_PATH}/publishers/anthropic/models/{CLAUDE}:rawPredict"));
        assert!(sent[1].json().get("model").is_none());
        assert_eq!(sent[1].json()["anthropic_version"], "vertex-2023-10-16");
        let logs = app.wait_for_logs(2).await;
        assert!(logs.iter().all(|l| l.outcome == Outcome::Success && !l.usage_estimated));
    }
}

db_test! {
    /// A service account Google refuses is a bad key: the request is not sent, the channel is
    /// auto-disabled with Google's reason, and the client gets a clear 503. Bad keys and base
    /// URLs are refused when the channel is added.
    async fn disables_a_vertex_channel_whose_account_is_refused(db: TestDb) {
        let vertex = FakeUpstream::start(Reply::Json(200, crate::provider_gemini::gemini_answer())).await;
        let tokens = FakeUpstream::start(Reply::Json(400, json!({
            "error": "invalid_grant", "error_description": "Invalid JWT Signature."
        })))
        .await;
        let (app, key, id) = setup(db, &vertex, &tokens).await;
        let request = json!({"model": GEMINI, "messages": [{"role": "user", "content": "Hi"}]});
        let response = app.chat(&key, request).await;
        assert_eq!(response.status(), 503);
        let body: Value = response.json().await.unwrap();
        assert!(body["error"]["message"].as_str().unwrap().contains("Invalid JWT Signature"), "{body}");
        assert_eq!(vertex.request_count(), 0);
        let mut status = ChannelStatus::Enabled;
        for _ in 0..50 {
            let row = tollgate::service::channels::by_id(app.ctx(), &CLI, id).await.unwrap();
            status = row.status;
            if status == ChannelStatus::AutoDisabled {
                assert!(row.status_reason.contains("refused the service account"), "{}", row.status_reason);
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(status, ChannelStatus::AutoDisabled);
        let row = tollgate::service::channels::by_id(app.ctx(), &CLI, id).await.unwrap();
        let shown = serde_json::to_string(&tollgate::service::views::ChannelView::new(&row, 500_000)).unwrap();
        assert!(shown.contains(&format!("service account {CLIENT_EMAIL}")), "{shown}");
        assert!(!shown.contains("PRIVATE KEY"), "the private key is never shown: {shown}");

        let bad_key = tollgate::service::channels::create(app.ctx(), &CLI, ChannelInput {
            name: Some("bad-key".into()),
            channel_type: Some("vertex".into()),
            base_url: Some(format!("{}{LOCATION_PATH}", vertex.origin())),
            keys: Some(vec!["ya29.not-a-service-account".into()]),
            models: Some(GEMINI.into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
        assert!(bad_key.to_string().contains("service account"), "{bad_key}");
        let bad_url = tollgate::service::channels::create(app.ctx(), &CLI, ChannelInput {
            name: Some("bad-url".into()),
            channel_type: Some("vertex".into()),
            base_url: Some(vertex.origin()),
            keys: Some(vec![service_account("https://oauth2.googleapis.com/token")]),
            models: Some(GEMINI.into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
        assert!(bad_url.to_string().contains("project and location"), "{bad_url}");

        // The CLI reads the key file as Google hands it out (`--key @file`, pretty-printed).
        let file = tempfile::Builder::new().suffix(".json").tempfile().unwrap();
        let pretty: Value = serde_json::from_str(&service_account("https://oauth2.googleapis.com/token")).unwrap();
        std::fs::write(file.path(), serde_json::to_string_pretty(&pretty).unwrap()).unwrap();
        let base_url = format!("{}{LOCATION_PATH}", vertex.origin());
        let key_arg = format!("@{}", file.path().display());
        let added = crate::shutdown::tollgate(&app.db_url, &[
            "channel", "add", "--name", "from-file", "--type", "vertex", "--base-url", &base_url,
            "--key", &key_arg, "--models", GEMINI, "--json",
        ])
        .unwrap();
        let added: Value = serde_json::from_str(&added).unwrap();
        assert_eq!(added["keys"][0], format!("service account {CLIENT_EMAIL}"));
    }
}
