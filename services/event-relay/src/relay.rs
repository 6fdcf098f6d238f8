//! The relay's loop: wait for the lease, then publish the feed after the stored position a batch
//! at a time, store the batch's last position once NATS has acknowledged every message of it,
//! and wait for the feed to move. Any failure (NATS down, a lost database connection) starts the
//! loop again from the stored position after a backoff: what was published but not stored is
//! published again under the same message ids, and JetStream drops the copies it has already
//! stored within its duplicate window ([`DUPLICATE_WINDOW`]). The services never wait on any of
//! this: they write the feed in their own transactions and know nothing of NATS.

use std::future::Future;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, Context, stream};
use pc_domain::Position;
use pc_store::{
    Database,
    audit::{self, FeedFilter},
    relay::{self, Lease},
};
use prost::Message;

use crate::Config;

type Failure = Box<dyn std::error::Error + Send + Sync>;

/// How long JetStream remembers a message id to drop a copy published again: a relay restarted
/// (or taken over from) within it publishes nothing twice into the stream.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// The first and the longest wait after a failure.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(10));

/// Publishes the feed of `config.database_url` until `shutdown` completes, then gives the lease up.
pub async fn run(config: &Config, shutdown: impl Future<Output = ()>) -> Result<(), Failure> {
    let db = pc_store::connect(&config.database_url, 2).await?;
    // Connects in the background: a NATS server that is down at start is retried like one that
    // goes down later.
    let client = async_nats::ConnectOptions::new()
        .name("event-relay")
        .retry_on_initial_connect()
        .connect(config.nats_url.as_str())
        .await?;
    let relay = Relay {
        // Waits 5 s for an acknowledgement (the default) before the batch fails and is retried.
        jetstream: jetstream::new(client),
        lease: Lease { relay: config.stream.clone(), holder: config.holder(), duration: config.lease() },
        db,
        config: config.clone(),
    };
    tokio::select! {
        () = relay.publish_forever() => Ok(()),
        () = shutdown => {
            relay::release(relay.db.primary(), &relay.lease).await?;
            tracing::info!(holder = relay.lease.holder, "event-relay stopped and gave up its lease");
            Ok(())
        }
    }
}

struct Relay {
    db: Database,
    jetstream: Context,
    lease: Lease,
    config: Config,
}

impl Relay {
    async fn publish_forever(&self) {
        let mut backoff = BACKOFF.0;
        loop {
            let from = self.wait_for_lease().await;
            match self.publish_while_held(from, &mut backoff).await {
                Ok(()) => tracing::warn!(holder = self.lease.holder, "another relay took the lease over; standing by"),
                Err(error) => {
                    tracing::warn!(%error, retry_in = ?backoff, "publishing failed; starting again from the stored position");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF.1);
                }
            }
        }
    }

    /// The stored position, once this process holds the lease (at once if nobody else does).
    async fn wait_for_lease(&self) -> Position {
        let mut said = false;
        loop {
            match relay::take(self.db.primary(), &self.lease).await {
                Ok(Some(position)) => return position,
                Ok(None) if !said => {
                    said = true;
                    tracing::info!(holder = self.lease.holder, "another relay holds the lease; standing by");
                }
                Ok(None) => {}
                Err(error) => tracing::warn!(%error, "could not read the relay's lease"),
            }
            tokio::time::sleep(self.lease.duration / 3).await;
        }
    }

    /// Publishes everything after `position` and keeps up with the feed while the lease is held;
    /// returns when another relay has taken it over.
    async fn publish_while_held(&self, mut position: Position, backoff: &mut Duration) -> Result<(), Failure> {
        self.ensure_stream().await?;
        // On stdout as well as in the log: tests and operators see which relay publishes.
        let after = if position == Position::START { "the beginning".to_owned() } else { position.cursor() };
        println!("event-relay {} publishing to {} after {after}", self.lease.holder, self.config.stream);
        tracing::info!(holder = self.lease.holder, stream = self.config.stream, after, "publishing");
        let renew_every = self.lease.duration / 3;
        let mut renewed = Instant::now();
        let mut moves = self.db.feed_moves();
        loop {
            moves.moved.borrow_and_update();
            let batch =
                audit::read_after(self.db.reader(), position, &FeedFilter::default(), self.config.batch).await?;
            if let Some(last) = batch.last().map(audit::Model::position) {
                self.publish(&batch).await?;
                if !relay::advance(self.db.primary(), &self.lease, last).await? {
                    return Ok(());
                }
                (position, renewed, *backoff) = (last, Instant::now(), BACKOFF.0);
                if batch.len() as u64 == self.config.batch {
                    continue;
                }
            }
            tokio::select! {
                moved = moves.moved.changed() => moved?,
                () = tokio::time::sleep(renew_every.saturating_sub(renewed.elapsed())) => {
                    if !relay::advance(self.db.primary(), &self.lease, position).await? {
                        return Ok(());
                    }
                    renewed = Instant::now();
                }
            }
        }
    }

    /// Publishes `batch` in order and waits until NATS has acknowledged all of it.
    ///
    /// The messages are sent without waiting for each other's acknowledgement, so a connection
    /// lost mid-batch could lose some in flight while the client sends later ones, which it
    /// buffered, once it has reconnected: the stream would hold them out of order. So each
    /// message but the batch's first is published only if its predecessor is the stream's last
    /// (`Nats-Expected-Last-Msg-Id`): what a failed batch stored is a run from its start, and the
    /// retry (from the stored position, before the batch) finds that run as duplicates and goes
    /// on after it. A batch starts only once the one before is acknowledged whole.
    async fn publish(&self, batch: &[audit::Model]) -> Result<(), Failure> {
        let mut acks = Vec::with_capacity(batch.len());
        let mut previous: Option<String> = None;
        for row in batch {
            let event = event_service::events::to_event(row, audit::decode(row)?)?;
            let subject = format!("{}.{}", self.config.subject_prefix, event.event_type);
            let mut message = jetstream::message::PublishMessage::build()
                .message_id(&event.cursor)
                .header("Content-Type", "application/protobuf; proto=partnercenter.event.v1.Event")
                .header("Partner-Center-Relay", self.lease.holder.as_str())
                .payload(event.encode_to_vec().into());
            if let Some(previous) = &previous {
                message = message.expected_last_message_id(previous);
            }
            previous = Some(event.cursor);
            acks.push(self.jetstream.send_publish(subject, message).await?);
        }
        for ack in acks {
            ack.await?;
        }
        Ok(())
    }

    /// The stream, created when missing: every subject under the prefix, file storage, kept as
    /// long as the feed keeps an event, duplicates dropped within [`DUPLICATE_WINDOW`]. A stream
    /// that exists is used as it is (its operator may have configured it otherwise).
    async fn ensure_stream(&self) -> Result<(), Failure> {
        let config = stream::Config {
            name: self.config.stream.clone(),
            subjects: vec![format!("{}.>", self.config.subject_prefix)],
            storage: stream::StorageType::File,
            max_age: self.config.retention(),
            duplicate_window: DUPLICATE_WINDOW,
            ..Default::default()
        };
        self.jetstream.get_or_create_stream(config).await?;
        Ok(())
    }
}
