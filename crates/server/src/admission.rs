//! Admission: which calls the server starts, and how long it lets them run. Every call to a
//! partner-center service passes here before it is decoded (a tower layer on the whole server):
//!
//! - **Bounded**: at most `MAX_IN_FLIGHT` calls run at once in the process (tower's
//!   `GlobalConcurrencyLimit` over one semaphore for all services), and a call over the limit is
//!   shed at once by tower's `LoadShed` — RESOURCE_EXHAUSTED with `RetryInfo` and the reason
//!   `SERVER_OVERLOADED` — instead of waiting in a queue that grows with the load. The HTTP/2 cap
//!   on streams per connection (`MAX_CONCURRENT_STREAMS`, [`crate::serve`]) bounds what one
//!   client can even send.
//! - **Pushback that adapts** ([`Pushback`]): a shed call costs the server nearly what a served
//!   GetPartner does (the HTTP/2 work is the same), so clients retrying too soon would spend the
//!   capacity on being refused. The retry delay a shed call is given doubles while many calls are
//!   shed and halves back towards `OVERLOAD_RETRY_DELAY_MS` when few are.
//! - **Deadlines**: a call runs until the sooner of its `grpc-timeout` and `CALL_TIMEOUT_SECS`;
//!   then it is dropped — its wait for a pooled connection with it — and answered
//!   DEADLINE_EXCEEDED. A call whose deadline is zero is never started. The deadline reaches the
//!   database through [`pc_store::deadline`], which cancels the statements of a dropped call.
//! - **Health first**: `grpc.health.v1` and reflection skip both, so an orchestrator's probe is
//!   answered however busy the services are.

use std::{
    future::Future,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use http::{HeaderMap, Request, Response};
use pc_domain::error::ERROR_DOMAIN;
use pc_store::deadline::{self, Deadline};
use tokio::{sync::Semaphore, time::Instant};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};
use tower::{
    BoxError, Layer, Service, ServiceBuilder, ServiceExt,
    limit::{ConcurrencyLimit, GlobalConcurrencyLimitLayer},
    load_shed::{LoadShed, error::Overloaded},
};

/// Paths that are never shed nor timed out: probes and tooling must get through to a busy server.
const EXEMPT: [&str; 2] = ["/grpc.health.v1.Health/", "/grpc.reflection."];

/// How calls are admitted (see the module documentation).
#[derive(Debug, Clone, Copy)]
pub struct AdmissionPolicy {
    /// Calls running at once in the process; more are shed.
    pub max_in_flight: usize,
    /// The longest any call may run, and the deadline of a call whose client set none.
    pub call_timeout: Duration,
    /// The least wait a shed call's `RetryInfo` asks for ([`Pushback`] lengthens it under load).
    pub retry_delay: Duration,
}

/// The tower layer that admits calls by an [`AdmissionPolicy`].
#[derive(Debug, Clone)]
pub struct AdmissionLayer {
    policy: AdmissionPolicy,
    slots: Arc<Semaphore>,
    pushback: Arc<Pushback>,
}

impl AdmissionLayer {
    pub fn new(policy: AdmissionPolicy) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(policy.max_in_flight.max(1))),
            pushback: Arc::new(Pushback::new(policy.retry_delay)),
            policy,
        }
    }
}

/// How often the retry delay is reconsidered, from the calls served and shed since last time.
const PUSHBACK_WINDOW: Duration = Duration::from_millis(250);
/// The longest retry delay a shed call is given.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(30);

/// The retry delay shed calls are given: at least the configured one, doubled after each
/// [`PUSHBACK_WINDOW`] in which more than one call was shed for every four served (the clients
/// waiting are many more than the server serves in one delay), halved back after a window with
/// fewer than one for every twenty. It errs towards waiting long: a refusal costs the server
/// about what serving a GetPartner does, so every early retry is capacity taken from the calls it
/// serves (measured in the README's Performance section). Only the shed path takes the lock, and
/// only with `try_lock`.
#[derive(Debug)]
pub struct Pushback {
    base: Duration,
    delay_ms: AtomicU64,
    served: AtomicU64,
    shed: AtomicU64,
    window_started: Mutex<Instant>,
}

impl Pushback {
    fn new(base: Duration) -> Self {
        Self {
            base,
            delay_ms: AtomicU64::new(millis(base)),
            served: AtomicU64::new(0),
            shed: AtomicU64::new(0),
            window_started: Mutex::new(Instant::now()),
        }
    }

    fn served(&self) {
        self.served.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a shed call and returns the delay to give it.
    fn shed(&self) -> Duration {
        self.shed.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut started) = self.window_started.try_lock()
            && let elapsed = started.elapsed()
            && elapsed >= PUSHBACK_WINDOW
        {
            let (shed, served) = (self.shed.swap(0, Ordering::Relaxed), self.served.swap(0, Ordering::Relaxed));
            let delay = self.delay_ms.load(Ordering::Relaxed);
            let next = if elapsed > PUSHBACK_WINDOW * 40 {
                // The first shedding in a while: start again from the configured delay.
                millis(self.base)
            } else if shed * 4 > served {
                delay.saturating_mul(2)
            } else if shed * 20 < served {
                delay / 2
            } else {
                delay
            };
            self.delay_ms.store(next.clamp(millis(self.base), millis(MAX_RETRY_DELAY)), Ordering::Relaxed);
            *started = Instant::now();
        }
        Duration::from_millis(self.delay_ms.load(Ordering::Relaxed))
    }
}

/// Whole milliseconds of `duration`, as a header or an atomic counter holds them.
pub(crate) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

impl<S: Clone> Layer<S> for AdmissionLayer {
    type Service = Admission<S>;

    fn layer(&self, inner: S) -> Self::Service {
        let limited = ServiceBuilder::new()
            .layer(tower::load_shed::LoadShedLayer::new())
            .layer(GlobalConcurrencyLimitLayer::with_semaphore(self.slots.clone()))
            .service(inner.clone());
        Admission { inner, limited, policy: self.policy, pushback: self.pushback.clone() }
    }
}

/// A server's services behind [`AdmissionLayer`].
#[derive(Debug, Clone)]
pub struct Admission<S> {
    /// For the exempt paths.
    inner: S,
    /// For everything else: shed when every slot is taken.
    limited: LoadShed<ConcurrencyLimit<S>>,
    policy: AdmissionPolicy,
    pushback: Arc<Pushback>,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Admission<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    ReqBody: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    /// Always ready: readiness is decided per call, by the path and the free slots.
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let path = request.uri().path();
        if EXEMPT.iter().any(|prefix| path.starts_with(prefix)) {
            let inner = self.inner.clone();
            return Box::pin(async move { inner.oneshot(request).await.map_err(Into::into) });
        }
        let policy = self.policy;
        let requested = requested_timeout(request.headers());
        if requested == Some(Duration::ZERO) {
            crate::metrics::deadline_exceeded();
            return Box::pin(async {
                Ok(deadline_exceeded("the call's deadline passed before it started").into_http())
            });
        }
        let deadline = match requested {
            Some(timeout) if timeout < policy.call_timeout => {
                Deadline { at: Instant::now() + timeout, from_client: true }
            }
            _ => Deadline { at: Instant::now() + policy.call_timeout, from_client: false },
        };
        let (limited, pushback) = (self.limited.clone(), self.pushback.clone());
        Box::pin(async move {
            let call = deadline::within(deadline, limited.oneshot(request));
            match tokio::time::timeout_at(deadline.at, call).await {
                Ok(Ok(response)) => {
                    pushback.served();
                    Ok(response)
                }
                Ok(Err(error)) if error.is::<Overloaded>() => {
                    crate::metrics::shed();
                    Ok(overloaded(policy.max_in_flight, pushback.shed()).into_http())
                }
                Ok(Err(error)) => Err(error),
                Err(_elapsed) => Ok(ran_out_of_time().into_http()),
            }
        })
    }
}

/// The answer to a call whose deadline passed while it ran: here, when the server's timer fires
/// first, or in [`crate::status`], when PostgreSQL's statement_timeout does. Counted either way.
pub(crate) fn ran_out_of_time() -> Status {
    crate::metrics::deadline_exceeded();
    deadline_exceeded("the call's deadline passed before it finished")
}

/// DEADLINE_EXCEEDED with its ErrorInfo.
fn deadline_exceeded(message: &str) -> Status {
    crate::status::with_reason(Code::DeadlineExceeded, "DEADLINE_EXCEEDED", message)
}

/// The answer to a shed call: nothing was started, so any call may be retried after `retry_delay`,
/// said twice: `google.rpc.RetryInfo` for clients that read details, and gRPC's own
/// `grpc-retry-pushback-ms` for clients with a gRPC retry policy.
fn overloaded(max_in_flight: usize, retry_delay: Duration) -> Status {
    let mut details = ErrorDetails::with_retry_info(Some(retry_delay));
    details.set_error_info(
        "SERVER_OVERLOADED",
        ERROR_DOMAIN,
        [("max_in_flight".to_owned(), max_in_flight.to_string())],
    );
    let mut status = Status::with_error_details(
        Code::ResourceExhausted,
        format!(
            "the server is running its limit of {max_in_flight} calls; nothing was done, retry in {} ms",
            retry_delay.as_millis()
        ),
        details,
    );
    status.metadata_mut().insert("grpc-retry-pushback-ms", millis(retry_delay).into());
    status
}

/// The client's deadline from `grpc-timeout` (gRPC over HTTP/2: at most 8 digits and a unit);
/// a malformed value is ignored, as gRPC's own servers do.
fn requested_timeout(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount * 3600),
        "M" => Duration::from_secs(amount * 60),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timeout(value: &str) -> Option<Duration> {
        let mut headers = HeaderMap::new();
        headers.insert("grpc-timeout", value.parse().expect("a header value"));
        requested_timeout(&headers)
    }

    #[test]
    fn grpc_timeout_is_read_in_every_unit_and_malformed_values_are_ignored() {
        assert_eq!(timeout("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(timeout("3M"), Some(Duration::from_secs(180)));
        assert_eq!(timeout("5S"), Some(Duration::from_secs(5)));
        assert_eq!(timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(timeout("99999999u"), Some(Duration::from_micros(99_999_999)));
        assert_eq!(timeout("0n"), Some(Duration::ZERO));
        for malformed in ["", "S", "123456789S", "5s", "-1S", "1.5S", "5 S"] {
            assert_eq!(timeout(malformed), None, "{malformed:?}");
        }
        assert_eq!(requested_timeout(&HeaderMap::new()), None);
    }

    #[test]
    fn a_shed_call_says_when_to_retry_and_why() {
        let status = overloaded(7, Duration::from_millis(250));
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert_eq!(status.get_details_retry_info().and_then(|info| info.retry_delay), Some(Duration::from_millis(250)));
        assert_eq!(status.get_details_error_info().map(|info| info.reason).as_deref(), Some("SERVER_OVERLOADED"));
        let pushback = status.metadata().get("grpc-retry-pushback-ms").and_then(|value| value.to_str().ok());
        assert_eq!(pushback, Some("250"));
    }

    /// Shed calls in a window: `shed` of them beside `served` served ones, then one more after
    /// the window has passed, which sees the new delay.
    fn window(pushback: &Pushback, served: u64, shed: u64) -> Duration {
        pushback.served.fetch_add(served, Ordering::Relaxed);
        pushback.shed.fetch_add(shed, Ordering::Relaxed);
        *pushback.window_started.lock().expect("unpoisoned") -= PUSHBACK_WINDOW;
        pushback.shed()
    }

    #[test]
    fn the_retry_delay_grows_while_many_calls_are_shed_and_shrinks_back_when_few_are() {
        let pushback = Pushback::new(Duration::from_millis(100));
        assert_eq!(window(&pushback, 1000, 1000), Duration::from_millis(200));
        assert_eq!(window(&pushback, 1000, 1000), Duration::from_millis(400));
        assert_eq!(window(&pushback, 1000, 100), Duration::from_millis(400), "between the thresholds: kept");
        assert_eq!(window(&pushback, 1000, 10), Duration::from_millis(200));
        assert_eq!(window(&pushback, 1000, 10), Duration::from_millis(100));
        assert_eq!(window(&pushback, 1000, 10), Duration::from_millis(100), "never below the configured delay");
        for _ in 0..20 {
            window(&pushback, 0, 1000);
        }
        assert_eq!(pushback.shed(), MAX_RETRY_DELAY, "never above the cap");
    }
}
