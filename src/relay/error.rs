//! Errors on `/v1`, always in OpenAI's envelope:
//! `{"error":{"message":"…","type":"…","param":null,"code":"…"}}`.

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode};
use serde_json::json;

use crate::billing::rates::RateStatus;
use crate::domain::names::{self, NameError};
use crate::metrics::RequestOutcome;
use crate::protocol::Invalid;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayError {
    pub status: StatusCode,
    /// OpenAI's `type`, e.g. `invalid_request_error`.
    pub kind: &'static str,
    pub code: &'static str,
    pub message: String,
    pub param: Option<&'static str>,
    /// Seconds, for a `Retry-After` header.
    pub retry_after: Option<u64>,
    /// What the caller's rate limits leave, for OpenAI's `x-ratelimit-*` headers (boxed: most
    /// errors have none, and every result of the relay carries the error's size).
    pub rate_status: Option<Box<RateStatus>>,
}

impl RelayError {
    fn new(status: StatusCode, kind: &'static str, code: &'static str, message: String) -> Self {
        RelayError {
            status,
            kind,
            code,
            message,
            param: None,
            retry_after: None,
            rate_status: None,
        }
    }

    pub fn missing_key() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "missing_api_key",
            "You didn't provide an API key. Send it as 'Authorization: Bearer sk-…'.".into(),
        )
    }

    pub fn invalid_key(message: &str) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "invalid_api_key",
            message.into(),
        )
    }

    pub fn forbidden(code: &'static str, message: String) -> Self {
        Self::new(StatusCode::FORBIDDEN, "permission_error", code, message)
    }

    pub fn model_not_found(model: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "model_not_found",
            format!(
                "The model '{}' does not exist or you do not have access to it.",
                names::quoted(model)
            ),
        )
        .with_param("model")
    }

    /// A model name no channel or price could ever list (too long, a control character).
    pub fn invalid_model(problem: &NameError) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "invalid_model",
            format!("The model name is not valid: {problem}."),
        )
        .with_param("model")
    }

    pub fn bad_request(message: String) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "invalid_request",
            message,
        )
    }

    pub fn missing_field(field: &'static str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "missing_required_parameter",
            format!("Missing required parameter: '{field}'."),
        )
        .with_param(field)
    }

    pub fn body_too_large(limit_kb: u64) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            "request_too_large",
            format!("The request body is larger than the {limit_kb} KiB this gateway accepts."),
        )
    }

    /// The body came too slowly (see `--body-timeout-secs`); the connection closes after this.
    pub fn body_too_slow() -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "invalid_request_error",
            "request_timeout",
            "The request body arrived too slowly; send it again.".into(),
        )
    }

    pub fn insufficient_quota(message: String) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "insufficient_quota",
            "insufficient_quota",
            message,
        )
    }

    /// A rate limit of the key, its group or its account refused the request; the type is
    /// OpenAI's (`tokens` for a token limit, `requests` otherwise).
    pub fn rate_limited(tokens: bool, message: String) -> Self {
        let kind = if tokens { "tokens" } else { "requests" };
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            kind,
            "rate_limit_exceeded",
            message,
        )
    }

    /// The store that counts rate limits could not be asked: the request is refused rather
    /// than let through uncounted.
    pub fn limits_unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            "tollgate_unavailable",
            "The gateway could not check this key's rate limits right now (rate-limit store unreachable). Please retry shortly.".into(),
        )
        .with_retry_after(1)
    }

    pub fn no_channel(message: String) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            "no_available_channel",
            message,
        )
    }

    pub fn upstream(status: StatusCode, code: &'static str, message: String) -> Self {
        let kind = if status.is_client_error() {
            "invalid_request_error"
        } else {
            "server_error"
        };
        Self::new(status, kind, code, message)
    }

    /// The key could not be checked: the database did not answer its first lookup.
    pub fn key_check_unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            "key_check_unavailable",
            "The gateway could not check this API key right now. Please retry shortly.".into(),
        )
        .with_retry_after(1)
    }

    /// The shared store of budgets (Redis) does not answer, so no node can tell what is left
    /// to spend: the request is not served on credit.
    pub fn budget_store_unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            "tollgate_unavailable",
            "Budget store unreachable: the gateway cannot check what this key may spend right now. Please retry shortly.".into(),
        )
        .with_retry_after(1)
    }

    pub fn not_found_route(path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "unknown_url",
            format!("Unknown request URL: {path}. Please check the URL for typos."),
        )
    }

    pub fn method_not_allowed(method: &str, path: &str) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request_error",
            "method_not_supported",
            format!("{method} is not supported on {path}."),
        )
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "internal_error",
            "The gateway hit an internal error. Please retry; if it persists, tell the operator."
                .into(),
        )
    }

    pub fn with_param(mut self, param: &'static str) -> Self {
        self.param = Some(param);
        self
    }

    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds.max(1));
        self
    }

    /// How a request that ends with this error is counted in `tollgate_requests_total`: by
    /// its code where that says whose doing it was, else by its status.
    pub fn metric_outcome(&self) -> RequestOutcome {
        match self.code {
            "insufficient_quota" => RequestOutcome::PolicyBudget,
            "rate_limit_exceeded" => RequestOutcome::PolicyRateLimit,
            "upstream_timeout" => RequestOutcome::ProviderTimeout,
            "upstream_rate_limited" => RequestOutcome::ProviderRateLimited,
            // Every channel of the model is down or cooling down after failures.
            "upstream_error"
            | "upstream_unreachable"
            | "upstream_unavailable"
            | "no_available_channel" => RequestOutcome::ProviderError,
            _ => match self.status.as_u16() {
                401 => RequestOutcome::CallerUnauthorized,
                403 => RequestOutcome::CallerForbidden,
                400..=499 => RequestOutcome::CallerBadRequest,
                503 => RequestOutcome::TollgateUnavailable,
                _ => RequestOutcome::TollgateError,
            },
        }
    }

    pub fn with_rate_status(mut self, status: RateStatus) -> Self {
        self.rate_status = Some(Box::new(status));
        self
    }

    /// `Retry-After` and the `x-ratelimit-*` headers, where the error has them.
    pub fn add_headers(&self, headers: &mut http::HeaderMap) {
        if let Some(seconds) = self.retry_after {
            headers.insert(http::header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if let Some(status) = &self.rate_status {
            super::rate_headers::write_headers(status, headers);
        }
    }

    pub fn body(&self) -> serde_json::Value {
        json!({
            "error": {
                "message": self.message,
                "type": self.kind,
                "param": self.param,
                "code": self.code,
            }
        })
    }
}

impl IntoResponse for RelayError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body())).into_response();
        self.add_headers(response.headers_mut());
        response
    }
}

/// A request an upstream cannot take: a 400 naming the parameter to fix.
impl From<Invalid> for RelayError {
    fn from(invalid: Invalid) -> Self {
        RelayError::bad_request(invalid.message).with_param(invalid.param)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_counted_as_whose_doing_they_were() {
        use RequestOutcome::*;
        let cases = [
            (RelayError::missing_key(), CallerUnauthorized),
            (RelayError::invalid_key("unknown"), CallerUnauthorized),
            (
                RelayError::forbidden("model_not_allowed", String::new()),
                CallerForbidden,
            ),
            (RelayError::model_not_found("x"), CallerBadRequest),
            (RelayError::body_too_large(1), CallerBadRequest),
            (RelayError::body_too_slow(), CallerBadRequest),
            (RelayError::insufficient_quota(String::new()), PolicyBudget),
            (RelayError::no_channel(String::new()), ProviderError),
            (
                RelayError::upstream(
                    StatusCode::GATEWAY_TIMEOUT,
                    "upstream_timeout",
                    String::new(),
                ),
                ProviderTimeout,
            ),
            (
                RelayError::upstream(
                    StatusCode::TOO_MANY_REQUESTS,
                    "upstream_rate_limited",
                    String::new(),
                ),
                ProviderRateLimited,
            ),
            (
                RelayError::upstream(
                    StatusCode::BAD_GATEWAY,
                    "upstream_unreachable",
                    String::new(),
                ),
                ProviderError,
            ),
            (RelayError::key_check_unavailable(), TollgateUnavailable),
            (RelayError::internal(), TollgateError),
        ];
        for (error, outcome) in cases {
            assert_eq!(error.metric_outcome(), outcome, "{}", error.code);
        }
    }
}
