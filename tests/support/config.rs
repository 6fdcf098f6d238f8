#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

//! The configuration a test server gets, and the fresh database it runs over.

use std::{net::SocketAddr, path::PathBuf, sync::Arc};

use pc_server::ServerConfig;
use pc_store::ConnectionTrait;

use crate::{TEST_SECRET, TestApp, identity::IdentityProvider};

/// How a test server differs from the default.
#[derive(Default)]
pub struct AppOptions {
    /// Verify tokens with this provider's key set instead of the shared secret; the harness's
    /// tokens are then signed with its signing key.
    pub identity: Option<Arc<IdentityProvider>>,
    /// Serve Prometheus metrics on a free local port ([`TestApp::metrics_addr`]).
    pub metrics: bool,
    /// Calls per second and burst per principal.
    pub rate_limit: Option<(u32, u32)>,
    /// Serve TLS with these PEM files' contents (written to files, as a deployment configures them).
    pub tls: Option<TlsPem>,
    /// Calls the server runs at once (`MAX_IN_FLIGHT`); the default derives it.
    pub max_in_flight: Option<u32>,
    /// The longest call (`CALL_TIMEOUT_SECS`); 30 s unless set.
    pub call_timeout_secs: Option<u64>,
    /// Close client connections after this many seconds (`MAX_CONNECTION_AGE_SECS`, plus the
    /// drain); none unless set.
    pub max_connection_age_secs: Option<u64>,
    /// Serve health apart on a free local port too ([`TestApp::health_addr`]).
    pub health_apart: bool,
    /// Keep the rate limits in this Redis (`RATE_LIMIT_REDIS_URL`).
    pub rate_limit_redis: Option<String>,
    /// Days every kind of waiting resource waits (the four `*_EXPIRY_DAYS`); 30 unless set.
    pub expiry_days: Option<u32>,
    /// Seconds between the server's expiry passes (`EXPIRY_INTERVAL_SECS`); an hour unless set, so
    /// that only the tests that ask for it see the server's own engine run (the others run passes
    /// themselves, at the time they choose).
    pub expiry_interval_secs: Option<u64>,
}

/// A server certificate chain and key, and optionally a client CA that makes it require client
/// certificates, all PEM.
#[derive(Debug, Clone)]
pub struct TlsPem {
    pub cert: String,
    pub key: String,
    pub client_ca: Option<String>,
}

/// Where a test's database lives.
pub(crate) enum Backend {
    Sqlite { path: PathBuf },
    Postgres { admin_url: String, database: String },
}

/// The configuration a deployment would give, for a test server on a random port.
pub(crate) fn test_config(database_url: &str, options: &AppOptions, files: &mut Vec<PathBuf>) -> ServerConfig {
    let (rate_limit_per_second, rate_limit_burst) = options.rate_limit.unwrap_or((0, 100));
    let mut write = |suffix: &str, pem: &str| {
        let path = std::env::temp_dir().join(format!("pc_test_{}_{suffix}.pem", uuid::Uuid::new_v4().simple()));
        std::fs::write(&path, pem).expect("write a PEM file");
        files.push(path.clone());
        path
    };
    let tls = options.tls.as_ref();
    ServerConfig {
        listen_addr: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        database_url: Some(database_url.to_owned()),
        auth_jwt_secret: Some(TEST_SECRET.to_owned()),
        auth_jwks_url: options.identity.as_ref().map(|provider| provider.url.clone()),
        auth_jwks_file: None,
        // Every second, so a test sees a key the provider dropped leave within a second or two.
        auth_jwks_refresh_secs: 1,
        auth_issuer: options.identity.as_ref().map(|provider| provider.issuer.clone()),
        auth_audience: options.identity.as_ref().map(|provider| provider.audience.clone()),
        auth_principal_claim: "sub".to_owned(),
        db_max_connections: 8,
        shutdown_timeout_secs: 5,
        idempotency_key_ttl_hours: 168,
        idempotency_sweep_interval_secs: 600,
        event_retention_hours: 720,
        database_replica_url: None,
        replica_max_lag_ms: 1000,
        replica_read_timeout_ms: pc_server::config::DEFAULT_REPLICA_READ_TIMEOUT_MS,
        rate_limit_per_second,
        rate_limit_burst,
        tls_cert_file: tls.map(|tls| write("cert", &tls.cert)),
        tls_key_file: tls.map(|tls| write("key", &tls.key)),
        tls_client_ca_file: tls.and_then(|tls| tls.client_ca.as_deref()).map(|ca| write("client_ca", ca)),
        log_format: pc_server::LogFormat::Text,
        metrics_addr: options.metrics.then(|| SocketAddr::from(([127, 0, 0, 1], 0))),
        max_in_flight: options.max_in_flight.unwrap_or(0),
        max_concurrent_streams: pc_server::config::DEFAULT_MAX_CONCURRENT_STREAMS,
        max_header_list_bytes: pc_server::config::DEFAULT_MAX_HEADER_LIST_BYTES,
        call_timeout_secs: options.call_timeout_secs.unwrap_or(30),
        overload_retry_delay_ms: 250,
        http2_keepalive_interval_secs: 60,
        http2_keepalive_timeout_secs: 20,
        max_connection_age_secs: options.max_connection_age_secs.unwrap_or(0),
        health_listen_addr: options.health_apart.then(|| SocketAddr::from(([127, 0, 0, 1], 0))),
        rate_limit_redis_url: options.rate_limit_redis.clone(),
        reseller_link_expiry_days: options.expiry_days.unwrap_or(30),
        customer_relationship_expiry_days: options.expiry_days.unwrap_or(30),
        support_assignment_expiry_days: options.expiry_days.unwrap_or(30),
        transfer_expiry_days: options.expiry_days.unwrap_or(30),
        admin_relationship_expiry_days: options.expiry_days.unwrap_or(90),
        expiry_interval_secs: options.expiry_interval_secs.unwrap_or(3600),
    }
}

pub(crate) async fn fresh_database() -> (String, Backend) {
    let name = format!("pc_test_{}", uuid::Uuid::new_v4().simple());
    match std::env::var("PC_TEST_POSTGRES_URL") {
        Ok(admin_url) if !admin_url.is_empty() => {
            let admin = sea_orm::Database::connect(&admin_url)
                .await
                .unwrap_or_else(|e| panic!("PC_TEST_POSTGRES_URL={admin_url} is unreachable: {e}"));
            admin
                .execute_unprepared(&format!("CREATE DATABASE {name}"))
                .await
                .unwrap_or_else(|e| panic!("create database {name}: {e}"));
            admin.close().await.ok();
            let url = replace_database(&admin_url, &name);
            (url, Backend::Postgres { admin_url, database: name })
        }
        _ => {
            let path = std::env::temp_dir().join(format!("{name}.db"));
            (format!("sqlite://{}?mode=rwc", path.display()), Backend::Sqlite { path })
        }
    }
}

/// `postgres://user@host:port/db?x` with `db` replaced by `database`.
pub(crate) fn replace_database(url: &str, database: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[scheme_end..].find('/').map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{database}", &base[..host_end]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

impl TestApp {
    /// The URL of the server's database, for a test that needs a connection of its own (one that
    /// holds a lock the server must wait for, say).
    pub fn database_url(&self) -> String {
        match &self.backend {
            Backend::Sqlite { path } => format!("sqlite://{}?mode=rwc", path.display()),
            Backend::Postgres { admin_url, database } => replace_database(admin_url, database),
        }
    }

    /// Whether the server runs on PostgreSQL (else on SQLite).
    pub fn on_postgres(&self) -> bool {
        matches!(self.backend, Backend::Postgres { .. })
    }

    /// For a test that only means something on PostgreSQL (`why`): on SQLite it says it was
    /// skipped and returns true, so the test returns.
    pub fn skipped_without_postgres(&self, why: &str) -> bool {
        if !self.on_postgres() {
            eprintln!("{why}: this runs with PC_TEST_POSTGRES_URL");
        }
        !self.on_postgres()
    }
}

#[cfg(test)]
mod tests {
    use super::replace_database;

    #[test]
    fn database_names_are_swapped_in_urls() {
        assert_eq!(
            replace_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(replace_database("postgres://u@h/db?sslmode=disable", "x"), "postgres://u@h/x?sslmode=disable");
        assert_eq!(replace_database("postgres://u@h", "x"), "postgres://u@h/x");
    }
}
