//! What a client presents: its API key, in whichever header its SDK puts it, and its address.

use std::net::{IpAddr, SocketAddr};

use http::HeaderMap;

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

/// The client's address: the socket peer, or the first X-Forwarded-For entry when the
/// operator trusts the proxy in front.
pub fn client_ip(peer: SocketAddr, headers: &HeaderMap, trust_forwarded_for: bool) -> IpAddr {
    if trust_forwarded_for
        && let Some(forwarded) = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok())
        && let Some(first) = forwarded.split(',').next()
        && let Ok(ip) = first.trim().parse::<IpAddr>()
    {
        return ip;
    }
    peer.ip()
}
