//! Authentication: every PartnerService method refuses calls without a valid bearer token.

use pc_api::partner::v1::*;
use pc_tests::{AuthChannel, Reply, TEST_SECRET, expect_code, spawn_app};
use tonic::{Code, Request, metadata::MetadataValue};

/// The status code of one call (`Ok` when it succeeded).
macro_rules! code_of {
    ($call:expr) => {
        $call.await.err().map_or(Code::Ok, |status| status.code())
    };
}

/// Calls every PartnerService method once with `client` and returns each status code.
async fn codes_of_every_method(
    client: &mut partner_service_client::PartnerServiceClient<AuthChannel>,
) -> Vec<(&'static str, Code)> {
    vec![
        ("CreatePartner", code_of!(client.create_partner(CreatePartnerRequest::default()))),
        ("GetPartner", code_of!(client.get_partner(GetPartnerRequest::default()))),
        ("ListPartners", code_of!(client.list_partners(ListPartnersRequest::default()))),
        ("UpdatePartner", code_of!(client.update_partner(UpdatePartnerRequest::default()))),
        ("SuspendPartner", code_of!(client.suspend_partner(SuspendPartnerRequest::default()))),
        ("ReactivatePartner", code_of!(client.reactivate_partner(ReactivatePartnerRequest::default()))),
        ("CreateCustomer", code_of!(client.create_customer(CreateCustomerRequest::default()))),
        ("GetCustomer", code_of!(client.get_customer(GetCustomerRequest::default()))),
        ("ListCustomers", code_of!(client.list_customers(ListCustomersRequest::default()))),
    ]
}

#[tokio::test]
async fn every_method_without_a_credential_is_unauthenticated() {
    let app = spawn_app().await;
    let mut anonymous = app.partners_as(None);
    for (method, code) in codes_of_every_method(&mut anonymous).await {
        assert_eq!(code, Code::Unauthenticated, "{method}");
    }
}

#[tokio::test]
async fn bad_tokens_are_unauthenticated() {
    let app = spawn_app().await;
    let other_secret = pc_server::TokenIssuer::new("another-secret-another-secret-another")
        .mint("operator", std::time::Duration::from_secs(60))
        .unwrap();
    let unknown_subject = app.token("root");
    let bad_headers = [
        "Bearer not-a-jwt".to_owned(),
        format!("Bearer {other_secret}"),
        format!("Bearer {unknown_subject}"),
        format!("Basic {}", app.token("operator")),
        "Bearer eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJvcGVyYXRvciIsImV4cCI6OTk5OTk5OTk5OX0.".to_owned(),
    ];
    let mut client = partner_service_client::PartnerServiceClient::new(app.channel.clone());
    for header in bad_headers {
        let mut request = Request::new(ListPartnersRequest::default());
        request.metadata_mut().insert("authorization", MetadataValue::try_from(header.as_str()).unwrap());
        expect_code(client.list_partners(request).await, Code::Unauthenticated);
    }
    assert!(TEST_SECRET.len() >= 32);
}

#[tokio::test]
async fn a_valid_token_is_accepted() {
    let app = spawn_app().await;
    let listed = app.partners().list_partners(ListPartnersRequest::default()).await.reply();
    assert!(listed.partners.is_empty());
}

#[tokio::test]
async fn a_refused_token_says_why_in_its_error_reason() {
    let app = spawn_app().await;
    let key = jsonwebtoken::EncodingKey::from_secret(TEST_SECRET.as_bytes());
    let now = chrono::Utc::now().timestamp();
    let signed = |claims: serde_json::Value| jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key);
    let expired = signed(serde_json::json!({ "sub": "operator", "exp": now - 3600 })).unwrap();
    let early = signed(serde_json::json!({ "sub": "operator", "exp": now + 600, "nbf": now + 300 })).unwrap();
    let cases = [
        (None, "TOKEN_MISSING"),
        (Some("Basic abc".to_owned()), "TOKEN_MISSING"),
        (Some("Bearer not-a-jwt".to_owned()), "TOKEN_INVALID"),
        (Some(format!("Bearer {expired}")), "TOKEN_EXPIRED"),
        (Some(format!("Bearer {early}")), "TOKEN_NOT_YET_VALID"),
    ];
    let mut client = partner_service_client::PartnerServiceClient::new(app.channel.clone());
    for (header, reason) in cases {
        let mut request = Request::new(ListPartnersRequest::default());
        if let Some(header) = &header {
            request.metadata_mut().insert("authorization", MetadataValue::try_from(header.as_str()).unwrap());
        }
        let status = expect_code(client.list_partners(request).await, Code::Unauthenticated);
        assert_eq!(pc_tests::reason(&status), reason, "{header:?}");
    }
}

/// Every reason the domain can give is in README's list, with FAILED_PRECONDITION; the list has no
/// reason twice.
#[test]
fn every_rule_reason_is_documented() {
    let documented = pc_tests::documented_error_reasons();
    for reason in pc_domain::Reason::ALL {
        assert!(
            documented.iter().any(|(name, code)| name == reason.as_str() && code == "FAILED_PRECONDITION"),
            "{reason} is not in README's Error reasons"
        );
    }
    let mut names: Vec<_> = documented.iter().map(|(name, _)| name).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), documented.len(), "a reason is listed twice");
    assert!(documented.len() >= 30, "README's Error reasons table was not read: {documented:?}");
}
