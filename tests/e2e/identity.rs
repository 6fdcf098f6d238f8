//! Tokens from an identity provider (AUTH_JWKS_URL): RS256, ES256 and EdDSA keys by `kid`, a key
//! rotation and a provider outage without a restart, and every token the provider mode refuses.
//! The provider is `pc_tests::identity`: keys generated here, a JWKS served from a local port.

use std::time::Duration;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use pc_api::partner::v1::ListPartnersRequest;
use pc_tests::identity::{IdentityProvider, SigningKey};
use pc_tests::{AppOptions, TestApp, spawn_app_with};
use tonic::Code;

async fn app_trusting(provider: &std::sync::Arc<IdentityProvider>) -> TestApp {
    spawn_app_with(AppOptions { identity: Some(provider.clone()), ..Default::default() }).await
}

/// The code and message of one call made with `token`.
async fn answer(app: &TestApp, token: &str) -> (Code, String) {
    match app.partners_with_token(token).list_partners(ListPartnersRequest::default()).await {
        Ok(_) => (Code::Ok, String::new()),
        Err(status) => {
            pc_tests::assert_error_info(&status);
            (status.code(), status.message().to_owned())
        }
    }
}

/// Whether a call with `token` is refused UNAUTHENTICATED within 5 s (a background refresh of the
/// key set comes every second in the test's configuration).
async fn refused_within_5_s(app: &TestApp, token: &str) -> bool {
    for _ in 0..50 {
        if answer(app, token).await.0 == Code::Unauthenticated {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test]
async fn tokens_signed_with_rsa_ec_and_ed25519_keys_of_the_provider_are_accepted() {
    let (rsa, ec, ed) = (SigningKey::rsa(), SigningKey::ec(), SigningKey::ed());
    let provider = IdentityProvider::start(rsa.clone(), &[&ec, &ed]).await;
    let app = app_trusting(&provider).await;
    for key in [&rsa, &ec, &ed] {
        let token = provider.token_signed_by(key, "operator");
        assert_eq!(answer(&app, &token).await, (Code::Ok, String::new()), "{:?}", key.algorithm);
    }
}

#[tokio::test]
async fn a_key_rotation_needs_no_restart_and_a_provider_outage_fails_no_call() {
    let (old, new) = (SigningKey::ec(), SigningKey::ed());
    let provider = IdentityProvider::start(old.clone(), &[]).await;
    let app = app_trusting(&provider).await;
    assert_eq!(answer(&app, &provider.token_signed_by(&old, "operator")).await.0, Code::Ok);

    // The provider publishes a new key and signs with it: its unknown kid makes the service read
    // the set again at once.
    provider.publish(&[&old, &new]);
    assert_eq!(answer(&app, &provider.token_signed_by(&new, "operator")).await.0, Code::Ok);

    // Then it drops the old key: within a background refresh, even a token verified before is
    // refused.
    let old_token = provider.token_signed_by(&old, "operator");
    assert_eq!(answer(&app, &old_token).await.0, Code::Ok);
    provider.publish(&[&new]);
    assert!(refused_within_5_s(&app, &old_token).await, "a token of a key the provider dropped was still accepted");

    // The provider goes down: the keys held keep verifying, fresh tokens included.
    provider.go_down();
    tokio::time::sleep(Duration::from_millis(1500)).await; // a background refresh fails meanwhile
    for subject in ["operator", "partners/0190a5b2-0000-7000-8000-000000000001"] {
        let token = provider.token_signed_by(&new, subject);
        assert_eq!(answer(&app, &token).await.0, Code::Ok, "{subject} during the outage");
    }
}

#[tokio::test]
async fn a_new_key_published_under_an_old_kid_does_not_vouch_for_tokens_of_the_old_key() {
    let (first, second) = (SigningKey::ec().with_kid("ec-b"), SigningKey::ec().with_kid("ec-b"));
    let provider = IdentityProvider::start(first.clone(), &[]).await;
    let app = app_trusting(&provider).await;
    let earlier = provider.token_signed_by(&first, "operator");
    assert_eq!(answer(&app, &earlier).await.0, Code::Ok, "verified once, and remembered");

    // The provider replaces the key under the same kid: within a background refresh (every
    // second here) the token verified before is refused as well as new ones of the old key.
    provider.publish(&[&second]);
    assert!(refused_within_5_s(&app, &earlier).await, "a token of the replaced key was still accepted");
    assert_eq!(answer(&app, &provider.token_signed_by(&first, "operator")).await.0, Code::Unauthenticated);
    assert_eq!(answer(&app, &provider.token_signed_by(&second, "operator")).await.0, Code::Ok);
}

/// `claims` as a token with this header, signed by nothing (`alg: none`).
fn unsigned(kid: &str, claims: &serde_json::Value) -> String {
    let header = serde_json::json!({ "alg": "none", "typ": "JWT", "kid": kid });
    format!("{}.{}.", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()))
}

#[tokio::test]
async fn the_provider_mode_refuses_what_it_must_with_a_reason() {
    let key = SigningKey::rsa();
    let provider = IdentityProvider::start(key.clone(), &[]).await;
    let app = app_trusting(&provider).await;
    let now = chrono::Utc::now().timestamp();
    let with = |changes: serde_json::Value| {
        let mut claims = provider.claims("operator");
        if let (Some(claims), Some(changes)) = (claims.as_object_mut(), changes.as_object()) {
            claims.extend(changes.clone());
        }
        claims
    };
    // The classic key confusion: HS256 "signed" with the provider's public key, naming its kid.
    let public_key = serde_json::to_vec(&key.jwk).expect("JWK bytes");
    let mut hs256 = Header::new(Algorithm::HS256);
    hs256.kid = Some(key.kid.clone());
    let confused = jsonwebtoken::encode(&hs256, &with(serde_json::json!({})), &EncodingKey::from_secret(&public_key))
        .expect("an HS256 token");
    let stranger = SigningKey::ec();
    let mut critical = key.header();
    critical.crit = Some(vec!["https://idp.example.test/ext".to_owned()]);
    let critical = key.sign_with_header(&critical, &with(serde_json::json!({})));
    let issuers = serde_json::json!({ "iss": ["https://other.example/", provider.issuer] });

    let cases = [
        ("alg none", unsigned(&key.kid, &with(serde_json::json!({}))), "malformed"),
        ("HS256 with the public key", confused, "algorithm is not accepted"),
        ("a kid unknown after a refresh", stranger.sign(&with(serde_json::json!({}))), "does not know"),
        ("another issuer", key.sign(&with(serde_json::json!({ "iss": "https://evil.example/" }))), "issuer"),
        ("another audience", key.sign(&with(serde_json::json!({ "aud": "someone-else" }))), "audience"),
        ("expired", key.sign(&with(serde_json::json!({ "exp": now - 3600 }))), "expired"),
        ("not valid yet", key.sign(&with(serde_json::json!({ "nbf": now + 3600 }))), "not valid yet"),
        ("no principal", key.sign(&with(serde_json::json!({ "sub": "admin" }))), "principal"),
        ("a critical extension", critical, "crit"),
        ("an array of issuers", key.sign(&with(issuers)), "issuer"),
    ];
    for (what, token, reason) in cases {
        let (code, message) = answer(&app, &token).await;
        assert_eq!(code, Code::Unauthenticated, "{what}: {message}");
        assert!(message.contains(reason), "{what}: {message:?} should say {reason:?}");
        assert!(!message.contains(&provider.issuer) && !message.contains(&provider.audience), "{what}: {message}");
    }
    // And the shared secret no longer verifies anything: a token the dev tooling mints is refused.
    let minted = pc_server::TokenIssuer::new(pc_tests::TEST_SECRET).mint("operator", Duration::from_secs(60));
    assert_eq!(answer(&app, &minted.expect("a token")).await.0, Code::Unauthenticated);
}
