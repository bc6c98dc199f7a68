//! OpenID Connect ID tokens: a compact JWS signed by the provider with RS256 or ES256, checked
//! against the provider's published keys (its JWKS), then against what this sign-in expects
//! (issuer, audience, nonce, time). The signature is checked before any claim is read, so
//! nothing in the payload is believed until the provider is known to have written it.

use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents, UnparsedPublicKey,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Real ID tokens are one or two kilobytes; anything far larger is refused before decoding, so
/// a hostile answer cannot make us decode and parse megabytes.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Each P-256 coordinate, and each half (r, s) of an ES256 signature, is 32 bytes.
const P256_SCALAR_BYTES: usize = 32;
/// SEC 1's marker of an uncompressed point, the form aws-lc-rs takes for a P-256 public key.
const UNCOMPRESSED_POINT_TAG: u8 = 0x04;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdTokenError {
    #[error("the ID token is malformed: {0}")]
    Malformed(String),
    #[error("the ID token is signed with {0}, which is not accepted (only RS256 and ES256)")]
    UnsupportedAlgorithm(String),
    #[error("no key of the provider matches the ID token's key id and algorithm")]
    UnknownKey,
    #[error("the ID token's signature does not verify")]
    BadSignature,
    #[error("the ID token was issued by someone other than the configured provider")]
    WrongIssuer,
    #[error("the ID token was issued to another client")]
    WrongAudience,
    #[error("the ID token has expired")]
    Expired,
    #[error("the ID token is not valid yet")]
    NotYetValid,
    #[error("the ID token does not carry this sign-in's nonce")]
    WrongNonce,
}

/// What one sign-in expects of its ID token.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// Must equal `iss` exactly.
    pub issuer: &'a str,
    /// Must be among `aud`; with several audiences, `azp` must name it too.
    pub client_id: &'a str,
    /// Must equal `nonce` exactly; a token without one is refused.
    pub nonce: &'a str,
    pub now_secs: i64,
    /// Allowance for clock skew between the provider and us, in both directions.
    pub leeway_secs: i64,
}

/// Who signed in, as the verified token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdClaims {
    /// `sub`: the provider's stable identifier of the person, never empty.
    pub subject: String,
    pub email: Option<String>,
    /// True only for JSON `true` or the string `"true"` (some providers send a string).
    pub email_verified: bool,
    pub name: Option<String>,
    pub preferred_username: Option<String>,
}

/// A provider's signing keys, parsed from its JWKS document.
#[derive(Debug, Clone, Default)]
pub struct Jwks {
    keys: Vec<Jwk>,
}

#[derive(Debug, Clone)]
struct Jwk {
    kid: Option<String>,
    key: PublicKey,
}

#[derive(Debug, Clone)]
enum PublicKey {
    /// Big-endian unsigned bytes without leading zeros, as aws-lc-rs requires.
    Rsa { modulus: Vec<u8>, exponent: Vec<u8> },
    /// The uncompressed point `0x04 || x || y`.
    P256 { point: Vec<u8> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Algorithm {
    Rs256,
    Es256,
}

impl Algorithm {
    fn from_name(name: &str) -> Option<Algorithm> {
        match name {
            "RS256" => Some(Algorithm::Rs256),
            "ES256" => Some(Algorithm::Es256),
            _ => None,
        }
    }
}

impl PublicKey {
    /// The one algorithm this key verifies: a key never serves another algorithm, which is
    /// what defeats algorithm-confusion attacks.
    fn algorithm(&self) -> Algorithm {
        match self {
            PublicKey::Rsa { .. } => Algorithm::Rs256,
            PublicKey::P256 { .. } => Algorithm::Es256,
        }
    }

    fn verifies(&self, signing_input: &[u8], signature: &[u8]) -> bool {
        match self {
            PublicKey::Rsa { modulus, exponent } => RsaPublicKeyComponents {
                n: modulus,
                e: exponent,
            }
            .verify(&RSA_PKCS1_2048_8192_SHA256, signing_input, signature)
            .is_ok(),
            PublicKey::P256 { point } => {
                signature.len() == 2 * P256_SCALAR_BYTES
                    && UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
                        .verify(signing_input, signature)
                        .is_ok()
            }
        }
    }
}

#[derive(Deserialize)]
struct JwksDocument {
    keys: Vec<Value>,
}

/// One entry of a JWKS as published; fields we do not use are ignored.
#[derive(Deserialize)]
struct PublishedKey {
    kty: String,
    kid: Option<String>,
    alg: Option<String>,
    #[serde(rename = "use")]
    usage: Option<String>,
    key_ops: Option<Vec<String>>,
    crv: Option<String>,
    n: Option<String>,
    e: Option<String>,
    x: Option<String>,
    y: Option<String>,
}

impl Jwks {
    /// Parses a JWKS document. Keys we cannot use (other types or curves, encryption keys,
    /// keys meant for another algorithm, or entries that do not decode) are left out rather
    /// than failing the whole document: providers publish such keys next to their signing keys.
    pub fn parse(json: &[u8]) -> Result<Jwks, IdTokenError> {
        let document: JwksDocument = serde_json::from_slice(json)
            .map_err(|e| IdTokenError::Malformed(format!("the JWKS is not a key set: {e}")))?;
        let keys = document
            .keys
            .iter()
            .filter_map(|entry| PublishedKey::deserialize(entry).ok())
            .filter_map(usable_key)
            .collect();
        Ok(Jwks { keys })
    }

    /// True when the document held no key we can verify with.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// The keys that may have signed a token with this algorithm and key id: with a key id,
    /// only the key of that id; without one, every key of the algorithm's type.
    fn candidates(&self, algorithm: Algorithm, kid: Option<&str>) -> Vec<&PublicKey> {
        self.keys
            .iter()
            .filter(|jwk| jwk.key.algorithm() == algorithm)
            .filter(|jwk| kid.is_none_or(|kid| jwk.kid.as_deref() == Some(kid)))
            .map(|jwk| &jwk.key)
            .collect()
    }
}

fn usable_key(published: PublishedKey) -> Option<Jwk> {
    if published
        .usage
        .as_deref()
        .is_some_and(|usage| usage != "sig")
    {
        return None;
    }
    if published
        .key_ops
        .as_ref()
        .is_some_and(|ops| !ops.iter().any(|op| op == "verify"))
    {
        return None;
    }
    let key = match published.kty.as_str() {
        "RSA" => PublicKey::Rsa {
            modulus: unsigned_integer(published.n.as_deref()?)?,
            exponent: unsigned_integer(published.e.as_deref()?)?,
        },
        "EC" if published.crv.as_deref() == Some("P-256") => {
            let x = decode_coordinate(published.x.as_deref()?)?;
            let y = decode_coordinate(published.y.as_deref()?)?;
            let mut point = Vec::with_capacity(1 + 2 * P256_SCALAR_BYTES);
            point.push(UNCOMPRESSED_POINT_TAG);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            PublicKey::P256 { point }
        }
        _ => return None,
    };
    // A key labelled for one algorithm must not verify another, even of the same key type
    // (an RSA key marked PS256 is not an RS256 key).
    if let Some(alg) = published.alg.as_deref()
        && Algorithm::from_name(alg) != Some(key.algorithm())
    {
        return None;
    }
    Some(Jwk {
        kid: published.kid,
        key,
    })
}

/// A base64url big-endian integer with any leading zero bytes removed (some providers pad the
/// modulus with one; aws-lc-rs refuses them). None when it does not decode or is zero.
fn unsigned_integer(encoded: &str) -> Option<Vec<u8>> {
    let bytes = URL_SAFE_NO_PAD.decode(encoded).ok()?;
    let first = bytes.iter().position(|&b| b != 0)?;
    Some(bytes[first..].to_vec())
}

fn decode_coordinate(encoded: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD
        .decode(encoded)
        .ok()
        .filter(|bytes| bytes.len() == P256_SCALAR_BYTES)
}

/// The JOSE header; `crit` is read only to refuse tokens that demand extensions we do not
/// implement (RFC 7515, section 4.1.11).
#[derive(Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
    crit: Option<Value>,
}

/// The claims we check or hand back. Times are JSON numbers of seconds, possibly fractional.
#[derive(Deserialize)]
struct Claims {
    iss: Option<String>,
    aud: Option<Audience>,
    azp: Option<String>,
    exp: Option<f64>,
    iat: Option<f64>,
    nbf: Option<f64>,
    nonce: Option<String>,
    sub: Option<String>,
    email: Option<String>,
    email_verified: Option<Value>,
    name: Option<String>,
    preferred_username: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Several(Vec<String>),
}

impl Audience {
    fn as_slice(&self) -> &[String] {
        match self {
            Audience::One(audience) => std::slice::from_ref(audience),
            Audience::Several(audiences) => audiences,
        }
    }
}

/// The three parts of a compact JWS, still encoded.
struct CompactParts<'t> {
    header: &'t str,
    payload: &'t str,
    signature: &'t str,
    /// `header.payload`, the bytes the signature covers.
    signing_input: &'t str,
}

fn split_compact(token: &str) -> Result<CompactParts<'_>, IdTokenError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(IdTokenError::Malformed(format!(
            "the token is {} bytes, more than {MAX_TOKEN_BYTES}",
            token.len()
        )));
    }
    let pieces: Vec<&str> = token.split('.').collect();
    let [header, payload, signature] = pieces[..] else {
        return Err(IdTokenError::Malformed(
            "not three dot-separated parts".into(),
        ));
    };
    Ok(CompactParts {
        header,
        payload,
        signature,
        signing_input: &token[..header.len() + 1 + payload.len()],
    })
}

fn decode_part(encoded: &str, part: &str) -> Result<Vec<u8>, IdTokenError> {
    URL_SAFE_NO_PAD
        .decode(encoded)
        .map_err(|_| IdTokenError::Malformed(format!("the {part} is not unpadded base64url")))
}

fn decode_json<T: DeserializeOwned>(encoded: &str, part: &str) -> Result<T, IdTokenError> {
    let bytes = decode_part(encoded, part)?;
    serde_json::from_slice(&bytes)
        .map_err(|e| IdTokenError::Malformed(format!("the {part} is not the expected JSON: {e}")))
}

/// Verifies `token`'s signature with `jwks`, then its claims against `expected`; returns who
/// signed in. [`IdTokenError::UnknownKey`] means the provider may have rotated its keys: fetch
/// the JWKS again and retry once.
pub fn verify(token: &str, jwks: &Jwks, expected: &Expected<'_>) -> Result<IdClaims, IdTokenError> {
    let parts = split_compact(token)?;
    let header: Header = decode_json(parts.header, "header")?;
    if header.crit.is_some() {
        return Err(IdTokenError::Malformed(
            "the header names critical extensions".into(),
        ));
    }
    let algorithm = Algorithm::from_name(&header.alg)
        .ok_or_else(|| IdTokenError::UnsupportedAlgorithm(header.alg.clone()))?;
    let candidates = jwks.candidates(algorithm, header.kid.as_deref());
    if candidates.is_empty() {
        return Err(IdTokenError::UnknownKey);
    }
    let signature = decode_part(parts.signature, "signature")?;
    let signed_by_provider = candidates
        .iter()
        .any(|key| key.verifies(parts.signing_input.as_bytes(), &signature));
    if !signed_by_provider {
        return Err(IdTokenError::BadSignature);
    }
    let claims: Claims = decode_json(parts.payload, "payload")?;
    check_claims(claims, expected)
}

fn check_claims(claims: Claims, expected: &Expected<'_>) -> Result<IdClaims, IdTokenError> {
    if claims.iss.as_deref() != Some(expected.issuer) {
        return Err(IdTokenError::WrongIssuer);
    }
    check_audience(
        claims.aud.as_ref(),
        claims.azp.as_deref(),
        expected.client_id,
    )?;
    check_times(&claims, expected)?;
    // An empty expected nonce would accept tokens minted without one: never a match.
    if expected.nonce.is_empty() || claims.nonce.as_deref() != Some(expected.nonce) {
        return Err(IdTokenError::WrongNonce);
    }
    let subject = claims
        .sub
        .filter(|sub| !sub.is_empty())
        .ok_or_else(|| IdTokenError::Malformed("the token names no subject (sub)".into()))?;
    Ok(IdClaims {
        subject,
        email: claims.email,
        email_verified: is_true(claims.email_verified.as_ref()),
        name: claims.name,
        preferred_username: claims.preferred_username,
    })
}

/// The client must be an audience. A token for several audiences must also name the client as
/// its authorized party (`azp`), and an `azp` naming another client is refused in any case
/// (OpenID Connect Core, section 3.1.3.7).
fn check_audience(
    audience: Option<&Audience>,
    authorized_party: Option<&str>,
    client_id: &str,
) -> Result<(), IdTokenError> {
    let audiences = audience.map(Audience::as_slice).unwrap_or_default();
    if !audiences.iter().any(|audience| audience == client_id) {
        return Err(IdTokenError::WrongAudience);
    }
    let party_ok = match authorized_party {
        Some(party) => party == client_id,
        None => audiences.len() == 1,
    };
    if !party_ok {
        return Err(IdTokenError::WrongAudience);
    }
    Ok(())
}

/// `exp` is required; `iat` and `nbf` are checked when present (OpenID requires `iat`, but a
/// token without it is no less safe once `exp` holds).
fn check_times(claims: &Claims, expected: &Expected<'_>) -> Result<(), IdTokenError> {
    let earliest = expected.now_secs.saturating_sub(expected.leeway_secs) as f64;
    let latest = expected.now_secs.saturating_add(expected.leeway_secs) as f64;
    let expires = claims
        .exp
        .ok_or_else(|| IdTokenError::Malformed("the token has no expiry (exp)".into()))?;
    if expires <= earliest {
        return Err(IdTokenError::Expired);
    }
    let starts = [claims.iat, claims.nbf];
    if starts.into_iter().flatten().any(|start| start > latest) {
        return Err(IdTokenError::NotYetValid);
    }
    Ok(())
}

fn is_true(value: Option<&Value>) -> bool {
    match value {
        Some(Value::Bool(flag)) => *flag,
        Some(Value::String(text)) => text == "true",
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::LazyLock;

    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::rsa::KeySize;
    use aws_lc_rs::signature::{
        ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair, RSA_PKCS1_SHA256, RsaKeyPair,
    };
    use serde_json::json;

    use super::*;

    const NOW: i64 = 1_750_000_000;
    const ISSUER: &str = "https://accounts.example.com";
    const CLIENT: &str = "tollgate-client";
    const NONCE: &str = "n-0S6_WzA2Mj";

    struct TestKeys {
        rsa: RsaKeyPair,
        other_rsa: RsaKeyPair,
        ec: EcdsaKeyPair,
    }

    // RSA generation takes a noticeable fraction of a second in debug builds: once per run.
    static KEYS: LazyLock<TestKeys> = LazyLock::new(|| TestKeys {
        rsa: RsaKeyPair::generate(KeySize::Rsa2048).unwrap(),
        other_rsa: RsaKeyPair::generate(KeySize::Rsa2048).unwrap(),
        ec: EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap(),
    });

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn compact(header: &Value, claims: &Value, sign: impl FnOnce(&[u8]) -> Vec<u8>) -> String {
        let signing_input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let signature = sign(signing_input.as_bytes());
        format!("{signing_input}.{}", b64(&signature))
    }

    fn rs256_with(key: &RsaKeyPair, header: &Value, claims: &Value) -> String {
        compact(header, claims, |input| {
            let mut signature = vec![0; key.public_modulus_len()];
            key.sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                input,
                &mut signature,
            )
            .unwrap();
            signature
        })
    }

    fn rs256(key: &RsaKeyPair, kid: &str, claims: &Value) -> String {
        rs256_with(
            key,
            &json!({"alg": "RS256", "kid": kid, "typ": "JWT"}),
            claims,
        )
    }

    fn es256(key: &EcdsaKeyPair, kid: &str, claims: &Value) -> String {
        let header = json!({"alg": "ES256", "kid": kid, "typ": "JWT"});
        compact(&header, claims, |input| {
            key.sign(&SystemRandom::new(), input)
                .unwrap()
                .as_ref()
                .to_vec()
        })
    }

    /// Reads one DER element of `tag`; returns its contents and what follows it.
    fn der_element(input: &[u8], tag: u8) -> (&[u8], &[u8]) {
        assert_eq!(input[0], tag);
        let (length, header) = match input[1] {
            short if short < 0x80 => (usize::from(short), 2),
            long => {
                let count = usize::from(long & 0x7f);
                let length = input[2..2 + count]
                    .iter()
                    .fold(0, |acc, &b| acc << 8 | usize::from(b));
                (length, 2 + count)
            }
        };
        input[header..].split_at(length)
    }

    /// n and e of an RSA key, from its RFC 8017 `RSAPublicKey` DER (aws-lc-rs exposes them
    /// directly only with its `ring-io` feature, which we do not build).
    fn rsa_components(key: &RsaKeyPair) -> (Vec<u8>, Vec<u8>) {
        let (sequence, _) = der_element(key.public_key().as_ref(), 0x30);
        let (modulus, rest) = der_element(sequence, 0x02);
        let (exponent, _) = der_element(rest, 0x02);
        let strip = |bytes: &[u8]| bytes[bytes.iter().position(|&b| b != 0).unwrap()..].to_vec();
        (strip(modulus), strip(exponent))
    }

    fn rsa_jwk(key: &RsaKeyPair, kid: &str) -> Value {
        let (n, e) = rsa_components(key);
        json!({"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid, "n": b64(&n), "e": b64(&e)})
    }

    fn ec_jwk(key: &EcdsaKeyPair, kid: &str) -> Value {
        let point = key.public_key().as_ref();
        json!({
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
            "x": b64(&point[1..33]), "y": b64(&point[33..65])
        })
    }

    fn jwks_of(keys: &[Value]) -> Jwks {
        Jwks::parse(json!({ "keys": keys }).to_string().as_bytes()).unwrap()
    }

    fn provider_jwks() -> Jwks {
        jwks_of(&[rsa_jwk(&KEYS.rsa, "rsa-1"), ec_jwk(&KEYS.ec, "ec-1")])
    }

    fn claims() -> Value {
        json!({
            "iss": ISSUER,
            "aud": CLIENT,
            "sub": "248289761001",
            "nonce": NONCE,
            "iat": NOW - 10,
            "exp": NOW + 290,
            "email": "jane@example.com",
            "email_verified": true,
            "name": "Jane Doe",
            "preferred_username": "jane"
        })
    }

    fn claims_with(changes: Value) -> Value {
        let mut claims = claims();
        for (name, value) in changes.as_object().unwrap() {
            if value.is_null() {
                claims.as_object_mut().unwrap().remove(name);
            } else {
                claims[name] = value.clone();
            }
        }
        claims
    }

    fn expected() -> Expected<'static> {
        Expected {
            issuer: ISSUER,
            client_id: CLIENT,
            nonce: NONCE,
            now_secs: NOW,
            leeway_secs: 60,
        }
    }

    fn check(token: &str) -> Result<IdClaims, IdTokenError> {
        verify(token, &provider_jwks(), &expected())
    }

    fn check_rs256(claims: &Value) -> Result<IdClaims, IdTokenError> {
        check(&rs256(&KEYS.rsa, "rsa-1", claims))
    }

    #[test]
    fn accepts_rs256_and_es256_tokens_and_returns_the_person() {
        let person = IdClaims {
            subject: "248289761001".into(),
            email: Some("jane@example.com".into()),
            email_verified: true,
            name: Some("Jane Doe".into()),
            preferred_username: Some("jane".into()),
        };
        assert_eq!(check_rs256(&claims()), Ok(person.clone()));
        assert_eq!(check(&es256(&KEYS.ec, "ec-1", &claims())), Ok(person));
    }

    #[test]
    fn without_a_key_id_every_key_of_the_algorithm_is_tried() {
        let jwks = jwks_of(&[
            rsa_jwk(&KEYS.other_rsa, "rsa-0"),
            rsa_jwk(&KEYS.rsa, "rsa-1"),
        ]);
        let token = rs256_with(&KEYS.rsa, &json!({"alg": "RS256"}), &claims());
        assert!(verify(&token, &jwks, &expected()).is_ok());
        let stranger = rs256_with(&KEYS.other_rsa, &json!({"alg": "RS256"}), &claims());
        assert_eq!(
            verify(
                &stranger,
                &jwks_of(&[rsa_jwk(&KEYS.rsa, "rsa-1")]),
                &expected()
            ),
            Err(IdTokenError::BadSignature)
        );
    }

    #[test]
    fn a_changed_payload_or_a_stranger_key_fails_the_signature() {
        let token = rs256(&KEYS.rsa, "rsa-1", &claims());
        let parts: Vec<&str> = token.split('.').collect();
        let forged_payload = b64(claims_with(json!({"sub": "admin"})).to_string().as_bytes());
        let forged = format!("{}.{forged_payload}.{}", parts[0], parts[2]);
        assert_eq!(check(&forged), Err(IdTokenError::BadSignature));

        let stranger = rs256(&KEYS.other_rsa, "rsa-1", &claims());
        assert_eq!(check(&stranger), Err(IdTokenError::BadSignature));

        let es_forged = es256(&KEYS.ec, "ec-1", &claims());
        let es_parts: Vec<&str> = es_forged.split('.').collect();
        let es_forged = format!("{}.{forged_payload}.{}", es_parts[0], es_parts[2]);
        assert_eq!(check(&es_forged), Err(IdTokenError::BadSignature));
    }

    #[test]
    fn refuses_unsigned_and_symmetric_tokens() {
        let unsigned = format!(
            "{}.{}.",
            b64(json!({"alg": "none"}).to_string().as_bytes()),
            b64(claims().to_string().as_bytes())
        );
        assert_eq!(
            check(&unsigned),
            Err(IdTokenError::UnsupportedAlgorithm("none".into()))
        );
        // The classic confusion: an HMAC "signed" with the public key as its secret.
        let hmac = compact(&json!({"alg": "HS256", "kid": "rsa-1"}), &claims(), |_| {
            vec![7; 32]
        });
        assert_eq!(
            check(&hmac),
            Err(IdTokenError::UnsupportedAlgorithm("HS256".into()))
        );
        let pss = rs256_with(
            &KEYS.rsa,
            &json!({"alg": "PS256", "kid": "rsa-1"}),
            &claims(),
        );
        assert_eq!(
            check(&pss),
            Err(IdTokenError::UnsupportedAlgorithm("PS256".into()))
        );
    }

    #[test]
    fn a_key_serves_only_its_own_algorithm() {
        // An ES256 header naming the RSA key, and the reverse: no key of that type has the id.
        let es_naming_rsa = es256(&KEYS.ec, "rsa-1", &claims());
        assert_eq!(check(&es_naming_rsa), Err(IdTokenError::UnknownKey));
        let rs_naming_ec = rs256(&KEYS.rsa, "ec-1", &claims());
        assert_eq!(check(&rs_naming_ec), Err(IdTokenError::UnknownKey));
        // A key published for another algorithm is not used for RS256.
        let mut pss_key = rsa_jwk(&KEYS.rsa, "rsa-1");
        pss_key["alg"] = json!("PS256");
        let token = rs256(&KEYS.rsa, "rsa-1", &claims());
        assert_eq!(
            verify(&token, &jwks_of(&[pss_key]), &expected()),
            Err(IdTokenError::UnknownKey)
        );
    }

    #[test]
    fn an_unknown_key_id_asks_for_a_fresh_key_set() {
        let token = rs256(&KEYS.rsa, "rsa-2", &claims());
        assert_eq!(check(&token), Err(IdTokenError::UnknownKey));
        assert_eq!(
            verify(&token, &Jwks::default(), &expected()),
            Err(IdTokenError::UnknownKey)
        );
    }

    #[test]
    fn checks_issuer_audience_and_nonce() {
        let wrong = |changes: Value| check_rs256(&claims_with(changes));
        assert_eq!(
            wrong(json!({"iss": "https://evil.example"})),
            Err(IdTokenError::WrongIssuer)
        );
        assert_eq!(
            wrong(json!({"iss": format!("{ISSUER}/")})),
            Err(IdTokenError::WrongIssuer)
        );
        assert_eq!(wrong(json!({"iss": null})), Err(IdTokenError::WrongIssuer));
        assert_eq!(
            wrong(json!({"aud": "another-client"})),
            Err(IdTokenError::WrongAudience)
        );
        assert_eq!(
            wrong(json!({"aud": null})),
            Err(IdTokenError::WrongAudience)
        );
        assert_eq!(
            wrong(json!({"nonce": "replayed"})),
            Err(IdTokenError::WrongNonce)
        );
        assert_eq!(wrong(json!({"nonce": null})), Err(IdTokenError::WrongNonce));
        let token = rs256(&KEYS.rsa, "rsa-1", &claims_with(json!({"nonce": ""})));
        let no_nonce_expected = Expected {
            nonce: "",
            ..expected()
        };
        assert_eq!(
            verify(&token, &provider_jwks(), &no_nonce_expected),
            Err(IdTokenError::WrongNonce)
        );
    }

    #[test]
    fn several_audiences_need_the_client_as_authorized_party() {
        let with = |changes: Value| check_rs256(&claims_with(changes));
        assert!(with(json!({"aud": [CLIENT, "other"], "azp": CLIENT})).is_ok());
        assert!(with(json!({"aud": [CLIENT]})).is_ok());
        assert_eq!(
            with(json!({"aud": [CLIENT, "other"]})),
            Err(IdTokenError::WrongAudience)
        );
        assert_eq!(
            with(json!({"aud": [CLIENT, "other"], "azp": "other"})),
            Err(IdTokenError::WrongAudience)
        );
        assert_eq!(
            with(json!({"aud": ["other", "another"], "azp": CLIENT})),
            Err(IdTokenError::WrongAudience)
        );
        assert_eq!(
            with(json!({"azp": "other"})),
            Err(IdTokenError::WrongAudience)
        );
    }

    #[test]
    fn checks_expiry_and_start_within_the_leeway() {
        let with = |changes: Value| check_rs256(&claims_with(changes));
        assert_eq!(with(json!({"exp": NOW - 61})), Err(IdTokenError::Expired));
        assert_eq!(with(json!({"exp": NOW - 60})), Err(IdTokenError::Expired));
        assert!(with(json!({"exp": NOW - 59})).is_ok());
        assert!(with(json!({"exp": NOW as f64 + 0.5})).is_ok());
        assert_eq!(
            with(json!({"exp": null})),
            Err(IdTokenError::Malformed(
                "the token has no expiry (exp)".into()
            ))
        );
        assert!(matches!(
            with(json!({"exp": "tomorrow"})),
            Err(IdTokenError::Malformed(_))
        ));
        assert_eq!(
            with(json!({"iat": NOW + 3600})),
            Err(IdTokenError::NotYetValid)
        );
        assert!(with(json!({"iat": NOW + 60})).is_ok());
        assert!(with(json!({"iat": null})).is_ok());
        assert_eq!(
            with(json!({"nbf": NOW + 61})),
            Err(IdTokenError::NotYetValid)
        );
        assert!(with(json!({"nbf": NOW + 60})).is_ok());
    }

    #[test]
    fn email_is_verified_only_when_the_provider_says_true() {
        let verified = |value: Value| {
            check_rs256(&claims_with(json!({ "email_verified": value })))
                .unwrap()
                .email_verified
        };
        assert!(verified(json!(true)));
        assert!(verified(json!("true")));
        assert!(!verified(json!(false)));
        assert!(!verified(json!("false")));
        assert!(!verified(json!("yes")));
        assert!(!verified(json!(1)));
        assert!(!verified(Value::Null));
        let bare = check_rs256(&claims_with(
            json!({"email": null, "name": null, "preferred_username": null}),
        ))
        .unwrap();
        assert_eq!(bare.email, None);
        assert_eq!(bare.name, None);
        assert_eq!(bare.preferred_username, None);
    }

    #[test]
    fn a_subject_is_required() {
        let malformed = |changes: Value| {
            matches!(
                check_rs256(&claims_with(changes)),
                Err(IdTokenError::Malformed(_))
            )
        };
        assert!(malformed(json!({"sub": null})));
        assert!(malformed(json!({"sub": ""})));
        assert!(malformed(json!({"sub": 42})));
    }

    #[test]
    fn refuses_malformed_and_oversized_tokens() {
        let malformed = |token: &str| matches!(check(token), Err(IdTokenError::Malformed(_)));
        let token = rs256(&KEYS.rsa, "rsa-1", &claims());
        assert!(malformed(""));
        assert!(malformed("a.b"));
        assert!(malformed(&format!("{token}.extra")));
        assert!(malformed(&format!("{token}=")));
        assert!(malformed(&token.replacen('.', "+.", 1)));
        // The payload is not even parsed before the signature holds.
        let payload_not_json = format!("{}.{}.", b64(b"{\"alg\":\"RS256\"}"), b64(b"[1]"));
        assert_eq!(check(&payload_not_json), Err(IdTokenError::BadSignature));
        let header_not_json = format!("{}.{}.{}", b64(b"RS256"), b64(b"{}"), b64(b"sig"));
        assert!(malformed(&header_not_json));
        let critical = rs256_with(
            &KEYS.rsa,
            &json!({"alg": "RS256", "kid": "rsa-1", "crit": ["exp"], "exp": 1}),
            &claims(),
        );
        assert!(malformed(&critical));

        let padding = "x".repeat(MAX_TOKEN_BYTES);
        let huge = rs256(
            &KEYS.rsa,
            "rsa-1",
            &claims_with(json!({ "padding": padding })),
        );
        assert!(huge.len() > MAX_TOKEN_BYTES);
        assert!(malformed(&huge));
    }

    #[test]
    fn the_key_set_keeps_only_usable_signing_keys() {
        let mut leading_zero = rsa_jwk(&KEYS.rsa, "rsa-1");
        let (n, _) = rsa_components(&KEYS.rsa);
        leading_zero["n"] = json!(b64(&[&[0][..], &n].concat()));
        let mut encryption = rsa_jwk(&KEYS.other_rsa, "rsa-enc");
        encryption["use"] = json!("enc");
        let mut p384 = ec_jwk(&KEYS.ec, "ec-384");
        p384["crv"] = json!("P-384");
        let mut short_x = ec_jwk(&KEYS.ec, "ec-short");
        short_x["x"] = json!(b64(&[1; 31]));
        let mut encrypt_only = ec_jwk(&KEYS.ec, "ec-ops");
        encrypt_only["key_ops"] = json!(["encrypt"]);
        let document = json!({"keys": [
            leading_zero,
            encryption,
            p384,
            short_x,
            encrypt_only,
            {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
            {"kty": "RSA", "kid": "no-modulus", "e": "AQAB"},
            {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
            "not an object",
            ec_jwk(&KEYS.ec, "ec-1"),
        ]});
        let jwks = Jwks::parse(document.to_string().as_bytes()).unwrap();
        assert_eq!(jwks.len(), 2);
        assert!(verify(&rs256(&KEYS.rsa, "rsa-1", &claims()), &jwks, &expected()).is_ok());
        assert!(verify(&es256(&KEYS.ec, "ec-1", &claims()), &jwks, &expected()).is_ok());
        assert_eq!(
            verify(
                &rs256(&KEYS.other_rsa, "rsa-enc", &claims()),
                &jwks,
                &expected()
            ),
            Err(IdTokenError::UnknownKey)
        );

        assert!(Jwks::parse(br#"{"keys": []}"#).unwrap().is_empty());
        assert!(matches!(
            Jwks::parse(b"<html>"),
            Err(IdTokenError::Malformed(_))
        ));
        assert!(matches!(
            Jwks::parse(br#"{"key": []}"#),
            Err(IdTokenError::Malformed(_))
        ));
    }
}
