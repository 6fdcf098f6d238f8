//! Overload and deadlines (`pc_server::admission`): a call over the server's limit is shed at
//! once with RESOURCE_EXHAUSTED and a retry delay, health is answered however full the server is,
//! and a call past its deadline is DEADLINE_EXCEEDED, changes nothing and stops its database work.
//!
//! Calls are kept in flight by a lock the test holds on the partners they suspend: their rows on
//! PostgreSQL, the one writer connection on SQLite.

use std::time::{Duration, Instant};

use pc_api::partner::v1::{
    GetPartnerRequest, Partner, ProgramRole, SuspendPartnerRequest, partner::State as PartnerState,
};
use pc_api::types::v1::Cloud;
use pc_store::{ConnectionTrait, DatabaseTransaction, TransactionTrait};
use pc_tests::{AppOptions, TestApp, expect_code, spawn_app, spawn_app_with};
use tonic::{Code, Request};
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};
use tonic_types::StatusExt;

/// Holds what a SuspendPartner of any of `partners` must wait for, until dropped or committed:
/// on PostgreSQL their rows, locked from a connection of the test's own; on SQLite the server's one
/// writer connection (a second writer would be refused at once, SQLITE_BUSY, not wait), which
/// calls then wait for up to the pool's 2 s acquire timeout.
async fn hold_locked(
    app: &TestApp,
    partners: &[&Partner],
) -> (Option<sea_orm::DatabaseConnection>, DatabaseTransaction) {
    if !app.on_postgres() {
        return (None, app.db.primary().begin().await.expect("take the writer"));
    }
    let connection = sea_orm::Database::connect(app.database_url()).await.expect("a connection of the test's own");
    let txn = connection.begin().await.expect("begin");
    let ids: Vec<String> =
        partners.iter().map(|partner| format!("'{}'", partner.name.trim_start_matches("partners/"))).collect();
    txn.execute_unprepared(&format!("SELECT 1 FROM partners WHERE id IN ({}) FOR UPDATE", ids.join(", ")))
        .await
        .expect("lock the partners");
    (Some(connection), txn)
}

fn suspend(partner: &Partner) -> SuspendPartnerRequest {
    SuspendPartnerRequest { name: partner.name.clone(), etag: String::new() }
}

#[tokio::test]
async fn calls_over_the_limit_are_shed_at_once_while_health_still_answers() {
    let app = spawn_app_with(AppOptions { max_in_flight: Some(2), health_apart: true, ..Default::default() }).await;
    let first = app.enrol(ProgramRole::IndirectReseller, Cloud::Global).await;
    let second = app.enrol(ProgramRole::IndirectReseller, Cloud::Global).await;
    let (_connection, lock) = hold_locked(&app, &[&first, &second]).await;

    // Two suspensions wait for the lock and take both of the server's slots.
    let waiting: Vec<_> = [&first, &second]
        .into_iter()
        .map(|partner| {
            let mut client = app.partners();
            let request = suspend(partner);
            tokio::spawn(async move { client.suspend_partner(request).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(waiting.iter().all(|call| !call.is_finished()), "the suspensions should wait for the lock");

    // A third call is refused at once, not queued: a GetPartner would otherwise succeed.
    let started = Instant::now();
    let shed = expect_code(
        app.partners().get_partner(GetPartnerRequest { name: first.name.clone() }).await,
        Code::ResourceExhausted,
    );
    assert!(started.elapsed() < Duration::from_secs(1), "shedding took {:?}", started.elapsed());
    assert_eq!(shed.get_details_error_info().map(|info| info.reason).as_deref(), Some("SERVER_OVERLOADED"));
    let retry = shed.get_details_retry_info().and_then(|info| info.retry_delay);
    assert!(retry.is_some_and(|delay| delay > Duration::ZERO), "a retry delay: {retry:?}");

    // Health skips the limit: an orchestrator sees a busy process as alive, on the main port and
    // on the port it is served apart on.
    let apart = tonic::transport::Channel::from_shared(format!("http://{}", app.health_addr.expect("health apart")))
        .expect("an endpoint")
        .connect()
        .await
        .expect("connect to the health port");
    for channel in [app.channel.clone(), apart] {
        let health = HealthClient::new(channel)
            .check(HealthCheckRequest { service: "partnercenter.partner.v1.PartnerService".into() })
            .await
            .expect("health is answered while the services shed");
        assert_eq!(health.into_inner().status(), ServingStatus::Serving);
    }

    // Once the lock goes, the waiting calls finish and the server admits calls again.
    lock.commit().await.expect("release the lock");
    for call in waiting {
        let suspended = call.await.expect("the task").expect("the suspension, once the lock is gone");
        assert_eq!(suspended.into_inner().state(), PartnerState::Suspended);
    }
    app.partners().get_partner(GetPartnerRequest { name: first.name.clone() }).await.expect("admitted again");
}

/// How many backends of the test's database wait for a lock (PostgreSQL), polled for up to 2 s
/// until none does.
async fn backends_waiting_for_a_lock(connection: &sea_orm::DatabaseConnection) -> i64 {
    let count = || async {
        let row = connection
            .query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Postgres,
                "SELECT count(*)::bigint AS waiting FROM pg_stat_activity \
                 WHERE datname = current_database() AND wait_event_type = 'Lock'",
            ))
            .await
            .expect("pg_stat_activity")
            .expect("a row");
        row.try_get::<i64>("", "waiting").expect("a count")
    };
    let mut waiting = count().await;
    for _ in 0..20 {
        if waiting == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        waiting = count().await;
    }
    waiting
}

/// A call given `grpc-timeout` by a client that leaves deadlines to the server is answered
/// DEADLINE_EXCEEDED by the server at that deadline; PostgreSQL cancels its statement (the
/// transaction's statement_timeout is the time that was left), so no backend waits on for it.
#[tokio::test]
async fn a_call_past_its_deadline_is_deadline_exceeded_changes_nothing_and_stops_its_database_work() {
    let app = spawn_app().await;
    let partner = app.enrol(ProgramRole::IndirectReseller, Cloud::Global).await;
    let held = hold_locked(&app, &[&partner]).await;

    let mut request = Request::new(suspend(&partner));
    request.set_timeout(Duration::from_millis(300));
    let call = async { app.bare_partners().await.suspend_partner(request).await };
    expect_timed_out(&app, &partner, held, call, Duration::from_millis(250)..Duration::from_millis(1500)).await;
}

/// Runs `call`, a SuspendPartner of `partner` that `held` holds up, and checks that the server
/// answered DEADLINE_EXCEEDED within `window`, that PostgreSQL runs its statement no longer, and,
/// once `held` lets go, that the call changed nothing.
async fn expect_timed_out<T: std::fmt::Debug>(
    app: &TestApp,
    partner: &Partner,
    held: (Option<sea_orm::DatabaseConnection>, DatabaseTransaction),
    call: impl Future<Output = Result<T, tonic::Status>>,
    window: std::ops::Range<Duration>,
) {
    let (connection, lock) = held;
    let started = Instant::now();
    let late = expect_code(call.await, Code::DeadlineExceeded);
    let took = started.elapsed();
    assert!(late.message().contains("deadline passed before it finished"), "{late:?}");
    assert!(window.contains(&took), "answered after {took:?}");
    if let Some(connection) = &connection {
        assert_eq!(backends_waiting_for_a_lock(connection).await, 0, "the abandoned statement still waits");
    }
    lock.commit().await.expect("release the lock");
    let after = app.partners().get_partner(GetPartnerRequest { name: partner.name.clone() }).await.unwrap();
    assert_eq!(after.into_inner().state(), PartnerState::Active, "the call that ran out of time changed nothing");
}

/// A client that sends no deadline gets the server's (`CALL_TIMEOUT_SECS`), and PostgreSQL's
/// statement_timeout on every pooled connection is that same limit.
#[tokio::test]
async fn a_call_without_a_deadline_gets_the_servers_and_its_statement_ends_with_it() {
    let app = spawn_app_with(AppOptions { call_timeout_secs: Some(1), ..Default::default() }).await;
    let partner = app.enrol(ProgramRole::IndirectReseller, Cloud::Global).await;
    let held = hold_locked(&app, &[&partner]).await;

    let mut partners = app.partners();
    let call = partners.suspend_partner(suspend(&partner));
    expect_timed_out(&app, &partner, held, call, Duration::from_millis(900)..Duration::from_millis(1900)).await;
}

#[tokio::test]
async fn a_call_whose_deadline_has_passed_is_never_started() {
    let app = spawn_app().await;
    let partner = app.enrol(ProgramRole::IndirectReseller, Cloud::Global).await;
    let mut request = Request::new(suspend(&partner));
    request.metadata_mut().insert("grpc-timeout", "0n".parse().expect("a header value"));
    let late = expect_code(app.bare_partners().await.suspend_partner(request).await, Code::DeadlineExceeded);
    assert!(late.message().contains("before it started"), "{late:?}");
    let after = app.partners().get_partner(GetPartnerRequest { name: partner.name.clone() }).await.unwrap();
    assert_eq!(after.into_inner().state(), PartnerState::Active);
}

/// The per-connection cap is advertised in the server's SETTINGS (the real program, its default):
/// a client learns it may open 32 calls at once on a connection and queues the rest itself.
#[tokio::test]
async fn a_connection_is_told_how_many_calls_it_may_open() {
    let mut app = spawn_app().await;
    app.spread_over_processes(1, &[]).await;
    let tcp = tokio::net::TcpStream::connect(app.processes()[0].addr).await.expect("connect");
    let (_client, mut connection) = h2::client::handshake(tcp).await.expect("an HTTP/2 connection");
    // The server's SETTINGS arrive as the connection is driven; nothing else is sent.
    let start = Instant::now();
    while connection.max_concurrent_send_streams() == usize::MAX {
        assert!(start.elapsed() < Duration::from_secs(5), "no SETTINGS_MAX_CONCURRENT_STREAMS from the server");
        let _ = tokio::time::timeout(
            Duration::from_millis(50),
            std::future::poll_fn(|cx| std::pin::Pin::new(&mut connection).poll(cx)),
        )
        .await;
    }
    assert_eq!(connection.max_concurrent_send_streams(), 32);
}

/// One gRPC call on a raw HTTP/2 connection: `grpc.health.v1.Health/Check` for the whole server,
/// its request head sent now, its message when the returned stream is finished.
fn open_health_check(
    client: &mut h2::client::SendRequest<bytes::Bytes>,
    addr: std::net::SocketAddr,
) -> Result<(h2::client::ResponseFuture, h2::SendStream<bytes::Bytes>), h2::Error> {
    let request = http::Request::post(format!("http://{addr}/grpc.health.v1.Health/Check"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .expect("a request head");
    client.send_request(request, false)
}

/// Sends the call's message (an empty HealthCheckRequest) and reads its answer: the grpc-status
/// the server ended it with.
async fn finish_health_check(
    response: h2::client::ResponseFuture,
    mut sending: h2::SendStream<bytes::Bytes>,
) -> Result<String, h2::Error> {
    sending.send_data(bytes::Bytes::from_static(&[0, 0, 0, 0, 0]), true)?;
    let mut body = response.await?.into_body();
    while let Some(chunk) = body.data().await {
        let chunk = chunk?;
        body.flow_control().release_capacity(chunk.len())?;
    }
    let trailers = body.trailers().await?.unwrap_or_default();
    Ok(trailers.get("grpc-status").and_then(|status| status.to_str().ok()).unwrap_or("none").to_owned())
}

/// `MAX_CONNECTION_AGE_SECS` drains a connection: GOAWAY at the age, the calls it carries finish
/// (one held open across the age here), new calls go to a new connection, and only a call still
/// open past the drain window (`SHUTDOWN_TIMEOUT_SECS`) is cut, when the connection is closed.
#[tokio::test]
async fn an_aged_connection_is_asked_to_go_away_and_its_calls_finish() {
    let (age, drain) = (Duration::from_secs(2), Duration::from_secs(3));
    let app = spawn_app().await;
    let env = [("MAX_CONNECTION_AGE_SECS", "2"), ("SHUTDOWN_TIMEOUT_SECS", "3")];
    let server = pc_tests::ServerProcess::start(&app.database_url(), &env).await;
    let tcp = tokio::net::TcpStream::connect(server.addr).await.expect("connect");
    let connected = Instant::now();
    let (mut client, connection) = h2::client::handshake(tcp).await.expect("an HTTP/2 connection");
    let connection = tokio::spawn(connection);

    // Two calls held open from the start: one finishes after the age, one after the drain.
    let (across_age, across_age_sending) = open_health_check(&mut client, server.addr).expect("a first call");
    let (past_drain, _past_drain_sending) = open_health_check(&mut client, server.addr).expect("a second call");

    // Calls every 200 ms succeed on the connection until the server asks it to go away.
    let goaway = loop {
        match open_health_check(&mut client, server.addr) {
            Ok((response, sending)) => {
                assert_eq!(finish_health_check(response, sending).await.expect("a call before GOAWAY"), "0");
            }
            Err(error) => {
                assert!(error.is_go_away() && error.is_remote(), "not a GOAWAY from the server: {error:?}");
                break connected.elapsed();
            }
        }
        assert!(connected.elapsed() < age + drain, "no GOAWAY within the age");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(goaway >= age - Duration::from_millis(100), "GOAWAY after {goaway:?}, before the age");

    // The call opened before GOAWAY finishes after it: nothing it carried fails.
    let status = finish_health_check(across_age, across_age_sending).await.expect("the held call is answered");
    assert_eq!(status, "0");
    // A new connection takes new calls at once.
    let fresh = tonic::transport::Channel::from_shared(format!("http://{}", server.addr)).expect("an endpoint");
    let mut health = HealthClient::new(fresh.connect().await.expect("a new connection"));
    health.check(HealthCheckRequest::default()).await.expect("a call on the new connection");

    // The call still open when the drain window ends is cut with the connection.
    let cut = tokio::time::timeout(age + drain + Duration::from_secs(5), past_drain).await;
    assert!(matches!(cut, Ok(Err(_))), "a call past the drain window was not cut: {cut:?}");
    let closed = tokio::time::timeout(Duration::from_secs(5), connection).await;
    assert!(closed.is_ok(), "the connection outlived its drain window");
    assert!(connected.elapsed() >= age + drain - Duration::from_millis(200), "closed before the drain window ended");
}
