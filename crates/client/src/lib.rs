//! The typed Rust client of partner-center, the one dependency an internal service adds.
//!
//! - [`Client`]: one HTTP/2 channel and the service clients over it, every call carrying a
//!   bearer token from a [`TokenSource`] (a token the caller holds, or one minted from the shared
//!   secret for tests and tools).
//! - [`retry_idempotent`]: runs a call again on UNAVAILABLE and ABORTED, and on
//!   RESOURCE_EXHAUSTED that says when to retry (a shed call, a rate limit), with backoff and
//!   jitter, never sooner than the server asked. Only for calls that are safe to repeat: Gets,
//!   Lists, and creates that carry a `request_id` (the server answers a repeat with the first result).
//! - [`ListPager`]: walks a List page by page, or collects every item.
//! - [`EventWatcher`]: follows the change feed (EventService.WatchEvents) across broken streams,
//!   watching again after the last event it returned, so its caller sees every event once.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use partner_center_client::{Client, ListPager, TokenSource};
//! use pc_api::partner::v1::ListPartnersRequest;
//!
//! let client = Client::connect("http://127.0.0.1:50050", TokenSource::Static("…".into())).await?;
//! let partners = ListPager::new(ListPartnersRequest::default())
//!     .collect(async |request| client.partners().list_partners(request).await)
//!     .await?;
//! # Ok(()) }
//! ```

use std::{sync::Arc, time::Duration};

use backon::{BackoffBuilder, ExponentialBuilder, Retryable};
use pc_api::channel::v1::channel_service_client::ChannelServiceClient;
use pc_api::event::v1::{
    Event, WatchEventsRequest, event_service_client::EventServiceClient, watch_events_request::Start,
};
use pc_api::partner::v1::partner_service_client::PartnerServiceClient;
use pc_api::relationship::v1::relationship_service_client::RelationshipServiceClient;
use tonic::{
    Code, Request, Response, Status, Streaming,
    metadata::{Ascii, MetadataValue},
    service::{Interceptor, interceptor::InterceptedService},
    transport::{Channel, Endpoint},
};
use tonic_types::StatusExt;

pub use pc_api;

/// Where a client's bearer tokens come from.
#[derive(Clone)]
pub enum TokenSource {
    /// A token the caller obtained elsewhere (its identity provider, `partner-center token`).
    Static(String),
    /// Minted for `subject` with the services' shared HS256 secret (tests, tools, the dev server);
    /// each token lives `ttl` and a new one is minted per call.
    Secret { secret: String, subject: String, ttl: Duration },
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Static(_) => f.write_str("TokenSource::Static(..)"),
            Self::Secret { subject, .. } => write!(f, "TokenSource::Secret {{ subject: {subject:?}, .. }}"),
        }
    }
}

#[derive(serde::Serialize)]
struct Claims<'a> {
    sub: &'a str,
    iat: i64,
    exp: i64,
}

impl TokenSource {
    /// The `authorization` header value for the next call.
    fn header(&self) -> Result<MetadataValue<Ascii>, Status> {
        let token = match self {
            Self::Static(token) => token.clone(),
            Self::Secret { secret, subject, ttl } => {
                let now = chrono::Utc::now().timestamp();
                let ttl = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
                let claims = Claims { sub: subject, iat: now, exp: now.saturating_add(ttl) };
                let key = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes());
                jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key)
                    .map_err(|e| Status::unauthenticated(format!("cannot mint a token: {e}")))?
            }
        };
        format!("Bearer {token}").parse().map_err(|_| Status::unauthenticated("the token is not ASCII"))
    }
}

/// Adds the token source's bearer token to every call.
#[derive(Clone, Debug)]
pub struct Bearer(Arc<TokenSource>);

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        request.metadata_mut().insert("authorization", self.0.header()?);
        Ok(request)
    }
}

/// Channels to partner-center's services and a token source; cheap to clone. One address (the
/// dev server, or a balancer in front of the services) serves all of them over one HTTP/2
/// connection; separate deployments (compose's 50051-50054) get a channel each.
#[derive(Clone, Debug)]
pub struct Client {
    partners: Channel,
    relationships: Channel,
    channel: Channel,
    events: Channel,
    bearer: Bearer,
}

pub type Authenticated = InterceptedService<Channel, Bearer>;

impl Client {
    /// Connects to `address` (`http://host:port`, or `https://` with the system's roots when the
    /// channel is configured for TLS by [`Client::from_channel`]).
    pub async fn connect(address: impl Into<String>, tokens: TokenSource) -> Result<Self, tonic::transport::Error> {
        Ok(Self::from_channel(open(address.into()).await?, tokens))
    }

    /// Connects to each service at its own address (PartnerService, RelationshipService,
    /// ChannelService), as separate deployments serve them. EventService is reached through the
    /// PartnerService address (every port of compose's HAProxy routes every service), or
    /// [`Client::with_events`].
    pub async fn connect_each(
        partners: impl Into<String>,
        relationships: impl Into<String>,
        channel: impl Into<String>,
        tokens: TokenSource,
    ) -> Result<Self, tonic::transport::Error> {
        let (partners, relationships, channel) =
            (open(partners.into()).await?, open(relationships.into()).await?, open(channel.into()).await?);
        Ok(Self { events: partners.clone(), partners, relationships, channel, bearer: Bearer(Arc::new(tokens)) })
    }

    /// The same client, reaching EventService at `address`.
    pub async fn with_events(self, address: impl Into<String>) -> Result<Self, tonic::transport::Error> {
        Ok(Self { events: open(address.into()).await?, ..self })
    }

    /// A client over one channel the caller built (TLS, timeouts, lazy connection) for all three
    /// services.
    pub fn from_channel(channel: Channel, tokens: TokenSource) -> Self {
        Self {
            partners: channel.clone(),
            relationships: channel.clone(),
            events: channel.clone(),
            channel,
            bearer: Bearer(Arc::new(tokens)),
        }
    }

    /// The same channels, calling as someone else.
    pub fn with_tokens(&self, tokens: TokenSource) -> Self {
        Self { bearer: Bearer(Arc::new(tokens)), ..self.clone() }
    }

    pub fn partners(&self) -> PartnerServiceClient<Authenticated> {
        PartnerServiceClient::with_interceptor(self.partners.clone(), self.bearer.clone())
    }

    pub fn relationships(&self) -> RelationshipServiceClient<Authenticated> {
        RelationshipServiceClient::with_interceptor(self.relationships.clone(), self.bearer.clone())
    }

    pub fn channel(&self) -> ChannelServiceClient<Authenticated> {
        ChannelServiceClient::with_interceptor(self.channel.clone(), self.bearer.clone())
    }

    pub fn events(&self) -> EventServiceClient<Authenticated> {
        EventServiceClient::with_interceptor(self.events.clone(), self.bearer.clone())
    }
}

async fn open(address: String) -> Result<Channel, tonic::transport::Error> {
    Endpoint::from_shared(address)?.connect_timeout(Duration::from_secs(5)).connect().await
}

/// Attempts in all, the first included, of [`retry_idempotent`].
pub const MAX_ATTEMPTS: usize = 5;

/// Whether another attempt of an idempotent call may succeed: the server was unavailable, the
/// call lost a race (ABORTED: a concurrent change or a stale etag the caller will read again), or
/// the server refused it for now and said when to retry (RESOURCE_EXHAUSTED with `RetryInfo`: the
/// server was running its limit of calls, or the caller's rate limit was spent).
pub fn is_retryable(status: &Status) -> bool {
    match status.code() {
        Code::Unavailable | Code::Aborted => true,
        Code::ResourceExhausted => retry_delay(status).is_some(),
        _ => false,
    }
}

/// The wait the server asked for in the status's `google.rpc.RetryInfo`, if any.
pub fn retry_delay(status: &Status) -> Option<Duration> {
    status.get_details_retry_info()?.retry_delay
}

/// Runs `call` until it succeeds, fails with a status [`is_retryable`] does not retry, or has run
/// [`MAX_ATTEMPTS`] times, waiting 50 ms, 100 ms, ... (with jitter) in between, or the server's
/// [`retry_delay`] when that is longer. Only for calls safe to repeat: Gets, Lists, and creates
/// carrying a `request_id`.
pub async fn retry_idempotent<T, F, Fut>(call: F) -> Result<Response<T>, Status>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Response<T>, Status>>,
{
    call.retry(backoff())
        .sleep(tokio::time::sleep)
        .when(is_retryable)
        .adjust(|status, wait| match (wait, retry_delay(status)) {
            (Some(wait), Some(asked)) => Some(wait.max(asked)),
            (wait, _) => wait,
        })
        .await
}

/// The waits between attempts: 50 ms, doubling, with jitter, [`MAX_ATTEMPTS`] attempts in all.
fn backoff() -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(50))
        .with_max_times(MAX_ATTEMPTS - 1)
        .with_jitter()
}

pub use pc_api::requests::{ListRequest, ListResponse};

/// Walks a List: each [`ListPager::next_page`] asks for the page after the last one, until the
/// server says there is none. Every page is retried like [`retry_idempotent`] (a List is safe to
/// repeat).
#[derive(Debug, Clone)]
pub struct ListPager<R> {
    request: R,
    done: bool,
}

impl<R: ListRequest> ListPager<R> {
    /// A pager over `request` (its filters and page size), from its first page.
    pub fn new(request: R) -> Self {
        Self { request, done: false }
    }

    /// The next page's items, or `None` after the last page.
    pub async fn next_page<F>(
        &mut self,
        mut list: F,
    ) -> Result<Option<Vec<<R::Response as ListResponse>::Item>>, Status>
    where
        F: AsyncFnMut(R) -> Result<Response<R::Response>, Status>,
    {
        if self.done {
            return Ok(None);
        }
        // The same schedule as retry_idempotent; `list` is an async closure, which backon's
        // `Retryable` (for `FnMut() -> Future`) cannot drive, so the waits are taken one by one.
        let mut waits = backoff().build();
        let response = loop {
            match list(self.request.clone()).await {
                Err(status) if is_retryable(&status) => match waits.next() {
                    Some(wait) => tokio::time::sleep(wait).await,
                    None => return Err(status),
                },
                outcome => break outcome?,
            }
        };
        let (items, next) = response.into_inner().into_page();
        self.done = next.is_empty();
        self.request.set_page_token(next);
        Ok(Some(items))
    }

    /// Every item of every page.
    pub async fn collect<F>(mut self, mut list: F) -> Result<Vec<<R::Response as ListResponse>::Item>, Status>
    where
        F: AsyncFnMut(R) -> Result<Response<R::Response>, Status>,
    {
        let mut all = Vec::new();
        while let Some(page) = self.next_page(&mut list).await? {
            all.extend(page);
        }
        Ok(all)
    }
}

/// Follows the change feed: [`EventWatcher::next`] returns each event the caller may see once, in
/// feed order. When the stream ends or breaks (a server draining, a connection aged out, a
/// balancer's idle timeout, a replica gone) it watches again after the last event it returned,
/// waiting like [`retry_idempotent`] between attempts that fail; a status that no retry can change
/// (PERMISSION_DENIED, OUT_OF_RANGE: the feed no longer holds the cursor) is returned. Keep
/// [`EventWatcher::cursor`] to resume in another process with [`EventWatcher::after`].
#[derive(Debug)]
pub struct EventWatcher {
    events: EventServiceClient<Authenticated>,
    request: WatchEventsRequest,
    stream: Option<Streaming<Event>>,
    cursor: Option<String>,
    watches: u32,
}

impl EventWatcher {
    /// Watches as `request` says (filters, and where to start the first time).
    pub fn new(client: &Client, request: WatchEventsRequest) -> Self {
        Self { events: client.events(), request, stream: None, cursor: None, watches: 0 }
    }

    /// Watches the events after `cursor`, one an earlier watcher returned.
    pub fn after(client: &Client, mut request: WatchEventsRequest, cursor: String) -> Self {
        request.start = Some(Start::AfterCursor(cursor.clone()));
        Self { cursor: Some(cursor), ..Self::new(client, request) }
    }

    /// The cursor of the last event returned.
    pub fn cursor(&self) -> Option<&str> {
        self.cursor.as_deref()
    }

    /// How many streams it has opened: 1, and one more each time it watched again.
    pub fn watches(&self) -> u32 {
        self.watches
    }

    /// The next event, watching again as often as it takes.
    pub async fn next(&mut self) -> Result<Event, Status> {
        let mut waits = backoff().without_max_times().with_max_delay(Duration::from_secs(5)).build();
        loop {
            let stream = match &mut self.stream {
                Some(stream) => stream,
                None => {
                    let mut request = self.request.clone();
                    if let Some(cursor) = &self.cursor {
                        request.start = Some(Start::AfterCursor(cursor.clone()));
                    }
                    self.watches += 1;
                    match self.events.watch_events(request).await {
                        Ok(response) => self.stream.insert(response.into_inner()),
                        Err(status) if stream_broke(&status) => {
                            tokio::time::sleep(waits.next().unwrap_or(Duration::from_secs(5))).await;
                            continue;
                        }
                        Err(status) => return Err(status),
                    }
                }
            };
            match stream.message().await {
                Ok(Some(event)) => {
                    self.cursor = Some(event.cursor.clone());
                    return Ok(event);
                }
                // The server ended the stream (it is draining): watch again at once.
                Ok(None) => self.stream = None,
                Err(status) if stream_broke(&status) => {
                    self.stream = None;
                    tokio::time::sleep(waits.next().unwrap_or(Duration::from_secs(5))).await;
                }
                Err(status) => return Err(status),
            }
        }
    }
}

/// Whether a watch that failed with `status` may go on from its cursor: what [`is_retryable`]
/// retries, and the ends of a stream whose connection went away (CANCELLED, UNKNOWN: tonic's
/// status for a broken HTTP/2 stream).
fn stream_broke(status: &Status) -> bool {
    is_retryable(status) || matches!(status.code(), Code::Cancelled | Code::Unknown)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tonic_types::ErrorDetails;

    use super::*;

    fn shed(delay: Duration) -> Status {
        Status::with_error_details(Code::ResourceExhausted, "busy", ErrorDetails::with_retry_info(Some(delay)))
    }

    #[test]
    fn resource_exhausted_is_retried_only_when_the_server_says_when() {
        assert!(is_retryable(&shed(Duration::from_millis(250))));
        assert_eq!(retry_delay(&shed(Duration::from_millis(250))), Some(Duration::from_millis(250)));
        // A message too large, say: trying again changes nothing.
        assert!(!is_retryable(&Status::resource_exhausted("request too large")));
        assert!(!is_retryable(&Status::invalid_argument("bad")));
    }

    #[tokio::test(start_paused = true)]
    async fn a_shed_call_is_retried_no_sooner_than_the_server_asked() {
        let attempts = AtomicUsize::new(0);
        let started = tokio::time::Instant::now();
        let answer = retry_idempotent(|| async {
            match attempts.fetch_add(1, Ordering::SeqCst) {
                0 => Err(shed(Duration::from_secs(3))),
                _ => Ok(Response::new(())),
            }
        })
        .await;
        assert!(answer.is_ok());
        assert_eq!(attempts.load(Ordering::SeqCst), 2);
        // The backoff alone would have waited about 50 ms.
        assert!(started.elapsed() >= Duration::from_secs(3), "retried after {:?}", started.elapsed());
    }
}
