//! Bearer-token authentication: `authorization: Bearer <JWT>`, HS256, claims `sub` and `exp`.
//!
//! The [`Authenticator`] interceptor runs before every partner-center handler (never before
//! health or reflection), verifies the token and stores the caller's [`Principal`] in the request
//! extensions; handlers read it back with [`principal_of`].

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use pc_domain::Principal;
use serde::{Deserialize, Serialize};
use tonic::{Code, Request, Status, service::Interceptor};
use tonic_types::{ErrorDetails, StatusExt};

use crate::rate_limit::RateLimiter;

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
    key: Arc<DecodingKey>,
    validation: Arc<Validation>,
    verified: Arc<VerifiedTokens>,
    rate_limit: Option<Arc<RateLimiter>>,
}

/// Seconds of clock skew allowed on `exp`.
const LEEWAY_SECS: u64 = 30;

/// Tokens verified before. A client sends the same token on every call until it expires, and
/// verifying it (base64, JSON, HMAC-SHA256) was 7 % of the server's CPU time in a primary-key
/// read; a hit costs one hash lookup. Keyed by the exact token text, so it only ever answers for
/// bytes that passed verification with this key; expiry is still checked on every call.
#[derive(Default)]
struct VerifiedTokens {
    by_token: Mutex<HashMap<Box<str>, (Principal, u64)>>,
}

impl VerifiedTokens {
    /// Bounds memory however many distinct tokens arrive; past it the cache starts over.
    const CAPACITY: usize = 10_000;

    fn get(&self, token: &str, now: u64) -> Option<Principal> {
        let by_token = self.by_token.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        by_token.get(token).filter(|(_, expires)| now <= expires + LEEWAY_SECS).map(|(principal, _)| *principal)
    }

    fn insert(&self, token: &str, principal: Principal, expires: u64) {
        let mut by_token = self.by_token.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if by_token.len() >= Self::CAPACITY {
            by_token.clear();
        }
        by_token.insert(token.into(), (principal, expires));
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

impl Authenticator {
    pub fn new(secret: &str) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "sub"]);
        validation.leeway = LEEWAY_SECS;
        Self {
            key: Arc::new(DecodingKey::from_secret(secret.as_bytes())),
            validation: Arc::new(validation),
            verified: Arc::default(),
            rate_limit: None,
        }
    }

    /// Limits each principal's calls (RESOURCE_EXHAUSTED with a retry delay past the limit).
    pub fn with_rate_limit(mut self, limiter: Option<RateLimiter>) -> Self {
        self.rate_limit = limiter.map(Arc::new);
        self
    }

    /// The principal a raw `authorization` header value stands for.
    pub fn authenticate(&self, header: Option<&str>) -> Result<Principal, Status> {
        let header = header.ok_or_else(|| Status::unauthenticated("missing `authorization: Bearer <token>`"))?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .ok_or_else(|| Status::unauthenticated("authorization must be `Bearer <token>`"))?;
        let token = token.trim();
        if let Some(principal) = self.verified.get(token, unix_now()) {
            return Ok(principal);
        }
        let claims = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map_err(|error| Status::unauthenticated(format!("invalid token: {error}")))?
            .claims;
        let principal = Principal::parse(&claims.sub)
            .map_err(|_| Status::unauthenticated("token subject is not a known principal"))?;
        self.verified.insert(token, principal, claims.exp);
        Ok(principal)
    }
}

impl Interceptor for Authenticator {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let header = request.metadata().get("authorization").and_then(|value| value.to_str().ok());
        let principal = self.authenticate(header)?;
        tracing::Span::current().record("principal", tracing::field::display(&principal));
        if let Some(limiter) = &self.rate_limit
            && let Err(wait) = limiter.check(principal)
        {
            return Err(Status::with_error_details(
                Code::ResourceExhausted,
                format!("rate limit exceeded for {principal}; retry in {} ms", wait.as_millis().max(1)),
                ErrorDetails::with_retry_info(Some(wait)),
            ));
        }
        request.extensions_mut().insert(principal);
        Ok(request)
    }
}

/// The caller of an authenticated request.
pub fn principal_of<T>(request: &Request<T>) -> Result<Principal, Status> {
    request
        .extensions()
        .get::<Principal>()
        .copied()
        .ok_or_else(|| Status::unauthenticated("request was not authenticated"))
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

    #[test]
    fn a_minted_token_authenticates_its_subject() {
        let token = TokenIssuer::new(SECRET).mint("operator", Duration::from_secs(60)).ok();
        let header = token.map(|t| format!("Bearer {t}"));
        assert_eq!(Authenticator::new(SECRET).authenticate(header.as_deref()).ok(), Some(Principal::Operator));
    }

    #[test]
    fn tokens_of_another_secret_or_garbage_are_refused() {
        let other = TokenIssuer::new("another-secret-another-secret-xx").mint("operator", Duration::from_secs(60)).ok();
        let auth = Authenticator::new(SECRET);
        for header in
            [None, Some("Bearer".to_owned()), Some("Basic abc".to_owned()), other.map(|t| format!("Bearer {t}"))]
        {
            let status = auth.authenticate(header.as_deref()).err().map(|s| s.code());
            assert_eq!(status, Some(tonic::Code::Unauthenticated), "{header:?}");
        }
    }

    #[test]
    fn a_verified_token_is_refused_once_it_expires() {
        let auth = Authenticator::new(SECRET);
        let token = TokenIssuer::new(SECRET).mint("operator", Duration::from_secs(60)).ok();
        let header = token.as_ref().map(|t| format!("Bearer {t}"));
        assert_eq!(auth.authenticate(header.as_deref()).ok(), Some(Principal::Operator));
        let now = unix_now();
        let token = token.unwrap_or_default();
        assert_eq!(auth.verified.get(&token, now), Some(Principal::Operator), "verified once, remembered");
        assert_eq!(auth.verified.get(&token, now + 60 + LEEWAY_SECS + 1), None, "expired is never answered");
        let other_last = if token.ends_with('A') { 'Q' } else { 'A' };
        let forged = format!("{}{other_last}", &token[..token.len() - 1]);
        assert!(auth.authenticate(Some(&format!("Bearer {forged}"))).is_err(), "other bytes are verified afresh");
    }

    #[test]
    fn expired_tokens_are_refused() {
        let key = EncodingKey::from_secret(SECRET.as_bytes());
        let claims = Claims { sub: "operator".into(), iat: 1, exp: 1000 };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).ok();
        let header = token.map(|t| format!("Bearer {t}"));
        assert!(Authenticator::new(SECRET).authenticate(header.as_deref()).is_err());
    }
}
