//! Reliability and hostile input over a real server: idempotent retries, per-principal rate
//! limits, request size and encoding limits, tamper-evident page tokens, TLS and mTLS.

use pc_api::{partner::v1::*, types::v1::Cloud};
use pc_tests::{
    AppOptions, Reply, TEST_SECRET, TlsPem, expect_code, new_partner, spawn_app, spawn_app_with, violated_field,
};
use tonic::{
    Code, Request,
    transport::{Certificate, Channel, ClientTlsConfig, Identity},
};
use tonic_types::StatusExt;

fn enrol_with(request_id: &str, partner: &Partner) -> CreatePartnerRequest {
    CreatePartnerRequest { partner: Some(partner.clone()), request_id: request_id.to_owned() }
}

async fn partner_count(app: &pc_tests::TestApp) -> usize {
    let listed = app.partners().list_partners(ListPartnersRequest { page_size: 1000, ..Default::default() }).await;
    listed.reply().partners.len()
}

#[tokio::test]
async fn a_retried_create_returns_the_original_result_and_changes_nothing() {
    let app = spawn_app().await;
    let request_id = uuid::Uuid::new_v4().to_string();
    let partner = new_partner(ProgramRole::DirectBillPartner, Cloud::Global);
    let first = app.partners().create_partner(enrol_with(&request_id, &partner)).await.reply();
    let retried = app.partners().create_partner(enrol_with(&request_id, &partner)).await.reply();
    assert_eq!(retried, first);
    assert_eq!(partner_count(&app).await, 1);
    assert_eq!(pc_tests::audit_actions(&app, &first.name).await, ["CreatePartner"]);

    // The original result even after the resource changed, as AIP-155 asks.
    app.partners()
        .suspend_partner(SuspendPartnerRequest { name: first.name.clone(), etag: String::new() })
        .await
        .unwrap();
    let late_retry = app.partners().create_partner(enrol_with(&request_id, &partner)).await.reply();
    assert_eq!(late_retry, first);
}

#[tokio::test]
async fn a_request_id_reused_for_another_request_is_invalid_argument() {
    let app = spawn_app().await;
    let request_id = uuid::Uuid::new_v4().to_string();
    app.partners()
        .create_partner(enrol_with(&request_id, &new_partner(ProgramRole::DirectBillPartner, Cloud::Global)))
        .await
        .unwrap();
    let other = new_partner(ProgramRole::IndirectProvider, Cloud::Global);
    let status =
        expect_code(app.partners().create_partner(enrol_with(&request_id, &other)).await, Code::InvalidArgument);
    assert_eq!(violated_field(&status), "request_id");
    let status =
        expect_code(app.partners().create_partner(enrol_with("not-a-uuid", &other)).await, Code::InvalidArgument);
    assert_eq!(violated_field(&status), "request_id");
    assert_eq!(partner_count(&app).await, 1);
}

#[tokio::test]
async fn request_ids_belong_to_their_caller() {
    let app = spawn_app().await;
    let first = app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;
    let second = app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;
    let request_id = uuid::Uuid::new_v4().to_string();
    let mut created = Vec::new();
    for partner in [&first, &second] {
        let request = CreateCustomerRequest {
            customer: Some(pc_tests::new_customer(Cloud::Global)),
            request_id: request_id.clone(),
        };
        created.push(app.partners_as(Some(&partner.name)).create_customer(request).await.reply().name);
    }
    assert_ne!(created[0], created[1]);
}

#[tokio::test]
async fn racing_retries_of_one_request_create_one_resource_and_all_see_it() {
    let app = spawn_app().await;
    let request =
        enrol_with(&uuid::Uuid::new_v4().to_string(), &new_partner(ProgramRole::IndirectReseller, Cloud::Global));
    let calls: Vec<_> = (0..8)
        .map(|_| {
            let mut client = app.partners();
            let request = request.clone();
            tokio::spawn(async move { client.create_partner(request).await })
        })
        .collect();
    let mut names = Vec::new();
    for call in calls {
        names.push(call.await.unwrap().reply().name);
    }
    names.dedup();
    assert_eq!(names.len(), 1, "{names:?}");
    assert_eq!(partner_count(&app).await, 1);
}

#[tokio::test]
async fn a_noisy_principal_is_rate_limited_without_starving_others() {
    let app = spawn_app_with(AppOptions { rate_limit: Some((1, 3)), ..Default::default() }).await;
    let mut noisy = app.partners_as(Some("operator"));
    for _ in 0..3 {
        noisy.list_partners(ListPartnersRequest::default()).await.unwrap();
    }
    let status = expect_code(noisy.list_partners(ListPartnersRequest::default()).await, Code::ResourceExhausted);
    let retry = status.get_details_retry_info().and_then(|info| info.retry_delay);
    assert!(retry.is_some_and(|delay| delay > std::time::Duration::ZERO), "{status:?}");

    let quiet = format!("partners/{}", uuid::Uuid::now_v7());
    app.partners_as(Some(&quiet)).list_partners(ListPartnersRequest::default()).await.unwrap();
}

#[tokio::test]
async fn oversized_requests_are_resource_exhausted_and_long_fields_invalid() {
    let app = spawn_app().await;
    let huge =
        Partner { display_name: "x".repeat(100 * 1024), ..new_partner(ProgramRole::DirectBillPartner, Cloud::Global) };
    expect_code(app.partners().create_partner(enrol_with("", &huge)).await, Code::ResourceExhausted);
    let long = Partner { display_name: "x".repeat(300), ..huge };
    let status = expect_code(app.partners().create_partner(enrol_with("", &long)).await, Code::InvalidArgument);
    assert_eq!(violated_field(&status), "partner.display_name");
    // Large responses are not limited: a full page of partners comes back.
    for _ in 0..3 {
        app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;
    }
    assert_eq!(partner_count(&app).await, 3);
}

/// GetPartnerRequest's wire shape with `name` as raw bytes, to send what a string cannot hold.
#[derive(Clone, PartialEq, prost::Message)]
struct RawGetPartner {
    #[prost(bytes = "vec", tag = "1")]
    name: Vec<u8>,
}

#[tokio::test]
async fn a_string_that_is_not_utf8_is_invalid_argument_not_internal() {
    let app = spawn_app().await;
    let mut grpc = tonic::client::Grpc::new(app.channel.clone());
    grpc.ready().await.unwrap();
    let mut request = Request::new(RawGetPartner { name: vec![b'p', 0xff, 0xfe, 0xfd] });
    request.metadata_mut().insert("authorization", format!("Bearer {}", app.token("operator")).parse().unwrap());
    let path =
        tonic::codegen::http::uri::PathAndQuery::from_static("/partnercenter.partner.v1.PartnerService/GetPartner");
    let result: Result<tonic::Response<Partner>, _> =
        grpc.unary(request, path, tonic_prost::ProstCodec::<RawGetPartner, Partner>::default()).await;
    expect_code(result, Code::InvalidArgument);
}

#[tokio::test]
async fn altered_or_borrowed_page_tokens_are_refused_and_never_widen_a_view() {
    let app = spawn_app().await;
    for _ in 0..3 {
        app.customer_by("operator", Cloud::Global).await;
    }
    let first =
        app.partners().list_customers(ListCustomersRequest { page_size: 1, ..Default::default() }).await.reply();
    let token = first.next_page_token;
    let mut altered = token.clone().into_bytes();
    altered[2] = if altered[2] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).unwrap();
    let status = expect_code(
        app.partners()
            .list_customers(ListCustomersRequest { page_size: 1, page_token: altered, ..Default::default() })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_field(&status), "page_token");

    // The operator's token does not let a partner continue the operator's list.
    let partner = app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;
    let borrowed = ListCustomersRequest { page_size: 1, page_token: token, ..Default::default() };
    expect_code(app.partners_as(Some(&partner.name)).list_customers(borrowed).await, Code::InvalidArgument);
}

/// A CA, a server certificate for localhost and a client certificate, all PEM.
struct Pki {
    ca: String,
    /// The server's certificate and key.
    server: (String, String),
    client: Identity,
}

fn pki() -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf = |names: Vec<String>| {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(names).unwrap().signed_by(&key, &issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    };
    let (client_cert, client_key) = leaf(vec!["partner-service-client".into()]);
    Pki {
        ca: ca_cert.pem(),
        server: leaf(vec!["localhost".into()]),
        client: Identity::from_pem(client_cert, client_key),
    }
}

async fn tls_channel(
    addr: std::net::SocketAddr,
    ca: &str,
    identity: Option<Identity>,
) -> Result<Channel, tonic::transport::Error> {
    let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca)).domain_name("localhost");
    if let Some(identity) = identity {
        tls = tls.identity(identity);
    }
    Channel::from_shared(format!("https://{addr}")).unwrap().tls_config(tls)?.connect().await
}

async fn list_over(channel: Channel) -> Result<usize, tonic::Status> {
    let token: tonic::metadata::MetadataValue<_> = format!(
        "Bearer {}",
        pc_server::TokenIssuer::new(TEST_SECRET).mint("operator", std::time::Duration::from_secs(60)).unwrap()
    )
    .parse()
    .unwrap();
    let mut client =
        partner_service_client::PartnerServiceClient::with_interceptor(channel, move |mut request: Request<()>| {
            request.metadata_mut().insert("authorization", token.clone());
            Ok(request)
        });
    Ok(client.list_partners(ListPartnersRequest::default()).await?.into_inner().partners.len())
}

#[tokio::test]
async fn the_server_speaks_tls_with_a_certificate_it_was_given() {
    let pki = pki();
    let (cert, key) = pki.server;
    let app =
        spawn_app_with(AppOptions { tls: Some(TlsPem { cert, key, client_ca: None }), ..Default::default() }).await;
    let channel = tls_channel(app.addr, &pki.ca, None).await.expect("TLS handshake");
    assert_eq!(list_over(channel).await.ok(), Some(0));
    // Plain text is not answered.
    let plain = Channel::from_shared(format!("http://{}", app.addr)).unwrap().connect().await;
    if let Ok(plain) = plain {
        assert!(list_over(plain).await.is_err());
    }
}

#[tokio::test]
async fn with_a_client_ca_the_server_requires_client_certificates() {
    let pki = pki();
    let (cert, key) = pki.server;
    let tls = TlsPem { cert, key, client_ca: Some(pki.ca.clone()) };
    let app = spawn_app_with(AppOptions { tls: Some(tls), ..Default::default() }).await;
    let trusted = tls_channel(app.addr, &pki.ca, Some(pki.client)).await.expect("mTLS handshake");
    assert_eq!(list_over(trusted).await.ok(), Some(0));
    let anonymous = tls_channel(app.addr, &pki.ca, None).await;
    let refused = match anonymous {
        Err(_) => true,
        Ok(channel) => list_over(channel).await.is_err(),
    };
    assert!(refused, "a client without a certificate was served");
}

#[tokio::test]
async fn a_request_id_is_one_uuid_however_it_is_spelled_and_never_the_nil_uuid() {
    let app = spawn_app().await;
    let id = uuid::Uuid::new_v4();
    let partner = new_partner(ProgramRole::DirectBillPartner, Cloud::Global);
    let first = app.partners().create_partner(enrol_with(&id.to_string(), &partner)).await.reply();
    let spellings = [
        id.hyphenated().to_string().to_uppercase(),
        id.simple().to_string(),
        id.braced().to_string(),
        id.urn().to_string(),
    ];
    for spelling in spellings {
        let retried = app.partners().create_partner(enrol_with(&spelling, &partner)).await;
        assert_eq!(retried.reply(), first, "{spelling}");
    }
    assert_eq!(partner_count(&app).await, 1);
    let nil = uuid::Uuid::nil().to_string();
    let other = new_partner(ProgramRole::DirectBillPartner, Cloud::Global);
    let status = expect_code(app.partners().create_partner(enrol_with(&nil, &other)).await, Code::InvalidArgument);
    assert_eq!(violated_field(&status), "request_id");
    assert_eq!(partner_count(&app).await, 1);
}

#[tokio::test]
async fn a_request_id_past_its_window_is_forgotten_and_swept() {
    let app = spawn_app().await;
    let window = app.db.idempotency_window();
    assert_eq!(window, std::time::Duration::from_secs(7 * 24 * 3600), "the documented default");
    let request_id = uuid::Uuid::new_v4().to_string();
    let first = app.enrol_customer_with(&request_id).await.unwrap();

    // Within the window the retry replays; past it the same request runs anew, and finds the
    // customer it created the first time.
    app.age_idempotency_keys(chrono::Duration::days(6)).await;
    assert_eq!(app.enrol_customer_with(&request_id).await.unwrap(), first);
    app.age_idempotency_keys(chrono::Duration::days(8)).await;
    expect_code(app.enrol_customer_with(&request_id).await, Code::AlreadyExists);

    // The sweep deletes what has expired and nothing else.
    let stale = uuid::Uuid::new_v4().to_string();
    app.enrol_customer_with(&stale).await.unwrap();
    app.age_idempotency_keys(chrono::Duration::days(8)).await;
    let fresh = uuid::Uuid::new_v4().to_string();
    let kept = app.enrol_customer_with(&fresh).await.unwrap();
    // Expired: `stale`, and `request_id` (its rerun failed, so the rerun's forgetting rolled back).
    assert_eq!(pc_store::idempotency::forget_expired(&app.db).await.unwrap(), 2);
    assert_eq!(pc_store::idempotency::forget_expired(&app.db).await.unwrap(), 0);
    assert_eq!(app.enrol_customer_with(&fresh).await.unwrap(), kept);
}
