//! Errors of the management API: `{"error":{"message","code","field"}}`. Database failures
//! are logged and reported without internals.

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::json;

use crate::service::ServiceError;

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    field: Option<&'static str>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
        }
    }

    pub fn unauthorized(message: &str) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }
}

impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> Self {
        match error {
            ServiceError::Invalid { field, message } => ApiError {
                status: StatusCode::BAD_REQUEST,
                code: "invalid_field",
                message: format!("{field}: {message}"),
                field: Some(field),
            },
            ServiceError::NotFound(message) => ApiError::not_found(message),
            ServiceError::Conflict(message) => {
                ApiError::new(StatusCode::CONFLICT, "conflict", message)
            }
            ServiceError::Forbidden(message) => ApiError::forbidden(message),
            ServiceError::Upstream(message) => {
                ApiError::new(StatusCode::BAD_GATEWAY, "upstream_error", message)
            }
            ServiceError::Db(e) => {
                tracing::error!(error = %e, "management API database error");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_error",
                    "the database could not complete the operation; see the server log",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({
            "error": { "message": self.message, "code": self.code, "field": self.field }
        });
        (self.status, Json(body)).into_response()
    }
}
