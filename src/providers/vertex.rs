//! Google Vertex AI (`type vertex`): Gemini and Anthropic models served by Google Cloud,
//! authenticated with a service account.
//!
//! A channel's key is the service account's JSON key file (on one line). Tollgate signs a JWT
//! with its private key (RS256, by aws-lc, the crypto library rustls already uses), trades it
//! at the account's `token_uri` for an OAuth access token, and sends that as a bearer token.
//! The token is cached per key and renewed five minutes before it expires; concurrent
//! requests wait for one renewal rather than each fetching its own.
//!
//! The base URL names the project and location:
//! `https://us-east5-aiplatform.googleapis.com/v1/projects/PROJECT/locations/us-east5`. A model
//! whose name starts with `claude` is an Anthropic model (`publishers/anthropic/models/…:rawPredict`
//! or `:streamRawPredict`, Messages bodies with `anthropic_version: vertex-2023-10-16` and no
//! `model`); any other is a Gemini model (`publishers/google/models/…:generateContent` or
//! `:streamGenerateContent?alt=sse`, the same bodies as Google AI Studio).

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use http::HeaderValue;
use serde_json::{Map, Value, json};

/// The `anthropic_version` Vertex expects in Messages bodies.
pub const ANTHROPIC_VERSION: &str = "vertex-2023-10-16";
const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
/// Tokens live an hour; one is renewed this long before it expires (or halfway through a
/// shorter life).
const RENEW_BEFORE: Duration = Duration::from_secs(300);
/// A refused or failed token request answers the requests waiting on it for this long, so an
/// outage of the token endpoint costs one fetch, not one per waiting request in turn.
const FAILURE_MEMORY: Duration = Duration::from_secs(5);
const TOKEN_TIMEOUT: Duration = Duration::from_secs(15);

/// Whether Vertex serves this model through Anthropic's publisher.
pub fn is_anthropic_model(model: &str) -> bool {
    model.starts_with("claude")
}

/// The path after the base URL for one request: `/publishers/{publisher}/models/{model}:{method}`.
pub fn model_path(model: &str, stream: bool) -> String {
    let (publisher, method) = match (is_anthropic_model(model), stream) {
        (true, false) => ("anthropic", "rawPredict"),
        (true, true) => ("anthropic", "streamRawPredict"),
        (false, false) => ("google", "generateContent"),
        (false, true) => ("google", "streamGenerateContent?alt=sse"),
    };
    format!("/{publisher}/models/{model}:{method}")
}

/// Checks a base URL names a project and a location, as every Vertex call needs them.
pub fn check_base_url(base_url: &str) -> Result<(), String> {
    let path = base_url
        .split_once("://")
        .map_or(base_url, |(_, rest)| rest)
        .split_once('/')
        .map_or("", |(_, path)| path);
    let parts: Vec<&str> = path.split('/').collect();
    let names_both = parts
        .windows(4)
        .any(|w| w[0] == "projects" && !w[1].is_empty() && w[2] == "locations" && !w[3].is_empty());
    if names_both {
        Ok(())
    } else {
        Err("a Vertex base URL names the project and location, e.g. https://us-east5-aiplatform.googleapis.com/v1/projects/my-project/locations/us-east5".into())
    }
}

/// A Messages body for Vertex: the model is in the URL, the API version in the body.
pub fn anthropic_body(body: &[u8]) -> Option<Bytes> {
    let mut fields: Map<String, Value> = serde_json::from_slice(body).ok()?;
    fields.remove("model");
    fields.insert("anthropic_version".into(), json!(ANTHROPIC_VERSION));
    serde_json::to_vec(&fields).ok().map(Bytes::from)
}

/// Why no access token could be had.
#[derive(Debug, Clone)]
pub struct TokenError {
    /// The token endpoint's status when it answered (400/401 mean the account is refused).
    pub status: Option<u16>,
    pub message: String,
}

struct ServiceAccount {
    client_email: String,
    token_uri: String,
    key: RsaKeyPair,
}

impl ServiceAccount {
    fn parse(json: &str) -> Result<ServiceAccount, String> {
        let file: Value = serde_json::from_str(json).map_err(|_| {
            "the key must be a service account's JSON key file, on one line".to_string()
        })?;
        let text = |name: &str| {
            file.get(name)
                .and_then(Value::as_str)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| format!("the service-account JSON has no '{name}'"))
        };
        let client_email = text("client_email")?.to_string();
        let pem = text("private_key")?;
        let der =
            pem_body(pem).ok_or("the service account's 'private_key' is not a PEM private key")?;
        let key = RsaKeyPair::from_pkcs8(&der)
            .map_err(|_| "the service account's 'private_key' is not an RSA PKCS#8 key")?;
        let token_uri = file
            .get("token_uri")
            .and_then(Value::as_str)
            .unwrap_or(DEFAULT_TOKEN_URI)
            .to_string();
        Ok(ServiceAccount {
            client_email,
            token_uri,
            key,
        })
    }

    /// The signed JWT the token endpoint trades for an access token.
    fn assertion(&self, now_secs: u64) -> Result<String, String> {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
        let claims = json!({
            "iss": self.client_email,
            "scope": SCOPE,
            "aud": self.token_uri,
            "iat": now_secs,
            "exp": now_secs + 3600,
        });
        let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
        let signing_input = format!("{header}.{claims}");
        let mut signature = vec![0; self.key.public_modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                signing_input.as_bytes(),
                &mut signature,
            )
            .map_err(|_| "signing the token request failed".to_string())?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        ))
    }
}

/// The DER bytes inside a PEM block.
fn pem_body(pem: &str) -> Option<Vec<u8>> {
    let body: String = pem
        .lines()
        .map(str::trim)
        .filter(|line| !line.starts_with("-----") && !line.is_empty())
        .collect();
    STANDARD.decode(body).ok().filter(|der| !der.is_empty())
}

struct CachedToken {
    header: HeaderValue,
    renew_at: Instant,
}

/// Access tokens for one service account, cached and renewed before they expire.
pub struct TokenSource {
    account: ServiceAccount,
    cached: ArcSwapOption<CachedToken>,
    /// Held while a token is fetched; remembers the last failure and when it happened.
    renewing: tokio::sync::Mutex<Option<(Instant, TokenError)>>,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource")
            .field("client_email", &self.account.client_email)
            .finish_non_exhaustive()
    }
}

/// One source per key, shared by the snapshots that hold it, so a reload does not cost a new
/// token. Held weakly: a key no snapshot uses any more (deleted, rotated) is dropped with its
/// private key.
static SOURCES: LazyLock<Mutex<HashMap<String, Weak<TokenSource>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

impl TokenSource {
    /// The source for a key (its fingerprint names it), made on first use.
    pub fn for_key(fingerprint: &str, json: &str) -> Result<Arc<TokenSource>, String> {
        let mut sources = SOURCES
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(source) = sources.get(fingerprint).and_then(Weak::upgrade) {
            return Ok(source);
        }
        let source = Arc::new(TokenSource {
            account: ServiceAccount::parse(json)?,
            cached: ArcSwapOption::empty(),
            renewing: tokio::sync::Mutex::new(None),
        });
        sources.retain(|_, held| held.strong_count() > 0);
        sources.insert(fingerprint.to_string(), Arc::downgrade(&source));
        Ok(source)
    }

    /// Checks a key is a usable service account, without keeping anything.
    pub fn check_key(json: &str) -> Result<(), String> {
        ServiceAccount::parse(json).map(|_| ())
    }

    /// `Bearer …` with a valid access token: the cached one, or a new one.
    pub async fn authorization(&self, http: &reqwest::Client) -> Result<HeaderValue, TokenError> {
        if let Some(token) = self.valid() {
            return Ok(token);
        }
        let mut last_failure = self.renewing.lock().await;
        // Another request may have renewed it while this one waited, or just failed to.
        if let Some(token) = self.valid() {
            return Ok(token);
        }
        if let Some((at, failure)) = last_failure.as_ref()
            && at.elapsed() < FAILURE_MEMORY
        {
            return Err(failure.clone());
        }
        let (header, lifetime) = match self.fetch(http).await {
            Ok(fetched) => fetched,
            Err(failure) => {
                *last_failure = Some((Instant::now(), failure.clone()));
                return Err(failure);
            }
        };
        *last_failure = None;
        let renew_in = lifetime.saturating_sub(RENEW_BEFORE).max(lifetime / 2);
        let renew_at = Instant::now() + renew_in;
        self.cached.store(Some(Arc::new(CachedToken {
            header: header.clone(),
            renew_at,
        })));
        Ok(header)
    }

    fn valid(&self) -> Option<HeaderValue> {
        let cached = self.cached.load();
        cached
            .as_ref()
            .filter(|token| Instant::now() < token.renew_at)
            .map(|token| token.header.clone())
    }

    async fn fetch(&self, http: &reqwest::Client) -> Result<(HeaderValue, Duration), TokenError> {
        let failed = |status: Option<u16>, message: String| TokenError { status, message };
        let now_secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let assertion = self
            .account
            .assertion(now_secs)
            .map_err(|message| failed(None, message))?;
        let response = http
            .post(&self.account.token_uri)
            .timeout(TOKEN_TIMEOUT)
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            // The assertion is base64url and dots, which need no escaping in a form.
            .body(format!(
                "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={assertion}"
            ))
            .send()
            .await
            .map_err(|e| failed(None, format!("the token endpoint could not be reached: {e}")))?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let reason = body
                .get("error_description")
                .or_else(|| body.get("error"))
                .and_then(Value::as_str)
                .unwrap_or("no reason given");
            return Err(failed(
                Some(status.as_u16()),
                format!(
                    "Google refused the service account {} (HTTP {}): {reason}",
                    self.account.client_email,
                    status.as_u16()
                ),
            ));
        }
        let token = body
            .get("access_token")
            .and_then(Value::as_str)
            .ok_or_else(|| failed(None, "the token endpoint sent no access_token".into()))?;
        let lifetime = Duration::from_secs(
            body.get("expires_in")
                .and_then(Value::as_u64)
                .unwrap_or(3600),
        );
        let mut header = HeaderValue::try_from(format!("Bearer {token}"))
            .map_err(|_| failed(None, "the access token is not a valid header value".into()))?;
        header.set_sensitive(true);
        Ok((header, lifetime))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_model_paths_by_publisher() {
        assert_eq!(
            model_path("gemini-2.5-flash", false),
            "/google/models/gemini-2.5-flash:generateContent"
        );
        assert_eq!(
            model_path("gemini-2.5-flash", true),
            "/google/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
        );
        assert_eq!(
            model_path("claude-sonnet-4-5@20250929", true),
            "/anthropic/models/claude-sonnet-4-5@20250929:streamRawPredict"
        );
    }

    #[test]
    fn checks_base_urls_and_keys() {
        assert!(
            check_base_url(
                "https://us-east5-aiplatform.googleapis.com/v1/projects/p/locations/us-east5"
            )
            .is_ok()
        );
        assert!(check_base_url("https://us-east5-aiplatform.googleapis.com/v1").is_err());
        assert!(check_base_url("https://aiplatform.googleapis.com").is_err());
        assert!(
            TokenSource::check_key("not json")
                .unwrap_err()
                .contains("JSON")
        );
        assert!(
            TokenSource::check_key(r#"{"client_email":"a@b"}"#)
                .unwrap_err()
                .contains("private_key")
        );
        assert!(TokenSource::check_key(r#"{"client_email":"a@b","private_key":"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"}"#).is_err());
    }

    #[test]
    fn rewrites_messages_bodies_for_vertex() {
        let body = anthropic_body(br#"{"model":"claude","max_tokens":5,"messages":[]}"#).unwrap();
        let value: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            value,
            json!({"max_tokens": 5, "messages": [], "anthropic_version": "vertex-2023-10-16"})
        );
    }
}
