//! The identity provider's public keys: a JSON Web Key Set read from `AUTH_JWKS_URL` (http or
//! https, e.g. a provider's `/.well-known/jwks.json`) or `AUTH_JWKS_FILE`, kept by `kid`.
//!
//! The set is read at startup and again in the background every `AUTH_JWKS_REFRESH_SECS`, and
//! once more when a token names a `kid` the set lacks (at most once per
//! [`UNKNOWN_KID_REFRESH_INTERVAL`], so a flood of made-up kids cannot hammer the provider). A
//! provider's rotation (new key published, then used, old key dropped) therefore needs no restart.
//! A failed read keeps the keys already held, so an outage of the provider fails no call while
//! its keys are still the ones in use. Only asymmetric signing keys are kept (RSA, EC P-256/P-384,
//! Ed25519): a symmetric (`oct`) key in the set is ignored, so no token is ever checked against a
//! secret the provider published.

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{Arc, RwLock, Weak},
    time::{Duration, Instant},
};

use jsonwebtoken::{
    Algorithm, DecodingKey,
    jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, PublicKeyUse, ThumbprintHash},
};

/// The shortest time between two reads of the set caused by unknown kids.
pub const UNKNOWN_KID_REFRESH_INTERVAL: Duration = Duration::from_secs(10);

/// Where the key set is read from.
#[derive(Debug, Clone)]
pub enum JwksSource {
    Url(String),
    File(PathBuf),
}

/// One verification key and the one algorithm it verifies.
pub struct VerificationKey {
    pub key: DecodingKey,
    pub algorithm: Algorithm,
    /// The key's RFC 7638 thumbprint (SHA-256): what a token verified with it remembers, so that a
    /// different key published later under the same `kid` does not vouch for it.
    pub thumbprint: String,
}

/// The provider's keys by `kid`, refreshed in place.
pub struct KeySet {
    source: JwksSource,
    keys: RwLock<Arc<HashMap<String, Arc<VerificationKey>>>>,
    /// When the set was last read because of an unknown kid; held while reading, so concurrent
    /// callers with the same new kid wait for one read instead of starting their own.
    unknown_kid_refresh: tokio::sync::Mutex<Option<Instant>>,
    http: reqwest::Client,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySet").field("source", &self.source).finish_non_exhaustive()
    }
}

impl KeySet {
    /// Reads the set once. A failure is logged and leaves the set empty (every token refused as
    /// signed by an unknown key until a later read succeeds), so a provider outage at deploy
    /// time does not keep the service from starting.
    pub async fn load(source: JwksSource) -> Result<Arc<Self>, String> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| format!("cannot build the JWKS client: {e}"))?;
        let set = Arc::new(Self {
            source,
            keys: RwLock::default(),
            unknown_kid_refresh: tokio::sync::Mutex::new(None),
            http,
        });
        if let Err(error) = set.refresh().await {
            tracing::error!(%error, source = ?set.source, "cannot read the identity provider's keys; refusing tokens until a read succeeds");
        }
        Ok(set)
    }

    /// Reads the set again every `every`, for as long as anything holds the set.
    pub fn refresh_every(self: &Arc<Self>, every: Duration) {
        let set: Weak<Self> = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(set) = set.upgrade() else { return };
                if let Err(error) = set.refresh().await {
                    tracing::warn!(%error, "cannot refresh the identity provider's keys; keeping the ones held");
                }
            }
        });
    }

    /// The key `kid`, reading the set again first if it is unknown and no such read happened in
    /// the last [`UNKNOWN_KID_REFRESH_INTERVAL`].
    pub async fn key(&self, kid: &str) -> Option<Arc<VerificationKey>> {
        if let Some(key) = self.cached(kid) {
            return Some(key);
        }
        let mut last = self.unknown_kid_refresh.lock().await;
        if let Some(key) = self.cached(kid) {
            return Some(key);
        }
        if last.is_some_and(|at| at.elapsed() < UNKNOWN_KID_REFRESH_INTERVAL) {
            return None;
        }
        *last = Some(Instant::now());
        if let Err(error) = self.refresh().await {
            tracing::warn!(%error, "cannot read the identity provider's keys for an unknown kid");
        }
        self.cached(kid)
    }

    /// The key `kid` as held now, without reading the set.
    pub fn cached(&self, kid: &str) -> Option<Arc<VerificationKey>> {
        self.keys.read().unwrap_or_else(|poisoned| poisoned.into_inner()).get(kid).cloned()
    }

    /// Reads the set and replaces the keys held (a key the provider dropped is dropped here).
    /// Returns how many usable keys it holds now; on failure the old keys stay.
    pub async fn refresh(&self) -> Result<usize, String> {
        let body = match &self.source {
            JwksSource::File(path) => {
                tokio::fs::read(path).await.map_err(|e| format!("cannot read {}: {e}", path.display()))?
            }
            JwksSource::Url(url) => {
                let response = self.http.get(url).send().await.map_err(|e| format!("GET {url}: {e}"))?;
                let response = response.error_for_status().map_err(|e| format!("GET {url}: {e}"))?;
                response.bytes().await.map_err(|e| format!("GET {url}: {e}"))?.to_vec()
            }
        };
        let set: JwkSet = serde_json::from_slice(&body).map_err(|e| format!("not a JSON Web Key Set: {e}"))?;
        let keys: HashMap<_, _> = set.keys.iter().filter_map(usable).collect();
        let count = keys.len();
        *self.keys.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(keys);
        tracing::debug!(keys = count, "identity provider keys read");
        Ok(count)
    }
}

/// The `kid` and verification key of `jwk`, if it is an asymmetric signing key this service
/// verifies with. Its algorithm is the JWK's `alg`, or the one its key type implies.
fn usable(jwk: &Jwk) -> Option<(String, Arc<VerificationKey>)> {
    let kid = jwk.common.key_id.clone()?;
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
        return None;
    }
    let implied = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => Algorithm::ES256,
            EllipticCurve::P384 => Algorithm::ES384,
            _ => return None,
        },
        AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => Algorithm::EdDSA,
        // Symmetric keys and anything else: never a key this service checks tokens with.
        _ => return None,
    };
    let algorithm = match jwk.common.key_algorithm {
        Some(declared) => Algorithm::try_from(declared).ok()?,
        None => implied,
    };
    if matches!(algorithm, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) {
        return None;
    }
    let key = DecodingKey::from_jwk(jwk).ok()?;
    let thumbprint = jwk.thumbprint(ThumbprintHash::SHA256).ok()?;
    Some((kid, Arc::new(VerificationKey { key, algorithm, thumbprint })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_asymmetric_signing_keys_with_a_kid_are_kept() {
        let set: JwkSet = serde_json::from_value(serde_json::json!({ "keys": [
            { "kty": "oct", "kid": "secret", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0", "alg": "HS256" },
            { "kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo" },
            { "kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo" },
            { "kty": "OKP", "crv": "Ed25519", "kid": "enc", "use": "enc", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo" },
        ]}))
        .unwrap_or_default();
        let kept: Vec<_> = set.keys.iter().filter_map(usable).map(|(kid, key)| (kid, key.algorithm)).collect();
        assert_eq!(kept, vec![("ed".to_owned(), Algorithm::EdDSA)]);
    }

    #[tokio::test]
    async fn a_key_set_file_is_read_and_read_again() {
        let path = std::env::temp_dir().join(format!("pc_jwks_{}_{}.json", std::process::id(), rand::random::<u64>()));
        let set = |kid: &str| {
            let key = serde_json::json!({ "kty": "OKP", "crv": "Ed25519", "kid": kid, "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo" });
            serde_json::json!({ "keys": [key] }).to_string()
        };
        std::fs::write(&path, set("first")).ok();
        let keys = KeySet::load(JwksSource::File(path.clone())).await.ok();
        let held = |kid: &str| keys.as_ref().is_some_and(|keys| keys.cached(kid).is_some());
        assert!(held("first"));
        std::fs::write(&path, set("second")).ok();
        assert!(held("first"), "nothing is read before a refresh");
        assert_eq!(keys.as_ref().map(|keys| keys.cached("second").is_some()), Some(false));
        if let Some(keys) = &keys {
            assert!(keys.key("second").await.is_some(), "an unknown kid reads the set again");
        }
        assert!(!held("first"), "a key no longer in the set is dropped");
        std::fs::write(&path, "not json").ok();
        if let Some(keys) = &keys {
            assert!(keys.refresh().await.is_err());
        }
        assert!(held("second"), "a failed read keeps the keys held");
        std::fs::remove_file(&path).ok();
    }
}
