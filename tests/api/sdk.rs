//! The official OpenAI Python SDK against Tollgate: streaming and not, embeddings, model
//! listing and error handling. The interpreter comes from `TOLLGATE_TEST_PYTHON` (a venv with
//! `openai` installed; `.ci/run` creates it).

use std::process::Command;

use serde_json::Value;

use crate::helpers::upstream::StreamEnd;
use crate::helpers::{FakeUpstream, Reply, TestApp, db_test};
use tollgate::domain::kinds::Outcome;

const SCRIPT: &str = r#"
import json, sys
import openai
from openai import OpenAI

client = OpenAI(base_url=sys.argv[1], api_key=sys.argv[2], max_retries=0)
out = {}

stream = client.chat.completions.create(
    model="gpt-4o-mini",
    messages=[{"role": "user", "content": "Say hello"}],
    stream=True,
    stream_options={"include_usage": True},
)
pieces, usage = [], None
for chunk in stream:
    if chunk.choices and chunk.choices[0].delta.content:
        pieces.append(chunk.choices[0].delta.content)
    if chunk.usage:
        usage = chunk.usage.model_dump()
out["stream_text"] = "".join(pieces)
out["stream_usage"] = usage

reply = client.chat.completions.create(
    model="gpt-4o-mini", messages=[{"role": "user", "content": "Say hello"}]
)
out["text"] = reply.choices[0].message.content

emb = client.embeddings.create(model="text-embedding-3-small", input="hello")
out["embedding_len"] = len(emb.data[0].embedding)

out["models"] = sorted(m.id for m in client.models.list())

try:
    client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])
except openai.NotFoundError as e:
    out["not_found"] = {"status": e.status_code, "code": e.code}

bad = OpenAI(base_url=sys.argv[1], api_key="sk-wrong", max_retries=0)
try:
    bad.models.list()
except openai.AuthenticationError as e:
    out["auth_error"] = e.status_code

print(json.dumps(out))
"#;

pub(crate) fn python() -> Option<String> {
    match std::env::var("TOLLGATE_TEST_PYTHON") {
        Ok(python) => Some(python),
        Err(_) if std::env::var("TOLLGATE_REQUIRE_ALL").is_ok_and(|v| v == "1") => {
            panic!(
                "TOLLGATE_TEST_PYTHON is not set (TOLLGATE_REQUIRE_ALL=1 requires the SDK tests)"
            )
        }
        Err(_) => {
            eprintln!(
                "skipped: TOLLGATE_TEST_PYTHON is not set (a python with the openai package)"
            );
            None
        }
    }
}

db_test! {
    async fn openai_python_sdk_works_end_to_end(db: TestDb) {
        let Some(python) = python() else { return };
        let app = TestApp::spawn(db).await;
        let upstream = FakeUpstream::start(Reply::Stream {
            pieces: vec!["Hello".into(), " from".into(), " Tollgate".into()],
            usage: Some((1000, 500)),
            delay: std::time::Duration::from_millis(20),
            end: StreamEnd::Done,
        })
        .await;
        app.add_channel("main", &upstream, "gpt-4o-mini,text-embedding-3-small").await;
        app.price("gpt-4o-mini", "0.15", "0.60").await;
        app.price("text-embedding-3-small", "0.02", "0").await;
        let user = app.create_user("alice", "5").await;
        let (key, token) = app
            .create_key(tollgate::service::tokens::CreateToken {
                username: "alice".into(),
                name: "sdk".into(),
                quota_usd: Some("1".into()),
                ..Default::default()
            })
            .await;
        app.reload().await;
        // After the stream, the upstream answers the plain chat and the embedding.
        upstream.queue(Reply::Stream {
            pieces: vec!["Hello".into(), " from".into(), " Tollgate".into()],
            usage: Some((1000, 500)),
            delay: std::time::Duration::from_millis(20),
            end: StreamEnd::Done,
        });
        upstream.queue(Reply::chat("Plain hello", 1000, 500));
        upstream.queue(Reply::Json(200, serde_json::json!({
            "object": "list",
            "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2, 0.3]}],
            "model": "text-embedding-3-small",
            "usage": {"prompt_tokens": 50000, "total_tokens": 50000}
        })));

        let base = app.url("/v1");
        let output = tokio::task::spawn_blocking(move || {
            Command::new(python).args(["-c", SCRIPT, &base, &key]).output().expect("run python")
        })
        .await
        .unwrap();
        assert!(output.status.success(), "python failed: {}", String::from_utf8_lossy(&output.stderr));
        let out: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(out["stream_text"], "Hello from Tollgate");
        assert_eq!(out["stream_usage"]["prompt_tokens"], 1000);
        assert_eq!(out["text"], "Plain hello");
        assert_eq!(out["embedding_len"], 3);
        assert_eq!(out["models"], serde_json::json!(["gpt-4o-mini", "text-embedding-3-small"]));
        assert_eq!(out["not_found"]["status"], 404);
        assert_eq!(out["not_found"]["code"], "model_not_found");
        assert_eq!(out["auth_error"], 401);

        let logs = app.wait_for_logs(4).await;
        let billed: Vec<&tollgate::service::db::logs::RequestLog> =
            logs.iter().filter(|l| l.outcome == Outcome::Success).collect();
        assert_eq!(billed.len(), 3);
        // 1000 × $0.15/M + 500 × $0.60/M = $0.00045 = 225 units, streamed and not.
        assert_eq!(billed[0].cost, 225);
        assert!(billed[0].is_stream);
        assert_eq!(billed[1].cost, 225);
        // 50,000 × $0.02/M = $0.001 = 500 units.
        assert_eq!(billed[2].cost, 500);
        let total = 225 + 225 + 500;
        assert_eq!(app.user("alice").await.quota, user.quota - total);
        assert_eq!(app.token(token.id).await.remaining_quota, token.remaining_quota - total);
    }
}
