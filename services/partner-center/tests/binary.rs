//! The real `partner-center` binary under faults: SIGTERM with calls in flight, and its database
//! going away and coming back. These start the binary as a process, as a deployment would.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::{
    net::SocketAddr,
    process::{Command, Stdio},
    time::Duration,
};

use pc_api::partner::v1::{
    CreatePartnerRequest, GetPartnerRequest, Partner, ProgramRole, partner_service_client::PartnerServiceClient,
};
use pc_server::TokenIssuer;
use pc_tests::{ServerProcess, postgres::TempPostgres};
use sea_orm::{ConnectionTrait, TransactionTrait};
use tokio::io::{AsyncBufReadExt, BufReader};
use tonic::{Code, Request, transport::Channel};
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};

/// The secret every server process of the harness verifies tokens with.
const SECRET: &str = pc_tests::TEST_SECRET;

/// `partner-center serve` of this package's binary over `database_url`, as a deployment starts it.
async fn start_server(database_url: &str) -> ServerProcess {
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_partner-center"));
    // The default pool: the SIGTERM test keeps 12 calls in flight on connections of their own.
    let env = [("SHUTDOWN_TIMEOUT_SECS", "10"), ("DB_MAX_CONNECTIONS", "16")];
    ServerProcess::start_binary(binary, database_url, &env).await
}

/// A PostgreSQL of the test's own, migrated by the binary's `migrate`, as a deployment does it.
fn migrated_postgres() -> TempPostgres {
    let postgres = TempPostgres::start();
    let migrate = Command::new(env!("CARGO_BIN_EXE_partner-center"))
        .arg("migrate")
        .env("DATABASE_URL", postgres.url())
        .env("RUST_LOG", "warn")
        .status()
        .unwrap();
    assert!(migrate.success());
    postgres
}

fn operator(
    channel: Channel,
) -> PartnerServiceClient<tonic::service::interceptor::InterceptedService<Channel, impl tonic::service::Interceptor>> {
    let token = TokenIssuer::new(SECRET).mint("operator", Duration::from_secs(600)).unwrap();
    let header: tonic::metadata::MetadataValue<_> = format!("Bearer {token}").parse().unwrap();
    PartnerServiceClient::with_interceptor(channel, move |mut request: Request<()>| {
        request.metadata_mut().insert("authorization", header.clone());
        Ok(request)
    })
}

fn new_partner() -> CreatePartnerRequest {
    CreatePartnerRequest {
        partner: Some(Partner {
            display_name: "Drained Ltd".into(),
            tenant_id: uuid::Uuid::new_v4().to_string(),
            country_code: "US".into(),
            cloud: pc_api::types::v1::Cloud::Global as i32,
            program_role: ProgramRole::DirectBillPartner as i32,
            ..Default::default()
        }),
        request_id: String::new(),
    }
}

async fn health_of(channel: &Channel) -> Option<ServingStatus> {
    let response = HealthClient::new(channel.clone()).check(HealthCheckRequest { service: String::new() }).await;
    response.ok().map(|r| r.into_inner().status())
}

/// Polls health until it reports `wanted`, for at most a minute.
async fn wait_for_health(channel: &Channel, wanted: ServingStatus) {
    for _ in 0..120 {
        if health_of(channel).await == Some(wanted) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("health never became {wanted:?}");
}

#[tokio::test]
async fn a_database_outage_fails_fast_and_recovers_without_losing_acknowledged_writes() {
    let postgres = migrated_postgres();
    let server = start_server(&postgres.url()).await;
    let channel = server.channel.clone();

    // Writers that run through the outage, remembering what the service acknowledged.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let refused = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let writers: Vec<_> = (0..4)
        .map(|_| {
            let mut client = operator(channel.clone());
            let (stopped, refused) = (stopped.clone(), refused.clone());
            tokio::spawn(async move {
                let (mut acknowledged, mut refusals) = (Vec::new(), Vec::new());
                for _ in 0..2000 {
                    if *stopped.borrow() {
                        break;
                    }
                    let started = std::time::Instant::now();
                    match client.create_partner(new_partner()).await {
                        Ok(created) => acknowledged.push(created.into_inner().name),
                        Err(status) => {
                            refusals.push((status.code(), started.elapsed()));
                            refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                (acknowledged, refusals)
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_millis(500)).await;
    postgres.down();
    wait_for_health(&channel, ServingStatus::NotServing).await;
    // Down until a writer has met the outage: a restart quicker than the pool's acquire timeout
    // could otherwise hide it from writers waiting for a connection.
    let down = std::time::Instant::now();
    while refused.load(std::sync::atomic::Ordering::Relaxed) == 0 && down.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    postgres.up();
    wait_for_health(&channel, ServingStatus::Serving).await;
    // Writes succeed again, with no restart of the service.
    operator(channel.clone()).create_partner(new_partner()).await.expect("a write after recovery");
    stop.send(true).unwrap();

    let mut client = operator(channel.clone());
    let (mut acknowledged, mut refusals) = (0, Vec::new());
    for writer in writers {
        let (names, codes) = writer.await.unwrap();
        refusals.extend(codes);
        for name in names {
            let stored = client.get_partner(GetPartnerRequest { name: name.clone() }).await;
            assert!(stored.is_ok(), "acknowledged {name} is missing: {stored:?}");
            acknowledged += 1;
        }
    }
    assert!(acknowledged > 0, "no write was acknowledged before the outage");
    assert!(!refusals.is_empty(), "the outage refused nothing: it was not observed");
    for (code, took) in &refusals {
        assert!(matches!(code, Code::Unavailable | Code::Aborted), "a call during the outage failed with {code:?}");
        // Failing fast, not hanging: bounded by the pool's 2 s acquire timeout plus slack.
        assert!(*took < Duration::from_secs(5), "a refused call took {took:?}; all: {refusals:?}");
    }
    drop(server);
}

/// A database host that hangs (every PostgreSQL process stopped, connections open, nothing
/// answering) is unreachable as surely as one that is down: health must say NOT_SERVING within
/// seconds, not wait on the hung connection, and SERVING again once the host answers.
#[tokio::test]
async fn a_hung_database_turns_health_not_serving_and_back() {
    let postgres = migrated_postgres();
    let server = start_server(&postgres.url()).await;
    wait_for_health(&server.channel, ServingStatus::Serving).await;
    postgres.freeze();
    let frozen = std::time::Instant::now();
    wait_for_health(&server.channel, ServingStatus::NotServing).await;
    assert!(frozen.elapsed() < Duration::from_secs(15), "noticed only after {:?}", frozen.elapsed());
    postgres.thaw();
    wait_for_health(&server.channel, ServingStatus::Serving).await;
    drop(server);
}

/// Creates partners until the number of queries waiting on a lock reaches `waiting`.
async fn until_waiting_on_locks(db: &sea_orm::DatabaseConnection, waiting: i64) {
    for _ in 0..600 {
        let row = db
            .query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DatabaseBackend::Postgres,
                "SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock'",
            ))
            .await
            .unwrap()
            .unwrap();
        if row.try_get::<i64>("", "n").unwrap() >= waiting {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the calls never reached the database");
}

#[tokio::test]
async fn sigterm_lets_in_flight_calls_finish_reports_not_serving_and_exits_cleanly() {
    const IN_FLIGHT: usize = 12;
    let postgres = migrated_postgres();
    let mut server = start_server(&postgres.url()).await;
    let channel = server.channel.clone();
    let mut watch = HealthClient::new(channel.clone())
        .watch(HealthCheckRequest { service: String::new() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(watch.message().await.unwrap().unwrap().status(), ServingStatus::Serving);

    // Block inserts into partners, so the creates below are certainly in flight at SIGTERM.
    let blocker = sea_orm::Database::connect(&postgres.url()).await.unwrap();
    let lock = blocker.begin().await.unwrap();
    lock.execute_unprepared("LOCK TABLE partners IN EXCLUSIVE MODE").await.unwrap();
    let calls: Vec<_> = (0..IN_FLIGHT)
        .map(|_| {
            let mut client = operator(channel.clone());
            tokio::spawn(async move { client.create_partner(new_partner()).await })
        })
        .collect();
    until_waiting_on_locks(&blocker, IN_FLIGHT as i64).await;

    server.terminate();
    let mut status = ServingStatus::Serving;
    while status == ServingStatus::Serving {
        status = watch.message().await.unwrap().expect("watch ended before NOT_SERVING").status();
    }
    assert_eq!(status, ServingStatus::NotServing);
    drop(watch);
    lock.commit().await.unwrap();

    for call in calls {
        let created = call.await.unwrap();
        assert!(created.is_ok(), "an in-flight call was cut off: {created:?}");
    }
    let exit = tokio::time::timeout(Duration::from_secs(30), server.wait()).await.expect("exits");
    assert!(exit.success(), "exit status {exit}");
}

/// A request carrying `token`.
fn with_token<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

#[tokio::test]
async fn the_demo_fills_an_empty_database_and_its_tokens_show_each_principal_its_data() {
    use pc_api::channel::v1::{
        ListSubscriptionsRequest, ListSupportAssignmentsRequest, ListTransfersRequest,
        channel_service_client::ChannelServiceClient, support_assignment::State as AssignmentState,
        transfer::State as TransferState,
    };
    let file = std::env::temp_dir().join(format!("pc_demo_{}.db", uuid::Uuid::new_v4().simple()));
    let url = format!("sqlite://{}?mode=rwc", file.display());
    let demo = || {
        Command::new(env!("CARGO_BIN_EXE_partner-center"))
            .arg("demo")
            .env("DATABASE_URL", &url)
            .env("AUTH_JWT_SECRET", SECRET)
            .output()
            .expect("run the demo")
    };
    let output = demo();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let exports = stdout.lines().find(|line| line.starts_with("export OPERATOR_TOKEN=")).expect("an export line");
    let token = |name: &str| -> String {
        exports
            .trim_start_matches("export ")
            .split(' ')
            .find_map(|pair| pair.strip_prefix(&format!("{name}_TOKEN=")))
            .unwrap_or_else(|| panic!("no {name}_TOKEN in {exports}"))
            .to_owned()
    };
    assert!(!stdout.contains("AUTH_JWT_SECRET='"), "a configured secret is not printed");

    let server = start_server(&url).await;
    let channel = server.channel.clone();
    let mut partners = PartnerServiceClient::new(channel.clone());
    let listed = partners
        .list_partners(with_token(pc_api::partner::v1::ListPartnersRequest::default(), &token("OPERATOR")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.partners.len(), 5, "four global partners and one in the Germany cloud");
    let mut subscriptions = ChannelServiceClient::new(channel);
    let sold = |who: &str| with_token(ListSubscriptionsRequest::default(), &token(who));
    // Litware took one over from Adatum, supports the one bought from the vendor, and reads all of
    // Contoso's as its support engineer (rule 13).
    let counts = [("NORTHWIND", 1), ("FABRIKAM", 1), ("ADATUM", 1), ("LITWARE", 4), ("TAILSPIN", 1), ("CONTOSO", 4)];
    for (who, count) in counts {
        let seen = subscriptions.list_subscriptions(sold(who)).await.unwrap().into_inner().subscriptions;
        assert_eq!(seen.len(), count, "{who} sees {seen:?}");
    }
    let support = subscriptions
        .list_support_assignments(with_token(ListSupportAssignmentsRequest::default(), &token("LITWARE")))
        .await
        .unwrap()
        .into_inner()
        .support_assignments;
    assert_eq!(support.iter().map(|a| a.state()).collect::<Vec<_>>(), vec![AssignmentState::Active]);
    let transfers = subscriptions
        .list_transfers(with_token(ListTransfersRequest::default(), &token("CONTOSO")))
        .await
        .unwrap()
        .into_inner()
        .transfers;
    let states: Vec<_> = transfers.iter().map(|t| t.state()).collect();
    assert_eq!(states, [TransferState::Accepted, TransferState::Pending], "one accepted and one pending transfer");
    let admin =
        pc_api::relationship::v1::relationship_service_client::RelationshipServiceClient::new(server.channel.clone())
            .list_admin_relationships(with_token(
                pc_api::relationship::v1::ListAdminRelationshipsRequest::default(),
                &token("CONTOSO"),
            ))
            .await
            .unwrap()
            .into_inner()
            .admin_relationships;
    let states: Vec<_> = admin.iter().map(|a| a.state()).collect();
    use pc_api::relationship::v1::admin_relationship::State as AdminState;
    assert_eq!(states, [AdminState::Active, AdminState::ApprovalPending], "one granted, one waiting for approval");

    let again = demo();
    assert!(!again.status.success(), "a second demo run must refuse a database with data");
    std::fs::remove_file(&file).ok();
}

#[test]
fn logs_carry_no_colour_codes_when_stderr_is_not_a_terminal() {
    let file = std::env::temp_dir().join(format!("pc_logs_{}.db", uuid::Uuid::new_v4().simple()));
    let output = Command::new(env!("CARGO_BIN_EXE_partner-center"))
        .arg("migrate")
        .env("DATABASE_URL", format!("sqlite://{}?mode=rwc", file.display()))
        .env("RUST_LOG", "info")
        .output()
        .expect("run migrate");
    let logs = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success() && logs.contains("migrations applied"), "{logs}");
    assert!(!logs.contains('\u{1b}'), "ANSI escape codes in piped logs: {logs:?}");
    std::fs::remove_file(&file).ok();
}

/// An OTLP/HTTP trace receiver on a free local port: every export request's body, decoded.
async fn otlp_receiver() -> (
    SocketAddr,
    tokio::sync::mpsc::UnboundedReceiver<opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest>,
) {
    use prost::Message;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (sent, received) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let sent = sent.clone();
            tokio::spawn(async move {
                let mut buffer = Vec::new();
                let mut chunk = [0u8; 8192];
                loop {
                    // One request per read-until-complete: head, then content-length bytes.
                    let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") else {
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                        }
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buffer[..end]).to_lowercase();
                    let length = head
                        .lines()
                        .find_map(|line| line.strip_prefix("content-length:"))
                        .and_then(|value| value.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    while buffer.len() < end + 4 + length {
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let body: Vec<u8> = buffer.drain(..end + 4 + length).skip(end + 4).collect();
                    if let Ok(request) =
                        opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest::decode(&body[..])
                    {
                        let _ = sent.send(request);
                    }
                    let reply = "HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n";
                    if stream.write_all(reply.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, received)
}

/// The caller's trace context that [`traced_run`] sends with its CreatePartner.
const CALLER_TRACE: (&str, &str) = ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7");

/// Runs the binary with traces exported to a receiver of the test's own, at log level `rust_log`:
/// a few health checks, then one CreatePartner under [`CALLER_TRACE`], then SIGTERM. Returns every
/// span exported and the process's log.
async fn traced_run(rust_log: &str) -> (Vec<opentelemetry_proto::tonic::trace::v1::Span>, String) {
    let (collector, mut exports) = otlp_receiver().await;
    let file = std::env::temp_dir().join(format!("pc_traces_{}.db", uuid::Uuid::new_v4().simple()));
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_partner-center"))
        .env("DATABASE_URL", format!("sqlite://{}?mode=rwc", file.display()))
        .env("AUTH_JWT_SECRET", SECRET)
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", rust_log)
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{collector}"))
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .env_remove(pc_server::telemetry::TRACES_FILTER_VAR)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start partner-center");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr: SocketAddr = loop {
        let line = lines.next_line().await.unwrap().expect("partner-center exited before listening");
        if let Some(addr) = line.strip_prefix("partner-center listening on ") {
            break addr.parse().unwrap();
        }
    };
    let channel = Channel::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap();
    for _ in 0..3 {
        assert_eq!(health_of(&channel).await, Some(ServingStatus::Serving));
    }

    let (trace_id, caller_span) = CALLER_TRACE;
    let mut request = Request::new(new_partner());
    let token = TokenIssuer::new(SECRET).mint("operator", Duration::from_secs(600)).unwrap();
    request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    request.metadata_mut().insert("traceparent", format!("00-{trace_id}-{caller_span}-01").parse().unwrap());
    PartnerServiceClient::new(channel).create_partner(request).await.expect("create a partner");

    // Spans leave in batches every 100 ms; SIGTERM flushes the rest.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pid = child.id().unwrap().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let output = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output()).await.unwrap().unwrap();
    assert!(output.status.success());
    let mut spans = Vec::new();
    while let Ok(export) = exports.try_recv() {
        for resource in export.resource_spans {
            for scope in resource.scope_spans {
                spans.extend(scope.spans);
            }
        }
    }
    std::fs::remove_file(&file).ok();
    (spans, String::from_utf8_lossy(&output.stderr).into_owned())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The one span named `name` among `spans`.
fn only_span<'a>(
    spans: &'a [opentelemetry_proto::tonic::trace::v1::Span],
    name: &str,
) -> &'a opentelemetry_proto::tonic::trace::v1::Span {
    let names: Vec<_> = spans.iter().map(|span| span.name.as_str()).collect();
    let mut named = spans.iter().filter(|span| span.name == name);
    let span = named.next().unwrap_or_else(|| panic!("no span {name} among {names:?}"));
    assert!(named.next().is_none(), "more than one span {name} among {names:?}");
    span
}

#[tokio::test]
async fn spans_go_to_the_otlp_endpoint_under_the_callers_trace_with_a_child_per_transaction() {
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    let (spans, logs) = traced_run("info").await;
    let (trace_id, caller_span) = CALLER_TRACE;
    let names: Vec<_> = spans.iter().map(|span| span.name.clone()).collect();
    let rpc = only_span(&spans, "partnercenter.partner.v1.PartnerService/CreatePartner");
    assert_eq!(hex(&rpc.trace_id), trace_id, "the caller's trace");
    assert_eq!(hex(&rpc.parent_span_id), caller_span, "the caller's span is the parent");
    let attribute = |key: &str| {
        rpc.attributes.iter().find(|kv| kv.key == key).and_then(|kv| kv.value.clone()).and_then(|v| v.value)
    };
    assert_eq!(attribute("rpc.system"), Some(Value::StringValue("grpc".into())));
    assert_eq!(attribute("rpc.service"), Some(Value::StringValue("partnercenter.partner.v1.PartnerService".into())));
    assert_eq!(attribute("rpc.method"), Some(Value::StringValue("CreatePartner".into())));
    assert_eq!(attribute("principal.kind"), Some(Value::StringValue("operator".into())));
    assert_eq!(attribute("rpc.grpc.status_code"), Some(Value::IntValue(0)));
    let transaction = only_span(&spans, "db.transaction");
    assert_eq!(transaction.parent_span_id, rpc.span_id, "the transaction is a child of the RPC");
    // One trace per call: nothing else was exported, and the health checks exported nothing.
    assert_eq!(spans.len(), 2, "exactly the RPC and its transaction: {names:?}");
    assert!(spans.iter().all(|span| hex(&span.trace_id) == trace_id), "a span outside the caller's trace: {names:?}");

    let enrolled = logs.lines().find(|line| line.contains("partner enrolled")).unwrap_or_else(|| panic!("{logs}"));
    assert!(enrolled.contains(trace_id), "the log line carries the trace id: {enrolled}");
}

#[tokio::test]
async fn a_quiet_log_still_exports_every_calls_trace() {
    let (spans, logs) = traced_run("warn").await;
    let rpc = only_span(&spans, "partnercenter.partner.v1.PartnerService/CreatePartner");
    assert_eq!(hex(&rpc.trace_id), CALLER_TRACE.0);
    let transaction = only_span(&spans, "db.transaction");
    assert_eq!(transaction.parent_span_id, rpc.span_id);
    assert!(!logs.contains("partner enrolled"), "the log kept its own level: {logs}");
}

/// What `serve` prints on stdout before it listens, run with `env` and no AUTH_JWT_SECRET.
async fn printed_before_listening(env: &[(&str, &str)]) -> Vec<String> {
    let file = std::env::temp_dir().join(format!("pc_printed_{}.db", uuid::Uuid::new_v4().simple()));
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_partner-center"))
        .arg("serve")
        .env("DATABASE_URL", format!("sqlite://{}?mode=rwc", file.display()))
        .env_remove("AUTH_JWT_SECRET")
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start partner-center");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = Vec::new();
    loop {
        let line = lines.next_line().await.unwrap().expect("partner-center exited before listening");
        if line.starts_with("partner-center listening on ") {
            break;
        }
        printed.push(line);
    }
    child.kill().await.ok();
    for suffix in ["", "-wal", "-shm"] {
        std::fs::remove_file(format!("{}{suffix}", file.display())).ok();
    }
    printed
}

#[tokio::test]
async fn serve_prints_an_operator_token_only_when_it_would_accept_it() {
    let printed = printed_before_listening(&[]).await;
    assert!(printed.iter().any(|line| line.starts_with("export TOKEN=")), "{printed:?}");

    // Tokens come from an identity provider: a token signed with the made-up secret would be
    // refused, so none is printed.
    let keys = std::env::temp_dir().join(format!("pc_jwks_{}.json", uuid::Uuid::new_v4().simple()));
    std::fs::write(&keys, r#"{"keys":[]}"#).unwrap();
    let printed = printed_before_listening(&[("AUTH_JWKS_FILE", keys.to_str().unwrap())]).await;
    std::fs::remove_file(&keys).ok();
    assert!(!printed.iter().any(|line| line.contains("TOKEN")), "{printed:?}");
    assert!(printed.iter().any(|line| line.contains("identity provider")), "{printed:?}");
}
