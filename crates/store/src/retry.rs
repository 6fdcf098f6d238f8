//! Bounded retries of whole requests. A handler runs in one transaction that rolls back on any
//! error, so running it again is safe; this does so for errors that another attempt can cure (a
//! lost compare-and-swap, a serialization failure or deadlock, a busy SQLite), with exponential
//! backoff and jitter (backon's) so the contenders spread out: 4-8 ms, then 8-16, 16-32, 32-64.
//! What still fails is ABORTED, never INTERNAL.

use std::{future::Future, time::Duration};

use backon::{ExponentialBuilder, Retryable};
use pc_domain::Error;

/// Attempts in all, the first included.
pub const MAX_ATTEMPTS: u32 = 5;
const BASE_DELAY: Duration = Duration::from_millis(4);

/// Runs `attempt` until it succeeds, fails for good, or has run [`MAX_ATTEMPTS`] times.
pub async fn with_retries<T, F, Fut>(attempt: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    let backoff = ExponentialBuilder::default()
        .with_min_delay(BASE_DELAY)
        .with_max_times(MAX_ATTEMPTS as usize - 1)
        .with_jitter();
    // Each attempt is one transaction: a child span of the call's, when the call has one (traces on).
    let mut attempts = 0u32;
    let mut attempt = attempt;
    let traced = move || {
        attempts += 1;
        let parent = tracing::Span::current();
        let span = if parent.is_none() {
            tracing::Span::none()
        } else {
            tracing::info_span!(parent: &parent, "db.transaction", attempt = attempts)
        };
        tracing::Instrument::instrument(attempt(), span)
    };
    traced
        .retry(backoff)
        .sleep(tokio::time::sleep)
        .when(crate::errors::is_retryable)
        .notify(|error, delay| tracing::debug!(?delay, %error, "retrying after a transient conflict"))
        .await
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test]
    async fn conflicts_are_retried_until_they_clear() {
        let calls = AtomicU32::new(0);
        let result = with_retries(|| async {
            if calls.fetch_add(1, Ordering::SeqCst) < 2 { Err(Error::Conflict("busy".into())) } else { Ok(7) }
        })
        .await;
        assert_eq!(result.ok(), Some(7));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn retries_are_bounded_and_permanent_errors_are_not_retried() {
        let calls = AtomicU32::new(0);
        let result: Result<(), Error> = with_retries(|| async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(Error::Conflict("always".into()))
        })
        .await;
        assert!(matches!(result, Err(Error::Conflict(_))));
        assert_eq!(calls.load(Ordering::SeqCst), MAX_ATTEMPTS);

        calls.store(0, Ordering::SeqCst);
        let result: Result<(), Error> = with_retries(|| async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(Error::denied("no"))
        })
        .await;
        assert!(result.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
