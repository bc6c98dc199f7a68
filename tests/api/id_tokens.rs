//! ID tokens and the fake OAuth provider. These tests walk the fake provider's flows by hand,
//! over HTTP, to prove that what it issues is what `tollgate::domain::id_token` accepts, and
//! that each spoiled token fails with its own error; the portal's own sign-in (`portal_oauth`) builds on both.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, LOCATION, USER_AGENT};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tollgate::domain::id_token::{self, Expected, IdClaims, IdTokenError, Jwks};

use crate::helpers::oauth_provider::{FakeProvider, FakeUser, Flavour, Tamper};

/// Where the provider sends the browser back; nothing listens there, the tests read the
/// redirect themselves.
const REDIRECT_URI: &str = "http://127.0.0.1:9/auth/oauth/callback";

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// A PKCE verifier and its S256 challenge.
struct Pkce {
    verifier: String,
    challenge: String,
}

fn pkce() -> Pkce {
    let verifier = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    let digest: [u8; 32] = Sha256::digest(verifier.as_bytes()).into();
    Pkce {
        challenge: URL_SAFE_NO_PAD.encode(digest),
        verifier,
    }
}

fn random_text() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>())
}

/// One value as application/x-www-form-urlencoded, as RFC 6749 wants HTTP Basic's parts.
fn form_encoded(text: &str) -> String {
    serde_urlencoded::to_string([("", text)])
        .expect("encodes")
        .trim_start_matches('=')
        .to_string()
}

fn with_query(url: &str, pairs: &[(&str, &str)]) -> String {
    format!(
        "{url}?{}",
        serde_urlencoded::to_string(pairs).expect("a query")
    )
}

/// The query parameters of a URL, as pairs.
fn query_of(url: &str) -> Vec<(String, String)> {
    let query = url.split_once('?').map(|(_, q)| q).unwrap_or_default();
    serde_urlencoded::from_str(query).expect("a query")
}

fn query_param(url: &str, name: &str) -> Option<String> {
    query_of(url)
        .into_iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value)
}

/// Sends the authorization request and returns where the provider redirects to.
async fn authorize(url: &str, pairs: &[(&str, &str)]) -> String {
    let answer = client()
        .get(with_query(url, pairs))
        .send()
        .await
        .expect("the provider answers");
    assert_eq!(answer.status().as_u16(), 302, "{:?}", answer.text().await);
    answer.headers()[LOCATION]
        .to_str()
        .expect("a Location")
        .to_string()
}

/// Posts a token request; `basic` sends the client's credentials as HTTP Basic.
async fn post_token(
    url: &str,
    form: &[(&str, &str)],
    basic: Option<(&str, &str)>,
    accept_json: bool,
) -> reqwest::Response {
    let mut request = client()
        .post(url)
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string(form).expect("a form"));
    if let Some((id, secret)) = basic {
        request = request.basic_auth(id, Some(secret));
    }
    if accept_json {
        request = request.header(ACCEPT, "application/json");
    }
    request.send().await.expect("the provider answers")
}

async fn get_json(url: &str) -> Value {
    let answer = client()
        .get(url)
        .send()
        .await
        .expect("the provider answers");
    assert_eq!(answer.status().as_u16(), 200);
    answer.json().await.expect("JSON")
}

async fn discover(provider: &FakeProvider) -> Value {
    get_json(&provider.url("/.well-known/openid-configuration")).await
}

async fn fetch_jwks(provider: &FakeProvider) -> Jwks {
    let document = discover(provider).await;
    let keys = client()
        .get(document["jwks_uri"].as_str().expect("jwks_uri"))
        .send()
        .await
        .expect("the provider answers")
        .bytes()
        .await
        .expect("a body");
    Jwks::parse(&keys).expect("a key set")
}

/// An OpenID Connect authorization up to the code: returns the code, the PKCE pair and the
/// nonce the request sent.
async fn oidc_code(provider: &FakeProvider) -> (String, Pkce, String) {
    let document = discover(provider).await;
    let pkce = pkce();
    let (state, nonce) = (random_text(), random_text());
    let location = authorize(
        document["authorization_endpoint"]
            .as_str()
            .expect("endpoint"),
        &[
            ("response_type", "code"),
            ("client_id", &provider.client_id),
            ("redirect_uri", REDIRECT_URI),
            ("scope", "openid email profile"),
            ("state", &state),
            ("nonce", &nonce),
            ("code_challenge", &pkce.challenge),
            ("code_challenge_method", "S256"),
        ],
    )
    .await;
    assert!(
        location.starts_with(&format!("{REDIRECT_URI}?")),
        "{location}"
    );
    assert_eq!(query_param(&location, "state"), Some(state));
    let code = query_param(&location, "code").expect("a code");
    (code, pkce, nonce)
}

/// The token request of an OpenID Connect sign-in, the client authenticating with HTTP Basic.
async fn redeem(provider: &FakeProvider, code: &str, verifier: &str) -> reqwest::Response {
    post_token(
        &provider.url("/token"),
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", verifier),
        ],
        Some((
            &form_encoded(&provider.client_id),
            &form_encoded(&provider.client_secret),
        )),
        false,
    )
    .await
}

/// A whole OpenID Connect sign-in: returns the token answer and the nonce sent.
async fn sign_in(provider: &FakeProvider) -> (Value, String) {
    let (code, pkce, nonce) = oidc_code(provider).await;
    let answer = redeem(provider, &code, &pkce.verifier).await;
    assert_eq!(answer.status().as_u16(), 200);
    (answer.json().await.expect("JSON"), nonce)
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_secs() as i64
}

fn expected<'a>(provider: &'a FakeProvider, nonce: &'a str) -> Expected<'a> {
    Expected {
        issuer: provider.issuer(),
        client_id: &provider.client_id,
        nonce,
        now_secs: now_secs(),
        leeway_secs: 60,
    }
}

fn verify(
    token_answer: &Value,
    jwks: &Jwks,
    expected: &Expected<'_>,
) -> Result<IdClaims, IdTokenError> {
    let token = token_answer["id_token"].as_str().expect("an id_token");
    id_token::verify(token, jwks, expected)
}

async fn expect_oauth_error(answer: reqwest::Response, status: u16, error: &str) {
    assert_eq!(answer.status().as_u16(), status);
    let body: Value = answer.json().await.expect("JSON");
    assert_eq!(body["error"], error, "{body}");
}

#[tokio::test]
async fn an_oidc_sign_in_yields_an_id_token_the_verifier_accepts() {
    let provider = FakeProvider::start(Flavour::Oidc).await;
    let base = &provider.base_url;
    assert_eq!(provider.issuer(), base);
    let document = discover(&provider).await;
    assert_eq!(document["issuer"], json!(base));
    assert_eq!(document["token_endpoint"], json!(format!("{base}/token")));
    assert_eq!(
        document["userinfo_endpoint"],
        json!(format!("{base}/userinfo"))
    );
    assert_eq!(
        document["code_challenge_methods_supported"],
        json!(["S256"])
    );
    provider.set_user(FakeUser {
        subject: "user-7".into(),
        login: "jdoe".into(),
        name: "Jane Doe".into(),
        email: Some("jane@example.com".into()),
        email_verified: false,
    });

    let (answer, nonce) = sign_in(&provider).await;
    assert_eq!(answer["token_type"], "Bearer");
    assert_eq!(answer["expires_in"], 3600);
    assert_eq!(provider.token_exchanges(), 1);
    let jwks = fetch_jwks(&provider).await;
    let person = verify(&answer, &jwks, &expected(&provider, &nonce)).expect("a valid token");
    assert_eq!(
        person,
        IdClaims {
            subject: "user-7".into(),
            email: Some("jane@example.com".into()),
            email_verified: false,
            name: Some("Jane Doe".into()),
            preferred_username: Some("jdoe".into()),
        }
    );
    // The same token with another sign-in's nonce is a replay.
    assert_eq!(
        verify(&answer, &jwks, &expected(&provider, "another-nonce")),
        Err(IdTokenError::WrongNonce)
    );

    let access_token = answer["access_token"].as_str().expect("an access token");
    let info: Value = client()
        .get(provider.url("/userinfo"))
        .bearer_auth(access_token)
        .send()
        .await
        .expect("the provider answers")
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        info,
        json!({"sub": "user-7", "email": "jane@example.com", "email_verified": false,
               "name": "Jane Doe", "preferred_username": "jdoe"})
    );
    let refused = client()
        .get(provider.url("/userinfo"))
        .bearer_auth("not-a-token")
        .send()
        .await
        .expect("the provider answers");
    assert_eq!(refused.status().as_u16(), 401);
}

#[tokio::test]
async fn each_spoiled_id_token_fails_with_its_own_error() {
    let provider = FakeProvider::start(Flavour::Oidc).await;
    let jwks = fetch_jwks(&provider).await;
    for (tamper, error) in [
        (Tamper::WrongNonce, IdTokenError::WrongNonce),
        (Tamper::BadSignature, IdTokenError::BadSignature),
        (Tamper::WrongAudience, IdTokenError::WrongAudience),
        (Tamper::Expired, IdTokenError::Expired),
        (Tamper::WrongIssuer, IdTokenError::WrongIssuer),
    ] {
        provider.set_tamper(tamper);
        let (answer, nonce) = sign_in(&provider).await;
        assert_eq!(
            verify(&answer, &jwks, &expected(&provider, &nonce)),
            Err(error),
            "{tamper:?}"
        );
        // A tamper spoils one token only.
        let (answer, nonce) = sign_in(&provider).await;
        assert!(verify(&answer, &jwks, &expected(&provider, &nonce)).is_ok());
    }
    provider.set_tamper(Tamper::WrongNonce);
    provider.set_tamper(Tamper::None);
    let (answer, nonce) = sign_in(&provider).await;
    assert!(verify(&answer, &jwks, &expected(&provider, &nonce)).is_ok());
}

#[tokio::test]
async fn after_a_key_rotation_only_a_fresh_key_set_verifies_new_tokens() {
    let provider = FakeProvider::start(Flavour::Oidc).await;
    let old_jwks = fetch_jwks(&provider).await;
    let (old_answer, old_nonce) = sign_in(&provider).await;
    provider.rotate_key();
    let (answer, nonce) = sign_in(&provider).await;
    assert_eq!(
        verify(&answer, &old_jwks, &expected(&provider, &nonce)),
        Err(IdTokenError::UnknownKey)
    );
    let new_jwks = fetch_jwks(&provider).await;
    assert!(verify(&answer, &new_jwks, &expected(&provider, &nonce)).is_ok());
    assert_eq!(
        verify(&old_answer, &new_jwks, &expected(&provider, &old_nonce)),
        Err(IdTokenError::UnknownKey)
    );
}

#[tokio::test]
async fn the_token_endpoint_checks_code_verifier_redirect_and_client() {
    let provider = FakeProvider::start(Flavour::Oidc).await;

    let (code, pkce_pair, _) = oidc_code(&provider).await;
    assert_eq!(
        redeem(&provider, &code, &pkce_pair.verifier).await.status(),
        200
    );
    expect_oauth_error(
        redeem(&provider, &code, &pkce_pair.verifier).await,
        400,
        "invalid_grant",
    )
    .await;

    // Another verifier of the right form, not the one the challenge came from.
    let (code, _, _) = oidc_code(&provider).await;
    expect_oauth_error(
        redeem(&provider, &code, &pkce().verifier).await,
        400,
        "invalid_grant",
    )
    .await;

    let token_url = provider.url("/token");
    let (code, pkce_pair, _) = oidc_code(&provider).await;
    let mismatched = post_token(
        &token_url,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1:9/elsewhere"),
            ("code_verifier", &pkce_pair.verifier),
            ("client_id", &provider.client_id),
            ("client_secret", &provider.client_secret),
        ],
        None,
        false,
    )
    .await;
    expect_oauth_error(mismatched, 400, "invalid_grant").await;

    // The secret holds characters HTTP Basic needs form-encoded: sent raw, it is wrong.
    let (code, pkce_pair, _) = oidc_code(&provider).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT_URI),
        ("code_verifier", &pkce_pair.verifier),
    ];
    let raw_basic = post_token(
        &token_url,
        &form,
        Some((&provider.client_id, &provider.client_secret)),
        false,
    )
    .await;
    expect_oauth_error(raw_basic, 401, "invalid_client").await;

    // Client credentials in the form work as well as HTTP Basic.
    let (code, pkce_pair, _) = oidc_code(&provider).await;
    let in_form = post_token(
        &token_url,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", &pkce_pair.verifier),
            ("client_id", &provider.client_id),
            ("client_secret", &provider.client_secret),
        ],
        None,
        false,
    )
    .await;
    assert_eq!(in_form.status(), 200);
    assert_eq!(provider.token_exchanges(), 2);
}

#[tokio::test]
async fn the_authorization_endpoint_refuses_incomplete_requests() {
    let provider = FakeProvider::start(Flavour::Oidc).await;
    let pkce = pkce();
    let complete = [
        ("response_type", "code"),
        ("client_id", provider.client_id.as_str()),
        ("redirect_uri", REDIRECT_URI),
        ("scope", "openid email"),
        ("state", "s"),
        ("nonce", "n"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let url = provider.url("/authorize");
    assert!(authorize(&url, &complete).await.starts_with(REDIRECT_URI));
    for (name, spoiled) in [
        ("client_id", "someone-else"),
        ("scope", "email profile"),
        ("nonce", ""),
        ("state", ""),
        ("code_challenge_method", "plain"),
    ] {
        let pairs: Vec<(&str, &str)> = complete
            .iter()
            .map(|&(key, value)| (key, if key == name { spoiled } else { value }))
            .collect();
        let answer = client()
            .get(with_query(&url, &pairs))
            .send()
            .await
            .expect("the provider answers");
        assert_eq!(answer.status().as_u16(), 400, "{name}={spoiled}");
    }
}

#[tokio::test]
async fn a_github_sign_in_reads_the_user_and_their_emails() {
    let provider = FakeProvider::start(Flavour::GitHub).await;
    let pkce = pkce();
    // A callback with a query of its own gets the code appended to it.
    let callback = format!("{REDIRECT_URI}?provider=github");
    let location = authorize(
        &provider.url("/login/oauth/authorize"),
        &[
            ("client_id", &provider.client_id),
            ("redirect_uri", &callback),
            ("scope", "read:user user:email"),
            ("state", "github-state"),
            ("code_challenge", &pkce.challenge),
            ("code_challenge_method", "S256"),
        ],
    )
    .await;
    assert!(
        location.starts_with(&format!("{callback}&code=")),
        "{location}"
    );
    assert_eq!(
        query_param(&location, "provider").as_deref(),
        Some("github")
    );
    assert_eq!(
        query_param(&location, "state").as_deref(),
        Some("github-state")
    );
    let code = query_param(&location, "code").expect("a code");

    let token_url = provider.url("/login/oauth/access_token");
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", callback.as_str()),
        ("code_verifier", pkce.verifier.as_str()),
        ("client_id", provider.client_id.as_str()),
        ("client_secret", provider.client_secret.as_str()),
    ];
    let answer = post_token(&token_url, &form, None, true).await;
    assert_eq!(answer.status(), 200);
    let answer: Value = answer.json().await.expect("JSON");
    assert_eq!(answer["token_type"], "bearer");
    let access_token = answer["access_token"]
        .as_str()
        .expect("a token")
        .to_string();
    assert_eq!(provider.token_exchanges(), 1);

    // GitHub reports a spent code with status 200 and an error field.
    let again = post_token(&token_url, &form, None, true).await;
    assert_eq!(again.status(), 200);
    let again: Value = again.json().await.expect("JSON");
    assert_eq!(again["error"], "bad_verification_code");

    let api = |path: &str, authorization: String| {
        client()
            .get(provider.url(path))
            .header(AUTHORIZATION, authorization)
            .header(USER_AGENT, "tollgate-tests")
    };
    let user: Value = api("/api/user", format!("Bearer {access_token}"))
        .send()
        .await
        .expect("the provider answers")
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        user,
        json!({"id": 583231, "login": "octocat", "name": "The Octocat",
               "email": "octocat@example.com"})
    );
    let emails: Value = api("/api/user/emails", format!("token {access_token}"))
        .send()
        .await
        .expect("the provider answers")
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        emails,
        json!([{"email": "octocat@example.com", "primary": true, "verified": true,
                "visibility": "public"}])
    );
    let without_agent = client()
        .get(provider.url("/api/user"))
        .bearer_auth(&access_token)
        .send()
        .await
        .expect("the provider answers");
    assert_eq!(without_agent.status().as_u16(), 403);
}

#[tokio::test]
async fn a_github_user_without_an_email_has_none_to_list() {
    let provider = FakeProvider::start(Flavour::GitHub).await;
    provider.set_user(FakeUser {
        subject: "42".into(),
        login: "quiet".into(),
        name: "Quiet Person".into(),
        email: None,
        email_verified: false,
    });
    let pkce = pkce();
    let location = authorize(
        &provider.url("/login/oauth/authorize"),
        &[
            ("client_id", &provider.client_id),
            ("redirect_uri", REDIRECT_URI),
            ("state", "s"),
            ("code_challenge", &pkce.challenge),
            ("code_challenge_method", "S256"),
        ],
    )
    .await;
    let code = query_param(&location, "code").expect("a code");
    // HTTP Basic, no redirect_uri (GitHub does not require it), and a form-encoded answer.
    let answer = post_token(
        &provider.url("/login/oauth/access_token"),
        &[("code", &code), ("code_verifier", &pkce.verifier)],
        Some((
            &form_encoded(&provider.client_id),
            &form_encoded(&provider.client_secret),
        )),
        false,
    )
    .await;
    let answer = answer.text().await.expect("a body");
    let access_token = query_param(&format!("?{answer}"), "access_token").expect("a token");

    let get = |path: &str| {
        client()
            .get(provider.url(path))
            .bearer_auth(&access_token)
            .header(USER_AGENT, "tollgate-tests")
            .send()
    };
    let user: Value = get("/api/user").await.unwrap().json().await.unwrap();
    assert_eq!(user["id"], 42);
    assert_eq!(user["email"], Value::Null);
    let emails: Value = get("/api/user/emails").await.unwrap().json().await.unwrap();
    assert_eq!(emails, json!([]));
}
