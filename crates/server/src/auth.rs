//! Bearer-token authentication: `authorization: Bearer <JWT>`, verified in one of two modes.
//!
//! - **Shared secret** (`AUTH_JWT_SECRET` alone): HS256 tokens with claims `sub` and `exp`, as
//!   `partner-center token` mints them: the dev server, tests and benchmarks.
//! - **Identity provider** (`AUTH_JWKS_URL` or `AUTH_JWKS_FILE`): RS256/384/512, ES256/384 and
//!   EdDSA tokens, each verified with the key its `kid` names in the provider's key set
//!   ([`jwks`]) and only with that key's algorithm, so neither `alg: none` nor an HS256 token
//!   (signed, say, with the public key) is ever accepted. `iss` (one string, RFC 7519) and `aud`
//!   are checked when `AUTH_ISSUER` and `AUTH_AUDIENCE` are set; the principal is the claim
//!   `AUTH_PRINCIPAL_CLAIM` (default `sub`). The shared secret then only signs page tokens.
//!
//! In both modes `exp` is required and `nbf` honoured, each with [`LEEWAY_SECS`] of clock skew,
//! a header naming critical extensions (`crit`) is refused, since this service understands none
//! (RFC 7515, 4.1.11), and the principal must be `operator`, `partners/{id}` or `customers/{id}`. Every refusal is
//! UNAUTHENTICATED with a reason that names what is wrong with the token, never what the service
//! expected. [`Authenticator::authorize`] runs first in every partner-center handler (never in
//! health or reflection), then applies the per-principal rate limit.

pub mod jwks;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use pc_domain::{Principal, error::ERROR_DOMAIN};
use serde::{Deserialize, Serialize};
use tonic::{Code, Request, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::rate_limit::RateLimiter;
use jwks::KeySet;

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    exp: u64,
    #[serde(default)]
    iat: u64,
}

/// Verifies bearer tokens and applies the per-principal rate limit; cheap to clone.
#[derive(Clone)]
pub struct Authenticator {
    verifier: Arc<Verifier>,
    verified: Arc<VerifiedTokens>,
    rate_limit: Option<Arc<RateLimiter>>,
}

/// How tokens are verified.
enum Verifier {
    /// HS256 with one shared secret.
    Secret { key: DecodingKey, validation: Validation },
    /// The identity provider's asymmetric keys, by `kid`.
    Provider { keys: Arc<KeySet>, claims: ProviderClaims },
}

/// What a provider's token must say besides its signature.
#[derive(Debug, Clone, Default)]
pub struct ProviderClaims {
    /// The `iss` a token must carry, if set.
    pub issuer: Option<String>,
    /// A value `aud` must hold, if set.
    pub audience: Option<String>,
    /// The claim that names the principal (`sub` unless configured).
    pub principal_claim: String,
}

/// Seconds of clock skew allowed on `exp` and `nbf`.
pub const LEEWAY_SECS: u64 = 30;

/// Tokens verified before. A client sends the same token on every call until it expires, and
/// verifying it (base64, JSON, a signature) was 7 % of the server's CPU time in a primary-key
/// read with HMAC, more with RSA; a hit costs one hash lookup. Keyed by the exact token text, so
/// it only ever answers for bytes that passed verification; expiry is still checked on every call,
/// and a provider's token only while the very key that verified it (by thumbprint, not only by
/// `kid`) is still in the provider's set.
#[derive(Default)]
struct VerifiedTokens {
    by_token: Mutex<HashMap<Box<str>, Verified>>,
}

#[derive(Clone)]
struct Verified {
    principal: Principal,
    expires: u64,
    /// The provider key that verified it (none in shared-secret mode).
    key: Option<KeyUsed>,
}

/// Which of the provider's keys verified a token: its `kid`, and its thumbprint, since a provider
/// may publish another key under the same `kid`.
#[derive(Clone)]
struct KeyUsed {
    kid: Arc<str>,
    thumbprint: Arc<str>,
}

impl VerifiedTokens {
    /// Bounds memory however many distinct tokens arrive; past it the cache starts over.
    const CAPACITY: usize = 10_000;

    fn get(&self, token: &str, now: u64) -> Option<Verified> {
        let by_token = self.by_token.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        by_token.get(token).filter(|verified| now <= verified.expires + LEEWAY_SECS).cloned()
    }

    fn insert(&self, token: &str, verified: Verified) {
        let mut by_token = self.by_token.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if by_token.len() >= Self::CAPACITY {
            by_token.clear();
        }
        by_token.insert(token.into(), verified);
    }
}

/// Seconds since the Unix epoch, the unit of `exp`.
fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_secs())
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Authenticator")
    }
}

/// UNAUTHENTICATED for a token that does not verify (`TOKEN_INVALID`), with `message`.
fn refused(message: impl Into<String>) -> Status {
    unauthenticated("TOKEN_INVALID", message)
}

/// UNAUTHENTICATED with an ErrorInfo `reason` a client can switch on (README, Error reasons).
fn unauthenticated(reason: &str, message: impl Into<String>) -> Status {
    crate::status::with_reason(Code::Unauthenticated, reason, message)
}

/// Why a token failed verification, in words that help its holder and reveal nothing the
/// service is configured with.
fn rejection(error: &jsonwebtoken::errors::Error) -> Status {
    match error.kind() {
        ErrorKind::ExpiredSignature => unauthenticated("TOKEN_EXPIRED", "token expired"),
        ErrorKind::ImmatureSignature => unauthenticated("TOKEN_NOT_YET_VALID", "token not valid yet (nbf)"),
        ErrorKind::InvalidIssuer => refused("token issuer is not trusted here"),
        ErrorKind::InvalidAudience => refused("token audience is not this service"),
        ErrorKind::MissingRequiredClaim(_) => refused("token lacks a required claim"),
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => refused("token algorithm is not accepted"),
        ErrorKind::InvalidSignature => refused("token signature does not verify"),
        _ => refused("token is malformed"),
    }
}

impl Authenticator {
    /// Shared-secret mode: HS256 tokens signed with `secret`.
    pub fn new(secret: &str) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "sub"]);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        Self::with_verifier(Verifier::Secret { key: DecodingKey::from_secret(secret.as_bytes()), validation })
    }

    /// Identity-provider mode: tokens signed by a key of `keys`, with `claims` checked.
    pub fn from_provider(keys: Arc<KeySet>, claims: ProviderClaims) -> Self {
        Self::with_verifier(Verifier::Provider { keys, claims })
    }

    fn with_verifier(verifier: Verifier) -> Self {
        Self { verifier: Arc::new(verifier), verified: Arc::default(), rate_limit: None }
    }

    /// Limits each principal's calls (RESOURCE_EXHAUSTED with a retry delay past the limit).
    pub fn with_rate_limit(mut self, limiter: Option<RateLimiter>) -> Self {
        self.rate_limit = limiter.map(Arc::new);
        self
    }

    /// The principal a raw `authorization` header value stands for.
    pub async fn authenticate(&self, header: Option<&str>) -> Result<Principal, Status> {
        let header =
            header.ok_or_else(|| unauthenticated("TOKEN_MISSING", "missing `authorization: Bearer <token>`"))?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .ok_or_else(|| unauthenticated("TOKEN_MISSING", "authorization must be `Bearer <token>`"))?
            .trim();
        if let Some(verified) = self.verified.get(token, unix_now())
            && self.still_trusted(&verified)
        {
            return Ok(verified.principal);
        }
        let verified = match &*self.verifier {
            Verifier::Secret { key, validation } => {
                refuse_critical_extensions(&jsonwebtoken::decode_header(token).map_err(|e| rejection(&e))?)?;
                let claims = jsonwebtoken::decode::<Claims>(token, key, validation).map_err(|e| rejection(&e))?.claims;
                Verified { principal: principal_named(&claims.sub)?, expires: claims.exp, key: None }
            }
            Verifier::Provider { keys, claims } => verify_with_provider(token, keys, claims).await?,
        };
        self.verified.insert(token, verified.clone());
        Ok(verified.principal)
    }

    /// Whether a cached verification still holds: the key that verified it is still in the set
    /// under its `kid`, the same key and not another published under that `kid` since.
    fn still_trusted(&self, verified: &Verified) -> bool {
        match (&*self.verifier, &verified.key) {
            (Verifier::Provider { keys, .. }, Some(used)) => {
                keys.cached(&used.kid).is_some_and(|key| *key.thumbprint == *used.thumbprint)
            }
            _ => true,
        }
    }

    /// The caller of `request`: its token verified, its rate limit applied, and the principal
    /// recorded on the request's span. The first thing every partner-center handler does.
    pub async fn authorize<T>(&self, request: &Request<T>) -> Result<Principal, Status> {
        let header = request.metadata().get("authorization").and_then(|value| value.to_str().ok());
        let principal = self.authenticate(header).await?;
        let span = tracing::Span::current();
        span.record("principal", tracing::field::display(&principal));
        span.record("principal.kind", principal.kind());
        if let Some(limiter) = &self.rate_limit
            && let Err(wait) = limiter.check(principal).await
        {
            crate::metrics::rate_limited();
            // RATE_LIMITED, not the SERVER_OVERLOADED of admission: this caller's own budget.
            let mut details = ErrorDetails::with_retry_info(Some(wait));
            details.set_error_info("RATE_LIMITED", ERROR_DOMAIN, HashMap::new());
            return Err(Status::with_error_details(
                Code::ResourceExhausted,
                format!("rate limit exceeded for {principal}; retry in {} ms", wait.as_millis().max(1)),
                details,
            ));
        }
        Ok(principal)
    }
}

/// The principal a token's subject names; anything else is no credential.
fn principal_named(subject: &str) -> Result<Principal, Status> {
    Principal::parse(subject)
        .map_err(|_| refused("token principal is not `operator`, `partners/{id}` or `customers/{id}`"))
}

/// Refuses a token whose header names critical extensions: this service implements none, and
/// RFC 7515 (4.1.11) says a recipient that does not understand one must reject the token.
fn refuse_critical_extensions(header: &Header) -> Result<(), Status> {
    match &header.crit {
        None => Ok(()),
        Some(_) => Err(refused("token names critical header extensions (`crit`) this service does not implement")),
    }
}

/// Verifies a provider's token: the key its `kid` names, that key's one algorithm, then the
/// claims.
async fn verify_with_provider(token: &str, keys: &KeySet, claims: &ProviderClaims) -> Result<Verified, Status> {
    let header = jsonwebtoken::decode_header(token).map_err(|e| rejection(&e))?;
    refuse_critical_extensions(&header)?;
    let kid = header.kid.ok_or_else(|| refused("token has no `kid`; it cannot be matched to a key"))?;
    let key = keys.key(&kid).await.ok_or_else(|| refused("token is signed by a key this service does not know"))?;
    let mut validation = Validation::new(key.algorithm);
    validation.leeway = LEEWAY_SECS;
    validation.validate_nbf = true;
    let mut required = vec!["exp"];
    if let Some(issuer) = &claims.issuer {
        validation.set_issuer(&[issuer]);
        required.push("iss");
    }
    match &claims.audience {
        Some(audience) => {
            validation.set_audience(&[audience]);
            required.push("aud");
        }
        None => validation.validate_aud = false,
    }
    validation.set_required_spec_claims(&required);
    let data = jsonwebtoken::decode::<HashMap<String, serde_json::Value>>(token, &key.key, &validation)
        .map_err(|e| rejection(&e))?;
    // jsonwebtoken also takes an array holding the issuer; RFC 7519 makes `iss` one string.
    if let Some(issuer) = &claims.issuer
        && data.claims.get("iss").and_then(serde_json::Value::as_str) != Some(issuer.as_str())
    {
        return Err(refused("token issuer is not trusted here"));
    }
    let subject = data
        .claims
        .get(&claims.principal_claim)
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| refused(format!("token has no `{}` claim naming the principal", claims.principal_claim)))?;
    let expires = data.claims.get("exp").and_then(serde_json::Value::as_u64).unwrap_or_default();
    let used = KeyUsed { kid: kid.into(), thumbprint: key.thumbprint.as_str().into() };
    Ok(Verified { principal: principal_named(subject)?, expires, key: Some(used) })
}

/// Mints tokens with the configured secret (the `token` command, tests, benchmarks).
#[derive(Clone)]
pub struct TokenIssuer {
    key: Arc<EncodingKey>,
}

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenIssuer")
    }
}

impl TokenIssuer {
    pub fn new(secret: &str) -> Self {
        Self { key: Arc::new(EncodingKey::from_secret(secret.as_bytes())) }
    }

    /// A token for `subject` valid for `ttl`.
    pub fn mint(&self, subject: &str, ttl: Duration) -> Result<String, jsonwebtoken::errors::Error> {
        let now = chrono::Utc::now().timestamp().max(0).unsigned_abs();
        let claims = Claims { sub: subject.to_owned(), iat: now, exp: now + ttl.as_secs() };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.key)
    }
}

/// A random secret for a dev server started without one: 32 random bytes, base64url.
pub fn random_secret() -> String {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    let bytes: [u8; 32] = rand::random();
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[tokio::test]
    async fn a_minted_token_authenticates_its_subject() {
        let token = TokenIssuer::new(SECRET).mint("operator", Duration::from_secs(60)).ok();
        let header = token.map(|t| format!("Bearer {t}"));
        assert_eq!(Authenticator::new(SECRET).authenticate(header.as_deref()).await.ok(), Some(Principal::Operator));
    }

    #[tokio::test]
    async fn tokens_of_another_secret_or_garbage_are_refused() {
        let other = TokenIssuer::new("another-secret-another-secret-xx").mint("operator", Duration::from_secs(60)).ok();
        let auth = Authenticator::new(SECRET);
        for header in
            [None, Some("Bearer".to_owned()), Some("Basic abc".to_owned()), other.map(|t| format!("Bearer {t}"))]
        {
            let status = auth.authenticate(header.as_deref()).await.err().map(|s| s.code());
            assert_eq!(status, Some(tonic::Code::Unauthenticated), "{header:?}");
        }
    }

    #[tokio::test]
    async fn a_verified_token_is_refused_once_it_expires() {
        let auth = Authenticator::new(SECRET);
        let token = TokenIssuer::new(SECRET).mint("operator", Duration::from_secs(60)).ok();
        let header = token.as_ref().map(|t| format!("Bearer {t}"));
        assert_eq!(auth.authenticate(header.as_deref()).await.ok(), Some(Principal::Operator));
        let now = unix_now();
        let token = token.unwrap_or_default();
        let cached = |at| auth.verified.get(&token, at).map(|verified| verified.principal);
        assert_eq!(cached(now), Some(Principal::Operator), "verified once, remembered");
        assert_eq!(cached(now + 60 + LEEWAY_SECS + 1), None, "expired is never answered");
        let other_last = if token.ends_with('A') { 'Q' } else { 'A' };
        let forged = format!("{}{other_last}", &token[..token.len() - 1]);
        assert!(auth.authenticate(Some(&format!("Bearer {forged}"))).await.is_err(), "other bytes are verified afresh");
    }

    #[tokio::test]
    async fn a_token_naming_critical_extensions_is_refused() {
        let key = EncodingKey::from_secret(SECRET.as_bytes());
        let claims = serde_json::json!({ "sub": "operator", "exp": unix_now() + 600 });
        let mut header = Header::new(Algorithm::HS256);
        header.crit = Some(vec!["b64".to_owned()]);
        let token = jsonwebtoken::encode(&header, &claims, &key).map(|t| format!("Bearer {t}")).ok();
        let status = Authenticator::new(SECRET).authenticate(token.as_deref()).await.err();
        assert_eq!(status.as_ref().map(Status::code), Some(Code::Unauthenticated));
        assert!(status.is_some_and(|s| s.message().contains("crit")));
    }

    #[tokio::test]
    async fn expired_and_not_yet_valid_tokens_are_refused_with_their_reason() {
        let key = EncodingKey::from_secret(SECRET.as_bytes());
        let sign = |claims: serde_json::Value| {
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).map(|t| format!("Bearer {t}"))
        };
        let now = unix_now();
        let expired = sign(serde_json::json!({ "sub": "operator", "exp": 1000 })).ok();
        let early = sign(serde_json::json!({ "sub": "operator", "exp": now + 600, "nbf": now + 300 })).ok();
        let auth = Authenticator::new(SECRET);
        let message = async |header: Option<String>| {
            auth.authenticate(header.as_deref()).await.err().map(|s| s.message().to_owned())
        };
        assert_eq!(message(expired).await.as_deref(), Some("token expired"));
        assert_eq!(message(early).await.as_deref(), Some("token not valid yet (nbf)"));
    }
}
