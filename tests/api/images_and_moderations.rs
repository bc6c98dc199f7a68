//! `/v1/images/generations` and `/v1/moderations` in front of OpenAI-type channels: the
//! request passes through byte for byte, and billing uses the unit that fits: per image by
//! size and quality, per token where the upstream reports tokens.

use serde_json::{Value, json};

use crate::helpers::{FakeUpstream, Reply, TestApp, TestDb, db_test};
use tollgate::domain::kinds::Outcome;
use tollgate::service::channels::ChannelInput;

async fn setup(db: TestDb, upstream: &FakeUpstream, models: &str) -> (TestApp, String) {
    let app = TestApp::spawn(db).await;
    app.add_channel_with(ChannelInput {
        name: Some("openai".into()),
        base_url: Some(upstream.base_url()),
        models: Some(models.into()),
        ..Default::default()
    })
    .await;
    app.create_user("alice", "10").await;
    let key = app.key_for("alice").await;
    (app, key)
}

async fn post_raw(app: &TestApp, key: &str, path: &str, raw: &'static str) -> reqwest::Response {
    reqwest::Client::new()
        .post(app.url(path))
        .bearer_auth(key)
        .header("content-type", "application/json")
        .body(raw)
        .send()
        .await
        .unwrap()
}

fn images(count: usize) -> Value {
    let data: Vec<Value> = (0..count)
        .map(|i| json!({"b64_json": format!("aW1hZ2V{i}"), "revised_prompt": "A cat."}))
        .collect();
    json!({"created": 1_700_000_000, "data": data})
}

db_test! {
    /// Images are billed per image returned, at the price of the size and quality asked for
    /// (`model@size@quality`, then `model@size`, then the model), held for `n` images first.
    async fn bills_images_per_image_by_size_and_quality(db: TestDb) {
        let upstream = FakeUpstream::start(Reply::Json(200, images(2))).await;
        let (app, key) = setup(db, &upstream, "dall-e-3").await;
        app.price_per_request("dall-e-3", "0.04").await;
        app.price_per_request("dall-e-3@1024x1792", "0.08").await;
        app.price_per_request("dall-e-3@1024x1792@hd", "0.12").await;
        app.reload().await;

        let raw = r#"{"model":"dall-e-3","prompt":"A cat in a hat","n":2,"size":"1024x1792","quality":"hd","style":"vivid"}"#;
        let response = post_raw(&app, &key, "/v1/images/generations", raw).await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["data"].as_array().unwrap().len(), 2);
        let sent = upstream.requests();
        assert_eq!(sent[0].path, "/v1/images/generations");
        assert_eq!(&sent[0].body[..], raw.as_bytes(), "passed through byte for byte");

        upstream.set_default(Reply::Json(200, images(1)));
        let standard = r#"{"model":"dall-e-3","prompt":"A cat","size":"1024x1792"}"#;
        assert_eq!(post_raw(&app, &key, "/v1/images/generations", standard).await.status(), 200);
        let square = r#"{"model":"dall-e-3","prompt":"A cat"}"#;
        assert_eq!(post_raw(&app, &key, "/v1/images/generations", square).await.status(), 200);

        let logs = app.wait_for_logs(3).await;
        assert!(logs.iter().all(|l| l.endpoint == "images.generations" && l.outcome == Outcome::Success));
        let costs: Vec<i64> = logs.iter().map(|l| l.cost).collect();
        // 2 × $0.12, 1 × $0.08, 1 × $0.04 at 500,000 units per dollar.
        assert_eq!(costs, [120_000, 40_000, 20_000]);
        assert_eq!(app.user("alice").await.used_quota, 180_000);
    }
}

db_test! {
    /// A streamed generation (partial images as server-sent events) is billed for the images
    /// asked for, as the stream reports none.
    async fn bills_streamed_images_per_image_asked_for(db: TestDb) {
        let events = concat!(
            "event: image_generation.partial_image\ndata: {\"type\":\"image_generation.partial_image\",\"b64_json\":\"cGFy\",\"partial_image_index\":0}\n\n",
            "event: image_generation.completed\ndata: {\"type\":\"image_generation.completed\",\"b64_json\":\"ZnVsbA==\"}\n\n",
        );
        let upstream = FakeUpstream::start(Reply::Sse { body: events.into(), split: 11, delay: std::time::Duration::ZERO }).await;
        let (app, key) = setup(db, &upstream, "dall-e-3").await;
        app.price_per_request("dall-e-3", "0.04").await;
        app.reload().await;
        let raw = r#"{"model":"dall-e-3","prompt":"A cat","n":2,"stream":true}"#;
        let response = post_raw(&app, &key, "/v1/images/generations", raw).await;
        assert_eq!(response.status(), 200);
        assert!(response.text().await.unwrap().contains("image_generation.completed"));
        let logs = app.wait_for_logs(1).await;
        // 2 images × $0.04 = 40,000 units.
        assert_eq!(logs[0].cost, 40_000);
    }
}

db_test! {
    /// An image model priced per token (gpt-image-1) is billed from the usage it reports.
    async fn bills_token_priced_images_from_their_usage(db: TestDb) {
        let mut answer = images(1);
        answer["usage"] = json!({"total_tokens": 4210, "input_tokens": 50, "output_tokens": 4160,
                                 "input_tokens_details": {"text_tokens": 50, "image_tokens": 0}});
        let upstream = FakeUpstream::start(Reply::Json(200, answer)).await;
        let (app, key) = setup(db, &upstream, "gpt-image-1").await;
        app.price("gpt-image-1", "5", "40").await;
        app.reload().await;
        let raw = r#"{"model":"gpt-image-1","prompt":"A watercolor fox","quality":"high"}"#;
        assert_eq!(post_raw(&app, &key, "/v1/images/generations", raw).await.status(), 200);
        let logs = app.wait_for_logs(1).await;
        assert_eq!((logs[0].prompt_tokens, logs[0].completion_tokens), (50, 4160));
        assert!(!logs[0].usage_estimated);
        // 50 × $5 + 4160 × $40 per 1M = $0.16665 = 83,325 units.
        assert_eq!(logs[0].cost, 83_325);
    }
}

db_test! {
    /// Moderations pass through and are billed for the input read (the prompt estimate, as
    /// the upstream reports no usage); a model no channel can moderate with is refused.
    async fn passes_moderations_through(db: TestDb) {
        let upstream = FakeUpstream::start(Reply::Json(200, json!({
            "id": "modr-1", "model": "omni-moderation-latest",
            "results": [{"flagged": false, "categories": {"violence": false}, "category_scores": {"violence": 0.001}}]
        })))
        .await;
        let (app, key) = setup(db, &upstream, "omni-moderation-latest").await;
        app.price("omni-moderation-latest", "0.1", "0").await;
        app.reload().await;
        let raw = r#"{"model":"omni-moderation-latest","input":"I want to pet the cat."}"#;
        let response = post_raw(&app, &key, "/v1/moderations", raw).await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["results"][0]["flagged"], false);
        assert_eq!(upstream.requests()[0].path, "/v1/moderations");
        assert_eq!(&upstream.requests()[0].body[..], raw.as_bytes());
        let logs = app.wait_for_logs(1).await;
        assert_eq!(logs[0].endpoint, "moderations");
        assert!(logs[0].usage_estimated && logs[0].prompt_tokens > 0 && logs[0].cost > 0);

        let streamed = r#"{"model":"omni-moderation-latest","input":"x","stream":true}"#;
        assert_eq!(post_raw(&app, &key, "/v1/moderations", streamed).await.status(), 400);
        let no_input = r#"{"model":"omni-moderation-latest"}"#;
        assert_eq!(post_raw(&app, &key, "/v1/moderations", no_input).await.status(), 400);
    }
}

pub(crate) const BOUNDARY: &str = "edit-boundary-0123";

pub(crate) fn edit_form(model: &str, fields: &[(&str, &str)]) -> Vec<u8> {
    let mut body = Vec::new();
    let mut field = |name: &str, value: &str| {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    };
    field("model", model);
    for (name, value) in fields {
        field(name, value);
    }
    body.extend_from_slice(
        format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"cat.png\"\r\nContent-Type: image/png\r\n\r\n").as_bytes(),
    );
    body.extend_from_slice(b"\x89PNG\r\n\x1a\n-fake-pixels");
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}

db_test! {
    /// An image edit is a multipart upload passed through byte for byte and billed per image
    /// returned at the size's price, held for `n` images first; an edit without an image is
    /// refused before any upstream call.
    async fn bills_image_edits_per_image(db: TestDb) {
        let upstream = FakeUpstream::start(Reply::Json(200, images(2))).await;
        let (app, key) = setup(db, &upstream, "dall-e-2").await;
        app.price_per_request("dall-e-2", "0.02").await;
        app.price_per_request("dall-e-2@512x512", "0.018").await;
        app.reload().await;
        let body = edit_form("dall-e-2", &[("prompt", "Add a small hat"), ("n", "2"), ("size", "512x512")]);
        let response = reqwest::Client::new()
            .post(app.url("/v1/images/edits"))
            .bearer_auth(&key)
            .header("content-type", format!("multipart/form-data; boundary={BOUNDARY}"))
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["data"].as_array().unwrap().len(), 2);
        let sent = upstream.requests();
        assert_eq!(sent[0].path, "/v1/images/edits");
        assert_eq!(&sent[0].body[..], &body[..]);
        let logs = app.wait_for_logs(1).await;
        assert_eq!(logs[0].endpoint, "images.edits");
        // 2 × $0.018 = $0.036 = 18,000 units.
        assert_eq!(logs[0].cost, 18_000);
        assert!(logs[0].prompt_tokens > 0, "the prompt is counted");

        let no_image = format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\ndall-e-2\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"prompt\"\r\n\r\nA hat\r\n--{BOUNDARY}--\r\n");
        let response = reqwest::Client::new()
            .post(app.url("/v1/images/edits"))
            .bearer_auth(&key)
            .header("content-type", format!("multipart/form-data; boundary={BOUNDARY}"))
            .body(no_image)
            .send()
            .await
            .unwrap();
        let message = crate::helpers::expect_error(response, 400, "missing_required_parameter").await;
        assert!(message.contains("image"), "{message}");
        assert_eq!(upstream.request_count(), 1);
    }
}
