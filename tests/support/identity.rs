//! A stand-in identity provider: signing keys generated in the test (RSA, EC P-256, Ed25519), a
//! JSON Web Key Set served over HTTP from a local port, and tokens signed as a provider signs them.
//! The published set can be replaced (a key rotation) or taken down (an outage) mid-test.

use std::sync::{Arc, Mutex};

use jsonwebtoken::{Algorithm, EncodingKey, Header, jwk::Jwk};
use rand_core::OsRng;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

/// A provider's private signing key and its public JWK.
#[derive(Clone)]
pub struct SigningKey {
    pub kid: String,
    pub algorithm: Algorithm,
    key: EncodingKey,
    pub jwk: Jwk,
}

impl SigningKey {
    fn new(algorithm: Algorithm, key: EncodingKey) -> Self {
        let kid = format!("{algorithm:?}-{}", uuid::Uuid::new_v4().simple());
        let mut jwk = Jwk::from_encoding_key(&key, algorithm).expect("a public JWK of the key");
        jwk.common.key_id = Some(kid.clone());
        Self { kid, algorithm, key, jwk }
    }

    /// A fresh RS256 key (2048 bits).
    pub fn rsa() -> Self {
        use rsa::pkcs1::EncodeRsaPrivateKey;
        let private = rsa::RsaPrivateKey::new(&mut OsRng, 2048).expect("an RSA key");
        let der = private.to_pkcs1_der().expect("PKCS#1 DER");
        Self::new(Algorithm::RS256, EncodingKey::from_rsa_der(der.as_bytes()))
    }

    /// A fresh ES256 key (P-256).
    pub fn ec() -> Self {
        use p256::pkcs8::EncodePrivateKey;
        let private = p256::SecretKey::random(&mut OsRng);
        let der = private.to_pkcs8_der().expect("PKCS#8 DER");
        Self::new(Algorithm::ES256, EncodingKey::from_ec_der(der.as_bytes()))
    }

    /// A fresh EdDSA key (Ed25519).
    pub fn ed() -> Self {
        let private = ed25519_dalek::SigningKey::generate(&mut OsRng);
        // PKCS#8 v1 (RFC 8410): the fixed 16-byte prefix, then the 32-byte seed. jsonwebtoken
        // reads this form; ed25519-dalek's own encoder writes v2, with the public key appended.
        let mut der =
            vec![0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];
        der.extend_from_slice(&private.to_bytes());
        Self::new(Algorithm::EdDSA, EncodingKey::from_ed_der(&der))
    }

    /// The same key published under `kid` instead (a provider reusing a `kid` for a new key).
    pub fn with_kid(mut self, kid: &str) -> Self {
        self.kid = kid.to_owned();
        self.jwk.common.key_id = Some(kid.to_owned());
        self
    }

    /// The header this key signs with: its algorithm and its `kid`.
    pub fn header(&self) -> Header {
        let mut header = Header::new(self.algorithm);
        header.kid = Some(self.kid.clone());
        header
    }

    /// `claims` signed with this key, its `kid` in the header.
    pub fn sign(&self, claims: &serde_json::Value) -> String {
        self.sign_with_header(&self.header(), claims)
    }

    /// `claims` signed with this key under `header` (which a test may have changed).
    pub fn sign_with_header(&self, header: &Header, claims: &serde_json::Value) -> String {
        jsonwebtoken::encode(header, claims, &self.key).expect("sign a token")
    }
}

/// The identity provider of a test: its issuer, the audience it mints for, and its JWKS endpoint.
pub struct IdentityProvider {
    pub url: String,
    pub issuer: String,
    pub audience: String,
    /// The key tokens are signed with unless a test picks another.
    pub signing: SigningKey,
    /// The JWKS document served, or `None` while the provider is down (503).
    published: Arc<Mutex<Option<String>>>,
}

impl IdentityProvider {
    /// A provider publishing `signing` and `others`, serving on a free local port until the test
    /// process ends.
    pub async fn start(signing: SigningKey, others: &[&SigningKey]) -> Arc<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the JWKS server");
        let url = format!("http://{}/.well-known/jwks.json", listener.local_addr().expect("local addr"));
        let published: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
        let serving = Arc::clone(&published);
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let document = serving.lock().unwrap_or_else(|p| p.into_inner()).clone();
                tokio::spawn(async move {
                    // One small GET per connection: read its head, answer, close.
                    let mut head = Vec::new();
                    let mut buffer = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buffer).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buffer[..n]),
                        }
                    }
                    let response = match document {
                        Some(body) => format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        ),
                        None => "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                            .to_owned(),
                    };
                    let _ = stream.write_all(response.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        let provider = Arc::new(Self {
            url,
            issuer: "https://idp.example.test/".to_owned(),
            audience: "partner-center".to_owned(),
            signing: signing.clone(),
            published,
        });
        let mut keys = vec![&signing];
        keys.extend_from_slice(others);
        provider.publish(&keys);
        provider
    }

    /// Publishes exactly `keys` (a rotation adds the new key, then drops the old one).
    pub fn publish(&self, keys: &[&SigningKey]) {
        let set = serde_json::json!({ "keys": keys.iter().map(|key| &key.jwk).collect::<Vec<_>>() });
        *self.published.lock().unwrap_or_else(|p| p.into_inner()) = Some(set.to_string());
    }

    /// Answers 503 from now on, as a provider in an outage does.
    pub fn go_down(&self) {
        *self.published.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// The claims this provider puts in a token for `subject`, valid for ten minutes.
    pub fn claims(&self, subject: &str) -> serde_json::Value {
        let now = chrono::Utc::now().timestamp();
        serde_json::json!({
            "iss": self.issuer, "aud": self.audience, "sub": subject, "iat": now, "nbf": now, "exp": now + 600,
        })
    }

    /// A token for `subject` signed with `key`.
    pub fn token_signed_by(&self, key: &SigningKey, subject: &str) -> String {
        key.sign(&self.claims(subject))
    }
}
