#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

//! What a client cannot read, for assertions: the audit log and the metrics endpoint.

use std::net::SocketAddr;

use pc_domain::Change;

use crate::TestApp;

/// The methods of the changes recorded for `resource`, oldest first.
pub async fn audit_actions(app: &TestApp, resource: &str) -> Vec<String> {
    audit_history(app, resource).await.into_iter().map(|change| change.method).collect()
}

/// Waits until the change feed has passed the event `event_type` of `resource` (it passes a
/// change once every older write has ended, which on PostgreSQL may be a moment after the call
/// that made it returned), at most 30 s.
pub async fn feed_passed(app: &TestApp, resource: &str, event_type: &str) {
    use pc_api::event::v1::ListEventsRequest;
    let start = std::time::Instant::now();
    let last =
        ListEventsRequest { resource: resource.to_owned(), event_type: event_type.to_owned(), ..Default::default() };
    while app
        .events_as(Some("operator"))
        .list_events(last.clone())
        .await
        .expect("list events")
        .into_inner()
        .events
        .is_empty()
    {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(30),
            "the feed never passed {event_type} of {resource}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// The changes recorded for `resource`, oldest first.
pub async fn audit_history(app: &TestApp, resource: &str) -> Vec<Change> {
    pc_store::audit::history(app.db.primary(), resource).await.expect("read the audit log")
}

/// The cursor of every event the feed has passed so far, in feed order (as an operator's
/// ListEvents pages them, read straight from the store).
pub async fn feed_cursors(app: &TestApp) -> Vec<String> {
    let filter = pc_store::audit::FeedFilter::default();
    let rows = pc_store::audit::read_after(app.db.primary(), pc_domain::Position::START, &filter, u64::MAX >> 1)
        .await
        .expect("read the feed");
    rows.iter().map(|row| row.position().cursor()).collect()
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
