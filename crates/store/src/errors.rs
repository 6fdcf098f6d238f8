//! How database errors are told apart: a transient conflict another attempt may cure, a database
//! that cannot be reached, or anything else. The retry loop and the gRPC mapping ask here.

use pc_domain::Error;
use sea_orm::{DbErr, RuntimeErr, sqlx};

/// Whether running the same request again may succeed: a lost compare-and-swap, a
/// serialization failure or deadlock (PostgreSQL 40001, 40P01), or a busy SQLite.
pub fn is_retryable(error: &Error) -> bool {
    match error {
        Error::Conflict(_) => true,
        Error::Database(error) => is_transient(error),
        _ => false,
    }
}

/// PostgreSQL serialization_failure and deadlock_detected; SQLite BUSY, LOCKED and their
/// extended codes.
pub fn is_transient(error: &DbErr) -> bool {
    match error {
        DbErr::Exec(RuntimeErr::SqlxError(inner)) | DbErr::Query(RuntimeErr::SqlxError(inner)) => {
            match inner.as_ref() {
                sqlx::Error::Database(db) => {
                    matches!(db.code().as_deref(), Some("40001" | "40P01" | "5" | "6" | "261" | "262" | "517"))
                }
                _ => false,
            }
        }
        _ => false,
    }
}

/// Whether the database could not be reached at all (as opposed to refusing a statement).
pub fn is_connectivity(error: &DbErr) -> bool {
    match error {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(inner)) | DbErr::Query(RuntimeErr::SqlxError(inner)) => {
            match inner.as_ref() {
                sqlx::Error::Io(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed => true,
                // The server went away under a pooled connection. Not retried: a connection lost
                // around a commit leaves its outcome unknown.
                sqlx::Error::Database(db) => db.code().is_some_and(|code| is_connection_lost_sqlstate(&code)),
                _ => false,
            }
        }
        _ => false,
    }
}

/// Whether a PostgreSQL SQLSTATE says the connection is gone rather than the statement refused:
/// classes 08 (connection exception) and 57P (shutting down, crashed, starting up).
pub fn is_connection_lost_sqlstate(code: &str) -> bool {
    code.starts_with("08") || code.starts_with("57P")
}
