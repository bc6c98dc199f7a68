//! `/v1/audio/speech`, `/v1/audio/transcriptions` and `/v1/audio/translations` in front of
//! OpenAI-type channels: requests pass through (multipart uploads byte for byte, the model
//! replaced in place when a channel maps it), answers come back as sent (audio, JSON or
//! subtitles), and billing uses the unit that fits: characters spoken, seconds transcribed,
//! or tokens where the upstream reports them.

use serde_json::{Value, json};

use crate::helpers::{FakeUpstream, Reply, TestApp, TestDb, db_test, expect_error};
use tollgate::service::channels::ChannelInput;

pub(crate) const BOUNDARY: &str = "tollgate-test-boundary-7MA4YWxk";

async fn setup(db: TestDb, upstream: &FakeUpstream, models: &str) -> (TestApp, String) {
    let app = TestApp::spawn(db).await;
    app.add_channel_with(ChannelInput {
        name: Some("openai".into()),
        base_url: Some(upstream.base_url()),
        models: Some(models.into()),
        model_mapping: Some([("whisper-fast".to_string(), "whisper-large-v3".to_string())].into()),
        ..Default::default()
    })
    .await;
    app.create_user("alice", "10").await;
    let key = app.key_for("alice").await;
    (app, key)
}

/// A multipart upload as the OpenAI SDK sends it: the audio file and text fields.
pub(crate) fn upload(model: &str, file_bytes: usize, fields: &[(&str, &str)]) -> Vec<u8> {
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
        format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"speech.mp3\"\r\nContent-Type: audio/mpeg\r\n\r\n").as_bytes(),
    );
    // Audio bytes, including a line that looks like a boundary but is not one.
    let mut audio = b"ID3\x04\x00\r\n--tollgate\r\n".to_vec();
    audio.resize(file_bytes, 0xAB);
    body.extend_from_slice(&audio);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}

async fn post_upload(app: &TestApp, key: &str, path: &str, body: Vec<u8>) -> reqwest::Response {
    reqwest::Client::new()
        .post(app.url(path))
        .bearer_auth(key)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(body)
        .send()
        .await
        .unwrap()
}

db_test! {
    /// Speech passes through and its audio comes back as sent, billed per character spoken.
    async fn speaks_and_bills_per_character(db: TestDb) {
        let upstream = FakeUpstream::start(Reply::Raw(200, "audio/mpeg", "ID3-fake-mp3-frames")).await;
        let (app, key) = setup(db, &upstream, "tts-1").await;
        // $15 per 1M characters.
        app.price_per_request("tts-1", "0.000015").await;
        app.reload().await;
        let response = app
            .post(&key, "/v1/audio/speech", json!({"model": "tts-1", "input": "Hello, world — ☀️", "voice": "alloy"}))
            .await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "audio/mpeg");
        assert_eq!(&response.bytes().await.unwrap()[..], b"ID3-fake-mp3-frames");
        let sent = upstream.requests();
        assert_eq!(sent[0].path, "/v1/audio/speech");
        assert_eq!(sent[0].json()["voice"], "alloy");
        let logs = app.wait_for_logs(1).await;
        assert_eq!(logs[0].endpoint, "audio.speech");
        // 17 characters (the sun and its emoji selector are two) × $0.000015 = $0.000255
        // = 127.5 units, rounded up.
        assert_eq!(logs[0].cost, 128);
    }
}

db_test! {
    /// A transcription upload goes upstream byte for byte with its boundary, and is billed for
    /// the seconds the upstream reports; translations go the same way.
    async fn transcribes_and_bills_reported_seconds(db: TestDb) {
        let upstream = FakeUpstream::start(Reply::Json(200, json!({
            "text": "Hello there.", "usage": {"type": "duration", "seconds": 9}
        })))
        .await;
        let (app, key) = setup(db, &upstream, "whisper-1").await;
        // $0.006 a minute is $0.0001 a second.
        app.price_per_request("whisper-1", "0.0001").await;
        app.reload().await;
        let body = upload("whisper-1", 50_000, &[("response_format", "json"), ("language", "en")]);
        let response = post_upload(&app, &key, "/v1/audio/transcriptions", body.clone()).await;
        assert_eq!(response.status(), 200);
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["text"], "Hello there.");
        let sent = upstream.requests();
        assert_eq!(sent[0].path, "/v1/audio/transcriptions");
        assert_eq!(&sent[0].body[..], &body[..], "the upload passes through byte for byte");
        assert_eq!(
            sent[0].headers["content-type"],
            format!("multipart/form-data; boundary={BOUNDARY}").as_str()
        );

        let translated = upload("whisper-1", 10_000, &[]);
        assert_eq!(post_upload(&app, &key, "/v1/audio/translations", translated).await.status(), 200);
        assert_eq!(upstream.requests()[1].path, "/v1/audio/translations");

        let logs = app.wait_for_logs(2).await;
        assert_eq!(logs[0].endpoint, "audio.transcriptions");
        assert_eq!(logs[1].endpoint, "audio.translations");
        // 9 seconds × $0.0001 = $0.0009 = 450 units, each time.
        assert!(logs.iter().all(|l| l.cost == 450 && !l.usage_estimated), "{logs:#?}");
    }
}

db_test! {
    /// A mapped model is replaced inside the form, the rest untouched; a plain-text answer
    /// (no reported duration) is billed for the seconds the upload is assumed to hold.
    async fn maps_models_inside_uploads_and_estimates_unreported_seconds(db: TestDb) {
        let upstream = FakeUpstream::start(Reply::Raw(200, "text/plain; charset=utf-8", "Hello there.\n")).await;
        let (app, key) = setup(db, &upstream, "whisper-fast").await;
        app.price_per_request("whisper-fast", "0.0001").await;
        app.reload().await;
        let body = upload("whisper-fast", 40_000, &[("response_format", "text")]);
        let response = post_upload(&app, &key, "/v1/audio/transcriptions", body.clone()).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.text().await.unwrap(), "Hello there.\n");
        let sent = upstream.requests();
        let expected = String::from_utf8_lossy(&body).replace(
            "name=\"model\"\r\n\r\nwhisper-fast\r\n",
            "name=\"model\"\r\n\r\nwhisper-large-v3\r\n",
        );
        assert_eq!(String::from_utf8_lossy(&sent[0].body), expected);
        assert_eq!(sent[0].body.len(), body.len() + "whisper-large-v3".len() - "whisper-fast".len());
        let logs = app.wait_for_logs(1).await;
        assert!(logs[0].usage_estimated);
        // 40,000 bytes at 16 kB a second: 3 seconds × $0.0001 = 150 units.
        assert_eq!(logs[0].cost, 150);
    }
}

db_test! {
    /// A transcription model priced per token is billed from the tokens it reports.
    async fn bills_token_priced_transcriptions_from_their_usage(db: TestDb) {
        let upstream = FakeUpstream::start(Reply::Json(200, json!({
            "text": "Hi.",
            "usage": {"type": "tokens", "input_tokens": 120, "output_tokens": 8, "total_tokens": 128,
                      "input_token_details": {"audio_tokens": 120, "text_tokens": 0}}
        })))
        .await;
        let (app, key) = setup(db, &upstream, "gpt-4o-transcribe").await;
        app.price("gpt-4o-transcribe", "6", "10").await;
        app.reload().await;
        let body = upload("gpt-4o-transcribe", 8_000, &[]);
        assert_eq!(post_upload(&app, &key, "/v1/audio/transcriptions", body).await.status(), 200);
        let logs = app.wait_for_logs(1).await;
        assert_eq!((logs[0].prompt_tokens, logs[0].completion_tokens), (120, 8));
        // 120 × $6 + 8 × $10 per 1M = $0.0008 = 400 units.
        assert_eq!(logs[0].cost, 400);
    }
}

db_test! {
    /// Uploads that are not forms, or lack a model or a file, are refused before any upstream
    /// call, and a model whose channels cannot transcribe says so.
    async fn refuses_broken_uploads(db: TestDb) {
        let upstream = FakeUpstream::chat().await;
        let (app, key) = setup(db, &upstream, "whisper-1").await;
        app.price_per_request("whisper-1", "0.0001").await;
        app.add_channel_with(ChannelInput {
            name: Some("claude".into()),
            channel_type: Some("anthropic".into()),
            base_url: Some(upstream.origin()),
            models: Some("claude-haiku-4-5".into()),
            ..Default::default()
        })
        .await;
        app.reload().await;
        let not_a_form = app
            .post(&key, "/v1/audio/transcriptions", json!({"model": "whisper-1"}))
            .await;
        assert_eq!(not_a_form.status(), 400);
        let no_file = format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper-1\r\n--{BOUNDARY}--\r\n");
        let message = expect_error(
            post_upload(&app, &key, "/v1/audio/transcriptions", no_file.into_bytes()).await,
            400,
            "missing_required_parameter",
        )
        .await;
        assert!(message.contains("file"), "{message}");
        let mut no_model = upload("whisper-1", 100, &[]);
        let at = String::from_utf8_lossy(&no_model).find("whisper-1").unwrap();
        no_model.splice(at..at + "whisper-1".len(), b"".iter().copied());
        expect_error(
            post_upload(&app, &key, "/v1/audio/transcriptions", no_model).await,
            400,
            "missing_required_parameter",
        )
        .await;
        let response = post_upload(&app, &key, "/v1/audio/transcriptions", upload("claude-haiku-4-5", 100, &[])).await;
        assert_eq!(response.status(), 400);
        let body: Value = response.json().await.unwrap();
        assert!(body["error"]["message"].as_str().unwrap().contains("cannot answer"), "{body}");
        assert_eq!(upstream.request_count(), 0);
    }
}

const SDK_SCRIPT: &str = r#"
import io, json, sys
from openai import OpenAI

client = OpenAI(base_url=sys.argv[1], api_key=sys.argv[2], max_retries=0)
out = {}
speech = client.audio.speech.create(model="tts-1", voice="alloy", input="Hello there")
out["speech_bytes"] = len(speech.content)
audio = io.BytesIO(b"ID3" + bytes(20_000))
audio.name = "hello.mp3"
out["transcript"] = client.audio.transcriptions.create(model="whisper-1", file=audio).text
audio.seek(0)
out["translation"] = client.audio.translations.create(model="whisper-1", file=audio).text
image = client.images.generate(model="dall-e-3", prompt="A cat", size="1024x1024")
out["image"] = image.data[0].b64_json
picture = io.BytesIO(b"\x89PNG\r\n\x1a\n" + bytes(100))
picture.name = "cat.png"
out["edit"] = client.images.edit(model="dall-e-2", image=picture, prompt="Add a hat").data[0].b64_json
moderation = client.moderations.create(model="omni-moderation-latest", input="I like cats")
out["flagged"] = moderation.results[0].flagged
print(json.dumps(out))
"#;

db_test! {
    /// The official OpenAI SDK's audio, image (generation and edit) and moderation clients work
    /// through Tollgate, its multipart uploads included, and each call is billed.
    async fn openai_sdk_speaks_transcribes_draws_and_moderates(db: TestDb) {
        let Some(python) = crate::sdk::python() else { return };
        let upstream = FakeUpstream::start(Reply::Raw(200, "audio/mpeg", "ID3-fake-mp3")).await;
        upstream.queue(Reply::Raw(200, "audio/mpeg", "ID3-fake-mp3"));
        upstream.queue(Reply::Json(200, json!({"text": "Hello there.", "usage": {"type": "duration", "seconds": 2}})));
        upstream.queue(Reply::Json(200, json!({"text": "Hello there.", "usage": {"type": "duration", "seconds": 2}})));
        upstream.queue(Reply::Json(200, json!({"created": 1, "data": [{"b64_json": "aW1hZ2U="}]})));
        upstream.queue(Reply::Json(200, json!({"created": 1, "data": [{"b64_json": "ZWRpdA=="}]})));
        upstream.queue(Reply::Json(200, json!({"id": "modr-1", "model": "omni-moderation-latest",
            "results": [{"flagged": false, "categories": {}, "category_scores": {}}]})));
        let (app, key) = setup(db, &upstream, "tts-1,whisper-1,dall-e-3,dall-e-2,omni-moderation-latest").await;
        app.price_per_request("dall-e-2", "0.02").await;
        app.price_per_request("tts-1", "0.000015").await;
        app.price_per_request("whisper-1", "0.0001").await;
        app.price_per_request("dall-e-3", "0.04").await;
        app.price("omni-moderation-latest", "0.1", "0").await;
        app.reload().await;
        let base = app.url("/v1");
        let output = tokio::task::spawn_blocking(move || {
            std::process::Command::new(python)
                .args(["-c", SDK_SCRIPT, &base, &key])
                .output()
                .expect("run python")
        })
        .await
        .unwrap();
        assert!(output.status.success(), "python failed: {}", String::from_utf8_lossy(&output.stderr));
        let out: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(out["speech_bytes"], 12);
        assert_eq!(out["transcript"], "Hello there.");
        assert_eq!(out["translation"], "Hello there.");
        assert_eq!(out["image"], "aW1hZ2U=");
        assert_eq!(out["edit"], "ZWRpdA==");
        assert_eq!(out["flagged"], false);
        let sent = upstream.requests();
        let paths: Vec<&str> = sent.iter().map(|r| r.path.as_str()).collect();
        assert_eq!(
            paths,
            ["/v1/audio/speech", "/v1/audio/transcriptions", "/v1/audio/translations",
             "/v1/images/generations", "/v1/images/edits", "/v1/moderations"]
        );
        let logs = app.wait_for_logs(6).await;
        let costs: Vec<(String, i64)> = logs.iter().map(|l| (l.endpoint.clone(), l.cost)).collect();
        assert_eq!(
            costs[..4],
            [
                // 11 characters × $0.000015, rounded up.
                ("audio.speech".to_string(), 83),
                // 2 seconds × $0.0001.
                ("audio.transcriptions".to_string(), 100),
                ("audio.translations".to_string(), 100),
                ("images.generations".to_string(), 20_000),
            ]
        );
        assert_eq!((logs[4].endpoint.as_str(), logs[4].cost), ("images.edits", 10_000));
        assert!(logs[5].cost > 0);
    }
}
