//! How database errors are told apart: a transient conflict another attempt may cure, a database
//! that cannot be reached, or anything else. The retry loop and the gRPC mapping ask here.

use pc_domain::Error;
use sea_orm::{DbErr, RuntimeErr, sqlx};

/// Whether running the same request again may succeed: a lost compare-and-swap, a
/// serialization failure or deadlock (PostgreSQL 40001, 40P01), or a busy SQLite.
pub fn is_retryable(error: &Error) -> bool {
    match error {
        Error::Conflict(_) => true,
        _ => database_error(error).is_some_and(is_transient),
    }
}

/// The SeaORM error inside `error`, if it is a database failure (`Error::Database` boxes it, so
/// that pc-domain need not know SeaORM's types).
pub fn database_error(error: &Error) -> Option<&DbErr> {
    match error {
        Error::Database(inner) => inner.downcast_ref::<DbErr>(),
        _ => None,
    }
}

/// Whether `error` is a unique-constraint violation (a partial unique index losing a race).
pub fn is_unique_violation(error: &Error) -> bool {
    database_error(error).is_some_and(|db| matches!(db.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_))))
}

/// What a database failure means to the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseFailure {
    /// Another attempt may succeed ([`is_transient`]): ABORTED.
    Transient,
    /// The database could not be reached ([`is_connectivity`]): UNAVAILABLE.
    Unreachable,
    /// The statement ran into the call's deadline ([`is_statement_timeout`], see
    /// [`crate::deadline`]): DEADLINE_EXCEEDED.
    TimedOut,
    /// Anything else, a bug: INTERNAL, logged.
    Other,
}

/// What the failure inside an `Error::Database` means.
pub fn classify(error: &(dyn std::error::Error + Send + Sync + 'static)) -> DatabaseFailure {
    match error.downcast_ref::<DbErr>() {
        Some(error) if is_transient(error) => DatabaseFailure::Transient,
        Some(error) if is_connectivity(error) => DatabaseFailure::Unreachable,
        Some(error) if is_statement_timeout(error) => DatabaseFailure::TimedOut,
        _ => DatabaseFailure::Other,
    }
}

/// PostgreSQL query_canceled (57014): raised by the statement_timeout a call's deadline set, which
/// the server's own timer usually beats by a hair; when the database's wins, the caller still
/// learns that its deadline passed. (An operator's `pg_cancel_backend` raises it too: the call
/// did not finish either way, and its transaction is rolled back.)
pub fn is_statement_timeout(error: &DbErr) -> bool {
    database_code(error).as_deref() == Some("57014")
}

/// The driver's error under a statement's failure, if sqlx raised it.
fn sqlx_error(error: &DbErr) -> Option<&sqlx::Error> {
    match error {
        DbErr::Exec(RuntimeErr::SqlxError(inner)) | DbErr::Query(RuntimeErr::SqlxError(inner)) => Some(inner.as_ref()),
        _ => None,
    }
}

/// The code the database gave a refused statement: PostgreSQL's SQLSTATE, SQLite's result code.
fn database_code(error: &DbErr) -> Option<std::borrow::Cow<'_, str>> {
    match sqlx_error(error)? {
        sqlx::Error::Database(db) => db.code(),
        _ => None,
    }
}

/// PostgreSQL serialization_failure and deadlock_detected; SQLite BUSY, LOCKED and their
/// extended codes.
pub fn is_transient(error: &DbErr) -> bool {
    matches!(database_code(error).as_deref(), Some("40001" | "40P01" | "5" | "6" | "261" | "262" | "517"))
}

/// Whether the database could not be reached at all (as opposed to refusing a statement).
pub fn is_connectivity(error: &DbErr) -> bool {
    match error {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        _ => match sqlx_error(error) {
            Some(
                sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed,
            ) => true,
            // The server went away under a pooled connection. Not retried: a connection lost
            // around a commit leaves its outcome unknown.
            _ => database_code(error).is_some_and(|code| is_connection_lost_sqlstate(&code)),
        },
    }
}

/// Whether a PostgreSQL SQLSTATE says the connection is gone rather than the statement refused:
/// classes 08 (connection exception) and 57P (shutting down, crashed, starting up).
pub fn is_connection_lost_sqlstate(code: &str) -> bool {
    code.starts_with("08") || code.starts_with("57P")
}
