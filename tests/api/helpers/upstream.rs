//! A fake OpenAI-compatible upstream on port 0. Each request is recorded and answered with the
//! next queued [`Reply`] (or the default one): fixed JSON, streams with delays, errors, hangs,
//! and connections dropped mid-answer.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::response::Response;
use futures::StreamExt;
use http::{HeaderMap, Method, Uri};
use serde_json::{Value, json};

/// How the upstream answers one request.
#[derive(Clone, Debug)]
pub enum Reply {
    /// A JSON body with this status.
    Json(u16, Value),
    /// Any body with this status and content type.
    Raw(u16, &'static str, &'static str),
    /// An SSE stream: each text piece becomes a chat chunk, `delay` apart. When the request
    /// asked for `stream_options.include_usage` and `usage` is set, a usage-only chunk follows,
    /// as OpenAI sends it. `end` says how the stream finishes.
    Stream {
        pieces: Vec<String>,
        usage: Option<(i64, i64)>,
        delay: Duration,
        end: StreamEnd,
    },
    /// A raw event stream in another provider's format, sent in pieces of `split` bytes (cut
    /// anywhere, inside events and inside UTF-8 characters), `delay` apart.
    Sse {
        body: String,
        split: usize,
        delay: Duration,
    },
    /// Newline-delimited JSON (Ollama's streams), sent in pieces like `Sse`.
    JsonLines {
        body: String,
        split: usize,
        delay: Duration,
    },
    /// AWS's binary event stream (Bedrock's ConverseStream), sent in pieces like `Sse`.
    EventStream {
        body: Vec<u8>,
        split: usize,
        delay: Duration,
    },
    /// A 200 answer of any content type in pieces of `split` bytes, with a pause of `delay`
    /// halfway through; with `break_at`, the connection breaks once that many bytes are sent.
    Chunked {
        content_type: &'static str,
        body: Vec<u8>,
        split: usize,
        delay: Duration,
        break_at: Option<usize>,
    },
    /// Never answers.
    Hang,
    /// Sends headers, then breaks the connection before any body.
    Broken,
    /// Sends stream headers, then breaks the connection before the first event.
    BrokenStream,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamEnd {
    /// `data: [DONE]` and a clean end.
    Done,
    /// The connection breaks after the last piece.
    Error,
    /// The upstream stays silent after the last piece.
    Silent,
}

impl Reply {
    /// A chat completion with this content and usage.
    pub fn chat(content: &str, prompt_tokens: i64, completion_tokens: i64) -> Reply {
        Reply::Json(
            200,
            json!({
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "created": 1_700_000_000,
                "model": "fake-model",
                "choices": [{
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop"
                }],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens
                }
            }),
        )
    }

    /// An OpenAI error envelope with this status.
    pub fn error(status: u16, message: &str) -> Reply {
        Reply::Json(
            status,
            json!({"error": {"message": message, "type": "upstream_error", "code": "upstream"}}),
        )
    }

    /// A short stream that takes `pause` between its two pieces: a request held in flight
    /// while a test changes something.
    pub fn slow_stream(pause: Duration) -> Reply {
        Reply::Stream {
            pieces: vec!["slow".into(), " answer".into()],
            usage: Some((5, 1)),
            delay: pause,
            end: StreamEnd::Done,
        }
    }

    pub fn stream(pieces: &[&str], usage: Option<(i64, i64)>) -> Reply {
        Reply::Stream {
            pieces: pieces.iter().map(|p| p.to_string()).collect(),
            usage,
            delay: Duration::ZERO,
            end: StreamEnd::Done,
        }
    }
}

/// A request the upstream received.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub path: String,
    /// The query string, without `?` (empty when there is none).
    pub query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Recorded {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

struct Inner {
    queue: VecDeque<Reply>,
    default: Reply,
    /// Answer for `GET …/models` (the background probe).
    models_status: u16,
    /// Keys the upstream refuses or rate-limits: every request carrying one (probes too) is
    /// answered with that status.
    key_statuses: std::collections::HashMap<String, u16>,
    requests: Vec<Recorded>,
}

#[derive(Clone)]
pub struct FakeUpstream {
    addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
}

impl FakeUpstream {
    /// Starts an upstream that answers every request with `default` unless replies are queued.
    pub async fn start(default: Reply) -> FakeUpstream {
        let inner = Arc::new(Mutex::new(Inner {
            queue: VecDeque::new(),
            default,
            models_status: 200,
            key_statuses: Default::default(),
            requests: Vec::new(),
        }));
        let router = Router::new().fallback(handle).with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake upstream");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        FakeUpstream { addr, inner }
    }

    /// A chat upstream that always answers "Hello!" with 10 prompt and 5 completion tokens.
    pub async fn chat() -> FakeUpstream {
        Self::start(Reply::chat("Hello!", 10, 5)).await
    }

    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The bare origin, as an admin pastes `https://api.anthropic.com`.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn queue(&self, reply: Reply) {
        self.lock().queue.push_back(reply);
    }

    pub fn set_default(&self, reply: Reply) {
        self.lock().default = reply;
    }

    pub fn set_models_status(&self, status: u16) {
        self.lock().models_status = status;
    }

    /// Answers every request with `key` with this status (None: serve it normally again).
    pub fn set_key_status(&self, key: &str, status: Option<u16>) {
        let mut inner = self.lock();
        match status {
            Some(status) => inner.key_statuses.insert(key.to_string(), status),
            None => inner.key_statuses.remove(key),
        };
    }

    /// Requests other than the background probe's model listing.
    pub fn requests(&self) -> Vec<Recorded> {
        self.lock()
            .requests
            .iter()
            .filter(|r| !r.path.ends_with("/models"))
            .cloned()
            .collect()
    }

    pub fn request_count(&self) -> usize {
        self.requests().len()
    }

    pub fn probe_count(&self) -> usize {
        self.lock()
            .requests
            .iter()
            .filter(|r| r.path.ends_with("/models"))
            .count()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("upstream state")
    }
}

/// A 200 answer sent in pieces of `split` bytes, `delay` apart.
fn chunked(content_type: &'static str, body: Vec<u8>, split: usize, delay: Duration) -> Response {
    let pieces: Vec<Bytes> = body
        .chunks(split.max(1))
        .map(Bytes::copy_from_slice)
        .collect();
    let stream =
        futures::stream::iter(pieces.into_iter().enumerate()).then(move |(i, piece)| async move {
            if i > 0 && !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            Ok::<Bytes, std::io::Error>(piece)
        });
    Response::builder()
        .status(200)
        .header("content-type", content_type)
        .body(Body::from_stream(stream))
        .expect("response")
}

/// The key a request carries, whichever header the provider uses.
fn credential(headers: &HeaderMap) -> String {
    let value = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    value("authorization")
        .map(|v| v.trim_start_matches("Bearer ").to_string())
        .or_else(|| value("x-api-key").map(str::to_string))
        .or_else(|| value("api-key").map(str::to_string))
        .or_else(|| value("x-goog-api-key").map(str::to_string))
        .unwrap_or_default()
}

/// The model the request named, echoed back like a real upstream does.
fn requested_model(body: &Value) -> String {
    body["model"].as_str().unwrap_or("fake-model").to_string()
}

fn chunk(model: &str, delta: Value, finish: Option<&str>) -> String {
    let chunk = json!({
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]
    });
    format!("data: {chunk}\n\n")
}

/// Every answer carries the upstream's own request id, `upstream-req-N` for the Nth request,
/// in the header the provider uses (Anthropic's `request-id`, OpenAI's `x-request-id`).
async fn handle(
    State(inner): State<Arc<Mutex<Inner>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let anthropic = headers.contains_key("anthropic-version");
    let mut response = answer(State(inner.clone()), method, uri, headers, body).await;
    let number = inner.lock().expect("upstream state").requests.len();
    let name = if anthropic {
        "request-id"
    } else {
        "x-request-id"
    };
    if let Ok(value) = http::HeaderValue::try_from(format!("upstream-req-{number}")) {
        response.headers_mut().insert(name, value);
    }
    response
}

async fn answer(
    State(inner): State<Arc<Mutex<Inner>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let key = credential(&headers);
    let (reply, models_status) = {
        let mut inner = inner.lock().expect("upstream state");
        let key_status = inner.key_statuses.get(&key).copied();
        inner.requests.push(Recorded {
            path: path.clone(),
            query: uri.query().unwrap_or_default().to_string(),
            headers,
            body: body.clone(),
        });
        if let Some(status) = key_status {
            (
                Some(Reply::error(status, &format!("key refused with {status}"))),
                0,
            )
        } else if method == Method::GET && path.ends_with("/models") {
            (None, inner.models_status)
        } else {
            let reply = inner
                .queue
                .pop_front()
                .unwrap_or_else(|| inner.default.clone());
            (Some(reply), 0)
        }
    };
    let Some(reply) = reply else {
        return json_response(
            models_status,
            json!({"object": "list", "data": [{"id": "fake-model", "object": "model"}]}),
        );
    };
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let json_lines = matches!(reply, Reply::JsonLines { .. });
    match reply {
        Reply::Json(status, body) => json_response(status, body),
        Reply::Raw(status, content_type, body) => Response::builder()
            .status(status)
            .header("content-type", content_type)
            .body(Body::from(body))
            .expect("response"),
        Reply::Hang => {
            std::future::pending::<()>().await;
            unreachable!()
        }
        Reply::Sse { body, split, delay } | Reply::JsonLines { body, split, delay } => {
            let content_type = if json_lines {
                "application/x-ndjson"
            } else {
                "text/event-stream"
            };
            chunked(content_type, body.into_bytes(), split, delay)
        }
        Reply::EventStream { body, split, delay } => {
            chunked("application/vnd.amazon.eventstream", body, split, delay)
        }
        Reply::Chunked {
            content_type,
            body,
            split,
            delay,
            break_at,
        } => {
            let sent = break_at.unwrap_or(body.len()).min(body.len());
            let pieces: Vec<Bytes> = body[..sent]
                .chunks(split.max(1))
                .map(Bytes::copy_from_slice)
                .collect();
            let halfway = pieces.len() / 2;
            let stream = futures::stream::iter(pieces.into_iter().enumerate())
                .then(move |(i, piece)| async move {
                    if i == halfway && !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                    }
                    Ok::<Bytes, std::io::Error>(piece)
                })
                .chain(futures::stream::iter(
                    break_at.map(|_| Err(std::io::Error::other("connection dropped"))),
                ));
            Response::builder()
                .status(200)
                .header("content-type", content_type)
                .body(Body::from_stream(stream))
                .expect("response")
        }
        Reply::Broken | Reply::BrokenStream => {
            let content_type = if matches!(reply, Reply::Broken) {
                "application/json"
            } else {
                "text/event-stream"
            };
            let stream = futures::stream::once(async {
                Err::<Bytes, std::io::Error>(std::io::Error::other("connection dropped"))
            });
            Response::builder()
                .status(200)
                .header("content-type", content_type)
                .body(Body::from_stream(stream))
                .expect("response")
        }
        Reply::Stream {
            pieces,
            usage,
            delay,
            end,
        } => {
            let model = requested_model(&request);
            let wants_usage = request["stream_options"]["include_usage"] == true;
            let mut events: Vec<String> = vec![chunk(
                &model,
                json!({"role": "assistant", "content": ""}),
                None,
            )];
            let last = pieces.len().saturating_sub(1);
            for (i, piece) in pieces.iter().enumerate() {
                let finish = (i == last && end == StreamEnd::Done).then_some("stop");
                events.push(chunk(&model, json!({"content": piece}), finish));
            }
            if end == StreamEnd::Done {
                if let (Some((prompt, completion)), true) = (usage, wants_usage) {
                    let usage_chunk = json!({
                        "id": "chatcmpl-fake",
                        "object": "chat.completion.chunk",
                        "created": 1_700_000_000,
                        "model": model,
                        "choices": [],
                        "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                                  "total_tokens": prompt + completion}
                    });
                    events.push(format!("data: {usage_chunk}\n\n"));
                }
                events.push("data: [DONE]\n\n".to_string());
            }
            let body = futures::stream::iter(events.into_iter().enumerate())
                .then(move |(i, event)| async move {
                    if i > 0 && !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                    }
                    Ok::<Bytes, std::io::Error>(Bytes::from(event))
                })
                .chain(futures::stream::once(async move {
                    match end {
                        StreamEnd::Done => Ok(Bytes::new()),
                        StreamEnd::Error => {
                            tokio::time::sleep(delay).await;
                            Err(std::io::Error::other("upstream broke the stream"))
                        }
                        StreamEnd::Silent => {
                            std::future::pending::<()>().await;
                            Ok(Bytes::new())
                        }
                    }
                }));
            Response::builder()
                .status(200)
                .header("content-type", "text/event-stream")
                .body(Body::from_stream(body))
                .expect("response")
        }
    }
}

fn json_response(status: u16, body: Value) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .expect("response")
}

/// An address where nothing listens: connecting to it fails at once.
pub async fn dead_address() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    drop(listener);
    format!("http://{addr}/v1")
}
