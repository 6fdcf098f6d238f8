//! The event relay (`event-relay`): every event of the feed reaches NATS JetStream exactly once,
//! in feed order, through a relay killed mid-stream, a standby taking over and NATS going down;
//! of relays started at once only one publishes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use pc_api::partner::v1::{CreatePartnerRequest, ProgramRole};
use pc_api::types::v1::Cloud;
use pc_tests::nats::{OwnNats, Received, RelayProcess, TestStream};
use pc_tests::{TestApp, feed_cursors, new_partner, spawn_app};
use tokio::task::JoinHandle;

/// Writers enrolling partners until stopped, each through a client of its own; every enrolment
/// is one event.
struct Writers {
    stop: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Writers {
    fn start(app: &TestApp, count: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = (0..count)
            .map(|_| {
                let (mut partners, stop) = (app.partners(), stop.clone());
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let partner = Some(new_partner(ProgramRole::DirectBillPartner, Cloud::Global));
                        let request = CreatePartnerRequest { partner, ..Default::default() };
                        partners.create_partner(request).await.expect("enrol a partner");
                    }
                })
            })
            .collect();
        Self { stop, tasks }
    }

    async fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            task.await.expect("a writer");
        }
    }
}

/// Waits until `stream` holds at least as many messages as the feed has events (more would be
/// copies, which the caller's assertions find), then reads them all. The writers have stopped,
/// but on PostgreSQL the feed passes an event only once every transaction that started before
/// it has ended, so both counts may still grow for a moment.
async fn read_when_caught_up(app: &TestApp, stream: &TestStream) -> (Vec<String>, Vec<Received>) {
    let start = Instant::now();
    loop {
        let feed = feed_cursors(app).await;
        let published = stream.messages().await;
        if published >= feed.len() as u64 && !feed.is_empty() {
            // One more look: the feed may have passed a last event since it was read.
            let feed = feed_cursors(app).await;
            if published >= feed.len() as u64 {
                return (feed, stream.read_all().await);
            }
        }
        assert!(start.elapsed() < Duration::from_secs(60), "the stream holds {published} of {} events", feed.len());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every event of the feed, once each, in feed order, on its subject, as the operator sees it.
fn assert_exactly_once_in_order(feed: &[String], received: &[Received], stream: &TestStream) {
    let ids: Vec<&str> = received.iter().map(|message| message.message_id.as_str()).collect();
    let distinct: std::collections::HashSet<&str> = ids.iter().copied().collect();
    let missing = feed.iter().filter(|cursor| !distinct.contains(cursor.as_str())).count();
    assert_eq!(
        (ids.len() - distinct.len(), missing),
        (0, 0),
        "(copies, missing events) among {} messages for {} events",
        ids.len(),
        feed.len()
    );
    assert!(ids.iter().zip(feed).all(|(id, cursor)| id == cursor), "the messages are not in the feed's order");
    for message in received {
        assert_eq!(message.event.cursor, message.message_id);
        assert_eq!(message.subject, format!("{}.{}", stream.subject_prefix, message.event.event_type));
    }
}

#[tokio::test]
async fn a_relay_killed_mid_stream_is_taken_over_and_every_event_is_read_once() {
    let app = spawn_app().await;
    let stream = TestStream::create().await;
    let url = app.database_url();
    // Two relays started at once, as two replicas of a deployment.
    let mut first = RelayProcess::start(&url, &stream, "relay-1", 2);
    let mut second = RelayProcess::start(&url, &stream, "relay-2", 2);
    let writers = Writers::start(&app, 4);

    let limit = Duration::from_secs(20);
    let (publisher, mut standby) = tokio::select! {
        true = first.publishes_within(limit) => (first, second),
        true = second.publishes_within(limit) => (second, first),
    };
    stream.holds_more(0, 100).await;
    assert!(!standby.is_publishing(), "both relays publish");
    let killed = publisher.holder.clone();
    publisher.kill().await;
    assert!(standby.publishes_within(Duration::from_secs(20)).await, "the standby never took over");
    // The killed one comes back, and stands by in turn.
    let restarted = RelayProcess::start(&url, &stream, "relay-restarted", 2);
    stream.holds_more(stream.messages().await, 100).await;
    writers.stop().await;

    let (feed, received) = read_when_caught_up(&app, &stream).await;
    assert_exactly_once_in_order(&feed, &received, &stream);
    // One relay published at a time: the killed one's messages, then the standby's.
    let mut relays: Vec<&str> = received.iter().map(|message| message.relay.as_str()).collect();
    relays.dedup();
    assert_eq!(relays, [killed.as_str(), standby.holder.as_str()], "who published, in stream order");
    assert!(!restarted.is_publishing());
    stream.delete().await;
}

#[tokio::test]
async fn the_relay_waits_out_nats_being_down_and_catches_up() {
    let app = spawn_app().await;
    let mut nats = OwnNats::unstarted();
    let stream = TestStream::named(&nats.url);
    // Started while NATS is down: it retries, and the writes never wait on it.
    let _relay = RelayProcess::start(&app.database_url(), &stream, "relay", 2);
    let writers = Writers::start(&app, 2);
    tokio::time::sleep(Duration::from_millis(500)).await;
    nats.start().await;
    stream.holds_more(0, 50).await;
    // Down again mid-stream, while the writers go on.
    nats.stop().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    nats.start().await;
    stream.holds_more(stream.messages().await, 50).await;
    writers.stop().await;

    let (feed, received) = read_when_caught_up(&app, &stream).await;
    assert_exactly_once_in_order(&feed, &received, &stream);
}

#[tokio::test]
async fn of_relays_racing_for_a_free_or_lapsed_lease_exactly_one_holds_it() {
    use pc_store::relay::{self, Lease};
    let app = spawn_app().await;
    let lease = |holder: usize, millis: u64| Lease {
        relay: "RACED".into(),
        holder: format!("relay-{holder}"),
        duration: Duration::from_millis(millis),
    };
    // Each round: 8 relays ask at once, each on its own connection of the pool.
    for round in 0..20 {
        let takes = (0..8).map(|holder| {
            let (db, lease) = (app.db.clone(), lease(round * 8 + holder, 200));
            tokio::spawn(async move { relay::take(db.primary(), &lease).await.expect("take").is_some() })
        });
        let mut holders = 0;
        for take in takes {
            holders += usize::from(take.await.expect("a relay"));
        }
        assert_eq!(holders, 1, "round {round}: {holders} relays hold the lease");
        // The next round's relays race for it once it has lapsed.
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // A relay whose lease was taken over stores nothing.
    let (late, now) = (lease(1000, 10), lease(1001, 60_000));
    assert!(relay::take(app.db.primary(), &late).await.expect("take").is_some());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(relay::take(app.db.primary(), &now).await.expect("take").is_some());
    let moved = pc_domain::Position { transaction_id: 7, id: uuid::Uuid::now_v7() };
    assert!(!relay::advance(app.db.primary(), &late, moved).await.expect("advance"));
    assert_eq!(relay::take(app.db.primary(), &now).await.expect("renew"), Some(pc_domain::Position::START));
}
