//! Several replicas over one database, as a scaled deployment runs them: each its own server
//! stack (pools, admission, rate limiter, background work) built by `pc_server::App`.

use pc_api::partner::v1::{ListPartnersRequest, partner_service_client::PartnerServiceClient};
use pc_tests::{AppOptions, spawn_app_with};
use tonic::{Code, Request};

/// The Redis the shared rate limits are tested against (`PC_TEST_REDIS_URL`, e.g.
/// `redis://127.0.0.1:6379`); `.ci/run` always sets it.
fn redis_url() -> Option<String> {
    std::env::var("PC_TEST_REDIS_URL").ok().filter(|url| !url.is_empty())
}

/// With `RATE_LIMIT_REDIS_URL`, one principal has one budget however its calls are spread: a burst
/// of 5 over three replicas admits 5 calls, where per-process budgets would admit 15.
#[tokio::test]
async fn one_principals_calls_spread_over_three_replicas_are_limited_as_one() {
    let Some(redis) = redis_url() else {
        eprintln!("PC_TEST_REDIS_URL is unset: the shared rate limit is not tested");
        return;
    };
    let options =
        || AppOptions { rate_limit: Some((1, 5)), rate_limit_redis: Some(redis.clone()), ..Default::default() };
    let app = spawn_app_with(options()).await;
    let (second, third) = (app.spawn_replica(options()).await, app.spawn_replica(options()).await);
    let channels = [app.channel.clone(), second.channel.clone(), third.channel.clone()];
    // A principal of this test alone: its budget in Redis is its own.
    let token = app.token(&format!("partners/{}", uuid::Uuid::new_v4()));

    let (mut admitted, mut limited) = (0, 0);
    for call in 0..12 {
        let mut request = Request::new(ListPartnersRequest::default());
        request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().expect("ascii"));
        match PartnerServiceClient::new(channels[call % 3].clone()).list_partners(request).await {
            Ok(_) => admitted += 1,
            Err(status) if status.code() == Code::ResourceExhausted => limited += 1,
            Err(status) => panic!("neither admitted nor limited: {status:?}"),
        }
    }
    // 5 at once, and at most one more if a second passed meanwhile (1 call per second).
    assert!((5..=6).contains(&admitted), "{admitted} admitted, {limited} limited");
}
