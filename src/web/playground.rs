//! The playground: a conversation with a model as the signed-in person, billed to one of their
//! keys, picked by id and checked to be theirs. Each message goes through the relay in-process
//! (`relay::proxy::relay_with`), so it is authenticated, routed, billed and logged exactly like
//! `/v1`, and the key itself never reaches the browser.
//!
//! The conversation so far travels in the form (a hidden field holding its turns as JSON,
//! bounded in size), so it goes on across turns without JavaScript: the form posts to
//! `/playground` and the page comes back with the whole answer added. With JavaScript,
//! `playground.js` posts the same form to `/playground/stream`, shows the answer as it streams
//! and adds the turn to the form itself. Either way each answer shows its tokens and cost,
//! read from the request's own log row.

use askama::Template;
use askama_web::WebTemplate;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use super::error::WebError;
use super::form::{FieldErrors, Posted};
use super::format;
use super::page::{Page, SignedIn};
use crate::domain::kinds::Status;
use crate::domain::pricing::ModelPrice;
use crate::domain::secret_key;
use crate::msg;
use crate::protocol::Endpoint;
use crate::protocol::client::ClientAddress;
use crate::records::tokens::TokenRow;
use crate::relay::proxy::{CallerKey, relay_with};
use crate::service::logs::LogQuery;
use crate::service::sessions::Viewer;
use crate::service::{self, Caller};
use crate::state::AppState;

/// The largest whole answer the page reads back (the relay bounds answers itself too).
const ANSWER_LIMIT: usize = 4 * 1024 * 1024;

/// The most the conversation carried in the form may weigh, as JSON: the oldest turns are left
/// out beyond it (the form's own limit is a few times this, percent-encoded).
const HISTORY_BYTES: usize = 48 * 1024;

/// The most turns carried.
const HISTORY_TURNS: usize = 40;

/// The largest `max_tokens` the form accepts.
const MAX_TOKENS: i64 = 1_000_000;

/// The SSE event `/playground/stream` adds after the relay's stream: the answer's tokens and
/// cost, as logged.
const USAGE_EVENT: &str = "usage";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Role {
    User,
    Assistant,
}

/// What one answer used, as its log row has it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct TurnUsage {
    prompt_tokens: i64,
    completion_tokens: i64,
    /// Quota units billed.
    cost: i64,
}

/// One message of the conversation, as carried in the form.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Turn {
    role: Role,
    content: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    usage: Option<TurnUsage>,
}

/// The conversation as carried: its turns, the newest kept within [`HISTORY_BYTES`] and
/// [`HISTORY_TURNS`], whole exchanges at a time; and whether older turns were left out.
fn bounded(mut turns: Vec<Turn>) -> (Vec<Turn>, bool) {
    let mut dropped = false;
    let weight = |turns: &[Turn]| serde_json::to_string(turns).map_or(usize::MAX, |j| j.len());
    while !turns.is_empty() && (turns.len() > HISTORY_TURNS || weight(&turns) > HISTORY_BYTES) {
        // An exchange is the person's message and the answer after it.
        let exchange = if turns.len() > 1 && turns[1].role == Role::Assistant {
            2
        } else {
            1
        };
        turns.drain(..exchange);
        dropped = true;
    }
    (turns, dropped)
}

/// The conversation a form carried; what cannot be read starts it anew.
fn carried(json: &str) -> (Vec<Turn>, bool) {
    if json.trim().is_empty() {
        return (Vec::new(), false);
    }
    match serde_json::from_str::<Vec<Turn>>(json) {
        Ok(turns) => bounded(turns),
        Err(_) => (Vec::new(), true),
    }
}

/// A turn as the page shows it.
pub struct ShownTurn {
    from_person: bool,
    content: String,
    /// Tokens and cost of an answer, in words; empty for the person's messages.
    meta: String,
}

/// A model as the list offers it: its name, and its price in words.
pub struct ModelChoice {
    name: String,
    label: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "playground.html")]
pub struct PlaygroundPage {
    page: Page,
    /// The person's usable keys: id and name.
    keys: Vec<(i64, String)>,
    /// The group's models, the cheapest first.
    models: Vec<ModelChoice>,
    key_id: i64,
    model: String,
    system: String,
    temperature: String,
    max_tokens: String,
    message: String,
    conversation: Vec<ShownTurn>,
    /// The conversation as the form carries it (JSON).
    history: String,
    /// Older turns were left out to keep the conversation within bounds.
    trimmed: bool,
    errors: FieldErrors,
}

impl PlaygroundPage {
    /// Whether the settings (system message, temperature, most tokens) are worth showing open.
    fn settings_open(&self) -> bool {
        !self.system.trim().is_empty()
            || !self.temperature.trim().is_empty()
            || !self.max_tokens.trim().is_empty()
            || ["system", "temperature", "max_tokens"]
                .iter()
                .any(|f| self.errors.has(f))
    }
}

fn usable(key: &TokenRow, now_ms: i64) -> bool {
    key.status == Status::Active && key.expires_at.is_none_or(|at| at > now_ms)
}

/// The models `group` can call, the cheapest first, each labelled with its price after the
/// group's ratio.
fn model_choices(state: &AppState, page: &Page, group: &str) -> Vec<ModelChoice> {
    let snapshot = state.snapshot.load();
    let ratio = snapshot.group_ratio(group);
    let models = super::models::cheapest_first(&snapshot, group);
    models
        .into_iter()
        .map(|(name, price)| {
            let label = match price {
                Some(ModelPrice::PerToken { input, output, .. }) => crate::i18n::text(
                    page.lang,
                    "web-playground-model-per-token",
                    &[
                        ("model", &name),
                        ("input", &format::price(input, ratio)),
                        ("output", &format::price(output, ratio)),
                    ],
                ),
                Some(ModelPrice::PerRequest(each)) => crate::i18n::text(
                    page.lang,
                    "web-playground-model-per-request",
                    &[("model", &name), ("price", &format::price(each, ratio))],
                ),
                None => name.clone(),
            };
            ModelChoice { name, label }
        })
        .collect()
}

/// Tokens and cost of an answer, in words.
fn usage_text(page: &Page, usage: &TurnUsage) -> String {
    crate::i18n::text(
        page.lang,
        "web-playground-usage",
        &[
            ("input", &usage.prompt_tokens.to_string()),
            ("output", &usage.completion_tokens.to_string()),
            ("cost", &page.usd(&usage.cost)),
        ],
    )
}

/// The page with the person's keys and their group's models, what the form holds, and the
/// conversation so far.
async fn page_for(
    state: &AppState,
    page: Page,
    user: &Viewer,
    form: Option<&ChatForm>,
    turns: &[Turn],
) -> Result<PlaygroundPage, WebError> {
    let caller = Caller::User(user.id);
    let now = crate::clock::now_ms();
    let keys: Vec<(i64, String)> =
        service::tokens::list_for_user(&state.ctx, &caller, &user.username)
            .await
            .map_err(|e| page.failed(e))?
            .iter()
            .filter(|k| usable(k, now))
            .map(|k| (k.id, k.name.clone()))
            .collect();
    let models = model_choices(state, &page, &user.group);
    let conversation = turns
        .iter()
        .map(|turn| ShownTurn {
            from_person: turn.role == Role::User,
            content: turn.content.clone(),
            meta: turn
                .usage
                .as_ref()
                .map(|u| usage_text(&page, u))
                .unwrap_or_default(),
        })
        .collect();
    let field = |pick: fn(&ChatForm) -> &String| form.map(|f| pick(f).clone()).unwrap_or_default();
    Ok(PlaygroundPage {
        key_id: form.map_or_else(|| keys.first().map_or(0, |k| k.0), |f| f.key_id),
        model: form.map_or_else(
            || models.first().map(|m| m.name.clone()).unwrap_or_default(),
            |f| f.model.clone(),
        ),
        system: field(|f| &f.system),
        temperature: field(|f| &f.temperature),
        max_tokens: field(|f| &f.max_tokens),
        message: field(|f| &f.message),
        history: serde_json::to_string(turns).unwrap_or_default(),
        conversation,
        trimmed: false,
        keys,
        models,
        errors: FieldErrors::default(),
        page,
    })
}

pub async fn show(
    State(state): State<AppState>,
    SignedIn { page, user }: SignedIn,
) -> Result<Response, WebError> {
    Ok(page_for(&state, page, &user, None, &[])
        .await?
        .into_response())
}

#[derive(Clone, Debug, Deserialize)]
pub struct ChatForm {
    #[serde(default)]
    key_id: i64,
    #[serde(default)]
    model: String,
    #[serde(default)]
    system: String,
    /// Empty: the model's default.
    #[serde(default)]
    temperature: String,
    /// Empty: the model's default.
    #[serde(default)]
    max_tokens: String,
    #[serde(default)]
    message: String,
    /// The conversation so far, as JSON turns.
    #[serde(default)]
    history: String,
}

/// A form's settings, checked.
struct Settings {
    digest: [u8; 32],
    temperature: Option<f64>,
    max_tokens: Option<i64>,
}

/// The chat request the form describes, as a client would send it to `/v1/chat/completions`:
/// the system message, the conversation so far, and the new message.
fn chat_request(
    form: &ChatForm,
    turns: &[Turn],
    settings: &Settings,
    stream: bool,
) -> serde_json::Value {
    let mut messages = Vec::new();
    if !form.system.trim().is_empty() {
        messages.push(serde_json::json!({"role": "system", "content": form.system}));
    }
    for turn in turns {
        messages.push(serde_json::json!({"role": turn.role, "content": turn.content}));
    }
    messages.push(serde_json::json!({"role": "user", "content": form.message}));
    let mut request = serde_json::json!({"model": form.model, "messages": messages});
    if let Some(temperature) = settings.temperature {
        request["temperature"] = serde_json::json!(temperature);
    }
    if let Some(max_tokens) = settings.max_tokens {
        request["max_tokens"] = serde_json::json!(max_tokens);
    }
    if stream {
        request["stream"] = serde_json::Value::Bool(true);
        request["stream_options"] = serde_json::json!({"include_usage": true});
    }
    request
}

/// The digest of the person's own usable key with this id; another person's key, or a
/// disabled or expired one, is not offered.
async fn own_key(state: &AppState, user: &Viewer, key_id: i64) -> Option<[u8; 32]> {
    let key = service::tokens::get(&state.ctx, &Caller::User(user.id), key_id)
        .await
        .ok()?;
    usable(&key, crate::clock::now_ms())
        .then(|| secret_key::digest_from_hex(&key.key_hash))
        .flatten()
}

/// Checks the form; its settings when it is fine, else the problems by field, in the form's
/// order.
async fn check(
    state: &AppState,
    page: &Page,
    user: &Viewer,
    form: &ChatForm,
) -> Result<Settings, FieldErrors> {
    let mut errors = FieldErrors::default();
    let digest = own_key(state, user, form.key_id).await;
    if digest.is_none() {
        errors.add("key_id", page.say(&msg!("key-not-found", id = form.key_id)));
    }
    let temperature = match form.temperature.trim() {
        "" => None,
        text => match text.parse::<f64>() {
            Ok(t) if (0.0..=2.0).contains(&t) => Some(t),
            _ => {
                errors.add("temperature", page.t("web-playground-temperature-range"));
                None
            }
        },
    };
    let max_tokens = match form.max_tokens.trim() {
        "" => None,
        text => match text.parse::<i64>() {
            Ok(n) if (1..=MAX_TOKENS).contains(&n) => Some(n),
            _ => {
                errors.add(
                    "max_tokens",
                    page.t1(
                        "web-playground-max-tokens-range",
                        "max",
                        &MAX_TOKENS.to_string(),
                    ),
                );
                None
            }
        },
    };
    if form.message.trim().is_empty() {
        errors.add("message", page.t("web-playground-message-empty"));
    }
    match digest {
        Some(digest) if errors.is_empty() => Ok(Settings {
            digest,
            temperature,
            max_tokens,
        }),
        _ => Err(errors),
    }
}

/// Hands the chat to the relay as the key's owner, from the browser's address.
async fn relay_chat(
    state: &AppState,
    ip: std::net::IpAddr,
    request: serde_json::Value,
    digest: [u8; 32],
) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    relay_with(
        state.clone(),
        Endpoint::ChatCompletions,
        CallerKey::Digest(digest),
        ip,
        headers,
        Body::from(request.to_string()),
    )
    .await
}

/// The relay's id for the request it answered.
fn request_id(response: &Response) -> Option<String> {
    response
        .headers()
        .get(crate::relay::REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// What the request used and cost, from its log row: the same figures as the usage log. The
/// relay has settled the request once its answer is read whole; the billing writer is asked to
/// write what it holds first.
async fn logged_usage(state: &AppState, caller: &Caller, request_id: &str) -> Option<TurnUsage> {
    state.billing.flush().await;
    let query = LogQuery {
        request_id: Some(request_id.to_string()),
        limit: Some(1),
        ..LogQuery::default()
    };
    let (rows, _) = service::logs::query(&state.ctx, caller, query).await.ok()?;
    rows.first().map(|log| TurnUsage {
        prompt_tokens: log.prompt_tokens,
        completion_tokens: log.completion_tokens,
        cost: log.cost,
    })
}

/// The form without JavaScript: the page comes back with the answer added to the
/// conversation.
pub async fn send(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    SignedIn { page, user }: SignedIn,
    Posted(form): Posted<ChatForm>,
) -> Result<Response, WebError> {
    let (mut turns, trimmed) = carried(&form.history);
    let settings = match check(&state, &page, &user, &form).await {
        Ok(settings) => settings,
        Err(errors) => {
            let mut again = page_for(&state, page, &user, Some(&form), &turns).await?;
            again.errors = errors;
            again.trimmed = trimmed;
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, again).into_response());
        }
    };
    let ip = client;
    let request = chat_request(&form, &turns, &settings, false);
    let response = relay_chat(&state, ip, request, settings.digest).await;
    let status = response.status();
    let id = request_id(&response);
    let bytes = axum::body::to_bytes(response.into_body(), ANSWER_LIMIT)
        .await
        .unwrap_or_default();
    let answer: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    if !status.is_success() {
        // The relay's own words, as a /v1 client would read them; the message stays typed.
        let mut shown = page_for(&state, page, &user, Some(&form), &turns).await?;
        shown.errors.general = Some(
            answer["error"]["message"]
                .as_str()
                .map_or_else(|| status.to_string(), str::to_string),
        );
        shown.trimmed = trimmed;
        return Ok((status, shown).into_response());
    }
    let caller = Caller::User(user.id);
    let logged = match &id {
        Some(id) => logged_usage(&state, &caller, id).await,
        None => None,
    };
    let usage = logged.unwrap_or_else(|| {
        let tokens = |name: &str| answer["usage"][name].as_i64().unwrap_or(0);
        TurnUsage {
            prompt_tokens: tokens("prompt_tokens"),
            completion_tokens: tokens("completion_tokens"),
            cost: 0,
        }
    });
    turns.push(Turn {
        role: Role::User,
        content: form.message.clone(),
        usage: None,
    });
    turns.push(Turn {
        role: Role::Assistant,
        content: answer["choices"][0]["message"]["content"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        usage: Some(usage),
    });
    let (turns, dropped) = bounded(turns);
    let next = ChatForm {
        message: String::new(),
        ..form
    };
    let mut shown = page_for(&state, page, &user, Some(&next), &turns).await?;
    shown.trimmed = trimmed || dropped;
    Ok(shown.into_response())
}

/// The form with JavaScript: the relay's event stream, passed through as it arrives, then one
/// `usage` event with the answer's tokens and cost as logged.
pub async fn stream(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    SignedIn { page, user }: SignedIn,
    Posted(form): Posted<ChatForm>,
) -> Response {
    let (turns, _) = carried(&form.history);
    let settings = match check(&state, &page, &user, &form).await {
        Ok(settings) => settings,
        Err(errors) => {
            // The first problem, and the field it belongs to, for the script to mark.
            let (field, message) = errors.list().first().cloned().unwrap_or_default();
            let body = serde_json::json!({"error": {"message": message, "field": field}});
            return (StatusCode::UNPROCESSABLE_ENTITY, axum::Json(body)).into_response();
        }
    };
    let ip = client;
    let request = chat_request(&form, &turns, &settings, true);
    let response = relay_chat(&state, ip, request, settings.digest).await;
    let streaming = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/event-stream"));
    let Some(id) = request_id(&response).filter(|_| response.status().is_success() && streaming)
    else {
        return response;
    };
    let (parts, body) = response.into_parts();
    let caller = Caller::User(user.id);
    let usage_event = futures::stream::once(async move {
        let usage = logged_usage(&state, &caller, &id).await;
        let data = match usage {
            Some(usage) => serde_json::json!({
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "cost": usage.cost,
                "meta": usage_text(&page, &usage),
            }),
            None => serde_json::json!({}),
        };
        Ok::<_, axum::Error>(Bytes::from(format!(
            "event: {USAGE_EVENT}\ndata: {data}\n\n"
        )))
    });
    let body = Body::from_stream(body.into_data_stream().chain(usage_event));
    Response::from_parts(parts, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(role: Role, content: &str) -> Turn {
        Turn {
            role,
            content: content.into(),
            usage: None,
        }
    }

    #[test]
    fn the_conversation_keeps_its_newest_exchanges_within_bounds() {
        let big = "x".repeat(HISTORY_BYTES / 3);
        let turns = vec![
            turn(Role::User, &big),
            turn(Role::Assistant, &big),
            turn(Role::User, "second"),
            turn(Role::Assistant, &big),
        ];
        let (kept, dropped) = bounded(turns.clone());
        assert!(dropped);
        assert_eq!(kept, turns[2..].to_vec(), "a whole exchange goes");
        let (kept, dropped) = bounded(turns[2..].to_vec());
        assert!(!dropped);
        assert_eq!(kept.len(), 2);
        let many: Vec<Turn> = (0..HISTORY_TURNS + 3)
            .map(|i| {
                turn(
                    if i % 2 == 0 {
                        Role::User
                    } else {
                        Role::Assistant
                    },
                    "hi",
                )
            })
            .collect();
        assert!(bounded(many).0.len() <= HISTORY_TURNS);
        assert_eq!(carried("not json"), (Vec::new(), true));
        assert_eq!(carried(""), (Vec::new(), false));
    }
}
