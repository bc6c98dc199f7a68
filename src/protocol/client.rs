//! What a client presents: its API key, in whichever header its SDK puts it, and its address.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::FromRequestParts;
use http::request::Parts;
use http::{Extensions, HeaderMap, HeaderName, HeaderValue, header};

use crate::domain::client_address::{TrustedProxies, client_address};

/// The key a client sent: `Authorization: Bearer sk-…`, or `x-api-key` / `api-key` (what the
/// Anthropic and Azure SDKs send).
pub fn presented_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(value) = headers.get(http::header::AUTHORIZATION)
        && let Ok(text) = value.to_str()
    {
        let text = text.trim();
        let key = match text.get(..6) {
            Some(scheme) if scheme.eq_ignore_ascii_case("bearer") => text[6..].trim(),
            _ => text,
        };
        if !key.is_empty() {
            return Some(key);
        }
    }
    for name in ["x-api-key", "api-key"] {
        if let Some(key) = headers.get(name).and_then(|v| v.to_str().ok()) {
            let key = key.trim();
            if !key.is_empty() {
                return Some(key);
            }
        }
    }
    None
}

/// The client's address: decided once per request by the connection layer (see `app`), from
/// the socket's peer and, when the peer is a trusted proxy, its forwarding headers (the rule is
/// `domain::client_address`). Every handler that needs an address takes this extractor, so there
/// is one answer to "who is this" for limits, allow-lists, logs and sessions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientAddress(pub IpAddr);

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The request's `User-Agent`, when it is text.
pub fn user_agent(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

impl ClientAddress {
    /// The address of a request that came from `peer` with `headers`.
    pub fn of_request(
        peer: SocketAddr,
        headers: &HeaderMap,
        trusted: &TrustedProxies,
    ) -> ClientAddress {
        ClientAddress(client_address(
            peer.ip(),
            headers
                .get_all(header::FORWARDED)
                .iter()
                .map(HeaderValue::as_bytes),
            headers
                .get_all(X_FORWARDED_FOR)
                .iter()
                .map(HeaderValue::as_bytes),
            trusted,
        ))
    }

    /// What the connection layer recorded on a request (the unspecified address for a request
    /// that did not come through it, which only a test harness could make).
    pub fn of(extensions: &Extensions) -> ClientAddress {
        extensions
            .get::<ClientAddress>()
            .copied()
            .unwrap_or(ClientAddress(IpAddr::V4(Ipv4Addr::UNSPECIFIED)))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(ClientAddress::of(&parts.extensions))
    }
}

/// A request body did not arrive within its deadline.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the request body did not arrive in time")]
pub struct BodyDeadlinePassed;

impl BodyDeadlinePassed {
    /// Whether `error`, or what caused it, is a body deadline passing.
    pub fn caused(error: &(dyn std::error::Error + 'static)) -> bool {
        let mut current = Some(error);
        while let Some(error) = current {
            if error.is::<BodyDeadlinePassed>() {
                return true;
            }
            current = error.source();
        }
        false
    }
}
