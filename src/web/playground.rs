//! The playground: chat with a model as the signed-in person, billed to one of their keys,
//! picked by id and checked to be theirs. The request goes through the relay in-process
//! (`relay::proxy::relay_with`), so it is authenticated, routed, billed and logged exactly like
//! `/v1`, and the key itself never reaches the browser. Without JavaScript the form posts to
//! `/playground` and the page comes back with the whole answer; with it, `playground.js` posts
//! to `/playground/stream` and shows the answer as it streams.

use std::ops::Not;

use askama::Template;
use askama_web::WebTemplate;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::error::WebError;
use super::form::{FieldErrors, Posted};
use super::page::{Page, SignedIn};
use crate::db::tokens::TokenRow;
use crate::db::users::UserRow;
use crate::domain::kinds::Status;
use crate::domain::secret_key;
use crate::msg;
use crate::protocol::Endpoint;
use crate::protocol::client::ClientAddress;
use crate::relay::proxy::{CallerKey, relay_with};
use crate::service::{self, Caller};
use crate::state::AppState;

/// The largest whole answer the page reads back (the relay bounds answers itself too).
const ANSWER_LIMIT: usize = 4 * 1024 * 1024;

#[derive(Template, WebTemplate)]
#[template(path = "playground.html")]
pub struct PlaygroundPage {
    page: Page,
    /// The person's usable keys: id and name.
    keys: Vec<(i64, String)>,
    models: Vec<String>,
    key_id: i64,
    model: String,
    system: String,
    message: String,
    answer: String,
    /// Tokens used, or what went wrong.
    meta: String,
    errors: FieldErrors,
}

fn usable(key: &TokenRow, now_ms: i64) -> bool {
    key.status == Status::Active && key.expires_at.is_none_or(|at| at > now_ms)
}

/// The page with the person's keys and their group's models, and what the form holds.
async fn page_for(
    state: &AppState,
    page: Page,
    user: &UserRow,
    form: Option<&ChatForm>,
) -> Result<PlaygroundPage, WebError> {
    let caller = Caller::User(user.id);
    let now = crate::db::now_ms();
    let keys: Vec<(i64, String)> =
        service::tokens::list_for_user(&state.ctx, &caller, &user.username)
            .await
            .map_err(|e| WebError::internal(page.lang, &e))?
            .iter()
            .filter(|k| usable(k, now))
            .map(|k| (k.id, k.name.clone()))
            .collect();
    let models: Vec<String> = state
        .snapshot
        .load()
        .group_models(&user.group)
        .into_iter()
        .map(str::to_string)
        .collect();
    Ok(PlaygroundPage {
        key_id: form.map_or_else(|| keys.first().map_or(0, |k| k.0), |f| f.key_id),
        model: form.map_or_else(
            || models.first().cloned().unwrap_or_default(),
            |f| f.model.clone(),
        ),
        system: form.map(|f| f.system.clone()).unwrap_or_default(),
        message: form.map(|f| f.message.clone()).unwrap_or_default(),
        keys,
        models,
        answer: String::new(),
        meta: String::new(),
        errors: FieldErrors::default(),
        page,
    })
}

pub async fn show(
    State(state): State<AppState>,
    SignedIn { page, user }: SignedIn,
) -> Result<Response, WebError> {
    Ok(page_for(&state, page, &user, None).await?.into_response())
}

#[derive(Clone, Debug, Deserialize)]
pub struct ChatForm {
    #[serde(default)]
    key_id: i64,
    #[serde(default)]
    model: String,
    #[serde(default)]
    system: String,
    #[serde(default)]
    message: String,
}

/// The chat request the form describes, as a client would send it to `/v1/chat/completions`.
fn chat_request(form: &ChatForm, stream: bool) -> serde_json::Value {
    let mut messages = Vec::new();
    if !form.system.trim().is_empty() {
        messages.push(serde_json::json!({"role": "system", "content": form.system}));
    }
    messages.push(serde_json::json!({"role": "user", "content": form.message}));
    let mut request = serde_json::json!({"model": form.model, "messages": messages});
    if stream {
        request["stream"] = serde_json::Value::Bool(true);
        request["stream_options"] = serde_json::json!({"include_usage": true});
    }
    request
}

/// The digest of the person's own usable key with this id; another person's key, or a
/// disabled or expired one, is not offered.
async fn own_key(state: &AppState, user: &UserRow, key_id: i64) -> Option<[u8; 32]> {
    let key = service::tokens::get(&state.ctx, &Caller::User(user.id), key_id)
        .await
        .ok()?;
    usable(&key, crate::db::now_ms())
        .then(|| secret_key::digest_from_hex(&key.key_hash))
        .flatten()
}

/// Checks the form; the key's digest when it is fine, else the problems by field.
async fn check(
    state: &AppState,
    page: &Page,
    user: &UserRow,
    form: &ChatForm,
) -> Result<[u8; 32], FieldErrors> {
    let digest = own_key(state, user, form.key_id).await;
    let mut errors = FieldErrors::default();
    if digest.is_none() {
        errors.add("key_id", page.say(&msg!("key-not-found", id = form.key_id)));
    }
    if form.message.trim().is_empty() {
        errors.add("message", page.say(&msg!("field-required")));
    }
    match digest {
        Some(digest) if form.message.trim().is_empty().not() => Ok(digest),
        _ => Err(errors),
    }
}

/// Hands the chat to the relay as the key's owner, from the browser's address.
async fn relay_chat(
    state: &AppState,
    ip: std::net::IpAddr,
    digest: [u8; 32],
    form: &ChatForm,
    stream: bool,
) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let body = Body::from(chat_request(form, stream).to_string());
    relay_with(
        state.clone(),
        Endpoint::ChatCompletions,
        CallerKey::Digest(digest),
        ip,
        headers,
        body,
    )
    .await
}

/// The form without JavaScript: the whole answer on the page.
pub async fn send(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    SignedIn { page, user }: SignedIn,
    Posted(form): Posted<ChatForm>,
) -> Result<Response, WebError> {
    let digest = match check(&state, &page, &user, &form).await {
        Ok(digest) => digest,
        Err(errors) => {
            let mut again = page_for(&state, page, &user, Some(&form)).await?;
            again.errors = errors;
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, again).into_response());
        }
    };
    let ip = client;
    let response = relay_chat(&state, ip, digest, &form, false).await;
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), ANSWER_LIMIT)
        .await
        .unwrap_or_default();
    let answer: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    let lang = page.lang;
    let mut shown = page_for(&state, page, &user, Some(&form)).await?;
    if status.is_success() {
        shown.answer = answer["choices"][0]["message"]["content"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let tokens = |name: &str| answer["usage"][name].as_i64().unwrap_or(0).to_string();
        shown.meta = crate::i18n::text(
            lang,
            "web-playground-usage",
            &[
                ("input", &tokens("prompt_tokens")),
                ("output", &tokens("completion_tokens")),
            ],
        );
        Ok(shown.into_response())
    } else {
        // The relay's own words, as a /v1 client would read them.
        shown.errors.general = Some(
            answer["error"]["message"]
                .as_str()
                .map_or_else(|| status.to_string(), str::to_string),
        );
        Ok((status, shown).into_response())
    }
}

/// The form with JavaScript: the relay's event stream, passed through as it arrives.
pub async fn stream(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    SignedIn { page, user }: SignedIn,
    Posted(form): Posted<ChatForm>,
) -> Response {
    let digest = match check(&state, &page, &user, &form).await {
        Ok(digest) => digest,
        Err(errors) => {
            let message = ["key_id", "message"]
                .iter()
                .find_map(|f| errors.get(f))
                .unwrap_or_default()
                .to_string();
            let body = serde_json::json!({"error": {"message": message}});
            return (StatusCode::UNPROCESSABLE_ENTITY, axum::Json(body)).into_response();
        }
    };
    let ip = client;
    relay_chat(&state, ip, digest, &form, true).await
}
