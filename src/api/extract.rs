//! Extractors: the authenticated admin, and JSON bodies whose errors use the API's envelope.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use http::request::Parts;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

use super::error::ApiError;
use crate::db::admin_tokens::AdminTokenOwner;
use crate::domain::kinds::Role;
use crate::relay::auth::presented_key;
use crate::service;
use crate::state::AppState;

/// The admin (or root) whose token authenticated this request.
pub struct Admin(pub AdminTokenOwner);

impl Admin {
    pub fn is_root(&self) -> bool {
        self.0.role == Role::Root
    }

    /// Only root may create, change or grant admin and root accounts.
    pub fn may_manage_role(&self, role: Role) -> Result<(), ApiError> {
        if role.is_admin() && !self.is_root() {
            return Err(ApiError::forbidden(
                "only root can create, change or grant admin and root accounts",
            ));
        }
        Ok(())
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let presented = presented_key(&parts.headers).ok_or_else(|| {
            ApiError::unauthorized(
                "send an admin token as 'Authorization: Bearer tga-…' (create one with `tollgate admin-token create --user <admin>`)",
            )
        })?;
        let owner = service::admin_tokens::authenticate(&state.db, presented)
            .await?
            .ok_or_else(|| ApiError::unauthorized("the admin token is unknown, revoked, or its owner is no longer an active admin"))?;
        if let Err(e) = crate::db::admin_tokens::touch(&state.db, owner.token_id).await {
            tracing::warn!(error = %e, "could not record admin token use");
        }
        Ok(Admin(owner))
    }
}

/// `Json<T>` whose rejections are API errors naming the problem.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(request, state).await {
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

/// Accepts a decimal as a JSON number or string (`5`, `0.15`, `"0.15"`) and keeps its exact
/// spelling for the services to parse.
pub fn decimal<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Decimal {
        Number(serde_json::Number),
        Text(String),
    }
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

/// A list written as a JSON array or as one comma-separated string.
#[derive(Deserialize)]
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
