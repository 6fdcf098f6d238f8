#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

//! Test support: [`spawn_app`] starts the real server stack in-process on a random port over a
//! fresh, migrated database and hands back authenticated gRPC clients.
//!
//! The backend is SQLite unless `PC_TEST_POSTGRES_URL` names a PostgreSQL server; then every test
//! creates its own UUID-named database there and drops it afterwards, and an unreachable server
//! fails the test instead of skipping it.

pub mod identity;
pub mod postgres;

use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use identity::IdentityProvider;

use pc_api::channel::v1::{
    AcceptSupportAssignmentRequest, CreateSubscriptionRequest, ProductFamily, RegisterExternalSubscriptionRequest,
    RequestSupportRequest, SalesChannel, Subscription, SupportAssignment, channel_service_client::ChannelServiceClient,
};
use pc_api::partner::v1::{Customer, Partner, ProgramRole, partner_service_client::PartnerServiceClient};
use pc_api::relationship::v1::{
    AcceptCustomerRelationshipRequest, AcceptResellerLinkRequest, CustomerRelationship, InviteResellerRequest,
    RequestCustomerRelationshipRequest, ResellerLink, relationship_service_client::RelationshipServiceClient,
};
use pc_api::types::v1::Cloud;
use pc_server::{ServerConfig, TokenIssuer};
use pc_store::{ConnectionTrait, Database};
use tokio::{sync::oneshot, task::JoinHandle};
use tonic::{
    Request, Status,
    metadata::{Ascii, MetadataValue},
    service::{Interceptor, interceptor::InterceptedService},
    transport::Channel,
};

pub const TEST_SECRET: &str = "test-secret-test-secret-test-secret";

/// Adds `authorization: Bearer <token>` to every call.
#[derive(Clone)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request.metadata_mut().insert("authorization", value.clone());
        }
        Ok(request)
    }
}

pub type AuthChannel = InterceptedService<Channel, Bearer>;

impl Bearer {
    /// A token for `subject` signed with the shared test secret, as a server the harness did not
    /// build itself (a [`ServerProcess`]) verifies it.
    pub fn signed_with_test_secret(subject: &str) -> Self {
        let token = TokenIssuer::new(TEST_SECRET).mint(subject, Duration::from_secs(600)).expect("mint a token");
        Self(Some(format!("Bearer {token}").parse().expect("ascii header")))
    }
}

/// What [`TestApp::bare_partners`] calls through.
pub type BareConnection =
    tower::util::BoxCloneService<http::Request<tonic::body::Body>, http::Response<hyper::body::Incoming>, hyper::Error>;

enum Backend {
    Sqlite { path: PathBuf },
    Postgres { admin_url: String, database: String },
}

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
    issuer: Minter,
    /// The server; taken when it is stopped.
    running: Option<Running>,
    /// Server processes over this app's database ([`TestApp::spread_over_processes`]); while any
    /// run, every client the app hands out talks to the next of them in turn.
    processes: Vec<ServerProcess>,
    turn: AtomicUsize,
    backend: Backend,
    /// Files the server was configured with (TLS), removed with it.
    files: Vec<PathBuf>,
}

/// Who signs the test's tokens: the shared secret, or an identity provider's key.
enum Minter {
    Secret(TokenIssuer),
    Provider(Arc<IdentityProvider>),
}

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
    /// Serve health apart on a free local port too ([`TestApp::health_addr`]).
    pub health_apart: bool,
    /// Keep the rate limits in this Redis (`RATE_LIMIT_REDIS_URL`).
    pub rate_limit_redis: Option<String>,
}

/// A server certificate chain and key, and optionally a client CA that makes it require client
/// certificates, all PEM.
#[derive(Debug, Clone)]
pub struct TlsPem {
    pub cert: String,
    pub key: String,
    pub client_ca: Option<String>,
}

/// Starts a server over a fresh database with every service registered.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(AppOptions::default()).await
}

/// The configuration a deployment would give, for a test server on a random port.
fn test_config(database_url: &str, options: &AppOptions, files: &mut Vec<PathBuf>) -> ServerConfig {
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
        max_connection_age_secs: 0,
        health_listen_addr: options.health_apart.then(|| SocketAddr::from(([127, 0, 0, 1], 0))),
        rate_limit_redis_url: options.rate_limit_redis.clone(),
    }
}

/// [`spawn_app`] with options. With TLS, `channel` is not connected: build your own from `addr`.
/// The server is built by [`pc_server::App`], the startup path of every binary.
pub async fn spawn_app_with(options: AppOptions) -> TestApp {
    let (url, backend) = fresh_database().await;
    let mut files = Vec::new();
    let config = test_config(&url, &options, &mut files);
    // Migrated the way a deployment does it, once, before the services start.
    pc_store::db::migrate(&pc_store::connect(&url, 1).await.unwrap_or_else(|e| panic!("connect {url}: {e}")))
        .await
        .unwrap_or_else(|e| panic!("migrate: {e}"));
    let running = start(&config, &url, options.tls.is_some()).await;
    TestApp {
        addr: running.addr,
        channel: running.channel.clone(),
        metrics_addr: running.metrics_addr,
        health_addr: running.health_addr,
        db: running.db.clone(),
        issuer: match options.identity {
            Some(provider) => Minter::Provider(provider),
            None => Minter::Secret(TokenIssuer::new(TEST_SECRET)),
        },
        running: Some(running),
        processes: Vec::new(),
        turn: AtomicUsize::new(0),
        backend,
        files,
    }
}

/// One server process's worth of the stack, running in a task: a [`TestApp`]'s own, or another
/// replica over its database ([`TestApp::spawn_replica`]). Stops when dropped.
pub struct Running {
    pub addr: SocketAddr,
    pub channel: Channel,
    metrics_addr: Option<SocketAddr>,
    health_addr: Option<SocketAddr>,
    db: Database,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
}

impl Running {
    /// Stops the server, waiting for it to finish.
    async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("server task");
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// Builds the server over the migrated database at `url` the way every binary does, and runs it.
async fn start(config: &ServerConfig, url: &str, tls: bool) -> Running {
    let services: [pc_server::Register; 3] =
        [partner_service::register, relationship_service::register, channel_service::register];
    let unused = SocketAddr::from(([127, 0, 0, 1], 0));
    let app = pc_server::App::build(config, url, TEST_SECRET, unused, &services)
        .await
        .unwrap_or_else(|e| panic!("build the server: {e}"));
    let addr = app.local_addr().expect("local addr");
    let (metrics_addr, health_addr, db) = (app.metrics_addr(), app.health_addr(), app.database().clone());
    let (shutdown, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let stop = async {
            let _ = stopped.await;
        };
        if let Err(error) = app.run(stop).await {
            panic!("server failed: {error}");
        }
    });
    // The listener is already bound, so connecting cannot race the server's start.
    let endpoint = Channel::from_shared(format!("http://{addr}")).expect("endpoint");
    let channel =
        if tls { endpoint.connect_lazy() } else { endpoint.connect().await.expect("connect to the test server") };
    Running { addr, channel, metrics_addr, health_addr, db, shutdown: Some(shutdown), server: Some(server) }
}

async fn fresh_database() -> (String, Backend) {
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
fn replace_database(url: &str, database: &str) -> String {
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

    /// A bearer token for `subject` (`operator`, `partners/…`, `customers/…`).
    pub fn token(&self, subject: &str) -> String {
        match &self.issuer {
            Minter::Secret(issuer) => issuer.mint(subject, Duration::from_secs(600)).expect("mint a token"),
            Minter::Provider(provider) => provider.token_signed_by(&provider.signing, subject),
        }
    }

    fn bearer(&self, subject: Option<&str>) -> Bearer {
        Bearer(subject.map(|s| format!("Bearer {}", self.token(s)).parse().expect("ascii header")))
    }

    /// The channel the next client talks through: the in-process server's, or, while the app is
    /// spread over processes, each process's in turn.
    fn next_channel(&self) -> Channel {
        if self.processes.is_empty() {
            return self.channel.clone();
        }
        let turn = self.turn.fetch_add(1, Ordering::Relaxed);
        self.processes[turn % self.processes.len()].channel.clone()
    }

    /// PartnerService as `subject`; `None` sends no credential.
    pub fn partners_as(&self, subject: Option<&str>) -> PartnerServiceClient<AuthChannel> {
        PartnerServiceClient::with_interceptor(self.next_channel(), self.bearer(subject))
    }

    /// PartnerService with exactly this bearer token, as a client holding it would call.
    pub fn partners_with_token(&self, token: &str) -> PartnerServiceClient<AuthChannel> {
        let bearer = Bearer(Some(format!("Bearer {token}").parse().expect("ascii header")));
        PartnerServiceClient::with_interceptor(self.next_channel(), bearer)
    }

    /// PartnerService as the operator over a bare HTTP/2 connection: unlike tonic's `Channel`, it
    /// does not enforce a call's `grpc-timeout` itself, so what a test sees is the server's answer
    /// to it (as a client that leaves deadlines to the server would).
    pub async fn bare_partners(&self) -> PartnerServiceClient<BareConnection> {
        let tcp = tokio::net::TcpStream::connect(self.addr).await.expect("connect to the test server");
        let (sender, connection) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            hyper_util::rt::TokioIo::new(tcp),
        )
        .await
        .expect("an HTTP/2 connection");
        tokio::spawn(connection);
        let bearer: http::HeaderValue = format!("Bearer {}", self.token("operator")).parse().expect("ascii header");
        let send = tower::service_fn(move |mut request: http::Request<tonic::body::Body>| {
            let mut sender = sender.clone();
            request.headers_mut().insert("authorization", bearer.clone());
            async move { sender.send_request(request).await }
        });
        let origin = format!("http://{}", self.addr).parse().expect("an origin");
        PartnerServiceClient::with_origin(tower::util::BoxCloneService::new(send), origin)
    }

    pub fn partners(&self) -> PartnerServiceClient<AuthChannel> {
        self.partners_as(Some("operator"))
    }

    /// RelationshipService as `subject`; `None` sends no credential.
    pub fn relationships_as(&self, subject: Option<&str>) -> RelationshipServiceClient<AuthChannel> {
        RelationshipServiceClient::with_interceptor(self.next_channel(), self.bearer(subject))
    }

    pub fn relationships(&self) -> RelationshipServiceClient<AuthChannel> {
        self.relationships_as(Some("operator"))
    }

    /// ChannelService as `subject`; `None` sends no credential.
    pub fn channel_as(&self, subject: Option<&str>) -> ChannelServiceClient<AuthChannel> {
        ChannelServiceClient::with_interceptor(self.next_channel(), self.bearer(subject))
    }

    pub fn channel(&self) -> ChannelServiceClient<AuthChannel> {
        self.channel_as(Some("operator"))
    }

    /// `partner` sells `offer` to `customer` (needs an ACTIVE relationship).
    pub async fn sell(
        &self,
        partner: &Partner,
        customer: &Customer,
        offer: &str,
        family: ProductFamily,
    ) -> Subscription {
        self.channel_as(Some(&partner.name))
            .create_subscription(CreateSubscriptionRequest {
                subscription: Some(Subscription {
                    customer: customer.name.clone(),
                    offer_id: offer.to_owned(),
                    product_family: family as i32,
                    quantity: 10,
                    partner_of_record: partner.name.clone(),
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .expect("create a subscription")
            .into_inner()
    }

    /// An INVITED reseller link: the provider invites.
    pub async fn invite(&self, provider: &Partner, reseller: &Partner) -> ResellerLink {
        self.relationships_as(Some(&provider.name))
            .invite_reseller(InviteResellerRequest {
                provider: provider.name.clone(),
                reseller: reseller.name.clone(),
                ..Default::default()
            })
            .await
            .expect("invite a reseller")
            .into_inner()
    }

    /// An ACTIVE reseller link: the provider invites, the reseller accepts.
    pub async fn link(&self, provider: &Partner, reseller: &Partner) -> ResellerLink {
        let invited = self.invite(provider, reseller).await;
        self.relationships_as(Some(&reseller.name))
            .accept_reseller_link(AcceptResellerLinkRequest { name: invited.name, etag: String::new() })
            .await
            .expect("accept the invitation")
            .into_inner()
    }

    /// A PENDING customer relationship: the partner asks (naming `provider` when it is a reseller).
    pub async fn ask(
        &self,
        partner: &Partner,
        customer: &Customer,
        provider: Option<&Partner>,
    ) -> CustomerRelationship {
        self.relationships_as(Some(&partner.name))
            .request_customer_relationship(RequestCustomerRelationshipRequest {
                partner: partner.name.clone(),
                customer: customer.name.clone(),
                indirect_provider: provider.map(|p| p.name.clone()).unwrap_or_default(),
                ..Default::default()
            })
            .await
            .expect("request a customer relationship")
            .into_inner()
    }

    /// An ACTIVE customer relationship: the partner asks (naming `provider` when it is a
    /// reseller), the customer accepts.
    pub async fn relate(
        &self,
        partner: &Partner,
        customer: &Customer,
        provider: Option<&Partner>,
    ) -> CustomerRelationship {
        let requested = self.ask(partner, customer, provider).await;
        self.relationships_as(Some(&customer.name))
            .accept_customer_relationship(AcceptCustomerRelationshipRequest {
                name: requested.name,
                etag: String::new(),
            })
            .await
            .expect("accept the relationship")
            .into_inner()
    }

    /// An ACTIVE support assignment: `supporter` asks to support `subscription`, `customer` accepts.
    pub async fn hire(
        &self,
        supporter: &Partner,
        subscription: &Subscription,
        customer: &Customer,
    ) -> SupportAssignment {
        let requested = self
            .channel_as(Some(&supporter.name))
            .request_support(RequestSupportRequest {
                subscription: subscription.name.clone(),
                partner: supporter.name.clone(),
                ..Default::default()
            })
            .await
            .expect("request support")
            .into_inner();
        self.channel_as(Some(&customer.name))
            .accept_support_assignment(AcceptSupportAssignmentRequest { name: requested.name, etag: String::new() })
            .await
            .expect("accept the support assignment")
            .into_inner()
    }

    /// A subscription `customer` bought from the vendor (VENDOR_DIRECT, no partner), registered by
    /// an operator.
    pub async fn bought_elsewhere(&self, customer: &Customer, quantity: i32) -> Subscription {
        self.channel()
            .register_external_subscription(RegisterExternalSubscriptionRequest {
                subscription: Some(Subscription {
                    customer: customer.name.clone(),
                    offer_id: "dynamics-365-sales".into(),
                    product_family: ProductFamily::Dynamics as i32,
                    quantity,
                    sales_channel: SalesChannel::VendorDirect as i32,
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .expect("register a subscription bought elsewhere")
            .into_inner()
    }

    /// Enrols a partner as operator and returns it.
    pub async fn enrol(&self, role: ProgramRole, cloud: Cloud) -> Partner {
        self.partners()
            .create_partner(pc_api::partner::v1::CreatePartnerRequest {
                partner: Some(new_partner(role, cloud)),
                ..Default::default()
            })
            .await
            .expect("enrol a partner")
            .into_inner()
    }

    /// Creates a customer as `subject` and returns it.
    pub async fn customer_by(&self, subject: &str, cloud: Cloud) -> Customer {
        self.partners_as(Some(subject))
            .create_customer(pc_api::partner::v1::CreateCustomerRequest {
                customer: Some(new_customer(cloud)),
                ..Default::default()
            })
            .await
            .expect("create a customer")
            .into_inner()
    }

    /// CreateCustomer by the operator with `request_id` (AIP-155), always with the same customer
    /// for one id: within the key's window a repeat returns the first customer again; run anew, it
    /// is ALREADY_EXISTS.
    pub async fn enrol_customer_with(&self, request_id: &str) -> Result<Customer, Status> {
        let mut customer = new_customer(Cloud::Global);
        // The same request each time, so a replay is possible: the tenant and domain follow the id.
        let id = uuid::Uuid::parse_str(request_id).expect("a UUID request_id");
        customer.tenant_id = id.to_string();
        customer.primary_domain = format!("c{}.example.com", id.simple());
        customer.display_name = format!("Customer {}", &id.simple().to_string()[..8]);
        self.partners()
            .create_customer(pc_api::partner::v1::CreateCustomerRequest {
                customer: Some(customer),
                request_id: request_id.to_owned(),
            })
            .await
            .map(tonic::Response::into_inner)
    }

    /// Makes every stored idempotency key `age` old, as if its request were that long ago.
    pub async fn age_idempotency_keys(&self, age: chrono::Duration) {
        use pc_store::entity::idempotency_key::{Column, Entity};
        use sea_orm::{EntityTrait, sea_query::Expr};
        let past = pc_store::db::now() - age;
        Entity::update_many().col_expr(Column::CreateTime, Expr::value(past)).exec(self.db.primary()).await.unwrap();
    }

    /// Stops the server, waiting for it to finish.
    pub async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            running.stop().await;
        }
    }

    /// Another replica of the server over this one's database, configured by `options` (its own
    /// port, pools, limits and background work, as a second process would have). Plain text:
    /// `options.tls` is not for replicas.
    pub async fn spawn_replica(&self, options: AppOptions) -> Running {
        let url = self.database_url();
        let mut files = Vec::new();
        let config = test_config(&url, &options, &mut files);
        start(&config, &url, false).await
    }

    /// Starts `count` processes of the real `partner-center` binary over this app's database, as
    /// replicas of a deployment (each `serve` with its own pools and background work, configured
    /// through the environment plus `env`), and from then on sends every client's calls to each
    /// of them in turn. Each client is one process's: calls a test builds one client each for
    /// land on different replicas. Tokens must be signed with the shared secret. (The binary is
    /// this package's copy, `partner-center-under-test`: Cargo builds it before the tests run.)
    pub async fn spread_over_processes(&mut self, count: usize, env: &[(&str, &str)]) {
        assert!(matches!(self.issuer, Minter::Secret(_)), "server processes verify tokens with the shared secret");
        let url = self.database_url();
        for _ in 0..count {
            self.processes.push(ServerProcess::start(&url, env).await);
        }
    }

    /// The processes [`TestApp::spread_over_processes`] started.
    pub fn processes(&self) -> &[ServerProcess] {
        &self.processes
    }

    /// Kills the `index`th server process at once (SIGKILL, as a crash or a lost machine would),
    /// and stops sending calls to it.
    pub fn kill_process(&mut self, index: usize) {
        let mut process = self.processes.remove(index);
        process.child.start_kill().expect("kill a server process");
    }
}

/// This package's build of the `partner-center` program (tests/bin), beside the running test's
/// own executable (`target/<profile>/deps/<test>` → `target/<profile>/…`): Cargo builds a
/// package's binaries before running its integration tests, so it is always the current code.
/// (`CARGO_BIN_EXE_*` would name it, but only in the test targets, not in this library.)
fn server_binary() -> PathBuf {
    let test = std::env::current_exe().expect("the test's own path");
    let path = test
        .parent()
        .and_then(std::path::Path::parent)
        .expect("the test runs from target/<profile>/deps")
        .join(format!("partner-center-under-test{}", std::env::consts::EXE_SUFFIX));
    assert!(path.exists(), "{} is missing: run the tests through cargo test", path.display());
    path
}

/// One process of the real `partner-center` binary, serving every service. Killed when dropped.
pub struct ServerProcess {
    pub addr: SocketAddr,
    pub channel: Channel,
    /// Where it serves metrics, when `METRICS_ADDR` was among its settings.
    pub metrics_addr: Option<SocketAddr>,
    child: tokio::process::Child,
}

impl ServerProcess {
    /// Starts `partner-center serve` over `database_url` (which it migrates), configured through
    /// the environment plus `env`, and connects to it.
    pub async fn start(database_url: &str, env: &[(&str, &str)]) -> Self {
        Self::start_binary(&server_binary(), database_url, env).await
    }

    /// [`Self::start`] with the `partner-center` program at `binary` (a test of the
    /// partner-center package passes its own, `CARGO_BIN_EXE_partner-center`).
    pub async fn start_binary(binary: &std::path::Path, database_url: &str, env: &[(&str, &str)]) -> Self {
        use tokio::io::{AsyncBufReadExt, BufReader};
        let mut command = tokio::process::Command::new(binary);
        command
            .arg("serve")
            .env("DATABASE_URL", database_url)
            .env("AUTH_JWT_SECRET", TEST_SECRET)
            .env("LISTEN_ADDR", "127.0.0.1:0")
            // Several processes share the test's database server with every other test.
            .env("DB_MAX_CONNECTIONS", "4")
            .env("RUST_LOG", std::env::var("PC_TEST_SERVER_LOG").unwrap_or_else(|_| "warn".into()))
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .kill_on_drop(true);
        let mut child = command.spawn().expect("start partner-center");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut metrics_addr = None;
        let addr: SocketAddr = loop {
            let line = lines.next_line().await.expect("read stdout").expect("partner-center exited before listening");
            if let Some(addr) = line.strip_prefix("partner-center metrics on ") {
                metrics_addr = Some(addr.parse().expect("metrics address"));
            } else if let Some(addr) = line.strip_prefix("partner-center listening on ") {
                break addr.parse().expect("listen address");
            }
        };
        // Nothing more is printed, but a closed pipe would fail a later print: keep reading.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let channel = Channel::from_shared(format!("http://{addr}"))
            .expect("endpoint")
            .connect()
            .await
            .expect("connect to a server process");
        Self { addr, channel, metrics_addr, child }
    }

    /// Sends SIGTERM, as an orchestrator stopping the process does.
    pub fn terminate(&self) {
        let pid = self.child.id().expect("running").to_string();
        let killed = std::process::Command::new("kill").args(["-TERM", &pid]).status().expect("run kill");
        assert!(killed.success(), "kill -TERM {pid}");
    }

    /// Waits for the process to exit.
    pub async fn wait(&mut self) -> std::process::ExitStatus {
        self.child.wait().await.expect("wait for a server process")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Stops the servers (their own drops) before their database goes.
        drop(self.running.take());
        self.processes.clear();
        for file in &self.files {
            let _ = std::fs::remove_file(file);
        }
        match &self.backend {
            Backend::Sqlite { path } => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
            }
            Backend::Postgres { admin_url, database } => {
                let (admin_url, owned_database) = (admin_url.clone(), database.clone());
                // Drop runs inside the test's runtime; a fresh thread and runtime can block on it.
                let dropped = std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
                    runtime.block_on(async {
                        let admin = sea_orm::Database::connect(&admin_url).await.map_err(std::io::Error::other)?;
                        admin
                            .execute_unprepared(&format!("DROP DATABASE IF EXISTS {owned_database} WITH (FORCE)"))
                            .await
                            .map_err(std::io::Error::other)?;
                        admin.close().await.map_err(std::io::Error::other)
                    })
                })
                .join();
                if !matches!(dropped, Ok(Ok(()))) {
                    eprintln!("could not drop test database {database}");
                }
            }
        }
    }
}

/// A valid partner that no other test uses.
pub fn new_partner(role: ProgramRole, cloud: Cloud) -> Partner {
    Partner {
        display_name: format!("Partner {}", &uuid::Uuid::new_v4().simple().to_string()[..8]),
        tenant_id: uuid::Uuid::new_v4().to_string(),
        country_code: "US".into(),
        cloud: cloud as i32,
        program_role: role as i32,
        ..Default::default()
    }
}

/// A valid customer that no other test uses.
pub fn new_customer(cloud: Cloud) -> Customer {
    let tag = uuid::Uuid::new_v4().simple().to_string();
    Customer {
        display_name: format!("Customer {}", &tag[..8]),
        tenant_id: uuid::Uuid::new_v4().to_string(),
        primary_domain: format!("c{}.example.com", &tag[..12]),
        country_code: "DE".into(),
        cloud: cloud as i32,
        ..Default::default()
    }
}

/// Asserts a call failed with `code` and a documented ErrorInfo ([`assert_error_info`]), and
/// returns the status for further checks.
#[track_caller]
pub fn expect_code<T: std::fmt::Debug>(result: Result<T, Status>, code: tonic::Code) -> Status {
    match result {
        Ok(value) => panic!("expected {code:?}, got Ok({value:?})"),
        Err(status) => {
            assert_eq!(status.code(), code, "unexpected status: {status:?}");
            assert_error_info(&status);
            status
        }
    }
}

/// The error reasons README's "Error reasons" table documents, each with its gRPC code's name.
pub fn documented_error_reasons() -> &'static [(String, String)] {
    static REASONS: std::sync::OnceLock<Vec<(String, String)>> = std::sync::OnceLock::new();
    REASONS.get_or_init(|| {
        let readme = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
        let readme = std::fs::read_to_string(&readme).expect("read README.md");
        let table = readme.split("### Error reasons").nth(1).expect("README has an Error reasons section");
        table
            .lines()
            .skip_while(|line| !line.starts_with('|'))
            .take_while(|line| line.starts_with('|'))
            .filter_map(|line| {
                let mut cells = line.split('|').map(str::trim).filter(|cell| !cell.is_empty());
                let reason = cells.next()?.strip_prefix('`')?.strip_suffix('`')?;
                Some((reason.to_owned(), cells.next()?.to_owned()))
            })
            .collect()
    })
}

/// Asserts `status` carries a `google.rpc.ErrorInfo` in the partnercenter domain whose reason
/// README documents for its code (AIP-193: a client switches on the reason).
#[track_caller]
pub fn assert_error_info(status: &Status) {
    use tonic_types::StatusExt;
    let info = status.get_details_error_info().unwrap_or_else(|| panic!("no ErrorInfo on {status:?}"));
    assert_eq!(info.domain, pc_domain::error::ERROR_DOMAIN, "{status:?}");
    let code = format!("{:?}", status.code());
    let documented = documented_error_reasons()
        .iter()
        .any(|(reason, documented)| *reason == info.reason && documented.replace('_', "").eq_ignore_ascii_case(&code));
    assert!(documented, "reason {} with code {code} is not in README's Error reasons: {status:?}", info.reason);
}

/// The field named by an INVALID_ARGUMENT status's first `google.rpc.BadRequest` violation.
pub fn violated_field(status: &Status) -> String {
    use tonic_types::StatusExt;
    status
        .get_details_bad_request()
        .and_then(|bad| bad.field_violations.into_iter().next())
        .map(|violation| violation.field)
        .unwrap_or_default()
}

/// The `google.rpc.ErrorInfo` reason of a status (a documented one: [`assert_error_info`]).
#[track_caller]
pub fn reason(status: &Status) -> String {
    use tonic_types::StatusExt;
    assert_error_info(status);
    status.get_details_error_info().map(|info| info.reason).unwrap_or_default()
}

/// How many audit events name `resource`.
pub async fn audit_actions(app: &TestApp, resource: &str) -> Vec<String> {
    pc_store::audit::events_of(app.db.primary(), resource)
        .await
        .expect("read audit events")
        .into_iter()
        .map(|event| event.action)
        .collect()
}

/// The body of `GET /metrics` from the metrics listener at `addr`.
pub async fn scrape_metrics(addr: SocketAddr) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect to the metrics port");
    stream.write_all(b"GET /metrics HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n").await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.to_lowercase().contains("content-type: text/plain; version=0.0.4"), "{head}");
    body.to_owned()
}

/// The sum of the samples named `name` whose labels include every one of `labels` (0 if none).
pub fn metric_sample(body: &str, name: &str, labels: &[&str]) -> f64 {
    body.lines()
        .filter(|line| line.starts_with(name) && !line.starts_with('#'))
        .filter(|line| line[name.len()..].starts_with(['{', ' ']))
        .filter(|line| labels.iter().all(|label| line.contains(label)))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
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
