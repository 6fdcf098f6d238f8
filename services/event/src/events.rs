//! ListEvents and WatchEvents: the audit log read as a feed (rule 14). Both read the events after
//! a position (`pc_store::audit::read_after`, which never passes an event a transaction still
//! running could precede), keep those the request's filters ask for and the caller may see
//! (`Change::visible_to`, on the parties the write recorded), and answer each with its cursor and
//! the resource as the change left it (the row the write path kept, shown through its own
//! service's `to_proto`, `resource_after`).
//! A List pages with a token bound to the caller and its filters; a watch reads on as the feed's
//! tail moves (`pc_store::audit::FeedTail`: one poll per process, whoever watches).

use chrono::{DateTime, Utc};
use pc_api::event::v1::{
    Event, FieldChange, ListEventsRequest, ListEventsResponse, WatchEventsRequest, event::ResourceAfter,
    watch_events_request::Start,
};
use pc_domain::{Change, Error, PageKey, Position, Principal, ResourceKind};
use pc_server::convert::timestamp;
use pc_store::{
    Database,
    audit::{self, FeedFilter},
};
use prost_types::Timestamp;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

/// Events read from the database at a time.
const BATCH: u64 = 256;
/// The most events one ListEvents call reads past before it answers (with a shorter page and a
/// token to go on): a caller that sees few of them does not make one call scan the whole log.
const MAX_SCANNED: usize = 10_000;
/// Events a watcher may have read ahead of what its stream has sent.
const WATCH_BUFFER: usize = 64;

/// What a request narrows the feed to: in SQL where it can (a resource, a type, times), and the
/// event type, which is read off each change.
struct Filters {
    feed: FeedFilter,
    event_type: Option<String>,
}

impl Filters {
    fn parse(
        resource: &str,
        resource_type: &str,
        event_type: &str,
        start: Option<&Timestamp>,
        end: Option<&Timestamp>,
    ) -> Result<Self, Error> {
        let mut feed = FeedFilter::default();
        if !resource.is_empty() {
            ResourceKind::of_name(resource)
                .ok_or_else(|| Error::invalid("resource", "must be a resource name such as `partners/{id}`"))?;
            feed.resource = Some(resource.to_owned());
        }
        if !resource_type.is_empty() {
            feed.collection = Some(kind_named(resource_type).ok_or_else(unknown_type("resource_type"))?.collection());
        }
        if !event_type.is_empty() {
            let (kind, _) = event_type.split_once('.').unwrap_or((event_type, ""));
            kind_named(kind).ok_or_else(unknown_type("event_type"))?;
        }
        feed.since = start.map(|time| time_of("start_time", time)).transpose()?;
        feed.until = end.map(|time| time_of("end_time", time)).transpose()?;
        Ok(Self { feed, event_type: (!event_type.is_empty()).then(|| event_type.to_owned()) })
    }

    /// Whether `caller` receives `change`: the filters want it and the caller could read it.
    fn keep(&self, change: &Change, caller: &Principal) -> bool {
        self.event_type.as_ref().is_none_or(|wanted| *wanted == change.event_type()) && change.visible_to(caller)
    }
}

/// The kind a `resource_type` names (`reseller_link`), as events spell it.
fn kind_named(name: &str) -> Option<ResourceKind> {
    ResourceKind::ALL.iter().copied().find(|kind| kind.type_name() == name)
}

fn unknown_type(field: &'static str) -> impl FnOnce() -> Error {
    move || {
        let known: Vec<_> = ResourceKind::ALL.iter().map(|kind| kind.type_name()).collect();
        Error::invalid(field, format!("names no resource type; the types are {}", known.join(", ")))
    }
}

fn time_of(field: &str, time: &Timestamp) -> Result<DateTime<Utc>, Error> {
    let nanos = u32::try_from(time.nanos).map_err(|_| Error::invalid(field, "has negative nanos"))?;
    DateTime::from_timestamp(time.seconds, nanos).ok_or_else(|| Error::invalid(field, "is out of range"))
}

/// The resource a change left, as the Get of its service shows it (`None` for a row recorded
/// before resources were kept with their changes).
fn resource_after(kind: ResourceKind, snapshot: Option<&str>) -> Result<Option<ResourceAfter>, Error> {
    use pc_store::write::restore;
    let Some(snapshot) = snapshot else { return Ok(None) };
    Ok(Some(match kind {
        ResourceKind::Partner => ResourceAfter::Partner(partner_service::partners::to_proto(restore(snapshot)?)?),
        ResourceKind::Customer => ResourceAfter::Customer(partner_service::customers::to_proto(restore(snapshot)?)?),
        ResourceKind::ResellerLink => {
            ResourceAfter::ResellerLink(relationship_service::reseller_links::to_proto(restore(snapshot)?)?)
        }
        ResourceKind::CustomerRelationship => ResourceAfter::CustomerRelationship(
            relationship_service::customer_relationships::to_proto(restore(snapshot)?)?,
        ),
        ResourceKind::Subscription => {
            ResourceAfter::Subscription(channel_service::subscriptions::to_proto(restore(snapshot)?)?)
        }
        ResourceKind::SupportAssignment => {
            ResourceAfter::SupportAssignment(channel_service::support_assignments::to_proto(restore(snapshot)?)?)
        }
        ResourceKind::Transfer => ResourceAfter::Transfer(channel_service::transfers::to_proto(restore(snapshot)?)?),
        ResourceKind::AdminRelationship => {
            ResourceAfter::AdminRelationship(relationship_service::admin_relationships::to_proto(restore(snapshot)?)?)
        }
    }))
}

/// An event as the API sends it (and the event relay publishes it).
pub fn to_event(row: &audit::Model, change: Change) -> Result<Event, Error> {
    let resource_after = resource_after(change.kind, row.resource_after.as_deref())?;
    let event_type = change.event_type();
    let (previous_state, state) = change.state.map(|state| (state.from, state.to)).unwrap_or_default();
    Ok(Event {
        cursor: row.position().cursor(),
        event_type,
        resource: change.resource,
        resource_type: change.kind.type_name(),
        method: change.method,
        principal: change.principal,
        create_time: Some(timestamp(row.create_time)),
        previous_state: previous_state.unwrap_or_default(),
        state: state.unwrap_or_default(),
        field_changes: change
            .fields
            .into_iter()
            .map(|(field, delta)| FieldChange {
                field,
                previous_value: delta.from.unwrap_or_default(),
                value: delta.to.unwrap_or_default(),
            })
            .collect(),
        cause: change.cause.unwrap_or_default(),
        delegation: change.delegation.unwrap_or_default(),
        resource_after,
    })
}

pub async fn list_events(
    db: &Database,
    pages: &PageKey,
    caller: Principal,
    request: ListEventsRequest,
) -> Result<ListEventsResponse, Error> {
    let filters = Filters::parse(
        &request.resource,
        &request.resource_type,
        &request.event_type,
        request.start_time.as_ref(),
        request.end_time.as_ref(),
    )?;
    // The caller and every filter bind the page token: a token pages only the view it began in.
    let query = format!(
        "{caller}|{}|{}|{}|{:?}|{:?}",
        request.resource, request.resource_type, request.event_type, filters.feed.since, filters.feed.until
    );
    let size = usize::try_from(pc_domain::page::page_size(request.page_size)?).unwrap_or(usize::MAX);
    let mut after = match request.page_token.as_str() {
        "" => Position::START,
        token => Position::parse_page_token(token, &query, pages)?,
    };
    let mut events = Vec::new();
    let mut scanned = 0;
    loop {
        let batch = audit::read_after(db.reader(), after, &filters.feed, BATCH).await.map_err(|error| match error {
            // A page token is a cursor too: the events after it may have been deleted.
            Error::OutOfRange { message, .. } => Error::OutOfRange { field: "page_token".into(), message },
            other => other,
        })?;
        let last_batch = (batch.len() as u64) < BATCH;
        for row in batch {
            let change = audit::decode(&row)?;
            if filters.keep(&change, &caller) {
                if events.len() == size {
                    // One more follows: the next page starts after this page's last event.
                    return Ok(ListEventsResponse { events, next_page_token: after.page_token(&query, pages) });
                }
                events.push(to_event(&row, change)?);
            }
            after = row.position();
            scanned += 1;
        }
        if last_batch {
            return Ok(ListEventsResponse { events, next_page_token: String::new() });
        }
        if scanned >= MAX_SCANNED {
            return Ok(ListEventsResponse { events, next_page_token: after.page_token(&query, pages) });
        }
    }
}

pub async fn watch_events(
    db: &Database,
    caller: Principal,
    request: WatchEventsRequest,
) -> Result<ReceiverStream<Result<Event, Error>>, Error> {
    let filters = Filters::parse(&request.resource, &request.resource_type, &request.event_type, None, None)?;
    // Subscribed before the start is read, so no move of the tail after it goes unheard.
    let moves = db.feed_moves();
    let mut after = match request.start {
        Some(Start::AfterCursor(cursor)) => Position::parse_cursor("after_cursor", &cursor)?,
        Some(Start::FromBeginning(true)) => Position::START,
        Some(Start::FromBeginning(false)) | None => audit::now(db.reader()).await?,
    };
    // Refused at once rather than as the stream's first message: the feed no longer holds it.
    audit::ensure_held(db.reader(), after).await?;
    let (sender, receiver) = mpsc::channel(WATCH_BUFFER);
    let db = db.clone();
    tokio::spawn(async move {
        // The whole subscription, not only its receiver (a closure captures just the fields it
        // uses): it keeps the tail polling while this watch lasts.
        let mut moves = moves;
        loop {
            moves.moved.borrow_and_update();
            let batch = match audit::read_after(db.reader(), after, &filters.feed, BATCH).await {
                Ok(batch) => batch,
                Err(error) => return drop(sender.send(Err(error)).await),
            };
            let caught_up = (batch.len() as u64) < BATCH;
            for row in batch {
                after = row.position();
                let event = match audit::decode(&row) {
                    Ok(change) if filters.keep(&change, &caller) => to_event(&row, change),
                    Ok(_) => continue,
                    Err(error) => Err(error),
                };
                let failed = event.is_err();
                if sender.send(event).await.is_err() || failed {
                    return;
                }
            }
            if caught_up {
                tokio::select! {
                    moved = moves.moved.changed() => if moved.is_err() { return },
                    () = sender.closed() => return,
                }
            }
        }
    });
    Ok(ReceiverStream::new(receiver))
}
