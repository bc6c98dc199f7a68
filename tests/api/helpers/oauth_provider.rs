//! A fake OAuth 2 provider on port 0, in two flavours: an OpenID Connect provider (discovery,
//! PKCE, RS256 ID tokens, a JWKS, userinfo) and GitHub (its paths, its JSON, its habit of
//! answering token errors with status 200). It approves every authorization request at once,
//! for the user set with [`FakeProvider::set_user`], and checks the rest of the exchange as
//! strictly as a real provider: single-use codes, exact redirect URIs, the PKCE verifier, the
//! client's secret.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{KeyPair, RSA_PKCS1_SHA256, RsaKeyPair};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use http::{HeaderMap, StatusCode, header};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub const CLIENT_ID: &str = "tollgate-test-client";
const ID_TOKEN_LIFETIME_SECS: i64 = 300;
const ACCESS_TOKEN_LIFETIME_SECS: i64 = 3600;
/// The issuer a [`Tamper::WrongIssuer`] token names.
pub const IMPOSTOR_ISSUER: &str = "https://impostor.example";
/// The audience a [`Tamper::WrongAudience`] token names.
pub const OTHER_CLIENT_ID: &str = "some-other-client";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Flavour {
    Oidc,
    GitHub,
}

/// The person who signs in next.
#[derive(Clone, Debug)]
pub struct FakeUser {
    /// `sub` of OpenID Connect. GitHub's flavour answers it as the numeric user id, so there it
    /// must be decimal digits ([`FakeProvider::set_user`] insists).
    pub subject: String,
    /// GitHub's login, OpenID Connect's `preferred_username`.
    pub login: String,
    pub name: String,
    pub email: Option<String>,
    pub email_verified: bool,
}

impl Default for FakeUser {
    fn default() -> FakeUser {
        FakeUser {
            subject: "583231".into(),
            login: "octocat".into(),
            name: "The Octocat".into(),
            email: Some("octocat@example.com".into()),
            email_verified: true,
        }
    }
}

/// How the next ID token is spoiled; each applies to one token, then the provider behaves again.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Tamper {
    None,
    /// A nonce other than the one the authorization request sent.
    WrongNonce,
    /// Signed by a key not in the JWKS, under the published key's `kid`.
    BadSignature,
    /// Issued to [`OTHER_CLIENT_ID`].
    WrongAudience,
    /// Issued two hours ago, expired one hour ago.
    Expired,
    /// Names [`IMPOSTOR_ISSUER`] as its issuer.
    WrongIssuer,
}

pub struct FakeProvider {
    /// `http://127.0.0.1:PORT`, also the OpenID Connect issuer.
    pub base_url: String,
    pub client_id: String,
    /// Random, and holding characters (`+ / % :`) a client must form-encode for HTTP Basic
    /// (RFC 6749, section 2.3.1), so a client that forgets is refused.
    pub client_secret: String,
    state: Arc<Shared>,
}

struct Shared {
    flavour: Flavour,
    issuer: String,
    client_id: String,
    client_secret: String,
    inner: Mutex<Inner>,
}

struct Inner {
    user: FakeUser,
    tamper: Tamper,
    /// Made when first needed (an RSA key takes a moment in debug builds), and again after
    /// each rotation.
    signing_key: Option<Arc<SigningKey>>,
    key_generation: u32,
    /// Signs [`Tamper::BadSignature`] tokens; never published.
    stranger_key: Option<Arc<SigningKey>>,
    /// Authorization codes not yet presented.
    grants: HashMap<String, Grant>,
    access_tokens: HashMap<String, FakeUser>,
    token_exchanges: usize,
}

struct SigningKey {
    kid: String,
    pair: RsaKeyPair,
}

/// What an authorization code stands for.
struct Grant {
    redirect_uri: String,
    /// None in GitHub's flavour, which has no nonce.
    nonce: Option<String>,
    code_challenge: String,
    user: FakeUser,
}

impl FakeProvider {
    pub async fn start(flavour: Flavour) -> FakeProvider {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake OAuth provider");
        let base_url = format!("http://{}", listener.local_addr().expect("address"));
        let client_secret = format!("{}+/%:", random_token());
        let state = Arc::new(Shared {
            flavour,
            issuer: base_url.clone(),
            client_id: CLIENT_ID.into(),
            client_secret: client_secret.clone(),
            inner: Mutex::new(Inner {
                user: FakeUser::default(),
                tamper: Tamper::None,
                signing_key: None,
                key_generation: 1,
                stranger_key: None,
                grants: HashMap::new(),
                access_tokens: HashMap::new(),
                token_exchanges: 0,
            }),
        });
        let router = match flavour {
            Flavour::Oidc => Router::new()
                .route("/.well-known/openid-configuration", get(discovery))
                .route("/authorize", get(authorize))
                .route("/token", post(oidc_token))
                .route("/userinfo", get(userinfo))
                .route("/jwks", get(jwks)),
            Flavour::GitHub => Router::new()
                .route("/login/oauth/authorize", get(authorize))
                .route("/login/oauth/access_token", post(github_access_token))
                .route("/api/user", get(github_user))
                .route("/api/user/emails", get(github_emails)),
        }
        .with_state(state.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        FakeProvider {
            base_url,
            client_id: CLIENT_ID.into(),
            client_secret,
            state,
        }
    }

    /// `base_url` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    pub fn issuer(&self) -> &str {
        &self.base_url
    }

    /// Who signs in from the next authorization request on.
    pub fn set_user(&self, user: FakeUser) {
        if self.state.flavour == Flavour::GitHub {
            assert!(
                user.subject.parse::<u64>().is_ok(),
                "GitHub's user ids are numbers; {:?} is not",
                user.subject
            );
        }
        self.state.lock().user = user;
    }

    /// Spoils the next ID token this way.
    pub fn set_tamper(&self, tamper: Tamper) {
        self.state.lock().tamper = tamper;
    }

    /// How many token requests succeeded.
    pub fn token_exchanges(&self) -> usize {
        self.state.lock().token_exchanges
    }

    /// Replaces the signing key with a new one under a new `kid`; the JWKS then publishes only
    /// the new key, as a provider does once the old key's tokens have expired.
    pub fn rotate_key(&self) {
        let mut inner = self.state.lock();
        inner.signing_key = None;
        inner.key_generation += 1;
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().expect("fake provider state")
    }

    /// The current signing key, made on first use.
    async fn signing_key(&self) -> Arc<SigningKey> {
        if let Some(key) = self.lock().signing_key.clone() {
            return key;
        }
        let pair = new_rsa_key().await;
        let mut inner = self.lock();
        let kid = format!("fake-key-{}", inner.key_generation);
        // A concurrent request may have made one meanwhile: the first stays.
        inner
            .signing_key
            .get_or_insert_with(|| Arc::new(SigningKey { kid, pair }))
            .clone()
    }

    async fn stranger_key(&self) -> Arc<SigningKey> {
        if let Some(key) = self.lock().stranger_key.clone() {
            return key;
        }
        let pair = new_rsa_key().await;
        self.lock()
            .stranger_key
            .get_or_insert_with(|| {
                Arc::new(SigningKey {
                    kid: "stranger".into(),
                    pair,
                })
            })
            .clone()
    }

    fn take_tamper(&self) -> Tamper {
        std::mem::replace(&mut self.lock().tamper, Tamper::None)
    }
}

/// RSA generation is slow enough in debug builds to keep it off the async workers.
async fn new_rsa_key() -> RsaKeyPair {
    tokio::task::spawn_blocking(|| RsaKeyPair::generate(KeySize::Rsa2048).expect("an RSA key"))
        .await
        .expect("key generation")
}

fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 24]>())
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_secs() as i64
}

fn json_response(status: StatusCode, body: Value) -> Response {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-store")
        .body(Body::from(body.to_string()))
        .expect("response")
}

fn text_response(status: StatusCode, text: String) -> Response {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Body::from(text))
        .expect("response")
}

async fn discovery(State(shared): State<Arc<Shared>>) -> Response {
    let base = &shared.issuer;
    json_response(
        StatusCode::OK,
        json!({
            "issuer": base,
            "authorization_endpoint": format!("{base}/authorize"),
            "token_endpoint": format!("{base}/token"),
            "userinfo_endpoint": format!("{base}/userinfo"),
            "jwks_uri": format!("{base}/jwks"),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": ["openid", "email", "profile"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        }),
    )
}

/// Both flavours' authorization endpoint: approves at once and sends the browser back with a
/// code, or answers 400 with what is wrong with the request.
async fn authorize(
    State(shared): State<Arc<Shared>>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    match approve(&shared, &params) {
        Ok(location) => Response::builder()
            .status(StatusCode::FOUND)
            .header(header::LOCATION, location)
            .body(Body::empty())
            .expect("response"),
        Err(why) => text_response(StatusCode::BAD_REQUEST, why),
    }
}

/// Checks an authorization request, records its code, and returns where to send the browser.
fn approve(shared: &Shared, params: &HashMap<String, String>) -> Result<String, String> {
    let param = |name: &str| params.get(name).map(String::as_str).unwrap_or_default();
    if param("client_id") != shared.client_id {
        return Err(format!("unknown client_id {:?}", param("client_id")));
    }
    let redirect_uri = param("redirect_uri");
    if redirect_uri.is_empty() {
        return Err("redirect_uri is required".into());
    }
    if param("state").is_empty() {
        return Err("state is required (it protects the client from forged answers)".into());
    }
    if param("code_challenge_method") != "S256" || param("code_challenge").len() != 43 {
        return Err("PKCE with code_challenge_method=S256 is required".into());
    }
    let nonce = match shared.flavour {
        Flavour::GitHub => None,
        Flavour::Oidc => {
            if param("response_type") != "code" {
                return Err("response_type must be code".into());
            }
            if !param("scope").split(' ').any(|scope| scope == "openid") {
                return Err("scope must include openid".into());
            }
            if param("nonce").is_empty() {
                return Err("nonce is required".into());
            }
            Some(param("nonce").to_string())
        }
    };
    let code = random_token();
    let mut inner = shared.lock();
    let user = inner.user.clone();
    inner.grants.insert(
        code.clone(),
        Grant {
            redirect_uri: redirect_uri.to_string(),
            nonce,
            code_challenge: param("code_challenge").to_string(),
            user,
        },
    );
    Ok(with_query(
        redirect_uri,
        &[("code", &code), ("state", param("state"))],
    ))
}

/// `uri` with `pairs` appended to whatever query it already has.
fn with_query(uri: &str, pairs: &[(&str, &str)]) -> String {
    let query = serde_urlencoded::to_string(pairs).expect("a query");
    let separator = match uri.rfind('?') {
        None => "?",
        Some(at) if at + 1 == uri.len() || uri.ends_with('&') => "",
        Some(_) => "&",
    };
    format!("{uri}{separator}{query}")
}

/// Why a token request failed, before each flavour words it its own way.
#[derive(Debug)]
enum ExchangeError {
    InvalidRequest(&'static str),
    InvalidClient,
    UnsupportedGrantType,
    InvalidGrant(&'static str),
    RedirectMismatch,
}

impl ExchangeError {
    /// RFC 6749's error code and status.
    fn standard(&self) -> (StatusCode, &'static str) {
        match self {
            ExchangeError::InvalidRequest(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
            ExchangeError::InvalidClient => (StatusCode::UNAUTHORIZED, "invalid_client"),
            ExchangeError::UnsupportedGrantType => {
                (StatusCode::BAD_REQUEST, "unsupported_grant_type")
            }
            ExchangeError::InvalidGrant(_) | ExchangeError::RedirectMismatch => {
                (StatusCode::BAD_REQUEST, "invalid_grant")
            }
        }
    }

    /// GitHub's error code (always with status 200).
    fn github(&self) -> &'static str {
        match self {
            ExchangeError::InvalidClient => "incorrect_client_credentials",
            ExchangeError::RedirectMismatch => "redirect_uri_mismatch",
            ExchangeError::UnsupportedGrantType => "unsupported_grant_type",
            ExchangeError::InvalidRequest(_) | ExchangeError::InvalidGrant(_) => {
                "bad_verification_code"
            }
        }
    }

    fn description(&self) -> &'static str {
        match self {
            ExchangeError::InvalidRequest(why) | ExchangeError::InvalidGrant(why) => why,
            ExchangeError::InvalidClient => "the client id or secret is wrong",
            ExchangeError::UnsupportedGrantType => "only authorization_code is supported",
            ExchangeError::RedirectMismatch => "redirect_uri differs from the authorization's",
        }
    }
}

/// Both flavours' token exchange: authenticates the client and redeems the code (once, right
/// or wrong, as strict providers do). Returns the new access token and the grant it redeemed.
fn exchange(
    shared: &Shared,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(String, Grant), ExchangeError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !content_type.starts_with("application/x-www-form-urlencoded") {
        return Err(ExchangeError::InvalidRequest("the body must be a form"));
    }
    let form = parse_form(body)?;
    let field = |name: &str| form.get(name).map(String::as_str);
    authenticate_client(shared, headers, &form)?;
    // GitHub does not ask for grant_type; OpenID Connect requires it.
    match (field("grant_type"), shared.flavour) {
        (Some("authorization_code"), _) | (None, Flavour::GitHub) => {}
        (None, Flavour::Oidc) => {
            return Err(ExchangeError::InvalidRequest("grant_type is missing"));
        }
        (Some(_), _) => return Err(ExchangeError::UnsupportedGrantType),
    }
    let code = field("code").ok_or(ExchangeError::InvalidRequest("code is missing"))?;
    let grant = shared
        .lock()
        .grants
        .remove(code)
        .ok_or(ExchangeError::InvalidGrant("unknown or already used code"))?;
    // GitHub lets the token request leave redirect_uri out; OpenID Connect requires it.
    match (field("redirect_uri"), shared.flavour) {
        (Some(uri), _) if uri == grant.redirect_uri => {}
        (None, Flavour::GitHub) => {}
        _ => return Err(ExchangeError::RedirectMismatch),
    }
    let verifier = field("code_verifier").unwrap_or_default();
    if !pkce_holds(verifier, &grant.code_challenge) {
        return Err(ExchangeError::InvalidGrant(
            "code_verifier does not match code_challenge",
        ));
    }
    let access_token = random_token();
    let mut inner = shared.lock();
    inner.token_exchanges += 1;
    inner
        .access_tokens
        .insert(access_token.clone(), grant.user.clone());
    Ok((access_token, grant))
}

/// A form body as a map; a repeated parameter is an error (RFC 6749, section 3.1).
fn parse_form(body: &[u8]) -> Result<HashMap<String, String>, ExchangeError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
        .map_err(|_| ExchangeError::InvalidRequest("the form does not parse"))?;
    let mut form = HashMap::new();
    for (name, value) in pairs {
        if form.insert(name, value).is_some() {
            return Err(ExchangeError::InvalidRequest("a parameter is repeated"));
        }
    }
    Ok(form)
}

/// The client proves itself with HTTP Basic or with `client_id` and `client_secret` in the
/// form, never both.
fn authenticate_client(
    shared: &Shared,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<(), ExchangeError> {
    let form_id = form.get("client_id").map(String::as_str);
    let form_secret = form.get("client_secret").map(String::as_str);
    let (id, secret) = match headers.get(header::AUTHORIZATION) {
        Some(value) => {
            if form_secret.is_some() {
                return Err(ExchangeError::InvalidRequest(
                    "the client authenticated twice",
                ));
            }
            let (id, secret) = basic_credentials(value.to_str().unwrap_or_default())
                .ok_or(ExchangeError::InvalidClient)?;
            // A client may repeat its id in the form; it must be the same one.
            if form_id.is_some_and(|form_id| form_id != id) {
                return Err(ExchangeError::InvalidClient);
            }
            (id, secret)
        }
        None => match (form_id, form_secret) {
            (Some(id), Some(secret)) => (id.to_string(), secret.to_string()),
            _ => return Err(ExchangeError::InvalidClient),
        },
    };
    if id != shared.client_id || secret != shared.client_secret {
        return Err(ExchangeError::InvalidClient);
    }
    Ok(())
}

/// The client id and secret of an HTTP Basic header, each form-decoded (RFC 6749, section
/// 2.3.1, has the client form-encode both before joining them with a colon).
fn basic_credentials(authorization: &str) -> Option<(String, String)> {
    let (scheme, encoded) = authorization.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let joined = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = joined.split_once(':')?;
    Some((form_decode(id)?, form_decode(secret)?))
}

/// Undoes application/x-www-form-urlencoded escaping: `+` is a space, `%XX` a byte.
fn form_decode(text: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(text.len());
    let mut rest = text.as_bytes();
    while let Some((&first, tail)) = rest.split_first() {
        rest = tail;
        match first {
            b'+' => bytes.push(b' '),
            b'%' => {
                let hex = rest
                    .get(..2)
                    .filter(|h| h.iter().all(u8::is_ascii_hexdigit))?;
                bytes.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
                rest = &rest[2..];
            }
            other => bytes.push(other),
        }
    }
    String::from_utf8(bytes).ok()
}

/// RFC 7636: a verifier of 43 to 128 unreserved characters whose SHA-256, in base64url, is
/// the challenge.
fn pkce_holds(verifier: &str, challenge: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    let digest: [u8; 32] = Sha256::digest(verifier.as_bytes()).into();
    well_formed && URL_SAFE_NO_PAD.encode(digest) == challenge
}

async fn oidc_token(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (access_token, grant) = match exchange(&shared, &headers, &body) {
        Ok(redeemed) => redeemed,
        Err(error) => {
            let (status, code) = error.standard();
            return json_response(
                status,
                json!({"error": code, "error_description": error.description()}),
            );
        }
    };
    let tamper = shared.take_tamper();
    let id_token = id_token(&shared, &grant, tamper).await;
    json_response(
        StatusCode::OK,
        json!({
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": ACCESS_TOKEN_LIFETIME_SECS,
            "id_token": id_token,
            "scope": "openid email profile",
        }),
    )
}

/// An RS256 ID token for the grant's user, spoiled as `tamper` says.
async fn id_token(shared: &Shared, grant: &Grant, tamper: Tamper) -> String {
    let key = shared.signing_key().await;
    let signer = match tamper {
        Tamper::BadSignature => shared.stranger_key().await,
        _ => key.clone(),
    };
    let now = now_secs();
    let (issued, expires) = match tamper {
        Tamper::Expired => (now - 7200, now - 3600),
        _ => (now, now + ID_TOKEN_LIFETIME_SECS),
    };
    let nonce = grant.nonce.clone().unwrap_or_default();
    let mut claims = json!({
        "iss": if tamper == Tamper::WrongIssuer { IMPOSTOR_ISSUER } else { shared.issuer.as_str() },
        "aud": if tamper == Tamper::WrongAudience { OTHER_CLIENT_ID } else { shared.client_id.as_str() },
        "sub": grant.user.subject,
        "nonce": if tamper == Tamper::WrongNonce { format!("not-{nonce}") } else { nonce },
        "iat": issued,
        "exp": expires,
        "name": grant.user.name,
        "preferred_username": grant.user.login,
    });
    if let Some(email) = &grant.user.email {
        claims["email"] = json!(email);
        claims["email_verified"] = json!(grant.user.email_verified);
    }
    // The published key's kid even when a stranger signs: only the signature gives it away.
    let header = json!({"alg": "RS256", "kid": key.kid, "typ": "JWT"});
    sign_rs256(&signer.pair, &header, &claims)
}

fn sign_rs256(key: &RsaKeyPair, header: &Value, claims: &Value) -> String {
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut signature = vec![0; key.public_modulus_len()];
    key.sign(
        &RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        signing_input.as_bytes(),
        &mut signature,
    )
    .expect("RS256 signature");
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

async fn jwks(State(shared): State<Arc<Shared>>) -> Response {
    let key = shared.signing_key().await;
    let (n, e) = rsa_public_components(&key.pair);
    json_response(
        StatusCode::OK,
        json!({"keys": [{
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": key.kid,
            "n": URL_SAFE_NO_PAD.encode(n),
            "e": URL_SAFE_NO_PAD.encode(e),
        }]}),
    )
}

/// The modulus and exponent of an RSA key, big-endian without leading zeros. aws-lc-rs hands
/// them out directly only with its `ring-io` feature, which we do not build, so they are read
/// from the public key's RFC 8017 DER: `SEQUENCE { INTEGER n, INTEGER e }`.
fn rsa_public_components(key: &RsaKeyPair) -> (Vec<u8>, Vec<u8>) {
    let (sequence, _) = der_element(key.public_key().as_ref(), 0x30);
    let (modulus, rest) = der_element(sequence, 0x02);
    let (exponent, _) = der_element(rest, 0x02);
    let without_leading_zeros = |bytes: &[u8]| {
        let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
        bytes[first..].to_vec()
    };
    (
        without_leading_zeros(modulus),
        without_leading_zeros(exponent),
    )
}

/// One DER element with tag `tag` at the start of `input`: its contents and what follows.
fn der_element(input: &[u8], tag: u8) -> (&[u8], &[u8]) {
    assert_eq!(input[0], tag, "unexpected DER tag");
    let (length, header_len) = match input[1] {
        short if short < 0x80 => (usize::from(short), 2),
        long => {
            let count = usize::from(long & 0x7f);
            let length = input[2..2 + count]
                .iter()
                .fold(0, |length, &byte| length << 8 | usize::from(byte));
            (length, 2 + count)
        }
    };
    input[header_len..].split_at(length)
}

/// The user an access token was issued for, from `Authorization: <scheme> <token>` with one of
/// `schemes`.
fn token_user(shared: &Shared, headers: &HeaderMap, schemes: &[&str]) -> Option<FakeUser> {
    let authorization = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = authorization.split_once(' ')?;
    if !schemes.iter().any(|s| s.eq_ignore_ascii_case(scheme)) {
        return None;
    }
    shared.lock().access_tokens.get(token.trim()).cloned()
}

async fn userinfo(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let Some(user) = token_user(&shared, &headers, &["Bearer"]) else {
        return json_response(StatusCode::UNAUTHORIZED, json!({"error": "invalid_token"}));
    };
    let mut info = json!({
        "sub": user.subject,
        "name": user.name,
        "preferred_username": user.login,
    });
    if let Some(email) = &user.email {
        info["email"] = json!(email);
        info["email_verified"] = json!(user.email_verified);
    }
    json_response(StatusCode::OK, info)
}

/// GitHub answers JSON only when asked with `Accept: application/json`, a form otherwise.
fn github_answer(headers: &HeaderMap, pairs: &[(&str, &str)]) -> Response {
    let wants_json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("application/json"));
    if wants_json {
        let object: serde_json::Map<String, Value> = pairs
            .iter()
            .map(|(name, value)| (name.to_string(), json!(value)))
            .collect();
        return json_response(StatusCode::OK, Value::Object(object));
    }
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(
            serde_urlencoded::to_string(pairs).expect("a form"),
        ))
        .expect("response")
}

async fn github_access_token(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match exchange(&shared, &headers, &body) {
        Ok((access_token, _)) => github_answer(
            &headers,
            &[
                ("access_token", &access_token),
                ("token_type", "bearer"),
                ("scope", "read:user,user:email"),
            ],
        ),
        Err(error) => github_answer(
            &headers,
            &[
                ("error", error.github()),
                ("error_description", error.description()),
            ],
        ),
    }
}

/// Answers a GitHub API call with `body` for the token's user. Like GitHub, refuses requests
/// without a User-Agent (403) and takes the token with either scheme.
fn github_api(
    shared: &Shared,
    headers: &HeaderMap,
    body: impl FnOnce(FakeUser) -> Value,
) -> Response {
    if !headers.contains_key(header::USER_AGENT) {
        return text_response(
            StatusCode::FORBIDDEN,
            "Request forbidden by administrative rules. \
             Please make sure your request has a User-Agent header."
                .into(),
        );
    }
    match token_user(shared, headers, &["Bearer", "token"]) {
        Some(user) => json_response(StatusCode::OK, body(user)),
        None => json_response(
            StatusCode::UNAUTHORIZED,
            json!({"message": "Bad credentials", "status": "401"}),
        ),
    }
}

async fn github_user(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    github_api(&shared, &headers, |user| {
        let id: u64 = user.subject.parse().expect("set_user checked the id");
        json!({
            "id": id,
            "login": user.login,
            "name": user.name,
            "email": user.email,
        })
    })
}

async fn github_emails(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    github_api(&shared, &headers, |user| {
        let emails = user.email.iter().map(|email| {
            json!({
                "email": email,
                "primary": true,
                "verified": user.email_verified,
                "visibility": "public",
            })
        });
        Value::Array(emails.collect())
    })
}
