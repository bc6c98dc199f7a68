//! Talking to OAuth providers: OpenID Connect discovery, the authorization-code exchange with
//! PKCE, ID tokens checked against the provider's keys (cached, fetched again once when a
//! token names a key not seen yet), and GitHub's user API.
//!
//! Written directly on reqwest rather than through the `oauth2` crate: the flow is three
//! requests, `oauth2` does not verify ID tokens (the part that matters), and it would bring a
//! second generation of its HTTP and random-number crates into the build. Redirects are never
//! followed, every answer is bounded in size and time.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::domain::id_token::{self, Expected, IdTokenError, Jwks};
use crate::records::oauth::ProviderRow;

/// How long a provider may take to answer one request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest answer read from a provider (discovery documents and key sets are a few KB).
const MAX_ANSWER_BYTES: usize = 256 * 1024;
/// Keys are fetched again after this long, so a provider's rotation is followed.
const JWKS_TTL: Duration = Duration::from_secs(3600);
/// Clock skew allowed between the provider and us.
const LEEWAY_SECS: i64 = 120;
/// GitHub refuses API calls without a User-Agent.
const USER_AGENT: &str = concat!("Tollgate/", env!("CARGO_PKG_VERSION"));

#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    #[error("could not reach the provider at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("the provider answered {url} with HTTP {status}: {body}")]
    Status {
        url: String,
        status: u16,
        body: String,
    },
    #[error("the provider's answer from {url} is not what OAuth expects: {reason}")]
    BadAnswer { url: String, reason: String },
    #[error("the provider refused the sign-in: {0}")]
    Refused(String),
    #[error(transparent)]
    IdToken(#[from] IdTokenError),
}

/// What an OpenID Connect provider publishes about itself.
#[derive(Debug, Clone, Deserialize)]
pub struct Discovery {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    #[serde(default)]
    pub userinfo_endpoint: Option<String>,
    pub jwks_uri: String,
}

/// Who signed in, as the provider vouches for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderIdentity {
    /// The provider's stable id for the person (OIDC `sub`, GitHub's numeric id).
    pub subject: String,
    pub email: Option<String>,
    /// Whether the provider says the address is proven to be the person's.
    pub email_verified: bool,
    /// A handle to suggest a username from (GitHub login, `preferred_username`).
    pub login: Option<String>,
    pub name: Option<String>,
}

/// The secrets of one sign-in attempt, kept in the visitor's session between the redirect to
/// the provider and the way back.
#[derive(Debug, Clone)]
pub struct FlowSecrets {
    pub state: String,
    pub nonce: String,
    pub verifier: String,
}

impl FlowSecrets {
    pub fn new() -> FlowSecrets {
        FlowSecrets {
            state: random_token(),
            nonce: random_token(),
            verifier: random_token(),
        }
    }

    /// PKCE's S256 challenge: base64url(SHA-256(verifier)).
    pub fn challenge(&self) -> String {
        URL_SAFE_NO_PAD.encode(Sha256::digest(self.verifier.as_bytes()))
    }
}

impl Default for FlowSecrets {
    fn default() -> Self {
        FlowSecrets::new()
    }
}

/// 32 random bytes from the OS's CSPRNG, base64url: 43 characters, as PKCE asks of verifiers.
fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The provider's authorization URL for this attempt.
pub fn authorize_url(provider: &ProviderRow, redirect_uri: &str, secrets: &FlowSecrets) -> String {
    let challenge = secrets.challenge();
    let mut query: Vec<(&str, &str)> = vec![
        ("response_type", "code"),
        ("client_id", &provider.client_id),
        ("redirect_uri", redirect_uri),
        ("scope", &provider.scopes),
        ("state", &secrets.state),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ];
    if provider.kind == crate::domain::kinds::OAuthKind::Oidc {
        query.push(("nonce", &secrets.nonce));
    }
    let query = serde_urlencoded::to_string(&query).unwrap_or_default();
    let joiner = if provider.auth_url.contains('?') {
        '&'
    } else {
        '?'
    };
    format!("{}{joiner}{query}", provider.auth_url)
}

#[derive(Deserialize)]
struct TokenAnswer {
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    id_token: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
}

/// The outbound side of OAuth sign-in, with the providers' keys cached.
pub struct OAuthClient {
    http: reqwest::Client,
    /// Key sets by their URL, with when they were fetched.
    keys: Mutex<HashMap<String, (Jwks, Instant)>>,
}

impl OAuthClient {
    pub fn new() -> Result<OAuthClient, reqwest::Error> {
        Ok(OAuthClient {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(REQUEST_TIMEOUT)
                .user_agent(USER_AGENT)
                .build()?,
            keys: Mutex::new(HashMap::new()),
        })
    }

    async fn read(
        &self,
        request: reqwest::RequestBuilder,
        url: &str,
    ) -> Result<Vec<u8>, OAuthError> {
        let unreachable = |e: reqwest::Error| OAuthError::Unreachable {
            url: url.to_string(),
            reason: e.without_url().to_string(),
        };
        let mut response = request.send().await.map_err(unreachable)?;
        let status = response.status().as_u16();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
            if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(OAuthError::BadAnswer {
                    url: url.to_string(),
                    reason: format!("more than {MAX_ANSWER_BYTES} bytes"),
                });
            }
            body.extend_from_slice(&chunk);
        }
        // Token endpoints answer errors with 400 and a JSON body worth reading.
        if !(200..300).contains(&status) && status != 400 && status != 401 {
            return Err(OAuthError::Status {
                url: url.to_string(),
                status,
                body: String::from_utf8_lossy(&body).chars().take(200).collect(),
            });
        }
        Ok(body)
    }

    fn json<T: serde::de::DeserializeOwned>(body: &[u8], url: &str) -> Result<T, OAuthError> {
        serde_json::from_slice(body).map_err(|e| OAuthError::BadAnswer {
            url: url.to_string(),
            reason: e.to_string(),
        })
    }

    /// Reads an issuer's discovery document; its `issuer` must be the one asked for.
    pub async fn discover(&self, issuer: &str) -> Result<Discovery, OAuthError> {
        let issuer = issuer.trim_end_matches('/');
        let url = format!("{issuer}/.well-known/openid-configuration");
        let body = self.read(self.http.get(&url), &url).await?;
        let discovery: Discovery = Self::json(&body, &url)?;
        if discovery.issuer.trim_end_matches('/') != issuer {
            return Err(OAuthError::BadAnswer {
                url,
                reason: format!("it names the issuer '{}', not '{issuer}'", discovery.issuer),
            });
        }
        Ok(discovery)
    }

    /// Trades the code the provider sent back for tokens, proving with the PKCE verifier that
    /// this is the client that started the attempt.
    async fn exchange(
        &self,
        provider: &ProviderRow,
        code: &str,
        redirect_uri: &str,
        verifier: &str,
    ) -> Result<TokenAnswer, OAuthError> {
        let form = serde_urlencoded::to_string([
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier),
            ("client_id", provider.client_id.as_str()),
            ("client_secret", provider.client_secret.as_str()),
        ])
        .unwrap_or_default();
        let url = &provider.token_url;
        let request = self
            .http
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json")
            .body(form);
        let body = self.read(request, url).await?;
        let answer: TokenAnswer = Self::json(&body, url)?;
        if let Some(error) = answer.error {
            let detail = answer.error_description.unwrap_or_default();
            return Err(OAuthError::Refused(
                format!("{error} {detail}").trim().to_string(),
            ));
        }
        Ok(answer)
    }

    /// The provider's keys, from the cache unless stale or `refresh`.
    async fn keys(&self, url: &str, refresh: bool) -> Result<Jwks, OAuthError> {
        if !refresh {
            let cached = self.cache().get(url).cloned();
            if let Some((jwks, fetched)) = cached
                && fetched.elapsed() < JWKS_TTL
            {
                return Ok(jwks);
            }
        }
        let body = self.read(self.http.get(url), url).await?;
        let jwks = Jwks::parse(&body)?;
        self.cache()
            .insert(url.to_string(), (jwks.clone(), Instant::now()));
        Ok(jwks)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Jwks, Instant)>> {
        self.keys.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Completes a sign-in: exchanges the code, then learns who it is: from the verified ID
    /// token (OIDC) or GitHub's API.
    pub async fn identity(
        &self,
        provider: &ProviderRow,
        code: &str,
        redirect_uri: &str,
        secrets: &FlowSecrets,
        now_secs: i64,
    ) -> Result<ProviderIdentity, OAuthError> {
        let tokens = self
            .exchange(provider, code, redirect_uri, &secrets.verifier)
            .await?;
        match provider.kind {
            crate::domain::kinds::OAuthKind::Oidc => {
                let token = tokens.id_token.ok_or_else(|| OAuthError::BadAnswer {
                    url: provider.token_url.clone(),
                    reason: "no id_token".into(),
                })?;
                self.verified_claims(provider, &token, &secrets.nonce, now_secs)
                    .await
            }
            crate::domain::kinds::OAuthKind::GitHub => {
                let access = tokens.access_token.ok_or_else(|| OAuthError::BadAnswer {
                    url: provider.token_url.clone(),
                    reason: "no access_token".into(),
                })?;
                self.github_identity(provider, &access).await
            }
        }
    }

    async fn verified_claims(
        &self,
        provider: &ProviderRow,
        token: &str,
        nonce: &str,
        now_secs: i64,
    ) -> Result<ProviderIdentity, OAuthError> {
        let expected = Expected {
            issuer: &provider.issuer,
            client_id: &provider.client_id,
            nonce,
            now_secs,
            leeway_secs: LEEWAY_SECS,
        };
        let keys = self.keys(&provider.jwks_url, false).await?;
        let claims = match id_token::verify(token, &keys, &expected) {
            // A key not seen yet: the provider may have rotated; fetch once more.
            Err(IdTokenError::UnknownKey) => {
                let keys = self.keys(&provider.jwks_url, true).await?;
                id_token::verify(token, &keys, &expected)?
            }
            other => other?,
        };
        Ok(ProviderIdentity {
            subject: claims.subject,
            email: claims.email,
            email_verified: claims.email_verified,
            login: claims.preferred_username,
            name: claims.name,
        })
    }

    /// GitHub: the numeric id and login from `/user`, the primary verified address from
    /// `/user/emails` (the profile's public email may be unverified or absent).
    async fn github_identity(
        &self,
        provider: &ProviderRow,
        access_token: &str,
    ) -> Result<ProviderIdentity, OAuthError> {
        #[derive(Deserialize)]
        struct User {
            id: u64,
            login: String,
            #[serde(default)]
            name: Option<String>,
        }
        #[derive(Deserialize)]
        struct Email {
            email: String,
            #[serde(default)]
            primary: bool,
            #[serde(default)]
            verified: bool,
        }
        let base = provider.userinfo_url.trim_end_matches('/');
        let get = |url: &str| {
            self.http
                .get(url)
                .bearer_auth(access_token)
                .header("accept", "application/vnd.github+json")
        };
        let user_url = format!("{base}/user");
        let body = self.read(get(&user_url), &user_url).await?;
        let user: User = Self::json(&body, &user_url)?;
        let emails_url = format!("{base}/user/emails");
        let body = self.read(get(&emails_url), &emails_url).await?;
        let emails: Vec<Email> = Self::json(&body, &emails_url)?;
        let proven = emails
            .iter()
            .filter(|e| e.verified)
            .max_by_key(|e| e.primary)
            .map(|e| e.email.clone());
        Ok(ProviderIdentity {
            subject: user.id.to_string(),
            email_verified: proven.is_some(),
            email: proven,
            login: Some(user.login),
            name: user.name,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::kinds::OAuthKind;

    fn provider(kind: OAuthKind, auth_url: &str) -> ProviderRow {
        ProviderRow {
            id: 1,
            name: "idp".into(),
            kind,
            display_name: String::new(),
            client_id: "client one".into(),
            client_secret: "s".into(),
            issuer: String::new(),
            auth_url: auth_url.into(),
            token_url: String::new(),
            userinfo_url: String::new(),
            jwks_url: String::new(),
            scopes: "openid email".into(),
            created_at: 0,
        }
    }

    #[test]
    fn authorization_urls_carry_pkce_state_and_nonce() {
        let secrets = FlowSecrets::new();
        assert_eq!(secrets.verifier.len(), 43);
        assert_ne!(secrets.state, secrets.nonce);
        let url = authorize_url(
            &provider(OAuthKind::Oidc, "https://idp.example/authorize?tenant=a"),
            "https://gate.example/oauth/idp/callback",
            &secrets,
        );
        assert!(url.starts_with("https://idp.example/authorize?tenant=a&response_type=code"));
        assert!(url.contains("client_id=client+one"));
        assert!(url.contains(&format!("code_challenge={}", secrets.challenge())));
        assert!(url.contains("code_challenge_method=S256"));
        assert!(url.contains(&format!("nonce={}", secrets.nonce)));
        assert!(url.contains("redirect_uri=https%3A%2F%2Fgate.example%2Foauth%2Fidp%2Fcallback"));
        let github = authorize_url(
            &provider(
                OAuthKind::GitHub,
                "https://github.com/login/oauth/authorize",
            ),
            "https://gate.example/cb",
            &secrets,
        );
        assert!(!github.contains("nonce="), "GitHub takes no nonce");
    }

    #[test]
    fn the_challenge_is_the_verifiers_sha256() {
        // RFC 7636, appendix B.
        let secrets = FlowSecrets {
            state: String::new(),
            nonce: String::new(),
            verifier: "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".into(),
        };
        assert_eq!(
            secrets.challenge(),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }
}
