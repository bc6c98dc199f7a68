//! The protocols clients speak to the gateway. OpenAI's is the relay's own; the others are
//! translated to it in front of channels that do not speak them natively.

pub mod anthropic;
pub mod responses;

use axum::response::{IntoResponse, Response};
use bytes::BytesMut;
use http::{HeaderValue, StatusCode};

use super::error::RelayError;
use crate::protocol::{ClientProtocol, openai};

const ANTHROPIC_REQUEST_ID_HEADER: http::HeaderName = http::HeaderName::from_static("request-id");

/// What the relay does in each client's protocol: errors in its envelope, its request-id
/// headers, the event that ends a broken stream.
impl ClientProtocol {
    /// The HTTP status this protocol uses for a refusal. Anthropic clients get 402 for an
    /// exhausted balance, which their SDKs do not retry (they retry 429 with backoff, which
    /// cannot help).
    fn status(self, error: &RelayError) -> StatusCode {
        match self {
            ClientProtocol::Anthropic if error.kind == "insufficient_quota" => {
                StatusCode::PAYMENT_REQUIRED
            }
            _ => error.status,
        }
    }

    /// `error` in this protocol's envelope, with its status, `Retry-After` and rate-limit
    /// headers.
    pub fn error_response(self, error: RelayError) -> Response {
        match self {
            ClientProtocol::OpenAi | ClientProtocol::Responses => error.into_response(),
            ClientProtocol::Anthropic => {
                let status = self.status(&error);
                let body =
                    anthropic::error_body(anthropic::error_type(status.as_u16()), &error.message);
                let mut response = (status, axum::Json(body)).into_response();
                error.add_headers(response.headers_mut());
                response
            }
        }
    }

    /// Puts the gateway's id for the request on an answer: `x-request-id` for every client,
    /// and Anthropic's own `request-id` too, which its SDK reads into `request_id`.
    pub fn add_request_id(self, headers: &mut http::HeaderMap, id: HeaderValue) {
        if self == ClientProtocol::Anthropic {
            headers.insert(ANTHROPIC_REQUEST_ID_HEADER, id.clone());
        }
        headers.insert(super::REQUEST_ID_HEADER, id);
    }

    /// An upstream's refusal retold in this protocol: the upstream's status and words.
    pub fn upstream_error_body(self, status: u16, kind: &str, message: &str) -> serde_json::Value {
        match self {
            ClientProtocol::OpenAi | ClientProtocol::Responses => {
                openai::openai_error(message, kind, kind)
            }
            ClientProtocol::Anthropic => {
                anthropic::error_body(anthropic::error_type(status), message)
            }
        }
    }

    /// Writes an error event that ends a stream, in this protocol.
    pub fn stream_error_event(self, message: &str, code: &str, out: &mut BytesMut) {
        match self {
            ClientProtocol::OpenAi => openai::error_event(message, "server_error", code, out),
            ClientProtocol::Anthropic => anthropic::error_event("api_error", message, out),
            ClientProtocol::Responses => responses::error_event(code, message, 0, out),
        }
    }
}
