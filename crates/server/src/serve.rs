//! Serving: one listener, the partner-center services behind authentication, and health and
//! reflection beside them without it; health follows the database; shutdown drains with a
//! deadline because tonic's own graceful shutdown waits forever on a stuck call.

use std::{future::Future, time::Duration};

use pc_domain::Error;
use pc_store::Database;
use tokio::{net::TcpListener, sync::oneshot};
use tokio_stream::StreamExt;
use tonic::{
    service::RoutesBuilder,
    transport::{ServerTlsConfig, server::TcpIncoming},
};
use tonic_health::{ServingStatus, server::HealthReporter};

use crate::{
    admission::{AdmissionLayer, AdmissionPolicy},
    connection_age::AgingConnection,
};

/// How often health re-checks the database.
const DB_CHECK_INTERVAL: Duration = Duration::from_secs(2);

/// The partner-center services a binary serves, with their fully-qualified names for health.
#[derive(Default)]
pub struct ServiceRoutes {
    pub routes: RoutesBuilder,
    pub names: Vec<&'static str>,
    /// The lifecycles of the services, which this process's expiry engine runs over.
    pub expiring: Vec<crate::expiry::Expiring>,
}

impl std::fmt::Debug for ServiceRoutes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceRoutes").field("names", &self.names).finish()
    }
}

/// How a server runs beyond its services.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// How long in-flight calls may finish after shutdown begins (and after a connection has
    /// reached its `max_connection_age`).
    pub drain: Duration,
    /// Serve TLS (and require client certificates, if it names a client CA).
    pub tls: Option<ServerTlsConfig>,
    /// Which calls run, and for how long.
    pub admission: AdmissionPolicy,
    /// Calls one HTTP/2 connection may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS).
    pub max_concurrent_streams: u32,
    /// The most header bytes one call may send (SETTINGS_MAX_HEADER_LIST_SIZE).
    pub max_header_list_size: u32,
    /// Pings on a quiet connection, and how long one may go unanswered before it is closed.
    pub http2_keepalive_interval: Option<Duration>,
    pub http2_keepalive_timeout: Duration,
    /// Connections older than this are asked to go away (GOAWAY) and reconnect; the calls they
    /// carry get `drain` to finish before the connection is closed.
    pub max_connection_age: Option<Duration>,
    /// How often expired idempotency keys are deleted.
    pub key_sweep_interval: Duration,
    /// How often the expiry engine looks for what passed its deadline ([`crate::expiry`]).
    pub expiry_interval: Duration,
}

/// Serves `services` on `listener` until `shutdown` resolves, then marks health NOT_SERVING, stops
/// accepting, and gives in-flight calls `options.drain` to finish. With `health_listener`, health
/// is also served there, apart ([`serve_health_apart`]).
pub async fn serve(
    listener: TcpListener,
    health_listener: Option<std::net::TcpListener>,
    services: ServiceRoutes,
    db: Database,
    shutdown: impl Future<Output = ()> + Send,
    options: ServeOptions,
) -> Result<(), Error> {
    let drain = options.drain;
    let addr = listener.local_addr().map_err(Error::internal)?;
    let (health, health_service) = tonic_health::server::health_reporter();
    set_status(&health, &services.names, ServingStatus::Serving).await;
    let (stop_health, health_stopped) = oneshot::channel::<()>();
    if let Some(listener) = health_listener {
        serve_health_apart(listener, health_service.clone(), health_stopped).map_err(Error::internal)?;
    }

    let reflection = |builder: tonic_reflection::server::Builder<'static>| {
        let mut builder = builder
            .register_encoded_file_descriptor_set(pc_api::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
            .with_service_name("grpc.health.v1.Health");
        for name in &services.names {
            builder = builder.with_service_name(*name);
        }
        builder
    };
    let reflection_v1 = reflection(tonic_reflection::server::Builder::configure())
        .with_service_name("grpc.reflection.v1.ServerReflection")
        .build_v1()
        .map_err(Error::internal)?;
    let reflection_v1alpha = reflection(tonic_reflection::server::Builder::configure())
        .with_service_name("grpc.reflection.v1alpha.ServerReflection")
        .build_v1alpha()
        .map_err(Error::internal)?;

    let sweeper = tokio::spawn(forget_expired(db.clone(), options.key_sweep_interval));
    let expiry = tokio::spawn(crate::expiry::run_every(db.clone(), services.expiring.clone(), options.expiry_interval));
    let monitor = tokio::spawn(follow_database(health.clone(), services.names.clone(), db));

    let (stop_accepting, stopped) = oneshot::channel::<()>();
    let mut builder = tonic::transport::Server::builder()
        .max_concurrent_streams(options.max_concurrent_streams)
        .http2_max_header_list_size(options.max_header_list_size)
        .http2_keepalive_interval(options.http2_keepalive_interval)
        .http2_keepalive_timeout(Some(options.http2_keepalive_timeout))
        // The kernel's probes find a peer that vanished while its connection was quiet and unpinged.
        .tcp_keepalive(Some(Duration::from_secs(60)));
    // GOAWAY at the age (tonic), then `drain` for the calls under way before the connection is
    // closed ([`AgingConnection`]; tonic's own grace would skip the GOAWAY).
    if let Some(age) = options.max_connection_age {
        builder = builder.max_connection_age(age);
    }
    let lifetime = options.max_connection_age.map(|age| age + drain);
    if let Some(tls) = options.tls {
        builder = builder.tls_config(tls).map_err(|e| Error::internal(format!("TLS configuration: {e}")))?;
    }
    let server = builder
        // No span here: each partner-center call makes its own (`telemetry::rpc_span`), and health
        // and reflection make none.
        .layer(AdmissionLayer::new(options.admission))
        .add_routes(services.routes.routes())
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        // Nagle's algorithm on accepted sockets held small responses back until the client's delayed
        // ACK (a 40 ms tail on every latency figure); tonic only disables it on listeners it binds.
        .serve_with_incoming_shutdown(
            TcpIncoming::from(listener)
                .with_nodelay(Some(true))
                .map(move |accepted| accepted.map(|stream| AgingConnection::new(stream, lifetime))),
            async {
                // A dropped sender also stops the server.
                let _ = stopped.await;
            },
        );
    tracing::info!(
        %addr,
        services = ?services.names,
        max_in_flight = options.admission.max_in_flight,
        call_timeout = ?options.admission.call_timeout,
        "serving"
    );
    tokio::pin!(server);

    let result = tokio::select! {
        result = &mut server => result,
        () = shutdown => {
            monitor.abort();
            set_status(&health, &services.names, ServingStatus::NotServing).await;
            let _ = stop_accepting.send(());
            match tokio::time::timeout(drain, &mut server).await {
                Ok(result) => result,
                Err(_) => {
                    tracing::warn!(deadline = ?drain, "in-flight calls did not finish before the deadline");
                    Ok(())
                }
            }
        }
    };
    monitor.abort();
    sweeper.abort();
    expiry.abort();
    let _ = stop_health.send(());
    tracing::info!(%addr, "stopped");
    result.map_err(Error::internal)
}

/// Serves `grpc.health.v1` on `listener` from a thread and a runtime of its own
/// (`HEALTH_LISTEN_ADDR`), until `stop`. Under a burst the services' runtime has thousands of
/// calls queued, and a probe on the main port waits its turn behind them; this one is answered as
/// soon as the OS schedules its thread. What it reports is the same status (the database
/// monitor's); what it cannot see is a main runtime that has stopped making progress, which the
/// main port's health, served there, still shows. (Linkerd's proxy serves its admin port apart
/// the same way.) Plain text even when the main port speaks TLS: it is for probes from inside the
/// pod or host, and says nothing but SERVING or NOT_SERVING; bind it to a private address.
fn serve_health_apart<S>(
    listener: std::net::TcpListener,
    health: tonic_health::pb::health_server::HealthServer<S>,
    stop: oneshot::Receiver<()>,
) -> std::io::Result<()>
where
    S: tonic_health::pb::health_server::Health,
{
    let addr = listener.local_addr()?;
    listener.set_nonblocking(true)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    std::thread::Builder::new().name("health".into()).spawn(move || {
        let served = runtime.block_on(async move {
            let listener = TcpListener::from_std(listener)?;
            tracing::info!(%addr, "serving health apart");
            tonic::transport::Server::builder()
                .add_service(health)
                .serve_with_incoming_shutdown(TcpIncoming::from(listener).with_nodelay(Some(true)), async {
                    let _ = stop.await;
                })
                .await
                .map_err(std::io::Error::other)
        });
        if let Err(error) = served {
            tracing::error!(%error, %addr, "the health listener failed");
        }
    })?;
    Ok(())
}

async fn set_status(health: &HealthReporter, names: &[&'static str], status: ServingStatus) {
    health.set_service_status("", status).await;
    for name in names {
        health.set_service_status(*name, status).await;
    }
}

/// Deletes idempotency keys past their window, and events past their retention
/// ([`pc_store::audit::forget_old_events`]), a while after startup and then every `interval`.
/// Requests never wait for it: a request that finds an expired key forgets it itself. Every
/// replica sweeps, with no coordination: each key and event is deleted by exactly one of them
/// (the others find it gone), which the counters `partner_center_idempotency_keys_forgotten_total`
/// and `partner_center_events_forgotten_total`, summed over replicas, show.
async fn forget_expired(db: Database, interval: Duration) {
    // The first sweep comes a random while after startup, not at once: replicas started together
    // spread their sweeps, and a process that has just started has other work first.
    let first = interval.mul_f64(rand::random_range(0.1..1.0));
    let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + first, interval);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let keys = pc_store::idempotency::forget_expired(&db).await;
        report_sweep("expired idempotency keys", keys, crate::metrics::keys_forgotten);
        let events = pc_store::audit::forget_old_events(&db).await;
        report_sweep("events past their retention", events, crate::metrics::events_forgotten);
    }
}

/// Counts and logs what one sweep of `what` deleted, or why it could not.
fn report_sweep(what: &str, swept: Result<u64, Error>, count: fn(u64)) {
    match swept {
        Ok(0) => {}
        Ok(deleted) => {
            count(deleted);
            tracing::info!(deleted, "deleted {what}");
        }
        Err(error) => tracing::warn!(%error, "could not delete {what}"),
    }
}

/// Keeps health in step with the database: NOT_SERVING while it cannot be reached.
async fn follow_database(health: HealthReporter, names: Vec<&'static str>, db: Database) {
    let mut serving = true;
    let mut interval = tokio::time::interval(DB_CHECK_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let reachable = pc_store::db::ping(&db).await;
        if reachable != serving {
            serving = reachable;
            if serving {
                tracing::info!("database reachable again, serving");
            } else {
                tracing::warn!("database unreachable, health is NOT_SERVING");
            }
            let status = if serving { ServingStatus::Serving } else { ServingStatus::NotServing };
            set_status(&health, &names, status).await;
        }
    }
}
