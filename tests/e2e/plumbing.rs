//! Health and reflection: served without credentials, so probes and grpcurl work out of the box.

use pc_tests::{Reply, spawn_app};
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};
use tonic_reflection::pb::{v1, v1alpha};

#[tokio::test]
async fn health_reports_serving_without_credentials() {
    let app = spawn_app().await;
    let mut health = HealthClient::new(app.channel.clone());
    for service in ["", "partnercenter.partner.v1.PartnerService"] {
        let response = health.check(HealthCheckRequest { service: service.into() }).await.unwrap();
        assert_eq!(response.into_inner().status(), ServingStatus::Serving, "{service:?}");
    }
    let unknown = health.check(HealthCheckRequest { service: "no.such.Service".into() }).await;
    assert_eq!(unknown.unwrap_err().code(), tonic::Code::NotFound);
}

#[tokio::test]
async fn health_turns_not_serving_when_the_server_shuts_down() {
    let app = spawn_app().await;
    let mut health = HealthClient::new(app.channel.clone());
    let mut watch = health.watch(HealthCheckRequest { service: String::new() }).await.reply();
    let first = watch.message().await.unwrap().unwrap();
    assert_eq!(first.status(), ServingStatus::Serving);
    // Shutdown first tells watchers NOT_SERVING, then drains; the open watch stream itself is one
    // of the calls being drained, so read it while the server stops.
    let stopping = tokio::spawn(app.stop());
    let saw_not_serving = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while let Ok(Some(update)) = watch.message().await {
            if update.status() == ServingStatus::NotServing {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(saw_not_serving.ok(), Some(true), "no NOT_SERVING before the stream ended");
    drop(watch);
    stopping.await.unwrap();
}

#[tokio::test]
async fn reflection_v1_lists_the_served_services_without_credentials() {
    let app = spawn_app().await;
    let mut client = v1::server_reflection_client::ServerReflectionClient::new(app.channel.clone());
    let request = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(String::new())),
    };
    let mut responses = client.server_reflection_info(tokio_stream::iter([request])).await.reply();
    let Some(v1::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        responses.message().await.unwrap().unwrap().message_response
    else {
        panic!("expected a service list");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for expected in ["partnercenter.partner.v1.PartnerService", "grpc.health.v1.Health"] {
        assert!(names.iter().any(|n| n == expected), "{expected} missing from {names:?}");
    }
}

#[tokio::test]
async fn reflection_v1alpha_describes_partner_messages_for_older_grpcurl() {
    let app = spawn_app().await;
    let mut client = v1alpha::server_reflection_client::ServerReflectionClient::new(app.channel.clone());
    let request = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1alpha::server_reflection_request::MessageRequest::FileContainingSymbol(
            "partnercenter.partner.v1.PartnerService".into(),
        )),
    };
    let mut responses = client.server_reflection_info(tokio_stream::iter([request])).await.reply();
    let response = responses.message().await.unwrap().unwrap();
    let Some(v1alpha::server_reflection_response::MessageResponse::FileDescriptorResponse(files)) =
        response.message_response
    else {
        panic!("expected file descriptors, got {:?}", response.message_response);
    };
    assert!(!files.file_descriptor_proto.is_empty());
}
