//! Lists from a PostgreSQL streaming replica (`DATABASE_REPLICA_URL`): the test makes a primary
//! and a replica of its own (`pg_basebackup -R`, `pg_ctl`, as the outage test makes a primary) and
//! runs the real program over them. Lists read the replica while it is within
//! `REPLICA_MAX_LAG_MS`, and the primary when it falls behind or stops, with no call failing; a
//! Get after the caller's own write reads the primary.

use std::time::{Duration, Instant};

use pc_api::partner::v1::{
    CreatePartnerRequest, GetPartnerRequest, ListPartnersRequest, Partner, ProgramRole,
    partner_service_client::PartnerServiceClient,
};
use pc_api::types::v1::Cloud;
use pc_tests::{
    AuthChannel, Bearer, Reply, ServerProcess, metric_sample, new_partner, postgres::TempPostgres, scrape_metrics,
};
use sea_orm::ConnectionTrait;

/// The bound the server is given: long enough that a List right after a write lands inside it
/// on a busy machine, short enough to wait out.
const MAX_LAG: Duration = Duration::from_millis(3000);

type Operator = PartnerServiceClient<AuthChannel>;

fn operator(server: &ServerProcess) -> Operator {
    PartnerServiceClient::with_interceptor(server.channel.clone(), Bearer::signed_with_test_secret("operator"))
}

async fn create(client: &mut Operator) -> Partner {
    let partner = new_partner(ProgramRole::DirectBillPartner, Cloud::Global);
    let request = CreatePartnerRequest { partner: Some(partner), request_id: String::new() };
    client.create_partner(request).await.reply()
}

/// The names ListPartners returns (one page holds them all here).
async fn listed(client: &mut Operator) -> Vec<String> {
    let request = ListPartnersRequest { page_size: 1000, ..Default::default() };
    let page = client.list_partners(request).await.reply();
    page.partners.into_iter().map(|partner| partner.name).collect()
}

/// Whether the server's Lists read the replica now, from its metrics.
async fn replica_in_use(server: &ServerProcess) -> bool {
    let body = scrape_metrics(server.metrics_addr.expect("metrics are served")).await;
    metric_sample(&body, "partner_center_replica_in_use", &[]) == 1.0
}

async fn wait_until_replica_in_use(server: &ServerProcess, in_use: bool) {
    let start = Instant::now();
    while replica_in_use(server).await != in_use {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "Lists never {} the replica",
            if in_use { "read" } else { "left" }
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the replica has replayed the write that made `partner`: a replica within
/// `MAX_LAG` may still be that far behind a write the test just made, or not yet have the
/// `partners` table at all (an error, which counts as "not yet").
async fn wait_until_replicated(replica: &TempPostgres, partner: &Partner) {
    let standby = sea_orm::Database::connect(replica.url()).await.expect("connect to the replica");
    let id = partner.name.strip_prefix("partners/").expect("a partner name");
    let query = format!("SELECT 1 FROM partners WHERE id = '{id}'");
    let start = Instant::now();
    while standby
        .query_one_raw(sea_orm::Statement::from_string(standby.get_database_backend(), query.clone()))
        .await
        .ok()
        .flatten()
        .is_none()
    {
        assert!(start.elapsed() < Duration::from_secs(30), "the replica never replayed {}", partner.name);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    standby.close().await.ok();
}

#[tokio::test]
async fn lists_read_a_fresh_replica_and_the_primary_when_it_lags_or_stops() {
    let primary = TempPostgres::start();
    let replica = TempPostgres::replica_of(&primary);
    let (replica_url, max_lag) = (replica.url(), MAX_LAG.as_millis().to_string());
    let server = ServerProcess::start(
        &primary.url(),
        &[("DATABASE_REPLICA_URL", &replica_url), ("REPLICA_MAX_LAG_MS", &max_lag), ("METRICS_ADDR", "127.0.0.1:0")],
    )
    .await;
    let mut client = operator(&server);

    // Rows written on the primary appear through Lists read on the replica.
    wait_until_replica_in_use(&server, true).await;
    let first = create(&mut client).await;
    let start = Instant::now();
    while !listed(&mut client).await.contains(&first.name) {
        assert!(start.elapsed() < MAX_LAG, "a row took longer than the bound to reach the List");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(replica_in_use(&server).await);

    // The replica stops replaying: a List right after a write reads it (the write is missing,
    // within the bound), while a Get after the write reads the primary and finds it.
    let standby = sea_orm::Database::connect(&replica_url).await.expect("connect to the replica");
    standby.execute_unprepared("SELECT pg_wal_replay_pause()").await.expect("pause replay");
    // The pause is only requested: the replica may replay on until it takes effect.
    let paused = "SELECT 1 FROM (SELECT pg_get_wal_replay_pause_state() AS state) s WHERE state = 'paused'";
    let start = Instant::now();
    while standby
        .query_one_raw(sea_orm::Statement::from_string(standby.get_database_backend(), paused))
        .await
        .expect("read the pause state")
        .is_none()
    {
        assert!(start.elapsed() < Duration::from_secs(30), "the replica never paused");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let second = create(&mut client).await;
    let written = Instant::now();
    let got = client.get_partner(GetPartnerRequest { name: second.name.clone() }).await.expect("GetPartner");
    assert_eq!(got.into_inner(), second);
    let names = listed(&mut client).await;
    assert!(written.elapsed() < MAX_LAG, "too slow to tell: the List came after the bound");
    assert!(names.contains(&first.name) && !names.contains(&second.name), "the List did not read the replica");

    // Past the bound, Lists read the primary, which has the write.
    wait_until_replica_in_use(&server, false).await;
    assert!(written.elapsed() >= MAX_LAG / 2, "left the replica long before the bound");
    assert!(listed(&mut client).await.contains(&second.name));

    // Replay resumes: Lists read the replica again, and it has caught up.
    standby.execute_unprepared("SELECT pg_wal_replay_resume()").await.expect("resume replay");
    standby.close().await.ok();
    wait_until_replica_in_use(&server, true).await;
    assert!(listed(&mut client).await.contains(&second.name));

    // The replica stops: no List fails, before or after the measurement notices.
    replica.down();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(2) {
        assert!(listed(&mut client).await.contains(&second.name));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!replica_in_use(&server).await);
}

/// A replica that hangs (SIGSTOP: connections stay open, nothing answers) fails no List: the
/// Lists in flight wait at most REPLICA_READ_TIMEOUT_MS, then read the primary, and the replica
/// is left until it answers again.
#[tokio::test]
async fn a_hung_replica_fails_no_list() {
    let primary = TempPostgres::start();
    let replica = TempPostgres::replica_of(&primary);
    let replica_url = replica.url();
    let env = [
        ("DATABASE_REPLICA_URL", replica_url.as_str()),
        ("REPLICA_MAX_LAG_MS", "3000"),
        ("REPLICA_READ_TIMEOUT_MS", "300"),
        ("CALL_TIMEOUT_SECS", "5"),
        ("METRICS_ADDR", "127.0.0.1:0"),
    ];
    let server = ServerProcess::start(&primary.url(), &env).await;
    let mut client = operator(&server);
    let created = create(&mut client).await;
    wait_until_replica_in_use(&server, true).await;
    wait_until_replicated(&replica, &created).await;

    // Eight clients list without pause while the replica freezes under them.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let listers: Vec<_> = (0..8)
        .map(|_| {
            let (mut client, stop, name) = (operator(&server), stop.clone(), created.name.clone());
            tokio::spawn(async move {
                let (mut lists, mut slowest) = (0, Duration::ZERO);
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let started = Instant::now();
                    let request = ListPartnersRequest { page_size: 1000, ..Default::default() };
                    let page = client.list_partners(request).await.map_err(|status| format!("{status:?}"))?;
                    assert!(page.into_inner().partners.iter().any(|partner| partner.name == name));
                    slowest = slowest.max(started.elapsed());
                    lists += 1;
                }
                Ok::<_, String>((lists, slowest))
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    replica.freeze();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!replica_in_use(&server).await, "Lists still read the frozen replica");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for lister in listers {
        let (lists, slowest) =
            lister.await.expect("a lister").unwrap_or_else(|status| panic!("a List failed: {status}"));
        assert!(lists > 0);
        assert!(slowest < Duration::from_secs(3), "a List waited {slowest:?} for the frozen replica");
    }
    replica.thaw();
    wait_until_replica_in_use(&server, true).await;
}
