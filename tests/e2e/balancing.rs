//! Balancing per call: HAProxy, run with the repository's own policy (deploy/haproxy.cfg, its
//! global and defaults sections), in front of three processes of the real binary and one decoy
//! whose grpc.health.v1 says NOT_SERVING. One client channel's calls reach all three replicas and
//! never the decoy; a replica that dies costs no call of a client that retries as gRPC clients
//! do. Gated like the PostgreSQL suite: it runs when `PC_TEST_HAPROXY` names the haproxy binary
//! (`.ci/run` installs Debian's and sets it).

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use pc_api::partner::v1::{CreatePartnerRequest, GetPartnerRequest, ProgramRole};
use pc_api::types::v1::Cloud;
use pc_tests::{Reply, TestApp, metric_sample, new_partner, scrape_metrics, spawn_app};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::transport::Channel;
use tonic_health::ServingStatus;

/// The repository's HAProxy policy: everything above its deployment's own sections.
fn policy() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/haproxy.cfg");
    let config = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let (policy, _) =
        config.split_once("\n# deployment:").expect("deploy/haproxy.cfg marks where the deployment begins");
    policy.to_owned()
}

/// A port nothing listens on now (HAProxy binds it a moment later).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// A gRPC server that serves only health, saying NOT_SERVING, as a replica without its database
/// does. Calls sent to it would fail UNIMPLEMENTED.
async fn decoy() -> SocketAddr {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter.set_service_status("", ServingStatus::NotServing).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the decoy");
    let addr = listener.local_addr().expect("decoy addr");
    tokio::spawn(async move {
        // Keeps the reporter, and so the status, alive as long as the server.
        let _reporter = reporter;
        tonic::transport::Server::builder()
            .add_service(health)
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
            .await
            .expect("the decoy serves");
    });
    addr
}

/// HAProxy running the policy with one frontend on `port` and `servers` (name, address) behind it.
struct Proxy {
    _process: tokio::process::Child,
    socket: PathBuf,
    dir: PathBuf,
}

impl Proxy {
    async fn start(haproxy: &str, port: u16, servers: &[(String, SocketAddr)]) -> Self {
        let dir = std::env::temp_dir().join(format!("pc_test_haproxy_{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("a directory for HAProxy");
        let socket = dir.join("admin.sock");
        let mut config = policy();
        config.push_str(&format!(
            "\nglobal\n    stats socket {}\n\nfrontend grpc\n    bind 127.0.0.1:{port} proto h2\n    default_backend replicas\n\nbackend replicas\n",
            socket.display()
        ));
        for (name, addr) in servers {
            // Checked every 200 ms rather than 2 s, so the test need not wait long.
            config.push_str(&format!("    server {name} {addr} inter 200ms\n"));
        }
        let file = dir.join("haproxy.cfg");
        std::fs::write(&file, config).expect("write the HAProxy configuration");
        let process = tokio::process::Command::new(haproxy)
            .arg("-db")
            .arg("-f")
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start haproxy");
        Self { _process: process, socket, dir }
    }

    /// Each server's state as the health checks see it (`UP`, `DOWN`, ...), from `show stat`.
    async fn states(&self) -> Vec<(String, String)> {
        let Ok(mut stream) = tokio::net::UnixStream::connect(&self.socket).await else { return Vec::new() };
        stream.write_all(b"show stat\n").await.expect("ask HAProxy");
        let mut csv = String::new();
        stream.read_to_string(&mut csv).await.expect("HAProxy's answer");
        csv.lines()
            .filter(|line| line.starts_with("replicas,") && !line.starts_with("replicas,BACKEND"))
            .map(|line| {
                let fields: Vec<_> = line.split(',').collect();
                // pxname, svname, ..., status (the 18th field)
                (fields[1].to_owned(), fields[17].to_owned())
            })
            .collect()
    }

    /// Waits until every server is in the state `expected` says, and returns the states.
    async fn settle(&self, expected: impl Fn(&str) -> &'static str) -> Vec<(String, String)> {
        let start = Instant::now();
        loop {
            let states = self.states().await;
            if !states.is_empty() && states.iter().all(|(name, state)| state.starts_with(expected(name))) {
                return states;
            }
            assert!(start.elapsed() < Duration::from_secs(20), "HAProxy's checks did not settle: {states:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// GetPartner calls each process answered OK, from its metrics.
async fn gets_answered(app: &TestApp) -> Vec<f64> {
    let mut answered = Vec::new();
    for process in app.processes() {
        let body = scrape_metrics(process.metrics_addr.expect("metrics are served")).await;
        answered.push(metric_sample(
            &body,
            "partner_center_rpc_requests_total",
            &[r#"method="get_partner""#, r#"code="OK""#],
        ));
    }
    answered
}

#[tokio::test]
async fn one_client_channels_calls_reach_every_healthy_replica_through_the_proxy() {
    let Some(haproxy) = std::env::var("PC_TEST_HAPROXY").ok().filter(|path| !path.is_empty()) else {
        eprintln!("PC_TEST_HAPROXY is unset: balancing through HAProxy is not tested");
        return;
    };
    let mut app = spawn_app().await;
    let partner = app
        .partners()
        .create_partner(CreatePartnerRequest {
            partner: Some(new_partner(ProgramRole::DirectBillPartner, Cloud::Global)),
            request_id: String::new(),
        })
        .await
        .reply();
    app.spread_over_processes(3, &[("METRICS_ADDR", "127.0.0.1:0")]).await;
    let mut servers: Vec<_> =
        app.processes().iter().enumerate().map(|(i, process)| (format!("replica{i}"), process.addr)).collect();
    servers.push(("decoy".to_owned(), decoy().await));
    let port = free_port();
    let proxy = Proxy::start(&haproxy, port, &servers).await;
    let states = proxy.settle(|name| if name == "decoy" { "DOWN" } else { "UP" }).await;
    eprintln!("HAProxy sees {states:?}");

    // One channel, so one HTTP/2 connection to the proxy, as a gRPC client keeps.
    let channel = Channel::from_shared(format!("http://127.0.0.1:{port}")).unwrap().connect().await.expect("connect");
    let mut client = pc_api::partner::v1::partner_service_client::PartnerServiceClient::with_interceptor(
        channel,
        pc_tests::Bearer::signed_with_test_secret("operator"),
    );
    const CALLS: usize = 30;
    for _ in 0..CALLS {
        let got = client.get_partner(GetPartnerRequest { name: partner.name.clone() }).await.expect("GetPartner");
        assert_eq!(got.into_inner(), partner);
    }
    // The decoy answered none (a call sent there would have failed); each replica some.
    let answered = gets_answered(&app).await;
    assert_eq!(answered.iter().sum::<f64>(), CALLS as f64, "{answered:?}");
    assert!(answered.iter().all(|&calls| calls >= 5.0), "not balanced per call: {answered:?}");

    // A replica dies: the calls it would have had go to the others, before the checks take it
    // out and after. A call HAProxy sends down its reused connection to the dead replica comes
    // back REFUSED_STREAM (UNAVAILABLE; HAProxy retries only connections it could not open), which
    // gRPC clients retry, and so does partner-center-client's retry_idempotent, called here.
    app.kill_process(0);
    for _ in 0..CALLS {
        let get = || {
            let (mut client, name) = (client.clone(), partner.name.clone());
            async move { client.get_partner(GetPartnerRequest { name }).await }
        };
        partner_center_client::retry_idempotent(get).await.expect("GetPartner, a replica down");
    }
    proxy.settle(|name| if name == "decoy" || name == "replica0" { "DOWN" } else { "UP" }).await;
    let survivors = gets_answered(&app).await;
    let before: f64 = answered[1..].iter().sum();
    assert_eq!(survivors.iter().sum::<f64>() - before, CALLS as f64, "{answered:?} then {survivors:?}");
}
