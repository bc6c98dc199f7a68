//! Errors of the management API: `{"error":{"code","message","field","fields"}}`, where
//! `code` is a stable message key, `field` the first field to fix and `fields` every one (each
//! with its code and message). Database failures are logged and reported without internals.

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::StatusCode;

use crate::i18n::{Lang, Message};
use crate::service::ServiceError;

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    /// A stable code: a message key for the services' errors.
    code: &'static str,
    message: String,
    /// Every field a person must fix, each with its own code and message.
    fields: Vec<FieldError>,
}

/// One field a person must fix.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// The field's JSON name.
    field: &'static str,
    /// A stable code for the problem.
    code: &'static str,
    message: String,
}

/// The body of every error `/api` answers.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ApiErrorBody {
    error: ApiErrorDetail,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ApiErrorDetail {
    /// A stable code: a message key for the services' errors (`not_found`, `unauthorized`,
    /// `name-bad-character`, …).
    code: &'static str,
    /// What went wrong, in English.
    message: String,
    /// The first field to fix, or null.
    field: Option<&'static str>,
    /// Every field to fix (empty when the error is not about a field).
    fields: Vec<FieldError>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            fields: Vec::new(),
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

    /// A service's message, rendered in the API's language (English).
    fn message(status: StatusCode, message: &Message) -> Self {
        Self::new(status, message.key, message.render(Lang::En))
    }
}

impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> Self {
        match error {
            ServiceError::Invalid(problems) => {
                let fields: Vec<FieldError> = problems
                    .iter()
                    .map(|p| FieldError {
                        field: p.field,
                        code: p.message.key,
                        message: p.message.render(Lang::En),
                    })
                    .collect();
                let (code, message) = fields
                    .first()
                    .map_or(("invalid_request", String::new()), |f| {
                        (f.code, format!("{}: {}", f.field, f.message))
                    });
                ApiError {
                    status: StatusCode::BAD_REQUEST,
                    code,
                    message,
                    fields,
                }
            }
            ServiceError::NotFound(message) => ApiError::message(StatusCode::NOT_FOUND, &message),
            ServiceError::Conflict { field, message } => {
                let mut error = ApiError::message(StatusCode::CONFLICT, &message);
                if let Some(field) = field {
                    error.fields.push(FieldError {
                        field,
                        code: message.key,
                        message: error.message.clone(),
                    });
                }
                error
            }
            ServiceError::Forbidden(message) => ApiError::message(StatusCode::FORBIDDEN, &message),
            ServiceError::Upstream(message) => ApiError::message(StatusCode::BAD_GATEWAY, &message),
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
        let body = ApiErrorBody {
            error: ApiErrorDetail {
                code: self.code,
                message: self.message,
                field: self.fields.first().map(|f| f.field),
                fields: self.fields,
            },
        };
        (self.status, Json(body)).into_response()
    }
}
