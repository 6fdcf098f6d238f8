#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

//! Starting and stopping servers: the in-process server of a [`TestApp`], replicas over its
//! database, and processes of the real `partner-center` binary.

use std::{net::SocketAddr, path::PathBuf, sync::atomic::AtomicUsize};

use pc_server::{ServerConfig, TokenIssuer};
use pc_store::{ConnectionTrait, Database};
use tokio::{sync::oneshot, task::JoinHandle};
use tonic::transport::Channel;

use crate::{
    AppOptions, TEST_SECRET, TestApp,
    clients::Minter,
    config::{Backend, fresh_database, test_config},
};

/// Starts a server over a fresh database with every service registered.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(AppOptions::default()).await
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
        expiring: running.expiring.clone(),
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
    pub(crate) metrics_addr: Option<SocketAddr>,
    pub(crate) health_addr: Option<SocketAddr>,
    pub(crate) db: Database,
    /// What the server's expiry engine runs over.
    pub(crate) expiring: Vec<pc_server::expiry::Expiring>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
}

impl Running {
    /// Stops the server, waiting for it to finish.
    pub(crate) async fn stop(mut self) {
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
pub(crate) async fn start(config: &ServerConfig, url: &str, tls: bool) -> Running {
    let unused = SocketAddr::from(([127, 0, 0, 1], 0));
    let app = pc_server::App::build(config, url, TEST_SECRET, unused, &partner_center::SERVICES)
        .await
        .unwrap_or_else(|e| panic!("build the server: {e}"));
    let addr = app.local_addr().expect("local addr");
    let (metrics_addr, health_addr, db) = (app.metrics_addr(), app.health_addr(), app.database().clone());
    let expiring = app.expiring().to_vec();
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
    Running { addr, channel, metrics_addr, health_addr, db, expiring, shutdown: Some(shutdown), server: Some(server) }
}

impl TestApp {
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

/// This package's build of the program `name` (tests/bin: `partner-center-under-test`,
/// `event-relay-under-test`), beside the running test's own executable
/// (`target/<profile>/deps/<test>` → `target/<profile>/…`): Cargo builds a package's binaries
/// before running its integration tests, so it is always the current code. (`CARGO_BIN_EXE_*`
/// would name it, but only in the test targets, not in this library.)
pub fn test_binary(name: &str) -> PathBuf {
    let test = std::env::current_exe().expect("the test's own path");
    let path = test
        .parent()
        .and_then(std::path::Path::parent)
        .expect("the test runs from target/<profile>/deps")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
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
        Self::start_binary(&test_binary("partner-center-under-test"), database_url, env).await
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
