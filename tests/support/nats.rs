#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

//! The event relay's side of the tests: processes of the real `event-relay` binary, a JetStream
//! stream of the test's own on the NATS server (`PC_TEST_NATS_URL`, else 127.0.0.1:4222), a
//! durable consumer reading it as a service would, and NATS servers a test starts and stops
//! itself (`nats-server` on the PATH, or `PC_TEST_NATS_SERVER`).

use std::{path::PathBuf, process::Stdio, time::Duration};

use async_nats::jetstream::{self, Context, consumer, stream};
use pc_api::event::v1::Event;
use prost::Message;
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
    sync::watch,
};

use crate::processes::test_binary;

/// The NATS server the tests publish to.
pub fn nats_url() -> String {
    std::env::var("PC_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

/// A stream with a name and subjects of its own, so tests running at once never share one.
/// Created with a short retention, so one a failed test leaves behind expires; deleted by
/// [`TestStream::delete`].
pub struct TestStream {
    pub name: String,
    pub subject_prefix: String,
    pub nats_url: String,
}

/// One message as a consumer received it.
#[derive(Debug, Clone)]
pub struct Received {
    /// `Nats-Msg-Id`: the event's cursor.
    pub message_id: String,
    /// `Partner-Center-Relay`: the relay process that published it.
    pub relay: String,
    pub subject: String,
    pub event: Event,
}

impl TestStream {
    /// Names a stream on the server at `nats_url` (the relay creates it).
    pub fn named(nats_url: &str) -> Self {
        let id = uuid::Uuid::new_v4().simple().to_string();
        Self { name: format!("PCTEST_{id}"), subject_prefix: format!("pctest.{id}"), nats_url: nats_url.to_owned() }
    }

    /// [`Self::named`] on the shared server, created now with a one-hour retention.
    pub async fn create() -> Self {
        let stream = Self::named(&nats_url());
        let config = stream::Config {
            name: stream.name.clone(),
            subjects: vec![format!("{}.>", stream.subject_prefix)],
            max_age: Duration::from_secs(3600),
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        };
        stream.jetstream().await.create_stream(config).await.expect("create the test's stream");
        stream
    }

    pub async fn jetstream(&self) -> Context {
        let client = async_nats::connect(self.nats_url.as_str())
            .await
            .unwrap_or_else(|e| panic!("connect to NATS at {}: {e}", self.nats_url));
        jetstream::new(client)
    }

    /// How many messages the stream holds (0 while it does not exist or NATS is down).
    pub async fn messages(&self) -> u64 {
        let Ok(client) = async_nats::connect(self.nats_url.as_str()).await else { return 0 };
        let Ok(mut stream) = jetstream::new(client).get_stream(&self.name).await else { return 0 };
        stream.info().await.map_or(0, |info| info.state.messages)
    }

    /// Waits until the stream holds `more` messages beyond `than` (the relay publishes on).
    pub async fn holds_more(&self, than: u64, more: u64) {
        let start = std::time::Instant::now();
        while self.messages().await < than + more {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "{} holds {} messages",
                self.name,
                self.messages().await
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Every message, read once by a new durable consumer with explicit acks: each message is
    /// acknowledged as it is read, and reading ends when a wait of a second brings nothing more.
    pub async fn read_all(&self) -> Vec<Received> {
        let stream = self.jetstream().await.get_stream(&self.name).await.expect("the stream");
        let durable = consumer::pull::Config {
            durable_name: Some("pc-test-reader".into()),
            ack_policy: consumer::AckPolicy::Explicit,
            ..Default::default()
        };
        let consumer = stream.create_consumer(durable).await.expect("create a durable consumer");
        let mut received = Vec::new();
        loop {
            let mut batch = consumer
                .batch()
                .max_messages(500)
                .expires(Duration::from_secs(1))
                .messages()
                .await
                .expect("fetch a batch");
            let before = received.len();
            while let Some(message) = tokio_stream::StreamExt::next(&mut batch).await {
                let message = message.expect("a message");
                let header = |name: &str| {
                    message
                        .headers
                        .as_ref()
                        .and_then(|h| h.get(name))
                        .map(|v| v.as_str().to_owned())
                        .unwrap_or_default()
                };
                received.push(Received {
                    message_id: header("Nats-Msg-Id"),
                    relay: header("Partner-Center-Relay"),
                    subject: message.subject.to_string(),
                    event: Event::decode(message.payload.clone()).expect("an Event"),
                });
                message.ack().await.expect("ack");
            }
            if received.len() == before {
                return received;
            }
        }
    }

    pub async fn delete(&self) {
        let _ = self.jetstream().await.delete_stream(&self.name).await;
    }
}

/// One process of the real `event-relay` binary. Killed when dropped.
pub struct RelayProcess {
    pub holder: String,
    child: Child,
    publishing: watch::Receiver<bool>,
}

impl RelayProcess {
    /// Starts a relay named `holder` publishing the feed of `database_url` to `stream`, with a
    /// lease of `lease_secs`.
    pub fn start(database_url: &str, stream: &TestStream, holder: &str, lease_secs: u64) -> Self {
        let mut child = Command::new(test_binary("event-relay-under-test"))
            .env("DATABASE_URL", database_url)
            .env("NATS_URL", &stream.nats_url)
            .env("NATS_STREAM", &stream.name)
            .env("NATS_SUBJECT_PREFIX", &stream.subject_prefix)
            .env("RELAY_ID", holder)
            .env("RELAY_LEASE_SECS", lease_secs.to_string())
            .env("RUST_LOG", std::env::var("PC_TEST_SERVER_LOG").unwrap_or_else(|_| "warn".into()))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start event-relay");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let (said, publishing) = watch::channel(false);
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                if line.starts_with("event-relay ") && line.contains(" publishing to ") {
                    said.send_replace(true);
                }
            }
        });
        Self { holder: holder.to_owned(), child, publishing }
    }

    /// Whether it has said it holds the lease and publishes.
    pub fn is_publishing(&self) -> bool {
        *self.publishing.borrow()
    }

    /// Waits until it publishes; false if it does not within `limit`.
    pub async fn publishes_within(&mut self, limit: Duration) -> bool {
        tokio::time::timeout(limit, self.publishing.wait_for(|publishing| *publishing)).await.is_ok_and(|r| r.is_ok())
    }

    /// SIGKILL: no chance to give the lease up or finish a batch.
    pub async fn kill(mut self) {
        self.child.kill().await.expect("kill event-relay");
    }
}

/// A NATS server with JetStream of the test's own, on a port of its own, storing under a
/// directory that outlives its restarts: a test stops it to see the relay wait and catch up.
pub struct OwnNats {
    pub url: String,
    port: u16,
    store: PathBuf,
    child: Option<Child>,
}

impl OwnNats {
    /// A free port and a store, not started yet.
    pub fn unstarted() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let store = std::env::temp_dir().join(format!("pc-test-nats-{}", uuid::Uuid::new_v4().simple()));
        Self { url: format!("nats://127.0.0.1:{port}"), port, store, child: None }
    }

    pub async fn start(&mut self) {
        let binary = std::env::var("PC_TEST_NATS_SERVER").unwrap_or_else(|_| "nats-server".into());
        let child = Command::new(&binary)
            .args(["-js", "-a", "127.0.0.1", "-p", &self.port.to_string(), "-sd"])
            .arg(&self.store)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("start {binary} (set PC_TEST_NATS_SERVER to its path): {e}"));
        self.child = Some(child);
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("nats-server did not listen on {}", self.port);
    }

    /// Stops it (SIGTERM, as an orchestrator would) and waits until it has: its clients are cut
    /// off and find nobody listening until [`Self::start`].
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = child.id().expect("running").to_string();
            std::process::Command::new("kill").args(["-TERM", &pid]).status().expect("run kill");
            child.wait().await.expect("wait for nats-server");
        }
    }
}

impl Drop for OwnNats {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.store);
    }
}
