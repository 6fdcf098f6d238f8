#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

//! Test support: [`spawn_app`] starts the real server stack in-process on a random port over a
//! fresh, migrated database and hands back authenticated gRPC clients.
//!
//! The backend is SQLite unless `PC_TEST_POSTGRES_URL` names a PostgreSQL server; then every test
//! creates its own UUID-named database there and drops it afterwards, and an unreachable server
//! fails the test instead of skipping it.
//!
//! By concern: [`config`] (the settings and the database a test server gets), [`processes`]
//! (starting and stopping servers: in-process, replicas, real binaries), [`clients`] (tokens,
//! clients, reading answers and refusals), [`world`] (partners, customers, links, relationships,
//! subscriptions and assignments made through the API), [`observe`] (what a client cannot read:
//! the audit log, metrics) and [`nats`] (the event relay, NATS streams and servers).

pub mod clients;
pub mod config;
pub mod identity;
pub mod nats;
pub mod observe;
pub mod postgres;
pub mod processes;
pub mod world;

use std::{net::SocketAddr, path::PathBuf, sync::atomic::AtomicUsize};

pub use clients::{
    AuthChannel, BareConnection, Bearer, Reply, assert_error_info, documented_error_reasons, expect_code, reason,
    violated_field,
};
pub use config::{AppOptions, TlsPem};
pub use observe::{audit_actions, audit_history, feed_cursors, feed_passed, metric_sample, scrape_metrics};
pub use processes::{Running, ServerProcess, spawn_app, spawn_app_with};
pub use world::{admin_request, new_customer, new_partner, transfer_request};

use clients::Minter;
use config::Backend;
use pc_store::Database;
use tonic::transport::Channel;

pub const TEST_SECRET: &str = "test-secret-test-secret-test-secret";

/// A running server and what a test needs to talk to it.
pub struct TestApp {
    pub addr: SocketAddr,
    pub channel: Channel,
    /// Where the server serves its metrics, when asked to ([`AppOptions::metrics`]).
    pub metrics_addr: Option<SocketAddr>,
    /// Where the server serves health apart, when asked to ([`AppOptions::health_apart`]).
    pub health_addr: Option<SocketAddr>,
    /// Direct access to the server's database, for assertions a client cannot make (audit events).
    pub db: Database,
    /// The lifecycles the server's expiry engine runs over, for a test to run a pass of it at the
    /// time it chooses (`pc_server::expiry::run_once`).
    pub expiring: Vec<pc_server::expiry::Expiring>,
    pub(crate) issuer: Minter,
    /// The server; taken when it is stopped.
    pub(crate) running: Option<Running>,
    /// Server processes over this app's database ([`TestApp::spread_over_processes`]); while any
    /// run, every client the app hands out talks to the next of them in turn.
    pub(crate) processes: Vec<ServerProcess>,
    pub(crate) turn: AtomicUsize,
    pub(crate) backend: Backend,
    /// Files the server was configured with (TLS), removed with it.
    pub(crate) files: Vec<PathBuf>,
}
