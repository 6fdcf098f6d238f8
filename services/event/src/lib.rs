//! `partnercenter.event.v1.EventService`: the change feed (rule 14), read from the audit log that
//! every write appends to in its own transaction. [`events`] holds the handlers; this module only
//! wires them to tonic.

pub mod events;

use pc_api::event::v1::{
    Event, ListEventsRequest, ListEventsResponse, WatchEventsRequest,
    event_service_server::{EventService, EventServiceServer},
};

pc_server::grpc_service! {
    /// The EventService implementation over one database.
    EventApi serves EventService through EventServiceServer;
    rpc list_events(ListEventsRequest) -> ListEventsResponse = list events::list_events;
    stream watch_events(WatchEventsRequest) -> Event as WatchEventsStream = events::watch_events;
}
