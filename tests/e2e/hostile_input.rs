//! Hostile input, generated: arbitrary bytes sent as the request of every method, and typed
//! requests with arbitrary strings, names of the wrong collection, forged page tokens, absurd page
//! sizes, unknown enum numbers and deep field masks. No input may panic the server or come back as
//! INTERNAL or UNKNOWN; every one is a clear client error or a normal answer.

use pc_api::{channel::v1::*, partner::v1::*, relationship::v1::*};
use pc_tests::{TestApp, spawn_app};
use proptest::{
    prelude::*,
    test_runner::{Config, TestCaseError, TestRunner},
};
use tonic::{
    Code, Request, Status,
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
    codegen::http::uri::PathAndQuery,
};

/// Sends and receives message bodies as raw bytes, whatever they contain.
#[derive(Debug, Clone, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        bytes::BufMut::put_slice(dst, &item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        let remaining = bytes::Buf::remaining(src);
        Ok(Some(bytes::Buf::copy_to_bytes(src, remaining).to_vec()))
    }
}

/// Runs `barrage` against one server over a fresh database (a server per case would test start-up,
/// not input handling), then checks the server still serves, then drops it and its database.
fn with_server(barrage: impl FnOnce(&tokio::runtime::Runtime, &TestApp)) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let app = runtime.block_on(spawn_app());
    barrage(&runtime, &app);
    let status = runtime.block_on(async {
        let mut health = tonic_health::pb::health_client::HealthClient::new(app.channel.clone());
        health
            .check(tonic_health::pb::HealthCheckRequest { service: String::new() })
            .await
            .map(|r| r.into_inner().status())
    });
    assert_eq!(status.ok(), Some(tonic_health::pb::health_check_response::ServingStatus::Serving));
    runtime.block_on(app.stop());
}

fn config() -> Config {
    Config { cases: 300, failure_persistence: None, ..Config::default() }
}

/// Every method's path, from the descriptor set.
/// Every method's path, and whether it streams its answer (WatchEvents).
fn method_paths() -> Vec<(String, bool)> {
    let set = <prost_types::FileDescriptorSet as prost::Message>::decode(pc_api::FILE_DESCRIPTOR_SET).unwrap();
    set.file
        .iter()
        .flat_map(|file| {
            file.service.iter().flat_map(move |service| {
                service.method.iter().map(move |method| {
                    let path = format!("/{}.{}/{}", file.package(), service.name(), method.name());
                    (path, method.server_streaming())
                })
            })
        })
        .collect()
}

fn client_error(outcome: Result<(), Status>, what: &str) -> Result<(), TestCaseError> {
    match outcome {
        Err(status) if matches!(status.code(), Code::Internal | Code::Unknown) => {
            Err(TestCaseError::fail(format!("{what}: {:?} {}", status.code(), status.message())))
        }
        Err(status) => {
            pc_tests::assert_error_info(&status);
            Ok(())
        }
        Ok(()) => Ok(()),
    }
}

/// Strings a hostile caller would try: arbitrary text, resource names of every collection with
/// good and bad ids, path tricks, and long runs.
fn hostile_string() -> impl Strategy<Value = String> {
    const COLLECTIONS: [&str; 7] = [
        "partners",
        "customers",
        "resellerLinks",
        "customerRelationships",
        "subscriptions",
        "supportAssignments",
        "bogus",
    ];
    prop_oneof![
        ".{0,80}",
        (prop::sample::select(&COLLECTIONS[..]), prop_oneof![Just(uuid::Uuid::now_v7().to_string()), ".{0,40}"])
            .prop_map(|(collection, id)| format!("{collection}/{id}")),
        Just("partners/../../etc/passwd".to_owned()),
        Just("x".repeat(5000)),
        "[A-Za-z0-9_-]{0,60}",
    ]
}

#[test]
fn arbitrary_bytes_to_any_method_are_never_internal() {
    let methods = method_paths();
    with_server(|runtime, app| {
        let token = app.token("operator");
        let cases = (0..methods.len(), prop::collection::vec(any::<u8>(), 0..256));
        TestRunner::new(config())
            .run(&cases, |(method, body)| {
                let (path, streams) = &methods[method];
                let outcome = runtime.block_on(async {
                    let mut grpc = tonic::client::Grpc::new(app.channel.clone());
                    grpc.ready().await.map_err(|e| Status::unavailable(e.to_string()))?;
                    let mut request = Request::new(body.clone());
                    request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
                    let path = PathAndQuery::try_from(path.as_str()).unwrap();
                    if *streams {
                        // A watch that starts is answered by its headers; it would then run on.
                        grpc.server_streaming(request, path, RawCodec).await.map(drop)
                    } else {
                        grpc.unary(request, path, RawCodec).await.map(drop)
                    }
                });
                client_error(outcome, &format!("{path} with {body:?}"))
            })
            .unwrap_or_else(|failure| panic!("{failure}"));
    });
}

#[test]
fn hostile_typed_requests_are_clear_client_errors() {
    let cases =
        (hostile_string(), hostile_string(), any::<i32>(), prop::collection::vec("[a-z_.*]{0,30}", 0..40), 0u8..8);
    with_server(|runtime, app| {
        TestRunner::new(config())
            .run(&cases, |(text, other, number, paths, which)| {
                let outcome = runtime.block_on(typed_call(app, &text, &other, number, paths, which));
                client_error(outcome, &format!("case {which} with {text:?} / {other:?} / {number}"))
            })
            .unwrap_or_else(|failure| panic!("{failure}"));
    });
}

async fn typed_call(
    app: &TestApp,
    text: &str,
    other: &str,
    number: i32,
    paths: Vec<String>,
    which: u8,
) -> Result<(), Status> {
    let (text, other) = (text.to_owned(), other.to_owned());
    let mut partners = app.partners();
    let mut relationships = app.relationships();
    let mut channel = app.channel();
    let partner = Partner {
        name: text.clone(),
        display_name: other.clone(),
        tenant_id: text.clone(),
        country_code: other.clone(),
        cloud: number,
        program_role: number.wrapping_add(1),
        etag: other.clone(),
        ..Default::default()
    };
    match which {
        0 => partners
            .create_partner(CreatePartnerRequest { partner: Some(partner), request_id: other.clone() })
            .await
            .map(drop),
        1 => partners
            .list_partners(ListPartnersRequest {
                page_size: number,
                page_token: text.clone(),
                cloud: number,
                program_role: number,
                state: number,
            })
            .await
            .map(drop),
        2 => partners
            .update_partner(UpdatePartnerRequest {
                partner: Some(partner),
                update_mask: Some(prost_types::FieldMask { paths: paths.clone() }),
            })
            .await
            .map(drop),
        3 => partners.get_customer(GetCustomerRequest { name: text.clone() }).await.map(drop),
        4 => relationships
            .request_customer_relationship(RequestCustomerRelationshipRequest {
                partner: text.clone(),
                customer: other.clone(),
                indirect_provider: text.clone(),
                request_id: String::new(),
            })
            .await
            .map(drop),
        5 => relationships
            .list_customer_relationships(ListCustomerRelationshipsRequest {
                page_size: number,
                page_token: other.clone(),
                partner: text.clone(),
                customer: other.clone(),
                state: number,
            })
            .await
            .map(drop),
        6 => channel
            .create_subscription(CreateSubscriptionRequest {
                subscription: Some(Subscription {
                    customer: text.clone(),
                    offer_id: other.clone(),
                    product_family: number,
                    quantity: number,
                    partner_of_record: other.clone(),
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .map(drop),
        _ => channel
            .list_subscriptions(ListSubscriptionsRequest {
                page_size: number,
                page_token: text.clone(),
                customer: other.clone(),
                partner: text.clone(),
                state: number,
            })
            .await
            .map(drop),
    }
}

#[tokio::test]
async fn display_names_with_invisible_characters_are_invalid_argument() {
    let app = pc_tests::spawn_app().await;
    for name in ["Fabri\u{200B}kam", "Contoso \u{202E}dtl", "\u{3164}", "\u{FEFF}Northwind"] {
        let mut partner = pc_tests::new_partner(
            pc_api::partner::v1::ProgramRole::DirectBillPartner,
            pc_api::types::v1::Cloud::Global,
        );
        partner.display_name = name.to_owned();
        let request = pc_api::partner::v1::CreatePartnerRequest { partner: Some(partner), ..Default::default() };
        let status = pc_tests::expect_code(app.partners().create_partner(request).await, tonic::Code::InvalidArgument);
        assert_eq!(pc_tests::violated_field(&status), "partner.display_name", "{name:?}");
    }
}

/// A validly signed token past `MAX_HEADER_LIST_BYTES` (16 KiB unless set) is refused before it
/// reaches a handler (HTTP 431, which gRPC clients report as UNKNOWN); raising the setting admits
/// it, for identity providers whose tokens carry many claims.
#[tokio::test]
async fn a_token_past_the_header_limit_is_refused_until_the_limit_is_raised() {
    let app = spawn_app().await;
    let claims = serde_json::json!({
        "sub": "operator",
        "exp": chrono::Utc::now().timestamp() + 600,
        "groups": "g".repeat(20 * 1024),
    });
    let key = jsonwebtoken::EncodingKey::from_secret(pc_tests::TEST_SECRET.as_bytes());
    let token = jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).expect("a token");
    let list = async |server: &pc_tests::ServerProcess| {
        let mut request = Request::new(ListPartnersRequest::default());
        request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().expect("ascii"));
        partner_service_client::PartnerServiceClient::new(server.channel.clone()).list_partners(request).await
    };
    let default = pc_tests::ServerProcess::start(&app.database_url(), &[]).await;
    let refused = list(&default).await.expect_err("a 20 KiB token over the default limit");
    assert_eq!(refused.code(), Code::Unknown, "{refused:?}");
    let raised = pc_tests::ServerProcess::start(&app.database_url(), &[("MAX_HEADER_LIST_BYTES", "65536")]).await;
    list(&raised).await.expect("a 20 KiB token within a raised limit");
}
