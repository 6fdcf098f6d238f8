//! `event-relay`: the change feed (rule 14) published to NATS JetStream, for services that would
//! rather consume a stream than hold a WatchEvents call open. The relay reads the feed the way a
//! watcher does (`pc_store::audit::read_after`, gapless), publishes each event as the operator
//! sees it (`partnercenter.event.v1.Event`, protobuf) on `<prefix>.<event type>` with its cursor
//! as the JetStream message id, and stores how far it got only once NATS has acknowledged it.
//! Any number of relays may run: one holds the lease and publishes, the others stand by
//! (`pc_store::relay`). [`relay`] holds the loop; this module its configuration and `main`.

pub mod relay;

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use pc_server::{config::LogFormat, shutdown};

/// The relay's settings, from the environment or flags.
#[derive(Debug, Clone, Parser)]
#[command(name = "event-relay", version, about = "Publishes the change feed to NATS JetStream")]
pub struct Config {
    /// The database whose feed is published: `postgres://user@host/db` or `sqlite://path?mode=rwc`.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: String,

    /// The NATS server (JetStream on).
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,

    /// The JetStream stream events are published to; created (file storage) when missing. Also
    /// names the relay's stored position and lease: relays feeding one stream share them.
    #[arg(long, env = "NATS_STREAM", default_value = "PARTNERCENTER_EVENTS")]
    pub stream: String,

    /// Events go to `<prefix>.<event type>`, e.g. `partnercenter.events.reseller_link.accepted`.
    #[arg(long, env = "NATS_SUBJECT_PREFIX", default_value = "partnercenter.events")]
    pub subject_prefix: String,

    /// Seconds a relay's lease lasts unrenewed: how long a standby waits after the publishing
    /// relay dies before it takes over.
    #[arg(long, env = "RELAY_LEASE_SECS", default_value_t = 10)]
    pub lease_secs: u64,

    /// This process as the lease names its holder; by default the host name and a random suffix.
    #[arg(long, env = "RELAY_ID")]
    pub relay_id: Option<String>,

    /// Events read and published at a time (their acknowledgements are awaited together).
    #[arg(long, env = "RELAY_BATCH", default_value_t = 1000)]
    pub batch: u64,

    /// Hours the stream keeps a message when the relay creates it: the feed's own retention.
    #[arg(long, env = "EVENT_RETENTION_HOURS", default_value_t = 720)]
    pub retention_hours: u64,

    /// `text` for people, `json` for log collectors.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

impl Config {
    pub fn lease(&self) -> Duration {
        Duration::from_secs(self.lease_secs.max(1))
    }

    pub fn retention(&self) -> Duration {
        Duration::from_secs(self.retention_hours.max(1).saturating_mul(3600))
    }

    /// [`Self::relay_id`], or `<HOSTNAME>-<random>`: a container's host name says which replica.
    pub fn holder(&self) -> String {
        self.relay_id.clone().unwrap_or_else(|| {
            let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "event-relay".into());
            format!("{host}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
        })
    }
}

/// Runs the relay until SIGTERM or SIGINT; returns the process exit code.
pub fn main() -> ExitCode {
    let config = Config::parse();
    pc_server::standalone::run_to_exit("event-relay", config.log_format, relay::run(&config, shutdown::signal()))
}
