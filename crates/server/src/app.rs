//! The one startup path: configuration -> database -> services -> listener -> serve. Every binary
//! (the dev server, each single-service binary) and the test harness build their server here, so
//! the tests run the production wiring: TLS from the configured files, rate limits, idempotency
//! window, health, reflection, and the shutdown drain.

use std::{future::Future, net::SocketAddr};

use pc_domain::{Error, PageKey};
use pc_store::Database;
use tokio::net::TcpListener;

use crate::{Authenticator, ServeOptions, ServerConfig, ServiceRoutes};

/// What every service of one server shares: the database, the authenticator its routes sit
/// behind, and the key its page tokens are signed with.
#[derive(Clone)]
pub struct Shared {
    pub db: Database,
    pub auth: Authenticator,
    pub pages: PageKey,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").field("db", &self.db).finish_non_exhaustive()
    }
}

/// Adds one service's routes to a server.
pub type Register = fn(&mut ServiceRoutes, Shared);

/// A server ready to serve: connected to its database, listening, its services registered.
#[derive(Debug)]
pub struct App {
    listener: TcpListener,
    /// Where health is also served, apart from the services, when `HEALTH_LISTEN_ADDR` is set.
    health: Option<std::net::TcpListener>,
    /// Where Prometheus metrics are served, when `METRICS_ADDR` is set.
    metrics: Option<TcpListener>,
    services: ServiceRoutes,
    db: Database,
    options: ServeOptions,
}

impl App {
    /// Connects to `database_url`, binds the configured address (or `default_listen`), and
    /// registers `services` behind an authenticator for `secret` with the configured limits.
    pub async fn build(
        config: &ServerConfig,
        database_url: &str,
        secret: &str,
        default_listen: SocketAddr,
        services: &[Register],
    ) -> Result<Self, String> {
        let options = config.serve_options()?;
        let pool = pc_store::PoolOptions {
            max_connections: config.db_max_connections,
            // No statement outlives the longest call that could have run it.
            statement_timeout: Some(config.call_timeout()),
        };
        let mut db = pc_store::connect(database_url, pool)
            .await
            .map_err(|e| e.to_string())?
            .with_idempotency_window(config.idempotency_window())
            .with_event_retention(config.event_retention())
            .with_expiry(config.expiry_windows());
        if let Some(replica) = config.replica(pool) {
            db = db.with_replica(&replica).await.map_err(|e| e.to_string())?;
        }
        let listen_addr = config.listen_addr.unwrap_or(default_listen);
        let listener = TcpListener::bind(listen_addr).await.map_err(|e| format!("cannot bind {listen_addr}: {e}"))?;
        let health = match config.health_listen_addr {
            Some(addr) => {
                Some(std::net::TcpListener::bind(addr).map_err(|e| format!("cannot bind {addr} for health: {e}"))?)
            }
            None => None,
        };
        let metrics = match config.metrics_addr {
            Some(addr) => {
                // Before anything records a figure at startup (the rate limit's `shared` gauge,
                // set as its budget is built): the facade drops what comes before a recorder.
                crate::metrics::install()?;
                Some(TcpListener::bind(addr).await.map_err(|e| format!("cannot bind {addr} for metrics: {e}"))?)
            }
            None => None,
        };
        // Page tokens are signed with a key derived from the token secret, so every replica
        // accepts the tokens of every other.
        let auth = config.authenticator(secret).await?;
        let shared = Shared { db: db.clone(), auth, pages: PageKey::derive(secret.as_bytes()) };
        let mut routes = ServiceRoutes::default();
        for register in services {
            register(&mut routes, shared.clone());
        }
        Ok(Self { listener, health, metrics, services: routes, db, options })
    }

    /// The address the server listens on (the port the OS chose, when it was 0).
    pub fn local_addr(&self) -> Result<SocketAddr, String> {
        self.listener.local_addr().map_err(|e| e.to_string())
    }

    /// The address health is served on apart, if it is.
    pub fn health_addr(&self) -> Option<SocketAddr> {
        self.health.as_ref().and_then(|listener| listener.local_addr().ok())
    }

    /// The address metrics are served on, if they are.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().and_then(|listener| listener.local_addr().ok())
    }

    pub fn database(&self) -> &Database {
        &self.db
    }

    /// The lifecycles its expiry engine runs over ([`crate::expiry`]).
    pub fn expiring(&self) -> &[crate::expiry::Expiring] {
        &self.services.expiring
    }

    /// Serves until `shutdown` resolves, then drains (see [`crate::serve`]).
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), Error> {
        if let Some(listener) = self.metrics {
            crate::metrics::serve(listener, self.db.clone()).map_err(Error::internal)?;
        }
        crate::serve(self.listener, self.health, self.services, self.db, shutdown, self.options).await
    }
}
