//! Several replicas over one database, as a scaled deployment runs them: each its own server
//! stack (pools, admission, rate limiter, background work), in-process (`TestApp::spawn_replica`)
//! or as processes of the real binary (`TestApp::spread_over_processes`). The lock protocol
//! across replicas is tested in races.rs (its last test).

use pc_api::partner::v1::{ListPartnersRequest, partner_service_client::PartnerServiceClient};
use pc_tests::{AppOptions, metric_sample, scrape_metrics, spawn_app, spawn_app_with};
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
            Err(status) if status.code() == Code::ResourceExhausted => {
                // A client tells its own budget from a server shedding load by the reason alone.
                assert_eq!(pc_tests::reason(&status), "RATE_LIMITED", "{status:?}");
                limited += 1;
            }
            Err(status) => panic!("neither admitted nor limited: {status:?}"),
        }
    }
    // 5 at once, and at most one more if a second passed meanwhile (1 call per second).
    assert!((5..=6).contains(&admitted), "{admitted} admitted, {limited} limited");
}

/// The background sweep of expired idempotency keys runs in every replica with no coordination,
/// and still deletes each key once: the keys the three processes say they deleted add up to the
/// keys that expired. (The in-process server of the app sweeps too, but not within the test: its
/// first sweep comes a minute or more after it starts.)
#[tokio::test]
async fn every_replica_sweeps_expired_keys_and_each_key_is_deleted_once() {
    use pc_store::idempotency;
    use sea_orm::{EntityTrait, PaginatorTrait};
    let mut app = spawn_app().await;
    if app.skipped_without_postgres("replicas share one PostgreSQL database (README, Scaling)") {
        return;
    }
    // Sweeping every second, from a random moment within the first: the three sweeps overlap.
    app.spread_over_processes(3, &[("METRICS_ADDR", "127.0.0.1:0"), ("IDEMPOTENCY_SWEEP_INTERVAL_SECS", "1")]).await;
    const KEYS: usize = 60;
    for _ in 0..KEYS {
        app.enrol_customer_with(&uuid::Uuid::new_v4().to_string()).await.expect("enrol a customer");
    }
    let stored = || async { idempotency::Entity::find().count(app.db.primary()).await.expect("count keys") };
    assert_eq!(stored().await, KEYS as u64);
    app.age_idempotency_keys(chrono::Duration::days(8)).await;

    let start = std::time::Instant::now();
    while stored().await > 0 {
        assert!(start.elapsed() < std::time::Duration::from_secs(15), "the expired keys were not swept");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let mut deleted = Vec::new();
    for process in app.processes() {
        let body = scrape_metrics(process.metrics_addr.expect("metrics are served")).await;
        deleted.push(metric_sample(&body, "partner_center_idempotency_keys_forgotten_total", &[]));
    }
    assert_eq!(deleted.iter().sum::<f64>(), KEYS as f64, "deleted by each process: {deleted:?}");
}

/// Replicas started together on an empty PostgreSQL database (a Deployment's first rollout, or a
/// restart of every replica after an upgrade) each migrate on start: all three come up, one
/// migrating while the others wait for its advisory lock, and serve.
#[tokio::test]
async fn replicas_started_together_on_an_empty_database_all_come_up() {
    let postgres = pc_tests::postgres::TempPostgres::start();
    let url = postgres.url();
    let start = || pc_tests::ServerProcess::start(&url, &[]);
    let (first, second, third) = tokio::join!(start(), start(), start());
    let token = pc_tests::Bearer::signed_with_test_secret("operator");
    for server in [&first, &second, &third] {
        let mut client = PartnerServiceClient::with_interceptor(server.channel.clone(), token.clone());
        client.list_partners(ListPartnersRequest::default()).await.expect("every replica serves");
    }
}
