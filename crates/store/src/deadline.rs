//! The caller's deadline, as the database sees it. The server runs each call inside [`within`]
//! (`pc_server::admission`), and drops the call at its deadline; what this module adds is that
//! the database stops too: a transaction begun for a caller with a deadline shorter than the
//! connection's `statement_timeout` (the server's longest call, set when the pool connects) sets
//! `statement_timeout` to the time left, so a statement of an abandoned call is cancelled by
//! PostgreSQL instead of holding its connection (and its locks) until it finishes.
//!
//! A task-local rather than a parameter: the deadline belongs to the whole call, and every query
//! function would otherwise carry it only to pass it on to [`crate::Database::begin`].

use std::{future::Future, time::Duration};

use tokio::time::Instant;

/// When the call must be answered, and whether its client asked for that (a `grpc-timeout`
/// shorter than the server's longest call) or it is the server's own limit.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    pub at: Instant,
    pub from_client: bool,
}

tokio::task_local! {
    static DEADLINE: Deadline;
}

/// Runs `call` with `deadline` visible to every transaction it begins.
pub async fn within<F: Future>(deadline: Deadline, call: F) -> F::Output {
    DEADLINE.scope(deadline, call).await
}

/// The time left before the current call's client-chosen deadline; `None` outside a call or when
/// the client set none shorter than the server's own limit (which the connection already applies).
pub fn client_time_left() -> Option<Duration> {
    DEADLINE
        .try_with(|deadline| deadline.from_client.then(|| deadline.at.saturating_duration_since(Instant::now())))
        .ok()
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_a_clients_own_deadline_is_applied() {
        assert_eq!(client_time_left(), None, "outside a call");
        let server = Deadline { at: Instant::now() + Duration::from_secs(30), from_client: false };
        assert_eq!(within(server, async { client_time_left() }).await, None);
        let client = Deadline { at: Instant::now() + Duration::from_secs(2), from_client: true };
        let left = within(client, async { client_time_left() }).await.expect("a client deadline");
        assert!(left > Duration::from_secs(1) && left <= Duration::from_secs(2), "{left:?}");
    }
}
