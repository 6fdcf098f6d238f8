//! Prometheus metrics, served over HTTP on `METRICS_ADDR` when it is set (off otherwise: nothing
//! is recorded until a recorder is installed, and the `metrics` macros are then no-ops).
//!
//! Figures are recorded with the `metrics` facade where they happen and rendered in Prometheus'
//! text format by `metrics-exporter-prometheus`; this module serves that text (`GET` on any path)
//! with hyper. The recorder is process-wide, as the facade's is: every server in the process (the
//! test harness runs several) records into it.
//!
//! | metric | type | labels |
//! | --- | --- | --- |
//! | `partner_center_rpc_requests_total` | counter | `service`, `method`, `code` (gRPC code name) |
//! | `partner_center_rpc_duration_seconds` | histogram | `service`, `method` |
//! | `partner_center_rpc_in_flight` | gauge | |
//! | `partner_center_rate_limited_total` | counter | |
//! | `partner_center_rate_limit_shared` | gauge | (1: limits kept in Redis; 0: Redis unreachable) |
//! | `partner_center_shed_total` | counter | (calls refused at `MAX_IN_FLIGHT`) |
//! | `partner_center_deadline_exceeded_total` | counter | |
//! | `partner_center_db_pool_connections` | gauge | `pool` (`primary`, `reader`), `state` (`idle`, `in_use`) |
//! | `partner_center_db_acquire_seconds` | histogram | (the wait for a pooled connection and BEGIN) |
//! | `partner_center_point_read_connections` | gauge | (PostgreSQL connections of the pipelined Gets) |

use std::{
    convert::Infallible,
    sync::OnceLock,
    time::{Duration, Instant},
};

use http_body_util::Full;
use hyper::{Response, body::Bytes, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use pc_store::Database;
use tokio::net::TcpListener;
use tonic::{Code, Status};

/// Latency buckets, in seconds: from a cached read to a slow write.
const DURATION_BUCKETS: &[f64] = &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

static RECORDER: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();

/// The process's recorder, installed on first use: by [`crate::App::build`], before any figure
/// is recorded, when metrics are served.
pub(crate) fn install() -> Result<PrometheusHandle, String> {
    RECORDER
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets(DURATION_BUCKETS)
                .map_err(|e| e.to_string())?
                .install_recorder()
                .map_err(|e| format!("cannot install the metrics recorder: {e}"))
                .inspect(|_| describe())
        })
        .clone()
}

/// The HELP text of every metric (the table above).
fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!("partner_center_rpc_requests_total", "Calls answered, by service, method and gRPC code.");
    describe_histogram!(
        "partner_center_rpc_duration_seconds",
        Unit::Seconds,
        "Time from a call's arrival in its handler to its answer, by service and method."
    );
    describe_gauge!("partner_center_rpc_in_flight", "Calls being answered now.");
    describe_counter!("partner_center_rate_limited_total", "Calls refused by the per-principal rate limit.");
    describe_gauge!(
        "partner_center_rate_limit_shared",
        "1 while rate limits are kept in Redis for every replica, 0 while Redis is unreachable."
    );
    describe_counter!("partner_center_shed_total", "Calls refused at once because MAX_IN_FLIGHT calls were running.");
    describe_counter!("partner_center_deadline_exceeded_total", "Calls answered DEADLINE_EXCEEDED.");
    describe_gauge!(
        "partner_center_replica_in_use",
        "1 while Lists read the read replica (within REPLICA_MAX_LAG_MS), 0 while they read the primary."
    );
    describe_gauge!(
        "partner_center_replica_staleness_seconds",
        Unit::Seconds,
        "How far the read replica was behind the primary at the last measurement."
    );
    describe_counter!(
        "partner_center_idempotency_keys_forgotten_total",
        "Expired idempotency keys this replica's sweeps deleted."
    );
    describe_counter!(
        "partner_center_events_forgotten_total",
        "Events past their retention (EVENT_RETENTION_HOURS) this replica's sweeps deleted."
    );
    describe_counter!(
        "partner_center_expired_total",
        "Waiting resources this replica's expiry engine marked EXPIRED past their deadline, by kind."
    );
    describe_gauge!("partner_center_db_pool_connections", "Pooled database connections, by pool and state.");
    describe_histogram!(
        "partner_center_db_acquire_seconds",
        Unit::Seconds,
        "Time to get a pooled connection and begin a transaction."
    );
    describe_gauge!("partner_center_point_read_connections", "Open PostgreSQL connections of the pipelined Gets.");
}

/// Serves the metrics on `listener` for as long as the process runs, and refreshes the gauges
/// that are read rather than recorded (the pools) every second.
pub fn serve(listener: TcpListener, db: Database) -> Result<(), String> {
    let handle = install()?;
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(1));
        loop {
            every.tick().await;
            for stats in db.pool_stats() {
                let in_use = f64::from(stats.size) - stats.idle as f64;
                metrics::gauge!("partner_center_db_pool_connections", "pool" => stats.pool, "state" => "idle")
                    .set(stats.idle as f64);
                metrics::gauge!("partner_center_db_pool_connections", "pool" => stats.pool, "state" => "in_use")
                    .set(in_use.max(0.0));
            }
            upkeep.run_upkeep();
        }
    });
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let handle = handle.clone();
            tokio::spawn(async move {
                let render = service_fn(move |_request| {
                    let body = handle.render();
                    async move {
                        let mut response = Response::new(Full::new(Bytes::from(body)));
                        let text = hyper::header::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8");
                        response.headers_mut().insert(hyper::header::CONTENT_TYPE, text);
                        Ok::<_, Infallible>(response)
                    }
                });
                if let Err(error) = http1::Builder::new().serve_connection(TokioIo::new(stream), render).await {
                    tracing::debug!(%error, "metrics connection ended");
                }
            });
        }
    });
    Ok(())
}

/// Runs one RPC inside `span` (`crate::telemetry::rpc_span`) and records it: in flight while it
/// runs, then its count by code and its latency, and its code on the span.
pub async fn observe<T>(
    service: &'static str,
    method: &'static str,
    span: tracing::Span,
    call: impl Future<Output = Result<T, Status>>,
) -> Result<T, Status> {
    use tracing::Instrument;
    let in_flight = metrics::gauge!("partner_center_rpc_in_flight");
    in_flight.increment(1.0);
    let started = Instant::now();
    let result = call.instrument(span.clone()).await;
    in_flight.decrement(1.0);
    let code = result.as_ref().map_or_else(Status::code, |_| Code::Ok);
    span.record("rpc.grpc.status_code", code as i32);
    let code = code_name(code);
    metrics::counter!("partner_center_rpc_requests_total", "service" => service, "method" => method, "code" => code)
        .increment(1);
    metrics::histogram!("partner_center_rpc_duration_seconds", "service" => service, "method" => method)
        .record(started.elapsed().as_secs_f64());
    result
}

/// A call refused by the per-principal rate limit.
pub fn rate_limited() {
    metrics::counter!("partner_center_rate_limited_total").increment(1);
}

/// Whether per-principal rate limits are kept in Redis for every replica (1) or, Redis being
/// unreachable, per process (0). Absent without `RATE_LIMIT_REDIS_URL`.
pub fn rate_limit_shared(shared: bool) {
    metrics::gauge!("partner_center_rate_limit_shared").set(if shared { 1.0 } else { 0.0 });
}

/// A call shed because the server was running its limit of calls ([`crate::admission`]).
pub fn shed() {
    metrics::counter!("partner_center_shed_total").increment(1);
}

/// A call answered DEADLINE_EXCEEDED: its deadline passed before or while it ran.
pub fn deadline_exceeded() {
    metrics::counter!("partner_center_deadline_exceeded_total").increment(1);
}

/// Events past their retention one sweep deleted.
pub fn events_forgotten(deleted: u64) {
    metrics::counter!("partner_center_events_forgotten_total").increment(deleted);
}

/// Waiting resources of `kind` (`reseller_link`) one expiry pass marked EXPIRED.
pub fn expired(kind: String, count: u64) {
    metrics::counter!("partner_center_expired_total", "kind" => kind).increment(count);
}

/// Expired idempotency keys one sweep deleted.
pub fn keys_forgotten(deleted: u64) {
    metrics::counter!("partner_center_idempotency_keys_forgotten_total").increment(deleted);
}

/// The gRPC name of `code`, as the `code` label spells it.
fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}
