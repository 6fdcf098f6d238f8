//! Configuration shared by every binary: environment variables (twelve-factor), each overridable
//! by the flag of the same name.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{Args, ValueEnum};
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

use crate::{
    Authenticator, ServeOptions,
    admission::AdmissionPolicy,
    auth::{
        ProviderClaims,
        jwks::{JwksSource, KeySet},
    },
    rate_limit::RateLimiter,
};

/// Shortest accepted HS256 secret: 256 bits, as RFC 7518 requires for HS256 keys.
pub const MIN_SECRET_BYTES: usize = 32;

/// Calls one HTTP/2 connection may have open at once unless `MAX_CONCURRENT_STREAMS` says
/// otherwise. 32, a third of RFC 9113's suggested 100, on purpose: the server reads and answers
/// every request a connection may send, the refused ones too, so connections x cap is what a
/// burst can hold in the process. At 50,000 calls in flight over 500 connections, against 64:
/// peak memory 95-113 MiB (64: 107-121), admitted calls as many and as fast, the slowest health
/// check on the main port about the same (README, Performance: Overload). One connection still
/// gets a fifth of what the process admits (`MAX_IN_FLIGHT`); a client that needs more opens
/// more connections.
pub const DEFAULT_MAX_CONCURRENT_STREAMS: u32 = 32;

/// The most header bytes one call may send unless `MAX_HEADER_LIST_BYTES` says otherwise: a
/// bearer token and gRPC's own headers need about 2 KiB; 16 KiB is hyper's default, written down
/// where it is decided. An identity provider whose tokens carry many groups or roles may need more.
pub const DEFAULT_MAX_HEADER_LIST_BYTES: u32 = 16 * 1024;

/// How long a List waits for the read replica unless `REPLICA_READ_TIMEOUT_MS` says otherwise:
/// a List answers in milliseconds, so a second is a replica that has stopped answering.
pub const DEFAULT_REPLICA_READ_TIMEOUT_MS: u64 = 1000;

#[derive(Debug, Clone, Args)]
pub struct ServerConfig {
    /// Address to listen on for gRPC.
    #[arg(long, env = "LISTEN_ADDR")]
    pub listen_addr: Option<SocketAddr>,

    /// Database URL: `postgres://user@host/db` or `sqlite://path?mode=rwc`.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,

    /// HS256 secret that signs and verifies bearer tokens (at least 32 bytes). With an identity
    /// provider's key set configured, it only signs page tokens.
    #[arg(long, env = "AUTH_JWT_SECRET", hide_env_values = true)]
    pub auth_jwt_secret: Option<String>,

    /// URL of the identity provider's JSON Web Key Set (e.g. `https://idp/.well-known/jwks.json`):
    /// bearer tokens are then verified with its keys (RS256, ES256, EdDSA), not the secret.
    #[arg(long, env = "AUTH_JWKS_URL")]
    pub auth_jwks_url: Option<String>,

    /// A JSON Web Key Set file, instead of AUTH_JWKS_URL (read again like the URL).
    #[arg(long, env = "AUTH_JWKS_FILE")]
    pub auth_jwks_file: Option<PathBuf>,

    /// Seconds between background reads of the key set.
    #[arg(long, env = "AUTH_JWKS_REFRESH_SECS", default_value_t = 300)]
    pub auth_jwks_refresh_secs: u64,

    /// The `iss` a provider's token must carry (unchecked when unset).
    #[arg(long, env = "AUTH_ISSUER")]
    pub auth_issuer: Option<String>,

    /// A value a provider's token's `aud` must hold (unchecked when unset).
    #[arg(long, env = "AUTH_AUDIENCE")]
    pub auth_audience: Option<String>,

    /// The claim of a provider's token that names the principal: `operator`, `partners/{id}` or
    /// `customers/{id}`.
    #[arg(long, env = "AUTH_PRINCIPAL_CLAIM", default_value = "sub")]
    pub auth_principal_claim: String,

    /// Most connections to PostgreSQL: one per CPU (at most half of them) pipelines the Gets'
    /// primary-key reads, the rest are the pool for transactions and Lists. On SQLite, the most
    /// read-only connections Lists use beside the one writer (Gets read inline).
    #[arg(long, env = "DB_MAX_CONNECTIONS", default_value_t = 16)]
    pub db_max_connections: u32,

    /// Seconds in-flight calls get to finish after SIGTERM before the process exits anyway.
    #[arg(long, env = "SHUTDOWN_TIMEOUT_SECS", default_value_t = 10)]
    pub shutdown_timeout_secs: u64,

    /// Hours a request_id is remembered: a retry within them replays the first answer, after
    /// them it runs anew. Older keys are deleted in the background.
    #[arg(long, env = "IDEMPOTENCY_KEY_TTL_HOURS", default_value_t = 168)]
    pub idempotency_key_ttl_hours: u64,

    /// A PostgreSQL streaming replica of DATABASE_URL that Lists read while it is within
    /// REPLICA_MAX_LAG_MS of the primary (everything else reads and writes the primary).
    #[arg(long, env = "DATABASE_REPLICA_URL")]
    pub database_replica_url: Option<String>,

    /// How far behind the primary a List read from the replica may be, in milliseconds.
    #[arg(long, env = "REPLICA_MAX_LAG_MS", default_value_t = 1000)]
    pub replica_max_lag_ms: u64,

    /// Milliseconds a List may wait for the read replica before it is read from the primary
    /// instead (and the replica left until measured again): a hung or partitioned replica costs
    /// that much, never a failed call.
    #[arg(long, env = "REPLICA_READ_TIMEOUT_MS", default_value_t = DEFAULT_REPLICA_READ_TIMEOUT_MS)]
    pub replica_read_timeout_ms: u64,

    /// Seconds between deletions of expired idempotency keys and of events past their retention.
    /// Every replica sweeps; a key or event is deleted by one of them.
    #[arg(long, env = "IDEMPOTENCY_SWEEP_INTERVAL_SECS", default_value_t = 600)]
    pub idempotency_sweep_interval_secs: u64,

    /// Hours the change feed keeps an event (EventService); older ones are deleted in the
    /// background, and a cursor before them is OUT_OF_RANGE (reason CURSOR_EXPIRED).
    #[arg(long, env = "EVENT_RETENTION_HOURS", default_value_t = 720)]
    pub event_retention_hours: u64,

    /// Days an INVITED reseller link waits for the reseller before it expires (rule 15).
    #[arg(long, env = "RESELLER_LINK_EXPIRY_DAYS", default_value_t = 30)]
    pub reseller_link_expiry_days: u32,

    /// Days a PENDING customer relationship waits for the customer before it expires.
    #[arg(long, env = "CUSTOMER_RELATIONSHIP_EXPIRY_DAYS", default_value_t = 30)]
    pub customer_relationship_expiry_days: u32,

    /// Days a REQUESTED support assignment waits for the customer before it expires.
    #[arg(long, env = "SUPPORT_ASSIGNMENT_EXPIRY_DAYS", default_value_t = 30)]
    pub support_assignment_expiry_days: u32,

    /// Days a PENDING transfer waits for the source partner before it expires.
    #[arg(long, env = "TRANSFER_EXPIRY_DAYS", default_value_t = 30)]
    pub transfer_expiry_days: u32,

    /// Days an APPROVAL_PENDING admin relationship waits for the customer before it expires.
    #[arg(long, env = "ADMIN_RELATIONSHIP_EXPIRY_DAYS", default_value_t = 90)]
    pub admin_relationship_expiry_days: u32,

    /// Seconds between passes of the expiry engine, which marks what passed its deadline EXPIRED
    /// (with its event). Every replica runs it; each resource expires once.
    #[arg(long, env = "EXPIRY_INTERVAL_SECS", default_value_t = 60)]
    pub expiry_interval_secs: u64,

    /// Calls each principal may make per second; 0 turns the limit off.
    #[arg(long, env = "RATE_LIMIT_PER_SECOND", default_value_t = 0)]
    pub rate_limit_per_second: u32,

    /// Calls a principal may make at once before the per-second rate applies.
    #[arg(long, env = "RATE_LIMIT_BURST", default_value_t = 100)]
    pub rate_limit_burst: u32,

    /// Redis to keep the rate limits in, shared by every replica (`redis://host:6379`); per
    /// process when unset, and while Redis cannot be reached.
    #[arg(long, env = "RATE_LIMIT_REDIS_URL")]
    pub rate_limit_redis_url: Option<String>,

    /// PEM certificate chain to serve TLS with (requires TLS_KEY_FILE).
    #[arg(long, env = "TLS_CERT_FILE")]
    pub tls_cert_file: Option<PathBuf>,

    /// PEM private key of TLS_CERT_FILE.
    #[arg(long, env = "TLS_KEY_FILE")]
    pub tls_key_file: Option<PathBuf>,

    /// PEM CA bundle; when set, clients must present a certificate it signed (mTLS).
    #[arg(long, env = "TLS_CLIENT_CA_FILE")]
    pub tls_client_ca_file: Option<PathBuf>,

    /// Calls running at once in the process; more are shed with RESOURCE_EXHAUSTED. 0: derived,
    /// 32 per CPU plus 4 per database connection.
    #[arg(long, env = "MAX_IN_FLIGHT", default_value_t = 0)]
    pub max_in_flight: u32,

    /// Concurrent HTTP/2 streams (calls) one connection may open, advertised in SETTINGS; a
    /// client queues the rest itself ([`DEFAULT_MAX_CONCURRENT_STREAMS`]).
    #[arg(long, env = "MAX_CONCURRENT_STREAMS", default_value_t = DEFAULT_MAX_CONCURRENT_STREAMS)]
    pub max_concurrent_streams: u32,

    /// Seconds any call may run: the deadline of a call whose client sets none (or a longer one),
    /// and PostgreSQL's statement_timeout.
    #[arg(long, env = "CALL_TIMEOUT_SECS", default_value_t = 30)]
    pub call_timeout_secs: u64,

    /// Milliseconds a shed call is told to wait before it retries (its RetryInfo).
    #[arg(long, env = "OVERLOAD_RETRY_DELAY_MS", default_value_t = 250)]
    pub overload_retry_delay_ms: u64,

    /// The most header bytes one call may send (SETTINGS_MAX_HEADER_LIST_SIZE), the bearer token
    /// included. A call over it is answered HTTP 431 (gRPC clients report UNKNOWN); far over it,
    /// the connection is closed.
    #[arg(long, env = "MAX_HEADER_LIST_BYTES", default_value_t = DEFAULT_MAX_HEADER_LIST_BYTES)]
    pub max_header_list_bytes: u32,

    /// Seconds between HTTP/2 pings on an idle connection; 0 sends none.
    #[arg(long, env = "HTTP2_KEEPALIVE_INTERVAL_SECS", default_value_t = 60)]
    pub http2_keepalive_interval_secs: u64,

    /// Seconds a ping may go unanswered before the connection is closed as dead.
    #[arg(long, env = "HTTP2_KEEPALIVE_TIMEOUT_SECS", default_value_t = 20)]
    pub http2_keepalive_timeout_secs: u64,

    /// Seconds after which a connection is asked to go away (GOAWAY), so a client reconnects and an
    /// L7 balancer can spread it anew; its calls then get SHUTDOWN_TIMEOUT_SECS to finish. 0: never.
    #[arg(long, env = "MAX_CONNECTION_AGE_SECS", default_value_t = 0)]
    pub max_connection_age_secs: u64,

    /// Address to serve grpc.health.v1 on as well, from a thread of its own: answered at once
    /// however many calls the services have queued (for an orchestrator's probes).
    #[arg(long, env = "HEALTH_LISTEN_ADDR")]
    pub health_listen_addr: Option<SocketAddr>,

    /// Address to serve Prometheus metrics on (`GET` on any path); off when unset.
    #[arg(long, env = "METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,

    /// Log format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

impl ServerConfig {
    pub fn idempotency_window(&self) -> Duration {
        Duration::from_secs(self.idempotency_key_ttl_hours.max(1).saturating_mul(3600))
    }

    pub fn event_retention(&self) -> Duration {
        Duration::from_secs(self.event_retention_hours.max(1).saturating_mul(3600))
    }

    /// How long each kind of waiting resource waits (at least a day each).
    pub fn expiry_windows(&self) -> pc_store::db::ExpiryWindows {
        let days = |days: u32| chrono::TimeDelta::days(i64::from(days.max(1)));
        pc_store::db::ExpiryWindows {
            reseller_link: days(self.reseller_link_expiry_days),
            customer_relationship: days(self.customer_relationship_expiry_days),
            support_assignment: days(self.support_assignment_expiry_days),
            transfer: days(self.transfer_expiry_days),
            admin_relationship: days(self.admin_relationship_expiry_days),
        }
    }

    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_secs(self.shutdown_timeout_secs)
    }

    /// The configured secret, refused when it is too short to be safe.
    pub fn jwt_secret(&self) -> Result<Option<&str>, String> {
        match self.auth_jwt_secret.as_deref() {
            Some(secret) if secret.len() < MIN_SECRET_BYTES => {
                Err(format!("AUTH_JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes"))
            }
            other => Ok(other),
        }
    }
}

impl ServerConfig {
    /// Where the identity provider's key set is read from, if tokens come from one.
    pub fn jwks_source(&self) -> Result<Option<JwksSource>, String> {
        let file = self.auth_jwks_file.clone().filter(|path| !path.as_os_str().is_empty());
        match (set(&self.auth_jwks_url), file) {
            (Some(_), Some(_)) => Err("set AUTH_JWKS_URL or AUTH_JWKS_FILE, not both".into()),
            (Some(url), None) => Ok(Some(JwksSource::Url(url))),
            (None, Some(path)) => Ok(Some(JwksSource::File(path))),
            (None, None) => Ok(None),
        }
    }

    /// The authenticator: the identity provider's key set when one is configured (read now and
    /// then in the background), else the shared `secret`; with the configured rate limit.
    pub async fn authenticator(&self, secret: &str) -> Result<Authenticator, String> {
        let authenticator = match self.jwks_source()? {
            Some(source) => {
                let keys = KeySet::load(source).await?;
                keys.refresh_every(Duration::from_secs(self.auth_jwks_refresh_secs.max(1)));
                let claims = ProviderClaims {
                    issuer: set(&self.auth_issuer),
                    audience: set(&self.auth_audience),
                    principal_claim: self.auth_principal_claim.clone(),
                };
                Authenticator::from_provider(keys, claims)
            }
            None => Authenticator::new(secret),
        };
        let limiter = RateLimiter::new(self.rate_limit_per_second, self.rate_limit_burst);
        let limiter = match (limiter, set(&self.rate_limit_redis_url)) {
            (Some(limiter), Some(url)) => Some(limiter.shared_through(&url)?),
            (limiter, _) => limiter,
        };
        Ok(authenticator.with_rate_limit(limiter))
    }

    /// TLS settings from the certificate files, if any are configured.
    pub fn tls(&self) -> Result<Option<ServerTlsConfig>, String> {
        let read = |path: &PathBuf| std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()));
        match (&self.tls_cert_file, &self.tls_key_file) {
            (None, None) if self.tls_client_ca_file.is_none() => Ok(None),
            (Some(cert), Some(key)) => {
                let mut tls = ServerTlsConfig::new().identity(Identity::from_pem(read(cert)?, read(key)?));
                if let Some(ca) = &self.tls_client_ca_file {
                    tls = tls.client_ca_root(Certificate::from_pem(read(ca)?));
                }
                Ok(Some(tls))
            }
            _ => Err("TLS needs both TLS_CERT_FILE and TLS_KEY_FILE (and TLS_CLIENT_CA_FILE only with them)".into()),
        }
    }

    /// The longest any call may run.
    pub fn call_timeout(&self) -> Duration {
        Duration::from_secs(self.call_timeout_secs.max(1))
    }

    /// Who is admitted ([`crate::admission`]): `MAX_IN_FLIGHT`, or 32 calls per CPU (GetPartner's
    /// throughput is flat from concurrency 16 to 64, see the README's Performance section) plus 4
    /// per database connection (a few transactions queued behind each). More only adds latency:
    /// a call admitted beyond the throughput's knee waits, it is not served sooner.
    pub fn admission(&self) -> AdmissionPolicy {
        let derived = || {
            let cpus = std::thread::available_parallelism().map_or(1, usize::from);
            32 * cpus + 4 * self.db_max_connections.max(1) as usize
        };
        AdmissionPolicy {
            max_in_flight: if self.max_in_flight > 0 { self.max_in_flight as usize } else { derived() },
            call_timeout: self.call_timeout(),
            retry_delay: Duration::from_millis(self.overload_retry_delay_ms.max(1)),
        }
    }

    /// The read replica, pooled like the primary (`pool`), if one is configured.
    pub fn replica(&self, pool: pc_store::PoolOptions) -> Option<pc_store::ReplicaOptions> {
        Some(pc_store::ReplicaOptions {
            url: set(&self.database_replica_url)?,
            max_lag: Duration::from_millis(self.replica_max_lag_ms),
            read_timeout: Duration::from_millis(self.replica_read_timeout_ms.max(1)),
            max_connections: pool.max_connections,
            statement_timeout: pool.statement_timeout,
        })
    }

    /// How to serve: drain deadline, TLS, admission and connection limits.
    pub fn serve_options(&self) -> Result<ServeOptions, String> {
        let seconds = |secs: u64| (secs > 0).then(|| Duration::from_secs(secs));
        Ok(ServeOptions {
            drain: self.shutdown_timeout(),
            tls: self.tls()?,
            admission: self.admission(),
            max_concurrent_streams: self.max_concurrent_streams.max(1),
            max_header_list_size: self.max_header_list_bytes.max(1024),
            http2_keepalive_interval: seconds(self.http2_keepalive_interval_secs),
            http2_keepalive_timeout: Duration::from_secs(self.http2_keepalive_timeout_secs.max(1)),
            max_connection_age: seconds(self.max_connection_age_secs),
            key_sweep_interval: Duration::from_secs(self.idempotency_sweep_interval_secs.max(1)),
            expiry_interval: Duration::from_secs(self.expiry_interval_secs.max(1)),
        })
    }
}

/// The value of an optional setting; an empty one is unset, as compose's `${AUTH_JWKS_URL:-}`
/// passes it.
fn set(value: &Option<String>) -> Option<String> {
    value.clone().filter(|value| !value.is_empty())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}
