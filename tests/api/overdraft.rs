//! Holds are an upper bound of what settlement can bill, even for prompts whose length the
//! body does not tell: a file, a document or audio, a conversation stored upstream, an upload
//! to a model priced per token. Such a request holds the model's context window as its prompt
//! (the price's `context_tokens`, else the shipped table's window, else the option
//! `default_context_tokens`) and is billed at most that; many of them at once cannot take a
//! balance below zero.

use std::time::Duration;

use serde_json::{Value, json};

use crate::audio::{BOUNDARY, upload};
use crate::helpers::{Api, CLI, FakeUpstream, Reply, TestApp, TestDb, admin_token, db_test};
use crate::shutdown::tollgate;
use tollgate::domain::kinds::Outcome;
use tollgate::service;
use tollgate::service::channels::ChannelInput;

const MODEL: &str = "probe-model";
/// What the fake upstream reports for every request's prompt.
const BILLED_PROMPT: i64 = 50_000;
/// Requests fired at once.
const CONCURRENT: usize = 20;

/// An answer that arrives whole after a pause, so every request of a burst is in flight at once.
fn slow(body: Value) -> Reply {
    let body = body.to_string().into_bytes();
    Reply::Chunked {
        content_type: "application/json",
        split: body.len() / 2 + 1,
        body,
        delay: Duration::from_millis(300),
        break_at: None,
    }
}

/// How a request of one kind is sent.
enum Send {
    Json(&'static str, Value),
    Anthropic(Value),
    Upload(Vec<u8>),
}

impl Send {
    async fn to(&self, app: &TestApp, key: &str) -> u16 {
        let client = &app.client;
        let request = match self {
            Send::Json(path, body) => client.post(app.url(path)).bearer_auth(key).json(body),
            Send::Anthropic(body) => client
                .post(app.url("/v1/messages"))
                .header("x-api-key", key)
                .header("anthropic-version", "2023-06-01")
                .json(body),
            Send::Upload(body) => client
                .post(app.url("/v1/audio/transcriptions"))
                .bearer_auth(key)
                .header(
                    "content-type",
                    format!("multipart/form-data; boundary={BOUNDARY}"),
                )
                .body(body.clone()),
        };
        let response = request.send().await.expect("the server answers");
        let status = response.status().as_u16();
        let _ = response.bytes().await;
        status
    }
}

/// A $1.00 account sends `CONCURRENT` requests of one kind at once through a channel of
/// `channel_type` whose upstream bills `BILLED_PROMPT` prompt tokens for each. The balance
/// ends at or above zero, and the balance, the log and the ledger agree to the unit.
async fn burst(db: TestDb, channel_type: &str, reply: Value, send: Send) {
    let app = TestApp::spawn(db).await;
    let upstream = FakeUpstream::start(slow(reply)).await;
    app.add_channel_with(ChannelInput {
        name: Some("main".into()),
        channel_type: Some(channel_type.into()),
        base_url: Some(if channel_type == "anthropic" {
            upstream.origin()
        } else {
            upstream.base_url()
        }),
        models: Some(MODEL.into()),
        ..Default::default()
    })
    .await;
    // $3 in, $15 out, $3.75 to write the prompt cache, per 1M tokens (Claude Sonnet's).
    service::prices::set(
        app.ctx(),
        &CLI,
        MODEL,
        &service::prices::PriceInput {
            input: Some("3".into()),
            output: Some("15".into()),
            cache_write: Some("3.75".into()),
            ..Default::default()
        },
    )
    .await
    .expect("set price");
    app.create_user("alice", "1.00").await;
    let key = app.key_for("alice").await;
    app.reload().await;
    let start = app.user("alice").await.quota;

    let statuses = futures::future::join_all((0..CONCURRENT).map(|_| send.to(&app, &key))).await;
    // Refused for want of balance: 429 in OpenAI's protocol, 402 in Anthropic's.
    assert!(
        statuses.iter().all(|s| [200, 402, 429].contains(s)),
        "{statuses:?}"
    );
    let served = statuses.iter().filter(|&&s| s == 200).count();
    assert!(served >= 1, "the account can afford one: {statuses:?}");

    let logs = app.wait_for_logs(CONCURRENT).await;
    let spent: i64 = logs.iter().map(|l| l.cost).sum();
    let user = app.user("alice").await;
    assert!(
        user.quota >= 0,
        "the balance went below zero: {} units after {served} requests served",
        user.quota
    );
    assert_eq!(
        user.quota,
        start - spent,
        "balance + spending = starting balance"
    );
    assert_eq!(user.used_quota, spent);
    let successes: Vec<_> = logs
        .iter()
        .filter(|l| l.outcome == Outcome::Success)
        .collect();
    assert_eq!(successes.len(), served);
    for log in &successes {
        assert_eq!(
            log.prompt_tokens, BILLED_PROMPT,
            "billed what the upstream used"
        );
        assert!(
            log.implausible_usage.is_empty(),
            "{}",
            log.implausible_usage
        );
    }
    assert!(
        logs.iter()
            .filter(|l| l.outcome != Outcome::Success)
            .all(|l| l.outcome == Outcome::Refused && l.cost == 0)
    );
    let check = service::ledger::check(app.ctx(), &CLI).await.unwrap();
    assert!(check.discrepancies.is_empty(), "{:?}", check.discrepancies);
    // The relay admits against the same balance.
    app.reload().await;
    assert_eq!(
        app.state
            .directory
            .user(user.id)
            .unwrap()
            .balance
            .available(),
        user.quota
    );
}

fn chat_reply() -> Value {
    json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1_700_000_000, "model": MODEL,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "A summary."},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": BILLED_PROMPT, "completion_tokens": 5,
                  "total_tokens": BILLED_PROMPT + 5}
    })
}

fn responses_reply() -> Value {
    json!({
        "id": "resp_1", "object": "response", "created_at": 1_700_000_000, "status": "completed",
        "model": MODEL,
        "output": [{"type": "message", "id": "msg_1", "status": "completed", "role": "assistant",
                    "content": [{"type": "output_text", "text": "A summary.", "annotations": []}]}],
        "usage": {"input_tokens": BILLED_PROMPT, "input_tokens_details": {"cached_tokens": 0},
                  "output_tokens": 5, "output_tokens_details": {"reasoning_tokens": 0},
                  "total_tokens": BILLED_PROMPT + 5}
    })
}

/// A small PDF, as clients send one inline (its pages cost far more tokens than its bytes).
const PDF: &str = "JVBERi0xLjQKJcfsj6IKMSAwIG9iago8PC9UeXBlL0NhdGFsb2c+PgplbmRvYmoK";

fn chat_with_part(part: Value) -> Send {
    Send::Json(
        "/v1/chat/completions",
        json!({
            "model": MODEL, "max_tokens": 16,
            "messages": [{"role": "user", "content": [
                {"type": "text", "text": "Summarise this."}, part
            ]}]
        }),
    )
}

db_test! {
    /// Chat `file` parts.
    async fn chat_file_parts_cannot_overdraw(db: TestDb) {
        let part = json!({"type": "file", "file": {"filename": "report.pdf",
                          "file_data": format!("data:application/pdf;base64,{PDF}")}});
        burst(db, "openai", chat_reply(), chat_with_part(part)).await;
    }
}

db_test! {
    /// Chat `input_audio` parts.
    async fn chat_audio_parts_cannot_overdraw(db: TestDb) {
        let part = json!({"type": "input_audio", "input_audio": {"data": "UklGRiQAAABXQVZF", "format": "wav"}});
        burst(db, "openai", chat_reply(), chat_with_part(part)).await;
    }
}

db_test! {
    /// Responses `input_file` parts.
    async fn responses_files_cannot_overdraw(db: TestDb) {
        let send = Send::Json("/v1/responses", json!({
            "model": MODEL, "max_output_tokens": 16,
            "input": [{"role": "user", "content": [
                {"type": "input_text", "text": "Summarise this."},
                {"type": "input_file", "filename": "report.pdf",
                 "file_data": format!("data:application/pdf;base64,{PDF}")}
            ]}]
        }));
        burst(db, "openai", responses_reply(), send).await;
    }
}

db_test! {
    /// A Responses request continuing a conversation stored upstream, which the upstream bills
    /// again in full.
    async fn stored_conversations_cannot_overdraw(db: TestDb) {
        let send = Send::Json("/v1/responses", json!({
            "model": MODEL, "max_output_tokens": 16,
            "previous_response_id": "resp_earlier", "input": "And then?"
        }));
        burst(db, "openai", responses_reply(), send).await;
    }
}

db_test! {
    /// Anthropic `document` blocks on `/v1/messages`, the prompt written to the cache (billed
    /// at 1.25x input).
    async fn anthropic_documents_cannot_overdraw(db: TestDb) {
        let reply = json!({
            "id": "msg_1", "type": "message", "role": "assistant", "model": MODEL,
            "content": [{"type": "text", "text": "A summary."}],
            "stop_reason": "end_turn", "stop_sequence": null,
            "usage": {"input_tokens": 10_000, "cache_creation_input_tokens": BILLED_PROMPT - 10_000,
                      "cache_read_input_tokens": 0, "output_tokens": 5}
        });
        let send = Send::Anthropic(json!({
            "model": MODEL, "max_tokens": 16,
            "messages": [{"role": "user", "content": [
                {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": PDF},
                 "cache_control": {"type": "ephemeral"}},
                {"type": "text", "text": "Summarise this."}
            ]}]
        }));
        burst(db, "anthropic", reply, send).await;
    }
}

db_test! {
    /// Transcription uploads to a model priced per token (its audio tokens).
    async fn token_priced_uploads_cannot_overdraw(db: TestDb) {
        let reply = json!({
            "text": "Hello.",
            "usage": {"type": "tokens", "input_tokens": BILLED_PROMPT, "output_tokens": 5,
                      "total_tokens": BILLED_PROMPT + 5,
                      "input_token_details": {"audio_tokens": BILLED_PROMPT, "text_tokens": 0}}
        });
        burst(db, "openai", reply, Send::Upload(upload(MODEL, 4_000, &[]))).await;
    }
}

/// A chat request with a PDF, asking for one completion token.
fn with_file(model: &str) -> Value {
    json!({
        "model": model, "max_tokens": 1,
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": "Summarise this."},
            {"type": "file", "file": {"file_data": format!("data:application/pdf;base64,{PDF}")}}
        ]}]
    })
}

/// Whether an account holding exactly `units` may send `body` (its hold fits the balance).
async fn admitted(app: &TestApp, name: &str, units: i64, body: &Value) -> bool {
    let usd = format!("{}.{:06}", units / 500_000, units % 500_000 * 2);
    app.create_user(name, &usd).await;
    let key = app.key_for(name).await;
    app.reload().await;
    let status = app.chat(&key, body.clone()).await.status().as_u16();
    assert!([200, 429].contains(&status), "{status}");
    status == 200
}

db_test! {
    /// A model's context window comes from its price (`price set --context-tokens`, the
    /// `/api` field `context_tokens`), else the shipped table, else `default_context_tokens`;
    /// a request with a file holds exactly that many prompt tokens at the dearest prompt
    /// rate; an upstream reporting more is billed at the window and noted as implausible.
    async fn context_windows_bound_the_hold_and_the_bill(db: TestDb) {
        let app = TestApp::spawn(db).await;
        let upstream = FakeUpstream::start(Reply::chat("ok", 10, 1)).await;
        app.add_channel("main", &upstream, "cli-model,api-model,plain-model,gpt-4o-mini").await;
        let url = app.db_url.clone();
        let run = |args: &[&str]| tollgate(&url, args);

        // The command line: $1 per 1M input tokens, a window of 100,000 tokens.
        let shown = run(&["price", "set", "cli-model", "--input", "1", "--output", "0",
                          "--context-tokens", "100000", "--json"]).unwrap();
        let shown: Value = serde_json::from_str(&shown).unwrap();
        assert_eq!(shown["context_tokens"], 100_000);
        let listed = run(&["price", "list"]).unwrap();
        assert!(listed.contains("CONTEXT") && listed.contains("100000"), "{listed}");
        for bad in ["0", "-5", "1.5", "many", "100000001"] {
            let error = run(&["price", "set", "m", "--input", "1", "--output", "1",
                              &format!("--context-tokens={bad}")]).unwrap_err();
            assert!(error.contains("--context-tokens"), "{bad}: {error}");
        }

        // The API, in and out; a price with a cache-write rate above input.
        let api = Api { token: admin_token(&app, "root", "root").await, app: &app };
        let (status, cli_price) = api.get("/api/prices/cli-model").await;
        assert_eq!((status, &cli_price["context_tokens"]), (200, &json!(100_000)));
        let (status, price) = api.put("/api/prices/api-model", json!({
            "input": "1", "output": "0", "cache_write": "1.25", "context_tokens": 100_000
        })).await;
        assert_eq!(status, 200, "{price}");
        assert_eq!(price["context_tokens"], 100_000);
        for bad in [json!(0), json!(-1), json!(1.5), json!("lots"), json!(100_000_001)] {
            let (status, error) = api.put("/api/prices/bad-model", json!({
                "input": "1", "output": "1", "context_tokens": bad
            })).await;
            assert_eq!(status, 400, "{bad}: {error}");
            assert_eq!(error["error"]["field"], "context_tokens", "{error}");
        }
        let (status, plain) = api.put("/api/prices/plain-model", json!({"input": "1", "output": "0"})).await;
        assert_eq!((status, &plain["context_tokens"]), (200, &Value::Null));
        // Without a window of its own, a model the shipped table knows has the table's.
        app.price("gpt-4o-mini", "1", "0").await;

        // A hold of the window: 100,000 tokens at $1 per 1M is $0.10 = 50,000 units.
        assert!(admitted(&app, "exact", 50_000, &with_file("cli-model")).await);
        assert!(!admitted(&app, "short", 49_999, &with_file("cli-model")).await);
        // At the dearest prompt rate: the cache write's $1.25 per 1M.
        assert!(admitted(&app, "dear", 62_500, &with_file("api-model")).await);
        assert!(!admitted(&app, "cheap", 62_499, &with_file("api-model")).await);
        // The shipped table's 128,000 tokens for gpt-4o-mini.
        assert!(admitted(&app, "listed", 64_000, &with_file("gpt-4o-mini")).await);
        assert!(!admitted(&app, "unlisted", 63_999, &with_file("gpt-4o-mini")).await);
        // The option's 200,000 by default, then 100,000.
        assert!(!admitted(&app, "default", 50_000, &with_file("plain-model")).await);
        let (status, option) = api.put("/api/options/default_context_tokens", json!({"value": "100000"})).await;
        assert_eq!(status, 200, "{option}");
        assert!(admitted(&app, "lowered", 50_000, &with_file("plain-model")).await);
        let (status, error) = api.put("/api/options/default_context_tokens", json!({"value": "0"})).await;
        assert_eq!(status, 400, "{error}");
        // A prompt the body holds whole is held as counted, whatever the window.
        let plain_text = json!({"model": "plain-model", "max_tokens": 1,
                                "messages": [{"role": "user", "content": "Hello"}]});
        assert!(admitted(&app, "small", 100, &plain_text).await);

        // The upstream reports 250,000 prompt tokens for a 100,000-token window: billed at the
        // window, and the report kept as implausible.
        upstream.queue(Reply::chat("ok", 250_000, 1));
        assert!(admitted(&app, "over", 50_000, &with_file("cli-model")).await);
        app.flush().await;
        let logs = app.logs().await;
        let over = logs.last().unwrap();
        assert_eq!(over.username, "over");
        assert_eq!(over.prompt_tokens, 100_000);
        assert_eq!(over.cost, 50_000);
        assert!(
            over.implausible_usage.contains("prompt_tokens 250000 (billed 100000)"),
            "{}",
            over.implausible_usage
        );
        assert_eq!(app.user("over").await.quota, 0);
        let check = service::ledger::check(app.ctx(), &CLI).await.unwrap();
        assert!(check.discrepancies.is_empty(), "{:?}", check.discrepancies);
    }
}
