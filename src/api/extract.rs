//! Extractors: the authenticated admin, and JSON bodies whose errors use the API's envelope.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use http::request::Parts;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

use super::error::ApiError;
use crate::protocol::client::BodyDeadlinePassed;
use crate::protocol::client::presented_key;
use crate::service::{self, Caller};
use crate::state::AppState;

/// Who is calling, as the authentication layer found it (see `api::authenticate`).
pub struct ApiCaller(pub Caller);

impl FromRequestParts<AppState> for ApiCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, ApiError> {
        match parts.extensions.get::<Caller>() {
            Some(caller) => Ok(ApiCaller(*caller)),
            // A route the authentication layer does not cover: a bug, not the client's doing.
            None => {
                tracing::error!(path = %parts.uri.path(), "an /api route outside the authentication layer");
                Err(ApiError::new(
                    http::StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_error",
                    "the server hit an internal error; see its log",
                ))
            }
        }
    }
}

/// The caller an admin token stands for, and the token's id.
pub(super) async fn caller_from_token(
    state: &AppState,
    headers: &http::HeaderMap,
) -> Result<(Caller, i64), ApiError> {
    let presented = presented_key(headers).ok_or_else(|| {
        ApiError::unauthorized(
            "send an admin token as 'Authorization: Bearer tga-…' (create one with `tollgate admin-token create --user <admin>`)",
        )
    })?;
    let owner = service::admin_tokens::authenticate(&state.ctx, presented)
        .await?
        .ok_or_else(|| {
            ApiError::unauthorized(
                "the admin token is unknown, revoked, or its owner is no longer an active admin",
            )
        })?;
    Ok((
        Caller::for_account(owner.user_id, owner.role),
        owner.token_id,
    ))
}

/// `Json<T>` whose rejections are API errors naming the problem.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
        let json_type = request
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(is_json);
        if !json_type {
            return Err(ApiError::bad_request(
                "send the body as JSON with 'Content-Type: application/json'",
            ));
        }
        let body = axum::body::Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if BodyDeadlinePassed::caused(&rejection) {
                    // The connection closes after this answer.
                    ApiError::new(
                        http::StatusCode::REQUEST_TIMEOUT,
                        "request_timeout",
                        "the request body arrived too slowly",
                    )
                } else {
                    ApiError::bad_request(rejection.body_text())
                }
            })?;
        if crate::domain::nul::in_json(&body) {
            return Err(ApiError::bad_request(super::NUL_REFUSED));
        }
        match axum::Json::<T>::from_bytes(&body) {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(match rejection {
                JsonRejection::MissingJsonContentType(_) => ApiError::bad_request(
                    "send the body as JSON with 'Content-Type: application/json'",
                ),
                other => ApiError::bad_request(other.body_text()),
            }),
        }
    }
}

/// Whether a `Content-Type` is JSON's: `application/json` or `application/…+json`, with any
/// parameters.
fn is_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    kind.eq_ignore_ascii_case("application")
        && (subtype.eq_ignore_ascii_case("json") || subtype.to_ascii_lowercase().ends_with("+json"))
}

/// A decimal as a JSON number or string (`5`, `0.15`, `"0.15"`).
#[derive(Deserialize)]
#[serde(untagged)]
pub enum Decimal {
    Number(serde_json::Number),
    Text(String),
}

// Described by hand: the document has no schema of its own for `serde_json::Number`.
impl utoipa::PartialSchema for Decimal {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
        OneOfBuilder::new()
            .item(ObjectBuilder::new().schema_type(Type::Number))
            .item(ObjectBuilder::new().schema_type(Type::String))
            .description(Some(
                "A decimal as a JSON number or a string (`5`, `0.15`, `\"0.15\"`), read exactly",
            ))
            .into()
    }
}

impl utoipa::ToSchema for Decimal {}

/// Accepts a decimal as a JSON number or string (`5`, `0.15`, `"0.15"`) and keeps its exact
/// spelling for the services to parse.
pub fn decimal<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    Ok(
        Option::<Decimal>::deserialize(deserializer)?.map(|d| match d {
            Decimal::Number(n) => n.to_string(),
            Decimal::Text(t) => t,
        }),
    )
}

/// Tells "field absent" (`None`) from "field set to null" (`Some(None)`) for patches.
pub fn nullable<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// A rate limit as a JSON number (or a string holding one), or null for none; kept as text
/// for the services to check, so a wrong value is refused naming its field. Absent: `None`
/// (the limit stays as it is); null: `Some("")` (no limit).
pub fn rate_limit<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    use serde::de::Error;
    match serde_json::Value::deserialize(deserializer)? {
        serde_json::Value::Null => Ok(Some(String::new())),
        serde_json::Value::Number(number) => Ok(Some(number.to_string())),
        serde_json::Value::String(text) => Ok(Some(text)),
        other => Err(D::Error::custom(format!(
            "a rate limit is a whole number or null, not {other}"
        ))),
    }
}

/// A list written as a JSON array or as one comma-separated string.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum List {
    Items(Vec<String>),
    Text(String),
}

impl List {
    pub fn joined(self) -> String {
        match self {
            List::Items(items) => items.join(","),
            List::Text(text) => text,
        }
    }

    pub fn items(self) -> Vec<String> {
        match self {
            List::Items(items) => items,
            List::Text(text) => vec![text],
        }
    }
}
