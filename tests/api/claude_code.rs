//! Claude Code 2.1's requests, as it sends them to a gateway: `/v1/messages?beta=true`, its beta
//! headers, 22 tools, adaptive thinking, context management, an output config, 32,000 output
//! tokens, a dated model name, and system messages after the first user turn. They work
//! through OpenAI-, Anthropic- and Gemini-type channels listing the undated model.

use serde_json::{Value, json};

use crate::helpers::{FakeUpstream, Reply, TestApp, TestDb, db_test, read_text};
use tollgate::domain::kinds::Outcome;
use tollgate::service::channels::ChannelInput;

const DATED: &str = "claude-sonnet-4-5-20250929";
const LISTED: &str = "claude-sonnet-4-5";
const BETAS: &str = "claude-code-20250219,mid-conversation-system-2026-04-07";

/// The tools Claude Code offers, each with a JSON Schema as it writes them.
fn tools() -> Vec<Value> {
    [
        "Task",
        "Bash",
        "Glob",
        "Grep",
        "ExitPlanMode",
        "Read",
        "Edit",
        "Write",
        "NotebookEdit",
        "WebFetch",
        "TodoWrite",
        "WebSearch",
        "BashOutput",
        "KillShell",
        "SlashCommand",
        "Skill",
        "AskUserQuestion",
        "ListMcpResourcesTool",
        "ReadMcpResourceTool",
        "EnterPlanMode",
        "mcp__ide__getDiagnostics",
        "mcp__ide__executeCode",
    ]
    .iter()
    .map(|name| {
        json!({
            "name": name,
            "description": format!("{name}: one of Claude Code's tools."),
            "input_schema": {
                "$schema": "http://json-schema.org/draft-07/schema#",
                "type": "object",
                "properties": {"command": {"type": "string", "description": "What to run"},
                               "timeout": {"type": "number"}},
                "required": ["command"],
                "additionalProperties": false
            }
        })
    })
    .collect()
}

fn claude_code_request() -> Value {
    json!({
        "model": DATED,
        "max_tokens": 32000,
        "stream": true,
        "thinking": {"type": "adaptive"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        "output_config": {"effort": "medium"},
        "metadata": {"user_id": "user_4f1c_account_9a2b_session_77e1"},
        "system": [
            {"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude.",
             "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": "Be concise. Use the tools.", "cache_control": {"type": "ephemeral"}}
        ],
        "tools": tools(),
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "<system-reminder>Today is 2026-11-30.</system-reminder>"},
                {"type": "text", "text": "Why does the build fail?", "cache_control": {"type": "ephemeral"}}
            ]},
            {"role": "system", "content": "The user switched the session to plan mode."},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Let me run it."},
                {"type": "tool_use", "id": "toolu_01A", "name": "Bash", "input": {"command": "cargo build"}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01A", "content": "error[E0425]: cannot find value `x`"}
            ]},
            {"role": "system", "content": [{"type": "text", "text": "Keep the plan short."}]}
        ]
    })
}

/// Sends the request the way Claude Code does.
async fn send(app: &TestApp, key: &str) -> reqwest::Response {
    app.client
        .post(app.url("/v1/messages?beta=true"))
        .header("x-api-key", key)
        .header("anthropic-version", "2023-06-01")
        .header("anthropic-beta", BETAS)
        .header("anthropic-dangerous-direct-browser-access", "true")
        .header("x-app", "cli")
        .header("user-agent", "claude-cli/2.1.4 (external, cli)")
        .json(&claude_code_request())
        .send()
        .await
        .unwrap()
}

/// A channel of `channel_type` listing the undated model, priced; alice with a key.
async fn setup(db: TestDb, upstream: &FakeUpstream, channel_type: &str) -> (TestApp, String) {
    let app = TestApp::spawn(db).await;
    let base_url = match channel_type {
        "openai" => upstream.base_url(),
        _ => upstream.origin(),
    };
    app.add_channel_with(ChannelInput {
        name: Some(channel_type.into()),
        channel_type: Some(channel_type.into()),
        base_url: Some(base_url),
        keys: Some(vec!["sk-upstream".into()]),
        models: Some(LISTED.into()),
        ..Default::default()
    })
    .await;
    app.price(LISTED, "3", "15").await;
    app.create_user("alice", "20").await;
    let key = app.key_for("alice").await;
    app.reload().await;
    (app, key)
}

/// The answer is a complete Anthropic event stream, and the request is billed and logged
/// under both names.
async fn expect_served(app: &TestApp, response: reqwest::Response) -> String {
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("request-id"));
    let text = read_text(response).await;
    assert!(text.contains("event: message_start"), "{text}");
    assert!(text.contains("event: message_stop"), "{text}");
    let logs = app.wait_for_logs(1).await;
    assert_eq!(logs[0].outcome, Outcome::Success, "{:?}", logs[0]);
    assert_eq!(logs[0].model, LISTED);
    assert_eq!(logs[0].requested_model, DATED);
    assert!(logs[0].cost > 0);
    text
}

db_test! {
    /// Through an OpenAI-type channel (DeepSeek, GLM, Qwen behind a gateway): every system
    /// message keeps its place in the chat request, the tools all arrive, Anthropic-only
    /// fields stay behind.
    async fn claude_code_through_an_openai_channel(db: TestDb) {
        let upstream = FakeUpstream::start(Reply::stream(&["The build ", "fails on `x`."], Some((900, 12)))).await;
        let (app, key) = setup(db, &upstream, "openai").await;
        let text = expect_served(&app, send(&app, &key).await).await;
        assert!(text.contains("fails on `x`."), "{text}");
        let sent = upstream.requests()[0].json();
        assert_eq!(sent["model"], LISTED);
        let roles: Vec<&str> = sent["messages"].as_array().unwrap().iter().map(|m| m["role"].as_str().unwrap()).collect();
        assert_eq!(roles, ["system", "user", "system", "assistant", "tool", "system"]);
        assert_eq!(sent["messages"][2]["content"], "The user switched the session to plan mode.");
        assert_eq!(sent["messages"][5]["content"], "Keep the plan short.");
        assert_eq!(sent["tools"].as_array().unwrap().len(), 22);
        assert_eq!(sent["max_tokens"], 32000);
        for dropped in ["thinking", "context_management", "output_config"] {
            assert!(sent.get(dropped).is_none(), "{dropped} is Anthropic's only");
        }
    }
}

db_test! {
    /// Through an Anthropic channel: the body goes as sent (system messages in place) with the
    /// undated name, and the client's beta opt-ins go with it.
    async fn claude_code_through_an_anthropic_channel(db: TestDb) {
        let upstream = FakeUpstream::start(Reply::Sse {
            body: crate::inbound_messages::anthropic_events(),
            split: 13,
            delay: std::time::Duration::ZERO,
        })
        .await;
        let (app, key) = setup(db, &upstream, "anthropic").await;
        expect_served(&app, send(&app, &key).await).await;
        let sent = &upstream.requests()[0];
        assert_eq!(sent.path, "/v1/messages");
        assert_eq!(sent.headers["anthropic-beta"], BETAS);
        let mut expected = claude_code_request();
        expected["model"] = json!(LISTED);
        assert_eq!(sent.json(), expected);
        assert_eq!(app.logs().await[0].upstream_request_id, "upstream-req-1");
    }
}

db_test! {
    /// Through a Gemini channel: system messages from anywhere merge, in order, into its one
    /// system instruction; the conversation keeps user and model turns only.
    async fn claude_code_through_a_gemini_channel(db: TestDb) {
        let upstream = FakeUpstream::start(Reply::Sse {
            body: crate::provider_gemini::gemini_events(),
            split: 11,
            delay: std::time::Duration::ZERO,
        })
        .await;
        let (app, key) = setup(db, &upstream, "gemini").await;
        expect_served(&app, send(&app, &key).await).await;
        let sent = upstream.requests()[0].json();
        let system: Vec<&str> = sent["systemInstruction"]["parts"].as_array().unwrap().iter()
            .map(|p| p["text"].as_str().unwrap()).collect();
        assert_eq!(system.len(), 3, "{system:?}");
        assert!(system[0].starts_with("You are Claude Code"), "{system:?}");
        assert_eq!(system[1], "The user switched the session to plan mode.");
        assert_eq!(system[2], "Keep the plan short.");
        let roles: Vec<&str> = sent["contents"].as_array().unwrap().iter().map(|c| c["role"].as_str().unwrap()).collect();
        assert!(roles.iter().all(|r| *r == "user" || *r == "model"), "{roles:?}");
        assert_eq!(sent["tools"][0]["functionDeclarations"].as_array().unwrap().len(), 22);
        assert!(upstream.requests()[0].path.contains(LISTED));
    }
}
