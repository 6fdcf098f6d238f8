//! The one error type of partner-center and its only mapping to `tonic::Status`.
//!
//! Every layer (validation, authorization, rules, persistence) returns [`Error`]; the gRPC boundary
//! converts it with `Status::from`, so a reader finds every status code decision in this file.
//! Internal errors are logged here and never shown to callers.

use std::collections::HashMap;

use sea_orm::{DbErr, RuntimeErr, sqlx};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The `google.rpc.ErrorInfo.domain` of every error this system raises.
pub const ERROR_DOMAIN: &str = "partnercenter";

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A broken domain rule, named so that clients can branch on it (`google.rpc.ErrorInfo.reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Rule 1: a tenant enrolled as a partner cannot be a customer in the same cloud.
    PartnerAsCustomer,
    /// Rule 2: resources of different clouds are never joined.
    CrossCloud,
    /// Rule 3: the partner's program role does not allow this.
    RoleNotAllowed,
    /// Rule 3: a suspended partner starts nothing new.
    PartnerSuspended,
    /// Rules 3 and 6: an indirect reseller needs an ACTIVE link to the provider.
    NoActiveResellerLink,
    /// Rule 5: the resource's state does not allow this transition.
    InvalidTransition,
    /// Rule 8: ACTIVE subscriptions still depend on what is being ended.
    ActiveSubscriptions,
    /// Rule 6: the partner holds no ACTIVE relationship with the customer.
    NoActiveRelationship,
    /// Rule 7: a support request that the multi-channel rule does not allow.
    SupportNotAllowed,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PartnerAsCustomer => "PARTNER_AS_CUSTOMER",
            Self::CrossCloud => "CROSS_CLOUD",
            Self::RoleNotAllowed => "ROLE_NOT_ALLOWED",
            Self::PartnerSuspended => "PARTNER_SUSPENDED",
            Self::NoActiveResellerLink => "NO_ACTIVE_RESELLER_LINK",
            Self::InvalidTransition => "INVALID_TRANSITION",
            Self::ActiveSubscriptions => "ACTIVE_SUBSCRIPTIONS",
            Self::NoActiveRelationship => "NO_ACTIVE_RELATIONSHIP",
            Self::SupportNotAllowed => "SUPPORT_NOT_ALLOWED",
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request field is missing or malformed.
    #[error("invalid {field}: {description}")]
    InvalidArgument { field: String, description: String },
    /// The named resource does not exist.
    #[error("{name} not found")]
    NotFound { name: String },
    /// A uniqueness rule of the directory (tenant or domain per cloud, one live link per pair).
    #[error("{message}")]
    AlreadyExists { reason: &'static str, message: String },
    /// A domain rule forbids the change.
    #[error("{reason}: {message}")]
    FailedPrecondition { reason: Reason, message: String },
    /// The caller sent an etag that no longer matches the stored resource.
    #[error("etag mismatch for {name}: the resource changed since it was read")]
    StaleEtag { name: String },
    /// The change lost a race with a concurrent change and may be retried.
    #[error("{0}")]
    Conflict(String),
    /// The caller is authenticated but may not do this.
    #[error("{0}")]
    PermissionDenied(String),
    /// No usable credential.
    #[error("{0}")]
    Unauthenticated(String),
    /// Anything else: a bug or an unexpected database failure. Logged, never shown.
    #[error("internal error: {0}")]
    Internal(String),
    /// A database failure nobody expected at the call site; classified when mapped.
    #[error("database error: {0}")]
    Database(#[from] DbErr),
}

impl Error {
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self::InvalidArgument { field: field.into(), description: description.into() }
    }

    pub fn not_found(name: impl Into<String>) -> Self {
        Self::NotFound { name: name.into() }
    }

    pub fn rule(reason: Reason, message: impl Into<String>) -> Self {
        Self::FailedPrecondition { reason, message: message.into() }
    }

    pub fn already_exists(reason: &'static str, message: impl Into<String>) -> Self {
        Self::AlreadyExists { reason, message: message.into() }
    }

    pub fn denied(message: impl Into<String>) -> Self {
        Self::PermissionDenied(message.into())
    }

    pub fn internal(context: impl std::fmt::Display) -> Self {
        Self::Internal(context.to_string())
    }
}

fn error_info(reason: &str, metadata: HashMap<String, String>) -> ErrorDetails {
    ErrorDetails::with_error_info(reason, ERROR_DOMAIN, metadata)
}

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        let message = error.to_string();
        match error {
            Error::InvalidArgument { field, description } => Status::with_error_details(
                Code::InvalidArgument,
                message,
                ErrorDetails::with_bad_request_violation(field, description),
            ),
            Error::NotFound { name } => Status::with_error_details(
                Code::NotFound,
                message,
                ErrorDetails::with_resource_info("", name, "", "not found"),
            ),
            Error::AlreadyExists { reason, .. } => {
                Status::with_error_details(Code::AlreadyExists, message, error_info(reason, HashMap::new()))
            }
            Error::FailedPrecondition { reason, .. } => Status::with_error_details(
                Code::FailedPrecondition,
                message,
                error_info(reason.as_str(), HashMap::new()),
            ),
            Error::StaleEtag { name } => Status::with_error_details(
                Code::Aborted,
                message,
                error_info("STALE_ETAG", HashMap::from([("resource".to_owned(), name)])),
            ),
            Error::Conflict(_) => Status::with_error_details(
                Code::Aborted,
                message,
                error_info("CONCURRENT_MODIFICATION", HashMap::new()),
            ),
            Error::PermissionDenied(_) => Status::permission_denied(message),
            Error::Unauthenticated(_) => Status::unauthenticated(message),
            Error::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                Status::internal("internal error")
            }
            Error::Database(error) if is_transient(&error) => Status::with_error_details(
                Code::Aborted,
                "the database aborted the transaction under contention; retry",
                error_info("TRANSIENT_CONFLICT", HashMap::new()),
            ),
            Error::Database(error) if is_connectivity(&error) => {
                tracing::warn!(%error, "database unavailable");
                Status::unavailable("service temporarily unavailable, retry later")
            }
            Error::Database(error) => {
                tracing::error!(%error, "database error");
                Status::internal("internal error")
            }
        }
    }
}

impl Error {
    /// Whether running the same request again may succeed: a lost compare-and-swap, a
    /// serialization failure or deadlock (PostgreSQL 40001, 40P01), or a busy SQLite.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Conflict(_) => true,
            Self::Database(error) => is_transient(error),
            _ => false,
        }
    }
}

/// PostgreSQL serialization_failure and deadlock_detected; SQLite BUSY, LOCKED and their
/// extended codes.
fn is_transient(error: &DbErr) -> bool {
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
fn is_connectivity(error: &DbErr) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_details_never_reach_the_caller() {
        let status = Status::from(Error::internal("password=hunter2 in connection string"));
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("hunter2"));
    }

    #[test]
    fn rule_violations_carry_their_reason() {
        let status = Status::from(Error::rule(Reason::CrossCloud, "partner is in another cloud"));
        assert_eq!(status.code(), Code::FailedPrecondition);
        assert!(status.message().contains("CROSS_CLOUD"));
        let info = status.get_details_error_info().map(|info| info.reason);
        assert_eq!(info.as_deref(), Some("CROSS_CLOUD"));
    }

    #[test]
    fn invalid_arguments_name_the_field() {
        let status = Status::from(Error::invalid("partner.tenant_id", "not a UUID"));
        let violations = status.get_details_bad_request().map(|b| b.field_violations);
        assert_eq!(violations.map(|v| v[0].field.clone()).as_deref(), Some("partner.tenant_id"));
    }
}
